//! End to end on the real Kafka: `jobs/examples/kafka_metadata.flow` reads
//! two topics (`topics: [..]`) of keyed records with headers and record
//! timestamps into metadata fields, and writes them keyed by user with the
//! same timestamp through the exactly-once sink. A `read_committed` reader
//! checks every output record — its key, its timestamp and its fields
//! against what was produced, including the topic, partition and offset it
//! was read from — through a killed TaskManager: each record exactly once.
//! A source of a `topic_pattern` finds a topic created while it runs.

mod support;

use flowc_runtime::checkpoint::SourceState;
use flowc_runtime::connectors::kafka::KafkaSourceReader;
use flowc_runtime::connectors::kafka_topics::Assignment;
use flowc_runtime::connectors::{SourcePoll, SourceReader};
use flowc_runtime::metrics::TaskCounters;
use rdkafka::config::ClientConfig;
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use support::cluster::Cluster;
use support::kafka::{create_topic, read_committed, unique_topic, Kafka};

const START_MS: i64 = 1_795_558_500_000;

/// Record `n`: its topic (of `eu`, `us`), key, timestamp and trace header
/// (every seventh record has none).
fn record(n: i64, eu: &str, us: &str) -> (String, String, i64, Option<String>) {
    let topic = if n % 3 == 0 { us } else { eu };
    (topic.to_string(), format!("user-{}", n % 11), START_MS + n * 1000, (n % 7 != 0).then(|| format!("t-{n}")))
}

fn produce(bootstrap: &str, eu: &str, us: &str, range: std::ops::Range<i64>) {
    let producer: BaseProducer =
        ClientConfig::new().set("bootstrap.servers", bootstrap).create().expect("a Kafka producer");
    for n in range {
        let (topic, key, ts, trace) = record(n, eu, us);
        let payload = json!({ "n": n }).to_string();
        let mut headers = OwnedHeaders::new().insert(Header { key: "other", value: Some("x") });
        if let Some(t) = &trace {
            headers = headers.insert(Header { key: "trace-id", value: Some(t.as_str()) });
        }
        let mut rec = BaseRecord::to(&topic).key(&key).payload(&payload).timestamp(ts).headers(headers);
        loop {
            match producer.send(rec) {
                Ok(()) => break,
                Err((_, back)) => {
                    rec = back;
                    producer.poll(Duration::from_millis(10));
                }
            }
        }
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(30)).expect("flushing the input");
}

/// Every message of `topics` (read_committed, from the beginning), polled
/// until `want` are in and 3 s more (anything more would be a duplicate),
/// or `timeout`.
fn read_all(bootstrap: &str, topics: &[(&str, i32)], want: usize, timeout: Duration) -> Vec<Msg> {
    read_committed(bootstrap, topics, want, timeout, Duration::from_secs(3), |m| {
        let header = |name: &str| {
            m.headers().and_then(|h| {
                h.iter().find(|h| h.key == name).and_then(|h| h.value).map(|v| String::from_utf8_lossy(v).to_string())
            })
        };
        Msg {
            topic: m.topic().to_string(),
            partition: m.partition(),
            offset: m.offset(),
            key: m.key().map(|k| String::from_utf8_lossy(k).to_string()),
            timestamp: m.timestamp().to_millis(),
            trace: header("trace-id"),
            value: m.payload().map(|v| serde_json::from_slice(v).expect("a JSON value")).unwrap_or(Value::Null),
        }
    })
}

#[derive(Debug, Clone)]
struct Msg {
    topic: String,
    partition: i32,
    offset: i64,
    key: Option<String>,
    timestamp: Option<i64>,
    trace: Option<String>,
    value: Value,
}

/// Checks the output against the input: every record once, with its key,
/// timestamp and fields (the input's topic, partition and offset among them).
fn check(kafka: &Kafka, eu: &str, us: &str, out: &str, n: i64, what: &str) {
    let input: BTreeMap<i64, Msg> =
        read_all(kafka.bootstrap(), &[(eu, 2), (us, 1)], n as usize, Duration::from_secs(30))
            .into_iter()
            .map(|m| (m.value["n"].as_i64().expect("n"), m))
            .collect();
    assert_eq!(input.len() as i64, n, "{what}: the input");
    let output = read_all(kafka.bootstrap(), &[(out, 2)], n as usize, Duration::from_secs(120));
    let mut seen: BTreeMap<i64, usize> = BTreeMap::new();
    for m in &output {
        let k = m.value["n"].as_i64().unwrap_or_else(|| panic!("{what}: no `n` in {m:?}"));
        *seen.entry(k).or_default() += 1;
        let i = &input[&k];
        let (topic, key, ts, trace) = record(k, eu, us);
        assert_eq!((&i.topic, &i.key, i.timestamp, &i.trace), (&topic, &Some(key.clone()), Some(ts), &trace));
        assert_eq!(m.key.as_deref(), Some(key.as_str()), "{what}: the message key of {m:?}");
        assert_eq!(m.timestamp, Some(ts), "{what}: the record timestamp of {m:?}");
        assert_eq!(m.trace, None, "{what}: headers are not copied: {m:?}");
        let want = json!({
            "user": key,
            "n": k,
            "at": flowc_ts(ts),
            "trace": trace.unwrap_or_else(|| "none".to_string()),
            "topic": topic,
            "partition": i.partition,
            "offset": i.offset,
        });
        assert_eq!(m.value, want, "{what}: the record {k}");
    }
    let repeated: Vec<_> = seen.iter().filter(|(_, c)| **c > 1).take(5).collect();
    assert!(repeated.is_empty(), "{what}: records written more than once: {repeated:?}");
    let missing: Vec<i64> = (0..n).filter(|k| !seen.contains_key(k)).take(5).collect();
    assert!(missing.is_empty(), "{what}: records missing: {missing:?} ({} of {n} read)", seen.len());
}

/// A timestamp as flowc writes it in JSON (ISO-8601, UTC, milliseconds).
fn flowc_ts(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z", rem / 3600, rem % 3600 / 60, rem % 60, ms.rem_euclid(1000))
}

#[test]
fn metadata_fields_keys_and_timestamps_exactly_once_through_a_kill() {
    assert_eq!(flowc_ts(START_MS), "2026-11-24T22:15:00.000Z");
    let kafka = Kafka::shared();
    let (eu, us, out) = (unique_topic("meta-eu"), unique_topic("meta-us"), unique_topic("meta-out"));
    create_topic(kafka.bootstrap(), &eu, 2).expect("topic eu");
    create_topic(kafka.bootstrap(), &us, 1).expect("topic us");
    create_topic(kafka.bootstrap(), &out, 2).expect("output topic");
    produce(kafka.bootstrap(), &eu, &us, 0..600);

    let mut cluster = Cluster::start("kafka-metadata", 1, 2);
    let job = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("jobs/examples/kafka_metadata.flow");
    let args = ["-p", "2", "--servers", kafka.bootstrap(), "--eu", &eu, "--us", &us, "--out", &out];
    let id = cluster.submit(&job, &args);
    cluster.wait_all_tasks(&id, "RUNNING", Duration::from_secs(30));
    check(kafka, &eu, &us, &out, 600, "before the kill");

    cluster.wait_for_more_checkpoints(&id, 2);
    cluster.kill_taskmanager(0);
    cluster.wait_all_tasks(&id, "SCHEDULED", Duration::from_secs(15));
    cluster.add_taskmanager(2);
    cluster.wait_all_tasks(&id, "RUNNING", Duration::from_secs(30));
    produce(kafka.bootstrap(), &eu, &us, 600..1000);
    check(kafka, &eu, &us, &out, 1000, "after the kill");
    assert_eq!(cluster.metric(&id, "numRestarts"), Some(1));
}

/// Polls `reader` until it has handed out `n` records (or fails after 30 s).
fn poll_records(reader: &mut KafkaSourceReader, n: usize) -> Vec<Vec<flowc_runtime::record::Value>> {
    let mut rows = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while rows.len() < n {
        assert!(Instant::now() < deadline, "only {} of {n} records: {rows:?}", rows.len());
        if let SourcePoll::Records(b) = reader.poll(Duration::from_millis(100)).expect("poll") {
            rows.extend(b.rows().into_iter().map(|(_, r)| r));
        }
    }
    rows
}

#[test]
fn a_topic_pattern_discovers_a_topic_created_while_it_runs() {
    use flowc_compiler::ir::{
        DataType, ErrorPolicy, Field, Format, KafkaSource, Metadata, Schema, StartingOffsets, TopicSet,
    };
    let kafka = Kafka::shared();
    let base = unique_topic("pattern");
    let (first, second) = (format!("{base}-a"), format!("{base}-b"));
    create_topic(kafka.bootstrap(), &first, 2).expect("first topic");
    produce(kafka.bootstrap(), &first, &first, 0..5);
    let mut topic = Field::new("topic", DataType::String);
    topic.metadata = Some(Metadata::Topic);
    let spec = KafkaSource {
        servers: kafka.bootstrap().to_string(),
        topic: String::new(),
        topics: Some(TopicSet::Pattern(format!("{base}-.*"))),
        discovery_ms: Some(300),
        group: format!("{base}-group"),
        offsets: StartingOffsets::Latest,
        bounded: false,
        schema: Schema { name: None, fields: vec![Field::new("n", DataType::Long), topic] },
        on_error: ErrorPolicy::Skip,
        format: Format::Json,
        tombstones: None,
    };
    let assignment = Assignment { splits: Vec::new(), subtask: 0, parallelism: 1 };
    let counters = std::sync::Arc::new(TaskCounters::new());
    // `offsets: latest`: the records already there are not read; those after the start are.
    let mut reader = KafkaSourceReader::new(&spec, "src", &assignment, &[], None, counters, true).expect("reader");
    let _ = reader.poll(Duration::from_millis(500));
    produce(kafka.bootstrap(), &first, &first, 5..8);
    let rows = poll_records(&mut reader, 3);
    assert!(rows.iter().all(|r| r[1] == flowc_runtime::record::Value::Str(first.clone())), "{rows:?}");
    // A new matching topic: found at the next discovery and read from its earliest offset.
    create_topic(kafka.bootstrap(), &second, 1).expect("second topic");
    produce(kafka.bootstrap(), &second, &second, 100..104);
    let rows = poll_records(&mut reader, 4);
    let ns: Vec<_> = rows.iter().map(|r| r[0].clone()).collect();
    assert_eq!(ns, (100..104).map(flowc_runtime::record::Value::Int).collect::<Vec<_>>());
    assert!(rows.iter().all(|r| r[1] == flowc_runtime::record::Value::Str(second.clone())));
    // The position holds every (topic, partition) read.
    match reader.snapshot(1) {
        SourceState::KafkaTopics { offsets } => {
            let read: Vec<(String, i32)> = offsets.iter().map(|(t, p, _)| (t.clone(), *p)).collect();
            assert!(read.contains(&(second.clone(), 0)), "{offsets:?}");
            assert!(read.iter().any(|(t, _)| *t == first), "{offsets:?}");
        }
        other => panic!("{other:?}"),
    }
}
