//! The `kafka` service: a one-node KRaft broker run by
//! `playground/kafka/kafka.sh` in `<state>/kafka`, with topics `input` and
//! `output` of 2 partitions. `kafka.sh` detaches the broker and keeps its
//! pid (`kafka.pid`) and log (`kafka.log`) there.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::error::LaunchError;
use super::process::ProcessId;

/// Topics the playground uses, created at start.
pub const TOPICS: &str = "input,output";
/// Partitions of those topics (and the broker's default).
pub const PARTITIONS: u32 = 2;

/// The broker of one state directory.
#[derive(Debug, Clone)]
pub struct KafkaService {
    script: PathBuf,
    dir: PathBuf,
}

impl KafkaService {
    pub fn new(script: &Path, dir: PathBuf) -> KafkaService {
        KafkaService { script: script.to_owned(), dir }
    }

    pub fn log_file(&self) -> PathBuf {
        self.dir.join("kafka.log")
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The broker process, if it runs.
    pub fn process(&self) -> Option<ProcessId> {
        let text = std::fs::read_to_string(self.dir.join("kafka.pid")).ok()?;
        ProcessId::of(text.trim().parse().ok()?)
    }

    /// The display command line for `ps`.
    pub fn display(port: u16, controller_port: u16) -> String {
        format!("kafka.sh start --port {port} --controller-port {controller_port} --topics {TOPICS}")
    }

    /// Fetches the jars (instant when cached).
    pub fn fetch(&self) -> Result<(), LaunchError> {
        self.run("fetch", &[])
    }

    /// Starts the broker and creates the topics; returns when it answers.
    pub fn start(&self, port: u16, controller_port: u16) -> Result<(), LaunchError> {
        self.fetch()?;
        let dir = self.dir.display().to_string();
        let (port, cport, parts) = (port.to_string(), controller_port.to_string(), PARTITIONS.to_string());
        self.run(
            "start",
            &["--dir", &dir, "--port", &port, "--controller-port", &cport, "--partitions", &parts, "--topics", TOPICS],
        )
    }

    /// Stops the broker (SIGTERM, then SIGKILL).
    pub fn stop(&self) -> Result<(), LaunchError> {
        let dir = self.dir.display().to_string();
        self.run("stop", &["--dir", &dir])
    }

    fn run(&self, verb: &str, args: &[&str]) -> Result<(), LaunchError> {
        let status = Command::new("bash")
            .arg(&self.script)
            .arg(verb)
            .args(args)
            .status()
            .map_err(LaunchError::io(format!("running bash {}", self.script.display())))?;
        if status.success() {
            Ok(())
        } else {
            Err(LaunchError::Kafka { verb: verb.to_owned(), status: status.to_string() })
        }
    }
}
