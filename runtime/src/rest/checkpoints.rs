//! Checkpoints and savepoints over REST: `/jobs/:jid/checkpoints`,
//! `POST /jobs/:jid/savepoints`, `POST /jobs/:jid/stop` and the status of a
//! savepoint operation, in Flink's shapes.

use super::{body, error, parse_job_id, with_job, Jm, RestState};
use crate::checkpoint::StopMode;
use crate::jobmanager::coordinator::{Stats, Status};
use crate::jobmanager::savepoints::SavepointFormat;
use crate::jobmanager::{SavepointError, SavepointStatus};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

fn savepoint_error(e: SavepointError) -> Response {
    let status = match &e {
        SavepointError::NotFound(_) | SavepointError::UnknownTrigger(_) => StatusCode::NOT_FOUND,
        SavepointError::NotRunning(..) | SavepointError::Stopping(_) | SavepointError::NotAllRunning(..) => {
            StatusCode::CONFLICT
        }
        SavepointError::NoDirectory | SavepointError::PathNotAllowed(_) => StatusCode::BAD_REQUEST,
    };
    error(status, e.to_string())
}

/// A control request's JSON body (empty: the defaults), at most [`body::MAX_JSON_BODY`] bytes.
pub(super) async fn json_body<T: for<'de> Deserialize<'de> + Default>(
    s: &RestState,
    request: Body,
) -> Result<T, Response> {
    let max = body::MAX_JSON_BODY.min(usize::try_from(s.limits.max_content_length).unwrap_or(usize::MAX));
    let body = body::read(request, max, "The JSON request body").await?;
    if body.iter().all(u8::is_ascii_whitespace) || body.trim_ascii() == b"null" {
        return Ok(T::default());
    }
    serde_json::from_slice(&body).map_err(|e| error(StatusCode::BAD_REQUEST, format!("malformed request body: {e}")))
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
    format_type: Option<String>,
}

/// `formatType`: CANONICAL (the default) or NATIVE, else a 400.
fn format(v: Option<&str>) -> Result<SavepointFormat, Response> {
    match v {
        None => Ok(SavepointFormat::default()),
        Some(f) => SavepointFormat::parse(f)
            .ok_or_else(|| error(StatusCode::BAD_REQUEST, format!("unknown formatType `{f}`: CANONICAL or NATIVE"))),
    }
}

/// `POST /jobs/:jid/savepoints` → 202 `{"request-id": …}`.
pub(super) async fn trigger_savepoint(State(s): State<RestState>, Path(jid): Path<String>, request: Body) -> Response {
    let id = match parse_job_id(&jid) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let req: SavepointRequestBody = match json_body(&s, request).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    // Cancel-with-savepoint is a cancel: `web.cancel.enable` applies.
    if req.cancel_job {
        if let Err(r) = s.access.check_cancel() {
            return r;
        }
    }
    let fmt = match format(req.format_type.as_deref()) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let jm = s.jm;
    let stop = req.cancel_job.then_some(StopMode { drain: false });
    match jm.trigger_savepoint(id, req.target_directory, stop, req.trigger_id, fmt) {
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
    format_type: Option<String>,
}

/// `POST /jobs/:jid/stop`: stop-with-savepoint → 202 `{"request-id": …}`.
pub(super) async fn stop_job(State(s): State<RestState>, Path(jid): Path<String>, request: Body) -> Response {
    let id = match parse_job_id(&jid) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let req: StopRequestBody = match json_body(&s, request).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let fmt = match format(req.format_type.as_deref()) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let jm = s.jm;
    match jm.trigger_savepoint(id, req.target_directory, Some(StopMode { drain: req.drain }), req.trigger_id, fmt) {
        Ok(t) => (StatusCode::ACCEPTED, Json(json!({ "request-id": t }))).into_response(),
        Err(e) => savepoint_error(e),
    }
}

/// `GET /jobs/:jid/savepoints/:triggerid`, in Flink's asynchronous-operation shape.
pub(super) async fn savepoint_status(State(jm): Jm, Path((jid, tid)): Path<(String, String)>) -> Response {
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
        "className": match s.status { Status::Completed => "completed", Status::Failed => "failed", Status::InProgress => "in_progress" },
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
pub(super) async fn job_checkpoints(State(jm): Jm, Path(jid): Path<String>) -> Response {
    let r = with_job(&jm, &jid, |j| {
        let c = &j.checkpoints;
        let done: Vec<&Stats> = c.history.iter().filter(|s| s.status == Status::Completed).collect();
        let sizes: Vec<i64> = done.iter().map(|s| s.state_size as i64).collect();
        let durations: Vec<i64> = done.iter().map(|s| s.duration_ms).collect();
        let latest = |f: &dyn Fn(&Stats) -> bool| c.history.iter().find(|s| f(s)).map_or(Value::Null, stats_json);
        let restored = c.last_restore.as_ref().map_or(Value::Null, |r| {
            json!({ "id": r.id, "restore_timestamp": r.timestamp, "is_savepoint": r.savepoint, "external_path": crate::checkpoint::storage::location_uri(&r.dir) })
        });
        json!({
            "counts": {
                "restored": c.counts.restored,
                "total": c.total(),
                "in_progress": u64::from(c.in_progress),
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
