//! Record formats on the wire to and from the outside world (Kafka, files):
//! `json` (one object per record, fields named as in the job's schema),
//! `csv` (one delimited line per record) and `raw` (the one string field
//! as it is). Decoders MUST NOT panic on any input: a record they cannot
//! read is an error the source handles by its `on_error` policy, and
//! appends nothing to the batch.

pub mod csv;
pub mod json;
pub mod raw;

use crate::data::Batch;
use flowc_compiler::ir::{Format, Schema};
pub use json::DecodeError;

/// A decoder of any format.
#[derive(Debug, Clone)]
pub enum Decoder {
    Json(json::JsonDecoder),
    Csv(csv::CsvDecoder),
    Raw(Vec<flowc_compiler::ir::DataType>),
}

impl Decoder {
    pub fn new(schema: &Schema, format: &Format) -> Decoder {
        match format {
            Format::Json => Decoder::Json(json::JsonDecoder::new(schema)),
            Format::Csv(c) => Decoder::Csv(csv::CsvDecoder::new(schema, *c)),
            Format::Raw => Decoder::Raw(schema.fields.iter().map(|f| f.ty).collect()),
        }
    }

    /// An empty batch of the schema.
    pub fn batch(&self, rows: usize) -> Batch {
        match self {
            Decoder::Json(d) => d.batch(rows),
            Decoder::Csv(d) => d.batch(rows),
            Decoder::Raw(types) => Batch::empty(types, rows),
        }
    }

    /// Decodes one record into `batch`; on error appends nothing.
    pub fn decode_into(&mut self, bytes: &[u8], batch: &mut Batch) -> Result<(), DecodeError> {
        match self {
            Decoder::Json(d) => d.decode_into(bytes, batch),
            Decoder::Csv(d) => d.decode_into(bytes, batch),
            Decoder::Raw(_) => raw::decode_into(bytes, batch),
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
            Format::Csv(c) => Encoder::Csv(csv::CsvEncoder::new(schema, *c)),
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
