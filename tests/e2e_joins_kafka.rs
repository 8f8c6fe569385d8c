//! End to end on the real Kafka: an interval join of clicks with
//! impressions (written out of order by the playground's join generator,
//! with a known set of matches) into the exactly-once Kafka sink. A
//! `read_committed` reader sees every expected joined row exactly once —
//! through a killed TaskManager, and through a stop with a savepoint and a
//! resume at parallelism 3 — so barrier alignment across both inputs and
//! the join's state (restored and redistributed) lose and repeat nothing.

mod support;

use flowc_playground::joins::{events, expected, parse_joined, write_all, write_order, Click, Impression, Joined};
use flowc_playground::kafka::{read_topic, KafkaSink, ProducerSettings};
use std::collections::BTreeMap;
use std::time::Duration;
use support::cluster::Cluster;
use support::kafka::{create_topic, unique_topic, Kafka};

const START: i64 = 1_795_558_500_000;
/// Impressions 3000.. start well after the first 3000's last click (15 s
/// after their last impression), so that no topic goes back in time.
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
        transactional_id: format!("test-join-generator-{topic}"),
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

/// The first load: impressions 0..3000 and their clicks before
/// `START + 30 s`. Returns the clicks held back for the second load —
/// they meet impressions of the first, which must then be in the join's
/// state — and every row the two loads must give.
fn load_first(kafka: &Kafka, t: &Topics) -> (Vec<Click>, BTreeMap<Joined, usize>) {
    let (imps, clicks) = events(START, 0, 3000);
    let want = expected(&imps, &clicks);
    let (early, held): (Vec<Click>, Vec<Click>) = clicks.into_iter().partition(|c| c.ts < START + 30_000);
    let across = held.iter().filter(|c| want.keys().any(|(id, _, _)| *id == c.click_id)).count();
    assert!(across > 100, "only {across} joined rows need state across the load");
    write(kafka, t, &imps, &early);
    let (imps2, clicks2) = events(SECOND_START, 3000, 6000);
    let mut want = want;
    want.extend(expected(&imps2, &clicks2));
    (held, want)
}

/// The second load: the held-back clicks, then impressions 3000..6000
/// (from `SECOND_START`) and their clicks.
fn load_second(kafka: &Kafka, t: &Topics, held: Vec<Click>) {
    let (imps2, clicks2) = events(SECOND_START, 3000, 6000);
    let mut clicks = held;
    clicks.extend(clicks2);
    write(kafka, t, &imps2, &clicks);
}

fn job(dir: &std::path::Path, t: &Topics) -> std::path::PathBuf {
    let text = format!(
        r#"job "Clicks with their impressions"
param bootstrap.servers: string = "localhost:9092"
set execution.checkpointing.interval = 1s
schema Click {{ ts: timestamp, click_id: long, imp_id: long }}
schema Impression {{ ts: timestamp, imp_id: long, campaign: string }}
let clicks = source kafka {{
        servers: $bootstrap.servers, topic: "{}", group: "join-clicks", offsets: earliest, format: json, schema: Click
    }} uid "clicks"
    | watermark ts {{ out_of_orderness: 1s }} uid "clicks-watermarks"
let impressions = source kafka {{
        servers: $bootstrap.servers, topic: "{}", group: "join-impressions", offsets: earliest, format: json
        schema: Impression
    }} uid "impressions"
    | watermark ts {{ out_of_orderness: 1s }} uid "impressions-watermarks"
from clicks
    | join impressions on imp_id == impressions.imp_id within -10s, 0s uid "join"
    | select {{ click_id, imp_id: clicks.imp_id, campaign }}
    | sink kafka {{ servers: $bootstrap.servers, topic: "{}", format: json, delivery: exactly_once }} uid "sink"
"#,
        t.clicks, t.impressions, t.out
    );
    let path = dir.join("join.flow");
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
fn every_joined_row_exactly_once_through_a_killed_taskmanager() {
    let kafka = Kafka::shared();
    let t = topics(kafka, "join-kill");
    let (held, want) = load_first(kafka, &t);
    let mut cluster = Cluster::start("join-kill", 1, 2);
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
fn every_joined_row_exactly_once_through_a_savepoint_and_a_resume_at_parallelism_3() {
    let kafka = Kafka::shared();
    let t = topics(kafka, "join-rescale");
    let (held, want) = load_first(kafka, &t);
    let mut cluster = Cluster::start("join-rescale", 1, 2);
    let job = job(&cluster.scratch.0, &t);
    let id = cluster.submit(&job, &["-p", "2", "--bootstrap.servers", kafka.bootstrap()]);
    cluster.wait_all_tasks(&id, "RUNNING", Duration::from_secs(30));
    wait_for_output_and_checkpoints(&cluster, kafka, &id, &t.out);
    let savepoint = cluster.stop_with_savepoint(&id, Duration::from_secs(30));
    load_second(kafka, &t, held);
    cluster.add_taskmanager(2);
    let id2 = cluster.submit(&job, &["-p", "3", "-s", savepoint.as_str(), "--bootstrap.servers", kafka.bootstrap()]);
    cluster.wait_all_tasks(&id2, "RUNNING", Duration::from_secs(30));
    let j = cluster.job(&id2);
    assert!(j["vertices"].as_array().expect("vertices").iter().all(|v| v["parallelism"] == 3), "{j}");
    expect_exactly(&cluster, kafka, &id2, &t.out, &want);
}
