//! The TaskManager's side of the RPC connection: connect to the
//! JobManager (over mutual TLS when configured), register, and prove the
//! cluster secret when challenged (see [`crate::rpc`] for the exchange).
//!
//! The outcome says whether retrying can help: a refusal by the JobManager
//! (another protocol version, no or a wrong secret, a live TaskManager with
//! the same id, a certificate it does not trust) cannot, and the
//! TaskManager exits; a network failure or a JobManager that cannot prove
//! it knows the secret (not ours, or not up yet) can.

use crate::ha::LeaderSessionId;
use crate::rpc::{self, Registration, RpcError, ToJobManager, ToTaskManager};
use crate::security::internal::{AsyncStream, InternalSecurity};
use crate::security::internal_tls::{is_certificate_refusal, InternalTls};
use crate::security::secret::Purpose;
use std::time::Duration;
use tokio::io::{ReadHalf, WriteHalf};
use tokio::net::TcpStream;

pub type Reader = ReadHalf<Box<dyn AsyncStream>>;
pub type Writer = WriteHalf<Box<dyn AsyncStream>>;

/// A registered connection: its halves, and the leader session of the
/// JobManager that took the registration (with ZooKeeper), the only one
/// whose commands the TaskManager carries out on it.
pub struct Session {
    pub reader: Reader,
    pub writer: Writer,
    pub leader_session: Option<LeaderSessionId>,
}

/// Why a registration did not happen.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    /// The JobManager refused this TaskManager: retrying will not help.
    #[error("{0}")]
    Refused(String),
    /// The JobManager could not be reached, or could not be trusted.
    #[error("{0}")]
    Failed(String),
}

impl From<RpcError> for RegisterError {
    fn from(e: RpcError) -> RegisterError {
        match &e {
            RpcError::Io(io) if is_certificate_refusal(io) => {
                RegisterError::Refused(format!("the JobManager refused this TaskManager's certificate: {io}"))
            }
            _ => RegisterError::Failed(e.to_string()),
        }
    }
}

/// The JobManager must have answered a registration within this time.
const REGISTRATION_TIMEOUT: Duration = Duration::from_secs(30);

/// Connects to `jobmanager` and registers `reg`; the connection once the
/// JobManager has accepted.
pub async fn register(
    stream: TcpStream,
    jobmanager: &str,
    security: &InternalSecurity,
    reg: &Registration,
) -> Result<Session, RegisterError> {
    tokio::time::timeout(REGISTRATION_TIMEOUT, exchange(stream, jobmanager, security, reg)).await.unwrap_or_else(|_| {
        Err(RegisterError::Failed(format!("no answer to the registration within {} s", REGISTRATION_TIMEOUT.as_secs())))
    })
}

async fn exchange(
    stream: TcpStream,
    jobmanager: &str,
    security: &InternalSecurity,
    reg: &Registration,
) -> Result<Session, RegisterError> {
    stream.set_nodelay(true).map_err(RpcError::Io)?;
    let stream: Box<dyn AsyncStream> = match &security.tls {
        Some(tls) => {
            let name = InternalTls::server_name(jobmanager).map_err(|e| RegisterError::Refused(e.to_string()))?;
            match tokio_rustls::TlsConnector::from(tls.client.clone()).connect(name, stream).await {
                Ok(s) => Box::new(s),
                Err(e) if is_certificate_refusal(&e) => {
                    return Err(RegisterError::Refused(format!(
                        "the JobManager refused this TaskManager's certificate: {e}"
                    )))
                }
                Err(e) => return Err(RegisterError::Failed(format!("TLS handshake with the JobManager failed: {e}"))),
            }
        }
        None => Box::new(stream),
    };
    let (mut r, mut w) = tokio::io::split(stream);
    let body = rpc::encode_body(&ToJobManager::Register(reg.clone()))?;
    rpc::write_body(&mut w, &body).await?;
    let mut challenged = None;
    loop {
        match rpc::read_frame::<_, ToTaskManager>(&mut r).await? {
            ToTaskManager::Challenge { nonce } => {
                let Some(secret) = &security.secret else {
                    return Err(RegisterError::Refused(
                        "the JobManager requires the cluster secret, and this TaskManager has none \
                         (set flowc.security.cluster.secret-file or flowc.security.cluster.secret)"
                            .into(),
                    ));
                };
                let proof = secret.prove(Purpose::Registration, &nonce, &body);
                rpc::write_frame(&mut w, &ToJobManager::Proof { proof }).await?;
                challenged = Some(nonce);
            }
            ToTaskManager::Registered { proof, leader_session, .. } => {
                if let Some(secret) = &security.secret {
                    let trusted = match (challenged, proof) {
                        (Some(jm_nonce), Some(p)) => secret.verify(Purpose::JobManager, &reg.nonce, &jm_nonce, &p),
                        _ => false,
                    };
                    if !trusted {
                        return Err(RegisterError::Failed(
                            "the JobManager did not prove it knows the cluster secret; not registering with it".into(),
                        ));
                    }
                }
                return Ok(Session { reader: r, writer: w, leader_session });
            }
            ToTaskManager::Refused { reason } => return Err(RegisterError::Refused(reason)),
            _ => {
                return Err(RegisterError::Failed(
                    "the JobManager answered the registration with another message".into(),
                ))
            }
        }
    }
}
