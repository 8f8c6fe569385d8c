//! A minimal blocking HTTP/1.1 client for the JobManager's REST API: one
//! request per connection (`Connection: close`), bodies with
//! `Content-Length` or chunked, no redirects. Over TLS (rustls) when the
//! [`Client`] has a TLS configuration, trusting only what it names; with a
//! bearer token when it has one (`flowc.security.rest.token`).

use rustls::pki_types::ServerName;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("cannot reach the JobManager at {addr} (is it running? `-m HOST:PORT` names another)")]
    Connect { addr: String, source: std::io::Error },
    #[error("the JobManager at {addr} did not answer")]
    Io { addr: String, source: std::io::Error },
    #[error("the JobManager at {addr} sent a malformed HTTP response: {what}")]
    Malformed { addr: String, what: String },
    #[error("TLS with the JobManager at {addr} failed: {reason}")]
    Tls { addr: String, reason: String },
    #[error("the JobManager at {addr} gave no HTTP answer (does it expect TLS? then set security.ssl.rest.enabled and a truststore)")]
    NoAnswer { addr: String },
}

pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Response {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// How to reach a JobManager's REST API.
#[derive(Clone, Default)]
pub struct Client {
    /// TLS, trusting what this configuration trusts; `None`: plain HTTP.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Sent as `Authorization: Bearer …`.
    pub token: Option<String>,
    /// How long to wait for the TCP connection (default 5 s).
    pub connect_timeout: Option<Duration>,
}

/// Sends one plain-HTTP request without a token; `addr` is `host:port`.
pub fn request(
    method: &str,
    addr: &str,
    path: &str,
    body: Option<(&str, &[u8])>,
    timeout: Duration,
) -> Result<Response, HttpError> {
    Client::default().request(method, addr, path, body, timeout)
}

/// The host part of `host:port` (without IPv6 brackets).
fn host_of(addr: &str) -> &str {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
}

impl Client {
    /// Sends one request; `addr` is `host:port`.
    pub fn request(
        &self,
        method: &str,
        addr: &str,
        path: &str,
        body: Option<(&str, &[u8])>,
        timeout: Duration,
    ) -> Result<Response, HttpError> {
        let io = |source| HttpError::Io { addr: addr.to_string(), source };
        let sock = addr
            .to_socket_addrs()
            .map_err(|source| HttpError::Connect { addr: addr.to_string(), source })?
            .next()
            .ok_or_else(|| HttpError::Connect {
                addr: addr.to_string(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no address"),
            })?;
        let mut tcp = TcpStream::connect_timeout(&sock, self.connect_timeout.unwrap_or(Duration::from_secs(5)))
            .map_err(|source| HttpError::Connect { addr: addr.to_string(), source })?;
        tcp.set_read_timeout(Some(timeout)).map_err(io)?;
        tcp.set_write_timeout(Some(timeout)).map_err(io)?;
        let mut head =
            format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAccept: application/json\r\n");
        if let Some(token) = &self.token {
            head.push_str(&format!("Authorization: Bearer {token}\r\n"));
        }
        if let Some((ctype, b)) = body {
            head.push_str(&format!("Content-Type: {ctype}\r\nContent-Length: {}\r\n", b.len()));
        } else if method != "GET" {
            head.push_str("Content-Length: 0\r\n");
        }
        head.push_str("\r\n");
        let raw = match &self.tls {
            None => exchange(addr, &mut tcp, head.as_bytes(), body.map(|(_, b)| b))?,
            Some(config) => {
                let tls_err = |reason: String| HttpError::Tls { addr: addr.to_string(), reason };
                let name = ServerName::try_from(host_of(addr).to_string())
                    .map_err(|e| tls_err(format!("`{}` is not a host name: {e}", host_of(addr))))?;
                let mut conn =
                    rustls::ClientConnection::new(config.clone(), name).map_err(|e| tls_err(e.to_string()))?;
                while conn.is_handshaking() {
                    conn.complete_io(&mut tcp).map_err(|e| tls_err(e.to_string()))?;
                }
                let mut stream = rustls::StreamOwned::new(conn, tcp);
                exchange(addr, &mut stream, head.as_bytes(), body.map(|(_, b)| b))?
            }
        };
        // Nothing, or a TLS record (an alert: the port speaks TLS).
        if raw.is_empty() || (self.tls.is_none() && matches!(raw[0], 0x15 | 0x16)) {
            return Err(HttpError::NoAnswer { addr: addr.to_string() });
        }
        parse(addr, &raw)
    }
}

/// Writes the request and reads the answer to the end. A server may answer
/// before it has read the whole body (413) and close: the answer is still
/// read after a failed write.
fn exchange(addr: &str, s: &mut (impl Read + Write), head: &[u8], body: Option<&[u8]>) -> Result<Vec<u8>, HttpError> {
    let io = |source| HttpError::Io { addr: addr.to_string(), source };
    let written = s.write_all(head).and_then(|()| body.map_or(Ok(()), |b| s.write_all(b))).and_then(|()| s.flush());
    let mut raw = Vec::new();
    let read = s.read_to_end(&mut raw);
    match (written, read) {
        (_, Ok(_)) => Ok(raw),
        // A peer that closes without TLS's close_notify, or resets after its answer.
        (_, Err(_)) if raw.windows(4).any(|w| w == b"\r\n\r\n") => Ok(raw),
        (Err(e), Err(_)) => Err(io(e)),
        (Ok(()), Err(e)) => Err(io(e)),
    }
}

fn parse(addr: &str, raw: &[u8]) -> Result<Response, HttpError> {
    let bad = |what: &str| HttpError::Malformed { addr: addr.to_string(), what: what.to_string() };
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(|| bad("no end of headers"))?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().ok_or_else(|| bad("no status line"))?;
    let status: u16 =
        status_line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| bad("no status code"))?;
    let chunked = lines.any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let mut body = raw[split + 4..].to_vec();
    if chunked {
        body = dechunk(&body).ok_or_else(|| bad("bad chunked body"))?;
    }
    Ok(Response { status, body })
}

fn dechunk(mut b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&b[..eol]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        b = &b[eol + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(b.get(..size)?);
        b = b.get(size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_and_chunked() {
        let r = parse("x", b"HTTP/1.1 202 Accepted\r\ncontent-length: 2\r\n\r\n{}").unwrap();
        assert_eq!((r.status, r.text()), (202, "{}".to_string()));
        let r = parse("x", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
            .unwrap();
        assert_eq!(r.text(), "abcde");
        assert!(parse("x", b"garbage").is_err());
    }
}
