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
//! Wire format of a data connection: `FLWD`, the protocol version (u32 LE),
//! a length-prefixed bincode [`ChannelKey`], then length-prefixed elements
//! in the encoding of [`crate::data::wire`] (batches column by column).

use crate::data::wire;
use crate::ids::{Attempt, JobId, SubtaskId};
use crate::record::Element;
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
/// 2: elements in `data::wire`'s columnar encoding (1: bincode of rows).
const VERSION: u32 = 2;
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
}

impl Exchange {
    /// Binds the data port and starts accepting channels.
    pub fn start(bind: &str, port: u16) -> std::io::Result<Arc<Exchange>> {
        let listener = TcpListener::bind((bind, port))?;
        let addr = listener.local_addr()?.to_string();
        let ex = Arc::new(Exchange { addr, receivers: Mutex::new(HashMap::new()), registered: Condvar::new() });
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
    fn serve(&self, stream: TcpStream) -> std::io::Result<()> {
        stream.set_nodelay(true)?;
        let mut r = BufReader::with_capacity(256 * 1024, stream);
        let mut magic = [0u8; 8];
        r.read_exact(&mut magic)?;
        if &magic[..4] != MAGIC || u32::from_le_bytes([magic[4], magic[5], magic[6], magic[7]]) != VERSION {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "not a flowc data connection of this version",
            ));
        }
        let key: ChannelKey = read_frame(&mut r)?;
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

/// Opens a channel to a subtask on another TaskManager; the returned
/// sender feeds a writer thread. Connection problems end the writer, which
/// the sending task sees as a closed channel.
pub fn connect(addr: &str, key: ChannelKey) -> std::io::Result<ChannelTx> {
    let stream = connect_with_retry(addr, Duration::from_secs(10))?;
    stream.set_nodelay(true)?;
    let mut w = BufWriter::with_capacity(256 * 1024, stream);
    w.write_all(MAGIC)?;
    w.write_all(&VERSION.to_le_bytes())?;
    let mut scratch = Vec::with_capacity(64 * 1024);
    write_frame(&mut w, &key, &mut scratch)?;
    w.flush()?;
    let (tx, rx) = channel();
    std::thread::Builder::new().name("data-out".into()).spawn(move || {
        let mut scratch = Vec::with_capacity(64 * 1024);
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
        let ex = Exchange::start("127.0.0.1", 0).expect("binds");
        let job = JobId::random();
        // Attempt 1 registers a receiver nobody connects to (it failed), attempt 2 a live one.
        let (stale_tx, _stale_rx) = channel();
        ex.register(key(job, 1, 0), stale_tx);
        let (tx, rx) = channel();
        ex.register(key(job, 2, 0), tx);
        let sender = connect(ex.addr(), key(job, 2, 0)).expect("connects");
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
}
