//! Rust UDFs on a TaskManager: the artifacts a plan names, fetched from
//! the JobManager's blob store, checked and cached by digest (`cache`),
//! and the functions they hold, run in process (`flowc-udf-host`) or in a
//! sidecar process per task (`sidecar`).
//!
//! ```text
//!  Deploy(plan) ──missing digests──▶ FetchBlob ──▶ JobManager blob store ──▶ Blob(bytes)
//!       │                                                                      │
//!       ▼                                                                      ▼
//!  cache::prepare: digest, ABI version, target, signatures checked ◀── cache::store
//!       │
//!       ▼
//!  Backend: in process (a loaded cdylib, shared) | sidecar (a process per task and library)
//! ```
//!
//! Every check happens before any task of the deployment starts, so a
//! missing, corrupt or mismatched artifact fails the deployment with the
//! reason, and no task runs.

pub mod cache;
pub mod sidecar;

pub use cache::ArtifactCache;

use flowc_udf_host::Library;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// How a TaskManager runs UDFs (`udf.isolation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Isolation {
    /// In the TaskManager's process: fastest; a UDF that aborts the process
    /// takes the TaskManager down.
    #[default]
    InProcess,
    /// In a sidecar process per task and library, fed batches over pipes: a
    /// UDF that aborts fails only its task.
    Process,
}

impl Isolation {
    pub fn parse(s: &str) -> Option<Isolation> {
        match s {
            "" | "in-process" | "thread" => Some(Isolation::InProcess),
            "process" => Some(Isolation::Process),
            _ => None,
        }
    }
}

/// A TaskManager's UDF settings.
#[derive(Debug, Clone, Default)]
pub struct UdfSettings {
    pub isolation: Isolation,
    /// Where artifacts are cached by digest (`<blob.storage.directory>/taskmanager-cache`).
    pub cache_dir: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum UdfError {
    #[error("UDF artifact {digest} ({path}) is not in the JobManager's blob store: {reason}")]
    Missing { digest: String, path: String, reason: String },
    #[error("UDF artifact {digest} ({path}) is corrupt: {reason}; it was removed from the cache and is fetched again on the next attempt")]
    Corrupt { digest: String, path: String, reason: String },
    #[error("UDF artifact {digest} ({path}) does not fit this TaskManager: {reason}")]
    Mismatch { digest: String, path: String, reason: String },
    #[error("the plan calls the UDFs of `{0}`, which were never built (compile the job with `flowc compile` or `flowc run`)")]
    NotBuilt(String),
    #[error("cannot use the UDF cache: {0}")]
    Io(String),
    #[error(transparent)]
    Host(#[from] flowc_udf_host::HostError),
}

/// A prepared library: its extracted binaries, and the in-process library
/// once loaded.
#[derive(Debug)]
pub struct Prepared {
    pub digest: String,
    pub sidecar: PathBuf,
    pub library: Option<Arc<Library>>,
}

/// The libraries this process has prepared, by digest (a library is loaded
/// at most once per process).
static PREPARED: Mutex<Vec<Arc<Prepared>>> = Mutex::new(Vec::new());

pub fn prepared(digest: &str) -> Option<Arc<Prepared>> {
    PREPARED.lock().unwrap_or_else(|p| p.into_inner()).iter().find(|p| p.digest == digest).cloned()
}

fn remember(p: Arc<Prepared>) -> Arc<Prepared> {
    let mut all = PREPARED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(existing) = all.iter().find(|e| e.digest == p.digest) {
        return existing.clone();
    }
    all.push(p.clone());
    p
}

/// How one task calls one library's functions.
#[derive(Debug)]
pub enum Backend {
    InProcess(Arc<Library>),
    Sidecar(Mutex<sidecar::Sidecar>),
}

impl Backend {
    /// A backend for a task: the shared library, or a new sidecar.
    pub fn for_task(p: &Prepared, isolation: Isolation) -> Result<Backend, String> {
        match (isolation, &p.library) {
            (Isolation::InProcess, Some(lib)) => Ok(Backend::InProcess(lib.clone())),
            _ => sidecar::Sidecar::spawn(&p.sidecar).map(|s| Backend::Sidecar(Mutex::new(s))),
        }
    }

    /// Calls function `func` on argument columns; the result in the column format.
    pub fn call(&self, func: u32, input: &[u8]) -> Result<Vec<u8>, String> {
        match self {
            Backend::InProcess(lib) => Ok(lib.call(func, input)),
            Backend::Sidecar(s) => s.lock().unwrap_or_else(|p| p.into_inner()).call(func, input),
        }
    }
}
