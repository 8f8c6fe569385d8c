//! Checkpoints and savepoints: barriers, the on-disk formats, where they
//! are kept ([`storage`]), how a restore picks one ([`fallback`]) and the
//! TaskManager's restore. The JobManager's coordination of them lives in
//! `jobmanager/coordinator.rs`.
//!
//! ```text
//!  coordinator ──trigger──▶ sources: snapshot offsets, emit barrier n
//!                             │ (in band, after every record before it)
//!                             ▼
//!                   each task aligns barrier n over its inputs, snapshots
//!                   its operators per key group into one state file, acks
//!  coordinator ◀──ack── every task ── all acked: write `_metadata`, complete,
//!                                     notify sinks, keep the last num-retained
//! ```
//!
//! Layout: `<state.checkpoints.dir>/<job-id>/chk-<n>/` and
//! `<state.savepoints.dir>/savepoint-<6 hex of job id>-<12 hex>/`, each
//! with a `_metadata` file and one state file per subtask that has state;
//! a directory on a file system, a prefix in an S3 bucket (`s3://`).

pub mod fallback;
pub mod format;
pub mod restore;
pub mod state_file;
pub mod storage;

use format::CheckpointMetadata;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// A completed checkpoint or savepoint as the JobManager keeps it: its id
/// and where it is. This is what high availability persists; the metadata
/// is read again (and validated) when the job restores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointRef {
    pub id: u64,
    pub dir: PathBuf,
    pub savepoint: bool,
}

impl CheckpointRef {
    /// "checkpoint 7 (file:/…/chk-7)" or "savepoint 7 (s3://…)".
    pub fn describe(&self) -> String {
        let kind = if self.savepoint { "savepoint" } else { "checkpoint" };
        format!("{kind} {} ({})", self.id, self.location())
    }

    /// Its location as Flink prints one: `file:<dir>` or `s3://bucket/key`.
    pub fn location(&self) -> String {
        storage::location_uri(&self.dir)
    }
}

/// A checkpoint or savepoint validated for a restore, with its metadata as
/// read from storage.
#[derive(Debug, Clone)]
pub struct RestorePoint {
    pub checkpoint: CheckpointRef,
    pub metadata: CheckpointMetadata,
}

/// A checkpoint barrier: everything a channel carried before it belongs to
/// checkpoint `id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Barrier {
    pub id: u64,
    /// Where every task writes its state file for this checkpoint.
    pub dir: String,
    pub savepoint: bool,
    /// Stop-with-savepoint: sources emit nothing after this barrier. With
    /// `drain`, they first emit the final watermark so that every window fires.
    pub stop: Option<StopMode>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StopMode {
    pub drain: bool,
}

/// What a source's state is: where it continues after a restore.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SourceState {
    #[default]
    None,
    /// Next offset to read per partition of `topic`.
    Kafka { topic: String, offsets: Vec<(i32, i64)> },
    /// The next record index of a datagen subtask, or the next event number
    /// of a nexmark subtask.
    Datagen { next: u64 },
    /// How far a file source's subtask has read each of its files.
    Files { files: Vec<FileProgress> },
    /// Next offset to read per (topic, partition), of a Kafka source of
    /// several topics (`topics`, `topic_pattern`). Last, so that states
    /// written before it was added still read.
    KafkaTopics { offsets: Vec<(String, i32, i64)> },
}

impl SourceState {
    /// The Kafka offsets of this state as (topic, partition, offset),
    /// whichever variant holds them.
    pub fn kafka_offsets(&self) -> Vec<(String, i32, i64)> {
        match self {
            SourceState::Kafka { topic, offsets } => offsets.iter().map(|(p, o)| (topic.clone(), *p, *o)).collect(),
            SourceState::KafkaTopics { offsets } => offsets.clone(),
            _ => Vec::new(),
        }
    }
}

/// How far one file of a file source is read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileProgress {
    /// The file's path as listed (`<source path>/<name>`).
    pub file: String,
    /// The byte offset of the next line to read.
    pub offset: u64,
    /// Lines read so far (a header included).
    pub lines: u64,
    /// Read to its end.
    pub done: bool,
}
