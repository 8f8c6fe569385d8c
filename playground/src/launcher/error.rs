//! Launcher errors: each says what was being done and whose fault it is.

use std::path::PathBuf;

/// A launcher failure.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// A file or process operation failed.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// The user named something that does not exist or asked for something
    /// impossible.
    #[error("{0}")]
    Usage(String),
    /// The configuration file is unreadable or has a bad value.
    #[error("configuration {}: {msg} (user; fix the file or pass --config)", path.display())]
    Config { path: PathBuf, msg: String },
    /// A port the playground needs is taken by a process it did not start.
    #[error("127.0.0.1:{port} is already in use, so {service} cannot start (external; stop whatever listens there, or `playground down` if it is an older playground)")]
    PortInUse { service: String, port: u16 },
    /// A service did not come up.
    #[error("{service} did not become ready: {reason} (see `playground logs {service}`)")]
    NotReady { service: String, reason: String },
    /// A program the launcher runs is missing.
    #[error("{what} not found at {} (build it with `cargo build --release -p flowc -p flowc-playground`, or set {env})", path.display())]
    MissingProgram { what: String, path: PathBuf, env: &'static str },
    /// `kafka.sh` failed; its output was shown.
    #[error("kafka.sh {verb} failed with {status} (see its output above and `playground logs kafka`)")]
    Kafka { verb: String, status: String },
    /// The saved state is damaged (internal, or edited by hand).
    #[error("state file {}: {msg} (remove the state directory with `playground down -v` if it persists)", path.display())]
    State { path: PathBuf, msg: String },
}

impl LaunchError {
    /// Wraps an I/O error with what was being done.
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> LaunchError {
        let what = what.into();
        move |source| LaunchError::Io { what, source }
    }
}
