//! End to end on the real Kafka: the updating operators that keep rows per
//! key — `dedup … keep last` (Nexmark q18) and `key_by k | top N … as
//! rank` (q19) — written as upsert topics through a killed TaskManager,
//! then a stop with a savepoint and a resume at another parallelism. After
//! each phase both topics, compacted by key, must equal the tables computed
//! here from every record loaded so far: exactly, no key missing, none
//! extra, no stale row.
//!
//! The input is made so that the final tables depend on the kept state and
//! not on the order of arrival: `dedup … keep last` runs in event time,
//! where a record older than the kept row is dropped (so a key whose row
//! were lost on restore or rescale would take an older record and the
//! table would be wrong), and prices are distinct, so the top of an
//! auction has no ties (a lost top would be re-ranked from the newer bids
//! alone). Each auction's bids go to one partition all the same.

mod support;

use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use support::cluster::Cluster;
use support::kafka::{compacted, create_topic, unique_topic, Kafka};

const AUCTIONS: usize = 23;
const BIDDERS: usize = 5;
const TOP: usize = 3;
const BASE_MS: i64 = 1_795_558_500_000;

struct Topics {
    input: String,
    last: String,
    top: String,
}

fn job(dir: &std::path::Path, bootstrap: &str, t: &Topics) -> std::path::PathBuf {
    let (input, last, top) = (&t.input, &t.last, &t.top);
    let text = format!(
        r#"job "Updating operators"
set execution.checkpointing.interval = 500ms
schema Bid {{ auction: string, bidder: string, price: long, at: timestamp(epoch_millis) }}
let bids = source kafka {{ servers: "{bootstrap}", topic: "{input}", group: "updating-e2e", offsets: earliest, schema: Bid }}
        uid "bids"
    | watermark at uid "watermarks"

from bids
    | dedup auction, bidder keep last uid "last-bid"
    | sink kafka {{ servers: "{bootstrap}", topic: "{last}" }} uid "last-sink"

from bids
    | key_by auction
    | top {TOP} by price desc as rank uid "top-bids"
    | sink kafka {{ servers: "{bootstrap}", topic: "{top}" }} uid "top-sink"
"#
    );
    let path = dir.join("updating.flow");
    std::fs::write(&path, text).expect("writing the job");
    path
}

/// Bid `i`: its auction's number, the bid as JSON. Prices and times are
/// distinct (multiplications modulo primes), and times jump back and
/// forth, so many bids are older than their key's kept row.
fn bid(i: usize) -> (usize, Value) {
    let auction = (i * 7) % AUCTIONS;
    let bidder = (i * 3) % BIDDERS;
    let price = (i * 7919) % 100_003;
    let at = BASE_MS + ((i * 104_729) % 1_000_003) as i64;
    (auction, json!({ "auction": format!("a-{auction}"), "bidder": format!("b-{bidder}"), "price": price, "at": at }))
}

fn load(bootstrap: &str, topic: &str, range: std::ops::Range<usize>) {
    let producer: BaseProducer =
        ClientConfig::new().set("bootstrap.servers", bootstrap).create().expect("a Kafka producer");
    for i in range {
        let (auction, value) = bid(i);
        let payload = value.to_string();
        // One partition per auction: its bids arrive in the order loaded.
        let mut rec = BaseRecord::<(), str>::to(topic).payload(&payload).partition((auction % 2) as i32);
        loop {
            match producer.send(rec) {
                Ok(()) => break,
                Err((_, back)) => {
                    rec = back;
                    producer.poll(Duration::from_millis(10));
                }
            }
        }
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(30)).expect("flushing the input");
}

/// A JSON text in one spelling (keys sorted), to compare keys as values.
fn canonical(text: &[u8]) -> String {
    serde_json::from_slice::<Value>(text).expect("a JSON key").to_string()
}

/// `dedup auction, bidder keep last` in event time after bids `0..n`:
/// per key the bid with the latest time (times are distinct).
fn last_model(n: usize) -> BTreeMap<String, Value> {
    let mut m: BTreeMap<String, Value> = BTreeMap::new();
    for i in 0..n {
        let (_, b) = bid(i);
        let key = json!({ "auction": b["auction"], "bidder": b["bidder"] }).to_string();
        let newer = m.get(&key).is_none_or(|kept| kept["at"].as_i64() < b["at"].as_i64());
        if newer {
            m.insert(key, b);
        }
    }
    m
}

/// `key_by auction | top 3 by price desc as rank` after bids `0..n`: per
/// auction and rank the bid holding it (prices are distinct).
fn top_model(n: usize) -> BTreeMap<String, Value> {
    let mut per: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for i in 0..n {
        let (_, b) = bid(i);
        per.entry(b["auction"].as_str().unwrap_or_default().to_string()).or_default().push(b);
    }
    let mut m = BTreeMap::new();
    for (auction, mut bids) in per {
        bids.sort_by_key(|b| std::cmp::Reverse(b["price"].as_i64()));
        for (r, mut b) in bids.into_iter().take(TOP).enumerate() {
            b["rank"] = json!(r + 1);
            m.insert(json!({ "auction": auction, "rank": r + 1 }).to_string(), b);
        }
    }
    m
}

fn wait_for_tables(kafka: &Kafka, t: &Topics, n: usize, what: &str) {
    for (topic, want, name) in [(&t.last, last_model(n), "dedup keep last"), (&t.top, top_model(n), "keyed top")] {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let got = compacted(kafka.bootstrap(), topic, 2, canonical);
            if got == want {
                break;
            }
            if Instant::now() > deadline {
                let wrong: Vec<_> = want.iter().filter(|(k, v)| got.get(*k) != Some(*v)).take(5).collect();
                let found: Vec<_> = wrong.iter().map(|(k, _)| got.get(*k)).collect();
                let extra: Vec<_> = got.keys().filter(|k| !want.contains_key(*k)).take(5).collect();
                panic!(
                    "{what}: the compacted {name} topic is not the model's table ({} keys of {}); \
                     wrong or missing {wrong:?}, found {found:?}, extra {extra:?}",
                    got.len(),
                    want.len()
                );
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

fn wait_checkpoints(cluster: &Cluster, id: &str, more: i64) {
    let done = cluster.metric(id, "numberOfCompletedCheckpoints").unwrap_or(0);
    cluster.wait_for("more checkpoints", Duration::from_secs(30), |c| {
        (c.metric(id, "numberOfCompletedCheckpoints").unwrap_or(0) >= done + more).then_some(())
    });
}

#[test]
fn dedup_keep_last_and_keyed_top_keep_exact_tables_through_a_kill_and_a_rescale() {
    let kafka = Kafka::shared();
    let topics = Topics {
        input: unique_topic("updating-input"),
        last: unique_topic("updating-last"),
        top: unique_topic("updating-top"),
    };
    for t in [&topics.input, &topics.last, &topics.top] {
        create_topic(kafka.bootstrap(), t, 2).expect("a topic");
    }
    load(kafka.bootstrap(), &topics.input, 0..3000);

    let mut cluster = Cluster::start("updating", 1, 2);
    let job = job(&cluster.scratch.0, kafka.bootstrap(), &topics);
    let id = cluster.submit(&job, &["-p", "2"]);
    cluster.wait_all_tasks(&id, "RUNNING", Duration::from_secs(30));
    wait_for_tables(kafka, &topics, 3000, "before the kill");

    // A killed TaskManager: the job restores its last checkpoint, replays
    // the records after it, and both tables stay exact.
    wait_checkpoints(&cluster, &id, 2);
    cluster.kill_taskmanager(0);
    cluster.wait_all_tasks(&id, "SCHEDULED", Duration::from_secs(15));
    cluster.add_taskmanager(2);
    cluster.wait_all_tasks(&id, "RUNNING", Duration::from_secs(30));
    load(kafka.bootstrap(), &topics.input, 3000..4500);
    wait_for_tables(kafka, &topics, 4500, "after the kill");
    assert_eq!(cluster.metric(&id, "numRestarts"), Some(1));

    // Stop with a savepoint, load more, resume at parallelism 3: every
    // key's kept rows move to the subtask that now owns its key group.
    let savepoint = cluster.stop_with_savepoint(&id, Duration::from_secs(20));
    load(kafka.bootstrap(), &topics.input, 4500..6000);
    cluster.add_taskmanager(2);
    let id2 = cluster.submit(&job, &["-p", "3", "-s", &savepoint]);
    cluster.wait_all_tasks(&id2, "RUNNING", Duration::from_secs(30));
    wait_for_tables(kafka, &topics, 6000, "after the resume at parallelism 3");
    let j = cluster.job(&id2);
    assert!(j["vertices"].as_array().expect("vertices").iter().all(|v| v["parallelism"] == 3), "{j}");
}
