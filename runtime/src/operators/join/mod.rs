//! `join`: a two-input equi-join in event time, bounded by an interval or
//! a window.
//!
//! - **Interval join** (Flink's `IntervalJoinOperator`): a left row at `t`
//!   meets the right rows of equal key at `[t + lower, t + upper]`. Each
//!   arriving row probes the other side's buffer, emits its matches at
//!   once (with event time `max(left, right)`), and is buffered itself. A
//!   row older than the watermark is late: dropped and counted. A left row
//!   is dropped from state once the watermark passes `t + upper`, a right
//!   row once it passes `t - lower`.
//! - **Left outer interval join** (Flink SQL's row-time interval join): as
//!   the inner one, and a left row that met no right row is emitted with
//!   the right's fields null, at its own event time, once the watermark
//!   passes `t + upper` (no right row to come can reach it then). So that
//!   such a row is never behind the watermark downstream, the watermark
//!   forwarded is held back by `max(upper, 0)`, as Flink SQL holds back an
//!   interval join's output watermark.
//! - **Window join**: rows of both sides in the same tumbling or sliding
//!   window with equal keys meet when the watermark passes the window's
//!   last millisecond, emitted with that time; a row whose every window has
//!   fired is late. A left outer window join emits, per window, each left
//!   row that met no right row in it, with the right's fields null.
//!
//! The temporal join (`as of`) is [`temporal`], the regular join (no time
//! bound, `ttl`; inner or left outer, whose output is a changelog)
//! [`regular`].
//!
//! With a late output (`{ late: name }`), the late rows of the left input
//! go to it ([`Operator::take_late`]), counted in
//! `numLateRecordsSideOutput`; late right rows are dropped and counted in
//! `numLateRecordsDropped` all the same (Flink's interval join can send
//! them to a side output of their own; flowc does not).
//!
//! Both sides are buffered by [`buffer::SideBuffer`]: typed columns, no
//! per-row values. State is snapshotted per key group (the rows of each
//! side, whether each left row has matched, and for window joins the end of
//! the last window fired), so that a restore at another parallelism takes
//! the key groups each subtask owns.

pub mod buffer;
pub mod lookup;
pub mod regular;
pub mod temporal;

use super::{KeyGroupWriter, KeyedSnapshot, Operator, OperatorError, LAYOUT_HINT};
use crate::data::{Batch, Column, RowKind};
use crate::keygroup::{key_group, key_hashes};
use crate::metrics::TaskCounters;
use crate::record::{Signal, Value, NO_TIMESTAMP};
use buffer::SideBuffer;
use flowc_compiler::ir::{DataType, Join, JoinBound, JoinType, Schema, WindowKind};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// Format of a key group's bytes in a snapshot; bump on change. Version 2:
/// bincode of [`SavedGroup`]; version 1 (read too) had no `left_done`.
const SNAPSHOT_VERSION: u8 = 2;

/// One key group's state.
#[derive(Debug, Default, Serialize, Deserialize)]
struct SavedGroup {
    /// Window joins: the end of the last window fired (`i64::MIN`: none).
    fired_upto: i64,
    left: Vec<(i64, Vec<Value>)>,
    right: Vec<(i64, Vec<Value>)>,
    /// Per left row: matched or emitted unmatched (left outer joins).
    left_done: Vec<bool>,
}

/// A key group's state in format 1 (inner joins only).
#[derive(Debug, Deserialize)]
struct SavedGroupV1 {
    fired_upto: i64,
    left: Vec<(i64, Vec<Value>)>,
    right: Vec<(i64, Vec<Value>)>,
}

/// Decodes the whole of `body` as bincode.
fn decode_all<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    let (g, used): (T, usize) =
        bincode::serde::decode_from_slice(body, bincode::config::standard()).map_err(|e| format!("is corrupt: {e}"))?;
    if used != body.len() {
        return Err("has trailing bytes".to_string());
    }
    Ok(g)
}

/// The matched pairs of a batch, gathered column by column; on a
/// changelog output (a regular left join's), each row's kind too.
struct Emitter {
    left: Vec<Column>,
    right: Vec<Column>,
    timestamps: Vec<i64>,
    /// `Some` on a changelog output: the kind of each row pushed (`+I`
    /// unless [`Emitter::retract_unmatched`] pushed it).
    kinds: Option<Vec<RowKind>>,
}

impl Emitter {
    fn new(left: &[DataType], right: &[DataType]) -> Emitter {
        Emitter {
            left: left.iter().map(|t| Column::empty(*t, 0)).collect(),
            right: right.iter().map(|t| Column::empty(*t, 0)).collect(),
            timestamps: Vec::new(),
            kinds: None,
        }
    }

    /// An emitter whose batches carry row kinds, all `+I` but the
    /// retractions: the output of a regular left join.
    fn changelog(left: &[DataType], right: &[DataType]) -> Emitter {
        Emitter { kinds: Some(Vec::new()), ..Emitter::new(left, right) }
    }

    /// The kind of the row just pushed.
    fn kind(&mut self, kind: RowKind) {
        if let Some(k) = &mut self.kinds {
            k.push(kind);
        }
    }

    fn push(&mut self, l: &Batch, lr: usize, r: &Batch, rr: usize, ts: i64) {
        let (lo, ro) = ([lr as u32], [rr as u32]);
        for (d, s) in self.left.iter_mut().zip(&l.columns) {
            d.extend_rows(s, &lo);
        }
        for (d, s) in self.right.iter_mut().zip(&r.columns) {
            d.extend_rows(s, &ro);
        }
        self.timestamps.push(ts);
        self.kind(RowKind::Insert);
    }

    /// A left row with a right row of owned values (a temporal join's
    /// version).
    fn push_values(&mut self, l: &Batch, lr: usize, right: &[Value], ts: i64) {
        let lo = [lr as u32];
        for (d, s) in self.left.iter_mut().zip(&l.columns) {
            d.extend_rows(s, &lo);
        }
        for (d, v) in self.right.iter_mut().zip(right) {
            if !d.push_value(v.into()) {
                d.push_null();
            }
        }
        self.timestamps.push(ts);
        self.kind(RowKind::Insert);
    }

    /// A left row without a match: the right's fields null.
    fn push_unmatched(&mut self, l: &Batch, lr: usize, ts: i64) {
        self.unmatched(l, lr, ts);
        self.kind(RowKind::Insert);
    }

    /// `-D` of a left row emitted without a match before (a regular left
    /// join's, now that its first match has come).
    fn retract_unmatched(&mut self, l: &Batch, lr: usize, ts: i64) {
        self.unmatched(l, lr, ts);
        self.kind(RowKind::Delete);
    }

    fn unmatched(&mut self, l: &Batch, lr: usize, ts: i64) {
        let lo = [lr as u32];
        for (d, s) in self.left.iter_mut().zip(&l.columns) {
            d.extend_rows(s, &lo);
        }
        for d in &mut self.right {
            d.push_null();
        }
        self.timestamps.push(ts);
    }

    fn finish(self, out: &mut Vec<Batch>) {
        if self.timestamps.is_empty() {
            return;
        }
        let mut columns = self.left;
        columns.extend(self.right);
        let mut batch = Batch::new(self.timestamps, columns);
        batch.kinds = self.kinds;
        out.push(batch);
    }
}

/// The late rows `rows` of `batch`: to `to` (the late output) when
/// `side_output`, counted in `numLateRecordsSideOutput`; else dropped and
/// counted in `numLateRecordsDropped`.
/// Sends the late `rows` of `batch` to the late output or counts them as
/// dropped, and notes the last one against `watermark` (the watermark
/// they met) for the watermark-lineage view.
fn late_rows(
    batch: &Batch,
    rows: &[u32],
    side_output: bool,
    watermark: i64,
    to: &mut Vec<Batch>,
    counters: &TaskCounters,
) {
    if rows.is_empty() {
        return;
    }
    if let Some(&ts) = rows.iter().rev().map(|&r| &batch.timestamps[r as usize]).find(|&&t| t != NO_TIMESTAMP) {
        counters.note_late(ts, watermark);
    }
    if side_output {
        TaskCounters::add(&counters.late_side_output, rows.len() as u64);
        let mut late = batch.gather(rows);
        late.hashes = None;
        to.push(late);
    } else {
        TaskCounters::add(&counters.late_records, rows.len() as u64);
    }
}

/// The operator of a join: [`JoinOperator`] for interval and window
/// joins, [`temporal::TemporalJoin`] for `as of`, [`regular::RegularJoin`]
/// for a join bound by `ttl` only.
pub fn build(
    name: String,
    spec: Join,
    left: &Schema,
    max_parallelism: u32,
    counters: Arc<TaskCounters>,
) -> Result<Box<dyn Operator>, OperatorError> {
    if let JoinBound::Temporal { deleted } = spec.bound {
        let t = temporal::TemporalSpec {
            join_type: spec.join_type,
            left_key: spec.left_key,
            right_key: spec.right_key,
            deleted,
        };
        let left_types = left.fields.iter().map(|f| f.ty).collect();
        let right_types = spec.right.fields.iter().map(|f| f.ty).collect();
        let join = temporal::TemporalJoin::new(name, t, left_types, right_types, max_parallelism, counters)?;
        return Ok(Box::new(join.with_late_output(spec.late_output)));
    }
    if let JoinBound::Regular { ttl_ms } = spec.bound {
        let r = regular::RegularSpec {
            left_key: spec.left_key,
            right_key: spec.right_key,
            ttl_ms,
            left_outer: spec.join_type == JoinType::LeftOuter,
        };
        let left_types = left.fields.iter().map(|f| f.ty).collect();
        let right_types = spec.right.fields.iter().map(|f| f.ty).collect();
        return Ok(Box::new(regular::RegularJoin::new(name, r, left_types, right_types, max_parallelism)?));
    }
    Ok(Box::new(JoinOperator::new(name, spec, left, max_parallelism, counters)?))
}

pub struct JoinOperator {
    name: String,
    spec: Join,
    left: SideBuffer,
    right: SideBuffer,
    left_types: Vec<DataType>,
    right_types: Vec<DataType>,
    watermark: i64,
    max_parallelism: u32,
    counters: Arc<TaskCounters>,
    /// Window joins: the end of the last window fired.
    fired_upto: i64,
    /// Window joins after a restore: per key group, the end of the last
    /// window its former subtask fired (those must not fire again).
    restored_fired: HashMap<u32, i64>,
    /// Reused per batch.
    hashes: Vec<u64>,
    /// Late left rows for the late output, until taken.
    late: Vec<Batch>,
}

impl JoinOperator {
    pub fn new(
        name: String,
        spec: Join,
        left: &Schema,
        max_parallelism: u32,
        counters: Arc<TaskCounters>,
    ) -> Result<JoinOperator, OperatorError> {
        let setup = |m: &str| OperatorError::Setup { operator: name.clone(), message: m.to_string() };
        let left_types: Vec<DataType> = left.fields.iter().map(|f| f.ty).collect();
        let right_types: Vec<DataType> = spec.right.fields.iter().map(|f| f.ty).collect();
        if spec.left_key.is_empty()
            || spec.left_key.len() != spec.right_key.len()
            || spec.left_key.iter().any(|k| *k >= left_types.len())
            || spec.right_key.iter().any(|k| *k >= right_types.len())
        {
            return Err(setup("the join keys do not fit its inputs (this is a bug in flowc)"));
        }
        let bucket_ms = match spec.bound {
            JoinBound::Interval { lower_ms, upper_ms } => (upper_ms.saturating_sub(lower_ms) / 4).clamp(100, 3_600_000),
            JoinBound::Window(WindowKind::Tumbling { size_ms }) => size_ms as i64,
            JoinBound::Window(WindowKind::Sliding { slide_ms, .. }) => slide_ms as i64,
            JoinBound::Window(WindowKind::Session { .. }) => {
                return Err(setup("a window join takes a tumbling or sliding window (this is a bug in flowc)"))
            }
            JoinBound::Temporal { .. } | JoinBound::Regular { .. } => {
                return Err(setup("a temporal or regular join is another operator (this is a bug in flowc)"))
            }
        };
        Ok(JoinOperator {
            left: SideBuffer::new(left_types.clone(), spec.left_key.clone(), bucket_ms),
            right: SideBuffer::new(right_types.clone(), spec.right_key.clone(), bucket_ms),
            name,
            spec,
            left_types,
            right_types,
            watermark: i64::MIN,
            max_parallelism,
            counters,
            fired_upto: i64::MIN,
            restored_fired: HashMap::new(),
            hashes: Vec::new(),
            late: Vec::new(),
        })
    }

    /// Rows buffered on each side (tests, metrics).
    pub fn buffered(&self) -> (usize, usize) {
        (self.left.len(), self.right.len())
    }

    fn outer(&self) -> bool {
        self.spec.join_type == JoinType::LeftOuter
    }

    /// (size, slide) of a window join.
    fn window(&self) -> Option<(i64, i64)> {
        match self.spec.bound {
            JoinBound::Window(WindowKind::Tumbling { size_ms }) => Some((size_ms as i64, size_ms as i64)),
            JoinBound::Window(WindowKind::Sliding { size_ms, slide_ms }) => Some((size_ms as i64, slide_ms as i64)),
            JoinBound::Interval { .. }
            | JoinBound::Window(WindowKind::Session { .. })
            | JoinBound::Temporal { .. }
            | JoinBound::Regular { .. } => None,
        }
    }

    fn side(&mut self, side: u32, batch: Batch, out: &mut Vec<Batch>) -> Result<(), OperatorError> {
        let n = batch.len();
        if n == 0 {
            return Ok(());
        }
        let is_left = side == 0;
        let key = if is_left { &self.spec.left_key } else { &self.spec.right_key };
        let mut own = std::mem::take(&mut self.hashes);
        let hashes = match batch.hashes_of(key) {
            Some(h) => h,
            None => {
                key_hashes(&batch.columns, key, n, &mut own);
                &own
            }
        };
        let mut late: Vec<u32> = Vec::new();
        let wm = self.watermark;
        let outer = self.outer();
        match self.spec.bound {
            JoinBound::Interval { lower_ms, upper_ms } => {
                let mut emit = Emitter::new(&self.left_types, &self.right_types);
                for (r, (&ts, &h)) in batch.timestamps.iter().zip(hashes).enumerate() {
                    if ts == NO_TIMESTAMP || (wm != i64::MIN && ts < wm) {
                        late.push(r as u32);
                        continue;
                    }
                    if is_left {
                        let (from, to) = (ts.saturating_add(lower_ms), ts.saturating_add(upper_ms));
                        let mut met = false;
                        self.right.probe(h, from, to, &batch, &self.spec.left_key, r, |rows, j| {
                            met = true;
                            emit.push(&batch, r, rows, j, ts.max(rows.timestamps[j]))
                        });
                        if outer && to < wm {
                            // No right row to come can reach it: done now.
                            if !met {
                                emit.push_unmatched(&batch, r, ts);
                            }
                        } else {
                            self.left.insert(&batch, r, h, met);
                        }
                    } else {
                        let (from, to) = (ts.saturating_sub(upper_ms), ts.saturating_sub(lower_ms));
                        self.left.probe_marking(h, from, to, &batch, &self.spec.right_key, r, |rows, j| {
                            emit.push(rows, j, &batch, r, ts.max(rows.timestamps[j]))
                        });
                        self.right.insert(&batch, r, h, false);
                    }
                }
                emit.finish(out);
            }
            JoinBound::Window(_) | JoinBound::Temporal { .. } | JoinBound::Regular { .. } => {
                let (size, slide) = self.window().unwrap_or((1, 1));
                for (r, (&ts, &h)) in batch.timestamps.iter().zip(hashes).enumerate() {
                    let last_end = ts.saturating_sub(ts.rem_euclid(slide)).saturating_add(size);
                    if ts == NO_TIMESTAMP || last_end.saturating_sub(1) <= wm || last_end <= self.fired_upto {
                        late.push(r as u32);
                        continue;
                    }
                    let buf = if is_left { &mut self.left } else { &mut self.right };
                    buf.insert(&batch, r, h, false);
                }
            }
        }
        self.hashes = own;
        late_rows(&batch, &late, is_left && self.spec.late_output, wm, &mut self.late, &self.counters);
        Ok(())
    }

    /// Window joins: the windows still to fire that hold a buffered row
    /// (of either side), and the earliest one's end. A row at `t` is in the
    /// windows ending at the multiples of the slide in `(t, t + size]`; a
    /// bucket `[b, b + slide)` of rows thus in those ending from `b + slide`
    /// to `b + slide - 1 + size`, and none at or before `fired_upto`.
    fn pending(&self) -> Option<crate::metrics::PendingWindows> {
        let (size, slide) = self.window()?;
        let mut starts: Vec<i64> = self.left.bucket_starts().chain(self.right.bucket_starts()).collect();
        starts.sort_unstable();
        starts.dedup();
        let (mut count, mut earliest_end, mut counted_to) = (0u64, None, self.fired_upto);
        for b in starts {
            let first = b.saturating_add(slide).max(counted_to.saturating_add(slide));
            let reach = b.saturating_add(slide - 1).saturating_add(size);
            let last = reach - reach.rem_euclid(slide);
            if first <= last {
                count += ((last - first) / slide + 1) as u64;
                earliest_end.get_or_insert(first);
                counted_to = last;
            }
        }
        Some(crate::metrics::PendingWindows { count, earliest_end })
    }

    /// Window joins: fires every window whose last millisecond is at or
    /// before the watermark, oldest first, and forgets the rows of no
    /// window left to fire.
    fn fire_windows(&mut self, out: &mut Vec<Batch>) {
        let Some((size, slide)) = self.window() else { return };
        loop {
            let first = match (self.left.first_bucket(), self.right.first_bucket()) {
                (Some(a), Some(b)) => a.min(b),
                (Some(a), None) | (None, Some(a)) => a,
                (None, None) => return,
            };
            // The first window holding `first` ends at its slide's end.
            let earliest = first.saturating_sub(first.rem_euclid(slide)).saturating_add(slide);
            let end = earliest.max(self.fired_upto.saturating_add(slide));
            if end.saturating_sub(1) > self.watermark {
                return;
            }
            let (start, last) = (end.saturating_sub(size), end - 1);
            let mut emit = Emitter::new(&self.left_types, &self.right_types);
            let outer = self.outer();
            let (left, right, restored, maxp) = (&self.left, &self.right, &self.restored_fired, self.max_parallelism);
            left.scan(start, last, |rows, l, h| {
                if restored.get(&key_group(h, maxp)).is_some_and(|f| end <= *f) {
                    return;
                }
                let mut met = false;
                right.probe(h, start, last, rows, &left.key, l, |rrows, j| {
                    met = true;
                    emit.push(rows, l, rrows, j, last)
                });
                if outer && !met {
                    emit.push_unmatched(rows, l, last);
                }
            });
            emit.finish(out);
            self.fired_upto = end;
            // A row before the next window's start is in no window left.
            let next_start = start.saturating_add(slide);
            self.left.expire(next_start);
            self.right.expire(next_start);
            if self.left.is_empty() && self.right.is_empty() {
                return;
            }
        }
    }

    fn restore_error(&self, m: String) -> OperatorError {
        OperatorError::Restore { operator: self.name.clone(), message: m }
    }
}

impl Operator for JoinOperator {
    fn process(&mut self, input: Batch, out: &mut Vec<Batch>) -> Result<(), OperatorError> {
        self.side(0, input, out)
    }

    fn process_input(&mut self, input: u32, batch: Batch, out: &mut Vec<Batch>) -> Result<(), OperatorError> {
        match input {
            0 | 1 => self.side(input, batch, out),
            other => Err(OperatorError::Setup {
                operator: self.name.clone(),
                message: format!("a join has two inputs, not input {other} (this is a bug in flowc)"),
            }),
        }
    }

    fn take_late(&mut self) -> Vec<Batch> {
        std::mem::take(&mut self.late)
    }

    fn pending_windows(&self) -> Option<crate::metrics::PendingWindows> {
        self.pending()
    }

    fn on_signal(&mut self, signal: Signal, out: &mut Vec<Batch>) -> Result<Option<Signal>, OperatorError> {
        if let Signal::Watermark(w) = signal {
            if w > self.watermark {
                self.watermark = w;
                match self.spec.bound {
                    JoinBound::Interval { lower_ms, upper_ms } => {
                        // No right row to come (at or after w) can reach a left row before w - upper.
                        if self.outer() {
                            let mut emit = Emitter::new(&self.left_types, &self.right_types);
                            let to = w.saturating_sub(upper_ms).saturating_sub(1);
                            self.left.take_undone(to, |rows, l, _| emit.push_unmatched(rows, l, rows.timestamps[l]));
                            emit.finish(out);
                        }
                        self.left.expire(w.saturating_sub(upper_ms));
                        self.right.expire(w.saturating_add(lower_ms));
                    }
                    JoinBound::Window(_) | JoinBound::Temporal { .. } | JoinBound::Regular { .. } => {
                        self.fire_windows(out)
                    }
                }
            }
            // A left outer interval join emits a row at `t` up to `upper`
            // after the watermark has passed `t`: hold the watermark back.
            if let (JoinType::LeftOuter, JoinBound::Interval { upper_ms, .. }) = (self.spec.join_type, self.spec.bound)
            {
                if w != i64::MAX {
                    return Ok(Some(Signal::Watermark(w.saturating_sub(upper_ms.max(0)))));
                }
            }
        }
        Ok(Some(signal))
    }

    fn snapshot(&self) -> KeyedSnapshot {
        KeyedSnapshot::collect(|out| self.snapshot_into(out))
    }

    fn snapshot_into(&self, out: &mut dyn KeyGroupWriter) -> std::io::Result<()> {
        // One key group's rows become values at a time (see
        // `rows_by_key_group`).
        let left = self.left.rows_by_key_group(self.max_parallelism);
        let right = self.right.rows_by_key_group(self.max_parallelism);
        let groups: BTreeSet<u32> = left.keys().chain(right.keys()).copied().collect();
        for kg in groups {
            let (l, r) = (left.get(&kg).map_or(&[][..], Vec::as_slice), right.get(&kg).map_or(&[][..], Vec::as_slice));
            let g = SavedGroup {
                // A restored key group keeps what its former subtask fired.
                fired_upto: self.restored_fired.get(&kg).map_or(self.fired_upto, |f| self.fired_upto.max(*f)),
                left: l.iter().map(|k| k.saved()).collect(),
                right: r.iter().map(|k| k.saved()).collect(),
                left_done: l.iter().map(|k| k.done()).collect(),
            };
            let mut bytes = vec![SNAPSHOT_VERSION];
            bytes.extend(bincode::serde::encode_to_vec(&g, bincode::config::standard()).unwrap_or_default());
            out.key_group(kg, &bytes)?;
        }
        Ok(())
    }

    fn restore(&mut self, state: KeyedSnapshot) -> Result<(), OperatorError> {
        let mut hashes = Vec::new();
        for (kg, bytes) in &state.key_groups {
            let decoded = match bytes.split_first() {
                Some((&SNAPSHOT_VERSION, body)) => decode_all::<SavedGroup>(body),
                Some((1, body)) => decode_all::<SavedGroupV1>(body).map(|g| SavedGroup {
                    fired_upto: g.fired_upto,
                    left: g.left,
                    right: g.right,
                    left_done: Vec::new(),
                }),
                Some((v, _)) => {
                    return Err(self.restore_error(format!(
                        "key group {kg} is in state format {v}, which this flowc does not read (it reads 1 to {SNAPSHOT_VERSION})"
                    )))
                }
                None => return Err(self.restore_error(format!("key group {kg} is empty"))),
            };
            let g = decoded.map_err(|e| self.restore_error(format!("key group {kg} {e}")))?;
            if g.fired_upto != i64::MIN {
                self.restored_fired.insert(*kg, g.fired_upto);
            }
            if !self.left.insert_saved(&g.left, &g.left_done, &mut hashes)
                || !self.right.insert_saved(&g.right, &[], &mut hashes)
            {
                return Err(self
                    .restore_error(format!("key group {kg} has rows of another layout than the job's{LAYOUT_HINT}")));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
