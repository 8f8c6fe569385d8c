//! End to end: "why hasn't my window fired?". A topic of two partitions
//! gets events in partition 0 only, a minute of event time, so that windows
//! would fire if partition 1 did not hold the watermark back (the jobs have
//! no source idleness). `GET /jobs/:jid/vertices/:vid/watermark-lineage`
//! must name partition 1, through the upstream subtask, with the windows
//! that wait:
//!
//! - the click job's tumbling window;
//! - the same job with session windows (one session per page, merged from
//!   600 records: three windows wait, not the ends they merged from);
//! - a window join of that topic with a second one that is complete: the
//!   join's input on the stalled side holds it back, four windows wait.

mod support;

use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use serde_json::Value;
use std::time::Duration;
use support::cluster::Cluster;
use support::kafka::{create_topic, unique_topic, Kafka};
use support::playground::click_count_job;

/// 600 click events over a minute of event time (from
/// [`support::playground::START_MS`], 100 ms apart, pages `/help`,
/// `/index`, `/shop` in turn), all into partition 0.
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

/// The click job, its text changed by `edit`, run at parallelism 1 on a
/// topic whose partition 1 stays empty: (cluster, input topic, job id, job).
fn stalled_click_job(name: &str, edit: impl Fn(String) -> String) -> (Cluster, String, String, Value) {
    let kafka = Kafka::shared();
    let (input, output) = (unique_topic(&format!("{name}-input")), unique_topic(&format!("{name}-output")));
    create_topic(kafka.bootstrap(), &input, 2).expect("the input topic");
    create_topic(kafka.bootstrap(), &output, 1).expect("the output topic");
    write_partition_0(kafka.bootstrap(), &input);
    let cluster = Cluster::start(name, 1, 4);
    let job = click_count_job(&cluster.scratch.0, &input, &output);
    // Without idleness a partition without records holds the watermark back for good.
    let text = edit(std::fs::read_to_string(&job).expect("the job").replace(", idleness: 5s", ""));
    std::fs::write(&job, text).expect("the job without idleness");
    let id = cluster.submit(&job, &["-p", "1", "--bootstrap.servers", kafka.bootstrap(), "--event-time"]);
    cluster.wait_all_tasks(&id, "RUNNING", Duration::from_secs(30));
    let j = cluster.job(&id);
    (cluster, input, id, j)
}

#[test]
fn a_stalled_partition_is_named_as_what_holds_the_window_back() {
    let (cluster, input, id, j) = stalled_click_job("lineage", |text| text);
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

/// The lineage of vertex `vid` once it names a partition and `pending`
/// windows wait.
fn lineage_when(cluster: &Cluster, id: &str, vid: &str, pending: u64) -> Value {
    cluster.wait_for("the lineage naming a partition", Duration::from_secs(40), |c| {
        let l: Value = c.rest().get(&format!("/jobs/{id}/vertices/{vid}/watermark-lineage")).ok()?;
        let s = &l["subtasks"][0];
        (s["heldBackBy"]["source"]["partition"].is_number() && s["pendingWindows"].as_u64()? == pending).then_some(l)
    })
}

fn vertex_id(job: &Value, name: &str) -> String {
    job["vertices"]
        .as_array()
        .and_then(|vs| vs.iter().find(|v| v["name"] == name))
        .and_then(|v| v["id"].as_str())
        .unwrap_or_else(|| panic!("no vertex {name}: {job}"))
        .to_string()
}

#[test]
fn session_windows_held_back_by_a_stalled_partition_wait_merged() {
    let (cluster, input, id, j) = stalled_click_job("lineage-session", |text| {
        let text = text.replace("window tumbling { size: 15s, time:", "window session { gap: 5s, time:");
        assert!(text.contains("window session"), "{text}");
        text
    });
    let window = vertex_id(&j, "ClickEvent Counter");
    // Each page's records are 300 ms apart: one session per page, grown
    // record by record to its last record + 5 s.
    let lineage = lineage_when(&cluster, &id, &window, 3);
    eprintln!("{lineage:#}");
    let s = &lineage["subtasks"][0];
    assert_eq!(s["heldBackBy"]["vertex"], vertex_id(&j, "Timestamps/Watermarks").as_str(), "{lineage}");
    assert_eq!(s["heldBackBy"]["source"]["topic"], input.as_str(), "{lineage}");
    assert_eq!(s["heldBackBy"]["source"]["partition"], 1, "{lineage}");
    assert!(s["inputWatermark"].is_null(), "{lineage}");
    // The earliest session ends 5 s after /help's last record (59.7 s).
    let start = support::playground::START_MS;
    assert_eq!(s["earliestPendingWindowEnd"].as_i64(), Some(start + 59_700 + 5_000), "{lineage}");
    cluster.flowc(&["cancel", &id]);
}

#[test]
fn a_window_join_held_back_by_a_stalled_partition_names_it() {
    let kafka = Kafka::shared();
    let (clicks, views, output) =
        (unique_topic("lineage-join-clicks"), unique_topic("lineage-join-views"), unique_topic("lineage-join-out"));
    create_topic(kafka.bootstrap(), &clicks, 2).expect("the clicks topic");
    create_topic(kafka.bootstrap(), &views, 1).expect("the views topic");
    create_topic(kafka.bootstrap(), &output, 1).expect("the output topic");
    // The clicks' partition 1 stays empty; the views' only partition is complete.
    write_partition_0(kafka.bootstrap(), &clicks);
    write_partition_0(kafka.bootstrap(), &views);
    let cluster = Cluster::start("lineage-join", 1, 8);
    let text = format!(
        r#"job "Clicks With Views"
param bootstrap.servers: string = "localhost:9092"
set pipeline.operator-chaining = false
schema ClickEvent {{ timestamp: timestamp("yyyy-MM-dd'T'HH:mm:ss.SSSX"), page: string }}
let clicks = source kafka {{ servers: $bootstrap.servers, topic: "{clicks}", offsets: earliest, format: json, schema: ClickEvent }}
        name "Clicks"
    | watermark timestamp {{ out_of_orderness: 200ms }} name "Click Watermarks"
let views = source kafka {{ servers: $bootstrap.servers, topic: "{views}", offsets: earliest, format: json, schema: ClickEvent }}
        name "Views"
    | watermark timestamp {{ out_of_orderness: 200ms }} name "View Watermarks"
from clicks
    | join views on page == views.page window tumbling {{ size: 15s }} name "Window Join"
    | select {{ page: clicks.page }}
    | sink kafka {{ servers: $bootstrap.servers, topic: "{output}", format: json, delivery: at_least_once }} name "Sink"
"#
    );
    let job = cluster.scratch.0.join("window_join.flow");
    std::fs::write(&job, text).expect("writing the job");
    let id = cluster.submit(&job, &["-p", "1", "--bootstrap.servers", kafka.bootstrap()]);
    cluster.wait_all_tasks(&id, "RUNNING", Duration::from_secs(30));
    let j = cluster.job(&id);
    let join = vertex_id(&j, "Window Join");
    // Records of both sides over a minute: the windows ending at 15, 30, 45 and 60 s wait.
    let lineage = lineage_when(&cluster, &id, &join, 4);
    eprintln!("{lineage:#}");
    let s = &lineage["subtasks"][0];
    let held = &s["heldBackBy"];
    // The join's input on the clicks' side (a projection of the clicks'
    // watermarks' output), the side of the stalled partition.
    let inputs_of = |vid: &Value| -> Vec<Value> {
        j["plan"]["nodes"]
            .as_array()
            .and_then(|ns| ns.iter().find(|n| n["id"] == *vid))
            .and_then(|n| n["inputs"].as_array())
            .map(|is| is.iter().map(|i| i["id"].clone()).collect())
            .unwrap_or_default()
    };
    let click_watermarks = Value::from(vertex_id(&j, "Click Watermarks"));
    assert!(
        held["vertex"] == click_watermarks || inputs_of(&held["vertex"]).contains(&click_watermarks),
        "the stalled side: {lineage}"
    );
    assert_eq!(held["source"]["topic"], clicks.as_str(), "{lineage}");
    assert_eq!(held["source"]["partition"], 1, "{lineage}");
    assert!(held["source"]["watermark"].is_null(), "{lineage}");
    assert!(s["inputWatermark"].is_null(), "{lineage}");
    let start = support::playground::START_MS;
    assert_eq!(s["earliestPendingWindowEnd"].as_i64(), Some(start + 15_000), "{lineage}");
    let summary = lineage["summary"].as_str().unwrap_or_default();
    assert!(
        summary.contains("4 windows wait") && summary.contains(&format!("partition 1 of topic {clicks}")),
        "{summary}"
    );
    cluster.flowc(&["cancel", &id]);
}
