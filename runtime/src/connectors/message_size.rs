//! The largest message a Kafka sink writes, checked before the producer
//! (or an exactly-once sink's checkpoint) takes a record.
//!
//! librdkafka refuses a message over its `message.max.bytes` (1,000,000
//! bytes by default, which every flowc producer sets explicitly) when it is
//! handed one. For an exactly-once sink, which keeps a checkpoint's records
//! in the checkpoint and writes them when it completes, a record refused
//! then was already in a completed checkpoint, and every restore failed
//! again: a job no restart could mend. So the sinks check each message's
//! size when they encode it, before anything is written or checkpointed,
//! and a message over the limit follows the sink's `on_error`
//! (`sink_errors`): by default it fails the task with the record's size,
//! the limit and the record.

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

/// Whether a message of `len` bytes of value and key, together, fits.
pub fn fits(len: usize) -> bool {
    fits_in(len, MAX_MESSAGE_BYTES)
}

/// Whether `len` bytes with a record's overhead fit in `limit`.
pub fn fits_in(len: usize, limit: usize) -> bool {
    len + RECORD_OVERHEAD <= limit
}

/// By how many bytes a message of `len` bytes of value and key is over
/// the limit (0: it fits).
pub fn excess(len: usize) -> usize {
    excess_over(len, MAX_MESSAGE_BYTES)
}

/// By how many bytes `len` bytes with a record's overhead are over `limit`.
pub fn excess_over(len: usize, limit: usize) -> usize {
    (len + RECORD_OVERHEAD).saturating_sub(limit)
}

/// Why a message of `value` (none: a tombstone) and `key` cannot be
/// written, if it cannot: its sizes and the limit.
pub fn over_limit(value: Option<&[u8]>, key: Option<&[u8]>) -> Option<String> {
    let (v, k) = (value.map_or(0, <[u8]>::len), key.map_or(0, <[u8]>::len));
    if fits(v + k) {
        return None;
    }
    Some(format!(
        "a message of {v} bytes of value and {k} of key is over Kafka's limit of {MAX_MESSAGE_BYTES} bytes \
         (`message.max.bytes`, with {RECORD_OVERHEAD} bytes of record overhead)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_over_the_limit_is_refused_with_its_sizes() {
        let fits = vec![b'x'; MAX_MESSAGE_BYTES - RECORD_OVERHEAD - 10];
        assert!(over_limit(Some(&fits), Some(b"0123456789")).is_none());
        assert!(over_limit(None, Some(b"k")).is_none());
        let m = over_limit(Some(&fits), Some(b"0123456789a")).expect("one byte over");
        assert!(
            m.starts_with("a message of 999926 bytes of value and 11 of key is over Kafka's limit of 1000000"),
            "{m}"
        );
    }
}
