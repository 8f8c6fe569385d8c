//! Where checkpoints and savepoints are kept, behind [`CheckpointStorage`].
//! The JobManager's coordinator decides what to make, write and remove and
//! asks for it as commands; its shell carries them out through this trait
//! and feeds the results back. TaskManagers write their state files and
//! read them back for a restore through the same trait.
//!
//! Two backends: [`FileStorage`] for plain and `file:` paths, and
//! [`ObjectStoreStorage`] for `s3://bucket/key` (also `s3a://`, `s3p://`,
//! as Flink accepts them) through the `object_store` crate, configured by
//! Flink's `s3.*` keys ([`S3Settings`]). [`Storages`] picks one per
//! location, so `state.checkpoints.dir` on S3 and a savepoint on a local
//! disk work side by side. Locations travel through the runtime as
//! `PathBuf`s whose text is the location as written: `s3://b/k` joined
//! with `chk-3` is `s3://b/k/chk-3`.
//!
//! The contract every backend keeps:
//! - A checkpoint is complete once its `_metadata` is there, and only then:
//!   `_metadata` is written last, atomically, into a checkpoint that was
//!   [prepared](CheckpointStorage::prepare) before any task wrote to it.
//! - Tasks write their state files into a prepared checkpoint and never
//!   create it, so a checkpoint that was removed stays removed.
//! - Removing what is not there succeeds: cleanup may run twice.

mod file;
mod object;

pub use file::FileStorage;
pub use object::{ObjectStoreStorage, S3Settings, PREPARED_MARKER};

use super::format::{
    decode, verify_frame, CheckpointMetadata, StateError, TaskState, METADATA_FILE, METADATA_MAGIC, STATE_MAGIC,
};
use super::state_file::{decode_task_state, write_task_state, StateFileWriter, StateSink};
use crate::config::{Config, ConfigError};
use flowc_compiler::ids::VertexId;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why a storage operation failed; the message names the path.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("cannot create `{path}`: {source}")]
    Create { path: String, source: std::io::Error },
    #[error("cannot remove `{path}`: {source}")]
    Remove { path: String, source: std::io::Error },
    #[error("cannot list `{path}`: {source}")]
    List { path: String, source: std::io::Error },
    #[error(transparent)]
    State(#[from] StateError),
}

/// The operations the JobManager and the TaskManagers need on the place
/// checkpoints are kept.
pub trait CheckpointStorage: Send + Sync {
    /// Makes the place a checkpoint's (or savepoint's) files go into.
    fn prepare(&self, dir: &Path) -> Result<(), StorageError>;
    /// Writes `_metadata` into a prepared checkpoint, atomically: with it,
    /// the checkpoint is complete.
    fn write_metadata(&self, dir: &Path, metadata: &CheckpointMetadata) -> Result<(), StorageError>;
    /// Removes a checkpoint, or a job's checkpoint directory, with all in it.
    fn remove(&self, dir: &Path) -> Result<(), StorageError>;
    /// The `chk-<n>` checkpoints directly under `base`, in no order.
    fn list(&self, base: &Path) -> Result<Vec<(u64, PathBuf)>, StorageError>;

    /// Writes a subtask's state file `name` into a prepared checkpoint,
    /// atomically; fails if the checkpoint is not there (it was abandoned).
    fn write_state(&self, dir: &Path, name: &str, bytes: &[u8]) -> Result<(), StorageError> {
        let _ = bytes;
        Err(StorageError::State(StateError::Write {
            path: dir.join(name).display().to_string(),
            source: std::io::Error::other("this storage keeps no state files"),
        }))
    }

    /// Writes a subtask's state file `name` (format 2) into a prepared
    /// checkpoint, atomically, as `fill` hands out the state: each
    /// operator's key groups one at a time. Returns the file's size, or
    /// `None` when `fill` wrote nothing (no file is made). Storages that
    /// can should write each part into the file as it comes; this default
    /// collects the encoded file in memory (still no second, decoded copy).
    fn write_task_state_with(
        &self,
        dir: &Path,
        name: &str,
        vertex: VertexId,
        subtask: u32,
        fill: &mut dyn FnMut(&mut dyn StateSink) -> std::io::Result<()>,
    ) -> Result<Option<u64>, StorageError> {
        let Some((bytes, size)) = encode_streamed(dir, name, vertex, subtask, fill)? else { return Ok(None) };
        self.write_state(dir, name, &bytes)?;
        Ok(Some(size))
    }

    /// Writes a collected subtask state as the state file `name`, through
    /// [`CheckpointStorage::write_task_state_with`]; returns its size.
    fn write_task_state(&self, dir: &Path, name: &str, state: &TaskState) -> Result<u64, StorageError> {
        let size = self
            .write_task_state_with(dir, name, state.vertex, state.subtask, &mut |sink| write_task_state(state, sink))?;
        Ok(size.unwrap_or(0))
    }

    /// Reads one file of a checkpoint whole.
    fn read(&self, path: &Path) -> Result<Vec<u8>, StateError> {
        Err(StateError::Read {
            path: path.display().to_string(),
            source: std::io::Error::other("this storage keeps no files"),
        })
    }

    /// Reads and decodes `<dir>/_metadata`; a checkpoint without it is not
    /// complete and is refused (as corruption: it never will be).
    fn read_metadata(&self, dir: &Path) -> Result<CheckpointMetadata, StateError> {
        let path = dir.join(METADATA_FILE);
        let bytes = self.read(&path).map_err(|e| match e {
            StateError::Read { path, source } if source.kind() == std::io::ErrorKind::NotFound => StateError::Read {
                path,
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no _metadata: not a completed checkpoint or savepoint",
                ),
            },
            other => other,
        })?;
        decode(METADATA_MAGIC, "checkpoint metadata", &path.display().to_string(), &bytes)
    }

    /// Reads `_metadata` and checks every state file's frame and checksum
    /// without loading the state.
    fn validate(&self, dir: &Path) -> Result<CheckpointMetadata, StateError> {
        let metadata = self.read_metadata(dir)?;
        for t in &metadata.tasks {
            let Some(f) = &t.file else { continue };
            let path = dir.join(f);
            let bytes = self.read(&path)?;
            verify_frame(STATE_MAGIC, "state", &path.display().to_string(), &bytes)?;
        }
        Ok(metadata)
    }
}

/// Reads and decodes a subtask's state file (format 1 or 2).
pub fn read_state(storage: &dyn CheckpointStorage, path: &Path) -> Result<super::format::TaskState, StateError> {
    let bytes = storage.read(path)?;
    decode_task_state(&path.display().to_string(), &bytes)
}

/// A format-2 state file encoded in memory as `fill` hands out the state:
/// the file's bytes and size, `None` when nothing was written.
fn encode_streamed(
    dir: &Path,
    name: &str,
    vertex: VertexId,
    subtask: u32,
    fill: &mut dyn FnMut(&mut dyn StateSink) -> std::io::Result<()>,
) -> Result<Option<(Vec<u8>, u64)>, StateError> {
    let err = |source| StateError::Write { path: dir.join(name).display().to_string(), source };
    let mut w = StateFileWriter::new(Vec::new(), vertex, subtask);
    fill(&mut w).map_err(err)?;
    let Some((mut bytes, len, size)) = w.finish().map_err(err)? else { return Ok(None) };
    bytes[12..20].copy_from_slice(&len.to_le_bytes());
    Ok(Some((bytes, size)))
}

/// The URI schemes of object storage, as Flink accepts them.
const OBJECT_SCHEMES: [&str; 3] = ["s3://", "s3a://", "s3p://"];

/// `(bucket, key)` of an `s3://bucket/key` location, the key without
/// leading, trailing or doubled `/`; `None` for a file path.
pub fn object_location(path: &Path) -> Option<(String, String)> {
    let s = path.to_str()?;
    let rest = OBJECT_SCHEMES.iter().find_map(|scheme| s.strip_prefix(scheme))?;
    let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
    let key = key.split('/').filter(|c| !c.is_empty()).collect::<Vec<_>>().join("/");
    Some((bucket.to_string(), key))
}

/// Whether a location as written names object storage (`s3://…`).
pub fn is_object_location(location: &str) -> bool {
    OBJECT_SCHEMES.iter().any(|scheme| location.starts_with(scheme))
}

/// A checkpoint's location as Flink prints it: `file:<path>` or `s3://…`.
pub fn location_uri(path: &Path) -> String {
    if is_object_location(&path.to_string_lossy()) {
        path.display().to_string()
    } else {
        format!("file:{}", path.display())
    }
}

/// Both backends, each location served by its own: `s3://…` by object
/// storage, everything else by the file system. What the JobManager and
/// the TaskManagers use.
#[derive(Clone)]
pub struct Storages {
    file: FileStorage,
    object: Arc<ObjectStoreStorage>,
}

impl std::fmt::Debug for Storages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storages").field("s3", self.object.settings()).finish()
    }
}

impl Storages {
    /// From a configuration's `s3.*` keys (object stores are made when a
    /// bucket is first used).
    pub fn from_config(config: &Config) -> Result<Storages, ConfigError> {
        Ok(Storages::new(S3Settings::from_config(config)?))
    }

    pub fn new(s3: S3Settings) -> Storages {
        Storages { file: FileStorage, object: Arc::new(ObjectStoreStorage::new(s3)) }
    }

    fn pick(&self, path: &Path) -> &dyn CheckpointStorage {
        if is_object_location(&path.to_string_lossy()) {
            return &*self.object;
        }
        &self.file
    }
}

impl Default for Storages {
    fn default() -> Storages {
        Storages::new(S3Settings::default())
    }
}

impl CheckpointStorage for Storages {
    fn prepare(&self, dir: &Path) -> Result<(), StorageError> {
        self.pick(dir).prepare(dir)
    }

    fn write_metadata(&self, dir: &Path, metadata: &CheckpointMetadata) -> Result<(), StorageError> {
        self.pick(dir).write_metadata(dir, metadata)
    }

    fn remove(&self, dir: &Path) -> Result<(), StorageError> {
        self.pick(dir).remove(dir)
    }

    fn list(&self, base: &Path) -> Result<Vec<(u64, PathBuf)>, StorageError> {
        self.pick(base).list(base)
    }

    fn write_state(&self, dir: &Path, name: &str, bytes: &[u8]) -> Result<(), StorageError> {
        self.pick(dir).write_state(dir, name, bytes)
    }

    fn write_task_state_with(
        &self,
        dir: &Path,
        name: &str,
        vertex: VertexId,
        subtask: u32,
        fill: &mut dyn FnMut(&mut dyn StateSink) -> std::io::Result<()>,
    ) -> Result<Option<u64>, StorageError> {
        self.pick(dir).write_task_state_with(dir, name, vertex, subtask, fill)
    }

    fn read(&self, path: &Path) -> Result<Vec<u8>, StateError> {
        self.pick(path).read(path)
    }

    fn read_metadata(&self, dir: &Path) -> Result<CheckpointMetadata, StateError> {
        self.pick(dir).read_metadata(dir)
    }

    fn validate(&self, dir: &Path) -> Result<CheckpointMetadata, StateError> {
        self.pick(dir).validate(dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_locations_are_told_from_paths() {
        let p = |s: &str| object_location(Path::new(s));
        assert_eq!(p("s3://b/a//c/"), Some(("b".into(), "a/c".into())));
        assert_eq!(p("s3a://b"), Some(("b".into(), String::new())));
        assert_eq!(p("/tmp/s3://x"), None);
        assert_eq!(p("file:///tmp/x"), None);
        // Joined as the runtime joins them, the scheme survives.
        let chk = Path::new("s3://b/ckpt").join("job").join("chk-3");
        assert_eq!(chk.display().to_string(), "s3://b/ckpt/job/chk-3");
        assert_eq!(object_location(&chk), Some(("b".into(), "ckpt/job/chk-3".into())));
        assert_eq!(location_uri(&chk), "s3://b/ckpt/job/chk-3");
        assert_eq!(location_uri(Path::new("/tmp/c/chk-1")), "file:/tmp/c/chk-1");
    }

    #[test]
    fn the_router_sends_files_to_the_file_system() {
        let dir = std::env::temp_dir().join(format!("flowc-storages-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let s = Storages::default();
        s.prepare(&dir.join("chk-1")).expect("prepare");
        s.write_state(&dir.join("chk-1"), "v-0.state", b"x").expect("write");
        assert_eq!(s.read(&dir.join("chk-1").join("v-0.state")).expect("read"), b"x");
        assert_eq!(s.list(&dir).expect("list"), vec![(1, dir.join("chk-1"))]);
        let e = s.read_metadata(&dir.join("chk-1")).expect_err("no _metadata");
        assert!(e.is_corruption() && e.to_string().contains("not a completed checkpoint"), "{e}");
        s.remove(&dir).expect("remove");
        assert!(!dir.exists());
    }
}
