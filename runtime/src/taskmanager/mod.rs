//! The TaskManager process: registers its slots with the JobManager,
//! heartbeats, runs the subtasks it is given, and exchanges records with
//! other TaskManagers over its data port.
//!
//! If the JobManager cannot be reached the TaskManager says so and retries;
//! if the connection is lost, it cancels its tasks and registers again
//! (as the same instance: a random id made at process start). If the
//! JobManager refuses it (see [`crate::tm_rpc`]), it says why and exits.

use crate::checkpoint::storage::Storages;
use crate::checkpoint::Barrier;

use crate::ha::fencing::Fence;
use crate::ids::{Attempt, JobId, SubtaskId};
use crate::metrics::TaskCounters;
use crate::network::Exchange;
use crate::rpc::{self, Registration, TaskMetrics, ToJobManager, ToTaskManager};
use crate::security::internal::InternalSecurity;
use crate::security::paths::AllowedRoots;
use crate::tm_rpc::{self, RegisterError};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

mod build;
mod deploy;
mod metrics;

use build::build_task;
use deploy::{deploy, fetch_artifacts};
use metrics::{collect_metrics, physical_memory, taskmanager_prometheus};

#[derive(Debug, Clone)]
pub struct TaskManagerOptions {
    /// `host:port` of the JobManager's RPC endpoint.
    pub jobmanager: String,
    /// With ZooKeeper high availability: the JobManager to register with
    /// is whichever leads (leader retrieval), not `jobmanager`.
    pub ha: Option<crate::ha::HaConfig>,
    pub slots: u32,
    pub bind: String,
    pub data_port: u16,
    pub resource_id: Option<String>,
    pub heartbeat_interval: Duration,
    /// Where file sinks may write (checked again here, whatever the JobManager checked).
    pub allowed: AllowedRoots,
    /// Mutual TLS and the cluster secret, for the RPC and the data port.
    pub security: InternalSecurity,
    /// How Rust UDFs run, and where their artifacts are cached.
    pub udf: crate::udf::UdfSettings,
    /// The Prometheus reporter (`metrics.reporter.prom.*`), if configured.
    pub prometheus: Option<crate::prometheus::ReporterConfig>,
    /// Where state files are written and read (files or `s3://`).
    pub storage: Storages,
}

/// Why a TaskManager stopped.
#[derive(Debug, thiserror::Error)]
pub enum TaskManagerError {
    #[error("the TaskManager cannot start: {0}")]
    Start(#[from] std::io::Error),
    #[error("the JobManager at {jobmanager} refused this TaskManager: {reason}")]
    Refused { jobmanager: String, reason: String },
}

struct RunningTask {
    cancel: Arc<AtomicBool>,
    counters: Arc<TaskCounters>,
    labels: Arc<TaskLabels>,
    /// Checkpoint triggers, for a task that starts with a source.
    trigger: Option<crossbeam_channel::Sender<Barrier>>,
    /// Completed checkpoints, for a task that ends with a sink.
    completions: Option<crossbeam_channel::Sender<u64>>,
}

/// What the Prometheus reporter labels a task's series with.
#[derive(Debug, Clone, Default)]
struct TaskLabels {
    job_name: String,
    task_name: String,
    task_id: String,
    has_inputs: bool,
    /// The task's chained operators, head first: (id in hex, name).
    operators: Vec<(String, String)>,
}

/// The tasks' metrics of the last heartbeat, for the Prometheus reporter.
type Latest = Arc<Mutex<Vec<(Arc<TaskLabels>, TaskMetrics)>>>;

type Registry = Arc<Mutex<HashMap<(JobId, Attempt), HashMap<SubtaskId, RunningTask>>>>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs a TaskManager until the process is stopped, or until the
/// JobManager refuses it.
pub async fn run(opts: TaskManagerOptions) -> Result<(), TaskManagerError> {
    let exchange = Exchange::start(&opts.bind, opts.data_port, opts.security.clone())?;
    let tm_id = opts.resource_id.clone().unwrap_or_else(|| {
        let suffix: String = (0..6).map(|_| format!("{:x}", rand::random::<u8>() % 16)).collect();
        format!("{}-{suffix}", exchange.addr())
    });
    let instance: String = rand::random::<[u8; 16]>().iter().map(|b| format!("{b:02x}")).collect();
    tracing::info!(tm_id = %tm_id, instance = %instance, data = %exchange.addr(), slots = opts.slots, "TaskManager started.");
    let registry: Registry = Arc::new(Mutex::new(HashMap::new()));
    let latest: Latest = Arc::new(Mutex::new(Vec::new()));
    if let Some(p) = &opts.prometheus {
        let (latest, tm_id) = (latest.clone(), tm_id.clone());
        let render: crate::prometheus::Render = Arc::new(move || taskmanager_prometheus(&tm_id, &latest));
        crate::prometheus::spawn(p, render).await?;
    }
    let mut attempt_log = 0u32;
    // Retries start fast (a JobManager starting alongside is up in
    // milliseconds) and back off to once a second.
    let mut backoff = Duration::from_millis(50);
    let mut leaders = LeaderRetrieval::default();
    loop {
        let Some((jobmanager, leader)) = leaders.find(&opts).await else {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(1));
            continue;
        };
        let opts = TaskManagerOptions { jobmanager, ..opts.clone() };
        match TcpStream::connect(&opts.jobmanager).await {
            Ok(stream) => {
                backoff = Duration::from_millis(50);
                match session(stream, &opts, (&tm_id, &instance), &exchange, (&registry, &latest), leader).await {
                    Err(SessionEnd::Refused(reason)) => {
                        cancel_all(&registry);
                        tracing::error!(jobmanager = %opts.jobmanager, tm_id = %tm_id, reason = %reason, "The JobManager refused this TaskManager; exiting.");
                        return Err(TaskManagerError::Refused { jobmanager: opts.jobmanager.clone(), reason });
                    }
                    Err(SessionEnd::NotRegistered(e)) => {
                        if attempt_log.is_multiple_of(10) {
                            tracing::warn!(jobmanager = %opts.jobmanager, error = %e, "Cannot register at the JobManager; retrying.");
                        }
                        attempt_log += 1;
                    }
                    Err(SessionEnd::Lost(e)) => {
                        attempt_log = 0;
                        tracing::warn!(jobmanager = %opts.jobmanager, error = %e, "Lost the JobManager; cancelling tasks and registering again.");
                    }
                    Ok(()) => attempt_log = 0,
                }
                cancel_all(&registry);
            }
            Err(e) => {
                if attempt_log.is_multiple_of(10) {
                    tracing::warn!(jobmanager = %opts.jobmanager, error = %e, "Cannot reach the JobManager; retrying.");
                }
                attempt_log += 1;
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(1));
    }
}

/// The JobManager a TaskManager registers with: the leader session it
/// found (with ZooKeeper), and what resolves once another one leads.
struct Leader {
    session: Option<crate::ha::LeaderSessionId>,
    changed: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
}

/// Where the JobManager is: the configured address, or with ZooKeeper the
/// leader's as it publishes it (on a session kept between lookups).
#[derive(Default)]
struct LeaderRetrieval {
    client: Option<zookeeper_client::Client>,
    logged: Option<String>,
}

impl LeaderRetrieval {
    async fn find(&mut self, opts: &TaskManagerOptions) -> Option<(String, Leader)> {
        let Some(ha) = &opts.ha else {
            let leader = Leader { session: None, changed: Box::pin(std::future::pending::<()>()) };
            return Some((opts.jobmanager.clone(), leader));
        };
        if self.client.as_ref().is_none_or(|c| c.state().is_terminated()) {
            match crate::ha::zookeeper::connect(ha).await {
                Ok(c) => self.client = Some(c),
                Err(e) => {
                    tracing::warn!(error = %e, "Cannot reach ZooKeeper to find the leading JobManager; retrying.");
                    return None;
                }
            }
        }
        let client = self.client.clone()?;
        let info = match crate::ha::zookeeper::current_leader(&client, &ha.paths).await {
            Ok(Some(info)) => info,
            Ok(None) => return None,
            Err(e) => {
                tracing::warn!(error = %e, "Cannot read the leading JobManager from ZooKeeper; retrying.");
                self.client = None;
                return None;
            }
        };
        if self.logged.as_deref() != Some(info.session_id.as_str()) {
            tracing::info!(jobmanager = %info.rpc_address, leader_session = %info.session_id, "Found the leading JobManager.");
            self.logged = Some(info.session_id.clone());
        }
        let (paths, known) = (ha.paths.clone(), info.clone());
        // Another leader, or none: this connection ends. A ZooKeeper
        // failure alone does not end it (the JobManager fences itself).
        let changed = Box::pin(async move {
            if crate::ha::zookeeper::next_leader(&client, &paths, Some(&known)).await.is_err() {
                std::future::pending::<()>().await;
            }
        });
        Some((info.rpc_address.clone(), Leader { session: info.session().ok(), changed }))
    }
}

/// How a session with the JobManager ended.
enum SessionEnd {
    /// The JobManager refused this TaskManager.
    Refused(String),
    /// The registration did not happen (network, an untrusted JobManager).
    NotRegistered(String),
    /// A registered session's connection ended.
    Lost(rpc::RpcError),
}

fn cancel_all(registry: &Registry) {
    for tasks in lock(registry).values() {
        for t in tasks.values() {
            t.cancel.store(true, Ordering::Relaxed);
        }
    }
}

async fn session(
    stream: TcpStream,
    opts: &TaskManagerOptions,
    (tm_id, instance): (&str, &str),
    exchange: &Arc<Exchange>,
    (registry, latest): (&Registry, &Latest),
    mut leader: Leader,
) -> Result<(), SessionEnd> {
    let reg = Registration {
        protocol: rpc::PROTOCOL_VERSION,
        tm_id: tm_id.to_string(),
        data_addr: exchange.addr().to_string(),
        slots: opts.slots,
        cpu_cores: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
        physical_memory: physical_memory(),
        pid: std::process::id(),
        instance: instance.to_string(),
        nonce: crate::security::secret::nonce(),
        leader_session: leader.session,
    };
    let (mut r, mut w, mut fence) = match tm_rpc::register(stream, &opts.jobmanager, &opts.security, &reg).await {
        Ok(s) => (s.reader, s.writer, Fence::new(s.leader_session)),
        Err(RegisterError::Refused(reason)) => return Err(SessionEnd::Refused(reason)),
        Err(RegisterError::Failed(e)) => return Err(SessionEnd::NotRegistered(e)),
    };
    let session_text = fence.session().map(|s| s.to_string());
    tracing::info!(tm_id = %tm_id, jobmanager = %opts.jobmanager, leader_session = ?session_text, "Registered at the JobManager.");
    let (tx, mut rx) = mpsc::unbounded_channel::<ToJobManager>();
    let writer = tokio::spawn(async move {
        while let Some(m) = rx.recv().await {
            if rpc::write_frame(&mut w, &m).await.is_err() {
                break;
            }
        }
    });
    let hb_tx = tx.clone();
    let hb_registry = registry.clone();
    let hb_latest = latest.clone();
    let interval = opts.heartbeat_interval;
    let heartbeat = tokio::spawn(async move {
        let mut windows = HashMap::new();
        loop {
            let metrics = collect_metrics(&hb_registry, &mut windows, &hb_latest);
            let process = crate::process::ProcessMetrics::sample();
            if hb_tx.send(ToJobManager::Heartbeat { metrics, process }).is_err() {
                break;
            }
            tokio::time::sleep(interval).await;
        }
    });
    // Messages that arrived while a deployment's UDF artifacts were fetched,
    // handled after it, in the order they came.
    let mut pending: std::collections::VecDeque<ToTaskManager> = std::collections::VecDeque::new();
    let result = loop {
        let msg = match pending.pop_front() {
            Some(m) => m,
            None => tokio::select! {
                m = rpc::read_frame::<_, ToTaskManager>(&mut r) => match m {
                    Ok(m) => m,
                    Err(e) => break Err(e),
                },
                () = &mut leader.changed => break Err(rpc::RpcError::LeaderChanged),
            },
        };
        if let Some(sent_in) = msg.leader_session() {
            if !fence.admits(sent_in) {
                tracing::warn!(
                    tm_id = %tm_id, registered = ?session_text, command = ?sent_in.map(|s| s.to_string()),
                    refused = fence.refused(),
                    "Refused a command of another leader session (a deposed JobManager's)."
                );
                continue;
            }
        }
        match msg {
            ToTaskManager::Deploy(d) => {
                let fetched = match fetch_artifacts(&d, &opts.udf, &tx, &mut r, &mut pending).await {
                    Ok(f) => f,
                    Err(e) => break Err(e),
                };
                deploy(*d, exchange.clone(), registry.clone(), tx.clone(), opts, fetched)
            }
            ToTaskManager::Blob { digest, .. } => {
                tracing::debug!(digest = %digest, "An artifact no deployment waits for.");
            }
            ToTaskManager::Ask { request_id, request } => {
                // Files and /proc are read off the RPC task.
                let tx = tx.clone();
                tokio::task::spawn_blocking(move || {
                    let answer = crate::diagnostics::answer(&request);
                    let _ = tx.send(ToJobManager::Answer { request_id, answer });
                });
            }
            ToTaskManager::TriggerCheckpoint { job_id, attempt, barrier, .. } => {
                if let Some(tasks) = lock(registry).get(&(job_id, attempt)) {
                    for t in tasks.values() {
                        if let Some(tr) = &t.trigger {
                            let _ = tr.send(barrier.clone());
                        }
                    }
                }
            }
            ToTaskManager::CheckpointComplete { job_id, attempt, checkpoint_id, .. } => {
                tracing::info!(job_id = %job_id, checkpoint_id, "Checkpoint {checkpoint_id} of job {job_id} is complete.");
                if let Some(tasks) = lock(registry).get(&(job_id, attempt)) {
                    for t in tasks.values() {
                        if let Some(c) = &t.completions {
                            let _ = c.send(checkpoint_id);
                        }
                    }
                }
            }
            ToTaskManager::Cancel { job_id, attempt, .. } => {
                if let Some(tasks) = lock(registry).get(&(job_id, attempt)) {
                    tracing::info!(job_id = %job_id, attempt, tasks = tasks.len(), "Cancelling tasks.");
                    for t in tasks.values() {
                        t.cancel.store(true, Ordering::Relaxed);
                    }
                }
            }
            ToTaskManager::Registered { .. } | ToTaskManager::Refused { .. } | ToTaskManager::Challenge { .. } => {}
        }
    };
    heartbeat.abort();
    writer.abort();
    result.map_err(SessionEnd::Lost)
}
