//! Choosing what a restart restores: the candidates (the retained
//! checkpoints newest first, then the savepoint the job started from) are
//! validated in order — `_metadata` and every state file's frame and
//! checksum — and the first that passes is restored. Those that fail as
//! corrupt, truncated, foreign or incomplete are skipped (the JobManager
//! never tries them again). A failure to read that may pass (permissions,
//! too many open files) stops the search: falling back past a good
//! checkpoint for a passing reason would roll the job back for nothing.
//!
//! This reads storage, so the JobManager's shell runs it off its lock and
//! hands the [`RestoreChoice`] back to the job as an event.

use super::format::StateError;
use super::storage::CheckpointStorage;
use super::{CheckpointRef, RestorePoint};

/// Which checkpoint a deployment restores, after validating the candidates.
#[derive(Debug)]
pub struct RestoreChoice {
    /// Candidates that failed validation (newest first), with why.
    pub skipped: Vec<(CheckpointRef, StateError)>,
    pub outcome: RestoreOutcome,
}

#[derive(Debug)]
pub enum RestoreOutcome {
    Chosen(RestorePoint),
    /// A candidate could not be read, for a reason that may pass: the job
    /// tries again later rather than fall back past it.
    Unreadable(CheckpointRef, StateError),
    /// Every candidate failed validation (or there was none).
    NoneValid,
}

/// Validates `candidates` in order until one passes.
pub fn choose_restore(candidates: Vec<CheckpointRef>, storage: &dyn CheckpointStorage) -> RestoreChoice {
    let mut skipped = Vec::new();
    for c in candidates {
        match storage.validate(&c.dir) {
            // The metadata in storage is what is restored.
            Ok(metadata) => {
                return RestoreChoice {
                    skipped,
                    outcome: RestoreOutcome::Chosen(RestorePoint { checkpoint: c, metadata }),
                }
            }
            Err(e) if e.is_corruption() => skipped.push((c, e)),
            Err(e) => return RestoreChoice { skipped, outcome: RestoreOutcome::Unreadable(c, e) },
        }
    }
    RestoreChoice { skipped, outcome: RestoreOutcome::NoneValid }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::format::{
        encode, write_atomic, CheckpointMetadata, TaskEntry, TaskState, METADATA_FILE, METADATA_MAGIC, STATE_MAGIC,
    };
    use crate::checkpoint::storage::FileStorage;
    use std::path::{Path, PathBuf};

    /// A checkpoint `id` of two subtasks' state files in `base/chk-<id>`.
    fn checkpoint(base: &Path, id: u64) -> CheckpointRef {
        let dir = base.join(format!("chk-{id}"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut tasks = Vec::new();
        for subtask in 0..2 {
            let file = format!("v-{subtask}.state");
            let state = TaskState { vertex: Default::default(), subtask, operators: Vec::new() };
            write_atomic(&dir.join(&file), &encode(STATE_MAGIC, &state)).unwrap();
            tasks.push(TaskEntry {
                vertex: Default::default(),
                vertex_name: "v".into(),
                subtask,
                parallelism: 2,
                operators: Vec::new(),
                file: Some(file),
                size: 1,
            });
        }
        let metadata = CheckpointMetadata {
            job_id: "j".into(),
            job_name: "j".into(),
            checkpoint_id: id,
            savepoint: false,
            timestamp: 0,
            max_parallelism: 128,
            tasks,
        };
        write_atomic(&dir.join(METADATA_FILE), &encode(METADATA_MAGIC, &metadata)).unwrap();
        assert_eq!(metadata.checkpoint_id, id);
        CheckpointRef { id, dir, savepoint: false }
    }

    fn flip_8_bytes(path: &Path) {
        let mut bytes = std::fs::read(path).unwrap();
        let at = bytes.len() / 2;
        bytes[at..at + 8].iter_mut().for_each(|b| *b ^= 0xA5);
        std::fs::write(path, bytes).unwrap();
    }

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("flowc-fallback-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn check(candidates: Vec<CheckpointRef>) -> (Vec<u64>, String) {
        let choice = choose_restore(candidates, &FileStorage);
        let skipped = choice.skipped.iter().map(|(c, _)| c.id).collect();
        let outcome = match choice.outcome {
            RestoreOutcome::Chosen(c) => format!("chosen {}", c.checkpoint.id),
            RestoreOutcome::Unreadable(c, e) => format!("unreadable {}: {e}", c.id),
            RestoreOutcome::NoneValid => "none".into(),
        };
        (skipped, outcome)
    }

    #[test]
    fn the_newest_valid_checkpoint_is_chosen_and_corrupt_ones_are_skipped() {
        let base = scratch("choice");
        let cps: Vec<CheckpointRef> = [9, 8, 7].iter().map(|id| checkpoint(&base, *id)).collect();
        assert_eq!(check(cps.clone()), (vec![], "chosen 9".into()));
        flip_8_bytes(&cps[0].dir.join("v-1.state"));
        assert_eq!(check(cps.clone()), (vec![9], "chosen 8".into()));
        // A missing state file, a truncated _metadata: skipped too.
        std::fs::remove_file(cps[1].dir.join("v-0.state")).unwrap();
        assert_eq!(check(cps.clone()), (vec![9, 8], "chosen 7".into()));
        let meta = std::fs::read(cps[2].dir.join(METADATA_FILE)).unwrap();
        std::fs::write(cps[2].dir.join(METADATA_FILE), &meta[..meta.len() - 3]).unwrap();
        assert_eq!(check(cps.clone()), (vec![9, 8, 7], "none".into()));
        assert_eq!(check(Vec::new()), (vec![], "none".into()));
        let _ = std::fs::remove_dir_all(&base);
    }

    #[test]
    fn a_checkpoint_that_cannot_be_read_now_stops_the_search() {
        let base = scratch("unreadable");
        let cps: Vec<CheckpointRef> = [5, 4].iter().map(|id| checkpoint(&base, *id)).collect();
        // Not corrupt, not missing: reading it fails (here: it is a directory).
        std::fs::remove_file(cps[0].dir.join("v-0.state")).unwrap();
        std::fs::create_dir(cps[0].dir.join("v-0.state")).unwrap();
        let (skipped, outcome) = check(cps);
        assert_eq!(skipped, Vec::<u64>::new());
        assert!(outcome.starts_with("unreadable 5"), "{outcome}");
        let _ = std::fs::remove_dir_all(&base);
    }
}
