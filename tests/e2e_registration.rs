//! End to end: a TaskManager's registration identity, and the heartbeat
//! defaults.
//!
//! A second TaskManager process that registers under the resource id of a
//! live one is refused and exits; the live one keeps its registration, its
//! slots and its checkpoints. Once that TaskManager is truly gone (here:
//! SIGKILLed, or SIGSTOPped past `heartbeat.timeout`), a new process may
//! take the id, and the job fails over to it with every window still 1000;
//! a stopped one that wakes up does not take the id back.

mod support;

use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::cluster::{flowc_bin, signal, Cluster, Scratch};
use support::kafka::Kafka;
use support::playground::{click_count_job, click_topics, expect_windows, load_events, START_MS};

const FIRST: u64 = 36_000; // 6 windows
const MORE: u64 = 12_000; // 2 more
const TM_ID: &str = "tm-busy";

/// The registered TaskManagers: (id, pid, slots, free slots).
fn taskmanagers(cluster: &Cluster) -> Vec<(String, u64, u64, u64)> {
    let list = cluster.rest().get("/taskmanagers").expect("GET /taskmanagers");
    list["taskmanagers"]
        .as_array()
        .expect("taskmanagers")
        .iter()
        .map(|t| {
            let id = t["id"].as_str().unwrap_or("").to_string();
            let pid =
                cluster.rest().get(&format!("/taskmanagers/{id}")).ok().and_then(|d| d["pid"].as_u64()).unwrap_or(0);
            (id, pid, t["slotsNumber"].as_u64().unwrap_or(0), t["freeSlots"].as_u64().unwrap_or(0))
        })
        .collect()
}

/// The job runs all its tasks on the one TaskManager `TM_ID` of process
/// `pid`, which shows both its slots used: no slot is free while a task
/// holds it.
fn check_slots_held(cluster: &Cluster, job_id: &str, pid: u32) {
    let tms = taskmanagers(cluster);
    assert_eq!(tms, vec![(TM_ID.to_string(), pid as u64, 2, 0)], "the TaskManagers");
    let job = cluster.job(job_id);
    assert_eq!(job["state"], "RUNNING", "{job}");
    let total: u64 = job["status-counts"].as_object().expect("counts").values().filter_map(Value::as_u64).sum();
    assert_eq!(job["status-counts"]["RUNNING"].as_u64(), Some(total), "{job}");
}

/// The click job at p=2 on one TaskManager `TM_ID` with two slots, past
/// its first 5 windows (of the 6 loaded), with both slots shown held.
struct Busy {
    cluster: Cluster,
    id: String,
    first: usize,
    first_pid: u32,
    input: String,
    output: String,
}

fn busy(name: &str) -> Busy {
    let kafka = Kafka::shared();
    let (input, output) = click_topics(kafka, name, FIRST);
    let mut cluster = Cluster::jobmanager_only(name);
    let first = cluster.add_taskmanager_with(2, &same_id());
    cluster.wait_for_taskmanagers(1);
    let job = click_count_job(&cluster.scratch.0, &input, &output);
    let id =
        cluster.submit(&job, &["-p", "2", "--bootstrap.servers", kafka.bootstrap(), "--checkpointing", "--event-time"]);
    cluster.wait_all_tasks(&id, "RUNNING", Duration::from_secs(30));
    expect_windows(kafka.bootstrap(), &output, 5, true, Duration::from_secs(60));
    let first_pid = cluster.taskmanager_pid(first);
    check_slots_held(&cluster, &id, first_pid);
    Busy { cluster, id, first, first_pid, input, output }
}

fn same_id() -> [String; 1] {
    [format!("taskmanager.resource-id={TM_ID}")]
}

/// A new process with the id `TM_ID` comes to hold it, and the job runs on
/// it with both its slots shown held; its index and pid.
fn successor_takes_over(cluster: &mut Cluster, id: &str) -> (usize, u32) {
    let successor = cluster.add_taskmanager_with(2, &same_id());
    let pid = cluster.taskmanager_pid(successor);
    cluster.wait_for("the new process to hold the id", Duration::from_secs(30), |c| {
        taskmanagers(c).iter().any(|t| t.0 == TM_ID && t.1 == pid as u64).then_some(())
    });
    cluster.wait_all_tasks(id, "RUNNING", Duration::from_secs(30));
    check_slots_held(cluster, id, pid);
    (successor, pid)
}

/// Loads two more windows: all 7 count 1000 after the job's one restart;
/// the job's exceptions.
fn two_more_windows_after_one_restart(cluster: &Cluster, id: &str, input: &str, output: &str) -> Value {
    let kafka = Kafka::shared();
    load_events(kafka.bootstrap(), input, START_MS + 6 * 15_000, MORE);
    let summary = expect_windows(kafka.bootstrap(), output, 7, true, Duration::from_secs(60));
    assert_eq!(summary.complete_windows, 7);
    assert_eq!(cluster.metric(id, "numRestarts"), Some(1));
    cluster.rest().get(&format!("/jobs/{id}/exceptions")).expect("exceptions")
}

#[test]
fn a_second_taskmanager_with_a_live_taskmanagers_id_is_refused_and_exits() {
    let Busy { mut cluster, id, first, first_pid, input, output } = busy("dupid");
    let completed = |c: &Cluster| c.metric(&id, "numberOfCompletedCheckpoints").unwrap_or(0);

    // A second process with the same id: refused, and it exits saying why.
    let duplicate = cluster.add_taskmanager_with(2, &same_id());
    let status = cluster.wait_taskmanager_exit(duplicate, Duration::from_secs(30));
    let log = cluster.taskmanager_log(duplicate);
    let status = status.unwrap_or_else(|| panic!("the duplicate TaskManager is still running:\n{log}"));
    assert!(!status.success(), "the duplicate exited with {status}:\n{log}");
    assert!(log.contains("refused this TaskManager") && log.contains("in use by a live TaskManager"), "{log}");
    assert!(cluster.jobmanager_log().contains(&format!("TaskManager id `{TM_ID}` is in use by a live TaskManager")));
    // The live TaskManager keeps its registration and its slots…
    for _ in 0..10 {
        check_slots_held(&cluster, &id, first_pid);
        std::thread::sleep(Duration::from_millis(200));
    }
    // …and its barriers: checkpoints keep completing (every second).
    let before = completed(&cluster);
    let started = Instant::now();
    cluster.wait_for("three more checkpoints", Duration::from_secs(15), |c| (completed(c) >= before + 3).then_some(()));
    eprintln!("three checkpoints completed in {:?} after the refusal", started.elapsed());
    assert_eq!(cluster.metric(&id, "numRestarts"), Some(0));

    // The TaskManager dies: a new process may take its id, and the job fails over to it.
    cluster.kill_taskmanager(first);
    successor_takes_over(&mut cluster, &id);
    let ex = two_more_windows_after_one_restart(&cluster, &id, &input, &output);
    assert!(ex["root-exception"].as_str().unwrap_or("").contains(TM_ID), "{ex}");
}

/// Wakes a stopped process when dropped, so that a failing test leaves no
/// stopped process behind (the cluster then kills it).
struct Stopped(u32);

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-CONT", &self.0.to_string()]).status();
    }
}

#[test]
fn a_taskmanager_that_misses_its_heartbeats_is_replaced_and_cannot_take_its_id_back() {
    // The test clusters' heartbeats: every 1 s, lost after 5 s.
    let Busy { mut cluster, id, first, first_pid, input, output } = busy("hbgone");
    let completed = |c: &Cluster| c.metric(&id, "numberOfCompletedCheckpoints").unwrap_or(0);

    // The TaskManager stalls: its connection stays open, its heartbeats stop.
    signal(first_pid, "-STOP");
    let stopped = Stopped(first_pid);
    std::thread::sleep(Duration::from_secs(7));
    let (successor, successor_pid) = successor_takes_over(&mut cluster, &id);
    assert!(
        cluster.taskmanager_exited(successor).is_none(),
        "the successor was refused:\n{}",
        cluster.taskmanager_log(successor)
    );
    let before = completed(&cluster);
    cluster.wait_for("three checkpoints on the successor", Duration::from_secs(20), |c| {
        (completed(c) >= before + 3).then_some(())
    });

    // The stalled process wakes up: it is refused and exits, the id stays the successor's.
    drop(stopped);
    let status = cluster.wait_taskmanager_exit(first, Duration::from_secs(30));
    let log = cluster.taskmanager_log(first);
    let status = status.unwrap_or_else(|| panic!("the woken TaskManager is still running:\n{log}"));
    assert!(!status.success(), "the woken TaskManager exited with {status}:\n{log}");
    assert!(log.contains("in use by a live TaskManager"), "{log}");
    for _ in 0..10 {
        check_slots_held(&cluster, &id, successor_pid);
        std::thread::sleep(Duration::from_millis(200));
    }
    let ex = two_more_windows_after_one_restart(&cluster, &id, &input, &output);
    assert!(ex.to_string().contains("no heartbeat for"), "the failover names the missed heartbeats: {ex}");
}

/// A JobManager with no configuration file: library defaults only.
struct BareJobManager {
    child: std::process::Child,
    rest: String,
    _scratch: Scratch,
}

impl Drop for BareJobManager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn bare_jobmanager(name: &str) -> BareJobManager {
    let scratch = Scratch::new(name);
    let ports = support::free_ports(2);
    let child = Command::new(flowc_bin())
        .arg("jobmanager")
        .args(["-D", &format!("rest.port={}", ports[0]), "-D", &format!("jobmanager.rpc.port={}", ports[1])])
        .args(["-D", &format!("web.upload.dir={}", scratch.0.join("uploads").display())])
        .env("FLOWC_CONF_DIR", scratch.0.join("no-conf"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting flowc jobmanager");
    BareJobManager { child, rest: format!("127.0.0.1:{}", ports[0]), _scratch: scratch }
}

#[test]
fn heartbeats_default_to_flinks_10_s_interval_and_50_s_timeout() {
    let jm = bare_jobmanager("heartbeat-defaults");
    let rest = flowc_runtime::client::rest::Rest::new(jm.rest.clone());
    let deadline = Instant::now() + Duration::from_secs(30);
    let config = loop {
        if let Ok(c) = rest.get("/jobmanager/config") {
            break c;
        }
        assert!(Instant::now() < deadline, "the JobManager did not come up");
        std::thread::sleep(Duration::from_millis(100));
    };
    let value =
        |key: &str| config.as_array().expect("a list").iter().find(|e| e["key"] == key).map(|e| e["value"].clone());
    assert_eq!(value("heartbeat.interval"), Some(Value::from("10000")), "{config}");
    assert_eq!(value("heartbeat.timeout"), Some(Value::from("50000")), "{config}");
}
