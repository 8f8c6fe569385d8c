//! The JobManager: accepts jobs, keeps the registry of TaskManagers and
//! their slots, schedules subtasks into slots, follows task states, and
//! fails over the jobs of lost TaskManagers. The RPC server that registers
//! TaskManagers and notices their loss (heartbeat timeout, closed
//! connection) is `jm_rpc.rs`; the registry's rules are `registry.rs`.
//!
//! Scheduling uses slot sharing as Flink does: slot i of a job holds
//! subtask i of every vertex, so a job needs as many slots as its largest
//! parallelism. A job that lacks slots reports RUNNING with its tasks
//! SCHEDULED and starts when TaskManagers with free slots join.
//!
//! Before a job is deployed from a checkpoint, the checkpoint is validated
//! off the lock (`_metadata` and every state file's frame and checksum); one
//! that fails is skipped, recorded in the job's exceptions and never tried
//! again, and the next older one is used. A TaskManager that finds the
//! state corrupt while restoring it says so (a typed failure) and the
//! checkpoint is skipped the same way. With none left, the job fails.
//!
//! Paths that a REST caller or a job names — savepoint targets, restore
//! paths, file sinks — must lie under the allowed roots (`security/paths.rs`).
//! Ended jobs leave the job list after `jobstore.expiration-time`, or when
//! more than `jobstore.max-capacity` have ended.

use crate::checkpoint::coordinator::{AckOutcome, Completed, Coordinator, Retention, SavepointRequest};
use crate::checkpoint::fallback::{choose_restore, describe_checkpoint, RestoreChoice, RestoreOutcome};
use crate::checkpoint::restore::{check_restore, source_positions};
use crate::checkpoint::StopMode;
use crate::config::{Config, ConfigError};
use crate::connectors::kafka::partition_count;
use crate::ids::{Attempt, JobId, JobStatus, SubtaskId, TaskStatus};
use crate::registry::Session;
use crate::restart::{RestartStrategy, RestartTracker};
use crate::rpc::{self, CheckpointAck, Deployment, FailureKind, TaskMetrics, ToTaskManager};
use crate::security::paths::{AllowedRoots, PathError};
use crate::task::now_ms;
use flowc_compiler::graph::JobGraph;
use flowc_compiler::ir::OperatorKind;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub use crate::registry::TaskManagerEntry;

#[derive(Debug, Clone)]
pub struct TaskEntry {
    pub status: TaskStatus,
    pub tm: Option<String>,
    pub start_time: i64,
    pub end_time: i64,
    pub metrics: TaskMetrics,
}

#[derive(Debug, Clone)]
pub struct ExceptionEntry {
    pub timestamp: i64,
    pub message: String,
    pub task: Option<String>,
    pub location: Option<String>,
}

pub struct Job {
    pub id: JobId,
    pub name: String,
    pub graph: Arc<JobGraph>,
    pub plan: Arc<Vec<u8>>,
    pub status: JobStatus,
    pub timestamps: HashMap<JobStatus, i64>,
    pub start_time: i64,
    pub end_time: i64,
    pub last_modification: i64,
    pub attempt: Attempt,
    /// `tasks[vertex][subtask]`
    pub tasks: Vec<Vec<TaskEntry>>,
    /// Kafka partitions per source subtask.
    pub splits: Vec<(SubtaskId, Vec<i32>)>,
    /// The job is waiting for its Kafka metadata before it can be scheduled.
    pub preparing: bool,
    pub exceptions: Vec<ExceptionEntry>,
    /// Older exceptions were dropped (`web.exception-history-size`).
    pub exceptions_truncated: bool,
    exception_history_size: usize,
    pub checkpoints: Coordinator,
    pub restarts: RestartTracker,
    pub num_restarts: u64,
    /// What the next deployment restores, once validated: `Some(None)` is
    /// "from scratch". `None`: not decided yet.
    restore_ready: Option<Option<Completed>>,
    /// The restore candidates are being validated.
    validating: bool,
    /// The checkpoint the current attempt restored from.
    deployed_restore: Option<u64>,
    /// When a RESTARTING job redeploys.
    restart_at: Option<Instant>,
    /// Savepoints asked for, by trigger id.
    pub savepoints: HashMap<String, SavepointStatus>,
    /// A stop-with-savepoint is under way (its trigger id).
    pub stopping: Option<String>,
    /// Its savepoint, once complete: reported when the job has ended.
    stop_location: Option<String>,
    /// The free slots when the scheduler last said the job waits for slots.
    slot_wait_logged: Option<u32>,
}

/// Where a savepoint request stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SavepointStatus {
    InProgress,
    Completed { location: String },
    Failed { reason: String },
}

impl Job {
    fn set_status(&mut self, s: JobStatus) {
        if self.status == s {
            return;
        }
        let now = now_ms();
        tracing::info!(job_id = %self.id, from = %self.status, to = %s, "Job \"{}\" switched state.", self.name);
        self.status = s;
        self.timestamps.insert(s, now);
        self.last_modification = now;
        if s.is_terminal() {
            self.end_time = now;
            if let Some(dir) = self.checkpoints.on_job_end(now, s) {
                tracing::info!(job_id = %self.id, path = %dir.display(), status = %s, "Deleted the job's checkpoints.");
            }
        }
    }

    /// Records a failure for `/jobs/:jid/exceptions`, keeping the newest
    /// `web.exception-history-size`.
    fn record_exception(&mut self, message: &str, location: Option<String>) {
        self.exceptions.push(ExceptionEntry {
            timestamp: now_ms(),
            message: message.to_string(),
            task: None,
            location,
        });
        if self.exceptions.len() > self.exception_history_size {
            let excess = self.exceptions.len() - self.exception_history_size;
            self.exceptions.drain(..excess);
            self.exceptions_truncated = true;
        }
    }

    pub fn all_tasks(&self) -> impl Iterator<Item = &TaskEntry> + Clone {
        self.tasks.iter().flatten()
    }
}

#[derive(Default)]
pub struct JmState {
    pub tms: BTreeMap<String, TaskManagerEntry>,
    pub jobs: BTreeMap<JobId, Job>,
}

/// The JobManager's shared state and configuration.
pub struct JobManager {
    pub state: Mutex<JmState>,
    pub config: Config,
    pub heartbeat_timeout: Duration,
    pub started_ms: i64,
    /// Where savepoints, restores and file sinks may go.
    pub allowed: AllowedRoots,
    /// UDF artifacts, by digest (`blob.storage.directory`).
    pub blobs: crate::blob::BlobStore,
    retention: Retention,
    /// How long an ended job stays listed, and how many at most.
    jobstore_expiration: Duration,
    jobstore_capacity: usize,
    exception_history_size: usize,
}

fn lock(jm: &JobManager) -> MutexGuard<'_, JmState> {
    jm.state.lock().unwrap_or_else(|p| p.into_inner())
}

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("the plan is not valid: {0}")]
    BadPlan(String),
    #[error("cannot restore from `{path}`: {reason}")]
    BadSavepoint { path: String, reason: String },
    #[error("{0}")]
    Unsupported(String),
}

/// How a submitted job starts: from scratch or from a savepoint.
#[derive(Debug, Clone, Default)]
pub struct RestoreRequest {
    pub savepoint_path: Option<String>,
    pub allow_non_restored_state: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum SavepointError {
    #[error("job {0} not found")]
    NotFound(JobId),
    #[error("job {0} is {1}, not RUNNING: no savepoint can be taken")]
    NotRunning(JobId, JobStatus),
    #[error("job {0} is not fully running yet ({1} of {2} tasks RUNNING); try again shortly")]
    NotAllRunning(JobId, usize, usize),
    #[error("job {0} is already being stopped with a savepoint")]
    Stopping(JobId),
    #[error("no savepoint directory: give one, or set state.savepoints.dir")]
    NoDirectory,
    #[error("trigger {0} not found")]
    UnknownTrigger(String),
    #[error("the savepoint directory is refused: {0}")]
    PathNotAllowed(PathError),
}

#[derive(Debug, thiserror::Error)]
pub enum CancelError {
    #[error("job {0} not found")]
    NotFound(JobId),
    #[error("job {0} is already {1}")]
    Terminal(JobId, JobStatus),
}

impl JobManager {
    pub fn new(config: Config) -> Result<Arc<JobManager>, ConfigError> {
        let heartbeat_timeout = Duration::from_millis(config.get_u64("heartbeat.timeout")?);
        let key = "execution.checkpointing.externalized-checkpoint-retention";
        let retention = Retention::parse(&config.get(key)).ok_or_else(|| ConfigError::BadValue {
            key: key.into(),
            value: config.get(key),
            expected: "DELETE_ON_CANCELLATION, RETAIN_ON_CANCELLATION or NO_EXTERNALIZED_CHECKPOINTS",
        })?;
        let capacity = config.get_u64("jobstore.max-capacity")?;
        let history = config.get_u64("web.exception-history-size")?;
        Ok(Arc::new(JobManager {
            state: Mutex::new(JmState::default()),
            allowed: AllowedRoots::from_config(&config),
            blobs: crate::blob::BlobStore::new(
                std::path::Path::new(&config.get("blob.storage.directory")).join("jobmanager"),
            ),
            retention,
            jobstore_expiration: seconds(&config, "jobstore.expiration-time")?,
            jobstore_capacity: usize::try_from(capacity).unwrap_or(usize::MAX),
            exception_history_size: usize::try_from(history).unwrap_or(usize::MAX).max(1),
            config,
            heartbeat_timeout,
            started_ms: now_ms(),
        }))
    }

    pub fn lock(&self) -> MutexGuard<'_, JmState> {
        lock(self)
    }

    /// Accepts a compiled plan; returns the new job's id at once. Kafka
    /// metadata is fetched in the background before the job is scheduled.
    pub fn submit(self: &Arc<Self>, plan: Vec<u8>, restore: RestoreRequest) -> Result<JobId, SubmitError> {
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
                let dir = self.allowed.check(path).map_err(|e| bad(e.to_string()))?;
                let metadata =
                    check_restore(&graph, &dir, restore.allow_non_restored_state).map_err(|e| bad(e.to_string()))?;
                Some(crate::checkpoint::coordinator::Completed {
                    id: metadata.checkpoint_id,
                    dir,
                    savepoint: metadata.savepoint,
                    metadata,
                })
            }
        };
        let checkpointing = graph.settings.checkpoint_interval_ms.is_some();
        let restart_strategy = RestartStrategy::from_config(&self.config, checkpointing)
            .map_err(|e| SubmitError::BadPlan(format!("restart strategy: {e}")))?;
        let id = JobId::random();
        let mut checkpoints = Coordinator::new(
            id,
            &graph.name,
            graph.settings.max_parallelism,
            &crate::checkpoint::format::checkpoint_dir(&self.config.get("state.checkpoints.dir")),
        )
        .with_retention(self.retention);
        // Just validated: the first deployment restores it without a second look.
        let restore_ready = initial.clone().map(Some);
        if let Some(c) = initial {
            tracing::info!(job_id = %id, path = %c.dir.display(), checkpoint_id = c.id, "Restoring the job from a savepoint.");
            checkpoints.continue_after(c.id);
            checkpoints.initial = Some(c);
        }
        let now = now_ms();
        let tasks = graph
            .graph
            .node_weights()
            .map(|v| {
                (0..v.parallelism)
                    .map(|_| TaskEntry {
                        status: TaskStatus::CREATED,
                        tm: None,
                        start_time: -1,
                        end_time: -1,
                        metrics: TaskMetrics::default(),
                    })
                    .collect()
            })
            .collect();
        let mut job = Job {
            id,
            name: graph.name.clone(),
            graph: Arc::new(graph),
            plan: Arc::new(plan),
            status: JobStatus::INITIALIZING,
            timestamps: HashMap::from([(JobStatus::INITIALIZING, now)]),
            start_time: now,
            end_time: -1,
            last_modification: now,
            attempt: 0,
            tasks,
            splits: Vec::new(),
            preparing: true,
            exceptions: Vec::new(),
            exceptions_truncated: false,
            exception_history_size: self.exception_history_size,
            checkpoints,
            restarts: RestartTracker::new(restart_strategy),
            num_restarts: 0,
            restore_ready,
            validating: false,
            deployed_restore: None,
            restart_at: None,
            savepoints: HashMap::new(),
            stopping: None,
            stop_location: None,
            slot_wait_logged: None,
        };
        job.set_status(JobStatus::CREATED);
        job.set_status(JobStatus::RUNNING);
        for t in job.tasks.iter_mut().flatten() {
            t.status = TaskStatus::SCHEDULED;
        }
        tracing::info!(job_id = %id, name = %job.name, "Job submitted.");
        let graph = job.graph.clone();
        lock(self).jobs.insert(id, job);
        let jm = self.clone();
        tokio::spawn(async move {
            let splits = tokio::task::spawn_blocking(move || assign_partitions(&graph))
                .await
                .unwrap_or_else(|_| Err(message_of_panic()));
            let mut guard = lock(&jm);
            let st = &mut *guard;
            let Some(job) = st.jobs.get_mut(&id) else { return };
            match splits {
                Ok(s) => {
                    job.splits = s;
                    job.preparing = false;
                }
                Err(message) => {
                    if job.status == JobStatus::RUNNING {
                        fail_job(job, &message, None);
                        finish_if_done(job, &mut st.tms);
                    }
                    return;
                }
            }
            drop(guard);
            jm.schedule();
        });
        Ok(id)
    }

    /// Cancels a job (`PATCH /jobs/:jid?mode=cancel`, `flowc cancel`).
    pub fn cancel(&self, id: JobId) -> Result<(), CancelError> {
        let mut st = lock(self);
        let st = &mut *st;
        let job = st.jobs.get_mut(&id).ok_or(CancelError::NotFound(id))?;
        if job.status.is_terminal() {
            return Err(CancelError::Terminal(id, job.status));
        }
        if job.status == JobStatus::CANCELLING {
            return Ok(());
        }
        job.set_status(JobStatus::CANCELLING);
        cancel_tasks(job, &st.tms, TaskStatus::CANCELED);
        finish_if_done(job, &mut st.tms);
        Ok(())
    }

    /// Places waiting jobs into free slots. A job that restores state is
    /// deployed once its checkpoint has been validated (in the background).
    pub fn schedule(self: &Arc<Self>) {
        let mut validations = Vec::new();
        {
            let mut st = lock(self);
            let st = &mut *st;
            let ids: Vec<JobId> = st.jobs.keys().copied().collect();
            for id in ids {
                let Some(job) = st.jobs.get_mut(&id) else { continue };
                if job.status != JobStatus::RUNNING
                    || job.preparing
                    || job.validating
                    || job.all_tasks().any(|t| t.status != TaskStatus::SCHEDULED)
                {
                    continue;
                }
                let needed = job.graph.total_parallelism();
                let free: u32 = st.tms.values().map(|t| t.free_slots()).sum();
                if free < needed {
                    if job.slot_wait_logged != Some(free) {
                        job.slot_wait_logged = Some(free);
                        tracing::info!(job_id = %id, needed, free, "Job waits for slots: it needs {needed}, {free} are free; its tasks stay SCHEDULED.");
                    }
                    continue;
                }
                job.slot_wait_logged = None;
                let restore = match job.restore_ready.take() {
                    Some(r) => r,
                    None => {
                        let candidates = job.checkpoints.restore_candidates();
                        if candidates.is_empty() && job.checkpoints.bad.is_empty() {
                            None
                        } else {
                            job.validating = true;
                            validations.push((id, job.attempt, candidates));
                            continue;
                        }
                    }
                };
                deploy(st, id, needed, restore);
            }
        }
        for (id, attempt, candidates) in validations {
            let jm = self.clone();
            let work = move || {
                let started = Instant::now();
                let choice = choose_restore(candidates);
                tracing::debug!(job_id = %id, elapsed_ms = started.elapsed().as_millis() as u64, "Validated the checkpoints to restore from.");
                jm.on_validated(id, attempt, choice);
            };
            match tokio::runtime::Handle::try_current() {
                Ok(h) => {
                    h.spawn_blocking(work);
                }
                Err(_) => work(),
            }
        }
    }

    /// The checkpoints of a job about to be deployed have been validated.
    fn on_validated(self: &Arc<Self>, id: JobId, attempt: Attempt, choice: RestoreChoice) {
        {
            let mut st = lock(self);
            let st = &mut *st;
            let Some(job) = st.jobs.get_mut(&id) else { return };
            if job.attempt != attempt || !job.validating {
                return;
            }
            job.validating = false;
            if job.status != JobStatus::RUNNING {
                return;
            }
            apply_restore_choice(job, choice, &st.tms);
            finish_if_done(job, &mut st.tms);
        }
        self.schedule();
    }

    pub(crate) fn on_task_update(&self, u: rpc::TaskUpdate) {
        let mut st = lock(self);
        let st = &mut *st;
        let Some(job) = st.jobs.get_mut(&u.job_id) else { return };
        if u.attempt != job.attempt {
            return;
        }
        let Some(task) =
            job.tasks.get_mut(u.subtask.vertex as usize).and_then(|v| v.get_mut(u.subtask.subtask as usize))
        else {
            return;
        };
        if task.status.is_terminal() {
            return;
        }
        task.status = u.status;
        if u.status.is_terminal() {
            task.end_time = now_ms();
        }
        if let Some(m) = u.metrics {
            task.metrics = m;
        }
        let location = task.tm.clone();
        job.last_modification = now_ms();
        if u.status == TaskStatus::FAILED {
            let message = u.failure.unwrap_or_else(|| "task failed".into());
            if u.kind == FailureKind::CorruptState {
                // Validated before the deployment, corrupt now: never again.
                if let Some(c) = job.deployed_restore {
                    if job.checkpoints.mark_bad(c, &message) {
                        let entry = format!("Skipped checkpoint {c}: restoring it failed on a TaskManager: {message}");
                        tracing::warn!(job_id = %job.id, checkpoint_id = c, "{entry}");
                        job.record_exception(&entry, location.clone());
                    }
                }
            }
            failover(job, &message, location, &st.tms);
        }
        finish_if_done(job, &mut st.tms);
    }

    /// Restarts jobs whose restart delay has passed, triggers due
    /// checkpoints, times out stuck ones and forgets ended jobs that
    /// expired. Called every 100 ms.
    pub fn tick(&self) {
        let mut st = lock(self);
        let st = &mut *st;
        let now = now_ms();
        self.expire_ended_jobs(st, now);
        for job in st.jobs.values_mut() {
            if job.status == JobStatus::RESTARTING
                && job.all_tasks().all(|t| t.status.is_terminal())
                && job.restart_at.is_some_and(|t| Instant::now() >= t)
            {
                job.restart_at = None;
                for tm in st.tms.values_mut() {
                    tm.used.retain(|(j, _)| *j != job.id);
                }
                for t in job.tasks.iter_mut().flatten() {
                    *t = TaskEntry {
                        status: TaskStatus::SCHEDULED,
                        tm: None,
                        start_time: -1,
                        end_time: -1,
                        metrics: TaskMetrics::default(),
                    };
                }
                tracing::info!(job_id = %job.id, restarts = job.num_restarts, "Restarting the job.");
                job.restore_ready = None;
                job.set_status(JobStatus::RUNNING);
            }
            if job.status != JobStatus::RUNNING {
                continue;
            }
            if let Some(p) = &job.checkpoints.pending {
                if p.age() > CHECKPOINT_TIMEOUT {
                    let out = job
                        .checkpoints
                        .fail_pending(now, format!("timed out after {} s", CHECKPOINT_TIMEOUT.as_secs()));
                    on_checkpoint_outcome(job, out, &st.tms);
                }
                continue;
            }
            let Some(interval) = job.graph.settings.checkpoint_interval_ms else { continue };
            let due = job.checkpoints.last_trigger.is_none_or(|t| t.elapsed() >= Duration::from_millis(interval));
            if due && job.stopping.is_none() && job.all_tasks().all(|t| t.status == TaskStatus::RUNNING) {
                trigger_checkpoint(job, &st.tms, None);
            }
        }
    }

    /// Ended jobs leave the job store after `jobstore.expiration-time`, and
    /// the oldest go when more than `jobstore.max-capacity` have ended.
    fn expire_ended_jobs(&self, st: &mut JmState, now: i64) {
        let expiration = i64::try_from(self.jobstore_expiration.as_millis()).unwrap_or(i64::MAX);
        let mut ended: Vec<(i64, JobId)> =
            st.jobs.values().filter(|j| j.status.is_terminal()).map(|j| (j.end_time, j.id)).collect();
        ended.sort_unstable();
        let over = ended.len().saturating_sub(self.jobstore_capacity);
        for (i, (end, id)) in ended.into_iter().enumerate() {
            if i < over || now.saturating_sub(end) > expiration {
                if let Some(j) = st.jobs.remove(&id) {
                    tracing::info!(job_id = %id, status = %j.status, "Job \"{}\" expired from the job store.", j.name);
                }
            }
        }
    }

    pub(crate) fn on_checkpoint_ack(&self, ack: CheckpointAck) {
        let mut st = lock(self);
        let st = &mut *st;
        let Some(job) = st.jobs.get_mut(&ack.job_id) else { return };
        if ack.attempt != job.attempt || job.status != JobStatus::RUNNING {
            return;
        }
        let out = job.checkpoints.ack(now_ms(), ack.checkpoint_id, ack.subtask, ack.result);
        on_checkpoint_outcome(job, out, &st.tms);
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
    ) -> Result<String, SavepointError> {
        let mut st = lock(self);
        let st = &mut *st;
        let job = st.jobs.get_mut(&id).ok_or(SavepointError::NotFound(id))?;
        if let Some(t) = &trigger_id {
            if job.savepoints.contains_key(t) {
                return Ok(t.clone());
            }
        }
        let base = target.filter(|t| !t.trim().is_empty()).unwrap_or_else(|| self.config.get("state.savepoints.dir"));
        if base.trim().is_empty() {
            return Err(SavepointError::NoDirectory);
        }
        let base = self.allowed.check(&base).map_err(SavepointError::PathNotAllowed)?;
        if job.status != JobStatus::RUNNING {
            return Err(SavepointError::NotRunning(id, job.status));
        }
        if job.stopping.is_some() {
            return Err(SavepointError::Stopping(id));
        }
        let total = job.all_tasks().count();
        let running = job.all_tasks().filter(|t| t.status == TaskStatus::RUNNING).count();
        if running < total {
            return Err(SavepointError::NotAllRunning(id, running, total));
        }
        let trigger_id = trigger_id.unwrap_or_else(|| JobId::random().to_string());
        let dir = base.join(format!("savepoint-{}-{}", &id.to_string()[..6], &JobId::random().to_string()[..12]));
        // Made here, so that tasks only write into it and a failure to make
        // it fails the savepoint before any barrier (or stop) is sent.
        if let Err(e) = std::fs::create_dir_all(&dir) {
            let reason = format!("cannot create `{}`: {e}", dir.display());
            tracing::warn!(job_id = %id, trigger_id = %trigger_id, reason = %reason, "Savepoint failed.");
            job.savepoints.insert(trigger_id.clone(), SavepointStatus::Failed { reason });
            return Ok(trigger_id);
        }
        if job.checkpoints.pending.is_some() {
            let out = job.checkpoints.fail_pending(now_ms(), "superseded by a savepoint".into());
            on_checkpoint_outcome(job, out, &st.tms);
        }
        job.savepoints.insert(trigger_id.clone(), SavepointStatus::InProgress);
        if stop.is_some() {
            job.stopping = Some(trigger_id.clone());
        }
        tracing::info!(job_id = %id, trigger_id = %trigger_id, path = %dir.display(), stop = stop.is_some(), "Triggering a savepoint.");
        trigger_checkpoint(job, &st.tms, Some((dir, SavepointRequest { trigger_id: trigger_id.clone(), stop })));
        Ok(trigger_id)
    }

    pub fn savepoint_status(&self, id: JobId, trigger_id: &str) -> Result<SavepointStatus, SavepointError> {
        let st = lock(self);
        let job = st.jobs.get(&id).ok_or(SavepointError::NotFound(id))?;
        job.savepoints.get(trigger_id).cloned().ok_or_else(|| SavepointError::UnknownTrigger(trigger_id.to_string()))
    }

    /// A TaskManager's registration is gone: its jobs fail with the reason.
    pub(crate) fn on_tm_lost(&self, session: &Session, reason: &str) {
        lose_taskmanager(&mut lock(self), session, reason);
    }
}

/// Removes `session`'s registration, if it is still its id's, and fails
/// over the jobs that had tasks there. A later registration under the same
/// id is left alone.
pub(crate) fn lose_taskmanager(st: &mut JmState, session: &Session, reason: &str) {
    if !crate::registry::is_current(&st.tms, session) {
        return;
    }
    let tm_id = session.tm_id.as_str();
    let Some(tm) = st.tms.remove(tm_id) else { return };
    tracing::warn!(tm_id = %tm_id, reason = %reason, "TaskManager lost.");
    let message = format!("TaskManager {tm_id} ({}) is lost: {reason}", tm.data_addr);
    for job in st.jobs.values_mut() {
        let affected = job.all_tasks().any(|t| t.tm.as_deref() == Some(tm_id) && !t.status.is_terminal());
        if !affected {
            continue;
        }
        for t in job.tasks.iter_mut().flatten() {
            if t.tm.as_deref() == Some(tm_id) && !t.status.is_terminal() {
                t.status = TaskStatus::FAILED;
                t.end_time = now_ms();
            }
        }
        failover(job, &message, Some(tm_id.to_string()), &st.tms);
        finish_if_done(job, &mut st.tms);
    }
}

/// A checkpoint that is not complete after this long is abandoned.
const CHECKPOINT_TIMEOUT: Duration = Duration::from_secs(120);

/// Starts a checkpoint or savepoint: its barrier goes to every source subtask.
fn trigger_checkpoint(
    job: &mut Job,
    tms: &BTreeMap<String, TaskManagerEntry>,
    savepoint: Option<(std::path::PathBuf, SavepointRequest)>,
) {
    let expected = job.all_tasks().count();
    let barrier = job.checkpoints.trigger(now_ms(), expected, savepoint);
    // Tasks write into this directory and never create it: once a failed
    // checkpoint's directory is removed, a late writer cannot bring it back.
    if let Err(e) = std::fs::create_dir_all(&barrier.dir) {
        let out = job.checkpoints.fail_pending(now_ms(), format!("cannot create `{}`: {e}", barrier.dir));
        on_checkpoint_outcome(job, out, tms);
        return;
    }
    let sources: Vec<usize> =
        job.graph.graph.node_indices().filter(|n| job.graph.inputs(*n).is_empty()).map(|n| n.index()).collect();
    let msg = ToTaskManager::TriggerCheckpoint { job_id: job.id, attempt: job.attempt, barrier: barrier.clone() };
    send_to_taskmanagers(job, tms, Some(&sources), &msg);
    tracing::debug!(job_id = %job.id, checkpoint_id = barrier.id, "Triggered a checkpoint.");
}

/// Sends `msg` once to every TaskManager that runs a task of the job (of
/// the given vertices only, if any are given).
fn send_to_taskmanagers(
    job: &Job,
    tms: &BTreeMap<String, TaskManagerEntry>,
    vertices: Option<&[usize]>,
    msg: &ToTaskManager,
) {
    let mut sent: Vec<&str> = Vec::new();
    for (v, tasks) in job.tasks.iter().enumerate() {
        if vertices.is_some_and(|vs| !vs.contains(&v)) {
            continue;
        }
        for tm in tasks.iter().filter_map(|t| t.tm.as_deref()) {
            if sent.contains(&tm) {
                continue;
            }
            sent.push(tm);
            if let Some(entry) = tms.get(tm) {
                let _ = entry.tx.send(msg.clone());
            }
        }
    }
}

fn on_checkpoint_outcome(job: &mut Job, out: AckOutcome, tms: &BTreeMap<String, TaskManagerEntry>) {
    match out {
        AckOutcome::Pending => {}
        AckOutcome::Completed(c, request) => {
            let stats = job.checkpoints.last_completed_stats().cloned();
            let (size, duration) = stats.map_or((0, 0), |s| (s.state_size, s.duration_ms));
            tracing::info!(
                job_id = %job.id, checkpoint_id = c.id, size, duration_ms = duration,
                "Completed {} {} for job {} ({size} bytes, checkpointDuration={duration} ms).",
                if c.savepoint { "savepoint" } else { "checkpoint" }, c.id, job.id
            );
            if let Some(r) = request {
                let location = format!("file:{}", c.dir.display());
                if r.stop.is_some() {
                    // As Flink: a stop is complete once the job has finished too.
                    job.stop_location = Some(location);
                } else {
                    job.savepoints.insert(r.trigger_id, SavepointStatus::Completed { location });
                }
            }
            // Sinks commit what they wrote up to this checkpoint.
            let msg = ToTaskManager::CheckpointComplete { job_id: job.id, attempt: job.attempt, checkpoint_id: c.id };
            send_to_taskmanagers(job, tms, None, &msg);
        }
        AckOutcome::Failed { id, reason, savepoint } => {
            tracing::warn!(job_id = %job.id, checkpoint_id = id, reason = %reason, "Checkpoint {id} failed; the job keeps running on its latest completed checkpoint.");
            if let Some(r) = savepoint {
                job.savepoints.insert(r.trigger_id.clone(), SavepointStatus::Failed { reason: reason.clone() });
                if r.stop.is_some() {
                    // The sources stopped at the barrier: go back to the latest checkpoint.
                    job.stopping = None;
                    failover(job, &format!("stop-with-savepoint failed: {reason}"), None, tms);
                }
            }
        }
    }
}

/// A task or TaskManager failed: restart from the latest checkpoint if the
/// restart strategy allows, else fail the job. Only the first failure of an
/// attempt counts; the others are its consequences.
fn failover(job: &mut Job, message: &str, location: Option<String>, tms: &BTreeMap<String, TaskManagerEntry>) {
    if job.status != JobStatus::RUNNING {
        return;
    }
    let now = now_ms();
    if job.checkpoints.pending.is_some() {
        let out = job.checkpoints.fail_pending(now, "the job failed over".into());
        if let AckOutcome::Failed { savepoint: Some(r), .. } = out {
            job.savepoints
                .insert(r.trigger_id, SavepointStatus::Failed { reason: format!("the job failed: {message}") });
        }
    }
    job.stopping = None;
    job.stop_location = None;
    job.restore_ready = None;
    match job.restarts.on_failure(Instant::now(), rand::random::<f64>()) {
        Some(delay) => {
            tracing::warn!(job_id = %job.id, cause = %message, delay_ms = delay.as_millis() as u64, "Job failed; restarting from the latest checkpoint.");
            job.record_exception(message, location);
            job.num_restarts += 1;
            job.set_status(JobStatus::RESTARTING);
            job.restart_at = Some(Instant::now() + delay);
            cancel_tasks(job, tms, TaskStatus::CANCELED);
        }
        None => fail_job_with_tms(job, message, location, tms),
    }
}

/// Deploys job `id` into free slots, restoring `restore` if given.
fn deploy(st: &mut JmState, id: JobId, needed: u32, restore: Option<Completed>) {
    // Slot i of the job: the i-th free slot, filling TaskManagers in order.
    let mut slot_tm: Vec<String> = Vec::new();
    for tm in st.tms.values_mut() {
        while tm.free_slots() > 0 && (slot_tm.len() as u32) < needed {
            tm.used.push((id, slot_tm.len() as u32));
            slot_tm.push(tm.id.clone());
        }
    }
    let Some(job) = st.jobs.get_mut(&id) else { return };
    job.attempt += 1;
    let graph = job.graph.clone();
    let placement: Vec<Vec<String>> = graph
        .graph
        .node_weights()
        .map(|v| (0..v.parallelism).map(|s| st.tms[&slot_tm[s as usize]].data_addr.clone()).collect())
        .collect();
    let mut per_tm: BTreeMap<String, Vec<SubtaskId>> = BTreeMap::new();
    let now = now_ms();
    for (vi, tasks) in job.tasks.iter_mut().enumerate() {
        for (si, t) in tasks.iter_mut().enumerate() {
            let tm = slot_tm[si].clone();
            per_tm.entry(tm.clone()).or_default().push(SubtaskId { vertex: vi as u32, subtask: si as u32 });
            t.status = TaskStatus::DEPLOYING;
            t.tm = Some(tm);
            t.start_time = now;
            t.end_time = -1;
        }
    }
    tracing::info!(job_id = %id, attempt = job.attempt, slots = needed, taskmanagers = per_tm.len(), "Deploying job.");
    let restore_dir = restore.as_ref().map(|c| c.dir.display().to_string());
    let positions = restore.as_ref().map(|c| source_positions(&graph, &job.splits, &c.metadata)).unwrap_or_default();
    job.deployed_restore = restore.as_ref().map(|c| c.id);
    if let Some(c) = &restore {
        tracing::info!(job_id = %id, checkpoint_id = c.id, path = %c.dir.display(), "Restoring the job's state.");
        let restored = crate::checkpoint::coordinator::Restored {
            id: c.id,
            dir: c.dir.clone(),
            savepoint: c.savepoint,
            timestamp: now,
        };
        job.checkpoints.counts.restored += 1;
        job.checkpoints.last_restore = Some(restored);
    }
    for (tm, local) in per_tm {
        let d = Deployment {
            job_id: id,
            attempt: job.attempt,
            plan: job.plan.to_vec(),
            placement: placement.clone(),
            local,
            splits: job.splits.clone(),
            restore: restore_dir.clone(),
            positions: positions.clone(),
        };
        if let Some(t) = st.tms.get(&tm) {
            let _ = t.tx.send(ToTaskManager::Deploy(Box::new(d)));
        }
    }
}

/// Acts on a validation: skipped checkpoints are marked bad and recorded;
/// the job then restores the chosen one, retries later, or fails.
fn apply_restore_choice(job: &mut Job, choice: RestoreChoice, tms: &BTreeMap<String, TaskManagerEntry>) {
    let instead = match &choice.outcome {
        RestoreOutcome::Chosen(c) => format!("restoring {} instead", describe_checkpoint(c)),
        RestoreOutcome::Unreadable(c, _) => format!("{} cannot be read now", describe_checkpoint(c)),
        RestoreOutcome::NoneValid => "no valid checkpoint is left".to_string(),
    };
    for (c, e) in &choice.skipped {
        let message = format!("Skipped {} on restore: {e}; {instead}.", describe_checkpoint(c));
        tracing::warn!(job_id = %job.id, checkpoint_id = c.id, reason = %e, "{message}");
        if job.checkpoints.mark_bad(c.id, &e.to_string()) {
            job.record_exception(&message, None);
        }
    }
    match choice.outcome {
        RestoreOutcome::Chosen(c) => job.restore_ready = Some(Some(c)),
        RestoreOutcome::Unreadable(c, e) => {
            let message = format!("Cannot read {} to restore the job: {e}; trying again", describe_checkpoint(&c));
            failover(job, &message, None, tms);
        }
        RestoreOutcome::NoneValid => {
            let reasons: Vec<String> =
                job.checkpoints.bad.iter().rev().map(|(id, reason)| format!("{id}: {reason}")).collect();
            let message = format!(
                "No valid checkpoint or savepoint is left to restore the job from; every one failed validation ({}). Resume it from an older savepoint with `flowc run -s`.",
                reasons.join("; ")
            );
            fail_job_with_tms(job, &message, None, tms);
        }
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

fn message_of_panic() -> String {
    "internal error while reading Kafka metadata (this is a bug)".to_string()
}

/// Partitions of each Kafka source's topic, spread over its subtasks.
fn assign_partitions(graph: &JobGraph) -> Result<Vec<(SubtaskId, Vec<i32>)>, String> {
    let mut out = Vec::new();
    for n in graph.graph.node_indices() {
        let v = &graph.graph[n];
        let Some(OperatorKind::KafkaSource(k)) = v.operators.first().map(|o| &o.kind) else { continue };
        let count = partition_count(&k.servers, &k.topic, Duration::from_secs(10)).map_err(|e| e.to_string())?;
        for s in 0..v.parallelism {
            let parts: Vec<i32> = (0..count).filter(|p| (*p as u32) % v.parallelism == s).collect();
            out.push((SubtaskId { vertex: n.index() as u32, subtask: s }, parts));
        }
    }
    Ok(out)
}

fn fail_job(job: &mut Job, message: &str, location: Option<String>) {
    tracing::warn!(job_id = %job.id, cause = %message, "Job failed.");
    job.record_exception(message, location);
    job.set_status(JobStatus::FAILING);
    for t in job.tasks.iter_mut().flatten() {
        if !t.status.is_terminal() && matches!(t.status, TaskStatus::CREATED | TaskStatus::SCHEDULED) {
            t.status = TaskStatus::CANCELED;
        }
    }
    if job.all_tasks().all(|t| t.status.is_terminal()) {
        job.set_status(JobStatus::FAILED);
    }
}

fn fail_job_with_tms(job: &mut Job, message: &str, location: Option<String>, tms: &BTreeMap<String, TaskManagerEntry>) {
    fail_job(job, message, location);
    cancel_tasks(job, tms, TaskStatus::CANCELED);
}

/// Asks the TaskManagers to cancel the job's running tasks; tasks not yet
/// deployed end at once with `undeployed`.
fn cancel_tasks(job: &mut Job, tms: &BTreeMap<String, TaskManagerEntry>, undeployed: TaskStatus) {
    let mut asked: Vec<String> = Vec::new();
    for t in job.tasks.iter_mut().flatten() {
        if t.status.is_terminal() {
            continue;
        }
        match (&t.tm, t.status) {
            (_, TaskStatus::CREATED | TaskStatus::SCHEDULED) | (None, _) => {
                t.status = undeployed;
                t.end_time = now_ms();
            }
            (Some(tm), _) => {
                t.status = TaskStatus::CANCELING;
                if !asked.contains(tm) {
                    asked.push(tm.clone());
                }
            }
        }
    }
    for tm in asked {
        match tms.get(&tm) {
            Some(entry) => {
                let _ = entry.tx.send(ToTaskManager::Cancel { job_id: job.id, attempt: job.attempt });
            }
            None => {
                // The TaskManager is gone, and its tasks with it.
                for t in job.tasks.iter_mut().flatten() {
                    if t.tm.as_deref() == Some(&tm) && !t.status.is_terminal() {
                        t.status = TaskStatus::CANCELED;
                    }
                }
            }
        }
    }
}

/// Moves a job to its final state once every task has ended, and frees its slots.
fn finish_if_done(job: &mut Job, tms: &mut BTreeMap<String, TaskManagerEntry>) {
    if !job.all_tasks().all(|t| t.status.is_terminal()) {
        return;
    }
    let next = match job.status {
        JobStatus::CANCELLING => JobStatus::CANCELED,
        JobStatus::FAILING => JobStatus::FAILED,
        JobStatus::RUNNING if job.all_tasks().all(|t| t.status == TaskStatus::FINISHED) => JobStatus::FINISHED,
        JobStatus::RUNNING => JobStatus::FAILED,
        other => other,
    };
    job.set_status(next);
    if job.status.is_terminal() || job.status == JobStatus::RESTARTING {
        for tm in tms.values_mut() {
            tm.used.retain(|(j, _)| *j != job.id);
        }
    }
    if job.status.is_terminal() {
        if let (Some(t), Some(location)) = (job.stopping.take(), job.stop_location.take()) {
            job.savepoints.insert(t, SavepointStatus::Completed { location });
        }
        for s in job.savepoints.values_mut() {
            if *s == SavepointStatus::InProgress {
                *s = SavepointStatus::Failed { reason: format!("the job ended ({})", job.status) };
            }
        }
    }
}
