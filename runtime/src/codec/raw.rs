//! `format: raw`: a record is its one string field, as it is — a Kafka
//! message's value or a line of a file (Flink's `raw` format). Decoding
//! checks only that the bytes are UTF-8. A null (`string?`) is a Kafka
//! message without a value, a tombstone, both ways, as Flink's raw format
//! writes and reads it; a file has no tombstones and writes it empty.

use super::json::DecodeError;
use crate::data::{Batch, Data};
use crate::record::NO_TIMESTAMP;

/// Appends `bytes` as the one string field of a record to `batch`.
pub fn decode_into(bytes: &[u8], batch: &mut Batch) -> Result<(), DecodeError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| DecodeError(format!("not UTF-8 text: invalid byte at {}", e.valid_up_to())))?;
    match batch.columns.as_mut_slice() {
        [c] => match &mut c.data {
            Data::Str(s) => {
                s.push(text);
                // Present, once a null (a tombstone) gave the column a bitmap.
                c.mark_appended_valid();
            }
            _ => return Err(DecodeError("internal error: a raw record is one string field (a bug in flowc)".into())),
        },
        _ => return Err(DecodeError("internal error: a raw record is one string field (a bug in flowc)".into())),
    }
    batch.timestamps.push(NO_TIMESTAMP);
    Ok(())
}

/// Appends a message without a value (a tombstone) to `batch`: a null if
/// the field is `nullable`, else an error (the source's `on_error`).
pub fn decode_absent_into(nullable: bool, batch: &mut Batch) -> Result<(), DecodeError> {
    match batch.columns.as_mut_slice() {
        [c] if nullable => c.push_null(),
        [_] => {
            return Err(DecodeError(
                "a message without a value (a tombstone) for a field that is not nullable (declare it `string?`)"
                    .into(),
            ))
        }
        _ => return Err(DecodeError("internal error: a raw record is one string field (a bug in flowc)".into())),
    }
    batch.timestamps.push(NO_TIMESTAMP);
    Ok(())
}

/// Whether record `row`'s one string field is null: a Kafka sink writes
/// it as a tombstone.
pub fn is_null(batch: &Batch, row: usize) -> bool {
    batch.columns.first().is_some_and(|c| !c.is_valid(row))
}

/// Appends record `row`'s one string field to `out` (nothing for a null).
pub fn encode_row(batch: &Batch, row: usize, out: &mut Vec<u8>) {
    if let Some(Data::Str(s)) = batch.columns.first().map(|c| &c.data) {
        out.extend_from_slice(s.get(row).as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Value;
    use flowc_compiler::ir::DataType;

    #[test]
    fn a_record_is_its_bytes() {
        let mut b = Batch::empty(&[DataType::String], 2);
        decode_into(b"{not json, \"any\" text}", &mut b).unwrap();
        assert!(decode_into(b"\xff", &mut b).is_err());
        assert_eq!(b.len(), 1);
        assert_eq!(b.row(0), vec![Value::Str("{not json, \"any\" text}".into())]);
        let mut out = Vec::new();
        encode_row(&b, 0, &mut out);
        assert_eq!(out, b"{not json, \"any\" text}");
        assert!(!is_null(&b, 0));
    }

    #[test]
    fn a_message_without_a_value_is_a_null() {
        let mut b = Batch::empty(&[DataType::String], 2);
        decode_into(b"", &mut b).unwrap();
        decode_absent_into(true, &mut b).unwrap();
        assert_eq!(b.row(0), vec![Value::Str(String::new())]);
        assert_eq!(b.row(1), vec![Value::Null]);
        assert!(!is_null(&b, 0), "an empty value is an empty string, not a null");
        assert!(is_null(&b, 1));
        decode_into(b"after", &mut b).unwrap();
        assert!(!is_null(&b, 2), "a value after a null is present");
        assert_eq!(b.row(2), vec![Value::Str("after".into())]);
        let err = decode_absent_into(false, &mut b).unwrap_err();
        assert!(err.0.contains("not nullable"), "{}", err.0);
        assert_eq!(b.len(), 3, "an error appends nothing");
    }
}
