//! Asynchronous operations of the REST API in Flink's trigger/status shape
//! (`202 {"request-id": …}`, then `{"status": {"id": …}, "operation": …}`):
//! a checkpoint by hand (`POST /jobs/:jid/checkpoints`), the disposal of a
//! savepoint (`POST /savepoint-disposal`, what `flink savepoint -d` calls),
//! and `DELETE /cluster`, which shuts the JobManager down.

use super::checkpoints::json_body;
use super::{error, parse_job_id, Jm, RestState};
use crate::jobmanager::coordinator::ManualCheckpoint;
use crate::jobmanager::SavepointError;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

#[derive(Deserialize, Default)]
struct CheckpointRequestBody {
    /// `FULL`, `INCREMENTAL` or `CONFIGURED`: flowc's checkpoints are full.
    #[serde(rename = "checkpointType")]
    checkpoint_type: Option<String>,
    #[serde(rename = "triggerId")]
    trigger_id: Option<String>,
}

fn failure(reason: &str) -> Value {
    json!({ "failure-cause": { "class": "org.flowc.CheckpointFailure", "stack-trace": reason, "serialized-throwable": null } })
}

/// `POST /jobs/:jid/checkpoints` → 202 `{"request-id": …}`.
pub(super) async fn trigger_checkpoint(State(s): State<RestState>, Path(jid): Path<String>, request: Body) -> Response {
    let id = match parse_job_id(&jid) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let req: CheckpointRequestBody = match json_body(&s, request).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    match req.checkpoint_type.as_deref().map(str::to_ascii_uppercase).as_deref() {
        None | Some("FULL" | "CONFIGURED" | "INCREMENTAL") => {}
        Some(other) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("unknown checkpointType `{other}`: FULL, INCREMENTAL or CONFIGURED"),
            )
        }
    }
    match s.jm.trigger_checkpoint(id, req.trigger_id) {
        Ok(t) => (StatusCode::ACCEPTED, Json(json!({ "request-id": t }))).into_response(),
        Err(e @ SavepointError::NotFound(_)) => error(StatusCode::NOT_FOUND, e.to_string()),
        Err(e) => error(StatusCode::CONFLICT, e.to_string()),
    }
}

/// `GET /jobs/:jid/checkpoints/:triggerid`.
pub(super) async fn checkpoint_status(State(jm): Jm, Path((jid, tid)): Path<(String, String)>) -> Response {
    let id = match parse_job_id(&jid) {
        Ok(id) => id,
        Err(r) => return r,
    };
    match jm.checkpoint_status(id, &tid) {
        Ok(ManualCheckpoint::Requested | ManualCheckpoint::Running(_)) => {
            Json(json!({ "status": { "id": "IN_PROGRESS" }, "operation": null })).into_response()
        }
        Ok(ManualCheckpoint::Completed(cid)) => {
            Json(json!({ "status": { "id": "COMPLETED" }, "operation": { "checkpointId": cid } })).into_response()
        }
        Ok(ManualCheckpoint::Failed(reason)) => {
            Json(json!({ "status": { "id": "COMPLETED" }, "operation": failure(&reason) })).into_response()
        }
        Err(SavepointError::UnknownTrigger(_)) => {
            error(StatusCode::NOT_FOUND, format!("There is no checkpoint operation with triggerId={tid} for job {id}."))
        }
        Err(e) => error(StatusCode::NOT_FOUND, e.to_string()),
    }
}

/// Disposals by trigger id: `None` while running, then the outcome.
type Disposals = HashMap<String, Option<Result<(), String>>>;

fn disposals() -> std::sync::MutexGuard<'static, Disposals> {
    static D: OnceLock<Mutex<Disposals>> = OnceLock::new();
    D.get_or_init(Default::default).lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[derive(Deserialize, Default)]
struct DisposalRequestBody {
    #[serde(rename = "savepoint-path")]
    savepoint_path: Option<String>,
}

/// Removes the savepoint at `path`: a directory or `s3://` prefix with a
/// `_metadata`, inside the allowed directories or buckets.
fn dispose(jm: &crate::jobmanager::JobManager, path: &str) -> Result<(), String> {
    let dir = jm.dispose_savepoint(path)?;
    tracing::info!(path = %dir.display(), "Disposed of the savepoint at {}.", dir.display());
    Ok(())
}

/// `POST /savepoint-disposal` → 202 `{"request-id": …}`.
pub(super) async fn trigger_disposal(State(s): State<RestState>, request: Body) -> Response {
    let req: DisposalRequestBody = match json_body(&s, request).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let Some(path) = req.savepoint_path.filter(|p| !p.trim().is_empty()) else {
        return error(StatusCode::BAD_REQUEST, "the request names no `savepoint-path`");
    };
    let trigger = crate::ids::JobId::random().to_string();
    disposals().insert(trigger.clone(), None);
    let (jm, t) = (s.jm.clone(), trigger.clone());
    tokio::task::spawn_blocking(move || {
        let outcome = dispose(&jm, &path);
        disposals().insert(t, Some(outcome));
    });
    (StatusCode::ACCEPTED, Json(json!({ "request-id": trigger }))).into_response()
}

/// `GET /savepoint-disposal/:triggerid`.
pub(super) async fn disposal_status(Path(tid): Path<String>) -> Response {
    match disposals().get(&tid) {
        None => error(StatusCode::NOT_FOUND, format!("Operation not found under key {tid}")),
        Some(None) => Json(json!({ "status": { "id": "IN_PROGRESS" }, "operation": null })).into_response(),
        Some(Some(Ok(()))) => Json(json!({ "status": { "id": "COMPLETED" }, "operation": {} })).into_response(),
        Some(Some(Err(reason))) => Json(json!({
            "status": { "id": "COMPLETED" },
            "operation": { "failure-cause": { "class": "org.flowc.SavepointDisposalFailure", "stack-trace": reason, "serialized-throwable": null } }
        }))
        .into_response(),
    }
}

/// Woken when `DELETE /cluster` asks the JobManager to shut down.
pub fn shutdown_requested() -> &'static tokio::sync::Notify {
    static N: OnceLock<tokio::sync::Notify> = OnceLock::new();
    N.get_or_init(tokio::sync::Notify::new)
}

/// `DELETE /cluster`: the JobManager shuts down once it has answered
/// (`web.cancel.enable: false` refuses it, as it refuses cancelling jobs).
pub(super) async fn shutdown_cluster(State(s): State<RestState>) -> Response {
    if let Err(r) = s.access.check_cancel() {
        return r;
    }
    tracing::info!("Shutting down: DELETE /cluster.");
    tokio::spawn(async {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        shutdown_requested().notify_one();
    });
    Json(json!({})).into_response()
}
