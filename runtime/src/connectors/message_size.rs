//! The largest message a Kafka sink writes, checked before the producer
//! (or an exactly-once sink's checkpoint) takes a record.
//!
//! librdkafka refuses a message over its `message.max.bytes` (1,000,000
//! bytes by default, which every flowc producer sets explicitly) when it is
//! handed one. For an at-least-once sink that failed the task with
//! librdkafka's bare `MessageSizeTooLarge`; for an exactly-once sink, which
//! keeps a checkpoint's records in the checkpoint and writes them when it
//! completes, the record was already in a completed checkpoint when the
//! commit failed, so every restore failed again: a job no restart could
//! mend. The sinks now check each message's size when they encode it, and
//! fail the task then — before anything is written or checkpointed — with
//! the record's size, the limit and the record. A restart meets the record
//! again (as a `filter`'s `on_error fail` does); a `select` or `filter`
//! before the sink keeps such records out.

use super::ConnectorError;
use crate::metrics::sample_text;

/// librdkafka's `message.max.bytes`, as every flowc producer sets it.
pub const MAX_MESSAGE_BYTES: usize = 1_000_000;

/// What librdkafka adds to a record's key and value at most when it
/// counts its size (a record of format 2: its length, attributes, deltas
/// and lengths as varints, 36 bytes), rounded up.
const RECORD_OVERHEAD: usize = 64;

/// `MAX_MESSAGE_BYTES` as the producer setting's text.
pub fn max_message_bytes_setting() -> String {
    MAX_MESSAGE_BYTES.to_string()
}

/// Whether a message of `value` (none: a tombstone) and `key` fits; if not,
/// the task's failure, naming `topic`, the sizes and the record (its first
/// KiB).
pub fn check(topic: &str, value: Option<&[u8]>, key: Option<&[u8]>) -> Result<(), ConnectorError> {
    let (v, k) = (value.map_or(0, <[u8]>::len), key.map_or(0, <[u8]>::len));
    let size = v + k + RECORD_OVERHEAD;
    if size <= MAX_MESSAGE_BYTES {
        return Ok(());
    }
    Err(ConnectorError::BadRecord(format!(
        "Sink: Kafka({topic}): a message of {v} bytes of value and {k} of key is over Kafka's limit of \
         {MAX_MESSAGE_BYTES} bytes (`message.max.bytes`, with {RECORD_OVERHEAD} bytes of record overhead); \
         record {}",
        sample_text(value.unwrap_or_default())
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_over_the_limit_is_refused_with_its_size_and_record() {
        let fits = vec![b'x'; MAX_MESSAGE_BYTES - RECORD_OVERHEAD - 10];
        assert!(check("t", Some(&fits), Some(b"0123456789")).is_ok());
        assert!(check("t", None, Some(b"k")).is_ok());
        let e = check("t", Some(&fits), Some(b"0123456789a")).expect_err("one byte over");
        let m = e.to_string();
        assert!(m.starts_with("Sink: Kafka(t): a message of 999926 bytes of value and 11 of key"), "{m}");
        assert!(m.contains("record xxxx"), "{m}");
        assert!(m.len() < 2000, "the record is cut to its first KiB: {} bytes", m.len());
    }
}
