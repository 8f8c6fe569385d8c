//! The Kafka source's read path: a message, from the consumer queue or a
//! batch of the batch queue (`flowc-kafka-batch`), decoded into the batch
//! being built, with its partition's offset and event-time clock moved on.

use super::{KafkaSourceReader, BATCH};
use crate::codec::DecodeError;
use crate::connectors::kafka_metadata::TimeSource;
use crate::connectors::ConnectorError;
use crate::data::Data;
use crate::metrics::RecordPosition;
use flowc_kafka_batch::{Batch as RawBatch, BatchQueue};
use rdkafka::message::BorrowedMessage;
use std::time::{Duration, Instant};

/// Where a message was read from.
#[derive(Clone, Copy)]
pub(super) struct At<'a> {
    pub(super) topic: &'a str,
    pub(super) partition: i32,
    pub(super) offset: i64,
}

impl KafkaSourceReader {
    /// Decodes one message into `batch` and moves its partition's offset and
    /// event-time clock on; an undecodable one goes to the `on_error` policy.
    /// `msg` is the `rdkafka` message where metadata columns need it.
    pub(super) fn take(
        &mut self,
        payload: Option<&[u8]>,
        at: At<'_>,
        timestamp: Option<i64>,
        msg: Option<&BorrowedMessage<'_>>,
        batch: &mut crate::data::Batch,
        future_limit: i64,
    ) -> Result<(), ConnectorError> {
        let clock = self.partitions.iter_mut().find(|((t, q), _)| *q == at.partition && t == at.topic).map(|(_, c)| c);
        // A message without a value on a `versioned by` stream deletes its key.
        let mut decoded = match (payload, &mut self.tombstones, msg) {
            (None, Some(t), Some(msg)) => t.push(msg, batch),
            // `raw` reads it as a null (Flink's raw format), the others as an empty value.
            (None, _, _) => self.decoder.decode_absent_into(batch),
            (Some(p), _, _) => self.decoder.decode_into(p, batch),
        };
        if let (Ok(()), Some(m), Some(msg)) = (&decoded, &mut self.metadata, msg) {
            if let Err(e) = m.push(msg) {
                batch.truncate(batch.len().saturating_sub(1));
                if let Some(t) = &mut self.tombstones {
                    t.truncate(batch.len());
                }
                decoded = Err(DecodeError(e));
            }
        }
        match decoded {
            Ok(()) => {
                if let Some(o) = &mut self.origins {
                    o.push_kafka(at.topic, at.partition, at.offset, payload.unwrap_or(&[]));
                }
                if let Some(c) = clock {
                    c.next = Some(at.offset + 1);
                    let ts = match self.time {
                        TimeSource::Payload(f) => match batch.columns.get(f).map(|c| &c.data) {
                            Some(Data::I64(v)) => v.last().copied(),
                            _ => None,
                        },
                        TimeSource::KafkaTimestamp => timestamp,
                        TimeSource::None => None,
                    };
                    if let Some(ts) = ts {
                        if ts <= future_limit {
                            c.max_ts = c.max_ts.max(ts);
                        }
                        // Stamped once per batch: a clock read per record costs.
                        c.seen = true;
                    }
                }
                Ok(())
            }
            Err(e) => {
                if let Some(c) = clock {
                    c.next = Some(at.offset + 1);
                }
                let position =
                    RecordPosition::Kafka { topic: at.topic.to_string(), partition: at.partition, offset: at.offset };
                self.bad.decode_error(payload.unwrap_or(&[]), &e.0, position, timestamp)
            }
        }
    }

    /// Reads what the batch queue has (waiting up to `wait` for it), up to
    /// a full `batch`.
    pub(super) fn take_batch(
        &mut self,
        queue: &mut BatchQueue,
        raw: &mut RawBatch,
        wait: Duration,
        batch: &mut crate::data::Batch,
        bytes: &mut u64,
        future_limit: i64,
    ) -> Result<(), ConnectorError> {
        for m in queue.read(wait, BATCH - batch.len().min(BATCH), raw) {
            if let Err(code) = m.error() {
                self.consumer_error(&rdkafka::error::KafkaError::MessageConsumption(code));
                continue;
            }
            let payload = m.payload();
            *bytes += payload.map_or(0, |p| p.len() as u64);
            let at = At { topic: m.topic(), partition: m.partition(), offset: m.offset() };
            self.take(payload, at, m.timestamp_ms(), None, batch, future_limit)?;
        }
        // Decoded: no need to hold librdkafka's fetch buffers until the next poll.
        raw.clear();
        Ok(())
    }

    /// Logs a consumer error at most every 10 s: librdkafka retries.
    pub(super) fn consumer_error(&mut self, e: &rdkafka::error::KafkaError) {
        if self.last_error_log.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
            self.last_error_log = Some(Instant::now());
            tracing::warn!(servers = %self.servers, error = %e, "Kafka consumer error; librdkafka retries.");
        }
    }
}
