//! The REST API, in Flink's paths, methods, status codes and field names,
//! with and without the `/v1` prefix. Errors answer `{"errors": ["…"]}`.

// Handlers return a ready error `Response` as their `Err`: it is large, but
// built once per failed request, never on a hot path.
#![allow(clippy::result_large_err)]

use crate::checkpoint::coordinator::Stats;
use crate::checkpoint::StopMode;
use crate::ids::{JobId, JobStatus, TaskStatus};
use crate::jobmanager::{CancelError, Job, JobManager, RestoreRequest, SavepointError, SavepointStatus, SubmitError};
use crate::task::now_ms;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use flowc_compiler::{CheckOptions, ProgramArgs};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// What flowc reports where Flink reports its version.
pub const VERSION: &str = concat!("flowc-", env!("CARGO_PKG_VERSION"));

type Jm = State<Arc<JobManager>>;

pub fn router(jm: Arc<JobManager>) -> Router {
    let api = Router::new()
        .route("/overview", get(overview))
        .route("/config", get(dashboard_config))
        .route("/jobs", get(jobs).post(submit_plan))
        .route("/jobs/overview", get(jobs_overview))
        .route("/jobs/{jid}", get(job_detail).patch(cancel_job))
        .route("/jobs/{jid}/plan", get(job_plan))
        .route("/jobs/{jid}/config", get(job_config))
        .route("/jobs/{jid}/exceptions", get(job_exceptions))
        .route("/jobs/{jid}/metrics", get(job_metrics))
        .route("/jobs/{jid}/checkpoints", get(job_checkpoints))
        .route("/jobs/{jid}/savepoints", post(trigger_savepoint))
        .route("/jobs/{jid}/savepoints/{tid}", get(savepoint_status))
        .route("/jobs/{jid}/stop", post(stop_job))
        .route("/jobs/{jid}/vertices/{vid}", get(vertex_detail))
        .route("/taskmanagers", get(taskmanagers))
        .route("/taskmanagers/{tmid}", get(taskmanager_detail))
        .route("/jobmanager/config", get(jobmanager_config))
        .route("/jars", get(list_jars))
        .route("/jars/upload", post(upload_jar))
        .route("/jars/{jarid}/run", post(run_jar))
        .route("/metrics", get(prometheus));
    Router::new()
        .merge(api.clone())
        .nest("/v1", api)
        .route("/", get(web_ui))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(32 * 1024 * 1024))
        .with_state(jm)
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "errors": [message.into()] }))).into_response()
}

async fn not_found(uri: axum::http::Uri) -> Response {
    error(StatusCode::NOT_FOUND, format!("Not found: {}", uri.path()))
}

fn parse_job_id(s: &str) -> Result<JobId, Response> {
    JobId::parse(s).ok_or_else(|| error(StatusCode::BAD_REQUEST, format!("`{s}` is not a job id (32 hex digits)")))
}

fn with_job<T>(jm: &JobManager, jid: &str, f: impl FnOnce(&Job) -> T) -> Result<T, Response> {
    let id = parse_job_id(jid)?;
    let st = jm.lock();
    match st.jobs.get(&id) {
        Some(job) => Ok(f(job)),
        None => Err(error(StatusCode::NOT_FOUND, format!("Job {id} not found"))),
    }
}

async fn overview(State(jm): Jm) -> Json<Value> {
    let st = jm.lock();
    let count = |s: JobStatus| st.jobs.values().filter(|j| j.status == s).count();
    let running = st.jobs.values().filter(|j| !j.status.is_terminal()).count();
    Json(json!({
        "taskmanagers": st.tms.len(),
        "slots-total": st.tms.values().map(|t| t.slots).sum::<u32>(),
        "slots-available": st.tms.values().map(|t| t.free_slots()).sum::<u32>(),
        "jobs-running": running,
        "jobs-finished": count(JobStatus::FINISHED),
        "jobs-cancelled": count(JobStatus::CANCELED),
        "jobs-failed": count(JobStatus::FAILED),
        "flink-version": VERSION,
        "flink-commit": "flowc",
    }))
}

async fn dashboard_config() -> Json<Value> {
    Json(json!({
        "refresh-interval": 3000,
        "timezone-name": "Coordinated Universal Time",
        "timezone-offset": 0,
        "flink-version": VERSION,
        "flink-revision": "flowc",
        "features": {"web-submit": true, "web-cancel": true, "web-rescale": false, "web-history": false}
    }))
}

async fn jobs(State(jm): Jm) -> Json<Value> {
    let st = jm.lock();
    let jobs: Vec<Value> =
        st.jobs.values().map(|j| json!({"id": j.id.to_string(), "status": j.status.name()})).collect();
    Json(json!({ "jobs": jobs }))
}

fn task_counts_lower(job: &Job) -> Value {
    let mut m = serde_json::Map::new();
    for s in TaskStatus::ALL {
        let n = job.all_tasks().filter(|t| t.status == s).count();
        m.insert(s.name().to_lowercase(), json!(n));
    }
    m.insert("total".into(), json!(job.all_tasks().count()));
    Value::Object(m)
}

fn duration(job: &Job) -> i64 {
    if job.end_time > 0 {
        job.end_time - job.start_time
    } else {
        now_ms() - job.start_time
    }
}

fn job_overview(job: &Job) -> Value {
    json!({
        "jid": job.id.to_string(),
        "name": job.name,
        "jobType": "STREAMING",
        "schedulerType": "Default",
        "start-time": job.start_time,
        "end-time": job.end_time,
        "duration": duration(job),
        "state": job.status.name(),
        "last-modification": job.last_modification,
        "tasks": task_counts_lower(job),
        "pending-operators": 0,
    })
}

async fn jobs_overview(State(jm): Jm) -> Json<Value> {
    let st = jm.lock();
    let mut jobs: Vec<&Job> = st.jobs.values().collect();
    jobs.sort_by_key(|j| std::cmp::Reverse(j.start_time));
    Json(json!({ "jobs": jobs.into_iter().map(job_overview).collect::<Vec<_>>() }))
}

fn task_counts_upper<'a>(tasks: impl Iterator<Item = &'a crate::jobmanager::TaskEntry> + Clone) -> Value {
    let mut m = serde_json::Map::new();
    for s in TaskStatus::ALL {
        m.insert(s.name().into(), json!(tasks.clone().filter(|t| t.status == s).count()));
    }
    Value::Object(m)
}

/// A vertex's state from its tasks', as Flink aggregates it.
fn vertex_status(tasks: &[crate::jobmanager::TaskEntry]) -> TaskStatus {
    let any = |s: TaskStatus| tasks.iter().any(|t| t.status == s);
    let all = |s: TaskStatus| tasks.iter().all(|t| t.status == s);
    if any(TaskStatus::FAILED) {
        TaskStatus::FAILED
    } else if any(TaskStatus::CANCELING) {
        TaskStatus::CANCELING
    } else if all(TaskStatus::FINISHED) {
        TaskStatus::FINISHED
    } else if all(TaskStatus::CANCELED) {
        TaskStatus::CANCELED
    } else if all(TaskStatus::RUNNING) {
        TaskStatus::RUNNING
    } else if any(TaskStatus::INITIALIZING) || any(TaskStatus::RUNNING) {
        if any(TaskStatus::RUNNING) {
            TaskStatus::RUNNING
        } else {
            TaskStatus::INITIALIZING
        }
    } else if any(TaskStatus::DEPLOYING) {
        TaskStatus::DEPLOYING
    } else if any(TaskStatus::SCHEDULED) {
        TaskStatus::SCHEDULED
    } else {
        TaskStatus::CREATED
    }
}

fn vertex_json(job: &Job, n: petgraph::graph::NodeIndex) -> Value {
    let v = &job.graph.graph[n];
    let tasks = &job.tasks[n.index()];
    let start = tasks.iter().map(|t| t.start_time).filter(|t| *t > 0).min().unwrap_or(-1);
    let end = if tasks.iter().all(|t| t.status.is_terminal()) {
        tasks.iter().map(|t| t.end_time).max().unwrap_or(-1)
    } else {
        -1
    };
    let sum = |f: fn(&crate::rpc::TaskMetrics) -> u64| tasks.iter().map(|t| f(&t.metrics)).sum::<u64>();
    let has_inputs = !job.graph.inputs(n).is_empty();
    let has_outputs = !job.graph.outputs(n).is_empty();
    json!({
        "id": v.id.to_hex(),
        "slotSharingGroupId": "a410eaca552aedc4f0225118b07f9e90",
        "name": v.name,
        "maxParallelism": v.max_parallelism,
        "parallelism": v.parallelism,
        "status": vertex_status(tasks).name(),
        "start-time": start,
        "end-time": end,
        "duration": if start > 0 { (if end > 0 { end } else { now_ms() }) - start } else { -1 },
        "tasks": task_counts_upper(tasks.iter()),
        "metrics": {
            "read-bytes": if has_inputs { sum(|m| m.bytes_in) } else { 0 },
            "read-bytes-complete": true,
            "write-bytes": if has_outputs { sum(|m| m.bytes_out) } else { 0 },
            "write-bytes-complete": true,
            "read-records": if has_inputs { sum(|m| m.records_in) } else { 0 },
            "read-records-complete": true,
            "write-records": if has_outputs { sum(|m| m.records_out) } else { 0 },
            "write-records-complete": true,
            "accumulated-backpressured-time": 0,
            "accumulated-idle-time": 0,
            "accumulated-busy-time": 0.0
        }
    })
}

fn plan_json(job: &Job) -> Value {
    serde_json::to_value(flowc_compiler::explain::flink_plan(&job.graph, Some(job.id.to_string())))
        .unwrap_or(Value::Null)
}

fn job_json(job: &Job) -> Value {
    let mut timestamps = serde_json::Map::new();
    for s in JobStatus::ALL {
        timestamps.insert(s.name().into(), json!(job.timestamps.get(&s).copied().unwrap_or(0)));
    }
    let vertices: Vec<Value> = job.graph.topological().into_iter().map(|n| vertex_json(job, n)).collect();
    json!({
        "jid": job.id.to_string(),
        "application-id": job.id.to_string(),
        "name": job.name,
        "isStoppable": false,
        "state": job.status.name(),
        "job-type": "STREAMING",
        "schedulerType": "Default",
        "start-time": job.start_time,
        "end-time": job.end_time,
        "duration": duration(job),
        "maxParallelism": -1,
        "now": now_ms(),
        "timestamps": timestamps,
        "vertices": vertices,
        "status-counts": task_counts_upper(job.all_tasks()),
        "plan": plan_json(job),
        "pending-operators": 0,
    })
}

async fn job_detail(State(jm): Jm, Path(jid): Path<String>) -> Response {
    match with_job(&jm, &jid, job_json) {
        Ok(v) => Json(v).into_response(),
        Err(r) => r,
    }
}

async fn job_plan(State(jm): Jm, Path(jid): Path<String>) -> Response {
    match with_job(&jm, &jid, |j| json!({ "plan": plan_json(j) })) {
        Ok(v) => Json(v).into_response(),
        Err(r) => r,
    }
}

async fn job_config(State(jm): Jm, Path(jid): Path<String>) -> Response {
    let r = with_job(&jm, &jid, |j| {
        json!({
            "jid": j.id.to_string(),
            "name": j.name,
            "execution-config": {
                "restart-strategy": "Cluster level default restart strategy",
                "job-parallelism": j.graph.total_parallelism(),
                "object-reuse-mode": false,
                "user-config": {}
            }
        })
    });
    match r {
        Ok(v) => Json(v).into_response(),
        Err(r) => r,
    }
}

async fn job_exceptions(State(jm): Jm, Path(jid): Path<String>) -> Response {
    let r = with_job(&jm, &jid, |j| {
        let entries: Vec<Value> = j
            .exceptions
            .iter()
            .rev()
            .map(|e| {
                json!({
                    "exceptionName": "org.flowc.JobFailure",
                    "stacktrace": e.message,
                    "timestamp": e.timestamp,
                    "taskName": e.task,
                    "endpoint": e.location,
                    "taskManagerId": e.location,
                    "failureLabels": {},
                    "concurrentExceptions": []
                })
            })
            .collect();
        let mut v = json!({ "exceptionHistory": { "entries": entries, "truncated": false } });
        if let Some(last) = j.exceptions.last() {
            v["root-exception"] = json!(last.message);
            v["timestamp"] = json!(last.timestamp);
        }
        v
    });
    match r {
        Ok(v) => Json(v).into_response(),
        Err(r) => r,
    }
}

/// Job-scoped metrics: `GET /jobs/:jid/metrics` lists them, `?get=a,b` gives values.
async fn job_metrics(State(jm): Jm, Path(jid): Path<String>, Query(q): Query<HashMap<String, String>>) -> Response {
    let r = with_job(&jm, &jid, |j| {
        let c = &j.checkpoints;
        let last = c.last_completed_stats();
        let last_v = |f: fn(&Stats) -> i64| last.map_or("-1".to_string(), |s| f(s).to_string());
        let mut values: Vec<(&str, String)> = vec![
            ("numRestarts", j.num_restarts.to_string()),
            ("uptime", if j.status == JobStatus::RUNNING { (now_ms() - j.start_time).to_string() } else { "0".into() }),
            ("downtime", "0".into()),
            ("fullRestarts", j.num_restarts.to_string()),
            ("lastCheckpointSize", last_v(|s| s.state_size as i64)),
            ("lastCheckpointFullSize", last_v(|s| s.state_size as i64)),
            ("lastCheckpointDuration", last_v(|s| s.duration_ms)),
            ("lastCompletedCheckpointId", last_v(|s| s.id as i64)),
            ("lastCheckpointCompletedTimestamp", last_v(|s| s.latest_ack_ms)),
            ("lastCheckpointExternalPath", last.and_then(|s| s.external_path.clone()).unwrap_or_else(|| "n/a".into())),
            ("numberOfCompletedCheckpoints", c.counts.completed.to_string()),
            ("numberOfFailedCheckpoints", c.counts.failed.to_string()),
            ("numberOfInProgressCheckpoints", usize::from(c.pending.is_some()).to_string()),
            (
                "totalNumberOfCheckpoints",
                (c.counts.completed + c.counts.failed + u64::from(c.pending.is_some())).to_string(),
            ),
            ("numRecordsDecodeErrors", j.all_tasks().map(|t| t.metrics.decode_errors).sum::<u64>().to_string()),
            ("numLateRecordsDropped", j.all_tasks().map(|t| t.metrics.late_records).sum::<u64>().to_string()),
        ];
        values.sort_by_key(|(k, _)| *k);
        match q.get("get") {
            None => Value::Array(values.iter().map(|(k, _)| json!({ "id": k })).collect()),
            Some(wanted) => Value::Array(
                wanted
                    .split(',')
                    .filter_map(|w| values.iter().find(|(k, _)| *k == w.trim()))
                    .map(|(k, v)| json!({ "id": k, "value": v }))
                    .collect(),
            ),
        }
    });
    match r {
        Ok(v) => Json(v).into_response(),
        Err(r) => r,
    }
}

async fn vertex_detail(State(jm): Jm, Path((jid, vid)): Path<(String, String)>) -> Response {
    let r = with_job(&jm, &jid, |j| {
        let n = j.graph.graph.node_indices().find(|n| j.graph.graph[*n].id.to_hex() == vid)?;
        let v = &j.graph.graph[n];
        let has_inputs = !j.graph.inputs(n).is_empty();
        let subtasks: Vec<Value> = j.tasks[n.index()]
            .iter()
            .enumerate()
            .map(|(i, t)| {
                json!({
                    "subtask": i,
                    "status": t.status.name(),
                    "attempt": j.attempt.saturating_sub(1),
                    "endpoint": t.tm,
                    "taskmanager-id": t.tm,
                    "start-time": t.start_time,
                    "end-time": t.end_time,
                    "duration": if t.start_time > 0 { (if t.end_time > 0 { t.end_time } else { now_ms() }) - t.start_time } else { -1 },
                    "metrics": {
                        // As for the vertex: a source reads nothing from another task.
                        "read-records": if has_inputs { t.metrics.records_in } else { 0 },
                        "write-records": t.metrics.records_out,
                        "read-bytes": if has_inputs { t.metrics.bytes_in } else { 0 },
                        "write-bytes": t.metrics.bytes_out
                    }
                })
            })
            .collect();
        Some(json!({
            "id": v.id.to_hex(), "name": v.name, "parallelism": v.parallelism, "maxParallelism": v.max_parallelism,
            "now": now_ms(), "subtasks": subtasks
        }))
    });
    match r {
        Ok(Some(v)) => Json(v).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, format!("Vertex {vid} not found in job {jid}")),
        Err(r) => r,
    }
}

async fn cancel_job(State(jm): Jm, Path(jid): Path<String>, Query(q): Query<HashMap<String, String>>) -> Response {
    let id = match parse_job_id(&jid) {
        Ok(id) => id,
        Err(r) => return r,
    };
    match q.get("mode").map(String::as_str) {
        None | Some("cancel") => {}
        Some(other) => return error(StatusCode::BAD_REQUEST, format!("unknown mode `{other}`: use `cancel`")),
    }
    match jm.cancel(id) {
        Ok(()) => (StatusCode::ACCEPTED, Json(json!({}))).into_response(),
        Err(e @ CancelError::NotFound(_)) => error(StatusCode::NOT_FOUND, e.to_string()),
        Err(e @ CancelError::Terminal(..)) => error(StatusCode::CONFLICT, e.to_string()),
    }
}

/// `POST /jobs`: the body is a compiled plan (`flowc compile`), binary or JSON.
async fn submit_plan(State(jm): Jm, Query(q): Query<HashMap<String, String>>, body: Bytes) -> Response {
    let bytes = if body.first() == Some(&b'{') {
        match flowc_compiler::plan_file::from_json(&String::from_utf8_lossy(&body)) {
            Ok(g) => flowc_compiler::plan_file::to_bytes(&g),
            Err(e) => return error(StatusCode::BAD_REQUEST, format!("the plan is not valid: {e}")),
        }
    } else {
        body.to_vec()
    };
    submit_bytes(&jm, bytes, restore_from_query(&q))
}

fn submit_bytes(jm: &Arc<JobManager>, bytes: Vec<u8>, restore: RestoreRequest) -> Response {
    match jm.submit(bytes, restore) {
        Ok(id) => (StatusCode::ACCEPTED, Json(json!({ "jobid": id.to_string(), "jobUrl": format!("/jobs/{id}") })))
            .into_response(),
        Err(e @ (SubmitError::BadPlan(_) | SubmitError::BadSavepoint { .. } | SubmitError::Unsupported(_))) => {
            error(StatusCode::BAD_REQUEST, e.to_string())
        }
    }
}

/// `savepointPath` and `allowNonRestoredState` from a query string.
fn restore_from_query(q: &HashMap<String, String>) -> RestoreRequest {
    RestoreRequest {
        savepoint_path: q.get("savepointPath").filter(|p| !p.is_empty()).cloned(),
        allow_non_restored_state: q.get("allowNonRestoredState").is_some_and(|v| v == "true"),
    }
}

fn savepoint_error(e: SavepointError) -> Response {
    let status = match &e {
        SavepointError::NotFound(_) | SavepointError::UnknownTrigger(_) => StatusCode::NOT_FOUND,
        SavepointError::NotRunning(..) | SavepointError::Stopping(_) | SavepointError::NotAllRunning(..) => {
            StatusCode::CONFLICT
        }
        SavepointError::NoDirectory => StatusCode::BAD_REQUEST,
    };
    error(status, e.to_string())
}

fn json_body<T: for<'de> Deserialize<'de> + Default>(body: &Bytes) -> Result<T, Response> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| error(StatusCode::BAD_REQUEST, format!("malformed request body: {e}")))
}

#[derive(Deserialize, Default)]
struct SavepointRequestBody {
    #[serde(rename = "target-directory", alias = "targetDirectory")]
    target_directory: Option<String>,
    #[serde(rename = "cancel-job", alias = "cancelJob", default)]
    cancel_job: bool,
    #[serde(rename = "triggerId")]
    trigger_id: Option<String>,
    #[serde(rename = "formatType")]
    #[allow(dead_code)]
    format_type: Option<String>,
}

/// `POST /jobs/:jid/savepoints` → 202 `{"request-id": …}`.
async fn trigger_savepoint(State(jm): Jm, Path(jid): Path<String>, body: Bytes) -> Response {
    let id = match parse_job_id(&jid) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let req: SavepointRequestBody = match json_body(&body) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let stop = req.cancel_job.then_some(StopMode { drain: false });
    match jm.trigger_savepoint(id, req.target_directory, stop, req.trigger_id) {
        Ok(t) => (StatusCode::ACCEPTED, Json(json!({ "request-id": t }))).into_response(),
        Err(e) => savepoint_error(e),
    }
}

#[derive(Deserialize, Default)]
struct StopRequestBody {
    #[serde(rename = "targetDirectory", alias = "target-directory")]
    target_directory: Option<String>,
    #[serde(default)]
    drain: bool,
    #[serde(rename = "triggerId")]
    trigger_id: Option<String>,
    #[serde(rename = "formatType")]
    #[allow(dead_code)]
    format_type: Option<String>,
}

/// `POST /jobs/:jid/stop`: stop-with-savepoint → 202 `{"request-id": …}`.
async fn stop_job(State(jm): Jm, Path(jid): Path<String>, body: Bytes) -> Response {
    let id = match parse_job_id(&jid) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let req: StopRequestBody = match json_body(&body) {
        Ok(r) => r,
        Err(r) => return r,
    };
    match jm.trigger_savepoint(id, req.target_directory, Some(StopMode { drain: req.drain }), req.trigger_id) {
        Ok(t) => (StatusCode::ACCEPTED, Json(json!({ "request-id": t }))).into_response(),
        Err(e) => savepoint_error(e),
    }
}

/// `GET /jobs/:jid/savepoints/:triggerid`, in Flink's asynchronous-operation shape.
async fn savepoint_status(State(jm): Jm, Path((jid, tid)): Path<(String, String)>) -> Response {
    let id = match parse_job_id(&jid) {
        Ok(id) => id,
        Err(r) => return r,
    };
    match jm.savepoint_status(id, &tid) {
        Ok(SavepointStatus::InProgress) => Json(json!({ "status": { "id": "IN_PROGRESS" }, "operation": null })).into_response(),
        Ok(SavepointStatus::Completed { location }) => {
            Json(json!({ "status": { "id": "COMPLETED" }, "operation": { "location": location } })).into_response()
        }
        Ok(SavepointStatus::Failed { reason }) => Json(json!({
            "status": { "id": "COMPLETED" },
            "operation": { "failure-cause": { "class": "org.flowc.SavepointFailure", "stack-trace": reason, "serialized-throwable": null } }
        }))
        .into_response(),
        Err(e) => savepoint_error(e),
    }
}

fn stats_json(s: &Stats) -> Value {
    json!({
        "className": match s.status { crate::checkpoint::coordinator::Status::Completed => "completed", crate::checkpoint::coordinator::Status::Failed => "failed", crate::checkpoint::coordinator::Status::InProgress => "in_progress" },
        "id": s.id,
        "status": s.status.name(),
        "is_savepoint": s.savepoint,
        "savepointFormat": if s.savepoint { json!("CANONICAL") } else { Value::Null },
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
        "tasks": {},
        "external_path": s.external_path,
        "discarded": false,
        "failure_message": s.failure,
    })
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

/// `GET /jobs/:jid/checkpoints`: counts, summary, latest and history.
async fn job_checkpoints(State(jm): Jm, Path(jid): Path<String>) -> Response {
    use crate::checkpoint::coordinator::Status;
    let r = with_job(&jm, &jid, |j| {
        let c = &j.checkpoints;
        let done: Vec<&Stats> = c.history.iter().filter(|s| s.status == Status::Completed).collect();
        let sizes: Vec<i64> = done.iter().map(|s| s.state_size as i64).collect();
        let durations: Vec<i64> = done.iter().map(|s| s.duration_ms).collect();
        let latest = |f: &dyn Fn(&Stats) -> bool| c.history.iter().find(|s| f(s)).map_or(Value::Null, stats_json);
        let restored = c.last_restore.as_ref().map_or(Value::Null, |r| {
            json!({ "id": r.id, "restore_timestamp": r.timestamp, "is_savepoint": r.savepoint, "external_path": format!("file:{}", r.dir.display()) })
        });
        json!({
            "counts": {
                "restored": c.counts.restored,
                "total": c.counts.completed + c.counts.failed + u64::from(c.pending.is_some()),
                "in_progress": u64::from(c.pending.is_some()),
                "completed": c.counts.completed,
                "failed": c.counts.failed,
            },
            "summary": {
                "checkpointed_size": summary(&sizes),
                "state_size": summary(&sizes),
                "end_to_end_duration": summary(&durations),
                "alignment_buffered": summary(&[]),
                "processed_data": summary(&[]),
                "persisted_data": summary(&[]),
            },
            "latest": {
                "completed": latest(&|s| s.status == Status::Completed && !s.savepoint),
                "savepoint": latest(&|s| s.status == Status::Completed && s.savepoint),
                "failed": latest(&|s| s.status == Status::Failed),
                "restored": restored,
            },
            "history": c.history.iter().map(stats_json).collect::<Vec<_>>(),
        })
    });
    match r {
        Ok(v) => Json(v).into_response(),
        Err(r) => r,
    }
}

fn upload_dir(jm: &JobManager) -> std::path::PathBuf {
    std::path::PathBuf::from(jm.config.get("web.upload.dir"))
}

async fn list_jars(State(jm): Jm) -> Json<Value> {
    let dir = upload_dir(&jm);
    let mut files = Vec::new();
    if let Ok(rd) = std::fs::read_dir(&dir) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            let uploaded = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_millis() as i64);
            let original = name.split_once('_').map_or(name.clone(), |(_, n)| n.to_string());
            files.push(json!({ "id": name, "name": original, "uploaded": uploaded, "entry": [] }));
        }
    }
    Json(
        json!({ "address": format!("http://{}:{}", jm.config.get("rest.address"), jm.config.get("rest.port")), "files": files }),
    )
}

/// `POST /jars/upload`: multipart field `jarfile` holding a job file or a compiled plan.
async fn upload_jar(State(jm): Jm, mut multipart: Multipart) -> Response {
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => return error(StatusCode::BAD_REQUEST, "no `jarfile` field in the upload"),
            Err(e) => return error(StatusCode::BAD_REQUEST, format!("malformed multipart body: {e}")),
        };
        if field.name() != Some("jarfile") {
            continue;
        }
        let original = field.file_name().unwrap_or("job.flow").replace(['/', '\\'], "_");
        let data = match field.bytes().await {
            Ok(d) => d,
            Err(e) => return error(StatusCode::BAD_REQUEST, format!("cannot read the upload: {e}")),
        };
        let is_plan = data.starts_with(flowc_compiler::plan_file::MAGIC);
        if !is_plan {
            if let Err(e) = flowc_dsl::load::from_bytes(original.clone(), data.to_vec()) {
                return error(StatusCode::BAD_REQUEST, format!("not a job file or a compiled plan: {e}"));
            }
        }
        let dir = upload_dir(&jm);
        if let Err(e) = std::fs::create_dir_all(&dir) {
            return error(StatusCode::INTERNAL_SERVER_ERROR, format!("cannot create {}: {e}", dir.display()));
        }
        let id = format!("{}_{original}", JobId::random());
        let path = dir.join(&id);
        if let Err(e) = std::fs::write(&path, &data) {
            return error(StatusCode::INTERNAL_SERVER_ERROR, format!("cannot store the upload: {e}"));
        }
        return Json(json!({ "filename": path.display().to_string(), "status": "success" })).into_response();
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RunRequest {
    program_args: Option<String>,
    program_args_list: Option<Vec<String>>,
    parallelism: Option<u32>,
    savepoint_path: Option<String>,
    allow_non_restored_state: Option<bool>,
}

/// `POST /jars/:id/run`: compiles an uploaded job file with the given
/// program arguments and parallelism, and submits it.
async fn run_jar(
    State(jm): Jm,
    Path(jarid): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let mut req: RunRequest = if body.iter().all(u8::is_ascii_whitespace) {
        RunRequest::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(r) => r,
            Err(e) => return error(StatusCode::BAD_REQUEST, format!("malformed request body: {e}")),
        }
    };
    if req.parallelism.is_none() {
        req.parallelism = q.get("parallelism").and_then(|p| p.parse().ok());
    }
    if req.program_args.is_none() {
        req.program_args = q.get("programArgs").or_else(|| q.get("program-args")).cloned();
    }
    let restore = RestoreRequest {
        savepoint_path: req
            .savepoint_path
            .clone()
            .filter(|p| !p.is_empty())
            .or_else(|| q.get("savepointPath").cloned()),
        allow_non_restored_state: req.allow_non_restored_state.unwrap_or(false)
            || q.get("allowNonRestoredState").is_some_and(|v| v == "true"),
    };
    if jarid.contains('/') || jarid.contains("..") {
        return error(StatusCode::BAD_REQUEST, "bad jar id");
    }
    let path = upload_dir(&jm).join(&jarid);
    let data = match std::fs::read(&path) {
        Ok(d) => d,
        Err(_) => {
            return error(
                StatusCode::NOT_FOUND,
                format!("Jar file {jarid} not found; upload it with POST /jars/upload"),
            )
        }
    };
    if data.starts_with(flowc_compiler::plan_file::MAGIC) {
        return submit_bytes(&jm, data, restore);
    }
    let name = jarid.split_once('_').map_or(jarid.clone(), |(_, n)| n.to_string());
    let src = match flowc_dsl::load::from_bytes(name, data) {
        Ok(s) => s,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let args = match (&req.program_args_list, &req.program_args) {
        (Some(list), _) => ProgramArgs::parse(list),
        (None, Some(line)) => ProgramArgs::parse_line(line),
        (None, None) => Ok(ProgramArgs::default()),
    };
    let args = match args {
        Ok(a) => a,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    // Without a parallelism in the request or the job, the cluster's default applies.
    let sets_own = flowc_dsl::parse(&src.text)
        .file
        .items
        .iter()
        .any(|i| matches!(i, flowc_dsl::ast::Item::Set(s) if s.key.text == "parallelism.default"));
    let parallelism =
        req.parallelism.or_else(
            || {
                if sets_own {
                    None
                } else {
                    jm.config.get("parallelism.default").trim().parse().ok()
                }
            },
        );
    match flowc_compiler::compile(&src, &CheckOptions { args, parallelism }) {
        Ok(c) => submit_bytes(&jm, flowc_compiler::plan_file::to_bytes(&c.graph), restore),
        Err(diags) => {
            let msgs: Vec<String> = diags.iter().filter(|d| d.is_error()).map(|d| src.render(d)).collect();
            (StatusCode::BAD_REQUEST, Json(json!({ "errors": msgs }))).into_response()
        }
    }
}

fn tm_json(t: &crate::jobmanager::TaskManagerEntry, detail: bool) -> Value {
    let assigned: usize = t.metrics.len();
    let mut v = json!({
        "id": t.id,
        "path": format!("flowc.tcp://{}/taskmanager", t.data_addr),
        "dataPort": t.data_addr.rsplit(':').next().and_then(|p| p.parse::<u16>().ok()).unwrap_or(0),
        "jmxPort": -1,
        "timeSinceLastHeartbeat": t.last_heartbeat_ms,
        "slotsNumber": t.slots,
        "freeSlots": t.free_slots(),
        "assignedTasks": assigned,
        "totalResource": {"cpuCores": t.cpu_cores as f64, "taskHeapMemory": 0, "taskOffHeapMemory": 0, "managedMemory": 0, "networkMemory": 0, "extendedResources": {}},
        "freeResource": {"cpuCores": 0.0, "taskHeapMemory": 0, "taskOffHeapMemory": 0, "managedMemory": 0, "networkMemory": 0, "extendedResources": {}},
        "hardware": {"cpuCores": t.cpu_cores, "physicalMemory": t.physical_memory, "freeMemory": 0, "managedMemory": 0},
        "memoryConfiguration": {"frameworkHeap": 0, "taskHeap": 0, "frameworkOffHeap": 0, "taskOffHeap": 0, "networkMemory": 0, "managedMemory": 0, "jvmMetaspace": 0, "jvmOverhead": 0, "totalFlinkMemory": 0, "totalProcessMemory": 0}
    });
    if detail {
        v["pid"] = json!(t.pid);
        v["registered"] = json!(t.registered_ms);
    }
    v
}

async fn taskmanagers(State(jm): Jm) -> Json<Value> {
    let st = jm.lock();
    Json(json!({ "taskmanagers": st.tms.values().map(|t| tm_json(t, false)).collect::<Vec<_>>() }))
}

async fn taskmanager_detail(State(jm): Jm, Path(tmid): Path<String>) -> Response {
    let st = jm.lock();
    match st.tms.get(&tmid) {
        Some(t) => Json(tm_json(t, true)).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("TaskManager {tmid} not found")),
    }
}

async fn jobmanager_config(State(jm): Jm) -> Json<Value> {
    Json(Value::Array(jm.config.entries().into_iter().map(|(k, v)| json!({ "key": k, "value": v })).collect()))
}

/// Prometheus text format.
async fn prometheus(State(jm): Jm) -> Response {
    let st = jm.lock();
    let mut out = String::new();
    out.push_str("# TYPE flowc_jobmanager_numRegisteredTaskManagers gauge\n");
    out.push_str(&format!("flowc_jobmanager_numRegisteredTaskManagers {}\n", st.tms.len()));
    out.push_str("# TYPE flowc_jobmanager_taskSlotsTotal gauge\n");
    out.push_str(&format!("flowc_jobmanager_taskSlotsTotal {}\n", st.tms.values().map(|t| t.slots).sum::<u32>()));
    out.push_str("# TYPE flowc_jobmanager_taskSlotsAvailable gauge\n");
    out.push_str(&format!(
        "flowc_jobmanager_taskSlotsAvailable {}\n",
        st.tms.values().map(|t| t.free_slots()).sum::<u32>()
    ));
    out.push_str("# TYPE flowc_jobmanager_numRunningJobs gauge\n");
    out.push_str(&format!(
        "flowc_jobmanager_numRunningJobs {}\n",
        st.jobs.values().filter(|j| j.status == JobStatus::RUNNING).count()
    ));
    out.push_str("# TYPE flowc_job_numRestarts gauge\n");
    for j in st.jobs.values() {
        out.push_str(&format!(
            "flowc_job_numRestarts{{job_id=\"{}\",job_name=\"{}\"}} {}\n",
            j.id,
            j.name.replace('"', "'"),
            j.attempt.saturating_sub(1)
        ));
    }
    out.push_str("# TYPE flowc_task_numRecordsIn counter\n");
    for j in st.jobs.values() {
        for (vi, tasks) in j.tasks.iter().enumerate() {
            for (si, t) in tasks.iter().enumerate() {
                out.push_str(&format!(
                    "flowc_task_numRecordsIn{{job_id=\"{}\",vertex=\"{}\",subtask=\"{si}\"}} {}\n",
                    j.id, vi, t.metrics.records_in
                ));
            }
        }
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}

async fn web_ui() -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], include_str!("web/index.html")).into_response()
}
