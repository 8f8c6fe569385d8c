//! End to end: the cluster's logs. With `env.log.dir` set, the JobManager
//! and the TaskManager write `flowc-<role>-<host>.log` there, rolled over
//! at `flowc.log.file.max-size`, as well as to their standard output; REST
//! lists and serves the files of the JobManager and, over RPC, of a
//! TaskManager, refuses any name that is not one of the listed files, and
//! serves what standard output was written to. A task's lines carry its
//! job id, vertex and subtask; thread dumps name the task threads.

mod support;

use flowc_runtime::client::http;
use serde_json::Value;
use std::path::Path;
use std::time::Duration;
use support::cluster::{Cluster, Scratch};

fn get(cluster: &Cluster, path: &str) -> (u16, String) {
    let r = http::request("GET", &cluster.rest_addr, path, None, Duration::from_secs(20)).expect("GET");
    (r.status, r.text())
}

fn listing(cluster: &Cluster, path: &str) -> Vec<String> {
    let (status, text) = get(cluster, path);
    assert_eq!(status, 200, "{path}: {text}");
    let v: Value = serde_json::from_str(&text).expect("JSON");
    v["logs"].as_array().expect("logs").iter().filter_map(|f| f["name"].as_str().map(str::to_string)).collect()
}

#[test]
fn logs_are_written_rolled_over_and_served_without_path_traversal() {
    let scratch = Scratch::new("logs-dir");
    let dir = scratch.0.join("log");
    let config = format!("env.log.dir: {}\nflowc.log.file.max-size: 4k\nflowc.log.file.max-count: 100", dir.display());
    let cluster = Cluster::start_with("logs", 1, 2, &config);
    let job = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/jobs/steady_clicks.flow");
    let jid = cluster.submit(&job, &["-p", "2"]);
    cluster.wait_all_tasks(&jid, "RUNNING", Duration::from_secs(30));
    let tm = cluster.rest().get("/taskmanagers").expect("taskmanagers")["taskmanagers"][0]["id"]
        .as_str()
        .expect("tm id")
        .to_string();

    // Both processes write their file in env.log.dir, and roll it over.
    let jm_log = cluster.wait_for("the JobManager's log to roll over", Duration::from_secs(60), |c| {
        let files = listing(c, "/jobmanager/logs");
        let log = files.iter().find(|f| f.starts_with("flowc-jobmanager-") && f.ends_with(".log"))?.clone();
        files.contains(&format!("{log}.1")).then_some(log)
    });
    let files = listing(&cluster, &format!("/taskmanagers/{tm}/logs"));
    let tm_log =
        files.iter().find(|f| f.starts_with("flowc-taskmanager-") && f.ends_with(".log")).expect("TM log").clone();
    for f in &files {
        let size = std::fs::metadata(dir.join(f)).map(|m| m.len()).unwrap_or(0);
        assert!(size <= 4096, "{f} has {size} bytes, over flowc.log.file.max-size");
    }

    // The current files, and any listed file by name.
    let (status, text) = get(&cluster, "/jobmanager/log");
    assert!(status == 200 && text.contains(" INFO "), "{status}: {text}");
    let (status, old) = get(&cluster, &format!("/jobmanager/logs/{jm_log}.1"));
    assert!(status == 200 && !old.is_empty(), "{status}: {old}");
    let (status, text) = get(&cluster, &format!("/taskmanagers/{tm}/log"));
    assert_eq!(status, 200, "{text}");

    // A task's lines carry its job, vertex and subtask: in some file of the TaskManager's.
    let mut all = String::new();
    for f in listing(&cluster, &format!("/taskmanagers/{tm}/logs")).iter().filter(|f| f.starts_with(&tm_log)) {
        all.push_str(&get(&cluster, &format!("/taskmanagers/{tm}/logs/{f}")).1);
    }
    assert!(
        all.lines().any(|l| l.contains(&format!("job_id={jid}"))
            && l.contains("vertex=ClickEvent Source")
            && l.contains("subtask=")),
        "no task line with its job, vertex and subtask in:\n{}",
        all.lines().take(40).collect::<Vec<_>>().join("\n")
    );

    // Nothing but a listed file: no paths, no `..`, not the config beside them.
    std::fs::write(scratch.0.join("secret.txt"), "secret").expect("a file beside the log directory");
    for bad in ["..%2Fsecret.txt", "%2E%2E%2Fsecret.txt", "..", "%2Fetc%2Fpasswd", "secret.txt"] {
        for base in ["/jobmanager/logs".to_string(), format!("/taskmanagers/{tm}/logs")] {
            let (status, text) = get(&cluster, &format!("{base}/{bad}"));
            assert!(status == 404 || status == 400, "{base}/{bad}: {status} {text}");
            assert!(!text.contains("secret") || text.contains("errors"), "{base}/{bad} leaked: {text}");
        }
    }

    // Standard output (the test harness writes it to a file) is served too.
    let (status, text) = get(&cluster, "/jobmanager/stdout");
    assert!(
        status == 200 && text.contains("JobManager running"),
        "{status}: {}",
        text.chars().take(300).collect::<String>()
    );
    let (status, text) = get(&cluster, &format!("/taskmanagers/{tm}/stdout"));
    assert!(status == 200 && text.contains("Registered at the JobManager"), "{status}");

    // Thread dumps: the TaskManager's names its task threads.
    let (status, text) = get(&cluster, &format!("/taskmanagers/{tm}/thread-dump"));
    assert_eq!(status, 200, "{text}");
    let dump: Value = serde_json::from_str(&text).expect("JSON");
    let names: Vec<&str> =
        dump["threadInfos"].as_array().expect("threadInfos").iter().filter_map(|t| t["threadName"].as_str()).collect();
    assert!(names.iter().filter(|n| n.starts_with("task-")).count() >= 8, "{names:?}");
    let (status, text) = get(&cluster, "/jobmanager/thread-dump");
    assert!(status == 200 && text.contains("flowc-io"), "{status}: {text}");

    // An unknown TaskManager is a 404.
    assert_eq!(get(&cluster, "/taskmanagers/nobody/logs").0, 404);
}
