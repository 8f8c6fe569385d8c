//! End to end on the real Kafka: a Kafka sink writes message headers
//! (`headers: [trace, region]`), each named as its string field, its text
//! the value, none for a null; with `delivery: at_least_once`, with
//! `exactly_once` (the headers kept with the records until the commit, one
//! named other than its field: `["trace-id", trace]`) and from an upsert
//! stream. A `read_committed` reader checks every message's
//! headers, key and value exactly.

mod support;

use rdkafka::message::{Headers, Message};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;
use support::cluster::Cluster;
use support::kafka::{create_topic, read_committed, unique_topic, Kafka};

const RECORDS: i64 = 30;

/// A message as read: key, headers (name, text) in order, value.
type Msg = (Option<String>, Vec<(String, String)>, Value);

/// Every message of `topic` (read_committed, from the beginning), until
/// `want` are in and a little longer, or `timeout`.
fn read_all(bootstrap: &str, topic: &str, want: usize, timeout: Duration) -> Vec<Msg> {
    read_committed(bootstrap, &[(topic, 1)], want, timeout, Duration::from_secs(2), |m| {
        let headers = m
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| {
                        (h.key.to_string(), h.value.map(|v| String::from_utf8_lossy(v).to_string()).unwrap_or_default())
                    })
                    .collect()
            })
            .unwrap_or_default();
        let key = m.key().map(|k| String::from_utf8_lossy(k).to_string());
        let value = m.payload().map(|v| serde_json::from_slice(v).expect("a JSON value")).unwrap_or(Value::Null);
        (key, headers, value)
    })
}

/// Record `i`'s trace (null for every third) and region.
fn trace_of(i: i64) -> Option<String> {
    (i % 3 != 0).then(|| format!("t{i}"))
}

fn region_of(i: i64) -> &'static str {
    ["eu", "us"][(i % 2) as usize]
}

/// The headers the plain sinks must write for record `i`, in order, the
/// trace's named `trace`.
fn headers_of(i: i64, trace: &str) -> Vec<(String, String)> {
    let mut h = Vec::new();
    if let Some(t) = trace_of(i) {
        h.push((trace.to_string(), t));
    }
    h.push(("region".to_string(), region_of(i).to_string()));
    h
}

#[test]
fn kafka_sinks_write_each_string_field_named_as_a_header() {
    let kafka = Kafka::shared();
    let t: Vec<String> = ["plain", "exactly", "upsert"].iter().map(|s| unique_topic(&format!("headers-{s}"))).collect();
    for topic in &t {
        create_topic(kafka.bootstrap(), topic, 1).expect("topic");
    }
    let cluster = Cluster::start("headers", 1, 1);
    let text = format!(
        r#"job "Headers"
param servers: string = "localhost:9092"
set execution.checkpointing.interval = 1s
schema E {{ id: long, region: string }}
let events = source datagen {{ schema: E, count: {RECORDS}, id: sequence(0, 1), region: cycle("eu", "us") }}
    | map {{ id, trace: if id % 3 == 0 then null else concat("t", cast(id as string)), region }}
from events | sink kafka {{ servers: $servers, topic: "{plain}", key: region, headers: [trace, region] }}
from events | sink kafka {{ servers: $servers, topic: "{exactly}", headers: [["trace-id", trace], region], delivery: exactly_once }}
from events
    | key_by region
    | aggregate {{ region, n: count(), last_trace: last(trace) }}
    | sink kafka {{ servers: $servers, topic: "{upsert}", headers: [region] }}
"#,
        plain = t[0],
        exactly = t[1],
        upsert = t[2]
    );
    let path = cluster.scratch.0.join("headers.flow");
    std::fs::write(&path, text).expect("writing the job");
    let id = cluster.submit(&path, &["-p", "1", "--servers", kafka.bootstrap()]);
    cluster.wait_job_state(&id, "FINISHED", Duration::from_secs(90));

    for (topic, keyed, trace) in [(&t[0], true, "trace"), (&t[1], false, "trace-id")] {
        let got = read_all(kafka.bootstrap(), topic, RECORDS as usize, Duration::from_secs(60));
        let by_id: BTreeMap<i64, &Msg> = got.iter().map(|m| (m.2["id"].as_i64().expect("id"), m)).collect();
        assert_eq!((got.len(), by_id.len()), (RECORDS as usize, RECORDS as usize), "{topic}: {got:#?}");
        for (i, (key, headers, value)) in by_id {
            assert_eq!(headers, &headers_of(i, trace), "{topic}: record {i}: {value}");
            assert_eq!(key.as_deref(), keyed.then(|| region_of(i)), "{topic}: record {i}");
            assert_eq!(value["trace"].as_str().map(str::to_string), trace_of(i), "the value keeps every field");
        }
    }

    // The upsert stream: one message per change, each with its region as a header.
    let got = read_all(kafka.bootstrap(), &t[2], RECORDS as usize, Duration::from_secs(60));
    assert_eq!(got.len(), RECORDS as usize, "{got:#?}");
    for (key, headers, value) in &got {
        let region = value["region"].as_str().expect("region");
        assert_eq!(headers, &vec![("region".to_string(), region.to_string())], "{value}");
        assert_eq!(key.as_deref(), Some(format!(r#"{{"region":"{region}"}}"#).as_str()));
    }
}
