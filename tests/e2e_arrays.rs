//! End to end on the real Kafka: records with array fields (strings with
//! escapes, doubles, timestamps; empty, and null where the field is
//! nullable) cross a network edge — a HASH edge between two TaskManager
//! processes, to a `dedup` that passes every record on — and reach the
//! sink exactly as they were read.

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
