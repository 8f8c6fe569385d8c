//! End to end on the real Kafka: a lookup join whose side is a Kafka topic
//! read to its end (`source kafka { …, bounded: latest }`). Each subtask
//! of the join (parallelism 2) reads every partition of the topic, from
//! its earliest offset, when it opens; the consumer group's offsets are
//! neither read nor committed, so a second run reads the whole topic again.

mod support;

use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use std::process::Command;
use std::time::Duration;
use support::cluster::{flowc_bin, Scratch};
use support::kafka::{create_topic, unique_topic, Kafka};

fn run(job: &std::path::Path, scratch: &Scratch) -> Vec<String> {
    let o = Command::new(flowc_bin())
        .current_dir(&scratch.0)
        .env("FLOWC_CONF_DIR", scratch.0.join("no-conf"))
        .arg("run")
        .arg(job)
        .args(["-p", "2"])
        .output()
        .expect("flowc run");
    let stdout = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success(), "{stdout}{}", String::from_utf8_lossy(&o.stderr));
    let mut rows: Vec<String> = stdout
        .lines()
        .filter_map(|l| l.split_once("> ").map(|(_, r)| r.to_string()))
        .filter(|r| r.starts_with('{'))
        .collect();
    rows.sort();
    rows
}

#[test]
fn a_lookup_join_reads_a_bounded_kafka_side_whole_in_every_subtask() {
    let kafka = Kafka::shared();
    let topic = unique_topic("lookup-side");
    create_topic(kafka.bootstrap(), &topic, 2).expect("topic");
    let producer: BaseProducer =
        ClientConfig::new().set("bootstrap.servers", kafka.bootstrap()).create().expect("producer");
    for (p, v) in [
        (0, r#"{"page":"/a","category":"one"}"#),
        (1, r#"{"page":"/b","category":"two"}"#),
        (0, r#"{"page":"/b","category":"deux"}"#),
    ] {
        producer.send(BaseRecord::<(), str>::to(&topic).payload(v).partition(p)).expect("send");
    }
    producer.flush(Duration::from_secs(10)).expect("flush");

    let scratch = Scratch::new("lookup-kafka");
    let job = scratch.0.join("lookup.flow");
    std::fs::write(
        &job,
        format!(
            r#"job "Clicks with their pages from Kafka"
schema Click {{ user: string, page: string }}
schema Page {{ page: string, category: string }}
let pages = source kafka {{ servers: "{servers}", topic: "{topic}", schema: Page, bounded: latest }}
source datagen {{ schema: Click, count: 4, user: cycle("ann", "bob", "cy", "dee"), page: cycle("/a", "/b", "/c", "/a") }}
    | left join pages as of proctime() on page == pages.page
    | select {{ user, page: left.page, category }}
    | sink print
"#,
            servers = kafka.bootstrap()
        ),
    )
    .expect("job file");
    let want = vec![
        r#"{"user":"ann","page":"/a","category":"one"}"#.to_string(),
        r#"{"user":"bob","page":"/b","category":"deux"}"#.to_string(),
        r#"{"user":"bob","page":"/b","category":"two"}"#.to_string(),
        r#"{"user":"cy","page":"/c","category":null}"#.to_string(),
        r#"{"user":"dee","page":"/a","category":"one"}"#.to_string(),
    ];
    assert_eq!(run(&job, &scratch), want);
    // Nothing was committed for the group: a second run reads it all again.
    assert_eq!(run(&job, &scratch), want);
}
