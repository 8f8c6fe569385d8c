//! The job views and job control of the REST API: `/jobs`, `/jobs/overview`,
//! `/jobs/:jid` and its plan, config, exceptions, metrics and vertices;
//! `PATCH /jobs/:jid` (cancel) and `POST /jobs` (submit a compiled plan).

use super::{body, error, parse_job_id, with_job, Jm, RestState};
use crate::clock::now_ms;
use crate::ids::{JobStatus, TaskStatus};
use crate::jobmanager::coordinator::Stats;
use crate::jobmanager::{CancelError, JobDetail, JobManager, JobOverview, RestoreRequest, SubmitError, TaskView};
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;

pub(super) async fn jobs(State(jm): Jm) -> Json<Value> {
    let jobs: Vec<Value> =
        jm.jobs().iter().map(|j| json!({"id": j.id.to_string(), "status": j.status.name()})).collect();
    Json(json!({ "jobs": jobs }))
}

fn task_counts_lower(job: &JobOverview) -> Value {
    let mut m = serde_json::Map::new();
    for s in TaskStatus::ALL {
        m.insert(s.name().to_lowercase(), json!(job.task_counts.get(s)));
    }
    m.insert("total".into(), json!(job.task_counts.total));
    Value::Object(m)
}

fn duration(job: &JobOverview) -> i64 {
    if job.end_time > 0 {
        job.end_time - job.start_time
    } else {
        now_ms() - job.start_time
    }
}

fn job_overview(job: &JobOverview) -> Value {
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

pub(super) async fn jobs_overview(State(jm): Jm) -> Json<Value> {
    let mut jobs = jm.jobs();
    jobs.sort_by_key(|j| std::cmp::Reverse(j.start_time));
    Json(json!({ "jobs": jobs.iter().map(job_overview).collect::<Vec<_>>() }))
}

fn task_counts_upper<'a>(tasks: impl Iterator<Item = &'a TaskView> + Clone) -> Value {
    let mut m = serde_json::Map::new();
    for s in TaskStatus::ALL {
        m.insert(s.name().into(), json!(tasks.clone().filter(|t| t.status == s).count()));
    }
    Value::Object(m)
}

/// A vertex's state from its tasks', as Flink aggregates it.
pub(super) fn vertex_status(tasks: &[TaskView]) -> TaskStatus {
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

fn vertex_json(job: &JobDetail, n: petgraph::graph::NodeIndex) -> Value {
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
            "accumulated-backpressured-time": sum(|m| m.backpressured_ms),
            "accumulated-idle-time": sum(|m| m.idle_ms),
            "accumulated-busy-time": sum(|m| m.busy_ms) as f64
        }
    })
}

/// How many vertices are in each state: Flink counts vertices here, not subtasks.
fn vertex_counts(job: &JobDetail) -> Value {
    let states: Vec<TaskStatus> = job.tasks.iter().map(|t| vertex_status(t)).collect();
    let mut m = serde_json::Map::new();
    for s in TaskStatus::ALL {
        m.insert(s.name().into(), json!(states.iter().filter(|v| **v == s).count()));
    }
    Value::Object(m)
}

pub(super) fn plan_json(job: &JobDetail) -> Value {
    serde_json::to_value(flowc_compiler::explain::flink_plan(&job.graph, Some(job.summary.id.to_string())))
        .unwrap_or(Value::Null)
}

fn job_json(detail: &JobDetail) -> Value {
    let job = &detail.summary;
    let mut timestamps = serde_json::Map::new();
    for s in JobStatus::ALL {
        timestamps.insert(s.name().into(), json!(detail.timestamps.get(&s).copied().unwrap_or(0)));
    }
    let vertices: Vec<Value> = detail.graph.topological().into_iter().map(|n| vertex_json(detail, n)).collect();
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
        "status-counts": vertex_counts(detail),
        "plan": plan_json(detail),
        "pending-operators": 0,
    })
}

pub(super) async fn job_detail(State(jm): Jm, Path(jid): Path<String>) -> Response {
    match with_job(&jm, &jid, job_json) {
        Ok(v) => Json(v).into_response(),
        Err(r) => r,
    }
}

pub(super) async fn job_plan(State(jm): Jm, Path(jid): Path<String>) -> Response {
    match with_job(&jm, &jid, |j| json!({ "plan": plan_json(j) })) {
        Ok(v) => Json(v).into_response(),
        Err(r) => r,
    }
}

pub(super) async fn job_config(State(jm): Jm, Path(jid): Path<String>) -> Response {
    let r = with_job(&jm, &jid, |j| {
        json!({
            "jid": j.summary.id.to_string(),
            "name": j.summary.name,
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

pub(super) async fn job_exceptions(State(jm): Jm, Path(jid): Path<String>) -> Response {
    let r = with_job(&jm, &jid, |j| {
        let entries: Vec<Value> = j
            .exceptions
            .iter()
            .rev()
            .map(|e| {
                let concurrent: Vec<Value> = e
                    .concurrent
                    .iter()
                    .map(|c| {
                        json!({
                            "exceptionName": "org.flowc.TaskFailure",
                            "stacktrace": c.message,
                            "timestamp": c.timestamp,
                            "taskName": null,
                            "endpoint": c.location,
                            "taskManagerId": c.location,
                            "failureLabels": {}
                        })
                    })
                    .collect();
                json!({
                    "exceptionName": "org.flowc.JobFailure",
                    "stacktrace": e.message,
                    "timestamp": e.timestamp,
                    "taskName": e.task,
                    "endpoint": e.location,
                    "taskManagerId": e.location,
                    "failureLabels": {},
                    "concurrentExceptions": concurrent
                })
            })
            .collect();
        let mut v = json!({ "exceptionHistory": { "entries": entries, "truncated": j.exceptions_truncated } });
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
pub(super) async fn job_metrics(
    State(jm): Jm,
    Path(jid): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let r = with_job(&jm, &jid, |j| {
        let c = &j.checkpoints;
        let last = c.last_completed();
        let last_v = |f: fn(&Stats) -> i64| last.map_or("-1".to_string(), |s| f(s).to_string());
        let mut values: Vec<(&str, String)> = vec![
            ("numRestarts", j.summary.num_restarts.to_string()),
            (
                "uptime",
                if j.summary.status == JobStatus::RUNNING {
                    (now_ms() - j.summary.start_time).to_string()
                } else {
                    "0".into()
                },
            ),
            ("downtime", "0".into()),
            ("fullRestarts", j.summary.num_restarts.to_string()),
            ("lastCheckpointSize", last_v(|s| s.state_size as i64)),
            ("lastCheckpointFullSize", last_v(|s| s.state_size as i64)),
            ("lastCheckpointDuration", last_v(|s| s.duration_ms)),
            ("lastCompletedCheckpointId", last_v(|s| s.id as i64)),
            ("lastCheckpointCompletedTimestamp", last_v(|s| s.latest_ack_ms)),
            ("lastCheckpointExternalPath", last.and_then(|s| s.external_path.clone()).unwrap_or_else(|| "n/a".into())),
            ("numberOfCompletedCheckpoints", c.counts.completed.to_string()),
            ("numberOfFailedCheckpoints", c.counts.failed.to_string()),
            ("numberOfInProgressCheckpoints", usize::from(c.in_progress).to_string()),
            ("totalNumberOfCheckpoints", c.total().to_string()),
            ("numRecordsDecodeErrors", j.all_tasks().map(|t| t.metrics.decode_errors).sum::<u64>().to_string()),
            ("numRecordsExpressionErrors", j.all_tasks().map(|t| t.metrics.expression_errors).sum::<u64>().to_string()),
            ("numRecordsEncodeErrors", j.all_tasks().map(|t| t.metrics.encode_errors).sum::<u64>().to_string()),
            ("numRecordsDeadLettered", j.all_tasks().map(|t| t.metrics.dead_lettered).sum::<u64>().to_string()),
            ("numRecordsFromTheFuture", j.all_tasks().map(|t| t.metrics.from_the_future).sum::<u64>().to_string()),
            ("numLateRecordsDropped", j.all_tasks().map(|t| t.metrics.late_records).sum::<u64>().to_string()),
            ("numLateRecordsSideOutput", j.all_tasks().map(|t| t.metrics.late_side_output).sum::<u64>().to_string()),
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

pub(super) async fn cancel_job(
    State(s): State<RestState>,
    Path(jid): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = s.access.check_cancel() {
        return r;
    }
    let jm = s.jm;
    let id = match parse_job_id(&jid) {
        Ok(id) => id,
        Err(r) => return r,
    };
    match q.get("mode").map(String::as_str) {
        None | Some("cancel") => {}
        Some("stop") => {
            return error(
                StatusCode::BAD_REQUEST,
                "mode `stop` is not supported: stop with a savepoint (POST /jobs/:jid/stop)",
            )
        }
        Some(other) => return error(StatusCode::BAD_REQUEST, format!("unknown mode `{other}`: use `cancel`")),
    }
    match jm.cancel(id) {
        Ok(()) => (StatusCode::ACCEPTED, Json(json!({}))).into_response(),
        Err(e @ CancelError::NotFound(_)) => error(StatusCode::NOT_FOUND, e.to_string()),
        // As Flink: cancelling a job that has ended is accepted and does nothing.
        Err(CancelError::Terminal(..)) => (StatusCode::ACCEPTED, Json(json!({}))).into_response(),
    }
}

/// `GET /jobs/:jid/yarn-stop`: Flink's old stop, `PATCH /jobs/:jid?mode=stop`,
/// which flowc refuses as it refuses that mode: stop with a savepoint instead.
pub(super) async fn cancel_job_stop_mode(s: State<RestState>, jid: Path<String>) -> Response {
    let q = HashMap::from([("mode".to_string(), "stop".to_string())]);
    cancel_job(s, jid, Query(q)).await
}

/// `POST /jobs`: the body is a compiled plan (`flowc compile`), binary or
/// JSON, at most `rest.server.max-content-length` bytes (it is buffered).
pub(super) async fn submit_plan(
    State(s): State<RestState>,
    Query(q): Query<HashMap<String, String>>,
    request: Body,
) -> Response {
    if let Err(r) = s.access.check_submit() {
        return r;
    }
    let max = usize::try_from(s.limits.max_content_length).unwrap_or(usize::MAX);
    let body = match body::read(request, max, "The plan (rest.server.max-content-length)").await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let jm = s.jm;
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

pub(super) fn submit_bytes(jm: &Arc<JobManager>, bytes: Vec<u8>, restore: RestoreRequest) -> Response {
    match submit_id(jm, bytes, restore) {
        Ok(id) => (StatusCode::ACCEPTED, Json(json!({ "jobid": id.to_string(), "jobUrl": format!("/jobs/{id}") })))
            .into_response(),
        Err(r) => r,
    }
}

/// Submits a compiled plan; the new job's id, or the 400 to answer.
pub(super) fn submit_id(
    jm: &Arc<JobManager>,
    bytes: Vec<u8>,
    restore: RestoreRequest,
) -> Result<crate::ids::JobId, Response> {
    // A plan that calls Rust UDFs names their artifacts, which must be here.
    if let Ok(g) = flowc_compiler::plan_file::from_bytes(&bytes) {
        if let Err(reason) = jm.blobs.check_plan(&g) {
            return Err(error(StatusCode::BAD_REQUEST, reason));
        }
    }
    jm.submit(bytes, restore).map_err(|e| match e {
        SubmitError::BadPlan(_) | SubmitError::BadSavepoint { .. } | SubmitError::Unsupported(_) => {
            error(StatusCode::BAD_REQUEST, e.to_string())
        }
        SubmitError::Unavailable(_) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    })
}

/// `savepointPath` and `allowNonRestoredState` from a query string.
pub(super) fn restore_from_query(q: &HashMap<String, String>) -> RestoreRequest {
    RestoreRequest {
        savepoint_path: q.get("savepointPath").filter(|p| !p.is_empty()).cloned(),
        allow_non_restored_state: q.get("allowNonRestoredState").is_some_and(|v| v == "true"),
    }
}
