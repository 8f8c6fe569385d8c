//! The JobManager's RPC server: accepts TaskManagers on
//! `jobmanager.rpc.port` (bound to `jobmanager.bind-host`, loopback by
//! default), runs the registration of [`crate::rpc`] — protocol version,
//! mutual TLS and the cluster secret when configured, then the
//! [`crate::registry`] rules — and serves each registered TaskManager's
//! connection. Every registry operation of a connection names its
//! [`Session`], so a connection only ever updates or removes its own
//! registration.

use crate::jobmanager::JobManager;
use crate::registry::Session;
use crate::rpc::{self, Registration, RpcError, ToJobManager, ToTaskManager};
use crate::security::internal::{AsyncStream, InternalSecurity};
use crate::security::secret::{self, Purpose};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// A peer must be through TLS and registration within this time.
const REGISTRATION_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts TaskManagers on the RPC port; also runs the JobManager's 100 ms
/// tick and the heartbeat monitor.
pub async fn serve_rpc(jm: Arc<JobManager>, listener: TcpListener, security: InternalSecurity) {
    let monitor = jm.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            monitor.tick();
            monitor.schedule();
            monitor.check_heartbeats();
        }
    });
    let connections = AtomicU64::new(0);
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let (jm, security) = (jm.clone(), security.clone());
                let connection = connections.fetch_add(1, Ordering::Relaxed) + 1;
                tokio::spawn(async move {
                    if let Err(e) = serve_connection(jm, &security, stream, peer, connection).await {
                        tracing::debug!(peer = %peer, error = %e, "RPC connection ended.");
                    }
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "Accepting an RPC connection failed.");
                // Out of file descriptors, most likely: do not spin.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

type Reader = ReadHalf<Box<dyn AsyncStream>>;
type Writer = WriteHalf<Box<dyn AsyncStream>>;

async fn serve_connection(
    jm: Arc<JobManager>,
    security: &InternalSecurity,
    stream: TcpStream,
    peer: SocketAddr,
    connection: u64,
) -> Result<(), RpcError> {
    stream.set_nodelay(true)?;
    let authenticated = tokio::time::timeout(REGISTRATION_TIMEOUT, async {
        // A peer that connects and closes without a byte is a liveness
        // probe (a standby JobManager's fast failover, a TCP health
        // check): nothing was refused, so nothing is logged as such.
        if stream.peek(&mut [0u8; 1]).await? == 0 {
            tracing::debug!(peer = %peer, "An RPC connection closed before it sent anything (a probe).");
            return Ok(None);
        }
        let stream: Box<dyn AsyncStream> = match &security.tls {
            Some(tls) => match tokio_rustls::TlsAcceptor::from(tls.server.clone()).accept(stream).await {
                Ok(s) => Box::new(s),
                Err(e) => {
                    security.log_refusal("RPC", Some(peer), &format!("TLS handshake failed: {e}"));
                    return Ok(None);
                }
            },
            None => Box::new(stream),
        };
        let (mut r, mut w) = tokio::io::split(stream);
        let answer = authenticate(security, &mut r, &mut w, peer).await?;
        Ok::<_, RpcError>(answer.map(|(reg, proof)| (reg, proof, r, w)))
    })
    .await;
    let (reg, proof, r, mut w) = match authenticated {
        Ok(Ok(Some(a))) => a,
        Ok(Ok(None)) => return Ok(()),
        Ok(Err(e)) => return Err(e),
        Err(_) => {
            security.log_refusal("RPC", Some(peer), "no registration within 10 s");
            return Ok(());
        }
    };
    // A standby, or a leader of another term than the TaskManager found,
    // takes no TaskManager: closed, not refused, so that it looks for the
    // leader again instead of giving up.
    let leader_session = jm.leader_session();
    if !jm.is_leader() || reg.leader_session.is_some_and(|s| Some(s) != leader_session) {
        tracing::info!(
            tm_id = %reg.tm_id, peer = %peer, its_leader_session = ?reg.leader_session.map(|s| s.to_string()),
            "A TaskManager looked for another leader than this JobManager; not taking it."
        );
        return Ok(());
    }
    let (tx, rx) = mpsc::unbounded_channel::<ToTaskManager>();
    let session = Session { tm_id: reg.tm_id.clone(), instance: reg.instance.clone(), connection };
    if let Err(reason) = jm.register_taskmanager(&reg, &session, tx) {
        return refuse(security, &mut w, peer, reason).await;
    }
    tracing::info!(
        tm_id = %reg.tm_id, instance = %reg.instance, peer = %peer, data = %reg.data_addr, slots = reg.slots,
        "TaskManager registered."
    );
    if let Err(e) =
        rpc::write_frame(&mut w, &ToTaskManager::Registered { tm_id: reg.tm_id.clone(), proof, leader_session }).await
    {
        jm.on_tm_lost(&session, &format!("its connection failed while it registered: {e}"));
        return Err(e);
    }
    serve_tm(jm, session, r, w, rx).await
}

/// Refuses a peer with a reason it is told and the JobManager logs.
async fn refuse(security: &InternalSecurity, w: &mut Writer, peer: SocketAddr, reason: String) -> Result<(), RpcError> {
    security.log_refusal("RPC", Some(peer), &reason);
    rpc::write_frame(w, &ToTaskManager::Refused { reason }).await
}

/// Reads a registration and checks its protocol version and, with a
/// cluster secret, the TaskManager's proof: the registration and the
/// JobManager's own proof for the answer, or `None` when it was refused.
async fn authenticate(
    security: &InternalSecurity,
    r: &mut Reader,
    w: &mut Writer,
    peer: SocketAddr,
) -> Result<Option<(Registration, Option<secret::Proof>)>, RpcError> {
    let body = match rpc::read_body(r).await {
        Ok(b) => b,
        Err(RpcError::Closed) => return Ok(None),
        Err(e) => {
            let hint = if security.tls.is_none() { " (a TLS client? see security.ssl.internal.enabled)" } else { "" };
            security.log_refusal("RPC", Some(peer), &format!("not a flowc registration: {e}{hint}"));
            return Ok(None);
        }
    };
    match rpc::registration_protocol(&body) {
        Some(rpc::PROTOCOL_VERSION) => {}
        Some(p) => {
            let reason = format!(
                "RPC protocol version {p} is not {}: the TaskManager and the JobManager must run the same flowc version",
                rpc::PROTOCOL_VERSION
            );
            refuse(security, w, peer, reason).await?;
            return Ok(None);
        }
        None => {
            refuse(security, w, peer, "the first message is not a registration".into()).await?;
            return Ok(None);
        }
    }
    let reg: Registration = match rpc::decode(&body)? {
        ToJobManager::Register(reg) => reg,
        _ => return Err(RpcError::Malformed("expected a registration".into())),
    };
    let Some(secret) = &security.secret else { return Ok(Some((reg, None))) };
    let nonce = secret::nonce();
    rpc::write_frame(w, &ToTaskManager::Challenge { nonce }).await?;
    let answer = match rpc::read_frame::<_, ToJobManager>(r).await {
        Ok(ToJobManager::Proof { proof }) => Some(proof),
        Ok(_) => None,
        Err(RpcError::Closed) => {
            let reason = "the peer closed the connection instead of proving it knows the cluster secret";
            security.log_refusal("RPC", Some(peer), reason);
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    if !answer.is_some_and(|p| secret.verify(Purpose::Registration, &nonce, &body, &p)) {
        let reason = format!(
            "TaskManager `{}` did not prove it knows the cluster secret (flowc.security.cluster.secret)",
            reg.tm_id
        );
        refuse(security, w, peer, reason).await?;
        return Ok(None);
    }
    let proof = secret.prove(Purpose::JobManager, &reg.nonce, &nonce);
    Ok(Some((reg, Some(proof))))
}

/// Serves a registered TaskManager until its connection ends or its
/// registration is no longer current; then removes the registration, if it
/// is still this connection's.
async fn serve_tm(
    jm: Arc<JobManager>,
    session: Session,
    mut r: Reader,
    mut w: Writer,
    mut rx: mpsc::UnboundedReceiver<ToTaskManager>,
) -> Result<(), RpcError> {
    let writer = tokio::spawn(async move {
        while let Some(m) = rx.recv().await {
            if rpc::write_frame(&mut w, &m).await.is_err() {
                break;
            }
        }
    });
    jm.schedule();
    let result = loop {
        match rpc::read_frame::<_, ToJobManager>(&mut r).await {
            Ok(ToJobManager::Heartbeat { metrics, process }) => {
                if !jm.on_heartbeat(&session, metrics, process) {
                    break Ok(());
                }
            }
            Ok(ToJobManager::TaskUpdate(u)) => {
                if !jm.is_current(&session) {
                    break Ok(());
                }
                jm.on_task_update(u);
                jm.schedule();
            }
            Ok(ToJobManager::Checkpoint(ack)) => {
                if !jm.is_current(&session) {
                    break Ok(());
                }
                jm.on_checkpoint_ack(ack);
            }
            Ok(ToJobManager::FetchBlob { digest }) => {
                // A UDF artifact for a deployment: read (and checked) off the RPC task.
                let tx = jm.sender(&session);
                let Some(tx) = tx else { break Ok(()) };
                let blobs = jm.blobs.clone();
                tokio::task::spawn_blocking(move || {
                    let result = blobs.get(&digest).map_err(|e| e.to_string());
                    let _ = tx.send(ToTaskManager::Blob { digest, result });
                });
            }
            Ok(ToJobManager::Answer { request_id, answer }) => crate::jobmanager::asks::deliver(request_id, answer),
            Ok(ToJobManager::Register(_) | ToJobManager::Proof { .. }) => {}
            Err(e) => break Err(e),
        }
    };
    writer.abort();
    let reason = match &result {
        Err(RpcError::Closed) => "its connection closed".to_string(),
        Err(e) => format!("its connection failed: {e}"),
        Ok(()) => "it was removed".to_string(),
    };
    jm.on_tm_lost(&session, &reason);
    jm.schedule();
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::tm_rpc::{self, RegisterError};
    use serde::Serialize;

    async fn jobmanager(secret: Option<&str>) -> (Arc<JobManager>, String) {
        let mut config = Config::default();
        if let Some(s) = secret {
            config.set(secret::SECRET_KEY, s);
        }
        let security = InternalSecurity::from_config(&config).expect("security");
        let jm = JobManager::new(config).expect("jobmanager");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        tokio::spawn(serve_rpc(jm.clone(), listener, security));
        (jm, addr)
    }

    fn registration(tm_id: &str, instance: &str) -> Registration {
        Registration {
            protocol: rpc::PROTOCOL_VERSION,
            tm_id: tm_id.into(),
            data_addr: "127.0.0.1:1".into(),
            slots: 2,
            cpu_cores: 1,
            physical_memory: 0,
            pid: 1,
            instance: instance.into(),
            nonce: secret::nonce(),
            leader_session: None,
        }
    }

    async fn register(addr: &str, secret: Option<&str>, reg: Registration) -> Result<tm_rpc::Session, RegisterError> {
        let mut config = Config::default();
        if let Some(s) = secret {
            config.set(secret::SECRET_KEY, s);
        }
        let security = InternalSecurity::from_config(&config).expect("security");
        let stream = TcpStream::connect(addr).await.expect("connect");
        tm_rpc::register(stream, addr, &security, &reg).await
    }

    fn connection_of(jm: &JobManager, tm_id: &str) -> Option<(String, u64)> {
        jm.session_of(tm_id).map(|s| (s.instance, s.connection))
    }

    async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
        for _ in 0..100 {
            if f() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("timed out waiting for {what}");
    }

    #[tokio::test]
    async fn a_live_id_is_refused_to_another_process_and_only_its_own_connection_removes_it() {
        let (jm, addr) = jobmanager(None).await;
        let first = register(&addr, None, registration("tm", "a")).await.expect("registers");
        let (_, first_connection) = connection_of(&jm, "tm").expect("registered");
        match register(&addr, None, registration("tm", "b")).await {
            Err(RegisterError::Refused(reason)) => assert!(reason.contains("in use by a live TaskManager"), "{reason}"),
            Err(e) => panic!("not refused: {e}"),
            Ok(_) => panic!("a second process took over a live TaskManager's id"),
        }
        assert_eq!(connection_of(&jm, "tm").map(|c| c.1), Some(first_connection), "the live registration is untouched");
        // The same process registers again (its first connection is gone for it): it replaces itself.
        let second = register(&addr, None, registration("tm", "a")).await.expect("registers again");
        let (_, second_connection) = connection_of(&jm, "tm").expect("registered");
        assert_ne!(second_connection, first_connection);
        // The first connection ending does not remove its successor.
        drop(first);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(connection_of(&jm, "tm").map(|c| c.1), Some(second_connection));
        // Once the last connection has closed, the id is free for another process.
        drop(second);
        eventually("the registration to go", || connection_of(&jm, "tm").is_none()).await;
        let _third = register(&addr, None, registration("tm", "b")).await.expect("a gone id is free");
        assert_eq!(connection_of(&jm, "tm").map(|c| c.0), Some("b".to_string()));
    }

    #[tokio::test]
    async fn the_cluster_secret_is_proven_both_ways_and_never_sent() {
        let secret = "the-right-cluster-secret";
        let (jm, addr) = jobmanager(Some(secret)).await;
        let refused = |r: Result<_, RegisterError>| match r {
            Err(RegisterError::Refused(reason)) => reason,
            Err(e) => panic!("not refused: {e}"),
            Ok(_) => panic!("registered"),
        };
        let reason = refused(register(&addr, None, registration("tm-none", "a")).await);
        assert!(reason.contains("requires the cluster secret"), "{reason}");
        let reason = refused(register(&addr, Some("a-wrong-cluster-secret"), registration("tm-wrong", "a")).await);
        assert!(reason.contains("did not prove it knows the cluster secret"), "{reason}");
        assert!(jm.taskmanagers().is_empty());
        let _ok = register(&addr, Some(secret), registration("tm-right", "a")).await.expect("registers");
        assert!(connection_of(&jm, "tm-right").is_some());
        // A JobManager without the secret cannot pass for the cluster's.
        let (_, open) = jobmanager(None).await;
        match register(&open, Some(secret), registration("tm", "a")).await {
            Err(RegisterError::Failed(e)) => assert!(e.contains("did not prove"), "{e}"),
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("registered at a JobManager without the secret"),
        }
    }

    #[tokio::test]
    async fn a_taskmanager_of_another_protocol_version_is_told_the_versions() {
        // The registration of flowc's first RPC protocol, as such a TaskManager sends it.
        #[derive(Serialize)]
        struct V1Registration {
            protocol: u32,
            tm_id: String,
            data_addr: String,
            slots: u32,
            cpu_cores: u32,
            physical_memory: u64,
            pid: u32,
        }
        #[derive(Serialize)]
        enum V1ToJobManager {
            Register(V1Registration),
        }
        let (jm, addr) = jobmanager(None).await;
        let mut stream = TcpStream::connect(&addr).await.expect("connect");
        let v1 = V1ToJobManager::Register(V1Registration {
            protocol: 1,
            tm_id: "old".into(),
            data_addr: "127.0.0.1:1".into(),
            slots: 1,
            cpu_cores: 1,
            physical_memory: 0,
            pid: 1,
        });
        rpc::write_frame(&mut stream, &v1).await.expect("write");
        match rpc::read_frame::<_, ToTaskManager>(&mut stream).await.expect("an answer") {
            ToTaskManager::Refused { reason } => {
                assert!(reason.contains(&format!("version 1 is not {}", rpc::PROTOCOL_VERSION)), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        assert!(jm.taskmanagers().is_empty());
    }
}
