//! One job's lifecycle as a state machine: [`Job::handle`] takes an
//! [`Event`] and the time, changes the job, and returns the [`Command`]s
//! for the shell to carry out. No sockets, locks, clocks or files: time
//! comes in as [`Now`], randomness (trigger ids, savepoint names, restart
//! jitter) from a generator seeded by the shell, and every effect goes out
//! as a command whose result, if it has one, comes back as an event.
//!
//! ```text
//!  INITIALIZING ─Submitted─▶ RUNNING (waiting) ─SlotsOffered─▶ RUNNING (deployed) ─all FINISHED─▶ FINISHED
//!                             │ partitions, restore                │   │
//!                             │ validated, slots                   │   └─CancelRequested─▶ CANCELLING ─tasks ended─▶ CANCELED
//!                             ▼                                    ▼
//!                   task failed / TaskManager lost ──restart strategy: again──▶ RESTARTING ─delay, tasks ended─▶ RUNNING (waiting)
//!                                                  └─restart strategy: no──────▶ FAILING ─tasks ended─▶ FAILED
//! ```
//!
//! The job's durable facts — what was submitted ([`JobRecord`]), its
//! completed checkpoints (the coordinator's [`CheckpointStore`]) and its
//! result — are kept apart from the volatile ones (task states, the
//! attempt, the pending checkpoint, statistics), so that high availability
//! can persist the first and rebuild the rest.

use super::coordinator::Coordinator;
use super::events::{Answer, Command, Event, Purpose, SavepointError};
use super::log::Note;
use crate::checkpoint::RestorePoint;
use crate::clock::Now;
use crate::ids::{Attempt, JobId, JobStatus, SubtaskId, TaskStatus};
use crate::restart::RestartTracker;
use crate::rpc::TaskMetrics;
use flowc_compiler::graph::JobGraph;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

mod checkpointing;
mod deploy;
mod lifecycle;

pub use super::checkpoint_store::CheckpointStore;

/// What outlives a JobManager: the job as submitted and how it ended.
/// With its [`CheckpointStore`], what high availability persists.
#[derive(Debug, Clone)]
pub struct JobRecord {
    pub id: JobId,
    pub name: String,
    /// The compiled plan (`plan_file` bytes), as submitted.
    pub plan: Arc<Vec<u8>>,
    pub submitted_ms: i64,
    pub result: Option<JobResult>,
}

/// How a job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct JobResult {
    pub status: JobStatus,
    pub end_ms: i64,
}

/// One subtask's state, as the JobManager knows it.
#[derive(Debug, Clone)]
pub struct TaskEntry {
    pub status: TaskStatus,
    pub tm: Option<String>,
    pub start_time: i64,
    pub end_time: i64,
    pub metrics: TaskMetrics,
    /// When the current attempt's task entered each state it has been in
    /// (`subtasktimes`, `status-duration`).
    pub timestamps: HashMap<TaskStatus, i64>,
}

impl TaskEntry {
    fn scheduled(now_ms: i64) -> TaskEntry {
        TaskEntry {
            status: TaskStatus::SCHEDULED,
            tm: None,
            start_time: -1,
            end_time: -1,
            metrics: TaskMetrics::default(),
            timestamps: HashMap::from([(TaskStatus::SCHEDULED, now_ms)]),
        }
    }

    /// Moves to `status` at `now_ms`, remembering when.
    pub(super) fn set_status(&mut self, status: TaskStatus, now_ms: i64) {
        self.status = status;
        self.timestamps.insert(status, now_ms);
    }
}

/// A failure, for `/jobs/:jid/exceptions`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExceptionEntry {
    pub timestamp: i64,
    pub message: String,
    pub task: Option<String>,
    pub location: Option<String>,
    /// Other tasks of the same attempt that failed after it, before the
    /// attempt ended (Flink's `concurrentExceptions`), at most
    /// [`MAX_CONCURRENT_EXCEPTIONS`].
    pub concurrent: Vec<ConcurrentFailure>,
}

/// A failure that came with a job's root exception.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConcurrentFailure {
    pub timestamp: i64,
    pub message: String,
    pub location: Option<String>,
}

/// How many concurrent failures an exception keeps.
pub const MAX_CONCURRENT_EXCEPTIONS: usize = 16;

/// Where the job is in its lifecycle. Its Flink status follows from it.
#[derive(Debug)]
pub(super) enum State {
    /// Accepted, not yet submitted to the state machine.
    Initializing,
    /// RUNNING with its tasks SCHEDULED, not deployed: waiting for its
    /// Kafka partitions, a validated restore or free slots.
    Waiting {
        partitions: bool,
        restore: Restore,
    },
    /// RUNNING: the current attempt is deployed.
    Deployed,
    /// RESTARTING: its tasks are being cancelled; it redeploys at `at`.
    Restarting {
        at: Instant,
    },
    Cancelling,
    Failing,
    /// FINISHED, CANCELED or FAILED.
    Ended(JobStatus),
}

/// What the next deployment restores.
#[derive(Debug)]
pub(super) enum Restore {
    /// Not decided: the candidates are validated when slots are free.
    Undecided,
    /// The candidates are being validated.
    Validating,
    /// Decided; `None` is "from scratch".
    Ready(Option<RestorePoint>),
}

/// Everything a new job is made of.
pub struct JobSpec {
    pub id: JobId,
    pub plan: Arc<Vec<u8>>,
    pub graph: JobGraph,
    /// The savepoint it was submitted with, validated.
    pub initial: Option<RestorePoint>,
    pub restarts: RestartTracker,
    /// `state.checkpoints.dir`.
    pub checkpoints_dir: PathBuf,
    pub retention: super::checkpoint_store::Retention,
    /// `state.checkpoints.num-retained`.
    pub num_retained: usize,
    /// `web.exception-history-size`.
    pub exception_history_size: usize,
    /// Seeds the job's randomness (trigger ids, savepoint names, jitter).
    pub seed: u64,
}

pub struct Job {
    pub(super) record: JobRecord,
    pub(super) graph: Arc<JobGraph>,
    pub(super) state: State,
    pub(super) timestamps: HashMap<JobStatus, i64>,
    pub(super) last_modification: i64,
    pub(super) attempt: Attempt,
    /// `tasks[vertex][subtask]`
    pub(super) tasks: Vec<Vec<TaskEntry>>,
    /// Kafka partitions per source subtask.
    splits: Vec<(SubtaskId, Vec<i32>)>,
    pub(super) exceptions: Vec<ExceptionEntry>,
    /// Older exceptions were dropped (`web.exception-history-size`).
    pub(super) exceptions_truncated: bool,
    exception_history_size: usize,
    /// The newest exception is only a consequence (a task whose peer's
    /// channel closed): the first real cause of the same attempt replaces
    /// it as the root.
    pub(super) root_is_consequence: bool,
    pub(super) checkpoints: Coordinator,
    /// The checkpoint store as last sent to be persisted (high availability).
    persisted: CheckpointStore,
    restarts: RestartTracker,
    pub(super) num_restarts: u64,
    /// The savepoint it was submitted with, until the first deployment.
    initial: Option<RestorePoint>,
    /// The checkpoint the current attempt restored from.
    deployed_restore: Option<u64>,
    /// The job's slots are taken (from its deployment until its tasks ended).
    holds_slots: bool,
    /// The free slots when the job last said it waits for slots.
    slot_wait_logged: Option<u32>,
    rng: SplitMix,
}

impl Job {
    pub fn new(spec: JobSpec, now: Now) -> Job {
        let graph = Arc::new(spec.graph);
        let store = CheckpointStore::new(spec.initial.as_ref().map(|p| p.checkpoint.clone()));
        let interval = graph.settings.checkpoint_interval_ms.map(std::time::Duration::from_millis);
        let checkpoints = Coordinator::new(
            spec.id,
            &graph.name,
            graph.settings.max_parallelism,
            &spec.checkpoints_dir,
            interval,
            spec.retention,
            spec.num_retained,
            store.clone(),
        );
        let created = || TaskEntry {
            status: TaskStatus::CREATED,
            timestamps: HashMap::from([(TaskStatus::CREATED, now.ms)]),
            ..TaskEntry::scheduled(now.ms)
        };
        let tasks = graph.graph.node_weights().map(|v| (0..v.parallelism).map(|_| created()).collect()).collect();
        Job {
            record: JobRecord {
                id: spec.id,
                name: graph.name.clone(),
                plan: spec.plan,
                submitted_ms: now.ms,
                result: None,
            },
            graph,
            state: State::Initializing,
            timestamps: HashMap::from([(JobStatus::INITIALIZING, now.ms)]),
            last_modification: now.ms,
            attempt: 0,
            tasks,
            splits: Vec::new(),
            exceptions: Vec::new(),
            exceptions_truncated: false,
            exception_history_size: spec.exception_history_size.max(1),
            root_is_consequence: false,
            checkpoints,
            // As the shell stored it with the submission.
            persisted: store,
            restarts: spec.restarts,
            num_restarts: 0,
            initial: spec.initial,
            deployed_restore: None,
            holds_slots: false,
            slot_wait_logged: None,
            rng: SplitMix(spec.seed),
        }
    }

    /// A job recreated from the HA job store by a JobManager that gained
    /// leadership: `spec` rebuilt from the stored submission, `store` the
    /// job's stored checkpoints and counter, `submitted_ms` when it was
    /// first submitted. Handle [`Event::Recovered`] next.
    pub fn recover(spec: JobSpec, store: CheckpointStore, submitted_ms: i64, now: Now) -> Job {
        let mut job = Job::new(JobSpec { initial: None, ..spec }, now);
        job.persisted = store.clone();
        job.checkpoints.store = store;
        job.record.submitted_ms = submitted_ms;
        job
    }

    pub fn id(&self) -> JobId {
        self.record.id
    }

    pub fn name(&self) -> &str {
        &self.record.name
    }

    pub fn graph(&self) -> &Arc<JobGraph> {
        &self.graph
    }

    /// The durable facts: what was submitted and how it ended, and the
    /// completed checkpoints.
    pub fn durable(&self) -> (&JobRecord, &CheckpointStore) {
        (&self.record, &self.checkpoints.store)
    }

    /// The job's status, in Flink's names.
    pub fn status(&self) -> JobStatus {
        match self.state {
            State::Initializing => JobStatus::INITIALIZING,
            State::Waiting { .. } | State::Deployed => JobStatus::RUNNING,
            State::Restarting { .. } => JobStatus::RESTARTING,
            State::Cancelling => JobStatus::CANCELLING,
            State::Failing => JobStatus::FAILING,
            State::Ended(s) => s,
        }
    }

    pub fn end_time(&self) -> i64 {
        self.record.result.map_or(-1, |r| r.end_ms)
    }

    pub fn all_tasks(&self) -> impl Iterator<Item = &TaskEntry> + Clone {
        self.tasks.iter().flatten()
    }

    fn all_ended(&self) -> bool {
        self.all_tasks().all(|t| t.status.is_terminal())
    }

    fn all_running(&self) -> bool {
        self.all_tasks().all(|t| t.status == TaskStatus::RUNNING)
    }

    /// The job waits for slots (and would take them now).
    pub fn wants_slots(&self) -> bool {
        matches!(&self.state, State::Waiting { partitions: true, restore } if !matches!(restore, Restore::Validating))
    }

    /// How the savepoint of `trigger_id` stands, if it was asked for.
    pub fn savepoint_status(&self, trigger_id: &str) -> Option<&crate::jobmanager::savepoints::SavepointStatus> {
        self.checkpoints.savepoints.status(trigger_id)
    }

    /// How the checkpoint asked for by hand under `trigger_id` stands.
    pub fn checkpoint_status(&self, trigger_id: &str) -> Option<&super::coordinator::ManualCheckpoint> {
        self.checkpoints.manual_status(trigger_id)
    }

    /// A heartbeat's counters of one of the job's subtasks.
    pub fn record_metrics(&mut self, m: &TaskMetrics) {
        let Some(sub) = m.subtask.filter(|_| m.attempt == self.attempt) else { return };
        if let Some(t) = self.tasks.get_mut(sub.vertex as usize).and_then(|v| v.get_mut(sub.subtask as usize)) {
            t.metrics = m.clone();
        }
    }

    /// The timers that are due at `now`, as events to handle.
    pub fn timers(&self, now: Now) -> Vec<Event> {
        match self.state {
            State::Restarting { at } if now.instant >= at && self.all_ended() => vec![Event::RestartDelayElapsed],
            State::Waiting { .. } | State::Deployed if self.checkpoints.is_timed_out(now) => {
                vec![Event::CheckpointTimeoutDue]
            }
            State::Deployed if self.checkpoints.is_due(now) && self.all_running() => vec![Event::CheckpointTriggerDue],
            _ => Vec::new(),
        }
    }

    /// Handles one event at `now`; returns what to do. Changes to the
    /// durable facts come first among the commands (see `persist`).
    pub fn handle(&mut self, event: Event, now: Now) -> Vec<Command> {
        // A persisted store's outcome: if it is not the current store (a
        // checkpoint failed while its store was written), the current one
        // goes again.
        let stale = matches!(event, Event::CheckpointsPersisted { .. });
        let before = (self.checkpoints.store.clone(), self.record.result);
        let mut out = self.transition(event, now);
        self.persist(before, stale, &mut out);
        out
    }

    /// What changed in the durable facts since `before` goes to the HA job
    /// store ahead of every other command: a checkpoint id is persisted
    /// before its barrier goes out (a new leader never reuses it), a
    /// result before the job's checkpoints are deleted. A completed
    /// checkpoint asks for its own store to be persisted and completes
    /// only once that succeeded (`Coordinator::checkpoints_persisted`):
    /// before the sinks are told to commit it and before the checkpoints
    /// it subsumes are deleted. A store already sent is not sent again.
    fn persist(&mut self, before: (CheckpointStore, Option<JobResult>), recheck: bool, out: &mut Vec<Command>) {
        if let Some(sent) = out.iter().rev().find_map(|c| match c {
            Command::PersistCheckpoints(s) => Some(s),
            _ => None,
        }) {
            self.persisted = (**sent).clone();
        }
        let mut first = Vec::new();
        if (recheck || before.0 != self.checkpoints.store) && self.persisted != self.checkpoints.store {
            self.persisted = self.checkpoints.store.clone();
            first.push(Command::PersistCheckpoints(Box::new(self.checkpoints.store.clone())));
        }
        if let (None, Some(result)) = (before.1, self.record.result) {
            first.push(Command::PersistResult(result));
        }
        if !first.is_empty() {
            first.append(out);
            *out = first;
        }
    }

    fn transition(&mut self, event: Event, now: Now) -> Vec<Command> {
        let mut out = Vec::new();
        match event {
            Event::Submitted => self.on_submitted(now, &mut out),
            Event::Recovered => self.on_recovered(now, &mut out),
            Event::LeadershipLost => self.on_leadership_lost(now, &mut out),
            Event::PartitionsResolved(splits) => self.on_partitions(splits, now, &mut out),
            Event::SlotsOffered(offer) => self.on_slots(&offer, now, &mut out),
            Event::RestoreValidated { attempt, choice } => self.on_validated(attempt, choice, now, &mut out),
            Event::TaskUpdated(u) => self.on_task_update(u, now, &mut out),
            Event::TaskManagerLost { tm, message } => self.on_tm_lost(&tm, &message, now, &mut out),
            Event::CheckpointTriggerDue => {
                if matches!(self.state, State::Deployed) && self.checkpoints.is_due(now) && self.all_running() {
                    let expected = self.all_tasks().count();
                    self.checkpoints.trigger(now, expected, &mut out);
                }
            }
            Event::CheckpointTimeoutDue => {
                if self.status() == JobStatus::RUNNING && self.checkpoints.is_timed_out(now) {
                    let reason = format!("timed out after {} s", super::coordinator::TIMEOUT.as_secs());
                    if let Some(f) = self.checkpoints.fail_pending(now, reason, &mut out) {
                        self.on_checkpoint_failed(f, now, &mut out);
                    }
                }
            }
            Event::RestartDelayElapsed => self.restart(now, &mut out),
            Event::CheckpointAcked(ack) => self.on_ack(ack, now, &mut out),
            Event::DirectoryPrepared { purpose: Purpose::Checkpoint(id), dir, result } => {
                let p = self.checkpoints.directory_prepared(now, id, dir, result, &mut out);
                self.on_progress(p, now, &mut out);
            }
            Event::DirectoryPrepared { purpose: Purpose::Savepoint(trigger_id), dir, result } => {
                self.on_savepoint_directory(&trigger_id, dir, result, now, &mut out)
            }
            Event::MetadataWritten { checkpoint_id, result } => {
                let p = self.checkpoints.metadata_written(now, checkpoint_id, result, &mut out);
                self.on_progress(p, now, &mut out);
            }
            Event::RemovalFailed { dir } => self.checkpoints.removal_failed(dir),
            Event::CheckpointsPersisted { newest, result } => {
                let p = self.checkpoints.checkpoints_persisted(now, newest, result, &mut out);
                self.on_progress(p, now, &mut out);
            }
            Event::SavepointRequested { trigger_id, target, stop, format } => {
                let answer = self.on_savepoint_request(trigger_id, target, stop, format, &mut out);
                out.push(Command::Answer(Answer::Savepoint(answer)));
            }
            Event::CancelRequested => {
                let answer = self.on_cancel(now, &mut out);
                out.push(Command::Answer(Answer::Cancel(answer)));
            }
            Event::CheckpointRequested { trigger_id } => {
                let answer = if self.status() == JobStatus::RUNNING {
                    self.checkpoints.request_checkpoint(trigger_id.clone());
                    Ok(trigger_id)
                } else {
                    Err(SavepointError::NotRunning(self.record.id, self.status()))
                };
                out.push(Command::Answer(Answer::Checkpoint(answer)));
            }
        }
        self.finish_if_done(now, &mut out);
        out
    }

    /// Moves to `state`; a change of status is timestamped and logged.
    fn set_state(&mut self, state: State, now: Now, out: &mut Vec<Command>) {
        let from = self.status();
        self.state = state;
        let to = self.status();
        if from != to {
            self.mark_status(from, to, now, out);
        }
    }

    fn mark_status(&mut self, from: JobStatus, to: JobStatus, now: Now, out: &mut Vec<Command>) {
        out.push(Command::Log(Note::StateChanged { from, to }));
        self.timestamps.insert(to, now.ms);
        self.last_modification = now.ms;
    }

    /// Records a failure for `/jobs/:jid/exceptions`, keeping the newest
    /// `web.exception-history-size`.
    fn record_exception(&mut self, now: Now, message: &str, location: Option<String>) {
        self.root_is_consequence = false;
        let entry = ExceptionEntry {
            timestamp: now.ms,
            message: message.to_string(),
            task: None,
            location,
            concurrent: Vec::new(),
        };
        self.exceptions.push(entry);
        if self.exceptions.len() > self.exception_history_size {
            let excess = self.exceptions.len() - self.exception_history_size;
            self.exceptions.drain(..excess);
            self.exceptions_truncated = true;
        }
    }
}

/// The job's random numbers: splitmix64, seeded by the shell, so that a
/// test with a fixed seed sees the same trigger ids, names and jitter.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// `digits` random hex digits.
    fn hex(&mut self, digits: usize) -> String {
        let mut s = String::with_capacity(digits + 16);
        while s.len() < digits {
            s.push_str(&format!("{:016x}", self.next()));
        }
        s.truncate(digits);
        s
    }
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("id", &self.record.id)
            .field("state", &self.state)
            .field("attempt", &self.attempt)
            .finish_non_exhaustive()
    }
}
