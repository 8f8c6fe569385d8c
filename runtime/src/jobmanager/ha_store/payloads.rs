//! Where the HA job store keeps its payloads (`high-availability.storageDir`
//! joined with the cluster id): a directory of a local or mounted file
//! system, or a prefix in an S3 bucket (`s3://bucket/path`) written through
//! the object-store checkpoint storage and its `s3.*` settings.
//!
//! Every payload is sealed (a header and its SHA-256, checked on read). A
//! file is written to a temporary name, synced and renamed; an object is
//! written by one PUT, which S3 makes visible whole or not at all. Either
//! way a reader sees the old payload or the new one, never half of one.

use super::{read_sealed, seal, unseal, write_sealed, StoreError};
use crate::checkpoint::storage::{CheckpointStorage, ObjectStoreStorage, S3Settings};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The payloads' home, addressed by paths relative to it
/// (`jobs/<job-id>/<entry>.bin`).
#[derive(Clone)]
pub enum Payloads {
    /// `<storageDir>/<cluster-id>` in a file system.
    Files(PathBuf),
    /// `s3://bucket/path/<cluster-id>`.
    Objects { storage: Arc<ObjectStoreStorage>, base: PathBuf },
}

impl Payloads {
    /// The payloads of `storage_dir` (a path, `file://…` or `s3://…`) for
    /// the cluster `cluster_id`.
    pub fn new(storage_dir: &str, cluster_id: &str, s3: &S3Settings) -> Result<Payloads, StoreError> {
        let v = storage_dir.trim();
        let cluster = cluster_id.trim_start_matches('/');
        if crate::checkpoint::storage::is_object_location(v) {
            let base = PathBuf::from(v.trim_end_matches('/')).join(cluster);
            let bucket = crate::checkpoint::storage::object_location(&base).map(|(b, _)| b).unwrap_or_default();
            if bucket.is_empty() {
                return Err(StoreError::UnsupportedScheme(v.to_owned()));
            }
            return Ok(Payloads::Objects { storage: Arc::new(ObjectStoreStorage::new(s3.clone())), base });
        }
        if let Some(path) = v.strip_prefix("file://") {
            return Ok(Payloads::Files(PathBuf::from(path).join(cluster)));
        }
        if v.contains("://") {
            return Err(StoreError::UnsupportedScheme(v.to_owned()));
        }
        Ok(Payloads::Files(PathBuf::from(v).join(cluster)))
    }

    /// Where they are, for logs.
    pub fn describe(&self) -> String {
        match self {
            Payloads::Files(dir) => format!("files under {}", dir.display()),
            Payloads::Objects { base, .. } => format!("objects under {}", base.display()),
        }
    }

    fn location(&self, rel: &str) -> PathBuf {
        match self {
            Payloads::Files(dir) => dir.join(rel),
            Payloads::Objects { base, .. } => base.join(rel),
        }
    }

    /// Writes `payload` sealed as `rel`, replacing what was there.
    pub fn write(&self, rel: &str, payload: &[u8]) -> Result<(), StoreError> {
        let at = self.location(rel);
        match self {
            Payloads::Files(_) => write_sealed(&at, payload),
            Payloads::Objects { storage, .. } => {
                storage.put_object(&at, seal(payload)).map_err(|e| StoreError::io(&at, e))
            }
        }
    }

    /// The payload of `rel`, checked; `None` if there is none. `what`
    /// names it in errors.
    pub fn read(&self, rel: &str, what: impl Fn() -> String) -> Result<Option<Vec<u8>>, StoreError> {
        let at = self.location(rel);
        match self {
            Payloads::Files(_) => read_sealed(&at, what),
            Payloads::Objects { storage, .. } => {
                let Some(bytes) = storage.get_object(&at).map_err(|e| StoreError::io(&at, e))? else {
                    return Ok(None);
                };
                match unseal(&bytes) {
                    Ok(payload) => Ok(Some(payload.to_vec())),
                    Err(reason) => {
                        Err(StoreError::Corrupt { what: format!("{} (`{}`)", what(), at.display()), reason })
                    }
                }
            }
        }
    }

    /// Removes the payload `rel`; one that is not there is no error.
    pub fn remove(&self, rel: &str) -> Result<(), StoreError> {
        let at = self.location(rel);
        match self {
            Payloads::Files(_) => match std::fs::remove_file(&at) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(StoreError::io(&at, e)),
            },
            Payloads::Objects { storage, .. } => storage.delete_object(&at).map_err(|e| StoreError::io(&at, e)),
        }
    }

    /// Removes everything under `rel` (a job's payloads).
    pub fn remove_all(&self, rel: &str) -> Result<(), StoreError> {
        let at = self.location(rel);
        match self {
            Payloads::Files(_) => match std::fs::remove_dir_all(&at) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(StoreError::io(&at, e)),
            },
            Payloads::Objects { storage, .. } => storage.remove(&at).map_err(|e| StoreError::io(&at, e)),
        }
    }

    /// The names directly under `rel`; none if it is not there.
    pub fn children(&self, rel: &str) -> Result<Vec<String>, StoreError> {
        let at = self.location(rel);
        match self {
            Payloads::Files(_) => {
                let entries = match std::fs::read_dir(&at) {
                    Ok(e) => e,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
                    Err(e) => return Err(StoreError::io(&at, e)),
                };
                Ok(entries.filter_map(|e| e.ok()).filter_map(|e| e.file_name().to_str().map(str::to_string)).collect())
            }
            Payloads::Objects { storage, .. } => storage.children(&at).map_err(|e| StoreError::io(&at, e)),
        }
    }
}

impl From<&Path> for Payloads {
    fn from(dir: &Path) -> Payloads {
        Payloads::Files(dir.to_path_buf())
    }
}

impl From<PathBuf> for Payloads {
    fn from(dir: PathBuf) -> Payloads {
        Payloads::Files(dir)
    }
}

impl From<&PathBuf> for Payloads {
    fn from(dir: &PathBuf) -> Payloads {
        Payloads::Files(dir.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_storage_dir_names_files_or_objects() {
        let s3 = S3Settings::default();
        let at = |dir: &str| Payloads::new(dir, "/prod", &s3).map(|p| p.describe());
        assert_eq!(at("/var/ha").ok().as_deref(), Some("files under /var/ha/prod"));
        assert_eq!(at("file:///var/ha").ok().as_deref(), Some("files under /var/ha/prod"));
        assert_eq!(at("s3://bucket/ha/").ok().as_deref(), Some("objects under s3://bucket/ha/prod"));
        assert_eq!(at("s3a://bucket").ok().as_deref(), Some("objects under s3a://bucket/prod"));
        assert!(matches!(at("hdfs://nn/ha"), Err(StoreError::UnsupportedScheme(_))));
        assert!(matches!(at("s3:///ha"), Err(StoreError::UnsupportedScheme(_))));
    }

    #[test]
    fn files_are_written_read_listed_and_removed_by_relative_path() {
        let dir = std::env::temp_dir().join(format!("flowc-ha-payloads-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let p = Payloads::from(&dir);
        p.write("jobs/a/x.bin", b"payload").expect("write");
        assert_eq!(p.read("jobs/a/x.bin", || "x".into()).expect("read"), Some(b"payload".to_vec()));
        assert_eq!(p.read("jobs/a/y.bin", || "y".into()).expect("read"), None);
        assert_eq!(p.children("jobs").expect("list"), vec!["a".to_string()]);
        assert_eq!(p.children("nothing").expect("list"), Vec::<String>::new());
        p.remove("jobs/a/x.bin").expect("remove");
        p.remove("jobs/a/x.bin").expect("removing what is gone succeeds");
        p.remove_all("jobs/a").expect("remove all");
        assert_eq!(p.children("jobs").expect("list"), Vec::<String>::new());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
