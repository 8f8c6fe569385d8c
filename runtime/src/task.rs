//! One subtask at run time: a thread that reads its inputs (or its source),
//! runs its chain of operators and writes to its outputs (or its sink).
//!
//! ```text
//!  channels ─┐                                 ┌─▶ channels (FORWARD / HASH / REBALANCE)
//!  channels ─┼─▶ min watermark ─▶ op → op → op ┤
//!  source ───┘   (idle inputs excluded)        └─▶ sink
//! ```
//!
//! Records move in columnar batches (`data::Batch`). A batch big enough is
//! passed on a FORWARD or REBALANCE edge as it is; smaller ones, and the
//! rows a HASH edge routes to each receiver (by key group, computed from
//! the key columns), are appended to a buffer per receiver, sent when it
//! is full, when the task has no input ready, or before a signal. Every
//! 200 ms the operators get a timer tick. Cancellation is noticed within
//! 200 ms.

use crate::checkpoint::format::{state_file_name, OperatorEntry, TaskEntry};
use crate::checkpoint::state_file::{BeforeFirstWrite, StateSink};
use crate::checkpoint::{Barrier, SourceState};
use crate::clock::now_ms;
use crate::connectors::{SinkWriter, SourcePoll, SourceReader};

/// A task's source, as it runs.
type Source = dyn SourceReader + 'static;
use crate::data::Batch;
use crate::ids::{Attempt, JobId, SubtaskId};
use crate::keygroup::{key_group, key_hashes, subtask_for_key_group};
use crate::metrics::TaskCounters;
use crate::network::{ChannelRx, ChannelTx};
use crate::operators::{Operator, OperatorError};
use crate::record::{Element, Signal};
use crossbeam_channel::{Select, SendTimeoutError, TryRecvError, TrySendError};
use flowc_compiler::ids::{OperatorId, VertexId};
use flowc_compiler::ir::DataType;
use flowc_compiler::ShipStrategy;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Records per batch on a channel.
pub const BATCH_SIZE: usize = 1024;
/// A batch at least this big goes on a FORWARD or REBALANCE edge as it is
/// (when nothing is buffered); smaller ones are gathered first.
const PASS_AS_IS: usize = BATCH_SIZE / 2;
const TICK: Duration = Duration::from_millis(200);

#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error(transparent)]
    Operator(#[from] OperatorError),
    #[error(transparent)]
    Connector(#[from] crate::connectors::ConnectorError),
    #[error("the input from subtask {from} closed before its end (its task or TaskManager is gone)")]
    InputLost { from: String },
    #[error("the input from subtask {from} sent records of another layout ({reason}): a bug in flowc, or a TaskManager of another version")]
    BadInput { from: String, reason: String },
    #[error("the output to subtask {to} closed (its task or TaskManager is gone)")]
    OutputLost { to: String },
    #[error("cancelled")]
    Cancelled,
    #[error("{0}")]
    Setup(String),
    #[error("{operator}: cannot restore state: {source}")]
    Restore { operator: String, source: crate::checkpoint::format::StateError },
}

impl TaskError {
    /// Whether the task failed because the state it restores is corrupt
    /// or incomplete (not because it could not be read just now).
    pub fn is_corrupt_state(&self) -> bool {
        matches!(self, TaskError::Restore { source, .. } if source.is_corruption())
    }

    /// Whether the task failed only because a peer's channel closed: the
    /// peer failed (or its TaskManager went), which is the cause.
    pub fn is_consequence(&self) -> bool {
        matches!(self, TaskError::InputLost { .. } | TaskError::OutputLost { .. })
    }
}

/// How a task ended without error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskOutcome {
    Finished,
    Canceled,
}

/// One upstream channel of a task.
pub struct InputChannel {
    pub rx: ChannelRx,
    /// For messages: "ClickEvent Source#1".
    pub from: String,
    /// The upstream subtask, for the watermark-lineage view.
    pub source: Option<SubtaskId>,
    watermark: i64,
    idle: bool,
    ended: bool,
    /// Delivered the barrier being aligned: not read until alignment ends.
    blocked: bool,
    /// The field types of the records it carries, checked per batch.
    types: Option<Vec<DataType>>,
    /// The logical input of the task's head operator it feeds: 0, or 1
    /// for a join's right side.
    input: u32,
}

impl InputChannel {
    pub fn new(rx: ChannelRx, from: String) -> InputChannel {
        InputChannel {
            rx,
            from,
            source: None,
            watermark: i64::MIN,
            idle: false,
            ended: false,
            blocked: false,
            types: None,
            input: 0,
        }
    }

    /// Names the upstream subtask it reads from.
    pub fn from_subtask(mut self, source: SubtaskId) -> InputChannel {
        self.source = Some(source);
        self
    }

    /// The channel feeds logical input `input` of the head operator.
    pub fn for_input(mut self, input: u32) -> InputChannel {
        self.input = input;
        self
    }

    pub fn input(&self) -> u32 {
        self.input
    }

    /// Checks every batch it delivers against these field types.
    pub fn expect(&mut self, types: Vec<DataType>) {
        self.types = Some(types);
    }
}

/// One outgoing edge: a partitioner over the downstream subtasks' channels.
pub struct OutputEdge {
    ship: ShipStrategy,
    /// Carries the late records of the chain's last operator (a window's
    /// late output), not its output.
    pub late: bool,
    channels: Vec<ChannelTx>,
    names: Vec<String>,
    /// The field types of the records on the edge.
    types: Vec<DataType>,
    /// Rows waiting for each channel.
    buffers: Vec<Batch>,
    next: usize,
    max_parallelism: u32,
    /// Per batch, reused: key hashes and the rows for each channel.
    hashes: Vec<u64>,
    routes: Vec<Vec<u32>>,
    /// The channel of each key group (filled on first use).
    channel_of_group: Vec<u32>,
}

impl OutputEdge {
    pub fn new(
        ship: ShipStrategy,
        channels: Vec<ChannelTx>,
        names: Vec<String>,
        types: Vec<DataType>,
        max_parallelism: u32,
        subtask: u32,
    ) -> OutputEdge {
        let n = channels.len();
        OutputEdge {
            ship,
            late: false,
            channels,
            names,
            buffers: (0..n).map(|_| Batch::empty(&types, BATCH_SIZE)).collect(),
            types,
            next: subtask as usize,
            max_parallelism,
            hashes: Vec::new(),
            routes: vec![Vec::new(); n],
            channel_of_group: Vec::new(),
        }
    }

    /// Takes the rows waiting for channel `c`.
    fn take(&mut self, c: usize) -> Batch {
        std::mem::replace(&mut self.buffers[c], Batch::empty(&self.types, BATCH_SIZE))
    }

    /// Routes a batch: what is ready to send goes to `ready` as
    /// (channel, batch), the rest waits in the buffers. `batch` is owned
    /// by the last edge that sees it; earlier edges copy (per batch, column
    /// by column) what they pass on.
    fn route(&mut self, batch: std::borrow::Cow<'_, Batch>, ready: &mut Vec<(usize, Batch)>) {
        let n = self.channels.len();
        if n == 0 {
            return;
        }
        let key = match &self.ship {
            ShipStrategy::Hash { key } => {
                key_hashes(&batch.columns, key, batch.len(), &mut self.hashes);
                Some(key.as_slice())
            }
            // The rows of a window (`top`): by the hash of their time (and
            // of their partition fields, `top … per k`).
            ShipStrategy::Window => {
                crate::operators::top::window_key_hashes(&batch, &[], &mut self.hashes);
                None
            }
            ShipStrategy::WindowKey { key } => {
                crate::operators::top::window_key_hashes(&batch, key, &mut self.hashes);
                None
            }
            ShipStrategy::Forward | ShipStrategy::Rebalance => {
                let c = if self.ship == ShipStrategy::Rebalance {
                    self.next = (self.next + 1) % n;
                    self.next
                } else {
                    0
                };
                if self.buffers[c].is_empty() && batch.len() >= PASS_AS_IS {
                    ready.push((c, batch.into_owned()));
                } else {
                    self.buffers[c].extend(&batch);
                    if self.buffers[c].len() >= BATCH_SIZE {
                        ready.push((c, self.take(c)));
                    }
                }
                return;
            }
        };
        for r in &mut self.routes {
            r.clear();
        }
        if self.channel_of_group.is_empty() {
            // Key group → channel, once per edge.
            let (maxp, p) = (self.max_parallelism, n as u32);
            self.channel_of_group =
                (0..maxp.max(1)).map(|kg| (subtask_for_key_group(kg, p, maxp) as usize).min(n - 1) as u32).collect();
        }
        let maxp = u64::from(self.max_parallelism.max(1));
        for (row, h) in self.hashes.iter().enumerate() {
            // key_group(): a power of two divides as a mask does.
            let kg =
                if maxp.is_power_of_two() { h & (maxp - 1) } else { u64::from(key_group(*h, self.max_parallelism)) };
            let c = self.channel_of_group.get(kg as usize).copied().unwrap_or(0) as usize;
            self.routes[c].push(row as u32);
        }
        for c in 0..n {
            if self.routes[c].is_empty() {
                continue;
            }
            // The hashes go along: the receiver keyed by the same fields need not hash again.
            self.buffers[c].extend_rows_hashed(&batch, &self.routes[c], key.map(|k| (k, self.hashes.as_slice())));
            if self.buffers[c].len() >= BATCH_SIZE {
                let full = std::mem::replace(&mut self.buffers[c], Batch::empty(&self.types, BATCH_SIZE));
                ready.push((c, full));
            }
        }
    }
}

pub enum Head {
    Source(Box<dyn SourceReader>),
    Inputs(Vec<InputChannel>),
}

/// A subtask's result for one checkpoint: its entry for `_metadata`, or why
/// it declined.
#[derive(Debug, Clone)]
pub struct CheckpointReport {
    pub checkpoint_id: u64,
    pub result: Result<TaskEntry, String>,
}

/// One operator of the task's vertex, for its state.
#[derive(Debug, Clone)]
pub struct OperatorInfo {
    pub id: OperatorId,
    pub uid: Option<String>,
    pub name: String,
}

/// What a task needs to take part in checkpoints.
pub struct CheckpointCtx {
    pub vertex: VertexId,
    pub vertex_name: String,
    pub parallelism: u32,
    /// The source's operator, if the task starts with one.
    pub source: Option<OperatorInfo>,
    /// The operators between source and sink, in order, each with the
    /// index in `Task::chain` of the operator that runs it (fused
    /// operators share one).
    pub chain: Vec<(OperatorInfo, usize)>,
    /// The sink's operator, if the task ends with one.
    pub sink: Option<OperatorInfo>,
    /// Checkpoint triggers, for a source task.
    pub triggers: Option<crossbeam_channel::Receiver<Barrier>>,
    /// Completed checkpoint ids, for a task with a sink.
    pub completions: Option<crossbeam_channel::Receiver<u64>>,
    /// Where reports go (to the JobManager).
    pub report: Box<dyn Fn(CheckpointReport) + Send>,
    /// Where state files are written (a directory or an `s3://` prefix).
    pub storage: Arc<dyn crate::checkpoint::storage::CheckpointStorage>,
}

pub struct Task {
    pub job_id: JobId,
    pub attempt: Attempt,
    pub id: SubtaskId,
    pub name: String,
    pub head: Head,
    pub chain: Vec<Box<dyn Operator>>,
    pub sink: Option<Box<dyn SinkWriter>>,
    pub outputs: Vec<OutputEdge>,
    pub cancel: Arc<AtomicBool>,
    pub counters: Arc<TaskCounters>,
    pub checkpoints: CheckpointCtx,
    /// A stop-with-savepoint barrier has passed: emit nothing more, and end
    /// without firing what is left once the inputs end.
    pub stopped: bool,
    /// The id of that stop-with-savepoint.
    pub stop_checkpoint: Option<u64>,
    /// The latest completed checkpoint the task heard of: a stopped task
    /// that heard of its savepoint's completion while its inputs were
    /// still ending does not wait for it again.
    pub completed_checkpoint: Option<u64>,
}

/// How long a stopping sink waits for its savepoint to complete before it
/// ends without committing (the savepoint still holds its output).
const STOP_COMMIT_WAIT: Duration = Duration::from_secs(120);

impl Task {
    /// Runs the task to its end on the calling thread.
    pub fn run(mut self) -> Result<TaskOutcome, TaskError> {
        let result = match std::mem::replace(&mut self.head, Head::Inputs(Vec::new())) {
            Head::Source(source) => self.run_source(source),
            Head::Inputs(inputs) => self.run_inputs(inputs),
        };
        match result {
            Err(TaskError::Cancelled) => Ok(TaskOutcome::Canceled),
            Err(e) if self.cancelled() => {
                tracing::debug!(job_id = %self.job_id, subtask = %self.id, error = %e, "Error while cancelling.");
                Ok(TaskOutcome::Canceled)
            }
            other => other,
        }
    }

    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    fn run_source(&mut self, mut source: Box<dyn SourceReader>) -> Result<TaskOutcome, TaskError> {
        let mut next_tick = Instant::now() + TICK;
        loop {
            if self.cancelled() {
                return Err(TaskError::Cancelled);
            }
            let now = Instant::now();
            if now >= next_tick {
                self.tick()?;
                self.counters.set_lineage(|l| l.partitions = source.partitions());
                next_tick = now + TICK;
            }
            self.poll_completions(Some(source.as_mut()))?;
            if let Some(b) = self.checkpoints.triggers.as_ref().and_then(|t| t.try_recv().ok()) {
                source.flush()?;
                let state = source.snapshot(b.id);
                if b.stop.is_some_and(|s| s.drain) {
                    // Drain: every window fires before the savepoint.
                    self.push_signal(0, Signal::Watermark(i64::MAX))?;
                }
                self.on_barrier(b.clone(), state)?;
                if b.stop.is_some() {
                    self.stopped = true;
                    self.stop_checkpoint = Some(b.id);
                    return self.finish(Some(source.as_mut()));
                }
                continue;
            }
            // The wait for records is idle time; a poll that hands out
            // records was working (reading, decoding, generating).
            let polled = Instant::now();
            let poll = source.poll(next_tick.saturating_duration_since(polled).max(Duration::from_millis(1)))?;
            if !matches!(poll, SourcePoll::Records(_)) {
                TaskCounters::add_wait(&self.counters.idle_ns, polled);
            }
            match poll {
                SourcePoll::Records(batch) => {
                    TaskCounters::add(&self.counters.records_in, batch.len() as u64);
                    self.push_records(0, batch)?;
                }
                SourcePoll::Signal(s) => self.push_signal(0, s)?,
                SourcePoll::Nothing => self.flush_outputs()?,
                SourcePoll::End => {
                    source.flush()?;
                    return self.finish(Some(source.as_mut()));
                }
            }
        }
    }

    fn run_inputs(&mut self, mut inputs: Vec<InputChannel>) -> Result<TaskOutcome, TaskError> {
        if inputs.is_empty() {
            return Err(TaskError::Setup("a task without a source has no inputs".into()));
        }
        let mut next_tick = Instant::now() + TICK;
        let mut last_wm = i64::MIN;
        let mut all_idle = false;
        let mut rr = 0usize;
        // The barrier being aligned, and which inputs have delivered it.
        let mut aligning: Option<Barrier> = None;
        loop {
            if self.cancelled() {
                return Err(TaskError::Cancelled);
            }
            self.poll_completions(None)?;
            let now = Instant::now();
            if now >= next_tick {
                self.tick()?;
                self.observe_inputs(&inputs);
                next_tick = now + TICK;
            }
            // Take what is ready, round robin; block only when nothing is.
            let mut got = None;
            let n = inputs.len();
            for k in 0..n {
                let i = (rr + k) % n;
                if inputs[i].ended || inputs[i].blocked {
                    continue;
                }
                match inputs[i].rx.try_recv() {
                    Ok(e) => {
                        got = Some((i, e));
                        rr = i + 1;
                        break;
                    }
                    Err(TryRecvError::Empty) => {}
                    Err(TryRecvError::Disconnected) => {
                        return Err(TaskError::InputLost { from: inputs[i].from.clone() })
                    }
                }
            }
            let (i, element) = match got {
                Some(x) => x,
                None => {
                    self.flush_outputs()?;
                    let mut sel = Select::new();
                    let open: Vec<usize> = (0..n).filter(|i| !inputs[*i].ended && !inputs[*i].blocked).collect();
                    for i in &open {
                        sel.recv(&inputs[*i].rx);
                    }
                    let waiting = Instant::now();
                    let wait = next_tick.saturating_duration_since(waiting);
                    let selected = sel.select_timeout(wait);
                    TaskCounters::add_wait(&self.counters.idle_ns, waiting);
                    match selected {
                        Ok(op) => {
                            let i = open[op.index()];
                            match op.recv(&inputs[i].rx) {
                                Ok(e) => (i, e),
                                Err(_) => return Err(TaskError::InputLost { from: inputs[i].from.clone() }),
                            }
                        }
                        Err(_) => continue,
                    }
                }
            };
            match element {
                Element::Records(mut batch) => {
                    if let Some(types) = &inputs[i].types {
                        if let Err(reason) = batch.conform(types) {
                            return Err(TaskError::BadInput { from: inputs[i].from.clone(), reason });
                        }
                    }
                    TaskCounters::add(&self.counters.records_in, batch.len() as u64);
                    TaskCounters::add(&self.counters.bytes_in, batch.encoded_len() as u64);
                    if inputs[i].idle {
                        inputs[i].idle = false;
                    }
                    match inputs[i].input {
                        0 => self.push_records(0, batch)?,
                        side => self.push_side(side, batch)?,
                    }
                    continue;
                }
                Element::Signal(Signal::Watermark(w)) => {
                    inputs[i].watermark = inputs[i].watermark.max(w);
                    inputs[i].idle = false;
                }
                Element::Signal(Signal::Idle) => inputs[i].idle = true,
                Element::Signal(Signal::Active) => inputs[i].idle = false,
                Element::Barrier(b) => {
                    match &aligning {
                        Some(a) if b.id < a.id => continue, // a stale barrier of an abandoned checkpoint
                        Some(a) if b.id == a.id => {}
                        _ => {
                            // A newer checkpoint supersedes one that never aligned.
                            inputs.iter_mut().for_each(|c| c.blocked = false);
                            aligning = Some(b);
                        }
                    }
                    inputs[i].blocked = true;
                    self.try_complete_alignment(&mut inputs, &mut aligning)?;
                    continue;
                }
                Element::EndOfInput => {
                    inputs[i].ended = true;
                    self.try_complete_alignment(&mut inputs, &mut aligning)?;
                    if inputs.iter().all(|c| c.ended) {
                        return self.finish(None);
                    }
                }
            }
            // The task's watermark: the minimum over inputs that are neither idle nor ended.
            let live: Vec<&InputChannel> = inputs.iter().filter(|c| !c.ended && !c.idle).collect();
            if live.is_empty() {
                if !all_idle {
                    all_idle = true;
                    self.push_signal(0, Signal::Idle)?;
                }
                continue;
            }
            if all_idle {
                all_idle = false;
                self.push_signal(0, Signal::Active)?;
            }
            let wm = live.iter().map(|c| c.watermark).min().unwrap_or(i64::MIN);
            if wm > last_wm {
                last_wm = wm;
                self.counters.watermark.store(wm, Ordering::Relaxed);
                self.push_signal(0, Signal::Watermark(wm))?;
            }
        }
    }

    /// End of all input: a final watermark, then every operator flushes.
    /// After a stop-with-savepoint nothing fires: what is left is in the
    /// savepoint and fires after the resume.
    fn finish(&mut self, source: Option<&mut Source>) -> Result<TaskOutcome, TaskError> {
        if !self.stopped {
            self.push_signal(0, Signal::Watermark(i64::MAX))?;
            for k in 0..self.chain.len() {
                let mut out = Vec::new();
                self.chain[k].on_end_of_input(&mut out)?;
                self.push_batches(k + 1, out)?;
            }
        }
        for op in &mut self.chain {
            op.flush()?;
        }
        self.flush_outputs()?;
        if self.stopped {
            // Flushed at the barrier; an exactly-once sink commits when the savepoint completes.
            self.await_stop_commit(source)?;
        } else if let Some(sink) = &mut self.sink {
            sink.flush()?;
        }
        for e in 0..self.outputs.len() {
            for c in 0..self.outputs[e].channels.len() {
                self.send(e, c, Element::EndOfInput)?;
            }
        }
        Ok(TaskOutcome::Finished)
    }

    /// Completes the alignment once every input that has not ended has
    /// delivered the barrier.
    fn try_complete_alignment(
        &mut self,
        inputs: &mut [InputChannel],
        aligning: &mut Option<Barrier>,
    ) -> Result<(), TaskError> {
        let Some(b) = aligning.as_ref() else { return Ok(()) };
        if !inputs.iter().all(|c| c.ended || c.blocked) {
            return Ok(());
        }
        let b = b.clone();
        *aligning = None;
        inputs.iter_mut().for_each(|c| c.blocked = false);
        let (stop, id) = (b.stop.is_some(), b.id);
        self.on_barrier(b, SourceState::None)?;
        if stop {
            self.stopped = true;
            self.stop_checkpoint = Some(id);
        }
        Ok(())
    }

    /// Tells the source and the sink of every checkpoint completed since
    /// the last look.
    fn poll_completions(&mut self, mut source: Option<&mut Source>) -> Result<(), TaskError> {
        let Some(rx) = self.checkpoints.completions.clone() else { return Ok(()) };
        while let Ok(id) = rx.try_recv() {
            self.checkpoint_complete(id, source.as_deref_mut())?;
        }
        Ok(())
    }

    fn checkpoint_complete(&mut self, id: u64, source: Option<&mut Source>) -> Result<(), TaskError> {
        self.completed_checkpoint = self.completed_checkpoint.max(Some(id));
        if let Some(source) = source {
            source.checkpoint_complete(id);
        }
        if let Some(sink) = &mut self.sink {
            sink.checkpoint_complete(id)?;
        }
        Ok(())
    }

    /// A stopped source or sink ends once its savepoint completed and it
    /// committed (the source its offsets, the sink its transactions).
    fn await_stop_commit(&mut self, mut source: Option<&mut Source>) -> Result<(), TaskError> {
        let (Some(stop_id), Some(rx)) = (self.stop_checkpoint, self.checkpoints.completions.clone()) else {
            return Ok(());
        };
        if self.completed_checkpoint >= Some(stop_id) {
            return Ok(());
        }
        let deadline = Instant::now() + STOP_COMMIT_WAIT;
        while Instant::now() < deadline {
            if self.cancelled() {
                return Err(TaskError::Cancelled);
            }
            if let Ok(id) = rx.recv_timeout(TICK) {
                self.checkpoint_complete(id, source.as_deref_mut())?;
                if id >= stop_id {
                    return Ok(());
                }
            }
        }
        tracing::warn!(job_id = %self.job_id, subtask = %self.id, "The stop-with-savepoint did not complete; its output stays in the savepoint.");
        Ok(())
    }

    /// Takes this subtask's part of a checkpoint: flushes what came before
    /// the barrier, snapshots every operator, writes the state file, reports
    /// and passes the barrier on. A failure to write declines the
    /// checkpoint; the job goes on.
    fn on_barrier(&mut self, b: Barrier, source: SourceState) -> Result<(), TaskError> {
        // A stage's dead letters before the barrier are delivered.
        for op in &mut self.chain {
            op.flush()?;
        }
        self.flush_outputs()?;
        // At-least-once: everything before the barrier is delivered;
        // exactly-once: what is not committed goes into the checkpoint.
        let sink_state = match &mut self.sink {
            Some(sink) => sink.snapshot(b.id)?,
            None => Vec::new(),
        };
        let result = self.write_state(&b, source, sink_state);
        if let Err(e) = &result {
            tracing::warn!(job_id = %self.job_id, subtask = %self.id, checkpoint_id = b.id, error = %e, "Declining a checkpoint.");
        }
        (self.checkpoints.report)(CheckpointReport { checkpoint_id: b.id, result });
        for e in 0..self.outputs.len() {
            for c in 0..self.outputs[e].channels.len() {
                self.send(e, c, Element::Barrier(b.clone()))?;
            }
        }
        Ok(())
    }

    fn write_state(&self, b: &Barrier, source: SourceState, sink_state: Vec<u8>) -> Result<TaskEntry, String> {
        let ctx = &self.checkpoints;
        let mut operators = Vec::new();
        if let Some(op) = &ctx.source {
            operators.push(OperatorEntry {
                operator: op.id,
                uid: op.uid.clone(),
                name: op.name.clone(),
                keyed: false,
                raw: false,
                source,
            });
        }
        for (info, _) in &ctx.chain {
            operators.push(OperatorEntry {
                operator: info.id,
                uid: info.uid.clone(),
                name: info.name.clone(),
                keyed: false,
                raw: false,
                source: SourceState::None,
            });
        }
        if let Some(op) = &ctx.sink {
            operators.push(OperatorEntry {
                operator: op.id,
                uid: op.uid.clone(),
                name: op.name.clone(),
                keyed: false,
                raw: !sink_state.is_empty(),
                source: SourceState::None,
            });
        }
        // Each operator hands its key groups one at a time straight into the
        // state file (format 2): the state is never held a second time as
        // bytes. No file is made for a subtask without state.
        let first_chained = usize::from(ctx.source.is_some());
        let name = state_file_name(ctx.vertex, self.id.subtask);
        // The JobManager prepared the checkpoint when it triggered it; if it
        // is gone, the checkpoint was abandoned and nothing is written
        // (never created again here).
        let dir = std::path::Path::new(&b.dir);
        let mut fill = |sink: &mut dyn StateSink| -> std::io::Result<()> {
            let subtask = self.id.subtask;
            let sink = &mut BeforeFirstWrite { sink, before: Some(|| crate::fault::slow_state_write(subtask)) };
            for (i, (info, k)) in ctx.chain.iter().enumerate() {
                let Some(op) = self.chain.get(*k) else { continue };
                let before = sink.key_groups_written();
                sink.operator(info.id);
                op.snapshot_into(sink)?;
                operators[first_chained + i].keyed = sink.key_groups_written() > before;
            }
            if let Some(op) = &ctx.sink {
                sink.operator(op.id);
                sink.raw(&sink_state)?;
            }
            Ok(())
        };
        let size = self
            .checkpoints
            .storage
            .write_task_state_with(dir, &name, ctx.vertex, self.id.subtask, &mut fill)
            .map_err(|e| e.to_string())?;
        let (file, size) = match size {
            Some(size) => (Some(name), size),
            None => (None, 0),
        };
        Ok(TaskEntry {
            vertex: ctx.vertex,
            vertex_name: ctx.vertex_name.clone(),
            subtask: self.id.subtask,
            parallelism: ctx.parallelism,
            operators,
            file,
            size,
        })
    }

    /// Every tick: the inputs' queue fill and watermarks, for the metrics
    /// and the watermark-lineage view (a few atomics and one short lock).
    fn observe_inputs(&self, inputs: &[InputChannel]) {
        let cap = (inputs.len() * crate::network::CHANNEL_CAPACITY).max(1);
        let queued: usize = inputs.iter().map(|c| c.rx.len()).sum();
        self.counters.in_pool_permille.store((queued * 1000 / cap) as u64, Ordering::Relaxed);
        let lineage = inputs
            .iter()
            .filter_map(|c| {
                let s = c.source?;
                Some(crate::metrics::InputLineage {
                    vertex: s.vertex,
                    subtask: s.subtask,
                    watermark: (c.watermark != i64::MIN).then_some(c.watermark),
                    idle: c.idle,
                    ended: c.ended,
                })
            })
            .collect();
        self.counters.set_lineage(|l| l.inputs = lineage);
    }

    /// Every tick: the output queues' fill and the pending windows.
    fn observe_outputs(&self) {
        let (mut queued, mut cap) = (0, 0);
        for e in &self.outputs {
            for c in &e.channels {
                queued += c.len();
                cap += crate::network::CHANNEL_CAPACITY;
            }
        }
        self.counters.out_pool_permille.store((queued * 1000 / cap.max(1)) as u64, Ordering::Relaxed);
        let windows = self.chain.iter().find_map(|op| op.pending_windows());
        if windows.is_some() {
            self.counters.set_lineage(|l| l.windows = windows);
        }
    }

    fn tick(&mut self) -> Result<(), TaskError> {
        self.observe_outputs();
        if self.stopped {
            return Ok(());
        }
        let now = now_ms();
        for k in 0..self.chain.len() {
            let mut out = Vec::new();
            let sig = self.chain[k].on_timer(now, &mut out)?;
            self.push_batches(k + 1, out)?;
            if let Some(s) = sig {
                self.push_signal(k + 1, s)?;
            }
        }
        self.flush_outputs()
    }

    /// Runs a batch through the chain from operator `k` on.
    fn push_records(&mut self, k: usize, batch: Batch) -> Result<(), TaskError> {
        if batch.is_empty() {
            return Ok(());
        }
        if k < self.chain.len() {
            let mut out = Vec::new();
            self.chain[k].process(batch, &mut out)?;
            self.push_batches(k + 1, out)?;
            // Only the chain's last operator can have a late output: an
            // operator with a second output edge ends its chain.
            if k + 1 == self.chain.len() {
                for late in self.chain[k].take_late() {
                    self.emit_to(late, true)?;
                }
            }
            return Ok(());
        }
        TaskCounters::add(&self.counters.records_out, batch.len() as u64);
        if let Some(sink) = &mut self.sink {
            crate::fault::slow_sink(batch.len());
            sink.write(&batch)?;
            return Ok(());
        }
        self.emit(batch)
    }

    /// Runs a batch of logical input `side` (> 0) through the head
    /// operator, a join, and its output on through the chain.
    fn push_side(&mut self, side: u32, batch: Batch) -> Result<(), TaskError> {
        if batch.is_empty() {
            return Ok(());
        }
        let Some(head) = self.chain.first_mut() else {
            return Err(TaskError::Setup(format!("records of input {side} for a task without operators")));
        };
        let mut out = Vec::new();
        head.process_input(side, batch, &mut out)?;
        self.push_batches(1, out)
    }

    fn push_batches(&mut self, k: usize, batches: Vec<Batch>) -> Result<(), TaskError> {
        for b in batches {
            self.push_records(k, b)?;
        }
        Ok(())
    }

    fn push_signal(&mut self, k: usize, signal: Signal) -> Result<(), TaskError> {
        if k < self.chain.len() {
            let mut out = Vec::new();
            let fwd = self.chain[k].on_signal(signal, &mut out)?;
            self.push_batches(k + 1, out)?;
            if let Some(s) = fwd {
                self.push_signal(k + 1, s)?;
            }
            return Ok(());
        }
        if let Signal::Watermark(w) = signal {
            self.counters.output_watermark.store(w, Ordering::Relaxed);
        }
        if self.sink.is_some() {
            return Ok(());
        }
        self.flush_outputs()?;
        for e in 0..self.outputs.len() {
            for c in 0..self.outputs[e].channels.len() {
                self.send(e, c, Element::Signal(signal))?;
            }
        }
        Ok(())
    }

    /// Partitions a batch over every output edge (but the late ones).
    fn emit(&mut self, batch: Batch) -> Result<(), TaskError> {
        self.emit_to(batch, false)
    }

    /// Partitions a batch over the output edges that are late (`late`) or
    /// not.
    fn emit_to(&mut self, batch: Batch, late: bool) -> Result<(), TaskError> {
        let last = self.outputs.iter().rposition(|o| o.late == late);
        let mut ready = Vec::new();
        for e in 0..last.unwrap_or(0) {
            if self.outputs[e].late != late {
                continue;
            }
            self.outputs[e].route(std::borrow::Cow::Borrowed(&batch), &mut ready);
            for (c, b) in ready.drain(..) {
                self.send(e, c, Element::Records(b))?;
            }
        }
        if let Some(last) = last {
            self.outputs[last].route(std::borrow::Cow::Owned(batch), &mut ready);
            for (c, b) in ready.drain(..) {
                self.send(last, c, Element::Records(b))?;
            }
        }
        Ok(())
    }

    fn flush_outputs(&mut self) -> Result<(), TaskError> {
        for e in 0..self.outputs.len() {
            for c in 0..self.outputs[e].channels.len() {
                if !self.outputs[e].buffers[c].is_empty() {
                    let b = self.outputs[e].take(c);
                    self.send(e, c, Element::Records(b))?;
                }
            }
        }
        Ok(())
    }

    /// Sends with backpressure: waits while the channel is full, noticing
    /// cancellation.
    fn send(&self, e: usize, c: usize, mut element: Element) -> Result<(), TaskError> {
        if let Element::Records(batch) = &element {
            TaskCounters::add(&self.counters.bytes_out, batch.encoded_len() as u64);
        }
        let tx = &self.outputs[e].channels[c];
        // Room in the queue: no clock read. A full queue: the wait is
        // back-pressured time, added every TICK while it lasts.
        match tx.try_send(element) {
            Ok(()) => return Ok(()),
            Err(TrySendError::Disconnected(_)) => {
                return Err(TaskError::OutputLost { to: self.outputs[e].names[c].clone() })
            }
            Err(TrySendError::Full(back)) => element = back,
        }
        self.counters.out_pool_permille.store(1000, Ordering::Relaxed);
        loop {
            let waiting = Instant::now();
            let sent = tx.send_timeout(element, TICK);
            TaskCounters::add_wait(&self.counters.backpressured_ns, waiting);
            match sent {
                Ok(()) => return Ok(()),
                Err(SendTimeoutError::Timeout(back)) => {
                    if self.cancelled() {
                        return Err(TaskError::Cancelled);
                    }
                    element = back;
                }
                Err(SendTimeoutError::Disconnected(_)) => {
                    return Err(TaskError::OutputLost { to: self.outputs[e].names[c].clone() })
                }
            }
        }
    }
}
