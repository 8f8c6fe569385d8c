//! Record formats on the wire to and from the outside world (Kafka, files):
//! `json` (one object per record, fields named as in the job's schema),
//! `csv` (one delimited line per record) and `raw` (the one string field
//! as it is). Decoders MUST NOT panic on any input: a record they cannot
//! read is an error the source handles by its `on_error` policy, and
//! appends nothing to the batch.

pub mod csv;
pub mod json;
pub mod json_layout;
pub mod raw;

use crate::data::Batch;
use flowc_compiler::ir::{Format, Schema};
pub use json::DecodeError;

/// A decoder of any format.
#[derive(Debug, Clone)]
pub enum Decoder {
    Json(json::JsonDecoder),
    Csv(csv::CsvDecoder),
    /// The field types, and whether the one field is nullable.
    Raw(Vec<flowc_compiler::ir::DataType>, bool),
}

impl Decoder {
    pub fn new(schema: &Schema, format: &Format) -> Decoder {
        match format {
            Format::Json => Decoder::Json(json::JsonDecoder::new(schema)),
            Format::Csv(c) => Decoder::Csv(csv::CsvDecoder::new(schema, c.clone())),
            Format::Raw => Decoder::Raw(
                schema.fields.iter().map(|f| f.ty).collect(),
                schema.fields.first().is_some_and(|f| f.nullable),
            ),
        }
    }

    /// An empty batch of the schema.
    pub fn batch(&self, rows: usize) -> Batch {
        match self {
            Decoder::Json(d) => d.batch(rows),
            Decoder::Csv(d) => d.batch(rows),
            Decoder::Raw(types, _) => Batch::empty(types, rows),
        }
    }

    /// Decodes one record into `batch`; on error appends nothing.
    pub fn decode_into(&mut self, bytes: &[u8], batch: &mut Batch) -> Result<(), DecodeError> {
        match self {
            Decoder::Json(d) => d.decode_into(bytes, batch),
            Decoder::Csv(d) => d.decode_into(bytes, batch),
            Decoder::Raw(..) => raw::decode_into(bytes, batch),
        }
    }

    /// Decodes a Kafka message without a value (a tombstone): `raw` reads
    /// it as a null, the other formats as an empty value.
    pub fn decode_absent_into(&mut self, batch: &mut Batch) -> Result<(), DecodeError> {
        match self {
            Decoder::Raw(_, nullable) => raw::decode_absent_into(*nullable, batch),
            _ => self.decode_into(&[], batch),
        }
    }
}

/// An encoder of any format.
#[derive(Debug, Clone)]
pub enum Encoder {
    Json(json::JsonEncoder),
    Csv(csv::CsvEncoder),
    Raw,
}

impl Encoder {
    pub fn new(schema: &Schema, format: &Format) -> Encoder {
        match format {
            Format::Json => Encoder::Json(json::JsonEncoder::new(schema)),
            Format::Csv(c) => Encoder::Csv(csv::CsvEncoder::new(schema, c.clone())),
            Format::Raw => Encoder::Raw,
        }
    }

    /// Appends record `row` of `batch` (no line break) to `out`.
    pub fn encode_row(&self, batch: &Batch, row: usize, out: &mut Vec<u8>) {
        match self {
            Encoder::Json(e) => e.encode_row(batch, row, out),
            Encoder::Csv(e) => e.encode_row(batch, row, out),
            Encoder::Raw => raw::encode_row(batch, row, out),
        }
    }

    /// Whether record `row` is a Kafka message without a value (a
    /// tombstone): a null in `raw`, as Flink's raw format writes it.
    pub fn is_tombstone(&self, batch: &Batch, row: usize) -> bool {
        matches!(self, Encoder::Raw) && raw::is_null(batch, row)
    }

    /// The first line of a file, if the format has one (CSV with `header: true`).
    pub fn header(&self) -> Option<Vec<u8>> {
        match self {
            Encoder::Csv(e) if e.format().header => {
                let mut out = Vec::new();
                e.header(&mut out);
                Some(out)
            }
            _ => None,
        }
    }
}
