//! The JobManager's requests: what REST and the CLI ask of it — submit a
//! job, cancel it, trigger a savepoint, a stop-with-savepoint or a
//! checkpoint, dispose of a savepoint, and the status of a trigger.
//!
//! Each checks what it can without the lock (paths against the allowed
//! roots, a savepoint against the plan), then turns the request into an
//! [`Event`] of one job that the shell runs (`shell.rs`); the job's state
//! machine answers it ([`Answer`]).

use super::coordinator::ManualCheckpoint;
use super::events::{Answer, CancelError, Event, SavepointError};
use super::job::{Job, JobSpec};
use super::shell::JobManager;
use super::SavepointStatus;
use crate::checkpoint::restore::check_restore;
use crate::checkpoint::{CheckpointRef, RestorePoint, StopMode};
use crate::clock::Now;
use crate::ids::JobId;
use crate::restart::{RestartStrategy, RestartTracker};
use flowc_compiler::graph::JobGraph;
use flowc_compiler::ir::OperatorKind;
use std::path::PathBuf;
use std::sync::Arc;

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

impl JobManager {
    /// Accepts a compiled plan; returns the new job's id at once. Kafka
    /// metadata is fetched in the background before the job is scheduled.
    /// With an HA job store, the job is in it before this returns.
    pub fn submit(self: &Arc<Self>, plan: Vec<u8>, restore: RestoreRequest) -> Result<JobId, SubmitError> {
        if !self.is_leader() {
            return Err(SubmitError::Unavailable(self.not_leader_message()));
        }
        let graph = flowc_compiler::plan_file::from_bytes(&plan).map_err(|e| SubmitError::BadPlan(e.to_string()))?;
        // Every path the job reads or writes; the TaskManager checks again
        // before it opens one.
        for p in flowc_compiler::paths::plan_paths(&graph) {
            self.allowed
                .check(p.path)
                .map_err(|e| SubmitError::Unsupported(format!("{}: {} is refused: {e}", p.operator, p.what)))?;
        }
        for v in graph.graph.node_weights() {
            for o in &v.operators {
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
}
