//! The HA job store without ZooKeeper: `jobs/<job-id>/<entry>.bin` under
//! the storageDir (files or S3 objects, [`Payloads`]), each replaced whole
//! and checked on read. For a JobManager without ZooKeeper that is given a
//! storageDir.

use super::{Entry, JobStore, Payloads, StoreError};
use crate::ids::JobId;
use std::path::PathBuf;

pub struct FileJobStore {
    /// `<storageDir>/<cluster-id>`.
    payloads: Payloads,
}

impl FileJobStore {
    /// A store of files under `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> FileJobStore {
        FileJobStore::on(Payloads::Files(dir.into()))
    }

    /// A store of the payloads `payloads` (files or S3 objects).
    pub fn on(payloads: Payloads) -> FileJobStore {
        FileJobStore { payloads }
    }

    fn path(job: JobId, entry: Entry) -> String {
        format!("jobs/{job}/{}.bin", entry.name())
    }
}

impl JobStore for FileJobStore {
    fn describe(&self) -> String {
        self.payloads.describe()
    }

    fn put(&self, job: JobId, entry: Entry, payload: &[u8]) -> Result<(), StoreError> {
        self.payloads.write(&Self::path(job, entry), payload)
    }

    fn get(&self, job: JobId, entry: Entry) -> Result<Option<Vec<u8>>, StoreError> {
        self.payloads.read(&Self::path(job, entry), || format!("the {} of job {job}", entry.name()))
    }

    fn jobs(&self) -> Result<Vec<JobId>, StoreError> {
        let mut ids: Vec<JobId> = self.payloads.children("jobs")?.iter().filter_map(|n| JobId::parse(n)).collect();
        ids.sort();
        Ok(ids)
    }

    fn remove(&self, job: JobId) -> Result<(), StoreError> {
        for entry in Entry::ALL {
            self.payloads.remove(&Self::path(job, entry))?;
        }
        self.payloads.remove_all(&format!("jobs/{job}"))
    }
}
