//! A job's side of checkpoint coordination: acknowledgements in, barriers
//! and completion notices out to the TaskManagers that run its sources and
//! its tasks, savepoint and stop requests, and what a failed checkpoint
//! means for the job (a failed stop restarts it). The bookkeeping itself
//! is the coordinator's (`coordinator.rs`).

use super::{Job, State};
use crate::checkpoint::StopMode;
use crate::clock::Now;
use crate::ids::{JobStatus, TaskStatus};
use crate::jobmanager::coordinator::{Failure, Progress};
use crate::jobmanager::events::{Command, SavepointError};
use crate::jobmanager::log::Note;
use crate::rpc::CheckpointAck;
use std::path::PathBuf;

impl Job {
    pub(super) fn on_ack(&mut self, ack: CheckpointAck, now: Now, out: &mut Vec<Command>) {
        if ack.attempt != self.attempt || self.status() != JobStatus::RUNNING {
            return;
        }
        let p = self.checkpoints.ack(now, ack.checkpoint_id, ack.subtask, ack.result, out);
        self.on_progress(p, now, out);
    }

    pub(super) fn on_progress(&mut self, progress: Progress, now: Now, out: &mut Vec<Command>) {
        match progress {
            Progress::Nothing => {}
            Progress::SendBarrier(barrier) => {
                if !matches!(self.state, State::Deployed) {
                    // The job left RUNNING while the directory was made.
                    let reason = format!("the job is {}", self.status());
                    if let Some(f) = self.checkpoints.fail_pending(now, reason, out) {
                        self.on_checkpoint_failed(f, now, out);
                    }
                    return;
                }
                out.push(Command::Log(Note::CheckpointTriggered { id: barrier.id }));
                let sources: Vec<usize> = self
                    .graph
                    .graph
                    .node_indices()
                    .filter(|n| self.graph.inputs(*n).is_empty())
                    .map(|n| n.index())
                    .collect();
                for tm in self.taskmanagers(Some(&sources)) {
                    out.push(Command::TriggerBarrier { tm, attempt: self.attempt, barrier: barrier.clone() });
                }
            }
            Progress::Completed(c) => {
                out.push(Command::Log(Note::CheckpointCompleted {
                    id: c.checkpoint.id,
                    savepoint: c.checkpoint.savepoint,
                    size: c.size,
                    duration_ms: c.duration_ms,
                }));
                // Sinks commit what they wrote up to this checkpoint.
                for tm in self.taskmanagers(None) {
                    out.push(Command::NotifyCheckpointComplete {
                        tm,
                        attempt: self.attempt,
                        checkpoint_id: c.checkpoint.id,
                    });
                }
            }
            Progress::Failed(f) => self.on_checkpoint_failed(f, now, out),
        }
    }

    pub(super) fn on_checkpoint_failed(&mut self, f: Failure, now: Now, out: &mut Vec<Command>) {
        out.push(Command::Log(Note::CheckpointFailed { id: f.id, reason: f.reason.clone() }));
        let Some(r) = f.savepoint else { return };
        self.checkpoints.savepoints.failed(&r.trigger_id, f.reason.clone());
        if r.stop.is_some() {
            // The sources stopped at the barrier: go back to the latest checkpoint.
            self.failover(&format!("stop-with-savepoint failed: {}", f.reason), None, now, out);
        }
    }

    /// The TaskManagers that run (or ran) tasks of the job's current
    /// attempt, of the given vertices only if any are given, once each.
    pub(super) fn taskmanagers(&self, vertices: Option<&[usize]>) -> Vec<String> {
        let mut tms: Vec<String> = Vec::new();
        for (v, tasks) in self.tasks.iter().enumerate() {
            if vertices.is_some_and(|vs| !vs.contains(&v)) {
                continue;
            }
            for tm in tasks.iter().filter_map(|t| t.tm.as_ref()) {
                if !tms.contains(tm) {
                    tms.push(tm.clone());
                }
            }
        }
        tms
    }

    pub(super) fn on_savepoint_request(
        &mut self,
        trigger_id: Option<String>,
        target: Result<PathBuf, SavepointError>,
        stop: Option<StopMode>,
        format: crate::jobmanager::savepoints::SavepointFormat,
        out: &mut Vec<Command>,
    ) -> Result<String, SavepointError> {
        let id = self.record.id;
        if let Some(t) = trigger_id.as_ref().filter(|t| self.checkpoints.savepoints.knows(t)) {
            return Ok(t.clone());
        }
        let base = target?;
        if self.status() != JobStatus::RUNNING {
            return Err(SavepointError::NotRunning(id, self.status()));
        }
        if self.checkpoints.savepoints.stopping() {
            return Err(SavepointError::Stopping(id));
        }
        let total = self.all_tasks().count();
        let running = self.all_tasks().filter(|t| t.status == TaskStatus::RUNNING).count();
        if running < total {
            return Err(SavepointError::NotAllRunning(id, running, total));
        }
        let trigger_id = trigger_id.unwrap_or_else(|| self.rng.hex(32));
        let dir = base.join(format!("savepoint-{}-{}", &id.to_string()[..6], self.rng.hex(12)));
        // Made first, so that tasks only write into it and a failure to make
        // it fails the savepoint before any barrier (or stop) is sent.
        self.checkpoints.savepoints.request(trigger_id.clone(), dir, stop, out);
        self.checkpoints.savepoints.set_format(&trigger_id, format);
        Ok(trigger_id)
    }

    pub(super) fn on_savepoint_directory(
        &mut self,
        trigger_id: &str,
        dir: PathBuf,
        result: Result<(), String>,
        now: Now,
        out: &mut Vec<Command>,
    ) {
        let Some((request, dir)) = self.checkpoints.savepoints.directory_prepared(trigger_id, dir, result, out) else {
            return;
        };
        if !matches!(self.state, State::Deployed) || !self.all_running() {
            self.checkpoints.savepoints.failed(trigger_id, format!("the job is {}", self.status()));
            out.push(Command::Remove { dir, retry: false });
            return;
        }
        if let Some(f) = self.checkpoints.fail_pending(now, "superseded by a savepoint".into(), out) {
            self.on_checkpoint_failed(f, now, out);
        }
        let expected = self.all_tasks().count();
        let barrier = self.checkpoints.start_savepoint(now, expected, request, dir, out);
        self.on_progress(Progress::SendBarrier(barrier), now, out);
    }
}
