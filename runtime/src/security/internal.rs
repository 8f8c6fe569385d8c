//! What protects cluster-internal traffic in one process: the cluster
//! secret ([`super::secret`]) and mutual TLS ([`super::internal_tls`]),
//! each optional, read once at start. A malformed setting stops the
//! process before it listens or connects, with one line naming the key.

use super::internal_tls::InternalTls;
use super::secret::ClusterSecret;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A security setting that cannot be used, and the key to fix.
#[derive(Debug, thiserror::Error)]
#[error("`{key}`: {message}")]
pub struct SecurityError {
    pub key: String,
    pub message: String,
}

impl SecurityError {
    pub fn key(key: &str, message: String) -> SecurityError {
        SecurityError { key: key.to_string(), message }
    }
}

/// The protection of the RPC and data ports of one process.
#[derive(Debug, Clone, Default)]
pub struct InternalSecurity {
    /// Peers must prove they know it.
    pub secret: Option<ClusterSecret>,
    /// Peers must present a trusted certificate.
    pub tls: Option<Arc<InternalTls>>,
    refusals: Arc<RefusalLog>,
}

impl InternalSecurity {
    /// As configured; neither secret nor TLS by default (as Flink).
    pub fn from_config(config: &crate::config::Config) -> Result<InternalSecurity, SecurityError> {
        Ok(InternalSecurity {
            secret: ClusterSecret::from_config(config)?,
            tls: InternalTls::from_config(config)?,
            refusals: Arc::default(),
        })
    }

    /// Logs that a peer was refused, once per peer address and reason a
    /// minute: a misconfigured peer that keeps trying does not flood the log.
    pub fn log_refusal(&self, port: &'static str, peer: Option<std::net::SocketAddr>, reason: &str) {
        let ip = peer.map(|p| p.ip());
        if self.refusals.first_in_a_while(ip, reason) {
            let peer = peer.map_or_else(|| "unknown".to_string(), |p| p.to_string());
            tracing::warn!(port, peer = %peer, reason = %reason, "Refused a connection from {peer} on the {port} port.");
        }
    }
}

/// When each (peer address, reason) was last logged.
#[derive(Debug, Default)]
struct RefusalLog {
    last: Mutex<HashMap<(Option<IpAddr>, String), Instant>>,
}

const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(60);

impl RefusalLog {
    fn first_in_a_while(&self, ip: Option<IpAddr>, reason: &str) -> bool {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if last.len() > 1024 {
            last.retain(|_, t| now.duration_since(*t) < REFUSAL_LOG_EVERY);
        }
        match last.get(&(ip, reason.to_string())) {
            Some(t) if now.duration_since(*t) < REFUSAL_LOG_EVERY => false,
            _ => {
                last.insert((ip, reason.to_string()), now);
                true
            }
        }
    }
}

/// A byte stream in both directions: plain TCP or TLS over it.
pub trait AsyncStream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> AsyncStream for T {}

/// The same for the blocking sockets of the data plane.
pub trait BlockingStream: std::io::Read + std::io::Write + Send {}
impl<T: std::io::Read + std::io::Write + Send> BlockingStream for T {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_is_logged_once_per_peer_and_reason() {
        let log = RefusalLog::default();
        let a: IpAddr = [127, 0, 0, 1].into();
        let b: IpAddr = [127, 0, 0, 2].into();
        assert!(log.first_in_a_while(Some(a), "bad certificate"));
        assert!(!log.first_in_a_while(Some(a), "bad certificate"));
        assert!(log.first_in_a_while(Some(a), "wrong secret"));
        assert!(log.first_in_a_while(Some(b), "bad certificate"));
    }
}
