//! End to end against a real ZooKeeper: the HA job store with its pointers
//! in ZooKeeper (`flowc_runtime::jobmanager::ha_store`), and two
//! JobManagers (in this process, each on its own ZooKeeper sessions) of
//! which one leads: the standby's REST answers with the leader's answers,
//! and when the leader resigns the standby leads and recovers the job.

mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use flowc_runtime::checkpoint::CheckpointRef;
use flowc_runtime::client::rest::Rest;
use flowc_runtime::cluster::{start_jobmanager, JobManagerHandle};
use flowc_runtime::config::Config;
use flowc_runtime::ha::zookeeper::{connect, Contender, Leadership};
use flowc_runtime::ha::HaConfig;
use flowc_runtime::ids::{JobId, JobStatus};
use flowc_runtime::jobmanager::checkpoint_store::CheckpointStore;
use flowc_runtime::jobmanager::ha_store::{HaJobs, Submission};
use flowc_runtime::jobmanager::{RestoreRequest, Role};
use support::cluster::Scratch;
use support::zookeeper::{unique_cluster_id, ZooKeeper};

fn ha_settings(zk: &ZooKeeper, cluster_id: &str, storage: &Path) -> Config {
    let mut c = Config::default();
    c.set("high-availability.type", "zookeeper");
    c.set("high-availability.zookeeper.quorum", zk.connect());
    c.set("high-availability.storageDir", storage.display().to_string());
    c.set("high-availability.cluster-id", cluster_id);
    c.set("high-availability.zookeeper.client.session-timeout", "3000");
    c
}

fn files_under(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| rd.flatten().filter_map(|e| e.file_name().into_string().ok()).collect())
        .unwrap_or_default();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_keeps_pointers_in_zookeeper_and_checked_payloads_in_files() {
    let zk = ZooKeeper::shared();
    let scratch = Scratch::new("ha-store");
    let cluster_id = unique_cluster_id("store");
    let ha = HaConfig::from_config(&ha_settings(zk, &cluster_id, &scratch.0)).expect("valid");
    let jobs = HaJobs::from_config(&ha, &Default::default()).expect("a store").expect("a store");
    let (id, other) = (JobId::random(), JobId::random());
    let submission = Submission { name: "J".into(), submitted_ms: 5, plan: vec![1, 2, 3], artifacts: vec![] };
    let mut checkpoints = CheckpointStore::new(None);
    let first = checkpoints.take_id();
    checkpoints.add(CheckpointRef { id: first, dir: "/c/chk-1".into(), savepoint: false }, 1);
    // Blocking calls: off the test's runtime threads.
    let (store, sub, cps) = (jobs.clone(), submission.clone(), checkpoints.clone());
    tokio::task::spawn_blocking(move || {
        store.put_submission(id, &sub).expect("put");
        store.put_checkpoints(id, &CheckpointStore::new(None)).expect("put");
        store.put_checkpoints(id, &cps).expect("replaced");
        store.put_submission(other, &sub).expect("put");
    })
    .await
    .expect("stored");
    let store = jobs.clone();
    let read = tokio::task::spawn_blocking(move || store.read_all()).await.expect("read").expect("read");
    let mine = read.iter().find(|j| j.id == id).expect("the job is there");
    assert_eq!(mine.submission.as_ref(), Some(&submission));
    assert_eq!(mine.checkpoints.as_ref(), Some(&checkpoints));
    assert_eq!(read.len(), 2);

    // In ZooKeeper, a pointer per entry under the cluster's node; in the
    // storageDir, one payload per entry (the replaced one is gone).
    let client = connect(&ha).await.expect("a session");
    let base = format!("/flink/{cluster_id}");
    let (data, _) = client.get_data(&format!("{base}/checkpoints/{id}")).await.expect("a pointer node");
    let pointer: serde_json::Value = serde_json::from_slice(&data).expect("JSON");
    let path = pointer["path"].as_str().expect("a path").to_owned();
    assert!(path.starts_with(&format!("jobs/{id}/checkpoints-")), "{pointer}");
    assert!(client.get_data(&format!("{base}/jobgraphs/{id}")).await.is_ok());
    let job_dir = scratch.0.join(&cluster_id).join("jobs").join(id.to_string());
    let files = files_under(&job_dir);
    assert_eq!(files.len(), 2, "{files:?}");

    // A payload changed on disk is refused: the job is left out, the other
    // one is still recovered.
    let payload = scratch.0.join(&cluster_id).join(&path);
    let mut bytes = std::fs::read(&payload).expect("the payload");
    bytes.push(b'x');
    std::fs::write(&payload, bytes).expect("write");
    let store = jobs.clone();
    let read = tokio::task::spawn_blocking(move || store.read_all()).await.expect("read").expect("read");
    assert_eq!(read.iter().map(|j| j.id).collect::<Vec<_>>(), vec![other]);

    // Removed: pointers and payloads.
    let store = jobs.clone();
    tokio::task::spawn_blocking(move || store.remove(id)).await.expect("removed").expect("removed");
    assert!(client.get_data(&format!("{base}/checkpoints/{id}")).await.is_err());
    assert!(client.get_data(&format!("{base}/jobgraphs/{id}")).await.is_err());
    assert!(!job_dir.exists());

    // Guarded by a leader's election node: writes succeed while it exists
    // and fail once it is gone, leaving the pointer as it was.
    let contender = Arc::new(Contender::new(&ha, "127.0.0.1:1", "http://127.0.0.1:2"));
    let mut leadership = contender.leadership();
    let running = contender.clone();
    let task = tokio::spawn(async move { running.run().await });
    let led = tokio::time::timeout(Duration::from_secs(10), leadership.wait_for(|l| *l != Leadership::Standby))
        .await
        .is_ok_and(|r| r.is_ok());
    assert!(led, "the contender leads");
    let latch = contender.latch_node().expect("a leader has its election node");
    assert!(latch.starts_with(&format!("{base}/leader/latch/latch-")), "{latch}");
    jobs.guard(Some(latch));
    let store = jobs.clone();
    let cps = checkpoints.clone();
    tokio::task::spawn_blocking(move || store.put_checkpoints(other, &cps)).await.expect("ran").expect("guarded write");
    contender.resign();
    task.await.expect("resigned");
    let store = jobs.clone();
    let refused = tokio::task::spawn_blocking(move || store.put_checkpoints(other, &CheckpointStore::new(None)))
        .await
        .expect("ran")
        .expect_err("a deposed leader's write");
    assert!(refused.to_string().contains("no longer leads"), "{refused}");
    let store = jobs.clone();
    let read = tokio::task::spawn_blocking(move || store.read_all()).await.expect("read").expect("read");
    let kept = read.iter().find(|j| j.id == other).and_then(|j| j.checkpoints.clone());
    assert_eq!(kept, Some(checkpoints), "the pointer did not move");
    let store = jobs.clone();
    let refused = tokio::task::spawn_blocking(move || store.remove(other)).await.expect("ran");
    assert!(refused.is_err(), "a deposed leader removes nothing");
    jobs.guard(None);
    let store = jobs.clone();
    tokio::task::spawn_blocking(move || store.remove(other)).await.expect("ran").expect("removed");
}

/// A datagen job at parallelism 1 that checkpoints every second.
fn plan() -> Vec<u8> {
    let src = flowc_dsl::SourceFile::new(
        "t.flow",
        r#"
        job "HA"
        set execution.checkpointing.interval = 1s
        schema N { n: long }
        source datagen { schema: N } | sink discard
        "#,
    );
    let options = flowc_compiler::CheckOptions { parallelism: Some(1), ..Default::default() };
    flowc_compiler::plan_file::to_bytes(&flowc_compiler::compile(&src, &options).expect("compiles").graph)
}

fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn jobmanager(rt: &tokio::runtime::Runtime, settings: &Config, scratch: &Path) -> JobManagerHandle {
    let mut c = settings.clone();
    c.set("rest.port", "0");
    c.set("jobmanager.rpc.port", "0");
    c.set("state.checkpoints.dir", scratch.join("checkpoints").display().to_string());
    c.set("flowc.security.allowed-directories", scratch.display().to_string());
    rt.block_on(start_jobmanager(c)).expect("a JobManager")
}

#[test]
fn the_standby_answers_with_the_leaders_rest_and_recovers_the_job_when_it_leads() {
    let zk = ZooKeeper::shared();
    let scratch = Scratch::new("ha-jm");
    let settings = ha_settings(zk, &unique_cluster_id("jm"), &scratch.0.join("ha"));
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let first = jobmanager(&rt, &settings, &scratch.0);
    wait_for("the first JobManager to lead", Duration::from_secs(20), || first.jm.is_leader().then_some(()));
    let second = jobmanager(&rt, &settings, &scratch.0);
    let (rest1, rest2) = (Rest::new(first.rest.to_string()), Rest::new(second.rest.to_string()));
    // Until the standby knows the leader, Flink's 503; then the leader's answers.
    wait_for("the standby to know the leader", Duration::from_secs(20), || {
        matches!(second.jm.role(), Role::Standby(Some(_))).then_some(())
    });
    assert!(!second.jm.is_leader());

    let id = first.jm.submit(plan(), RestoreRequest::default()).expect("submitted to the leader");
    let refused = second.jm.submit(plan(), RestoreRequest::default()).expect_err("a standby takes no job");
    assert!(refused.to_string().contains("standby"), "{refused}");
    let listed = |rest: &Rest| -> Vec<(String, String)> {
        let v = rest.get("/jobs").expect("GET /jobs");
        v["jobs"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|j| (j["id"].as_str().unwrap_or("").to_owned(), j["status"].as_str().unwrap_or("").to_owned()))
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(listed(&rest1), vec![(id.to_string(), "RUNNING".to_owned())]);
    assert_eq!(listed(&rest2), listed(&rest1), "the standby answers with the leader's answer");
    assert!(second.jm.jobs().is_empty(), "the standby itself runs nothing");

    // The leader resigns: it suspends and drops its job at once; the standby
    // leads and recovers it under the same id.
    let started = Instant::now();
    first.contender.as_ref().expect("a contender").resign();
    wait_for("the first JobManager to step down", Duration::from_secs(10), || (!first.jm.is_leader()).then_some(()));
    assert!(first.jm.jobs().is_empty(), "a deposed leader keeps no job");
    wait_for("the second JobManager to lead", Duration::from_secs(20), || second.jm.is_leader().then_some(()));
    eprintln!("leadership moved in {} ms", started.elapsed().as_millis());
    let recovered = wait_for("the job to be recovered", Duration::from_secs(10), || {
        second.jm.jobs().into_iter().find(|j| j.id == id)
    });
    assert_eq!(recovered.status, JobStatus::RUNNING);
    assert_eq!(listed(&rest2), vec![(id.to_string(), "RUNNING".to_owned())]);
    second.contender.as_ref().expect("a contender").resign();
    rt.shutdown_timeout(Duration::from_secs(2));
}
