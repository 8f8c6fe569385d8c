//! Apache Kafka, through librdkafka.
//!
//! Source: the JobManager assigns a topic's partitions to source subtasks
//! (no consumer-group rebalancing); a source of several topics or a
//! pattern splits them itself (`kafka_topics`). Each subtask reads its
//! partitions from the
//! starting offsets and decodes JSON by the job's schema straight into the
//! columns of a batch (`codec::json`); fields read from the message's key,
//! timestamp, partition, offset or headers are appended to their own
//! columns (`kafka_metadata`). An undecodable record follows the source's
//! `on_error` policy, except a message without a value on a versioned
//! source (`versioned by`): that is a deletion (`kafka_keys::Tombstones`).
//! When the job puts a watermark stage right
//! after the source, watermarks are generated per partition here (as
//! Flink's KafkaSource does): the source's watermark is the minimum over its
//! partitions that are not idle, so a partition read ahead during catch-up
//! cannot make another partition's records late.
//!
//! The sink is in `kafka_sink`.

pub use super::kafka_sink::{send_record, send_waiting, DeliveryErrors, KafkaSinkWriter};

mod read;
use read::At;

use super::bad_records::BadRecords;
use super::kafka_keys::Tombstones;
use super::kafka_metadata::{MetadataColumns, TimeSource};
use super::kafka_topics::{Assignment, TopicPartition, Topics};
use super::{ConnectorError, SourcePoll, SourceReader};
use crate::checkpoint::SourceState;
use crate::codec::Decoder;
use crate::data::Origins;
use crate::metrics::TaskCounters;
use crate::record::Signal;
use flowc_compiler::ir::{KafkaSource, StartingOffsets, WatermarkSpec};
use flowc_kafka_batch::{Batch as RawBatch, BatchQueue};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::VecDeque;
use std::sync::Arc;
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

#[derive(Default)]
struct PartitionEnds {
    high: std::collections::HashMap<(String, i32), i64>,
    last_asked: Option<Instant>,
    next: usize,
}

struct PartitionClock {
    max_ts: i64,
    /// The offset of the next record to hand out, once known.
    next: Option<i64>,
    /// A record came in the batch being read.
    seen: bool,
    last_record: Instant,
}

/// A source of several topics: how it finds its partitions again.
struct Discovery {
    topics: Topics,
    subtask: u32,
    parallelism: u32,
    /// `None`: never again (discovery off, or a bounded source).
    interval: Option<Duration>,
    last: Instant,
}

pub struct KafkaSourceReader {
    servers: String,
    /// The one topic of a source of one topic; empty otherwise.
    topic: String,
    /// The partitions' end offsets, as last asked, for their lag.
    part_ends: PartitionEnds,
    /// Where the partitions' messages are read a batch at a time (none
    /// with metadata columns, which read through `rdkafka`'s messages):
    /// declared before `consumer`, so that it is dropped first.
    fast: Option<(BatchQueue, RawBatch)>,
    consumer: Arc<BaseConsumer>,
    decoder: Decoder,
    /// The schema's fields read from Kafka metadata, if any.
    metadata: Option<MetadataColumns>,
    /// Where the watermark's event time is read from.
    time: TimeSource,
    watermark: Option<WatermarkSpec>,
    partitions: Vec<(TopicPartition, PartitionClock)>,
    /// `topics` / `topic_pattern`.
    discovery: Option<Discovery>,
    last_watermark: i64,
    idle: bool,
    last_emit: Instant,
    counters: Arc<TaskCounters>,
    last_error_log: Option<Instant>,
    /// The `on_error` policy for undecodable records.
    bad: BadRecords,
    /// Where the records of the batch being read came from, and their
    /// bytes: kept only when a later stage dead-letters ([`Self::with_origins`]).
    origins: Option<Origins>,
    /// A versioned source: how a message without a value is a deletion.
    tombstones: Option<Tombstones>,
    /// Without checkpoints: commit offsets every [`AUTO_COMMIT_INTERVAL`].
    auto_commit: Option<Instant>,
    /// `bounded: latest`: the end offset of each partition.
    ends: Vec<(TopicPartition, i64)>,
    bounded: bool,
    /// The offsets of checkpoints taken and not yet complete, oldest
    /// first: committed to the group when theirs completes.
    pending_commits: VecDeque<(u64, Vec<(TopicPartition, i64)>)>,
}

/// Checkpoints whose offsets wait for their completion, at most (older ones
/// are dropped: a later completion commits offsets at least as far).
const PENDING_COMMITS: usize = 64;

impl KafkaSourceReader {
    /// Reads the partitions `assignment` gives (one topic's) or, for a
    /// source of several topics, those this subtask owns; each from its
    /// restored offset where `restored` has one, else from the job's
    /// starting offsets.
    pub fn new(
        spec: &KafkaSource,
        operator: &str,
        assignment: &Assignment,
        restored: &[(String, i32, i64)],
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
            // stays small (1 MiB per partition) to keep memory flat: at 4 MiB
            // the Kafka benchmark's TaskManager peaked at 106-110 MiB, at
            // 1 MiB at 66 MiB, reading as fast (bench/README.md, 11-30).
            .set("fetch.queue.backoff.ms", "5")
            .set("queued.max.messages.kbytes", "1024")
            // One fetch response is at most 4 MiB (librdkafka's default is
            // 50 MiB), which bounds the receive buffers too.
            .set("fetch.max.bytes", "4194304")
            .create()
            .map_err(|e| kafka_err(&spec.servers, e))?;
        let discovery = Topics::new(spec)?.map(|topics| Discovery {
            topics,
            subtask: assignment.subtask,
            parallelism: assignment.parallelism,
            interval: spec.discovery_ms.filter(|_| !spec.bounded).map(Duration::from_millis),
            last: Instant::now(),
        });
        let partitions: Vec<TopicPartition> = match &discovery {
            None => assignment.splits.iter().map(|p| (spec.topic.clone(), *p)).collect(),
            Some(d) => d.topics.owned(&consumer, &spec.servers, d.subtask, d.parallelism, Duration::from_secs(10))?,
        };
        let restored: Vec<(TopicPartition, i64)> = restored
            .iter()
            .filter(|(t, p, _)| partitions.iter().any(|(u, q)| u == t && q == p))
            .map(|(t, p, o)| ((t.clone(), *p), *o))
            .collect();
        // `committed`: the group's offsets, read here with retries rather
        // than left to librdkafka (`Offset::Stored`), which gives up on a
        // partition for good when the group coordinator is not ready.
        let unrestored: Vec<TopicPartition> =
            partitions.iter().filter(|tp| !restored.iter().any(|(q, _)| q == *tp)).cloned().collect();
        let committed = match spec.offsets {
            StartingOffsets::Committed if !unrestored.is_empty() => {
                committed_offsets(&consumer, &spec.servers, &spec.group, &unrestored)?
            }
            _ => Vec::new(),
        };
        // A source of several topics restored from a checkpoint: a
        // partition the checkpoint does not know was discovered since, and
        // is read from its earliest offset (as Flink's enumerator does).
        let discovered_since = discovery.is_some() && !restored.is_empty();
        let from_end = matches!(spec.offsets, StartingOffsets::Latest) && !discovered_since;
        // Every partition starts from a known offset, the start rule's
        // included (a partition's first or end offset, asked now): then a
        // checkpoint taken before a partition's first record still says
        // where it stands. Without it, a restore fell back to the group's
        // offsets, which may be ahead of the restored state. Bounded: where
        // each partition ends, too.
        let mut ends = Vec::new();
        let mut starts: Vec<(TopicPartition, i64)> = Vec::new();
        for tp in &partitions {
            let known = restored.iter().chain(&committed).find(|(q, _)| q == tp).map(|(_, o)| *o);
            let bounds = match known {
                Some(_) if !spec.bounded => None,
                _ => Some(partition_bounds(&consumer, &spec.servers, tp)?),
            };
            if let Some((_, high)) = bounds.filter(|_| spec.bounded) {
                ends.push((tp.clone(), high));
            }
            let start = known.or(bounds.map(|(low, high)| if from_end { high } else { low }));
            starts.extend(start.map(|o| (tp.clone(), o)));
        }
        let mut tpl = TopicPartitionList::new();
        for tp in &partitions {
            let from = starts.iter().find(|(q, _)| q == tp).map_or(Offset::Beginning, |(_, o)| Offset::Offset(*o));
            tpl.add_partition_offset(&tp.0, tp.1, from).map_err(|e| kafka_err(&spec.servers, e))?;
        }
        consumer.assign(&tpl).map_err(|e| kafka_err(&spec.servers, e))?;
        let now = Instant::now();
        let bad = BadRecords::new(&spec.on_error, operator, counters.clone())?;
        let metadata = MetadataColumns::new(&spec.schema);
        let tombstones = spec.tombstones.as_ref().map(|t| Tombstones::new(t, &spec.schema)).transpose()?;
        let consumer = Arc::new(consumer);
        // Batches need neither the message's key nor its headers: sources
        // with metadata columns or tombstones read message by message.
        let fast = match (&metadata, &tombstones) {
            (None, None) => BatchQueue::new(consumer.clone()).map(|q| (q, RawBatch::with_capacity(BATCH))),
            _ => None,
        };
        if let Some((q, _)) = &fast {
            for (t, p) in &partitions {
                q.split(t, *p);
            }
        }
        let time = match (&watermark, &metadata) {
            (Some(w), Some(m)) => m.time_source(w.field),
            (Some(w), None) => TimeSource::Payload(w.field),
            (None, _) => TimeSource::None,
        };
        Ok(KafkaSourceReader {
            bad,
            origins: None,
            tombstones,
            servers: spec.servers.clone(),
            fast,
            consumer,
            // The value holds the fields that are not metadata.
            decoder: Decoder::new(&spec.schema.payload(), &spec.format),
            metadata,
            time,
            watermark,
            ends,
            bounded: spec.bounded,
            pending_commits: VecDeque::new(),
            partitions: partitions
                .into_iter()
                .map(|tp| {
                    let next = starts.iter().find(|(q, _)| *q == tp).map(|(_, o)| *o);
                    (tp, PartitionClock { max_ts: i64::MIN, last_record: now, next, seen: false })
                })
                .collect(),
            discovery,
            topic: spec.topic.clone(),
            part_ends: PartitionEnds::default(),
            last_watermark: i64::MIN,
            idle: false,
            last_emit: now,
            counters,
            last_error_log: None,
            auto_commit: (!checkpointing).then(Instant::now),
        })
    }

    /// Its batches carry their records' origins (topic, partition, offset
    /// and the message's value), for a stage after it that dead-letters.
    pub fn with_origins(mut self) -> KafkaSourceReader {
        self.origins = Some(Origins::default());
        self
    }

    /// A source of several topics, every discovery interval: reads the
    /// partitions it now owns that it did not, from their earliest offset.
    fn discover(&mut self) -> Result<(), ConnectorError> {
        let Some(d) = &mut self.discovery else { return Ok(()) };
        if d.interval.is_none_or(|i| d.last.elapsed() < i) {
            return Ok(());
        }
        d.last = Instant::now();
        let owned = match d.topics.owned(
            &self.consumer,
            &self.servers,
            d.subtask,
            d.parallelism,
            Duration::from_secs(5),
        ) {
            Ok(o) => o,
            Err(e) => {
                // A listed topic deleted, or the brokers away for a moment: keep reading what there is.
                tracing::warn!(servers = %self.servers, error = %e, "Kafka partition discovery failed; trying again at the next interval.");
                return Ok(());
            }
        };
        let new: Vec<TopicPartition> =
            owned.into_iter().filter(|tp| !self.partitions.iter().any(|(q, _)| q == tp)).collect();
        if new.is_empty() {
            return Ok(());
        }
        let mut tpl = TopicPartitionList::new();
        for tp in &new {
            tpl.add_partition_offset(&tp.0, tp.1, Offset::Beginning).map_err(|e| kafka_err(&self.servers, e))?;
        }
        self.consumer.incremental_assign(&tpl).map_err(|e| kafka_err(&self.servers, e))?;
        if let Some((q, _)) = &self.fast {
            for (t, p) in &new {
                q.split(t, *p);
            }
        }
        tracing::info!(
            servers = %self.servers, subtask = d.subtask, partitions = ?new,
            "Kafka partition discovery found new partitions; reading them from the earliest offset."
        );
        let now = Instant::now();
        for tp in new {
            // Where it starts, for a checkpoint before its first record (if
            // the broker does not say, the consumer's position is taken then).
            let next = match self.consumer.fetch_watermarks(&tp.0, tp.1, Duration::from_secs(5)) {
                Ok((low, _)) => Some(low),
                Err(e) => {
                    tracing::warn!(servers = %self.servers, topic = %tp.0, partition = tp.1, error = %e, "Cannot read a discovered partition's first offset.");
                    None
                }
            };
            // Idle until its first record, like any other partition.
            self.partitions.push((tp, PartitionClock { max_ts: i64::MIN, last_record: now, next, seen: false }));
        }
        Ok(())
    }

    /// Commits the offsets read so far to the consumer group, in the
    /// background: where a restart without a checkpoint, or a new job with
    /// `offsets: committed`, continues.
    fn commit(&self, offsets: &[(TopicPartition, i64)]) {
        let mut tpl = TopicPartitionList::new();
        for ((t, p), o) in offsets {
            if tpl.add_partition_offset(t, *p, Offset::Offset(*o)).is_err() {
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
        self.partitions.iter().all(|(tp, c)| {
            let Some((_, end)) = self.ends.iter().find(|(q, _)| q == tp) else { return true };
            let pos = position.as_ref().and_then(|t| t.find_partition(&tp.0, tp.1)).and_then(|e| match e.offset() {
                Offset::Offset(o) => Some(o),
                _ => None,
            });
            c.next.is_some_and(|n| n >= *end) || pos.is_some_and(|o| o >= *end)
        })
    }

    fn read_offsets(&self) -> Vec<(TopicPartition, i64)> {
        self.partitions.iter().filter_map(|(tp, c)| c.next.map(|n| (tp.clone(), n))).collect()
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
    fn partitions(&mut self) -> Vec<crate::metrics::PartitionLineage> {
        let now = Instant::now();
        // The partitions' ends, for the lag: one partition asked per second,
        // in turn, so that the task loop never waits long on the broker.
        if !self.partitions.is_empty()
            && self.part_ends.last_asked.is_none_or(|t| t.elapsed() >= Duration::from_secs(1))
        {
            self.part_ends.last_asked = Some(now);
            let i = self.part_ends.next % self.partitions.len();
            self.part_ends.next = i + 1;
            let (topic, p) = self.partitions[i].0.clone();
            match self.consumer.fetch_watermarks(&topic, p, Duration::from_millis(200)) {
                Ok((_, high)) => {
                    self.part_ends.high.insert((topic, p), high);
                }
                Err(e) => {
                    tracing::debug!(topic, partition = p, error = %e, "Cannot read the partition's end for its lag.")
                }
            }
        }
        self.partitions
            .iter()
            .map(|(tp, c)| {
                let idle_for = now.duration_since(c.last_record);
                let spec = self.watermark.as_ref();
                // The partition's end as the consumer last learned it (from
                // fetch responses): no request to the broker here.
                let high = self.part_ends.high.get(tp).copied();
                crate::metrics::PartitionLineage {
                    topic: tp.0.clone(),
                    partition: tp.1,
                    watermark: spec
                        .filter(|_| c.max_ts != i64::MIN)
                        .map(|s| c.max_ts.saturating_sub(s.out_of_orderness_ms as i64).saturating_sub(1)),
                    idle: spec.and_then(|s| s.idleness_ms).is_some_and(|idle| idle_for >= Duration::from_millis(idle)),
                    idle_ms: idle_for.as_millis() as u64,
                    lag: match (high, c.next) {
                        (Some(h), Some(n)) if h >= 0 => Some((h - n).max(0)),
                        _ => None,
                    },
                }
            })
            .collect()
    }

    fn flush(&mut self) -> Result<(), ConnectorError> {
        self.bad.flush()
    }

    fn snapshot(&mut self, checkpoint_id: u64) -> SourceState {
        let mut offsets = self.read_offsets();
        // The group's offsets follow the checkpoints, once they complete.
        if self.auto_commit.is_none() {
            if self.pending_commits.len() >= PENDING_COMMITS {
                self.pending_commits.pop_front();
            }
            self.pending_commits.push_back((checkpoint_id, offsets.clone()));
        }
        // A partition discovered without a known first offset, nothing read
        // from it yet: where the consumer stands, if it knows.
        if offsets.len() < self.partitions.len() {
            if let Ok(pos) = self.consumer.position() {
                for e in pos.elements() {
                    if let Offset::Offset(o) = e.offset() {
                        let tp = (e.topic().to_string(), e.partition());
                        if !offsets.iter().any(|(q, _)| *q == tp) {
                            offsets.push((tp, o));
                        }
                    }
                }
            }
        }
        offsets.sort_unstable();
        if self.discovery.is_some() {
            SourceState::KafkaTopics { offsets: offsets.into_iter().map(|((t, p), o)| (t, p, o)).collect() }
        } else {
            // One topic: the state as it always was.
            SourceState::Kafka {
                topic: self.topic.clone(),
                offsets: offsets.into_iter().map(|((_, p), o)| (p, o)).collect(),
            }
        }
    }

    fn checkpoint_complete(&mut self, checkpoint_id: u64) {
        // This checkpoint's offsets, or the latest taken before it (its
        // own may have been dropped); older ones are done with.
        let mut latest = None;
        while self.pending_commits.front().is_some_and(|(id, _)| *id <= checkpoint_id) {
            latest = self.pending_commits.pop_front();
        }
        if let Some((_, offsets)) = latest {
            self.commit(&offsets);
        }
    }

    fn poll(&mut self, timeout: Duration) -> Result<SourcePoll, ConnectorError> {
        if self.auto_commit.is_some_and(|t| t.elapsed() >= AUTO_COMMIT_INTERVAL) {
            self.auto_commit = Some(Instant::now());
            self.commit(&self.read_offsets());
        }
        self.discover()?;
        if let Some(s) = self.watermark_signal() {
            return Ok(SourcePoll::Signal(s));
        }
        if self.bounded && self.at_end() {
            self.commit(&self.read_offsets());
            return Ok(SourcePoll::End);
        }
        if self.partitions.is_empty() {
            // A subtask without partitions is idle (for good, unless discovery finds some).
            if !self.idle {
                self.idle = true;
                return Ok(SourcePoll::Signal(Signal::Idle));
            }
            std::thread::sleep(timeout.min(WATERMARK_INTERVAL));
            return Ok(SourcePoll::Nothing);
        }
        let mut batch = self.decoder.batch(BATCH);
        if let Some(o) = &mut self.origins {
            o.truncate(0);
        }
        let mut wait = timeout.min(WATERMARK_INTERVAL);
        let mut bytes = 0u64;
        // A record beyond `max_future` moves no watermark (the watermark stage drops it).
        let future = self.watermark.as_ref().and_then(|w| w.max_future_ms);
        let future_limit = future.map_or(i64::MAX, |m| crate::clock::now_ms().saturating_add(m as i64));
        // The consumer queue first: its events, and with the batch queue the
        // messages fetched before the partitions were split off to it, which
        // come before anything there (a partition's offsets never go back).
        let consumer = self.consumer.clone();
        while batch.len() < BATCH {
            let Some(result) = consumer.poll(if self.fast.is_some() { Duration::ZERO } else { wait }) else { break };
            wait = Duration::ZERO;
            match result {
                Ok(msg) => {
                    bytes += msg.payload().map_or(0, |p| p.len() as u64);
                    let at = At { topic: msg.topic(), partition: msg.partition(), offset: msg.offset() };
                    self.take(msg.payload(), at, msg.timestamp().to_millis(), Some(&msg), &mut batch, future_limit)?;
                }
                Err(e) => {
                    self.consumer_error(&e);
                    break;
                }
            }
        }
        if let Some((mut queue, mut raw)) = self.fast.take() {
            let read = self.take_batch(&mut queue, &mut raw, wait, &mut batch, &mut bytes, future_limit);
            self.fast = Some((queue, raw));
            read?;
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
        if let Some(m) = &mut self.metadata {
            batch = m.assemble(batch);
        }
        if let Some(t) = &mut self.tombstones {
            t.mark(&mut batch);
        }
        // One origin per record read (a mismatch would be a bug: none, rather than wrong ones).
        batch.origins = self.origins.as_mut().map(Origins::take).filter(|o| o.len() == batch.len());
        Ok(SourcePoll::Records(batch))
    }
}

/// A partition's first and end offsets, asked of its leader; retried for up
/// to 30 s (a topic just created may not have a leader yet).
fn partition_bounds(consumer: &BaseConsumer, servers: &str, tp: &TopicPartition) -> Result<(i64, i64), ConnectorError> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match consumer.fetch_watermarks(&tp.0, tp.1, Duration::from_secs(10)) {
            Ok(bounds) => return Ok(bounds),
            Err(e) if Instant::now() >= deadline => {
                return Err(kafka_err(servers, format!("reading the first and end offsets of {}/{}: {e}", tp.0, tp.1)))
            }
            Err(e) => {
                tracing::info!(servers, topic = %tp.0, partition = tp.1, error = %e, "A partition's offsets are not readable yet; retrying.");
                std::thread::sleep(Duration::from_millis(500));
            }
        }
    }
}

/// The offsets `group` has committed for `partitions` (those it has none
/// for are left out). Retries while the group coordinator is moving or
/// loading; fails, naming the servers, if it stays unreachable.
fn committed_offsets(
    consumer: &BaseConsumer,
    servers: &str,
    group: &str,
    partitions: &[TopicPartition],
) -> Result<Vec<(TopicPartition, i64)>, ConnectorError> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last_error = String::new();
    while Instant::now() < deadline {
        let mut tpl = TopicPartitionList::new();
        for (t, p) in partitions {
            tpl.add_partition(t, *p);
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
                            Offset::Offset(o) if o >= 0 => Some(((e.topic().to_string(), e.partition()), o)),
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
    let topics: std::collections::BTreeSet<&str> = partitions.iter().map(|(t, _)| t.as_str()).collect();
    let topics: Vec<&str> = topics.into_iter().collect();
    Err(kafka_err(
        servers,
        format!("cannot read the committed offsets of group `{group}` for `{}`: {last_error}", topics.join("`, `")),
    ))
}
