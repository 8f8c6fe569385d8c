//! End to end: bad savepoints, racing stops and cancels, and checkpoints
//! that cannot be written. Each gets a clear answer; nothing running is
//! lost.

mod support;

use flowc_runtime::client::http;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Duration;
use support::cluster::Cluster;

fn steady_job() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/jobs/steady_clicks.flow")
}

/// A running Steady Clicks job at p=2 with at least one checkpoint.
fn running_job(cluster: &Cluster) -> String {
    let id = cluster.submit(&steady_job(), &["-p", "2"]);
    cluster.wait_all_tasks(&id, "RUNNING", Duration::from_secs(30));
    id
}

fn savepoint_of(cluster: &Cluster, id: &str) -> PathBuf {
    let out = cluster.flowc(&["savepoint", id]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    let loc = text.lines().find_map(|l| l.strip_prefix("Savepoint completed. Path: ")).expect("a savepoint path");
    PathBuf::from(loc.strip_prefix("file:").unwrap_or(loc))
}

fn run_from(cluster: &Cluster, job: &Path, savepoint: &Path, extra: &[&str]) -> std::process::Output {
    let sp = savepoint.display().to_string();
    let mut args = vec!["run", "-d", "-s", sp.as_str()];
    args.extend_from_slice(extra);
    let job = job.display().to_string();
    args.push(&job);
    args.extend_from_slice(&["-p", "2"]);
    cluster.flowc(&args)
}

#[test]
fn corrupt_or_foreign_savepoints_are_refused_before_the_job_starts() {
    let cluster = Cluster::start("badsp", 1, 2);
    let id = running_job(&cluster);
    let good = savepoint_of(&cluster, &id);
    let jobs_before = cluster.rest().get("/jobs").expect("jobs")["jobs"].as_array().map_or(0, Vec::len);

    // A truncated state file.
    let truncated = cluster.scratch.0.join("truncated-savepoint");
    std::fs::create_dir_all(&truncated).expect("dir");
    for e in std::fs::read_dir(&good).expect("savepoint dir").flatten() {
        std::fs::copy(e.path(), truncated.join(e.file_name())).expect("copy");
    }
    let state = std::fs::read_dir(&truncated)
        .expect("dir")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "state"))
        .expect("a state file");
    let bytes = std::fs::read(&state).expect("read");
    std::fs::write(&state, &bytes[..bytes.len() / 2]).expect("truncate");
    let out = run_from(&cluster, &steady_job(), &truncated, &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("cannot restore from") && err.contains("truncated or corrupt"), "{err}");

    // Garbage metadata, and a directory that is no savepoint at all.
    std::fs::write(truncated.join("_metadata"), b"garbage").expect("write");
    let out = run_from(&cluster, &steady_job(), &truncated, &[]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a flowc checkpoint metadata file"));
    let out = run_from(&cluster, &steady_job(), &cluster.scratch.0, &[]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no _metadata"));

    // State for an operator the job does not have (its uid changed).
    let text = std::fs::read_to_string(steady_job()).expect("job");
    let changed = cluster.scratch.0.join("changed.flow");
    std::fs::write(&changed, text.replace("uid \"click-event-counter\"", "uid \"another-counter\"")).expect("write");
    let out = run_from(&cluster, &changed, &good, &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("uid `click-event-counter`") && err.contains("--allow-non-restored-state"), "{err}");
    let jobs_after = cluster.rest().get("/jobs").expect("jobs")["jobs"].as_array().map_or(0, Vec::len);
    assert_eq!(jobs_before, jobs_after, "a refused savepoint must not create a job");

    // ... which --allow-non-restored-state drops.
    let out = run_from(&cluster, &changed, &good, &["--allow-non-restored-state"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn stop_and_cancel_race_and_one_wins() {
    let cluster = Cluster::start("race", 1, 4);
    let id = running_job(&cluster);
    let rest = cluster.rest_addr.clone();
    let body = json!({ "drain": false }).to_string();
    let stop = {
        let (rest, id, body) = (rest.clone(), id.clone(), body.clone());
        std::thread::spawn(move || {
            http::request(
                "POST",
                &rest,
                &format!("/jobs/{id}/stop"),
                Some(("application/json", body.as_bytes())),
                Duration::from_secs(10),
            )
            .expect("stop")
            .status
        })
    };
    let cancel = {
        let (rest, id) = (rest.clone(), id.clone());
        std::thread::spawn(move || {
            http::request("PATCH", &rest, &format!("/jobs/{id}?mode=cancel"), None, Duration::from_secs(10))
                .expect("cancel")
                .status
        })
    };
    let (s, c) = (stop.join().expect("stop thread"), cancel.join().expect("cancel thread"));
    assert!(s == 202 || c == 202, "neither won: stop {s}, cancel {c}");
    assert!([202, 409].contains(&s) && [202, 409].contains(&c), "stop {s}, cancel {c}");
    let j = cluster.wait_for("the job to end", Duration::from_secs(20), |cl| {
        let j = cl.job(&id);
        ["FINISHED", "CANCELED"].contains(&j["state"].as_str().unwrap_or("")).then_some(j)
    });
    // Cancelling an ended job is accepted and changes nothing, as in Flink;
    // a second stop is refused.
    let again = http::request("PATCH", &rest, &format!("/jobs/{id}?mode=cancel"), None, Duration::from_secs(10))
        .expect("cancel");
    assert_eq!(again.status, 202, "{}: {}", j["state"], again.text());
    assert_eq!(cluster.job(&id)["state"], j["state"], "a cancel after the end changed the job's state");
    let again = http::request(
        "POST",
        &rest,
        &format!("/jobs/{id}/stop"),
        Some(("application/json", body.as_bytes())),
        Duration::from_secs(10),
    )
    .expect("stop");
    assert_eq!(again.status, 409, "{}", again.text());
    let unknown =
        http::request("POST", &rest, "/jobs/00000000000000000000000000000000/stop", None, Duration::from_secs(10))
            .expect("stop");
    assert_eq!(unknown.status, 404);
}

#[test]
fn a_savepoint_trigger_with_a_trigger_id_is_idempotent() {
    let cluster = Cluster::start("idem", 1, 2);
    let id = running_job(&cluster);
    let body = json!({ "cancel-job": false, "triggerId": "0123456789abcdef0123456789abcdef" });
    let first = cluster.rest().post_json(&format!("/jobs/{id}/savepoints"), &body).expect("trigger");
    let second = cluster.rest().post_json(&format!("/jobs/{id}/savepoints"), &body).expect("trigger again");
    assert_eq!(first["request-id"], "0123456789abcdef0123456789abcdef");
    assert_eq!(first, second);
    let loc = cluster
        .rest()
        .wait_for_savepoint(&id, "0123456789abcdef0123456789abcdef", Duration::from_secs(30))
        .expect("savepoint");
    assert!(loc.starts_with("file:"), "{loc}");
    let savepoints: Vec<_> = std::fs::read_dir(cluster.scratch.0.join("savepoints")).expect("savepoints dir").collect();
    assert_eq!(savepoints.len(), 1, "the repeated trigger took a second savepoint");
}

#[test]
fn checkpoints_that_cannot_be_written_are_declined_and_the_job_keeps_running() {
    // A file where the checkpoint directory should be: nothing can be written under it.
    let blocker = std::env::temp_dir().join(format!("flowc-blocked-{}", std::process::id()));
    std::fs::write(&blocker, b"not a directory").expect("write");
    let cluster =
        Cluster::start_with("blocked", 1, 2, &format!("state.checkpoints.dir: {}\n", blocker.join("sub").display()));
    let id = running_job(&cluster);
    cluster.wait_for("failed checkpoints", Duration::from_secs(20), |c| {
        (c.metric(&id, "numberOfFailedCheckpoints").unwrap_or(0) >= 2).then_some(())
    });
    let j = cluster.job(&id);
    assert_eq!(j["state"], "RUNNING");
    assert_eq!(cluster.metric(&id, "numberOfCompletedCheckpoints"), Some(0));
    let cps = cluster.rest().get(&format!("/jobs/{id}/checkpoints")).expect("checkpoints");
    // The JobManager cannot make the checkpoint's directory: it fails the
    // checkpoint before any task is asked to write.
    let msg = cps["latest"]["failed"]["failure_message"].as_str().unwrap_or("");
    assert!(msg.contains("cannot create") && msg.contains("Not a directory"), "{cps}");
    let _ = std::fs::remove_file(&blocker);
}
