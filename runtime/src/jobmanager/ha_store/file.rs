//! The HA job store in files only: `<dir>/jobs/<job-id>/<entry>.bin`,
//! each replaced atomically (temp + rename) and checked on read. For a
//! JobManager without ZooKeeper that is given a storageDir.

use super::{read_sealed, write_sealed, Entry, JobStore, StoreError};
use crate::ids::JobId;
use std::path::PathBuf;

pub struct FileJobStore {
    /// `<storageDir>/<cluster-id>`.
    dir: PathBuf,
}

impl FileJobStore {
    pub fn new(dir: impl Into<PathBuf>) -> FileJobStore {
        FileJobStore { dir: dir.into() }
    }

    fn jobs_dir(&self) -> PathBuf {
        self.dir.join("jobs")
    }

    fn path(&self, job: JobId, entry: Entry) -> PathBuf {
        self.jobs_dir().join(job.to_string()).join(format!("{}.bin", entry.name()))
    }
}

impl JobStore for FileJobStore {
    fn describe(&self) -> String {
        format!("files under {}", self.dir.display())
    }

    fn put(&self, job: JobId, entry: Entry, payload: &[u8]) -> Result<(), StoreError> {
        write_sealed(&self.path(job, entry), payload)
    }

    fn get(&self, job: JobId, entry: Entry) -> Result<Option<Vec<u8>>, StoreError> {
        read_sealed(&self.path(job, entry), || format!("the {} of job {job}", entry.name()))
    }

    fn jobs(&self) -> Result<Vec<JobId>, StoreError> {
        let dir = self.jobs_dir();
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(StoreError::io(&dir, e)),
        };
        let mut ids: Vec<JobId> =
            entries.filter_map(|e| e.ok()).filter_map(|e| JobId::parse(e.file_name().to_str()?)).collect();
        ids.sort();
        Ok(ids)
    }

    fn remove(&self, job: JobId) -> Result<(), StoreError> {
        for entry in Entry::ALL {
            let path = self.path(job, entry);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(StoreError::io(&path, e)),
            }
        }
        let dir = self.jobs_dir().join(job.to_string());
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::io(&dir, e)),
        }
    }
}
