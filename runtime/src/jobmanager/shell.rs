//! The JobManager's shell: the one lock over the jobs and the TaskManager
//! registry, the entry points that the RPC server and the 100 ms tick call
//! (those of REST and the CLI are in `requests.rs`), and the carrying out
//! of what the jobs' state machines ask for.
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
use super::events::{Answer, Command, Event};
use super::ha_store::HaJobs;
use super::job::Job;
use super::leadership::Role;
use super::outbox::{DrainId, InFlight, Outboxes};
use super::scheduler::{self, SlotOffer};
use super::store;
use crate::checkpoint::fallback::choose_restore;
use crate::checkpoint::storage::{CheckpointStorage, Storages};
use crate::checkpoint::CheckpointRef;
use crate::clock::{now_ms, Now};
use crate::config::{Config, ConfigError};
use crate::connectors::kafka::partition_count;
use crate::ids::{Attempt, JobId, SubtaskId};
use crate::registry::TaskManagerEntry;
use crate::rpc::{self, CheckpointAck, ToTaskManager};
use crate::security::paths::AllowedRoots;
use flowc_compiler::graph::JobGraph;
use std::collections::{BTreeMap, VecDeque};
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
    pub(super) storage: Arc<dyn CheckpointStorage>,
    /// The HA job store, if the settings give one (`ha_store`).
    pub(super) ha: Option<HaJobs>,
    pub(super) retention: Retention,
    /// Completed checkpoints a job keeps (`state.checkpoints.num-retained`).
    pub(super) num_retained: usize,
    /// How long an ended job stays listed, and how many at most.
    jobstore_expiration: Duration,
    jobstore_capacity: usize,
    pub(super) exception_history_size: usize,
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
mod tests;
