//! Counters of a running subtask, updated per batch or per wait by the task
//! loop and read by the TaskManager for heartbeats (and so by REST through
//! the JobManager); the rates Flink reports per second, derived from them
//! over a short window; what a task knows of its watermark's lineage; and
//! the latest bad records it met.
//!
//! Time accounting, as Flink's: a task is *idle* while it waits for input,
//! *back-pressured* while it waits for room in a full output queue, and
//! *busy* the rest of the time. The task loop reads the clock once per wait
//! (never per record) and adds the wait's length here.

use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The latest bad records a subtask met, kept for `GET
/// /jobs/:jid/vertices/:vid/errors`: at most this many per subtask.
pub const ERROR_SAMPLES: usize = 20;
/// A sample's record is cut to this many bytes.
pub const SAMPLE_BYTES: usize = 1024;

#[derive(Debug)]
pub struct TaskCounters {
    pub records_in: AtomicU64,
    pub records_out: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub decode_errors: AtomicU64,
    /// Records an expression of a stage failed on (division by zero, …),
    /// whatever its `on_error` did with them (`numRecordsExpressionErrors`).
    pub expression_errors: AtomicU64,
    /// Records a sink could not write (a Kafka message over its limit),
    /// whatever its `on_error` did with them (`numRecordsEncodeErrors`).
    pub encode_errors: AtomicU64,
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
    /// The watermark the task last sent on; `i64::MIN` when none.
    pub output_watermark: AtomicI64,
    /// Nanoseconds spent waiting for input.
    pub idle_ns: AtomicU64,
    /// Nanoseconds spent waiting for room in an output queue.
    pub backpressured_ns: AtomicU64,
    /// Input and output queue fill, in thousandths of their capacity.
    pub in_pool_permille: AtomicU64,
    pub out_pool_permille: AtomicU64,
    /// The last late record's timestamp and the watermark it met.
    pub last_late_ts: AtomicI64,
    pub last_late_watermark: AtomicI64,
    /// When the task was made: wall time is measured from here.
    pub started: Instant,
    /// Inputs, source partitions and pending windows, refreshed by the task
    /// every tick (200 ms), for the watermark-lineage view.
    pub lineage: Mutex<Lineage>,
}

impl Default for TaskCounters {
    fn default() -> TaskCounters {
        TaskCounters::new()
    }
}

impl TaskCounters {
    pub fn new() -> TaskCounters {
        TaskCounters {
            records_in: AtomicU64::new(0),
            records_out: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            decode_errors: AtomicU64::new(0),
            expression_errors: AtomicU64::new(0),
            encode_errors: AtomicU64::new(0),
            dead_lettered: AtomicU64::new(0),
            from_the_future: AtomicU64::new(0),
            error_samples: Mutex::new(VecDeque::new()),
            late_records: AtomicU64::new(0),
            late_side_output: AtomicU64::new(0),
            watermark: AtomicI64::new(i64::MIN),
            output_watermark: AtomicI64::new(i64::MIN),
            idle_ns: AtomicU64::new(0),
            backpressured_ns: AtomicU64::new(0),
            in_pool_permille: AtomicU64::new(0),
            out_pool_permille: AtomicU64::new(0),
            last_late_ts: AtomicI64::new(i64::MIN),
            last_late_watermark: AtomicI64::new(i64::MIN),
            started: Instant::now(),
            lineage: Mutex::new(Lineage::default()),
        }
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

    /// Remembers the last late record's timestamp `ts` and the watermark
    /// it met, for the watermark-lineage view.
    pub fn note_late(&self, ts: i64, watermark: i64) {
        self.last_late_ts.store(ts, Ordering::Relaxed);
        self.last_late_watermark.store(watermark, Ordering::Relaxed);
    }

    /// Adds a wait's length to `counter` (`idle_ns` or `backpressured_ns`).
    pub fn add_wait(counter: &AtomicU64, since: Instant) {
        counter.fetch_add(since.elapsed().as_nanos() as u64, Ordering::Relaxed);
    }
    /// Replaces the lineage snapshot (a poisoned lock is taken over: the
    /// snapshot is plain data, replaced whole).
    pub fn set_lineage(&self, f: impl FnOnce(&mut Lineage)) {
        let mut g = self.lineage.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut g);
    }
    pub fn lineage(&self) -> Lineage {
        self.lineage.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// What a task knows of where its watermark comes from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Lineage {
    /// Each input channel: the upstream subtask and what it last sent.
    pub inputs: Vec<InputLineage>,
    /// A Kafka source task's partitions.
    pub partitions: Vec<PartitionLineage>,
    /// A window operator's pending windows.
    pub windows: Option<PendingWindows>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputLineage {
    /// The upstream subtask (vertex index, subtask index).
    pub vertex: u32,
    pub subtask: u32,
    /// Its watermark; `None` before the first.
    pub watermark: Option<i64>,
    pub idle: bool,
    pub ended: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartitionLineage {
    pub topic: String,
    pub partition: i32,
    /// The partition's own watermark; `None` before its first record.
    pub watermark: Option<i64>,
    /// Excluded from the source's watermark (no record for the idleness timeout).
    pub idle: bool,
    /// Milliseconds since its last record (since the start if none came).
    pub idle_ms: u64,
    /// Records between the next to read and the partition's end; `None` if unknown.
    pub lag: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PendingWindows {
    pub count: u64,
    pub earliest_end: Option<i64>,
}

/// One reading of a task's counters, for rates.
#[derive(Debug, Clone, Copy, Default)]
pub struct Reading {
    pub records_in: u64,
    pub records_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub idle_ns: u64,
    pub backpressured_ns: u64,
}

impl Reading {
    pub fn of(c: &TaskCounters) -> Reading {
        Reading {
            records_in: TaskCounters::get(&c.records_in),
            records_out: TaskCounters::get(&c.records_out),
            bytes_in: TaskCounters::get(&c.bytes_in),
            bytes_out: TaskCounters::get(&c.bytes_out),
            idle_ns: TaskCounters::get(&c.idle_ns),
            backpressured_ns: TaskCounters::get(&c.backpressured_ns),
        }
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
    /// A sink could not write it (a Kafka message over its limit).
    Encode,
}

impl ErrorClass {
    pub fn name(self) -> &'static str {
        match self {
            ErrorClass::Decode => "decode",
            ErrorClass::Expression => "expression",
            ErrorClass::FromTheFuture => "from-the-future",
            ErrorClass::Encode => "encode",
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

/// Per-second rates over the last few seconds, as Flink's `…PerSecond`
/// metrics and its busy / idle / back-pressured time per second.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Rates {
    pub records_in: f64,
    pub records_out: f64,
    pub bytes_in: f64,
    pub bytes_out: f64,
    pub busy_ms: f64,
    pub idle_ms: f64,
    pub backpressured_ms: f64,
}

/// How far back rates look (Flink's meters use a few seconds as well).
pub const RATE_WINDOW: Duration = Duration::from_secs(5);

/// The readings of one task over the last [`RATE_WINDOW`].
#[derive(Debug, Default)]
pub struct RateWindow {
    samples: VecDeque<(Instant, Reading)>,
}

impl RateWindow {
    /// Adds a reading taken at `at` and gives the rates since the oldest
    /// reading in the window (zero for the first).
    pub fn push(&mut self, at: Instant, r: Reading) -> Rates {
        while self.samples.len() > 1 && self.samples.get(1).is_some_and(|(t, _)| at.duration_since(*t) >= RATE_WINDOW) {
            self.samples.pop_front();
        }
        let rates = match self.samples.front() {
            Some((t0, r0)) if at > *t0 => rates_between(r0, &r, at.duration_since(*t0)),
            _ => Rates::default(),
        };
        self.samples.push_back((at, r));
        rates
    }
}

fn rates_between(a: &Reading, b: &Reading, dt: Duration) -> Rates {
    let secs = dt.as_secs_f64();
    let per_s = |x: u64, y: u64| y.saturating_sub(x) as f64 / secs;
    let wall_ms = 1000.0;
    let idle_ms = (per_s(a.idle_ns, b.idle_ns) / 1e6).min(wall_ms);
    let backpressured_ms = (per_s(a.backpressured_ns, b.backpressured_ns) / 1e6).min(wall_ms - idle_ms);
    Rates {
        records_in: per_s(a.records_in, b.records_in),
        records_out: per_s(a.records_out, b.records_out),
        bytes_in: per_s(a.bytes_in, b.bytes_in),
        bytes_out: per_s(a.bytes_out, b.bytes_out),
        busy_ms: (wall_ms - idle_ms - backpressured_ms).max(0.0),
        idle_ms,
        backpressured_ms,
    }
}

/// Flink's back-pressure level of a back-pressured ratio: up to 10 % OK, up
/// to 50 % LOW, above HIGH.
pub fn backpressure_level(ratio: f64) -> &'static str {
    if ratio <= 0.10 {
        "ok"
    } else if ratio <= 0.5 {
        "low"
    } else {
        "high"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_split_a_second_into_busy_idle_and_back_pressured() {
        let mut w = RateWindow::default();
        let t0 = Instant::now();
        assert_eq!(w.push(t0, Reading::default()), Rates::default());
        let r =
            Reading { records_in: 2000, idle_ns: 500_000_000, backpressured_ns: 1_000_000_000, ..Reading::default() };
        let rates = w.push(t0 + Duration::from_secs(2), r);
        assert_eq!(rates.records_in, 1000.0);
        assert_eq!(rates.idle_ms, 250.0);
        assert_eq!(rates.backpressured_ms, 500.0);
        assert_eq!(rates.busy_ms, 250.0);
    }

    #[test]
    fn old_readings_leave_the_window() {
        let mut w = RateWindow::default();
        let t0 = Instant::now();
        w.push(t0, Reading::default());
        for s in 1..=10u64 {
            let rates =
                w.push(t0 + Duration::from_secs(s), Reading { idle_ns: s * 1_000_000_000, ..Reading::default() });
            assert_eq!(rates.idle_ms, 1000.0, "second {s}");
        }
        assert!(w.samples.len() <= 6, "{} readings kept", w.samples.len());
    }

    #[test]
    fn a_wait_longer_than_the_window_is_capped_at_a_second_per_second() {
        let mut w = RateWindow::default();
        let t0 = Instant::now();
        w.push(t0, Reading::default());
        let rates =
            w.push(t0 + Duration::from_secs(1), Reading { backpressured_ns: 1_200_000_000, ..Reading::default() });
        assert_eq!((rates.backpressured_ms, rates.busy_ms, rates.idle_ms), (1000.0, 0.0, 0.0));
    }

    #[test]
    fn levels_are_flinks() {
        assert_eq!(backpressure_level(0.05), "ok");
        assert_eq!(backpressure_level(0.3), "low");
        assert_eq!(backpressure_level(0.9), "high");
    }
}
