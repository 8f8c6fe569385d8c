//! End to end: the web UI in a real browser. A live cluster (a JobManager
//! and a TaskManager) runs a job; `tests/browser/web_ui.py` drives Debian's
//! Chromium through Playwright against it, page by page, as a person would:
//!
//! - the overview and the job graph (vertices, FORWARD/HASH edges);
//! - a vertex opened from the graph with the keyboard: subtasks, back
//!   pressure, a metric chart that gains points;
//! - the job's configuration, a checkpoint's per-subtask details, the
//!   timeline; the JobManager's pages;
//! - a TaskManager's and the JobManager's logs: the cluster writes its log
//!   files in `env.log.dir`, and the pages show a line read from those
//!   files, list the TaskManager's file, open it, and show its standard
//!   output;
//! - Submit New Job: upload, run, then stop with a savepoint from the page;
//! - no request for a job once its page is left, none for an ended job;
//! - no console error, no 5xx answer; the banner when the JobManager stops
//!   answering;
//! - "why hasn't my window fired?" naming a stalled Kafka partition.
//!
//! Every check must pass: none is skipped.
//!
//! The script installs Playwright (PyPI) and Chromium (Debian) when they
//! are missing; without python3 the test is skipped, except in CI.
//! Screenshots of failed checks stay in the cluster's scratch directory.

mod support;

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use support::cluster::{Cluster, Scratch};
use support::kafka::{create_topic, unique_topic, Kafka};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Whether python3 is there to run the script (it installs the rest).
fn python() -> bool {
    match Command::new("python3").arg("--version").output() {
        Ok(o) if o.status.success() => true,
        other => {
            assert!(std::env::var_os("CI").is_none(), "python3 is needed in CI: {other:?}");
            eprintln!("skipped: python3 is not installed");
            false
        }
    }
}

/// Runs the browser checks named in `params`; returns the script's output.
fn run_browser(cluster: &Cluster, mut params: Value) -> String {
    params["base"] = json!(format!("http://{}/", cluster.rest_addr));
    params["scratch"] = json!(cluster.scratch.0.display().to_string());
    let file = cluster.scratch.0.join("browser-params.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&params).expect("params")).expect("writing the params");
    let started = Instant::now();
    let out = Command::new("python3")
        .arg(root().join("tests/browser/web_ui.py"))
        .arg(&file)
        .env("PYTHONUNBUFFERED", "1")
        .output()
        .expect("running tests/browser/web_ui.py");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    eprintln!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    eprintln!("(the browser checks took {:.1} s)", started.elapsed().as_secs_f64());
    assert!(out.status.success(), "the browser checks failed (above; screenshots in {})", cluster.scratch.0.display());
    stdout
}

/// The job's vertices and edges as the page must draw them.
fn graph(job: &Value) -> (Vec<Value>, Vec<Value>) {
    let vertices: Vec<Value> = job["vertices"]
        .as_array()
        .expect("vertices")
        .iter()
        .map(|v| json!({"id": v["id"], "name": v["name"], "parallelism": v["parallelism"]}))
        .collect();
    let name = |id: &Value| vertices.iter().find(|v| v["id"] == *id).map(|v| v["name"].clone()).unwrap_or(Value::Null);
    let mut edges = Vec::new();
    for n in job["plan"]["nodes"].as_array().expect("plan nodes") {
        for i in n["inputs"].as_array().into_iter().flatten() {
            let ship = i["ship_strategy"].as_str().unwrap_or("").to_uppercase();
            edges.push(json!([name(&i["id"]), name(&n["id"]), ship]));
        }
    }
    (vertices, edges)
}

/// The name and text of the log file in `dir` whose name starts with
/// `prefix` (`flowc-<role>-`), as `env.log.dir` has the process write it.
fn log_file(dir: &Path, prefix: &str) -> (String, String) {
    let name = std::fs::read_dir(dir)
        .expect("the log directory")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .find(|n| n.starts_with(prefix) && n.ends_with(".log"))
        .unwrap_or_else(|| panic!("no {prefix}*.log in {}", dir.display()));
    let text = std::fs::read_to_string(dir.join(&name)).expect("the log file");
    (name, text)
}

/// A sentence of a process's own log: an INFO message without its
/// timestamp, level, target and fields.
fn a_log_message(log: &str) -> String {
    log.lines()
        .filter(|l| l.contains(" INFO "))
        .filter_map(|l| l.split_once(": ").map(|(_, m)| m))
        .filter_map(|m| m.find(". ").map(|i| &m[..=i]).or(m.ends_with('.').then_some(m)))
        .find(|m| m.len() > 20)
        .map(str::to_string)
        .unwrap_or_else(|| panic!("no INFO sentence in the log:\n{log}"))
}

#[test]
fn the_web_ui_in_a_real_browser() {
    if !python() {
        return;
    }
    let logs = Scratch::new("webui-logs");
    let cluster = Cluster::start_with("webui", 1, 4, &format!("env.log.dir: {}", logs.0.display()));
    let steady = root().join("tests/jobs/steady_clicks.flow");
    let jid = cluster.submit(&steady, &["-p", "2", "--rate", "1000"]);
    cluster.wait_all_tasks(&jid, "RUNNING", Duration::from_secs(30));
    let job = cluster.job(&jid);
    let (vertices, edges) = graph(&job);
    assert_eq!(vertices.len(), 4, "{job}");
    let tm = cluster.rest().get("/taskmanagers").expect("taskmanagers")["taskmanagers"][0]["id"]
        .as_str()
        .expect("a TaskManager id")
        .to_string();
    let (tm_log_file, tm_log) = log_file(&logs.0, "flowc-taskmanager-");
    let params = json!({
        "checks": ["overview_and_graph", "vertex_drilldown", "back_pressure", "configuration_and_timeline",
                   "checkpoint_details", "jobmanager_configuration", "jobmanager", "taskmanager_logs",
                   "submit_and_stop", "quiet_after_leaving"],
        "job": {
            "jid": jid, "name": "Steady Clicks", "vertices": vertices, "edges": edges, "tm": tm,
            "drill": "ClickEvent Counter", "drill_parallelism": 2, "metric": "0.numRecordsInPerSecond",
        },
        "tm_log_line": a_log_message(&tm_log),
        "tm_log_file": tm_log_file,
        "jm_log_line": a_log_message(&log_file(&logs.0, "flowc-jobmanager-").1),
        "submit": { "file": steady.display().to_string(), "args": "--rate 200", "parallelism": 1 },
    });
    let out = run_browser(&cluster, params);
    // What the page showed is what happened: the submitted job ran and
    // was stopped with a savepoint that exists.
    let line = out.lines().find_map(|l| l.strip_prefix("savepoint ")).expect("the savepoint line");
    let (submitted, path) = line.split_once(' ').expect("job id and path");
    let done = cluster.job(submitted);
    assert_eq!(done["state"], "FINISHED", "{done}");
    assert_eq!(done["vertices"][0]["parallelism"], 1, "the parallelism given on the page: {done}");
    let dir = PathBuf::from(path.trim_start_matches("file:"));
    assert!(dir.exists(), "the savepoint the page showed is not there: {}", dir.display());
    // The steady job was left running, untouched.
    assert_eq!(cluster.job(&jid)["state"], "RUNNING");
}

#[test]
fn the_banner_shows_when_the_jobmanager_stops_answering() {
    if !python() {
        return;
    }
    let cluster = Cluster::jobmanager_only("webui-banner");
    run_browser(&cluster, json!({ "checks": ["banner"], "jobmanager_pid": cluster.jobmanager_pid() }));
}

/// Writes click events to partition 0 of `topic` only, one a millisecond
/// of event time, until `stop`.
fn feed_partition_zero(bootstrap: String, topic: String, stop: std::sync::Arc<std::sync::atomic::AtomicBool>) {
    use rdkafka::config::ClientConfig;
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    use std::sync::atomic::Ordering;
    let producer: BaseProducer =
        ClientConfig::new().set("bootstrap.servers", &bootstrap).create().expect("a Kafka producer");
    let pages = ["/help", "/index", "/shop", "/jobs", "/about", "/news"];
    let mut t = support::playground::START_MS;
    while !stop.load(Ordering::Relaxed) {
        for _ in 0..50 {
            let ts = chrono_iso(t);
            let payload = format!(r#"{{"timestamp":"{ts}","page":"{}"}}"#, pages[(t % 6) as usize]);
            let _ = producer.send(BaseRecord::<(), str>::to(&topic).payload(&payload).partition(0));
            t += 20;
        }
        producer.poll(Duration::from_millis(0));
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = producer.flush(Duration::from_secs(5));
}

/// `ms` since the epoch as `yyyy-MM-ddTHH:mm:ss.SSSZ`.
fn chrono_iso(ms: i64) -> String {
    let (days, rem) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000
    )
}

#[test]
fn the_window_panel_names_a_stalled_partition() {
    if !python() {
        return;
    }
    let kafka = Kafka::shared();
    let (input, output) = (unique_topic("webui-stalled-input"), unique_topic("webui-stalled-output"));
    create_topic(kafka.bootstrap(), &input, 2).expect("creating the input topic");
    create_topic(kafka.bootstrap(), &output, 2).expect("creating the output topic");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let feeder = {
        let (b, t, s) = (kafka.bootstrap().to_string(), input.clone(), stop.clone());
        std::thread::spawn(move || feed_partition_zero(b, t, s))
    };
    let cluster = Cluster::start("webui-lineage", 1, 4);
    let job_file = support::playground::click_count_job(&cluster.scratch.0, &input, &output);
    // Without idleness the stalled partition holds every window back (with
    // it, the partition goes idle after 5 s and no longer counts).
    let text = std::fs::read_to_string(&job_file).expect("the job").replace(", idleness: 5s", "");
    std::fs::write(&job_file, text).expect("the job without idleness");
    let jid = cluster.submit(&job_file, &["-p", "2", "--bootstrap.servers", kafka.bootstrap(), "--event-time"]);
    cluster.wait_all_tasks(&jid, "RUNNING", Duration::from_secs(60));
    let job = cluster.job(&jid);
    let window = job["vertices"]
        .as_array()
        .and_then(|vs| vs.iter().find(|v| v["name"] == "ClickEvent Counter"))
        .expect("the window vertex")["id"]
        .clone();
    let params = json!({
        "checks": ["watermark_lineage"],
        "lineage": { "jid": jid, "vid": window, "topic": input, "partition": 1 },
    });
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_browser(&cluster, params)));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = feeder.join();
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

#[test]
fn a_log_message_is_the_sentence_without_its_fields() {
    let log = "2026-11-30T09:35:14.874024Z  INFO flowc::cmd::cluster: Open-file limit. limit=20000\n\
               2026-11-30T09:35:14.907435Z  INFO flowc_runtime::taskmanager: Registered at the JobManager. tm_id=a:1-b";
    assert_eq!(a_log_message(log), "Registered at the JobManager.");
}

#[test]
fn iso_timestamps_are_utc_with_milliseconds() {
    assert_eq!(chrono_iso(support::playground::START_MS), "2026-11-24T22:15:00.000Z");
    assert_eq!(chrono_iso(0), "1970-01-01T00:00:00.000Z");
    assert_eq!(chrono_iso(951_782_400_123), "2000-02-29T00:00:00.123Z");
}
