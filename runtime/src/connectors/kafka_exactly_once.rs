//! Exactly-once delivery to Kafka, through transactions committed only for
//! completed checkpoints.
//!
//! librdkafka cannot resume a transaction that another producer prepared,
//! so this sink does not keep a transaction open across a checkpoint the way
//! Flink's Java sink does. Instead:
//!
//! 1. Records written between two barriers are kept, encoded, in memory;
//!    at barrier `n` they become epoch `n`, and every epoch not yet
//!    committed goes into the checkpoint with the subtask's state.
//! 2. When checkpoint `n` completes, one short transaction writes the
//!    epochs up to `n` and, atomically with them, a *marker*: the offset
//!    `n` committed for the consumer group `<transactional id>-marker` on
//!    partition 0 of the topic (`send_offsets_to_transaction`).
//! 3. On restore from a completed checkpoint, the restored epochs above the
//!    marker are the ones whose commit never happened — a crash after the
//!    checkpoint completed but before (or during) the commit — and are
//!    committed then; those at or below it are dropped.
//!
//! Transactional ids are `<prefix>-<sink operator id>-<subtask>`: unique
//! per job (the operator id comes from the sink's uid) and stable per
//! subtask. `init_transactions` fences a zombie with the same id and aborts
//! its open transaction; ids of old subtasks that no new subtask takes
//! (after scaling down) are fenced the same way on restore. A transaction
//! lasts only as long as one commit, so `transaction.timeout.ms` (120 s) is
//! far above it. The cost: one checkpoint interval of output is held in
//! memory and in the checkpoint.
//!
//! A record is kept with its message key, timestamp and headers (`key:`,
//! `timestamp:`, `headers:`). A message over Kafka's limit is refused as it is encoded,
//! before it can reach a checkpoint, and follows the sink's `on_error`
//! (`sink_errors`): skipped or dead-lettered, it never enters a
//! transaction; its dead letter is delivered at the next barrier, before
//! the sink's state is taken, as a source's are. A null in `format: raw`
//! is kept as a record without a value and written as a tombstone.
//!
//! The state format is versioned; states of the older formats are still
//! read: format 1 (values only, from before keys) and format 2 (values,
//! keys and timestamps, from before tombstones: every record had a value)
//! and format 3 (from before headers).

use super::kafka::{send_record, DeliveryErrors};
use super::kafka_keys::MessageMeta;
use super::sink_errors::SinkErrors;
use super::{ConnectorError, SinkWriter};
use crate::codec::Encoder;
use crate::data::Batch;
use flowc_compiler::ir::{KafkaSink, Schema};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerGroupMetadata};
use rdkafka::error::KafkaError;
use rdkafka::producer::{Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(60);
const TRANSACTION_TIMEOUT_MS: &str = "120000";

/// What the sink kept in a checkpoint before records had keys (format 1).
#[derive(Debug, Serialize, Deserialize)]
struct SinkStateV1 {
    transactional_id: String,
    /// (checkpoint id, encoded records), oldest first.
    epochs: Vec<(u64, Vec<Vec<u8>>)>,
}

/// A record of format 2: always a value.
#[derive(Debug, Serialize, Deserialize)]
struct RecordV2 {
    value: Vec<u8>,
    key: Option<Vec<u8>>,
    timestamp: Option<i64>,
}

/// What the sink kept in a checkpoint before tombstones (format 2).
#[derive(Debug, Serialize, Deserialize)]
struct SinkStateV2 {
    transactional_id: String,
    epochs: Vec<(u64, Vec<RecordV2>)>,
}

/// A record of format 3: no headers.
#[derive(Debug, Serialize, Deserialize)]
struct RecordV3 {
    value: Option<Vec<u8>>,
    key: Option<Vec<u8>>,
    timestamp: Option<i64>,
}

/// What the sink kept in a checkpoint before headers (format 3).
#[derive(Debug, Serialize, Deserialize)]
struct SinkStateV3 {
    transactional_id: String,
    epochs: Vec<(u64, Vec<RecordV3>)>,
}

/// One record to write: its value (`None`: a tombstone), key, timestamp
/// and headers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Record {
    value: Option<Vec<u8>>,
    key: Option<Vec<u8>>,
    timestamp: Option<i64>,
    headers: Vec<(String, Vec<u8>)>,
}

/// What the sink keeps in a checkpoint (format 4, after [`STATE_V4`]).
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
struct SinkState {
    transactional_id: String,
    /// (checkpoint id, records), oldest first.
    epochs: Vec<(u64, Vec<Record>)>,
}

/// The first bytes of a format-2 state. A format-1 state starts with the
/// length of its transactional id as a bincode varint, never 0xFF.
const STATE_V2: &[u8] = b"\xffEO2";
/// The first bytes of a format-3 state.
const STATE_V3: &[u8] = b"\xffEO3";
/// The first bytes of a format-4 state.
const STATE_V4: &[u8] = b"\xffEO4";

fn encode_state(state: &SinkState) -> Result<Vec<u8>, ConnectorError> {
    let mut out = STATE_V4.to_vec();
    bincode::serde::encode_into_std_write(state, &mut out, bincode::config::standard())
        .map_err(|e| ConnectorError::Io(format!("encoding the sink's state: {e}")))?;
    Ok(out)
}

/// A state of an older format, its records made the current ones by `f`.
fn upgrade<R>(transactional_id: String, epochs: Vec<(u64, Vec<R>)>, f: impl Fn(R) -> Record) -> SinkState {
    let epochs = epochs.into_iter().map(|(id, records)| (id, records.into_iter().map(&f).collect())).collect();
    SinkState { transactional_id, epochs }
}

/// A state of either format.
fn decode_state(bytes: &[u8]) -> Result<SinkState, ConnectorError> {
    let corrupt =
        |e: bincode::error::DecodeError| ConnectorError::Io(format!("the sink's restored state is corrupt: {e}"));
    if let Some(v4) = bytes.strip_prefix(STATE_V4) {
        return Ok(bincode::serde::decode_from_slice(v4, bincode::config::standard()).map_err(corrupt)?.0);
    }
    if let Some(v3) = bytes.strip_prefix(STATE_V3) {
        let (old, _): (SinkStateV3, usize) =
            bincode::serde::decode_from_slice(v3, bincode::config::standard()).map_err(corrupt)?;
        return Ok(upgrade(old.transactional_id, old.epochs, |r| Record {
            value: r.value,
            key: r.key,
            timestamp: r.timestamp,
            headers: Vec::new(),
        }));
    }
    if let Some(v2) = bytes.strip_prefix(STATE_V2) {
        let (old, _): (SinkStateV2, usize) =
            bincode::serde::decode_from_slice(v2, bincode::config::standard()).map_err(corrupt)?;
        return Ok(upgrade(old.transactional_id, old.epochs, |r| Record {
            value: Some(r.value),
            key: r.key,
            timestamp: r.timestamp,
            headers: Vec::new(),
        }));
    }
    let (old, _): (SinkStateV1, usize) =
        bincode::serde::decode_from_slice(bytes, bincode::config::standard()).map_err(corrupt)?;
    Ok(upgrade(old.transactional_id, old.epochs, |value| Record {
        value: Some(value),
        key: None,
        timestamp: None,
        headers: Vec::new(),
    }))
}

pub struct ExactlyOnceKafkaSink {
    servers: String,
    topic: String,
    transactional_id: String,
    producer: ThreadedProducer<DeliveryErrors>,
    errors: DeliveryErrors,
    encoder: Encoder,
    meta: MessageMeta,
    /// Records since the last barrier.
    current: Vec<Record>,
    /// Epochs snapshotted but not committed.
    pending: BTreeMap<u64, Vec<Record>>,
    /// Commits made, counted for the fault-injection hook (`crate::fault`).
    commits: u64,
    /// The consumer-group metadata of each marker group written to.
    group_metadata: HashMap<String, ConsumerGroupMetadata>,
    /// Messages over Kafka's limit.
    bad: SinkErrors,
}

fn kafka_err(servers: &str, what: &str, e: impl std::fmt::Display) -> ConnectorError {
    ConnectorError::Kafka { servers: servers.to_string(), message: format!("{what}: {e}") }
}

fn marker_group(transactional_id: &str) -> String {
    format!("{transactional_id}-marker")
}

/// `max_bytes`: the producer's `message.max.bytes` (`topic_limits`).
fn transactional_producer(
    servers: &str,
    id: &str,
    errors: DeliveryErrors,
    max_bytes: &str,
) -> Result<ThreadedProducer<DeliveryErrors>, ConnectorError> {
    let p: ThreadedProducer<DeliveryErrors> = ClientConfig::new()
        .set("bootstrap.servers", servers)
        .set("transactional.id", id)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("transaction.timeout.ms", TRANSACTION_TIMEOUT_MS)
        .set("message.max.bytes", max_bytes)
        .create_with_context(errors)
        .map_err(|e| kafka_err(servers, "cannot create a transactional producer", e))?;
    // Fences an older producer with this id and aborts its open transaction.
    p.init_transactions(TIMEOUT)
        .map_err(|e| kafka_err(servers, &format!("initialising transactions for `{id}`"), e))?;
    Ok(p)
}

impl ExactlyOnceKafkaSink {
    pub fn new(
        spec: &KafkaSink,
        schema: &Schema,
        transactional_id: String,
        bad: SinkErrors,
    ) -> Result<ExactlyOnceKafkaSink, ConnectorError> {
        let errors = DeliveryErrors::default();
        let limits = super::topic_limits::TopicLimits::describe(&spec.servers, &spec.topic);
        let producer =
            transactional_producer(&spec.servers, &transactional_id, errors.clone(), &limits.producer_setting())?;
        Ok(ExactlyOnceKafkaSink {
            servers: spec.servers.clone(),
            topic: spec.topic.clone(),
            transactional_id,
            producer,
            errors,
            encoder: Encoder::new(schema, &spec.format),
            meta: MessageMeta::new(spec, schema)?,
            current: Vec::new(),
            pending: BTreeMap::new(),
            commits: 0,
            group_metadata: HashMap::new(),
            bad: bad.with_limits(limits),
        })
    }

    /// The highest epoch committed under `transactional_id`, from its marker.
    fn marker(&self, transactional_id: &str) -> Result<Option<u64>, ConnectorError> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.servers)
            .set("group.id", marker_group(transactional_id))
            .set("enable.auto.commit", "false")
            .set("isolation.level", "read_committed")
            .create()
            .map_err(|e| kafka_err(&self.servers, "cannot create a consumer", e))?;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(&self.topic, 0);
        let got = consumer
            .committed_offsets(tpl, TIMEOUT)
            .map_err(|e| kafka_err(&self.servers, &format!("reading the commit marker of `{transactional_id}`"), e))?;
        Ok(got.elements().first().and_then(|e| match e.offset() {
            Offset::Offset(o) if o >= 0 => Some(o as u64),
            _ => None,
        }))
    }

    /// Writes `records` and the markers in one transaction.
    fn commit(&mut self, records: &[Record], markers: &[(String, u64)]) -> Result<(), ConnectorError> {
        let servers = self.servers.clone();
        let fail = |what: &str, e: KafkaError| kafka_err(&servers, what, e);
        self.producer.begin_transaction().map_err(|e| fail("beginning a transaction", e))?;
        let result = (|| {
            for r in records {
                send_record(&self.producer, &self.topic, r.value.as_deref(), r.key.as_deref(), r.timestamp, &r.headers)
                    .map_err(|e| fail(&format!("producing to `{}`", self.topic), e))?;
            }
            for (group, epoch) in markers {
                if !self.group_metadata.contains_key(group) {
                    // Made once per group: a consumer (with its threads) per commit would be waste.
                    let consumer: BaseConsumer = ClientConfig::new()
                        .set("bootstrap.servers", &self.servers)
                        .set("group.id", group)
                        .create()
                        .map_err(|e| fail("cannot create a consumer", e))?;
                    let Some(cgm) = consumer.group_metadata() else {
                        return Err(kafka_err(&self.servers, "commit marker", "no consumer group metadata"));
                    };
                    self.group_metadata.insert(group.clone(), cgm);
                }
                let Some(cgm) = self.group_metadata.get(group) else { continue };
                let mut tpl = TopicPartitionList::new();
                tpl.add_partition_offset(&self.topic, 0, Offset::Offset(*epoch as i64))
                    .map_err(|e| fail("commit marker", e))?;
                self.producer
                    .send_offsets_to_transaction(&tpl, cgm, TIMEOUT)
                    .map_err(|e| fail("writing the commit marker", e))?;
            }
            self.producer.commit_transaction(TIMEOUT).map_err(|e| fail("committing the transaction", e))
        })();
        if let Err(e) = result {
            let _ = self.producer.abort_transaction(TIMEOUT);
            return Err(e);
        }
        match self.errors.0.lock().unwrap_or_else(|p| p.into_inner()).take() {
            Some(e) => Err(kafka_err(&self.servers, &format!("delivery to `{}` failed", self.topic), e)),
            None => Ok(()),
        }
    }
}

impl SinkWriter for ExactlyOnceKafkaSink {
    fn write(&mut self, batch: &Batch) -> Result<(), ConnectorError> {
        self.meta.begin(batch);
        let mut key_buf = Vec::new();
        for r in 0..batch.len() {
            let value = (!self.encoder.is_tombstone(batch, r)).then(|| {
                let mut value = Vec::with_capacity(96);
                self.encoder.encode_row(batch, r, &mut value);
                value
            });
            let key = self.meta.key(batch, r, &mut key_buf).then(|| key_buf.clone());
            let timestamp = self.meta.timestamp(batch, r);
            let headers = self.meta.headers(batch, r);
            // Checked now: a record in a checkpoint is written when it completes, too late to refuse.
            let origin = batch.origins.as_ref().and_then(|o| o.get(r));
            if self.bad.admit(value.as_deref(), key.as_deref(), &headers, timestamp, origin)? {
                self.current.push(Record { value, key, timestamp, headers });
            }
        }
        Ok(())
    }

    /// At the end of a bounded input: commit everything, with a marker
    /// above every epoch.
    fn flush(&mut self) -> Result<(), ConnectorError> {
        self.bad.flush()?;
        let mut records: Vec<Record> = std::mem::take(&mut self.pending).into_values().flatten().collect();
        records.append(&mut self.current);
        if records.is_empty() {
            return Ok(());
        }
        self.commit(&records, &[])
    }

    fn snapshot(&mut self, checkpoint_id: u64) -> Result<Vec<u8>, ConnectorError> {
        // The dead letters of the records before the barrier, as a source's.
        self.bad.flush()?;
        let epoch = std::mem::take(&mut self.current);
        self.pending.insert(checkpoint_id, epoch);
        let state = SinkState {
            transactional_id: self.transactional_id.clone(),
            epochs: self.pending.iter().map(|(k, v)| (*k, v.clone())).collect(),
        };
        encode_state(&state)
    }

    fn checkpoint_complete(&mut self, checkpoint_id: u64) -> Result<(), ConnectorError> {
        let due: Vec<u64> = self.pending.range(..=checkpoint_id).map(|(k, _)| *k).collect();
        let Some(&last) = due.last() else { return Ok(()) };
        if due.iter().all(|k| self.pending.get(k).is_none_or(Vec::is_empty)) {
            // Nothing to write: no transaction (the marker may stay behind; those epochs are empty).
            due.iter().for_each(|k| {
                self.pending.remove(k);
            });
            return Ok(());
        }
        self.commits += 1;
        crate::fault::before_commit(self.commits, checkpoint_id);
        let records: Vec<Record> = due.iter().filter_map(|k| self.pending.remove(k)).flatten().collect();
        let marker = vec![(marker_group(&self.transactional_id), last)];
        self.commit(&records, &marker)
    }

    fn restore(&mut self, states: Vec<Vec<u8>>) -> Result<(), ConnectorError> {
        let mut records = Vec::new();
        let mut markers = Vec::new();
        for bytes in states {
            let state = decode_state(&bytes)?;
            if state.transactional_id != self.transactional_id {
                // An old subtask's id no new subtask uses: fence it and abort its open transaction.
                let max = super::message_size::max_message_bytes_setting();
                drop(transactional_producer(&self.servers, &state.transactional_id, DeliveryErrors::default(), &max)?);
            }
            let committed = self.marker(&state.transactional_id)?;
            let open: Vec<(u64, Vec<Record>)> =
                state.epochs.into_iter().filter(|(id, _)| committed.is_none_or(|m| *id > m)).collect();
            if let Some((last, _)) = open.last() {
                tracing::info!(
                    transactional_id = %state.transactional_id, epochs = open.len(), up_to = *last,
                    "Committing output of completed checkpoints that was never committed."
                );
                markers.push((marker_group(&state.transactional_id), *last));
                records.extend(open.into_iter().flat_map(|(_, r)| r));
            }
        }
        if markers.is_empty() {
            return Ok(());
        }
        self.commit(&records, &markers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(v: &str, key: Option<&str>, ts: Option<i64>) -> Record {
        Record {
            value: Some(v.as_bytes().to_vec()),
            key: key.map(|k| k.as_bytes().to_vec()),
            timestamp: ts,
            headers: Vec::new(),
        }
    }

    #[test]
    fn the_state_keeps_keys_and_timestamps() {
        let state = SinkState {
            transactional_id: "flowc-out-1-0".into(),
            epochs: vec![(3, vec![record("{}", Some("alice"), Some(5)), record("{\"a\":1}", None, None)]), (4, vec![])],
        };
        assert_eq!(decode_state(&encode_state(&state).unwrap()).unwrap(), state);
    }

    #[test]
    fn the_state_tells_a_tombstone_from_an_empty_value() {
        let tombstone = Record { value: None, key: Some(b"k".to_vec()), timestamp: None, headers: Vec::new() };
        let state = SinkState {
            transactional_id: "flowc-out-1-0".into(),
            epochs: vec![(3, vec![tombstone.clone(), record("", Some("k"), None)])],
        };
        let back = decode_state(&encode_state(&state).unwrap()).unwrap();
        assert_eq!(back, state);
        assert_eq!(back.epochs[0].1[0].value, None);
        assert_eq!(back.epochs[0].1[1].value, Some(Vec::new()));
    }

    #[test]
    fn a_state_of_the_second_format_is_still_read() {
        // Bytes written by the sink before tombstones (format 2).
        let bytes = include_bytes!("testdata/kafka_exactly_once_state_v2.bin");
        let state = decode_state(bytes).unwrap();
        assert_eq!(state.transactional_id, "flowc-out-1-0");
        assert_eq!(
            state.epochs,
            vec![
                (3, vec![record("alpha", Some("k1"), Some(5)), record("", Some("k2"), None)]),
                (4, vec![record("{\"n\":1}", None, Some(-1))]),
            ]
        );
        assert!(decode_state(b"\xffEO3\x01").is_err());
    }

    #[test]
    fn a_state_of_the_first_format_is_still_read() {
        // Bytes as the sink wrote them before records had keys.
        for id in ["flowc-out-1-0", &"x".repeat(255)] {
            let old = SinkStateV1 { transactional_id: id.into(), epochs: vec![(7, vec![b"{\"n\":1}".to_vec()])] };
            let bytes = bincode::serde::encode_to_vec(&old, bincode::config::standard()).unwrap();
            let state = decode_state(&bytes).unwrap();
            assert_eq!(state.transactional_id, id);
            assert_eq!(state.epochs, vec![(7, vec![record("{\"n\":1}", None, None)])]);
        }
        assert!(decode_state(b"\xffEO2\x01").is_err());
    }

    fn arb_record() -> impl proptest::strategy::Strategy<Value = Record> {
        use proptest::prelude::*;
        let bytes = || proptest::option::of(proptest::collection::vec(any::<u8>(), 0..12));
        let headers = proptest::collection::vec(("[a-z-]{0,8}", proptest::collection::vec(any::<u8>(), 0..6)), 0..3);
        (bytes(), bytes(), proptest::option::of(any::<i64>()), headers)
            .prop_map(|(value, key, timestamp, headers)| Record { value, key, timestamp, headers })
    }

    proptest::proptest! {
        /// Format 4 round-trips any state (tombstones, empty values, keys,
        /// timestamps and headers or none) as a plain model of it; a
        /// format-3 state of the same records without headers, and a
        /// format-2 one with values too, read as them.
        #[test]
        fn states_round_trip_against_a_model(
            id in "[a-z0-9-]{0,40}",
            epochs in proptest::collection::vec((proptest::prelude::any::<u64>(), proptest::collection::vec(arb_record(), 0..6)), 0..5),
        ) {
            let state = SinkState { transactional_id: id.clone(), epochs: epochs.clone() };
            proptest::prop_assert_eq!(decode_state(&encode_state(&state).unwrap()).unwrap(), state);
            let without_headers: Vec<(u64, Vec<Record>)> = epochs
                .iter()
                .map(|(e, rs)| (*e, rs.iter().map(|r| Record { headers: Vec::new(), ..r.clone() }).collect()))
                .collect();
            // The same records written by format 3: no headers.
            let v3 = SinkStateV3 {
                transactional_id: id.clone(),
                epochs: epochs
                    .iter()
                    .map(|(e, rs)| {
                        let rs = rs
                            .iter()
                            .map(|r| RecordV3 { value: r.value.clone(), key: r.key.clone(), timestamp: r.timestamp })
                            .collect();
                        (*e, rs)
                    })
                    .collect(),
            };
            let mut bytes = STATE_V3.to_vec();
            bincode::serde::encode_into_std_write(&v3, &mut bytes, bincode::config::standard()).unwrap();
            proptest::prop_assert_eq!(
                decode_state(&bytes).unwrap(),
                SinkState { transactional_id: id.clone(), epochs: without_headers.clone() }
            );
            // The same records written by format 2, every value present.
            let old = SinkStateV2 {
                transactional_id: id.clone(),
                epochs: epochs
                    .iter()
                    .map(|(e, rs)| {
                        let rs = rs
                            .iter()
                            .map(|r| RecordV2 { value: r.value.clone().unwrap_or_default(), key: r.key.clone(), timestamp: r.timestamp })
                            .collect();
                        (*e, rs)
                    })
                    .collect(),
            };
            let mut bytes = STATE_V2.to_vec();
            bincode::serde::encode_into_std_write(&old, &mut bytes, bincode::config::standard()).unwrap();
            let model: Vec<(u64, Vec<Record>)> = without_headers
                .into_iter()
                .map(|(e, rs)| (e, rs.into_iter().map(|r| Record { value: Some(r.value.unwrap_or_default()), ..r }).collect()))
                .collect();
            proptest::prop_assert_eq!(decode_state(&bytes).unwrap(), SinkState { transactional_id: id, epochs: model });
        }
    }
}
