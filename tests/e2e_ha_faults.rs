//! End to end with real processes: JobManager high availability under the
//! failures that `e2e_ha_failover.rs` does not provoke.
//!
//! Each test runs the click job with its exactly-once Kafka sink on a
//! cluster of two JobManagers sharing one ZooKeeper (sessions of 4 s) and
//! one HA job store, and ends by reading the output with `read_committed`:
//! every window counts 1000 per page, exactly once, with no manual step.
//!
//! - the leader SIGKILLed three times in a row while events are written,
//!   each time once the job runs again on the new leader, the killed one
//!   restarted as the next standby;
//! - the leader killed during a checkpoint, and during a stop-with-savepoint
//!   (a checkpoint made slow by the TaskManager's
//!   `FLOWC_TEST_SLOW_STATE_WRITE`, `runtime/src/fault.rs`): the job resumes
//!   from its latest completed checkpoint, and the savepoint's trigger is
//!   unknown to the new leader (404 with a reason, as Flink's);
//! - the first two again with checkpoints, savepoints and the HA job store
//!   on the S3 server (`tests/support/s3.rs`) and nothing on a disk;
//! - the leader killed during a rescale resume: stopped with a savepoint,
//!   the job is resubmitted at p=3 from it and the leader is killed while
//!   its tasks restore (made slow by `FLOWC_TEST_SLOW_RESTORE_MS`): the new
//!   leader resumes it at p=3 from the savepoint;
//! - ZooKeeper stopped and started again over its data: leadership is
//!   suspended and regained, the job runs on;
//! - a TaskManager killed between the leader's SIGKILL and the standby's
//!   recovery (with `high-availability.flowc.fast-failover: false`, so
//!   that the standby waits out the leader's session): the job runs on the
//!   TaskManager left.

mod support;

use flowc_runtime::client::rest::{Rest, RestError};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::cluster::{all_running, job_on, signal, Cluster, JobManagerProcess, Scratch};
use support::kafka::Kafka;
use support::playground::{click_count_job_with, click_topics, expect_windows, load_events, START_MS};
use support::s3::{unique_bucket, S3};
use support::zookeeper::{unique_cluster_id, ZooKeeper};

/// Click events first loaded: 5 complete windows (the 6th is open).
const FIRST: u64 = 36_000;
/// Click events of each later load: 2 more windows (30 s of event time).
const MORE: u64 = 12_000;
const SESSION_MS: u64 = 4000;
const ARGS: [&str; 4] = ["-p", "2", "--checkpointing", "--event-time"];
/// A checkpoint that takes this long: subtask 0 of every vertex writes its
/// state 2.5 s late.
const SLOW_CHECKPOINT: (&str, &str) = ("FLOWC_TEST_SLOW_STATE_WRITE", "0:2500");

/// A task that restores state stays INITIALIZING this long first.
const SLOW_RESTORE: (&str, &str) = ("FLOWC_TEST_SLOW_RESTORE_MS", "3000");

/// Where a test's cluster keeps its checkpoints, savepoints and HA job store.
enum Storage {
    /// In local directories (the HA job store in this one).
    Disk(Scratch),
    /// In this bucket of the S3 server, nothing on a disk.
    S3 { bucket: String },
}

impl Storage {
    fn disk(name: &str) -> Storage {
        Storage::Disk(Scratch::new(&format!("{name}-storage")))
    }

    fn s3(name: &str) -> Storage {
        let bucket = unique_bucket(name);
        S3::shared().create_bucket(&bucket).expect("create bucket");
        Storage::S3 { bucket }
    }

    /// The cluster's `high-availability.*` (and, on S3, storage) lines.
    fn settings(&self, zk: &ZooKeeper, name: &str) -> String {
        match self {
            Storage::Disk(dir) => zk.ha_settings(&dir.0, name, SESSION_MS),
            Storage::S3 { bucket } => zk.ha_on_s3_settings(S3::shared(), bucket, &unique_cluster_id(name), SESSION_MS),
        }
    }

    /// Checks that checkpoint `c` (`GET …/checkpoints`' `latest.restored`)
    /// was read from this storage.
    fn check_restored_from_here(&self, c: &Value) {
        if let Storage::S3 { bucket } = self {
            let path = c["latest"]["restored"]["external_path"].as_str().unwrap_or_default();
            assert!(path.starts_with(&format!("s3://{bucket}/")), "restored from the bucket: {c}");
        }
    }
}

/// The first JobManager (it leads) with HA `settings`, a standby that
/// answers with the leader's REST, and TaskManagers of 2 slots with `env`.
fn ha_cluster(name: &str, settings: &str, taskmanagers: usize, env: &[(&str, &str)]) -> (Cluster, JobManagerProcess) {
    let mut cluster = Cluster::jobmanager_with(name, settings);
    let standby = cluster.start_jobmanager("jobmanager-standby");
    cluster.wait_for("the standby to answer with the leader's REST", Duration::from_secs(30), |_| {
        standby.rest.get("/overview").ok()
    });
    for _ in 0..taskmanagers {
        cluster.add_taskmanager_env(2, env);
    }
    cluster.wait_for_taskmanagers(taskmanagers);
    (cluster, standby)
}

/// Submits the click job with the exactly-once sink and waits for its 5
/// first windows and two more completed checkpoints. Returns its id.
fn click_job(cluster: &Cluster, kafka: &Kafka, input: &str, output: &str) -> String {
    let job_file = click_count_job_with(&cluster.scratch.0, input, output, "exactly_once");
    let id = cluster.submit(&job_file, &[&ARGS[..], &["--bootstrap.servers", kafka.bootstrap()]].concat());
    cluster.wait_all_tasks(&id, "RUNNING", Duration::from_secs(30));
    expect_windows(kafka.bootstrap(), output, 5, false, Duration::from_secs(120));
    let done = cluster.metric(&id, "numberOfCompletedCheckpoints").unwrap_or(0);
    cluster.wait_for("two more checkpoints", Duration::from_secs(30), |c| {
        (c.metric(&id, "numberOfCompletedCheckpoints").unwrap_or(0) >= done + 2).then_some(())
    });
    id
}

/// `GET /jobs/:id/checkpoints` on `rest`.
fn checkpoints(rest: &Rest, id: &str) -> Option<Value> {
    rest.get(&format!("/jobs/{id}/checkpoints")).ok()
}

/// The id of the job's latest completed checkpoint on `rest`.
fn latest_completed(rest: &Rest, id: &str) -> Option<i64> {
    checkpoints(rest, id)?["latest"]["completed"]["id"].as_i64()
}

/// Waits until the job and all its tasks are RUNNING on `rest` (the new
/// leader); returns how long after `since`.
fn wait_running_on(cluster: &Cluster, rest: &Rest, id: &str, since: Instant) -> Duration {
    cluster.wait_for("the job RUNNING on the new leader", Duration::from_secs(90), |_| {
        job_on(rest, id).filter(all_running)
    });
    since.elapsed()
}

/// Waits until the JobManager `name` joined the leader election.
fn wait_contending(cluster: &Cluster, name: &str) {
    cluster.wait_for(&format!("{name} to join the election"), Duration::from_secs(30), |c| {
        c.log(name).contains("Joined the JobManager leader election").then_some(())
    });
}

#[test]
fn the_leader_killed_three_times_in_a_row_under_load_and_every_window_counts_1000_exactly_once() {
    killed_three_times("ha-thrice", Storage::disk("ha-thrice"));
}

#[test]
fn on_s3_the_leader_killed_three_times_in_a_row_under_load_and_every_window_counts_1000_exactly_once() {
    killed_three_times("ha-thrice-s3", Storage::s3("ha-thrice-s3"));
}

fn killed_three_times(name: &str, storage: Storage) {
    let started = Instant::now();
    let kafka = Kafka::shared();
    let zk = ZooKeeper::shared();
    let (input, output) = click_topics(kafka, name, FIRST);
    let (mut cluster, standby) = ha_cluster(name, &storage.settings(zk, name), 1, &[]);
    let id = click_job(&cluster, kafka, &input, &output);
    wait_contending(&cluster, "jobmanager-standby");

    // `None`: the cluster's first JobManager leads.
    let mut leader: Option<JobManagerProcess> = None;
    let mut next = standby;
    let mut windows = 5;
    for round in 1..=3u64 {
        let before = match &leader {
            None => latest_completed(&cluster.rest(), &id),
            Some(l) => latest_completed(&l.rest, &id),
        };
        let before = before.expect("a completed checkpoint");
        // Under load: the next events are written while the leader dies.
        let (bootstrap, topic) = (kafka.bootstrap().to_string(), input.clone());
        let start = START_MS + 90_000 + (round as i64 - 1) * 30_000;
        let loader = std::thread::spawn(move || load_events(&bootstrap, &topic, start, MORE));
        std::thread::sleep(Duration::from_millis(300));
        let killed = Instant::now();
        match leader.as_mut() {
            None => {
                signal(cluster.jobmanager_pid(), "-KILL");
                let _ = cluster.wait_jobmanager_exit(Duration::from_secs(10));
            }
            Some(l) => l.kill(),
        }
        // The killed one comes back as the next standby.
        let restarted = cluster.start_jobmanager(&format!("jobmanager-{round}"));
        let took = wait_running_on(&cluster, &next.rest, &id, killed);
        eprintln!("failover {round}: all tasks RUNNING again {} ms after the SIGKILL", took.as_millis());
        let c = checkpoints(&next.rest, &id).expect("checkpoints");
        let restored = c["latest"]["restored"]["id"].as_i64().unwrap_or(0);
        assert!(restored >= before, "round {round}: resumed from the latest completed checkpoint ({before}): {c}");
        assert_eq!(c["counts"]["restored"], 1, "round {round}: {c}");
        storage.check_restored_from_here(&c);
        loader.join().expect("loading events");
        windows += 2;
        let summary = expect_windows(kafka.bootstrap(), &output, windows, false, Duration::from_secs(120));
        assert_eq!(summary.complete_windows, windows, "round {round}");
        // A checkpoint of the new leader, so that the next kill has one to resume from.
        cluster.wait_for("a checkpoint on the new leader", Duration::from_secs(30), |_| {
            (latest_completed(&next.rest, &id)? > restored).then_some(())
        });
        wait_contending(&cluster, &restarted.name);
        leader = Some(std::mem::replace(&mut next, restarted));
    }
    let registered = cluster.taskmanager_log(0).matches("Registered at the JobManager").count();
    assert_eq!(registered, 4, "the TaskManager registered with each leader once:\n{}", cluster.taskmanager_log(0));
    eprintln!("{name}: {} s in all", started.elapsed().as_secs());
}

#[test]
fn the_leader_killed_during_a_checkpoint_resumes_from_the_latest_completed_one_and_every_window_counts_1000() {
    killed_during_a_checkpoint("ha-mid-checkpoint", Storage::disk("ha-mid-checkpoint"));
}

#[test]
fn on_s3_the_leader_killed_during_a_checkpoint_resumes_from_the_latest_completed_one_and_every_window_counts_1000() {
    killed_during_a_checkpoint("ha-mid-checkpoint-s3", Storage::s3("ha-mid-checkpoint-s3"));
}

fn killed_during_a_checkpoint(name: &str, storage: Storage) {
    let started = Instant::now();
    let kafka = Kafka::shared();
    let zk = ZooKeeper::shared();
    let (input, output) = click_topics(kafka, name, FIRST);
    let (mut cluster, standby) = ha_cluster(name, &storage.settings(zk, name), 1, &[SLOW_CHECKPOINT]);
    let id = click_job(&cluster, kafka, &input, &output);

    // Killed while a checkpoint waits for its late writer: some subtasks
    // have acknowledged it, subtask 0 has not, and has a second or more to go.
    let (before, pending) = cluster.wait_for("a checkpoint half acknowledged", Duration::from_secs(30), |c| {
        let v = checkpoints(&c.rest(), &id)?;
        let now = flowc_runtime::clock::now_ms();
        let half = |h: &&Value| {
            h["status"] == "IN_PROGRESS"
                && h["num_acknowledged_subtasks"].as_u64() > Some(0)
                && h["trigger_timestamp"].as_i64().is_some_and(|t| now - t < 1500)
        };
        let pending = v["history"].as_array()?.iter().find(half)?["id"].as_i64()?;
        Some((v["latest"]["completed"]["id"].as_i64()?, pending))
    });
    let killed = Instant::now();
    signal(cluster.jobmanager_pid(), "-KILL");
    let _ = cluster.wait_jobmanager_exit(Duration::from_secs(10));
    let took = wait_running_on(&cluster, &standby.rest, &id, killed);
    eprintln!("killed during checkpoint {pending}: all tasks RUNNING again {} ms after the SIGKILL", took.as_millis());
    let c = checkpoints(&standby.rest, &id).expect("checkpoints");
    let restored = c["latest"]["restored"]["id"].as_i64().unwrap_or(0);
    assert!(restored >= before && restored < pending, "resumed from the latest completed checkpoint ({before}): {c}");
    assert_eq!(c["latest"]["restored"]["is_savepoint"], false, "{c}");
    storage.check_restored_from_here(&c);

    load_events(kafka.bootstrap(), &input, START_MS + 90_000, MORE);
    let summary = expect_windows(kafka.bootstrap(), &output, 7, false, Duration::from_secs(120));
    assert_eq!(summary.complete_windows, 7);
    cluster.wait_for("a checkpoint on the new leader", Duration::from_secs(30), |_| {
        (latest_completed(&standby.rest, &id)? > restored).then_some(())
    });
    eprintln!("{name}: {} s in all", started.elapsed().as_secs());
}

#[test]
fn the_leader_killed_while_a_rescaled_job_restores_from_its_savepoint_resumes_it_at_p3_and_every_window_counts_1000() {
    killed_during_a_rescale("ha-rescale", Storage::disk("ha-rescale"));
}

#[test]
fn on_s3_the_leader_killed_while_a_rescaled_job_restores_from_its_savepoint_resumes_it_at_p3_and_every_window_counts_1000(
) {
    killed_during_a_rescale("ha-rescale-s3", Storage::s3("ha-rescale-s3"));
}

fn killed_during_a_rescale(name: &str, storage: Storage) {
    let started = Instant::now();
    let kafka = Kafka::shared();
    let zk = ZooKeeper::shared();
    let (input, output) = click_topics(kafka, name, FIRST);
    // Two TaskManagers of 2 slots: room for the job at p=3. A task that
    // restores state takes 3 s to start: the job at p=2 starts at once, the
    // one resumed from the savepoint slowly.
    let (mut cluster, standby) = ha_cluster(name, &storage.settings(zk, name), 2, &[SLOW_RESTORE]);
    let id = click_job(&cluster, kafka, &input, &output);

    // `flowc stop`: stop with a savepoint.
    let savepoint = cluster.stop_with_savepoint(&id, Duration::from_secs(20));

    // Resubmitted at p=3 from it; the leader dies while its tasks restore.
    let job_file = cluster.scratch.0.join("click_count.flow");
    let args =
        [&["-p", "3", "-s", savepoint.as_str()][..], &ARGS[2..], &["--bootstrap.servers", kafka.bootstrap()]].concat();
    let id2 = cluster.submit(&job_file, &args);
    cluster.wait_for("the rescaled job's tasks INITIALIZING", Duration::from_secs(30), |c| {
        let j = job_on(&c.rest(), &id2)?;
        let counts = &j["status-counts"];
        (counts["INITIALIZING"].as_u64()? > 0 && counts["RUNNING"].as_u64().unwrap_or(0) == 0).then_some(())
    });
    let killed = Instant::now();
    signal(cluster.jobmanager_pid(), "-KILL");
    let _ = cluster.wait_jobmanager_exit(Duration::from_secs(10));

    // The new leader resumes it at p=3 from the savepoint (it completed no
    // checkpoint before the kill).
    let took = wait_running_on(&cluster, &standby.rest, &id2, killed);
    eprintln!("killed during a rescale resume: all tasks RUNNING again {} ms after the SIGKILL", took.as_millis());
    let j = job_on(&standby.rest, &id2).expect("the job");
    assert!(j["vertices"].as_array().expect("vertices").iter().all(|v| v["parallelism"] == 3), "{j}");
    let c = checkpoints(&standby.rest, &id2).expect("checkpoints");
    assert_eq!(c["latest"]["restored"]["is_savepoint"], true, "resumed from the savepoint: {c}");
    let last = |p: &str| p.trim_end_matches('/').rsplit('/').next().unwrap_or_default().to_string();
    let restored_from = c["latest"]["restored"]["external_path"].as_str().unwrap_or_default();
    assert_eq!(last(restored_from), last(&savepoint), "resumed from {savepoint}: {c}");
    storage.check_restored_from_here(&c);
    let stopped = job_on(&standby.rest, &id);
    assert!(stopped.is_none_or(|j| j["state"] != "RUNNING"), "the stopped job runs again");

    load_events(kafka.bootstrap(), &input, START_MS + 90_000, MORE);
    let summary = expect_windows(kafka.bootstrap(), &output, 7, false, Duration::from_secs(120));
    assert_eq!(summary.complete_windows, 7);
    cluster.wait_for("a checkpoint of the rescaled job", Duration::from_secs(30), |_| {
        (latest_completed(&standby.rest, &id2)? > 0).then_some(())
    });
    eprintln!("{name}: {} s in all", started.elapsed().as_secs());
}

#[test]
fn the_leader_killed_during_stop_with_savepoint_resumes_the_job_and_the_savepoint_request_fails() {
    killed_during_stop_with_savepoint("ha-mid-stop", Storage::disk("ha-mid-stop"));
}

#[test]
fn on_s3_the_leader_killed_during_stop_with_savepoint_resumes_the_job_and_the_savepoint_request_fails() {
    killed_during_stop_with_savepoint("ha-mid-stop-s3", Storage::s3("ha-mid-stop-s3"));
}

fn killed_during_stop_with_savepoint(name: &str, storage: Storage) {
    let kafka = Kafka::shared();
    let zk = ZooKeeper::shared();
    let (input, output) = click_topics(kafka, name, FIRST);
    let (mut cluster, standby) = ha_cluster(name, &storage.settings(zk, name), 1, &[SLOW_CHECKPOINT]);
    let id = click_job(&cluster, kafka, &input, &output);
    let before = latest_completed(&cluster.rest(), &id).expect("a completed checkpoint");

    // `flowc stop`'s request.
    let stop = cluster.rest().post_json(&format!("/jobs/{id}/stop"), &json!({ "drain": false })).expect("stop");
    let trigger = stop["request-id"].as_str().expect("a trigger id").to_string();
    let status = cluster.rest().get(&format!("/jobs/{id}/savepoints/{trigger}")).expect("the savepoint's status");
    assert_eq!(status["status"]["id"], "IN_PROGRESS", "the savepoint waits for its late writer: {status}");
    let killed = Instant::now();
    signal(cluster.jobmanager_pid(), "-KILL");
    let _ = cluster.wait_jobmanager_exit(Duration::from_secs(10));

    // The job is not stopped: it resumes from its latest completed checkpoint.
    let took = wait_running_on(&cluster, &standby.rest, &id, killed);
    eprintln!("killed during stop-with-savepoint: all tasks RUNNING again {} ms after the SIGKILL", took.as_millis());
    let c = checkpoints(&standby.rest, &id).expect("checkpoints");
    let restored = c["latest"]["restored"]["id"].as_i64().unwrap_or(0);
    assert!(restored >= before, "resumed from the latest completed checkpoint ({before}): {c}");
    storage.check_restored_from_here(&c);
    assert_eq!(c["latest"]["restored"]["is_savepoint"], false, "{c}");
    assert!(c["latest"]["savepoint"].is_null(), "no savepoint completed: {c}");
    // The savepoint request fails with a reason: the new leader does not
    // know its trigger (Flink's: 404, "Operation not found").
    match standby.rest.get(&format!("/jobs/{id}/savepoints/{trigger}")) {
        Err(RestError::Status { status: 404, errors }) => {
            assert!(errors.iter().any(|e| e.contains(&trigger)), "{errors:?}")
        }
        other => panic!("the savepoint of a dead leader is still reported: {other:?}"),
    }

    load_events(kafka.bootstrap(), &input, START_MS + 90_000, MORE);
    let summary = expect_windows(kafka.bootstrap(), &output, 7, false, Duration::from_secs(120));
    assert_eq!(summary.complete_windows, 7);
    let j = job_on(&standby.rest, &id).expect("the job");
    assert!(all_running(&j), "still running after its stop was cut short: {j}");
}

#[test]
fn zookeeper_restarted_while_the_job_runs_suspends_leadership_and_every_window_counts_1000_once() {
    zookeeper_restarted("ha-zk-restart", Storage::disk("ha-zk-restart"));
}

#[test]
fn on_s3_zookeeper_restarted_while_the_job_runs_suspends_leadership_and_every_window_counts_1000_once() {
    zookeeper_restarted("ha-zk-restart-s3", Storage::s3("ha-zk-restart-s3"));
}

fn zookeeper_restarted(name: &str, storage: Storage) {
    let kafka = Kafka::shared();
    // A server of this test alone: it is stopped and started again.
    let zk = ZooKeeper::start_private().expect("a ZooKeeper of this test");
    let (input, output) = click_topics(kafka, name, FIRST);
    let (cluster, standby) = ha_cluster(name, &storage.settings(&zk, name), 1, &[]);
    let id = click_job(&cluster, kafka, &input, &output);
    let before = latest_completed(&cluster.rest(), &id).expect("a completed checkpoint");

    let stopped = Instant::now();
    zk.stop().expect("stopping ZooKeeper");
    cluster.wait_for("the leader to give up leadership", Duration::from_secs(30), |c| {
        c.log("jobmanager").contains("Lost leadership: suspended every job").then_some(())
    });
    zk.start().expect("starting ZooKeeper again over its data");
    eprintln!("ZooKeeper was down for {} ms", stopped.elapsed().as_millis());

    // Whichever JobManager leads now runs the job again.
    // Whichever JobManager leads now runs the job again (a standby answers
    // with the leader's REST: asking the first one is enough).
    cluster.wait_for("the job RUNNING again", Duration::from_secs(60), |c| job_on(&c.rest(), &id).filter(all_running));
    let leading = |name: &str| cluster.log(name).matches("Leading: recovered the jobs").count();
    let (first, second) = (leading("jobmanager"), leading("jobmanager-standby"));
    assert!(first + second >= 2, "leadership was not regained after the restart\n{}", cluster.logs());
    let first_rest = cluster.rest();
    let rest = if second > 0 { &standby.rest } else { &first_rest };
    eprintln!("ZooKeeper restart: all tasks RUNNING again {} ms after the stop", stopped.elapsed().as_millis());
    let c = checkpoints(rest, &id).expect("checkpoints");
    let restored = c["latest"]["restored"]["id"].as_i64().unwrap_or(0);
    assert!(restored >= before, "resumed from the latest completed checkpoint ({before}): {c}");
    storage.check_restored_from_here(&c);

    load_events(kafka.bootstrap(), &input, START_MS + 90_000, MORE);
    let summary = expect_windows(kafka.bootstrap(), &output, 7, false, Duration::from_secs(120));
    assert_eq!(summary.complete_windows, 7);
    cluster.wait_for("a checkpoint after the restart", Duration::from_secs(30), |_| {
        (latest_completed(rest, &id)? > restored).then_some(())
    });
    let _ = zk.stop();
}

#[test]
fn a_taskmanager_killed_during_the_failover_and_the_job_runs_on_the_one_left_exactly_once() {
    taskmanager_lost_in_the_failover("ha-tm-loss", Storage::disk("ha-tm-loss"));
}

#[test]
fn on_s3_a_taskmanager_killed_during_the_failover_and_the_job_runs_on_the_one_left_exactly_once() {
    taskmanager_lost_in_the_failover("ha-tm-loss-s3", Storage::s3("ha-tm-loss-s3"));
}

fn taskmanager_lost_in_the_failover(name: &str, storage: Storage) {
    let kafka = Kafka::shared();
    let zk = ZooKeeper::shared();
    let (input, output) = click_topics(kafka, name, FIRST);
    // Without fast failover: the standby waits out the dead leader's
    // session, and the TaskManager dies in that gap.
    let settings = storage.settings(zk, name) + "high-availability.flowc.fast-failover: false\n";
    // Two TaskManagers of 2 slots: either can run the job (p=2) alone.
    let (mut cluster, standby) = ha_cluster(name, &settings, 2, &[]);
    let id = click_job(&cluster, kafka, &input, &output);
    let before = latest_completed(&cluster.rest(), &id).expect("a completed checkpoint");

    let killed = Instant::now();
    signal(cluster.jobmanager_pid(), "-KILL");
    let _ = cluster.wait_jobmanager_exit(Duration::from_secs(10));
    // Before the standby leads (its session outlives the leader by 4 s).
    cluster.kill_taskmanager(0);
    assert!(!cluster.log("jobmanager-standby").contains("Leading: recovered the jobs"), "the standby led too early");

    let took = wait_running_on(&cluster, &standby.rest, &id, killed);
    eprintln!("failover with a TaskManager lost: all tasks RUNNING again {} ms after the SIGKILL", took.as_millis());
    let overview = standby.rest.get("/overview").expect("overview");
    assert_eq!(overview["taskmanagers"], 1, "only the TaskManager left registered: {overview}");
    let c = checkpoints(&standby.rest, &id).expect("checkpoints");
    let restored = c["latest"]["restored"]["id"].as_i64().unwrap_or(0);
    assert!(restored >= before, "resumed from the latest completed checkpoint ({before}): {c}");
    storage.check_restored_from_here(&c);

    load_events(kafka.bootstrap(), &input, START_MS + 90_000, MORE);
    let summary = expect_windows(kafka.bootstrap(), &output, 7, false, Duration::from_secs(120));
    assert_eq!(summary.complete_windows, 7);
}
