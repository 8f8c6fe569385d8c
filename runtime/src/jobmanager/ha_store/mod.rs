//! The HA job store: what of a job outlives the JobManager that runs it,
//! so that the next leader recovers every job without a manual step
//! (Flink's job graph store, completed checkpoint store, checkpoint id
//! counter and job result store). Per job:
//!
//! - its [`Submission`]: the plan as `POST /jobs` received it, with the UDF
//!   artifacts it calls;
//! - its [`CheckpointStore`]: the completed checkpoints' pointers, the one
//!   it was submitted with, the next checkpoint id, those found bad;
//! - once it ended, its [`JobResult`] — written before its other entries
//!   are removed, so that a job that ended is never run again.
//!
//! [`JobStore`] keeps opaque entries; two implementations:
//!
//! - [`FileJobStore`]: everything under
//!   `<high-availability.storageDir>/<cluster-id>/jobs/<job-id>/`, used
//!   without ZooKeeper (`high-availability.type: NONE` with a storageDir):
//!   a JobManager restarted over the same directory recovers its jobs.
//! - [`ZkJobStore`] (`high-availability.type: zookeeper`): the entries'
//!   payloads there under unique names, and a small pointer node to each
//!   in ZooKeeper, `<path.root>/<cluster-id>/{jobgraphs,
//!   checkpoints,job-results}/<job-id>`, as Flink keeps them: ZooKeeper
//!   says which payload is current.
//!
//! The storageDir is a directory or an S3 prefix (`s3://bucket/path`,
//! through the object-store checkpoint storage and the `s3.*` keys):
//! [`Payloads`]. Every payload is replaced whole (a file by temp + sync +
//! rename, an object by one PUT) and carries its SHA-256; one that does
//! not match is refused on read ([`StoreError::Corrupt`]) and the job it
//! belongs to is left out of a recovery, with a clear log, not retried in
//! a loop.

mod file;
mod payloads;
mod zookeeper;

pub use file::FileJobStore;
pub use payloads::Payloads;
pub use zookeeper::ZkJobStore;

use super::checkpoint_store::CheckpointStore;
use super::job::JobResult;
use crate::checkpoint::storage::S3Settings;
use crate::ha::{HaConfig, HaMode};
use crate::ids::JobId;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

/// A failure of the HA job store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("HA job store: `{path}`: {message}")]
    Io { path: String, message: String },
    #[error("HA job store: {what} is corrupt and is not used: {reason}")]
    Corrupt { what: String, reason: String },
    #[error("HA job store: ZooKeeper: {0}")]
    ZooKeeper(String),
    #[error("HA job store: this JobManager no longer leads (its election node {0} is gone); nothing was written")]
    NotLeading(String),
    #[error(
        "high-availability.storageDir {0:?} is not supported: give a local directory, file://… or s3://bucket/path"
    )]
    UnsupportedScheme(String),
}

impl StoreError {
    fn io(path: &Path, e: impl std::fmt::Display) -> StoreError {
        StoreError::Io { path: path.display().to_string(), message: e.to_string() }
    }
}

/// One of a job's entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    Submission,
    Checkpoints,
    Result,
}

impl Entry {
    pub const ALL: [Entry; 3] = [Entry::Submission, Entry::Checkpoints, Entry::Result];

    /// The entry's file name stem.
    pub fn name(self) -> &'static str {
        match self {
            Entry::Submission => "submission",
            Entry::Checkpoints => "checkpoints",
            Entry::Result => "result",
        }
    }

    /// The ZooKeeper directory of its pointers (Flink's names).
    pub fn zk_dir(self) -> &'static str {
        match self {
            Entry::Submission => "jobgraphs",
            Entry::Checkpoints => "checkpoints",
            Entry::Result => "job-results",
        }
    }
}

/// Where a job's entries are kept, as opaque checked bytes. Each call is
/// synchronous and complete when it returns: the JobManager calls it
/// before it acts on what it stored.
pub trait JobStore: Send + Sync {
    /// Where it keeps things, for logs.
    fn describe(&self) -> String;
    /// Replaces `entry` of `job` with `payload`.
    fn put(&self, job: JobId, entry: Entry, payload: &[u8]) -> Result<(), StoreError>;
    /// The payload of `entry` of `job`; `None` if there is none.
    fn get(&self, job: JobId, entry: Entry) -> Result<Option<Vec<u8>>, StoreError>;
    /// The jobs with any entry.
    fn jobs(&self) -> Result<Vec<JobId>, StoreError>;
    /// Forgets `job`: every entry, the submission first.
    fn remove(&self, job: JobId) -> Result<(), StoreError>;
    /// From now on, writes succeed only while this node exists (the
    /// leader's election node, with ZooKeeper): a deposed leader's writes
    /// fail. `None`: unguarded.
    fn guard(&self, _node: Option<String>) {}
}

/// What a job was submitted with: enough to run it again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Submission {
    pub name: String,
    pub submitted_ms: i64,
    /// The compiled plan (`plan_file` bytes), as submitted.
    pub plan: Vec<u8>,
    /// The UDF artifacts the plan calls, as uploaded (`POST /blobs`).
    pub artifacts: Vec<Vec<u8>>,
}

/// A job read back from the store.
#[derive(Debug)]
pub struct StoredJob {
    pub id: JobId,
    /// `None` if the job's removal was cut short: what is left of it
    /// goes.
    pub submission: Option<Submission>,
    /// `None` if no checkpoint store was written yet (a fresh job).
    pub checkpoints: Option<CheckpointStore>,
    /// Set once the job ended: it must not run again.
    pub result: Option<JobResult>,
}

/// The JobManager's typed view of a [`JobStore`].
#[derive(Clone)]
pub struct HaJobs {
    store: Arc<dyn JobStore>,
}

impl HaJobs {
    pub fn new(store: Arc<dyn JobStore>) -> HaJobs {
        HaJobs { store }
    }

    /// The store the high-availability settings ask for: none without a
    /// storageDir and without ZooKeeper (nothing outlives the JobManager),
    /// payloads only without ZooKeeper, payloads and ZooKeeper pointers
    /// with it. `s3` reaches a storageDir on S3. Nothing is read or
    /// connected yet.
    pub fn from_config(ha: &HaConfig, s3: &S3Settings) -> Result<Option<HaJobs>, StoreError> {
        if ha.storage_dir.is_empty() {
            return Ok(None);
        }
        let payloads = Payloads::new(&ha.storage_dir, &ha.cluster_id, s3)?;
        let store: Arc<dyn JobStore> = match ha.mode {
            HaMode::None => Arc::new(FileJobStore::on(payloads)),
            HaMode::ZooKeeper => Arc::new(ZkJobStore::on(payloads, ha.clone())),
        };
        Ok(Some(HaJobs::new(store)))
    }

    pub fn describe(&self) -> String {
        self.store.describe()
    }

    /// Writes succeed only while `node` exists (see [`JobStore::guard`]).
    pub fn guard(&self, node: Option<String>) {
        self.store.guard(node)
    }

    pub fn put_submission(&self, id: JobId, s: &Submission) -> Result<(), StoreError> {
        let bytes = bincode::serde::encode_to_vec(s, bincode::config::standard())
            .map_err(|e| StoreError::Corrupt { what: format!("the submission of job {id}"), reason: e.to_string() })?;
        self.store.put(id, Entry::Submission, &bytes)
    }

    pub fn put_checkpoints(&self, id: JobId, c: &CheckpointStore) -> Result<(), StoreError> {
        self.store.put(id, Entry::Checkpoints, &serde_json::to_vec(c).unwrap_or_default())
    }

    /// Records how `id` ended, then forgets the rest of it (Flink's job
    /// result store with `delete-on-commit`): a crash in between leaves the
    /// result, and the next leader only finishes the removal.
    pub fn put_result(&self, id: JobId, r: JobResult) -> Result<(), StoreError> {
        self.store.put(id, Entry::Result, &serde_json::to_vec(&r).unwrap_or_default())?;
        self.store.remove(id)
    }

    pub fn remove(&self, id: JobId) -> Result<(), StoreError> {
        self.store.remove(id)
    }

    /// Every job in the store. A job an entry of which cannot be read is
    /// left out and logged (its files stay for the operator); an
    /// unreachable store is an error.
    pub fn read_all(&self) -> Result<Vec<StoredJob>, StoreError> {
        let mut out = Vec::new();
        for id in self.store.jobs()? {
            match self.read(id) {
                Ok(job) => out.push(job),
                Err(e @ StoreError::Corrupt { .. }) => tracing::error!(
                    job_id = %id, store = %self.describe(), error = %e,
                    "Cannot recover a job from the HA job store: an entry is corrupt. The job is left out; its entries stay in place for inspection (remove them to stop this message)."
                ),
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    fn read(&self, id: JobId) -> Result<StoredJob, StoreError> {
        let what = |entry: Entry| format!("the {} of job {id}", entry.name());
        let corrupt =
            |entry: Entry, e: &dyn std::fmt::Display| StoreError::Corrupt { what: what(entry), reason: e.to_string() };
        let result = match self.store.get(id, Entry::Result)? {
            Some(b) => Some(serde_json::from_slice::<JobResult>(&b).map_err(|e| corrupt(Entry::Result, &e))?),
            None => None,
        };
        let submission = match self.store.get(id, Entry::Submission)? {
            Some(bytes) => {
                let (s, _): (Submission, usize) =
                    bincode::serde::decode_from_slice(&bytes, bincode::config::standard())
                        .map_err(|e| corrupt(Entry::Submission, &e))?;
                Some(s)
            }
            None => None,
        };
        let checkpoints = match self.store.get(id, Entry::Checkpoints)? {
            Some(b) => Some(serde_json::from_slice(&b).map_err(|e| corrupt(Entry::Checkpoints, &e))?),
            None => None,
        };
        Ok(StoredJob { id, submission, checkpoints, result })
    }
}

/// The first bytes of every payload file, then the payload's SHA-256.
const MAGIC: &[u8; 8] = b"FLOWCHA1";

/// The SHA-256 of `payload`, in hex.
pub(crate) fn digest(payload: &[u8]) -> String {
    Sha256::digest(payload).iter().map(|b| format!("{b:02x}")).collect()
}

fn seal(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(MAGIC.len() + 32 + payload.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&Sha256::digest(payload));
    out.extend_from_slice(payload);
    out
}

/// The payload of a sealed file's bytes, or why they are not one.
fn unseal(bytes: &[u8]) -> Result<&[u8], String> {
    let header = MAGIC.len() + 32;
    if bytes.len() < header || &bytes[..MAGIC.len()] != MAGIC {
        return Err("not an HA job store file (bad header or truncated)".into());
    }
    let payload = &bytes[header..];
    if Sha256::digest(payload).as_slice() != &bytes[MAGIC.len()..header] {
        return Err("its content does not match its checksum".into());
    }
    Ok(payload)
}

/// Writes `payload` sealed to `path`: into a temporary file beside it,
/// synced, then renamed over it, so a reader sees the old or the new file,
/// never half of one.
fn write_sealed(path: &Path, payload: &[u8]) -> Result<(), StoreError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
    let tmp = path.with_extension(format!("tmp-{:016x}", rand::random::<u64>()));
    if let Err(e) = write_synced(&tmp, &seal(payload)).and_then(|()| std::fs::rename(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(StoreError::io(path, e));
    }
    Ok(())
}

fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// The payload of the sealed file at `path`, checked; `None` if there is
/// no such file.
fn read_sealed(path: &Path, what: impl Fn() -> String) -> Result<Option<Vec<u8>>, StoreError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StoreError::io(path, e)),
    };
    match unseal(&bytes) {
        Ok(payload) => Ok(Some(payload.to_vec())),
        Err(reason) => Err(StoreError::Corrupt { what: format!("{} (`{}`)", what(), path.display()), reason }),
    }
}

#[cfg(test)]
mod tests;
