//! Getting a job into slots: submission, its Kafka partitions, the choice
//! of what to restore (validated off the lock, corrupt checkpoints skipped
//! for good), and the deployment of a new attempt into the slots offered.

use super::{Job, Restore, State, TaskStatus};
use crate::checkpoint::fallback::{RestoreChoice, RestoreOutcome};
use crate::checkpoint::restore::source_positions;
use crate::checkpoint::RestorePoint;
use crate::clock::Now;
use crate::ids::{Attempt, JobStatus, SubtaskId};
use crate::jobmanager::events::Command;
use crate::jobmanager::log::Note;
use crate::jobmanager::scheduler::{self, SlotOffer};
use crate::rpc::Deployment;

impl Job {
    pub(super) fn on_submitted(&mut self, now: Now, out: &mut Vec<Command>) {
        if !matches!(self.state, State::Initializing) {
            return;
        }
        if let Some(p) = &self.initial {
            out.push(Command::Log(Note::RestoringFromSavepoint { checkpoint: p.checkpoint.clone() }));
        }
        self.mark_status(JobStatus::INITIALIZING, JobStatus::CREATED, now, out);
        // Validated at submission: the first deployment restores it without a second look.
        let restore = match self.initial.take() {
            Some(p) => Restore::Ready(Some(p)),
            None => Restore::Undecided,
        };
        let from = JobStatus::CREATED;
        self.state = State::Waiting { partitions: false, restore };
        self.mark_status(from, JobStatus::RUNNING, now, out);
        self.tasks.iter_mut().flatten().for_each(|t| t.set_status(TaskStatus::SCHEDULED, now.ms));
        out.push(Command::Log(Note::Submitted));
        out.push(Command::ResolvePartitions);
    }

    pub(super) fn on_partitions(
        &mut self,
        splits: Result<Vec<(SubtaskId, Vec<i32>)>, String>,
        now: Now,
        out: &mut Vec<Command>,
    ) {
        let State::Waiting { partitions, .. } = &mut self.state else { return };
        if *partitions {
            return;
        }
        match splits {
            Ok(s) => {
                *partitions = true;
                self.splits = s;
            }
            Err(message) => self.fail_job(&message, None, now, out),
        }
    }

    pub(super) fn on_slots(&mut self, offer: &[SlotOffer], now: Now, out: &mut Vec<Command>) {
        if !self.wants_slots() {
            return;
        }
        let needed = self.graph.total_parallelism();
        let free: u32 = offer.iter().map(|o| o.free).sum();
        if free < needed {
            if self.slot_wait_logged != Some(free) {
                self.slot_wait_logged = Some(free);
                out.push(Command::Log(Note::WaitingForSlots { needed, free }));
            }
            return;
        }
        self.slot_wait_logged = None;
        let State::Waiting { restore, .. } = &mut self.state else { return };
        let restore = match std::mem::replace(restore, Restore::Undecided) {
            Restore::Ready(r) => r,
            Restore::Undecided | Restore::Validating => {
                let candidates = self.checkpoints.restore_candidates();
                if candidates.is_empty() && self.checkpoints.store.bad().is_empty() {
                    None
                } else {
                    *restore = Restore::Validating;
                    out.push(Command::ValidateRestore { attempt: self.attempt, candidates });
                    return;
                }
            }
        };
        self.deploy(offer, restore, now, out);
    }

    /// Deploys a new attempt into the free slots of `offer`, restoring `restore`.
    pub(super) fn deploy(
        &mut self,
        offer: &[SlotOffer],
        restore: Option<RestorePoint>,
        now: Now,
        out: &mut Vec<Command>,
    ) {
        let Some(placement) = scheduler::place(&self.graph, offer) else { return };
        self.attempt += 1;
        for (tasks, tms) in self.tasks.iter_mut().zip(&placement.tms) {
            for (t, tm) in tasks.iter_mut().zip(tms) {
                t.set_status(TaskStatus::DEPLOYING, now.ms);
                t.tm = Some(tm.clone());
                t.start_time = now.ms;
                t.end_time = -1;
            }
        }
        out.push(Command::Log(Note::Deploying {
            attempt: self.attempt,
            slots: self.graph.total_parallelism(),
            taskmanagers: placement.shares.len(),
        }));
        let positions = restore.as_ref().map(|c| source_positions(&self.graph, &self.splits, &c.metadata));
        self.deployed_restore = restore.as_ref().map(|c| c.checkpoint.id);
        if let Some(c) = &restore {
            out.push(Command::Log(Note::RestoringState { checkpoint: c.checkpoint.clone() }));
            self.checkpoints.restored(now, &c.checkpoint);
        }
        let restore_dir = restore.as_ref().map(|c| c.checkpoint.dir.display().to_string());
        for share in placement.shares {
            let deployment = Deployment {
                job_id: self.record.id,
                attempt: self.attempt,
                plan: self.record.plan.to_vec(),
                placement: placement.addresses.clone(),
                local: share.local,
                splits: self.splits.clone(),
                restore: restore_dir.clone(),
                positions: positions.clone().unwrap_or_default(),
            };
            out.push(Command::Deploy { tm: share.tm, slots: share.slots, deployment: Box::new(deployment) });
        }
        self.holds_slots = true;
        self.state = State::Deployed;
    }

    /// Acts on a validation: skipped checkpoints are marked bad and
    /// recorded; the job then restores the chosen one, retries later, or fails.
    pub(super) fn on_validated(&mut self, attempt: Attempt, choice: RestoreChoice, now: Now, out: &mut Vec<Command>) {
        let State::Waiting { restore, .. } = &mut self.state else { return };
        if attempt != self.attempt || !matches!(restore, Restore::Validating) {
            return;
        }
        *restore = Restore::Undecided;
        let instead = match &choice.outcome {
            RestoreOutcome::Chosen(c) => format!("restoring {} instead", c.checkpoint.describe()),
            RestoreOutcome::Unreadable(c, _) => format!("{} cannot be read now", c.describe()),
            RestoreOutcome::NoneValid => "no valid checkpoint is left".to_string(),
        };
        for (c, e) in &choice.skipped {
            let message = format!("Skipped {} on restore: {e}; {instead}.", c.describe());
            if self.checkpoints.mark_bad(c.id, &e.to_string()) {
                self.record_exception(now, &message, None);
            }
            out.push(Command::Log(Note::SkippedCheckpoint { id: c.id, message }));
        }
        match choice.outcome {
            RestoreOutcome::Chosen(c) => {
                if let State::Waiting { restore, .. } = &mut self.state {
                    *restore = Restore::Ready(Some(c));
                }
            }
            RestoreOutcome::Unreadable(c, e) => {
                let message = format!("Cannot read {} to restore the job: {e}; trying again", c.describe());
                self.failover(&message, None, now, out);
            }
            RestoreOutcome::NoneValid => {
                let reasons: Vec<String> =
                    self.checkpoints.store.bad().iter().rev().map(|(id, reason)| format!("{id}: {reason}")).collect();
                let message = format!(
                    "No valid checkpoint or savepoint is left to restore the job from; every one failed validation ({}). Resume it from an older savepoint with `flowc run -s`.",
                    reasons.join("; ")
                );
                self.fail_job(&message, None, now, out);
                self.cancel_tasks(TaskStatus::CANCELED, now, out);
            }
        }
    }
}
