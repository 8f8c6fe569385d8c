//! The click-event generator's loop: whole ticks per transaction, paced to
//! wall time, written to a [`TickSink`] (Kafka in the binary, an in-memory
//! log in tests), and the choice of where event time starts.
//!
//! # Why every window holds exactly 1000 events per page, even across `kill -9`
//!
//! 1. The loop MUST put all six events of a tick into one transaction: a
//!    transaction only ends between ticks (see [`Generator::run`]).
//! 2. Readers use `isolation.level=read_committed`, so they see a union of
//!    whole committed transactions, i.e. of whole ticks.
//! 3. Transactions are committed one at a time, in tick order; an aborted
//!    transaction rewinds the loop to its first tick, which is then written
//!    again in the next transaction. So within one run the committed ticks
//!    are always a gap-free prefix `start, start+15, …, last`.
//! 4. A restarted generator uses the same `transactional.id`. Its
//!    `init_transactions` bumps the producer epoch: the old instance is
//!    fenced (it can never commit again) and its open transaction is aborted,
//!    or, if its commit had already been decided, completed, before
//!    `init_transactions` returns. Only then does the new instance read the
//!    topic, so what it reads is final.
//! 5. It takes the greatest committed timestamp over all partitions. Every
//!    tick writes every page, so the last committed tick `last` appears in
//!    every partition that holds any page and is the maximum. It continues at
//!    `last + 15` ([`choose_start`]): no tick is written twice, none is
//!    skipped, and event time never goes backwards.
//!
//! Hence the committed stream is the gap-free tick sequence from the first
//! start on, and a 15 s window — exactly 1000 ticks of the 15 ms grid — holds
//! exactly 1000 events per page. The in-memory model test at the bottom of
//! this file crashes the loop at random points to check this argument.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::clickevent::{format_timestamp, tick_events, tick_time, window_start, ClickEvent, EVENTS_PER_TICK, TICK_MS};

/// How fast ticks are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pacing {
    /// As fast as the sink takes them.
    Unpaced,
    /// This many events per second of wall time (6 events per tick).
    EventsPerSecond(u64),
}

impl Pacing {
    /// `0` means unpaced.
    pub fn from_rate(events_per_second: u64) -> Pacing {
        if events_per_second == 0 {
            Pacing::Unpaced
        } else {
            Pacing::EventsPerSecond(events_per_second)
        }
    }

    /// Wall time after the run's start at which tick `tick` (0-based) is due.
    pub fn due(self, tick: u64) -> Option<Duration> {
        match self {
            Pacing::Unpaced => None,
            Pacing::EventsPerSecond(rate) => {
                let nanos = u128::from(tick) * u128::from(EVENTS_PER_TICK) * 1_000_000_000 / u128::from(rate);
                Some(Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX)))
            }
        }
    }
}

/// What one run writes and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Event time of the first tick.
    pub start_ms: i64,
    /// Stop after this many ticks; `None` runs until stopped.
    pub ticks: Option<u64>,
    pub pacing: Pacing,
    /// A transaction is committed once it has been open this long …
    pub commit_interval: Duration,
    /// … or holds this many ticks, whichever comes first.
    pub max_ticks_per_txn: u64,
    /// Pause between retries and after an aborted transaction.
    pub retry_backoff: Duration,
}

impl Plan {
    pub fn new(start_ms: i64, ticks: Option<u64>, pacing: Pacing) -> Plan {
        Plan {
            start_ms,
            ticks,
            pacing,
            commit_interval: Duration::from_millis(100),
            max_ticks_per_txn: 1000,
            retry_backoff: Duration::from_millis(250),
        }
    }
}

/// How a sink failure may be handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkErrorKind {
    /// Try the same call again.
    Retriable,
    /// Abort the open transaction; its ticks are written again.
    Abortable,
    /// Give up: the producer is fenced or broken. A restart resumes from the
    /// topic.
    Fatal,
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct SinkError {
    pub kind: SinkErrorKind,
    pub message: String,
}

impl SinkError {
    pub fn new(kind: SinkErrorKind, message: impl Into<String>) -> SinkError {
        SinkError { kind, message: message.into() }
    }
}

/// A transactional destination for click events.
///
/// Implementations MUST make a transaction's events visible to readers all
/// at once on a successful [`TickSink::commit`] and never after an
/// [`TickSink::abort`] or a crash.
pub trait TickSink {
    fn begin(&mut self) -> Result<(), SinkError>;
    fn send(&mut self, event: &ClickEvent) -> Result<(), SinkError>;
    fn commit(&mut self) -> Result<(), SinkError>;
    fn abort(&mut self) -> Result<(), SinkError>;
}

/// What a run has committed so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    pub ticks: u64,
    pub transactions: u64,
    pub aborted_transactions: u64,
    /// Event time of the last committed tick.
    pub last_ms: Option<i64>,
}

impl Progress {
    pub fn events(&self) -> u64 {
        self.ticks * EVENTS_PER_TICK
    }
}

/// Why a run stopped early.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("sink failed (external; restarting the generator resumes from the topic): {0}")]
    Sink(#[source] SinkError),
    #[error("gave up after {attempts} attempts (external; is Kafka up?): {last}")]
    RetriesExhausted { attempts: u32, last: SinkError },
}

const MAX_ATTEMPTS: u32 = 20;
const SLEEP_SLICE: Duration = Duration::from_millis(50);

/// The tick loop. Owns the [`Plan`] and the [`Progress`] of one run.
#[derive(Debug)]
pub struct Generator {
    plan: Plan,
    progress: Progress,
}

impl Generator {
    pub fn new(plan: Plan) -> Generator {
        Generator { plan, progress: Progress::default() }
    }

    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    pub fn progress(&self) -> Progress {
        self.progress
    }

    fn finished(&self) -> bool {
        self.plan.ticks.is_some_and(|n| self.progress.ticks >= n)
    }

    /// Writes ticks until the plan's tick count is reached or `stop` is set;
    /// an open transaction is committed before returning `Ok`.
    pub fn run(&mut self, sink: &mut dyn TickSink, stop: &AtomicBool) -> Result<(), GenerateError> {
        let t0 = Instant::now();
        let mut consecutive_aborts = 0u32;
        'txn: loop {
            if self.finished() || stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            if let Some(due) = self.plan.pacing.due(self.progress.ticks) {
                if sleep_until(t0 + due, stop) {
                    return Ok(());
                }
            }
            retry(self.plan.retry_backoff, || sink.begin())?;
            let opened = Instant::now();
            let mut n = 0u64;
            loop {
                let tick = self.progress.ticks + n;
                let tick_ms = tick_time(self.plan.start_ms, tick);
                for ev in tick_events(tick_ms) {
                    if let Err(e) = sink.send(&ev) {
                        match e.kind {
                            SinkErrorKind::Fatal => return Err(GenerateError::Sink(e)),
                            SinkErrorKind::Retriable | SinkErrorKind::Abortable => {
                                tracing::warn!(tick_ms, error = %e, "Send failed; aborting the transaction and writing its ticks again.");
                                self.abort(sink, &mut consecutive_aborts, e)?;
                                continue 'txn;
                            }
                        }
                    }
                }
                n += 1;
                let tick_limit = self.plan.ticks.is_some_and(|max| tick + 1 >= max);
                if tick_limit || n >= self.plan.max_ticks_per_txn || stop.load(Ordering::Relaxed) {
                    break;
                }
                match self.plan.pacing.due(tick + 1) {
                    Some(due) => {
                        let at = t0 + due;
                        if at > opened + self.plan.commit_interval || sleep_until(at, stop) {
                            break;
                        }
                    }
                    None => {
                        if opened.elapsed() >= self.plan.commit_interval {
                            break;
                        }
                    }
                }
            }
            match retry(self.plan.retry_backoff, || sink.commit()) {
                Ok(()) => {
                    consecutive_aborts = 0;
                    self.progress.ticks += n;
                    self.progress.transactions += 1;
                    self.progress.last_ms = Some(tick_time(self.plan.start_ms, self.progress.ticks - 1));
                    tracing::trace!(ticks = n, last = ?self.progress.last_ms, "Committed.");
                }
                Err(GenerateError::Sink(e)) if e.kind == SinkErrorKind::Abortable => {
                    tracing::warn!(error = %e, "Commit failed; aborting the transaction and writing its ticks again.");
                    self.abort(sink, &mut consecutive_aborts, e)?;
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn abort(&mut self, sink: &mut dyn TickSink, consecutive: &mut u32, cause: SinkError) -> Result<(), GenerateError> {
        *consecutive += 1;
        self.progress.aborted_transactions += 1;
        if *consecutive > MAX_ATTEMPTS {
            return Err(GenerateError::RetriesExhausted { attempts: *consecutive, last: cause });
        }
        retry(self.plan.retry_backoff, || sink.abort())?;
        std::thread::sleep(self.plan.retry_backoff);
        Ok(())
    }
}

/// Calls `op` until it succeeds, retrying [`SinkErrorKind::Retriable`] errors.
fn retry(backoff: Duration, mut op: impl FnMut() -> Result<(), SinkError>) -> Result<(), GenerateError> {
    let mut attempts = 0;
    loop {
        match op() {
            Ok(()) => return Ok(()),
            Err(e) if e.kind == SinkErrorKind::Retriable => {
                attempts += 1;
                if attempts >= MAX_ATTEMPTS {
                    return Err(GenerateError::RetriesExhausted { attempts, last: e });
                }
                tracing::warn!(attempt = attempts, error = %e, "Retrying.");
                std::thread::sleep(backoff);
            }
            Err(e) => return Err(GenerateError::Sink(e)),
        }
    }
}

/// Sleeps until `deadline`; returns `true` early if `stop` is set.
fn sleep_until(deadline: Instant, stop: &AtomicBool) -> bool {
    loop {
        if stop.load(Ordering::Relaxed) {
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        std::thread::sleep((deadline - now).min(SLEEP_SLICE));
    }
}

/// Where event time starts, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartReason {
    /// Nothing in the topic: the 15 s window boundary at or before now.
    Fresh,
    /// Right after the last committed tick in the topic.
    Resumed { last_ms: i64 },
    /// `--start-time`, at or after the tick after the topic's last one.
    Requested { last_ms: Option<i64> },
    /// `--start-time --force-start`, behind the topic's last event.
    Forced { last_ms: i64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartDecision {
    pub start_ms: i64,
    pub reason: StartReason,
}

impl std::fmt::Display for StartDecision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({} ms, ", format_timestamp(self.start_ms), self.start_ms)?;
        match self.reason {
            StartReason::Fresh => write!(f, "no events in the topic yet: the 15 s window boundary at or before now)"),
            StartReason::Resumed { last_ms } => {
                write!(f, "resuming after the last committed event at {}", format_timestamp(last_ms))
                    .and_then(|_| f.write_str(")"))
            }
            StartReason::Requested { last_ms: None } => write!(f, "--start-time; the topic is empty)"),
            StartReason::Requested { last_ms: Some(l) } => {
                write!(f, "--start-time; the topic's last event is at {})", format_timestamp(l))
            }
            StartReason::Forced { last_ms } => write!(
                f,
                "--start-time --force-start, BEHIND the topic's last event at {}: windows will be over-counted)",
                format_timestamp(last_ms)
            ),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StartError {
    #[error(
        "refusing to go back in event time: --start-time {} is before {}, the tick after the last event already in the topic (user; pass --force-start to do it anyway)",
        format_timestamp(*requested_ms),
        format_timestamp(*next_ms)
    )]
    Backwards { requested_ms: i64, next_ms: i64 },
}

/// Chooses the first tick of a run from the wall clock, the last committed
/// event time in the topic, and an optional `--start-time`.
///
/// ```
/// use flowc_playground::generator::{choose_start, StartReason};
/// let now = 1_795_558_507_123; // 2026-11-24T22:15:07.123Z
/// assert_eq!(choose_start(now, None, None, false).unwrap().start_ms, 1_795_558_500_000);
/// let resumed = choose_start(now, Some(1_795_558_600_000), None, false).unwrap();
/// assert_eq!(resumed.start_ms, 1_795_558_600_015);
/// assert!(choose_start(now, Some(1_795_558_600_000), Some(now), false).is_err());
/// ```
pub fn choose_start(
    now_ms: i64,
    last_in_topic: Option<i64>,
    requested: Option<i64>,
    force: bool,
) -> Result<StartDecision, StartError> {
    let next = last_in_topic.map(|l| l + TICK_MS);
    let (start_ms, reason) = match (requested, last_in_topic, next) {
        (Some(r), Some(last_ms), Some(next_ms)) if r < next_ms => {
            if !force {
                return Err(StartError::Backwards { requested_ms: r, next_ms });
            }
            (r, StartReason::Forced { last_ms })
        }
        (Some(r), last_ms, _) => (r, StartReason::Requested { last_ms }),
        (None, Some(last_ms), Some(next_ms)) => (next_ms, StartReason::Resumed { last_ms }),
        (None, _, _) => (window_start(now_ms), StartReason::Fresh),
    };
    Ok(StartDecision { start_ms, reason })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::EventTally;
    use crate::clickevent::WINDOW_MS;

    use proptest::prelude::*;

    #[test]
    fn pacing_due_times() {
        let p = Pacing::from_rate(400);
        assert_eq!(p.due(0), Some(Duration::ZERO));
        assert_eq!(p.due(1), Some(Duration::from_millis(15)));
        assert_eq!(p.due(1000), Some(Duration::from_secs(15)));
        assert_eq!(Pacing::from_rate(4000).due(10), Some(Duration::from_millis(15)));
        assert_eq!(Pacing::from_rate(0).due(10), None);
        // 7 events/s: a tick every 6/7 s.
        assert_eq!(Pacing::from_rate(7).due(7), Some(Duration::from_secs(6)));
    }

    #[test]
    fn start_choices() {
        let now = 100 * WINDOW_MS + 7_123;
        let check = |last, req, force, expect: Result<(i64, StartReason), StartError>| {
            let got = choose_start(now, last, req, force).map(|d| (d.start_ms, d.reason));
            assert_eq!(got, expect, "last {last:?} requested {req:?} force {force}");
        };
        check(None, None, false, Ok((100 * WINDOW_MS, StartReason::Fresh)));
        check(Some(5_000), None, false, Ok((5_015, StartReason::Resumed { last_ms: 5_000 })));
        // Resuming ahead of wall time keeps going from the topic.
        let ahead = now + 3_600_000;
        check(Some(ahead), None, false, Ok((ahead + 15, StartReason::Resumed { last_ms: ahead })));
        check(Some(5_000), Some(5_015), false, Ok((5_015, StartReason::Requested { last_ms: Some(5_000) })));
        check(None, Some(42), false, Ok((42, StartReason::Requested { last_ms: None })));
        check(Some(5_000), Some(5_000), false, Err(StartError::Backwards { requested_ms: 5_000, next_ms: 5_015 }));
        check(Some(5_000), Some(0), true, Ok((0, StartReason::Forced { last_ms: 5_000 })));
    }

    /// An in-memory transactional log that can crash like `kill -9`: at the
    /// chosen operation the process "dies" (every later call fails fatally)
    /// and its open transaction is never committed.
    #[derive(Default)]
    struct MemLog {
        committed: Vec<ClickEvent>,
        pending: Vec<ClickEvent>,
        ops: u64,
        crash_at: Option<u64>,
        /// Crash right after a commit took effect, before the caller hears.
        crash_after_commit: bool,
        /// Every n-th commit fails with an abortable error.
        abortable_every: Option<u64>,
        commits: u64,
        crashed: bool,
    }

    impl MemLog {
        fn tick(&mut self) -> Result<(), SinkError> {
            self.ops += 1;
            if self.crashed || self.crash_at.is_some_and(|c| self.ops >= c) {
                self.crashed = true;
                self.pending.clear();
                return Err(SinkError::new(SinkErrorKind::Fatal, "killed"));
            }
            Ok(())
        }

        /// A restart: the open transaction is aborted (fencing), the crash
        /// is over.
        fn restart(&mut self, crash_at: Option<u64>) {
            self.pending.clear();
            self.crashed = false;
            self.ops = 0;
            self.crash_at = crash_at;
        }

        fn last_committed(&self) -> Option<i64> {
            self.committed.iter().map(|e| e.timestamp_ms).max()
        }
    }

    impl TickSink for MemLog {
        fn begin(&mut self) -> Result<(), SinkError> {
            self.tick()?;
            assert!(self.pending.is_empty(), "begin inside a transaction");
            Ok(())
        }
        fn send(&mut self, event: &ClickEvent) -> Result<(), SinkError> {
            self.tick()?;
            self.pending.push(*event);
            Ok(())
        }
        fn commit(&mut self) -> Result<(), SinkError> {
            self.tick()?;
            self.commits += 1;
            if self.abortable_every.is_some_and(|n| self.commits.is_multiple_of(n)) {
                return Err(SinkError::new(SinkErrorKind::Abortable, "injected"));
            }
            // A transaction boundary never splits a tick.
            assert!(self.pending.len().is_multiple_of(6));
            self.committed.append(&mut self.pending);
            if self.crash_after_commit && self.crash_at.is_some_and(|c| self.ops + 1 >= c) {
                self.crashed = true;
                return Err(SinkError::new(SinkErrorKind::Fatal, "killed after commit"));
            }
            Ok(())
        }
        fn abort(&mut self) -> Result<(), SinkError> {
            self.tick()?;
            self.pending.clear();
            Ok(())
        }
    }

    fn unpaced(start_ms: i64, ticks: u64, per_txn: u64) -> Plan {
        Plan {
            max_ticks_per_txn: per_txn,
            retry_backoff: Duration::ZERO,
            ..Plan::new(start_ms, Some(ticks), Pacing::Unpaced)
        }
    }

    #[test]
    fn a_run_writes_whole_ticks_and_stops_at_the_count() {
        let mut log = MemLog::default();
        let mut g = Generator::new(unpaced(0, 2_000, 7));
        g.run(&mut log, &AtomicBool::new(false)).expect("no failures");
        assert_eq!(g.progress().events(), 12_000);
        assert_eq!(g.progress().last_ms, Some(1_999 * 15));
        assert_eq!(log.committed.len(), 12_000);
        assert_eq!(log.committed, crate::clickevent::events(0, 12_000).collect::<Vec<_>>());
    }

    #[test]
    fn abortable_commit_failures_rewrite_the_same_ticks() {
        let mut log = MemLog { abortable_every: Some(3), ..MemLog::default() };
        let mut g = Generator::new(unpaced(0, 100, 10));
        g.run(&mut log, &AtomicBool::new(false)).expect("aborts are handled");
        assert_eq!(log.committed, crate::clickevent::events(0, 600).collect::<Vec<_>>());
        assert!(g.progress().aborted_transactions > 0);
    }

    #[test]
    fn stop_flag_ends_after_a_commit() {
        let mut log = MemLog::default();
        let stop = AtomicBool::new(true);
        let mut g = Generator::new(Plan::new(0, None, Pacing::from_rate(400)));
        g.run(&mut log, &stop).expect("stops cleanly");
        assert!(log.committed.is_empty() && log.pending.is_empty());
    }

    #[test]
    fn paced_run_takes_wall_time() {
        let mut log = MemLog::default();
        let t = Instant::now();
        // 20 ticks at 4000 events/s: a tick every 1.5 ms, the last due at 28.5 ms.
        let mut g = Generator::new(Plan::new(0, Some(20), Pacing::from_rate(4000)));
        g.run(&mut log, &AtomicBool::new(false)).expect("no failures");
        assert!(t.elapsed() >= Duration::from_micros(28_500));
        assert_eq!(log.committed.len(), 120);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Crash the generator at random operations (like `kill -9`),
        /// restart it the way the binary does — fence, read the last
        /// committed timestamp, resume after it — and check that the
        /// committed stream still has exactly 1000 per page per window and
        /// never goes backwards.
        #[test]
        fn kill_9_at_any_moment_keeps_exactly_1000(
            crashes in proptest::collection::vec((1u64..4_000, any::<bool>()), 0..6),
            per_txn in 1u64..60,
            offset_windows in 0i64..1_000_000,
        ) {
            let total_ticks = 3_000u64; // 3 windows
            let first_start = offset_windows * WINDOW_MS;
            let mut log = MemLog::default();
            let stop = AtomicBool::new(false);
            let mut runs = crashes.into_iter().map(Some).collect::<Vec<_>>();
            runs.push(None);
            for crash in runs {
                log.restart(crash.map(|c| c.0));
                log.crash_after_commit = crash.is_some_and(|c| c.1);
                let decision = choose_start(first_start + 7, log.last_committed(), None, false)
                    .expect("no --start-time");
                let done = log.committed.len() as u64 / 6;
                let mut g = Generator::new(unpaced(decision.start_ms, total_ticks - done, per_txn));
                let result = g.run(&mut log, &stop);
                prop_assert_eq!(result.is_err(), log.crashed);
            }
            prop_assert_eq!(log.committed.len() as u64, total_ticks * 6);
            let mut tally = EventTally::new();
            for (i, ev) in log.committed.iter().enumerate() {
                tally.push(ev.page.index() as i32 % 2, i as i64, *ev);
            }
            let summary = tally.check(false);
            prop_assert!(summary.is_ok(), "{:?}", summary);
            prop_assert_eq!(summary.map(|s| s.complete_windows).unwrap_or(0), 3);
        }
    }
}
