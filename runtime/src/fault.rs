//! Fault injection for the end-to-end tests, compiled only with the
//! `fault-injection` cargo feature. The feature is on when the workspace's
//! tests are built (the root package enables it through a dev-dependency),
//! and off in `cargo build` and the release binary: there every hook is an
//! empty inline function and no environment variable is read.
//!
//! Hooks, each named for the place it fires:
//! - [`before_commit`]: with `FLOWC_TEST_CRASH_BEFORE_COMMIT=N`, the process
//!   aborts instead of an exactly-once sink's N-th commit (a crash after a
//!   checkpoint completed and before its output is committed).
//! - [`slow_sink`]: with `FLOWC_TEST_SLOW_SINK_US_PER_RECORD=N`, every sink
//!   takes N µs per record it writes (a slow sink, for back pressure).
//! - [`slow_state_write`]: with `FLOWC_TEST_SLOW_STATE_WRITE=<subtask>:<ms>`,
//!   every subtask with that index waits that long before it writes its
//!   state file (a late writer, for the tests of checkpoint cleanup).
//! - [`slow_restore`]: with `FLOWC_TEST_SLOW_RESTORE_MS=N`, every task that
//!   restores a checkpoint or savepoint stays INITIALIZING N ms before it
//!   does (a slow deployment, for a JobManager killed while a job deploys).

/// The environment variable that arms [`before_commit`].
#[cfg(feature = "fault-injection")]
pub const CRASH_BEFORE_COMMIT_ENV: &str = "FLOWC_TEST_CRASH_BEFORE_COMMIT";

/// An exactly-once sink is about to make its `commit`-th commit (counted
/// from 1 per sink), for checkpoint `checkpoint_id`.
#[cfg(feature = "fault-injection")]
pub fn before_commit(commit: u64, checkpoint_id: u64) {
    static ARMED: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    let armed = ARMED.get_or_init(|| std::env::var(CRASH_BEFORE_COMMIT_ENV).ok().and_then(|v| v.parse().ok()));
    if *armed == Some(commit) {
        tracing::error!(checkpoint_id, "{CRASH_BEFORE_COMMIT_ENV}: aborting the process before the commit.");
        std::process::abort();
    }
}

/// Without the `fault-injection` feature: nothing.
#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub fn before_commit(_commit: u64, _checkpoint_id: u64) {}

/// The environment variable that arms [`slow_sink`].
#[cfg(feature = "fault-injection")]
pub const SLOW_SINK_ENV: &str = "FLOWC_TEST_SLOW_SINK_US_PER_RECORD";

/// A sink is about to write `records` records: with
/// `FLOWC_TEST_SLOW_SINK_US_PER_RECORD=N` it first works for N µs per
/// record (a sleep: the task is neither idle nor back-pressured then, as a
/// sink waiting on a slow external system), for the back-pressure metrics
/// tests.
#[cfg(feature = "fault-injection")]
pub fn slow_sink(records: usize) {
    static ARMED: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    let armed = ARMED.get_or_init(|| std::env::var(SLOW_SINK_ENV).ok().and_then(|v| v.parse().ok()));
    if let Some(us) = *armed {
        std::thread::sleep(std::time::Duration::from_micros(us.saturating_mul(records as u64)));
    }
}

/// Without the `fault-injection` feature: nothing.
#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub fn slow_sink(_records: usize) {}

/// The environment variable that arms [`slow_state_write`].
#[cfg(feature = "fault-injection")]
pub const SLOW_STATE_WRITE_ENV: &str = "FLOWC_TEST_SLOW_STATE_WRITE";

/// Subtask `subtask` is about to write its state file for a checkpoint:
/// with `FLOWC_TEST_SLOW_STATE_WRITE=<subtask>:<ms>` the subtasks of that
/// index first wait `ms` milliseconds. Read once per process.
#[cfg(feature = "fault-injection")]
pub fn slow_state_write(subtask: u32) {
    static ARMED: std::sync::OnceLock<Option<(u32, u64)>> = std::sync::OnceLock::new();
    let armed = ARMED.get_or_init(|| {
        let v = std::env::var(SLOW_STATE_WRITE_ENV).ok()?;
        let (s, ms) = v.split_once(':')?;
        Some((s.trim().parse().ok()?, ms.trim().parse().ok()?))
    });
    if let Some((_, ms)) = armed.filter(|(s, _)| *s == subtask) {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
}

/// Without the `fault-injection` feature: nothing.
#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub fn slow_state_write(_subtask: u32) {}

/// The environment variable that arms [`slow_restore`].
#[cfg(feature = "fault-injection")]
pub const SLOW_RESTORE_ENV: &str = "FLOWC_TEST_SLOW_RESTORE_MS";

/// A task has reported INITIALIZING and is about to restore its state
/// (`restoring`): with `FLOWC_TEST_SLOW_RESTORE_MS=N` it first waits N ms.
/// Read once per process.
#[cfg(feature = "fault-injection")]
pub fn slow_restore(restoring: bool) {
    static ARMED: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    let armed = ARMED.get_or_init(|| std::env::var(SLOW_RESTORE_ENV).ok().and_then(|v| v.trim().parse().ok()));
    if let (true, Some(ms)) = (restoring, *armed) {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
}

/// Without the `fault-injection` feature: nothing.
#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub fn slow_restore(_restoring: bool) {}
