//! What a Kafka sink does with a record it cannot write: its `on_error`
//! policy (issue 11 §6). Such a record is a message over Kafka's limit
//! (`message_size`) or its topic's, or one whose record timestamp the
//! topic would refuse (`topic_limits`); every record of a sink's schema
//! has an encoding in every format.
//!
//! Whatever the policy, the record is counted (`numRecordsEncodeErrors`)
//! and kept among the subtask's latest samples (`GET
//! /jobs/:jid/vertices/:vid/errors`, kind `encode`). Then `fail` (the
//! default) fails the task naming the sink, the sizes and the record,
//! `skip` drops it, and `dead_letter` writes it to the dead-letter topic as
//! one JSON object and drops it. A dead letter carries the **encoded**
//! message — what could not be written — not the row, and where its
//! record was read (`source`) when the record has an origin
//! ([`Origins`](crate::data::Origins): its source kept them because this
//! sink, or a stage, dead-letters):
//!
//! ```json
//! {"error": "a message of 1200015 bytes of value and 0 of key is over Kafka's limit …",
//!  "operator": "Sink: Kafka(out)", "value": "{\"id\":5,\"s\":\"xx…",
//!  "value_truncated": true, "value_bytes": 1200015, "timestamp": 1795558500015}
//! ```
//!
//! `value` and `key` (when the message has one) are text when UTF-8, else
//! base64 with `"value_encoding"`/`"key_encoding": "base64"`. A dead letter
//! that would itself be over the dead-letter topic's limit (flowc's, or the
//! topic's own: `topic_limits`) — always, for a value over flowc's — has
//! its key cut to 1 KiB and its value to what fits, each marked
//! `"…_truncated": true` with its original length in `"…_bytes"`: a dead
//! letter never fails in turn. The dead-letter producer is at-least-once,
//! as a source's: it is flushed at every checkpoint barrier, before the
//! sink's state is taken, so a dead letter is never lost (it may be written
//! twice after a restore). A record skipped or dead-lettered by an
//! exactly-once sink never enters its transaction.

use super::bad_records::{base64, source_json, DeadLetterWriter};
use super::topic_limits::TopicLimits;
use super::ConnectorError;
use crate::data::Origin;
use crate::metrics::{sample_text, ErrorClass, ErrorSample, RecordPosition, TaskCounters};
use flowc_compiler::ir::ErrorPolicy;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A dead letter's key is cut to this many bytes first when it is too long.
const KEY_CUT: usize = 1024;

/// A sink's handling of the records it cannot write.
pub struct SinkErrors {
    policy: ErrorPolicy,
    operator: String,
    counters: Arc<TaskCounters>,
    dead_letters: Option<DeadLetterWriter>,
    /// What the dead-letter topic takes: a dead letter is cut to fit it.
    dead_letter_limits: TopicLimits,
    /// What the sink's topic refuses.
    limits: TopicLimits,
    last_log: Option<Instant>,
    buf: Vec<u8>,
}

impl SinkErrors {
    /// For the sink operator named `operator`; connects to the dead-letter
    /// topic's brokers when the policy has one.
    pub fn new(
        policy: &ErrorPolicy,
        operator: &str,
        counters: Arc<TaskCounters>,
    ) -> Result<SinkErrors, ConnectorError> {
        let (dead_letters, dead_letter_limits) = match policy {
            ErrorPolicy::DeadLetter(t) => {
                let limits = TopicLimits::describe(&t.servers, &t.topic);
                (Some(DeadLetterWriter::with_limits(t, limits.clone())?), limits)
            }
            _ => (None, TopicLimits::default()),
        };
        Ok(SinkErrors {
            policy: policy.clone(),
            operator: operator.to_string(),
            counters,
            dead_letters,
            dead_letter_limits,
            limits: TopicLimits::default(),
            last_log: None,
            buf: Vec::new(),
        })
    }

    /// Refuses what the sink's topic would (by default only a message
    /// over flowc's limit).
    pub fn with_limits(mut self, limits: TopicLimits) -> SinkErrors {
        self.limits = limits;
        self
    }

    /// `fail`, counted nowhere that is read: for a sink outside a task.
    pub fn fail(operator: &str) -> SinkErrors {
        SinkErrors {
            policy: ErrorPolicy::Fail,
            operator: operator.to_string(),
            counters: Arc::new(TaskCounters::new()),
            dead_letters: None,
            dead_letter_limits: TopicLimits::default(),
            limits: TopicLimits::default(),
            last_log: None,
            buf: Vec::new(),
        }
    }

    /// Whether a message of `value` (none: a tombstone), `key` and
    /// `headers` can be written (its size counts all three, the headers as
    /// Kafka counts them). If not, it is counted, sampled, then the task's
    /// failure (`Err`), or skipped or dead-lettered (`Ok(false)`: do not
    /// write it). A dead letter carries the value and the key, not the
    /// headers, and where the record was read (`origin`) when its source
    /// kept that (a job whose sink or stage dead-letters).
    pub fn admit(
        &mut self,
        value: Option<&[u8]>,
        key: Option<&[u8]>,
        headers: &[(String, Vec<u8>)],
        timestamp: Option<i64>,
        origin: Option<Origin<'_>>,
    ) -> Result<bool, ConnectorError> {
        let now = match timestamp {
            Some(_) if self.limits.bounds_timestamps() => crate::clock::now_ms(),
            _ => 0,
        };
        match self.limits.refuse(value, key, super::message_size::headers_bytes(headers), timestamp, now) {
            None => Ok(true),
            Some(error) => {
                let source = origin.map(|o| o.position());
                self.refused(&error, value, key, timestamp, source).map(|()| false)
            }
        }
    }

    fn refused(
        &mut self,
        error: &str,
        value: Option<&[u8]>,
        key: Option<&[u8]>,
        timestamp: Option<i64>,
        source: Option<RecordPosition>,
    ) -> Result<(), ConnectorError> {
        self.counters.encode_errors.fetch_add(1, Ordering::Relaxed);
        let action = match self.policy {
            ErrorPolicy::Fail => "failed",
            ErrorPolicy::Skip => "skipped",
            ErrorPolicy::DeadLetter(_) | ErrorPolicy::DeadLetterFiles(_) => "dead-lettered",
        };
        let record = sample_text(value.unwrap_or_default());
        self.counters.sample_error(ErrorSample {
            time_ms: crate::clock::now_ms(),
            class: ErrorClass::Encode,
            operator: self.operator.clone(),
            error: error.to_string(),
            position: source.clone(),
            value: record.clone(),
            action: action.to_string(),
        });
        let log = self.last_log.is_none_or(|t| t.elapsed() > Duration::from_secs(10));
        match &self.policy {
            ErrorPolicy::Fail | ErrorPolicy::DeadLetterFiles(_) => {
                return Err(ConnectorError::BadRecord(format!(
                    "{}: {error}; record {record} (`on_error: skip` or `dead_letter` would go on)",
                    self.operator
                )))
            }
            ErrorPolicy::Skip => {
                if log {
                    self.last_log = Some(Instant::now());
                    tracing::warn!(operator = %self.operator, error, "Skipping a record the sink cannot write (counted in numRecordsEncodeErrors).");
                }
            }
            ErrorPolicy::DeadLetter(_) => {
                let fit = &self.dead_letter_limits;
                let message = Message { value, key, timestamp, source: source.as_ref() };
                dead_letter_json(&mut self.buf, error, &self.operator, &message, fit);
                let Some(w) = &self.dead_letters else {
                    return Err(ConnectorError::Io(format!(
                        "{}: no dead-letter topic to write to (a bug in flowc)",
                        self.operator
                    )));
                };
                w.send(&self.buf)?;
                self.counters.dead_lettered.fetch_add(1, Ordering::Relaxed);
                if log {
                    self.last_log = Some(Instant::now());
                    tracing::warn!(operator = %self.operator, error, "Dead-lettering a record the sink cannot write (counted in numRecordsEncodeErrors and numRecordsDeadLettered).");
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

/// A message a sink could not write, as its dead letter tells it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Message<'a> {
    /// None: a tombstone.
    pub value: Option<&'a [u8]>,
    pub key: Option<&'a [u8]>,
    pub timestamp: Option<i64>,
    /// Where its record was read, when its source kept that.
    pub source: Option<&'a RecordPosition>,
}

/// Writes to `out` (cleared first) the dead letter of `message` that
/// `operator` could not write, cut to fit a message of the dead-letter
/// topic (`fit`).
pub fn dead_letter_json(out: &mut Vec<u8>, error: &str, operator: &str, message: &Message<'_>, fit: &TopicLimits) {
    let Message { value, key, .. } = *message;
    let (v_all, k_all) = (value.map_or(0, <[u8]>::len), key.map_or(0, <[u8]>::len));
    let write = |v_len: usize, k_len: usize, out: &mut Vec<u8>| {
        let cut = (value.map(|v| (v, v_len)), key.map(|k| (k, k_len)));
        write_dead_letter(out, error, operator, cut, message);
        fit.fits(out.len())
    };
    if write(v_all, k_all, out) {
        return;
    }
    let k_len = k_all.min(KEY_CUT);
    if k_len < k_all && write(v_all, k_len, out) {
        return;
    }
    let full = out.len();
    // What the dead letter takes without its value, then as much of the value as fits, in proportion.
    if !write(0, k_len, out) {
        // The error and the operator's name alone are never so long; the key goes too.
        write(0, 0, out);
        return;
    }
    let base = out.len();
    let per_byte = (full - base) as f64 / v_all.max(1) as f64;
    let room = fit.producer_max_bytes.saturating_sub(base + 1024);
    let mut v_len = ((room as f64 / per_byte.max(1.0)) as usize).min(v_all);
    // Each byte cut takes at least one byte out of the JSON (more when it was escaped or base64).
    while !write(v_len, k_len, out) && v_len > 0 {
        v_len = v_len.saturating_sub(fit.excess(out.len()).max(1));
    }
}

/// One dead letter of `message` with its value and key cut to their first
/// `n` bytes (`cut`).
type Cut<'a> = (Option<(&'a [u8], usize)>, Option<(&'a [u8], usize)>);

fn write_dead_letter(out: &mut Vec<u8>, error: &str, operator: &str, cut: Cut<'_>, message: &Message<'_>) {
    use serde_json::json;
    let mut v = json!({ "error": error, "operator": operator });
    if let Some(p) = message.source {
        v["source"] = source_json(p);
    }
    let (value, key) = cut;
    for (name, part) in [("value", value), ("key", key)] {
        let Some((bytes, n)) = part else { continue };
        let cut = &bytes[..n.min(bytes.len())];
        match std::str::from_utf8(bytes) {
            Ok(text) => {
                // At a character boundary at or below the cut.
                let mut end = cut.len();
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                v[name] = json!(&text[..end]);
            }
            Err(_) => {
                v[name] = json!(base64(cut));
                v[format!("{name}_encoding")] = json!("base64");
            }
        }
        if cut.len() < bytes.len() {
            v[format!("{name}_truncated")] = json!(true);
            v[format!("{name}_bytes")] = json!(bytes.len());
        }
    }
    if let Some(ts) = message.timestamp {
        v["timestamp"] = json!(ts);
    }
    out.clear();
    // Writing a `Value` to a Vec cannot fail.
    let _ = serde_json::to_writer(out, &v);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::message_size;
    use serde_json::Value;

    fn msg<'a>(value: Option<&'a [u8]>, key: Option<&'a [u8]>, timestamp: Option<i64>) -> Message<'a> {
        Message { value, key, timestamp, source: None }
    }

    fn parse(out: &[u8]) -> Value {
        serde_json::from_slice(out).expect("a dead letter is JSON")
    }

    #[test]
    fn a_dead_letter_that_fits_carries_the_message_whole() {
        let mut out = Vec::new();
        let any = TopicLimits::default();
        dead_letter_json(
            &mut out,
            "too big",
            "Sink: Kafka(out)",
            &msg(Some(b"{\"a\":1}"), Some(b"\xff\x00"), Some(7)),
            &any,
        );
        assert_eq!(
            parse(&out),
            serde_json::json!({"error": "too big", "operator": "Sink: Kafka(out)", "value": "{\"a\":1}",
                "key": "/wA=", "key_encoding": "base64", "timestamp": 7})
        );
        dead_letter_json(&mut out, "e", "op", &msg(None, Some(b"k"), None), &any);
        assert_eq!(parse(&out), serde_json::json!({"error": "e", "operator": "op", "key": "k"}));
    }

    #[test]
    fn a_dead_letter_over_the_limit_is_cut_to_fit_and_says_so() {
        let mut out = Vec::new();
        // Text that JSON escapes (each `"` is two bytes), with a multi-byte character at every cut.
        let value: Vec<u8> = "\"é".repeat(400_000).into_bytes();
        let key = vec![b'k'; 600_000];
        let any = TopicLimits::default();
        dead_letter_json(&mut out, "too big", "op", &msg(Some(&value), Some(&key), None), &any);
        assert!(message_size::fits(out.len()), "{} bytes", out.len());
        assert!(out.len() > message_size::MAX_MESSAGE_BYTES * 9 / 10, "cut no more than needed: {}", out.len());
        let v = parse(&out);
        assert_eq!((v["value_truncated"].as_bool(), v["value_bytes"].as_u64()), (Some(true), Some(1_200_000)));
        assert_eq!((v["key_truncated"].as_bool(), v["key_bytes"].as_u64()), (Some(true), Some(600_000)));
        assert_eq!(v["key"].as_str().map(str::len), Some(KEY_CUT));
        let kept = v["value"].as_str().expect("text");
        assert!(std::str::from_utf8(&value).unwrap().starts_with(kept));
        // Bytes that are not UTF-8: base64, cut to fit as well.
        let binary = vec![0xffu8; 2_000_000];
        dead_letter_json(&mut out, "too big", "op", &msg(Some(&binary), None, Some(1)), &any);
        assert!(message_size::fits(out.len()), "{} bytes", out.len());
        let v = parse(&out);
        assert_eq!((v["value_encoding"].as_str(), v["value_bytes"].as_u64()), (Some("base64"), Some(2_000_000)));
        // A dead-letter topic of its own, smaller limit: cut to fit that.
        let small = TopicLimits::from_config(|k| (k == "max.message.bytes").then_some("50000"));
        dead_letter_json(&mut out, "too big", "op", &msg(Some(&value), Some(&key), None), &small);
        assert!(small.fits(out.len()) && out.len() > 45_000, "{} bytes", out.len());
        assert_eq!(parse(&out)["value_bytes"].as_u64(), Some(1_200_000));
        let tiny = TopicLimits::from_config(|k| (k == "max.message.bytes").then_some("1000"));
        dead_letter_json(&mut out, "too big", "op", &msg(Some(&value), Some(&key), None), &tiny);
        assert!(tiny.fits(out.len()), "{} bytes", out.len());
    }

    #[test]
    fn a_record_read_from_a_source_that_kept_its_origin_is_named_by_it() {
        let mut origins = crate::data::Origins::default();
        origins.push_kafka("in", 1, 42, b"{\"id\":1}");
        let origin = origins.get(0);
        let counters = Arc::new(TaskCounters::new());
        let mut skip = SinkErrors::new(&ErrorPolicy::Skip, "Sink: Kafka(out)", counters.clone()).unwrap();
        let big = vec![b'x'; message_size::MAX_MESSAGE_BYTES];
        assert!(!skip.admit(Some(&big), None, &[], None, origin).unwrap());
        let at = RecordPosition::Kafka { topic: "in".into(), partition: 1, offset: 42 };
        assert_eq!(counters.error_samples().pop().expect("sampled").position, Some(at.clone()));
        let mut out = Vec::new();
        let message = Message { value: Some(b"{}"), key: None, timestamp: Some(3), source: Some(&at) };
        dead_letter_json(&mut out, "too big", "op", &message, &TopicLimits::default());
        assert_eq!(parse(&out)["source"], serde_json::json!({"topic": "in", "partition": 1, "offset": 42}));
        dead_letter_json(&mut out, "too big", "op", &msg(Some(b"{}"), None, None), &TopicLimits::default());
        assert!(parse(&out).get("source").is_none());
    }

    #[test]
    fn each_policy_counts_and_samples_and_fail_fails_naming_the_sink_and_the_record() {
        let counters = Arc::new(TaskCounters::new());
        let big = vec![b'x'; message_size::MAX_MESSAGE_BYTES];
        let mut skip = SinkErrors::new(&ErrorPolicy::Skip, "Sink: Kafka(out)", counters.clone()).unwrap();
        assert!(skip.admit(Some(b"{}"), None, &[], None, None).unwrap());
        assert!(!skip.admit(Some(&big), None, &[], None, None).unwrap());
        assert_eq!(TaskCounters::get(&counters.encode_errors), 1);
        let sample = counters.error_samples().pop().expect("sampled");
        assert_eq!((sample.class, sample.action.as_str()), (ErrorClass::Encode, "skipped"));
        assert_eq!(sample.operator, "Sink: Kafka(out)");
        assert!(sample.error.starts_with("a message of 1000000 bytes of value"), "{}", sample.error);
        let mut fail = SinkErrors::new(&ErrorPolicy::Fail, "Sink: Kafka(out)", counters.clone()).unwrap();
        let e = fail.admit(Some(&big), Some(b"k"), &[], None, None).unwrap_err().to_string();
        assert!(e.starts_with("Sink: Kafka(out): a message of 1000000 bytes of value and 1 of key is over"), "{e}");
        assert!(e.contains("record xxxx") && e.len() < 2000, "the record's first KiB: {e}");
        assert_eq!(TaskCounters::get(&counters.encode_errors), 2);
    }

    #[test]
    fn headers_count_in_a_messages_size_and_an_oversized_one_follows_the_policy() {
        let counters = Arc::new(TaskCounters::new());
        let mut skip = SinkErrors::new(&ErrorPolicy::Skip, "Sink: Kafka(out)", counters.clone()).unwrap();
        // A value that fits alone, with 2 bytes to spare: a header of
        // name "h" and one byte ("h": 1 + 1, the byte: 1 + 1) is two too many.
        let value = vec![b'x'; message_size::MAX_MESSAGE_BYTES - 64 - 2];
        assert!(skip.admit(Some(&value), None, &[], None, None).unwrap());
        let header = [("h".to_string(), b"v".to_vec())];
        assert!(!skip.admit(Some(&value), None, &header, None, None).unwrap());
        assert_eq!(TaskCounters::get(&counters.encode_errors), 1);
        let sample = counters.error_samples().pop().expect("sampled");
        assert!(
            sample.error.starts_with("a message of 999934 bytes of value, 0 of key and 4 of headers is over"),
            "{}",
            sample.error
        );
        // A message whose headers alone are over the limit.
        let huge = [("trace-id".to_string(), vec![b'v'; message_size::MAX_MESSAGE_BYTES])];
        let mut fail = SinkErrors::new(&ErrorPolicy::Fail, "Sink: Kafka(out)", counters.clone()).unwrap();
        let e = fail.admit(Some(b"{}"), None, &huge, None, None).unwrap_err().to_string();
        assert!(
            e.starts_with("Sink: Kafka(out): a message of 2 bytes of value, 0 of key and 1000012 of headers"),
            "{e}"
        );
    }
}
