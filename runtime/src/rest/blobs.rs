//! `POST /blobs` and `GET /blobs/:digest` (flowc's own): the JobManager's
//! blob store of UDF artifacts (`crate::blob`). Clients upload an artifact
//! before they submit a plan that names it (`flowc run` does); an upload is
//! a submission, so `web.submit.enable` governs it too.

use super::{body, error, spool, RestState};
use crate::blob::{BlobError, MAX_BLOB_BYTES};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// Stores the raw body → 200 `{"digest": "sha256:…", "size": n}`. The body
/// streams to a part file in the store's directory (`spool`), hashed as it
/// comes, at most `rest.server.max-content-length` (and the store's own
/// limit) bytes: 413 past it, and no file is left.
pub(super) async fn upload_blob(State(s): State<RestState>, request: Body) -> Response {
    if let Err(r) = s.access.check_submit() {
        return r;
    }
    let store = s.jm.blobs.clone();
    let part = match tokio::task::spawn_blocking({
        let store = store.clone();
        move || store.part_path()
    })
    .await
    {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, format!("storing the blob failed: {e}")),
    };
    let max = s.limits.max_content_length.min(MAX_BLOB_BYTES);
    let what = "The artifact (rest.server.max-content-length)";
    let read_error = |e: axum::Error| {
        if body::is_too_large(&e) {
            body::too_large(max, what)
        } else {
            error(StatusCode::BAD_REQUEST, format!("cannot read the artifact: {e}"))
        }
    };
    let spooled = match spool::to_file(request.into_data_stream(), part, max, what, read_error).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let (size, digest) = (spooled.size, spooled.digest.clone());
    // The part file goes with `spooled` unless the store renamed it.
    let stored = tokio::task::spawn_blocking(move || {
        let stored = store.put_file(spooled.part.path(), &spooled.digest);
        drop(spooled);
        stored
    })
    .await;
    match stored {
        Ok(Ok(_)) => Json(json!({ "digest": digest, "size": size })).into_response(),
        Ok(Err(e @ (BlobError::Io(_) | BlobError::Corrupt { .. }))) => {
            error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
        }
        Ok(Err(e @ BlobError::TooLarge(_))) => error(StatusCode::PAYLOAD_TOO_LARGE, e.to_string()),
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
