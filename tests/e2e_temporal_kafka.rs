//! End to end on the real Kafka: an event-time temporal join (`as of`) of
//! orders with the versions of their customer, read from a compacted topic
//! keyed by customer id (`flowc_playground::temporal`: versions every
//! second, some deletions, orders of unknown customers, all written out of
//! order), into the exactly-once Kafka sink. A `read_committed` reader
//! sees every order with the version valid at its time exactly once, and
//! nothing else, through a killed TaskManager: orders and versions of the
//! first load wait in the join's state across the kill.
//!
//! And a Kafka tombstone (a message with the customer's key and no value)
//! deleting a customer while orders flow: the orders after its timestamp
//! meet nothing in an inner join and come out with nulls in a `left join`.

mod support;

use flowc_playground::generator::TickSink;
use flowc_playground::joins::write_order;
use flowc_playground::kafka::{read_topic, KafkaSink, ProducerSettings};
use flowc_playground::temporal::{expected, orders, parse_enriched, versions, Enriched, Order, Version};
use std::collections::BTreeMap;
use std::time::Duration;
use support::cluster::Cluster;
use support::kafka::{create_compacted_topic, create_topic, unique_topic, Kafka};

const START: i64 = 1_795_558_500_000;
/// Seconds of the first load, and of both.
const FIRST: i64 = 20;
const ALL: i64 = 40;

fn producer(kafka: &Kafka, topic: &str) -> KafkaSink {
    KafkaSink::connect(&ProducerSettings {
        bootstrap: kafka.bootstrap().to_string(),
        topic: topic.to_string(),
        transactional_id: format!("test-temporal-{topic}"),
        transaction_timeout: Duration::from_secs(30),
        startup_timeout: Duration::from_secs(30),
    })
    .expect("connecting the generator")
}

/// Writes the versions (keyed by customer id) and the orders, each topic
/// in one transaction, out of order within half a second.
fn write(kafka: &Kafka, customers: &str, orders_topic: &str, vs: &[Version], os: &[Order]) {
    let mut s = producer(kafka, customers);
    s.begin().expect("begin");
    for v in write_order(vs, |v| v.ts, |v| v.ts * 64 + v.id) {
        s.send_payload(Some(&v.id.to_string()), &v.to_json()).expect("a version");
    }
    s.commit().expect("commit");
    let mut s = producer(kafka, orders_topic);
    s.begin().expect("begin");
    for o in write_order(os, |o| o.ts, |o| o.order_id) {
        s.send_payload(None, &o.to_json()).expect("an order");
    }
    s.commit().expect("commit");
}

fn job(dir: &std::path::Path, customers: &str, orders_topic: &str, out: &str) -> std::path::PathBuf {
    let text = format!(
        r#"job "Orders with their customer's tier"
param bootstrap.servers: string = "localhost:9092"
set execution.checkpointing.interval = 1s
schema Customer {{ ts: timestamp, id: long, tier: string, deleted: bool }}
schema Order {{ ts: timestamp, order_id: long, customer_id: long }}
let customers = source kafka {{
        servers: $bootstrap.servers, topic: "{customers}", group: "temporal-customers", offsets: earliest
        format: json, schema: Customer
    }} uid "customers"
    | watermark ts {{ out_of_orderness: 1s }} uid "customers-watermarks"
    | versioned by id
let orders = source kafka {{
        servers: $bootstrap.servers, topic: "{orders_topic}", group: "temporal-orders", offsets: earliest
        format: json, schema: Order
    }} uid "orders"
    | watermark ts {{ out_of_orderness: 1s }} uid "orders-watermarks"
from orders
    | join customers as of ts on customer_id == customers.id uid "join"
    | select {{ order_id, customer_id, tier }}
    | sink kafka {{ servers: $bootstrap.servers, topic: "{out}", format: json, delivery: exactly_once }} uid "sink"
"#
    );
    let path = dir.join("temporal.flow");
    std::fs::write(&path, text).expect("writing the job");
    path
}

/// Reads the committed output until it holds `at_least` rows, or `timeout`.
fn read_enriched(kafka: &Kafka, topic: &str, at_least: usize, timeout: Duration) -> BTreeMap<Enriched, usize> {
    let mut got: BTreeMap<Enriched, usize> = BTreeMap::new();
    let mut bad = Vec::new();
    let count = std::cell::Cell::new(0usize);
    read_topic(
        kafka.bootstrap(),
        topic,
        timeout,
        |r| {
            let text = String::from_utf8_lossy(r.payload);
            match parse_enriched(&text) {
                Some(e) => *got.entry(e).or_insert(0) += 1,
                None => bad.push(text.to_string()),
            }
            count.set(count.get() + 1);
        },
        || count.get() >= at_least,
    )
    .expect("reading the output");
    assert!(bad.is_empty(), "undecodable output: {bad:?}");
    got
}

#[test]
fn every_order_meets_its_version_exactly_once_through_a_killed_taskmanager() {
    let kafka = Kafka::shared();
    let customers = unique_topic("temporal-customers");
    let orders_topic = unique_topic("temporal-orders");
    let out = unique_topic("temporal-out");
    // One partition each, so that the end markers below move every
    // watermark (the source subtask without a partition is idle for good).
    create_compacted_topic(kafka.bootstrap(), &customers, 1).expect("the customers topic");
    create_topic(kafka.bootstrap(), &orders_topic, 1).expect("the orders topic");
    create_topic(kafka.bootstrap(), &out, 2).expect("the output topic");
    let (vs1, os1) = (versions(START, 0, FIRST), orders(START, 0, FIRST));
    let (vs2, os2) = (versions(START, FIRST, ALL), orders(START, FIRST, ALL));
    let mut all_vs = vs1.clone();
    all_vs.extend(vs2.iter().cloned());
    let mut all_os = os1.clone();
    all_os.extend(os2.iter().cloned());
    let want = expected(&all_vs, &all_os);
    write(kafka, &customers, &orders_topic, &vs1, &os1);

    let mut cluster = Cluster::start("temporal-kill", 1, 2);
    let job = job(&cluster.scratch.0, &customers, &orders_topic, &out);
    let id = cluster.submit(&job, &["-p", "2", "--bootstrap.servers", kafka.bootstrap()]);
    cluster.wait_all_tasks(&id, "RUNNING", Duration::from_secs(30));
    read_enriched(kafka, &out, 50, Duration::from_secs(60));
    let done = cluster.metric(&id, "numberOfCompletedCheckpoints").unwrap_or(0);
    cluster.wait_for("two more checkpoints", Duration::from_secs(30), |c| {
        (c.metric(&id, "numberOfCompletedCheckpoints").unwrap_or(0) >= done + 2).then_some(())
    });
    cluster.kill_taskmanager(0);
    cluster.wait_all_tasks(&id, "SCHEDULED", Duration::from_secs(15));
    cluster.add_taskmanager(2);
    cluster.wait_all_tasks(&id, "RUNNING", Duration::from_secs(30));
    // The second load, then an order and a version (of customers that meet
    // nothing) 10 s after it, so that the watermark passes every order.
    let mut vs2 = vs2;
    vs2.push(Version { ts: START + (ALL + 10) * 1000, id: 1001, tier: "end".into(), deleted: false });
    let mut os2 = os2;
    os2.push(Order { ts: START + (ALL + 10) * 1000, order_id: 1_000_000, customer_id: 1000 });
    write(kafka, &customers, &orders_topic, &vs2, &os2);

    let total: usize = want.values().sum();
    let got = read_enriched(kafka, &out, total, Duration::from_secs(120));
    let missing: Vec<_> = want.keys().filter(|k| !got.contains_key(*k)).take(5).collect();
    assert!(
        missing.is_empty(),
        "{} of {total} rows missing, e.g. {missing:?}\n{}",
        want.len() - got.len().min(want.len()),
        cluster.logs()
    );
    let done = cluster.metric(&id, "numberOfCompletedCheckpoints").unwrap_or(0);
    cluster.wait_for("two more checkpoints", Duration::from_secs(30), |c| {
        (c.metric(&id, "numberOfCompletedCheckpoints").unwrap_or(0) >= done + 2).then_some(())
    });
    let again = read_enriched(kafka, &out, usize::MAX, Duration::from_secs(5));
    let repeated: Vec<_> = again.iter().filter(|(_, n)| **n > 1).take(5).collect();
    assert!(repeated.is_empty(), "rows written more than once: {repeated:?}");
    assert_eq!(again, want, "every order with the version valid at its time, nothing else");
}

/// Sends `(key, value or none for a tombstone, timestamp)` messages, not in
/// a transaction, with the given Kafka timestamps.
fn send_raw(kafka: &Kafka, topic: &str, messages: &[(Option<String>, Option<String>, i64)]) {
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let producer: BaseProducer =
        rdkafka::ClientConfig::new().set("bootstrap.servers", kafka.bootstrap()).create().expect("a producer");
    for (key, value, ts) in messages {
        let mut rec: BaseRecord<'_, str, str> = BaseRecord::to(topic).timestamp(*ts);
        if let Some(k) = key {
            rec = rec.key(k.as_str());
        }
        if let Some(v) = value {
            rec = rec.payload(v.as_str());
        }
        loop {
            match producer.send(rec) {
                Ok(()) => break,
                Err((_, back)) => {
                    rec = back;
                    producer.poll(Duration::from_millis(10));
                }
            }
        }
    }
    producer.flush(Duration::from_secs(30)).expect("flushing");
}

fn version(ts: i64, id: i64, tier: &str) -> (Option<String>, Option<String>, i64) {
    let v = Version { ts, id, tier: tier.into(), deleted: false };
    (Some(id.to_string()), Some(v.to_json()), ts)
}

fn order(ts: i64, order_id: i64, customer_id: i64) -> (Option<String>, Option<String>, i64) {
    (None, Some(Order { ts, order_id, customer_id }.to_json()), ts)
}

/// (order id, tier or none) rows of `topic`, until `n` are read or `timeout`.
fn read_rows(kafka: &Kafka, topic: &str, n: usize, timeout: Duration) -> BTreeMap<(i64, Option<String>), usize> {
    let mut got = BTreeMap::new();
    let count = std::cell::Cell::new(0usize);
    read_topic(
        kafka.bootstrap(),
        topic,
        timeout,
        |r| {
            let v: serde_json::Value = serde_json::from_slice(r.payload).expect("JSON output");
            let id = v["order_id"].as_i64().expect("an order id");
            *got.entry((id, v["tier"].as_str().map(str::to_string))).or_insert(0) += 1;
            count.set(count.get() + 1);
        },
        || count.get() >= n,
    )
    .expect("reading the output");
    got
}

#[test]
fn a_tombstone_deletes_the_customer_from_its_timestamp_on() {
    let kafka = Kafka::shared();
    let customers = unique_topic("tombstone-customers");
    let orders_topic = unique_topic("tombstone-orders");
    let (inner, left) = (unique_topic("tombstone-inner"), unique_topic("tombstone-left"));
    create_compacted_topic(kafka.bootstrap(), &customers, 1).expect("the customers topic");
    create_topic(kafka.bootstrap(), &orders_topic, 1).expect("the orders topic");
    create_topic(kafka.bootstrap(), &inner, 1).expect("an output topic");
    create_topic(kafka.bootstrap(), &left, 1).expect("an output topic");
    let s = START;
    // First load: customers 1 (gold) and 2 (silver, then silver2 at 5 s),
    // and orders up to 5 s.
    send_raw(kafka, &customers, &[version(s, 1, "gold"), version(s, 2, "silver"), version(s + 5_000, 2, "silver2")]);
    send_raw(
        kafka,
        &orders_topic,
        &[order(s + 1_000, 1, 1), order(s + 1_500, 2, 2), order(s + 4_000, 3, 1), order(s + 5_000, 4, 2)],
    );
    let cluster = Cluster::start("temporal-tombstone", 1, 2);
    let text = format!(
        r#"job "Orders with their customer, deletions by tombstones"
param bootstrap.servers: string = "localhost:9092"
schema Customer {{ ts: timestamp, id: long, tier: string, deleted: bool }}
schema Order {{ ts: timestamp, order_id: long, customer_id: long }}
let customers = source kafka {{
        servers: $bootstrap.servers, topic: "{customers}", group: "tombstone-customers", offsets: earliest
        format: json, schema: Customer
    }}
    | watermark ts {{ out_of_orderness: 1s }}
    | versioned by id
let orders = source kafka {{
        servers: $bootstrap.servers, topic: "{orders_topic}", group: "tombstone-orders", offsets: earliest
        format: json, schema: Order
    }}
    | watermark ts {{ out_of_orderness: 1s }}
from orders
    | join customers as of ts on customer_id == customers.id
    | select {{ order_id, tier }}
    | sink kafka {{ servers: $bootstrap.servers, topic: "{inner}", format: json }}
from orders
    | left join customers as of ts on customer_id == customers.id
    | select {{ order_id, tier }}
    | sink kafka {{ servers: $bootstrap.servers, topic: "{left}", format: json }}
"#
    );
    let job = cluster.scratch.0.join("tombstone.flow");
    std::fs::write(&job, text).expect("writing the job");
    let id = cluster.submit(&job, &["-p", "1", "--bootstrap.servers", kafka.bootstrap()]);
    cluster.wait_all_tasks(&id, "RUNNING", Duration::from_secs(30));
    // The watermark (5 s - 1 s) lets orders 1 and 2 out.
    let first = read_rows(kafka, &inner, 2, Duration::from_secs(60));
    assert_eq!(first.len(), 2, "the first orders before the deletion: {first:?}\n{}", cluster.logs());
    // Orders flow on; customer 1 is deleted at 6 s by a tombstone; order 8
    // has no customer; the last messages, at 30 s, move the watermark past
    // every order before them (and come out themselves in neither join).
    send_raw(kafka, &customers, &[(Some("1".into()), None, s + 6_000), version(s + 30_000, 99, "end")]);
    send_raw(
        kafka,
        &orders_topic,
        &[
            order(s + 7_000, 5, 1),
            order(s + 7_000, 6, 2),
            order(s + 9_000, 7, 1),
            order(s + 15_000, 8, 98),
            order(s + 30_000, 9, 99),
        ],
    );
    let tier = |t: &str| Some(t.to_string());
    let want_inner: BTreeMap<(i64, Option<String>), usize> =
        [(1, tier("gold")), (2, tier("silver")), (3, tier("gold")), (4, tier("silver2")), (6, tier("silver2"))]
            .into_iter()
            .map(|k| (k, 1))
            .collect();
    let mut want_left = want_inner.clone();
    for o in [5, 7, 8] {
        want_left.insert((o, None), 1);
    }
    let got_left = read_rows(kafka, &left, want_left.len(), Duration::from_secs(60));
    assert_eq!(got_left, want_left, "left join: nulls from the deletion on\n{}", cluster.logs());
    let got_inner = read_rows(kafka, &inner, usize::MAX, Duration::from_secs(5));
    assert_eq!(got_inner, want_inner, "inner join: nothing from the deletion on");
}
