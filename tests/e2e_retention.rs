//! End to end: checkpoint storage is cleaned up. A declined checkpoint
//! leaves no directory and no temporary file once the next one completes,
//! even when a slow subtask writes after the decline; a job's checkpoints
//! go when it is cancelled or finishes (`DELETE_ON_CANCELLATION`), stay
//! when it is cancelled under `RETAIN_ON_CANCELLATION`, and stay when it
//! fails; ended jobs leave the job list after `jobstore.expiration-time`
//! and beyond `jobstore.max-capacity`.

mod support;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;
use support::cluster::Cluster;

fn steady_job() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/jobs/steady_clicks.flow")
}

fn checkpoint_base(cluster: &Cluster, id: &str) -> PathBuf {
    cluster.scratch.0.join("checkpoints").join(id)
}

fn latest_completed(cluster: &Cluster, id: &str) -> Option<u64> {
    let cps = cluster.rest().get(&format!("/jobs/{id}/checkpoints")).ok()?;
    cps["latest"]["completed"]["id"].as_u64()
}

/// Every file and directory under `dir`.
fn tree(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            out.push(e.path());
            out.extend(tree(&e.path()));
        }
    }
    out
}

/// A running Steady Clicks job at p=2 with at least `n` completed checkpoints.
fn running_job(cluster: &Cluster, n: i64) -> String {
    let id = cluster.submit(&steady_job(), &["-p", "2"]);
    cluster.wait_all_tasks(&id, "RUNNING", Duration::from_secs(30));
    cluster.wait_for("completed checkpoints", Duration::from_secs(30), |c| {
        (c.metric(&id, "numberOfCompletedCheckpoints").unwrap_or(0) >= n).then_some(())
    });
    id
}

#[test]
fn a_declined_checkpoint_leaves_nothing_behind_even_with_a_late_writer() {
    let mut cluster = Cluster::jobmanager_only("declined");
    // Subtask 0 of every vertex writes its state 1.5 s late: after subtask 1
    // has declined and the checkpoint has been abandoned.
    cluster.add_taskmanager_env(2, &[("FLOWC_TEST_SLOW_STATE_WRITE", "0:1500")]);
    cluster.wait_for_taskmanagers(1);
    let id = running_job(&cluster, 1);
    let base = checkpoint_base(&cluster, &id);
    let latest = latest_completed(&cluster, &id).expect("a completed checkpoint");
    let chk = base.join(format!("chk-{latest}"));
    let files: Vec<String> = std::fs::read_dir(&chk)
        .expect("checkpoint dir")
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| n.ends_with(".state"))
        .collect();
    let first = files.iter().find(|n| n.ends_with("-1.state")).expect("subtask 1 of the window has state");
    assert!(files.iter().any(|n| n.ends_with("-0.state")), "subtask 0 of the window has state: {files:?}");
    // Subtask 1 cannot write the next checkpoints: a directory holds its file's name.
    let blocked: Vec<u64> = (latest + 2..latest + 5).collect();
    for n in &blocked {
        std::fs::create_dir_all(base.join(format!("chk-{n}")).join(first)).expect("blocker");
    }
    cluster.wait_for("the blocked checkpoints to fail and a later one to complete", Duration::from_secs(60), |c| {
        (latest_completed(c, &id)? > latest + 4).then_some(())
    });
    // Long enough for the late writer of the last blocked checkpoint.
    std::thread::sleep(Duration::from_secs(2));
    let done = latest_completed(&cluster, &id).expect("completed");
    let cps = cluster.rest().get(&format!("/jobs/{id}/checkpoints")).expect("checkpoints");
    assert!(cps["counts"]["failed"].as_u64().unwrap_or(0) >= 3, "{cps}");
    for n in &blocked {
        assert!(
            !base.join(format!("chk-{n}")).exists(),
            "declined checkpoint {n} left its directory: {:?}",
            tree(&base)
        );
    }
    for p in tree(&base) {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        assert!(!name.ends_with(".inprogress"), "a temporary file is left: {p:?}");
        if let Some(n) = name.strip_prefix("chk-").and_then(|n| n.parse::<u64>().ok()) {
            assert!(n > done || p.join("_metadata").is_file(), "{p:?} is no completed checkpoint: {:?}", tree(&base));
        }
    }
    assert_eq!(cluster.job(&id)["state"], "RUNNING");
}

#[test]
fn cancelled_and_finished_jobs_lose_their_checkpoints_by_default_but_not_their_savepoints() {
    let cluster = Cluster::start("retention-default", 1, 4);
    let cancelled = running_job(&cluster, 2);
    let stopped = running_job(&cluster, 2);
    let (a, b) = (checkpoint_base(&cluster, &cancelled), checkpoint_base(&cluster, &stopped));
    assert!(a.is_dir() && b.is_dir());
    cluster.rest().patch(&format!("/jobs/{cancelled}?mode=cancel")).expect("cancel");
    cluster.wait_job_state(&cancelled, "CANCELED", Duration::from_secs(20));
    assert!(!a.exists(), "{:?}", tree(&a));
    let out = cluster.flowc(&["stop", &stopped]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    cluster.wait_job_state(&stopped, "FINISHED", Duration::from_secs(20));
    assert!(!b.exists(), "{:?}", tree(&b));
    let savepoint = text.lines().find_map(|l| l.strip_prefix("Savepoint completed. Path: file:")).expect("savepoint");
    assert!(Path::new(savepoint).join("_metadata").is_file(), "the savepoint stays");
}

#[test]
fn retain_on_cancellation_keeps_them_and_a_failed_job_keeps_them_always() {
    let mut cluster = Cluster::start_with(
        "retention-retain",
        1,
        4,
        // Three kept (Flink's default is one), to see that all of them stay.
        "execution.checkpointing.externalized-checkpoint-retention: RETAIN_ON_CANCELLATION\nrestart-strategy.type: none\nstate.checkpoints.num-retained: 3\n",
    );
    let cancelled = running_job(&cluster, 2);
    let failed = running_job(&cluster, 2);
    cluster.rest().patch(&format!("/jobs/{cancelled}?mode=cancel")).expect("cancel");
    cluster.wait_job_state(&cancelled, "CANCELED", Duration::from_secs(20));
    let kept = |base: &Path| tree(base).iter().filter(|p| p.file_name().is_some_and(|n| n == "_metadata")).count();
    let base = checkpoint_base(&cluster, &cancelled);
    assert!(kept(&base) >= 2, "{:?}", tree(&base));
    // No restarts: the lost TaskManager fails the job.
    cluster.kill_taskmanager(0);
    cluster.wait_job_state(&failed, "FAILED", Duration::from_secs(20));
    let base = checkpoint_base(&cluster, &failed);
    assert!(kept(&base) >= 2, "{:?}", tree(&base));
}

#[test]
fn ended_jobs_expire_from_the_job_list() {
    let cluster = Cluster::start_with("jobstore", 1, 4, "jobstore.expiration-time: 3\njobstore.max-capacity: 1\n");
    let listed = |c: &Cluster| -> Vec<String> {
        let jobs = c.rest().get("/jobs").expect("jobs");
        jobs["jobs"]
            .as_array()
            .map_or(Vec::new(), |a| a.iter().filter_map(|j| j["id"].as_str().map(str::to_string)).collect())
    };
    let first = running_job(&cluster, 0);
    let second = running_job(&cluster, 0);
    for id in [&first, &second] {
        cluster.rest().patch(&format!("/jobs/{id}?mode=cancel")).expect("cancel");
        cluster.wait_job_state(id, "CANCELED", Duration::from_secs(20));
    }
    // At most one ended job is kept: the older goes first.
    cluster.wait_for("the older job to leave the list", Duration::from_secs(5), |c| {
        (listed(c) == vec![second.clone()]).then_some(())
    });
    let gone = flowc_runtime::client::http::request(
        "GET",
        &cluster.rest_addr,
        &format!("/jobs/{first}"),
        None,
        Duration::from_secs(10),
    )
    .expect("GET");
    assert_eq!(gone.status, 404, "{}", gone.text());
    // And after the expiration time, the other too.
    cluster.wait_for("the job to expire", Duration::from_secs(10), |c| listed(c).is_empty().then_some(()));
    let overview: Value = cluster.rest().get("/jobs/overview").expect("overview");
    assert_eq!(overview["jobs"].as_array().map_or(1, Vec::len), 0, "{overview}");
}
