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
use super::topic_limits::TopicLimits;
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
    /// `dead_letter_path` (a file source's): set by [`BadRecords::write_to`].
    dead_letter_file: Option<super::dead_letter_files::DeadLetterFile>,
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
            dead_letter_file: None,
            last_log: None,
            buf: Vec::with_capacity(256),
        })
    }

    /// Dead letters go to this file (`ErrorPolicy::DeadLetterFiles`).
    pub fn write_to(&mut self, file: super::dead_letter_files::DeadLetterFile) {
        self.dead_letter_file = Some(file);
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
            ErrorPolicy::DeadLetter(_) | ErrorPolicy::DeadLetterFiles(_) => "dead-lettered",
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
            ErrorPolicy::DeadLetter(_) | ErrorPolicy::DeadLetterFiles(_) => {
                self.buf.clear();
                // A dead-letter file takes any length; cut to Kafka's limit all the same.
                let default = TopicLimits::default();
                let fit = self.dead_letters.as_ref().map_or(&default, DeadLetterWriter::limits);
                dead_letter_json(&mut self.buf, error, &self.operator, Some(&position), bytes, None, timestamp, fit);
                if let Some(w) = &self.dead_letters {
                    w.send(&self.buf)?;
                }
                match (&mut self.dead_letter_file, &self.policy) {
                    (Some(f), _) => f.write(&self.buf)?,
                    (None, ErrorPolicy::DeadLetterFiles(p)) => {
                        return Err(ConnectorError::Io(format!("the dead-letter directory `{p}` is not open (a bug in flowc)")))
                    }
                    _ => {}
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
    pub fn flush(&mut self) -> Result<(), ConnectorError> {
        if let Some(f) = &mut self.dead_letter_file {
            f.flush()?;
        }
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

/// A dead letter's `source`: `{"topic", "partition", "offset"}` or
/// `{"file", "line"}`.
pub fn source_json(position: &RecordPosition) -> serde_json::Value {
    use serde_json::json;
    match position {
        RecordPosition::Kafka { topic, partition, offset } => {
            json!({ "topic": topic, "partition": partition, "offset": offset })
        }
        RecordPosition::File { file, line } => json!({ "file": file, "line": line }),
    }
}

/// Appends the dead-letter JSON object of one record to `out`. A record
/// a stage dead-letters has its `row` as the stage read it too, and, if it
/// has no origin (`position` is `None`: no `source` is written), the row
/// as its `value` (`bytes`). A dead letter
/// over Kafka's message limit loses its `row` (`row_truncated`), then has
/// its `value` cut to fit (`value_truncated`, with the whole length in
/// `value_bytes`). `fit`: the dead-letter topic's limits (its own
/// `max.message.bytes`, read when its writer opened), or the defaults.
#[allow(clippy::too_many_arguments)]
pub fn dead_letter_json(
    out: &mut Vec<u8>,
    error: &str,
    operator: &str,
    position: Option<&RecordPosition>,
    bytes: &[u8],
    row: Option<&str>,
    timestamp: Option<i64>,
    fit: &TopicLimits,
) {
    use serde_json::json;
    let mut v = json!({ "error": error, "operator": operator });
    if let Some(p) = position {
        v["source"] = source_json(p);
    }
    set_value(&mut v, bytes, bytes.len());
    if let Some(row) = row.and_then(|r| serde_json::from_str::<serde_json::Value>(r).ok()) {
        v["row"] = row;
    }
    if let Some(ts) = timestamp {
        v["timestamp"] = json!(ts);
    }
    // Writing a `Value` to a Vec cannot fail.
    let start = out.len();
    let write = |v: &serde_json::Value, out: &mut Vec<u8>| {
        out.truncate(start);
        let _ = serde_json::to_writer(&mut *out, v);
        out.len() - start
    };
    let mut len = write(&v, out);
    if fit.fits(len) {
        return;
    }
    // Too large for the dead-letter topic (a record near Kafka's limit,
    // written twice: its bytes and its row): a dead letter that cannot be
    // delivered would fail the task again at every restart. The row goes
    // first, then the value is cut to fit; both are said so.
    if let Some(o) = v.as_object_mut() {
        if o.remove("row").is_some() {
            o.insert("row_truncated".into(), json!(true));
            len = write(&v, out);
            if fit.fits(len) {
                return;
            }
        }
    }
    v["value_truncated"] = json!(true);
    v["value_bytes"] = json!(bytes.len());
    set_value(&mut v, bytes, 0);
    let base = write(&v, out);
    // What a byte of the value takes in the JSON (escaped, or base64), and
    // as many as fit in the room left; then less, should that not fit.
    let per_byte = (len.saturating_sub(base)) as f64 / bytes.len().max(1) as f64;
    let room = len.saturating_sub(fit.excess(len)).saturating_sub(base);
    let mut n = ((room as f64 / per_byte.max(1e-9)) as usize).min(bytes.len());
    loop {
        set_value(&mut v, bytes, n);
        let excess = fit.excess(write(&v, out));
        if excess == 0 || n == 0 {
            return;
        }
        n = n.saturating_sub(excess.max(1));
    }
}

/// A dead letter's `value`: the first `n` bytes of `bytes` (at a character
/// boundary at or below), as text, or as base64 if they are not UTF-8.
fn set_value(v: &mut serde_json::Value, bytes: &[u8], n: usize) {
    use serde_json::json;
    match std::str::from_utf8(bytes) {
        Ok(text) => {
            let mut end = n.min(text.len());
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            v["value"] = json!(&text[..end]);
        }
        Err(_) => {
            v["value"] = json!(base64(&bytes[..n.min(bytes.len())]));
            v["value_encoding"] = json!("base64");
        }
    }
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
    /// The dead-letter topic's limits, read when it opened.
    limits: TopicLimits,
}

impl DeadLetterWriter {
    /// Reads the dead-letter topic's limits (its own `max.message.bytes`:
    /// `topic_limits`), which its dead letters are cut to fit.
    pub fn new(target: &DeadLetterTarget) -> Result<DeadLetterWriter, ConnectorError> {
        DeadLetterWriter::with_limits(target, TopicLimits::describe(&target.servers, &target.topic))
    }

    /// With the producer's `message.max.bytes` (which also caps a batch) at
    /// the topic's (`limits`).
    pub fn with_limits(target: &DeadLetterTarget, limits: TopicLimits) -> Result<DeadLetterWriter, ConnectorError> {
        let max_bytes = limits.producer_max_bytes;
        let errors = DeliveryErrors::default();
        let producer: ThreadedProducer<DeliveryErrors> = ClientConfig::new()
            .set("bootstrap.servers", &target.servers)
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("linger.ms", "5")
            .set("message.timeout.ms", "120000")
            .set("message.max.bytes", max_bytes.to_string())
            .create_with_context(errors.clone())
            .map_err(|e| self::kafka_err(target, e))?;
        Ok(DeadLetterWriter { target: target.clone(), producer, errors, limits })
    }

    /// The dead-letter topic's limits, read when the writer opened.
    pub fn limits(&self) -> &TopicLimits {
        &self.limits
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
    fn a_dead_letter_too_large_for_kafka_loses_its_row_then_is_cut_to_fit_and_says_so() {
        let small = br#"{"id": 1}"#;
        let any = TopicLimits::default();
        let mut out = Vec::new();
        dead_letter_json(&mut out, "bad", "Map", None, small, Some(r#"{"id":1}"#), Some(5), &any);
        let v: serde_json::Value = serde_json::from_slice(&out).expect("json");
        assert_eq!((v["value"].as_str(), v["row"]["id"].as_i64()), (Some(r#"{"id": 1}"#), Some(1)));
        assert!(v.get("value_truncated").is_none() && v.get("row_truncated").is_none(), "{v}");
        // A 600 kB record whose row doubles it: the row goes, the value stays whole.
        let text = format!(r#"{{"s": "{}"}}"#, "é".repeat(300_000));
        let row = format!(r#"{{"s":"{}"}}"#, "é".repeat(300_000));
        out.clear();
        dead_letter_json(&mut out, "bad", "Map", None, text.as_bytes(), Some(&row), None, &any);
        assert!(crate::connectors::message_size::fits(out.len()), "{}", out.len());
        let v: serde_json::Value = serde_json::from_slice(&out).expect("json");
        assert_eq!((v["row_truncated"].as_bool(), v["value"].as_str()), (Some(true), Some(text.as_str())));
        assert!(v.get("value_truncated").is_none(), "the value alone fits");
        // 1.5 MB, text and not: cut to fit, at a character boundary, saying how long it was.
        let big = "é".repeat(750_000);
        for (bytes, encoding) in [(big.as_bytes().to_vec(), None), (vec![0xff_u8; 1_500_000], Some("base64"))] {
            out.clear();
            dead_letter_json(&mut out, "bad", "Map", None, &bytes, None, None, &any);
            assert!(crate::connectors::message_size::fits(out.len()), "{}", out.len());
            let v: serde_json::Value = serde_json::from_slice(&out).expect("json");
            assert_eq!(v["value_truncated"].as_bool(), Some(true), "{}", v["error"]);
            assert_eq!(v["value_bytes"].as_u64(), Some(1_500_000));
            assert_eq!(v["value_encoding"].as_str(), encoding);
            assert!(out.len() > 900_000, "cut no more than needed: {}", out.len());
        }
    }

    #[test]
    fn a_dead_letter_is_cut_to_fit_the_dead_letter_topics_own_limit() {
        let small = TopicLimits::from_config(|k| (k == "max.message.bytes").then_some("2000"));
        let mut out = Vec::new();
        let text = format!(r#"{{"s": "{}"}}"#, "x".repeat(10_000));
        let row = format!(r#"{{"s":"{}"}}"#, "x".repeat(10_000));
        dead_letter_json(&mut out, "bad", "Map", None, text.as_bytes(), Some(&row), Some(5), &small);
        assert!(small.fits(out.len()), "{}", out.len());
        assert!(out.len() > 1500, "cut no more than needed: {}", out.len());
        let v: serde_json::Value = serde_json::from_slice(&out).expect("json");
        assert_eq!((v["row_truncated"].as_bool(), v["value_truncated"].as_bool()), (Some(true), Some(true)), "{v}");
        assert_eq!(v["value_bytes"].as_u64(), Some(text.len() as u64));
        assert!(text.starts_with(v["value"].as_str().unwrap_or("-")), "{v}");
        // Under Kafka's limit, the same dead letter was whole.
        out.clear();
        dead_letter_json(&mut out, "bad", "Map", None, text.as_bytes(), Some(&row), Some(5), &TopicLimits::default());
        assert!(out.len() > 20_000, "{}", out.len());
    }

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
        dead_letter_json(
            &mut out,
            "missing field `page`",
            "Source: Kafka(clicks)",
            Some(&pos),
            b"{\"a\":1}",
            None,
            Some(5),
            &TopicLimits::default(),
        );
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"error": "missing field `page`", "operator": "Source: Kafka(clicks)",
                "source": {"topic": "clicks", "partition": 1, "offset": 17}, "value": "{\"a\":1}", "timestamp": 5})
        );
        out.clear();
        let pos = RecordPosition::File { file: "in/a.csv".into(), line: 3 };
        dead_letter_json(
            &mut out,
            "bad",
            "op",
            Some(&pos),
            b"\xff\xfe",
            Some("{\"n\":0}"),
            None,
            &TopicLimits::default(),
        );
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
