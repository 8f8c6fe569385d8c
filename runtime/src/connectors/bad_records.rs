//! What a source does with a record it cannot decode: its `on_error`
//! policy (issue 11 §6).
//!
//! Whatever the policy, a bad record is counted (`numRecordsDecodeErrors`)
//! and kept among the subtask's latest samples (`GET
//! /jobs/:jid/vertices/:vid/errors`). Then `skip` drops it (the default:
//! a poison record never makes a restart loop), `fail` fails the task with
//! the record's position and error, and `dead_letter` writes it to the
//! dead-letter topic as one JSON object and drops it:
//!
//! ```json
//! {"error": "…", "operator": "Source: Kafka(clicks)",
//!  "source": {"topic": "clicks", "partition": 0, "offset": 17},
//!  "value": "<the original bytes as text>", "timestamp": 1795558500015}
//! ```
//!
//! `value` is the record's bytes as a string when they are UTF-8, else
//! their base64 with `"value_encoding": "base64"`. The dead-letter producer
//! is at-least-once: it is flushed at every checkpoint barrier, before the
//! source's offsets are snapshotted, so a bad record is never lost between
//! a checkpoint and a failure (it may be written twice after a restore).

use super::kafka::{send_waiting, DeliveryErrors};
use super::ConnectorError;
use crate::metrics::{sample_text, ErrorClass, ErrorSample, RecordPosition, TaskCounters};
use flowc_compiler::ir::{DeadLetterTarget, ErrorPolicy};
use rdkafka::config::ClientConfig;
use rdkafka::producer::{Producer, ThreadedProducer};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A source's handling of its bad records.
pub struct BadRecords {
    policy: ErrorPolicy,
    operator: String,
    counters: Arc<TaskCounters>,
    dead_letters: Option<DeadLetterWriter>,
    last_log: Option<Instant>,
    buf: Vec<u8>,
}

impl BadRecords {
    /// For the source operator named `operator`; connects to the
    /// dead-letter topic's brokers when the policy has one.
    pub fn new(
        policy: &ErrorPolicy,
        operator: &str,
        counters: Arc<TaskCounters>,
    ) -> Result<BadRecords, ConnectorError> {
        let dead_letters = match policy {
            ErrorPolicy::DeadLetter(t) => Some(DeadLetterWriter::new(t)?),
            _ => None,
        };
        Ok(BadRecords {
            policy: policy.clone(),
            operator: operator.to_string(),
            counters,
            dead_letters,
            last_log: None,
            buf: Vec::with_capacity(256),
        })
    }

    /// A record that could not be decoded: counted, sampled, then
    /// skipped, dead-lettered, or the task's failure (`Err`).
    pub fn decode_error(
        &mut self,
        bytes: &[u8],
        error: &str,
        position: RecordPosition,
        timestamp: Option<i64>,
    ) -> Result<(), ConnectorError> {
        self.counters.decode_errors.fetch_add(1, Ordering::Relaxed);
        let action = match self.policy {
            ErrorPolicy::Fail => "failed",
            ErrorPolicy::Skip => "skipped",
            ErrorPolicy::DeadLetter(_) => "dead-lettered",
        };
        self.counters.sample_error(ErrorSample {
            time_ms: crate::clock::now_ms(),
            class: ErrorClass::Decode,
            operator: self.operator.clone(),
            error: error.to_string(),
            position: Some(position.clone()),
            value: sample_text(bytes),
            action: action.to_string(),
        });
        match &self.policy {
            ErrorPolicy::Fail => {
                return Err(ConnectorError::BadRecord(format!(
                    "{}: cannot decode the record at {} ({error}); `on_error: fail` fails the task — `skip` or `dead_letter` would go on",
                    self.operator,
                    describe(&position)
                )))
            }
            ErrorPolicy::Skip => {
                if self.last_log.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                    self.last_log = Some(Instant::now());
                    tracing::warn!(operator = %self.operator, position = %describe(&position), error, "Skipping an undecodable record (counted in numRecordsDecodeErrors).");
                }
            }
            ErrorPolicy::DeadLetter(_) => {
                self.buf.clear();
                dead_letter_json(&mut self.buf, error, &self.operator, &position, bytes, None, timestamp);
                if let Some(w) = &self.dead_letters {
                    w.send(&self.buf)?;
                }
                self.counters.dead_lettered.fetch_add(1, Ordering::Relaxed);
                if self.last_log.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                    self.last_log = Some(Instant::now());
                    tracing::warn!(operator = %self.operator, position = %describe(&position), error, "Dead-lettering an undecodable record (counted in numRecordsDeadLettered).");
                }
            }
        }
        Ok(())
    }

    /// Everything dead-lettered so far is delivered when this returns.
    pub fn flush(&self) -> Result<(), ConnectorError> {
        match &self.dead_letters {
            Some(w) => w.flush(),
            None => Ok(()),
        }
    }
}

/// `topic/partition@offset` or `file:line`, for messages.
pub fn describe(p: &RecordPosition) -> String {
    match p {
        RecordPosition::Kafka { topic, partition, offset } => format!("{topic}/{partition}@{offset}"),
        RecordPosition::File { file, line } => format!("{file}:{line}"),
    }
}

/// Appends the dead-letter JSON object of one record to `out`.
pub fn dead_letter_json(
    out: &mut Vec<u8>,
    error: &str,
    operator: &str,
    position: &RecordPosition,
    bytes: &[u8],
    row: Option<&str>,
    timestamp: Option<i64>,
) {
    use serde_json::json;
    let source = match position {
        RecordPosition::Kafka { topic, partition, offset } => {
            json!({ "topic": topic, "partition": partition, "offset": offset })
        }
        RecordPosition::File { file, line } => json!({ "file": file, "line": line }),
    };
    let mut v = json!({ "error": error, "operator": operator, "source": source });
    match std::str::from_utf8(bytes) {
        Ok(text) => v["value"] = json!(text),
        Err(_) => {
            v["value"] = json!(base64(bytes));
            v["value_encoding"] = json!("base64");
        }
    }
    if let Some(row) = row.and_then(|r| serde_json::from_str::<serde_json::Value>(r).ok()) {
        v["row"] = row;
    }
    if let Some(ts) = timestamp {
        v["timestamp"] = json!(ts);
    }
    // Writing a `Value` to a Vec cannot fail.
    let _ = serde_json::to_writer(out, &v);
}

/// Standard base64 with padding (RFC 4648 §4).
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> shift) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// An at-least-once producer to a dead-letter topic.
pub struct DeadLetterWriter {
    target: DeadLetterTarget,
    producer: ThreadedProducer<DeliveryErrors>,
    errors: DeliveryErrors,
}

impl DeadLetterWriter {
    pub fn new(target: &DeadLetterTarget) -> Result<DeadLetterWriter, ConnectorError> {
        let errors = DeliveryErrors::default();
        let producer: ThreadedProducer<DeliveryErrors> = ClientConfig::new()
            .set("bootstrap.servers", &target.servers)
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("linger.ms", "5")
            .set("message.timeout.ms", "120000")
            .create_with_context(errors.clone())
            .map_err(|e| self::kafka_err(target, e))?;
        Ok(DeadLetterWriter { target: target.clone(), producer, errors })
    }

    pub fn send(&self, payload: &[u8]) -> Result<(), ConnectorError> {
        self.check()?;
        send_waiting(&self.producer, &self.target.topic, payload)
            .map_err(|e| kafka_err(&self.target, format!("cannot produce to the dead-letter topic: {e}")))
    }

    pub fn flush(&self) -> Result<(), ConnectorError> {
        self.producer
            .flush(Duration::from_secs(120))
            .map_err(|e| kafka_err(&self.target, format!("flushing the dead-letter topic: {e}")))?;
        self.check()
    }

    fn check(&self) -> Result<(), ConnectorError> {
        match self.errors.0.lock().unwrap_or_else(|p| p.into_inner()).take() {
            Some(e) => Err(kafka_err(&self.target, format!("delivery to the dead-letter topic failed: {e}"))),
            None => Ok(()),
        }
    }
}

fn kafka_err(t: &DeadLetterTarget, e: impl std::fmt::Display) -> ConnectorError {
    ConnectorError::Kafka { servers: t.servers.clone(), message: format!("dead-letter topic `{}`: {e}", t.topic) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), encoded, "{plain}");
        }
    }

    #[test]
    fn a_dead_letter_carries_the_error_the_operator_the_position_and_the_bytes() {
        let mut out = Vec::new();
        let pos = RecordPosition::Kafka { topic: "clicks".into(), partition: 1, offset: 17 };
        dead_letter_json(&mut out, "missing field `page`", "Source: Kafka(clicks)", &pos, b"{\"a\":1}", None, Some(5));
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"error": "missing field `page`", "operator": "Source: Kafka(clicks)",
                "source": {"topic": "clicks", "partition": 1, "offset": 17}, "value": "{\"a\":1}", "timestamp": 5})
        );
        out.clear();
        let pos = RecordPosition::File { file: "in/a.csv".into(), line: 3 };
        dead_letter_json(&mut out, "bad", "op", &pos, b"\xff\xfe", Some("{\"n\":0}"), None);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["value"], "//4=");
        assert_eq!(v["value_encoding"], "base64");
        assert_eq!(v["source"], serde_json::json!({"file": "in/a.csv", "line": 3}));
        assert_eq!(v["row"], serde_json::json!({"n": 0}));
    }

    #[test]
    fn skip_counts_and_samples_and_fail_fails_naming_the_position() {
        let counters = Arc::new(TaskCounters::new());
        let mut skip = BadRecords::new(&ErrorPolicy::Skip, "src", counters.clone()).unwrap();
        for i in 0..25 {
            let pos = RecordPosition::Kafka { topic: "t".into(), partition: 0, offset: i };
            skip.decode_error(b"nope", "not JSON", pos, None).unwrap();
        }
        assert_eq!(TaskCounters::get(&counters.decode_errors), 25);
        let samples = counters.error_samples();
        assert_eq!(samples.len(), crate::metrics::ERROR_SAMPLES, "bounded");
        assert_eq!(
            samples.last().unwrap().position,
            Some(RecordPosition::Kafka { topic: "t".into(), partition: 0, offset: 24 })
        );
        assert_eq!(samples.last().unwrap().action, "skipped");
        let mut fail = BadRecords::new(&ErrorPolicy::Fail, "src", counters.clone()).unwrap();
        let pos = RecordPosition::Kafka { topic: "t".into(), partition: 2, offset: 9 };
        let e = fail.decode_error(b"nope", "not JSON", pos, None).unwrap_err().to_string();
        assert!(e.contains("t/2@9") && e.contains("not JSON") && e.contains("on_error: fail"), "{e}");
    }
}
