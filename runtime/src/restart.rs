//! Restart strategies: whether and when a failed job restarts from its
//! latest checkpoint. As in Flink 2.x: `restart-strategy.type` when it is
//! configured; otherwise `exponential-delay` (1 s growing ×1.5 to 1 min,
//! ±10 % jitter, starting over after an hour without failures, unlimited
//! attempts) for a job with checkpointing, and `none` (the job fails) for
//! one without.
//!
//! A [`RestartStrategy`] is the configuration; a [`RestartTracker`] is one
//! job's memory of its failures. The tracker is sans-I/O: the caller passes
//! the clock and the random number for the jitter, so that tests can drive
//! it through hours of failures in microseconds.

use crate::config::{Config, ConfigError};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq)]
pub enum RestartStrategy {
    None,
    /// At most `attempts` restarts in the job's life, `delay` apart.
    FixedDelay {
        attempts: u64,
        delay: Duration,
    },
    /// At most `max_failures` restarts within any `interval`, `delay` apart.
    FailureRate {
        max_failures: u64,
        interval: Duration,
        delay: Duration,
    },
    /// Delays from `initial`, ×`multiplier` per failure up to `max`, ±`jitter`
    /// of the delay; after `reset_threshold` without a failure the delay and
    /// the attempt count start over; more than `attempts` restarts since then
    /// fail the job.
    ExponentialDelay {
        initial: Duration,
        max: Duration,
        multiplier: f64,
        jitter: f64,
        reset_threshold: Duration,
        attempts: u64,
    },
}

fn millis(config: &Config, key: &str) -> Result<Duration, ConfigError> {
    Ok(Duration::from_millis(config.get_u64(key)?))
}

fn bad(key: &str, value: f64, expected: &'static str) -> ConfigError {
    ConfigError::BadValue { key: key.into(), value: value.to_string(), expected }
}

impl RestartStrategy {
    pub fn from_config(config: &Config, checkpointing: bool) -> Result<RestartStrategy, ConfigError> {
        let configured = config.get("restart-strategy.type");
        let ty = if !configured.trim().is_empty() {
            configured
        } else if checkpointing {
            "exponential-delay".to_string()
        } else {
            "none".to_string()
        };
        Ok(match ty.trim().to_ascii_lowercase().as_str() {
            "none" | "off" | "disable" => RestartStrategy::None,
            "fixed-delay" | "fixeddelay" => RestartStrategy::FixedDelay {
                attempts: config.get_u64("restart-strategy.fixed-delay.attempts")?,
                delay: millis(config, "restart-strategy.fixed-delay.delay")?,
            },
            "failure-rate" | "failurerate" => {
                let key = "restart-strategy.failure-rate.max-failures-per-interval";
                let max_failures = config.get_u64(key)?;
                if max_failures == 0 {
                    return Err(bad(key, 0.0, "at least 1"));
                }
                let key = "restart-strategy.failure-rate.failure-rate-interval";
                let interval = millis(config, key)?;
                if interval.is_zero() {
                    return Err(bad(key, 0.0, "more than 0 ms"));
                }
                RestartStrategy::FailureRate {
                    max_failures,
                    interval,
                    delay: millis(config, "restart-strategy.failure-rate.delay")?,
                }
            }
            "exponential-delay" | "exponentialdelay" => {
                let p = "restart-strategy.exponential-delay";
                let initial = millis(config, &format!("{p}.initial-backoff"))?;
                let max = millis(config, &format!("{p}.max-backoff"))?;
                if initial.is_zero() || max < initial {
                    return Err(ConfigError::BadValue {
                        key: format!("{p}.max-backoff"),
                        value: format!("{} ms (initial-backoff {} ms)", max.as_millis(), initial.as_millis()),
                        expected: "initial-backoff at least 1 ms and max-backoff at least initial-backoff",
                    });
                }
                let key = format!("{p}.backoff-multiplier");
                let multiplier = config.get_f64(&key)?;
                if multiplier.is_nan() || multiplier <= 1.0 {
                    return Err(bad(&key, multiplier, "a number greater than 1"));
                }
                let key = format!("{p}.jitter-factor");
                let jitter = config.get_f64(&key)?;
                if !(0.0..=1.0).contains(&jitter) {
                    return Err(bad(&key, jitter, "a number from 0 to 1"));
                }
                let attempts = config.get_u64(&format!("{p}.attempts-before-reset-backoff"))?;
                RestartStrategy::ExponentialDelay {
                    initial,
                    max,
                    multiplier,
                    jitter,
                    reset_threshold: millis(config, &format!("{p}.reset-backoff-threshold"))?,
                    attempts: attempts.max(1),
                }
            }
            _ => {
                return Err(ConfigError::BadValue {
                    key: "restart-strategy.type".into(),
                    value: ty,
                    expected: "none, fixed-delay, failure-rate or exponential-delay",
                })
            }
        })
    }

    pub fn describe(&self) -> String {
        match self {
            RestartStrategy::None => "no restarts".into(),
            RestartStrategy::FixedDelay { attempts, delay } => {
                format!("fixed delay of {} ms, {attempts} attempts", delay.as_millis())
            }
            RestartStrategy::FailureRate { max_failures, interval, delay } => format!(
                "failure rate of at most {max_failures} in {} ms, {} ms apart",
                interval.as_millis(),
                delay.as_millis()
            ),
            RestartStrategy::ExponentialDelay { initial, max, multiplier, .. } => {
                format!("exponential delay from {} ms to {} ms, ×{multiplier}", initial.as_millis(), max.as_millis())
            }
        }
    }
}

/// One job's failures as its restart strategy counts them.
#[derive(Debug, Clone)]
pub struct RestartTracker {
    strategy: RestartStrategy,
    /// Restarts so far (fixed-delay), or since the delay last started over
    /// (exponential-delay).
    attempts: u64,
    /// When each recent restart happened (failure-rate).
    recent: VecDeque<Instant>,
    /// When the latest restart was due (exponential-delay).
    last_restart: Option<Instant>,
}

impl RestartTracker {
    pub fn new(strategy: RestartStrategy) -> RestartTracker {
        RestartTracker { strategy, attempts: 0, recent: VecDeque::new(), last_restart: None }
    }

    pub fn strategy(&self) -> &RestartStrategy {
        &self.strategy
    }

    /// A failure at `now`: the delay before the job restarts, or `None` when
    /// the strategy gives up and the job fails. `random` is uniform in
    /// [0, 1) and picks the jitter.
    pub fn on_failure(&mut self, now: Instant, random: f64) -> Option<Duration> {
        match &self.strategy {
            RestartStrategy::None => None,
            RestartStrategy::FixedDelay { attempts, delay } => {
                if self.attempts >= *attempts {
                    return None;
                }
                self.attempts += 1;
                Some(*delay)
            }
            RestartStrategy::FailureRate { max_failures, interval, delay } => {
                // As Flink: the (max + 1)-th failure within the interval fails the job.
                while self.recent.front().is_some_and(|t| now.saturating_duration_since(*t) > *interval) {
                    self.recent.pop_front();
                }
                if self.recent.len() as u64 >= *max_failures {
                    return None;
                }
                self.recent.push_back(now);
                Some(*delay)
            }
            RestartStrategy::ExponentialDelay { initial, max, multiplier, jitter, reset_threshold, attempts } => {
                if self.last_restart.is_some_and(|t| now.saturating_duration_since(t) >= *reset_threshold) {
                    self.attempts = 0;
                }
                if self.attempts >= *attempts {
                    return None;
                }
                // As Flink: initial × multiplier^n, ± jitter × that, within [initial, max].
                let base = initial.as_secs_f64() * multiplier.powi(self.attempts.min(1024) as i32);
                let base = base.min(f64::MAX / 4.0);
                let offset = base * jitter * (2.0 * random.clamp(0.0, 1.0) - 1.0);
                let secs = (base + offset).clamp(initial.as_secs_f64(), max.as_secs_f64());
                let delay = Duration::from_secs_f64(secs);
                self.attempts += 1;
                self.last_restart = Some(now + delay);
                Some(delay)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strategy(pairs: &[(&str, &str)], checkpointing: bool) -> RestartStrategy {
        let mut c = Config::default();
        for (k, v) in pairs {
            c.set(k, *v);
        }
        RestartStrategy::from_config(&c, checkpointing).expect("a valid strategy")
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn defaults_follow_checkpointing_as_flink_2() {
        assert_eq!(strategy(&[], false), RestartStrategy::None);
        assert_eq!(
            strategy(&[], true),
            RestartStrategy::ExponentialDelay {
                initial: ms(1000),
                max: ms(60_000),
                multiplier: 1.5,
                jitter: 0.1,
                reset_threshold: ms(3_600_000),
                attempts: 2_147_483_647,
            }
        );
        assert_eq!(
            strategy(&[("restart-strategy.type", "fixed-delay")], false),
            RestartStrategy::FixedDelay { attempts: 1, delay: ms(1000) }
        );
        assert_eq!(
            strategy(&[("restart-strategy.type", "failure-rate")], true),
            RestartStrategy::FailureRate { max_failures: 1, interval: ms(60_000), delay: ms(1000) }
        );
        let mut c = Config::default();
        c.set("restart-strategy.type", "sometimes");
        assert!(RestartStrategy::from_config(&c, false).is_err());
        c.set("restart-strategy.type", "exponential-delay");
        c.set("restart-strategy.exponential-delay.backoff-multiplier", "1");
        assert!(RestartStrategy::from_config(&c, false).is_err());
        c.set("restart-strategy.exponential-delay.backoff-multiplier", "2");
        c.set("restart-strategy.exponential-delay.jitter-factor", "1.5");
        assert!(RestartStrategy::from_config(&c, false).is_err());
    }

    #[test]
    fn fixed_delay_counts_every_restart() {
        let mut t = RestartTracker::new(strategy(
            &[("restart-strategy.type", "fixed-delay"), ("restart-strategy.fixed-delay.attempts", "2")],
            true,
        ));
        let now = Instant::now();
        assert_eq!(t.on_failure(now, 0.5), Some(ms(1000)));
        assert_eq!(t.on_failure(now + Duration::from_secs(7200), 0.5), Some(ms(1000)));
        assert_eq!(t.on_failure(now + Duration::from_secs(9000), 0.5), None);
    }

    #[test]
    fn exponential_delay_grows_jitters_within_bounds_and_caps() {
        let mut t = RestartTracker::new(strategy(&[("restart-strategy.exponential-delay.jitter-factor", "0")], true));
        let mut now = Instant::now();
        let mut delays = Vec::new();
        for _ in 0..14 {
            let d = t.on_failure(now, 0.5).expect("unlimited attempts");
            delays.push(d.as_millis());
            now += d + ms(10);
        }
        assert_eq!(&delays[..5], &[1000, 1500, 2250, 3375, 5062]);
        assert_eq!(delays[13], 60_000, "{delays:?}");
        // Jitter: ±10 % of the delay, never below the initial delay nor above the maximum.
        let mut lowest = Duration::MAX;
        let mut highest = Duration::ZERO;
        for i in 0..1000 {
            let mut t = RestartTracker::new(strategy(&[], true));
            let now = Instant::now();
            let first = t.on_failure(now, f64::from(i) / 1000.0).expect("restarts");
            assert!(first >= ms(1000) && first <= ms(1100), "{first:?}");
            let second = t.on_failure(now + first + ms(1), f64::from(i) / 1000.0).expect("restarts");
            lowest = lowest.min(second);
            highest = highest.max(second);
            assert!(second >= ms(1350) && second <= ms(1650), "{second:?}");
        }
        assert!(lowest < ms(1360) && highest > ms(1640), "{lowest:?}..{highest:?}: the jitter spans its range");
        let mut t = RestartTracker::new(strategy(&[("restart-strategy.exponential-delay.max-backoff", "1200")], true));
        assert_eq!(t.on_failure(now, 0.0), Some(ms(1000)));
        assert_eq!(t.on_failure(now + Duration::from_secs(5), 0.99), Some(ms(1200)));
    }

    #[test]
    fn exponential_delay_starts_over_after_the_reset_threshold() {
        let mut t = RestartTracker::new(strategy(
            &[
                ("restart-strategy.exponential-delay.jitter-factor", "0"),
                ("restart-strategy.exponential-delay.reset-backoff-threshold", "60000"),
                ("restart-strategy.exponential-delay.attempts-before-reset-backoff", "3"),
            ],
            true,
        ));
        let start = Instant::now();
        assert_eq!(t.on_failure(start, 0.5), Some(ms(1000)));
        assert_eq!(t.on_failure(start + ms(2000), 0.5), Some(ms(1500)));
        // 59 s after the last restart: no reset yet.
        assert_eq!(t.on_failure(start + ms(3500 + 59_000), 0.5), Some(ms(2250)));
        // Three restarts since the reset: the fourth failure fails the job ...
        let mut exhausted = t.clone();
        assert_eq!(exhausted.on_failure(start + ms(70_000), 0.5), None);
        // ... unless the job ran an hour (here: a minute) without one.
        let restarted = start + ms(3500 + 59_000 + 2250);
        assert_eq!(t.on_failure(restarted + ms(60_000), 0.5), Some(ms(1000)));
        assert_eq!(t.on_failure(restarted + ms(62_000), 0.5), Some(ms(1500)));
    }

    #[test]
    fn failure_rate_allows_max_failures_per_sliding_interval() {
        let mut t = RestartTracker::new(strategy(
            &[
                ("restart-strategy.type", "failure-rate"),
                ("restart-strategy.failure-rate.max-failures-per-interval", "2"),
                ("restart-strategy.failure-rate.failure-rate-interval", "10 s"),
                ("restart-strategy.failure-rate.delay", "500"),
            ],
            true,
        ));
        let start = Instant::now();
        assert_eq!(t.on_failure(start, 0.5), Some(ms(500)));
        assert_eq!(t.on_failure(start + ms(4000), 0.5), Some(ms(500)));
        // A third failure within 10 s of the first fails the job.
        let mut within = t.clone();
        assert_eq!(within.on_failure(start + ms(9000), 0.5), None);
        // Later, the first has left the window.
        assert_eq!(t.on_failure(start + ms(10_500), 0.5), Some(ms(500)));
        assert_eq!(t.on_failure(start + ms(12_000), 0.5), None);
        assert_eq!(t.on_failure(start + ms(25_000), 0.5), Some(ms(500)));
    }
}
