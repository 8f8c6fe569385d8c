//! REST on a standby JobManager, as Flink's: a standby answers every
//! request with the leader's answer (Flink's REST handlers retrieve the
//! leader's gateway and ask it; here the request is forwarded to the
//! leader's REST API and its answer passed back), and while no leader is
//! known it answers 503 with Flink's message. So `flowc -m` and any client
//! can be given any JobManager.

use crate::client::http::Client;
use crate::jobmanager::{JobManager, Role};
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::time::Duration;

/// Flink's answer while the election is under way.
pub const ELECTION: &str = "Service temporarily unavailable due to an ongoing leader election. Please refresh.";

/// How long the leader may take to answer a forwarded request.
const TIMEOUT: Duration = Duration::from_secs(60);

/// Passes requests through on the leader; forwards them from a standby.
pub async fn forward_to_leader(State(jm): State<Arc<JobManager>>, req: Request, next: Next) -> Response {
    let leader = match jm.role() {
        Role::Leader(_) => return next.run(req).await,
        Role::Standby(None) => return super::error(StatusCode::SERVICE_UNAVAILABLE, ELECTION),
        Role::Standby(Some(l)) => l,
    };
    let method = req.method().as_str().to_owned();
    let path = req.uri().path_and_query().map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());
    let (content_type, token) = {
        let header_text = |name| req.headers().get(name).and_then(|v: &header::HeaderValue| v.to_str().ok());
        let content_type = header_text(header::CONTENT_TYPE).unwrap_or("application/octet-stream").to_owned();
        let token = header_text(header::AUTHORIZATION).and_then(|a| a.strip_prefix("Bearer ")).map(str::to_owned);
        (content_type, token)
    };
    let body = match axum::body::to_bytes(req.into_body(), usize::MAX).await {
        Ok(b) => b,
        Err(e) => return super::error(StatusCode::BAD_REQUEST, format!("cannot read the request: {e}")),
    };
    let client = match Client::from_config(&jm.config, token) {
        Ok(c) => c,
        Err(e) => return super::error(StatusCode::SERVICE_UNAVAILABLE, format!("cannot reach the leader: {e}")),
    };
    let addr = authority(&leader.rest_url).to_owned();
    let by_name = content_type_by_name(req_path(&path));
    let answer = tokio::task::spawn_blocking(move || {
        let body = (!body.is_empty()).then(|| (content_type.as_str(), &body[..]));
        client.request(&method, &addr, &path, body, TIMEOUT)
    })
    .await;
    match answer {
        Ok(Ok(r)) => {
            let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::BAD_GATEWAY);
            let content_type = by_name.unwrap_or_else(|| content_type_of(&r.body));
            (status, [(header::CONTENT_TYPE, content_type)], r.body).into_response()
        }
        Ok(Err(e)) => super::error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("This JobManager is a standby; the leader at {} did not answer: {e}", leader.rest_url),
        ),
        Err(e) => super::error(StatusCode::INTERNAL_SERVER_ERROR, format!("forwarding to the leader failed: {e}")),
    }
}

/// `host:port` of a REST URL (`http://host:port/…`).
fn authority(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest)
}

/// The path of a path and query.
fn req_path(path_and_query: &str) -> &str {
    path_and_query.split('?').next().unwrap_or(path_and_query)
}

/// The content type of the web UI's files, by their names.
fn content_type_by_name(path: &str) -> Option<&'static str> {
    let name = path.rsplit('/').next().unwrap_or(path);
    let ext = name.rsplit_once('.').map(|(_, e)| e)?;
    Some(match ext {
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "html" => "text/html; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        _ => return None,
    })
}

/// The answer's content type, from its first byte (the leader's own
/// header is not passed back by the client).
fn content_type_of(body: &[u8]) -> &'static str {
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{' | b'[') => "application/json",
        Some(b'<') => "text/html; charset=utf-8",
        _ => "text/plain; charset=utf-8",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_leaders_address_and_the_answers_type() {
        assert_eq!(authority("http://127.0.0.1:8081"), "127.0.0.1:8081");
        assert_eq!(authority("https://jm-2:443/v1"), "jm-2:443");
        assert_eq!(content_type_of(b" {\"jobs\":[]}"), "application/json");
        assert_eq!(content_type_of(b"<!doctype html>"), "text/html; charset=utf-8");
        assert_eq!(content_type_of(b"flowc_jobs 1"), "text/plain; charset=utf-8");
        assert_eq!(content_type_by_name(req_path("/assets/main.js?v=1")), Some("text/javascript; charset=utf-8"));
        assert_eq!(content_type_by_name(req_path("/jobs/overview")), None);
    }
}
