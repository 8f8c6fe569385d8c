//! Apache Kafka, through librdkafka.
//!
//! Source: the JobManager assigns partitions to source subtasks (no
//! consumer-group rebalancing); each subtask reads its partitions from the
//! starting offsets and decodes JSON by the job's schema straight into the
//! columns of a batch (`codec::json`). An undecodable
//! record is counted and skipped. When the job puts a watermark stage right
//! after the source, watermarks are generated per partition here (as
//! Flink's KafkaSource does): the source's watermark is the minimum over its
//! partitions that are not idle, so a partition read ahead during catch-up
//! cannot make another partition's records late.
//!
//! Sink (at-least-once): idempotent producer, `acks=all`; `flush` returns
//! only when every record handed to it is acknowledged.

use super::bad_records::BadRecords;
use super::{ConnectorError, SinkWriter, SourcePoll, SourceReader};
use crate::checkpoint::SourceState;
use crate::codec::{Decoder, Encoder};
use crate::data::{Batch, Data};
use crate::metrics::{RecordPosition, TaskCounters};
use crate::record::Signal;
use flowc_compiler::ir::{KafkaSink, KafkaSource, StartingOffsets, WatermarkSpec};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BATCH: usize = 1024;
/// How often a job without checkpoints commits its read offsets to the
/// consumer group (Kafka's `auto.commit.interval.ms` default).
const AUTO_COMMIT_INTERVAL: Duration = Duration::from_secs(5);
/// How often watermarks are emitted (Flink's `pipeline.auto-watermark-interval`).
const WATERMARK_INTERVAL: Duration = Duration::from_millis(200);

fn kafka_err(servers: &str, e: impl std::fmt::Display) -> ConnectorError {
    ConnectorError::Kafka { servers: servers.to_string(), message: e.to_string() }
}

/// The number of partitions of `topic`, asking the brokers within `timeout`.
pub fn partition_count(servers: &str, topic: &str, timeout: Duration) -> Result<i32, ConnectorError> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", servers)
        .set("socket.timeout.ms", "5000")
        .create()
        .map_err(|e| kafka_err(servers, e))?;
    let md = consumer
        .fetch_metadata(Some(topic), timeout)
        .map_err(|e| kafka_err(servers, format!("cannot reach the brokers: {e}")))?;
    let Some(t) = md.topics().iter().find(|t| t.name() == topic) else {
        return Err(kafka_err(servers, format!("topic `{topic}` does not exist")));
    };
    if let Some(err) = t.error() {
        return Err(kafka_err(servers, format!("topic `{topic}`: {:?}", RDKafkaErrorCode::from(err))));
    }
    Ok(t.partitions().len() as i32)
}

struct PartitionClock {
    max_ts: i64,
    /// The offset of the next record to hand out, once known.
    next: Option<i64>,
    /// A record came in the batch being read.
    seen: bool,
    last_record: Instant,
}

pub struct KafkaSourceReader {
    servers: String,
    topic: String,
    consumer: BaseConsumer,
    decoder: Decoder,
    watermark: Option<WatermarkSpec>,
    partitions: Vec<(i32, PartitionClock)>,
    last_watermark: i64,
    idle: bool,
    last_emit: Instant,
    counters: Arc<TaskCounters>,
    last_error_log: Option<Instant>,
    /// The `on_error` policy for undecodable records.
    bad: BadRecords,
    /// Without checkpoints: commit offsets every [`AUTO_COMMIT_INTERVAL`].
    auto_commit: Option<Instant>,
    /// `bounded: latest`: the end offset of each partition.
    ends: Vec<(i32, i64)>,
    bounded: bool,
}

impl KafkaSourceReader {
    /// Reads `partitions` of the topic, each from its restored offset where
    /// `restored` has one, else from the job's starting offsets.
    pub fn new(
        spec: &KafkaSource,
        operator: &str,
        partitions: &[i32],
        restored: &[(i32, i64)],
        watermark: Option<WatermarkSpec>,
        counters: Arc<TaskCounters>,
        checkpointing: bool,
    ) -> Result<KafkaSourceReader, ConnectorError> {
        let reset = match spec.offsets {
            StartingOffsets::Latest => "latest",
            _ => "earliest",
        };
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &spec.servers)
            .set("group.id", &spec.group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", reset)
            .set("isolation.level", "read_committed")
            .set("fetch.wait.max.ms", "50")
            // librdkafka pauses fetching for fetch.queue.backoff.ms (1 s) whenever
            // its prefetch queue is full: a fast reader would idle. The queue
            // stays small (4 MiB per partition) to keep memory flat.
            .set("fetch.queue.backoff.ms", "5")
            .set("queued.max.messages.kbytes", "4096")
            // One fetch response is at most 4 MiB (librdkafka's default is
            // 50 MiB), which bounds the receive buffers too.
            .set("fetch.max.bytes", "4194304")
            .create()
            .map_err(|e| kafka_err(&spec.servers, e))?;
        // `committed`: the group's offsets, read here with retries rather
        // than left to librdkafka (`Offset::Stored`), which gives up on a
        // partition for good when the group coordinator is not ready.
        let unrestored: Vec<i32> =
            partitions.iter().copied().filter(|p| !restored.iter().any(|(q, _)| q == p)).collect();
        let committed = match spec.offsets {
            StartingOffsets::Committed if !unrestored.is_empty() => {
                committed_offsets(&consumer, &spec.servers, &spec.group, &spec.topic, &unrestored)?
            }
            _ => Vec::new(),
        };
        let start = match spec.offsets {
            StartingOffsets::Latest => Offset::End,
            // Committed falls back to the earliest where the group has no offset.
            StartingOffsets::Earliest | StartingOffsets::Committed => Offset::Beginning,
        };
        let mut tpl = TopicPartitionList::new();
        for p in partitions {
            let known = restored.iter().chain(&committed).find(|(q, _)| q == p);
            let from = known.map_or(start, |(_, o)| Offset::Offset(*o));
            tpl.add_partition_offset(&spec.topic, *p, from).map_err(|e| kafka_err(&spec.servers, e))?;
        }
        consumer.assign(&tpl).map_err(|e| kafka_err(&spec.servers, e))?;
        // Bounded: where each partition ends, and where reading starts if
        // it is not known yet (so that an empty range ends at once).
        let mut ends = Vec::new();
        let mut starts: Vec<(i32, i64)> = restored.to_vec();
        if spec.bounded {
            for p in partitions {
                let (low, high) = consumer
                    .fetch_watermarks(&spec.topic, *p, Duration::from_secs(10))
                    .map_err(|e| kafka_err(&spec.servers, format!("reading the end of partition {p}: {e}")))?;
                ends.push((*p, high));
                if starts.iter().any(|(q, _)| q == p) {
                    continue;
                }
                let from = match spec.offsets {
                    StartingOffsets::Latest => high,
                    StartingOffsets::Earliest => low,
                    StartingOffsets::Committed => committed.iter().find(|(q, _)| q == p).map_or(low, |(_, o)| *o),
                };
                starts.push((*p, from));
            }
        }
        let now = Instant::now();
        let bad = BadRecords::new(&spec.on_error, operator, counters.clone())?;
        Ok(KafkaSourceReader {
            bad,
            servers: spec.servers.clone(),
            consumer,
            decoder: Decoder::new(&spec.schema, &spec.format),
            watermark,
            ends,
            bounded: spec.bounded,
            partitions: partitions
                .iter()
                .map(|p| {
                    let next = starts.iter().find(|(q, _)| q == p).map(|(_, o)| *o);
                    (*p, PartitionClock { max_ts: i64::MIN, last_record: now, next, seen: false })
                })
                .collect(),
            topic: spec.topic.clone(),
            last_watermark: i64::MIN,
            idle: false,
            last_emit: now,
            counters,
            last_error_log: None,
            auto_commit: (!checkpointing).then(Instant::now),
        })
    }

    /// Commits the offsets read so far to the consumer group, in the
    /// background: where a restart without a checkpoint, or a new job with
    /// `offsets: committed`, continues.
    fn commit(&self, offsets: &[(i32, i64)]) {
        let mut tpl = TopicPartitionList::new();
        for (p, o) in offsets {
            if tpl.add_partition_offset(&self.topic, *p, Offset::Offset(*o)).is_err() {
                return;
            }
        }
        if tpl.count() > 0 {
            if let Err(e) = self.consumer.commit(&tpl, rdkafka::consumer::CommitMode::Async) {
                tracing::debug!(servers = %self.servers, error = %e, "Committing offsets failed; the next commit retries.");
            }
        }
    }

    /// `bounded`: every partition is read up to its end offset. The
    /// consumer's position counts too: it moves past the transaction
    /// markers at the end of a partition, which are never handed out.
    fn at_end(&self) -> bool {
        let position =
            if self.partitions.iter().any(|(_, c)| c.next.is_some()) { self.consumer.position().ok() } else { None };
        self.partitions.iter().all(|(p, c)| {
            let Some((_, end)) = self.ends.iter().find(|(q, _)| q == p) else { return true };
            let pos =
                position.as_ref().and_then(|t| t.find_partition(&self.topic, *p)).and_then(|e| match e.offset() {
                    Offset::Offset(o) => Some(o),
                    _ => None,
                });
            c.next.is_some_and(|n| n >= *end) || pos.is_some_and(|o| o >= *end)
        })
    }

    fn read_offsets(&self) -> Vec<(i32, i64)> {
        self.partitions.iter().filter_map(|(p, c)| c.next.map(|n| (*p, n))).collect()
    }

    /// The watermark over the partitions that are not idle, or `None` if all are.
    fn current_watermark(&self, spec: &WatermarkSpec) -> Option<i64> {
        let now = Instant::now();
        let active = self.partitions.iter().filter(|(_, c)| match spec.idleness_ms {
            Some(idle) => now.duration_since(c.last_record) < Duration::from_millis(idle),
            None => true,
        });
        let mut min: Option<i64> = None;
        for (_, c) in active {
            let wm = if c.max_ts == i64::MIN {
                i64::MIN
            } else {
                c.max_ts.saturating_sub(spec.out_of_orderness_ms as i64).saturating_sub(1)
            };
            min = Some(min.map_or(wm, |m: i64| m.min(wm)));
        }
        min
    }

    fn watermark_signal(&mut self) -> Option<Signal> {
        let spec = self.watermark.clone()?;
        if self.last_emit.elapsed() < WATERMARK_INTERVAL {
            return None;
        }
        self.last_emit = Instant::now();
        match self.current_watermark(&spec) {
            None if !self.idle => {
                self.idle = true;
                Some(Signal::Idle)
            }
            None => None,
            Some(_) if self.idle => {
                self.idle = false;
                Some(Signal::Active)
            }
            Some(wm) if wm > self.last_watermark => {
                self.last_watermark = wm;
                Some(Signal::Watermark(wm))
            }
            Some(_) => None,
        }
    }
}

impl SourceReader for KafkaSourceReader {
    fn flush(&mut self) -> Result<(), ConnectorError> {
        self.bad.flush()
    }

    fn snapshot(&self) -> SourceState {
        let mut offsets = self.read_offsets();
        // The group's offsets follow the checkpoints (Flink commits them on completion).
        self.commit(&offsets);
        // A partition nothing was read from yet: where the consumer stands,
        // if it knows (a restored or committed offset), else its start rule.
        if offsets.len() < self.partitions.len() {
            if let Ok(pos) = self.consumer.position() {
                for e in pos.elements() {
                    if let Offset::Offset(o) = e.offset() {
                        if !offsets.iter().any(|(p, _)| *p == e.partition()) {
                            offsets.push((e.partition(), o));
                        }
                    }
                }
            }
        }
        offsets.sort_unstable();
        SourceState::Kafka { topic: self.topic.clone(), offsets }
    }

    fn poll(&mut self, timeout: Duration) -> Result<SourcePoll, ConnectorError> {
        if self.auto_commit.is_some_and(|t| t.elapsed() >= AUTO_COMMIT_INTERVAL) {
            self.auto_commit = Some(Instant::now());
            self.commit(&self.read_offsets());
        }
        if let Some(s) = self.watermark_signal() {
            return Ok(SourcePoll::Signal(s));
        }
        if self.bounded && self.at_end() {
            self.commit(&self.read_offsets());
            return Ok(SourcePoll::End);
        }
        if self.partitions.is_empty() {
            // A subtask without partitions is idle for good.
            if !self.idle {
                self.idle = true;
                return Ok(SourcePoll::Signal(Signal::Idle));
            }
            std::thread::sleep(timeout);
            return Ok(SourcePoll::Nothing);
        }
        let mut batch = self.decoder.batch(BATCH);
        let mut wait = timeout.min(WATERMARK_INTERVAL);
        let mut bytes = 0u64;
        let ts_field = self.watermark.as_ref().map(|w| w.field);
        while batch.len() < BATCH {
            let Some(result) = self.consumer.poll(wait) else { break };
            wait = Duration::ZERO;
            match result {
                Ok(msg) => {
                    let payload = msg.payload().unwrap_or(&[]);
                    bytes += payload.len() as u64;
                    let p = msg.partition();
                    let clock = self.partitions.iter_mut().find(|(id, _)| *id == p).map(|(_, c)| c);
                    match self.decoder.decode_into(payload, &mut batch) {
                        Ok(()) => {
                            if let Some(c) = clock {
                                c.next = Some(msg.offset() + 1);
                                let ts = ts_field.and_then(|f| match batch.columns.get(f).map(|c| &c.data) {
                                    Some(Data::I64(v)) => v.last().copied(),
                                    _ => None,
                                });
                                if let Some(ts) = ts {
                                    c.max_ts = c.max_ts.max(ts);
                                    // Stamped once per batch below: a clock read per record costs.
                                    c.seen = true;
                                }
                            }
                        }
                        Err(e) => {
                            if let Some(c) = clock {
                                c.next = Some(msg.offset() + 1);
                            }
                            let position = RecordPosition::Kafka {
                                topic: msg.topic().to_string(),
                                partition: p,
                                offset: msg.offset(),
                            };
                            self.bad.decode_error(payload, &e.0, position, msg.timestamp().to_millis())?;
                        }
                    }
                }
                Err(e) => {
                    if self.last_error_log.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                        self.last_error_log = Some(Instant::now());
                        tracing::warn!(servers = %self.servers, error = %e, "Kafka consumer error; librdkafka retries.");
                    }
                    break;
                }
            }
        }
        let now = Instant::now();
        for (_, c) in self.partitions.iter_mut().filter(|(_, c)| c.seen) {
            c.last_record = now;
            c.seen = false;
        }
        TaskCounters::add(&self.counters.bytes_in, bytes);
        if batch.is_empty() {
            return Ok(SourcePoll::Nothing);
        }
        Ok(SourcePoll::Records(batch))
    }
}

/// The offsets `group` has committed for `partitions` of `topic` (those it
/// has none for are left out). Retries while the group coordinator is
/// moving or loading; fails, naming the servers, if it stays unreachable.
fn committed_offsets(
    consumer: &BaseConsumer,
    servers: &str,
    group: &str,
    topic: &str,
    partitions: &[i32],
) -> Result<Vec<(i32, i64)>, ConnectorError> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last_error = String::new();
    while Instant::now() < deadline {
        let mut tpl = TopicPartitionList::new();
        for p in partitions {
            tpl.add_partition(topic, *p);
        }
        match consumer.committed_offsets(tpl, Duration::from_secs(10)) {
            Ok(list) => {
                let failed: Vec<String> =
                    list.elements().iter().filter_map(|e| e.error().err().map(|err| err.to_string())).collect();
                if failed.is_empty() {
                    return Ok(list
                        .elements()
                        .iter()
                        .filter_map(|e| match e.offset() {
                            Offset::Offset(o) if o >= 0 => Some((e.partition(), o)),
                            _ => None,
                        })
                        .collect());
                }
                last_error = failed.join("; ");
            }
            Err(e) => last_error = e.to_string(),
        }
        tracing::info!(group, error = %last_error, "The group's committed offsets are not readable yet; retrying.");
        std::thread::sleep(Duration::from_millis(500));
    }
    Err(kafka_err(servers, format!("cannot read the committed offsets of group `{group}` for `{topic}`: {last_error}")))
}

/// Hands one record to the producer, waiting while its queue is full:
/// backpressure from the brokers reaches the task.
pub fn send_waiting(
    producer: &ThreadedProducer<DeliveryErrors>,
    topic: &str,
    payload: &[u8],
) -> Result<(), KafkaError> {
    let mut record: BaseRecord<'_, (), [u8]> = BaseRecord::to(topic).payload(payload);
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                std::thread::sleep(Duration::from_millis(5));
            }
            Err((e, _)) => return Err(e),
        }
    }
}

/// Collects the first delivery failure, which fails the task.
#[derive(Default, Clone)]
pub struct DeliveryErrors(pub Arc<Mutex<Option<String>>>);

impl ClientContext for DeliveryErrors {}

impl ProducerContext for DeliveryErrors {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            let mut first = self.0.lock().unwrap_or_else(|p| p.into_inner());
            if first.is_none() {
                *first = Some(e.to_string());
            }
        }
    }
}

pub struct KafkaSinkWriter {
    servers: String,
    topic: String,
    producer: ThreadedProducer<DeliveryErrors>,
    errors: DeliveryErrors,
    encoder: Encoder,
    buf: Vec<u8>,
}

impl KafkaSinkWriter {
    pub fn new(spec: &KafkaSink, schema: &flowc_compiler::ir::Schema) -> Result<KafkaSinkWriter, ConnectorError> {
        let errors = DeliveryErrors::default();
        let producer: ThreadedProducer<DeliveryErrors> = ClientConfig::new()
            .set("bootstrap.servers", &spec.servers)
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("linger.ms", "5")
            .set("message.timeout.ms", "120000")
            .create_with_context(errors.clone())
            .map_err(|e| kafka_err(&spec.servers, e))?;
        Ok(KafkaSinkWriter {
            servers: spec.servers.clone(),
            topic: spec.topic.clone(),
            producer,
            errors,
            encoder: Encoder::new(schema, &spec.format),
            buf: Vec::with_capacity(256),
        })
    }

    fn check(&self) -> Result<(), ConnectorError> {
        match self.errors.0.lock().unwrap_or_else(|p| p.into_inner()).take() {
            Some(e) => Err(kafka_err(&self.servers, format!("delivery to `{}` failed: {e}", self.topic))),
            None => Ok(()),
        }
    }
}

impl SinkWriter for KafkaSinkWriter {
    fn write(&mut self, batch: &Batch) -> Result<(), ConnectorError> {
        self.check()?;
        for r in 0..batch.len() {
            self.buf.clear();
            self.encoder.encode_row(batch, r, &mut self.buf);
            send_waiting(&self.producer, &self.topic, &self.buf)
                .map_err(|e| kafka_err(&self.servers, format!("cannot produce to `{}`: {e}", self.topic)))?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), ConnectorError> {
        self.producer
            .flush(Duration::from_secs(120))
            .map_err(|e| kafka_err(&self.servers, format!("flushing `{}`: {e}", self.topic)))?;
        self.check()
    }
}
