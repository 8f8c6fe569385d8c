//! What flows between operators: records with their event time, watermarks,
//! idleness, checkpoint barriers and the end of input.

pub use flowc_compiler::ir::Value;
use serde::{Deserialize, Serialize};

/// A record's fields, in the order of its schema.
pub type Row = Vec<Value>;

/// "This record has no event time."
pub const NO_TIMESTAMP: i64 = i64::MIN;

/// A record and its event time in epoch milliseconds ([`NO_TIMESTAMP`]
/// before a watermark stage has assigned one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub timestamp: i64,
    pub row: Row,
}

impl Record {
    pub fn new(row: Row) -> Record {
        Record { timestamp: NO_TIMESTAMP, row }
    }
    pub fn with_timestamp(timestamp: i64, row: Row) -> Record {
        Record { timestamp, row }
    }
}

/// Event-time progress, in band with the records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Signal {
    /// No record with a smaller timestamp will follow on this input.
    Watermark(i64),
    /// This input has no data for now: ignore it when taking the minimum.
    Idle,
    /// This input has data again.
    Active,
}

/// One message on a channel between two subtasks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Element {
    /// A batch of records; records always travel in batches.
    Records(Vec<Record>),
    Signal(Signal),
    /// A checkpoint barrier: everything before it belongs to its checkpoint.
    Barrier(crate::checkpoint::Barrier),
    /// The sender has no more data, ever.
    EndOfInput,
}

/// The bytes a batch takes on the wire between tasks, as the data plane's
/// bincode encoding writes it (integers as varints of at most 9 bytes are
/// counted as 8): what the `read-bytes` and `write-bytes` metrics report.
pub fn wire_size(batch: &[Record]) -> u64 {
    let mut n = 0usize;
    for r in batch {
        n += 8 + 1;
        for v in &r.row {
            n += 1 + match v {
                Value::Str(s) => s.len() + 1,
                Value::Int(_) | Value::Double(_) | Value::Timestamp(_) => 8,
                Value::Bool(_) => 1,
            };
        }
    }
    n as u64
}
