//! The logical plan: the job's operators and the streams between them, all
//! checked and typed, before parallelism and chaining are decided.

use crate::ir::{ErrorPolicy, OperatorKind, Schema, UdfLibrary};
use flowc_dsl::Span;
use serde::{Deserialize, Serialize};

/// Job-wide settings, from `set` statements and the command line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSettings {
    /// `execution.checkpointing.interval`; `None` when checkpointing is off.
    pub checkpoint_interval_ms: Option<u64>,
    /// `pipeline.operator-chaining`
    pub chaining: bool,
    /// `pipeline.max-parallelism`: the number of key groups.
    pub max_parallelism: u32,
    /// `parallelism.default`, unless the command line gives `-p`.
    pub parallelism: u32,
    /// `table.optimizer.projection-pushdown-enabled`: the operators that
    /// keep rows in state get only the columns read after them
    /// ([`crate::prune`]).
    #[serde(default = "on")]
    pub projection_pushdown: bool,
}

fn on() -> bool {
    true
}

impl Default for JobSettings {
    fn default() -> JobSettings {
        JobSettings {
            checkpoint_interval_ms: None,
            chaining: true,
            max_parallelism: 128,
            parallelism: 1,
            projection_pushdown: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct LogicalPlan {
    pub name: String,
    pub settings: JobSettings,
    pub operators: Vec<LogicalOperator>,
    pub edges: Vec<LogicalEdge>,
    /// The Rust files imported with `use rust`, in the order written.
    pub udfs: Vec<UdfLibrary>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LogicalOperator {
    /// The stable identity of the operator's state, if the job gives one.
    pub uid: Option<String>,
    /// The display name (REST, web UI, logs).
    pub name: String,
    /// An explicit `parallelism`, else the job's.
    pub parallelism: Option<u32>,
    pub kind: OperatorKind,
    /// The schema of the records it reads (none for a source).
    pub input: Option<Schema>,
    pub output: Schema,
    /// Where the operator is written, for messages.
    pub span: Span,
    /// What a `filter`, `map` or `select` does with a record its
    /// expressions fail on (`on_error`); `None` fails the task.
    pub on_error: Option<ErrorPolicy>,
}

/// How records move from one operator to the next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Partitioning {
    /// Keep the subtask: record i of subtask k goes to subtask k.
    Forward,
    /// By the hash of these fields' values, through key groups.
    Hash { key: Vec<usize> },
    /// After an upsert stream keyed by these fields: FORWARD (and chained)
    /// where the parallelisms match, else by the hash of the key instead
    /// of REBALANCE, so that each key's changes stay in order.
    KeyedForward { key: Vec<usize> },
    /// By the hash of each record's timestamp and these fields, through
    /// key groups: the rows of one window (`end - 1`) and partition meet
    /// in one subtask (`top`, `top … per k`).
    Window { key: Vec<usize> },
}

#[derive(Debug, Clone, PartialEq)]
pub struct LogicalEdge {
    pub from: usize,
    pub to: usize,
    pub partitioning: Partitioning,
    /// Which input of `to` it feeds: 0, or 1 for a join's right side.
    pub input: u32,
}
