//! Kafka plumbing for the playground tools: the transactional [`KafkaSink`],
//! reading the last committed click event of a topic, creating topics, and
//! reading a topic from the beginning with `read_committed`.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};

use crate::clickevent::ClickEvent;
use crate::generator::{SinkError, SinkErrorKind, TickSink};

/// A Kafka failure, with what we were doing.
#[derive(Debug, thiserror::Error)]
pub enum KafkaToolError {
    #[error("{what} (external; check that Kafka runs at {bootstrap}): {source}")]
    Kafka {
        what: String,
        bootstrap: String,
        #[source]
        source: Box<KafkaError>,
    },
    #[error("{what}: timed out after {secs} s (external; check that Kafka runs at {bootstrap})")]
    Timeout { what: String, bootstrap: String, secs: u64 },
}

fn kafka_err(what: impl Into<String>, bootstrap: &str) -> impl FnOnce(KafkaError) -> KafkaToolError {
    let what = what.into();
    let bootstrap = bootstrap.to_owned();
    move |source| KafkaToolError::Kafka { what, bootstrap, source: Box::new(source) }
}

/// The `transactional.id` the generator uses for `topic`. A restarted
/// generator with the same id fences the old one and aborts its open
/// transaction.
pub fn transactional_id(topic: &str) -> String {
    format!("clickevent-generator-{topic}")
}

/// Settings of the transactional producer.
#[derive(Debug, Clone)]
pub struct ProducerSettings {
    pub bootstrap: String,
    pub topic: String,
    pub transactional_id: String,
    /// The broker aborts a transaction left open this long (e.g. by a killed
    /// generator that is not restarted); until then `read_committed` readers
    /// wait at it.
    pub transaction_timeout: Duration,
    /// How long to wait for Kafka at start-up.
    pub startup_timeout: Duration,
}

/// Transactional producer writing click events keyed by page.
pub struct KafkaSink {
    producer: ThreadedProducer<DefaultProducerContext>,
    topic: String,
    op_timeout: Duration,
}

impl KafkaSink {
    /// Creates the producer and calls `init_transactions`, which fences any
    /// earlier generator with the same `transactional.id` and completes or
    /// aborts its last transaction. Only after this returns is the topic's
    /// committed content final.
    pub fn connect(s: &ProducerSettings) -> Result<KafkaSink, KafkaToolError> {
        let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
            .set("bootstrap.servers", &s.bootstrap)
            .set("client.id", "clickevent-generator")
            .set("transactional.id", &s.transactional_id)
            .set("transaction.timeout.ms", s.transaction_timeout.as_millis().to_string())
            // The Java client's partitioner, so a page lands where a Java
            // producer would put it.
            .set("partitioner", "murmur2_random")
            .set("linger.ms", "5")
            .create()
            .map_err(kafka_err("creating the producer", &s.bootstrap))?;
        let deadline = Instant::now() + s.startup_timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match producer.init_transactions(left.max(Duration::from_secs(1))) {
                Ok(()) => break,
                Err(e) if is_retriable(&e) && Instant::now() < deadline => {
                    tracing::info!(error = %e, "Kafka not ready for transactions yet; retrying.");
                    std::thread::sleep(Duration::from_millis(500));
                }
                Err(e) if is_retriable(&e) => {
                    return Err(KafkaToolError::Timeout {
                        what: format!("initialising transactions as {:?}", s.transactional_id),
                        bootstrap: s.bootstrap.clone(),
                        secs: s.startup_timeout.as_secs(),
                    })
                }
                Err(e) => {
                    return Err(kafka_err(
                        format!("initialising transactions as {:?}", s.transactional_id),
                        &s.bootstrap,
                    )(e))
                }
            }
        }
        Ok(KafkaSink {
            producer,
            topic: s.topic.clone(),
            op_timeout: s.transaction_timeout.max(Duration::from_secs(10)),
        })
    }
}

impl KafkaSink {
    /// Sends one record of any payload (in the open transaction).
    pub fn send_payload(&mut self, key: Option<&str>, payload: &str) -> Result<(), SinkError> {
        let mut record = BaseRecord::to(&self.topic).payload(payload);
        if let Some(k) = key {
            record = record.key(k);
        }
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err((e, _)) => return Err(classify(e)),
            }
        }
    }
}

fn is_retriable(e: &KafkaError) -> bool {
    match e {
        KafkaError::Transaction(rd) => rd.is_retriable() && !rd.is_fatal(),
        _ => false,
    }
}

fn classify(e: KafkaError) -> SinkError {
    let kind = match &e {
        KafkaError::Transaction(rd) if rd.is_fatal() => SinkErrorKind::Fatal,
        KafkaError::Transaction(rd) if rd.txn_requires_abort() => SinkErrorKind::Abortable,
        KafkaError::Transaction(rd) if rd.is_retriable() => SinkErrorKind::Retriable,
        KafkaError::Transaction(_) => SinkErrorKind::Fatal,
        // Produce-time errors: let the abort tell whether the producer still works.
        KafkaError::MessageProduction(_) => SinkErrorKind::Abortable,
        _ => SinkErrorKind::Fatal,
    };
    SinkError::new(kind, e.to_string())
}

impl TickSink for KafkaSink {
    fn begin(&mut self) -> Result<(), SinkError> {
        self.producer.begin_transaction().map_err(classify)
    }

    fn send(&mut self, event: &ClickEvent) -> Result<(), SinkError> {
        let payload = event.to_json();
        let key = event.page.as_str();
        let mut record = BaseRecord::to(&self.topic).key(key).payload(&payload);
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err((e, _)) => return Err(classify(e)),
            }
        }
    }

    fn commit(&mut self) -> Result<(), SinkError> {
        self.producer.commit_transaction(self.op_timeout).map_err(classify)
    }

    fn abort(&mut self) -> Result<(), SinkError> {
        self.producer.abort_transaction(self.op_timeout).map_err(classify)
    }
}

/// Consumer context that does not report partition ends (which the readers
/// here ask for with `enable.partition.eof` and get from `poll`) as client
/// errors.
#[derive(Debug, Default, Clone, Copy)]
pub struct ReaderContext;

impl ClientContext for ReaderContext {
    fn error(&self, error: KafkaError, reason: &str) {
        let eof = matches!(error, KafkaError::PartitionEOF(_) | KafkaError::Global(RDKafkaErrorCode::PartitionEOF));
        if !eof {
            tracing::warn!(error = %error, reason, "Kafka client error.");
        }
    }
}

impl ConsumerContext for ReaderContext {}

type Reader = BaseConsumer<ReaderContext>;

fn read_committed_consumer(bootstrap: &str, group: &str) -> Result<Reader, KafkaToolError> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        // Needed by librdkafka's config checks; the consumer only assigns
        // partitions by hand and never commits offsets.
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "true")
        .set("fetch.wait.max.ms", "100")
        .set("isolation.level", "read_committed")
        .set("auto.offset.reset", "earliest")
        .create_with_context(ReaderContext)
        .map_err(kafka_err("creating a consumer", bootstrap))
}

/// Partition ids of `topic`, or `None` if it does not exist.
fn partitions(
    consumer: &Reader,
    bootstrap: &str,
    topic: &str,
    timeout: Duration,
) -> Result<Option<Vec<i32>>, KafkaToolError> {
    let md = consumer
        .fetch_metadata(Some(topic), timeout)
        .map_err(kafka_err(format!("reading metadata of topic {topic:?}"), bootstrap))?;
    let Some(t) = md.topics().iter().find(|t| t.name() == topic) else {
        return Ok(None);
    };
    if t.error().is_some() || t.partitions().is_empty() {
        return Ok(None);
    }
    Ok(Some(t.partitions().iter().map(|p| p.id()).collect()))
}

/// The greatest click-event timestamp committed to `topic` (read with
/// `isolation.level=read_committed`), or `None` if there is none.
///
/// For each partition it reads from a little before the end (the last
/// offsets are usually transaction markers, which take an offset but are
/// never delivered), reaching further back until it finds a click event.
/// Call it only after [`KafkaSink::connect`], so no transaction of ours is
/// still open.
pub fn last_committed_timestamp(
    bootstrap: &str,
    topic: &str,
    timeout: Duration,
) -> Result<Option<i64>, KafkaToolError> {
    struct Tail {
        partition: i32,
        low: i64,
        high: i64,
        back: i64,
        found: Option<i64>,
        at_end: bool,
    }
    let consumer = read_committed_consumer(bootstrap, "clickevent-generator-resume")?;
    let deadline = Instant::now() + timeout;
    let Some(parts) = partitions(&consumer, bootstrap, topic, timeout)? else {
        return Ok(None);
    };
    let mut tails = Vec::new();
    for p in parts {
        let (low, high) = consumer
            .fetch_watermarks(topic, p, timeout)
            .map_err(kafka_err(format!("reading offsets of {topic}/{p}"), bootstrap))?;
        if high > low {
            tails.push(Tail { partition: p, low, high, back: 64, found: None, at_end: false });
        }
    }
    let mut best: Option<i64> = None;
    while !tails.is_empty() {
        let from = |t: &Tail| t.low.max(t.high - t.back);
        let mut tpl = TopicPartitionList::new();
        for t in &mut tails {
            t.at_end = false;
            tpl.add_partition_offset(topic, t.partition, Offset::Offset(from(t)))
                .map_err(kafka_err("assigning", bootstrap))?;
        }
        consumer.assign(&tpl).map_err(kafka_err(format!("assigning {topic}"), bootstrap))?;
        while tails.iter().any(|t| !t.at_end) {
            if Instant::now() >= deadline {
                return Err(KafkaToolError::Timeout {
                    what: format!("reading the last events of topic {topic:?}"),
                    bootstrap: bootstrap.to_owned(),
                    secs: timeout.as_secs(),
                });
            }
            match consumer.poll(Duration::from_millis(100)) {
                None => {}
                Some(Err(KafkaError::PartitionEOF(p))) => {
                    if let Some(t) = tails.iter_mut().find(|t| t.partition == p) {
                        t.at_end = true;
                    }
                }
                Some(Err(e)) => {
                    tracing::warn!(topic, error = %e, "Consumer error while reading the topic's tail.");
                }
                Some(Ok(m)) => {
                    let Some(t) = tails.iter_mut().find(|t| t.partition == m.partition()) else {
                        continue;
                    };
                    let text = std::str::from_utf8(m.payload().unwrap_or_default());
                    match text
                        .map_err(|e| e.to_string())
                        .and_then(|s| ClickEvent::from_json(s).map_err(|e| e.to_string()))
                    {
                        Ok(ev) => t.found = Some(t.found.map_or(ev.timestamp_ms, |f| f.max(ev.timestamp_ms))),
                        Err(e) => tracing::warn!(
                            partition = m.partition(),
                            offset = m.offset(),
                            error = %e,
                            "Skipping a record that is not a click event."
                        ),
                    }
                }
            }
        }
        tails.retain_mut(|t| {
            tracing::debug!(partition = t.partition, low = t.low, high = t.high, from = from(t), found = ?t.found, "Read partition tail.");
            if let Some(ts) = t.found {
                best = Some(best.map_or(ts, |b| b.max(ts)));
                return false;
            }
            // Nothing committed in this stretch (aborted transactions or
            // foreign records): look further back, unless we read it all.
            let more = from(t) > t.low;
            t.back = t.back.saturating_mul(8);
            more
        });
    }
    Ok(best)
}

/// Creates `topic` with `partitions` partitions (replication factor 1) if it
/// does not exist yet.
pub async fn ensure_topic(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    timeout: Duration,
) -> Result<(), KafkaToolError> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .map_err(kafka_err("creating an admin client", bootstrap))?;
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let opts = AdminOptions::new().operation_timeout(Some(timeout)).request_timeout(Some(timeout));
    let results = tokio::time::timeout(timeout, admin.create_topics([&new], &opts))
        .await
        .map_err(|_| KafkaToolError::Timeout {
            what: format!("creating topic {topic:?}"),
            bootstrap: bootstrap.to_owned(),
            secs: timeout.as_secs(),
        })?
        .map_err(kafka_err(format!("creating topic {topic:?}"), bootstrap))?;
    for r in results {
        match r {
            Ok(_) => tracing::info!(topic, partitions, "Created topic."),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => {
                return Err(kafka_err(format!("creating topic {name:?}"), bootstrap)(KafkaError::AdminOp(code)))
            }
        }
    }
    Ok(())
}

/// One record read by [`read_topic`].
#[derive(Debug, Clone, Copy)]
pub struct RecordRef<'a> {
    pub partition: i32,
    pub offset: i64,
    pub payload: &'a [u8],
}

/// What [`read_topic`] saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadStats {
    pub records: u64,
    /// Every partition had been read to its end (as of the last poll).
    pub caught_up: bool,
    pub timed_out: bool,
}

/// Reads `topic` from the beginning with `read_committed`, handing each
/// record to `on_record`, until `done` (asked whenever every partition has
/// been read to its end, at most every 200 ms) returns `true`, or `timeout`
/// passes. A topic that does not exist yet is waited for.
pub fn read_topic(
    bootstrap: &str,
    topic: &str,
    timeout: Duration,
    mut on_record: impl FnMut(RecordRef<'_>),
    mut done: impl FnMut() -> bool,
) -> Result<ReadStats, KafkaToolError> {
    let deadline = Instant::now() + timeout;
    let consumer = read_committed_consumer(bootstrap, "clickevent-check")?;
    let mut stats = ReadStats::default();
    let parts = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match partitions(&consumer, bootstrap, topic, left.max(Duration::from_secs(1)).min(Duration::from_secs(10)))? {
            Some(p) => break p,
            None if Instant::now() < deadline => {
                tracing::info!(topic, "Topic does not exist yet; waiting.");
                std::thread::sleep(Duration::from_secs(1));
            }
            None => {
                stats.timed_out = true;
                return Ok(stats);
            }
        }
    };
    let mut tpl = TopicPartitionList::new();
    for p in &parts {
        tpl.add_partition_offset(topic, *p, Offset::Beginning).map_err(kafka_err("assigning", bootstrap))?;
    }
    consumer.assign(&tpl).map_err(kafka_err(format!("assigning {topic}"), bootstrap))?;
    let mut at_end: BTreeSet<i32> = BTreeSet::new();
    let mut last_asked: Option<Instant> = None;
    loop {
        stats.caught_up = at_end.len() == parts.len();
        if stats.caught_up && last_asked.is_none_or(|t| t.elapsed() >= Duration::from_millis(200)) {
            last_asked = Some(Instant::now());
            if done() {
                return Ok(stats);
            }
        }
        if Instant::now() >= deadline {
            stats.timed_out = true;
            return Ok(stats);
        }
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Err(KafkaError::PartitionEOF(p))) => {
                at_end.insert(p);
            }
            Some(Err(e)) => tracing::warn!(topic, error = %e, "Consumer error."),
            Some(Ok(m)) => {
                at_end.remove(&m.partition());
                stats.records += 1;
                on_record(RecordRef {
                    partition: m.partition(),
                    offset: m.offset(),
                    payload: m.payload().unwrap_or_default(),
                });
            }
        }
    }
}
