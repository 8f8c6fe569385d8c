//! `format: raw`: a record is its one string field, as it is — a Kafka
//! message's value or a line of a file (Flink's `raw` format). Decoding
//! checks only that the bytes are UTF-8.

use super::json::DecodeError;
use crate::data::{Batch, Data};
use crate::record::NO_TIMESTAMP;

/// Appends `bytes` as the one string field of a record to `batch`.
pub fn decode_into(bytes: &[u8], batch: &mut Batch) -> Result<(), DecodeError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| DecodeError(format!("not UTF-8 text: invalid byte at {}", e.valid_up_to())))?;
    match batch.columns.as_mut_slice() {
        [c] => match &mut c.data {
            Data::Str(s) => s.push(text),
            _ => return Err(DecodeError("internal error: a raw record is one string field (a bug in flowc)".into())),
        },
        _ => return Err(DecodeError("internal error: a raw record is one string field (a bug in flowc)".into())),
    }
    batch.timestamps.push(NO_TIMESTAMP);
    Ok(())
}

/// Appends record `row`'s one string field to `out`.
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
    }
}
