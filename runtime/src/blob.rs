//! The JobManager's blob store: UDF artifacts by digest, in
//! `<blob.storage.directory>/jobmanager/<hex>.flowcudf`.
//!
//! Clients upload an artifact (`POST /blobs`) before they submit a plan
//! that names it; a plan naming an artifact the store lacks is refused at
//! submission. TaskManagers fetch what their deployments need over RPC
//! (`FetchBlob`). Every read checks the file against its digest, so a
//! corrupted file is reported as such, never served.

use flowc_compiler::graph::JobGraph;
use flowc_compiler::udf::artifact;
use std::path::{Path, PathBuf};

/// Artifacts are a few megabytes; this bounds an upload.
pub const MAX_BLOB_BYTES: u64 = 256 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("`{0}` is not a digest (`sha256:` and 64 hex digits)")]
    BadDigest(String),
    #[error("the blob store has no {0}")]
    NotFound(String),
    #[error("{digest} in the blob store is corrupt: its content has digest {actual}")]
    Corrupt { digest: String, actual: String },
    #[error("not a flowc UDF artifact: {0}")]
    NotAnArtifact(String),
    #[error("the blob is {0} bytes, more than the {MAX_BLOB_BYTES} allowed")]
    TooLarge(u64),
    #[error("blob store i/o: {0}")]
    Io(String),
}

#[derive(Debug, Clone)]
pub struct BlobStore {
    dir: PathBuf,
}

impl BlobStore {
    pub fn new(dir: impl Into<PathBuf>) -> BlobStore {
        BlobStore { dir: dir.into() }
    }

    fn path(&self, digest: &str) -> Result<PathBuf, BlobError> {
        if !artifact::is_digest(digest) {
            return Err(BlobError::BadDigest(digest.to_string()));
        }
        Ok(self.dir.join(format!("{}.flowcudf", &digest[7..])))
    }

    /// Stores an artifact; its digest.
    pub fn put(&self, bytes: &[u8]) -> Result<String, BlobError> {
        if bytes.len() as u64 > MAX_BLOB_BYTES {
            return Err(BlobError::TooLarge(bytes.len() as u64));
        }
        let tmp = self.part_path()?;
        let io = |e: std::io::Error| BlobError::Io(format!("`{}`: {e}", tmp.display()));
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .and_then(|mut f| std::io::Write::write_all(&mut f, bytes));
        let stored = written.map_err(io).and_then(|()| self.put_file(&tmp, &artifact::digest(bytes)));
        let _ = std::fs::remove_file(&tmp);
        stored
    }

    /// A fresh name in the store's directory (made if missing) for an
    /// artifact on its way in, to hand to [`BlobStore::put_file`]; names
    /// starting with `.` are never served.
    pub fn part_path(&self) -> Result<PathBuf, BlobError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| BlobError::Io(format!("`{}`: {e}", self.dir.display())))?;
        Ok(self.dir.join(format!(".incoming-{:016x}.part", rand::random::<u64>())))
    }

    /// Stores the artifact in the file `part` (from [`BlobStore::part_path`]),
    /// whose content has `digest`, by renaming it into place: its layout is
    /// checked by reading it in chunks, so memory stays flat whatever its
    /// size. An error leaves `part` for the caller to remove.
    pub fn put_file(&self, part: &Path, digest: &str) -> Result<String, BlobError> {
        let path = self.path(digest)?;
        let io = |e: std::io::Error| BlobError::Io(format!("`{}`: {e}", part.display()));
        let file = std::fs::File::open(part).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        if len > MAX_BLOB_BYTES {
            return Err(BlobError::TooLarge(len));
        }
        artifact::check_layout(&mut std::io::BufReader::new(file), len)
            .map_err(|e| BlobError::NotAnArtifact(e.to_string()))?;
        if file_digest(&path).is_ok_and(|d| d == digest) {
            std::fs::remove_file(part).map_err(io)?;
            return Ok(digest.to_string());
        }
        std::fs::rename(part, &path).map_err(|e| BlobError::Io(format!("`{}`: {e}", path.display())))?;
        tracing::info!(digest = %digest, bytes = len, "Stored a UDF artifact.");
        Ok(digest.to_string())
    }

    /// The artifact with this digest, checked.
    pub fn get(&self, digest: &str) -> Result<Vec<u8>, BlobError> {
        let path = self.path(digest)?;
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(BlobError::NotFound(digest.to_string())),
            Err(e) => return Err(BlobError::Io(format!("`{}`: {e}", path.display()))),
        };
        let actual = artifact::digest(&bytes);
        if actual != digest {
            return Err(BlobError::Corrupt { digest: digest.to_string(), actual });
        }
        Ok(bytes)
    }

    /// Why a plan cannot run as far as its UDF artifacts go: one it calls
    /// was never built, or is not in the store.
    pub fn check_plan(&self, g: &JobGraph) -> Result<(), String> {
        for lib in &g.udfs {
            let Some(a) = &lib.artifact else {
                return Err(format!(
                    "the plan calls the Rust UDFs of `{}`, which were never built: compile the job with `flowc compile` or submit it with `flowc run`",
                    lib.path
                ));
            };
            match self.path(&a.digest) {
                Ok(p) if p.exists() => {}
                _ => {
                    return Err(format!(
                        "the UDF artifact {} of `{}` is not in the blob store: upload it first (`POST /blobs` with the artifact file; `flowc run` does)",
                        a.digest, lib.path
                    ))
                }
            }
        }
        Ok(())
    }
}

/// `sha256:<hex>` of a file, read in chunks.
fn file_digest(path: &Path) -> std::io::Result<String> {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    std::io::copy(&mut std::fs::File::open(path)?, &mut hash)?;
    Ok(artifact::format_digest(&hash.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowc_compiler::udf::artifact::Artifact;

    fn artifact() -> Vec<u8> {
        Artifact {
            abi_version: 1,
            target: "t".into(),
            flowc_version: "v".into(),
            signatures: String::new(),
            cdylib: vec![7; 100],
            sidecar: vec![],
        }
        .to_bytes()
    }

    #[test]
    fn stores_by_digest_and_refuses_what_does_not_match() {
        let dir = std::env::temp_dir().join(format!("flowc-blob-test-{}", rand::random::<u64>()));
        let store = BlobStore::new(&dir);
        let bytes = artifact();
        let d = store.put(&bytes).expect("stored");
        assert_eq!(d, artifact::digest(&bytes));
        assert_eq!(store.get(&d).expect("read"), bytes);
        assert!(matches!(store.put(b"garbage"), Err(BlobError::NotAnArtifact(_))));
        // Stored again: the same digest, nothing else left in the store.
        assert_eq!(store.put(&bytes).expect("stored again"), d);
        let names: Vec<_> = std::fs::read_dir(&dir).expect("dir").flatten().map(|e| e.file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from(format!("{}.flowcudf", &d[7..]))]);
        assert!(matches!(store.get("sha256:../x"), Err(BlobError::BadDigest(_))));
        let other = artifact::digest(b"x");
        assert!(matches!(store.get(&other), Err(BlobError::NotFound(_))));
        // A file changed on disk is reported, not served.
        std::fs::write(dir.join(format!("{}.flowcudf", &d[7..])), b"changed").expect("write");
        assert!(matches!(store.get(&d), Err(BlobError::Corrupt { .. })));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
