//! End to end: the exactly-once Kafka sink. A `read_committed` reader sees
//! every window exactly once — no repeats — through a killed TaskManager
//! and through the hard case: a crash after a checkpoint completed but
//! before its transaction committed.

mod support;

use std::time::{Duration, Instant};
use support::cluster::Cluster;
use support::kafka::Kafka;
use support::playground::{click_count_job_with, click_topics, expect_windows, load_events, START_MS};

const FIRST: u64 = 36_000;
const MORE: u64 = 12_000;

fn topics(kafka: &Kafka, name: &str) -> (String, String) {
    click_topics(kafka, name, FIRST)
}

const ARGS: [&str; 4] = ["-p", "2", "--checkpointing", "--event-time"];

#[test]
fn exactly_once_through_a_killed_taskmanager() {
    let kafka = Kafka::shared();
    let (input, output) = topics(kafka, "eo-kill");
    let mut cluster = Cluster::start("eo-kill", 1, 2);
    let job = click_count_job_with(&cluster.scratch.0, &input, &output, "exactly_once");
    let id = cluster.submit(&job, &[&ARGS[..], &["--bootstrap.servers", kafka.bootstrap()]].concat());
    cluster.wait_all_tasks(&id, "RUNNING", Duration::from_secs(30));
    expect_windows(kafka.bootstrap(), &output, 5, false, Duration::from_secs(120));
    let done = cluster.metric(&id, "numberOfCompletedCheckpoints").unwrap_or(0);
    cluster.wait_for("two more checkpoints", Duration::from_secs(20), |c| {
        (c.metric(&id, "numberOfCompletedCheckpoints").unwrap_or(0) >= done + 2).then_some(())
    });
    cluster.kill_taskmanager(0);
    cluster.wait_all_tasks(&id, "SCHEDULED", Duration::from_secs(15));
    cluster.add_taskmanager(2);
    cluster.wait_all_tasks(&id, "RUNNING", Duration::from_secs(30));
    load_events(kafka.bootstrap(), &input, START_MS + 90_000, MORE);
    let summary = expect_windows(kafka.bootstrap(), &output, 7, false, Duration::from_secs(120));
    assert_eq!(summary.complete_windows, 7);
}

#[test]
fn a_crash_between_checkpoint_completion_and_commit_loses_and_repeats_nothing() {
    let kafka = Kafka::shared();
    let (input, output) = topics(kafka, "eo-crash");
    let mut cluster = Cluster::jobmanager_only("eo-crash");
    // This TaskManager aborts right before its first commit of output: the
    // checkpoint holding that output has completed, its transaction never ran.
    let doomed = cluster.add_taskmanager_env(2, &[("FLOWC_TEST_CRASH_BEFORE_COMMIT", "1")]);
    cluster.wait_for_taskmanagers(1);
    let job = click_count_job_with(&cluster.scratch.0, &input, &output, "exactly_once");
    let id = cluster.submit(&job, &[&ARGS[..], &["--bootstrap.servers", kafka.bootstrap()]].concat());
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = cluster.taskmanager_exited(doomed) {
            break status;
        }
        assert!(Instant::now() < deadline, "the TaskManager did not crash\n{}", cluster.logs());
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(!status.success());
    let log = std::fs::read_to_string(cluster.scratch.0.join(format!("taskmanager-{doomed}.log"))).unwrap_or_default();
    assert!(log.contains("aborting the process before the commit"), "{log}");
    assert!(cluster.metric(&id, "numberOfCompletedCheckpoints").unwrap_or(0) >= 1);

    // A healthy TaskManager: the job restores the completed checkpoint and
    // commits its output, once.
    cluster.wait_all_tasks(&id, "SCHEDULED", Duration::from_secs(15));
    let healthy = cluster.add_taskmanager(2);
    cluster.wait_all_tasks(&id, "RUNNING", Duration::from_secs(30));
    let log = std::fs::read_to_string(cluster.scratch.0.join(format!("taskmanager-{healthy}.log"))).unwrap_or_default();
    assert!(log.contains("Committing output of completed checkpoints that was never committed"), "{log}");
    load_events(kafka.bootstrap(), &input, START_MS + 90_000, MORE);
    let summary = expect_windows(kafka.bootstrap(), &output, 7, false, Duration::from_secs(120));
    assert_eq!(summary.complete_windows, 7);
}
