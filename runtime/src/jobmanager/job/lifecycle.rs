//! A job's life after deployment: task updates, lost TaskManagers,
//! failover under the restart strategy, restarts, cancellation, failure,
//! and the end — final state, result, retention, savepoints, slots.

use super::{ConcurrentFailure, Job, JobResult, Restore, State, TaskEntry, MAX_CONCURRENT_EXCEPTIONS};
use crate::clock::Now;
use crate::ids::{JobStatus, TaskStatus};
use crate::jobmanager::events::{CancelError, Command};
use crate::jobmanager::log::Note;
use crate::rpc::{FailureKind, TaskUpdate};

impl Job {
    pub(super) fn on_task_update(&mut self, u: TaskUpdate, now: Now, out: &mut Vec<Command>) {
        // Before a deployment no task of this attempt runs: whatever says
        // otherwise is a late message of the attempt before.
        if u.attempt != self.attempt || matches!(self.state, State::Initializing | State::Waiting { .. }) {
            return;
        }
        let Some(task) =
            self.tasks.get_mut(u.subtask.vertex as usize).and_then(|v| v.get_mut(u.subtask.subtask as usize))
        else {
            return;
        };
        if task.status.is_terminal() {
            return;
        }
        task.set_status(u.status, now.ms);
        if u.status.is_terminal() {
            task.end_time = now.ms;
        }
        if let Some(m) = u.metrics {
            task.metrics = *m;
        }
        let location = task.tm.clone();
        self.last_modification = now.ms;
        if u.status != TaskStatus::FAILED {
            return;
        }
        let message = u.failure.unwrap_or_else(|| "task failed".into());
        if u.kind == FailureKind::CorruptState {
            // Validated before the deployment, corrupt now: never again.
            if let Some(c) = self.deployed_restore {
                if self.checkpoints.mark_bad(c, &message) {
                    let entry = format!("Skipped checkpoint {c}: restoring it failed on a TaskManager: {message}");
                    self.record_exception(now, &entry, location.clone());
                    out.push(Command::Log(Note::SkippedCheckpoint { id: c, message: entry }));
                }
            }
        }
        if self.status() == JobStatus::RUNNING {
            self.failover(&message, location, now, out);
            self.root_is_consequence = u.kind == FailureKind::Consequence;
        } else if matches!(self.state, State::Failing | State::Restarting { .. }) {
            self.concurrent_failure(message, location, u.kind, now, out);
        }
    }

    /// Another task of the attempt failed while the job was failing over
    /// or failing: a concurrent exception of the root one, or the root
    /// itself if the root so far was only its consequence (a task whose
    /// channel to this one closed, reported first).
    fn concurrent_failure(
        &mut self,
        message: String,
        location: Option<String>,
        kind: FailureKind,
        now: Now,
        out: &mut Vec<Command>,
    ) {
        let promote = self.root_is_consequence && kind != FailureKind::Consequence;
        let Some(root) = self.exceptions.last_mut() else { return };
        let mut failure = ConcurrentFailure { timestamp: now.ms, message, location };
        if promote {
            self.root_is_consequence = false;
            std::mem::swap(&mut root.message, &mut failure.message);
            std::mem::swap(&mut root.location, &mut failure.location);
            std::mem::swap(&mut root.timestamp, &mut failure.timestamp);
            out.push(Command::Log(Note::RootCause { cause: root.message.clone() }));
        }
        if root.concurrent.len() < MAX_CONCURRENT_EXCEPTIONS {
            root.concurrent.insert(if promote { 0 } else { root.concurrent.len() }, failure);
        }
    }

    pub(super) fn on_tm_lost(&mut self, tm: &str, message: &str, now: Now, out: &mut Vec<Command>) {
        let mut affected = false;
        for t in self.tasks.iter_mut().flatten() {
            if t.tm.as_deref() == Some(tm) && !t.status.is_terminal() {
                t.set_status(TaskStatus::FAILED, now.ms);
                t.end_time = now.ms;
                affected = true;
            }
        }
        if affected {
            self.failover(message, Some(tm.to_string()), now, out);
        }
    }

    pub(super) fn on_cancel(&mut self, now: Now, out: &mut Vec<Command>) -> Result<(), CancelError> {
        let status = self.status();
        if status.is_terminal() {
            return Err(CancelError::Terminal(self.record.id, status));
        }
        if status == JobStatus::CANCELLING {
            return Ok(());
        }
        self.set_state(State::Cancelling, now, out);
        self.cancel_tasks(TaskStatus::CANCELED, now, out);
        Ok(())
    }

    /// A RESTARTING job whose delay has passed and whose tasks have all
    /// ended is RUNNING again, with its tasks SCHEDULED.
    pub(super) fn restart(&mut self, now: Now, out: &mut Vec<Command>) {
        let State::Restarting { at } = self.state else { return };
        if now.instant < at || !self.all_ended() {
            return;
        }
        self.release_slots(out);
        self.tasks.iter_mut().flatten().for_each(|t| *t = TaskEntry::scheduled(now.ms));
        out.push(Command::Log(Note::Restarting { restarts: self.num_restarts }));
        self.set_state(State::Waiting { partitions: true, restore: Restore::Undecided }, now, out);
    }

    /// A task or TaskManager failed: restart from the latest checkpoint if
    /// the restart strategy allows, else fail the job. Only the first
    /// failure of an attempt counts; the others are its consequences.
    pub(super) fn failover(&mut self, message: &str, location: Option<String>, now: Now, out: &mut Vec<Command>) {
        if self.status() != JobStatus::RUNNING {
            return;
        }
        self.checkpoints.on_failover(now, message, out);
        match self.restarts.on_failure(now.instant, self.rng.unit()) {
            Some(delay) => {
                out.push(Command::Log(Note::FailingOver { cause: message.to_string(), delay }));
                self.record_exception(now, message, location);
                self.num_restarts += 1;
                self.set_state(State::Restarting { at: now.instant + delay }, now, out);
                self.cancel_tasks(TaskStatus::CANCELED, now, out);
            }
            None => {
                self.fail_job(message, location, now, out);
                self.cancel_tasks(TaskStatus::CANCELED, now, out);
            }
        }
    }

    /// The job fails for good: FAILING until its tasks have ended.
    pub(super) fn fail_job(&mut self, message: &str, location: Option<String>, now: Now, out: &mut Vec<Command>) {
        out.push(Command::Log(Note::Failed { cause: message.to_string() }));
        self.record_exception(now, message, location);
        self.set_state(State::Failing, now, out);
        for t in self.tasks.iter_mut().flatten() {
            if matches!(t.status, TaskStatus::CREATED | TaskStatus::SCHEDULED) {
                t.set_status(TaskStatus::CANCELED, now.ms);
            }
        }
        if self.all_ended() {
            self.end(JobStatus::FAILED, now, out);
        }
    }

    /// Asks the TaskManagers to cancel the job's running tasks; tasks not
    /// deployed end at once with `undeployed`.
    pub(super) fn cancel_tasks(&mut self, undeployed: TaskStatus, now: Now, out: &mut Vec<Command>) {
        let mut asked: Vec<String> = Vec::new();
        for t in self.tasks.iter_mut().flatten() {
            if t.status.is_terminal() {
                continue;
            }
            match (&t.tm, t.status) {
                (_, TaskStatus::CREATED | TaskStatus::SCHEDULED) | (None, _) => {
                    t.set_status(undeployed, now.ms);
                    t.end_time = now.ms;
                }
                (Some(tm), _) => {
                    if !asked.contains(tm) {
                        asked.push(tm.clone());
                    }
                    t.set_status(TaskStatus::CANCELING, now.ms);
                }
            }
        }
        for tm in asked {
            out.push(Command::CancelTasks { tm, attempt: self.attempt });
        }
    }

    /// Once every task has ended, a job moves to its final state, and a
    /// restarting one frees its slots.
    pub(super) fn finish_if_done(&mut self, now: Now, out: &mut Vec<Command>) {
        if !self.all_ended() {
            return;
        }
        match self.state {
            State::Cancelling => self.end(JobStatus::CANCELED, now, out),
            State::Failing => self.end(JobStatus::FAILED, now, out),
            State::Deployed => {
                let finished = self.all_tasks().all(|t| t.status == TaskStatus::FINISHED);
                self.end(if finished { JobStatus::FINISHED } else { JobStatus::FAILED }, now, out)
            }
            State::Restarting { .. } => self.release_slots(out),
            State::Initializing | State::Waiting { .. } | State::Ended(_) => {}
        }
    }

    /// The job ended in `status`: it keeps its result, its checkpoints go if
    /// its retention says so, its savepoints are reported, its slots freed.
    pub(super) fn end(&mut self, status: JobStatus, now: Now, out: &mut Vec<Command>) {
        self.set_state(State::Ended(status), now, out);
        self.record.result = Some(JobResult { status, end_ms: now.ms });
        self.checkpoints.on_job_end(now, status, out);
        self.release_slots(out);
    }

    /// This JobManager lost leadership: the job is SUSPENDED here and says
    /// nothing more to any TaskManager — a deposed leader must not cancel,
    /// trigger or commit, and the new leader recovers the job from the HA
    /// job store. It keeps its checkpoints and records no result (it has
    /// not ended, only left this JobManager); its slots are given back.
    pub(super) fn on_leadership_lost(&mut self, now: Now, out: &mut Vec<Command>) {
        let from = self.status();
        if matches!(self.state, State::Ended(_)) {
            return;
        }
        out.push(Command::Log(Note::Suspended { from }));
        self.set_state(State::Ended(JobStatus::SUSPENDED), now, out);
        self.release_slots(out);
    }

    pub(super) fn release_slots(&mut self, out: &mut Vec<Command>) {
        if std::mem::take(&mut self.holds_slots) {
            out.push(Command::ReleaseSlots);
        }
    }
}
