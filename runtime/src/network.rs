//! Data exchange between subtasks.
//!
//! A channel carries [`Element`]s from one upstream subtask to one
//! downstream subtask. Inside a process it is a bounded in-memory queue;
//! between TaskManagers it is a TCP connection of its own, fed by a writer
//! thread from a bounded queue and drained by a reader thread into the
//! receiver's bounded queue. A full queue blocks the sender, a blocked
//! reader stops reading its socket, TCP's window closes, and so
//! backpressure reaches the sources without unbounded buffering anywhere.
//!
//! Wire format of a data connection (inside TLS when
//! `security.ssl.internal.enabled`; both sides present certificates):
//!
//! ```text
//!  sender                                        receiver
//!   `FLWD`, version (u32 LE) ──▶                  other versions are closed
//!                        ◀── nonce (32 bytes)
//!   ChannelHello { key, proof } ──▶               proof: HMAC(secret, nonce ‖ key),
//!                                                 checked when a cluster secret is set
//!                        ◀── 1 (accepted), or the connection closes
//!   elements… ──▶                                in `crate::data::wire`'s encoding (batches column by column)
//! ```
//!
//! Frames are a u32 LE length and bincode. A connection without a valid
//! proof is closed before a single element is read.

use crate::data::wire;
use crate::ids::{Attempt, JobId, SubtaskId};
use crate::record::Element;
use crate::security::internal::{BlockingStream, InternalSecurity};
use crate::security::secret::{self, Nonce, Proof, Purpose};
use crossbeam_channel::{bounded, Receiver, Sender};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::{BufReader, BufWriter, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Batches in flight per channel: the bound that makes backpressure.
pub const CHANNEL_CAPACITY: usize = 8;
const MAGIC: &[u8; 4] = b"FLWD";
/// Version 2: the receiver's nonce, the sender's proof and the receiver's verdict.
/// Version 3: elements in `data::wire`'s columnar encoding (before: bincode of rows).
/// Version 4: batches of changelog streams carry their row kinds (element
/// tag 4); columns may carry a validity bitmap (nulls).
/// Version 5: batches may carry their records' origins (element tag 5).
const VERSION: u32 = 5;
/// The receiver's verdict on a channel's hello.
const ACCEPTED: u8 = 1;
/// A peer must be through its greeting within this time.
const GREETING_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_FRAME: usize = 256 * 1024 * 1024;
/// How long a reader waits for the receiving task to be deployed.
const REGISTRATION_WAIT: Duration = Duration::from_secs(60);

pub type ChannelTx = Sender<Element>;
pub type ChannelRx = Receiver<Element>;

/// Names one channel at its receiver.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChannelKey {
    pub job_id: JobId,
    pub attempt: Attempt,
    /// The receiving subtask.
    pub target: SubtaskId,
    /// Which of the receiver's input edges.
    pub input: u32,
    /// The sending subtask's index.
    pub source_subtask: u32,
}

/// What a sender says first: the channel, and its proof of the cluster
/// secret (HMAC(secret, the receiver's nonce ‖ the key's bytes)).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChannelHello {
    pub key: ChannelKey,
    pub proof: Option<Proof>,
}

/// The greeting of a sender of this version: magic and version.
pub fn greeting() -> [u8; 8] {
    let mut g = [0u8; 8];
    g[..4].copy_from_slice(MAGIC);
    g[4..].copy_from_slice(&VERSION.to_le_bytes());
    g
}

/// A hello frame, as [`Exchange::connect`] sends it.
pub fn hello_frame(hello: &ChannelHello) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    write_frame(&mut out, hello, &mut Vec::new())?;
    Ok(out)
}

fn key_bytes(key: &ChannelKey) -> std::io::Result<Vec<u8>> {
    bincode::serde::encode_to_vec(key, bincode_config())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))
}

pub fn channel() -> (ChannelTx, ChannelRx) {
    bounded(CHANNEL_CAPACITY)
}

fn bincode_config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_FRAME>()
}

/// A TaskManager's end of the data plane: the listener for incoming
/// channels and the registry of local receivers they are delivered to.
pub struct Exchange {
    addr: String,
    receivers: Mutex<HashMap<ChannelKey, ChannelTx>>,
    registered: Condvar,
    security: InternalSecurity,
}

impl Exchange {
    /// Binds the data port and starts accepting channels.
    pub fn start(bind: &str, port: u16, security: InternalSecurity) -> std::io::Result<Arc<Exchange>> {
        let listener = TcpListener::bind((bind, port))?;
        let addr = listener.local_addr()?.to_string();
        let ex =
            Arc::new(Exchange { addr, receivers: Mutex::new(HashMap::new()), registered: Condvar::new(), security });
        let weak = Arc::downgrade(&ex);
        std::thread::Builder::new().name("data-listener".into()).spawn(move || {
            for stream in listener.incoming() {
                let Some(ex) = weak.upgrade() else { break };
                match stream {
                    Ok(s) => {
                        let _ = std::thread::Builder::new().name("data-in".into()).spawn(move || {
                            if let Err(e) = ex.serve(s) {
                                tracing::debug!(error = %e, "Incoming data channel ended.");
                            }
                        });
                    }
                    Err(e) => tracing::warn!(error = %e, "Accepting a data connection failed."),
                }
            }
        })?;
        Ok(ex)
    }

    /// Where other TaskManagers connect.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Makes a local receiver reachable for remote senders.
    pub fn register(&self, key: ChannelKey, tx: ChannelTx) {
        let mut map = self.receivers.lock().unwrap_or_else(|p| p.into_inner());
        map.insert(key, tx);
        self.registered.notify_all();
    }

    /// Forgets the receivers of one attempt of a job.
    pub fn unregister(&self, job_id: JobId, attempt: Attempt) {
        let mut map = self.receivers.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|k, _| !(k.job_id == job_id && k.attempt == attempt));
    }

    fn take(&self, key: &ChannelKey) -> Option<ChannelTx> {
        let deadline = Instant::now() + REGISTRATION_WAIT;
        let mut map = self.receivers.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(tx) = map.remove(key) {
                return Some(tx);
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            map = self.registered.wait_timeout(map, deadline - now).unwrap_or_else(|p| p.into_inner()).0;
        }
    }

    /// Reads one incoming channel until its sender closes it.
    fn serve(&self, tcp: TcpStream) -> std::io::Result<()> {
        tcp.set_nodelay(true)?;
        let peer = tcp.peer_addr().ok();
        let timeouts = tcp.try_clone()?;
        timeouts.set_read_timeout(Some(GREETING_TIMEOUT))?;
        let stream: Box<dyn BlockingStream> = match &self.security.tls {
            Some(tls) => match tls.accept_blocking(tcp) {
                Ok(s) => Box::new(s),
                Err(e) => {
                    self.security.log_refusal("data", peer, &format!("TLS handshake failed: {e}"));
                    return Ok(());
                }
            },
            None => Box::new(tcp),
        };
        let mut r = BufReader::with_capacity(256 * 1024, stream);
        let mut magic = [0u8; 8];
        r.read_exact(&mut magic)?;
        if magic != greeting() {
            self.security.log_refusal("data", peer, "not a flowc data connection of this version");
            return Ok(());
        }
        let nonce: Nonce = secret::nonce();
        r.get_mut().write_all(&nonce)?;
        r.get_mut().flush()?;
        let hello: ChannelHello = read_frame(&mut r)?;
        if let Some(secret) = &self.security.secret {
            let message = key_bytes(&hello.key)?;
            if !hello.proof.is_some_and(|p| secret.verify(Purpose::DataChannel, &nonce, &message, &p)) {
                self.security.log_refusal("data", peer, "the sender did not prove it knows the cluster secret");
                return Ok(());
            }
        }
        r.get_mut().write_all(&[ACCEPTED])?;
        r.get_mut().flush()?;
        timeouts.set_read_timeout(None)?;
        let key = hello.key;
        let Some(tx) = self.take(&key) else {
            tracing::warn!(job_id = %key.job_id, target = %key.target, "No task is waiting for this channel; closing it.");
            return Ok(());
        };
        let mut buf = Vec::with_capacity(64 * 1024);
        loop {
            let e = read_element(&mut r, &mut buf)?;
            let end = e == Element::EndOfInput;
            if tx.send(e).is_err() {
                // The receiving task is gone; closing the socket tells the sender.
                return Ok(());
            }
            if end {
                return Ok(());
            }
        }
    }

    /// Opens a channel to a subtask on another TaskManager; the returned
    /// sender feeds a writer thread. Connection problems end the writer,
    /// which the sending task sees as a closed channel.
    pub fn connect(&self, addr: &str, key: ChannelKey) -> std::io::Result<ChannelTx> {
        let tcp = connect_with_retry(addr, Duration::from_secs(10))?;
        tcp.set_nodelay(true)?;
        let timeouts = tcp.try_clone()?;
        timeouts.set_read_timeout(Some(GREETING_TIMEOUT))?;
        let stream: Box<dyn BlockingStream> = match &self.security.tls {
            Some(tls) => Box::new(tls.connect_blocking(addr, tcp)?),
            None => Box::new(tcp),
        };
        let mut w = BufWriter::with_capacity(256 * 1024, stream);
        w.write_all(&greeting())?;
        w.flush()?;
        let refused = |what: &str, e: std::io::Error| {
            std::io::Error::new(e.kind(), format!("the receiving TaskManager at {addr} {what}: {e}"))
        };
        let mut nonce: Nonce = [0; secret::NONCE_LEN];
        w.get_mut()
            .read_exact(&mut nonce)
            .map_err(|e| refused("closed the connection before its greeting (another flowc version?)", e))?;
        let proof = match &self.security.secret {
            Some(s) => Some(s.prove(Purpose::DataChannel, &nonce, &key_bytes(&key)?)),
            None => None,
        };
        let mut scratch = Vec::with_capacity(64 * 1024);
        write_frame(&mut w, &ChannelHello { key, proof }, &mut scratch)?;
        w.flush()?;
        let mut verdict = [0u8; 1];
        w.get_mut()
            .read_exact(&mut verdict)
            .map_err(|e| refused("refused the channel (is the cluster secret the same?)", e))?;
        if verdict[0] != ACCEPTED {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("the receiving TaskManager at {addr} answered {} to the channel's hello", verdict[0]),
            ));
        }
        timeouts.set_read_timeout(None)?;
        let (tx, rx) = channel();
        std::thread::Builder::new().name("data-out".into()).spawn(move || {
            while let Ok(e) = rx.recv() {
                let end = e == Element::EndOfInput;
                if write_element(&mut w, &e, &mut scratch).is_err() {
                    return;
                }
                // Flush when the queue is drained, so that batches coalesce under load.
                if (rx.is_empty() || end) && w.flush().is_err() {
                    return;
                }
                if end {
                    return;
                }
            }
            let _ = w.flush();
        })?;
        Ok(tx)
    }
}

fn read_frame<T: for<'de> Deserialize<'de>>(r: &mut impl Read) -> std::io::Result<T> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len)?;
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "frame too large"));
    }
    let mut buf = vec![0u8; len];
    r.read_exact(&mut buf)?;
    bincode::serde::decode_from_slice(&buf, bincode_config())
        .map(|(v, _)| v)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))
}

/// Reads one length-prefixed element into `buf` and decodes it.
fn read_element(r: &mut impl Read, buf: &mut Vec<u8>) -> std::io::Result<Element> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len)?;
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "frame too large"));
    }
    // Read as it arrives: a length claimed by a bad peer allocates nothing by itself.
    buf.clear();
    let got = r.by_ref().take(len as u64).read_to_end(buf)?;
    if got != len {
        return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the connection closed within a frame"));
    }
    wire::decode_element(buf).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))
}

/// Writes one element, length-prefixed.
fn write_element(w: &mut impl Write, e: &Element, scratch: &mut Vec<u8>) -> std::io::Result<()> {
    scratch.clear();
    scratch.extend_from_slice(&[0u8; 4]);
    wire::encode_element(e, scratch)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?;
    let len = scratch.len() - 4;
    if len > MAX_FRAME {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "a batch too large for one frame"));
    }
    scratch[..4].copy_from_slice(&(len as u32).to_le_bytes());
    w.write_all(scratch)
}

fn write_frame<T: Serialize>(w: &mut impl Write, v: &T, scratch: &mut Vec<u8>) -> std::io::Result<()> {
    scratch.clear();
    scratch.extend_from_slice(&[0u8; 4]);
    bincode::serde::encode_into_std_write(v, scratch, bincode_config())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?;
    let len = (scratch.len() - 4) as u32;
    scratch[..4].copy_from_slice(&len.to_le_bytes());
    w.write_all(scratch)
}

fn connect_with_retry(addr: &str, within: Duration) -> std::io::Result<TcpStream> {
    let deadline = Instant::now() + within;
    loop {
        match TcpStream::connect(addr) {
            Ok(s) => return Ok(s),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(job_id: JobId, attempt: Attempt, subtask: u32) -> ChannelKey {
        ChannelKey { job_id, attempt, target: SubtaskId { vertex: 1, subtask }, input: 0, source_subtask: 0 }
    }

    #[test]
    fn a_remote_channel_carries_elements_in_order_and_an_ended_attempt_leaves_nothing_registered() {
        let ex = Exchange::start("127.0.0.1", 0, InternalSecurity::default()).expect("binds");
        let job = JobId::random();
        // Attempt 1 registers a receiver nobody connects to (it failed), attempt 2 a live one.
        let (stale_tx, _stale_rx) = channel();
        ex.register(key(job, 1, 0), stale_tx);
        let (tx, rx) = channel();
        ex.register(key(job, 2, 0), tx);
        let sender = ex.connect(ex.addr(), key(job, 2, 0)).expect("connects");
        let types = [flowc_compiler::ir::DataType::String, flowc_compiler::ir::DataType::Long];
        let rows = vec![
            vec![crate::record::Value::Str("/help".into()), crate::record::Value::Int(3)],
            vec![crate::record::Value::Str("/héllo".into()), crate::record::Value::Int(-4)],
        ];
        let batch = crate::data::Batch::from_values(&types, &rows).expect("fits");
        sender.send(Element::Records(batch.clone())).expect("send");
        sender.send(Element::Signal(crate::record::Signal::Watermark(7))).expect("send");
        sender.send(Element::EndOfInput).expect("send");
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)), Ok(Element::Records(batch)));
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)), Ok(Element::Signal(crate::record::Signal::Watermark(7))));
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)), Ok(Element::EndOfInput));
        ex.unregister(job, 1);
        let left = ex.receivers.lock().map(|m| m.len()).unwrap_or(usize::MAX);
        assert_eq!(left, 0, "the live channel was taken, the stale one unregistered");
    }

    fn secured(secret: Option<&str>, tls: Option<&crate::config::Config>) -> InternalSecurity {
        let mut config = tls.cloned().unwrap_or_default();
        if let Some(s) = secret {
            config.set(crate::security::secret::SECRET_KEY, s);
        }
        InternalSecurity::from_config(&config).expect("security")
    }

    /// Whether the peer closed `s` (a read gives end of file or a reset) within 5 s.
    fn closed_by_peer(s: &mut TcpStream) -> bool {
        s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        let mut buf = [0u8; 64];
        loop {
            match s.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(e) => {
                    return e.kind() != std::io::ErrorKind::WouldBlock && e.kind() != std::io::ErrorKind::TimedOut
                }
            }
        }
    }

    #[test]
    fn with_a_cluster_secret_a_channel_without_the_proof_is_closed_before_any_element() {
        let secret = "the-cluster-secret-of-this-test";
        let ex = Exchange::start("127.0.0.1", 0, secured(Some(secret), None)).expect("binds");
        let job = JobId::random();
        let (tx, rx) = channel();
        ex.register(key(job, 1, 0), tx);
        // A raw client: a well-formed greeting and hello, but no proof, then an element.
        let mut raw = TcpStream::connect(ex.addr()).expect("connects");
        raw.write_all(&greeting()).expect("greeting");
        let mut nonce = [0u8; 32];
        raw.read_exact(&mut nonce).expect("the receiver's nonce");
        raw.write_all(&hello_frame(&ChannelHello { key: key(job, 1, 0), proof: None }).expect("hello")).expect("hello");
        let mut element = Vec::new();
        write_element(&mut element, &Element::Signal(crate::record::Signal::Watermark(1)), &mut Vec::new())
            .expect("frame");
        let _ = raw.write_all(&element);
        assert!(closed_by_peer(&mut raw), "the connection stays open");
        assert!(rx.try_recv().is_err(), "an element got through");
        assert_eq!(ex.receivers.lock().map(|m| m.len()).unwrap_or(0), 1, "the channel is still waiting for its sender");
        // A sender without the secret is refused and told so; one with it gets through.
        let stranger = Exchange::start("127.0.0.1", 0, InternalSecurity::default()).expect("binds");
        let e = stranger.connect(ex.addr(), key(job, 1, 0)).expect_err("refused");
        assert!(e.to_string().contains("refused the channel"), "{e}");
        let wrong = Exchange::start("127.0.0.1", 0, secured(Some("another-secret-entirely"), None)).expect("binds");
        assert!(wrong.connect(ex.addr(), key(job, 1, 0)).is_err());
        let peer = Exchange::start("127.0.0.1", 0, secured(Some(secret), None)).expect("binds");
        let sender = peer.connect(ex.addr(), key(job, 1, 0)).expect("connects");
        sender.send(Element::EndOfInput).expect("send");
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)), Ok(Element::EndOfInput));
    }

    #[test]
    fn another_version_is_closed_without_effect() {
        let ex = Exchange::start("127.0.0.1", 0, InternalSecurity::default()).expect("binds");
        let mut raw = TcpStream::connect(ex.addr()).expect("connects");
        raw.write_all(b"FLWD").expect("magic");
        raw.write_all(&1u32.to_le_bytes()).expect("version 1");
        assert!(closed_by_peer(&mut raw));
    }

    #[test]
    fn with_mutual_tls_channels_flow_and_strangers_are_refused() {
        use crate::security::internal_tls::testing::TestPki;
        let (ours, theirs) = (TestPki::new("data"), TestPki::new("data-stranger"));
        let ex = Exchange::start("127.0.0.1", 0, secured(None, Some(&ours.pem_node("rx")))).expect("binds");
        let job = JobId::random();
        let (tx, rx) = channel();
        ex.register(key(job, 1, 0), tx);
        // Plain TCP: closed at the handshake.
        let mut raw = TcpStream::connect(ex.addr()).expect("connects");
        raw.write_all(&greeting()).expect("greeting");
        assert!(closed_by_peer(&mut raw));
        // A certificate of another CA: refused.
        let stranger = Exchange::start("127.0.0.1", 0, secured(None, Some(&theirs.pem_node("x")))).expect("binds");
        assert!(stranger.connect(ex.addr(), key(job, 1, 0)).is_err());
        // Ours, with the PKCS12 stores: through.
        let peer = Exchange::start("127.0.0.1", 0, secured(None, Some(&ours.p12_node("tx", "pw")))).expect("binds");
        let sender = peer.connect(ex.addr(), key(job, 1, 0)).expect("connects");
        for i in 0..100 {
            sender.send(Element::Signal(crate::record::Signal::Watermark(i))).expect("send");
        }
        sender.send(Element::EndOfInput).expect("send");
        for i in 0..100 {
            assert_eq!(
                rx.recv_timeout(Duration::from_secs(5)),
                Ok(Element::Signal(crate::record::Signal::Watermark(i)))
            );
        }
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)), Ok(Element::EndOfInput));
    }
}
