//! End to end on the real Kafka: a regular join (`join … ttl 1d`, no time
//! bound) of clicks with impressions into the exactly-once Kafka sink. A
//! `read_committed` reader sees every click whose impression exists joined
//! with it exactly once, whatever the time between the two — through a
//! killed TaskManager, and through a stop with a savepoint and a resume at
//! parallelism 3. The records of the second load meet rows of both sides
//! that only the restored state holds: clicks held back meet impressions
//! of the first load, impressions held back meet clicks of the first load.
//! And `ttl` shows in the checkpoints: once the input is read, the
//! checkpoint size falls as the join's rows expire.

mod support;

use flowc_playground::joins::{events, parse_joined, write_all, write_order, Click, Impression, Joined};
use flowc_playground::kafka::{read_topic, KafkaSink, ProducerSettings};
use std::collections::BTreeMap;
use std::time::Duration;
use support::cluster::Cluster;
use support::kafka::{create_topic, unique_topic, Kafka};

const START: i64 = 1_795_558_500_000;
const SECOND_START: i64 = START + 20_000;

struct Topics {
    clicks: String,
    impressions: String,
    out: String,
}

fn topics(kafka: &Kafka, name: &str) -> Topics {
    let t = Topics {
        clicks: unique_topic(&format!("{name}-clicks")),
        impressions: unique_topic(&format!("{name}-impressions")),
        out: unique_topic(&format!("{name}-out")),
    };
    for topic in [&t.clicks, &t.impressions, &t.out] {
        create_topic(kafka.bootstrap(), topic, 2).expect("creating a topic");
    }
    t
}

fn producer(kafka: &Kafka, topic: &str) -> KafkaSink {
    KafkaSink::connect(&ProducerSettings {
        bootstrap: kafka.bootstrap().to_string(),
        topic: topic.to_string(),
        transactional_id: format!("test-rjoin-generator-{topic}"),
        transaction_timeout: Duration::from_secs(30),
        startup_timeout: Duration::from_secs(30),
    })
    .expect("connecting the generator")
}

/// Writes the records, each topic in one transaction, out of order.
fn write(kafka: &Kafka, t: &Topics, imps: &[Impression], clicks: &[Click]) {
    let mut s = producer(kafka, &t.impressions);
    write_all(&mut s, write_order(imps, |m| m.ts, |m| m.imp_id).iter().map(|m| m.to_json())).expect("impressions");
    let mut s = producer(kafka, &t.clicks);
    write_all(&mut s, write_order(clicks, |c| c.ts, |c| c.click_id).iter().map(|c| c.to_json())).expect("clicks");
}

/// What the regular join emits: each click with the impression of its id,
/// however far apart in time (every 50th click names none).
fn expected(imps: &[Impression], clicks: &[Click]) -> BTreeMap<Joined, usize> {
    let by_id: BTreeMap<i64, &Impression> = imps.iter().map(|m| (m.imp_id, m)).collect();
    let mut out = BTreeMap::new();
    for c in clicks {
        if let Some(m) = by_id.get(&c.imp_id) {
            *out.entry((c.click_id, m.imp_id, m.campaign.clone())).or_insert(0) += 1;
        }
    }
    out
}

/// The records of the second load: held back from the first, and the
/// events of impressions 3000..6000.
struct Held {
    imps: Vec<Impression>,
    clicks: Vec<Click>,
}

/// The first load: impressions 0..3000 but every fifth, and their clicks
/// before `START + 30 s`. Returns what is held back for the second load
/// and every row the two loads must give.
fn load_first(kafka: &Kafka, t: &Topics) -> (Held, BTreeMap<Joined, usize>) {
    let (imps, clicks) = events(START, 0, 3000);
    let mut want = expected(&imps, &clicks);
    let (early, held_clicks): (Vec<Click>, Vec<Click>) = clicks.into_iter().partition(|c| c.ts < START + 30_000);
    let (first, held_imps): (Vec<Impression>, Vec<Impression>) = imps.into_iter().partition(|m| m.imp_id % 5 != 0);
    let meets = |c: &Click, ms: &[Impression]| ms.iter().any(|m| m.imp_id == c.imp_id);
    let clicks_on_state = held_clicks.iter().filter(|c| meets(c, &first)).count();
    let imps_on_state = early.iter().filter(|c| meets(c, &held_imps)).count();
    assert!(clicks_on_state > 100 && imps_on_state > 100, "{clicks_on_state} and {imps_on_state} rows need state");
    write(kafka, t, &first, &early);
    let (imps2, clicks2) = events(SECOND_START, 3000, 6000);
    want.extend(expected(&imps2, &clicks2));
    let mut held = Held { imps: held_imps, clicks: held_clicks };
    held.imps.extend(imps2);
    held.clicks.extend(clicks2);
    (held, want)
}

fn load_second(kafka: &Kafka, t: &Topics, held: Held) {
    write(kafka, t, &held.imps, &held.clicks);
}

/// No `watermark`: a regular join needs none.
fn job(dir: &std::path::Path, t: &Topics) -> std::path::PathBuf {
    let text = format!(
        r#"job "Clicks with their impressions, a regular join"
param bootstrap.servers: string = "localhost:9092"
set execution.checkpointing.interval = 1s
schema Click {{ ts: timestamp, click_id: long, imp_id: long }}
schema Impression {{ ts: timestamp, imp_id: long, campaign: string }}
let clicks = source kafka {{
        servers: $bootstrap.servers, topic: "{}", group: "rjoin-clicks", offsets: earliest, format: json, schema: Click
    }} uid "clicks"
let impressions = source kafka {{
        servers: $bootstrap.servers, topic: "{}", group: "rjoin-impressions", offsets: earliest, format: json
        schema: Impression
    }} uid "impressions"
from clicks
    | join impressions on imp_id == impressions.imp_id ttl 1d uid "join"
    | select {{ click_id, imp_id: clicks.imp_id, campaign }}
    | sink kafka {{ servers: $bootstrap.servers, topic: "{}", format: json, delivery: exactly_once }} uid "sink"
"#,
        t.clicks, t.impressions, t.out
    );
    let path = dir.join("rjoin.flow");
    std::fs::write(&path, text).expect("writing the job");
    path
}

/// Reads the output (committed only) until it holds `at_least` rows, or
/// `timeout`; every row counted.
fn read_joined(kafka: &Kafka, topic: &str, at_least: usize, timeout: Duration) -> BTreeMap<Joined, usize> {
    let mut got: BTreeMap<Joined, usize> = BTreeMap::new();
    let mut bad = Vec::new();
    let mut n = 0usize;
    let count = std::cell::Cell::new(0usize);
    read_topic(
        kafka.bootstrap(),
        topic,
        timeout,
        |r| {
            let text = String::from_utf8_lossy(r.payload);
            match parse_joined(&text) {
                Some(j) => *got.entry(j).or_insert(0) += 1,
                None => bad.push(text.to_string()),
            }
            n += 1;
            count.set(n);
        },
        || count.get() >= at_least,
    )
    .expect("reading the output");
    assert!(bad.is_empty(), "undecodable output: {bad:?}");
    got
}

fn total(m: &BTreeMap<Joined, usize>) -> usize {
    m.values().sum()
}

/// Every expected row once, nothing else; read again after the job took
/// two more checkpoints, so that a late repeat would show.
fn expect_exactly(cluster: &Cluster, kafka: &Kafka, id: &str, topic: &str, want: &BTreeMap<Joined, usize>) {
    let got = read_joined(kafka, topic, total(want), Duration::from_secs(120));
    let missing: Vec<_> = want.keys().filter(|k| !got.contains_key(*k)).take(5).collect();
    assert!(
        missing.is_empty(),
        "{} of {} rows missing, e.g. {missing:?}\n{}",
        total(want).saturating_sub(total(&got)),
        total(want),
        cluster.logs()
    );
    let done = cluster.metric(id, "numberOfCompletedCheckpoints").unwrap_or(0);
    cluster.wait_for("two more checkpoints", Duration::from_secs(30), |c| {
        (c.metric(id, "numberOfCompletedCheckpoints").unwrap_or(0) >= done + 2).then_some(())
    });
    let again = read_joined(kafka, topic, usize::MAX, Duration::from_secs(5));
    let repeated: Vec<_> = again.iter().filter(|(_, n)| **n > 1).take(5).collect();
    assert!(repeated.is_empty(), "rows written more than once: {repeated:?}");
    assert_eq!(&again, want);
}

/// Waits until some joined rows are committed and two more checkpoints
/// have completed, so that the join's state is in a checkpoint.
fn wait_for_output_and_checkpoints(cluster: &Cluster, kafka: &Kafka, id: &str, topic: &str) {
    read_joined(kafka, topic, 50, Duration::from_secs(60));
    let done = cluster.metric(id, "numberOfCompletedCheckpoints").unwrap_or(0);
    cluster.wait_for("two more checkpoints", Duration::from_secs(30), |c| {
        (c.metric(id, "numberOfCompletedCheckpoints").unwrap_or(0) >= done + 2).then_some(())
    });
}

#[test]
fn a_regular_join_writes_every_row_exactly_once_through_a_savepoint_and_a_resume_at_parallelism_3() {
    let kafka = Kafka::shared();
    let t = topics(kafka, "rjoin-rescale");
    let (held, want) = load_first(kafka, &t);
    let mut cluster = Cluster::start("rjoin-rescale", 1, 2);
    let job = job(&cluster.scratch.0, &t);
    let id = cluster.submit(&job, &["-p", "2", "--bootstrap.servers", kafka.bootstrap()]);
    cluster.wait_all_tasks(&id, "RUNNING", Duration::from_secs(30));
    let plan = cluster.rest().get(&format!("/jobs/{id}/plan")).expect("the plan");
    let join = plan["plan"]["nodes"]
        .as_array()
        .and_then(|ns| ns.iter().find(|n| n["description"].as_str().is_some_and(|d| d.starts_with("Join"))))
        .unwrap_or_else(|| panic!("no join vertex in {plan}"));
    let inputs = join["inputs"].as_array().expect("inputs");
    assert!(inputs.len() == 2 && inputs.iter().all(|i| i["ship_strategy"] == "HASH"), "{join}");
    wait_for_output_and_checkpoints(&cluster, kafka, &id, &t.out);
    let out = cluster.flowc(&["stop", &id]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "flowc stop failed: {text}{}", String::from_utf8_lossy(&out.stderr));
    let savepoint = text
        .lines()
        .find_map(|l| l.strip_prefix("Savepoint completed. Path: "))
        .unwrap_or_else(|| panic!("no savepoint path in {text}"))
        .to_string();
    cluster.wait_job_state(&id, "FINISHED", Duration::from_secs(30));
    load_second(kafka, &t, held);
    cluster.add_taskmanager(2);
    let id2 = cluster.submit(&job, &["-p", "3", "-s", savepoint.as_str(), "--bootstrap.servers", kafka.bootstrap()]);
    cluster.wait_all_tasks(&id2, "RUNNING", Duration::from_secs(30));
    let j = cluster.job(&id2);
    assert!(j["vertices"].as_array().expect("vertices").iter().all(|v| v["parallelism"] == 3), "{j}");
    expect_exactly(&cluster, kafka, &id2, &t.out, &want);
}

#[test]
fn a_regular_join_writes_every_row_exactly_once_through_a_killed_taskmanager() {
    let kafka = Kafka::shared();
    let t = topics(kafka, "rjoin-kill");
    let (held, want) = load_first(kafka, &t);
    let mut cluster = Cluster::start("rjoin-kill", 1, 2);
    let job = job(&cluster.scratch.0, &t);
    let id = cluster.submit(&job, &["-p", "2", "--bootstrap.servers", kafka.bootstrap()]);
    cluster.wait_all_tasks(&id, "RUNNING", Duration::from_secs(30));
    wait_for_output_and_checkpoints(&cluster, kafka, &id, &t.out);
    cluster.kill_taskmanager(0);
    cluster.wait_all_tasks(&id, "SCHEDULED", Duration::from_secs(15));
    cluster.add_taskmanager(2);
    cluster.wait_all_tasks(&id, "RUNNING", Duration::from_secs(30));
    load_second(kafka, &t, held);
    expect_exactly(&cluster, kafka, &id, &t.out, &want);
}

#[test]
fn a_regular_joins_rows_leave_the_checkpoints_once_their_ttl_is_over() {
    let kafka = Kafka::shared();
    let t = topics(kafka, "rjoin-ttl");
    let (imps, clicks) = events(START, 0, 3000);
    write(kafka, &t, &imps, &clicks);
    let cluster = Cluster::start("rjoin-ttl", 1, 2);
    let job = job(&cluster.scratch.0, &t);
    let text = std::fs::read_to_string(&job).expect("the job").replace("ttl 1d", "ttl 4s");
    std::fs::write(&job, text).expect("writing the job");
    let id = cluster.submit(&job, &["-p", "2", "--bootstrap.servers", kafka.bootstrap()]);
    cluster.wait_all_tasks(&id, "RUNNING", Duration::from_secs(30));
    // Every joined row comes out (the input is read in well under 4 s)…
    let want = expected(&imps, &clicks);
    let got = read_joined(kafka, &t.out, total(&want), Duration::from_secs(60));
    assert_eq!(total(&got), total(&want));
    // …and the checkpoints that held the rows of 4000 records shrink to
    // the sources' offsets once the rows are over.
    let size = |c: &Cluster| c.metric(&id, "lastCheckpointSize").unwrap_or(0);
    let mut peak = 0;
    let small = cluster.wait_for("the join's state to expire", Duration::from_secs(60), |c| {
        let s = size(c);
        peak = peak.max(s);
        (peak > 50_000 && s < peak / 10).then_some(s)
    });
    assert!(small < 20_000, "a checkpoint of {small} bytes after a peak of {peak}");
}
