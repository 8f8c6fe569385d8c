//! The control protocol between the JobManager and the TaskManagers:
//! length-prefixed bincode frames over TCP.
//!
//! A TaskManager connects to `jobmanager.rpc.port` (over mutual TLS when
//! `security.ssl.internal.enabled`), sends `Register`, then heartbeats every
//! `heartbeat.interval`; the JobManager deploys and cancels tasks over the
//! same connection. Either side treats a closed connection as the loss of
//! the other.
//!
//! Registration, step by step:
//!
//! ```text
//!  TaskManager                                   JobManager
//!   Register { protocol, tm_id, instance, nonce_tm, … } ──▶  protocol checked first
//!                                   ◀── Challenge { nonce_jm }   (only with a cluster secret)
//!   Proof { HMAC(secret, nonce_jm ‖ Register) } ──▶  checked in constant time
//!          ◀── Registered { proof: HMAC(secret, nonce_tm ‖ nonce_jm) }  or  Refused { reason }
//! ```
//!
//! A refused TaskManager logs the reason and exits: the protocol version,
//! the secret and a live TaskManager holding its id do not change by
//! retrying. The frame layout keeps `Register` first among the messages to
//! the JobManager and `protocol` first in it, and `Refused` second among the
//! messages to a TaskManager, so that peers of any version tell each other
//! the versions differ.

use crate::checkpoint::format::TaskEntry;
use crate::checkpoint::{Barrier, SourceState};
use crate::ha::LeaderSessionId;
use crate::ids::{Attempt, JobId, SubtaskId, TaskStatus};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Bumped whenever a message changes; peers of another version are refused.
/// Version 2: registration carries the process's instance id and a nonce,
/// and the cluster secret is proven by challenge–response; a task's
/// failure carries its kind (a corrupt checkpoint is told apart).
/// Version 3: TaskManagers fetch UDF artifacts (`FetchBlob`, `Blob`).
/// Version 4 (one bump for the changes of issues 11 and 13): a task's
/// metrics carry its bad-record counters and samples, its late side-output
/// count, its busy / idle / back-pressured time, rates, queue use and
/// lineage; heartbeats carry the process's metrics; the JobManager asks a
/// TaskManager for its logs and threads (`Ask`, `Answer`).
/// Version 5: JobManager high availability: the registration names the
/// leader session the TaskManager found in ZooKeeper and `Registered` the
/// JobManager's; every command of the JobManager (deploy, cancel, trigger,
/// commit) carries its leader session id, and a TaskManager refuses the
/// commands of any other session ([`ToTaskManager::leader_session`]).
/// Version 6: a task's metrics carry `numRecordsEncodeErrors`
/// (`TaskMetrics::encode_errors`), and a deployed plan a Kafka sink's
/// `on_error`.
pub const PROTOCOL_VERSION: u32 = 6;
/// No control message is this large; a bigger length means a confused peer.
pub const MAX_FRAME: usize = 64 * 1024 * 1024;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ToJobManager {
    Register(Registration),
    Heartbeat {
        metrics: Vec<TaskMetrics>,
        /// The TaskManager process's memory, CPU and threads.
        process: crate::process::ProcessMetrics,
    },
    TaskUpdate(TaskUpdate),
    Checkpoint(CheckpointAck),
    /// The answer to a `Challenge`: HMAC-SHA256(secret, the JobManager's
    /// nonce ‖ the bytes of the `Register` message).
    Proof {
        proof: crate::security::secret::Proof,
    },
    /// The UDF artifact with this digest, for a deployment that needs it.
    FetchBlob {
        digest: String,
    },
    /// The answer to `Ask` number `request_id`.
    Answer {
        request_id: u64,
        answer: crate::diagnostics::ProcessAnswer,
    },
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
    /// Made at random when the process starts: tells a TaskManager that
    /// registers again after losing its connection (the same instance)
    /// from another process that uses the same `tm_id`.
    pub instance: String,
    /// The TaskManager's challenge to the JobManager (with a cluster secret).
    pub nonce: crate::security::secret::Nonce,
    /// With ZooKeeper: the leader session of the leader it found; a
    /// JobManager that does not lead in that session does not take it.
    pub leader_session: Option<LeaderSessionId>,
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
    pub metrics: Option<Box<TaskMetrics>>,
}

/// A task failure the JobManager treats specially.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum FailureKind {
    #[default]
    Other,
    /// The checkpoint or savepoint it restored from is corrupt or lacks a
    /// file: the JobManager skips it from then on.
    CorruptState,
    /// A channel to or from another subtask closed under it: the
    /// consequence of that subtask's failure (or its TaskManager's loss),
    /// not a cause. The JobManager names the real cause as the job's root
    /// exception when it arrives.
    Consequence,
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
            expression_errors: C::get(&c.expression_errors),
            encode_errors: C::get(&c.encode_errors),
            dead_lettered: C::get(&c.dead_lettered),
            from_the_future: C::get(&c.from_the_future),
            error_samples: c.error_samples(),
            late_records: C::get(&c.late_records),
            late_side_output: C::get(&c.late_side_output),
            watermark: (wm != i64::MIN).then_some(wm),
            ..TaskMetrics::default()
        }
    }

    /// A snapshot with everything the heartbeat reports: the counters, the
    /// time accounting, `rates` over the last seconds and the lineage.
    pub fn full(
        job_id: JobId,
        attempt: Attempt,
        subtask: SubtaskId,
        c: &crate::metrics::TaskCounters,
        rates: crate::metrics::Rates,
    ) -> TaskMetrics {
        use std::sync::atomic::Ordering::Relaxed;
        let opt = |v: i64| (v != i64::MIN).then_some(v);
        let wall_ms = c.started.elapsed().as_millis() as u64;
        let idle_ms = c.idle_ns.load(Relaxed) / 1_000_000;
        let backpressured_ms = c.backpressured_ns.load(Relaxed) / 1_000_000;
        TaskMetrics {
            idle_ms,
            backpressured_ms,
            busy_ms: wall_ms.saturating_sub(idle_ms + backpressured_ms),
            rates,
            output_watermark: opt(c.output_watermark.load(Relaxed)),
            in_pool_usage: c.in_pool_permille.load(Relaxed) as f32 / 1000.0,
            out_pool_usage: c.out_pool_permille.load(Relaxed) as f32 / 1000.0,
            last_late_timestamp: opt(c.last_late_ts.load(Relaxed)),
            watermark_at_last_late: opt(c.last_late_watermark.load(Relaxed)),
            lineage: c.lineage(),
            ..TaskMetrics::of(job_id, attempt, subtask, c)
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
    /// Records an expression failed on, skipped or dead-lettered.
    pub expression_errors: u64,
    /// Records a sink could not write, failed, skipped or dead-lettered.
    #[serde(default)]
    pub encode_errors: u64,
    /// Records written to a dead-letter topic.
    pub dead_lettered: u64,
    /// Records with an event time too far ahead (`max_future`).
    pub from_the_future: u64,
    /// The latest bad records (at most `metrics::ERROR_SAMPLES`), oldest first.
    pub error_samples: Vec<crate::metrics::ErrorSample>,
    /// Records dropped because their window had already fired.
    pub late_records: u64,
    /// Late records sent to a window's late output instead.
    #[serde(default)]
    pub late_side_output: u64,
    /// The task's current input watermark, if any.
    pub watermark: Option<i64>,
    /// The watermark it last sent on, if any.
    pub output_watermark: Option<i64>,
    /// Milliseconds busy, idle and back-pressured since the task started.
    pub busy_ms: u64,
    pub idle_ms: u64,
    pub backpressured_ms: u64,
    /// Per-second rates over the last seconds (zero in a task's final report).
    pub rates: crate::metrics::Rates,
    /// Input and output queue fill, 0 to 1.
    pub in_pool_usage: f32,
    pub out_pool_usage: f32,
    /// The last late record's timestamp and the watermark it met.
    pub last_late_timestamp: Option<i64>,
    pub watermark_at_last_late: Option<i64>,
    pub lineage: crate::metrics::Lineage,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ToTaskManager {
    Registered {
        tm_id: String,
        /// With a cluster secret: HMAC-SHA256(secret, the TaskManager's
        /// nonce ‖ the JobManager's nonce), so the TaskManager knows it
        /// talks to its cluster's JobManager.
        proof: Option<crate::security::secret::Proof>,
        /// The JobManager's leader session (with ZooKeeper): the only one
        /// whose commands the TaskManager carries out from now on.
        leader_session: Option<LeaderSessionId>,
    },
    /// Stays the second message: TaskManagers of other versions read it.
    Refused {
        reason: String,
    },
    Deploy(Box<Deployment>),
    Cancel {
        job_id: JobId,
        attempt: Attempt,
        leader_session: Option<LeaderSessionId>,
    },
    /// Checkpoint `checkpoint_id` is complete: exactly-once sinks commit.
    CheckpointComplete {
        job_id: JobId,
        attempt: Attempt,
        checkpoint_id: u64,
        leader_session: Option<LeaderSessionId>,
    },
    /// Sources of the attempt inject this barrier.
    TriggerCheckpoint {
        job_id: JobId,
        attempt: Attempt,
        barrier: Barrier,
        leader_session: Option<LeaderSessionId>,
    },
    /// The TaskManager must prove it knows the cluster secret.
    Challenge {
        nonce: crate::security::secret::Nonce,
    },
    /// The answer to `FetchBlob`: the artifact, or why the JobManager
    /// cannot give it.
    Blob {
        digest: String,
        result: Result<Vec<u8>, String>,
    },
    /// A question about the TaskManager process (its logs, its threads),
    /// for REST; answered with `Answer` and the same `request_id`.
    Ask {
        request_id: u64,
        request: crate::diagnostics::ProcessRequest,
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
    /// The leader session of the JobManager that deploys (set by its shell).
    pub leader_session: Option<LeaderSessionId>,
}

impl ToTaskManager {
    /// The leader session a command of the JobManager was sent in; `None`
    /// for the messages that are not such commands (registration, blobs,
    /// questions), which are not fenced.
    pub fn leader_session(&self) -> Option<Option<LeaderSessionId>> {
        match self {
            ToTaskManager::Deploy(d) => Some(d.leader_session),
            ToTaskManager::Cancel { leader_session, .. }
            | ToTaskManager::CheckpointComplete { leader_session, .. }
            | ToTaskManager::TriggerCheckpoint { leader_session, .. } => Some(*leader_session),
            ToTaskManager::Registered { .. }
            | ToTaskManager::Refused { .. }
            | ToTaskManager::Challenge { .. }
            | ToTaskManager::Blob { .. }
            | ToTaskManager::Ask { .. } => None,
        }
    }
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
    /// Leader retrieval saw another JobManager lead (or none).
    #[error("another JobManager leads now")]
    LeaderChanged,
}

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_FRAME>()
}

/// The bincode body of one message.
pub fn encode_body<T: Serialize>(msg: &T) -> Result<Vec<u8>, RpcError> {
    bincode::serde::encode_to_vec(msg, config()).map_err(|e| RpcError::Malformed(e.to_string()))
}

/// Encodes one message as a frame: u32 length (big endian) + bincode.
pub fn encode<T: Serialize>(msg: &T) -> Result<Vec<u8>, RpcError> {
    Ok(frame(&encode_body(msg)?))
}

/// A frame around an encoded body.
pub fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 4);
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(body);
    out
}

pub fn decode<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, RpcError> {
    let (msg, _) = bincode::serde::decode_from_slice(body, config()).map_err(|e| RpcError::Malformed(e.to_string()))?;
    Ok(msg)
}

/// The protocol version of a `Register` message of any version: the
/// message's variant (0) and its first field, read without decoding the rest.
pub fn registration_protocol(body: &[u8]) -> Option<u32> {
    match bincode::serde::decode_from_slice::<(u32, u32), _>(body, config()) {
        Ok(((0, protocol), _)) => Some(protocol),
        _ => None,
    }
}

pub async fn write_frame<W: AsyncWriteExt + Unpin, T: Serialize>(w: &mut W, msg: &T) -> Result<(), RpcError> {
    write_body(w, &encode_body(msg)?).await
}

pub async fn write_body<W: AsyncWriteExt + Unpin>(w: &mut W, body: &[u8]) -> Result<(), RpcError> {
    w.write_all(&frame(body)).await?;
    w.flush().await?;
    Ok(())
}

pub async fn read_frame<R: AsyncReadExt + Unpin, T: for<'de> Deserialize<'de>>(r: &mut R) -> Result<T, RpcError> {
    decode(&read_body(r).await?)
}

/// The body of the next frame.
pub async fn read_body<R: AsyncReadExt + Unpin>(r: &mut R) -> Result<Vec<u8>, RpcError> {
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
    Ok(body)
}
