//! The job level of the REST API beyond the job itself, in Flink's shapes:
//! status, execution result, accumulators, the JobManager's configuration,
//! environment and log URLs as a job sees them, the checkpoint
//! configuration and per-checkpoint details down to subtasks; and the
//! endpoints of features flowc's scheduler does not have (rescaling,
//! resource requirements), answered as Flink's default scheduler answers.

use super::cluster::jobmanager_config;
use super::processes::environment_json;
use super::vertices::vertex_index;
use super::{error, with_job, Jm};
use crate::ids::{JobStatus, SubtaskId};
use crate::jobmanager::checkpoint_store::Retention;
use crate::jobmanager::coordinator::{Stats, Status, SubtaskAck, TIMEOUT};
use crate::jobmanager::JobDetail;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

fn answer(r: Result<Value, Response>) -> Response {
    match r {
        Ok(v) => Json(v).into_response(),
        Err(r) => r,
    }
}

/// `GET /jobs/:jid/status`.
pub(super) async fn status(State(jm): Jm, Path(jid): Path<String>) -> Response {
    answer(with_job(&jm, &jid, |j| json!({ "status": j.summary.status.name() })))
}

/// `GET /jobs/:jid/execution-result`: `IN_PROGRESS` until the job is
/// globally terminal, then its result (flowc jobs produce no accumulators).
pub(super) async fn execution_result(State(jm): Jm, Path(jid): Path<String>) -> Response {
    answer(with_job(&jm, &jid, |j| {
        let s = &j.summary;
        if !s.status.is_terminal() {
            return json!({ "status": { "id": "IN_PROGRESS" } });
        }
        let failure = (s.status == JobStatus::FAILED).then(|| {
            let cause = j.exceptions.last().map_or("the job failed", |e| e.message.as_str());
            json!({ "class": "org.flowc.JobFailure", "stack-trace": cause, "serialized-throwable": Value::Null })
        });
        let mut result = json!({
            "id": s.id.to_string(),
            "application-status": s.status.name(),
            "accumulator-results": {},
            "net-runtime": (s.end_time - s.start_time).max(0),
        });
        if let Some(f) = failure {
            result["failure-cause"] = f;
        }
        json!({ "status": { "id": "COMPLETED" }, "job-execution-result": result })
    }))
}

/// `GET /jobs/:jid/accumulators`: flowc has no user accumulators.
pub(super) async fn accumulators(State(jm): Jm, Path(jid): Path<String>) -> Response {
    answer(with_job(
        &jm,
        &jid,
        |_| json!({ "job-accumulators": [], "user-task-accumulators": [], "serialized-user-task-accumulators": {} }),
    ))
}

/// `GET /jobs/:jid/jobmanager/config`: the configuration of the JobManager
/// that runs the job (flowc's one JobManager).
pub(super) async fn job_jobmanager_config(State(jm): Jm, Path(jid): Path<String>) -> Response {
    if let Err(r) = with_job(&jm, &jid, |_| ()) {
        return r;
    }
    jobmanager_config(State(jm)).await.into_response()
}

/// `GET /jobs/:jid/jobmanager/environment`.
pub(super) async fn job_jobmanager_environment(State(jm): Jm, Path(jid): Path<String>) -> Response {
    answer(with_job(&jm, &jid, |_| environment_json()))
}

/// The web UI's address, as `rest.address`/`rest.port` configure it.
fn web_address(jm: &crate::jobmanager::JobManager) -> String {
    let scheme = if jm.config.get("security.ssl.rest.enabled") == "true" { "https" } else { "http" };
    format!("{scheme}://{}:{}", jm.config.get("rest.address"), jm.config.get("rest.port"))
}

/// `GET /jobs/:jid/jobmanager/log-url`.
pub(super) async fn jobmanager_log_url(State(jm): Jm, Path(jid): Path<String>) -> Response {
    answer(with_job(&jm, &jid, |_| json!({ "url": format!("{}/#/job-manager/logs", web_address(&jm)) })))
}

/// `GET /jobs/:jid/taskmanagers/:tmid/log-url`.
pub(super) async fn taskmanager_log_url(State(jm): Jm, Path((jid, tmid)): Path<(String, String)>) -> Response {
    if let Err(r) = with_job(&jm, &jid, |_| ()) {
        return r;
    }
    if jm.taskmanager(&tmid).is_none() {
        return error(StatusCode::NOT_FOUND, format!("TaskManager {tmid} not found"));
    }
    Json(json!({ "url": format!("{}/#/task-manager/{tmid}/logs", web_address(&jm)) })).into_response()
}

/// `GET /jobs/:jid/checkpoints/config`: flowc checkpoints exactly once,
/// aligned, one at a time, with no pause between them; state in memory,
/// snapshots to files.
pub(super) async fn checkpoint_config(State(jm): Jm, Path(jid): Path<String>) -> Response {
    let r = with_job(&jm, &jid, |j| {
        let interval = j.graph.settings.checkpoint_interval_ms?;
        let retention = j.checkpoints.retention;
        Some(json!({
            "mode": "exactly_once",
            "interval": interval,
            "timeout": TIMEOUT.as_millis() as u64,
            "min_pause": 0,
            "max_concurrent": 1,
            "externalization": {
                "enabled": retention != Retention::NoExternalized,
                "delete_on_cancellation": retention != Retention::RetainOnCancellation,
            },
            "state_backend": "HashMapStateBackend",
            "checkpoint_storage": "FileSystemCheckpointStorage",
            "unaligned_checkpoints": false,
            "tolerable_failed_checkpoints": 0,
            "aligned_checkpoint_timeout": 0,
            "checkpoints_after_tasks_finish": false,
            "state_changelog_enabled": false,
            "changelog_periodic_materialization_interval": 600000,
            "changelog_storage": "memory",
        }))
    });
    match r {
        Ok(Some(v)) => Json(v).into_response(),
        // As Flink, for a job without checkpointing.
        Ok(None) => error(StatusCode::NOT_FOUND, "Checkpointing is not enabled for this job"),
        Err(r) => r,
    }
}

fn class_name(s: Status) -> &'static str {
    match s {
        Status::Completed => "completed",
        Status::Failed => "failed",
        Status::InProgress => "in_progress",
    }
}

/// The acknowledgements of vertex `vertex` in checkpoint `s`.
fn vertex_acks(s: &Stats, vertex: u32) -> Vec<(&SubtaskId, &SubtaskAck)> {
    s.acks.iter().filter(|(id, _)| id.vertex == vertex).collect()
}

/// One vertex's part of a checkpoint (Flink's `TaskCheckpointStatistics`).
fn vertex_stats(s: &Stats, vertex: u32, parallelism: u32) -> Value {
    let acks = vertex_acks(s, vertex);
    let size: u64 = acks.iter().map(|(_, a)| a.state_size).sum();
    let latest = acks.iter().map(|(_, a)| a.ack_ms).max().unwrap_or(-1);
    let status =
        if acks.len() as u32 >= parallelism && s.status != Status::Failed { Status::Completed } else { s.status };
    json!({
        "id": s.id,
        "status": status.name(),
        "latest_ack_timestamp": latest,
        "checkpointed_size": size,
        "state_size": size,
        "end_to_end_duration": if latest > 0 { latest - s.trigger_ms } else { -1 },
        "alignment_buffered": 0,
        "processed_data": 0,
        "persisted_data": 0,
        "num_subtasks": parallelism,
        "num_acknowledged_subtasks": acks.len(),
    })
}

fn details_json(j: &JobDetail, s: &Stats) -> Value {
    let mut tasks = Map::new();
    for n in j.graph.graph.node_indices() {
        let v = &j.graph.graph[n];
        tasks.insert(v.id.to_hex(), vertex_stats(s, n.index() as u32, v.parallelism));
    }
    json!({
        "className": class_name(s.status),
        "id": s.id,
        "status": s.status.name(),
        "is_savepoint": s.savepoint,
        "savepointFormat": s.format.map_or(Value::Null, |f| json!(f.name())),
        "trigger_timestamp": s.trigger_ms,
        "latest_ack_timestamp": s.latest_ack_ms,
        "checkpointed_size": s.state_size,
        "state_size": s.state_size,
        "end_to_end_duration": s.duration_ms,
        "alignment_buffered": 0,
        "processed_data": 0,
        "persisted_data": 0,
        "num_subtasks": s.num_subtasks,
        "num_acknowledged_subtasks": s.num_acknowledged,
        "checkpoint_type": if s.savepoint { "SAVEPOINT" } else { "CHECKPOINT" },
        "tasks": tasks,
        "external_path": s.external_path,
        "discarded": false,
        "failure_message": s.failure,
    })
}

fn checkpoint_of<'a>(j: &'a JobDetail, cid: &str) -> Option<&'a Stats> {
    let id: u64 = cid.parse().ok()?;
    j.checkpoints.history.iter().find(|s| s.id == id)
}

/// `GET /jobs/:jid/checkpoints/details/:cid` (the checkpoints the history keeps).
pub(super) async fn checkpoint_details(State(jm): Jm, Path((jid, cid)): Path<(String, String)>) -> Response {
    match with_job(&jm, &jid, |j| checkpoint_of(j, &cid).map(|s| details_json(j, s))) {
        Ok(Some(v)) => Json(v).into_response(),
        Ok(None) => {
            error(StatusCode::NOT_FOUND, format!("Could not find checkpointing statistics for checkpoint {cid}."))
        }
        Err(r) => r,
    }
}

fn summary(values: &[i64]) -> Value {
    if values.is_empty() {
        return json!({ "min": 0, "max": 0, "avg": 0, "p50": 0.0, "p90": 0.0, "p95": 0.0, "p99": 0.0, "p999": 0.0 });
    }
    let mut v = values.to_vec();
    v.sort_unstable();
    let q = |p: f64| v[((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1] as f64;
    json!({
        "min": v[0], "max": v[v.len() - 1], "avg": v.iter().sum::<i64>() / v.len() as i64,
        "p50": q(0.5), "p90": q(0.9), "p95": q(0.95), "p99": q(0.99), "p999": q(0.999),
    })
}

/// `GET /jobs/:jid/checkpoints/details/:cid/subtasks/:vid`: each subtask's
/// acknowledgement (flowc snapshots synchronously: `async` is 0; barriers
/// are aligned: no data is persisted with the checkpoint).
pub(super) async fn checkpoint_subtasks(
    State(jm): Jm,
    Path((jid, cid, vid)): Path<(String, String, String)>,
) -> Response {
    let r = with_job(&jm, &jid, |j| {
        let s =
            checkpoint_of(j, &cid).ok_or(format!("Could not find checkpointing statistics for checkpoint {cid}."))?;
        let n = vertex_index(j, &vid).ok_or(format!("Vertex {vid} not found in job {jid}"))?;
        let parallelism = j.graph.graph[n].parallelism;
        let mut v = vertex_stats(s, n.index() as u32, parallelism);
        let acks: std::collections::HashMap<u32, &SubtaskAck> =
            vertex_acks(s, n.index() as u32).into_iter().map(|(id, a)| (id.subtask, a)).collect();
        let subtasks: Vec<Value> = (0..parallelism)
            .map(|i| match acks.get(&i) {
                Some(a) => json!({
                    "className": "completed", "index": i, "ack_timestamp": a.ack_ms,
                    "end_to_end_duration": a.ack_ms - s.trigger_ms,
                    "checkpointed_size": a.state_size, "state_size": a.state_size,
                    "checkpoint": { "sync": a.ack_ms - s.trigger_ms, "async": 0 },
                    "alignment": { "buffered": 0, "processed": 0, "persisted": 0, "duration": 0 },
                    "start_delay": 0, "unaligned_checkpoint": false, "aborted": false, "status": "completed",
                }),
                None => json!({ "className": "pending_or_failed", "index": i, "status": "pending_or_failed" }),
            })
            .collect();
        let sizes: Vec<i64> = acks.values().map(|a| a.state_size as i64).collect();
        let durations: Vec<i64> = acks.values().map(|a| a.ack_ms - s.trigger_ms).collect();
        v["summary"] = json!({
            "checkpointed_size": summary(&sizes),
            "state_size": summary(&sizes),
            "end_to_end_duration": summary(&durations),
            "checkpoint_duration": { "sync": summary(&durations), "async": summary(&vec![0; acks.len()]) },
            "alignment": { "buffered": summary(&[]), "processed": summary(&[]), "persisted": summary(&[]), "duration": summary(&[]) },
            "start_delay": summary(&vec![0; acks.len()]),
        });
        v["subtasks"] = Value::Array(subtasks);
        Ok::<Value, String>(v)
    });
    match r {
        Ok(Ok(v)) => Json(v).into_response(),
        Ok(Err(m)) => error(StatusCode::NOT_FOUND, m),
        Err(r) => r,
    }
}

/// `GET /jobs/:jid/resource-requirements` (and `PUT`): as Flink's default
/// scheduler, which cannot change parallelism without a restart.
pub(super) async fn resource_requirements(State(jm): Jm, Path(jid): Path<String>) -> Response {
    if let Err(r) = with_job(&jm, &jid, |_| ()) {
        return r;
    }
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "The default scheduler does not support changing the parallelism without a job restart (Flink: only the AdaptiveScheduler does).",
    )
}

/// `PUT /jobs/:jid/resource-requirements`: a body without requirements is
/// refused as Flink refuses it; requirements get the default scheduler's answer.
pub(super) async fn put_resource_requirements(
    State(jm): Jm,
    Path(jid): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    if let Err(r) = with_job(&jm, &jid, |_| ()) {
        return r;
    }
    let names_some = serde_json::from_slice::<Value>(&body).is_ok_and(|v| v.as_object().is_some_and(|o| !o.is_empty()));
    if !names_some {
        return error(StatusCode::BAD_REQUEST, "Request body does not specify resource requirements.");
    }
    resource_requirements(State(jm), Path(jid)).await
}

/// `PATCH /jobs/:jid/clientHeartbeat`: an attached client's heartbeat.
/// flowc does not cancel jobs whose client went away, so it only checks
/// that the job exists.
pub(super) async fn client_heartbeat(State(jm): Jm, Path(jid): Path<String>) -> Response {
    match with_job(&jm, &jid, |_| ()) {
        Ok(()) => (StatusCode::ACCEPTED, Json(json!({}))).into_response(),
        Err(r) => r,
    }
}

/// `POST /jobs/:jid/coordinators/:uid`: a request to an operator
/// coordinator. flowc's operators have none.
pub(super) async fn coordinator_request(State(jm): Jm, Path((jid, uid)): Path<(String, String)>) -> Response {
    if let Err(r) = with_job(&jm, &jid, |_| ()) {
        return r;
    }
    error(
        StatusCode::NOT_FOUND,
        format!("The operator with uid `{uid}` has no coordinator (flowc's operators have none)."),
    )
}

/// `GET /jobs/:jid/rescales/*`: as Flink without the adaptive scheduler.
pub(super) async fn rescales(State(jm): Jm, Path((jid, _)): Path<(String, String)>) -> Response {
    if let Err(r) = with_job(&jm, &jid, |_| ()) {
        return r;
    }
    error(StatusCode::NOT_FOUND, format!("AdaptiveScheduler is not enabled for this job ({jid})."))
}

/// `PATCH /jobs/:jid/rescaling`, `GET /jobs/:jid/rescaling/:tid`: disabled, as in Flink.
pub(super) async fn rescaling() -> Response {
    error(StatusCode::SERVICE_UNAVAILABLE, "Rescaling is temporarily disabled. See FLINK-12312.")
}
