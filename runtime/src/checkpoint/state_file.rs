//! A subtask's state file in format 2, written as its parts come: the task
//! hands each operator's key groups one at a time ([`StateSink`]), and each
//! goes into the file at once, summed as it goes out. The whole state is
//! never held a second time as bytes (format 1 encoded a `TaskState` that
//! held every operator's key groups).
//!
//! The frame is format 1's (`format.rs`): `MAGIC | version 2 | body length
//! | body | FNV-1a 64 of the body`, the length patched in once the body is
//! written. The body is records, each a tag byte:
//!
//! ```text
//! vertex (16 bytes) | subtask (u32 LE)
//! 1 operator id (16 bytes)                      the records below are its
//! 2 key group (u32 LE) | length (u64 LE) | bytes   ascending, each once
//! 3 length (u64 LE) | bytes                        its raw (subtask) state
//! 0                                                the end
//! ```
//!
//! Reading gives the same [`TaskState`] format 1 gives; format 1 files are
//! still read ([`decode_task_state`]). Source state stays in `_metadata`.

use super::format::{
    checksum_more, verify_frame, OperatorState, StateError, TaskState, CHECKSUM_SEED, HEADER, STATE_MAGIC,
};
use crate::state::KeyGroupWriter;
use flowc_compiler::ids::{Id16, OperatorId, VertexId};
use std::io::Write;

/// The state file format this flowc writes.
pub const STATE_FORMAT_VERSION: u32 = 2;

const TAG_END: u8 = 0;
const TAG_OPERATOR: u8 = 1;
const TAG_KEY_GROUP: u8 = 2;
const TAG_RAW: u8 = 3;

/// What a task writes its state into: operators' key groups (through
/// [`KeyGroupWriter`]) and raw state, each after [`StateSink::operator`]
/// named whose it is. Nothing is written for an operator that hands out
/// nothing, and no file at all for a subtask without state.
pub trait StateSink: KeyGroupWriter {
    /// The key groups and raw state written next are `operator`'s.
    fn operator(&mut self, operator: OperatorId);
    /// The current operator's raw (subtask) state; empty writes nothing.
    fn raw(&mut self, bytes: &[u8]) -> std::io::Result<()>;
    /// How many key groups were written so far, of every operator.
    fn key_groups_written(&self) -> u64;
}

/// Writes a format-2 state file's frame and records into `out`. Nothing
/// reaches `out` before the first record, so a lazily opened `out` (see
/// `storage/file.rs`) makes no file for a subtask without state.
pub struct StateFileWriter<W: Write> {
    out: W,
    vertex: VertexId,
    subtask: u32,
    started: bool,
    operator: Option<OperatorId>,
    operator_written: bool,
    last_key_group: Option<u32>,
    key_groups: u64,
    sum: u64,
    len: u64,
}

impl<W: Write> StateFileWriter<W> {
    pub fn new(out: W, vertex: VertexId, subtask: u32) -> StateFileWriter<W> {
        StateFileWriter {
            out,
            vertex,
            subtask,
            started: false,
            operator: None,
            operator_written: false,
            last_key_group: None,
            key_groups: 0,
            sum: CHECKSUM_SEED,
            len: 0,
        }
    }

    /// Body bytes: written, summed and counted.
    fn body(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.out.write_all(bytes)?;
        self.sum = checksum_more(self.sum, bytes);
        self.len += bytes.len() as u64;
        Ok(())
    }

    /// The header (its length still 0) and the subtask, once. A task's
    /// writer begins at its first record; call it to write a file without
    /// state.
    pub fn begin(&mut self) -> std::io::Result<()> {
        if !self.started {
            self.started = true;
            self.out.write_all(STATE_MAGIC)?;
            self.out.write_all(&STATE_FORMAT_VERSION.to_le_bytes())?;
            self.out.write_all(&0u64.to_le_bytes())?;
            let (vertex, subtask) = (self.vertex.0, self.subtask);
            self.body(&vertex)?;
            self.body(&subtask.to_le_bytes())?;
        }
        Ok(())
    }

    /// The header, then the current operator's record, each once.
    fn open_operator(&mut self) -> std::io::Result<()> {
        self.begin()?;
        if !self.operator_written {
            let Some(op) = self.operator else {
                return Err(std::io::Error::other("state written before its operator was named (a bug in flowc)"));
            };
            self.operator_written = true;
            self.body(&[TAG_OPERATOR])?;
            self.body(&op.0)?;
        }
        Ok(())
    }

    /// Ends the body and appends its checksum. Returns `out`, the body's
    /// length (for the header's bytes 12..20, patched by the caller) and
    /// the file's size; `None` when nothing was written (no file).
    pub fn finish(mut self) -> std::io::Result<Option<(W, u64, u64)>> {
        if !self.started {
            return Ok(None);
        }
        self.body(&[TAG_END])?;
        self.out.write_all(&self.sum.to_le_bytes())?;
        let size = HEADER as u64 + self.len + 8;
        Ok(Some((self.out, self.len, size)))
    }
}

impl<W: Write> KeyGroupWriter for StateFileWriter<W> {
    fn key_group(&mut self, key_group: u32, bytes: &[u8]) -> std::io::Result<()> {
        if self.last_key_group.is_some_and(|last| last >= key_group) {
            return Err(std::io::Error::other(format!(
                "key group {key_group} came after key group {} (a bug in flowc)",
                self.last_key_group.unwrap_or_default()
            )));
        }
        self.last_key_group = Some(key_group);
        self.open_operator()?;
        self.body(&[TAG_KEY_GROUP])?;
        self.body(&key_group.to_le_bytes())?;
        self.body(&(bytes.len() as u64).to_le_bytes())?;
        self.body(bytes)?;
        self.key_groups += 1;
        Ok(())
    }
}

impl<W: Write> StateSink for StateFileWriter<W> {
    fn operator(&mut self, operator: OperatorId) {
        self.operator = Some(operator);
        self.operator_written = false;
        self.last_key_group = None;
    }

    fn raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        self.open_operator()?;
        self.body(&[TAG_RAW])?;
        self.body(&(bytes.len() as u64).to_le_bytes())?;
        self.body(bytes)
    }

    fn key_groups_written(&self) -> u64 {
        self.key_groups
    }
}

/// A sink that runs `before` once, ahead of the first thing written (a
/// fault injection's delay "as the state file is written", which a
/// subtask without state never reaches).
pub struct BeforeFirstWrite<'a, F: FnMut()> {
    pub sink: &'a mut dyn StateSink,
    pub before: Option<F>,
}

impl<F: FnMut()> BeforeFirstWrite<'_, F> {
    fn first(&mut self) {
        if let Some(mut f) = self.before.take() {
            f();
        }
    }
}

impl<F: FnMut()> KeyGroupWriter for BeforeFirstWrite<'_, F> {
    fn key_group(&mut self, key_group: u32, bytes: &[u8]) -> std::io::Result<()> {
        self.first();
        self.sink.key_group(key_group, bytes)
    }
}

impl<F: FnMut()> StateSink for BeforeFirstWrite<'_, F> {
    fn operator(&mut self, operator: OperatorId) {
        self.sink.operator(operator);
    }

    fn raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if !bytes.is_empty() {
            self.first();
        }
        self.sink.raw(bytes)
    }

    fn key_groups_written(&self) -> u64 {
        self.sink.key_groups_written()
    }
}

/// Writes a collected [`TaskState`] through a sink, as a task would.
pub fn write_task_state(state: &TaskState, sink: &mut dyn StateSink) -> std::io::Result<()> {
    for o in &state.operators {
        sink.operator(o.operator);
        for (kg, bytes) in &o.keyed {
            sink.key_group(*kg, bytes)?;
        }
        sink.raw(&o.raw)?;
    }
    Ok(())
}

/// A whole format-2 file in memory (tests, and storages without streams);
/// a state without operators makes a file too.
pub fn encode_task_state(state: &TaskState) -> Vec<u8> {
    let mut w = StateFileWriter::new(Vec::new(), state.vertex, state.subtask);
    // Writing into memory fails only on a bug (key groups out of order).
    let _ = w.begin().and_then(|()| write_task_state(state, &mut w));
    match w.finish() {
        Ok(Some((mut bytes, len, _))) => {
            bytes[12..HEADER].copy_from_slice(&len.to_le_bytes());
            bytes
        }
        _ => Vec::new(),
    }
}

/// Reads a state file of format 1 or 2, checking its frame first.
pub fn decode_task_state(path: &str, bytes: &[u8]) -> Result<TaskState, StateError> {
    let body = verify_frame(STATE_MAGIC, "state", path, bytes)?;
    let version = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    let corrupt = |reason: String| StateError::Corrupt { path: path.to_string(), reason };
    if version == 1 {
        let (state, used) =
            bincode::serde::decode_from_slice(body, bincode::config::standard()).map_err(|e| corrupt(e.to_string()))?;
        if used != body.len() {
            return Err(corrupt("unexpected bytes after the state".into()));
        }
        return Ok(state);
    }
    decode_body(body).map_err(corrupt)
}

/// The records of a format-2 body.
fn decode_body(body: &[u8]) -> Result<TaskState, String> {
    let mut r = Reader { bytes: body, at: 0 };
    let vertex = Id16(r.array()?);
    let subtask = u32::from_le_bytes(r.array()?);
    let mut operators: Vec<OperatorState> = Vec::new();
    loop {
        let [tag] = r.array()?;
        match tag {
            TAG_END => break,
            TAG_OPERATOR => {
                operators.push(OperatorState { operator: Id16(r.array()?), keyed: Vec::new(), raw: Vec::new() })
            }
            TAG_KEY_GROUP => {
                let kg = u32::from_le_bytes(r.array()?);
                let bytes = r.sized()?;
                let Some(o) = operators.last_mut() else { return Err("a key group before any operator".into()) };
                if o.keyed.last().is_some_and(|(last, _)| *last >= kg) {
                    return Err(format!("key group {kg} out of order"));
                }
                o.keyed.push((kg, bytes.to_vec()));
            }
            TAG_RAW => {
                let bytes = r.sized()?;
                let Some(o) = operators.last_mut() else { return Err("raw state before any operator".into()) };
                o.raw.extend_from_slice(bytes);
            }
            other => return Err(format!("unknown record {other} at byte {}", r.at - 1)),
        }
    }
    if r.at != body.len() {
        return Err("unexpected bytes after the state".into());
    }
    Ok(TaskState { vertex, subtask, operators })
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: u64) -> Result<&'a [u8], String> {
        let rest = (self.bytes.len() - self.at) as u64;
        if n > rest {
            return Err(format!("a record of {n} bytes where {rest} are left"));
        }
        let out = &self.bytes[self.at..self.at + n as usize];
        self.at += n as usize;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N as u64)?);
        Ok(out)
    }

    fn sized(&mut self) -> Result<&'a [u8], String> {
        let n = u64::from_le_bytes(self.array()?);
        self.take(n)
    }
}

#[cfg(test)]
mod tests;
