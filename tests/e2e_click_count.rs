//! End to end: the Click Event Count job on real flowc processes and a real
//! Kafka. Each test loads 36 000 click events (6 windows of 15 s, 1000 per
//! page each) into its own `input` topic, runs the job, reads its own
//! `output` topic and checks every window: 5 complete windows (the 6th never
//! closes, as no later event moves the watermark past it), each with exactly
//! 1000 for each of the 6 pages, none missing.

mod support;

use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::Duration;
use support::cluster::{flowc_bin, Cluster, Scratch};
use support::kafka::Kafka;
use support::playground::{click_count_job, click_topics, expect_windows};

const EVENTS: u64 = 36_000;
const WINDOWS: usize = 5;

/// Fresh `input` and `output` topics of 2 partitions, `input` loaded.
fn topics(kafka: &Kafka, name: &str) -> (String, String) {
    click_topics(kafka, name, EVENTS)
}

fn vertices(job: &Value) -> Vec<(String, u64)> {
    job["vertices"]
        .as_array()
        .expect("vertices")
        .iter()
        .map(|v| (v["name"].as_str().unwrap_or("").to_string(), v["parallelism"].as_u64().unwrap_or(0)))
        .collect()
}

#[test]
fn jobmanager_and_one_taskmanager_at_parallelism_2() {
    let kafka = Kafka::shared();
    let (input, output) = topics(kafka, "p2");
    let cluster = Cluster::start("p2", 1, 2);
    let job = click_count_job(&cluster.scratch.0, &input, &output);
    let id = cluster.submit(&job, &["-p", "2", "--bootstrap.servers", kafka.bootstrap(), "--event-time"]);
    cluster.wait_all_tasks(&id, "RUNNING", Duration::from_secs(30));
    let summary = expect_windows(kafka.bootstrap(), &output, WINDOWS, true, Duration::from_secs(90));
    assert_eq!(summary.complete_windows, WINDOWS);
    assert_eq!(
        vertices(&cluster.job(&id)),
        [
            ("ClickEvent Source".to_string(), 2),
            ("Timestamps/Watermarks".to_string(), 2),
            ("ClickEvent Counter".to_string(), 2),
            ("ClickEventStatistics Sink".to_string(), 2)
        ]
    );
    // The source read every event and the counter wrote one record per page
    // and window (metrics reach the JobManager with the next heartbeats).
    cluster.wait_for("metrics of all events", Duration::from_secs(10), |c| {
        let j = c.job(&id);
        let m = |v: usize, k: &str| j["vertices"][v]["metrics"][k].as_u64();
        let bytes_flow =
            m(0, "write-bytes") == m(1, "read-bytes") && m(1, "read-bytes").is_some_and(|b| b > EVENTS * 16);
        (m(0, "write-records") == Some(EVENTS) && m(2, "write-records") == Some(6 * WINDOWS as u64) && bytes_flow)
            .then_some(())
    });
}

#[test]
fn mini_cluster_at_parallelism_1() {
    let kafka = Kafka::shared();
    let (input, output) = topics(kafka, "mini");
    let scratch = Scratch::new("mini");
    let job = click_count_job(&scratch.0, &input, &output);
    let log = std::fs::File::create(scratch.0.join("mini.log")).expect("log file");
    let mut child = Command::new(flowc_bin())
        .current_dir(&scratch.0)
        .env("FLOWC_CONF_DIR", &scratch.0)
        .args(["run", "-p", "1"])
        .arg(&job)
        .args(["--bootstrap.servers", kafka.bootstrap(), "--event-time"])
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("starting flowc run");
    let result =
        std::panic::catch_unwind(|| expect_windows(kafka.bootstrap(), &output, WINDOWS, true, Duration::from_secs(90)));
    let _ = child.kill();
    let _ = child.wait();
    let out = std::fs::read_to_string(scratch.0.join("mini.log")).unwrap_or_default();
    match result {
        Ok(summary) => assert_eq!(summary.complete_windows, WINDOWS),
        Err(e) => {
            eprintln!("flowc run output:\n{out}");
            std::panic::resume_unwind(e)
        }
    }
    assert!(out.contains("Job has been submitted with JobID"), "{out}");
}

#[test]
fn a_job_waits_in_scheduled_until_a_taskmanager_joins() {
    let kafka = Kafka::shared();
    let (input, output) = topics(kafka, "sched");
    let mut cluster = Cluster::jobmanager_only("sched");
    let job = click_count_job(&cluster.scratch.0, &input, &output);
    let id = cluster.submit(&job, &["-p", "2", "--bootstrap.servers", kafka.bootstrap(), "--event-time"]);
    // Without slots, the job reports RUNNING with all its tasks SCHEDULED, as Flink does.
    cluster.wait_all_tasks(&id, "SCHEDULED", Duration::from_secs(15));
    std::thread::sleep(Duration::from_secs(2));
    let j = cluster.job(&id);
    assert_eq!(j["state"], "RUNNING");
    // Flink's `status-counts` counts vertices (4), not subtasks (8).
    assert_eq!(j["status-counts"]["SCHEDULED"], 4, "{j}");
    cluster.add_taskmanager(2);
    cluster.wait_all_tasks(&id, "RUNNING", Duration::from_secs(30));
    let summary = expect_windows(kafka.bootstrap(), &output, WINDOWS, true, Duration::from_secs(90));
    assert_eq!(summary.complete_windows, WINDOWS);
}

#[test]
fn two_taskmanagers_with_one_slot_each_exchange_over_tcp() {
    let kafka = Kafka::shared();
    let (input, output) = topics(kafka, "two");
    let cluster = Cluster::start("two", 2, 1);
    let job = click_count_job(&cluster.scratch.0, &input, &output);
    let id = cluster.submit(&job, &["-p", "2", "--bootstrap.servers", kafka.bootstrap(), "--event-time"]);
    cluster.wait_all_tasks(&id, "RUNNING", Duration::from_secs(30));
    // Each TaskManager holds one slot of the job: the HASH edge crosses processes.
    let tms = cluster.rest().get("/taskmanagers").expect("GET /taskmanagers");
    let tms = tms["taskmanagers"].as_array().expect("taskmanagers").clone();
    assert_eq!(tms.len(), 2);
    for tm in &tms {
        assert_eq!((tm["slotsNumber"].as_u64(), tm["freeSlots"].as_u64()), (Some(1), Some(0)), "{tm}");
    }
    let summary = expect_windows(kafka.bootstrap(), &output, WINDOWS, true, Duration::from_secs(90));
    assert_eq!(summary.complete_windows, WINDOWS);
}

#[test]
fn a_bounded_kafka_source_finishes_and_fires_every_window() {
    let kafka = Kafka::shared();
    let (input, output) = topics(kafka, "bounded");
    let scratch = Scratch::new("bounded");
    let job = click_count_job(&scratch.0, &input, &output);
    let text = std::fs::read_to_string(&job).expect("job");
    std::fs::write(&job, text.replace("offsets: committed", "offsets: earliest\n        bounded: latest"))
        .expect("write");
    let out = Command::new(flowc_bin())
        .current_dir(&scratch.0)
        .env("FLOWC_CONF_DIR", &scratch.0)
        .args(["run", "-p", "2"])
        .arg(&job)
        .args(["--bootstrap.servers", kafka.bootstrap(), "--event-time"])
        .output()
        .expect("flowc run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("has finished."), "{stdout}");
    // At the end of input the last window fires too: all 6.
    let summary = expect_windows(kafka.bootstrap(), &output, 6, true, Duration::from_secs(30));
    assert_eq!(summary.complete_windows, 6);
}
