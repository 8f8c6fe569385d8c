//! The JobManager's checkpoint coordinator for one job: triggers
//! checkpoints and savepoints, collects the subtasks' acknowledgements,
//! writes `_metadata` when all are in, keeps the last completed checkpoints
//! and their statistics, and cleans up after itself.
//!
//! It holds data only; the JobManager decides when to trigger, creates the
//! checkpoint's directory and sends the barriers. At most one checkpoint is
//! pending at a time.
//!
//! Cleanup: a checkpoint that fails (declined, timed out, abandoned) has
//! its directory removed at once and again after the next checkpoint
//! completes, which also removes every other `chk-<n>` directory older than
//! it that is not retained. Tasks never create a checkpoint's directory, so
//! a late writer cannot bring a removed one back; at worst it leaves a file
//! in a directory that is still being removed, which the next sweep takes.
//! When the job ends, its retention ([`Retention`]) decides whether its
//! checkpoint directory goes too. Savepoints are never deleted once
//! complete.
//!
//! Restore: [`Coordinator::restore_candidates`] lists the retained
//! checkpoints newest first, then the savepoint the job started from; the
//! JobManager validates them in that order and [`Coordinator::mark_bad`]s
//! each that fails, so that it is never tried again.

use super::format::{encode, write_atomic, CheckpointMetadata, TaskEntry, METADATA_FILE, METADATA_MAGIC};
use super::{Barrier, StopMode};
use crate::ids::{JobId, JobStatus, SubtaskId};
use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Completed checkpoints kept on disk (savepoints are never deleted).
pub const RETAINED: usize = 3;
/// Statistics of this many recent checkpoints are kept for REST.
const HISTORY: usize = 10;

/// What happens to a job's checkpoints when it ends
/// (`execution.checkpointing.externalized-checkpoint-retention`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Retention {
    /// Deleted when the job is cancelled or finishes; kept when it fails,
    /// so that it can be resumed from them.
    #[default]
    DeleteOnCancellation,
    /// Deleted when the job finishes; kept when it is cancelled or fails.
    RetainOnCancellation,
    /// Deleted whenever the job ends, failed too (Flink's default, where
    /// checkpoints are not meant to be resumed from).
    NoExternalized,
}

impl Retention {
    /// Flink's names, any case.
    pub fn parse(s: &str) -> Option<Retention> {
        match s.trim().to_ascii_uppercase().as_str() {
            "DELETE_ON_CANCELLATION" => Some(Retention::DeleteOnCancellation),
            "RETAIN_ON_CANCELLATION" => Some(Retention::RetainOnCancellation),
            "NO_EXTERNALIZED_CHECKPOINTS" => Some(Retention::NoExternalized),
            _ => None,
        }
    }

    /// Whether a job that ended in `status` loses its checkpoints.
    pub fn deletes_on(self, status: JobStatus) -> bool {
        match status {
            JobStatus::FINISHED => true,
            JobStatus::CANCELED => self != Retention::RetainOnCancellation,
            JobStatus::FAILED => self == Retention::NoExternalized,
            _ => false,
        }
    }
}

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
    /// Checkpoints found corrupt, with the reason, newest last.
    pub bad: Vec<(u64, String)>,
    /// Directories of failed checkpoints and savepoints that may still hold
    /// files of late writers: removed again after the next completion.
    abandoned: Vec<PathBuf>,
    retention: Retention,
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
            bad: Vec::new(),
            abandoned: Vec::new(),
            retention: Retention::default(),
        }
    }

    pub fn with_retention(mut self, retention: Retention) -> Coordinator {
        self.retention = retention;
        self
    }

    /// `<state.checkpoints.dir>/<job-id>`
    pub fn base(&self) -> &Path {
        &self.base
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
        // Into the directory made at the trigger: if it is gone, so are the state files.
        let written =
            write_atomic(&p.dir.join(METADATA_FILE), &encode(METADATA_MAGIC, &metadata)).map_err(|e| e.to_string());
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
            self.sweep(done.id);
        }
        self.abandoned.retain(|d| remove_dir(d).is_err());
        AckOutcome::Completed(done, p.savepoint)
    }

    /// Removes every `chk-<n>` directory of the job older than checkpoint
    /// `latest` that is not retained: what failed checkpoints, late writers
    /// and earlier removals that failed left behind.
    fn sweep(&mut self, latest: u64) {
        let Ok(entries) = std::fs::read_dir(&self.base) else { return };
        for e in entries.flatten() {
            let name = e.file_name();
            let Some(n) = name.to_str().and_then(|n| n.strip_prefix("chk-")).and_then(|n| n.parse::<u64>().ok()) else {
                continue;
            };
            if n < latest && !self.completed.iter().any(|c| c.id == n) {
                if let Err(err) = remove_dir(&e.path()) {
                    tracing::warn!(job_id = %self.job_id, checkpoint_id = n, error = %err, "Cannot remove the directory of an old checkpoint.");
                }
            }
        }
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
        // Whatever was written of it is useless. Its directory (`chk-<n>` or
        // `savepoint-…`) is the coordinator's own, never the user's target.
        // Late writers may still be at it: it is removed again later.
        let _ = remove_dir(&p.dir);
        self.abandoned.push(p.dir.clone());
        AckOutcome::Failed { id: p.id, reason, savepoint: p.savepoint }
    }

    /// The checkpoint a restart restores from: the latest completed one,
    /// else the one the job started from.
    pub fn latest(&self) -> Option<&Completed> {
        self.completed.back().or(self.initial.as_ref())
    }

    /// What a restart may restore from, in the order to try: the retained
    /// checkpoints newest first, then the savepoint (or checkpoint) the job
    /// was started from. Those found bad are not among them.
    pub fn restore_candidates(&self) -> Vec<Completed> {
        self.completed.iter().rev().chain(self.initial.as_ref()).cloned().collect()
    }

    /// Checkpoint `id` failed validation: it is never restored again. Its
    /// directory, if it is one of the job's own checkpoints, goes with the
    /// next sweep; a savepoint is left where it is. Returns whether it was
    /// not known to be bad yet.
    pub fn mark_bad(&mut self, id: u64, reason: &str) -> bool {
        if self.bad.iter().any(|(b, _)| *b == id) {
            return false;
        }
        self.completed.retain(|c| c.id != id);
        if self.initial.as_ref().is_some_and(|c| c.id == id) {
            self.initial = None;
        }
        self.bad.push((id, reason.to_string()));
        true
    }

    /// The job ended in `status`: an unfinished checkpoint is abandoned,
    /// and the job's checkpoint directory is deleted if its retention says
    /// so. Returns the deleted directory.
    pub fn on_job_end(&mut self, now_ms: i64, status: JobStatus) -> Option<PathBuf> {
        if self.pending.is_some() {
            self.fail_pending(now_ms, format!("the job is {status}"));
        }
        if !self.retention.deletes_on(status) {
            return None;
        }
        self.completed.clear();
        self.abandoned.clear();
        match remove_dir(&self.base) {
            Ok(()) => Some(self.base.clone()),
            Err(e) => {
                tracing::warn!(job_id = %self.job_id, path = %self.base.display(), error = %e, "Cannot remove the job's checkpoints.");
                None
            }
        }
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

/// Removes a directory and everything in it; one that is not there is gone.
fn remove_dir(dir: &Path) -> std::io::Result<()> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
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

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("flowc-coord-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    /// Triggers a checkpoint and makes its directory, as the JobManager does.
    fn trigger(c: &mut Coordinator, now: i64) -> Barrier {
        let b = c.trigger(now, 2, None);
        std::fs::create_dir_all(&b.dir).unwrap();
        b
    }

    fn complete(c: &mut Coordinator, b: &Barrier) {
        let s = |i| SubtaskId { vertex: 0, subtask: i };
        assert!(matches!(c.ack(1, b.id, s(0), Ok(entry(0))), AckOutcome::Pending));
        assert!(matches!(c.ack(2, b.id, s(1), Ok(entry(1))), AckOutcome::Completed(..)));
    }

    #[test]
    fn completes_when_all_acked_and_keeps_three() {
        let dir = scratch("keep");
        let mut c = Coordinator::new(JobId::random(), "j", 128, &dir);
        let mut dirs = Vec::new();
        for round in 0..5 {
            let b = trigger(&mut c, 1000 * round);
            dirs.push(PathBuf::from(&b.dir));
            complete(&mut c, &b);
            assert_eq!(read_metadata(&dirs[round as usize]).unwrap().tasks.len(), 2);
        }
        assert!(!dirs[1].exists() && dirs[2].exists() && dirs[4].exists());
        assert_eq!(c.latest().map(|l| l.id), Some(5));
        assert_eq!(c.last_completed_stats().map(|s| s.state_size), Some(20));
        // A decline fails the checkpoint and leaves the latest one in place.
        let b = trigger(&mut c, 9);
        assert!(matches!(
            c.ack(10, b.id, SubtaskId { vertex: 0, subtask: 0 }, Err("disk full".into())),
            AckOutcome::Failed { .. }
        ));
        assert_eq!(c.latest().map(|l| l.id), Some(5));
        assert_eq!(c.counts.failed, 1);
        assert!(!Path::new(&b.dir).exists(), "a failed checkpoint's directory is removed");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_checkpoint_whose_directory_is_gone_fails() {
        let dir = scratch("gone");
        let mut c = Coordinator::new(JobId::random(), "j", 128, &dir);
        let b = trigger(&mut c, 0);
        std::fs::remove_dir_all(&b.dir).unwrap();
        let s = |i| SubtaskId { vertex: 0, subtask: i };
        let _ = c.ack(1, b.id, s(0), Ok(entry(0)));
        assert!(matches!(c.ack(2, b.id, s(1), Ok(entry(1))), AckOutcome::Failed { .. }));
        assert!(!Path::new(&b.dir).exists(), "not created again for its _metadata");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn late_writers_and_leftovers_are_swept_when_the_next_checkpoint_completes() {
        let dir = scratch("sweep");
        let job = JobId::random();
        let mut c = Coordinator::new(job, "j", 128, &dir);
        let first = trigger(&mut c, 0);
        complete(&mut c, &first);
        // Checkpoint 2 is declined; a late writer (from before the removal)
        // leaves a file in its directory after all.
        let declined = trigger(&mut c, 1);
        let _ = c.ack(2, declined.id, SubtaskId { vertex: 0, subtask: 0 }, Err("disk full".into()));
        std::fs::create_dir_all(&declined.dir).unwrap();
        std::fs::write(Path::new(&declined.dir).join("v-1.state.inprogress"), b"half").unwrap();
        // A savepoint that failed likewise, and a leftover of an earlier run.
        let sp_dir = dir.join("savepoint-abc");
        let r = SavepointRequest { trigger_id: "t".into(), stop: None };
        let sp = c.trigger(3, 2, Some((sp_dir.clone(), r)));
        std::fs::create_dir_all(&sp.dir).unwrap();
        let _ = c.fail_pending(4, "timed out".into());
        std::fs::create_dir_all(&sp_dir).unwrap();
        std::fs::write(sp_dir.join("v-0.state"), b"late").unwrap();
        std::fs::create_dir_all(dir.join(job.to_string()).join("chk-0")).unwrap();
        // The next checkpoint completes: all of it is gone; the retained one stays.
        let next = trigger(&mut c, 5);
        complete(&mut c, &next);
        assert!(!Path::new(&declined.dir).exists());
        assert!(!sp_dir.exists());
        assert!(!dir.join(job.to_string()).join("chk-0").exists());
        assert!(Path::new(&first.dir).join(METADATA_FILE).exists());
        assert!(Path::new(&next.dir).join(METADATA_FILE).exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn restore_candidates_come_newest_first_and_bad_ones_never_again() {
        let dir = scratch("candidates");
        let mut c = Coordinator::new(JobId::random(), "j", 128, &dir);
        let metadata = CheckpointMetadata {
            job_id: "old".into(),
            job_name: "j".into(),
            checkpoint_id: 40,
            savepoint: true,
            timestamp: 0,
            max_parallelism: 128,
            tasks: Vec::new(),
        };
        c.initial = Some(Completed { id: 40, dir: dir.join("savepoint-x"), savepoint: true, metadata });
        c.continue_after(40);
        for round in 0..4 {
            let b = trigger(&mut c, round);
            complete(&mut c, &b);
        }
        let ids = |c: &Coordinator| c.restore_candidates().iter().map(|x| x.id).collect::<Vec<_>>();
        assert_eq!(ids(&c), vec![44, 43, 42, 40]);
        assert!(c.mark_bad(44, "checksum mismatch"));
        assert!(!c.mark_bad(44, "checksum mismatch"), "once");
        assert_eq!(ids(&c), vec![43, 42, 40]);
        assert!(c.mark_bad(40, "gone"));
        assert_eq!(ids(&c), vec![43, 42]);
        assert_eq!(c.bad.iter().map(|(id, _)| *id).collect::<Vec<_>>(), vec![44, 40]);
        // The bad checkpoint's directory goes with the next sweep.
        let b = trigger(&mut c, 9);
        complete(&mut c, &b);
        assert!(!c.base().join("chk-44").exists() && c.base().join("chk-43").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn retention_decides_what_a_job_end_deletes() {
        use Retention::*;
        let cases = [
            (DeleteOnCancellation, JobStatus::CANCELED, true),
            (DeleteOnCancellation, JobStatus::FINISHED, true),
            (DeleteOnCancellation, JobStatus::FAILED, false),
            (RetainOnCancellation, JobStatus::CANCELED, false),
            (RetainOnCancellation, JobStatus::FINISHED, true),
            (RetainOnCancellation, JobStatus::FAILED, false),
            (NoExternalized, JobStatus::FAILED, true),
            (NoExternalized, JobStatus::SUSPENDED, false),
        ];
        for (retention, status, deleted) in cases {
            let dir = scratch("retention");
            let mut c = Coordinator::new(JobId::random(), "j", 128, &dir).with_retention(retention);
            let b = trigger(&mut c, 0);
            complete(&mut c, &b);
            let pending = trigger(&mut c, 1);
            assert_eq!(c.on_job_end(2, status).is_some(), deleted, "{retention:?} {status}");
            assert_eq!(c.base().exists(), !deleted, "{retention:?} {status}");
            assert!(!Path::new(&pending.dir).exists(), "an unfinished checkpoint never stays");
            assert!(c.pending.is_none());
            let _ = std::fs::remove_dir_all(&dir);
        }
        assert_eq!(Retention::parse("retain_on_cancellation"), Some(RetainOnCancellation));
        assert_eq!(Retention::parse("sometimes"), None);
    }
}
