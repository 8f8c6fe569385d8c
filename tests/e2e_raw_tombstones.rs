//! End to end on the real Kafka: a null in `format: raw` is a Kafka
//! tombstone, as Flink's raw format writes it. A `raw` Kafka sink writes a
//! null `string?` as a message without a value, and an empty string as an
//! empty value: read back with a plain consumer, `payload()` is `None` for
//! exactly the nulls. Plain (at-least-once) and exactly-once sinks both,
//! the exactly-once one through a killed TaskManager restored from a
//! checkpoint (each record once, the nulls still tombstones: its state
//! keeps them). A `raw` Kafka source reads a tombstone back as a null.

mod support;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use support::cluster::Cluster;
use support::kafka::{create_topic, unique_topic, Kafka};

/// Record `i`'s `s`: null for every fourth, empty for 2, else `s<i>`.
fn s_of(i: i64) -> Option<String> {
    match i {
        _ if i % 4 == 1 => None,
        2 => Some(String::new()),
        _ => Some(format!("s{i}")),
    }
}

/// Records `range` as JSON, on the partition of their id's parity.
fn load(bootstrap: &str, topic: &str, range: std::ops::Range<i64>) {
    let producer: BaseProducer = ClientConfig::new().set("bootstrap.servers", bootstrap).create().expect("producer");
    for i in range {
        let v = serde_json::json!({ "id": i, "s": s_of(i) }).to_string();
        producer.send(BaseRecord::<(), str>::to(topic).payload(&v).partition((i % 2) as i32)).expect("send");
    }
    producer.flush(Duration::from_secs(10)).expect("flush");
}

/// The message values `range` should make, each with how often.
fn want(range: std::ops::Range<i64>) -> BTreeMap<Option<Vec<u8>>, usize> {
    let mut out = BTreeMap::new();
    for i in range {
        *out.entry(s_of(i).map(String::into_bytes)).or_insert(0) += 1;
    }
    out
}

/// The committed message values of `topic` (`None`: no value), each with
/// how often, once `n` are read or `timeout` passed — read with a plain
/// consumer.
fn values(bootstrap: &str, topic: &str, n: usize, timeout: Duration) -> BTreeMap<Option<Vec<u8>>, usize> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "raw-tombstones-check")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..2 {
        tpl.add_partition_offset(topic, p, Offset::Beginning).expect("partition");
    }
    consumer.assign(&tpl).expect("assign");
    let (mut out, mut read) = (BTreeMap::new(), 0);
    let deadline = Instant::now() + timeout;
    while read < n && Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                *out.entry(m.payload().map(<[u8]>::to_vec)).or_insert(0) += 1;
                read += 1;
            }
            Some(Err(KafkaError::PartitionEOF(_))) | None => {}
            Some(Err(e)) => panic!("reading {topic}: {e}"),
        }
    }
    out
}

fn topics(prefix: &str, names: &[&str]) -> Vec<String> {
    let kafka = Kafka::shared();
    names
        .iter()
        .map(|s| {
            let t = unique_topic(&format!("{prefix}-{s}"));
            create_topic(kafka.bootstrap(), &t, 2).expect("topic");
            t
        })
        .collect()
}

fn job(dir: &std::path::Path, input: &str, output: &str, delivery: &str, more: &str) -> std::path::PathBuf {
    let text = format!(
        r#"job "Raw tombstones"
param servers: string = "localhost:9092"
set execution.checkpointing.interval = 1s
schema E {{ id: long, s: string? }}
schema R {{ s: string? }}
source kafka {{ servers: $servers, topic: "{input}", group: "raw-in", offsets: earliest, schema: E }} uid "source"
    | select {{ s }} uid "select"
    | sink kafka {{ servers: $servers, topic: "{output}", format: raw, delivery: {delivery} }} uid "sink"
{more}
"#
    );
    let path = dir.join("raw_tombstones.flow");
    std::fs::write(&path, text).expect("writing the job");
    path
}

#[test]
fn a_raw_kafka_sink_writes_a_null_as_a_tombstone_and_a_raw_source_reads_it_back_as_a_null() {
    let kafka = Kafka::shared();
    let t = topics("raw-alo", &["in", "out", "back"]);
    // The output read back by a `raw` source, written as JSON.
    let back = format!(
        r#"source kafka {{ servers: $servers, topic: "{}", group: "raw-back", offsets: earliest, format: raw, schema: R }} uid "raw-source"
    | sink kafka {{ servers: $servers, topic: "{}" }} uid "json-sink""#,
        t[1], t[2]
    );
    let cluster = Cluster::start_with("rawalo", 1, 4, "");
    let path = job(&cluster.scratch.0, &t[0], &t[1], "at_least_once", &back);
    load(kafka.bootstrap(), &t[0], 0..40);
    let id = cluster.submit(&path, &["-p", "1", "--servers", kafka.bootstrap()]);
    let got = values(kafka.bootstrap(), &t[1], 40, Duration::from_secs(90));
    assert_eq!(got, want(0..40));
    assert_eq!(got.get(&None), Some(&10), "every null a message without a value");
    assert_eq!(got.get(&Some(Vec::new())), Some(&1), "an empty string an empty value");
    let json = values(kafka.bootstrap(), &t[2], 40, Duration::from_secs(60));
    let mut read_back = BTreeMap::new();
    for (v, n) in json {
        let v: serde_json::Value = serde_json::from_slice(&v.expect("a JSON value")).expect("JSON");
        *read_back.entry(v["s"].as_str().map(|s| s.as_bytes().to_vec())).or_insert(0) += n;
    }
    assert_eq!(read_back, want(0..40), "a tombstone reads back as a null");
    cluster.flowc(&["cancel", &id]);
}

#[test]
fn an_exactly_once_raw_kafka_sink_writes_nulls_as_tombstones_once_each_through_a_kill() {
    let kafka = Kafka::shared();
    let t = topics("raw-eo", &["in", "out"]);
    let mut cluster = Cluster::start_with("raweo", 1, 2, "");
    let path = job(&cluster.scratch.0, &t[0], &t[1], "exactly_once", "");
    load(kafka.bootstrap(), &t[0], 0..40);
    let id = cluster.submit(&path, &["-p", "2", "--servers", kafka.bootstrap()]);
    cluster.wait_all_tasks(&id, "RUNNING", Duration::from_secs(30));
    assert_eq!(values(kafka.bootstrap(), &t[1], 40, Duration::from_secs(90)), want(0..40));
    // The first phase is in a completed checkpoint: the restore does not read it again.
    cluster.wait_for_more_checkpoints(&id, 2);
    cluster.kill_taskmanager(0);
    cluster.wait_all_tasks(&id, "SCHEDULED", Duration::from_secs(15));
    cluster.add_taskmanager(2);
    cluster.wait_all_tasks(&id, "RUNNING", Duration::from_secs(30));
    load(kafka.bootstrap(), &t[0], 40..80);
    let got = values(kafka.bootstrap(), &t[1], 80, Duration::from_secs(90));
    // Anything written twice would be read too: a checkpoint more, and read again.
    cluster.wait_for_more_checkpoints(&id, 2);
    let again = values(kafka.bootstrap(), &t[1], usize::MAX, Duration::from_secs(5));
    assert_eq!(got, want(0..80));
    assert_eq!(again, want(0..80));
    assert_eq!(got.get(&None), Some(&20));
    assert_eq!(cluster.metric(&id, "numRestarts"), Some(1));
    cluster.flowc(&["cancel", &id]);
}
