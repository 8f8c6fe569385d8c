//! Counters of a running subtask, updated per batch and read by the
//! TaskManager for heartbeats and by REST through the JobManager.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct TaskCounters {
    pub records_in: AtomicU64,
    pub records_out: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub decode_errors: AtomicU64,
    pub late_records: AtomicU64,
    /// Late records sent to a window's late output (`late: name`).
    pub late_side_output: AtomicU64,
    /// The current input watermark; `i64::MIN` when there is none.
    pub watermark: AtomicI64,
}

impl TaskCounters {
    pub fn new() -> TaskCounters {
        TaskCounters { watermark: AtomicI64::new(i64::MIN), ..TaskCounters::default() }
    }
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
