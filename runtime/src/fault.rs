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
