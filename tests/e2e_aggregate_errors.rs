//! End to end on the real Kafka: an aggregate's `on_error` for the records
//! its arguments fail on (`sum(100 / n)` with `n = 0`). A keyed tumbling
//! window sums `100 / n` and the ids and counts the records; poison records
//! sit among the good ones in every window. Under `skip` and `dead_letter`,
//! through a killed TaskManager restored from a checkpoint, every window's
//! row (written exactly once) equals a model's of the good records alone:
//! a bad record is in no aggregate (not even `count()`), a good one in each
//! exactly once. `dead_letter` writes every poison record to the job's
//! dead-letter topic (at-least-once: a replay may write one twice) with its
//! row and error, and — though the aggregate is across a HASH edge from the
//! source — where it was read (topic, partition, offset) and its bytes as
//! produced. Under `fail` the job fails naming the aggregate, the place in
//! the job file and the record.

mod support;

use flowc_playground::kafka::read_topic;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use support::cluster::Cluster;
use support::kafka::{create_topic, unique_topic, Kafka};

const WINDOW_MS: i64 = 10_000;
/// Records per phase, 500 ms of event time apart: five windows a phase.
const PER_PHASE: i64 = 100;
const KEYS: [&str; 3] = ["k0", "k1", "k2"];
/// Where the closing records are, past every window of the two phases.
const CLOSE_MS: i64 = 200_000;

/// Record `i`: its key, `n` (0 for the poison ones), event time.
fn record(i: i64) -> (String, i64, i64) {
    let n = if i % 7 == 3 { 0 } else { 1 + i % 4 };
    (KEYS[(i % 3) as usize].to_string(), n, i * 500)
}

fn poison_ids() -> BTreeSet<i64> {
    (0..2 * PER_PHASE).filter(|&i| record(i).1 == 0).collect()
}

/// Sends records `range` (both partitions: by id), or with `close`, one
/// good record per partition far ahead, so that the watermark passes every
/// window of the phases.
fn load(bootstrap: &str, topic: &str, range: std::ops::Range<i64>, close: bool) {
    let producer: BaseProducer = ClientConfig::new().set("bootstrap.servers", bootstrap).create().expect("producer");
    let send = |v: String, p: i32| {
        producer.send(BaseRecord::<(), str>::to(topic).payload(&v).partition(p)).expect("send");
    };
    for i in range {
        send(payload(i), (i % 2) as i32);
    }
    if close {
        let closing = |id| format!(r#"{{"id": {id}, "k": "closing", "n": 1, "ts": {CLOSE_MS}}}"#);
        send(closing(10_000), 0);
        send(closing(10_001), 1);
    }
    producer.flush(Duration::from_secs(10)).expect("flush");
}

/// Record `i`'s bytes.
fn payload(i: i64) -> String {
    let (k, n, ts) = record(i);
    format!(r#"{{"id": {i}, "k": "{k}", "n": {n}, "ts": {ts}}}"#)
}

/// Where record `i` is in the input topic (new, two partitions, records
/// sent in order of id): partition `i % 2`, its `i / 2`-th record.
fn source_of(topic: &str, i: i64) -> Value {
    serde_json::json!({"topic": topic, "partition": i % 2, "offset": i / 2})
}

/// One window's row: (key, window end) → (records, total, sum of ids).
type Rows = BTreeMap<(String, i64), (i64, i64, i64)>;

/// The rows of every window of the two phases, from the good records alone.
fn model() -> Rows {
    let mut out = Rows::new();
    for i in 0..2 * PER_PHASE {
        let (k, n, ts) = record(i);
        if n == 0 {
            continue;
        }
        let end = ts - ts.rem_euclid(WINDOW_MS) + WINDOW_MS;
        let row = out.entry((k, end)).or_default();
        row.0 += 1;
        row.1 += 100 / n;
        row.2 += i;
    }
    out
}

fn job(dir: &std::path::Path, input: &str, output: &str, settings: &str, policy: &str) -> std::path::PathBuf {
    let text = format!(
        r#"job "Aggregate errors"
param servers: string = "localhost:9092"
schema E {{ id: long, k: string, n: long, ts: long }}
source kafka {{ servers: $servers, topic: "{input}", group: "aggregate-errors", offsets: earliest, schema: E }} uid "source"
    | map {{ id, k, n, t: to_timestamp(ts) }} uid "time"
    | watermark t {{ out_of_orderness: 0ms }} uid "watermarks"
    | key_by k
    | window tumbling {{ size: 10s }}
    | aggregate {{ k, end: millis(window_end()), records: count(), total: sum(100 / n), ids: sum(id) }} {policy} name "Totals" uid "totals"
    | sink kafka {{ servers: $servers, topic: "{output}", delivery: exactly_once }} uid "sink"
{settings}
"#
    );
    let path = dir.join("aggregate_errors.flow");
    std::fs::write(&path, text).expect("writing the job");
    path
}

/// The committed rows of windows that end by the two phases' last, once
/// `want` are there (or the timeout passed); a row written twice fails.
fn written(bootstrap: &str, output: &str, want: usize, timeout: Duration) -> Rows {
    let rows = std::cell::RefCell::new(Rows::new());
    read_topic(
        bootstrap,
        output,
        timeout,
        |r| {
            let v: Value = serde_json::from_slice(r.payload).expect("an output record");
            let field = |f: &str| v[f].as_i64().unwrap_or_else(|| panic!("{f} in {v}"));
            let key = (v["k"].as_str().expect("k").to_string(), field("end"));
            let row = (field("records"), field("total"), field("ids"));
            let old = rows.borrow_mut().insert(key.clone(), row);
            assert!(old.is_none(), "window {key:?} written twice: {old:?} and {row:?}");
        },
        || rows.borrow().len() >= want,
    )
    .expect("reading the output");
    rows.into_inner()
}

/// The dead letters of `topic`, once they hold a row of every id of `ids`
/// (or the timeout passed).
fn dead_letters(bootstrap: &str, topic: &str, ids: &BTreeSet<i64>) -> Vec<Value> {
    let out = std::cell::RefCell::new(Vec::new());
    let seen = std::cell::RefCell::new(BTreeSet::new());
    read_topic(
        bootstrap,
        topic,
        Duration::from_secs(60),
        |r| {
            let v = serde_json::from_slice::<Value>(r.payload).unwrap_or(Value::Null);
            seen.borrow_mut().extend(v["row"]["id"].as_i64());
            out.borrow_mut().push(v);
        },
        || seen.borrow().is_superset(ids),
    )
    .expect("reading");
    out.into_inner()
}

fn topics(prefix: &str, n: usize) -> Vec<String> {
    let kafka = Kafka::shared();
    let names: Vec<String> = ["in", "out", "dlq"][..n].iter().map(|s| unique_topic(&format!("{prefix}-{s}"))).collect();
    for t in &names {
        create_topic(kafka.bootstrap(), t, 2).expect("topic");
    }
    names
}

/// The aggregate's vertex (the second: the source's chain is the first).
fn totals_vertex(cluster: &Cluster, id: &str) -> String {
    let j = cluster.job(id);
    let vertices = j["vertices"].as_array().expect("vertices");
    let v = vertices.iter().find(|v| v["name"].as_str().is_some_and(|n| n.contains("Totals"))).expect("Totals");
    v["id"].as_str().expect("vertex id").to_string()
}

/// Runs the job under `policy` (an attribute, or the job's default in
/// `settings`) through a killed TaskManager: the first phase, its windows
/// out and checkpointed, a kill, a restore, the second phase. Checks every
/// window's row; returns the cluster and the job's id for more checks.
/// Two TaskManagers of one slot each: subtask 0 of every vertex runs on
/// one, subtask 1 on the other, so that half of the HASH edge's records
/// cross the data plane between TaskManagers.
fn through_a_kill(name: &str, t: &[String], settings: &str, policy: &str, action: &str) -> (Cluster, String) {
    let kafka = Kafka::shared();
    let mut cluster = Cluster::start(name, 2, 1);
    let settings = format!("set execution.checkpointing.interval = 1s\n{settings}");
    let path = job(&cluster.scratch.0, &t[0], &t[1], &settings, policy);
    load(kafka.bootstrap(), &t[0], 0..PER_PHASE, false);
    let id = cluster.submit(&path, &["-p", "2", "--servers", kafka.bootstrap()]);
    cluster.wait_all_tasks(&id, "RUNNING", Duration::from_secs(30));
    let want = model();
    // The first phase's first four windows fire (the watermark is at its last record).
    let first: Rows = want.iter().filter(|((_, end), _)| *end <= 4 * WINDOW_MS).map(|(k, v)| (k.clone(), *v)).collect();
    assert_eq!(first.len(), 12, "{first:?}");
    let got = written(kafka.bootstrap(), &t[1], first.len(), Duration::from_secs(60));
    assert_eq!(got, first);
    cluster.wait_for_more_checkpoints(&id, 2);
    cluster.kill_taskmanager(0);
    cluster.wait_all_tasks(&id, "SCHEDULED", Duration::from_secs(15));
    cluster.add_taskmanager(1);
    cluster.wait_all_tasks(&id, "RUNNING", Duration::from_secs(30));
    load(kafka.bootstrap(), &t[0], PER_PHASE..2 * PER_PHASE, true);
    assert_eq!(want.len(), 30, "{want:?}");
    let got = written(kafka.bootstrap(), &t[1], want.len(), Duration::from_secs(60));
    // Anything written twice would be read too: a checkpoint more, and read again.
    cluster.wait_for_more_checkpoints(&id, 2);
    let again = written(kafka.bootstrap(), &t[1], usize::MAX, Duration::from_secs(5));
    assert_eq!(got, want);
    assert_eq!(again, want);
    assert_eq!(cluster.metric(&id, "numRestarts"), Some(1));
    // The second phase's poison records were met after the restore, at least.
    let second = poison_ids().into_iter().filter(|&i| i >= PER_PHASE).count() as i64;
    cluster.wait_for("the poison records counted", Duration::from_secs(30), |c| {
        (c.metric(&id, "numRecordsExpressionErrors").unwrap_or(0) >= second).then_some(())
    });
    let vid = totals_vertex(&cluster, &id);
    let errors = cluster.wait_for("error samples", Duration::from_secs(30), |c| {
        let errors = c.rest().get(&format!("/jobs/{id}/vertices/{vid}/errors")).ok()?;
        (!errors["errors"].as_array()?.is_empty()).then_some(errors)
    });
    let samples = errors["errors"].as_array().expect("samples");
    for s in samples {
        assert_eq!((s["kind"].as_str(), s["action"].as_str()), (Some("expression"), Some(action)), "{s}");
        assert_eq!(s["operator"], "Totals", "{s}");
        let record: Value = serde_json::from_str(s["value"].as_str().unwrap_or("")).expect("the row as JSON");
        let rid = record["id"].as_i64().unwrap_or(-1);
        assert!(poison_ids().contains(&rid), "{s}");
        // Only a job with a dead-lettering stage keeps its records' origins.
        let source = if action == "dead-lettered" { source_of(&t[0], rid) } else { Value::Null };
        assert_eq!(s["source"], source, "{s}");
    }
    (cluster, id)
}

#[test]
fn an_aggregate_under_skip_leaves_the_poison_records_out_of_every_window_through_a_kill() {
    let t = topics("agg-skip", 2);
    let (cluster, id) = through_a_kill("aggskip", &t, "", "on_error skip", "skipped");
    assert_eq!(cluster.metric(&id, "numRecordsDeadLettered").unwrap_or(0), 0);
}

#[test]
fn an_aggregate_under_dead_letter_writes_every_poison_record_through_a_kill() {
    let kafka = Kafka::shared();
    let t = topics("agg-dlq", 3);
    // The job's default policy and its dead-letter topic.
    let settings = format!(
        "set pipeline.on-error = dead_letter\nset pipeline.dead-letter.topic = \"{}\"\nset pipeline.dead-letter.servers = $servers",
        t[2]
    );
    let (_cluster, _id) = through_a_kill("aggdlq", &t, &settings, "", "dead-lettered");
    let poison = poison_ids();
    let dead = dead_letters(kafka.bootstrap(), &t[2], &poison);
    let ids: BTreeSet<i64> = dead.iter().filter_map(|d| d["row"]["id"].as_i64()).collect();
    assert_eq!(ids, poison, "{dead:#?}");
    for d in &dead {
        assert_eq!(d["operator"], "Totals", "{d}");
        assert_eq!(d["row"]["n"], 0, "{d}");
        let error = d["error"].as_str().unwrap_or("");
        assert!(
            error.starts_with("division by zero in `100 / n` at ") && error.contains("aggregate_errors.flow:9:"),
            "{d}"
        );
        // Read across a HASH edge from the source: where, and as produced.
        let rid = d["row"]["id"].as_i64().unwrap_or(-1);
        assert_eq!(d["source"], source_of(&t[0], rid), "{d}");
        assert_eq!(d["value"].as_str(), Some(payload(rid).as_str()), "the bytes as produced: {d}");
    }
}

#[test]
fn an_aggregate_under_fail_fails_the_job_naming_the_aggregate_the_place_and_the_record() {
    let kafka = Kafka::shared();
    let t = topics("agg-fail", 2);
    load(kafka.bootstrap(), &t[0], 0..PER_PHASE, false);
    // No restarts: the job fails at once (a restart would meet the record again).
    let cluster = Cluster::start_with("aggfail", 1, 2, "restart-strategy.type: none\n");
    let path = job(&cluster.scratch.0, &t[0], &t[1], "set execution.checkpointing.interval = 1s", "");
    let id = cluster.submit(&path, &["-p", "2", "--servers", kafka.bootstrap()]);
    cluster.wait_job_state(&id, "FAILED", Duration::from_secs(90));
    let ex = cluster.rest().get(&format!("/jobs/{id}/exceptions")).expect("exceptions");
    let cause = ex["root-exception"].as_str().unwrap_or("");
    assert!(
        cause.contains("Totals: division by zero in `100 / n` at ") && cause.contains("aggregate_errors.flow:9:"),
        "{ex}"
    );
    assert!(cause.contains(r#"record {"id":"#) && cause.contains(r#""n":0,"#), "{ex}");
}
