//! [`FileStorage`]: checkpoints in a local or shared file system, for
//! plain and `file:` paths. A checkpoint is a directory; every file in it
//! is written to a temporary name, synced and renamed.

use super::{CheckpointStorage, StorageError};
use crate::checkpoint::format::{
    encode, temporary_name, validate, write_atomic, CheckpointMetadata, StateError, METADATA_FILE, METADATA_MAGIC,
};
use crate::checkpoint::state_file::{StateFileWriter, StateSink};
use flowc_compiler::ids::VertexId;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Checkpoints in a local or shared file system.
#[derive(Debug, Clone, Copy, Default)]
pub struct FileStorage;

impl CheckpointStorage for FileStorage {
    fn prepare(&self, dir: &Path) -> Result<(), StorageError> {
        std::fs::create_dir_all(dir).map_err(|source| StorageError::Create { path: dir.display().to_string(), source })
    }

    fn write_metadata(&self, dir: &Path, metadata: &CheckpointMetadata) -> Result<(), StorageError> {
        // Into the directory made by `prepare`: if it is gone, so are the
        // state files, and `write_atomic` never makes it again.
        Ok(write_atomic(&dir.join(METADATA_FILE), &encode(METADATA_MAGIC, metadata))?)
    }

    fn remove(&self, dir: &Path) -> Result<(), StorageError> {
        match std::fs::remove_dir_all(dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(StorageError::Remove { path: dir.display().to_string(), source: e })
            }
            _ => Ok(()),
        }
    }

    fn list(&self, base: &Path) -> Result<Vec<(u64, PathBuf)>, StorageError> {
        let entries = match std::fs::read_dir(base) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(StorageError::List { path: base.display().to_string(), source }),
        };
        Ok(entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name();
                let n = name.to_str()?.strip_prefix("chk-")?.parse::<u64>().ok()?;
                Some((n, e.path()))
            })
            .collect())
    }

    fn write_state(&self, dir: &Path, name: &str, bytes: &[u8]) -> Result<(), StorageError> {
        // Into the directory made by `prepare`; never made again here.
        Ok(write_atomic(&dir.join(name), bytes)?)
    }

    fn write_task_state_with(
        &self,
        dir: &Path,
        name: &str,
        vertex: VertexId,
        subtask: u32,
        fill: &mut dyn FnMut(&mut dyn StateSink) -> std::io::Result<()>,
    ) -> Result<Option<u64>, StorageError> {
        // Each part goes into the file as it comes: the state is not held
        // twice. The temporary file is made at the first part (none for a
        // subtask without state), into the directory `prepare` made.
        let path = dir.join(name);
        let tmp = temporary_name(&path);
        let created = std::cell::Cell::new(false);
        let mut w =
            StateFileWriter::new(LazyFile { path: tmp.clone(), file: None, created: &created }, vertex, subtask);
        let written = fill(&mut w).and_then(|()| w.finish()).and_then(|done| {
            let Some((out, len, size)) = done else { return Ok(None) };
            let Some(file) = out.file else { return Ok(None) };
            let mut file = file.into_inner().map_err(|e| e.into_error())?;
            file.seek(SeekFrom::Start(12))?;
            file.write_all(&len.to_le_bytes())?;
            file.sync_all()?;
            drop(file);
            std::fs::rename(&tmp, &path)?;
            Ok(Some(size))
        });
        // On failure the writer (and its file) was dropped: remove what it
        // made, and only that.
        written
            .inspect_err(|_| {
                if created.get() {
                    let _ = std::fs::remove_file(&tmp);
                }
            })
            .map_err(|source| StorageError::State(StateError::Write { path: path.display().to_string(), source }))
    }

    fn read(&self, path: &Path) -> Result<Vec<u8>, StateError> {
        std::fs::read(path).map_err(|source| StateError::Read { path: path.display().to_string(), source })
    }

    fn validate(&self, dir: &Path) -> Result<CheckpointMetadata, StateError> {
        validate(dir)
    }
}

/// A file made at its first write: `create_new`, so that nothing planted
/// at the temporary name is written through.
struct LazyFile<'a> {
    path: PathBuf,
    file: Option<std::io::BufWriter<std::fs::File>>,
    created: &'a std::cell::Cell<bool>,
}

impl Write for LazyFile<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match &mut self.file {
            Some(f) => f.write(buf),
            None => {
                let f = std::fs::File::create_new(&self.path)?;
                self.created.set(true);
                self.file.insert(std::io::BufWriter::with_capacity(1 << 20, f)).write(buf)
            }
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.as_mut().map_or(Ok(()), |f| f.flush())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("flowc-storage-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn metadata(id: u64) -> CheckpointMetadata {
        CheckpointMetadata {
            job_id: "j".into(),
            job_name: "j".into(),
            checkpoint_id: id,
            savepoint: false,
            timestamp: 0,
            max_parallelism: 128,
            tasks: Vec::new(),
        }
    }

    #[test]
    fn metadata_goes_only_into_a_prepared_checkpoint_and_removal_is_idempotent() {
        let base = scratch("files");
        let s = FileStorage;
        let chk = base.join("chk-3");
        assert!(s.write_metadata(&chk, &metadata(3)).is_err(), "never creates the checkpoint itself");
        assert!(!chk.exists());
        s.prepare(&chk).expect("prepare");
        s.write_metadata(&chk, &metadata(3)).expect("write");
        assert_eq!(s.validate(&chk).expect("valid").checkpoint_id, 3);
        std::fs::create_dir_all(base.join("chk-x")).expect("mkdir");
        std::fs::create_dir_all(base.join("savepoint-1")).expect("mkdir");
        assert_eq!(s.list(&base).expect("list"), vec![(3, chk.clone())]);
        s.remove(&chk).expect("remove");
        s.remove(&chk).expect("removing what is gone succeeds");
        assert_eq!(s.list(&base.join("nothing")).expect("a missing base lists nothing"), Vec::new());
        let _ = std::fs::remove_dir_all(&base);
    }

    #[test]
    fn a_checkpoint_that_cannot_be_made_names_its_path() {
        let blocker = scratch("blocker");
        std::fs::write(&blocker, b"a file").expect("write");
        let e = FileStorage.prepare(&blocker.join("chk-1")).expect_err("under a file");
        assert!(e.to_string().starts_with("cannot create `"), "{e}");
        let _ = std::fs::remove_file(&blocker);
    }
}
