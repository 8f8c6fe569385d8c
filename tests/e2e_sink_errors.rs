//! End to end on the real Kafka: a record a Kafka sink cannot write — a
//! message over Kafka's `message.max.bytes` — fails the task when the sink
//! encodes it, naming the sink, the sizes and the record. For an
//! exactly-once sink this matters most: it keeps a checkpoint's records in
//! the checkpoint and writes them when the checkpoint completes, so a
//! record refused then was in a completed checkpoint, and every restore
//! failed on it again. Now it never gets there.

mod support;

use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
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
