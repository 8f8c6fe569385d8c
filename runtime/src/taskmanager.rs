//! The TaskManager process: registers its slots with the JobManager,
//! heartbeats, runs the subtasks it is given, and exchanges records with
//! other TaskManagers over its data port.
//!
//! If the JobManager cannot be reached the TaskManager says so and retries;
//! if the connection is lost, it cancels its tasks and registers again
//! (as the same instance: a random id made at process start). If the
//! JobManager refuses it (see [`crate::tm_rpc`]), it says why and exits.

use crate::checkpoint::format::checkpoint_dir;
use crate::checkpoint::restore::Restorer;
use crate::checkpoint::storage::{CheckpointStorage, Storages};
use crate::checkpoint::{Barrier, SourceState};
use crate::connectors::datagen::DatagenReader;
use crate::connectors::files::{DiscardSink, FileSink, PrintSink};
use crate::connectors::kafka::{KafkaSinkWriter, KafkaSourceReader};
use crate::connectors::kafka_exactly_once::ExactlyOnceKafkaSink;
use crate::connectors::{SinkWriter, SourceReader};
use crate::expr::SourceMap;
use crate::ha::fencing::Fence;
use crate::ids::{Attempt, JobId, SubtaskId, TaskStatus};
use crate::keygroup::key_group_range;
use crate::metrics::TaskCounters;
use crate::network::{self, ChannelKey, ChannelTx, Exchange};
use crate::operators::build::{build_run, runs, BuildContext};
use crate::operators::Operator;
use crate::rpc::{
    self, CheckpointAck, Deployment, FailureKind, Registration, TaskMetrics, TaskUpdate, ToJobManager, ToTaskManager,
};
use crate::security::internal::InternalSecurity;
use crate::security::paths::AllowedRoots;
use crate::task::{
    CheckpointCtx, CheckpointReport, Head, InputChannel, OperatorInfo, OutputEdge, Task, TaskError, TaskOutcome,
};
use crate::tm_rpc::{self, RegisterError};
use flowc_compiler::graph::{ChainedOperator, JobGraph};
use flowc_compiler::ir::{Delivery, OperatorKind, WatermarkSpec};
use flowc_compiler::ShipStrategy;
use petgraph::graph::NodeIndex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

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

/// Every running task's metrics, with rates over the readings of the last
/// seconds kept in `windows` (tasks that are gone leave it).
fn collect_metrics(
    registry: &Registry,
    windows: &mut HashMap<(JobId, Attempt, SubtaskId), crate::metrics::RateWindow>,
    latest: &Latest,
) -> Vec<TaskMetrics> {
    let mut out = Vec::new();
    let mut labelled = Vec::new();
    let now = Instant::now();
    let mut seen = std::collections::HashSet::new();
    for ((job_id, attempt), tasks) in lock(registry).iter() {
        for (id, t) in tasks {
            let key = (*job_id, *attempt, *id);
            seen.insert(key);
            let rates = windows.entry(key).or_default().push(now, crate::metrics::Reading::of(&t.counters));
            let m = TaskMetrics::full(*job_id, *attempt, *id, &t.counters, rates);
            labelled.push((t.labels.clone(), m.clone()));
            out.push(m);
        }
    }
    windows.retain(|k, _| seen.contains(k));
    *lock(latest) = labelled;
    out
}

/// The TaskManager's metrics in Prometheus's text: its process (as of
/// now) and its tasks (as of the last heartbeat).
fn taskmanager_prometheus(tm_id: &str, latest: &Latest) -> String {
    let host = crate::prometheus::host();
    let mut t = crate::prometheus::Text::default();
    for (k, v) in crate::process::ProcessMetrics::sample().flink_metrics() {
        t.add("taskmanager", k, &[("host", &host), ("tm_id", tm_id)], v);
    }
    for (labels, m) in lock(latest).iter() {
        let (Some(job_id), Some(sub)) = (m.job_id, m.subtask) else { continue };
        let (job_id, index, attempt) = (job_id.to_string(), sub.subtask.to_string(), m.attempt.to_string());
        let l = [
            ("host", host.as_str()),
            ("tm_id", tm_id),
            ("job_id", job_id.as_str()),
            ("job_name", labels.job_name.as_str()),
            ("task_id", labels.task_id.as_str()),
            ("task_name", labels.task_name.as_str()),
            ("subtask_index", index.as_str()),
            ("task_attempt_num", attempt.as_str()),
        ];
        for (k, v) in crate::rest::metrics::task_values(m, labels.has_inputs, true) {
            t.add("taskmanager_job_task", &k, &l, v.float());
        }
    }
    t.render()
}

fn physical_memory() -> u64 {
    crate::process::physical_memory()
}

/// The plan's UDF libraries, checked and ready.
fn prepare_udfs(
    graph: &flowc_compiler::JobGraph,
    udf: &crate::udf::UdfSettings,
    fetch_failures: &HashMap<String, String>,
) -> Result<Vec<Arc<crate::udf::Prepared>>, crate::udf::UdfError> {
    for lib in &graph.udfs {
        if let Some(reason) = lib.artifact.as_ref().and_then(|a| fetch_failures.get(&a.digest)) {
            let digest = lib.artifact.as_ref().map_or(String::new(), |a| a.digest.clone());
            return Err(crate::udf::UdfError::Missing { digest, path: lib.path.clone(), reason: reason.clone() });
        }
    }
    crate::udf::ArtifactCache::new(&udf.cache_dir).prepare(graph, udf.isolation)
}

fn report(
    tx: &mpsc::UnboundedSender<ToJobManager>,
    d: (JobId, Attempt),
    id: SubtaskId,
    status: TaskStatus,
    failure: Option<String>,
) {
    report_final(tx, d, id, status, failure, None);
}

/// A task failed; `kind` says whether its restored state was corrupt.
fn report_failure(
    tx: &mpsc::UnboundedSender<ToJobManager>,
    d: (JobId, Attempt),
    id: SubtaskId,
    failure: String,
    kind: FailureKind,
    metrics: Option<TaskMetrics>,
) {
    let _ = tx.send(ToJobManager::TaskUpdate(TaskUpdate {
        job_id: d.0,
        attempt: d.1,
        subtask: id,
        status: TaskStatus::FAILED,
        failure: Some(failure),
        kind,
        metrics: metrics.map(Box::new),
    }));
}

/// A state change with the task's final counters, so that nothing counted
/// after the last heartbeat is lost.
fn report_final(
    tx: &mpsc::UnboundedSender<ToJobManager>,
    d: (JobId, Attempt),
    id: SubtaskId,
    status: TaskStatus,
    failure: Option<String>,
    metrics: Option<TaskMetrics>,
) {
    let _ = tx.send(ToJobManager::TaskUpdate(TaskUpdate {
        job_id: d.0,
        attempt: d.1,
        subtask: id,
        status,
        failure,
        kind: FailureKind::Other,
        metrics: metrics.map(Box::new),
    }));
}

/// The message of a caught panic.
fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_string())
}

/// Wires and starts this TaskManager's share of a deployment.
/// Fetches the UDF artifacts a deployment needs and the cache lacks from
/// the JobManager (`FetchBlob`), reading frames until every answer is in;
/// other messages wait in `pending`. What could not be fetched, by digest.
async fn fetch_artifacts<R: tokio::io::AsyncReadExt + Unpin>(
    d: &Deployment,
    udf: &crate::udf::UdfSettings,
    tx: &mpsc::UnboundedSender<ToJobManager>,
    r: &mut R,
    pending: &mut std::collections::VecDeque<ToTaskManager>,
) -> Result<HashMap<String, String>, rpc::RpcError> {
    let mut failed = HashMap::new();
    let Ok(graph) = flowc_compiler::plan_file::from_bytes(&d.plan) else { return Ok(failed) };
    let cache = crate::udf::ArtifactCache::new(&udf.cache_dir);
    let Ok(mut missing) = cache.missing(&graph) else { return Ok(failed) };
    for digest in &missing {
        tracing::info!(job_id = %d.job_id, digest = %digest, "Fetching a UDF artifact from the JobManager.");
        let _ = tx.send(ToJobManager::FetchBlob { digest: digest.clone() });
    }
    while !missing.is_empty() {
        match rpc::read_frame::<_, ToTaskManager>(r).await? {
            ToTaskManager::Blob { digest, result } => {
                let Some(i) = missing.iter().position(|m| *m == digest) else { continue };
                missing.swap_remove(i);
                if let Err(reason) = result.and_then(|bytes| cache.store(&digest, &bytes)) {
                    failed.insert(digest, reason);
                }
            }
            other => pending.push_back(other),
        }
    }
    Ok(failed)
}

fn deploy(
    d: Deployment,
    exchange: Arc<Exchange>,
    registry: Registry,
    tx: mpsc::UnboundedSender<ToJobManager>,
    opts: &TaskManagerOptions,
    fetch_failures: HashMap<String, String>,
) {
    let (allowed, udf) = (&opts.allowed, &opts.udf);
    let storage: Arc<dyn CheckpointStorage> = Arc::new(opts.storage.clone());
    let key = (d.job_id, d.attempt);
    let graph = match flowc_compiler::plan_file::from_bytes(&d.plan) {
        Ok(g) => Arc::new(g),
        Err(e) => {
            for id in &d.local {
                report(&tx, key, *id, TaskStatus::FAILED, Some(format!("cannot read the plan: {e}")));
            }
            return;
        }
    };
    // The UDF artifacts are checked (and loaded) before any task starts: a
    // missing, corrupt or mismatched one fails the deployment with the reason.
    let udfs = match prepare_udfs(&graph, udf, &fetch_failures) {
        Ok(u) => u,
        Err(e) => {
            tracing::warn!(job_id = %d.job_id, attempt = d.attempt, error = %e, "The deployment's UDFs cannot run.");
            for id in &d.local {
                report(&tx, key, *id, TaskStatus::FAILED, Some(e.to_string()));
            }
            return;
        }
    };
    tracing::info!(job_id = %d.job_id, attempt = d.attempt, tasks = d.local.len(), "Deploying tasks.");
    // Input channels first, so that senders find their receivers.
    let mut local_senders: HashMap<ChannelKey, ChannelTx> = HashMap::new();
    let mut inputs: HashMap<SubtaskId, Vec<InputChannel>> = HashMap::new();
    for id in &d.local {
        let v = NodeIndex::new(id.vertex as usize);
        let mut chans = Vec::new();
        for (input_idx, (src, edge)) in graph.inputs(v).into_iter().enumerate() {
            let src_p = graph.graph[src].parallelism;
            let senders: Vec<u32> = match edge.ship {
                ShipStrategy::Forward => vec![id.subtask],
                _ => (0..src_p).collect(),
            };
            for s in senders {
                let ck = ChannelKey {
                    job_id: d.job_id,
                    attempt: d.attempt,
                    target: *id,
                    input: input_idx as u32,
                    source_subtask: s,
                };
                let (ctx, crx) = network::channel();
                let src_id = SubtaskId { vertex: src.index() as u32, subtask: s };
                if d.local.contains(&src_id) {
                    local_senders.insert(ck, ctx);
                } else {
                    exchange.register(ck, ctx);
                }
                chans.push(
                    InputChannel::new(crx, format!("{}#{}", graph.graph[src].name, s))
                        .from_subtask(src_id)
                        .for_input(edge.input),
                );
            }
        }
        inputs.insert(*id, chans);
    }
    let local_senders = Arc::new(Mutex::new(local_senders));
    // The checkpoint to restore from, opened once for all local subtasks.
    let restorer = match &d.restore {
        None => None,
        Some(dir) => match Restorer::open(storage.clone(), &checkpoint_dir(dir)) {
            Ok(r) => Some(Arc::new(Mutex::new(r))),
            Err(e) => {
                let kind = if e.is_corruption() { FailureKind::CorruptState } else { FailureKind::Other };
                for id in &d.local {
                    report_failure(&tx, key, *id, format!("cannot restore from {dir}: {e}"), kind, None);
                }
                return;
            }
        },
    };
    // Register every task before any starts, so that a task that ends at
    // once still finds its entry to remove.
    let mut handles = Vec::new();
    let mut running = HashMap::new();
    for id in &d.local {
        let (cancel, counters) = (Arc::new(AtomicBool::new(false)), Arc::new(TaskCounters::new()));
        let v = NodeIndex::new(id.vertex as usize);
        let (trigger, triggers) = if graph.inputs(v).is_empty() {
            let (t, r) = crossbeam_channel::unbounded();
            (Some(t), Some(r))
        } else {
            (None, None)
        };
        let (completion, completions) = if graph.graph[v].operators.last().is_some_and(|o| o.kind.is_sink()) {
            let (t, r) = crossbeam_channel::unbounded();
            (Some(t), Some(r))
        } else {
            (None, None)
        };
        running.insert(
            *id,
            RunningTask {
                cancel: cancel.clone(),
                counters: counters.clone(),
                labels: Arc::new(TaskLabels {
                    job_name: graph.name.clone(),
                    task_name: graph.graph[v].name.clone(),
                    task_id: graph.graph[v].id.to_hex(),
                    has_inputs: !graph.inputs(v).is_empty(),
                }),
                trigger,
                completions: completion,
            },
        );
        handles.push((*id, cancel, counters, triggers, completions));
    }
    lock(&registry).insert(key, running);
    for (id, cancel, counters, triggers, completions) in handles {
        let graph = graph.clone();
        let restorer = restorer.clone();
        let position = d.positions.iter().find(|(s, _)| *s == id).map(|(_, p)| p.clone()).unwrap_or_default();
        let chans = inputs.remove(&id).unwrap_or_default();
        let placement = d.placement.clone();
        let splits = d.splits.iter().find(|(s, _)| *s == id).map(|(_, p)| p.clone()).unwrap_or_default();
        let local = d.local.clone();
        let senders = local_senders.clone();
        let task_tx = tx.clone();
        let task_exchange = exchange.clone();
        let registry = registry.clone();
        let allowed = allowed.clone();
        let storage = storage.clone();
        let udfs = (udfs.clone(), udf.isolation);
        let name = format!("{}#{}", graph.graph[NodeIndex::new(id.vertex as usize)].name, id.subtask);
        let vertex_name = graph.graph[NodeIndex::new(id.vertex as usize)].name.clone();
        let spawned = std::thread::Builder::new().name(format!("task-{id}")).spawn(move || {
            // Every line the task logs carries its job, vertex and subtask.
            let _span =
                tracing::info_span!("task", job_id = %key.0, vertex = %vertex_name, subtask = id.subtask).entered();
            let tx = task_tx;
            report(&tx, key, id, TaskStatus::INITIALIZING, None);
            let ack_tx = tx.clone();
            let report_ack = Box::new(move |r: CheckpointReport| {
                let _ = ack_tx.send(ToJobManager::Checkpoint(CheckpointAck {
                    job_id: key.0,
                    attempt: key.1,
                    subtask: id,
                    checkpoint_id: r.checkpoint_id,
                    result: r.result,
                }));
            });
            let wiring = Wiring {
                inputs: chans,
                placement: &placement,
                local: &local,
                local_senders: &senders,
                exchange: &task_exchange,
            };
            let start = StartState {
                splits,
                position,
                restorer,
                triggers,
                completions,
                report: report_ack,
                allowed,
                udfs,
                storage,
            };
            let final_counters = counters.clone();
            // A panic is a bug in flowc; it fails the task (and so restarts
            // the job) instead of leaving it RUNNING forever.
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let task = build_task(key, id, &graph, wiring, start, cancel, counters)?;
                report(&tx, key, id, TaskStatus::RUNNING, None);
                tracing::info!(job_id = %key.0, task = %name, "Task running.");
                task.run()
            }))
            .unwrap_or_else(|p| {
                Err(TaskError::Setup(format!("internal error (a bug in flowc): {}", panic_message(&*p))))
            });
            let metrics = Some(TaskMetrics::full(key.0, key.1, id, &final_counters, Default::default()));
            match outcome {
                Ok(TaskOutcome::Finished) => report_final(&tx, key, id, TaskStatus::FINISHED, None, metrics),
                Ok(TaskOutcome::Canceled) => report_final(&tx, key, id, TaskStatus::CANCELED, None, metrics),
                Err(e) => {
                    tracing::warn!(job_id = %key.0, task = %name, error = %e, "Task failed.");
                    let kind = if e.is_corrupt_state() { FailureKind::CorruptState } else { FailureKind::Other };
                    report_failure(&tx, key, id, format!("{name}: {e}"), kind, metrics);
                }
            }
            let mut reg = lock(&registry);
            if let Some(ts) = reg.get_mut(&key) {
                ts.remove(&id);
                if ts.is_empty() {
                    reg.remove(&key);
                    // The attempt is over here: receivers that no sender
                    // reached (a failed or cancelled attempt) go with it.
                    task_exchange.unregister(key.0, key.1);
                }
            }
        });
        if let Err(e) = spawned {
            report(&tx, key, id, TaskStatus::FAILED, Some(format!("cannot start a thread: {e}")));
        }
    }
}

/// The watermark spec a Kafka source vertex generates per partition: the
/// watermark stage right after it, chained or over a FORWARD edge.
fn source_watermark(graph: &JobGraph, v: NodeIndex, op_index: usize) -> Option<WatermarkSpec> {
    let ops = &graph.graph[v].operators;
    if let Some(next) = ops.get(op_index + 1) {
        return match &next.kind {
            OperatorKind::Watermark(w) => Some(w.clone()),
            _ => None,
        };
    }
    let outs = graph.outputs(v);
    let [(dst, e)] = outs.as_slice() else { return None };
    if e.ship != ShipStrategy::Forward || graph.inputs(*dst).len() != 1 {
        return None;
    }
    match &graph.graph[*dst].operators.first()?.kind {
        OperatorKind::Watermark(w) => Some(w.clone()),
        _ => None,
    }
}

/// Whether the watermark operator at `op_index` of `v` gets its watermarks
/// from a Kafka source (see [`source_watermark`]).
fn watermarks_from_source(graph: &JobGraph, v: NodeIndex, op_index: usize) -> bool {
    let ops = &graph.graph[v].operators;
    if op_index > 0 {
        return op_index == 1 && matches!(ops[0].kind, OperatorKind::KafkaSource(_));
    }
    let ins = graph.inputs(v);
    let [(src, e)] = ins.as_slice() else { return false };
    e.ship == ShipStrategy::Forward
        && graph.outputs(*src).len() == 1
        && matches!(graph.graph[*src].operators.last().map(|o| &o.kind), Some(OperatorKind::KafkaSource(_)))
}

/// How a subtask is connected: its input channels and where its outputs go.
struct Wiring<'a> {
    inputs: Vec<InputChannel>,
    placement: &'a [Vec<String>],
    local: &'a [SubtaskId],
    local_senders: &'a Mutex<HashMap<ChannelKey, ChannelTx>>,
    /// Where channels to other TaskManagers are opened.
    exchange: &'a Exchange,
}

/// Where a subtask starts: its partitions, restored positions and state,
/// and its checkpoint plumbing.
struct StartState {
    splits: Vec<i32>,
    position: SourceState,
    restorer: Option<Arc<Mutex<Restorer>>>,
    triggers: Option<crossbeam_channel::Receiver<Barrier>>,
    completions: Option<crossbeam_channel::Receiver<u64>>,
    report: Box<dyn Fn(CheckpointReport) + Send>,
    allowed: AllowedRoots,
    /// The plan's UDF libraries, prepared, and how this task runs them.
    udfs: (Vec<Arc<crate::udf::Prepared>>, crate::udf::Isolation),
    /// Where the task writes its state files.
    storage: Arc<dyn CheckpointStorage>,
}

fn info(op: &ChainedOperator) -> OperatorInfo {
    OperatorInfo { id: op.id, uid: op.uid.clone(), name: op.name.clone() }
}

fn build_task(
    key: (JobId, Attempt),
    id: SubtaskId,
    graph: &JobGraph,
    wiring: Wiring<'_>,
    start: StartState,
    cancel: Arc<AtomicBool>,
    counters: Arc<TaskCounters>,
) -> Result<Task, TaskError> {
    let Wiring { inputs, placement, local, local_senders, exchange } = wiring;
    let StartState { splits, position, restorer, triggers, completions, report, allowed, udfs, storage } = start;
    let v = NodeIndex::new(id.vertex as usize);
    let vertex = &graph.graph[v];
    let setup = |m: String| TaskError::Setup(m);
    let mut head: Option<Head> = None;
    let mut chain: Vec<Box<dyn Operator>> = Vec::new();
    let mut sink: Option<Box<dyn SinkWriter>> = None;
    let (mut source_info, mut chain_info, mut sink_info) = (None, Vec::new(), None);
    let range = key_group_range(id.subtask, vertex.parallelism, vertex.max_parallelism);
    for (i, op) in vertex.operators.iter().enumerate() {
        if op.kind.is_source() {
            source_info = Some(info(op));
        } else if op.kind.is_sink() {
            sink_info = Some(info(op));
        }
        match &op.kind {
            OperatorKind::KafkaSource(k) => {
                let wm = source_watermark(graph, v, i);
                let restored = position.kafka_offsets();
                let checkpointing = graph.settings.checkpoint_interval_ms.is_some();
                let assignment = crate::connectors::kafka_topics::Assignment {
                    splits: splits.clone(),
                    subtask: id.subtask,
                    parallelism: vertex.parallelism,
                };
                let reader =
                    KafkaSourceReader::new(k, &op.name, &assignment, &restored, wm, counters.clone(), checkpointing)?;
                head = Some(Head::Source(Box::new(reader) as Box<dyn SourceReader>));
            }
            OperatorKind::FileSource(f) => {
                let restored = match &position {
                    SourceState::Files { files } => files.clone(),
                    _ => Vec::new(),
                };
                let reader = crate::connectors::file_source::FileSourceReader::new(
                    f,
                    &op.name,
                    id.subtask,
                    vertex.parallelism,
                    restored,
                    &allowed,
                    counters.clone(),
                )?;
                head = Some(Head::Source(Box::new(reader)));
            }
            OperatorKind::DatagenSource(g) => {
                let resume = match position {
                    SourceState::Datagen { next } => Some(next),
                    _ => None,
                };
                let reader = DatagenReader::new(g.clone(), id.subtask, vertex.parallelism, resume)?;
                head = Some(Head::Source(Box::new(reader)));
            }
            OperatorKind::NexmarkSource(n) => {
                let resume = match position {
                    SourceState::Datagen { next } => Some(next),
                    _ => None,
                };
                let reader =
                    crate::connectors::nexmark::NexmarkReader::new(n.clone(), id.subtask, vertex.parallelism, resume);
                head = Some(Head::Source(Box::new(reader)));
            }
            OperatorKind::KafkaSink(k) if k.delivery == Delivery::ExactlyOnce => {
                let txid = format!("{}-{}-{}", k.transactional_id_prefix, &op.id.to_hex()[..8], id.subtask);
                let mut s = ExactlyOnceKafkaSink::new(k, &op.output, txid)?;
                if let Some(r) = &restorer {
                    let states = lock(r)
                        .raw_states(op.id, id.subtask, vertex.parallelism)
                        .map_err(|source| TaskError::Restore { operator: op.name.clone(), source })?;
                    s.restore(states)?;
                }
                sink = Some(Box::new(s));
            }
            OperatorKind::KafkaSink(k) => sink = Some(Box::new(KafkaSinkWriter::new(k, &op.output)?)),
            OperatorKind::PrintSink => {
                sink = Some(Box::new(PrintSink::new(&op.output, id.subtask, vertex.parallelism)))
            }
            OperatorKind::FileSink(f) => {
                sink = Some(Box::new(FileSink::with_format(&f.path, &allowed, &op.output, &f.format, id.subtask)?))
            }
            OperatorKind::DiscardSink => sink = Some(Box::new(DiscardSink)),
            OperatorKind::UpsertKafkaSink(u) => {
                sink = Some(Box::new(crate::connectors::upsert_kafka::UpsertKafkaSinkWriter::new(u, &op.output)?))
            }
            _ => {}
        }
    }
    // The operators between source and sink, consecutive filters and
    // projections fused into one.
    // This task's way to each UDF library: the shared loaded library, or a
    // sidecar process of its own.
    let backends = udfs
        .0
        .iter()
        .map(|p| crate::udf::Backend::for_task(p, udfs.1).map(Arc::new))
        .collect::<Result<Vec<_>, _>>()
        .map_err(setup)?;
    let sources = Arc::new(SourceMap::new(graph.source.as_ref()).with_udfs(&graph.udfs, backends));
    let first = usize::from(vertex.operators.first().is_some_and(|o| o.kind.is_source()));
    let last = vertex.operators.len() - usize::from(vertex.operators.last().is_some_and(|o| o.kind.is_sink()));
    let middle = &vertex.operators[first..last.max(first)];
    for run in runs(middle) {
        let ctx = BuildContext {
            subtask: id.subtask,
            parallelism: vertex.parallelism,
            max_parallelism: vertex.max_parallelism,
            watermarks_from_source: watermarks_from_source(graph, v, first + run.start),
            counters: counters.clone(),
            sources: sources.clone(),
        };
        let mut built = build_run(&middle[run.clone()], &ctx)?;
        if let Some(r) = &restorer {
            for op in &middle[run.clone()] {
                let state = lock(r)
                    .keyed_state(op.id, &range)
                    .map_err(|source| TaskError::Restore { operator: op.name.clone(), source })?;
                if !state.key_groups.is_empty() {
                    built.restore(state)?;
                }
            }
        }
        for op in &middle[run] {
            chain_info.push((info(op), chain.len()));
        }
        chain.push(built);
    }
    let head = match head {
        Some(h) => h,
        None => {
            // Batches from other processes are checked against the schema the vertex reads.
            let mut inputs = inputs;
            let types: Option<Vec<_>> = vertex
                .operators
                .first()
                .and_then(|o| o.input.as_ref())
                .map(|s| s.fields.iter().map(|f| f.ty).collect());
            // A join's right side (input 1) carries the right's records.
            let right: Option<Vec<_>> = match vertex.operators.first().map(|o| &o.kind) {
                Some(OperatorKind::Join(j)) => Some(j.right.fields.iter().map(|f| f.ty).collect()),
                _ => None,
            };
            for c in inputs.iter_mut() {
                match (c.input(), &types, &right) {
                    (0, Some(t), _) => c.expect(t.clone()),
                    (1, _, Some(t)) => c.expect(t.clone()),
                    _ => {}
                }
            }
            Head::Inputs(inputs)
        }
    };
    let out_types: Vec<_> =
        vertex.operators.last().map(|o| o.output.fields.iter().map(|f| f.ty).collect()).unwrap_or_default();
    // Outputs: one edge per downstream vertex, one channel per receiving subtask.
    let mut outputs = Vec::new();
    for (dst, edge) in graph.outputs(v) {
        let dst_in = graph.inputs(dst);
        // By the edge itself: one vertex may feed both inputs of a join.
        let input_idx = dst_in
            .iter()
            .position(|(s, e)| *s == v && std::ptr::eq(*e, edge))
            .ok_or_else(|| setup("edge not found at its target".into()))?;
        let dst_p = graph.graph[dst].parallelism;
        let targets: Vec<u32> = match edge.ship {
            ShipStrategy::Forward => vec![id.subtask],
            _ => (0..dst_p).collect(),
        };
        let mut channels = Vec::new();
        let mut names = Vec::new();
        for t in targets {
            let target = SubtaskId { vertex: dst.index() as u32, subtask: t };
            let ck = ChannelKey {
                job_id: key.0,
                attempt: key.1,
                target,
                input: input_idx as u32,
                source_subtask: id.subtask,
            };
            let tx = if local.contains(&target) {
                lock(local_senders).remove(&ck).ok_or_else(|| setup(format!("no local channel to {target}")))?
            } else {
                let addr = placement
                    .get(dst.index())
                    .and_then(|p| p.get(t as usize))
                    .ok_or_else(|| setup(format!("no placement for {target}")))?;
                exchange.connect(addr, ck).map_err(|e| setup(format!("cannot connect to {addr} for {target}: {e}")))?
            };
            channels.push(tx);
            names.push(format!("{}#{}", graph.graph[dst].name, t));
        }
        // A late edge carries the window's input records.
        let types = match (edge.late, vertex.operators.last().and_then(|o| o.input.as_ref())) {
            (true, Some(input)) => input.fields.iter().map(|f| f.ty).collect(),
            _ => out_types.clone(),
        };
        let mut output = OutputEdge::new(edge.ship.clone(), channels, names, types, vertex.max_parallelism, id.subtask);
        output.late = edge.late;
        outputs.push(output);
    }
    Ok(Task {
        job_id: key.0,
        attempt: key.1,
        id,
        name: vertex.name.clone(),
        head,
        chain,
        sink,
        outputs,
        cancel,
        counters,
        checkpoints: CheckpointCtx {
            vertex: vertex.id,
            vertex_name: vertex.name.clone(),
            parallelism: vertex.parallelism,
            source: source_info,
            chain: chain_info,
            sink: sink_info,
            triggers,
            completions,
            report,
            storage,
        },
        stopped: false,
        stop_checkpoint: None,
    })
}
