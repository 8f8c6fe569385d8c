//! End to end: exactly 1000 per page and window through a killed
//! TaskManager, a stop with a savepoint, and a resume at another
//! parallelism — and, without checkpoints, the loss the seed's variant
//! promises.
//!
//! Each test loads 6 windows of click events, waits until the job has
//! counted the first 5 (the 6th stays open in the job's state), does its
//! fault, then loads 2 more windows: the 6th and 7th close, and every
//! window must count 1000 for each page, with none missing.

mod support;

use std::time::{Duration, Instant};
use support::cluster::Cluster;
use support::kafka::Kafka;
use support::playground::{
    click_count_job, click_topics, complete_windows, expect_windows, load_events, read_output, START_MS,
};

const FIRST: u64 = 36_000; // 6 windows
const MORE: u64 = 12_000; // 2 more
const WINDOW_EVENTS_MS: i64 = 15_000;

fn topics(kafka: &Kafka, name: &str) -> (String, String) {
    click_topics(kafka, name, FIRST)
}

fn load_more(kafka: &Kafka, input: &str) {
    load_events(kafka.bootstrap(), input, START_MS + 6 * WINDOW_EVENTS_MS, MORE);
}

/// Waits until 5 windows are out and two more checkpoints have completed,
/// so that the open 6th window is in a checkpoint.
fn wait_for_first_windows_and_a_checkpoint(cluster: &Cluster, kafka: &Kafka, id: &str, output: &str) {
    expect_windows(kafka.bootstrap(), output, 5, true, Duration::from_secs(60));
    let done = cluster.metric(id, "numberOfCompletedCheckpoints").unwrap_or(0);
    cluster.wait_for("two more checkpoints", Duration::from_secs(20), |c| {
        (c.metric(id, "numberOfCompletedCheckpoints").unwrap_or(0) >= done + 2).then_some(())
    });
}

/// A cluster of one TaskManager running the click job at p=2 with
/// checkpoints, past its first 5 windows and 2 more checkpoints.
fn checkpointed_job(kafka: &Kafka, name: &str) -> (Cluster, String, String, String) {
    let (input, output) = topics(kafka, name);
    let cluster = Cluster::start(name, 1, 2);
    let job = click_count_job(&cluster.scratch.0, &input, &output);
    let id =
        cluster.submit(&job, &["-p", "2", "--bootstrap.servers", kafka.bootstrap(), "--checkpointing", "--event-time"]);
    cluster.wait_all_tasks(&id, "RUNNING", Duration::from_secs(30));
    wait_for_first_windows_and_a_checkpoint(&cluster, kafka, &id, &output);
    (cluster, input, output, id)
}

#[test]
fn a_killed_taskmanager_is_replaced_and_every_window_still_counts_1000() {
    let kafka = Kafka::shared();
    let (mut cluster, input, output, id) = checkpointed_job(kafka, "recover");

    let killed = Instant::now();
    cluster.kill_taskmanager(0);
    // The loss is noticed; the job reports RUNNING with its tasks SCHEDULED, as Flink does.
    cluster.wait_all_tasks(&id, "SCHEDULED", Duration::from_secs(15));
    let noticed = killed.elapsed();
    let started = Instant::now();
    cluster.add_taskmanager(2);
    cluster.wait_all_tasks(&id, "RUNNING", Duration::from_secs(30));
    eprintln!(
        "recovery: loss noticed after {noticed:?}; all tasks RUNNING {:?} after the new TaskManager started",
        started.elapsed()
    );

    load_more(kafka, &input);
    let summary = expect_windows(kafka.bootstrap(), &output, 7, true, Duration::from_secs(60));
    assert_eq!(summary.complete_windows, 7);
    assert_eq!(cluster.metric(&id, "numRestarts"), Some(1));
    let ex = cluster.rest().get(&format!("/jobs/{id}/exceptions")).expect("exceptions");
    assert!(ex["root-exception"].as_str().unwrap_or("").contains("TaskManager"), "{ex}");
}

#[test]
fn without_checkpoints_a_killed_taskmanager_loses_the_open_window() {
    let kafka = Kafka::shared();
    let (input, output) = topics(kafka, "nockpt");
    // A restart strategy, but no checkpoints: the job restarts from the
    // offsets its source last committed to the group, with empty windows.
    let mut cluster = Cluster::start_with("nockpt", 1, 2, "restart-strategy.type: fixed-delay\n");
    let job = click_count_job(&cluster.scratch.0, &input, &output);
    let id = cluster.submit(&job, &["-p", "2", "--bootstrap.servers", kafka.bootstrap(), "--event-time"]);
    cluster.wait_all_tasks(&id, "RUNNING", Duration::from_secs(30));
    expect_windows(kafka.bootstrap(), &output, 5, true, Duration::from_secs(60));
    // Let the source commit its offsets (every 5 s without checkpoints).
    std::thread::sleep(Duration::from_secs(7));
    cluster.kill_taskmanager(0);
    cluster.wait_all_tasks(&id, "SCHEDULED", Duration::from_secs(15));
    cluster.add_taskmanager(2);
    cluster.wait_all_tasks(&id, "RUNNING", Duration::from_secs(30));
    load_more(kafka, &input);
    let records = read_output(kafka.bootstrap(), &output, 7, Duration::from_secs(20));
    // The 6th window's clicks before the crash were only in the lost task's
    // memory: that window is missing or short. The 7th is whole again.
    let sixth = START_MS + 5 * WINDOW_EVENTS_MS;
    let seventh = START_MS + 6 * WINDOW_EVENTS_MS;
    let count = |w: i64| records.iter().filter(|(s, _, _)| *s == w).map(|(_, _, c)| *c).max();
    assert!(count(sixth).is_none_or(|c| c < 1000), "the 6th window survived without a checkpoint: {records:?}");
    assert_eq!(count(seventh), Some(1000), "{records:?}");
    assert!(complete_windows(&records) < 7);
}

/// Stops the job with `flowc stop`, as the seed does; returns the savepoint path.
fn stop_with_savepoint(cluster: &Cluster, id: &str) -> String {
    let out = cluster.flowc(&["stop", id]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "flowc stop failed: {text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains(&format!("Suspending job \"{id}\" with a savepoint.")), "{text}");
    assert!(text.contains(&format!("Suspended job \"{id}\" with a savepoint.")), "{text}");
    let path = text
        .lines()
        .find_map(|l| l.strip_prefix("Savepoint completed. Path: "))
        .unwrap_or_else(|| panic!("no savepoint path in {text}"))
        .to_string();
    cluster.wait_job_state(id, "FINISHED", Duration::from_secs(20));
    let dir = path.strip_prefix("file:").unwrap_or(&path);
    let name = std::path::Path::new(dir).file_name().and_then(|n| n.to_str()).unwrap_or("");
    assert!(name.starts_with(&format!("savepoint-{}-", &id[..6])), "{path}");
    assert!(std::path::Path::new(dir).join("_metadata").is_file(), "{path}");
    path
}

/// The click job at p=2 past its first 5 windows, stopped with a savepoint
/// (checked as the seed shows it); then 2 more windows of events are
/// loaded. Returns the cluster, the output topic, the job file and the
/// savepoint path.
fn stopped_with_savepoint(kafka: &Kafka, name: &str) -> (Cluster, String, std::path::PathBuf, String) {
    let (input, output) = topics(kafka, name);
    let cluster = Cluster::start(name, 1, 2);
    let job = click_count_job(&cluster.scratch.0, &input, &output);
    let args = ["--bootstrap.servers", kafka.bootstrap(), "--checkpointing", "--event-time"];
    let id = cluster.submit(&job, &[&["-p", "2"], &args[..]].concat());
    cluster.wait_all_tasks(&id, "RUNNING", Duration::from_secs(30));
    expect_windows(kafka.bootstrap(), &output, 5, true, Duration::from_secs(60));
    let savepoint = stop_with_savepoint(&cluster, &id);
    load_more(kafka, &input);
    (cluster, output, job, savepoint)
}

#[test]
fn stop_with_a_savepoint_and_resume_unchanged() {
    let kafka = Kafka::shared();
    let (cluster, output, job, savepoint) = stopped_with_savepoint(kafka, "resume");
    let args = ["--bootstrap.servers", kafka.bootstrap(), "--checkpointing", "--event-time"];
    let id2 = cluster.submit(&job, &[&["-s", savepoint.as_str(), "-p", "2"], &args[..]].concat());
    cluster.wait_all_tasks(&id2, "RUNNING", Duration::from_secs(30));
    let summary = expect_windows(kafka.bootstrap(), &output, 7, true, Duration::from_secs(60));
    assert_eq!(summary.complete_windows, 7);
    let restored = cluster.rest().get(&format!("/jobs/{id2}/checkpoints")).expect("checkpoints");
    assert_eq!(restored["latest"]["restored"]["is_savepoint"], true, "{restored}");
}

#[test]
fn stop_with_a_savepoint_and_resume_at_parallelism_3() {
    let kafka = Kafka::shared();
    let (mut cluster, output, job, savepoint) = stopped_with_savepoint(kafka, "rescale");
    let args = ["--bootstrap.servers", kafka.bootstrap(), "--checkpointing", "--event-time"];
    let id2 = cluster.submit(&job, &[&["-p", "3", "-s", savepoint.as_str()], &args[..]].concat());
    // 3 slots needed, 2 offered: SCHEDULED until a second TaskManager joins.
    cluster.wait_all_tasks(&id2, "SCHEDULED", Duration::from_secs(15));
    std::thread::sleep(Duration::from_secs(2));
    // `status-counts` counts the 4 vertices, as Flink does.
    assert_eq!(cluster.job(&id2)["status-counts"]["SCHEDULED"], 4);
    cluster.add_taskmanager(2);
    cluster.wait_all_tasks(&id2, "RUNNING", Duration::from_secs(30));
    // The third source subtask has no partition (2 partitions, 3 subtasks):
    // it is idle and does not hold the windows back.
    let summary = expect_windows(kafka.bootstrap(), &output, 7, true, Duration::from_secs(60));
    assert_eq!(summary.complete_windows, 7);
    let j = cluster.job(&id2);
    assert!(j["vertices"].as_array().expect("vertices").iter().all(|v| v["parallelism"] == 3), "{j}");
}

#[test]
fn a_hung_taskmanager_is_noticed_by_heartbeat_timeout() {
    let kafka = Kafka::shared();
    let (mut cluster, input, output, id) = checkpointed_job(kafka, "hung");

    // SIGSTOP: the connection stays open, only the heartbeats stop.
    let pid = cluster.taskmanager_pid(0).to_string();
    let signal = |s: &str| {
        let ok = std::process::Command::new("kill").args([s, &pid]).status().is_ok_and(|st| st.success());
        assert!(ok, "kill {s} {pid}");
    };
    signal("-STOP");
    let stopped = Instant::now();
    cluster.wait_all_tasks(&id, "SCHEDULED", Duration::from_secs(20));
    let noticed = stopped.elapsed();
    assert!(noticed >= Duration::from_secs(4), "noticed after {noticed:?}, before the 5 s heartbeat timeout");
    cluster.add_taskmanager(2);
    cluster.wait_all_tasks(&id, "RUNNING", Duration::from_secs(30));
    // The hung TaskManager wakes up: it finds itself removed, cancels its
    // stale tasks and registers again, without disturbing the job.
    signal("-CONT");
    cluster.wait_for_taskmanagers(2);
    load_more(kafka, &input);
    let summary = expect_windows(kafka.bootstrap(), &output, 7, true, Duration::from_secs(60));
    assert_eq!(summary.complete_windows, 7);
    assert_eq!(cluster.job(&id)["state"], "RUNNING");
    assert_eq!(cluster.metric(&id, "numRestarts"), Some(1));
}
