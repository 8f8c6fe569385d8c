//! Tests of the job lifecycle against a model shell, in milliseconds: a
//! [`Harness`] owns one [`Job`], a table of TaskManagers and their slots,
//! and an in-memory [`MemStorage`], and carries out the job's commands as
//! the real shell does. Storage results are fed back at once, or — with
//! [`Harness::asynchronous`] — held until a test delivers them, so that
//! tests can interleave events with storage work in flight.
//!
//! `scenarios.rs` walks through named races; `model.rs` drives random
//! interleavings and checks the lifecycle's invariants after every step.

mod model;
mod recovery;
mod scenarios;

use super::checkpoint_store::CheckpointStore;
use super::events::{Answer, Command, Event};
use super::job::{Job, JobResult, JobSpec};
use super::log::Note;
use super::scheduler::SlotOffer;
use super::SavepointStatus;
use crate::checkpoint::fallback::choose_restore;
use crate::checkpoint::format::{CheckpointMetadata, StateError, TaskEntry as AckEntry};
use crate::checkpoint::storage::{CheckpointStorage, StorageError};
use crate::checkpoint::{Barrier, StopMode};
use crate::clock::Now;
use crate::ids::{Attempt, JobId, JobStatus, SubtaskId, TaskStatus};
use crate::restart::{RestartStrategy, RestartTracker};
use crate::rpc::{CheckpointAck, FailureKind, TaskUpdate};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

/// Checkpoints in memory, with faults to inject.
#[derive(Default)]
pub(super) struct MemStorage(Mutex<Mem>);

#[derive(Default)]
pub(super) struct Mem {
    pub dirs: BTreeSet<PathBuf>,
    /// `_metadata` written: directory → checkpoint id.
    pub metadata: BTreeMap<PathBuf, u64>,
    pub fail_prepare: bool,
    pub fail_write: bool,
    pub corrupt: BTreeSet<PathBuf>,
    pub unreadable: BTreeSet<PathBuf>,
}

impl MemStorage {
    pub fn with<T>(&self, f: impl FnOnce(&mut Mem) -> T) -> T {
        f(&mut self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

fn io(kind: std::io::ErrorKind, what: &str) -> std::io::Error {
    std::io::Error::new(kind, what.to_string())
}

impl CheckpointStorage for MemStorage {
    fn prepare(&self, dir: &Path) -> Result<(), StorageError> {
        self.with(|m| {
            if m.fail_prepare {
                return Err(StorageError::Create {
                    path: dir.display().to_string(),
                    source: io(std::io::ErrorKind::Other, "injected"),
                });
            }
            m.dirs.insert(dir.to_path_buf());
            Ok(())
        })
    }

    fn write_metadata(&self, dir: &Path, metadata: &CheckpointMetadata) -> Result<(), StorageError> {
        self.with(|m| {
            let path = dir.join("_metadata").display().to_string();
            if m.fail_write {
                return Err(StateError::Write { path, source: io(std::io::ErrorKind::Other, "disk full") }.into());
            }
            if !m.dirs.contains(dir) {
                return Err(StateError::Write { path, source: io(std::io::ErrorKind::NotFound, "no directory") }.into());
            }
            m.metadata.insert(dir.to_path_buf(), metadata.checkpoint_id);
            Ok(())
        })
    }

    fn remove(&self, dir: &Path) -> Result<(), StorageError> {
        self.with(|m| {
            m.dirs.retain(|d| !d.starts_with(dir));
            m.metadata.retain(|d, _| !d.starts_with(dir));
        });
        Ok(())
    }

    fn list(&self, base: &Path) -> Result<Vec<(u64, PathBuf)>, StorageError> {
        Ok(self.with(|m| {
            m.dirs
                .iter()
                .filter(|d| d.parent() == Some(base))
                .filter_map(|d| {
                    let n = d.file_name()?.to_str()?.strip_prefix("chk-")?.parse().ok()?;
                    Some((n, d.clone()))
                })
                .collect()
        }))
    }

    fn validate(&self, dir: &Path) -> Result<CheckpointMetadata, StateError> {
        self.with(|m| {
            let path = dir.display().to_string();
            if m.unreadable.contains(dir) {
                return Err(StateError::Read { path, source: io(std::io::ErrorKind::PermissionDenied, "denied") });
            }
            if m.corrupt.contains(dir) {
                return Err(StateError::Corrupt { path, reason: "checksum mismatch".into() });
            }
            let Some(id) = m.metadata.get(dir) else {
                return Err(StateError::Read { path, source: io(std::io::ErrorKind::NotFound, "no _metadata") });
            };
            Ok(metadata(*id))
        })
    }
}

pub(super) fn metadata(id: u64) -> CheckpointMetadata {
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

/// The test job: a datagen source, a filter and a sink, unchained, at
/// parallelism 2 with checkpoints every second — six tasks, two slots.
pub(super) const SLOTS: u32 = 2;
pub(super) const INTERVAL: Duration = Duration::from_secs(1);

fn graph() -> flowc_compiler::graph::JobGraph {
    let src = flowc_dsl::SourceFile::new(
        "t.flow",
        r#"
        job "T"
        set execution.checkpointing.interval = 1s
        set pipeline.operator-chaining = false
        schema N { n: long }
        source datagen { schema: N } | filter n % 2 == 0 | sink discard
        "#,
    );
    let options = flowc_compiler::CheckOptions { parallelism: Some(SLOTS), ..Default::default() };
    flowc_compiler::compile(&src, &options).expect("the test job compiles").graph
}

fn spec(id: JobId, strategy: RestartStrategy) -> JobSpec {
    JobSpec {
        id,
        plan: std::sync::Arc::new(Vec::new()),
        graph: graph(),
        initial: None,
        restarts: RestartTracker::new(strategy),
        checkpoints_dir: PathBuf::from("/checkpoints"),
        retention: super::checkpoint_store::Retention::default(),
        num_retained: 3,
        exception_history_size: 16,
        seed: 7,
    }
}

/// A registered TaskManager: its slots and who uses them.
pub(super) struct Tm {
    pub slots: u32,
    pub used: Vec<(JobId, u32)>,
}

/// An answer to a request, with errors as their messages.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Answered {
    Savepoint(Result<String, String>),
    Cancel(Result<(), String>),
    Checkpoint(Result<String, String>),
}

/// A message the job sent to a TaskManager.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Sent {
    Deploy { tm: String, attempt: Attempt, restore: Option<String> },
    Cancel { tm: String, attempt: Attempt },
    Barrier { tm: String, attempt: Attempt, barrier: Barrier },
    Complete { tm: String, attempt: Attempt, checkpoint_id: u64 },
}

pub(super) struct Harness {
    pub job: Job,
    pub now: Now,
    pub tms: BTreeMap<String, Tm>,
    next_tm: usize,
    pub storage: MemStorage,
    /// Storage results not yet delivered (asynchronous mode).
    pub inflight: Vec<Event>,
    asynchronous: bool,
    pub sent: Vec<Sent>,
    pub notes: Vec<Note>,
    /// Answers to requests, newest last.
    pub answers: Vec<Answered>,
    /// What the last step emitted.
    pub last: Vec<Command>,
    /// The checkpoint store as last persisted for high availability.
    pub persisted: Option<CheckpointStore>,
    /// The result as persisted for high availability.
    pub persisted_result: Option<JobResult>,
    /// While set, persisting the checkpoint store fails with this error.
    pub persist_error: Option<String>,
    /// The attempt the job was at when the harness began.
    pub first_attempt: Attempt,
}

impl Harness {
    /// A submitted job with `tms` TaskManagers of two slots each, its
    /// partitions resolved, not yet scheduled.
    pub fn new(strategy: RestartStrategy, tms: usize) -> Harness {
        let now = Now::read();
        let job = Job::new(spec(JobId::random(), strategy), now);
        Harness::with(job, now, tms, MemStorage::default(), Event::Submitted)
    }

    /// Job `id` as a new leader recovers it from the HA job store: with
    /// the stored checkpoint store `stored`, over the checkpoints in
    /// `storage`.
    pub fn recovered(
        strategy: RestartStrategy,
        tms: usize,
        id: JobId,
        stored: CheckpointStore,
        storage: MemStorage,
    ) -> Harness {
        let now = Now::read();
        let job = Job::recover(spec(id, strategy), stored, now.ms - 1000, now);
        Harness::with(job, now, tms, storage, Event::Recovered)
    }

    fn with(job: Job, now: Now, tms: usize, storage: MemStorage, first: Event) -> Harness {
        let mut h = Harness {
            job,
            now,
            tms: BTreeMap::new(),
            next_tm: 0,
            storage,
            inflight: Vec::new(),
            asynchronous: false,
            sent: Vec::new(),
            notes: Vec::new(),
            answers: Vec::new(),
            last: Vec::new(),
            persisted: None,
            persisted_result: None,
            persist_error: None,
            first_attempt: 0,
        };
        for _ in 0..tms {
            h.add_tm();
        }
        h.step(first);
        h.first_attempt = h.job.attempt;
        h
    }

    /// Storage results wait for [`Harness::deliver`] from now on.
    pub fn asynchronous(mut self) -> Harness {
        self.asynchronous = true;
        self
    }

    pub fn add_tm(&mut self) -> String {
        self.add_tm_with(SLOTS)
    }

    pub fn add_tm_with(&mut self, slots: u32) -> String {
        self.next_tm += 1;
        let id = format!("tm-{}", self.next_tm);
        self.tms.insert(id.clone(), Tm { slots, used: Vec::new() });
        id
    }

    pub fn status(&self) -> JobStatus {
        self.job.status()
    }

    pub fn advance(&mut self, d: Duration) {
        self.now = self.now.after(d);
    }

    /// Handles one event and carries out the commands, as the shell does.
    pub fn step(&mut self, event: Event) {
        self.last.clear();
        let mut queue = VecDeque::from([event]);
        while let Some(event) = queue.pop_front() {
            let commands = self.job.handle(event, self.now);
            for c in commands {
                if let Some(result) = self.execute(&c) {
                    if self.asynchronous {
                        self.inflight.push(result);
                    } else {
                        queue.push_back(result);
                    }
                }
                self.last.push(c);
            }
        }
    }

    /// Delivers the `i`-th storage result in flight.
    pub fn deliver(&mut self, i: usize) {
        if !self.inflight.is_empty() {
            let e = self.inflight.remove(i % self.inflight.len());
            self.step(e);
        }
    }

    pub fn deliver_all(&mut self) {
        while !self.inflight.is_empty() {
            self.deliver(0);
        }
    }

    fn execute(&mut self, c: &Command) -> Option<Event> {
        let id = self.job.id();
        let gone = |tm: &str| Event::TaskManagerLost { tm: tm.to_string(), message: format!("{tm} is not registered") };
        match c {
            Command::ResolvePartitions => return Some(Event::PartitionsResolved(Ok(Vec::new()))),
            Command::Deploy { tm, slots, deployment } => match self.tms.get_mut(tm) {
                Some(t) => {
                    t.used.extend(slots.iter().map(|s| (id, *s)));
                    let restore = deployment.restore.clone();
                    self.sent.push(Sent::Deploy { tm: tm.clone(), attempt: deployment.attempt, restore });
                }
                None => return Some(gone(tm)),
            },
            Command::CancelTasks { tm, attempt } => {
                if !self.tms.contains_key(tm) {
                    return Some(gone(tm));
                }
                self.sent.push(Sent::Cancel { tm: tm.clone(), attempt: *attempt });
            }
            Command::ReleaseSlots => self.tms.values_mut().for_each(|t| t.used.retain(|(j, _)| *j != id)),
            Command::TriggerBarrier { tm, attempt, barrier } => {
                self.sent.push(Sent::Barrier { tm: tm.clone(), attempt: *attempt, barrier: barrier.clone() })
            }
            Command::NotifyCheckpointComplete { tm, attempt, checkpoint_id } => {
                self.sent.push(Sent::Complete { tm: tm.clone(), attempt: *attempt, checkpoint_id: *checkpoint_id })
            }
            Command::PrepareDirectory { purpose, dir } => {
                let result = self.storage.prepare(dir).map_err(|e| e.to_string());
                return Some(Event::DirectoryPrepared { purpose: purpose.clone(), dir: dir.clone(), result });
            }
            Command::WriteMetadata { checkpoint_id, dir, metadata } => {
                let result = self.storage.write_metadata(dir, metadata).map_err(|e| e.to_string());
                return Some(Event::MetadataWritten { checkpoint_id: *checkpoint_id, result });
            }
            Command::Remove { dir, .. } => {
                let _ = self.storage.remove(dir);
            }
            Command::Sweep { base, below, keep } => {
                for (n, dir) in self.storage.list(base).unwrap_or_default() {
                    if n < *below && !keep.contains(&n) {
                        let _ = self.storage.remove(&dir);
                    }
                }
            }
            Command::RemoveJobCheckpoints { base, .. } => {
                let _ = self.storage.remove(base);
            }
            Command::ValidateRestore { attempt, candidates } => {
                let choice = choose_restore(candidates.clone(), &self.storage);
                return Some(Event::RestoreValidated { attempt: *attempt, choice });
            }
            Command::PersistCheckpoints(store) => {
                let result = match &self.persist_error {
                    Some(e) => Err(e.clone()),
                    None => {
                        self.persisted = Some((**store).clone());
                        Ok(())
                    }
                };
                return Some(Event::CheckpointsPersisted { newest: store.newest_completed(), result });
            }
            Command::PersistResult(result) => self.persisted_result = Some(*result),
            Command::Log(note) => self.notes.push(note.clone()),
            Command::Answer(Answer::Savepoint(r)) => {
                self.answers.push(Answered::Savepoint(r.as_ref().map_err(|e| e.to_string()).cloned()))
            }
            Command::Answer(Answer::Cancel(r)) => {
                self.answers.push(Answered::Cancel(r.as_ref().map(|_| ()).map_err(|e| e.to_string())))
            }
            Command::Answer(Answer::Checkpoint(r)) => {
                self.answers.push(Answered::Checkpoint(r.as_ref().map_err(|e| e.to_string()).cloned()))
            }
        }
        None
    }

    /// Offers every free slot of the registered TaskManagers.
    pub fn offer(&mut self) {
        let offer: Vec<SlotOffer> = self
            .tms
            .iter()
            .map(|(id, t)| SlotOffer {
                tm: id.clone(),
                data_addr: format!("{id}:6121"),
                free: t.slots.saturating_sub(t.used.len() as u32),
            })
            .filter(|o| o.free > 0)
            .collect();
        self.step(Event::SlotsOffered(offer));
        // As the shell does once a validation is delivered: offer again.
        if !self.asynchronous
            && self.job.wants_slots()
            && self.last.iter().any(|c| matches!(c, Command::ValidateRestore { .. }))
        {
            self.offer();
        }
    }

    /// The subtasks of the job, vertex by vertex.
    pub fn subtasks(&self) -> Vec<SubtaskId> {
        self.job
            .tasks
            .iter()
            .enumerate()
            .flat_map(|(v, tasks)| (0..tasks.len()).map(move |s| SubtaskId { vertex: v as u32, subtask: s as u32 }))
            .collect()
    }

    pub fn task(&self, s: SubtaskId) -> &super::job::TaskEntry {
        &self.job.tasks[s.vertex as usize][s.subtask as usize]
    }

    /// A TaskManager reports task `s` of the current attempt in `status`.
    pub fn report(&mut self, s: SubtaskId, status: TaskStatus) {
        self.report_as(self.job.attempt, s, status, FailureKind::Other);
    }

    pub fn report_as(&mut self, attempt: Attempt, s: SubtaskId, status: TaskStatus, kind: FailureKind) {
        let failure = (status == TaskStatus::FAILED).then(|| format!("task {s} failed"));
        let u = TaskUpdate { job_id: self.job.id(), attempt, subtask: s, status, failure, kind, metrics: None };
        self.step(Event::TaskUpdated(u));
    }

    /// Every task that is not ended reports `status`.
    pub fn report_all(&mut self, status: TaskStatus) {
        for s in self.subtasks() {
            if !self.task(s).status.is_terminal() {
                self.report(s, status);
            }
        }
    }

    /// Deploys the job and brings every task to RUNNING.
    pub fn run_job(&mut self) {
        self.offer();
        assert_eq!(self.job.attempt - self.first_attempt, self.deploys(), "deployed");
        self.report_all(TaskStatus::RUNNING);
        assert!(self.job.all_tasks().all(|t| t.status == TaskStatus::RUNNING));
    }

    pub fn deploys(&self) -> u32 {
        let attempts: BTreeSet<Attempt> = self
            .sent
            .iter()
            .filter_map(|s| match s {
                Sent::Deploy { attempt, .. } => Some(*attempt),
                _ => None,
            })
            .collect();
        attempts.len() as u32
    }

    pub fn lose_tm(&mut self, tm: &str) {
        self.tms.remove(tm);
        self.step(Event::TaskManagerLost { tm: tm.to_string(), message: format!("TaskManager {tm} is lost") });
    }

    /// Fires the timers due now.
    pub fn tick(&mut self) {
        for e in self.job.timers(self.now) {
            self.step(e);
        }
    }

    /// The checkpoint pending now, if its barriers are out.
    pub fn pending(&self) -> Option<u64> {
        self.job.checkpoints.pending_id()
    }

    /// Every subtask acknowledges checkpoint `id`.
    pub fn ack_all(&mut self, id: u64) {
        for s in self.subtasks() {
            self.ack(id, s, Ok(()));
        }
    }

    pub fn ack(&mut self, id: u64, s: SubtaskId, result: Result<(), String>) {
        let entry = AckEntry {
            vertex: Default::default(),
            vertex_name: "v".into(),
            subtask: s.subtask,
            parallelism: SLOTS,
            operators: Vec::new(),
            file: None,
            size: 1,
        };
        let ack = CheckpointAck {
            job_id: self.job.id(),
            attempt: self.job.attempt,
            subtask: s,
            checkpoint_id: id,
            result: result.map(|()| entry),
        };
        self.step(Event::CheckpointAcked(ack));
    }

    /// Lets the interval pass and completes one checkpoint; returns its id.
    pub fn checkpoint(&mut self) -> u64 {
        self.advance(INTERVAL);
        self.tick();
        let id = self.pending().expect("a checkpoint was triggered");
        self.ack_all(id);
        assert!(self.pending().is_none(), "checkpoint {id} completed");
        id
    }

    pub fn savepoint(&mut self, stop: Option<StopMode>) -> Result<String, String> {
        let target = Ok(PathBuf::from("/savepoints"));
        self.step(Event::SavepointRequested { trigger_id: None, target, stop, format: Default::default() });
        match self.answers.pop() {
            Some(Answered::Savepoint(r)) => r,
            other => panic!("no savepoint answer: {other:?}"),
        }
    }

    pub fn cancel(&mut self) -> Result<(), String> {
        self.step(Event::CancelRequested);
        match self.answers.pop() {
            Some(Answered::Cancel(r)) => r,
            other => panic!("no cancel answer: {other:?}"),
        }
    }

    pub fn savepoint_status(&self, trigger_id: &str) -> Option<SavepointStatus> {
        self.job.savepoint_status(trigger_id).cloned()
    }

    /// The slots the job holds, per TaskManager.
    pub fn slots_held(&self) -> BTreeMap<String, usize> {
        let id = self.job.id();
        self.tms
            .iter()
            .map(|(tm, t)| (tm.clone(), t.used.iter().filter(|(j, _)| *j == id).count()))
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    /// The checkpoints with `_metadata` in storage.
    pub fn stored_checkpoints(&self) -> Vec<u64> {
        self.storage.with(|m| m.metadata.values().copied().collect())
    }
}

pub(super) fn fixed_delay(attempts: u64) -> RestartStrategy {
    RestartStrategy::FixedDelay { attempts, delay: Duration::from_millis(500) }
}
