//! The `high-availability.*` keys, read with Flink's names and defaults,
//! and the ZooKeeper paths of one cluster:
//!
//! ```text
//! <high-availability.zookeeper.path.root>/<high-availability.cluster-id>/
//!     leader/latch/latch-0000000007   ephemeral sequential, one per JobManager
//!     leader/connection_info          ephemeral, the leader's LeaderInfo (JSON)
//!     jobgraphs/<job-id>              the HA job store's pointers (path and digest
//!     checkpoints/<job-id>            of a payload under the storageDir)
//!     job-results/<job-id>
//! ```

use std::time::Duration;

use crate::config::Config;

/// The `high-availability.type`s flowc knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HaMode {
    /// `NONE` (Flink's default): one JobManager, nothing survives it.
    None,
    /// `zookeeper`: leader election and pointers in ZooKeeper.
    ZooKeeper,
}

/// A bad `high-availability.*` setting.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HaConfigError {
    #[error("high-availability.type must be NONE or zookeeper, not {0:?}")]
    UnknownType(String),
    #[error("high-availability.type: zookeeper needs high-availability.zookeeper.quorum (host:port[,host:port…])")]
    NoQuorum,
    #[error("high-availability.type: zookeeper needs high-availability.storageDir")]
    NoStorageDir,
    #[error("{key} must be an absolute ZooKeeper path without a trailing '/', not {value:?}")]
    BadPath { key: &'static str, value: String },
    #[error("{key} must be a number of milliseconds, not {value:?}")]
    BadMillis { key: &'static str, value: String },
    #[error("{key} must be true or false, not {value:?}")]
    BadBool { key: &'static str, value: String },
}

/// The high-availability settings of one process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaConfig {
    pub mode: HaMode,
    /// `high-availability.zookeeper.quorum`: `host:port[,host:port…]`.
    pub quorum: String,
    /// `high-availability.storageDir`: where plans and checkpoint pointers'
    /// payloads live (ZooKeeper holds only pointers to them).
    pub storage_dir: String,
    /// `high-availability.cluster-id`, with its leading `/`: the cluster's
    /// directory under the storageDir as well as under path.root.
    pub cluster_id: String,
    /// The cluster's ZooKeeper paths.
    pub paths: HaPaths,
    /// `high-availability.zookeeper.client.session-timeout`.
    pub session_timeout: Duration,
    /// `high-availability.zookeeper.client.connection-timeout`.
    pub connection_timeout: Duration,
    /// `high-availability.flowc.fast-failover` (flowc's own): a standby
    /// that finds the leader's process gone (its RPC port refuses
    /// connections) deletes its election node instead of waiting for its
    /// session to expire (`super::liveness`).
    pub fast_failover: bool,
}

impl HaConfig {
    /// Reads the `high-availability.*` keys of `config`.
    pub fn from_config(config: &Config) -> Result<HaConfig, HaConfigError> {
        let mode = match config.get("high-availability.type").trim().to_ascii_lowercase().as_str() {
            "" | "none" => HaMode::None,
            "zookeeper" => HaMode::ZooKeeper,
            other => return Err(HaConfigError::UnknownType(other.to_owned())),
        };
        let quorum = config.get("high-availability.zookeeper.quorum").trim().to_owned();
        let storage_dir = config.get("high-availability.storageDir").trim().to_owned();
        if mode == HaMode::ZooKeeper {
            if quorum.is_empty() {
                return Err(HaConfigError::NoQuorum);
            }
            if storage_dir.is_empty() {
                return Err(HaConfigError::NoStorageDir);
            }
        }
        let root =
            absolute("high-availability.zookeeper.path.root", &config.get("high-availability.zookeeper.path.root"))?;
        let cluster = absolute("high-availability.cluster-id", &config.get("high-availability.cluster-id"))?;
        Ok(HaConfig {
            mode,
            quorum,
            storage_dir,
            paths: HaPaths { base: format!("{root}{cluster}") },
            cluster_id: cluster,
            session_timeout: millis(config, "high-availability.zookeeper.client.session-timeout")?,
            connection_timeout: millis(config, "high-availability.zookeeper.client.connection-timeout")?,
            fast_failover: boolean(config, "high-availability.flowc.fast-failover")?,
        })
    }
}

/// Flink accepts `flink` and `/flink` alike: a leading `/` is added; a
/// trailing one, an empty segment or a `.` segment is an error.
fn absolute(key: &'static str, value: &str) -> Result<String, HaConfigError> {
    let v = value.trim();
    let path = if v.starts_with('/') { v.to_owned() } else { format!("/{v}") };
    let bad = path.len() < 2
        || path.ends_with('/')
        || path[1..].split('/').any(|s| s.is_empty() || s == "." || s == "..")
        || path.contains(char::is_whitespace);
    if bad {
        return Err(HaConfigError::BadPath { key, value: value.to_owned() });
    }
    Ok(path)
}

fn millis(config: &Config, key: &'static str) -> Result<Duration, HaConfigError> {
    let value = config.get(key);
    crate::config::parse_millis_or_number(&value)
        .map(Duration::from_millis)
        .ok_or(HaConfigError::BadMillis { key, value })
}

fn boolean(config: &Config, key: &'static str) -> Result<bool, HaConfigError> {
    let value = config.get(key);
    match value.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(HaConfigError::BadBool { key, value }),
    }
}

/// The ZooKeeper paths of one cluster (`<path.root><cluster-id>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaPaths {
    base: String,
}

impl HaPaths {
    /// The paths under `base` (an absolute ZooKeeper path), for tests and
    /// tools.
    pub fn new(base: impl Into<String>) -> HaPaths {
        HaPaths { base: base.into() }
    }

    /// `<root>/<cluster-id>`: everything of this cluster.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The parent of the JobManagers' election nodes.
    pub fn latch_dir(&self) -> String {
        format!("{}/leader/latch", self.base)
    }

    /// The prefix a contender's ephemeral sequential node is created with.
    pub fn latch_prefix(&self) -> String {
        format!("{}/leader/latch/{}", self.base, super::election::LATCH_PREFIX)
    }

    /// The parent of one kind of the HA job store's pointer nodes
    /// (`jobgraphs`, `checkpoints`, `job-results`), one child per job.
    pub fn store_dir(&self, kind: &str) -> String {
        format!("{}/{kind}", self.base)
    }

    /// The leader's published [`super::LeaderInfo`].
    pub fn leader_info(&self) -> String {
        format!("{}/leader/connection_info", self.base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Config {
        let mut c = Config::default();
        for (k, v) in pairs {
            c.set(k, *v);
        }
        c
    }

    #[test]
    fn defaults_are_flinks_no_ha_under_flink_default() {
        let ha = HaConfig::from_config(&Config::default()).expect("defaults are valid");
        assert_eq!(ha.mode, HaMode::None);
        assert_eq!(ha.paths.base(), "/flink/default");
        assert_eq!(ha.paths.latch_dir(), "/flink/default/leader/latch");
        assert_eq!(ha.paths.leader_info(), "/flink/default/leader/connection_info");
        assert_eq!(ha.session_timeout, Duration::from_secs(60));
        assert!(ha.fast_failover, "on unless turned off");
    }

    #[test]
    fn zookeeper_mode_reads_flinks_keys_and_adds_the_leading_slash() {
        let ha = HaConfig::from_config(&config(&[
            ("high-availability.type", "ZooKeeper"),
            ("high-availability.zookeeper.quorum", "127.0.0.1:2181"),
            ("high-availability.storageDir", "/tmp/ha"),
            ("high-availability.zookeeper.path.root", "flowc"),
            ("high-availability.cluster-id", "/prod"),
            ("high-availability.zookeeper.client.session-timeout", "4 s"),
            ("high-availability.flowc.fast-failover", "False"),
        ]))
        .expect("valid");
        assert_eq!(ha.mode, HaMode::ZooKeeper);
        assert_eq!(ha.quorum, "127.0.0.1:2181");
        assert_eq!(ha.paths.latch_prefix(), "/flowc/prod/leader/latch/latch-");
        assert_eq!(ha.cluster_id, "/prod");
        assert_eq!(ha.session_timeout, Duration::from_secs(4));
        assert!(!ha.fast_failover);
    }

    #[test]
    fn bad_settings_are_named() {
        let e = |pairs: &[(&str, &str)]| HaConfig::from_config(&config(pairs)).expect_err("invalid");
        assert_eq!(e(&[("high-availability.type", "kubernetes")]), HaConfigError::UnknownType("kubernetes".into()));
        assert_eq!(e(&[("high-availability.type", "zookeeper")]), HaConfigError::NoQuorum);
        assert_eq!(
            e(&[("high-availability.type", "zookeeper"), ("high-availability.zookeeper.quorum", "h:1")]),
            HaConfigError::NoStorageDir
        );
        assert_eq!(
            e(&[("high-availability.flowc.fast-failover", "yes")]),
            HaConfigError::BadBool { key: "high-availability.flowc.fast-failover", value: "yes".into() }
        );
        for bad in ["/a/", "/", "a//b", "/a/../b", "a b"] {
            assert!(matches!(
                e(&[("high-availability.cluster-id", bad)]),
                HaConfigError::BadPath { key: "high-availability.cluster-id", .. }
            ));
        }
    }
}
