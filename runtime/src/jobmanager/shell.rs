//! The JobManager's shell: the one lock over the jobs and the TaskManager
//! registry, the entry points that REST, the RPC server and the 100 ms tick
//! call, and the carrying out of what the jobs' state machines ask for.
//!
//! Every entry point reads the time once ([`Now`]), turns its input into an
//! [`Event`] for one job and [`JobManager::run`]s it: the job's commands
//! are executed in order — messages go to the TaskManagers' connections,
//! slots are taken and freed in the registry, storage work goes through
//! [`CheckpointStorage`] with its result fed back to the job at once, log
//! notes are written — until none is left. Work that must not hold the
//! lock (validating checkpoints, reading Kafka metadata) is deferred until
//! it is released and delivers its result as an event later.
//!
//! No ZooKeeper or S3 call is made under the lock: a command that makes
//! one (persisting to the HA job store, storage work on `s3://`) goes to
//! the job's *outbox*, and so does every command of the job after it, so
//! that a job's commands are still carried out in the order it gave them —
//! a checkpoint's pointer is durable before any sink is told to commit it.
//! Once the lock is released the outbox is drained ([`Deferred::Drain`]):
//! slow commands without the lock, the others under it, each result fed
//! back to the job as an event, until the outbox is empty. An outbox
//! belongs to one drain, and one job's slow commands never run two at once,
//! across a loss and regain of leadership too (`outbox.rs`). Storage work
//! on local files is quick and runs in place, as before.

use super::checkpoint_store::Retention;
use super::coordinator::ManualCheckpoint;
use super::events::{Answer, CancelError, Command, Event, SavepointError};
use super::ha_store::HaJobs;
use super::job::{Job, JobSpec};
use super::leadership::Role;
use super::outbox::{DrainId, InFlight, Outboxes};
use super::scheduler::{self, SlotOffer};
use super::{store, SavepointStatus};
use crate::checkpoint::fallback::choose_restore;
use crate::checkpoint::restore::check_restore;
use crate::checkpoint::storage::{CheckpointStorage, Storages};
use crate::checkpoint::{CheckpointRef, RestorePoint, StopMode};
use crate::clock::{now_ms, Now};
use crate::config::{Config, ConfigError};
use crate::connectors::kafka::partition_count;
use crate::ids::{Attempt, JobId, SubtaskId};
use crate::registry::TaskManagerEntry;
use crate::restart::{RestartStrategy, RestartTracker};
use crate::rpc::{self, CheckpointAck, ToTaskManager};
use crate::security::paths::AllowedRoots;
use flowc_compiler::graph::JobGraph;
use flowc_compiler::ir::OperatorKind;
use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Everything under the JobManager's lock.
pub(super) struct JmState {
    pub(super) tms: BTreeMap<String, TaskManagerEntry>,
    pub(super) jobs: BTreeMap<JobId, Job>,
    /// Whether this JobManager leads (`leadership.rs`).
    pub(super) role: Role,
    /// The other JobManager that leads, as last seen in ZooKeeper, whatever
    /// this one believed about itself then (`leadership.rs`).
    pub(super) followed_leader: Option<crate::ha::LeaderInfo>,
    /// Per job, the commands waiting to be carried out off the lock, in
    /// order; a job is here while its outbox is being drained.
    pub(super) outboxes: Outboxes,
}

/// The JobManager's shared state and configuration.
pub struct JobManager {
    /// This JobManager itself, to drain outboxes from entry points that
    /// borrow it.
    me: std::sync::Weak<JobManager>,
    state: Mutex<JmState>,
    /// The jobs with a slow command of their outbox under way.
    pub(super) in_flight: InFlight,
    pub config: Config,
    pub heartbeat_timeout: Duration,
    pub started_ms: i64,
    /// Where savepoints, restores and file sinks may go.
    pub allowed: AllowedRoots,
    /// UDF artifacts, by digest (`blob.storage.directory`).
    pub blobs: crate::blob::BlobStore,
    storage: Arc<dyn CheckpointStorage>,
    /// The HA job store, if the settings give one (`ha_store`).
    pub(super) ha: Option<HaJobs>,
    retention: Retention,
    /// Completed checkpoints a job keeps (`state.checkpoints.num-retained`).
    num_retained: usize,
    /// How long an ended job stays listed, and how many at most.
    jobstore_expiration: Duration,
    jobstore_capacity: usize,
    exception_history_size: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("the plan is not valid: {0}")]
    BadPlan(String),
    #[error("cannot restore from `{path}`: {reason}")]
    BadSavepoint { path: String, reason: String },
    #[error("{0}")]
    Unsupported(String),
    /// Not the leader, or the HA job store cannot take the job: try again.
    #[error("{0}")]
    Unavailable(String),
}

/// How a submitted job starts: from scratch or from a savepoint.
#[derive(Debug, Clone, Default)]
pub struct RestoreRequest {
    pub savepoint_path: Option<String>,
    pub allow_non_restored_state: bool,
}

/// Work that runs once the lock is released.
pub(super) enum Deferred {
    Validate {
        job: JobId,
        attempt: Attempt,
        candidates: Vec<CheckpointRef>,
    },
    ResolvePartitions {
        job: JobId,
        graph: Arc<JobGraph>,
    },
    /// Carry out the job's outbox.
    Drain {
        job: JobId,
        drain: DrainId,
    },
}

impl JobManager {
    /// A JobManager that leads from the start and keeps nothing beyond its
    /// life.
    pub fn new(config: Config) -> Result<Arc<JobManager>, ConfigError> {
        JobManager::with_ha(config, None, true)
    }

    /// A JobManager with the HA job store `ha` (see `leadership.rs`): one
    /// that does not start `leading` waits for
    /// [`JobManager::grant_leadership`].
    pub fn with_ha(config: Config, ha: Option<HaJobs>, leading: bool) -> Result<Arc<JobManager>, ConfigError> {
        let heartbeat_timeout = Duration::from_millis(config.get_u64("heartbeat.timeout")?);
        let key = "execution.checkpointing.externalized-checkpoint-retention";
        let retention = Retention::parse(&config.get(key)).ok_or_else(|| ConfigError::BadValue {
            key: key.into(),
            value: config.get(key),
            expected: "DELETE_ON_CANCELLATION, RETAIN_ON_CANCELLATION or NO_EXTERNALIZED_CHECKPOINTS",
        })?;
        let capacity = config.get_u64("jobstore.max-capacity")?;
        let history = config.get_u64("web.exception-history-size")?;
        let role = if leading { Role::Leader(None) } else { Role::Standby(None) };
        let num_retained = super::checkpoint_store::num_retained(&config)?;
        let storage = Arc::new(Storages::from_config(&config)?);
        let jobstore_expiration = seconds(&config, "jobstore.expiration-time")?;
        Ok(Arc::new_cyclic(|me| JobManager {
            me: me.clone(),
            state: Mutex::new(JmState {
                tms: BTreeMap::new(),
                jobs: BTreeMap::new(),
                role,
                followed_leader: None,
                outboxes: Outboxes::default(),
            }),
            in_flight: InFlight::default(),
            ha,
            allowed: AllowedRoots::from_config(&config),
            blobs: crate::blob::BlobStore::new(
                std::path::Path::new(&config.get("blob.storage.directory")).join("jobmanager"),
            ),
            storage,
            retention,
            num_retained,
            jobstore_expiration,
            jobstore_capacity: usize::try_from(capacity).unwrap_or(usize::MAX),
            exception_history_size: usize::try_from(history).unwrap_or(usize::MAX).max(1),
            config,
            heartbeat_timeout,
            started_ms: now_ms(),
        }))
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, JmState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Handles `event` for job `id` at `now` and carries out what it asks,
    /// feeding storage results back, until nothing is left. Returns the
    /// answer, if the event was a request.
    pub(super) fn run(
        &self,
        st: &mut JmState,
        id: JobId,
        event: Event,
        now: Now,
        deferred: &mut Vec<Deferred>,
    ) -> Option<Answer> {
        let mut events = VecDeque::from([event]);
        let mut answer = None;
        while let Some(event) = events.pop_front() {
            let Some(job) = st.jobs.get_mut(&id) else { break };
            let commands = job.handle(event, now);
            for command in commands {
                if let Command::Answer(a) = command {
                    answer = Some(a);
                    continue;
                }
                // Behind a slow command, everything waits its turn.
                let Some(command) = st.outboxes.queue(id, command) else { continue };
                if self.is_slow(&command) {
                    let drain = st.outboxes.open(id, command);
                    deferred.push(Deferred::Drain { job: id, drain });
                } else {
                    self.execute(st, id, command, &mut events, deferred);
                }
            }
        }
        answer
    }

    /// Runs work deferred by an entry point that only borrows the JobManager.
    pub(super) fn finish(&self, deferred: Vec<Deferred>) {
        if deferred.is_empty() {
            return;
        }
        if let Some(me) = self.me.upgrade() {
            me.after(deferred);
        }
    }

    /// Carries out one command of job `id`. Results that go back to the job
    /// are queued in `events`.
    pub(super) fn execute(
        &self,
        st: &mut JmState,
        id: JobId,
        command: Command,
        events: &mut VecDeque<Event>,
        deferred: &mut Vec<Deferred>,
    ) -> Option<Answer> {
        let send = |st: &JmState, tm: &str, msg: ToTaskManager| -> bool {
            match st.tms.get(tm) {
                Some(entry) => {
                    let _ = entry.tx.send(msg);
                    true
                }
                None => false,
            }
        };
        let gone = |tm: String| Event::TaskManagerLost { message: format!("TaskManager {tm} is not registered"), tm };
        // Every command to a TaskManager carries this JobManager's term (fencing).
        let leader_session = match st.role {
            Role::Leader(s) => s,
            Role::Standby(_) => None,
        };
        match command {
            Command::ResolvePartitions => {
                if let Some(job) = st.jobs.get(&id) {
                    deferred.push(Deferred::ResolvePartitions { job: id, graph: job.graph().clone() });
                }
            }
            Command::Deploy { tm, slots, mut deployment } => match st.tms.get_mut(&tm) {
                Some(entry) => {
                    entry.used.extend(slots.iter().map(|s| (id, *s)));
                    deployment.leader_session = leader_session;
                    let _ = entry.tx.send(ToTaskManager::Deploy(deployment));
                }
                None => events.push_back(gone(tm)),
            },
            Command::CancelTasks { tm, attempt } => {
                if !send(st, &tm, ToTaskManager::Cancel { job_id: id, attempt, leader_session }) {
                    // The TaskManager is gone, and its tasks with it.
                    events.push_back(gone(tm));
                }
            }
            Command::ReleaseSlots => {
                for tm in st.tms.values_mut() {
                    tm.used.retain(|(j, _)| *j != id);
                }
            }
            Command::TriggerBarrier { tm, attempt, barrier } => {
                send(st, &tm, ToTaskManager::TriggerCheckpoint { job_id: id, attempt, barrier, leader_session });
            }
            Command::NotifyCheckpointComplete { tm, attempt, checkpoint_id } => {
                let complete = ToTaskManager::CheckpointComplete { job_id: id, attempt, checkpoint_id, leader_session };
                send(st, &tm, complete);
            }
            c @ (Command::PrepareDirectory { .. }
            | Command::WriteMetadata { .. }
            | Command::Remove { .. }
            | Command::Sweep { .. }
            | Command::RemoveJobCheckpoints { .. }
            | Command::PersistCheckpoints(_)
            | Command::PersistResult(_)) => events.extend(self.perform(id, c)),
            Command::ValidateRestore { attempt, candidates } => {
                deferred.push(Deferred::Validate { job: id, attempt, candidates })
            }
            Command::Log(note) => {
                if let Some(job) = st.jobs.get(&id) {
                    note.emit(id, job.name());
                }
            }
            Command::Answer(a) => return Some(a),
        }
        None
    }

    /// Carries out one storage or HA job store command of job `id`, with or
    /// without the lock (it takes none); returns the result for the job.
    pub(super) fn perform(&self, id: JobId, command: Command) -> Option<Event> {
        match command {
            Command::PrepareDirectory { purpose, dir } => {
                let result = self.storage.prepare(&dir).map_err(|e| e.to_string());
                Some(Event::DirectoryPrepared { purpose, dir, result })
            }
            Command::WriteMetadata { checkpoint_id, dir, metadata } => {
                let result = self.storage.write_metadata(&dir, &metadata).map_err(|e| e.to_string());
                Some(Event::MetadataWritten { checkpoint_id, result })
            }
            Command::Remove { dir, retry } => match self.storage.remove(&dir) {
                Err(e) => {
                    tracing::debug!(job_id = %id, path = %dir.display(), error = %e, "Cannot remove a checkpoint's directory (yet).");
                    retry.then_some(Event::RemovalFailed { dir })
                }
                Ok(()) => None,
            },
            Command::Sweep { base, below, keep } => {
                self.sweep(id, &base, below, &keep);
                None
            }
            Command::RemoveJobCheckpoints { base, status } => {
                match self.storage.remove(&base) {
                    Ok(()) => {
                        tracing::info!(job_id = %id, path = %base.display(), status = %status, "Deleted the job's checkpoints.")
                    }
                    Err(e) => {
                        tracing::warn!(job_id = %id, path = %base.display(), error = %e, "Cannot remove the job's checkpoints.")
                    }
                }
                None
            }
            Command::PersistCheckpoints(store) => {
                let result = self.persist_checkpoints(id, &store);
                Some(Event::CheckpointsPersisted { newest: store.newest_completed(), result })
            }
            Command::PersistResult(result) => {
                self.persist_result(id, result);
                None
            }
            other => {
                tracing::error!(job_id = %id, command = ?other, "A command that is not storage work was taken for it (this is a bug).");
                None
            }
        }
    }

    /// Removes every `chk-<n>` of job `id` under `base` older than `below`
    /// that is not in `keep`.
    fn sweep(&self, id: JobId, base: &std::path::Path, below: u64, keep: &[u64]) {
        let Ok(found) = self.storage.list(base) else { return };
        for (n, dir) in found {
            if n < below && !keep.contains(&n) {
                if let Err(e) = self.storage.remove(&dir) {
                    tracing::warn!(job_id = %id, checkpoint_id = n, error = %e, "Cannot remove the directory of an old checkpoint.");
                }
            }
        }
    }

    /// Runs the deferred work, off the lock: validations on blocking
    /// threads, Kafka metadata in the background. Each delivers its result
    /// to its job and schedules.
    pub(super) fn after(self: &Arc<Self>, deferred: Vec<Deferred>) {
        for d in deferred {
            let jm = self.clone();
            match d {
                Deferred::Validate { job, attempt, candidates } => {
                    let work = move || {
                        let started = Instant::now();
                        let choice = choose_restore(candidates, &*jm.storage);
                        tracing::debug!(job_id = %job, elapsed_ms = started.elapsed().as_millis() as u64, "Validated the checkpoints to restore from.");
                        jm.deliver(job, Event::RestoreValidated { attempt, choice });
                    };
                    match tokio::runtime::Handle::try_current() {
                        Ok(h) => drop(h.spawn_blocking(work)),
                        Err(_) => work(),
                    }
                }
                Deferred::Drain { job, drain } => match tokio::runtime::Handle::try_current() {
                    Ok(h) => drop(h.spawn_blocking(move || jm.drain(job, drain))),
                    Err(_) => jm.drain(job, drain),
                },
                Deferred::ResolvePartitions { job, graph } => {
                    let work = |graph: Arc<JobGraph>| assign_partitions(&graph);
                    match tokio::runtime::Handle::try_current() {
                        Ok(h) => drop(h.spawn(async move {
                            let splits = tokio::task::spawn_blocking(move || work(graph))
                                .await
                                .unwrap_or_else(|_| Err(panic_message()));
                            jm.deliver(job, Event::PartitionsResolved(splits));
                        })),
                        Err(_) => jm.deliver(job, Event::PartitionsResolved(work(graph))),
                    }
                }
            }
        }
    }

    /// Delivers a deferred result to job `id`, then schedules.
    fn deliver(self: &Arc<Self>, id: JobId, event: Event) {
        let mut deferred = Vec::new();
        {
            let mut st = self.lock();
            self.run(&mut st, id, event, Now::read(), &mut deferred);
        }
        self.after(deferred);
        self.schedule();
    }

    /// Accepts a compiled plan; returns the new job's id at once. Kafka
    /// metadata is fetched in the background before the job is scheduled.
    /// With an HA job store, the job is in it before this returns.
    pub fn submit(self: &Arc<Self>, plan: Vec<u8>, restore: RestoreRequest) -> Result<JobId, SubmitError> {
        if !self.is_leader() {
            return Err(SubmitError::Unavailable(self.not_leader_message()));
        }
        let graph = flowc_compiler::plan_file::from_bytes(&plan).map_err(|e| SubmitError::BadPlan(e.to_string()))?;
        for v in graph.graph.node_weights() {
            for o in &v.operators {
                if let OperatorKind::FileSink(f) = &o.kind {
                    // The TaskManager checks again before it opens the file.
                    self.allowed.check(&f.path).map_err(|e| {
                        SubmitError::Unsupported(format!("{}: the file sink's path is refused: {e}", o.name))
                    })?;
                }
                if let OperatorKind::FileSource(f) = &o.kind {
                    // The TaskManager checks again before it reads.
                    self.allowed.check(&f.path).map_err(|e| {
                        SubmitError::Unsupported(format!("{}: the file source's path is refused: {e}", o.name))
                    })?;
                }
                if let OperatorKind::KafkaSink(k) = &o.kind {
                    if k.delivery == flowc_compiler::ir::Delivery::ExactlyOnce
                        && graph.settings.checkpoint_interval_ms.is_none()
                    {
                        return Err(SubmitError::Unsupported(format!(
                            "{}: exactly_once delivery commits on checkpoints; enable checkpointing (execution.checkpointing.interval)",
                            o.name
                        )));
                    }
                }
            }
        }
        let initial = match &restore.savepoint_path {
            None => None,
            Some(path) => {
                let bad = |reason: String| SubmitError::BadSavepoint { path: path.clone(), reason };
                let dir = self.allowed.check_location(path).map_err(|e| bad(e.to_string()))?;
                let metadata = check_restore(&*self.storage, &graph, &dir, restore.allow_non_restored_state)
                    .map_err(|e| bad(e.to_string()))?;
                let checkpoint = CheckpointRef { id: metadata.checkpoint_id, dir, savepoint: metadata.savepoint };
                Some(RestorePoint { checkpoint, metadata })
            }
        };
        let id = JobId::random();
        self.persist_submission(id, &plan, &graph, initial.as_ref().map(|p| &p.checkpoint))?;
        let spec = self.spec(id, Arc::new(plan), graph, initial)?;
        let now = Now::read();
        let mut deferred = Vec::new();
        {
            let mut st = self.lock();
            // Leadership went while the job was stored: the next leader runs it.
            if st.role.is_leader() {
                st.jobs.insert(id, Job::new(spec, now));
                self.run(&mut st, id, Event::Submitted, now, &mut deferred);
            }
        }
        self.after(deferred);
        Ok(id)
    }

    /// What a job is made of, for a submission or a recovery.
    pub(super) fn spec(
        &self,
        id: JobId,
        plan: Arc<Vec<u8>>,
        graph: JobGraph,
        initial: Option<RestorePoint>,
    ) -> Result<JobSpec, SubmitError> {
        let checkpointing = graph.settings.checkpoint_interval_ms.is_some();
        let strategy = RestartStrategy::from_config(&self.config, checkpointing)
            .map_err(|e| SubmitError::BadPlan(format!("restart strategy: {e}")))?;
        Ok(JobSpec {
            id,
            plan,
            graph,
            initial,
            restarts: RestartTracker::new(strategy),
            checkpoints_dir: crate::checkpoint::format::checkpoint_dir(&self.config.get("state.checkpoints.dir")),
            retention: self.retention,
            num_retained: self.num_retained,
            exception_history_size: self.exception_history_size,
            seed: rand::random(),
        })
    }

    /// Cancels a job (`PATCH /jobs/:jid?mode=cancel`, `flowc cancel`).
    pub fn cancel(&self, id: JobId) -> Result<(), CancelError> {
        let mut deferred = Vec::new();
        let answer = {
            let mut st = self.lock();
            if !st.jobs.contains_key(&id) {
                return Err(CancelError::NotFound(id));
            }
            self.run(&mut st, id, Event::CancelRequested, Now::read(), &mut deferred)
        };
        self.finish(deferred);
        match answer {
            Some(Answer::Cancel(r)) => r,
            _ => Ok(()),
        }
    }

    /// Triggers a savepoint (`POST /jobs/:jid/savepoints`), or, with `stop`,
    /// a stop-with-savepoint (`POST /jobs/:jid/stop`). Returns the trigger id;
    /// a repeated `trigger_id` returns the same one without a second savepoint.
    pub fn trigger_savepoint(
        &self,
        id: JobId,
        target: Option<String>,
        stop: Option<StopMode>,
        trigger_id: Option<String>,
        format: super::savepoints::SavepointFormat,
    ) -> Result<String, SavepointError> {
        let base = target.filter(|t| !t.trim().is_empty()).unwrap_or_else(|| self.config.get("state.savepoints.dir"));
        let target: Result<PathBuf, SavepointError> = if base.trim().is_empty() {
            Err(SavepointError::NoDirectory)
        } else {
            self.allowed.check_location(&base).map_err(SavepointError::PathNotAllowed)
        };
        let mut deferred = Vec::new();
        let answer = {
            let mut st = self.lock();
            if !st.jobs.contains_key(&id) {
                return Err(SavepointError::NotFound(id));
            }
            let event = Event::SavepointRequested { trigger_id, target, stop, format };
            self.run(&mut st, id, event, Now::read(), &mut deferred)
        };
        self.finish(deferred);
        match answer {
            Some(Answer::Savepoint(r)) => r,
            _ => Err(SavepointError::NotFound(id)),
        }
    }

    /// Asks for a checkpoint now (`POST /jobs/:jid/checkpoints`); returns
    /// its trigger id (`trigger_id` if given, a repeated one asks for nothing more).
    pub fn trigger_checkpoint(&self, id: JobId, trigger_id: Option<String>) -> Result<String, SavepointError> {
        let trigger_id = trigger_id.unwrap_or_else(|| JobId::random().to_string());
        let mut deferred = Vec::new();
        let answer = {
            let mut st = self.lock();
            if !st.jobs.contains_key(&id) {
                return Err(SavepointError::NotFound(id));
            }
            self.run(&mut st, id, Event::CheckpointRequested { trigger_id }, Now::read(), &mut deferred)
        };
        self.finish(deferred);
        match answer {
            Some(Answer::Checkpoint(r)) => r,
            _ => Err(SavepointError::NotFound(id)),
        }
    }

    /// Deletes the savepoint at `path` (`POST /savepoint-disposal`): a
    /// directory, or an `s3://` prefix, with a `_metadata`, inside the
    /// allowed directories or buckets. Returns where it was. Blocks on the
    /// storage; call it off the lock and off the async threads.
    pub fn dispose_savepoint(&self, path: &str) -> Result<PathBuf, String> {
        let dir = self.allowed.check_location(path).map_err(|e| e.to_string())?;
        let metadata = crate::checkpoint::format::METADATA_FILE;
        let dir = match dir.parent() {
            Some(parent) if dir.file_name().is_some_and(|n| n == metadata) => parent.to_path_buf(),
            _ => dir,
        };
        if self.storage.read(&dir.join(metadata)).is_err() {
            return Err(format!("{} is not a savepoint (it has no _metadata file)", dir.display()));
        }
        self.storage.remove(&dir).map_err(|e| e.to_string())?;
        Ok(dir)
    }

    pub fn checkpoint_status(&self, id: JobId, trigger_id: &str) -> Result<ManualCheckpoint, SavepointError> {
        let st = self.lock();
        let job = st.jobs.get(&id).ok_or(SavepointError::NotFound(id))?;
        job.checkpoint_status(trigger_id).cloned().ok_or_else(|| SavepointError::UnknownTrigger(trigger_id.to_string()))
    }

    pub fn savepoint_status(&self, id: JobId, trigger_id: &str) -> Result<SavepointStatus, SavepointError> {
        let st = self.lock();
        let job = st.jobs.get(&id).ok_or(SavepointError::NotFound(id))?;
        job.savepoint_status(trigger_id).cloned().ok_or_else(|| SavepointError::UnknownTrigger(trigger_id.to_string()))
    }

    /// Offers the free slots to the jobs that wait for them, one job after
    /// another. A job that restores state is deployed once its checkpoint
    /// has been validated (in the background).
    pub fn schedule(self: &Arc<Self>) {
        let now = Now::read();
        let mut deferred = Vec::new();
        {
            let mut st = self.lock();
            let ids: Vec<JobId> = st.jobs.iter().filter(|(_, j)| j.wants_slots()).map(|(id, _)| *id).collect();
            for id in ids {
                let offer: Vec<SlotOffer> = st
                    .tms
                    .values()
                    .filter(|t| t.free_slots() > 0)
                    .map(|t| SlotOffer { tm: t.id.clone(), data_addr: t.data_addr.clone(), free: t.free_slots() })
                    .collect();
                self.run(&mut st, id, Event::SlotsOffered(offer), now, &mut deferred);
            }
        }
        self.after(deferred);
    }

    /// The 100 ms tick: forgets ended jobs that expired, and fires the jobs'
    /// timers (restart delays, checkpoint triggers and timeouts).
    pub fn tick(self: &Arc<Self>) {
        let now = Now::read();
        let mut deferred = Vec::new();
        {
            let mut st = self.lock();
            self.expire_ended_jobs(&mut st, now.ms);
            let ids: Vec<JobId> = st.jobs.keys().copied().collect();
            for id in ids {
                let timers = st.jobs.get(&id).map(|j| j.timers(now)).unwrap_or_default();
                for event in timers {
                    self.run(&mut st, id, event, now, &mut deferred);
                }
            }
        }
        self.after(deferred);
    }

    /// Ended jobs leave the job store after `jobstore.expiration-time`, and
    /// the oldest go when more than `jobstore.max-capacity` have ended.
    fn expire_ended_jobs(&self, st: &mut JmState, now_ms: i64) {
        let ended: Vec<(i64, JobId)> =
            st.jobs.values().filter(|j| j.status().is_terminal()).map(|j| (j.end_time(), j.id())).collect();
        for id in store::expired(ended, now_ms, self.jobstore_expiration, self.jobstore_capacity) {
            if let Some(j) = st.jobs.remove(&id) {
                tracing::info!(job_id = %id, status = %j.status(), "Job \"{}\" expired from the job store.", j.name());
            }
        }
    }

    pub(crate) fn on_task_update(self: &Arc<Self>, u: rpc::TaskUpdate) {
        let mut deferred = Vec::new();
        {
            let mut st = self.lock();
            if st.jobs.contains_key(&u.job_id) {
                self.run(&mut st, u.job_id, Event::TaskUpdated(u), Now::read(), &mut deferred);
            }
        }
        self.after(deferred);
    }

    pub(crate) fn on_checkpoint_ack(&self, ack: CheckpointAck) {
        let mut deferred = Vec::new();
        {
            let mut st = self.lock();
            if st.jobs.contains_key(&ack.job_id) {
                self.run(&mut st, ack.job_id, Event::CheckpointAcked(ack), Now::read(), &mut deferred);
            }
        }
        self.finish(deferred);
    }
}

/// A duration in seconds, as Flink's `jobstore.expiration-time` is (a plain
/// number), or with a unit (`1 h`, `90 s`).
fn seconds(config: &Config, key: &str) -> Result<Duration, ConfigError> {
    let v = config.get(key);
    if let Ok(n) = v.trim().parse::<u64>() {
        return Ok(Duration::from_secs(n));
    }
    config.get_u64(key).map(Duration::from_millis)
}

fn panic_message() -> String {
    "internal error while reading Kafka metadata (this is a bug)".to_string()
}

/// Partitions of each Kafka source's topic, spread over its subtasks.
fn assign_partitions(graph: &JobGraph) -> Result<Vec<(SubtaskId, Vec<i32>)>, String> {
    let mut out = Vec::new();
    for (vertex, servers, topic) in scheduler::kafka_sources(graph) {
        let count = partition_count(&servers, &topic, Duration::from_secs(10)).map_err(|e| e.to_string())?;
        out.extend(scheduler::spread_partitions(graph, vertex, count));
    }
    // Sources of several topics assign their partitions themselves; a listed topic must exist.
    for (servers, topic) in scheduler::listed_topics(graph) {
        partition_count(&servers, &topic, Duration::from_secs(10)).map_err(|e| e.to_string())?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::format::{TaskEntry as AckEntry, METADATA_FILE};
    use crate::ids::TaskStatus;
    use crate::registry::Session;
    use crate::rpc::Registration;
    use crate::rpc::{FailureKind, TaskUpdate};
    use std::path::Path;
    use tokio::sync::mpsc;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("flowc-shell-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    /// A datagen job at parallelism 2 that checkpoints every 50 ms.
    fn plan() -> Vec<u8> {
        let src = flowc_dsl::SourceFile::new(
            "t.flow",
            r#"
            job "T"
            set execution.checkpointing.interval = 50ms
            schema N { n: long }
            source datagen { schema: N } | filter n % 2 == 0 | sink discard
            "#,
        );
        let options = flowc_compiler::CheckOptions { parallelism: Some(2), ..Default::default() };
        flowc_compiler::plan_file::to_bytes(&flowc_compiler::compile(&src, &options).expect("compiles").graph)
    }

    fn register(jm: &JobManager, tm: &str) -> mpsc::UnboundedReceiver<ToTaskManager> {
        let (tx, rx) = mpsc::unbounded_channel();
        let reg = Registration {
            protocol: rpc::PROTOCOL_VERSION,
            tm_id: tm.into(),
            data_addr: "127.0.0.1:1".into(),
            slots: 2,
            cpu_cores: 1,
            physical_memory: 0,
            pid: 1,
            instance: "i".into(),
            nonce: crate::security::secret::nonce(),
            leader_session: None,
        };
        let session = Session { tm_id: tm.into(), instance: "i".into(), connection: 1 };
        jm.register_taskmanager(&reg, &session, tx).expect("registered");
        rx
    }

    fn update(id: JobId, attempt: Attempt, subtask: SubtaskId, status: TaskStatus) -> TaskUpdate {
        TaskUpdate { job_id: id, attempt, subtask, status, failure: None, kind: FailureKind::Other, metrics: None }
    }

    fn ack(id: JobId, attempt: Attempt, subtask: SubtaskId, checkpoint_id: u64, ok: bool) -> CheckpointAck {
        let entry = AckEntry {
            vertex: Default::default(),
            vertex_name: "v".into(),
            subtask: subtask.subtask,
            parallelism: 2,
            operators: Vec::new(),
            file: None,
            size: 1,
        };
        let result = if ok { Ok(entry) } else { Err("disk full".into()) };
        CheckpointAck { job_id: id, attempt, subtask, checkpoint_id, result }
    }

    /// The next barrier sent to the TaskManager, after the interval.
    fn next_barrier(
        jm: &Arc<JobManager>,
        rx: &mut mpsc::UnboundedReceiver<ToTaskManager>,
    ) -> crate::checkpoint::Barrier {
        std::thread::sleep(Duration::from_millis(60));
        jm.tick();
        loop {
            match rx.try_recv() {
                Ok(ToTaskManager::TriggerCheckpoint { barrier, .. }) => return barrier,
                Ok(_) => {}
                Err(e) => panic!("no barrier: {e}"),
            }
        }
    }

    #[test]
    fn the_shell_carries_out_a_jobs_commands_on_the_registry_the_connections_and_the_files() {
        let dir = scratch("commands");
        let mut config = Config::default();
        config.set("state.checkpoints.dir", dir.display().to_string());
        let jm = JobManager::new(config).expect("jobmanager");
        let mut rx = register(&jm, "tm-1");
        let id = jm.submit(plan(), RestoreRequest::default()).expect("submitted");
        // No Kafka, two free slots: deployed at once, into both slots.
        let Ok(ToTaskManager::Deploy(d)) = rx.try_recv() else { panic!("not deployed") };
        assert_eq!(jm.taskmanagers()[0].free_slots, 0);
        for s in &d.local {
            jm.on_task_update(update(id, d.attempt, *s, TaskStatus::RUNNING));
        }
        let all = d.local.clone();
        // A checkpoint: its directory is made before its barrier goes out,
        // `_metadata` is written when all acked, and the sinks are told.
        let first = next_barrier(&jm, &mut rx);
        assert!(Path::new(&first.dir).is_dir());
        for s in &all {
            jm.on_checkpoint_ack(ack(id, d.attempt, *s, first.id, true));
        }
        assert!(Path::new(&first.dir).join(METADATA_FILE).is_file());
        assert!(
            matches!(rx.try_recv(), Ok(ToTaskManager::CheckpointComplete { checkpoint_id, .. }) if checkpoint_id == first.id)
        );
        // A declined one goes; what a late writer leaves of it goes with the next completion.
        let declined = next_barrier(&jm, &mut rx);
        jm.on_checkpoint_ack(ack(id, d.attempt, all[0], declined.id, false));
        assert!(!Path::new(&declined.dir).exists());
        std::fs::create_dir_all(&declined.dir).expect("late writer");
        std::fs::write(Path::new(&declined.dir).join("v-1.state"), b"late").expect("late writer");
        let next = next_barrier(&jm, &mut rx);
        for s in &all {
            jm.on_checkpoint_ack(ack(id, d.attempt, *s, next.id, true));
        }
        assert!(!Path::new(&declined.dir).exists(), "swept");
        // One retained (Flink's default): the newer one replaced the first.
        assert!(Path::new(&next.dir).join(METADATA_FILE).is_file(), "retained");
        assert!(!Path::new(&first.dir).exists(), "subsumed once the next one was durable");
        let detail = jm.job(id).expect("listed");
        assert_eq!((detail.checkpoints.counts.completed, detail.checkpoints.counts.failed), (2, 1));
        // Cancelled: the TaskManager is told, the slots come back once the
        // tasks have ended, and the checkpoints go (DELETE_ON_CANCELLATION).
        jm.cancel(id).expect("cancel");
        assert!(std::iter::from_fn(|| rx.try_recv().ok()).any(|m| matches!(m, ToTaskManager::Cancel { .. })));
        assert_eq!(jm.taskmanagers()[0].free_slots, 0, "held while the tasks are cancelled");
        for s in &all {
            jm.on_task_update(update(id, d.attempt, *s, TaskStatus::CANCELED));
        }
        assert_eq!(jm.job(id).map(|j| j.summary.status), Some(crate::ids::JobStatus::CANCELED));
        assert_eq!(jm.taskmanagers()[0].free_slots, 2);
        assert!(!dir.join(id.to_string()).exists());
        assert!(matches!(jm.cancel(id), Err(CancelError::Terminal(..))));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// An HA job store in memory whose checkpoint writes fail while armed,
    /// or wait at a gate (a slow ZooKeeper).
    #[derive(Default)]
    struct FailingStore {
        entries: Mutex<BTreeMap<(JobId, &'static str), Vec<u8>>>,
        refuse_checkpoints: std::sync::atomic::AtomicBool,
        gate: Mutex<Option<std::sync::mpsc::Receiver<()>>>,
        /// Writes begun, under way, and the most under way at once.
        puts: std::sync::atomic::AtomicUsize,
        putting: std::sync::atomic::AtomicUsize,
        most_at_once: std::sync::atomic::AtomicUsize,
    }

    impl crate::jobmanager::ha_store::JobStore for FailingStore {
        fn describe(&self) -> String {
            "a test store".into()
        }

        fn put(
            &self,
            job: JobId,
            entry: crate::jobmanager::ha_store::Entry,
            payload: &[u8],
        ) -> Result<(), crate::jobmanager::ha_store::StoreError> {
            let refuse = self.refuse_checkpoints.load(std::sync::atomic::Ordering::SeqCst);
            if refuse && entry == crate::jobmanager::ha_store::Entry::Checkpoints {
                return Err(crate::jobmanager::ha_store::StoreError::ZooKeeper("connection loss".into()));
            }
            use std::sync::atomic::Ordering::SeqCst;
            self.puts.fetch_add(1, SeqCst);
            let now = self.putting.fetch_add(1, SeqCst) + 1;
            self.most_at_once.fetch_max(now, SeqCst);
            let gate = self.gate.lock().expect("gate").take();
            if let Some(opened) = gate {
                let _ = opened.recv_timeout(Duration::from_secs(10));
            }
            self.entries.lock().expect("entries").insert((job, entry.name()), payload.to_vec());
            self.putting.fetch_sub(1, SeqCst);
            Ok(())
        }

        fn get(
            &self,
            job: JobId,
            entry: crate::jobmanager::ha_store::Entry,
        ) -> Result<Option<Vec<u8>>, crate::jobmanager::ha_store::StoreError> {
            Ok(self.entries.lock().expect("entries").get(&(job, entry.name())).cloned())
        }

        fn jobs(&self) -> Result<Vec<JobId>, crate::jobmanager::ha_store::StoreError> {
            Ok(self.entries.lock().expect("entries").keys().map(|(j, _)| *j).collect())
        }

        fn remove(&self, job: JobId) -> Result<(), crate::jobmanager::ha_store::StoreError> {
            self.entries.lock().expect("entries").retain(|(j, _), _| *j != job);
            Ok(())
        }
    }

    /// A JobManager whose HA job store is `FailingStore`, the test plan
    /// deployed to one TaskManager and every task RUNNING.
    #[allow(clippy::type_complexity)]
    fn running_with_store(
        name: &str,
    ) -> (
        PathBuf,
        Arc<FailingStore>,
        Arc<JobManager>,
        mpsc::UnboundedReceiver<ToTaskManager>,
        JobId,
        Box<crate::rpc::Deployment>,
    ) {
        let dir = scratch(name);
        let mut config = Config::default();
        config.set("state.checkpoints.dir", dir.display().to_string());
        let store = Arc::new(FailingStore::default());
        let ha = crate::jobmanager::ha_store::HaJobs::new(store.clone());
        let jm = JobManager::with_ha(config, Some(ha), true).expect("jobmanager");
        let mut rx = register(&jm, "tm-1");
        let id = jm.submit(plan(), RestoreRequest::default()).expect("submitted");
        let Ok(ToTaskManager::Deploy(d)) = rx.try_recv() else { panic!("not deployed") };
        for s in &d.local {
            jm.on_task_update(update(id, d.attempt, *s, TaskStatus::RUNNING));
        }
        (dir, store, jm, rx, id, d)
    }

    #[test]
    fn a_checkpoint_whose_pointer_cannot_be_stored_is_not_committed_by_any_sink() {
        let (dir, store, jm, mut rx, id, d) = running_with_store("unstored");
        // The store fails from the barrier on: the checkpoint's id was stored.
        let barrier = next_barrier(&jm, &mut rx);
        store.refuse_checkpoints.store(true, std::sync::atomic::Ordering::SeqCst);
        for s in &d.local {
            jm.on_checkpoint_ack(ack(id, d.attempt, *s, barrier.id, true));
        }
        let sent: Vec<ToTaskManager> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
        assert!(
            !sent.iter().any(|m| matches!(m, ToTaskManager::CheckpointComplete { .. })),
            "a sink was told to commit a checkpoint whose pointer is not durable: {sent:?}"
        );
        assert!(!Path::new(&barrier.dir).exists(), "the failed checkpoint's directory goes");
        let detail = jm.job(id).expect("listed");
        assert_eq!((detail.checkpoints.counts.completed, detail.checkpoints.counts.failed), (0, 1));
        assert_eq!(detail.summary.status, crate::ids::JobStatus::RUNNING);
        // The store works again: the next one completes and is committed.
        store.refuse_checkpoints.store(false, std::sync::atomic::Ordering::SeqCst);
        let next = next_barrier(&jm, &mut rx);
        for s in &d.local {
            jm.on_checkpoint_ack(ack(id, d.attempt, *s, next.id, true));
        }
        let sent: Vec<ToTaskManager> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
        assert!(
            sent.iter().any(
                |m| matches!(m, ToTaskManager::CheckpointComplete { checkpoint_id, .. } if *checkpoint_id == next.id)
            ),
            "{sent:?}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_slow_ha_store_is_written_without_the_lock_and_the_sinks_commit_after_it() {
        let (dir, store, jm, mut rx, id, d) = running_with_store("slow-store");
        let barrier = next_barrier(&jm, &mut rx);
        // The completed checkpoint's pointer write hangs (ZooKeeper is slow).
        let (open, gate) = std::sync::mpsc::channel();
        *store.gate.lock().expect("gate") = Some(gate);
        let (acking, subtasks, attempt) = (jm.clone(), d.local.clone(), d.attempt);
        let writer = std::thread::spawn(move || {
            for s in &subtasks {
                acking.on_checkpoint_ack(ack(id, attempt, *s, barrier.id, true));
            }
        });
        // Meanwhile the JobManager answers: its lock is free.
        let (answered, answer) = std::sync::mpsc::channel();
        let reader = jm.clone();
        std::thread::spawn(move || {
            let _ = answered.send(reader.job(id).map(|j| j.checkpoints.counts.completed));
        });
        let completed = answer.recv_timeout(Duration::from_secs(5)).expect("the lock is held during the write");
        assert_eq!(completed, Some(0), "not complete before its pointer is durable");
        assert!(
            !std::iter::from_fn(|| rx.try_recv().ok()).any(|m| matches!(m, ToTaskManager::CheckpointComplete { .. })),
            "a sink was told to commit before the pointer was written"
        );
        open.send(()).expect("open the gate");
        writer.join().expect("the acks");
        let sent: Vec<ToTaskManager> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
        assert!(
            sent.iter().any(
                |m| matches!(m, ToTaskManager::CheckpointComplete { checkpoint_id, .. } if *checkpoint_id == barrier.id)
            ),
            "{sent:?}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_leader_that_loses_and_regains_leadership_never_drains_one_jobs_outbox_twice_at_once() {
        use std::sync::atomic::Ordering::SeqCst;
        let (dir, store, jm, mut rx, id, d) = running_with_store("regained");
        let barrier = next_barrier(&jm, &mut rx);
        // The completed checkpoint's pointer write hangs in its drain.
        let (open, gate) = std::sync::mpsc::channel();
        *store.gate.lock().expect("gate") = Some(gate);
        let puts = store.puts.load(SeqCst);
        let (acking, subtasks, attempt) = (jm.clone(), d.local.clone(), d.attempt);
        let old_term = std::thread::spawn(move || {
            for s in &subtasks {
                acking.on_checkpoint_ack(ack(id, attempt, *s, barrier.id, true));
            }
        });
        let deadline = Instant::now() + Duration::from_secs(5);
        while store.putting.load(SeqCst) == 0 {
            assert!(Instant::now() < deadline, "the pointer write never began");
            std::thread::sleep(Duration::from_millis(5));
        }
        // Leadership goes and comes back while it hangs: the job is
        // recovered, and its recovery is persisted by a drain of the new term.
        jm.revoke_leadership(None);
        let regained = jm.clone();
        let new_term = std::thread::spawn(move || regained.grant_leadership(None));
        let deadline = Instant::now() + Duration::from_millis(1500);
        while store.puts.load(SeqCst) < puts + 2 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let most = store.most_at_once.load(SeqCst);
        open.send(()).expect("open the gate");
        old_term.join().expect("the old term's drain");
        let recovered = new_term.join().expect("the new term's drain");
        assert_eq!(most, 1, "two drains wrote the job's entries at once");
        assert_eq!(recovered.ok(), Some(1));
        // The new term's write went through once the old one had returned.
        assert!(store.puts.load(SeqCst) >= puts + 2);
        assert!(jm.job(id).is_some(), "recovered");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_lost_taskmanager_fails_its_job_over_and_a_new_one_runs_the_next_attempt() {
        let jm = JobManager::new(Config::default()).expect("jobmanager");
        let mut first = register(&jm, "tm-1");
        let id = jm.submit(plan(), RestoreRequest::default()).expect("submitted");
        assert!(matches!(first.try_recv(), Ok(ToTaskManager::Deploy(_))));
        let session = jm.session_of("tm-1").expect("registered");
        jm.on_tm_lost(&session, "its connection closed");
        assert!(jm.taskmanagers().is_empty());
        let detail = jm.job(id).expect("listed");
        assert_eq!(detail.summary.status, crate::ids::JobStatus::RESTARTING);
        assert!(detail.exceptions[0].message.contains("TaskManager tm-1 (127.0.0.1:1) is lost: its connection closed"));
        let refused = jm.trigger_savepoint(id, None, None, None, Default::default());
        assert!(
            matches!(refused, Err(SavepointError::NotRunning(_, crate::ids::JobStatus::RESTARTING))),
            "{refused:?}"
        );
        assert!(matches!(jm.savepoint_status(id, "nope"), Err(SavepointError::UnknownTrigger(_))));
        // After the restart delay (1 s for a job that checkpoints), a new
        // TaskManager gets the job's next attempt.
        let mut second = register(&jm, "tm-2");
        let deadline = Instant::now() + Duration::from_secs(10);
        let deployed = loop {
            jm.tick();
            jm.schedule();
            if let Ok(ToTaskManager::Deploy(d)) = second.try_recv() {
                break d;
            }
            assert!(Instant::now() < deadline, "not redeployed");
            std::thread::sleep(Duration::from_millis(50));
        };
        assert_eq!(deployed.attempt, 2);
        assert_eq!(jm.job(id).map(|j| j.summary.num_restarts), Some(1));
    }
}
