//! End to end on the real Kafka: records with array fields (strings with
//! escapes, doubles, timestamps; empty, and null where the field is
//! nullable) cross a network edge — a HASH edge between two TaskManager
//! processes, to a `dedup` that passes every record on — and reach the
//! sink exactly as they were read. And arrays whose elements may be null
//! (`array<long?>`): across a HASH edge between processes, unnested and
//! aggregated per user and window, through a stop with a savepoint and a
//! resume at another parallelism, every window's result exactly as a
//! model of the input says.

mod support;

use flowc_playground::kafka::read_topic;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;
use support::cluster::Cluster;
use support::kafka::{create_topic, unique_topic, Kafka};

const RECORDS: i64 = 200;

/// Record `i` as the job writes it back.
fn record(i: i64) -> Value {
    let tags: Vec<String> = (0..i % 4).map(|j| format!("t{j}-\"q\"\\{i}")).collect();
    let scores = if i % 5 == 0 { Value::Null } else { json!([i as f64 / 4.0, -0.5]) };
    json!({ "id": i, "page": format!("/p{}", i % 7), "tags": tags, "scores": scores, "seen": [i * 1000, i * 1000 + 1] })
}

#[test]
fn arrays_cross_a_hash_edge_between_processes_unchanged() {
    let kafka = Kafka::shared();
    let (input, output) = (unique_topic("arrays-in"), unique_topic("arrays-out"));
    create_topic(kafka.bootstrap(), &input, 2).expect("topic");
    create_topic(kafka.bootstrap(), &output, 2).expect("topic");
    let producer: BaseProducer =
        ClientConfig::new().set("bootstrap.servers", kafka.bootstrap()).create().expect("producer");
    for i in 0..RECORDS {
        let v = record(i).to_string();
        producer.send(BaseRecord::<(), str>::to(&input).payload(&v).partition((i % 2) as i32)).expect("send");
    }
    producer.flush(Duration::from_secs(10)).expect("flush");
    // Two TaskManagers of one slot: each subtask of the dedup runs in its own process.
    let cluster = Cluster::start("arrays-hash", 2, 1);
    let text = format!(
        r#"job "Arrays across a HASH edge"
schema A {{ id: long, page: string, tags: array<string>, scores: array<double>?, seen: array<timestamp(epoch_millis)> }}
source kafka {{ servers: "{servers}", topic: "{input}", offsets: earliest, bounded: latest, schema: A }}
    | dedup page, id within 1h
    | sink kafka {{ servers: "{servers}", topic: "{output}" }}
"#,
        servers = kafka.bootstrap()
    );
    let path = cluster.scratch.0.join("arrays.flow");
    std::fs::write(&path, text).expect("writing the job");
    // `dedup` is always behind a HASH edge by its key.
    let id = cluster.submit(&path, &["-p", "2"]);
    cluster.wait_job_state(&id, "FINISHED", Duration::from_secs(90));
    let got = std::cell::RefCell::new(BTreeMap::new());
    read_topic(
        kafka.bootstrap(),
        &output,
        Duration::from_secs(60),
        |r| {
            let v: Value = serde_json::from_slice(r.payload).expect("an output record");
            let id = v["id"].as_i64().expect("id");
            assert!(got.borrow_mut().insert(id, v).is_none(), "record {id} written twice");
        },
        || got.borrow().len() >= RECORDS as usize,
    )
    .expect("reading the output");
    let got = got.into_inner();
    assert_eq!(got.len(), RECORDS as usize);
    for (i, v) in got {
        assert_eq!(v, record(i), "record {i}");
    }
}

/// Record `i` of the nullable-elements job: user `u{i % 3}`, one a second,
/// and elements with nulls in several places (none, first, last, all).
fn reading(i: i64) -> Value {
    let xs = match i % 5 {
        0 => json!([]),
        1 => json!([i, null]),
        2 => json!([null]),
        3 => json!([null, i, i + 1, null]),
        _ => json!([7, -i]),
    };
    json!({ "id": i, "user": format!("u{}", i % 3), "ts": i * 1000, "xs": xs })
}

/// What each (user, window start) gives: elements, present elements,
/// their sum, and the present elements sorted (`array_agg` is by arrival,
/// which two partitions interleave).
fn windows(ids: std::ops::Range<i64>) -> BTreeMap<(String, i64), Value> {
    /// Elements, present elements, their sum, the present ones.
    type Window = (i64, i64, i64, Vec<i64>);
    let mut acc: BTreeMap<(String, i64), Window> = BTreeMap::new();
    for i in ids {
        let r = reading(i);
        let key = (r["user"].as_str().expect("user").to_string(), (i * 1000) / 10_000 * 10_000);
        let e = acc.entry(key).or_default();
        for x in r["xs"].as_array().expect("xs") {
            e.0 += 1;
            if let Some(x) = x.as_i64() {
                e.1 += 1;
                e.2 += x;
                e.3.push(x);
            }
        }
    }
    acc.into_iter()
        .filter(|(_, (n, ..))| *n > 0)
        .map(|(k, (n, present, total, mut seen))| {
            seen.sort_unstable();
            let total = if present > 0 { json!(total) } else { Value::Null };
            (k, json!({ "n": n, "present": present, "total": total, "seen": seen }))
        })
        .collect()
}

fn produce(kafka: &Kafka, topic: &str, records: impl Iterator<Item = (i32, Value)>) {
    let producer: BaseProducer =
        ClientConfig::new().set("bootstrap.servers", kafka.bootstrap()).create().expect("producer");
    for (partition, v) in records {
        let v = v.to_string();
        producer.send(BaseRecord::<(), str>::to(topic).payload(&v).partition(partition)).expect("send");
    }
    producer.flush(Duration::from_secs(10)).expect("flush");
}

/// The committed window results, by (user, window start), each once.
fn read_windows(kafka: &Kafka, topic: &str, at_least: usize, timeout: Duration) -> BTreeMap<(String, i64), Value> {
    let got = std::cell::RefCell::new(BTreeMap::new());
    read_topic(
        kafka.bootstrap(),
        topic,
        timeout,
        |r| {
            let mut v: Value = serde_json::from_slice(r.payload).expect("an output record");
            let key = (v["user"].as_str().expect("user").to_string(), v["start"].as_i64().expect("start"));
            let mut seen: Vec<i64> =
                v["seen"].as_array().expect("seen").iter().map(|x| x.as_i64().expect("a long")).collect();
            seen.sort_unstable();
            let row =
                json!({ "n": v["n"].take(), "present": v["present"].take(), "total": v["total"].take(), "seen": seen });
            assert!(got.borrow_mut().insert(key.clone(), row).is_none(), "window {key:?} written twice");
        },
        || got.borrow().len() >= at_least,
    )
    .expect("reading the output");
    got.into_inner()
}

#[test]
fn nullable_elements_cross_a_hash_edge_and_a_savepoint_into_unnest_and_windows() {
    let kafka = Kafka::shared();
    let (input, output) = (unique_topic("nullarr-in"), unique_topic("nullarr-out"));
    create_topic(kafka.bootstrap(), &input, 2).expect("topic");
    create_topic(kafka.bootstrap(), &output, 2).expect("topic");
    // Each partition gets every other second: both move event time on together.
    let part = |i: i64| (i % 2) as i32;
    produce(kafka, &input, (0..60).map(|i| (part(i), reading(i))));
    let mut cluster = Cluster::start("nullarr-savepoint", 2, 1);
    let text = format!(
        r#"job "Nullable array elements"
set execution.checkpointing.interval = 1s
schema R {{ id: long, user: string, ts: timestamp(epoch_millis), xs: array<long?> }}
source kafka {{ servers: "{servers}", topic: "{input}", offsets: earliest, schema: R }} uid "readings"
    | watermark ts {{ out_of_orderness: 1s, idleness: 5s }} uid "watermarks"
    | dedup id within 1h uid "dedup"
    | unnest xs as x with ordinality as pos uid "unnest"
    | key_by user
    | window tumbling {{ size: 10s }}
    | aggregate {{ user, start: millis(window_start()), n: count(), present: count(x), total: sum(x), seen: array_agg(x) }} uid "windows"
    | sink kafka {{ servers: "{servers}", topic: "{output}", delivery: exactly_once }} uid "sink"
"#,
        servers = kafka.bootstrap()
    );
    let path = cluster.scratch.0.join("nullarr.flow");
    std::fs::write(&path, text).expect("writing the job");
    // Records with arrays cross the HASH edge to `dedup` (by id) between
    // the two processes; the unnested elements another to the windows.
    let id = cluster.submit(&path, &["-p", "2"]);
    cluster.wait_all_tasks(&id, "RUNNING", Duration::from_secs(30));
    // Windows up to [40 s, 50 s) fire; [50 s, 60 s) is open, in state.
    let first = windows(0..50);
    let got = read_windows(kafka, &output, first.len(), Duration::from_secs(90));
    assert_eq!(got, first, "{}", cluster.logs());
    let savepoint = cluster.stop_with_savepoint(&id, Duration::from_secs(60));
    produce(kafka, &input, (60..120).map(|i| (part(i), reading(i))));
    // Far ahead on both partitions: every window up to [110 s, 120 s) fires.
    produce(kafka, &input, [1_000_000, 1_000_001].into_iter().map(|i| (part(i), reading(i))));
    cluster.add_taskmanager(1);
    let id2 = cluster.submit(&path, &["-p", "3", "-s", savepoint.as_str()]);
    cluster.wait_all_tasks(&id2, "RUNNING", Duration::from_secs(30));
    let want = windows(0..120);
    let got = read_windows(kafka, &output, want.len(), Duration::from_secs(120));
    assert_eq!(got, want, "{}", cluster.logs());
    // Nothing more (a repeat would show) after two more checkpoints.
    let done = cluster.metric(&id2, "numberOfCompletedCheckpoints").unwrap_or(0);
    cluster.wait_for("two more checkpoints", Duration::from_secs(30), |c| {
        (c.metric(&id2, "numberOfCompletedCheckpoints").unwrap_or(0) >= done + 2).then_some(())
    });
    let again = read_windows(kafka, &output, usize::MAX, Duration::from_secs(5));
    assert_eq!(again, want);
}
