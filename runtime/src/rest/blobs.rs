//! `POST /blobs` and `GET /blobs/:digest` (flowc's own): the JobManager's
//! blob store of UDF artifacts (`crate::blob`). Clients upload an artifact
//! before they submit a plan that names it (`flowc run` does); an upload is
//! a submission, so `web.submit.enable` governs it too.

use super::{body, error, RestState};
use crate::blob::BlobError;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// Stores the raw body → 200 `{"digest": "sha256:…", "size": n}`.
pub(super) async fn upload_blob(State(s): State<RestState>, request: Body) -> Response {
    if let Err(r) = s.access.check_submit() {
        return r;
    }
    let max = usize::try_from(s.limits.max_content_length).unwrap_or(usize::MAX);
    let bytes = match body::read(request, max, "The artifact (rest.server.max-content-length)").await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let store = s.jm.blobs.clone();
    let size = bytes.len();
    match tokio::task::spawn_blocking(move || store.put(&bytes)).await {
        Ok(Ok(digest)) => Json(json!({ "digest": digest, "size": size })).into_response(),
        Ok(Err(e @ (BlobError::Io(_) | BlobError::Corrupt { .. }))) => {
            error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
        }
        Ok(Err(e)) => error(StatusCode::BAD_REQUEST, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("storing the blob failed: {e}")),
    }
}

/// The artifact, checked against its digest.
pub(super) async fn download_blob(State(s): State<RestState>, Path(digest): Path<String>) -> Response {
    let store = s.jm.blobs.clone();
    match tokio::task::spawn_blocking(move || store.get(&digest)).await {
        Ok(Ok(bytes)) => ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response(),
        Ok(Err(e @ BlobError::NotFound(_))) => error(StatusCode::NOT_FOUND, e.to_string()),
        Ok(Err(e @ BlobError::BadDigest(_))) => error(StatusCode::BAD_REQUEST, e.to_string()),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("reading the blob failed: {e}")),
    }
}
