//! The files of a checkpoint: one state file per subtask and a `_metadata`
//! file that lists them.
//!
//! Every file is `MAGIC (8 bytes) | format version (u32 LE) | body length
//! (u64 LE) | body | FNV-1a 64 checksum of the body (u64 LE)`; the body is
//! bincode, but for a state file of format 2, which the task streams as
//! records (`state_file.rs`; format 1 state files are read still).
//! A reader checks all four before it decodes anything, so a truncated,
//! corrupt or foreign file is refused with a reason and never half-loaded.
//! Files are written to a temporary name, synced and renamed, so a crash
//! leaves either the whole file or none.

use super::SourceState;
use flowc_compiler::ids::{OperatorId, VertexId};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

pub const STATE_MAGIC: &[u8; 8] = b"FLOWCSTA";
pub const METADATA_MAGIC: &[u8; 8] = b"FLOWCCHK";
/// The format of `_metadata`, and of state files as [`encode`] writes them
/// (format 1, read still); state files are written in format 2
/// (`state_file.rs`). Bump on any change to the types below.
pub const FORMAT_VERSION: u32 = 1;
pub const METADATA_FILE: &str = "_metadata";
/// Larger state files are refused as corrupt rather than allocated.
const MAX_FILE: u64 = 1 << 32;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot read `{path}`: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("cannot write `{path}`: {source}")]
    Write { path: String, source: std::io::Error },
    #[error("`{path}` is not a flowc {what} file")]
    BadMagic { path: String, what: &'static str },
    #[error("`{path}` is in state format version {found}; this flowc reads versions up to {supported}")]
    Version { path: String, found: u32, supported: u32 },
    #[error("`{path}` is truncated or corrupt: {reason}")]
    Corrupt { path: String, reason: String },
    #[error("{0}")]
    Incompatible(String),
}

impl StateError {
    /// Whether the files themselves are bad — corrupt, truncated, foreign,
    /// of another format version, or missing — so that reading them again
    /// cannot help; as opposed to a failure to read them (permissions, too
    /// many open files), which may pass.
    pub fn is_corruption(&self) -> bool {
        match self {
            StateError::BadMagic { .. }
            | StateError::Version { .. }
            | StateError::Corrupt { .. }
            | StateError::Incompatible(_) => true,
            StateError::Read { source, .. } => source.kind() == std::io::ErrorKind::NotFound,
            StateError::Write { .. } => false,
        }
    }
}

/// One operator's state in a subtask's state file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperatorState {
    pub operator: OperatorId,
    /// (key group, that key group's entries), sorted by key group.
    pub keyed: Vec<(u32, Vec<u8>)>,
    /// State of the subtask as a whole (an exactly-once sink's output not
    /// yet committed); on rescaling it goes to one new subtask whole.
    pub raw: Vec<u8>,
}

/// A subtask's state file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskState {
    pub vertex: VertexId,
    pub subtask: u32,
    pub operators: Vec<OperatorState>,
}

/// What `_metadata` says of one operator of one subtask.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperatorEntry {
    pub operator: OperatorId,
    pub uid: Option<String>,
    pub name: String,
    /// Whether the state file holds keyed state of this operator.
    pub keyed: bool,
    /// Whether the state file holds subtask (raw) state of this operator.
    pub raw: bool,
    pub source: SourceState,
}

/// What `_metadata` says of one subtask.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskEntry {
    pub vertex: VertexId,
    pub vertex_name: String,
    pub subtask: u32,
    pub parallelism: u32,
    pub operators: Vec<OperatorEntry>,
    /// The state file, relative to the checkpoint directory; `None` when
    /// the subtask has no keyed state.
    pub file: Option<String>,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointMetadata {
    pub job_id: String,
    pub job_name: String,
    pub checkpoint_id: u64,
    pub savepoint: bool,
    pub timestamp: i64,
    pub max_parallelism: u32,
    pub tasks: Vec<TaskEntry>,
}

impl CheckpointMetadata {
    /// Operators with state (keyed or source), each once: (id, uid, name).
    pub fn stateful_operators(&self) -> Vec<(OperatorId, Option<String>, String)> {
        let mut out: Vec<(OperatorId, Option<String>, String)> = Vec::new();
        for t in &self.tasks {
            for o in &t.operators {
                if (o.keyed || o.raw || o.source != SourceState::None)
                    && !out.iter().any(|(id, _, _)| *id == o.operator)
                {
                    out.push((o.operator, o.uid.clone(), o.name.clone()));
                }
            }
        }
        out
    }

    /// The total size of the state files.
    pub fn state_size(&self) -> u64 {
        self.tasks.iter().map(|t| t.size).sum()
    }
}

pub(super) const CHECKSUM_SEED: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a 64 of `bytes`, continuing from `h` (start from `CHECKSUM_SEED`).
pub(super) fn checksum_more(mut h: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn checksum(bytes: &[u8]) -> u64 {
    checksum_more(CHECKSUM_SEED, bytes)
}

fn config() -> impl bincode::config::Config {
    bincode::config::standard()
}

/// The header's length: magic, format version, body length.
pub(super) const HEADER: usize = 8 + 4 + 8;

/// Encodes a value into the framed file format.
///
/// The body is encoded in place behind the header, whose length is filled
/// in afterwards. (`_metadata`, and format-1 state files in tests; state
/// files are written in format 2 by `state_file.rs`.)
pub fn encode<T: Serialize>(magic: &[u8; 8], value: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + 64);
    out.extend_from_slice(magic);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes());
    if bincode::serde::encode_into_std_write(value, &mut out, config()).is_err() {
        // As before: a value bincode cannot encode has an empty body.
        out.truncate(HEADER);
    }
    let len = (out.len() - HEADER) as u64;
    out[12..HEADER].copy_from_slice(&len.to_le_bytes());
    let sum = checksum(&out[HEADER..]);
    out.extend_from_slice(&sum.to_le_bytes());
    out
}

/// Checks the frame of a file — magic, version, length, checksum — and
/// returns its body, not yet decoded.
pub fn verify_frame<'a>(
    magic: &[u8; 8],
    what: &'static str,
    path: &str,
    bytes: &'a [u8],
) -> Result<&'a [u8], StateError> {
    let corrupt = |reason: String| StateError::Corrupt { path: path.to_string(), reason };
    if bytes.len() < 8 || &bytes[..8] != magic {
        return Err(StateError::BadMagic { path: path.to_string(), what });
    }
    if bytes.len() < 20 {
        return Err(corrupt(format!("only {} bytes", bytes.len())));
    }
    let version = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    // State files are read in format 1 and 2; `_metadata` in format 1.
    let newest = if magic == STATE_MAGIC { super::state_file::STATE_FORMAT_VERSION } else { FORMAT_VERSION };
    if !(1..=newest).contains(&version) {
        return Err(StateError::Version { path: path.to_string(), found: version, supported: newest });
    }
    let mut len = [0u8; 8];
    len.copy_from_slice(&bytes[12..20]);
    let len = u64::from_le_bytes(len);
    if len > MAX_FILE || bytes.len() as u64 != 20 + len + 8 {
        return Err(corrupt(format!(
            "the header says {len} bytes of state, the file has {}",
            bytes.len().saturating_sub(28)
        )));
    }
    let body = &bytes[20..20 + len as usize];
    let mut sum = [0u8; 8];
    sum.copy_from_slice(&bytes[20 + len as usize..]);
    if u64::from_le_bytes(sum) != checksum(body) {
        return Err(corrupt("checksum mismatch".into()));
    }
    Ok(body)
}

/// Decodes the framed file format, checking everything first.
pub fn decode<T: DeserializeOwned>(
    magic: &[u8; 8],
    what: &'static str,
    path: &str,
    bytes: &[u8],
) -> Result<T, StateError> {
    let corrupt = |reason: String| StateError::Corrupt { path: path.to_string(), reason };
    let body = verify_frame(magic, what, path, bytes)?;
    let (value, used) = bincode::serde::decode_from_slice(body, config()).map_err(|e| corrupt(e.to_string()))?;
    if used != body.len() {
        return Err(corrupt("unexpected bytes after the state".into()));
    }
    Ok(value)
}

/// Writes `bytes` to `path` atomically: a temporary file, fsync, rename.
/// The directory must exist (it is never created here). On failure the
/// temporary file is removed: a full disk leaves nothing behind.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StateError> {
    let err = |source| StateError::Write { path: path.display().to_string(), source };
    let tmp = temporary_name(path);
    let written = std::fs::File::create_new(&tmp).and_then(|mut f| {
        let result = f.write_all(bytes).and_then(|()| f.sync_all());
        drop(f);
        result.and_then(|()| std::fs::rename(&tmp, path)).inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
    });
    written.map_err(err)
}

/// The temporary name a file is written under before its rename.
pub fn temporary_name(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".inprogress");
    path.with_file_name(name)
}

pub fn read_file<T: DeserializeOwned>(magic: &[u8; 8], what: &'static str, path: &Path) -> Result<T, StateError> {
    let bytes = std::fs::read(path).map_err(|source| StateError::Read { path: path.display().to_string(), source })?;
    decode(magic, what, &path.display().to_string(), &bytes)
}

/// A checkpoint or savepoint directory, from a path as users write it
/// (`file:` prefixes allowed, as Flink prints them).
pub fn checkpoint_dir(location: &str) -> PathBuf {
    PathBuf::from(location.strip_prefix("file://").or_else(|| location.strip_prefix("file:")).unwrap_or(location))
}

/// Reads and validates `<dir>/_metadata`.
pub fn read_metadata(dir: &Path) -> Result<CheckpointMetadata, StateError> {
    let path = dir.join(METADATA_FILE);
    if !path.exists() {
        return Err(StateError::Read {
            path: path.display().to_string(),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no _metadata: not a completed checkpoint or savepoint",
            ),
        });
    }
    read_file(METADATA_MAGIC, "checkpoint metadata", &path)
}

/// Validates a checkpoint or savepoint without loading it: `_metadata` is
/// read and decoded, and every state file it lists is read and its frame
/// and checksum checked. Returns the metadata.
pub fn validate(dir: &Path) -> Result<CheckpointMetadata, StateError> {
    let metadata = read_metadata(dir)?;
    for t in &metadata.tasks {
        let Some(f) = &t.file else { continue };
        let path = dir.join(f);
        let bytes =
            std::fs::read(&path).map_err(|source| StateError::Read { path: path.display().to_string(), source })?;
        verify_frame(STATE_MAGIC, "state", &path.display().to_string(), &bytes)?;
    }
    Ok(metadata)
}

/// The file name of a subtask's state file.
pub fn state_file_name(vertex: VertexId, subtask: u32) -> String {
    format!("{}-{subtask}.state", vertex.to_hex())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_frame_is_magic_version_length_body_checksum() {
        let value = vec![(7u32, vec![9u8; 300]), (8, Vec::new())];
        let body = bincode::serde::encode_to_vec(&value, config()).unwrap();
        let mut want = STATE_MAGIC.to_vec();
        want.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        want.extend_from_slice(&(body.len() as u64).to_le_bytes());
        want.extend_from_slice(&body);
        want.extend_from_slice(&checksum(&body).to_le_bytes());
        assert_eq!(encode(STATE_MAGIC, &value), want);
    }

    #[test]
    fn refuses_truncated_corrupt_and_foreign_files() {
        let value = vec![(1u32, vec![1u8, 2, 3])];
        let bytes = encode(STATE_MAGIC, &value);
        let back: Vec<(u32, Vec<u8>)> = decode(STATE_MAGIC, "state", "f", &bytes).unwrap();
        assert_eq!(back, value);
        for cut in [0, 5, 19, 25, bytes.len() - 1] {
            assert!(decode::<Vec<(u32, Vec<u8>)>>(STATE_MAGIC, "state", "f", &bytes[..cut]).is_err(), "cut {cut}");
        }
        let mut flipped = bytes.clone();
        flipped[22] ^= 0x40;
        let e = decode::<Vec<(u32, Vec<u8>)>>(STATE_MAGIC, "state", "f", &flipped).unwrap_err();
        assert!(e.to_string().contains("checksum"), "{e}");
        let mut v2 = bytes.clone();
        v2[8] = 3;
        let e = decode::<Vec<(u32, Vec<u8>)>>(STATE_MAGIC, "state", "f", &v2).unwrap_err();
        assert!(e.to_string().contains("version 3"), "{e}");
        assert!(matches!(
            decode::<Vec<(u32, Vec<u8>)>>(METADATA_MAGIC, "m", "f", &bytes),
            Err(StateError::BadMagic { .. })
        ));
    }

    #[test]
    fn a_failed_write_leaves_no_temporary_file_and_creates_no_directory() {
        let dir = std::env::temp_dir().join(format!("flowc-write-atomic-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // The rename fails: a directory holds the file's name.
        std::fs::create_dir_all(dir.join("a.state")).unwrap();
        assert!(write_atomic(&dir.join("a.state"), b"state").is_err());
        let left: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.file_name()).collect();
        assert_eq!(left, vec![std::ffi::OsString::from("a.state")], "only the blocking directory is left");
        // A missing directory is not created: a late writer of an abandoned
        // checkpoint cannot bring its directory back.
        let gone = dir.join("chk-7");
        assert!(write_atomic(&gone.join("b.state"), b"state").is_err());
        assert!(!gone.exists());
        // A file planted at the temporary name (a symbolic link, say) is not written through.
        std::os::unix::fs::symlink(dir.join("elsewhere"), dir.join("c.state.inprogress")).unwrap();
        assert!(write_atomic(&dir.join("c.state"), b"state").is_err());
        assert!(!dir.join("elsewhere").exists());
        write_atomic(&dir.join("d.state"), b"state").unwrap();
        assert_eq!(std::fs::read(dir.join("d.state")).unwrap(), b"state");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn validate_checks_every_state_file_and_classifies_the_failure() {
        let dir = std::env::temp_dir().join(format!("flowc-validate-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let state = TaskState { vertex: VertexId::default(), subtask: 0, operators: Vec::new() };
        write_atomic(&dir.join("v-0.state"), &encode(STATE_MAGIC, &state)).unwrap();
        let metadata = CheckpointMetadata {
            job_id: "j".into(),
            job_name: "j".into(),
            checkpoint_id: 3,
            savepoint: false,
            timestamp: 0,
            max_parallelism: 128,
            tasks: vec![TaskEntry {
                vertex: VertexId::default(),
                vertex_name: "v".into(),
                subtask: 0,
                parallelism: 1,
                operators: Vec::new(),
                file: Some("v-0.state".into()),
                size: 1,
            }],
        };
        write_atomic(&dir.join(METADATA_FILE), &encode(METADATA_MAGIC, &metadata)).unwrap();
        assert_eq!(validate(&dir).unwrap().checkpoint_id, 3);
        let mut bytes = std::fs::read(dir.join("v-0.state")).unwrap();
        let at = bytes.len() - 9;
        bytes[at] ^= 0xff;
        std::fs::write(dir.join("v-0.state"), &bytes).unwrap();
        let e = validate(&dir).unwrap_err();
        assert!(e.is_corruption() && e.to_string().contains("checksum mismatch"), "{e}");
        std::fs::remove_file(dir.join("v-0.state")).unwrap();
        assert!(validate(&dir).unwrap_err().is_corruption(), "a missing state file");
        let e = StateError::Read {
            path: "x".into(),
            source: std::io::Error::new(std::io::ErrorKind::PermissionDenied, "denied"),
        };
        assert!(!e.is_corruption(), "a failure to read may pass");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn locations() {
        assert_eq!(checkpoint_dir("file:/tmp/sp"), PathBuf::from("/tmp/sp"));
        assert_eq!(checkpoint_dir("file:///tmp/sp"), PathBuf::from("/tmp/sp"));
        assert_eq!(checkpoint_dir("/tmp/sp"), PathBuf::from("/tmp/sp"));
    }
}
