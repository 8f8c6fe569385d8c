//! End to end: "why hasn't my window fired?". The click job (without
//! source idleness) reads a topic of two partitions; events are written to
//! partition 0 only, a minute of event time, so that windows would fire if
//! partition 1 did not hold the watermark back. `GET /jobs/:jid/vertices/
//! :vid/watermark-lineage` of the window vertex must name partition 1,
//! through the upstream subtask, with the windows that wait.

mod support;

use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use serde_json::Value;
use std::time::Duration;
use support::cluster::Cluster;
use support::kafka::{create_topic, unique_topic, Kafka};
use support::playground::click_count_job;

/// 600 click events over a minute of event time, all into partition 0.
fn write_partition_0(bootstrap: &str, topic: &str) {
    let producer: BaseProducer = ClientConfig::new().set("bootstrap.servers", bootstrap).create().expect("a producer");
    for i in 0..600u64 {
        let ms = i * 100;
        let ts = format!("2026-11-24T22:{:02}:{:02}.{:03}Z", 15 + ms / 60_000, (ms / 1000) % 60, ms % 1000);
        let page = ["/help", "/index", "/shop"][(i % 3) as usize];
        let payload = format!(r#"{{"timestamp":"{ts}","page":"{page}"}}"#);
        let mut record = BaseRecord::<(), String>::to(topic).partition(0).payload(&payload);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, back)) => {
                    producer.poll(Duration::from_millis(50));
                    record = back;
                }
            }
        }
    }
    producer.flush(Duration::from_secs(30)).expect("the events written");
}

#[test]
fn a_stalled_partition_is_named_as_what_holds_the_window_back() {
    let kafka = Kafka::shared();
    let (input, output) = (unique_topic("lineage-input"), unique_topic("lineage-output"));
    create_topic(kafka.bootstrap(), &input, 2).expect("the input topic");
    create_topic(kafka.bootstrap(), &output, 1).expect("the output topic");
    write_partition_0(kafka.bootstrap(), &input);
    let cluster = Cluster::start("lineage", 1, 4);
    let job = click_count_job(&cluster.scratch.0, &input, &output);
    // Without idleness a partition without records holds the watermark back for good.
    let text = std::fs::read_to_string(&job).expect("the job").replace(", idleness: 5s", "");
    std::fs::write(&job, text).expect("the job without idleness");
    let id = cluster.submit(&job, &["-p", "1", "--bootstrap.servers", kafka.bootstrap(), "--event-time"]);
    cluster.wait_all_tasks(&id, "RUNNING", Duration::from_secs(30));
    let j = cluster.job(&id);
    let window = j["vertices"][2]["id"].as_str().expect("the window vertex").to_string();
    let watermarks = j["vertices"][1]["id"].as_str().expect("the watermark vertex").to_string();
    assert_eq!(j["vertices"][2]["name"], "ClickEvent Counter");
    let lineage = cluster.wait_for("the lineage naming a partition", Duration::from_secs(40), |c| {
        let l: Value = c.rest().get(&format!("/jobs/{id}/vertices/{window}/watermark-lineage")).ok()?;
        let s = &l["subtasks"][0];
        // Every event read, and the windows they made waiting.
        (s["heldBackBy"]["source"]["partition"].is_number() && s["pendingWindows"].as_u64()? > 0).then_some(l)
    });
    eprintln!("{lineage:#}");
    let s = &lineage["subtasks"][0];
    let held = &s["heldBackBy"];
    assert_eq!(held["vertex"], watermarks.as_str(), "held back by the upstream subtask: {lineage}");
    assert_eq!(held["subtask"], 0, "{lineage}");
    let source = &held["source"];
    assert_eq!(source["topic"], input.as_str(), "{lineage}");
    assert_eq!(source["partition"], 1, "the partition without records: {lineage}");
    assert!(source["watermark"].is_null(), "it has no watermark: {lineage}");
    assert_eq!(source["idle"], false, "{lineage}");
    assert!(s["inputWatermark"].is_null(), "no watermark reached the window: {lineage}");
    assert!(s["earliestPendingWindowEnd"].as_i64().is_some(), "{lineage}");
    let summary = lineage["summary"].as_str().unwrap_or_default();
    assert!(summary.contains("partition 1") && summary.contains(&input), "{summary}");
    // The source's own view names the partition too, and its metrics carry
    // both partitions' watermarks and lags.
    let source_vertex = j["vertices"][0]["id"].as_str().expect("the source vertex");
    let l: Value =
        cluster.rest().get(&format!("/jobs/{id}/vertices/{source_vertex}/watermark-lineage")).expect("lineage");
    assert_eq!(l["subtasks"][0]["source"]["partition"], 1, "{l}");
    let m: Value = cluster
        .rest()
        .get(&format!(
            "/jobs/{id}/vertices/{source_vertex}/metrics?get=0.KafkaSourceReader.topic.{input}.partition.0.currentWatermark,0.KafkaSourceReader.topic.{input}.partition.1.currentWatermark"
        ))
        .expect("partition metrics");
    assert_eq!(m.as_array().map(Vec::len), Some(2), "{m}");
    assert_ne!(m[0]["value"], m[1]["value"], "{m}");
    cluster.flowc(&["cancel", &id]);
}
