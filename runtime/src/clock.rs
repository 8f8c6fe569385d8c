//! Time as the runtime reads it. The wall clock (epoch milliseconds) is what
//! is shown and stored; [`Now`] pairs it with a monotonic instant for delays
//! and timeouts. A shell reads [`Now`] once and passes it into the state
//! machines, which never read a clock themselves, so that tests can drive
//! them through hours in microseconds.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Wall-clock milliseconds since the epoch.
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// One moment, read once: the monotonic instant (for delays and timeouts)
/// and the wall clock in epoch milliseconds (for what is shown and stored).
#[derive(Debug, Clone, Copy)]
pub struct Now {
    pub instant: Instant,
    pub ms: i64,
}

impl Now {
    /// The current moment.
    pub fn read() -> Now {
        Now { instant: Instant::now(), ms: now_ms() }
    }

    /// The moment `d` after this one.
    pub fn after(self, d: Duration) -> Now {
        Now { instant: self.instant + d, ms: self.ms.saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_moves_both_clocks() {
        let start = Now::read();
        let later = start.after(Duration::from_millis(1500));
        assert_eq!(later.ms - start.ms, 1500);
        assert_eq!(later.instant - start.instant, Duration::from_millis(1500));
    }
}
