//! What flows between operators: batches of records (`data::Batch`) with
//! their event times, watermarks, idleness, checkpoint barriers and the end
//! of input.

use crate::data::Batch;
pub use flowc_compiler::ir::Value;
use serde::{Deserialize, Serialize};

/// "This record has no event time."
pub const NO_TIMESTAMP: i64 = i64::MIN;

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

/// One message on a channel between two subtasks. Between TaskManagers it
/// travels in the encoding of `data::wire`.
#[derive(Debug, Clone, PartialEq)]
pub enum Element {
    /// A batch of records; records always travel in batches.
    Records(Batch),
    Signal(Signal),
    /// A checkpoint barrier: everything before it belongs to its checkpoint.
    Barrier(crate::checkpoint::Barrier),
    /// The sender has no more data, ever.
    EndOfInput,
}
