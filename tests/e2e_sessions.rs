//! End to end on the real Kafka: a session-window job (per page, a 1 min
//! gap, an exactly-once Kafka sink read with `read_committed`) through a
//! killed TaskManager, and through a stop with a savepoint resumed at
//! another parallelism. Every session's exact expected output — computed
//! here from the input topic with a plain model — must be written exactly
//! once.
//!
//! Three bursts of click events, 10 minutes of event time apart, make one
//! session per page and burst. The fault comes after the first burst's
//! sessions are out and while the second's are open (in the job's state);
//! the third burst then closes the second's sessions.

mod support;

use flowc_playground::kafka::read_topic;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;
use support::cluster::Cluster;
use support::kafka::{create_topic, unique_topic, Kafka};
use support::playground::{load_events, START_MS};

const GAP_MS: i64 = 60_000;
const BURST: u64 = 6000;
const APART_MS: i64 = 600_000;
const PATTERN: &str = "yyyy-MM-dd'T'HH:mm:ss.SSSX";

/// (page, start, end, clicks)
type Session = (String, i64, i64, i64);

fn job(dir: &std::path::Path, bootstrap: &str, input: &str, output: &str) -> std::path::PathBuf {
    let text = format!(
        r#"job "Sessions per page"
set execution.checkpointing.interval = 1s
set pipeline.max-parallelism = 128
schema ClickEvent {{ timestamp: timestamp("{PATTERN}"), page: string }}
source kafka {{ servers: "{bootstrap}", topic: "{input}", group: "sessions", offsets: earliest, schema: ClickEvent }}
        uid "source"
    | watermark timestamp {{ out_of_orderness: 200ms, idleness: 5s }} uid "watermarks"
    | key_by page
    | window session {{ gap: 1m }}
    | aggregate {{ page, start: window_start(), end: window_end(), clicks: count() }} uid "sessions"
    | sink kafka {{ servers: "{bootstrap}", topic: "{output}", delivery: exactly_once }} uid "sink"
"#
    );
    let path = dir.join("sessions.flow");
    std::fs::write(&path, text).expect("writing the job");
    path
}

fn topics(kafka: &Kafka, name: &str) -> (String, String) {
    let (input, output) = (unique_topic(&format!("{name}-input")), unique_topic(&format!("{name}-output")));
    create_topic(kafka.bootstrap(), &input, 2).expect("creating the input topic");
    create_topic(kafka.bootstrap(), &output, 2).expect("creating the output topic");
    (input, output)
}

fn burst(kafka: &Kafka, input: &str, n: i64) {
    load_events(kafka.bootstrap(), input, START_MS + n * APART_MS, BURST);
}

/// The sessions the model makes of everything in `input`, and which of
/// them the watermark after it all closes (all but the last burst's).
fn model(bootstrap: &str, input: &str) -> Vec<Session> {
    let fmt = flowc_compiler::timefmt::TimeFormat::new(PATTERN).expect("pattern");
    let mut by_page: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let n = std::cell::Cell::new(0u64);
    read_topic(
        bootstrap,
        input,
        Duration::from_secs(30),
        |r| {
            let v: Value = serde_json::from_slice(r.payload).expect("a click event");
            let ts = fmt.parse(v["timestamp"].as_str().expect("timestamp")).expect("a time");
            by_page.entry(v["page"].as_str().expect("page").to_string()).or_default().push(ts);
            n.set(n.get() + 1);
        },
        || n.get() >= 3 * BURST,
    )
    .expect("reading the input");
    let max = by_page.values().flatten().copied().max().expect("events");
    let mut out = Vec::new();
    for (page, mut ts) in by_page {
        ts.sort_unstable();
        let mut cur: Option<Session> = None;
        for t in ts {
            cur = match cur {
                Some((p, s, e, c)) if t <= e => Some((p, s, e.max(t + GAP_MS), c + 1)),
                other => {
                    out.extend(other);
                    Some((page.clone(), t, t + GAP_MS, 1))
                }
            };
        }
        out.extend(cur);
    }
    // The last burst's sessions are still open.
    out.retain(|s| s.2 < max);
    out.sort();
    out
}

/// What the job wrote, committed, once `want` sessions are there.
fn written(bootstrap: &str, output: &str, want: usize, timeout: Duration) -> Vec<Session> {
    let fmt = flowc_compiler::timefmt::TimeFormat::new(flowc_compiler::ir::DEFAULT_TIMESTAMP_PATTERN).expect("pattern");
    let rows = std::cell::RefCell::new(Vec::new());
    read_topic(
        bootstrap,
        output,
        timeout,
        |r| {
            let v: Value = serde_json::from_slice(r.payload).expect("an output record");
            let time = |k: &str| fmt.parse(v[k].as_str().expect("a time")).expect("a time");
            let page = v["page"].as_str().expect("page").to_string();
            rows.borrow_mut().push((page, time("start"), time("end"), v["clicks"].as_i64().expect("clicks")));
        },
        || rows.borrow().len() >= want,
    )
    .expect("reading the output");
    let mut rows = rows.into_inner();
    rows.sort();
    rows
}

#[test]
fn sessions_survive_a_killed_taskmanager_exactly_once() {
    let kafka = Kafka::shared();
    let (input, output) = topics(kafka, "sessions-kill");
    let mut cluster = Cluster::start("sessions-kill", 1, 2);
    let job = job(&cluster.scratch.0, kafka.bootstrap(), &input, &output);
    burst(kafka, &input, 0);
    burst(kafka, &input, 1);
    let id = cluster.submit(&job, &["-p", "2"]);
    cluster.wait_all_tasks(&id, "RUNNING", Duration::from_secs(30));
    // The first burst's 6 sessions are out; the second's are open, in a checkpoint.
    assert_eq!(written(kafka.bootstrap(), &output, 6, Duration::from_secs(60)).len(), 6);
    cluster.wait_for_more_checkpoints(&id, 2);
    cluster.kill_taskmanager(0);
    cluster.wait_all_tasks(&id, "SCHEDULED", Duration::from_secs(15));
    cluster.add_taskmanager(2);
    cluster.wait_all_tasks(&id, "RUNNING", Duration::from_secs(30));
    burst(kafka, &input, 2);
    let want = model(kafka.bootstrap(), &input);
    assert_eq!(want.len(), 12, "{want:?}");
    assert!(want.iter().all(|s| s.3 == 1000), "{want:?}");
    let got = written(kafka.bootstrap(), &output, 12, Duration::from_secs(60));
    // Anything written twice would be read too: wait for a checkpoint more and read again.
    cluster.wait_for_more_checkpoints(&id, 2);
    let again = written(kafka.bootstrap(), &output, usize::MAX, Duration::from_secs(5));
    assert_eq!(got, want);
    assert_eq!(again, want);
    assert_eq!(cluster.metric(&id, "numRestarts"), Some(1));
}

#[test]
fn sessions_stopped_with_a_savepoint_resume_at_parallelism_3_exactly_once() {
    let kafka = Kafka::shared();
    let (input, output) = topics(kafka, "sessions-rescale");
    let cluster = Cluster::start("sessions-rescale", 2, 2);
    let job = job(&cluster.scratch.0, kafka.bootstrap(), &input, &output);
    burst(kafka, &input, 0);
    burst(kafka, &input, 1);
    let id = cluster.submit(&job, &["-p", "2"]);
    cluster.wait_all_tasks(&id, "RUNNING", Duration::from_secs(30));
    assert_eq!(written(kafka.bootstrap(), &output, 6, Duration::from_secs(60)).len(), 6);
    let savepoint = cluster.stop_with_savepoint(&id, Duration::from_secs(30));
    burst(kafka, &input, 2);
    let id2 = cluster.submit(&job, &["-p", "3", "-s", savepoint.as_str()]);
    cluster.wait_all_tasks(&id2, "RUNNING", Duration::from_secs(30));
    let want = model(kafka.bootstrap(), &input);
    assert_eq!(want.len(), 12, "{want:?}");
    let got = written(kafka.bootstrap(), &output, 12, Duration::from_secs(60));
    cluster.wait_for_more_checkpoints(&id2, 2);
    let again = written(kafka.bootstrap(), &output, usize::MAX, Duration::from_secs(5));
    assert_eq!(got, want);
    assert_eq!(again, want);
    let j = cluster.job(&id2);
    assert!(j["vertices"].as_array().expect("vertices").iter().all(|v| v["parallelism"] == 3), "{j}");
}
