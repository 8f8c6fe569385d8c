//! The shell's own tests, with real files and channels: a job's commands
//! carried out on the registry, the connections and the checkpoint files;
//! an HA job store that fails or is slow; leadership lost and regained
//! while an outbox drains; a lost TaskManager.

use super::*;
use crate::checkpoint::format::{TaskEntry as AckEntry, METADATA_FILE};
use crate::ids::TaskStatus;
use crate::jobmanager::{CancelError, RestoreRequest, SavepointError};
use crate::registry::Session;
use crate::rpc::Registration;
use crate::rpc::{FailureKind, TaskUpdate};
use std::path::{Path, PathBuf};
use tokio::sync::mpsc;

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("flowc-shell-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// A datagen job at parallelism 2 that checkpoints every 50 ms.
fn plan() -> Vec<u8> {
    let src = flowc_dsl::SourceFile::new(
        "t.flow",
        r#"
        job "T"
        set execution.checkpointing.interval = 50ms
        schema N { n: long }
        source datagen { schema: N } | filter n % 2 == 0 | sink discard
        "#,
    );
    let options = flowc_compiler::CheckOptions { parallelism: Some(2), ..Default::default() };
    flowc_compiler::plan_file::to_bytes(&flowc_compiler::compile(&src, &options).expect("compiles").graph)
}

fn register(jm: &JobManager, tm: &str) -> mpsc::UnboundedReceiver<ToTaskManager> {
    let (tx, rx) = mpsc::unbounded_channel();
    let reg = Registration {
        protocol: rpc::PROTOCOL_VERSION,
        tm_id: tm.into(),
        data_addr: "127.0.0.1:1".into(),
        slots: 2,
        cpu_cores: 1,
        physical_memory: 0,
        pid: 1,
        instance: "i".into(),
        nonce: crate::security::secret::nonce(),
        leader_session: None,
    };
    let session = Session { tm_id: tm.into(), instance: "i".into(), connection: 1 };
    jm.register_taskmanager(&reg, &session, tx).expect("registered");
    rx
}

fn update(id: JobId, attempt: Attempt, subtask: SubtaskId, status: TaskStatus) -> TaskUpdate {
    TaskUpdate { job_id: id, attempt, subtask, status, failure: None, kind: FailureKind::Other, metrics: None }
}

fn ack(id: JobId, attempt: Attempt, subtask: SubtaskId, checkpoint_id: u64, ok: bool) -> CheckpointAck {
    let entry = AckEntry {
        vertex: Default::default(),
        vertex_name: "v".into(),
        subtask: subtask.subtask,
        parallelism: 2,
        operators: Vec::new(),
        file: None,
        size: 1,
    };
    let result = if ok { Ok(entry) } else { Err("disk full".into()) };
    CheckpointAck { job_id: id, attempt, subtask, checkpoint_id, result }
}

/// The next barrier sent to the TaskManager, after the interval.
fn next_barrier(jm: &Arc<JobManager>, rx: &mut mpsc::UnboundedReceiver<ToTaskManager>) -> crate::checkpoint::Barrier {
    std::thread::sleep(Duration::from_millis(60));
    jm.tick();
    loop {
        match rx.try_recv() {
            Ok(ToTaskManager::TriggerCheckpoint { barrier, .. }) => return barrier,
            Ok(_) => {}
            Err(e) => panic!("no barrier: {e}"),
        }
    }
}

#[test]
fn the_shell_carries_out_a_jobs_commands_on_the_registry_the_connections_and_the_files() {
    let dir = scratch("commands");
    let mut config = Config::default();
    config.set("state.checkpoints.dir", dir.display().to_string());
    let jm = JobManager::new(config).expect("jobmanager");
    let mut rx = register(&jm, "tm-1");
    let id = jm.submit(plan(), RestoreRequest::default()).expect("submitted");
    // No Kafka, two free slots: deployed at once, into both slots.
    let Ok(ToTaskManager::Deploy(d)) = rx.try_recv() else { panic!("not deployed") };
    assert_eq!(jm.taskmanagers()[0].free_slots, 0);
    for s in &d.local {
        jm.on_task_update(update(id, d.attempt, *s, TaskStatus::RUNNING));
    }
    let all = d.local.clone();
    // A checkpoint: its directory is made before its barrier goes out,
    // `_metadata` is written when all acked, and the sinks are told.
    let first = next_barrier(&jm, &mut rx);
    assert!(Path::new(&first.dir).is_dir());
    for s in &all {
        jm.on_checkpoint_ack(ack(id, d.attempt, *s, first.id, true));
    }
    assert!(Path::new(&first.dir).join(METADATA_FILE).is_file());
    assert!(
        matches!(rx.try_recv(), Ok(ToTaskManager::CheckpointComplete { checkpoint_id, .. }) if checkpoint_id == first.id)
    );
    // A declined one goes; what a late writer leaves of it goes with the next completion.
    let declined = next_barrier(&jm, &mut rx);
    jm.on_checkpoint_ack(ack(id, d.attempt, all[0], declined.id, false));
    assert!(!Path::new(&declined.dir).exists());
    std::fs::create_dir_all(&declined.dir).expect("late writer");
    std::fs::write(Path::new(&declined.dir).join("v-1.state"), b"late").expect("late writer");
    let next = next_barrier(&jm, &mut rx);
    for s in &all {
        jm.on_checkpoint_ack(ack(id, d.attempt, *s, next.id, true));
    }
    assert!(!Path::new(&declined.dir).exists(), "swept");
    // One retained (Flink's default): the newer one replaced the first.
    assert!(Path::new(&next.dir).join(METADATA_FILE).is_file(), "retained");
    assert!(!Path::new(&first.dir).exists(), "subsumed once the next one was durable");
    let detail = jm.job(id).expect("listed");
    assert_eq!((detail.checkpoints.counts.completed, detail.checkpoints.counts.failed), (2, 1));
    // Cancelled: the TaskManager is told, the slots come back once the
    // tasks have ended, and the checkpoints go (DELETE_ON_CANCELLATION).
    jm.cancel(id).expect("cancel");
    assert!(std::iter::from_fn(|| rx.try_recv().ok()).any(|m| matches!(m, ToTaskManager::Cancel { .. })));
    assert_eq!(jm.taskmanagers()[0].free_slots, 0, "held while the tasks are cancelled");
    for s in &all {
        jm.on_task_update(update(id, d.attempt, *s, TaskStatus::CANCELED));
    }
    assert_eq!(jm.job(id).map(|j| j.summary.status), Some(crate::ids::JobStatus::CANCELED));
    assert_eq!(jm.taskmanagers()[0].free_slots, 2);
    assert!(!dir.join(id.to_string()).exists());
    assert!(matches!(jm.cancel(id), Err(CancelError::Terminal(..))));
    let _ = std::fs::remove_dir_all(&dir);
}

/// An HA job store in memory whose checkpoint writes fail while armed,
/// or wait at a gate (a slow ZooKeeper).
#[derive(Default)]
struct FailingStore {
    entries: Mutex<BTreeMap<(JobId, &'static str), Vec<u8>>>,
    refuse_checkpoints: std::sync::atomic::AtomicBool,
    gate: Mutex<Option<std::sync::mpsc::Receiver<()>>>,
    /// Writes begun, under way, and the most under way at once.
    puts: std::sync::atomic::AtomicUsize,
    putting: std::sync::atomic::AtomicUsize,
    most_at_once: std::sync::atomic::AtomicUsize,
}

impl crate::jobmanager::ha_store::JobStore for FailingStore {
    fn describe(&self) -> String {
        "a test store".into()
    }

    fn put(
        &self,
        job: JobId,
        entry: crate::jobmanager::ha_store::Entry,
        payload: &[u8],
    ) -> Result<(), crate::jobmanager::ha_store::StoreError> {
        let refuse = self.refuse_checkpoints.load(std::sync::atomic::Ordering::SeqCst);
        if refuse && entry == crate::jobmanager::ha_store::Entry::Checkpoints {
            return Err(crate::jobmanager::ha_store::StoreError::ZooKeeper("connection loss".into()));
        }
        use std::sync::atomic::Ordering::SeqCst;
        self.puts.fetch_add(1, SeqCst);
        let now = self.putting.fetch_add(1, SeqCst) + 1;
        self.most_at_once.fetch_max(now, SeqCst);
        let gate = self.gate.lock().expect("gate").take();
        if let Some(opened) = gate {
            let _ = opened.recv_timeout(Duration::from_secs(10));
        }
        self.entries.lock().expect("entries").insert((job, entry.name()), payload.to_vec());
        self.putting.fetch_sub(1, SeqCst);
        Ok(())
    }

    fn get(
        &self,
        job: JobId,
        entry: crate::jobmanager::ha_store::Entry,
    ) -> Result<Option<Vec<u8>>, crate::jobmanager::ha_store::StoreError> {
        Ok(self.entries.lock().expect("entries").get(&(job, entry.name())).cloned())
    }

    fn jobs(&self) -> Result<Vec<JobId>, crate::jobmanager::ha_store::StoreError> {
        Ok(self.entries.lock().expect("entries").keys().map(|(j, _)| *j).collect())
    }

    fn remove(&self, job: JobId) -> Result<(), crate::jobmanager::ha_store::StoreError> {
        self.entries.lock().expect("entries").retain(|(j, _), _| *j != job);
        Ok(())
    }
}

/// A JobManager whose HA job store is `FailingStore`, the test plan
/// deployed to one TaskManager and every task RUNNING.
#[allow(clippy::type_complexity)]
fn running_with_store(
    name: &str,
) -> (
    PathBuf,
    Arc<FailingStore>,
    Arc<JobManager>,
    mpsc::UnboundedReceiver<ToTaskManager>,
    JobId,
    Box<crate::rpc::Deployment>,
) {
    let dir = scratch(name);
    let mut config = Config::default();
    config.set("state.checkpoints.dir", dir.display().to_string());
    let store = Arc::new(FailingStore::default());
    let ha = crate::jobmanager::ha_store::HaJobs::new(store.clone());
    let jm = JobManager::with_ha(config, Some(ha), true).expect("jobmanager");
    let mut rx = register(&jm, "tm-1");
    let id = jm.submit(plan(), RestoreRequest::default()).expect("submitted");
    let Ok(ToTaskManager::Deploy(d)) = rx.try_recv() else { panic!("not deployed") };
    for s in &d.local {
        jm.on_task_update(update(id, d.attempt, *s, TaskStatus::RUNNING));
    }
    (dir, store, jm, rx, id, d)
}

#[test]
fn a_checkpoint_whose_pointer_cannot_be_stored_is_not_committed_by_any_sink() {
    let (dir, store, jm, mut rx, id, d) = running_with_store("unstored");
    // The store fails from the barrier on: the checkpoint's id was stored.
    let barrier = next_barrier(&jm, &mut rx);
    store.refuse_checkpoints.store(true, std::sync::atomic::Ordering::SeqCst);
    for s in &d.local {
        jm.on_checkpoint_ack(ack(id, d.attempt, *s, barrier.id, true));
    }
    let sent: Vec<ToTaskManager> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
    assert!(
        !sent.iter().any(|m| matches!(m, ToTaskManager::CheckpointComplete { .. })),
        "a sink was told to commit a checkpoint whose pointer is not durable: {sent:?}"
    );
    assert!(!Path::new(&barrier.dir).exists(), "the failed checkpoint's directory goes");
    let detail = jm.job(id).expect("listed");
    assert_eq!((detail.checkpoints.counts.completed, detail.checkpoints.counts.failed), (0, 1));
    assert_eq!(detail.summary.status, crate::ids::JobStatus::RUNNING);
    // The store works again: the next one completes and is committed.
    store.refuse_checkpoints.store(false, std::sync::atomic::Ordering::SeqCst);
    let next = next_barrier(&jm, &mut rx);
    for s in &d.local {
        jm.on_checkpoint_ack(ack(id, d.attempt, *s, next.id, true));
    }
    let sent: Vec<ToTaskManager> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
    assert!(
        sent.iter()
            .any(|m| matches!(m, ToTaskManager::CheckpointComplete { checkpoint_id, .. } if *checkpoint_id == next.id)),
        "{sent:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_slow_ha_store_is_written_without_the_lock_and_the_sinks_commit_after_it() {
    let (dir, store, jm, mut rx, id, d) = running_with_store("slow-store");
    let barrier = next_barrier(&jm, &mut rx);
    // The completed checkpoint's pointer write hangs (ZooKeeper is slow).
    let (open, gate) = std::sync::mpsc::channel();
    *store.gate.lock().expect("gate") = Some(gate);
    let (acking, subtasks, attempt) = (jm.clone(), d.local.clone(), d.attempt);
    let writer = std::thread::spawn(move || {
        for s in &subtasks {
            acking.on_checkpoint_ack(ack(id, attempt, *s, barrier.id, true));
        }
    });
    // Meanwhile the JobManager answers: its lock is free.
    let (answered, answer) = std::sync::mpsc::channel();
    let reader = jm.clone();
    std::thread::spawn(move || {
        let _ = answered.send(reader.job(id).map(|j| j.checkpoints.counts.completed));
    });
    let completed = answer.recv_timeout(Duration::from_secs(5)).expect("the lock is held during the write");
    assert_eq!(completed, Some(0), "not complete before its pointer is durable");
    assert!(
        !std::iter::from_fn(|| rx.try_recv().ok()).any(|m| matches!(m, ToTaskManager::CheckpointComplete { .. })),
        "a sink was told to commit before the pointer was written"
    );
    open.send(()).expect("open the gate");
    writer.join().expect("the acks");
    let sent: Vec<ToTaskManager> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
    assert!(
        sent.iter().any(
            |m| matches!(m, ToTaskManager::CheckpointComplete { checkpoint_id, .. } if *checkpoint_id == barrier.id)
        ),
        "{sent:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_leader_that_loses_and_regains_leadership_never_drains_one_jobs_outbox_twice_at_once() {
    use std::sync::atomic::Ordering::SeqCst;
    let (dir, store, jm, mut rx, id, d) = running_with_store("regained");
    let barrier = next_barrier(&jm, &mut rx);
    // The completed checkpoint's pointer write hangs in its drain.
    let (open, gate) = std::sync::mpsc::channel();
    *store.gate.lock().expect("gate") = Some(gate);
    let puts = store.puts.load(SeqCst);
    let (acking, subtasks, attempt) = (jm.clone(), d.local.clone(), d.attempt);
    let old_term = std::thread::spawn(move || {
        for s in &subtasks {
            acking.on_checkpoint_ack(ack(id, attempt, *s, barrier.id, true));
        }
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    while store.putting.load(SeqCst) == 0 {
        assert!(Instant::now() < deadline, "the pointer write never began");
        std::thread::sleep(Duration::from_millis(5));
    }
    // Leadership goes and comes back while it hangs: the job is
    // recovered, and its recovery is persisted by a drain of the new term.
    jm.revoke_leadership(None);
    let regained = jm.clone();
    let new_term = std::thread::spawn(move || regained.grant_leadership(None));
    let deadline = Instant::now() + Duration::from_millis(1500);
    while store.puts.load(SeqCst) < puts + 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let most = store.most_at_once.load(SeqCst);
    open.send(()).expect("open the gate");
    old_term.join().expect("the old term's drain");
    let recovered = new_term.join().expect("the new term's drain");
    assert_eq!(most, 1, "two drains wrote the job's entries at once");
    assert_eq!(recovered.ok(), Some(1));
    // The new term's write went through once the old one had returned.
    assert!(store.puts.load(SeqCst) >= puts + 2);
    assert!(jm.job(id).is_some(), "recovered");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_lost_taskmanager_fails_its_job_over_and_a_new_one_runs_the_next_attempt() {
    let jm = JobManager::new(Config::default()).expect("jobmanager");
    let mut first = register(&jm, "tm-1");
    let id = jm.submit(plan(), RestoreRequest::default()).expect("submitted");
    assert!(matches!(first.try_recv(), Ok(ToTaskManager::Deploy(_))));
    let session = jm.session_of("tm-1").expect("registered");
    jm.on_tm_lost(&session, "its connection closed");
    assert!(jm.taskmanagers().is_empty());
    let detail = jm.job(id).expect("listed");
    assert_eq!(detail.summary.status, crate::ids::JobStatus::RESTARTING);
    assert!(detail.exceptions[0].message.contains("TaskManager tm-1 (127.0.0.1:1) is lost: its connection closed"));
    let refused = jm.trigger_savepoint(id, None, None, None, Default::default());
    assert!(matches!(refused, Err(SavepointError::NotRunning(_, crate::ids::JobStatus::RESTARTING))), "{refused:?}");
    assert!(matches!(jm.savepoint_status(id, "nope"), Err(SavepointError::UnknownTrigger(_))));
    // After the restart delay (1 s for a job that checkpoints), a new
    // TaskManager gets the job's next attempt.
    let mut second = register(&jm, "tm-2");
    let deadline = Instant::now() + Duration::from_secs(10);
    let deployed = loop {
        jm.tick();
        jm.schedule();
        if let Ok(ToTaskManager::Deploy(d)) = second.try_recv() {
            break d;
        }
        assert!(Instant::now() < deadline, "not redeployed");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(deployed.attempt, 2);
    assert_eq!(jm.job(id).map(|j| j.summary.num_restarts), Some(1));
}
