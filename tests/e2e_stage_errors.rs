//! End to end on the real Kafka: a stage's `on_error` policy for the
//! records its expressions fail on. Poison records (`n = 0` under
//! `100 / n`) among good ones: under `skip` every good record reaches the
//! sink and the poison ones are counted; under `dead_letter` the job's
//! dead-letter topic receives exactly them, each with its source position
//! (topic, partition, offset), its bytes as produced and its row; under `fail` the
//! job fails naming the operator, the place in the job file and the
//! record. Neither `skip` nor `dead_letter` ever restarts the job. An
//! integer overflow (`n * 2` past the largest long) is an expression error
//! like a division by zero: dead-lettered with its place, never wrapped. A
//! record read from a file is dead-lettered with its file, line and line.

mod support;

use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::Duration;
use support::cluster::Cluster;
use support::kafka::{create_topic, read_json, unique_topic, Kafka};

const RECORDS: i64 = 300;
/// The ids whose `n` is 0.
const POISON: [i64; 3] = [7, 150, 299];

/// `n` of the poison records under `n * 2`: twice it is past `i64::MAX`.
const OVERFLOWS: i64 = i64::MAX / 2 + 1;

/// Record `id`'s bytes, its `n` being `n`.
fn payload(id: i64, n: i64) -> String {
    format!(r#"{{"id": {id}, "n": {n}}}"#)
}

/// Where record `id` is in the input topic (new, two partitions, loaded by
/// `load`): partition `id % 2`, its `id / 2`-th record.
fn source_of(topic: &str, id: i64) -> Value {
    serde_json::json!({"topic": topic, "partition": id % 2, "offset": id / 2})
}

fn load(bootstrap: &str, topic: &str, poison: i64) {
    let producer: BaseProducer = ClientConfig::new().set("bootstrap.servers", bootstrap).create().expect("producer");
    for i in 0..RECORDS {
        let n = if POISON.contains(&i) { poison } else { 1 + i % 7 };
        let v = payload(i, n);
        producer.send(BaseRecord::<(), str>::to(topic).payload(&v).partition((i % 2) as i32)).expect("send");
    }
    producer.flush(Duration::from_secs(10)).expect("flush");
}

fn job(dir: &std::path::Path, input: &str, output: &str, settings: &str, policy: &str) -> std::path::PathBuf {
    job_computing(dir, input, output, settings, policy, "100 / n")
}

/// The job with `r: expr`.
fn job_computing(
    dir: &std::path::Path,
    input: &str,
    output: &str,
    settings: &str,
    policy: &str,
    expr: &str,
) -> std::path::PathBuf {
    let text = format!(
        r#"job "Stage errors"
param servers: string = "localhost:9092"
schema E {{ id: long, n: long }}
source kafka {{ servers: $servers, topic: "{input}", offsets: earliest, bounded: latest, schema: E }}
    | map {{ id, r: {expr} }} {policy} name "Ratio"
    | sink kafka {{ servers: $servers, topic: "{output}" }}
{settings}
"#
    );
    let path = dir.join("stage_errors.flow");
    std::fs::write(&path, text).expect("writing the job");
    path
}

fn good_ids() -> BTreeSet<i64> {
    (0..RECORDS).filter(|i| !POISON.contains(i)).collect()
}

fn topics(prefix: &str, n: usize) -> Vec<String> {
    topics_with(prefix, n, 0)
}

/// The topics, the input loaded with `poison` as the poison records' `n`.
fn topics_with(prefix: &str, n: usize, poison: i64) -> Vec<String> {
    let kafka = Kafka::shared();
    let names: Vec<String> = ["in", "out", "dlq"][..n].iter().map(|s| unique_topic(&format!("{prefix}-{s}"))).collect();
    for t in &names {
        create_topic(kafka.bootstrap(), t, 2).expect("topic");
    }
    load(kafka.bootstrap(), &names[0], poison);
    names
}

/// The good records of `t[0]` reached the sink `t[1]` once each, the
/// poison ones were counted and sampled with `action` (with their source
/// position when dead-lettered), and the job never restarted.
fn check_good_output_and_counts(cluster: &Cluster, id: &str, t: &[String], action: &str) {
    check_output_and_counts(cluster, id, t, action, 100 / 4);
}

/// The same, for a job whose `r` is `r_of_4` where `n` is 4 (record 3).
fn check_output_and_counts(cluster: &Cluster, id: &str, t: &[String], action: &str, r_of_4: i64) {
    let output = &t[1];
    let kafka = Kafka::shared();
    let out = read_json(kafka.bootstrap(), output);
    let ids: BTreeSet<i64> = out.iter().filter_map(|v| v["id"].as_i64()).collect();
    assert_eq!(out.len(), good_ids().len(), "{out:?}");
    assert_eq!(ids, good_ids());
    let row = out.iter().find(|v| v["id"] == 3).expect("id 3");
    assert_eq!(row["r"], r_of_4);
    assert_eq!(cluster.metric(id, "numRecordsExpressionErrors"), Some(POISON.len() as i64));
    assert_eq!(cluster.metric(id, "numRestarts"), Some(0));
    let vid = cluster.job(id)["vertices"][0]["id"].as_str().expect("vertex id").to_string();
    let errors = cluster.rest().get(&format!("/jobs/{id}/vertices/{vid}/errors")).expect("errors");
    assert_eq!(errors["counts"]["numRecordsExpressionErrors"], POISON.len() as u64, "{errors}");
    // Per subtask too, as Flink's task-scope metrics (and so on the reporter).
    let per_subtask = cluster
        .rest()
        .get(&format!("/jobs/{id}/vertices/{vid}/subtasks/metrics?get=numRecordsExpressionErrors&agg=sum"))
        .expect("subtasks/metrics");
    assert_eq!(per_subtask[0]["id"], "numRecordsExpressionErrors", "{per_subtask}");
    assert_eq!(per_subtask[0]["sum"].as_f64(), Some(POISON.len() as f64), "{per_subtask}");
    let samples = errors["errors"].as_array().expect("samples");
    assert_eq!(samples.len(), POISON.len(), "{errors}");
    for s in samples {
        assert_eq!((s["kind"].as_str(), s["action"].as_str()), (Some("expression"), Some(action)), "{s}");
        assert_eq!(s["operator"], "Ratio", "{s}");
        let record: Value = serde_json::from_str(s["value"].as_str().unwrap_or("")).expect("the row as JSON");
        let rid = record["id"].as_i64().unwrap_or(-1);
        assert!(POISON.contains(&rid), "{s}");
        // Only a job with a dead-lettering stage keeps its records' origins.
        let source = if action == "dead-lettered" { source_of(&t[0], rid) } else { Value::Null };
        assert_eq!(s["source"], source, "{s}");
    }
}

#[test]
fn on_error_skip_drops_and_counts_the_poison_records() {
    let kafka = Kafka::shared();
    let t = topics("stage-skip", 2);
    let cluster = Cluster::start("stageskip", 1, 2);
    let path = job(&cluster.scratch.0, &t[0], &t[1], "", "on_error skip");
    let id = cluster.submit(&path, &["-p", "2", "--servers", kafka.bootstrap()]);
    cluster.wait_job_state(&id, "FINISHED", Duration::from_secs(90));
    check_good_output_and_counts(&cluster, &id, &t, "skipped");
    assert_eq!(cluster.metric(&id, "numRecordsDeadLettered"), Some(0));
}

#[test]
fn on_error_dead_letter_writes_exactly_the_poison_records_with_their_row() {
    let kafka = Kafka::shared();
    let t = topics("stage-dlq", 3);
    let cluster = Cluster::start("stagedlq", 1, 2);
    // The job's default policy, and its dead-letter topic.
    let settings = format!(
        "set pipeline.on-error = dead_letter\nset pipeline.dead-letter.topic = \"{}\"\nset pipeline.dead-letter.servers = $servers",
        t[2]
    );
    let path = job(&cluster.scratch.0, &t[0], &t[1], &settings, "");
    let id = cluster.submit(&path, &["-p", "2", "--servers", kafka.bootstrap()]);
    cluster.wait_job_state(&id, "FINISHED", Duration::from_secs(90));
    check_good_output_and_counts(&cluster, &id, &t, "dead-lettered");
    check_dead_letters(&cluster, &id, &t, 0, "division by zero in `100 / n` at ");
}

/// The dead-letter topic `t[2]` holds exactly the poison records (their
/// `n` `poison`), each with the operator, the error (starting `error`, at
/// the place in the job file), the row, where it was read in `t[0]` and
/// its bytes as they were produced.
fn check_dead_letters(cluster: &Cluster, id: &str, t: &[String], poison: i64, error: &str) {
    assert_eq!(cluster.metric(id, "numRecordsDeadLettered"), Some(POISON.len() as i64));
    let dead = read_json(Kafka::shared().bootstrap(), &t[2]);
    assert_eq!(dead.len(), POISON.len(), "{dead:#?}");
    let ids: BTreeSet<i64> = dead.iter().filter_map(|d| d["row"]["id"].as_i64()).collect();
    assert_eq!(ids, POISON.into_iter().collect());
    for d in &dead {
        assert_eq!(d["operator"], "Ratio", "{d}");
        assert_eq!(d["row"]["n"], poison, "{d}");
        let e = d["error"].as_str().unwrap_or("");
        assert!(e.starts_with(error) && e.contains("stage_errors.flow:5:"), "{d}");
        let rid = d["row"]["id"].as_i64().unwrap_or(-1);
        assert_eq!(d["source"], source_of(&t[0], rid), "{d}");
        assert_eq!(d["value"].as_str(), Some(payload(rid, poison).as_str()), "the bytes as produced: {d}");
    }
}

#[test]
fn on_error_fail_fails_the_job_naming_the_operator_the_place_and_the_record() {
    let kafka = Kafka::shared();
    let t = topics("stage-fail", 2);
    let cluster = Cluster::start("stagefail", 1, 2);
    let path = job(&cluster.scratch.0, &t[0], &t[1], "", "");
    let id = cluster.submit(&path, &["-p", "2", "--servers", kafka.bootstrap()]);
    cluster.wait_job_state(&id, "FAILED", Duration::from_secs(90));
    let ex = cluster.rest().get(&format!("/jobs/{id}/exceptions")).expect("exceptions");
    let cause = ex["root-exception"].as_str().unwrap_or("");
    assert!(
        cause.contains("Ratio: division by zero in `100 / n` at ") && cause.contains("stage_errors.flow:5:"),
        "{ex}"
    );
    assert!(cause.contains(r#"record {"id":"#) && cause.contains(r#""n":0}"#), "{ex}");
}

#[test]
fn an_integer_overflow_is_dead_lettered_with_its_place_and_row_never_wrapped() {
    let kafka = Kafka::shared();
    let t = topics_with("stage-overflow", 3, OVERFLOWS);
    let cluster = Cluster::start("stageovf", 1, 2);
    let settings =
        format!("set pipeline.dead-letter.topic = \"{}\"\nset pipeline.dead-letter.servers = $servers", t[2]);
    let path = job_computing(&cluster.scratch.0, &t[0], &t[1], &settings, "on_error dead_letter", "n * 2");
    let id = cluster.submit(&path, &["-p", "2", "--servers", kafka.bootstrap()]);
    cluster.wait_job_state(&id, "FINISHED", Duration::from_secs(90));
    check_output_and_counts(&cluster, &id, &t, "dead-lettered", 8);
    let error = "integer overflow (the result is out of the range of a long) in `n * 2` at ";
    check_dead_letters(&cluster, &id, &t, OVERFLOWS, error);
}

#[test]
fn a_stage_dead_letters_a_file_record_with_its_file_line_and_bytes() {
    let kafka = Kafka::shared();
    let dlq = unique_topic("stage-file-dlq");
    create_topic(kafka.bootstrap(), &dlq, 1).expect("topic");
    let scratch = support::cluster::Scratch::new("stage-file");
    let input = scratch.0.join("in");
    std::fs::create_dir_all(&input).expect("input directory");
    // Line 3 is blank; lines 2 and 5 hold n = 0.
    let lines =
        ["{\"id\": 1, \"n\": 4}", "{\"id\": 2,  \"n\": 0}", "", "{\"id\": 4, \"n\": 5}", "{\"n\": 0, \"id\": 5}"];
    std::fs::write(input.join("a.jsonl"), lines.join("\n") + "\n").expect("input");
    let job = format!(
        r#"job "File stage errors"
param servers: string = "localhost:9092"
set pipeline.dead-letter.topic = "{dlq}"
set pipeline.dead-letter.servers = $servers
schema E {{ id: long, n: long }}
source file {{ path: "{input}", schema: E }}
    | map {{ id, r: 100 / n }} on_error dead_letter name "Ratio"
    | sink file {{ path: "out" }}
"#,
        input = input.display()
    );
    let path = scratch.0.join("file_stage_errors.flow");
    std::fs::write(&path, job).expect("writing the job");
    support::local::flowc_run_ok(&scratch, &scratch.0, &path, &["--servers", kafka.bootstrap()]);
    let written = std::fs::read_to_string(scratch.0.join("out/part-0.jsonl")).expect("the sink's file");
    assert_eq!(written, "{\"id\":1,\"n\":4,\"r\":25}\n{\"id\":4,\"n\":5,\"r\":20}\n");
    let dead = read_json(kafka.bootstrap(), &dlq);
    let file = format!("{}/a.jsonl", input.display());
    let got: Vec<(Value, Value, Value)> =
        dead.iter().map(|d| (d["source"].clone(), d["value"].clone(), d["row"]["id"].clone())).collect();
    let want = |line: usize, id: i64| {
        (serde_json::json!({"file": file, "line": line}), Value::from(lines[line - 1]), Value::from(id))
    };
    assert_eq!(got, vec![want(2, 2), want(5, 5)], "{dead:#?}");
    assert!(dead.iter().all(|d| d["operator"] == "Ratio"), "{dead:#?}");
}
