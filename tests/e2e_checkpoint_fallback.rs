//! End to end: a corrupt checkpoint is skipped on restore, not retried
//! forever. With the latest checkpoint's state files damaged, a job whose
//! TaskManager died restores the one before it, says in its exceptions
//! which checkpoint it skipped and why, and still counts 1000 clicks per
//! page and window. With every retained checkpoint damaged, it fails with
//! a clear message instead of looping.

mod support;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;
use support::cluster::Cluster;
use support::kafka::Kafka;
use support::playground::{click_count_job, click_topics, expect_windows, load_events, START_MS};

const FIRST: u64 = 36_000; // 6 windows
const MORE: u64 = 12_000; // 2 more
const WINDOW_EVENTS_MS: i64 = 15_000;
/// Falling back needs checkpoints to fall back to: three kept, not Flink's one.
const RETAIN_THREE: &str = "state.checkpoints.num-retained: 3\n";

/// The job's completed checkpoints on disk (with `_metadata`), newest first.
fn checkpoints_on_disk(cluster: &Cluster, id: &str) -> Vec<(u64, PathBuf)> {
    let base = cluster.scratch.0.join("checkpoints").join(id);
    let mut out: Vec<(u64, PathBuf)> = std::fs::read_dir(&base)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| {
                    let n = e.file_name().to_str()?.strip_prefix("chk-")?.parse().ok()?;
                    e.path().join("_metadata").is_file().then(|| (n, e.path()))
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort_by_key(|c| std::cmp::Reverse(c.0));
    out
}

/// Overwrites 8 bytes in the middle of each state file of a checkpoint;
/// returns how many files were damaged.
fn corrupt(dir: &Path) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(dir).expect("checkpoint dir").flatten() {
        if e.path().extension().is_none_or(|x| x != "state") {
            continue;
        }
        let mut bytes = std::fs::read(e.path()).expect("state file");
        let at = bytes.len() / 2;
        for b in &mut bytes[at..at + 8] {
            *b ^= 0xA5;
        }
        std::fs::write(e.path(), &bytes).expect("write");
        n += 1;
    }
    n
}

/// Replaces each state file of a checkpoint with a well-framed file (magic,
/// version, length, checksum all right) whose body is no subtask state:
/// it passes the JobManager's check and fails on the TaskManager.
fn replace_with_undecodable(dir: &Path) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(dir).expect("checkpoint dir").flatten() {
        if e.path().extension().is_none_or(|x| x != "state") {
            continue;
        }
        let body = [0u8];
        let mut sum: u64 = 0xcbf2_9ce4_8422_2325;
        for b in body {
            sum ^= u64::from(b);
            sum = sum.wrapping_mul(0x0000_0100_0000_01b3);
        }
        let mut bytes = b"FLOWCSTA".to_vec();
        bytes.extend_from_slice(&1u32.to_le_bytes());
        bytes.extend_from_slice(&(body.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&body);
        bytes.extend_from_slice(&sum.to_le_bytes());
        std::fs::write(e.path(), &bytes).expect("write");
        n += 1;
    }
    n
}

fn exceptions(cluster: &Cluster, id: &str) -> Value {
    cluster.rest().get(&format!("/jobs/{id}/exceptions")).expect("exceptions")
}

#[test]
fn a_corrupt_latest_checkpoint_is_skipped_and_the_one_before_restored() {
    let kafka = Kafka::shared();
    let (input, output) = click_topics(kafka, "fallback", FIRST);
    let mut cluster = Cluster::start_with("fallback", 1, 2, RETAIN_THREE);
    let job = click_count_job(&cluster.scratch.0, &input, &output);
    let id =
        cluster.submit(&job, &["-p", "2", "--bootstrap.servers", kafka.bootstrap(), "--checkpointing", "--event-time"]);
    cluster.wait_all_tasks(&id, "RUNNING", Duration::from_secs(30));
    // 5 windows out, then two more checkpoints: the open 6th window is in them.
    expect_windows(kafka.bootstrap(), &output, 5, true, Duration::from_secs(60));
    let done = cluster.metric(&id, "numberOfCompletedCheckpoints").unwrap_or(0);
    cluster.wait_for("two more checkpoints, three at least", Duration::from_secs(30), |c| {
        let n = c.metric(&id, "numberOfCompletedCheckpoints").unwrap_or(0);
        (n >= done + 2 && n >= 3).then_some(())
    });

    // No checkpoint completes without a TaskManager: the latest stays the latest.
    cluster.kill_taskmanager(0);
    cluster.wait_all_tasks(&id, "SCHEDULED", Duration::from_secs(15));
    let on_disk = checkpoints_on_disk(&cluster, &id);
    assert!(on_disk.len() >= 3, "{on_disk:?}");
    let (latest, latest_dir) = on_disk[0].clone();
    let previous = on_disk[1].0;
    assert!(corrupt(&latest_dir) >= 1, "the window state of {latest_dir:?} is in state files");

    cluster.add_taskmanager(2);
    cluster.wait_all_tasks(&id, "RUNNING", Duration::from_secs(30));
    load_events(kafka.bootstrap(), &input, START_MS + 6 * WINDOW_EVENTS_MS, MORE);
    let summary = expect_windows(kafka.bootstrap(), &output, 7, true, Duration::from_secs(90));
    assert_eq!(summary.complete_windows, 7);

    let cps = cluster.rest().get(&format!("/jobs/{id}/checkpoints")).expect("checkpoints");
    assert_eq!(cps["latest"]["restored"]["id"], previous, "{cps}");
    let ex = exceptions(&cluster, &id);
    let entries = ex["exceptionHistory"]["entries"].as_array().expect("entries");
    let skipped = entries
        .iter()
        .filter_map(|e| e["stacktrace"].as_str())
        .find(|m| m.contains(&format!("checkpoint {latest}")) && m.contains("checksum mismatch"))
        .unwrap_or_else(|| panic!("no exception names the skipped checkpoint {latest}: {ex}"));
    assert!(skipped.contains(&format!("checkpoint {previous}")), "it says what was restored instead: {skipped}");
    assert_eq!(cluster.job(&id)["state"], "RUNNING");
    assert_eq!(cluster.metric(&id, "numRestarts"), Some(1), "one restart, no loop");
}

#[test]
fn with_every_retained_checkpoint_corrupt_the_job_fails_and_says_why() {
    let steady = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/jobs/steady_clicks.flow");
    // A short exception history, to see it capped.
    let config = format!("web.exception-history-size: 4\n{RETAIN_THREE}");
    let mut cluster = Cluster::start_with("allcorrupt", 1, 2, &config);
    let id = cluster.submit(&steady, &["-p", "2"]);
    cluster.wait_all_tasks(&id, "RUNNING", Duration::from_secs(30));
    cluster.wait_for("three checkpoints", Duration::from_secs(30), |c| {
        (c.metric(&id, "numberOfCompletedCheckpoints").unwrap_or(0) >= 4).then_some(())
    });
    cluster.kill_taskmanager(0);
    cluster.wait_all_tasks(&id, "SCHEDULED", Duration::from_secs(15));
    let on_disk = checkpoints_on_disk(&cluster, &id);
    assert_eq!(on_disk.len(), 3, "three are retained: {on_disk:?}");
    for (_, dir) in &on_disk {
        assert!(corrupt(dir) >= 1, "{dir:?}");
    }
    cluster.add_taskmanager(2);
    let j = cluster.wait_job_state(&id, "FAILED", Duration::from_secs(30));
    let ex = exceptions(&cluster, &id);
    let root = ex["root-exception"].as_str().unwrap_or("");
    assert!(root.contains("No valid checkpoint"), "{ex}");
    for (n, _) in &on_disk {
        assert!(root.contains(&format!("{n}: ")), "the failure lists checkpoint {n}: {root}");
    }
    // One TaskManager loss, three skipped checkpoints, the failure: five
    // entries, the newest four kept.
    let entries = ex["exceptionHistory"]["entries"].as_array().expect("entries");
    assert_eq!(entries.len(), 4, "{ex}");
    assert_eq!(ex["exceptionHistory"]["truncated"], true, "{ex}");
    assert_eq!(cluster.metric(&id, "numRestarts"), Some(1), "{j}");
    // A failed job's checkpoints stay, to look at or resume from.
    for (_, dir) in &on_disk {
        assert!(dir.join("_metadata").is_file(), "{dir:?}");
    }
}

#[test]
fn state_that_fails_on_the_taskmanager_is_skipped_too() {
    let steady = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/jobs/steady_clicks.flow");
    let mut cluster = Cluster::start_with("tmcorrupt", 1, 2, RETAIN_THREE);
    let id = cluster.submit(&steady, &["-p", "2"]);
    cluster.wait_all_tasks(&id, "RUNNING", Duration::from_secs(30));
    cluster.wait_for("two checkpoints", Duration::from_secs(30), |c| {
        (c.metric(&id, "numberOfCompletedCheckpoints").unwrap_or(0) >= 2).then_some(())
    });
    cluster.kill_taskmanager(0);
    cluster.wait_all_tasks(&id, "SCHEDULED", Duration::from_secs(15));
    let on_disk = checkpoints_on_disk(&cluster, &id);
    let (latest, previous) = (on_disk[0].0, on_disk[1].0);
    assert!(replace_with_undecodable(&on_disk[0].1) >= 1);
    cluster.add_taskmanager(2);
    // The TaskManager cannot decode it and says the state is corrupt: the
    // job restarts once more, from the checkpoint before.
    cluster.wait_for("a restore of the checkpoint before", Duration::from_secs(60), |c| {
        let cps = c.rest().get(&format!("/jobs/{id}/checkpoints")).ok()?;
        (cps["latest"]["restored"]["id"] == previous).then_some(())
    });
    cluster.wait_all_tasks(&id, "RUNNING", Duration::from_secs(30));
    let ex = exceptions(&cluster, &id);
    let entries = ex["exceptionHistory"]["entries"].as_array().expect("entries");
    assert!(
        entries
            .iter()
            .filter_map(|e| e["stacktrace"].as_str())
            .any(|m| m.contains(&format!("Skipped checkpoint {latest}: restoring it failed on a TaskManager"))
                && m.contains("truncated or corrupt")),
        "{ex}"
    );
    // Stays running: no second failure on the same checkpoint.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(cluster.job(&id)["state"], "RUNNING");
    assert_eq!(cluster.metric(&id, "numRestarts"), Some(2));
}
