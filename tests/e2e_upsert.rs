//! End to end on the real Kafka: a running aggregate written as an upsert
//! topic (`upsert-kafka`) through a killed TaskManager, then a stop with a
//! savepoint and a resume at another parallelism. After each phase the
//! topic, compacted by key (the latest value per message key), must equal
//! the table computed here from every record loaded so far — exactly, with
//! no key missing and none extra.

mod support;

use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use support::cluster::Cluster;
use support::kafka::{compacted, create_topic, unique_topic, Kafka};

const USERS: usize = 37;

fn job(dir: &std::path::Path, bootstrap: &str, input: &str, output: &str) -> std::path::PathBuf {
    let text = format!(
        r#"job "Upsert totals"
set execution.checkpointing.interval = 500ms
schema Purchase {{ user: string, amount: long }}
source kafka {{ servers: "{bootstrap}", topic: "{input}", group: "upsert-e2e", offsets: earliest, schema: Purchase }}
        uid "purchases"
    | key_by user
    | aggregate {{ user, n: count(), total: sum(amount), biggest: max(amount) }} uid "totals"
    | sink kafka {{ servers: "{bootstrap}", topic: "{output}" }} uid "totals-sink"
"#
    );
    let path = dir.join("upsert.flow");
    std::fs::write(&path, text).expect("writing the job");
    path
}

/// Record `i` of the input: a user and an amount.
fn record(i: usize) -> (String, i64) {
    (format!("user-{}", (i * 7) % USERS), (i % 101) as i64 - 20)
}

fn load(bootstrap: &str, topic: &str, range: std::ops::Range<usize>) {
    let producer: BaseProducer =
        ClientConfig::new().set("bootstrap.servers", bootstrap).create().expect("a Kafka producer");
    for i in range {
        let (user, amount) = record(i);
        let payload = json!({ "user": user, "amount": amount }).to_string();
        let mut rec = BaseRecord::<(), str>::to(topic).payload(&payload);
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

/// The final table after records `0..n`: key JSON → value JSON.
fn model(n: usize) -> BTreeMap<String, Value> {
    let mut m: BTreeMap<String, (i64, i64, i64)> = BTreeMap::new();
    for i in 0..n {
        let (user, amount) = record(i);
        let e = m.entry(user).or_insert((0, 0, i64::MIN));
        e.0 += 1;
        e.1 += amount;
        e.2 = e.2.max(amount);
    }
    m.into_iter()
        .map(|(u, (n, total, biggest))| {
            (json!({ "user": u }).to_string(), json!({ "user": u, "n": n, "total": total, "biggest": biggest }))
        })
        .collect()
}

fn wait_for_table(kafka: &Kafka, output: &str, n: usize, what: &str) {
    let want = model(n);
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let got = compacted(kafka.bootstrap(), output, 2, |k| String::from_utf8(k.to_vec()).expect("UTF-8 key"));
        if got == want {
            return;
        }
        if Instant::now() > deadline {
            let wrong: Vec<_> = want.iter().filter(|(k, v)| got.get(*k) != Some(*v)).take(5).collect();
            let extra: Vec<_> = got.keys().filter(|k| !want.contains_key(*k)).take(5).collect();
            panic!("{what}: the compacted topic is not the model's table; wrong or missing {wrong:?}, extra {extra:?}");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn wait_checkpoints(cluster: &Cluster, id: &str, more: i64) {
    let done = cluster.metric(id, "numberOfCompletedCheckpoints").unwrap_or(0);
    cluster.wait_for("more checkpoints", Duration::from_secs(30), |c| {
        (c.metric(id, "numberOfCompletedCheckpoints").unwrap_or(0) >= done + more).then_some(())
    });
}

#[test]
fn an_upsert_topic_holds_the_exact_final_table_through_a_kill_and_a_rescale() {
    let kafka = Kafka::shared();
    let (input, output) = (unique_topic("upsert-input"), unique_topic("upsert-output"));
    create_topic(kafka.bootstrap(), &input, 2).expect("input topic");
    create_topic(kafka.bootstrap(), &output, 2).expect("output topic");
    load(kafka.bootstrap(), &input, 0..3000);

    let mut cluster = Cluster::start("upsert", 1, 2);
    let job = job(&cluster.scratch.0, kafka.bootstrap(), &input, &output);
    let id = cluster.submit(&job, &["-p", "2"]);
    cluster.wait_all_tasks(&id, "RUNNING", Duration::from_secs(30));
    wait_for_table(kafka, &output, 3000, "before the kill");

    // A killed TaskManager: the job restores its last checkpoint, replays
    // the records after it, and the table stays exact.
    wait_checkpoints(&cluster, &id, 2);
    cluster.kill_taskmanager(0);
    cluster.wait_all_tasks(&id, "SCHEDULED", Duration::from_secs(15));
    cluster.add_taskmanager(2);
    cluster.wait_all_tasks(&id, "RUNNING", Duration::from_secs(30));
    load(kafka.bootstrap(), &input, 3000..4500);
    wait_for_table(kafka, &output, 4500, "after the kill");
    assert_eq!(cluster.metric(&id, "numRestarts"), Some(1));

    // Stop with a savepoint, load more, resume at parallelism 3.
    let savepoint = cluster.stop_with_savepoint(&id, Duration::from_secs(20));
    load(kafka.bootstrap(), &input, 4500..6000);
    cluster.add_taskmanager(2);
    let id2 = cluster.submit(&job, &["-p", "3", "-s", &savepoint]);
    cluster.wait_all_tasks(&id2, "RUNNING", Duration::from_secs(30));
    wait_for_table(kafka, &output, 6000, "after the resume at parallelism 3");
    let j = cluster.job(&id2);
    assert!(j["vertices"].as_array().expect("vertices").iter().all(|v| v["parallelism"] == 3), "{j}");
}
