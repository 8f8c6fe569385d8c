//! End to end: the Prometheus reporter, configured with Flink's keys, is
//! scraped by a real Prometheus server (Debian's `prometheus`, which
//! `.ci/run` installs), and Prometheus's HTTP API returns the series under
//! Flink's metric and label names: the JobManager's, a TaskManager's
//! process metrics, a running task's counters (task scope) and its
//! operators' (operator scope, with `operator_id` and `operator_name`).

mod support;

use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use support::cluster::Cluster;

/// Prometheus, stopped when dropped.
struct Prometheus(Child);

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A plain HTTP GET on loopback; the body, if the status is 200.
fn http_get(addr: &str, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200")
        .then(|| body.to_string())
        .or_else(|| head.starts_with("HTTP/1.0 200").then(|| body.to_string()))
}

/// The address the process's reporter bound, from its log.
fn reporter_addr(log: &str) -> Option<String> {
    let line = log.lines().find(|l| l.contains("Prometheus reporter serving /metrics."))?;
    let addr = line.split("addr=").nth(1)?.split_whitespace().next()?;
    Some(addr.to_string())
}

/// Prometheus's instant query: the result vector.
fn query(prom: &str, q: &str) -> Vec<Value> {
    let enc: String = q
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"_-.".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    http_get(prom, &format!("/api/v1/query?query={enc}"))
        .and_then(|b| serde_json::from_str::<Value>(&b).ok())
        .and_then(|v| v["data"]["result"].as_array().cloned())
        .unwrap_or_default()
}

#[test]
fn a_real_prometheus_scrapes_flinks_names() {
    let prometheus = which("prometheus").unwrap_or_else(|| {
        panic!("the `prometheus` server is not installed: `apt-get install prometheus` (.ci/run installs it)")
    });
    // A range, as Flink allows: the JobManager takes the first free port, the TaskManager the next.
    let base = support::free_port();
    let cluster = Cluster::start_with(
        "prometheus",
        1,
        2,
        &format!(
            "metrics.reporter.prom.factory.class: org.apache.flink.metrics.prometheus.PrometheusReporterFactory\n\
             metrics.reporter.prom.port: {base}-{}\n\
             metrics.reporter.prom.host: 127.0.0.1\n",
            base.saturating_add(20)
        ),
    );
    let jm = reporter_addr(&cluster.jobmanager_log()).expect("the JobManager's reporter address in its log");
    let tm = cluster
        .wait_for("the TaskManager's reporter", Duration::from_secs(10), |c| reporter_addr(&c.taskmanager_log(0)));
    assert_ne!(jm, tm);
    // Scraped directly first: Flink's names.
    let text = http_get(&jm, "/metrics").expect("the JobManager's /metrics");
    assert!(text.contains("flink_jobmanager_numRegisteredTaskManagers{host="), "{text}");
    let job = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/jobs/steady_clicks.flow");
    let id = cluster.submit(&job, &[]);
    cluster.wait_all_tasks(&id, "RUNNING", Duration::from_secs(30));

    let dir = cluster.scratch.0.join("prometheus");
    std::fs::create_dir_all(&dir).expect("the Prometheus directory");
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: flowc\n    static_configs:\n      - targets: ['{jm}', '{tm}']\n"
        ),
    )
    .expect("the scrape config");
    let listen = format!("127.0.0.1:{}", support::free_port());
    let log = std::fs::File::create(dir.join("prometheus.log")).expect("the Prometheus log");
    let _server = Prometheus(
        Command::new(prometheus)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address={listen}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting prometheus"),
    );
    let records = cluster.wait_for("Prometheus to have the task's records", Duration::from_secs(60), |_| {
        let r = query(&listen, &format!("flink_taskmanager_job_task_numRecordsOut{{job_id=\"{id}\",subtask_index=\"0\",task_name=\"ClickEvent Source\"}}"));
        let v: f64 = r.first()?["value"][1].as_str()?.parse().ok()?;
        (v > 0.0).then_some(r)
    });
    let labels = &records[0]["metric"];
    let task_labels = [
        "host",
        "tm_id",
        "job_id",
        "job_name",
        "task_id",
        "task_attempt_id",
        "task_name",
        "subtask_index",
        "task_attempt_num",
    ];
    for l in task_labels {
        assert!(labels[l].is_string(), "label {l} missing: {labels}");
    }
    assert_eq!(labels["job_name"], "Steady Clicks");
    // Flink's operator scope, as its dashboards query it: the task's labels
    // and the operator's id and name.
    let out = query(
        &listen,
        &format!(
            "flink_taskmanager_job_task_operator_numRecordsOut{{job_id=\"{id}\",operator_name=\"ClickEvent Source\"}}"
        ),
    );
    let sources = cluster.job(&id)["vertices"][0]["parallelism"].as_u64().unwrap_or(0);
    assert_eq!(out.len() as u64, sources, "one series per source subtask: {out:?}");
    let operator = &out[0]["metric"];
    for l in task_labels.iter().chain(&["operator_id", "operator_name"]) {
        assert!(operator[*l].is_string(), "label {l} missing: {operator}");
    }
    assert_eq!(operator["operator_id"].as_str().map(str::len), Some(32), "{operator}");
    let sum: f64 = out.iter().filter_map(|r| r["value"][1].as_str()?.parse::<f64>().ok()).sum();
    assert!(sum > 0.0, "{out:?}");
    let watermarks = query(
        &listen,
        &format!("flink_taskmanager_job_task_operator_currentOutputWatermark{{job_id=\"{id}\",operator_name=\"Timestamps/Watermarks\"}}"),
    );
    let wm: f64 = watermarks.first().and_then(|r| r["value"][1].as_str()?.parse().ok()).unwrap_or(f64::MIN);
    assert!(wm > i64::MIN as f64, "the watermark operator has sent a watermark: {watermarks:?}");
    // The two targets are scraped on their own schedules: the JobManager's
    // first scrape may come after the TaskManager's records.
    let tms = cluster.wait_for("Prometheus to have the JobManager's metrics", Duration::from_secs(60), |_| {
        let r = query(&listen, "flink_jobmanager_numRegisteredTaskManagers");
        (!r.is_empty()).then_some(r)
    });
    assert_eq!(tms.first().and_then(|r| r["value"][1].as_str()), Some("1"), "{tms:?}");
    let heap = query(&listen, "flink_taskmanager_Status_JVM_Memory_Heap_Used");
    let rss: f64 = heap.first().and_then(|r| r["value"][1].as_str()?.parse().ok()).unwrap_or(0.0);
    assert!(rss > 1e6, "{heap:?}");
    assert!(heap[0]["metric"]["tm_id"].is_string(), "{heap:?}");
    let restarts = query(&listen, &format!("flink_jobmanager_job_numRestarts{{job_id=\"{id}\"}}"));
    assert_eq!(restarts.len(), 1, "{restarts:?}");
    let busy = query(&listen, "flink_taskmanager_job_task_busyTimeMsPerSecond");
    assert!(busy.len() >= 4, "one series per subtask: {busy:?}");
    cluster.flowc(&["cancel", &id]);
}

fn which(name: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| Path::new(d).join(name)).find(|p| p.is_file())
}
