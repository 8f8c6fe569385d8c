//! End to end with real processes: JobManager failover with ZooKeeper.
//!
//! Two `flowc jobmanager` processes with `high-availability.type:
//! zookeeper` share one ZooKeeper and one storageDir; a TaskManager finds
//! whichever leads through ZooKeeper; the click job runs with its
//! exactly-once Kafka sink. The leader is SIGKILLed mid-run. The standby
//! finds its RPC port refusing connections (fast failover) and leads well
//! before the dead leader's ZooKeeper session (10 s) could expire, recovers
//! the job from the HA job store and resumes it from its latest completed
//! checkpoint, with no manual step; a `read_committed` reader then sees
//! every window exactly once, 1000 clicks per page.
//!
//! A leader paused with SIGSTOP still accepts connections (its kernel
//! does): it is not taken for dead, and is replaced only once its session
//! expires; resumed, it steps down without acting.
//!
//! With internal mutual TLS the same failover holds, and the probes —
//! bare TCP connections that never start a handshake — are not logged as
//! refused connections by the leader.
//!
//! A leader stopped cleanly (SIGTERM) closes its ZooKeeper session: the
//! standby leads at once, not after the session timeout.
//!
//! The same with nothing on a local disk: checkpoints and the HA job store
//! (`high-availability.storageDir: s3://…`) on a real S3-protocol server
//! (`tests/support/s3.rs`). The bucket holds the job's entries while it
//! runs, only the retained checkpoint (`state.checkpoints.num-retained`,
//! Flink's default 1) and none of its entries once it is cancelled.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};
use support::cluster::{all_running, flowc_bin, job_on as job, signal, Cluster, JobManagerProcess, Scratch};
use support::kafka::Kafka;
use support::pki::Pki;
use support::playground::{click_count_job_with, click_topics, expect_windows, load_events, START_MS};
use support::s3::{unique_bucket, S3};
use support::zookeeper::{unique_cluster_id, ZooKeeper};

const FIRST: u64 = 36_000;
const MORE: u64 = 12_000;
const ARGS: [&str; 4] = ["-p", "2", "--checkpointing", "--event-time"];

/// The cluster's `high-availability.*` lines: ZooKeeper sessions of 4 s.
fn ha_settings(zk: &ZooKeeper, storage: &Scratch, name: &str) -> String {
    zk.ha_settings(&storage.0, name, 4000)
}

/// The first JobManager (it leads) with `settings`, a standby that answers
/// with the leader's REST, and a TaskManager of 2 slots.
fn two_jobmanagers(name: &str, settings: &str) -> (Cluster, JobManagerProcess) {
    let mut cluster = Cluster::jobmanager_with(name, settings);
    let standby = cluster.start_jobmanager("jobmanager-standby");
    cluster.wait_for("the standby to answer with the leader's REST", Duration::from_secs(30), |_| {
        standby.rest.get("/overview").ok()
    });
    cluster.add_taskmanager(2);
    cluster.wait_for_taskmanagers(1);
    (cluster, standby)
}

/// A running Steady Clicks job at p=2 with a completed checkpoint.
fn steady_job(cluster: &Cluster) -> String {
    let job_file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/jobs/steady_clicks.flow");
    let id = cluster.submit(&job_file, &["-p", "2"]);
    cluster.wait_all_tasks(&id, "RUNNING", Duration::from_secs(30));
    cluster.wait_for("a checkpoint", Duration::from_secs(20), |c| {
        (c.metric(&id, "numberOfCompletedCheckpoints").unwrap_or(0) >= 1).then_some(())
    });
    id
}

/// The longest session `zookeeper.sh` allows.
const LONG_SESSION_MS: u64 = 10_000;

/// SIGKILLs the leader; the standby (fast failover, sessions of
/// [`LONG_SESSION_MS`]) leads, recovers job `id` and redeploys it on the
/// TaskManager, which found the new leader through ZooKeeper, all well
/// before the dead leader's session could expire.
fn kill_the_leader_and_see_the_standby_take_over_fast(
    cluster: &mut Cluster,
    standby: &JobManagerProcess,
    id: &str,
    what: &str,
) {
    let killed = Instant::now();
    signal(cluster.jobmanager_pid(), "-KILL");
    let _ = cluster.wait_jobmanager_exit(Duration::from_secs(10));
    cluster.wait_for("the job RUNNING on the new leader", Duration::from_secs(90), |_| {
        job(&standby.rest, id).filter(all_running)
    });
    let took = killed.elapsed();
    eprintln!("{what}: all tasks RUNNING again {} ms after the SIGKILL", took.as_millis());
    assert!(
        took < Duration::from_millis(LONG_SESSION_MS / 2),
        "the standby waited for the dead leader's session ({LONG_SESSION_MS} ms): {} ms\n{}",
        took.as_millis(),
        cluster.logs()
    );
    assert!(cluster.log("jobmanager-standby").contains("refuses connections at its RPC address"), "{}", cluster.logs());
}

#[test]
fn the_standby_takes_over_a_killed_leader_well_before_its_session_expires_and_every_window_counts_1000_once() {
    let kafka = Kafka::shared();
    let zk = ZooKeeper::shared();
    let (input, output) = click_topics(kafka, "ha-failover", FIRST);
    let storage = Scratch::new("ha-failover-storage");
    // The first JobManager answers REST once it leads.
    let settings = zk.ha_settings(&storage.0, "failover", LONG_SESSION_MS);
    let (mut cluster, standby) = two_jobmanagers("ha-failover", &settings);
    let job_file = click_count_job_with(&cluster.scratch.0, &input, &output, "exactly_once");
    let id = cluster.submit(&job_file, &[&ARGS[..], &["--bootstrap.servers", kafka.bootstrap()]].concat());
    cluster.wait_all_tasks(&id, "RUNNING", Duration::from_secs(30));
    expect_windows(kafka.bootstrap(), &output, 5, false, Duration::from_secs(120));
    let done = cluster.metric(&id, "numberOfCompletedCheckpoints").unwrap_or(0);
    cluster.wait_for("two more checkpoints", Duration::from_secs(20), |c| {
        (c.metric(&id, "numberOfCompletedCheckpoints").unwrap_or(0) >= done + 2).then_some(())
    });
    let on_standby = job(&standby.rest, &id).expect("the standby answers");
    assert_eq!(on_standby["state"], "RUNNING", "the standby shows the leader's job: {on_standby}");
    // `flowc -m` may name any JobManager.
    let listed = Command::new(flowc_bin())
        .args(["list", "-m", &standby.rest.addr])
        .env("FLOWC_CONF_DIR", cluster.scratch.0.join("no-conf"))
        .output()
        .expect("flowc list");
    let text = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.status.success() && text.contains(&id), "flowc list -m <standby>: {text}");

    kill_the_leader_and_see_the_standby_take_over_fast(&mut cluster, &standby, &id, "failover");
    let checkpoints = standby.rest.get(&format!("/jobs/{id}/checkpoints")).expect("checkpoints");
    let restored = checkpoints["latest"]["restored"]["id"].as_i64().unwrap_or(0);
    assert!(restored >= done + 2, "resumed from the latest completed checkpoint: {checkpoints}");
    assert_eq!(checkpoints["counts"]["restored"], 1, "{checkpoints}");
    assert!(cluster.taskmanager_log(0).contains("Found the leading JobManager"), "{}", cluster.logs());

    // Exactly once across the failover: every window 1000, none repeated.
    load_events(kafka.bootstrap(), &input, START_MS + 90_000, MORE);
    let summary = expect_windows(kafka.bootstrap(), &output, 7, false, Duration::from_secs(120));
    assert_eq!(summary.complete_windows, 7);
    // Checkpoints go on after the restored one, on the new leader.
    cluster.wait_for("a checkpoint on the new leader", Duration::from_secs(30), |_| {
        let c = standby.rest.get(&format!("/jobs/{id}/checkpoints")).ok()?;
        (c["latest"]["completed"]["id"].as_i64()? > restored).then_some(())
    });
}

#[test]
fn a_leader_paused_past_its_session_steps_down_and_the_job_runs_once_on_the_new_leader() {
    let zk = ZooKeeper::shared();
    let storage = Scratch::new("ha-pause-storage");
    let (cluster, standby) = two_jobmanagers("ha-pause", &ha_settings(zk, &storage, "pause"));
    let id = steady_job(&cluster);

    // Paused past its ZooKeeper session: the standby leads, recovers the
    // job, and the TaskManager follows it.
    let leader = cluster.jobmanager_pid();
    signal(leader, "-STOP");
    let paused = Instant::now();
    cluster.wait_for("the standby to lead", Duration::from_secs(60), |c| {
        c.log("jobmanager-standby").contains("Leading: recovered the jobs").then_some(())
    });
    cluster.wait_for("the job RUNNING on the new leader", Duration::from_secs(60), |_| {
        job(&standby.rest, &id).filter(all_running)
    });
    eprintln!("the paused leader was replaced in {} ms", paused.elapsed().as_millis());
    // Replaced because its session expired: a paused process still accepts
    // connections, and fast failover did not take it for dead.
    let standby_log = cluster.log("jobmanager-standby");
    assert!(!standby_log.contains("refuses connections at its RPC address"), "{standby_log}");
    let before = cluster.log("jobmanager").len();

    // Resumed, it finds its session gone, steps down and drops the job
    // without deploying, triggering or committing anything.
    signal(leader, "-CONT");
    cluster.wait_for("the deposed leader to step down", Duration::from_secs(30), |c| {
        c.log("jobmanager").get(before..)?.contains("Lost leadership: suspended every job").then_some(())
    });
    let after = cluster.log("jobmanager").get(before..).unwrap_or_default().to_string();
    assert!(!after.contains("Deploying job."), "a deposed leader deployed:\n{after}");
    assert!(!after.contains("Completed checkpoint"), "a deposed leader completed a checkpoint:\n{after}");
    // The job runs once, on the new leader, in the attempt it deployed.
    std::thread::sleep(Duration::from_secs(2));
    let j = job(&standby.rest, &id).expect("the new leader answers");
    assert!(all_running(&j), "{j}");
    let jobs =
        cluster.wait_for("the deposed leader to answer with the new leader's REST", Duration::from_secs(20), |c| {
            c.rest().get("/jobs").ok()
        });
    assert_eq!(jobs["jobs"].as_array().map(Vec::len), Some(1), "{jobs}");
    let registered = cluster.taskmanager_log(0).matches("Registered at the JobManager").count();
    assert_eq!(registered, 2, "the TaskManager registered with each leader once:\n{}", cluster.taskmanager_log(0));
}

/// The `chk-<n>` of job `id` in the bucket, and whether each has `_metadata`.
fn checkpoints_in_bucket(bucket: &str, id: &str) -> Vec<(u64, bool)> {
    let keys = S3::shared().list(bucket, &format!("checkpoints/{id}/")).expect("list");
    let mut ids: Vec<u64> =
        keys.iter().filter_map(|k| k.split('/').nth(2)?.strip_prefix("chk-")?.parse().ok()).collect();
    ids.dedup();
    ids.into_iter().map(|n| (n, keys.contains(&format!("checkpoints/{id}/chk-{n}/_metadata")))).collect()
}

#[test]
fn with_checkpoints_and_the_ha_store_on_s3_the_standby_takes_over_and_every_window_counts_1000() {
    let kafka = Kafka::shared();
    let zk = ZooKeeper::shared();
    let s3 = S3::shared();
    let bucket = unique_bucket("ha-s3");
    s3.create_bucket(&bucket).expect("create bucket");
    let (input, output) = click_topics(kafka, "ha-s3", FIRST);
    let cluster_id = unique_cluster_id("s3");
    let (mut cluster, standby) = two_jobmanagers("ha-s3", &zk.ha_on_s3_settings(s3, &bucket, &cluster_id, 4000));
    let job_file = click_count_job_with(&cluster.scratch.0, &input, &output, "exactly_once");
    let id = cluster.submit(&job_file, &[&ARGS[..], &["--bootstrap.servers", kafka.bootstrap()]].concat());
    cluster.wait_all_tasks(&id, "RUNNING", Duration::from_secs(30));
    // The job's entries are objects in the bucket, nothing is on a disk.
    let entries = format!("ha/{cluster_id}/jobs/{id}/");
    let stored = s3.list(&bucket, &entries).expect("list");
    for entry in ["submission-", "checkpoints-"] {
        assert!(stored.iter().any(|k| k.starts_with(&format!("{entries}{entry}"))), "no {entry}… in {stored:?}");
    }
    expect_windows(kafka.bootstrap(), &output, 5, false, Duration::from_secs(120));
    let done = cluster.metric(&id, "numberOfCompletedCheckpoints").unwrap_or(0);
    cluster.wait_for("two more checkpoints", Duration::from_secs(30), |c| {
        (c.metric(&id, "numberOfCompletedCheckpoints").unwrap_or(0) >= done + 2).then_some(())
    });
    // One retained: each completion deletes the one before.
    let kept = cluster.wait_for("one complete checkpoint in the bucket", Duration::from_secs(20), |_| {
        let stored = checkpoints_in_bucket(&bucket, &id);
        (stored.iter().filter(|(_, complete)| *complete).count() == 1 && stored.len() <= 2).then_some(stored)
    });
    assert!(kept.iter().all(|(n, _)| *n as i64 > done), "older checkpoints are gone: {kept:?}");

    // SIGKILL the leader: the standby reads the job from the bucket.
    let killed = Instant::now();
    signal(cluster.jobmanager_pid(), "-KILL");
    let _ = cluster.wait_jobmanager_exit(Duration::from_secs(10));
    cluster.wait_for("the job RUNNING on the new leader", Duration::from_secs(90), |_| {
        job(&standby.rest, &id).filter(all_running)
    });
    eprintln!("failover on S3: all tasks RUNNING again {} ms after the SIGKILL", killed.elapsed().as_millis());
    let checkpoints = standby.rest.get(&format!("/jobs/{id}/checkpoints")).expect("checkpoints");
    let restored = checkpoints["latest"]["restored"]["id"].as_i64().unwrap_or(0);
    assert!(restored >= done + 2, "resumed from the latest completed checkpoint: {checkpoints}");
    let path = checkpoints["latest"]["restored"]["external_path"].as_str().unwrap_or_default().to_string();
    assert!(path.starts_with(&format!("s3://{bucket}/checkpoints/{id}/chk-")), "{checkpoints}");

    load_events(kafka.bootstrap(), &input, START_MS + 90_000, MORE);
    let summary = expect_windows(kafka.bootstrap(), &output, 7, false, Duration::from_secs(120));
    assert_eq!(summary.complete_windows, 7);

    // Cancelled: its result is recorded and its entries leave the bucket.
    standby.rest.patch(&format!("/jobs/{id}?mode=cancel")).expect("cancel");
    cluster.wait_for("the job CANCELED", Duration::from_secs(30), |_| {
        job(&standby.rest, &id).filter(|j| j["state"] == "CANCELED")
    });
    cluster.wait_for("the job's entries removed from the bucket", Duration::from_secs(20), |_| {
        s3.list(&bucket, &entries).ok().filter(Vec::is_empty)
    });
}

#[test]
fn a_leader_stopped_with_sigterm_hands_over_at_once_not_after_its_session_timeout() {
    // Sessions of 10 s (the longest `zookeeper.sh` allows): a handover that
    // waited for the session to expire would take at least that long.
    const SESSION_MS: u64 = 10_000;
    let zk = ZooKeeper::shared();
    let storage = Scratch::new("ha-term-storage");
    let (mut cluster, standby) = two_jobmanagers("ha-term", &zk.ha_settings(&storage.0, "term", SESSION_MS));
    let id = steady_job(&cluster);

    let stopped = Instant::now();
    signal(cluster.jobmanager_pid(), "-TERM");
    cluster.wait_for("the standby to lead", Duration::from_secs(30), |c| {
        c.log("jobmanager-standby").contains("Leading: recovered the jobs").then_some(())
    });
    let handover = stopped.elapsed();
    eprintln!("clean shutdown: the standby leads {} ms after the SIGTERM", handover.as_millis());
    assert!(
        handover < Duration::from_millis(SESSION_MS / 2),
        "the standby waited for the session timeout ({SESSION_MS} ms): {} ms",
        handover.as_millis()
    );
    let exit = cluster.wait_jobmanager_exit(Duration::from_secs(10)).expect("the leader exits");
    assert!(exit.success(), "{exit:?}");
    assert!(cluster.log("jobmanager").contains("its ZooKeeper session is closed"), "{}", cluster.log("jobmanager"));
    cluster.wait_for("the job RUNNING on the new leader", Duration::from_secs(60), |_| {
        job(&standby.rest, &id).filter(all_running)
    });
}

#[test]
fn with_internal_tls_the_standby_takes_over_a_killed_leader_fast_and_its_probes_are_no_refusals() {
    // Fast failover probes the leader's RPC port with bare TCP connections,
    // which never start a TLS handshake: the leader must take them for what
    // they are (a peer that connected and left), not log them as refused
    // strangers; the TaskManager must follow the new leader over TLS.
    let zk = ZooKeeper::shared();
    let storage = Scratch::new("ha-tls-storage");
    let certs = Scratch::new("ha-tls-certs");
    let pki = Pki::new(&certs.0, "cluster");
    let (cert, key) = pki.pem("node");
    let settings = format!(
        "{}security.ssl.internal.enabled: true\nsecurity.ssl.internal.cert: {cert}\n\
         security.ssl.internal.key: {key}\nsecurity.ssl.internal.ca: {}\n",
        zk.ha_settings(&storage.0, "tls", LONG_SESSION_MS),
        pki.ca_file()
    );
    let (mut cluster, standby) = two_jobmanagers("ha-tls", &settings);
    let id = steady_job(&cluster);
    // The standby has probed the leader for a while (every 100 ms).
    std::thread::sleep(Duration::from_secs(2));
    let leader_log = cluster.log("jobmanager");
    assert!(
        !leader_log.contains("Refused a connection"),
        "the standby's liveness probes were logged as refused connections:\n{leader_log}"
    );

    kill_the_leader_and_see_the_standby_take_over_fast(&mut cluster, &standby, &id, "failover with internal TLS");
    // Checkpoints go on on the new leader, with its TaskManager over TLS.
    let restored = standby.rest.get(&format!("/jobs/{id}/checkpoints")).expect("checkpoints")["latest"]["restored"]
        ["id"]
        .as_i64()
        .unwrap_or(0);
    cluster.wait_for("a checkpoint on the new leader", Duration::from_secs(30), |_| {
        let c = standby.rest.get(&format!("/jobs/{id}/checkpoints")).ok()?;
        (c["latest"]["completed"]["id"].as_i64()? > restored).then_some(())
    });
}
