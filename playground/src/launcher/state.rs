//! The state directory (`${FLOWC_PLAYGROUND_DIR:-/tmp/flowc-playground}`):
//!
//! ```text
//! settings.json          Kafka mode and config file, saved by `up`
//! <instance>.cmd         the instance exists (for `ps`): its command line
//! <instance>.pid         "<pid> <start time>" of its supervisor
//! <instance>.exit        its exit code, once it ended
//! <instance>.log         its standard output and error
//! kafka/                 kafka.sh's directory: kafka.pid, kafka.log, data/
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::LaunchError;
use super::process::ProcessId;

/// Environment variable choosing the state directory.
pub const ENV_STATE_DIR: &str = "FLOWC_PLAYGROUND_DIR";
/// The state directory when the variable is not set.
pub const DEFAULT_STATE_DIR: &str = "/tmp/flowc-playground";

/// Where Kafka is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KafkaMode {
    /// A broker the playground runs with `kafka.sh`.
    Local { port: u16, controller_port: u16 },
    /// An existing cluster (`--kafka HOST:PORT`); the playground neither
    /// starts nor stops it.
    External { bootstrap: String },
}

impl KafkaMode {
    /// `bootstrap.servers` for clients.
    pub fn bootstrap(&self) -> String {
        match self {
            KafkaMode::Local { port, .. } => format!("127.0.0.1:{port}"),
            KafkaMode::External { bootstrap } => bootstrap.clone(),
        }
    }
}

/// Settings that later commands must agree on with `up`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    pub kafka: KafkaMode,
    /// The flowc configuration file, absolute.
    pub config: PathBuf,
}

/// The state directory.
#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
}

impl StateDir {
    /// The directory from `FLOWC_PLAYGROUND_DIR`, or the default.
    pub fn from_env() -> StateDir {
        let root = std::env::var_os(ENV_STATE_DIR)
            .filter(|v| !v.is_empty())
            .map_or_else(|| PathBuf::from(DEFAULT_STATE_DIR), PathBuf::from);
        StateDir { root }
    }

    pub fn new(root: impl Into<PathBuf>) -> StateDir {
        StateDir { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Creates the directory if needed.
    pub fn ensure(&self) -> Result<(), LaunchError> {
        std::fs::create_dir_all(&self.root).map_err(LaunchError::io(format!("creating {}", self.root.display())))
    }

    pub fn kafka_dir(&self) -> PathBuf {
        self.root.join("kafka")
    }

    /// What an instance writes to its standard output (`playground logs`).
    pub fn log_file(&self, instance: &str) -> PathBuf {
        self.root.join(format!("{instance}.log"))
    }

    /// Where the cluster processes write their own log files (`log.file`).
    pub fn log_dir(&self) -> PathBuf {
        self.root.join("log")
    }

    fn file(&self, instance: &str, ext: &str) -> PathBuf {
        self.root.join(format!("{instance}.{ext}"))
    }

    pub fn exit_file(&self, instance: &str) -> PathBuf {
        self.file(instance, "exit")
    }

    /// The saved settings, if `up` ran before.
    pub fn load_settings(&self) -> Result<Option<Settings>, LaunchError> {
        let path = self.root.join("settings.json");
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                serde_json::from_str(&text).map(Some).map_err(|e| LaunchError::State { path, msg: e.to_string() })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(LaunchError::io(format!("reading {}", path.display()))(e)),
        }
    }

    pub fn save_settings(&self, s: &Settings) -> Result<(), LaunchError> {
        self.ensure()?;
        let path = self.root.join("settings.json");
        let text = serde_json::to_string_pretty(s).map_err(|e| LaunchError::State {
            path: path.clone(),
            msg: format!("cannot serialise settings (internal; a bug): {e}"),
        })?;
        write_atomic(&path, &text)
    }

    /// Records that `instance` exists, with the command line `ps` shows.
    pub fn record_created(&self, instance: &str, command: &str) -> Result<(), LaunchError> {
        self.ensure()?;
        write_atomic(&self.file(instance, "cmd"), command)
    }

    /// The command line of `instance`, if it exists.
    pub fn command(&self, instance: &str) -> Option<String> {
        std::fs::read_to_string(self.file(instance, "cmd")).ok()
    }

    pub fn record_pid(&self, instance: &str, pid: ProcessId) -> Result<(), LaunchError> {
        let _ = std::fs::remove_file(self.exit_file(instance));
        write_atomic(&self.file(instance, "pid"), &pid.to_record())
    }

    pub fn pid(&self, instance: &str) -> Option<ProcessId> {
        std::fs::read_to_string(self.file(instance, "pid")).ok().and_then(|s| ProcessId::from_record(&s))
    }

    pub fn record_exit(&self, instance: &str, code: i32) -> Result<(), LaunchError> {
        write_atomic(&self.exit_file(instance), &code.to_string())
    }

    /// The recorded exit code, if the instance ended and it was recorded.
    pub fn exit_code(&self, instance: &str) -> Option<i32> {
        std::fs::read_to_string(self.exit_file(instance)).ok().and_then(|s| s.trim().parse().ok())
    }

    /// Names of the instances that exist (have a `.cmd` record).
    pub fn instances(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(&self.root) else {
            return Vec::new();
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str().and_then(|n| n.strip_suffix(".cmd")).map(str::to_owned))
            .collect();
        names.sort();
        names
    }

    /// Forgets `instance` (its log stays).
    pub fn remove_records(&self, instance: &str) {
        for ext in ["cmd", "pid", "exit"] {
            let _ = std::fs::remove_file(self.file(instance, ext));
        }
    }
}

/// Writes `path` through a temporary file and a rename, so a reader never
/// sees half a file.
pub fn write_atomic(path: &Path, text: &str) -> Result<(), LaunchError> {
    let tmp = path.with_extension(format!(
        "{}.tmp{}",
        path.extension().and_then(|e| e.to_str()).unwrap_or(""),
        std::process::id()
    ));
    std::fs::write(&tmp, text).map_err(LaunchError::io(format!("writing {}", tmp.display())))?;
    std::fs::rename(&tmp, path).map_err(LaunchError::io(format!("writing {}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_state(name: &str) -> StateDir {
        let dir = std::env::temp_dir().join(format!("flowc-playground-state-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        StateDir::new(dir)
    }

    #[test]
    fn records_round_trip() {
        let s = temp_state("records");
        s.record_created("taskmanager-2", "flowc taskmanager").expect("cmd");
        s.record_created("jobmanager", "flowc jobmanager").expect("cmd");
        s.record_exit("jobmanager", 137).expect("exit");
        assert_eq!(s.instances(), ["jobmanager", "taskmanager-2"]);
        assert_eq!(s.exit_code("jobmanager"), Some(137));
        assert_eq!(s.exit_code("taskmanager-2"), None);
        assert_eq!(s.command("jobmanager").as_deref(), Some("flowc jobmanager"));
        s.remove_records("jobmanager");
        assert_eq!(s.instances(), ["taskmanager-2"]);
        let _ = std::fs::remove_dir_all(s.root());
    }

    #[test]
    fn settings_round_trip() {
        let s = temp_state("settings");
        assert_eq!(s.load_settings().expect("none"), None);
        let settings =
            Settings { kafka: KafkaMode::External { bootstrap: "k:9092".into() }, config: PathBuf::from("/c.yaml") };
        s.save_settings(&settings).expect("save");
        assert_eq!(s.load_settings().expect("load"), Some(settings));
        let _ = std::fs::remove_dir_all(s.root());
    }
}
