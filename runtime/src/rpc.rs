//! The control protocol between the JobManager and the TaskManagers:
//! length-prefixed bincode frames over TCP.
//!
//! A TaskManager connects to `jobmanager.rpc.port`, sends `Register`, then
//! heartbeats every `heartbeat.interval`; the JobManager deploys and cancels
//! tasks over the same connection. Either side treats a closed connection
//! as the loss of the other.

use crate::checkpoint::format::TaskEntry;
use crate::checkpoint::{Barrier, SourceState};
use crate::ids::{Attempt, JobId, SubtaskId, TaskStatus};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Bumped whenever a message changes; peers of another version are refused.
pub const PROTOCOL_VERSION: u32 = 2;
/// No control message is this large; a bigger length means a confused peer.
pub const MAX_FRAME: usize = 64 * 1024 * 1024;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ToJobManager {
    Register(Registration),
    Heartbeat { metrics: Vec<TaskMetrics> },
    TaskUpdate(TaskUpdate),
    Checkpoint(CheckpointAck),
}

/// A subtask's part of a checkpoint is written (its `_metadata` entry), or
/// it declined the checkpoint with a reason.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckpointAck {
    pub job_id: JobId,
    pub attempt: Attempt,
    pub subtask: SubtaskId,
    pub checkpoint_id: u64,
    pub result: Result<TaskEntry, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Registration {
    pub protocol: u32,
    pub tm_id: String,
    /// Where other TaskManagers send this one records.
    pub data_addr: String,
    pub slots: u32,
    pub cpu_cores: u32,
    pub physical_memory: u64,
    pub pid: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskUpdate {
    pub job_id: JobId,
    pub attempt: Attempt,
    pub subtask: SubtaskId,
    pub status: TaskStatus,
    /// Why the task failed.
    pub failure: Option<String>,
    /// What kind of failure, where the JobManager acts on it.
    pub kind: FailureKind,
    /// The task's final counters, when it has ended.
    pub metrics: Option<TaskMetrics>,
}

/// A task failure the JobManager treats specially.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum FailureKind {
    #[default]
    Other,
    /// The checkpoint or savepoint it restored from is corrupt or lacks a
    /// file: the JobManager skips it from then on.
    CorruptState,
}

impl TaskMetrics {
    /// A snapshot of a subtask's counters.
    pub fn of(job_id: JobId, attempt: Attempt, subtask: SubtaskId, c: &crate::metrics::TaskCounters) -> TaskMetrics {
        use crate::metrics::TaskCounters as C;
        let wm = c.watermark.load(std::sync::atomic::Ordering::Relaxed);
        TaskMetrics {
            job_id: Some(job_id),
            attempt,
            subtask: Some(subtask),
            records_in: C::get(&c.records_in),
            records_out: C::get(&c.records_out),
            bytes_in: C::get(&c.bytes_in),
            bytes_out: C::get(&c.bytes_out),
            decode_errors: C::get(&c.decode_errors),
            late_records: C::get(&c.late_records),
            watermark: (wm != i64::MIN).then_some(wm),
        }
    }
}

/// Counters of one running subtask, sent with heartbeats.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TaskMetrics {
    pub job_id: Option<JobId>,
    pub attempt: Attempt,
    pub subtask: Option<SubtaskId>,
    pub records_in: u64,
    pub records_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Records a source could not decode and skipped.
    pub decode_errors: u64,
    /// Records dropped because their window had already fired.
    pub late_records: u64,
    /// The task's current input watermark, if any.
    pub watermark: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ToTaskManager {
    Registered {
        tm_id: String,
    },
    Refused {
        reason: String,
    },
    Deploy(Box<Deployment>),
    Cancel {
        job_id: JobId,
        attempt: Attempt,
    },
    /// Checkpoint `checkpoint_id` is complete: exactly-once sinks commit.
    CheckpointComplete {
        job_id: JobId,
        attempt: Attempt,
        checkpoint_id: u64,
    },
    /// Sources of the attempt inject this barrier.
    TriggerCheckpoint {
        job_id: JobId,
        attempt: Attempt,
        barrier: Barrier,
    },
}

/// Everything a TaskManager needs to run its share of one attempt of a job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Deployment {
    pub job_id: JobId,
    pub attempt: Attempt,
    /// The compiled plan (`plan_file` bytes).
    pub plan: Vec<u8>,
    /// `placement[vertex][subtask]`: the data address of the TaskManager
    /// that runs that subtask.
    pub placement: Vec<Vec<String>>,
    /// The subtasks to run here.
    pub local: Vec<SubtaskId>,
    /// Kafka partitions of each source subtask: (subtask, partitions).
    pub splits: Vec<(SubtaskId, Vec<i32>)>,
    /// The checkpoint or savepoint directory to restore keyed state from.
    pub restore: Option<String>,
    /// Restored source positions per source subtask.
    pub positions: Vec<(SubtaskId, SourceState)>,
}

#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    #[error("connection closed")]
    Closed,
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    #[error("frame of {0} bytes is larger than allowed")]
    TooLarge(usize),
    #[error("malformed message: {0}")]
    Malformed(String),
}

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_FRAME>()
}

/// Encodes one message as a frame: u32 length (big endian) + bincode.
pub fn encode<T: Serialize>(msg: &T) -> Result<Vec<u8>, RpcError> {
    let body = bincode::serde::encode_to_vec(msg, config()).map_err(|e| RpcError::Malformed(e.to_string()))?;
    let mut out = Vec::with_capacity(body.len() + 4);
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

pub async fn write_frame<W: AsyncWriteExt + Unpin, T: Serialize>(w: &mut W, msg: &T) -> Result<(), RpcError> {
    let frame = encode(msg)?;
    w.write_all(&frame).await?;
    w.flush().await?;
    Ok(())
}

pub async fn read_frame<R: AsyncReadExt + Unpin, T: for<'de> Deserialize<'de>>(r: &mut R) -> Result<T, RpcError> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(RpcError::Closed),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(RpcError::TooLarge(len));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await?;
    let (msg, _) =
        bincode::serde::decode_from_slice(&body, config()).map_err(|e| RpcError::Malformed(e.to_string()))?;
    Ok(msg)
}
