//! Deploying a job's subtasks on this TaskManager: the UDF artifacts
//! fetched and checked, the input channels registered, the checkpoint to
//! restore opened once, and one thread per subtask that reports its states
//! to the JobManager.

use super::build::{StartState, Wiring};
use super::{build_task, lock, Registry, RunningTask, TaskLabels, TaskManagerOptions};

use crate::checkpoint::format::checkpoint_dir;
use crate::checkpoint::restore::Restorer;
use crate::checkpoint::storage::CheckpointStorage;
use crate::ids::{Attempt, JobId, SubtaskId, TaskStatus};
use crate::metrics::TaskCounters;
use crate::network::{self, ChannelKey, ChannelTx, Exchange};
use crate::rpc::{self, CheckpointAck, Deployment, FailureKind, TaskMetrics, TaskUpdate, ToJobManager, ToTaskManager};
use crate::task::{CheckpointReport, InputChannel, TaskError, TaskOutcome};
use flowc_compiler::ShipStrategy;
use petgraph::graph::NodeIndex;
use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

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
pub(super) async fn fetch_artifacts<R: tokio::io::AsyncReadExt + Unpin>(
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

pub(super) fn deploy(
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
        // Sources and sinks hear of completed checkpoints (offsets and transactions are committed then).
        let (completion, completions) =
            if graph.inputs(v).is_empty() || graph.graph[v].operators.last().is_some_and(|o| o.kind.is_sink()) {
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
                    operators: graph.graph[v].operators.iter().map(|o| (o.id.to_hex(), o.name.clone())).collect(),
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
            crate::fault::slow_restore(restorer.is_some());
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
                    let kind = if e.is_corrupt_state() {
                        FailureKind::CorruptState
                    } else if e.is_consequence() {
                        FailureKind::Consequence
                    } else {
                        FailureKind::Other
                    };
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
