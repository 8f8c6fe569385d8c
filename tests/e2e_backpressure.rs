//! End to end: backpressure. An unpaced source feeds a pipeline whose
//! window stage is slower than the source; bounded channels make the source
//! wait, so the TaskManager's memory stays flat instead of buffering
//! without bound, and the job keeps checkpointing while it is under load.

mod support;

use std::path::Path;
use std::time::Duration;
use support::cluster::Cluster;

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("VmRSS")
}

#[test]
fn an_unpaced_source_is_held_back_and_memory_stays_flat() {
    let cluster = Cluster::start("backpressure", 1, 2);
    let job = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/jobs/unbounded_clicks.flow");
    let id = cluster.submit(&job, &["-p", "2"]);
    cluster.wait_all_tasks(&id, "RUNNING", Duration::from_secs(30));
    let pid = cluster.taskmanager_pid(0);
    std::thread::sleep(Duration::from_secs(2));
    let early = rss_kib(pid);
    let read_early = cluster.job(&id)["vertices"][1]["metrics"]["read-records"].as_u64().unwrap_or(0);
    std::thread::sleep(Duration::from_secs(6));
    let late = rss_kib(pid);
    let read_late = cluster.job(&id)["vertices"][1]["metrics"]["read-records"].as_u64().unwrap_or(0);
    // It is really moving records ...
    assert!(read_late > read_early + 100_000, "records read: {read_early} then {read_late}");
    // ... and holds at most a few bounded queues of them: no growth beyond noise.
    assert!(late < early + 16 * 1024, "TaskManager RSS grew from {early} KiB to {late} KiB under load");
    assert!(late < 256 * 1024, "TaskManager RSS is {late} KiB");
    // Checkpoint barriers get through the full queues too.
    let done = cluster.metric(&id, "numberOfCompletedCheckpoints").unwrap_or(0);
    cluster.wait_for("checkpoints under load", Duration::from_secs(20), |c| {
        (c.metric(&id, "numberOfCompletedCheckpoints").unwrap_or(0) >= done + 2).then_some(())
    });
}
