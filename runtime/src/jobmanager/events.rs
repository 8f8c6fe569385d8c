//! What a job's state machine ([`super::job::Job`]) takes in and gives out.
//!
//! [`Event`]s are what happened: a TaskManager's message, a REST request, a
//! timer that came due, the result of a command the shell carried out.
//! [`Command`]s are what the job wants done: messages to its TaskManagers,
//! storage operations (whose results come back as events), slot
//! bookkeeping, log lines and the answer to a request. Neither holds a
//! socket, a lock or a clock; time comes in beside the event, as
//! [`crate::clock::Now`].

use super::checkpoint_store::CheckpointStore;
use super::job::JobResult;
use super::log::Note;
use super::scheduler::SlotOffer;
use crate::checkpoint::fallback::RestoreChoice;
use crate::checkpoint::format::CheckpointMetadata;
use crate::checkpoint::{Barrier, CheckpointRef, StopMode};
use crate::ids::{Attempt, JobId, JobStatus, SubtaskId};
use crate::rpc::{CheckpointAck, Deployment, TaskUpdate};
use crate::security::paths::PathError;
use std::path::PathBuf;

#[derive(Debug)]
pub enum Event {
    /// The job was accepted: it goes RUNNING with its tasks SCHEDULED and
    /// asks for its Kafka partitions.
    Submitted,
    /// The Kafka partitions of each source subtask, or why they are unknown.
    PartitionsResolved(Result<Vec<(SubtaskId, Vec<i32>)>, String>),
    /// Free slots, in the order to fill them.
    SlotsOffered(Vec<SlotOffer>),
    /// The restore candidates asked for by attempt `attempt` were validated.
    RestoreValidated { attempt: Attempt, choice: RestoreChoice },
    /// A TaskManager reports a task's new state.
    TaskUpdated(TaskUpdate),
    /// A TaskManager is gone, with the tasks it ran.
    TaskManagerLost { tm: String, message: String },
    /// Timer: the checkpoint interval has passed.
    CheckpointTriggerDue,
    /// Timer: the pending checkpoint has run out of time.
    CheckpointTimeoutDue,
    /// Timer: a RESTARTING job's delay has passed.
    RestartDelayElapsed,
    /// A subtask acknowledged a checkpoint, or declined it.
    CheckpointAcked(CheckpointAck),
    /// A checkpoint's or savepoint's directory was made, or could not be.
    DirectoryPrepared { purpose: Purpose, dir: PathBuf, result: Result<(), String> },
    /// A checkpoint's `_metadata` was written, or could not be.
    MetadataWritten { checkpoint_id: u64, result: Result<(), String> },
    /// The directory of a failed checkpoint could not be removed: it is
    /// tried again after the next checkpoint completes.
    RemovalFailed { dir: PathBuf },
    /// A [`Command::PersistCheckpoints`] was carried out (or not): the
    /// persisted store's newest completed checkpoint, and the outcome.
    CheckpointsPersisted { newest: Option<u64>, result: Result<(), String> },
    /// `POST /jobs/:jid/savepoints`, or `/stop` with `stop`: the trigger id
    /// the caller gave, and the directory to write into (resolved and
    /// checked by the shell, or why it is refused).
    SavepointRequested {
        trigger_id: Option<String>,
        target: Result<PathBuf, SavepointError>,
        stop: Option<StopMode>,
        format: super::savepoints::SavepointFormat,
    },
    /// `PATCH /jobs/:jid?mode=cancel`.
    CancelRequested,
    /// `POST /jobs/:jid/checkpoints`: a checkpoint by hand.
    CheckpointRequested { trigger_id: String },
    /// A JobManager that gained leadership recreated the job from the HA
    /// job store (`Job::recover`): it runs again, restored from its latest
    /// completed checkpoint.
    Recovered,
    /// This JobManager lost leadership: the job is SUSPENDED here at once,
    /// with no further message to any TaskManager (the new leader owns it).
    LeadershipLost,
}

/// What a directory is being made for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Purpose {
    Checkpoint(u64),
    /// The savepoint of this trigger id.
    Savepoint(String),
}

#[derive(Debug)]
pub enum Command {
    /// Read the Kafka partitions of the job's sources; answer with
    /// [`Event::PartitionsResolved`].
    ResolvePartitions,
    /// Run `deployment` on TaskManager `tm`, in the job's slots `slots` there.
    Deploy {
        tm: String,
        slots: Vec<u32>,
        deployment: Box<Deployment>,
    },
    /// Cancel the tasks of `attempt` on `tm`.
    CancelTasks {
        tm: String,
        attempt: Attempt,
    },
    /// The job's tasks have all ended: its slots are free.
    ReleaseSlots,
    /// The sources on `tm` inject `barrier`.
    TriggerBarrier {
        tm: String,
        attempt: Attempt,
        barrier: Barrier,
    },
    /// Checkpoint `checkpoint_id` is complete: the sinks on `tm` commit.
    NotifyCheckpointComplete {
        tm: String,
        attempt: Attempt,
        checkpoint_id: u64,
    },
    /// Make the directory a checkpoint's or savepoint's files go into;
    /// answer with [`Event::DirectoryPrepared`].
    PrepareDirectory {
        purpose: Purpose,
        dir: PathBuf,
    },
    /// Write `_metadata`; answer with [`Event::MetadataWritten`].
    WriteMetadata {
        checkpoint_id: u64,
        dir: PathBuf,
        metadata: Box<CheckpointMetadata>,
    },
    /// Remove a checkpoint's directory; with `retry`, answer a failure with
    /// [`Event::RemovalFailed`].
    Remove {
        dir: PathBuf,
        retry: bool,
    },
    /// Remove every `chk-<n>` under `base` older than `below` that is not
    /// one of `keep`: what failed checkpoints, late writers and earlier
    /// removals that failed left behind.
    Sweep {
        base: PathBuf,
        below: u64,
        keep: Vec<u64>,
    },
    /// The job ended in `status` and its retention deletes its checkpoints.
    RemoveJobCheckpoints {
        base: PathBuf,
        status: JobStatus,
    },
    /// Validate the candidates, in order, off the lock; answer with
    /// [`Event::RestoreValidated`].
    ValidateRestore {
        attempt: Attempt,
        candidates: Vec<CheckpointRef>,
    },
    /// The job's completed checkpoints or its checkpoint counter changed:
    /// persist them in the HA job store before anything that follows;
    /// answer with [`Event::CheckpointsPersisted`] (a checkpoint completes,
    /// and its sinks commit, only once it is persisted).
    PersistCheckpoints(Box<CheckpointStore>),
    /// The job ended (FINISHED, CANCELED or FAILED): persist its result, so
    /// that a new leader does not run it again, then forget it there.
    PersistResult(JobResult),
    Log(Note),
    /// The answer to the request the event was.
    Answer(Answer),
}

/// The answer to a request.
#[derive(Debug)]
pub enum Answer {
    /// The trigger id, or why no savepoint is taken.
    Savepoint(Result<String, SavepointError>),
    Cancel(Result<(), CancelError>),
    /// The trigger id of a checkpoint asked for by hand, or why none is taken.
    Checkpoint(Result<String, SavepointError>),
}

/// Why a savepoint (or stop-with-savepoint) is refused.
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

/// Why a cancel is refused.
#[derive(Debug, thiserror::Error)]
pub enum CancelError {
    #[error("job {0} not found")]
    NotFound(JobId),
    #[error("job {0} is already {1}")]
    Terminal(JobId, JobStatus),
}
