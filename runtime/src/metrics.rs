//! Counters of a running subtask, updated per batch and read by the
//! TaskManager for heartbeats and by REST through the JobManager.

use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;

/// The latest bad records a subtask met, kept for `GET
/// /jobs/:jid/vertices/:vid/errors`: at most this many per subtask.
pub const ERROR_SAMPLES: usize = 20;
/// A sample's record is cut to this many bytes.
pub const SAMPLE_BYTES: usize = 1024;

#[derive(Debug, Default)]
pub struct TaskCounters {
    pub records_in: AtomicU64,
    pub records_out: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub decode_errors: AtomicU64,
    /// Records whose expression failed (division by zero, …) and were
    /// skipped or dead-lettered (`numRecordsExpressionErrors`).
    pub expression_errors: AtomicU64,
    /// Records written to a dead-letter topic (`numRecordsDeadLettered`).
    pub dead_lettered: AtomicU64,
    /// Records with an event time too far ahead (`numRecordsFromTheFuture`).
    pub from_the_future: AtomicU64,
    /// The latest bad records, newest last.
    pub error_samples: Mutex<VecDeque<ErrorSample>>,
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

    /// Keeps `sample` among the latest [`ERROR_SAMPLES`].
    pub fn sample_error(&self, sample: ErrorSample) {
        let mut q = self.error_samples.lock().unwrap_or_else(|p| p.into_inner());
        if q.len() >= ERROR_SAMPLES {
            q.pop_front();
        }
        q.push_back(sample);
    }

    /// The latest bad records, oldest first.
    pub fn error_samples(&self) -> Vec<ErrorSample> {
        self.error_samples.lock().unwrap_or_else(|p| p.into_inner()).iter().cloned().collect()
    }
}

/// What went wrong with a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorClass {
    /// A source could not decode it.
    Decode,
    /// An expression failed on it.
    Expression,
    /// Its event time was too far ahead of the clock (`max_future`).
    FromTheFuture,
}

impl ErrorClass {
    pub fn name(self) -> &'static str {
        match self {
            ErrorClass::Decode => "decode",
            ErrorClass::Expression => "expression",
            ErrorClass::FromTheFuture => "from-the-future",
        }
    }
}

/// Where a record was read from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecordPosition {
    Kafka {
        topic: String,
        partition: i32,
        offset: i64,
    },
    /// `line` is 1-based.
    File {
        file: String,
        line: u64,
    },
}

/// One bad record, for `/errors`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorSample {
    /// Wall-clock milliseconds when it was met.
    pub time_ms: i64,
    pub class: ErrorClass,
    /// The operator's name.
    pub operator: String,
    pub error: String,
    pub position: Option<RecordPosition>,
    /// The record as read (lossy UTF-8), or as JSON when decoded; at most
    /// [`SAMPLE_BYTES`] bytes.
    pub value: String,
    /// What the policy did with it: `failed`, `skipped` or `dead-lettered`.
    pub action: String,
}

/// `bytes` as text of at most [`SAMPLE_BYTES`] bytes, for a sample.
pub fn sample_text(bytes: &[u8]) -> String {
    let cut = &bytes[..bytes.len().min(SAMPLE_BYTES)];
    let mut s = String::from_utf8_lossy(cut).into_owned();
    if bytes.len() > SAMPLE_BYTES {
        s.push('…');
    }
    s
}
