//! The JobManager's checkpoint coordinator for one job: triggers
//! checkpoints and savepoints, collects the subtasks' acknowledgements,
//! writes `_metadata` when all are in, keeps the last completed checkpoints
//! and their statistics.
//!
//! It holds data only; the JobManager decides when to trigger and sends the
//! barriers. At most one checkpoint is pending at a time.

use super::format::{encode, write_atomic, CheckpointMetadata, TaskEntry, METADATA_FILE, METADATA_MAGIC};
use super::{Barrier, StopMode};
use crate::ids::{JobId, SubtaskId};
use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Completed checkpoints kept on disk (savepoints are never deleted).
pub const RETAINED: usize = 3;
/// Statistics of this many recent checkpoints are kept for REST.
const HISTORY: usize = 10;

/// A savepoint someone asked for.
#[derive(Debug, Clone)]
pub struct SavepointRequest {
    pub trigger_id: String,
    pub stop: Option<StopMode>,
}

#[derive(Debug)]
pub struct Pending {
    pub id: u64,
    pub trigger_ms: i64,
    started: Instant,
    pub dir: PathBuf,
    pub savepoint: Option<SavepointRequest>,
    expected: usize,
    acks: BTreeMap<SubtaskId, TaskEntry>,
}

impl Pending {
    pub fn age(&self) -> std::time::Duration {
        self.started.elapsed()
    }
}

/// A completed checkpoint or savepoint.
#[derive(Debug, Clone)]
pub struct Completed {
    pub id: u64,
    pub dir: PathBuf,
    pub savepoint: bool,
    pub metadata: CheckpointMetadata,
}

/// The checkpoint or savepoint the job's current attempt started from.
#[derive(Debug, Clone)]
pub struct Restored {
    pub id: u64,
    pub dir: PathBuf,
    pub savepoint: bool,
    pub timestamp: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    InProgress,
    Completed,
    Failed,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::InProgress => "IN_PROGRESS",
            Status::Completed => "COMPLETED",
            Status::Failed => "FAILED",
        }
    }
}

/// Statistics of one checkpoint, as `/jobs/:jid/checkpoints` shows them.
#[derive(Debug, Clone)]
pub struct Stats {
    pub id: u64,
    pub status: Status,
    pub savepoint: bool,
    pub trigger_ms: i64,
    pub latest_ack_ms: i64,
    pub state_size: u64,
    pub duration_ms: i64,
    pub num_subtasks: usize,
    pub num_acknowledged: usize,
    pub external_path: Option<String>,
    pub failure: Option<String>,
}

/// What an acknowledgement led to.
#[derive(Debug)]
pub enum AckOutcome {
    /// Nothing yet (or a stale ack).
    Pending,
    Completed(Completed, Option<SavepointRequest>),
    /// A subtask declined or `_metadata` could not be written.
    Failed {
        id: u64,
        reason: String,
        savepoint: Option<SavepointRequest>,
    },
}

pub struct Coordinator {
    job_id: JobId,
    job_name: String,
    max_parallelism: u32,
    /// `<state.checkpoints.dir>/<job-id>`
    base: PathBuf,
    next_id: u64,
    pub pending: Option<Pending>,
    completed: VecDeque<Completed>,
    /// The savepoint or checkpoint the job was started from, until a
    /// checkpoint of its own completes.
    pub initial: Option<Completed>,
    pub history: VecDeque<Stats>,
    pub counts: Counts,
    pub last_trigger: Option<Instant>,
    pub last_restore: Option<Restored>,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Counts {
    pub completed: u64,
    pub failed: u64,
    pub restored: u64,
}

impl Coordinator {
    pub fn new(job_id: JobId, job_name: &str, max_parallelism: u32, checkpoints_dir: &Path) -> Coordinator {
        Coordinator {
            job_id,
            job_name: job_name.to_string(),
            max_parallelism,
            base: checkpoints_dir.join(job_id.to_string()),
            next_id: 1,
            pending: None,
            completed: VecDeque::new(),
            initial: None,
            history: VecDeque::new(),
            counts: Counts::default(),
            last_trigger: None,
            last_restore: None,
        }
    }

    /// Starts a checkpoint (or a savepoint into `savepoint_dir`) that
    /// `expected` subtasks must acknowledge; returns its barrier.
    pub fn trigger(&mut self, now_ms: i64, expected: usize, savepoint: Option<(PathBuf, SavepointRequest)>) -> Barrier {
        let id = self.next_id;
        self.next_id += 1;
        self.last_trigger = Some(Instant::now());
        let (dir, request) = match savepoint {
            Some((dir, r)) => (dir, Some(r)),
            None => (self.base.join(format!("chk-{id}")), None),
        };
        let barrier = Barrier {
            id,
            dir: dir.display().to_string(),
            savepoint: request.is_some(),
            stop: request.as_ref().and_then(|r| r.stop),
        };
        self.push_stats(Stats {
            id,
            status: Status::InProgress,
            savepoint: request.is_some(),
            trigger_ms: now_ms,
            latest_ack_ms: -1,
            state_size: 0,
            duration_ms: 0,
            num_subtasks: expected,
            num_acknowledged: 0,
            external_path: None,
            failure: None,
        });
        self.pending = Some(Pending {
            id,
            trigger_ms: now_ms,
            started: Instant::now(),
            dir,
            savepoint: request,
            expected,
            acks: BTreeMap::new(),
        });
        barrier
    }

    fn push_stats(&mut self, s: Stats) {
        self.history.push_front(s);
        self.history.truncate(HISTORY);
    }

    fn stats_mut(&mut self, id: u64) -> Option<&mut Stats> {
        self.history.iter_mut().find(|s| s.id == id)
    }

    /// A subtask's acknowledgement (or decline) of checkpoint `id`.
    pub fn ack(&mut self, now_ms: i64, id: u64, subtask: SubtaskId, result: Result<TaskEntry, String>) -> AckOutcome {
        let Some(p) = self.pending.as_mut().filter(|p| p.id == id) else { return AckOutcome::Pending };
        match result {
            Err(reason) => {
                let reason = format!("subtask {subtask} declined: {reason}");
                self.fail_pending(now_ms, reason)
            }
            Ok(entry) => {
                p.acks.insert(subtask, entry);
                let (n, expected) = (p.acks.len(), p.expected);
                if let Some(s) = self.stats_mut(id) {
                    s.num_acknowledged = n;
                    s.latest_ack_ms = now_ms;
                }
                if n < expected {
                    return AckOutcome::Pending;
                }
                self.complete(now_ms)
            }
        }
    }

    fn complete(&mut self, now_ms: i64) -> AckOutcome {
        let Some(p) = self.pending.take() else { return AckOutcome::Pending };
        let metadata = CheckpointMetadata {
            job_id: self.job_id.to_string(),
            job_name: self.job_name.clone(),
            checkpoint_id: p.id,
            savepoint: p.savepoint.is_some(),
            timestamp: p.trigger_ms,
            max_parallelism: self.max_parallelism,
            tasks: p.acks.into_values().collect(),
        };
        let written = std::fs::create_dir_all(&p.dir)
            .map_err(|e| format!("cannot create `{}`: {e}", p.dir.display()))
            .and_then(|()| {
                write_atomic(&p.dir.join(METADATA_FILE), &encode(METADATA_MAGIC, &metadata)).map_err(|e| e.to_string())
            });
        if let Err(reason) = written {
            self.pending = Some(Pending { acks: BTreeMap::new(), ..p });
            return self.fail_pending(now_ms, reason);
        }
        let size = metadata.state_size();
        let duration = now_ms - p.trigger_ms;
        if let Some(s) = self.stats_mut(p.id) {
            s.status = Status::Completed;
            s.state_size = size;
            s.duration_ms = duration;
            s.external_path = Some(format!("file:{}", p.dir.display()));
        }
        self.counts.completed += 1;
        let done = Completed { id: p.id, dir: p.dir.clone(), savepoint: p.savepoint.is_some(), metadata };
        if !done.savepoint {
            self.completed.push_back(done.clone());
            while self.completed.len() > RETAINED {
                if let Some(old) = self.completed.pop_front() {
                    let _ = std::fs::remove_dir_all(&old.dir);
                }
            }
        }
        AckOutcome::Completed(done, p.savepoint)
    }

    /// Abandons the pending checkpoint (a decline, a timeout, a failover).
    pub fn fail_pending(&mut self, now_ms: i64, reason: String) -> AckOutcome {
        let Some(p) = self.pending.take() else { return AckOutcome::Pending };
        if let Some(s) = self.stats_mut(p.id) {
            s.status = Status::Failed;
            s.failure = Some(reason.clone());
            s.duration_ms = now_ms - p.trigger_ms;
        }
        self.counts.failed += 1;
        // Whatever was written of it is useless; never delete a user's directory itself.
        if p.savepoint.is_none() {
            let _ = std::fs::remove_dir_all(&p.dir);
        } else if let Ok(rd) = std::fs::read_dir(&p.dir) {
            for e in rd.flatten() {
                let _ = std::fs::remove_file(e.path());
            }
            let _ = std::fs::remove_dir(&p.dir);
        }
        AckOutcome::Failed { id: p.id, reason, savepoint: p.savepoint }
    }

    /// The checkpoint a restart restores from: the latest completed one,
    /// else the one the job started from.
    pub fn latest(&self) -> Option<&Completed> {
        self.completed.back().or(self.initial.as_ref())
    }

    /// The latest completed checkpoint's statistics.
    pub fn last_completed_stats(&self) -> Option<&Stats> {
        self.history.iter().find(|s| s.status == Status::Completed)
    }

    /// Checkpoint ids continue after the one the job was restored from.
    pub fn continue_after(&mut self, id: u64) {
        self.next_id = self.next_id.max(id + 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::format::read_metadata;

    fn entry(subtask: u32) -> TaskEntry {
        TaskEntry {
            vertex: Default::default(),
            vertex_name: "v".into(),
            subtask,
            parallelism: 2,
            operators: Vec::new(),
            file: None,
            size: 10,
        }
    }

    #[test]
    fn completes_when_all_acked_and_keeps_three() {
        let dir = std::env::temp_dir().join(format!("flowc-coord-{}", std::process::id()));
        let mut c = Coordinator::new(JobId::random(), "j", 128, &dir);
        let mut dirs = Vec::new();
        for round in 0..5 {
            let b = c.trigger(1000 * round, 2, None);
            dirs.push(PathBuf::from(&b.dir));
            let s = |i| SubtaskId { vertex: 0, subtask: i };
            assert!(matches!(c.ack(1, b.id, s(0), Ok(entry(0))), AckOutcome::Pending));
            assert!(matches!(c.ack(2, b.id, s(1), Ok(entry(1))), AckOutcome::Completed(..)));
            assert_eq!(read_metadata(&dirs[round as usize]).unwrap().tasks.len(), 2);
        }
        assert!(!dirs[1].exists() && dirs[2].exists() && dirs[4].exists());
        assert_eq!(c.latest().map(|l| l.id), Some(5));
        assert_eq!(c.last_completed_stats().map(|s| s.state_size), Some(20));
        // A decline fails the checkpoint and leaves the latest one in place.
        let b = c.trigger(9, 2, None);
        assert!(matches!(
            c.ack(10, b.id, SubtaskId { vertex: 0, subtask: 0 }, Err("disk full".into())),
            AckOutcome::Failed { .. }
        ));
        assert_eq!(c.latest().map(|l| l.id), Some(5));
        assert_eq!(c.counts.failed, 1);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
