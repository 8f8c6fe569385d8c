//! End to end on the real Kafka: a record a Kafka sink cannot write — a
//! message over Kafka's `message.max.bytes` — follows the sink's
//! `on_error`. Under `fail` (the default) it fails the task when the sink
//! encodes it, naming the sink, the sizes and the record. For an
//! exactly-once sink this matters most: it keeps a checkpoint's records in
//! the checkpoint and writes them when the checkpoint completes, so a
//! record refused then was in a completed checkpoint, and every restore
//! failed on it again. Now it never gets there. Under `skip` and
//! `dead_letter`, oversize records among good ones, through a killed
//! TaskManager restored from a checkpoint: every good record is written
//! exactly once, the oversize ones are counted (`numRecordsEncodeErrors`,
//! per subtask, in `/errors` and on the Prometheus reporter) and, under
//! `dead_letter`, the dead-letter topic holds exactly them, cut to fit.

mod support;

use flowc_playground::kafka::read_topic;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::time::Duration;
use support::cluster::Cluster;
use support::kafka::{create_topic, unique_topic, Kafka};

/// Records 0..10; record 5's text, doubled by the job, is 1.2 MB.
fn load(bootstrap: &str, topic: &str) {
    let producer: BaseProducer = ClientConfig::new().set("bootstrap.servers", bootstrap).create().expect("producer");
    for i in 0..10 {
        let s = if i == 5 { "x".repeat(600_000) } else { format!("s{i}") };
        let v = format!(r#"{{"id": {i}, "s": "{s}"}}"#);
        producer.send(BaseRecord::<(), str>::to(topic).payload(&v)).expect("send");
    }
    producer.flush(Duration::from_secs(10)).expect("flush");
}

fn run(name: &str, delivery: &str) {
    let kafka = Kafka::shared();
    let (input, output) = (unique_topic(&format!("{name}-in")), unique_topic(&format!("{name}-out")));
    create_topic(kafka.bootstrap(), &input, 1).expect("topic");
    create_topic(kafka.bootstrap(), &output, 1).expect("topic");
    load(kafka.bootstrap(), &input);
    let cluster = Cluster::start_with(name, 1, 2, "restart-strategy.type: none\n");
    let text = format!(
        r#"job "Too large"
set execution.checkpointing.interval = 1s
schema E {{ id: long, s: string }}
source kafka {{ servers: "{servers}", topic: "{input}", offsets: earliest, schema: E }}
    | map {{ id, s: s + s }}
    | sink kafka {{ servers: "{servers}", topic: "{output}", delivery: {delivery} }}
"#,
        servers = kafka.bootstrap()
    );
    let path = cluster.scratch.0.join("too_large.flow");
    std::fs::write(&path, text).expect("writing the job");
    let id = cluster.submit(&path, &["-p", "1"]);
    cluster.wait_job_state(&id, "FAILED", Duration::from_secs(90));
    let ex = cluster.rest().get(&format!("/jobs/{id}/exceptions")).expect("exceptions");
    let cause = ex["root-exception"].as_str().unwrap_or("");
    let want = format!("Sink: Kafka({output}): a message of 1200015 bytes of value and 0 of key is over Kafka's limit of 1000000 bytes");
    assert!(cause.contains(&want), "{ex}");
    assert!(cause.contains(r#"record {"id":5,"s":"xxxx"#), "{ex}");
}

#[test]
fn an_at_least_once_kafka_sink_refuses_a_message_over_the_limit_naming_it() {
    run("too-large-alo", "at_least_once");
}

#[test]
fn an_exactly_once_kafka_sink_refuses_a_message_over_the_limit_before_it_is_checkpointed() {
    run("too-large-eo", "exactly_once");
}

/// Records per phase; the last of each partition (by id) is a good one.
const PER_PHASE: i64 = 50;

/// Whether record `i` is oversize once the job doubles its text.
fn oversize(i: i64) -> bool {
    matches!(i % 10, 3 | 6)
}

fn oversize_ids(range: std::ops::Range<i64>) -> BTreeSet<i64> {
    range.filter(|&i| oversize(i)).collect()
}

fn good_ids(range: std::ops::Range<i64>) -> BTreeSet<i64> {
    range.filter(|&i| !oversize(i)).collect()
}

/// Records `range`, on the partition of their id's parity; an oversize
/// one's text (600,000 bytes, doubled by the job) makes a 1.2 MB message.
fn load_phase(bootstrap: &str, topic: &str, range: std::ops::Range<i64>) {
    let producer: BaseProducer = ClientConfig::new().set("bootstrap.servers", bootstrap).create().expect("producer");
    for i in range {
        let s = if oversize(i) { "x".repeat(300_000) } else { format!("s{i}") };
        let v = format!(r#"{{"id": {i}, "s": "{s}"}}"#);
        let record = BaseRecord::<(), str>::to(topic).payload(&v).partition((i % 2) as i32);
        producer.send(record).expect("send");
        // The queue holds a few of the large ones at a time.
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(30)).expect("flush");
}

fn policy_job(
    dir: &std::path::Path,
    input: &str,
    output: &str,
    sink_settings: &str,
    settings: &str,
) -> std::path::PathBuf {
    let text = format!(
        r#"job "Sink errors"
param servers: string = "localhost:9092"
set execution.checkpointing.interval = 1s
schema E {{ id: long, s: string }}
source kafka {{ servers: $servers, topic: "{input}", group: "sink-errors", offsets: earliest, schema: E }} uid "source"
    | map {{ id, s: s + s + s + s }} uid "quadruple"
    | sink kafka {{ servers: $servers, topic: "{output}", delivery: exactly_once, key: id{sink_settings} }} uid "sink"
{settings}
"#
    );
    let path = dir.join("sink_errors.flow");
    std::fs::write(&path, text).expect("writing the job");
    path
}

/// Ids of the committed records of `output`, each with how often it was
/// written, once `want` distinct ones are there (or the timeout passed).
fn written(bootstrap: &str, output: &str, want: usize, timeout: Duration) -> BTreeMap<i64, usize> {
    let seen = std::cell::RefCell::new(BTreeMap::new());
    read_topic(
        bootstrap,
        output,
        timeout,
        |r| {
            let v: Value = serde_json::from_slice(r.payload).expect("an output record");
            let id = v["id"].as_i64().unwrap_or_else(|| panic!("id in {v}"));
            assert_eq!(v["s"], format!("s{id}s{id}s{id}s{id}"), "{v}");
            *seen.borrow_mut().entry(id).or_insert(0) += 1;
        },
        || seen.borrow().len() >= want,
    )
    .expect("reading the output");
    seen.into_inner()
}

fn once_each(ids: &BTreeSet<i64>) -> BTreeMap<i64, usize> {
    ids.iter().map(|&i| (i, 1)).collect()
}

/// Waits for the job's metric `name` to be reported as `want` (heartbeats
/// carry it), and fails showing what it is if it never is.
fn wait_metric(cluster: &Cluster, id: &str, name: &str, want: i64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while cluster.metric(id, name) != Some(want) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(cluster.metric(id, name), Some(want), "{name}");
}

/// A plain HTTP GET on loopback: the body, if the status is 200.
fn http_get(addr: &str, path: &str) -> Option<String> {
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    (head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200")).then(|| body.to_string())
}

/// The sum over a TaskManager's Prometheus text of the samples of `name`
/// for job `id`.
fn prometheus_sum(text: &str, name: &str, id: &str) -> i64 {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) && l.contains(&format!("job_id=\"{id}\"")))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as i64
}

/// Runs the job with the sink's `sink_settings` (and the job's `settings`)
/// through a killed TaskManager: the first phase written and
/// checkpointed, a kill, a restore, the second phase. Every good record is
/// written exactly once; the second phase's oversize records are counted,
/// per subtask, in `/errors` with `action`, and on the new TaskManager's
/// Prometheus reporter. Returns the cluster and the job's id.
fn through_a_kill(name: &str, t: &[String], sink_settings: &str, settings: &str, action: &str) -> (Cluster, String) {
    let kafka = Kafka::shared();
    let base = support::free_port();
    let reporter = format!(
        "metrics.reporter.prom.factory.class: org.apache.flink.metrics.prometheus.PrometheusReporterFactory\n\
         metrics.reporter.prom.port: {base}-{}\n\
         metrics.reporter.prom.host: 127.0.0.1\n",
        base.saturating_add(20)
    );
    let mut cluster = Cluster::start_with(name, 1, 2, &reporter);
    let path = policy_job(&cluster.scratch.0, &t[0], &t[1], sink_settings, settings);
    load_phase(kafka.bootstrap(), &t[0], 0..PER_PHASE);
    let id = cluster.submit(&path, &["-p", "2", "--servers", kafka.bootstrap()]);
    cluster.wait_all_tasks(&id, "RUNNING", Duration::from_secs(30));
    let first = good_ids(0..PER_PHASE);
    let got = written(kafka.bootstrap(), &t[1], first.len(), Duration::from_secs(90));
    assert_eq!(got, once_each(&first));
    wait_metric(&cluster, &id, "numRecordsEncodeErrors", oversize_ids(0..PER_PHASE).len() as i64);
    // The last records of the phase are in a completed checkpoint: the restore does not read the phase again.
    cluster.wait_for_more_checkpoints(&id, 2);
    cluster.kill_taskmanager(0);
    cluster.wait_all_tasks(&id, "SCHEDULED", Duration::from_secs(15));
    let tm = cluster.add_taskmanager(2);
    cluster.wait_all_tasks(&id, "RUNNING", Duration::from_secs(30));
    load_phase(kafka.bootstrap(), &t[0], PER_PHASE..2 * PER_PHASE);
    let all = good_ids(0..2 * PER_PHASE);
    let got = written(kafka.bootstrap(), &t[1], all.len(), Duration::from_secs(90));
    // Anything written twice would be read too: a checkpoint more, and read again.
    cluster.wait_for_more_checkpoints(&id, 2);
    let again = written(kafka.bootstrap(), &t[1], usize::MAX, Duration::from_secs(5));
    assert_eq!(got, once_each(&all));
    assert_eq!(again, once_each(&all));
    assert_eq!(cluster.metric(&id, "numRestarts"), Some(1));
    // The restored tasks count what they met: the second phase's oversize records, each once.
    let second = oversize_ids(PER_PHASE..2 * PER_PHASE);
    wait_metric(&cluster, &id, "numRecordsEncodeErrors", second.len() as i64);
    let vid = cluster.job(&id)["vertices"][0]["id"].as_str().expect("vertex id").to_string();
    let per_subtask = cluster
        .rest()
        .get(&format!("/jobs/{id}/vertices/{vid}/subtasks/metrics?get=numRecordsEncodeErrors&agg=sum,max"))
        .expect("subtasks/metrics");
    assert_eq!(per_subtask[0]["id"], "numRecordsEncodeErrors", "{per_subtask}");
    assert_eq!(per_subtask[0]["sum"].as_f64(), Some(second.len() as f64), "{per_subtask}");
    let errors = cluster.rest().get(&format!("/jobs/{id}/vertices/{vid}/errors")).expect("errors");
    assert_eq!(errors["counts"]["numRecordsEncodeErrors"], second.len() as u64, "{errors}");
    let samples = errors["errors"].as_array().expect("samples");
    let sampled: BTreeSet<i64> = samples
        .iter()
        .map(|s| {
            assert_eq!((s["kind"].as_str(), s["action"].as_str()), (Some("encode"), Some(action)), "{s}");
            assert_eq!(s["operator"], format!("Sink: Kafka({})", t[1]), "{s}");
            let error = s["error"].as_str().unwrap_or("");
            assert!(error.contains("bytes of value and") && error.contains("over Kafka's limit of 1000000"), "{s}");
            id_of(s["value"].as_str().unwrap_or(""))
        })
        .collect();
    assert_eq!(sampled, second);
    let addr = cluster.wait_for("the new TaskManager's reporter", Duration::from_secs(10), |c| {
        let log = c.taskmanager_log(tm);
        let line = log.lines().find(|l| l.contains("Prometheus reporter serving /metrics."))?;
        Some(line.split("addr=").nth(1)?.split_whitespace().next()?.to_string())
    });
    let scraped = cluster.wait_for("the count on the reporter", Duration::from_secs(15), |_| {
        let text = http_get(&addr, "/metrics")?;
        let n = prometheus_sum(&text, "flink_taskmanager_job_task_numRecordsEncodeErrors", &id);
        (n == second.len() as i64).then_some(n)
    });
    assert_eq!(scraped, second.len() as i64);
    (cluster, id)
}

/// The id at the start of an encoded record, `{"id":17,…` (a dead letter's
/// or a sample's value, cut).
fn id_of(value: &str) -> i64 {
    let digits = value.strip_prefix(r#"{"id":"#).and_then(|v| v.split(',').next()).unwrap_or("");
    digits.parse().unwrap_or_else(|_| panic!("no id at the start of {}", &value[..value.len().min(100)]))
}

/// The size of record `i`'s message value as the job writes it.
fn value_bytes(i: i64) -> u64 {
    (format!(r#"{{"id":{i},"s":""}}"#).len() + 1_200_000) as u64
}

fn topics(prefix: &str, n: usize) -> Vec<String> {
    let kafka = Kafka::shared();
    let names: Vec<String> = ["in", "out", "dlq"][..n].iter().map(|s| unique_topic(&format!("{prefix}-{s}"))).collect();
    for t in &names {
        create_topic(kafka.bootstrap(), t, 2).expect("topic");
    }
    names
}

#[test]
fn on_error_skip_drops_and_counts_the_messages_over_the_limit_through_a_kill() {
    let t = topics("sink-skip", 2);
    let (cluster, id) = through_a_kill("sinkskip", &t, ", on_error: skip", "", "skipped");
    assert_eq!(cluster.metric(&id, "numRecordsDeadLettered"), Some(0));
    cluster.flowc(&["cancel", &id]);
}

#[test]
fn on_error_dead_letter_writes_exactly_the_messages_over_the_limit_cut_to_fit_through_a_kill() {
    let kafka = Kafka::shared();
    let t = topics("sink-dlq", 3);
    // The job's default policy and its dead-letter topic.
    let settings = format!(
        "set pipeline.on-error = dead_letter\nset pipeline.dead-letter.topic = \"{}\"\nset pipeline.dead-letter.servers = $servers",
        t[2]
    );
    let (cluster, id) = through_a_kill("sinkdlq", &t, "", &settings, "dead-lettered");
    let second = oversize_ids(PER_PHASE..2 * PER_PHASE).len() as i64;
    wait_metric(&cluster, &id, "numRecordsDeadLettered", second);
    let all = oversize_ids(0..2 * PER_PHASE);
    let dead = std::cell::RefCell::new(Vec::new());
    read_topic(
        kafka.bootstrap(),
        &t[2],
        Duration::from_secs(60),
        |r| dead.borrow_mut().push(serde_json::from_slice::<Value>(r.payload).expect("a dead letter is JSON")),
        || dead.borrow().len() >= all.len(),
    )
    .expect("reading the dead letters");
    // A record more, if any, would be read too.
    let more = read_topic(kafka.bootstrap(), &t[2], Duration::from_secs(3), |_| {}, || false).expect("reading");
    assert_eq!(more.records, all.len() as u64, "each oversize record dead-lettered once: {more:?}");
    let dead = dead.into_inner();
    let mut ids = BTreeSet::new();
    for d in &dead {
        let value = d["value"].as_str().expect("the value as text");
        let i = id_of(value);
        ids.insert(i);
        assert_eq!(d["key"], format!(r#"{{"id":{i}}}"#), "the message key: {}", d["key"]);
        assert_eq!(d["operator"], format!("Sink: Kafka({})", t[1]), "{}", d["operator"]);
        let error = d["error"].as_str().unwrap_or("");
        let want = format!(
            "a message of {} bytes of value and {} of key is over Kafka's limit of 1000000 bytes",
            value_bytes(i),
            format!(r#"{{"id":{i}}}"#).len()
        );
        assert!(error.starts_with(&want), "{error}");
        // Cut to fit, and marked so, with the original length.
        assert_eq!((d["value_truncated"].as_bool(), d["value_bytes"].as_u64()), (Some(true), Some(value_bytes(i))));
        assert!(value.len() > 900_000 && value.len() < 1_000_000, "{} bytes kept", value.len());
        assert!(value[value.find(r#""s":""#).unwrap_or(0) + 5..].bytes().all(|b| b == b'x'), "the value's text");
        // Where the record was read: loaded in order, id i at offset i / 2 of partition i % 2.
        let source = serde_json::json!({"topic": t[0], "partition": i % 2, "offset": i / 2});
        assert_eq!(d["source"], source, "the record's source position");
    }
    assert_eq!(ids, all);
    cluster.flowc(&["cancel", &id]);
}

/// Records 0..30 for the topic-limits test: every fifth (from 1) 30,000
/// bytes long, every fifth (from 2) stamped in the year 3000, the rest
/// stamped now.
fn load_limits(bootstrap: &str, topic: &str) -> (BTreeSet<i64>, BTreeSet<i64>) {
    let producer: BaseProducer = ClientConfig::new().set("bootstrap.servers", bootstrap).create().expect("producer");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis() as i64;
    let (mut large, mut future) = (BTreeSet::new(), BTreeSet::new());
    for i in 0..30 {
        let s = if i % 5 == 1 { "y".repeat(30_000) } else { format!("s{i}") };
        let ts = if i % 5 == 2 { 32_503_680_000_000 } else { now };
        match i % 5 {
            1 => large.insert(i),
            2 => future.insert(i),
            _ => false,
        };
        let v = format!(r#"{{"id": {i}, "s": "{s}", "ts": {ts}}}"#);
        producer.send(BaseRecord::<(), str>::to(topic).payload(&v)).expect("send");
    }
    producer.flush(Duration::from_secs(10)).expect("flush");
    (large, future)
}

/// The topic-limits job: an exactly-once sink with `timestamp:` and `policy`.
fn limits_job(dir: &std::path::Path, input: &str, output: &str, policy: &str) -> std::path::PathBuf {
    let text = format!(
        r#"job "Topic limits"
set execution.checkpointing.interval = 1s
schema E {{ id: long, s: string, ts: long }}
source kafka {{ servers: "{servers}", topic: "{input}", offsets: earliest, bounded: latest, schema: E }}
    | map {{ id, s, t: to_timestamp(ts) }}
    | sink kafka {{ servers: "{servers}", topic: "{output}", delivery: exactly_once, timestamp: t, {policy} }}
"#,
        servers = Kafka::shared().bootstrap()
    );
    let path = dir.join("topic_limits.flow");
    std::fs::write(&path, text).expect("writing the job");
    path
}

/// A topic whose own `max.message.bytes` (20,000) is below flowc's limit,
/// and record timestamps the broker refuses (Kafka 4 refuses one more than
/// an hour ahead: `message.timestamp.after.max.ms`): read from the topic's
/// configuration when the sink opens, they are refused as the sink encodes
/// the record and follow its `on_error`. Before, an exactly-once sink took
/// them into a checkpoint and its commit failed, at every restore again.
#[test]
fn records_the_topic_itself_refuses_follow_on_error_before_they_reach_a_transaction() {
    let kafka = Kafka::shared();
    let (input, output) = (unique_topic("topic-limits-in"), unique_topic("topic-limits-out"));
    create_topic(kafka.bootstrap(), &input, 1).expect("topic");
    support::kafka::create_topic_with(kafka.bootstrap(), &output, 1, &[("max.message.bytes", "20000")]).expect("topic");
    let (large, future) = load_limits(kafka.bootstrap(), &input);
    let cluster = Cluster::start("topiclimits", 1, 2);
    let path = limits_job(&cluster.scratch.0, &input, &output, "on_error: skip");
    let id = cluster.submit(&path, &["-p", "1"]);
    cluster.wait_job_state(&id, "FINISHED", Duration::from_secs(90));
    let good: BTreeSet<i64> = (0..30).filter(|i| !large.contains(i) && !future.contains(i)).collect();
    let got = std::cell::RefCell::new(BTreeMap::new());
    read_topic(
        kafka.bootstrap(),
        &output,
        Duration::from_secs(30),
        |r| {
            let v: Value = serde_json::from_slice(r.payload).expect("an output record");
            *got.borrow_mut().entry(v["id"].as_i64().expect("id")).or_insert(0) += 1;
        },
        || got.borrow().len() >= good.len(),
    )
    .expect("reading the output");
    assert_eq!(got.into_inner(), once_each(&good));
    assert_eq!(cluster.metric(&id, "numRecordsEncodeErrors"), Some((large.len() + future.len()) as i64));
    let vid = cluster.job(&id)["vertices"][0]["id"].as_str().expect("vertex id").to_string();
    let errors = cluster.rest().get(&format!("/jobs/{id}/vertices/{vid}/errors")).expect("errors");
    let samples = errors["errors"].as_array().expect("samples");
    let (mut sized, mut stamped) = (BTreeSet::new(), BTreeSet::new());
    for s in samples {
        let error = s["error"].as_str().unwrap_or("");
        let i = id_of(s["value"].as_str().unwrap_or(""));
        if error.contains("over the topic's limit of 20000 bytes") {
            sized.insert(i);
        } else if error
            .contains("ahead of the clock, more than the topic's `message.timestamp.after.max.ms` of 3600000")
        {
            stamped.insert(i);
        } else {
            panic!("{s}");
        }
    }
    assert_eq!((sized, stamped), (large, future));
}

/// A dead-letter topic with a smaller `max.message.bytes` (5,000) than the
/// dead letters of 30,000-byte messages: each is cut to fit that topic
/// (read at open as the sink's own), so a dead letter never fails in turn.
#[test]
fn a_dead_letter_is_cut_to_fit_its_own_topics_limit() {
    let kafka = Kafka::shared();
    let t: Vec<String> = ["in", "out", "dlq"].iter().map(|s| unique_topic(&format!("small-dlq-{s}"))).collect();
    create_topic(kafka.bootstrap(), &t[0], 1).expect("topic");
    support::kafka::create_topic_with(kafka.bootstrap(), &t[1], 1, &[("max.message.bytes", "20000")]).expect("topic");
    support::kafka::create_topic_with(kafka.bootstrap(), &t[2], 1, &[("max.message.bytes", "5000")]).expect("topic");
    let (large, future) = load_limits(kafka.bootstrap(), &t[0]);
    let cluster = Cluster::start("smalldlq", 1, 2);
    let policy = format!(r#"on_error: dead_letter, dead_letter_topic: "{}""#, t[2]);
    let path = limits_job(&cluster.scratch.0, &t[0], &t[1], &policy);
    let id = cluster.submit(&path, &["-p", "1"]);
    cluster.wait_job_state(&id, "FINISHED", Duration::from_secs(90));
    assert_eq!(cluster.metric(&id, "numRestarts"), Some(0));
    let dead = std::cell::RefCell::new(Vec::new());
    read_topic(
        kafka.bootstrap(),
        &t[2],
        Duration::from_secs(30),
        |r| {
            assert!(r.payload.len() <= 5000 - 61 - 64, "{} bytes", r.payload.len());
            dead.borrow_mut().push(serde_json::from_slice::<Value>(r.payload).expect("a dead letter is JSON"));
        },
        || dead.borrow().len() >= large.len() + future.len(),
    )
    .expect("reading the dead letters");
    let (mut cut, mut whole) = (BTreeSet::new(), BTreeSet::new());
    for d in dead.into_inner() {
        let i = id_of(d["value"].as_str().unwrap_or(""));
        if d["value_truncated"] == true {
            assert!(d["value_bytes"].as_u64().unwrap_or(0) > 30_000, "{d}");
            cut.insert(i);
        } else {
            assert_eq!(d["timestamp"], 32_503_680_000_000i64, "{d}");
            whole.insert(i);
        }
    }
    assert_eq!((cut, whole), (large, future));
}
