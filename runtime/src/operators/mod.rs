//! The operators a task runs, one per file, all behind [`Operator`].
//!
//! A task runs a chain of operators: a batch of records passes through each
//! in turn; signals (watermarks, idleness) too. Consecutive `filter`,
//! `map` and `select` run fused as one [`calc::Calc`]. Operators do no
//! I/O (sources and sinks live in `connectors`, and the task loop (`task`)
//! feeds them), except a stage's dead letters ([`stage_errors`]).

mod aggregate_plan;
pub mod build;
pub mod calc;
pub mod dedup;
pub mod join;
mod kept_rows;
mod keyed;
pub mod running;
mod session;
mod sketches;
pub mod stage_errors;
pub mod top;
pub mod union;
pub mod unnest;
pub mod watermark;
pub mod window;
mod window_state;

use crate::data::Batch;
use crate::record::Signal;
pub use crate::state::{KeyGroupWriter, KeyedSnapshot};

/// Ends the message of a restore whose rows have another layout than the
/// job's operator: the usual cause since projection push-down.
pub const LAYOUT_HINT: &str = "; was the savepoint taken with `table.optimizer.projection-pushdown-enabled` set otherwise, or by a flowc before projection push-down? Resume with the setting as it was then";

/// Why an operator could not go on. Errors end the task and, through the
/// JobManager, the job (or restart it from a checkpoint).
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    /// Evaluating an expression failed on a record (e.g. division by zero).
    #[error("{operator}: {message}")]
    Eval { operator: String, message: String },
    /// The operator could not be set up.
    #[error("{operator}: {message}")]
    Setup { operator: String, message: String },
    /// State could not be restored.
    #[error("{operator}: cannot restore state: {message}")]
    Restore { operator: String, message: String },
}

/// One operator of a chain.
pub trait Operator: Send {
    /// Processes a batch, appending the batches it emits to `out`.
    fn process(&mut self, input: Batch, out: &mut Vec<Batch>) -> Result<(), OperatorError>;

    /// Processes a batch of logical input `input` (a join's right side is
    /// 1). Operators of one input only ever see input 0.
    fn process_input(&mut self, input: u32, batch: Batch, out: &mut Vec<Batch>) -> Result<(), OperatorError> {
        match input {
            0 => self.process(batch, out),
            other => Err(OperatorError::Setup {
                operator: String::new(),
                message: format!("records of input {other} for an operator of one input (this is a bug in flowc)"),
            }),
        }
    }

    /// An event-time signal from upstream (already the minimum over the
    /// task's inputs). Returns what to forward downstream.
    fn on_signal(&mut self, signal: Signal, _out: &mut Vec<Batch>) -> Result<Option<Signal>, OperatorError> {
        Ok(Some(signal))
    }

    /// Called about every 200 ms with the wall clock (epoch ms): for
    /// processing-time windows and for watermark generation and idleness.
    fn on_timer(&mut self, _now_ms: i64, _out: &mut Vec<Batch>) -> Result<Option<Signal>, OperatorError> {
        Ok(None)
    }

    /// A window operator's windows waiting to fire (for the
    /// watermark-lineage view); `None` for other operators.
    fn pending_windows(&self) -> Option<crate::metrics::PendingWindows> {
        None
    }

    /// No more input, ever: emit everything still held (e.g. fire windows).
    fn on_end_of_input(&mut self, _out: &mut Vec<Batch>) -> Result<(), OperatorError> {
        Ok(())
    }

    /// The records the operator sent to its late output (a window's `late:
    /// name`) since the last call; the task sends them over its late edges.
    fn take_late(&mut self) -> Vec<Batch> {
        Vec::new()
    }

    /// Everything the operator wrote outside the stream (a stage's dead
    /// letters) is delivered when this returns: called before a
    /// checkpoint's state is taken, and at the end of input.
    fn flush(&mut self) -> Result<(), OperatorError> {
        Ok(())
    }

    /// The operator's keyed state, collected in memory. Stateless: empty.
    /// Operators that can hold much state implement [`Operator::snapshot_into`]
    /// and this as `KeyedSnapshot::collect(|out| self.snapshot_into(out))`.
    fn snapshot(&self) -> KeyedSnapshot {
        KeyedSnapshot::default()
    }

    /// The operator's keyed state for a checkpoint, handed to `out` one key
    /// group at a time in ascending order, so that no more than one key
    /// group's bytes exist beside the live state. The default forwards
    /// [`Operator::snapshot`].
    fn snapshot_into(&self, out: &mut dyn KeyGroupWriter) -> std::io::Result<()> {
        for (kg, bytes) in self.snapshot().key_groups {
            out.key_group(kg, &bytes)?;
        }
        Ok(())
    }

    /// Restores the key groups this subtask owns (already filtered).
    fn restore(&mut self, _state: KeyedSnapshot) -> Result<(), OperatorError> {
        Ok(())
    }
}
