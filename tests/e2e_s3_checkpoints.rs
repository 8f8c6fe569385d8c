//! End to end with checkpoints and savepoints on a real S3-protocol server
//! (`tests/support/s3.rs`) and the shared Kafka broker: the click job
//! checkpoints to `s3://` through a killed TaskManager and every window
//! still counts 1000; after the run the bucket holds exactly the retained
//! checkpoints (`state.checkpoints.num-retained`, older ones deleted as
//! newer ones complete); stop-with-savepoint writes the savepoint to `s3://`, the
//! job's checkpoints are deleted, and a resume from it at parallelism 3
//! counts every window 1000; disposing of the savepoint deletes its
//! objects. REST refuses a savepoint target in a bucket that is not
//! allowed, and the secret key shows nowhere.

mod support;

use flowc_runtime::client::http;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;
use support::cluster::Cluster;
use support::kafka::Kafka;
use support::playground::{click_count_job, click_topics, expect_windows, load_events, START_MS};
use support::s3::{unique_bucket, S3};

const FIRST: u64 = 36_000; // 6 windows
const MORE: u64 = 12_000; // 2 more
const WINDOW_EVENTS_MS: i64 = 15_000;
/// The checkpoints a job keeps (`state.checkpoints.num-retained`, set to
/// more than Flink's default of 1 to see the number honoured).
const RETAINED: usize = 2;
const SECRET: &str = "s3-secret-that-must-not-show";

/// Checkpoints and savepoints in `bucket` on the shared server.
fn s3_config(bucket: &str, extra: &str) -> String {
    format!(
        "state.checkpoints.dir: s3://{bucket}/checkpoints\n\
         state.savepoints.dir: s3://{bucket}/savepoints\n\
         s3.endpoint: {}\n\
         s3.access-key: flowc-test\n\
         s3.secret-key: {SECRET}\n\
         s3.path.style.access: true\n{extra}",
        S3::shared().endpoint()
    )
}

fn new_bucket(test: &str) -> String {
    let bucket = unique_bucket(test);
    S3::shared().create_bucket(&bucket).expect("create bucket");
    bucket
}

/// The `chk-<n>` of job `id` in the bucket, and whether each has `_metadata`.
fn checkpoints_in_bucket(bucket: &str, id: &str) -> Vec<(u64, bool)> {
    let keys = S3::shared().list(bucket, &format!("checkpoints/{id}/")).expect("list");
    let ids: BTreeSet<u64> =
        keys.iter().filter_map(|k| k.split('/').nth(2)?.strip_prefix("chk-")?.parse().ok()).collect();
    ids.into_iter().map(|n| (n, keys.contains(&format!("checkpoints/{id}/chk-{n}/_metadata")))).collect()
}

fn post_json(cluster: &Cluster, path: &str, body: &Value) -> (u16, String) {
    let body = body.to_string();
    let r = http::request(
        "POST",
        &cluster.rest_addr,
        path,
        Some(("application/json", body.as_bytes())),
        Duration::from_secs(10),
    )
    .expect("POST");
    (r.status, r.text())
}

/// Waits until 5 windows are out and two more checkpoints have completed,
/// so that the open 6th window is in a checkpoint.
fn wait_for_first_windows_and_a_checkpoint(cluster: &Cluster, kafka: &Kafka, id: &str, output: &str) {
    expect_windows(kafka.bootstrap(), output, 5, true, Duration::from_secs(90));
    let done = cluster.metric(id, "numberOfCompletedCheckpoints").unwrap_or(0);
    cluster.wait_for("two more checkpoints", Duration::from_secs(30), |c| {
        (c.metric(id, "numberOfCompletedCheckpoints").unwrap_or(0) >= done + 2).then_some(())
    });
}

#[test]
fn checkpoints_on_s3_survive_a_killed_taskmanager_and_only_the_retained_stay() {
    let kafka = Kafka::shared();
    let bucket = new_bucket("s3-recover");
    let (input, output) = click_topics(kafka, "s3-recover", FIRST);
    let extra = format!(
        "execution.checkpointing.externalized-checkpoint-retention: RETAIN_ON_CANCELLATION\n\
         state.checkpoints.num-retained: {RETAINED}\n"
    );
    let mut cluster = Cluster::start_with("s3-recover", 1, 2, &s3_config(&bucket, &extra));
    let job = click_count_job(&cluster.scratch.0, &input, &output);
    let id =
        cluster.submit(&job, &["-p", "2", "--bootstrap.servers", kafka.bootstrap(), "--checkpointing", "--event-time"]);
    cluster.wait_all_tasks(&id, "RUNNING", Duration::from_secs(30));
    wait_for_first_windows_and_a_checkpoint(&cluster, kafka, &id, &output);
    let stored = checkpoints_in_bucket(&bucket, &id);
    assert!(stored.iter().filter(|(_, complete)| *complete).count() >= 2, "{stored:?}");

    cluster.kill_taskmanager(0);
    cluster.wait_all_tasks(&id, "SCHEDULED", Duration::from_secs(15));
    cluster.add_taskmanager(2);
    cluster.wait_all_tasks(&id, "RUNNING", Duration::from_secs(30));
    load_events(kafka.bootstrap(), &input, START_MS + 6 * WINDOW_EVENTS_MS, MORE);
    let summary = expect_windows(kafka.bootstrap(), &output, 7, true, Duration::from_secs(90));
    assert_eq!(summary.complete_windows, 7);
    assert_eq!(cluster.metric(&id, "numRestarts"), Some(1));
    let checkpoints = cluster.rest().get(&format!("/jobs/{id}/checkpoints")).expect("checkpoints");
    let restored = checkpoints["latest"]["restored"]["external_path"].as_str().unwrap_or_default().to_string();
    assert!(restored.starts_with(&format!("s3://{bucket}/checkpoints/{id}/chk-")), "{checkpoints}");

    // Cancelled with RETAIN_ON_CANCELLATION: the retained checkpoints stay,
    // each complete, and nothing else (abandoned or swept ones are gone).
    let latest = checkpoints["latest"]["completed"]["id"].as_u64().expect("a completed checkpoint");
    cluster.rest().patch(&format!("/jobs/{id}?mode=cancel")).expect("cancel");
    cluster.wait_job_state(&id, "CANCELED", Duration::from_secs(30));
    let stored = cluster.wait_for("only the retained checkpoints", Duration::from_secs(20), |_| {
        let stored = checkpoints_in_bucket(&bucket, &id);
        (stored.len() == RETAINED).then_some(stored)
    });
    assert!(stored.iter().all(|(_, complete)| *complete), "{stored:?}");
    let newest = stored.iter().map(|(n, _)| *n).max().unwrap_or(0);
    assert!(newest >= latest, "the newest retained is at least the one REST saw last: {stored:?} vs {latest}");

    // The secret key is masked in REST and absent from every log.
    let config = cluster.rest().get("/jobmanager/config").expect("config");
    let shown = config.as_array().expect("entries").iter().find(|e| e["key"] == "s3.secret-key").cloned();
    assert_eq!(shown.map(|e| e["value"].clone()), Some(json!("******")), "{config}");
    assert!(!config.to_string().contains(SECRET));
    let logs = std::fs::read_dir(&cluster.scratch.0).expect("scratch").flatten();
    for log in logs.filter(|e| e.path().extension().is_some_and(|x| x == "log")) {
        let text = std::fs::read_to_string(log.path()).unwrap_or_default();
        assert!(!text.contains(SECRET), "the secret key is in {}", log.path().display());
    }
}

#[test]
fn stop_with_a_savepoint_on_s3_and_resume_at_parallelism_3() {
    let kafka = Kafka::shared();
    let bucket = new_bucket("s3-rescale");
    let (input, output) = click_topics(kafka, "s3-rescale", FIRST);
    let mut cluster = Cluster::start_with("s3-rescale", 1, 2, &s3_config(&bucket, ""));
    let job = click_count_job(&cluster.scratch.0, &input, &output);
    let args = ["--bootstrap.servers", kafka.bootstrap(), "--checkpointing", "--event-time"];
    let id = cluster.submit(&job, &[&["-p", "2"], &args[..]].concat());
    cluster.wait_all_tasks(&id, "RUNNING", Duration::from_secs(30));
    expect_windows(kafka.bootstrap(), &output, 5, true, Duration::from_secs(90));

    // A bucket that is not allowed is refused with a reason; nothing is written.
    let elsewhere = new_bucket("s3-not-allowed");
    for target in [format!("s3://{elsewhere}/sp"), format!("s3://{bucket}-evil/sp")] {
        let (status, body) =
            post_json(&cluster, &format!("/jobs/{id}/savepoints"), &json!({ "target-directory": target }));
        assert_eq!(status, 400, "{target}: {body}");
        assert!(
            body.contains("outside the allowed buckets") && body.contains("flowc.security.allowed-buckets"),
            "{body}"
        );
        assert!(body.contains(&format!("s3://{bucket}")), "the allowed bucket is named: {body}");
    }
    assert_eq!(S3::shared().list(&elsewhere, "").expect("list"), Vec::<String>::new());

    let savepoint = cluster.stop_with_savepoint(&id, Duration::from_secs(30));
    let prefix = format!("s3://{bucket}/savepoints/savepoint-{}-", &id[..6]);
    assert!(savepoint.starts_with(&prefix), "{savepoint}");
    let key = savepoint.trim_start_matches(&format!("s3://{bucket}/"));
    let keys = S3::shared().list(&bucket, key).expect("list");
    assert!(keys.contains(&format!("{key}/_metadata")), "{keys:?}");
    // DELETE_ON_CANCELLATION (the default) deletes a finished job's checkpoints.
    cluster.wait_for("the job's checkpoints deleted", Duration::from_secs(20), |_| {
        checkpoints_in_bucket(&bucket, &id).is_empty().then_some(())
    });

    load_events(kafka.bootstrap(), &input, START_MS + 6 * WINDOW_EVENTS_MS, MORE);
    let id2 = cluster.submit(&job, &[&["-p", "3", "-s", savepoint.as_str()], &args[..]].concat());
    cluster.wait_all_tasks(&id2, "SCHEDULED", Duration::from_secs(15));
    cluster.add_taskmanager(2);
    cluster.wait_all_tasks(&id2, "RUNNING", Duration::from_secs(30));
    let summary = expect_windows(kafka.bootstrap(), &output, 7, true, Duration::from_secs(90));
    assert_eq!(summary.complete_windows, 7);
    let j = cluster.job(&id2);
    assert!(j["vertices"].as_array().expect("vertices").iter().all(|v| v["parallelism"] == 3), "{j}");
    let restored = cluster.rest().get(&format!("/jobs/{id2}/checkpoints")).expect("checkpoints");
    assert_eq!(restored["latest"]["restored"]["external_path"], json!(savepoint), "{restored}");
    assert_eq!(restored["latest"]["restored"]["is_savepoint"], true, "{restored}");

    // Disposed of (`POST /savepoint-disposal`, what `flowc savepoint -d`
    // asks for): its objects go; a prefix that is no savepoint is refused
    // and keeps its objects.
    let not_one = format!("s3://{bucket}/checkpoints/{id2}");
    let refused = cluster.flowc(&["savepoint", "-d", &not_one]);
    assert!(!refused.status.success(), "{}", String::from_utf8_lossy(&refused.stdout));
    let disposed = cluster.flowc(&["savepoint", "-d", &savepoint]);
    let text = String::from_utf8_lossy(&disposed.stdout).to_string();
    assert!(
        disposed.status.success() && text.contains("disposed"),
        "{text}{}",
        String::from_utf8_lossy(&disposed.stderr)
    );
    assert_eq!(
        S3::shared().list(&bucket, key).expect("list"),
        Vec::<String>::new(),
        "the savepoint's objects are gone"
    );
}
