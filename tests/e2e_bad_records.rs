//! End to end on the real Kafka: a source's bad-record policy. With
//! `on_error: dead_letter` the dead-letter topic receives exactly the
//! injected bad records (with the error, the operator and their offset)
//! while every good record reaches the sink; the counts and samples are
//! over REST. With `on_error: fail` the job fails naming the record.
//! Source and stage dead letters are cut to fit the dead-letter topic's
//! own `max.message.bytes` (read when the writer opens), not only
//! Kafka's 1,000,000 bytes: a 2,000-byte topic takes them, and the job
//! runs on.

mod support;

use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::Duration;
use support::cluster::Cluster;
use support::kafka::{create_topic, create_topic_with, unique_topic, Kafka};

const GOOD: i64 = 300;

/// Bad records, each sent after good record `at` to partition `at % 2`.
const BAD: [(i64, &[u8]); 5] = [
    (10, b"not json"),
    (50, br#"{"id": 7}"#),
    (120, br#"{"id": "x", "page": "/a"}"#),
    (121, b"\xff\xfe\x00"),
    (299, br#"{"id": 1, "page": "/a"} trailing"#),
];

fn load(bootstrap: &str, topic: &str) {
    let producer: BaseProducer = ClientConfig::new().set("bootstrap.servers", bootstrap).create().expect("producer");
    for i in 0..GOOD {
        let v = format!(r#"{{"id": {i}, "page": "/p{}"}}"#, i % 3);
        let p = (i % 2) as i32;
        producer.send(BaseRecord::<(), str>::to(topic).payload(&v).partition(p)).expect("send");
        for (at, bad) in BAD {
            if at == i {
                producer.send(BaseRecord::<(), [u8]>::to(topic).payload(bad).partition(p)).expect("send");
            }
        }
    }
    producer.flush(Duration::from_secs(10)).expect("flush");
}

fn job(dir: &std::path::Path, input: &str, output: &str, policy: &str) -> std::path::PathBuf {
    let text = format!(
        r#"job "Bad records"
param servers: string = "localhost:9092"
schema E {{ id: long, page: string }}
source kafka {{ servers: $servers, topic: "{input}", offsets: earliest, bounded: latest, schema: E, {policy} }}
        name "Events"
    | sink kafka {{ servers: $servers, topic: "{output}" }}
"#
    );
    let path = dir.join("bad_records.flow");
    std::fs::write(&path, text).expect("writing the job");
    path
}

fn read_all(bootstrap: &str, topic: &str, want: usize) -> Vec<Value> {
    let mut out = Vec::new();
    flowc_playground::kafka::read_topic(
        bootstrap,
        topic,
        Duration::from_secs(60),
        |r| out.push(serde_json::from_slice::<Value>(r.payload).unwrap_or(Value::Null)),
        || true,
    )
    .expect("reading");
    assert!(out.len() >= want || want == 0, "{topic}: {} of {want} records", out.len());
    out
}

#[test]
fn a_dead_letter_topic_receives_exactly_the_bad_records() {
    let kafka = Kafka::shared();
    let (input, output, dlq) = (unique_topic("bad-in"), unique_topic("bad-out"), unique_topic("bad-dlq"));
    for t in [&input, &output, &dlq] {
        create_topic(kafka.bootstrap(), t, 2).expect("topic");
    }
    load(kafka.bootstrap(), &input);
    let cluster = Cluster::start("deadletter", 1, 2);
    let policy = format!(r#"on_error: dead_letter, dead_letter_topic: "{dlq}""#);
    let path = job(&cluster.scratch.0, &input, &output, &policy);
    let id = cluster.submit(&path, &["-p", "2", "--servers", kafka.bootstrap()]);
    cluster.wait_job_state(&id, "FINISHED", Duration::from_secs(90));

    // Every good record reached the sink, once (no checkpoints, no restarts).
    let good = read_all(kafka.bootstrap(), &output, GOOD as usize);
    let ids: BTreeSet<i64> = good.iter().filter_map(|v| v["id"].as_i64()).collect();
    assert_eq!(good.len(), GOOD as usize);
    assert_eq!(ids, (0..GOOD).collect());

    // The dead-letter topic holds exactly the bad records, as they were sent.
    let dead = read_all(kafka.bootstrap(), &dlq, BAD.len());
    assert_eq!(dead.len(), BAD.len(), "{dead:#?}");
    let mut values: Vec<Vec<u8>> = dead
        .iter()
        .map(|d| match d["value_encoding"].as_str() {
            Some("base64") => {
                assert_eq!(d["value"], "//4A");
                b"\xff\xfe\x00".to_vec()
            }
            _ => d["value"].as_str().expect("value").as_bytes().to_vec(),
        })
        .collect();
    values.sort();
    let mut sent: Vec<Vec<u8>> = BAD.iter().map(|(_, b)| b.to_vec()).collect();
    sent.sort();
    assert_eq!(values, sent);
    for d in &dead {
        assert_eq!(d["operator"], "Events", "{d}");
        assert_eq!(d["source"]["topic"], input.as_str(), "{d}");
        assert!(d["source"]["partition"].is_i64() && d["source"]["offset"].is_i64(), "{d}");
        assert!(!d["error"].as_str().unwrap_or("").is_empty(), "{d}");
        assert!(d["timestamp"].is_i64(), "{d}");
    }
    let missing = dead.iter().find(|d| d["value"] == r#"{"id": 7}"#).expect("the record without page");
    assert!(missing["error"].as_str().unwrap_or("").contains("missing field `page`"), "{missing}");

    // Counted, and sampled over REST.
    assert_eq!(cluster.metric(&id, "numRecordsDecodeErrors"), Some(BAD.len() as i64));
    assert_eq!(cluster.metric(&id, "numRecordsDeadLettered"), Some(BAD.len() as i64));
    let vid = cluster.job(&id)["vertices"][0]["id"].as_str().expect("vertex id").to_string();
    let errors = cluster.rest().get(&format!("/jobs/{id}/vertices/{vid}/errors")).expect("errors");
    assert_eq!(errors["counts"]["numRecordsDeadLettered"], BAD.len() as u64, "{errors}");
    let samples = errors["errors"].as_array().expect("samples");
    assert_eq!(samples.len(), BAD.len(), "{errors}");
    assert!(samples.iter().all(|s| s["kind"] == "decode" && s["action"] == "dead-lettered"), "{errors}");
    let unknown = cluster.rest().get(&format!("/jobs/{id}/vertices/00000000000000000000000000000000/errors"));
    assert!(unknown.is_err(), "{unknown:?}");
}

#[test]
fn on_error_fail_fails_the_job_naming_the_record() {
    let kafka = Kafka::shared();
    let (input, output) = (unique_topic("fail-in"), unique_topic("fail-out"));
    for t in [&input, &output] {
        create_topic(kafka.bootstrap(), t, 2).expect("topic");
    }
    load(kafka.bootstrap(), &input);
    let cluster = Cluster::start("badfail", 1, 2);
    let path = job(&cluster.scratch.0, &input, &output, "on_error: fail");
    let id = cluster.submit(&path, &["-p", "2", "--servers", kafka.bootstrap()]);
    cluster.wait_job_state(&id, "FAILED", Duration::from_secs(90));
    let ex = cluster.rest().get(&format!("/jobs/{id}/exceptions")).expect("exceptions");
    let cause = ex["root-exception"].as_str().unwrap_or("");
    assert!(cause.contains("cannot decode the record at") && cause.contains(&input), "{ex}");
    assert!(cause.contains("on_error: fail"), "{ex}");
}

#[test]
fn the_dead_letter_example_sends_exactly_its_bad_lines() {
    let kafka = Kafka::shared();
    let dlq = unique_topic("example-dlq");
    create_topic(kafka.bootstrap(), &dlq, 1).expect("topic");
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let input = repo.join("jobs/examples/data/events");
    let scratch = support::cluster::Scratch::new("dlq-example");
    let o = std::process::Command::new(support::cluster::flowc_bin())
        .current_dir(&scratch.0)
        .env("FLOWC_CONF_DIR", scratch.0.join("no-conf"))
        .arg("run")
        .arg(repo.join("jobs/examples/dead_letter.flow"))
        .args(["--servers", kafka.bootstrap(), "--dlq", &dlq, "--out", "out", "--input"])
        .arg(&input)
        .output()
        .expect("flowc run");
    assert!(o.status.success(), "{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    let written = std::fs::read_to_string(scratch.0.join("out/part-0.jsonl")).expect("the sink's file");
    assert_eq!(
        written,
        "{\"user\":\"ana\",\"page\":\"/index\",\"ms\":120}\n{\"user\":\"bob\",\"page\":\"/shop\",\"ms\":80}\n{\"user\":\"bob\",\"page\":\"/help\",\"ms\":300}\n"
    );
    let dead = read_all(kafka.bootstrap(), &dlq, 3);
    let file = format!("{}/2026-11-24.jsonl", input.display());
    let got: Vec<(u64, String, String)> = dead
        .iter()
        .map(|d| {
            assert_eq!(d["operator"], "Page views", "{d}");
            assert_eq!(d["source"]["file"], file.as_str(), "{d}");
            (
                d["source"]["line"].as_u64().expect("line"),
                d["value"].as_str().expect("value").to_string(),
                d["error"].as_str().expect("error").to_string(),
            )
        })
        .collect();
    assert_eq!(got.len(), 3, "{dead:#?}");
    assert_eq!((got[0].0, got[0].1.as_str()), (3, r#"{"user": "ana", "page": "/shop"}"#));
    assert!(got[0].2.contains("missing field `ms`"), "{got:?}");
    assert_eq!((got[1].0, got[1].1.as_str()), (4, r#"{"user": "cy", "page": "/help", "ms": "fast"}"#));
    assert_eq!((got[2].0, got[2].1.as_str()), (5, "not json at all"));
}

#[test]
fn source_and_stage_dead_letters_are_cut_to_fit_the_dead_letter_topics_own_limit() {
    let kafka = Kafka::shared();
    let (input, output, dlq) = (unique_topic("small-in"), unique_topic("small-out"), unique_topic("small-dlq"));
    for t in [&input, &output] {
        create_topic(kafka.bootstrap(), t, 1).expect("topic");
    }
    create_topic_with(kafka.bootstrap(), &dlq, 1, &[("max.message.bytes", "2000")]).expect("topic");
    let producer: BaseProducer =
        ClientConfig::new().set("bootstrap.servers", kafka.bootstrap()).create().expect("producer");
    let long = "x".repeat(10_000);
    let records = [
        r#"{"id": 0, "n": 1, "s": "a"}"#.to_string(),
        // 10 kB, not JSON: the source's dead letter.
        format!("not json {long}"),
        // 10 kB, n = 0 under `100 / n`: the stage's dead letter, with its row.
        format!(r#"{{"id": 2, "n": 0, "s": "{long}"}}"#),
        r#"{"id": 3, "n": 1, "s": "b"}"#.to_string(),
    ];
    for v in &records {
        producer.send(BaseRecord::<(), str>::to(&input).payload(v)).expect("send");
    }
    producer.flush(Duration::from_secs(10)).expect("flush");
    let cluster = Cluster::start_with("smalldlq", 1, 2, "restart-strategy.type: none\n");
    let text = format!(
        r#"job "Small dead letters"
param servers: string = "localhost:9092"
set pipeline.on-error = dead_letter
set pipeline.dead-letter.topic = "{dlq}"
set pipeline.dead-letter.servers = $servers
schema E {{ id: long, n: long, s: string }}
source kafka {{ servers: $servers, topic: "{input}", offsets: earliest, bounded: latest, schema: E,
                on_error: dead_letter, dead_letter_topic: "{dlq}" }} name "Events"
    | map {{ id, r: 100 / n, s }} name "Ratio"
    | sink kafka {{ servers: $servers, topic: "{output}" }}
"#
    );
    let path = cluster.scratch.0.join("small_dead_letters.flow");
    std::fs::write(&path, text).expect("writing the job");
    let id = cluster.submit(&path, &["-p", "1", "--servers", kafka.bootstrap()]);
    cluster.wait_job_state(&id, "FINISHED", Duration::from_secs(90));
    let out: BTreeSet<i64> = read_all(kafka.bootstrap(), &output, 2).iter().filter_map(|v| v["id"].as_i64()).collect();
    assert_eq!(out, BTreeSet::from([0, 3]), "the job ran on");
    let mut sizes = Vec::new();
    let mut dead = Vec::new();
    flowc_playground::kafka::read_topic(
        kafka.bootstrap(),
        &dlq,
        Duration::from_secs(60),
        |r| {
            sizes.push(r.payload.len());
            dead.push(serde_json::from_slice::<Value>(r.payload).unwrap_or(Value::Null));
        },
        || true,
    )
    .expect("reading the dead letters");
    assert_eq!(dead.len(), 2, "{dead:?}");
    assert!(sizes.iter().all(|&n| n < 2000), "{sizes:?}");
    let source = dead.iter().find(|d| d["operator"] == "Events").unwrap_or_else(|| panic!("{dead:?}"));
    assert_eq!(source["value_truncated"], true, "{source}");
    assert_eq!(source["value_bytes"], records[1].len(), "{source}");
    assert!(records[1].starts_with(source["value"].as_str().unwrap_or("-")), "{source}");
    assert_eq!(source["source"]["offset"], 1, "{source}");
    let stage = dead.iter().find(|d| d["operator"] == "Ratio").unwrap_or_else(|| panic!("{dead:?}"));
    assert_eq!((stage["row_truncated"].as_bool(), stage["value_truncated"].as_bool()), (Some(true), Some(true)));
    // The stage's dead letter carries the record's bytes as produced, cut, and where it was read.
    let value = stage["value"].as_str().unwrap_or("");
    assert!(value.starts_with(r#"{"id": 2, "n": 0, "s": "xxx"#) && records[2].starts_with(value), "{stage}");
    assert_eq!(stage["value_bytes"], records[2].len(), "{stage}");
    assert_eq!(stage["source"], serde_json::json!({"topic": input, "partition": 0, "offset": 2}), "{stage}");
    assert_eq!(cluster.metric(&id, "numRecordsDeadLettered"), Some(2));
}
