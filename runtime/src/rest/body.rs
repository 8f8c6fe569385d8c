//! Request bodies within `rest.server.max-content-length` (Flink's key,
//! default 100 MiB): a declared `Content-Length` over the limit is answered
//! 413 before a byte of the body is read, and every body is cut off at the
//! limit while it streams, so handlers see an error rather than more bytes.
//! Bodies a handler buffers (JSON requests) have a lower limit of their own.

use super::error;
use super::server::Limits;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

/// The largest JSON body of a control request (savepoint, stop, run).
pub const MAX_JSON_BODY: usize = 1024 * 1024;

/// 413 with the limit in the reason.
pub fn too_large(limit: u64, what: &str) -> Response {
    error(StatusCode::PAYLOAD_TOO_LARGE, format!("{what} is larger than the limit of {limit} bytes"))
}

/// Middleware: enforces `rest.server.max-content-length` on every request.
pub async fn limit(State(limits): State<Limits>, req: Request, next: Next) -> Response {
    let max = limits.max_content_length;
    let declared = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > max) {
        return too_large(max, "The request body (rest.server.max-content-length)");
    }
    let req = req.map(|b| Body::new(http_body_util::Limited::new(b, usize::try_from(max).unwrap_or(usize::MAX))));
    next.run(req).await
}

/// Whether an error, or one of its sources, is a body over its limit.
pub fn is_too_large(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut at = Some(e);
    while let Some(e) = at {
        if e.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        at = e.source();
    }
    false
}

/// Reads a whole body of at most `max` bytes: 413 past it, 400 if it breaks off.
pub async fn read(body: Body, max: usize, what: &str) -> Result<Bytes, Response> {
    axum::body::to_bytes(body, max).await.map_err(|e| {
        if is_too_large(&e) {
            too_large(max as u64, what)
        } else {
            error(StatusCode::BAD_REQUEST, format!("cannot read {what}: {e}"))
        }
    })
}
