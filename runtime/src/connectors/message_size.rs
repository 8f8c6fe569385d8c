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
//! the limit and the record. A message's size is its value's, its key's
//! and its headers' (`headers:`), each header counted as Kafka does.

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

/// The bytes a record's headers take, as Kafka counts them (record format
/// 2: librdkafka's `rd_kafka_headers_serialized_size`, Kafka's
/// `DefaultRecord.sizeInBytes`): per header its name's and its value's
/// lengths as zig-zag varints, then the name and the value.
pub fn headers_bytes(headers: &[(String, Vec<u8>)]) -> usize {
    headers
        .iter()
        .map(|(name, value)| varint_len(name.len()) + name.len() + varint_len(value.len()) + value.len())
        .sum()
}

/// The bytes of a length as a zig-zag varint (a length `n` is `2n`, seven bits a byte).
fn varint_len(n: usize) -> usize {
    let bits = u64::BITS - ((n as u64) << 1).leading_zeros();
    (bits as usize).div_ceil(7).max(1)
}

/// A message's sizes, for messages: `a message of 10 bytes of value and 0
/// of key` (`, 2 of key and 30 of headers` where it has headers).
pub fn sizes(value: usize, key: usize, headers: usize) -> String {
    match headers {
        0 => format!("a message of {value} bytes of value and {key} of key"),
        h => format!("a message of {value} bytes of value, {key} of key and {h} of headers"),
    }
}

/// Whether a message of `len` bytes of value, key and headers, together, fits.
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

/// Why a message of `value` (none: a tombstone), `key` and `headers`
/// bytes of headers ([`headers_bytes`]) cannot be written, if it cannot:
/// its sizes and the limit.
pub fn over_limit(value: Option<&[u8]>, key: Option<&[u8]>, headers: usize) -> Option<String> {
    let (v, k) = (value.map_or(0, <[u8]>::len), key.map_or(0, <[u8]>::len));
    if fits(v + k + headers) {
        return None;
    }
    Some(format!(
        "{} is over Kafka's limit of {MAX_MESSAGE_BYTES} bytes (`message.max.bytes`, with {RECORD_OVERHEAD} bytes \
         of record overhead)",
        sizes(v, k, headers)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_over_the_limit_is_refused_with_its_sizes() {
        let fits = vec![b'x'; MAX_MESSAGE_BYTES - RECORD_OVERHEAD - 10];
        assert!(over_limit(Some(&fits), Some(b"0123456789"), 0).is_none());
        assert!(over_limit(None, Some(b"k"), 0).is_none());
        let m = over_limit(Some(&fits), Some(b"0123456789a"), 0).expect("one byte over");
        assert!(
            m.starts_with("a message of 999926 bytes of value and 11 of key is over Kafka's limit of 1000000"),
            "{m}"
        );
        // Headers count: the same message with 11 bytes of them instead of a key.
        assert!(over_limit(Some(&fits), None, 10).is_none());
        let m = over_limit(Some(&fits), None, 11).expect("one byte over");
        assert!(
            m.starts_with("a message of 999926 bytes of value, 0 of key and 11 of headers is over Kafka's limit"),
            "{m}"
        );
    }

    #[test]
    fn headers_count_their_names_values_and_varint_lengths_as_kafka_does() {
        let h = |name: &str, value: usize| (name.to_string(), vec![b'v'; value]);
        assert_eq!(headers_bytes(&[]), 0);
        // "trace-id" (8 bytes, varint 16: 1 byte) and "abc" (varint 6: 1 byte).
        assert_eq!(headers_bytes(&[h("trace-id", 3)]), 1 + 8 + 1 + 3);
        assert_eq!(headers_bytes(&[h("", 0)]), 2, "an empty name and value: two varints of 0");
        // Zig-zag: 63 is 126, one byte; 64 is 128, two; 8191 two; 8192 three.
        assert_eq!(headers_bytes(&[h("a", 63)]), 1 + 1 + 1 + 63);
        assert_eq!(headers_bytes(&[h("a", 64)]), 1 + 1 + 2 + 64);
        assert_eq!(headers_bytes(&[h("a", 8191)]), 1 + 1 + 2 + 8191);
        assert_eq!(headers_bytes(&[h("a", 8192)]), 1 + 1 + 3 + 8192);
        assert_eq!(headers_bytes(&[h("a", 1 << 20)]), 1 + 1 + 4 + (1 << 20), "2^21 needs 22 bits");
        assert_eq!(headers_bytes(&[h("x", 2), h("region", 5)]), (1 + 1 + 1 + 2) + (1 + 6 + 1 + 5));
    }
}
