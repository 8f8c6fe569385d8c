//! Sources and sinks: where records enter and leave a job.
//!
//! A source MUST hand out records in batches (of its schema's columns)
//! through [`SourceReader::poll`]
//! and MUST NOT block longer than the timeout it is given, so that the task
//! can run timers and notice cancellation. A sink MUST have written every
//! record it was given once `flush` returns (at-least-once).

pub mod bad_records;
pub mod datagen;
pub mod dead_letter_files;
pub mod file_source;
pub mod files;
pub mod kafka;
pub mod kafka_exactly_once;
pub mod kafka_keys;
pub mod kafka_metadata;
pub mod kafka_sink;
pub mod kafka_topics;
pub mod message_size;
pub mod nexmark;
pub mod sink_errors;
pub mod topic_limits;
pub mod upsert_kafka;

use crate::checkpoint::SourceState;
use crate::data::Batch;
use crate::record::Signal;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    #[error("Kafka ({servers}): {message}")]
    Kafka { servers: String, message: String },
    #[error("{0}")]
    Io(String),
    /// A bad record under `on_error: fail`.
    #[error("{0}")]
    BadRecord(String),
}

/// What a source has for the task.
#[derive(Debug)]
pub enum SourcePoll {
    Records(Batch),
    Signal(Signal),
    /// Nothing within the timeout.
    Nothing,
    /// A bounded source is done.
    End,
}

pub trait SourceReader: Send {
    fn poll(&mut self, timeout: Duration) -> Result<SourcePoll, ConnectorError>;

    /// Where the source would continue after a restore, for checkpoint
    /// `checkpoint_id`: it covers exactly the records handed out so far.
    fn snapshot(&mut self, _checkpoint_id: u64) -> SourceState {
        SourceState::None
    }

    /// Checkpoint `checkpoint_id` completed (savepoints too): what the
    /// source tells the world outside about its progress happens here, and
    /// only here (a Kafka source commits the group's offsets, as Flink's
    /// does on `notifyCheckpointComplete`). Before, a restore from an older
    /// checkpoint would find the group ahead of the state it restores.
    fn checkpoint_complete(&mut self, _checkpoint_id: u64) {}

    /// Each partition's watermark, idleness and lag (a Kafka source), for
    /// the watermark-lineage view; read every 200 ms.
    fn partitions(&mut self) -> Vec<crate::metrics::PartitionLineage> {
        Vec::new()
    }

    /// Before [`SourceReader::snapshot`] and at the end: what the source
    /// wrote on the side (dead letters) MUST be delivered when this returns.
    fn flush(&mut self) -> Result<(), ConnectorError> {
        Ok(())
    }
}

pub trait SinkWriter: Send {
    fn write(&mut self, batch: &Batch) -> Result<(), ConnectorError>;
    /// Everything written so far is delivered when this returns.
    fn flush(&mut self) -> Result<(), ConnectorError>;

    /// At checkpoint barrier `checkpoint_id`: an at-least-once sink MUST
    /// have delivered everything written so far; an exactly-once sink MUST
    /// return every record written but not yet committed, for the checkpoint.
    fn snapshot(&mut self, _checkpoint_id: u64) -> Result<Vec<u8>, ConnectorError> {
        self.flush()?;
        Ok(Vec::new())
    }

    /// Checkpoint `checkpoint_id` is complete: an exactly-once sink MUST
    /// now commit what it snapshotted up to it.
    fn checkpoint_complete(&mut self, _checkpoint_id: u64) -> Result<(), ConnectorError> {
        Ok(())
    }

    /// Before any write: the states [`SinkWriter::snapshot`] returned, of the
    /// old subtasks that map to this one, from a completed checkpoint.
    fn restore(&mut self, _states: Vec<Vec<u8>>) -> Result<(), ConnectorError> {
        Ok(())
    }
}
