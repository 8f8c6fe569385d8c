//! Checkpoint coordination for one job, in one place and without I/O:
//! - the trigger policy: every `execution.checkpointing.interval`, with
//!   nothing pending and no stop under way (the job adds: every task
//!   RUNNING), and the [`TIMEOUT`] after which a pending one is abandoned;
//! - the life of the one pending checkpoint: its directory is prepared,
//!   barriers go out, acknowledgements come in, `_metadata` is written, its
//!   pointer is persisted (the checkpoint store with it, for high
//!   availability), and it completes or fails: a checkpoint whose pointer
//!   cannot be persisted fails, and no sink commits it;
//! - what completes goes to the [`CheckpointStore`] (the durable half), with
//!   statistics for REST, and cleanup: the directory of a failed checkpoint
//!   is removed at once and again after the next completion, which also
//!   sweeps every older `chk-<n>` that is not retained; a job's end deletes
//!   its checkpoints if its [`Retention`] says so;
//! - savepoints by trigger id and the stop under way (`savepoints.rs`);
//! - the restore candidates, those found bad, and what was restored.
//!
//! Storage work is asked for as [`Command`]s, whose results come back as
//! calls ([`Coordinator::directory_prepared`], [`Coordinator::metadata_written`]);
//! what the job must act on comes back as [`Progress`]. At most one
//! checkpoint is pending at a time, and checkpoint ids only grow.

use super::checkpoint_store::{CheckpointStore, Retention};
use super::events::{Command, Purpose};
use super::log::Note;
use super::savepoints::Savepoints;
pub use super::savepoints::{SavepointRequest, SavepointStatus};
use crate::checkpoint::format::{CheckpointMetadata, TaskEntry};
use crate::checkpoint::{Barrier, CheckpointRef};
use crate::clock::Now;
use crate::ids::{JobId, JobStatus, SubtaskId};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A checkpoint that is not complete after this long is abandoned.
pub const TIMEOUT: Duration = Duration::from_secs(120);
/// Statistics of this many recent checkpoints are kept for REST.
const HISTORY: usize = 10;

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
    /// A savepoint's format, as asked for.
    pub format: Option<super::savepoints::SavepointFormat>,
    /// Each acknowledging subtask: when it acknowledged, and its state's size.
    pub acks: BTreeMap<SubtaskId, SubtaskAck>,
}

/// One subtask's acknowledgement of a checkpoint, for its statistics.
#[derive(Debug, Clone, Copy)]
pub struct SubtaskAck {
    pub ack_ms: i64,
    pub state_size: u64,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Counts {
    pub completed: u64,
    pub failed: u64,
    pub restored: u64,
}

/// Where the pending checkpoint is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Its directory is being made; no barrier is out yet.
    Preparing,
    /// Barriers are out; acknowledgements come in.
    Collecting,
    /// All acknowledged; `_metadata` is being written.
    Writing,
    /// `_metadata` is written; the checkpoint store with it is being
    /// persisted. It completes once that is durable.
    Persisting,
}

#[derive(Debug)]
struct Pending {
    id: u64,
    trigger_ms: i64,
    started: Instant,
    dir: PathBuf,
    savepoint: Option<SavepointRequest>,
    expected: usize,
    acks: BTreeMap<SubtaskId, TaskEntry>,
    phase: Phase,
    size: u64,
}

/// What the job must act on.
#[derive(Debug)]
pub enum Progress {
    Nothing,
    /// The checkpoint's directory is ready: send its barrier to the sources.
    SendBarrier(Barrier),
    Completed(Completion),
    Failed(Failure),
}

#[derive(Debug)]
pub struct Completion {
    pub checkpoint: CheckpointRef,
    pub size: u64,
    pub duration_ms: i64,
}

/// A checkpoint that failed (declined, timed out, abandoned, unwritable).
#[derive(Debug)]
pub struct Failure {
    pub id: u64,
    pub reason: String,
    pub savepoint: Option<SavepointRequest>,
}

pub struct Coordinator {
    job_id: JobId,
    job_name: String,
    max_parallelism: u32,
    /// `<state.checkpoints.dir>/<job-id>`
    base: PathBuf,
    pub(super) store: CheckpointStore,
    retention: Retention,
    /// Completed checkpoints kept (`state.checkpoints.num-retained`).
    num_retained: usize,
    interval: Option<Duration>,
    pending: Option<Pending>,
    pub(super) history: VecDeque<Stats>,
    pub(super) counts: Counts,
    last_trigger: Option<Instant>,
    pub(super) last_restore: Option<Restored>,
    /// Directories of failed checkpoints and savepoints that may still hold
    /// files of late writers: removed again after the next completion.
    abandoned: Vec<PathBuf>,
    /// The savepoints asked for, by trigger id.
    pub(super) savepoints: Savepoints,
    /// Checkpoints asked for by hand (`POST /jobs/:jid/checkpoints`), by trigger id.
    manual: HashMap<String, ManualCheckpoint>,
}

/// Where a checkpoint asked for by hand stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManualCheckpoint {
    /// Taken as soon as nothing else is pending.
    Requested,
    Running(u64),
    Completed(u64),
    Failed(String),
}

impl Coordinator {
    /// `checkpoints_dir` is `state.checkpoints.dir`; `interval` is the
    /// job's checkpoint interval, if it checkpoints; `num_retained` how many
    /// completed checkpoints it keeps.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        job_id: JobId,
        job_name: &str,
        max_parallelism: u32,
        checkpoints_dir: &Path,
        interval: Option<Duration>,
        retention: Retention,
        num_retained: usize,
        store: CheckpointStore,
    ) -> Coordinator {
        Coordinator {
            job_id,
            job_name: job_name.to_string(),
            max_parallelism,
            base: checkpoints_dir.join(job_id.to_string()),
            store,
            retention,
            num_retained: num_retained.max(1),
            interval,
            pending: None,
            history: VecDeque::new(),
            counts: Counts::default(),
            last_trigger: None,
            last_restore: None,
            abandoned: Vec::new(),
            savepoints: Savepoints::default(),
            manual: HashMap::new(),
        }
    }

    /// A checkpoint is asked for by hand under `trigger_id` (a repeated id
    /// asks for nothing more): the next one starts as soon as nothing else
    /// is pending, whatever the interval, even for a job without one.
    pub fn request_checkpoint(&mut self, trigger_id: String) {
        self.manual.entry(trigger_id).or_insert(ManualCheckpoint::Requested);
    }

    /// Where the checkpoint asked for under `trigger_id` stands.
    pub fn manual_status(&self, trigger_id: &str) -> Option<&ManualCheckpoint> {
        self.manual.get(trigger_id)
    }

    fn update_manual(&mut self, from: &ManualCheckpoint, to: impl Fn() -> ManualCheckpoint) {
        for m in self.manual.values_mut() {
            if m == from {
                *m = to();
            }
        }
    }

    /// `<state.checkpoints.dir>/<job-id>`
    pub fn base(&self) -> &Path {
        &self.base
    }

    pub fn pending_id(&self) -> Option<u64> {
        self.pending.as_ref().map(|p| p.id)
    }

    /// Whether the interval asks for a checkpoint now: the job checkpoints,
    /// nothing is pending or being prepared, no stop is under way, and the
    /// last one was triggered at least an interval ago.
    pub fn is_due(&self, now: Now) -> bool {
        let asked = self.manual.values().any(|m| *m == ManualCheckpoint::Requested);
        let interval_due = self
            .interval
            .is_some_and(|i| self.last_trigger.is_none_or(|t| now.instant.saturating_duration_since(t) >= i));
        self.pending.is_none() && !self.savepoints.busy() && (asked || interval_due)
    }

    /// What happens to the retained checkpoints when the job ends.
    pub fn retention(&self) -> Retention {
        self.retention
    }

    /// Whether the pending checkpoint has run out of time.
    pub fn is_timed_out(&self, now: Now) -> bool {
        self.pending.as_ref().is_some_and(|p| now.instant.saturating_duration_since(p.started) > TIMEOUT)
    }

    /// Starts a checkpoint that `expected` subtasks must acknowledge: its
    /// directory is made first, then its barrier goes out.
    pub fn trigger(&mut self, now: Now, expected: usize, out: &mut Vec<Command>) {
        let id = self.store.take_id();
        let dir = self.base.join(format!("chk-{id}"));
        let _ = self.begin(now, id, dir.clone(), expected, None, Phase::Preparing);
        self.update_manual(&ManualCheckpoint::Requested, || ManualCheckpoint::Running(id));
        out.push(Command::PrepareDirectory { purpose: Purpose::Checkpoint(id), dir });
    }

    fn begin(
        &mut self,
        now: Now,
        id: u64,
        dir: PathBuf,
        expected: usize,
        savepoint: Option<SavepointRequest>,
        phase: Phase,
    ) -> Barrier {
        self.last_trigger = Some(now.instant);
        self.push_stats(Stats {
            id,
            status: Status::InProgress,
            savepoint: savepoint.is_some(),
            format: savepoint.as_ref().map(|r| r.format),
            trigger_ms: now.ms,
            latest_ack_ms: -1,
            state_size: 0,
            duration_ms: 0,
            num_subtasks: expected,
            num_acknowledged: 0,
            external_path: None,
            failure: None,
            acks: BTreeMap::new(),
        });
        let p = Pending {
            id,
            trigger_ms: now.ms,
            started: now.instant,
            dir,
            savepoint,
            expected,
            acks: BTreeMap::new(),
            phase,
            size: 0,
        };
        let barrier = Self::barrier(&p);
        self.pending = Some(p);
        barrier
    }

    fn barrier(p: &Pending) -> Barrier {
        Barrier {
            id: p.id,
            dir: p.dir.display().to_string(),
            savepoint: p.savepoint.is_some(),
            stop: p.savepoint.as_ref().and_then(|r| r.stop),
        }
    }

    fn push_stats(&mut self, s: Stats) {
        self.history.push_front(s);
        self.history.truncate(HISTORY);
    }

    fn stats_mut(&mut self, id: u64) -> Option<&mut Stats> {
        self.history.iter_mut().find(|s| s.id == id)
    }

    /// The directory of checkpoint `id` was made (or not).
    pub fn directory_prepared(
        &mut self,
        now: Now,
        id: u64,
        dir: PathBuf,
        result: Result<(), String>,
        out: &mut Vec<Command>,
    ) -> Progress {
        let Some(p) = self.pending.as_mut().filter(|p| p.id == id && p.phase == Phase::Preparing) else {
            if result.is_ok() {
                // Abandoned while its directory was made: it goes again.
                out.push(Command::Remove { dir, retry: false });
            }
            return Progress::Nothing;
        };
        match result {
            Ok(()) => {
                p.phase = Phase::Collecting;
                Progress::SendBarrier(Self::barrier(p))
            }
            Err(reason) => self.fail_pending(now, reason, out).map_or(Progress::Nothing, Progress::Failed),
        }
    }

    /// A subtask's acknowledgement (or decline) of checkpoint `id`. The last
    /// one asks for `_metadata`.
    pub fn ack(
        &mut self,
        now: Now,
        id: u64,
        subtask: SubtaskId,
        result: Result<TaskEntry, String>,
        out: &mut Vec<Command>,
    ) -> Progress {
        let Some(p) = self.pending.as_mut().filter(|p| p.id == id && p.phase == Phase::Collecting) else {
            return Progress::Nothing;
        };
        let entry = match result {
            Ok(entry) => entry,
            Err(reason) => {
                let reason = format!("subtask {subtask} declined: {reason}");
                return self.fail_pending(now, reason, out).map_or(Progress::Nothing, Progress::Failed);
            }
        };
        let ack = SubtaskAck { ack_ms: now.ms, state_size: entry.size };
        p.acks.insert(subtask, entry);
        let (n, expected) = (p.acks.len(), p.expected);
        if n >= expected {
            p.phase = Phase::Writing;
            let metadata = CheckpointMetadata {
                job_id: self.job_id.to_string(),
                job_name: self.job_name.clone(),
                checkpoint_id: p.id,
                savepoint: p.savepoint.is_some(),
                timestamp: p.trigger_ms,
                max_parallelism: self.max_parallelism,
                tasks: std::mem::take(&mut p.acks).into_values().collect(),
            };
            p.size = metadata.state_size();
            out.push(Command::WriteMetadata { checkpoint_id: p.id, dir: p.dir.clone(), metadata: Box::new(metadata) });
        }
        if let Some(s) = self.stats_mut(id) {
            s.num_acknowledged = n;
            s.latest_ack_ms = now.ms;
            s.acks.insert(subtask, ack);
        }
        Progress::Nothing
    }

    /// `_metadata` of checkpoint `id` was written (or not): a savepoint
    /// completes; a checkpoint's store is persisted with it first
    /// ([`Coordinator::checkpoints_persisted`]); or it fails.
    pub fn metadata_written(
        &mut self,
        now: Now,
        id: u64,
        result: Result<(), String>,
        out: &mut Vec<Command>,
    ) -> Progress {
        let Some(p) = self.pending.as_mut().filter(|p| p.id == id && p.phase == Phase::Writing) else {
            return Progress::Nothing;
        };
        if let Err(reason) = result {
            return self.fail_pending(now, reason, out).map_or(Progress::Nothing, Progress::Failed);
        }
        if p.savepoint.is_some() {
            return self.complete(now, out);
        }
        p.phase = Phase::Persisting;
        let mut persisted = self.store.clone();
        persisted.add(CheckpointRef { id: p.id, dir: p.dir.clone(), savepoint: false }, self.num_retained);
        out.push(Command::PersistCheckpoints(Box::new(persisted)));
        Progress::Nothing
    }

    /// The checkpoint store whose newest completed checkpoint is `newest`
    /// was persisted (or not). If that is the pending checkpoint, it
    /// completes now — the store takes it, the checkpoints it pushes out
    /// are deleted, the sinks may commit — or it fails.
    pub fn checkpoints_persisted(
        &mut self,
        now: Now,
        newest: Option<u64>,
        result: Result<(), String>,
        out: &mut Vec<Command>,
    ) -> Progress {
        if !self.pending.as_ref().is_some_and(|p| p.phase == Phase::Persisting && Some(p.id) == newest) {
            return Progress::Nothing;
        }
        match result {
            Ok(()) => self.complete(now, out),
            Err(e) => {
                let reason = format!("its pointer could not be stored for high availability: {e}");
                self.fail_pending(now, reason, out).map_or(Progress::Nothing, Progress::Failed)
            }
        }
    }

    /// The pending checkpoint or savepoint is complete.
    fn complete(&mut self, now: Now, out: &mut Vec<Command>) -> Progress {
        let Some(p) = self.pending.take() else { return Progress::Nothing };
        let checkpoint = CheckpointRef { id: p.id, dir: p.dir, savepoint: p.savepoint.is_some() };
        let duration_ms = now.ms - p.trigger_ms;
        let location = checkpoint.location();
        if let Some(s) = self.stats_mut(p.id) {
            s.status = Status::Completed;
            s.state_size = p.size;
            s.duration_ms = duration_ms;
            s.external_path = Some(location.clone());
        }
        self.counts.completed += 1;
        self.update_manual(&ManualCheckpoint::Running(p.id), || ManualCheckpoint::Completed(p.id));
        if !checkpoint.savepoint {
            // The store with this checkpoint is durable (`Persisting`):
            // what it subsumes may go.
            for old in self.store.add(checkpoint.clone(), self.num_retained) {
                out.push(Command::Remove { dir: old.dir, retry: false });
            }
            out.push(Command::Sweep { base: self.base.clone(), below: checkpoint.id, keep: self.store.retained() });
        }
        for dir in self.abandoned.drain(..) {
            out.push(Command::Remove { dir, retry: true });
        }
        if let Some(r) = p.savepoint {
            // As Flink: a stop is complete once the job has finished too.
            self.savepoints.completed(r, location);
        }
        Progress::Completed(Completion { checkpoint, size: p.size, duration_ms })
    }

    /// Abandons the pending checkpoint (a decline, a timeout, a failover, a
    /// job's end, a savepoint that supersedes it). Its directory is the
    /// coordinator's own, never the user's target: it goes at once, and
    /// again after the next completion in case a late writer was at it.
    pub fn fail_pending(&mut self, now: Now, reason: String, out: &mut Vec<Command>) -> Option<Failure> {
        let p = self.pending.take()?;
        if let Some(s) = self.stats_mut(p.id) {
            s.status = Status::Failed;
            s.failure = Some(reason.clone());
            s.duration_ms = now.ms - p.trigger_ms;
        }
        self.counts.failed += 1;
        self.update_manual(&ManualCheckpoint::Running(p.id), || ManualCheckpoint::Failed(reason.clone()));
        out.push(Command::Remove { dir: p.dir.clone(), retry: false });
        self.abandoned.push(p.dir);
        Some(Failure { id: p.id, reason, savepoint: p.savepoint })
    }

    /// Removing `dir` failed: it is tried again after the next completion.
    pub fn removal_failed(&mut self, dir: PathBuf) {
        if !self.abandoned.contains(&dir) {
            self.abandoned.push(dir);
        }
    }

    /// Whether the savepoint of `trigger_id` is still being worked on:
    /// its directory is made, it is pending, or it is the stop under way.
    pub fn is_working_on(&self, trigger_id: &str) -> bool {
        self.savepoints.is_working_on(trigger_id)
            || self.pending.as_ref().and_then(|p| p.savepoint.as_ref()).is_some_and(|r| r.trigger_id == trigger_id)
    }

    /// Starts the savepoint of `request` into its prepared `dir`; returns
    /// its barrier. Whatever was pending must have been failed first.
    pub fn start_savepoint(
        &mut self,
        now: Now,
        expected: usize,
        request: SavepointRequest,
        dir: PathBuf,
        out: &mut Vec<Command>,
    ) -> Barrier {
        let id = self.store.take_id();
        out.push(Command::Log(Note::SavepointTriggered {
            trigger_id: request.trigger_id.clone(),
            dir: dir.clone(),
            stop: request.stop.is_some(),
        }));
        self.begin(now, id, dir, expected, Some(request), Phase::Collecting)
    }

    /// The job failed over: the pending checkpoint is abandoned, and the
    /// savepoints and stop asked for and not done fail with `cause`.
    pub fn on_failover(&mut self, now: Now, cause: &str, out: &mut Vec<Command>) {
        let reason = format!("the job failed: {cause}");
        if let Some(Failure { savepoint: Some(r), .. }) = self.fail_pending(now, "the job failed over".into(), out) {
            self.savepoints.failed(&r.trigger_id, reason.clone());
        }
        self.savepoints.on_failover(&reason, out);
    }

    /// The job ended in `status`: an unfinished checkpoint is abandoned, a
    /// stop is reported (complete only if the job FINISHED), what is still
    /// in progress fails, and the job's checkpoints are deleted if its
    /// retention says so.
    pub fn on_job_end(&mut self, now: Now, status: JobStatus, out: &mut Vec<Command>) {
        self.fail_pending(now, format!("the job is {status}"), out);
        self.savepoints.on_job_end(status, out);
        if self.retention.deletes_on(status) {
            self.store.forget_completed();
            self.abandoned.clear();
            out.push(Command::RemoveJobCheckpoints { base: self.base.clone(), status });
        }
    }

    /// What a restart may restore from, in the order to try.
    pub fn restore_candidates(&self) -> Vec<CheckpointRef> {
        self.store.restore_candidates()
    }

    /// Checkpoint `id` failed validation: it is never restored again. Its
    /// directory, if it is one of the job's own checkpoints, goes with the
    /// next sweep; a savepoint is left where it is. Returns whether it was
    /// not known to be bad yet.
    pub fn mark_bad(&mut self, id: u64, reason: &str) -> bool {
        self.store.mark_bad(id, reason)
    }

    /// The job's new attempt restores `c`.
    pub fn restored(&mut self, now: Now, c: &CheckpointRef) {
        self.counts.restored += 1;
        self.last_restore = Some(Restored { id: c.id, dir: c.dir.clone(), savepoint: c.savepoint, timestamp: now.ms });
    }

    /// The latest completed checkpoint's statistics.
    pub fn last_completed_stats(&self) -> Option<&Stats> {
        self.history.iter().find(|s| s.status == Status::Completed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    fn coordinator(retention: Retention) -> Coordinator {
        let store = CheckpointStore::new(None);
        let interval = Some(Duration::from_secs(1));
        Coordinator::new(JobId::random(), "j", 128, Path::new("/cps"), interval, retention, 3, store)
    }

    fn s(i: u32) -> SubtaskId {
        SubtaskId { vertex: 0, subtask: i }
    }

    /// Triggers a checkpoint of two subtasks and runs it to completion,
    /// answering its storage commands with success; returns all commands.
    fn complete_one(c: &mut Coordinator, now: Now) -> Vec<Command> {
        let mut out = Vec::new();
        c.trigger(now, 2, &mut out);
        let Some(Command::PrepareDirectory { purpose: Purpose::Checkpoint(id), dir }) = out.last() else {
            panic!("{out:?}")
        };
        let (id, dir) = (*id, dir.clone());
        assert!(matches!(c.directory_prepared(now, id, dir, Ok(()), &mut out), Progress::SendBarrier(b) if b.id == id));
        assert!(matches!(c.ack(now, id, s(0), Ok(entry(0)), &mut out), Progress::Nothing));
        assert!(matches!(c.ack(now, id, s(1), Ok(entry(1)), &mut out), Progress::Nothing));
        assert!(matches!(out.last(), Some(Command::WriteMetadata { checkpoint_id, .. }) if *checkpoint_id == id));
        assert!(matches!(c.metadata_written(now, id, Ok(()), &mut out), Progress::Nothing));
        let Some(Command::PersistCheckpoints(store)) = out.last() else { panic!("not persisted first: {out:?}") };
        assert_eq!(store.newest_completed(), Some(id), "the store to persist holds it");
        assert_ne!(c.store.latest().map(|l| l.id), Some(id), "not complete before it is durable");
        let done = c.checkpoints_persisted(now, Some(id), Ok(()), &mut out);
        assert!(matches!(done, Progress::Completed(ref d) if d.checkpoint.id == id && d.size == 20), "{done:?}");
        out
    }

    fn removed(out: &[Command]) -> Vec<String> {
        out.iter()
            .filter_map(|c| match c {
                Command::Remove { dir, .. } => Some(dir.display().to_string()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn completes_when_all_acked_keeps_three_and_sweeps_the_rest() {
        let mut c = coordinator(Retention::default());
        let now = Now::read();
        let mut out = Vec::new();
        for _ in 0..5 {
            out = complete_one(&mut c, now);
        }
        assert_eq!(removed(&out), vec!["/cps/".to_string() + &c.job_id.to_string() + "/chk-2"]);
        assert!(matches!(out.iter().find(|c| matches!(c, Command::Sweep { .. })),
            Some(Command::Sweep { below: 5, keep, .. }) if *keep == vec![3, 4, 5]));
        assert_eq!(c.store.latest().map(|l| l.id), Some(5));
        assert_eq!(c.last_completed_stats().map(|s| s.state_size), Some(20));
        assert_eq!(c.counts.completed, 5);
    }

    #[test]
    fn a_checkpoint_whose_pointer_cannot_be_persisted_fails_and_nothing_it_would_subsume_goes() {
        let store = CheckpointStore::new(None);
        let mut c =
            Coordinator::new(JobId::random(), "j", 128, Path::new("/cps"), None, Retention::default(), 1, store);
        let now = Now::read();
        complete_one(&mut c, now);
        let mut out = Vec::new();
        c.trigger(now, 1, &mut out);
        let _ = c.directory_prepared(now, 2, c.base().join("chk-2"), Ok(()), &mut out);
        let _ = c.ack(now, 2, s(0), Ok(entry(0)), &mut out);
        let _ = c.metadata_written(now, 2, Ok(()), &mut out);
        // Another store's result (an older write) does not decide it.
        assert!(matches!(c.checkpoints_persisted(now, Some(1), Ok(()), &mut out), Progress::Nothing));
        assert_eq!(c.pending_id(), Some(2));
        let mut out = Vec::new();
        let failed = c.checkpoints_persisted(now, Some(2), Err("ZooKeeper is gone".into()), &mut out);
        assert!(
            matches!(failed, Progress::Failed(ref f) if f.id == 2 && f.reason.contains("could not be stored for high availability: ZooKeeper is gone")),
            "{failed:?}"
        );
        assert_eq!(removed(&out), vec![c.base().join("chk-2").display().to_string()], "only its own directory");
        assert_eq!(c.restore_candidates().iter().map(|r| r.id).collect::<Vec<_>>(), vec![1]);
        assert_eq!((c.counts.completed, c.counts.failed), (1, 1));
        // A late success of the failed one changes nothing.
        assert!(matches!(c.checkpoints_persisted(now, Some(2), Ok(()), &mut out), Progress::Nothing));
    }

    #[test]
    fn with_one_retained_each_completion_removes_the_one_before() {
        let store = CheckpointStore::new(None);
        let mut c =
            Coordinator::new(JobId::random(), "j", 128, Path::new("/cps"), None, Retention::default(), 1, store);
        let now = Now::read();
        assert!(removed(&complete_one(&mut c, now)).is_empty());
        let out = complete_one(&mut c, now);
        assert_eq!(removed(&out), vec![c.base().join("chk-1").display().to_string()]);
        assert!(matches!(out.iter().find(|c| matches!(c, Command::Sweep { .. })),
            Some(Command::Sweep { below: 2, keep, .. }) if *keep == vec![2]));
        assert_eq!(c.restore_candidates().iter().map(|r| r.id).collect::<Vec<_>>(), vec![2]);
    }

    #[test]
    fn a_decline_fails_the_checkpoint_whose_directory_goes_now_and_after_the_next_completion() {
        let mut c = coordinator(Retention::default());
        let now = Now::read();
        complete_one(&mut c, now);
        let mut out = Vec::new();
        c.trigger(now, 2, &mut out);
        let dir = c.base().join("chk-2");
        let _ = c.directory_prepared(now, 2, dir.clone(), Ok(()), &mut out);
        let failed = c.ack(now, 2, s(0), Err("disk full".into()), &mut out);
        assert!(matches!(failed, Progress::Failed(ref f) if f.id == 2 && f.reason.contains("declined: disk full")));
        assert_eq!(removed(&out), vec![dir.display().to_string()]);
        assert_eq!(c.store.latest().map(|l| l.id), Some(1));
        assert_eq!(c.counts.failed, 1);
        // A late ack of the failed checkpoint changes nothing.
        assert!(matches!(c.ack(now, 2, s(1), Ok(entry(1)), &mut Vec::new()), Progress::Nothing));
        let out = complete_one(&mut c, now);
        assert!(out.iter().any(|x| matches!(x, Command::Remove { dir: d, retry: true } if *d == dir)), "{out:?}");
    }

    #[test]
    fn a_checkpoint_whose_directory_or_metadata_cannot_be_made_fails() {
        let mut c = coordinator(Retention::default());
        let now = Now::read();
        let mut out = Vec::new();
        c.trigger(now, 1, &mut out);
        let p = c.directory_prepared(now, 1, c.base().join("chk-1"), Err("cannot create".into()), &mut out);
        assert!(matches!(p, Progress::Failed(ref f) if f.reason == "cannot create"));
        c.trigger(now, 1, &mut out);
        let _ = c.directory_prepared(now, 2, c.base().join("chk-2"), Ok(()), &mut out);
        let _ = c.ack(now, 2, s(0), Ok(entry(0)), &mut out);
        assert!(matches!(c.metadata_written(now, 2, Err("gone".into()), &mut out), Progress::Failed(_)));
        assert_eq!((c.counts.completed, c.counts.failed), (0, 2));
        assert_eq!(c.history.iter().map(|s| s.status).collect::<Vec<_>>(), vec![Status::Failed; 2]);
    }

    #[test]
    fn the_interval_and_the_timeout_decide_when() {
        let mut c = coordinator(Retention::default());
        let t0 = Now::read();
        assert!(c.is_due(t0), "the first one at once");
        c.trigger(t0, 1, &mut Vec::new());
        assert!(!c.is_due(t0.after(Duration::from_secs(5))), "one at a time");
        assert!(!c.is_timed_out(t0.after(TIMEOUT)));
        assert!(c.is_timed_out(t0.after(TIMEOUT + Duration::from_millis(1))));
        let _ = c.fail_pending(t0, "timed out".into(), &mut Vec::new());
        assert!(!c.is_due(t0.after(Duration::from_millis(999))));
        assert!(c.is_due(t0.after(Duration::from_secs(1))));
        let mut none = coordinator(Retention::default());
        none.interval = None;
        assert!(!none.is_due(t0), "a job without checkpointing never triggers");
    }

    #[test]
    fn a_checkpoint_asked_for_by_hand_starts_at_once_and_reports_its_outcome() {
        let mut c = coordinator(Retention::default());
        c.interval = None;
        let t0 = Now::read();
        assert!(!c.is_due(t0));
        c.request_checkpoint("a".into());
        assert_eq!(c.manual_status("a"), Some(&ManualCheckpoint::Requested));
        assert!(c.is_due(t0), "without an interval too");
        complete_one(&mut c, t0);
        assert_eq!(c.manual_status("a"), Some(&ManualCheckpoint::Completed(1)));
        assert!(!c.is_due(t0), "nothing more is asked for");
        c.request_checkpoint("b".into());
        c.trigger(t0, 2, &mut Vec::new());
        assert_eq!(c.manual_status("b"), Some(&ManualCheckpoint::Running(2)));
        let _ = c.fail_pending(t0, "declined".into(), &mut Vec::new());
        assert_eq!(c.manual_status("b"), Some(&ManualCheckpoint::Failed("declined".into())));
        assert_eq!(c.manual_status("a"), Some(&ManualCheckpoint::Completed(1)), "another's outcome stays");
        assert_eq!(c.manual_status("c"), None);
    }

    #[test]
    fn retention_decides_whether_a_job_end_deletes_its_checkpoints() {
        for (retention, status, deleted) in [
            (Retention::DeleteOnCancellation, JobStatus::CANCELED, true),
            (Retention::DeleteOnCancellation, JobStatus::FAILED, false),
            (Retention::RetainOnCancellation, JobStatus::CANCELED, false),
            (Retention::NoExternalized, JobStatus::FAILED, true),
        ] {
            let mut c = coordinator(retention);
            let now = Now::read();
            complete_one(&mut c, now);
            let mut out = Vec::new();
            c.trigger(now, 2, &mut out);
            c.on_job_end(now, status, &mut out);
            assert!(c.pending_id().is_none(), "an unfinished checkpoint never stays");
            assert_eq!(removed(&out), vec![c.base().join("chk-2").display().to_string()]);
            let deletes = out.iter().any(|c| matches!(c, Command::RemoveJobCheckpoints { .. }));
            assert_eq!(deletes, deleted, "{retention:?} {status}");
            assert_eq!(c.store.latest().is_none(), deleted);
        }
    }
}
