//! End to end: Rust UDFs on real flowc processes.
//!
//! - The Click Event Count job with two UDFs (one with a crates.io
//!   dependency, `memchr`, which the cargo cache has) runs on a JobManager
//!   and two TaskManagers through a TaskManager kill, and the exactly-once
//!   sink shows exactly 1000 clicks per page per window: the artifact is
//!   uploaded by `flowc run`, fetched by every TaskManager (the replacement
//!   too) and loaded in process.
//! - A panicking UDF fails its task with the function's name, the panic's
//!   place and the record, and every TaskManager stays up; in sidecar mode
//!   (`udf.isolation: process`) a UDF that aborts fails only its task.
//! - A corrupt artifact in a TaskManager's cache is refused before any task
//!   runs, with the reason, and fetched again afterwards; a plan whose
//!   artifact the JobManager lacks is refused at submission.

mod support;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;
use support::cluster::{Cluster, Scratch};
use support::kafka::Kafka;
use support::playground::{click_count_job_with, click_topics, expect_windows, load_events, START_MS};

/// The UDF file of the click job: the page without a query string, and a
/// filter on pages; `memchr` comes from crates.io (and the cargo cache).
const CLICK_UDFS: &str = r#"//! UDFs of the end-to-end test.
//!
//! ```cargo
//! [dependencies]
//! memchr = "2"
//! ```

/// The page without a query string, in lower case.
pub fn canonical(page: &str) -> String {
    let end = memchr::memchr(b'?', page.as_bytes()).unwrap_or(page.len());
    page[..end].to_ascii_lowercase()
}

pub fn is_page(page: &str) -> bool {
    page.starts_with('/')
}
"#;

/// A cluster whose blob store and artifact caches live in `blobs`.
fn cluster(name: &str, blobs: &Scratch, taskmanagers: usize, extra: &str) -> Cluster {
    let config = format!("blob.storage.directory: {}\n{extra}", blobs.0.display());
    let mut c = Cluster::jobmanager_with(name, &config);
    for _ in 0..taskmanagers {
        c.add_taskmanager(1);
    }
    c.wait_for_taskmanagers(taskmanagers);
    c
}

/// The Click Event Count job of `click_count_job_with`, its pages passed
/// through the UDFs before `key_by`.
fn click_job_with_udfs(dir: &Path, input: &str, output: &str) -> PathBuf {
    let path = click_count_job_with(dir, input, output, "exactly_once");
    let text = std::fs::read_to_string(&path).expect("the job");
    let text = text.replacen("\nparam ", "\nuse rust \"udfs/clicks.rs\"\nparam ", 1).replacen(
        "    | key_by page",
        "    | filter is_page(page)\n    | map { page: canonical(page) }\n    | key_by page",
        1,
    );
    assert!(text.contains("use rust") && text.contains("canonical(page)"), "{text}");
    std::fs::create_dir_all(dir.join("udfs")).expect("udfs/");
    std::fs::write(dir.join("udfs/clicks.rs"), CLICK_UDFS).expect("the UDF file");
    std::fs::write(&path, text).expect("the job");
    path
}

#[test]
fn a_job_with_udfs_counts_exactly_through_a_killed_taskmanager() {
    let kafka = Kafka::shared();
    let (input, output) = click_topics(kafka, "udf-kill", 36_000);
    let blobs = Scratch::new("udf-kill-blobs");
    let mut cluster = cluster("udf-kill", &blobs, 2, "");
    let job = click_job_with_udfs(&cluster.scratch.0, &input, &output);
    let args = ["-p", "2", "--checkpointing", "--event-time", "--bootstrap.servers", kafka.bootstrap()];
    let id = cluster.submit(&job, &args);
    cluster.wait_all_tasks(&id, "RUNNING", Duration::from_secs(60));
    expect_windows(kafka.bootstrap(), &output, 5, false, Duration::from_secs(120));
    let done = cluster.metric(&id, "numberOfCompletedCheckpoints").unwrap_or(0);
    cluster.wait_for("two more checkpoints", Duration::from_secs(30), |c| {
        (c.metric(&id, "numberOfCompletedCheckpoints").unwrap_or(0) >= done + 2).then_some(())
    });
    cluster.kill_taskmanager(0);
    cluster.wait_all_tasks(&id, "SCHEDULED", Duration::from_secs(30));
    // A new TaskManager: the artifact is in the cache it shares with the
    // others, checked against its digest and loaded before its tasks start.
    cluster.add_taskmanager(1);
    cluster.wait_all_tasks(&id, "RUNNING", Duration::from_secs(60));
    load_events(kafka.bootstrap(), &input, START_MS + 90_000, 12_000);
    let summary = expect_windows(kafka.bootstrap(), &output, 7, false, Duration::from_secs(120));
    assert_eq!(summary.complete_windows, 7);
    let logs = cluster.logs();
    assert!(logs.contains("Fetching a UDF artifact from the JobManager"), "{logs}");
}

/// A job whose UDF panics on record `n == 7`, or aborts the process with
/// `abort`.
fn failing_job(dir: &Path, call: &str) -> PathBuf {
    std::fs::create_dir_all(dir.join("udfs")).expect("udfs/");
    std::fs::write(
        dir.join("udfs/failing.rs"),
        "pub fn explode(n: i64) -> i64 {\n    if n == 7 {\n        panic!(\"boom at {n}\");\n    }\n    n\n}\n\n\
         pub fn abort_at(n: i64) -> i64 {\n    if n == 7 {\n        std::process::abort();\n    }\n    n\n}\n",
    )
    .expect("the UDF file");
    let job = dir.join("failing.flow");
    std::fs::write(
        &job,
        format!(
            "job \"Failing UDF\"\nuse rust \"udfs/failing.rs\"\nschema N {{ n: long, page: string }}\n\
             source datagen {{ schema: N, count: 40, n: sequence(0, 1), page: cycle(\"/a\", \"/b\") }}\n    \
             | map {{ m: {call}(n) }} name \"Explode\"\n    | sink discard\n"
        ),
    )
    .expect("the job");
    job
}

fn root_exception(cluster: &Cluster, id: &str) -> String {
    let ex = cluster.rest().get(&format!("/jobs/{id}/exceptions")).expect("exceptions");
    ex["root-exception"].as_str().unwrap_or_default().to_string()
}

#[test]
fn a_panicking_udf_fails_its_task_with_its_name_and_record_and_the_taskmanagers_stay_up() {
    let blobs = Scratch::new("udf-panic-blobs");
    let mut cluster = cluster("udf-panic", &blobs, 2, "");
    let job = failing_job(&cluster.scratch.0, "explode");
    let id = cluster.submit(&job, &["-p", "1"]);
    cluster.wait_job_state(&id, "FAILED", Duration::from_secs(60));
    let cause = root_exception(&cluster, &id);
    let want = format!(
        "Explode: `explode` panicked at {}:3:9: boom at 7 in `explode(n)` at {}:5:16, record {{\"n\":7,\"page\":\"/b\"}}",
        job.parent().expect("dir").join("udfs/failing.rs").display(),
        job.display()
    );
    assert!(cause.contains(&want), "{cause}\nwanted: {want}");
    for tm in 0..2 {
        assert!(cluster.taskmanager_exited(tm).is_none(), "TaskManager {tm} went down\n{}", cluster.logs());
    }
    let o = cluster.rest().get("/overview").expect("overview");
    assert_eq!(o["taskmanagers"], 2, "{o}");
    assert_eq!(o["slots-available"], 2, "{o}");
}

#[test]
fn in_sidecar_mode_a_udf_that_aborts_fails_only_its_task() {
    let blobs = Scratch::new("udf-abort-blobs");
    let mut cluster = cluster("udf-abort", &blobs, 1, "udf.isolation: process\n");
    let job = failing_job(&cluster.scratch.0, "abort_at");
    let id = cluster.submit(&job, &["-p", "1"]);
    cluster.wait_job_state(&id, "FAILED", Duration::from_secs(60));
    let cause = root_exception(&cluster, &id);
    assert!(cause.contains("`abort_at`: the UDF sidecar process ended"), "{cause}");
    assert!(cluster.taskmanager_exited(0).is_none(), "the TaskManager went down\n{}", cluster.logs());
}

/// `flowc compile`: the plan and the artifact's digest and path.
fn compile(cluster: &Cluster, job: &Path) -> (PathBuf, String, PathBuf) {
    let plan = cluster.scratch.0.join("job.plan");
    let out = std::process::Command::new(support::cluster::flowc_bin())
        .arg("compile")
        .arg(job)
        .arg("-o")
        .arg(&plan)
        .output()
        .expect("flowc compile");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let line = stdout.lines().find(|l| l.contains("UDF artifact")).unwrap_or_else(|| panic!("{stdout}"));
    let digest = line.split_whitespace().find(|w| w.starts_with("sha256:")).expect("a digest").to_string();
    let path = line.split(" at ").nth(1).and_then(|r| r.split(':').next()).expect("a path");
    (plan, digest, PathBuf::from(path))
}

#[test]
fn a_corrupt_cached_artifact_is_refused_before_any_task_runs_and_fetched_again() {
    let blobs = Scratch::new("udf-corrupt-blobs");
    let cluster = cluster("udf-corrupt", &blobs, 1, "");
    let job = failing_job(&cluster.scratch.0, "explode");
    let job_text = std::fs::read_to_string(&job).expect("job").replace("count: 40", "count: 5");
    std::fs::write(&job, job_text).expect("job");
    let (plan, digest, artifact) = compile(&cluster, &job);
    let plan_bytes = std::fs::read(&plan).expect("plan");
    // The JobManager refuses a plan whose artifact it does not have.
    let rest = cluster.rest();
    let refused = rest.post_bytes("/v1/jobs", &plan_bytes).expect_err("refused");
    assert!(refused.to_string().contains("is not in the blob store"), "{refused}");
    let stored = rest.post_bytes("/v1/blobs", &std::fs::read(&artifact).expect("artifact")).expect("uploaded");
    assert_eq!(stored["digest"], Value::String(digest.clone()));
    // The TaskManager's cached copy is damaged.
    let cache = blobs.0.join("taskmanager-cache");
    std::fs::create_dir_all(&cache).expect("cache dir");
    let cached = cache.join(format!("{}.flowcudf", &digest[7..]));
    let mut damaged = std::fs::read(&artifact).expect("artifact");
    let mid = damaged.len() / 2;
    damaged[mid] ^= 0xff;
    std::fs::write(&cached, &damaged).expect("damaging the cache");
    let id = rest.submit(&plan_bytes, "").expect("submitted");
    cluster.wait_job_state(&id, "FAILED", Duration::from_secs(60));
    let cause = root_exception(&cluster, &id);
    assert!(cause.contains(&format!("UDF artifact {digest} (udfs/failing.rs) is corrupt")), "{cause}");
    assert!(!cluster.logs().contains("Task running."), "no task may start\n{}", cluster.logs());
    assert!(!cached.exists(), "the corrupt file is removed");
    // Submitted again, the artifact is fetched afresh and the job runs.
    let id = rest.submit(&plan_bytes, "").expect("submitted");
    cluster.wait_job_state(&id, "FINISHED", Duration::from_secs(60));
    assert_eq!(flowc_compiler::udf::artifact::digest(&std::fs::read(&cached).expect("cached")), digest);
}
