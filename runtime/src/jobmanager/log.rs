//! What a job's state machine has to say, as data: the job returns a
//! [`Note`] in a [`super::events::Command::Log`] and the shell writes it
//! with `tracing`, with the job's id and the note's fields. Tests read the
//! notes instead of scraping logs.

use crate::checkpoint::CheckpointRef;
use crate::ids::{Attempt, JobId, JobStatus};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub enum Note {
    StateChanged {
        from: JobStatus,
        to: JobStatus,
    },
    Submitted,
    RestoringFromSavepoint {
        checkpoint: CheckpointRef,
    },
    /// The job failed and is not restarted.
    Failed {
        cause: String,
    },
    /// The failure first reported was a consequence of this one, which
    /// is now the job's root exception.
    RootCause {
        cause: String,
    },
    /// The job failed and restarts after `delay`.
    FailingOver {
        cause: String,
        delay: Duration,
    },
    Restarting {
        restarts: u64,
    },
    WaitingForSlots {
        needed: u32,
        free: u32,
    },
    Deploying {
        attempt: Attempt,
        slots: u32,
        taskmanagers: usize,
    },
    RestoringState {
        checkpoint: CheckpointRef,
    },
    /// A checkpoint failed validation or could not be restored: never again.
    SkippedCheckpoint {
        id: u64,
        message: String,
    },
    CheckpointTriggered {
        id: u64,
    },
    CheckpointCompleted {
        id: u64,
        savepoint: bool,
        size: u64,
        duration_ms: i64,
    },
    CheckpointFailed {
        id: u64,
        reason: String,
    },
    SavepointTriggered {
        trigger_id: String,
        dir: PathBuf,
        stop: bool,
    },
    SavepointFailed {
        trigger_id: String,
        reason: String,
    },
    /// Recreated from the HA job store by a new leader; restores from
    /// `latest` (a checkpoint id) if it has one.
    Recovered {
        latest: Option<u64>,
    },
    /// This JobManager lost leadership while the job was `from`.
    Suspended {
        from: JobStatus,
    },
}

impl Note {
    /// Writes the note for job `job_id` (named `name`).
    pub fn emit(&self, job_id: JobId, name: &str) {
        match self {
            Note::StateChanged { from, to } => {
                tracing::info!(job_id = %job_id, from = %from, to = %to, "Job \"{name}\" switched state.")
            }
            Note::Submitted => tracing::info!(job_id = %job_id, name = %name, "Job submitted."),
            Note::RestoringFromSavepoint { checkpoint: c } => tracing::info!(
                job_id = %job_id, path = %c.dir.display(), checkpoint_id = c.id,
                "Restoring the job from a savepoint."
            ),
            Note::Failed { cause } => tracing::warn!(job_id = %job_id, cause = %cause, "Job failed."),
            Note::RootCause { cause } => {
                tracing::warn!(job_id = %job_id, cause = %cause, "The failure that caused the others.")
            }
            Note::FailingOver { cause, delay } => tracing::warn!(
                job_id = %job_id, cause = %cause, delay_ms = delay.as_millis() as u64,
                "Job failed; restarting from the latest checkpoint."
            ),
            Note::Restarting { restarts } => {
                tracing::info!(job_id = %job_id, restarts, "Restarting the job.")
            }
            Note::WaitingForSlots { needed, free } => tracing::info!(
                job_id = %job_id, needed, free,
                "Job waits for slots: it needs {needed}, {free} are free; its tasks stay SCHEDULED."
            ),
            Note::Deploying { attempt, slots, taskmanagers } => {
                tracing::info!(job_id = %job_id, attempt, slots, taskmanagers, "Deploying job.")
            }
            Note::RestoringState { checkpoint: c } => tracing::info!(
                job_id = %job_id, checkpoint_id = c.id, path = %c.dir.display(),
                "Restoring the job's state."
            ),
            Note::SkippedCheckpoint { id, message } => {
                tracing::warn!(job_id = %job_id, checkpoint_id = id, "{message}")
            }
            Note::CheckpointTriggered { id } => {
                tracing::debug!(job_id = %job_id, checkpoint_id = id, "Triggered a checkpoint.")
            }
            Note::CheckpointCompleted { id, savepoint, size, duration_ms } => tracing::info!(
                job_id = %job_id, checkpoint_id = id, size, duration_ms,
                "Completed {} {id} for job {job_id} ({size} bytes, checkpointDuration={duration_ms} ms).",
                if *savepoint { "savepoint" } else { "checkpoint" }
            ),
            Note::CheckpointFailed { id, reason } => tracing::warn!(
                job_id = %job_id, checkpoint_id = id, reason = %reason,
                "Checkpoint {id} failed; the job keeps running on its latest completed checkpoint."
            ),
            Note::SavepointTriggered { trigger_id, dir, stop } => tracing::info!(
                job_id = %job_id, trigger_id = %trigger_id, path = %dir.display(), stop,
                "Triggering a savepoint."
            ),
            Note::SavepointFailed { trigger_id, reason } => {
                tracing::warn!(job_id = %job_id, trigger_id = %trigger_id, reason = %reason, "Savepoint failed.")
            }
            Note::Recovered { latest: Some(id) } => tracing::info!(
                job_id = %job_id, checkpoint_id = id,
                "Recovered job \"{name}\" from the HA job store; it resumes from checkpoint {id}."
            ),
            Note::Recovered { latest: None } => tracing::info!(
                job_id = %job_id,
                "Recovered job \"{name}\" from the HA job store; it has no checkpoint and starts from scratch."
            ),
            Note::Suspended { from } => tracing::warn!(
                job_id = %job_id, from = %from,
                "Suspended job \"{name}\": this JobManager lost leadership; the new leader recovers it."
            ),
        }
    }
}
