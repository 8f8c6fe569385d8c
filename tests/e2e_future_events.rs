//! End to end on the real Kafka: events from the year 3000. A watermark
//! stage with `max_future: 1h` and `on_error dead_letter` sends exactly the
//! far-future records to the dead-letter topic (with the error, the
//! operator, the row, where it was read and its bytes), counts them in `numRecordsFromTheFuture` for its
//! vertex (`GET /jobs/:jid/vertices/:vid/errors`, and per subtask), logs
//! the first one once with the record, and keeps them out of the
//! watermark: every ordinary record still reaches its window.

mod support;

use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use std::collections::BTreeSet;
use std::time::Duration;
use support::cluster::Cluster;
use support::kafka::{create_topic, read_json, unique_topic, Kafka};

const RECORDS: i64 = 200;
/// The ids whose event time is in the year 3000.
const FUTURE: [i64; 3] = [5, 100, 180];
const YEAR_3000: i64 = 32_503_680_000_000;
/// 2026-11-24T22:15:00Z: record i is `START + i` seconds.
const START: i64 = 1_795_558_500_000;

/// Record `i`'s bytes.
fn payload(i: i64) -> String {
    let at = if FUTURE.contains(&i) { YEAR_3000 + i } else { START + i * 1000 };
    format!(r#"{{"id": {i}, "at": {at}}}"#)
}

fn load(bootstrap: &str, topic: &str) {
    let producer: BaseProducer = ClientConfig::new().set("bootstrap.servers", bootstrap).create().expect("producer");
    for i in 0..RECORDS {
        let v = payload(i);
        producer.send(BaseRecord::<(), str>::to(topic).payload(&v).partition(0)).expect("send");
    }
    producer.flush(Duration::from_secs(10)).expect("flush");
}

#[test]
fn year_3000_records_are_dead_lettered_counted_per_vertex_and_logged_once() {
    let kafka = Kafka::shared();
    let t: Vec<String> = ["in", "out", "dlq"].iter().map(|s| unique_topic(&format!("future-{s}"))).collect();
    for topic in &t {
        create_topic(kafka.bootstrap(), topic, 1).expect("topic");
    }
    load(kafka.bootstrap(), &t[0]);
    let cluster = Cluster::start("future", 1, 1);
    let text = format!(
        r#"job "Future events"
param servers: string = "localhost:9092"
set pipeline.dead-letter.topic = "{dlq}"
set pipeline.dead-letter.servers = $servers
schema E {{ id: long, at: timestamp(epoch_millis) }}
source kafka {{ servers: $servers, topic: "{input}", offsets: earliest, bounded: latest, schema: E }}
    | watermark at {{ max_future: 1h }} on_error dead_letter name "Clock"
    | key_by id
    | window tumbling {{ size: 1m }}
    | aggregate {{ id, n: count() }}
    | sink kafka {{ servers: $servers, topic: "{output}" }}
"#,
        dlq = t[2],
        input = t[0],
        output = t[1]
    );
    let path = cluster.scratch.0.join("future.flow");
    std::fs::write(&path, text).expect("writing the job");
    let id = cluster.submit(&path, &["-p", "1", "--servers", kafka.bootstrap()]);
    cluster.wait_job_state(&id, "FINISHED", Duration::from_secs(90));

    // Every ordinary record reached its window: the year 3000 moved no watermark.
    let out = read_json(kafka.bootstrap(), &t[1]);
    let ids: BTreeSet<i64> = out.iter().filter_map(|v| v["id"].as_i64()).collect();
    let want: BTreeSet<i64> = (0..RECORDS).filter(|i| !FUTURE.contains(i)).collect();
    assert_eq!(ids, want);
    assert!(out.iter().all(|v| v["n"] == 1), "{out:?}");

    let dead = read_json(kafka.bootstrap(), &t[2]);
    let dead_ids: BTreeSet<i64> = dead.iter().filter_map(|d| d["row"]["id"].as_i64()).collect();
    assert_eq!((dead.len(), dead_ids), (FUTURE.len(), FUTURE.into_iter().collect()), "{dead:#?}");
    for d in &dead {
        assert_eq!(d["operator"], "Clock", "{d}");
        let error = d["error"].as_str().unwrap_or("");
        assert!(error.contains("beyond `max_future` (3600000ms)"), "{d}");
        // One partition, loaded in order of id: record i is at offset i.
        let i = d["row"]["id"].as_i64().unwrap_or(-1);
        assert_eq!(d["source"], serde_json::json!({"topic": t[0], "partition": 0, "offset": i}), "{d}");
        assert_eq!(d["value"].as_str(), Some(payload(i).as_str()), "the bytes as produced: {d}");
    }

    assert_eq!(cluster.metric(&id, "numRecordsFromTheFuture"), Some(FUTURE.len() as i64));
    assert_eq!(cluster.metric(&id, "numRecordsDeadLettered"), Some(FUTURE.len() as i64));
    // Per vertex: the watermark's (chained with its source), not the window's.
    let vertices = cluster.job(&id)["vertices"].as_array().cloned().unwrap_or_default();
    let mut counted = Vec::new();
    for v in &vertices {
        let vid = v["id"].as_str().expect("vertex id");
        let errors = cluster.rest().get(&format!("/jobs/{id}/vertices/{vid}/errors")).expect("errors");
        let n = errors["counts"]["numRecordsFromTheFuture"].as_u64().unwrap_or(0);
        if n > 0 {
            let samples = errors["errors"].as_array().cloned().unwrap_or_default();
            assert_eq!(samples.len(), FUTURE.len(), "{errors}");
            for s in &samples {
                assert_eq!(
                    (s["kind"].as_str(), s["action"].as_str()),
                    (Some("from-the-future"), Some("dead-lettered"))
                );
                assert_eq!(s["operator"], "Clock", "{s}");
            }
            let per_subtask = cluster
                .rest()
                .get(&format!("/jobs/{id}/vertices/{vid}/subtasks/metrics?get=numRecordsFromTheFuture&agg=sum"))
                .expect("subtasks/metrics");
            assert_eq!(per_subtask[0]["sum"].as_f64(), Some(FUTURE.len() as f64), "{per_subtask}");
        }
        counted.push((v["name"].as_str().unwrap_or("").to_string(), n));
    }
    let with_future: Vec<&(String, u64)> = counted.iter().filter(|(_, n)| *n > 0).collect();
    assert_eq!(with_future.len(), 1, "one vertex counts them: {counted:?}");
    assert_eq!(with_future[0].1, FUTURE.len() as u64, "{counted:?}");
    assert!(with_future[0].0.contains("Clock"), "{counted:?}");

    // Logged once, with the record.
    let log = cluster.taskmanager_log(0);
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("is beyond `max_future`")).collect();
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(lines[0].contains(&format!("{}", YEAR_3000 + FUTURE[0])), "the first one, with its record: {}", lines[0]);
}
