//! Restart strategies: whether and when a failed job restarts from its
//! latest checkpoint. As in Flink: `restart-strategy.type` when it is
//! configured; otherwise fixed-delay with unlimited attempts for a job with
//! checkpointing, and none (the job fails) for one without.

use crate::config::{Config, ConfigError};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub enum RestartStrategy {
    None,
    FixedDelay { attempts: u64, delay: Duration },
    ExponentialDelay { initial: Duration, max: Duration, multiplier: f64 },
}

impl RestartStrategy {
    pub fn from_config(config: &Config, checkpointing: bool) -> Result<RestartStrategy, ConfigError> {
        let ty = if config.is_set("restart-strategy.type") {
            config.get("restart-strategy.type")
        } else if checkpointing {
            "fixed-delay".to_string()
        } else {
            "none".to_string()
        };
        Ok(match ty.trim().to_ascii_lowercase().as_str() {
            "none" | "off" | "disable" => RestartStrategy::None,
            "fixed-delay" | "fixeddelay" => RestartStrategy::FixedDelay {
                attempts: config.get_u64("restart-strategy.fixed-delay.attempts")?,
                delay: Duration::from_millis(config.get_u64("restart-strategy.fixed-delay.delay")?),
            },
            "exponential-delay" | "exponentialdelay" => RestartStrategy::ExponentialDelay {
                initial: Duration::from_millis(config.get_u64("restart-strategy.exponential-delay.initial-backoff")?),
                max: Duration::from_millis(config.get_u64("restart-strategy.exponential-delay.max-backoff")?),
                multiplier: config.get_f64("restart-strategy.exponential-delay.backoff-multiplier")?.max(1.0),
            },
            _ => {
                return Err(ConfigError::BadValue {
                    key: "restart-strategy.type".into(),
                    value: ty,
                    expected: "none, fixed-delay or exponential-delay",
                })
            }
        })
    }

    /// The delay before restart number `n` (0-based), or `None` when the
    /// strategy gives up.
    pub fn delay(&self, n: u64) -> Option<Duration> {
        match self {
            RestartStrategy::None => None,
            RestartStrategy::FixedDelay { attempts, delay } => (n < *attempts).then_some(*delay),
            RestartStrategy::ExponentialDelay { initial, max, multiplier } => {
                let factor = multiplier.powi(n.min(64) as i32);
                Some(Duration::from_secs_f64((initial.as_secs_f64() * factor).min(max.as_secs_f64())))
            }
        }
    }

    pub fn describe(&self) -> String {
        match self {
            RestartStrategy::None => "no restarts".into(),
            RestartStrategy::FixedDelay { attempts, delay } => {
                format!("fixed delay of {} ms, {attempts} attempts", delay.as_millis())
            }
            RestartStrategy::ExponentialDelay { initial, max, multiplier } => {
                format!("exponential delay from {} ms to {} ms, ×{multiplier}", initial.as_millis(), max.as_millis())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_checkpointing() {
        let c = Config::default();
        assert_eq!(RestartStrategy::from_config(&c, false).unwrap(), RestartStrategy::None);
        let s = RestartStrategy::from_config(&c, true).unwrap();
        assert_eq!(s.delay(0), Some(Duration::from_millis(1000)));
        let mut c = Config::default();
        c.set("restart-strategy.type", "exponential-delay");
        let s = RestartStrategy::from_config(&c, false).unwrap();
        assert_eq!(s.delay(0), Some(Duration::from_millis(1000)));
        assert_eq!(s.delay(2), Some(Duration::from_millis(4000)));
        assert_eq!(s.delay(50), Some(Duration::from_millis(60000)));
        c.set("restart-strategy.type", "fixed-delay");
        c.set("restart-strategy.fixed-delay.attempts", "1");
        let s = RestartStrategy::from_config(&c, false).unwrap();
        assert_eq!((s.delay(0).is_some(), s.delay(1)), (true, None));
        c.set("restart-strategy.type", "sometimes");
        assert!(RestartStrategy::from_config(&c, false).is_err());
    }
}
