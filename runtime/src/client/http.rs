//! A minimal blocking HTTP/1.1 client for the JobManager's REST API on
//! loopback: one request per connection (`Connection: close`), bodies with
//! `Content-Length` or chunked. No TLS, no redirects: the REST port binds to
//! 127.0.0.1 by default.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("cannot reach the JobManager at {addr} (is it running? `-m HOST:PORT` names another)")]
    Connect { addr: String, source: std::io::Error },
    #[error("the JobManager at {addr} did not answer")]
    Io { addr: String, source: std::io::Error },
    #[error("the JobManager at {addr} sent a malformed HTTP response: {what}")]
    Malformed { addr: String, what: String },
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

/// Sends one request; `addr` is `host:port`.
pub fn request(
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
    let mut s = TcpStream::connect_timeout(&sock, Duration::from_secs(5))
        .map_err(|source| HttpError::Connect { addr: addr.to_string(), source })?;
    s.set_read_timeout(Some(timeout)).map_err(io)?;
    s.set_write_timeout(Some(timeout)).map_err(io)?;
    let mut head =
        format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAccept: application/json\r\n");
    if let Some((ctype, b)) = body {
        head.push_str(&format!("Content-Type: {ctype}\r\nContent-Length: {}\r\n", b.len()));
    } else if method != "GET" {
        head.push_str("Content-Length: 0\r\n");
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).map_err(io)?;
    if let Some((_, b)) = body {
        s.write_all(b).map_err(io)?;
    }
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).map_err(io)?;
    parse(addr, &raw)
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
