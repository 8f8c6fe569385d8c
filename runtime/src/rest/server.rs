//! The REST listener: flowc's own accept loop around the axum router, so
//! that no caller can exhaust the JobManager's file descriptors or memory.
//!
//! - At most `rest.server.max-connections` connections at once (a
//!   semaphore). Over the limit a connection is answered 503 and closed at
//!   once, never queued: the listen backlog is the only queue, and it holds
//!   no descriptor of this process.
//! - `rest.server.header-timeout` bounds the time to a request's complete
//!   headers, from the connection's start or the end of the previous
//!   response (slow headers and idle keep-alive connections alike; hyper's
//!   `header_read_timeout`); a TLS handshake gets the same time.
//! - `rest.idleness-timeout` closes a connection that moves no byte either
//!   way for that long (a stalled body, a client that stops reading).
//! - `rest.server.request-timeout` bounds one request, its body included.
//!
//! The default connection limit is a quarter of the process's open-file
//! limit (at most 4096), which the JobManager first raises to its hard
//! limit: the rest stays for RPC connections, checkpoint files and uploads.

use crate::config::{Config, ConfigError};
use axum::body::Body;
use axum::http::{Request, Response, StatusCode};
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// The default connection limit's ceiling.
const MAX_DEFAULT_CONNECTIONS: u64 = 4096;

/// What bounds the REST server's use of the process's resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub request_timeout: Duration,
    pub max_content_length: u64,
}

impl Limits {
    /// The limits a configuration gives, checked.
    pub fn from_config(config: &Config) -> Result<Limits, ConfigError> {
        let positive = |key: &str| -> Result<u64, ConfigError> {
            match config.get_u64(key)? {
                0 => Err(ConfigError::BadValue {
                    key: key.into(),
                    value: config.get(key),
                    expected: "a positive number",
                }),
                n => Ok(n),
            }
        };
        let max_connections = if config.get("rest.server.max-connections").trim().is_empty() {
            default_max_connections()
        } else {
            positive("rest.server.max-connections")?
        };
        Ok(Limits {
            max_connections: usize::try_from(max_connections).unwrap_or(usize::MAX),
            header_timeout: Duration::from_millis(positive("rest.server.header-timeout")?),
            idle_timeout: Duration::from_millis(positive("rest.idleness-timeout")?),
            request_timeout: Duration::from_millis(positive("rest.server.request-timeout")?),
            max_content_length: positive("rest.server.max-content-length")?,
        })
    }
}

/// A quarter of the soft open-file limit, between 16 and 4096.
pub fn default_max_connections() -> u64 {
    let soft = rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft);
    (soft / 4).clamp(16, MAX_DEFAULT_CONNECTIONS)
}

/// Raises the soft open-file limit to the hard one (as Flink's scripts ask
/// operators to); returns the limit in force. Call before serving anything.
pub fn raise_open_file_limit() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "Cannot raise the open-file limit; keeping the current one.");
            rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(0, |(soft, _)| soft)
        }
    }
}

/// Counters of the REST server, for `/metrics`.
#[derive(Debug, Default)]
pub struct ConnStats {
    pub open: AtomicU64,
    pub accepted: AtomicU64,
    pub refused: AtomicU64,
    pub requests: AtomicU64,
    pub timed_out: AtomicU64,
}

const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: 77\r\n\r\n{\"errors\":[\"The REST server has too many connections open; try again later\"]}";

/// Accepts connections until the listener fails for good; each is served
/// on its own task within the limits.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    tls: Option<tokio_rustls::TlsAcceptor>,
    stats: Arc<ConnStats>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections.min(Semaphore::MAX_PERMITS)));
    let (mut last_refusal_log, mut last_accept_error_log): (Option<Instant>, Option<Instant>) = (None, None);
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                // Out of descriptors (EMFILE/ENFILE) or a connection reset
                // before it was accepted: wait a moment rather than spin,
                // and say so once in a while rather than twenty times a second.
                if last_accept_error_log.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                    last_accept_error_log = Some(Instant::now());
                    tracing::warn!(error = %e, "The REST server cannot accept a connection.");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            let refused = stats.refused.fetch_add(1, Ordering::Relaxed) + 1;
            if tls.is_none() {
                // A best-effort answer that never waits: the socket is fresh,
                // its send buffer empty.
                let _ = stream.try_write(BUSY);
            }
            drop(stream);
            if last_refusal_log.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                last_refusal_log = Some(Instant::now());
                tracing::warn!(
                    max_connections = limits.max_connections,
                    refused_total = refused,
                    "The REST server is at its connection limit (rest.server.max-connections); refusing new connections."
                );
            }
            continue;
        };
        let _ = stream.set_nodelay(true);
        stats.accepted.fetch_add(1, Ordering::Relaxed);
        stats.open.fetch_add(1, Ordering::Relaxed);
        let (app, tls, stats) = (app.clone(), tls.clone(), stats.clone());
        tokio::spawn(async move {
            match tls {
                None => connection(stream, app, limits, stats.clone()).await,
                Some(acceptor) => match tokio::time::timeout(limits.header_timeout, acceptor.accept(stream)).await {
                    Ok(Ok(s)) => connection(s, app, limits, stats.clone()).await,
                    Ok(Err(e)) => tracing::debug!(%peer, error = %e, "A REST TLS handshake failed."),
                    Err(_) => tracing::debug!(%peer, "A REST TLS handshake timed out."),
                },
            }
            stats.open.fetch_sub(1, Ordering::Relaxed);
            drop(permit);
        });
    }
}

/// Serves one connection until it ends, idles out or fails.
async fn connection<S>(stream: S, app: Router, limits: Limits, stats: Arc<ConnStats>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let started = Instant::now();
    let activity = Arc::new(AtomicU64::new(0));
    let io = Activity { inner: stream, started, last: activity.clone() };
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let (app, stats) = (app.clone(), stats.clone());
        async move {
            stats.requests.fetch_add(1, Ordering::Relaxed);
            let answer = tokio::time::timeout(limits.request_timeout, app.oneshot(req.map(Body::new))).await;
            match answer {
                Ok(r) => r,
                Err(_) => {
                    stats.timed_out.fetch_add(1, Ordering::Relaxed);
                    Ok(timeout_response(limits.request_timeout))
                }
            }
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout).keep_alive(true);
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let check = (limits.idle_timeout / 4).clamp(Duration::from_millis(100), Duration::from_secs(5));
    let mut tick = tokio::time::interval(check);
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "A REST connection ended with an error.");
                }
                return;
            }
            _ = tick.tick() => {
                let idle = started.elapsed().saturating_sub(Duration::from_millis(activity.load(Ordering::Relaxed)));
                if idle >= limits.idle_timeout {
                    tracing::debug!(idle_ms = idle.as_millis() as u64, "Closing an idle REST connection.");
                    return;
                }
            }
        }
    }
}

fn timeout_response(after: Duration) -> Response<Body> {
    let body = serde_json::json!({ "errors": [format!(
        "The request took longer than rest.server.request-timeout ({} ms)", after.as_millis()
    )] });
    let mut r = Response::new(Body::from(body.to_string()));
    *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    r.headers_mut().insert(axum::http::header::CONTENT_TYPE, axum::http::HeaderValue::from_static("application/json"));
    r.headers_mut().insert(axum::http::header::CONNECTION, axum::http::HeaderValue::from_static("close"));
    r
}

/// A stream that notes when a byte last moved (ms since `started`).
struct Activity<S> {
    inner: S,
    started: Instant,
    last: Arc<AtomicU64>,
}

impl<S> Activity<S> {
    fn touch(&self) {
        self.last.store(self.started.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Activity<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.touch();
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Activity<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_from_config_refuse_zero_and_garbage() {
        let mut c = Config::default();
        let l = Limits::from_config(&c).expect("defaults");
        assert_eq!(l.max_content_length, 104_857_600);
        assert!((16..=4096).contains(&l.max_connections), "{l:?}");
        c.set("rest.server.max-connections", "0");
        assert!(Limits::from_config(&c).unwrap_err().to_string().contains("rest.server.max-connections"));
        c.set("rest.server.max-connections", "12");
        c.set("rest.idleness-timeout", "soon");
        assert!(Limits::from_config(&c).unwrap_err().to_string().contains("rest.idleness-timeout"));
    }

    #[test]
    fn the_busy_answer_is_well_formed() {
        let text = std::str::from_utf8(BUSY).expect("ascii");
        let (head, body) = text.split_once("\r\n\r\n").expect("head and body");
        assert!(head.contains(&format!("content-length: {}", body.len())), "{head}");
        serde_json::from_str::<serde_json::Value>(body).expect("json body");
    }
}
