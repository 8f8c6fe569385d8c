//! `key_by | window | aggregate`: keyed tumbling, sliding and session
//! windows in event or processing time, with incremental aggregates, and
//! `window | aggregate` without a key (Flink's `windowAll`, one key, run at
//! parallelism 1).
//!
//! State is kept per key and window as one typed accumulator per aggregate
//! (`window_state`), and snapshotted per key group, so that a restore at
//! another parallelism takes exactly the key groups the new subtask owns.
//! A window fires once the watermark (event time) or the clock (processing
//! time) passes its last millisecond, `end - 1`, as Flink's
//! `EventTimeTrigger` does; its output records carry that time. Windows
//! with the same end fire in the order of their keys' encoding, as they
//! always have. Session windows merge per key (`session`).
//!
//! With allowed lateness (`lateness`), a fired window's state is kept
//! until the watermark passes `end - 1 + lateness`; a record for it in
//! that time updates it and fires it again at once (Flink's
//! `EventTimeTrigger.onElement`). A record none of whose windows is still
//! kept is late: dropped and counted in `numLateRecordsDropped`, or, with
//! a late output (`late: name`), passed on to it
//! ([`Operator::take_late`]) and counted in `numLateRecordsSideOutput`.
//!
//! A batch is processed in one pass: the key hashes of all its records are
//! computed from the columns, the aggregates' arguments evaluated over the
//! whole batch, then each record finds its key (allocating only for a new
//! one) and adds to its windows.
//!
//! A record an argument fails on (`sum(100 / n)` with `n = 0`) follows the
//! aggregate's `on_error` ([`AggregateErrors`]) before anything touches
//! the state; so does a fired window whose output fails (`sum(a) /
//! sum(b)` with a zero sum), its row being the key, the aggregates and the
//! window's bounds.

use super::calc::Projection;
use super::session;
use super::window_state::{
    add_row, restore_windows_v2, v1_windows, Acc, ArgReader, KeyColumn, KeyTable, SnapshotEntry, SnapshotEntryV2,
};
use super::{KeyGroupWriter, KeyedSnapshot, Operator, OperatorError};
use crate::data::Batch;
use crate::expr::{CompiledExpr, EvalError, Sel, SourceMap, Vals};
use crate::keygroup::{key_group, key_hash, key_hashes};
use crate::metrics::TaskCounters;
use crate::operators::aggregate_plan::{eval_args, AggregateErrors, AggregatePlan, AggregateSpec};
use crate::record::{Signal, NO_TIMESTAMP};
use flowc_compiler::ir::{DataType, ErrorPolicy, Field, Schema, TimeDomain, WindowAggregate, WindowKind};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Format of a key group's bytes in a snapshot; bump on change. Version 1
/// is bincode of `Vec<SnapshotEntry>` (keys as `Key(Vec<Value>)`,
/// accumulators as `SavedAcc`), written the same today as before state was
/// typed, for tumbling and sliding windows without lateness.
const SNAPSHOT_VERSION: u8 = 1;
/// Version 2, for session windows and windows with allowed lateness:
/// bincode of `Vec<SnapshotEntryV2>` (each window with its end and whether
/// it has fired).
const SNAPSHOT_VERSION_2: u8 = 2;

/// Fired windows per output batch.
const OUTPUT_BATCH: usize = 1024;

pub struct WindowOperator {
    name: String,
    spec: WindowAggregate,
    size: i64,
    slide: i64,
    /// The gap of session windows; `None` for windows of a fixed size.
    gap: Option<i64>,
    lateness: i64,
    max_parallelism: u32,
    keys: KeyTable,
    /// Window end → the keys with a window ending there (a slot may be
    /// there twice, or for a window that merged away: firing checks).
    timers: BTreeMap<i64, Vec<u32>>,
    /// Cleanup time (`end - 1 + lateness`) → the fired windows, as (key,
    /// end), whose state goes then.
    cleanup: BTreeMap<i64, Vec<(u32, i64)>>,
    watermark: i64,
    counters: Arc<TaskCounters>,
    /// The aggregates' arguments, over the input records.
    args: Vec<Option<CompiledExpr>>,
    /// The output over `[keys…, aggregates…, window start, window end]`.
    output: Projection,
    /// The types of that scope record, and its schema for messages.
    scope_types: Vec<DataType>,
    scope_schema: Schema,
    input: Schema,
    /// Reused per batch.
    hashes: Vec<u64>,
    /// Late records for the late output, until the task takes them.
    late: Vec<Batch>,
    /// What a record an argument fails on (or a window whose output
    /// fails) does: `on_error`.
    errors: AggregateErrors,
}

impl WindowOperator {
    /// The operator for `spec` over records of `input`; fails on a spec
    /// the checker would refuse (a bug).
    pub fn new(
        name: String,
        spec: WindowAggregate,
        input: &Schema,
        output: &Schema,
        max_parallelism: u32,
        counters: Arc<TaskCounters>,
        sources: &SourceMap,
    ) -> Result<WindowOperator, OperatorError> {
        let (size, slide, gap) = match spec.window.kind {
            WindowKind::Tumbling { size_ms } => (size_ms as i64, size_ms as i64, None),
            WindowKind::Sliding { size_ms, slide_ms } => (size_ms as i64, slide_ms as i64, None),
            WindowKind::Session { gap_ms } => (gap_ms as i64, gap_ms as i64, Some((gap_ms as i64).max(1))),
        };
        let spec_ref = AggregateSpec { key: &spec.key, aggregates: &spec.aggregates, output: &spec.output };
        let bounds = [Field::new("window_start", DataType::Timestamp), Field::new("window_end", DataType::Timestamp)];
        let plan = AggregatePlan::compile(&name, spec_ref, &bounds, input, output, sources, |call| {
            Acc::new(call).is_none().then(|| format!("{}() of {}", call.func.name(), call.arg_type))
        })?;
        // Lateness means nothing in processing time: nothing is late there.
        let lateness = match spec.window.time {
            TimeDomain::EventTime => i64::try_from(spec.lateness_ms).unwrap_or(i64::MAX / 4),
            TimeDomain::ProcessingTime => 0,
        };
        Ok(WindowOperator {
            name,
            size: size.max(1),
            slide: slide.max(1),
            gap,
            lateness,
            max_parallelism,
            keys: KeyTable::default(),
            timers: BTreeMap::new(),
            cleanup: BTreeMap::new(),
            watermark: i64::MIN,
            counters,
            args: plan.args,
            output: plan.output,
            scope_types: plan.scope_types,
            scope_schema: plan.scope_schema,
            input: input.clone(),
            hashes: Vec::new(),
            late: Vec::new(),
            errors: AggregateErrors::fail(),
            spec,
        })
    }

    /// The operator with the `on_error` policy `policy` for
    /// records its arguments fail on and windows whose output fails.
    pub fn with_on_error(mut self, policy: ErrorPolicy) -> Result<WindowOperator, OperatorError> {
        let fallible = AggregateErrors::fallible(self.args.iter().flatten()) || self.output.fallible();
        self.errors = AggregateErrors::new(policy, fallible, &self.name, self.counters.clone())?;
        Ok(self)
    }

    fn eval_error(&self, e: EvalError, batch: &Batch, schema: &Schema) -> OperatorError {
        OperatorError::Eval { operator: self.name.clone(), message: e.describe(batch, schema) }
    }

    /// Snapshots in state format 2: session windows, or windows kept for
    /// their lateness, which format 1 cannot tell.
    fn needs_v2(&self) -> bool {
        self.gap.is_some() || self.lateness > 0
    }

    /// Appends the result of window `end` of key `slot` to `scope`; marks
    /// it fired and schedules its cleanup, or removes it when it has no
    /// lateness. `false` if there is no such window left to fire.
    fn fire_window(&mut self, slot: u32, end: i64, refire: bool, scope: &mut Batch) -> bool {
        let keep = self.lateness > 0 && end.saturating_sub(1).saturating_add(self.lateness) > self.watermark;
        let Some(entry) = self.keys.get_mut(slot) else { return false };
        let Some(window) = entry.window_ending(end) else { return false };
        if window.fired && !refire {
            return false;
        }
        let mut c = 0;
        for v in &entry.key {
            scope.columns[c].push_value(v.into());
            c += 1;
        }
        let Some(window) = entry.window_ending(end) else { return false };
        for acc in &window.accs {
            acc.push_result(&mut scope.columns[c]);
            c += 1;
        }
        scope.columns[c].push_value(crate::data::ValueRef::Timestamp(window.start));
        scope.columns[c + 1].push_value(crate::data::ValueRef::Timestamp(end));
        scope.timestamps.push(end - 1);
        if keep {
            let first = !window.fired;
            window.fired = true;
            if first || refire {
                self.cleanup.entry(end - 1 + self.lateness).or_default().push((slot, end));
            }
        } else {
            entry.take_window(end);
            if entry.windows.is_empty() {
                self.keys.remove(slot);
            }
        }
        true
    }

    /// Fires every window whose last millisecond is at or before `time`,
    /// then drops the state of fired windows whose lateness has passed.
    fn fire_until(&mut self, time: i64, out: &mut Vec<Batch>) -> Result<(), OperatorError> {
        let mut scope = Batch::empty(&self.scope_types, 0);
        while let Some((&end, _)) = self.timers.first_key_value() {
            if end - 1 > time {
                break;
            }
            let Some((end, mut slots)) = self.timers.pop_first() else { break };
            self.sort_by_key(&mut slots);
            for slot in slots {
                self.fire_window(slot, end, false, &mut scope);
                if scope.len() >= OUTPUT_BATCH {
                    let full = std::mem::replace(&mut scope, Batch::empty(&self.scope_types, 0));
                    self.emit(full, out)?;
                }
            }
        }
        while let Some((&at, _)) = self.cleanup.first_key_value() {
            if at > time {
                break;
            }
            let Some((_, windows)) = self.cleanup.pop_first() else { break };
            for (slot, end) in windows {
                let Some(entry) = self.keys.get_mut(slot) else { continue };
                if entry.window_ending(end).is_some_and(|w| w.fired) {
                    entry.take_window(end);
                }
                if entry.windows.is_empty() {
                    self.keys.remove(slot);
                }
            }
        }
        if !scope.is_empty() {
            self.emit(scope, out)?;
        }
        Ok(())
    }

    /// Orders slots by their keys' encoding (the order windows of one end
    /// fire in) and drops repeats.
    fn sort_by_key(&self, slots: &mut Vec<u32>) {
        let keys = &self.keys;
        slots.sort_by(|a, b| {
            let order = |s: &u32| keys.get(*s).map(|e| e.order.as_slice());
            order(a).cmp(&order(b)).then(a.cmp(b))
        });
        slots.dedup();
    }

    /// Fires again, at once, the windows that late records updated.
    fn refire(&mut self, mut windows: Vec<(i64, u32)>, out: &mut Vec<Batch>) -> Result<(), OperatorError> {
        if windows.is_empty() {
            return Ok(());
        }
        windows.sort_by(|a, b| {
            let keys = &self.keys;
            let order = |s: u32| keys.get(s).map(|e| e.order.as_slice());
            a.0.cmp(&b.0).then(order(a.1).cmp(&order(b.1))).then(a.1.cmp(&b.1))
        });
        windows.dedup();
        let mut scope = Batch::empty(&self.scope_types, 0);
        for (end, slot) in windows {
            self.fire_window(slot, end, true, &mut scope);
        }
        if !scope.is_empty() {
            self.emit(scope, out)?;
        }
        Ok(())
    }

    /// Computes the output records of fired windows; those whose output
    /// fails follow the policy.
    fn emit(&mut self, scope: Batch, out: &mut Vec<Batch>) -> Result<(), OperatorError> {
        let (e, scope) = match self.output.run(scope, None) {
            Ok(b) => {
                out.push(b);
                return Ok(());
            }
            Err(failed) => *failed,
        };
        let good = self.errors.good_output_rows(&self.name, &scope, &self.scope_schema, &self.output, e)?;
        if good.is_empty() {
            return Ok(());
        }
        match self.output.run(scope, Some(&good)) {
            Ok(b) => {
                out.push(b);
                Ok(())
            }
            Err(e) => Err(self.eval_error(e.0, &e.1, &self.scope_schema)),
        }
    }
}

/// The slot of row `r`'s key, added if new; a key of one dictionary
/// column is looked up once per distinct string of the batch.
#[inline]
fn find_slot(
    keys: &mut KeyTable,
    slot_of_id: &mut [u32],
    dictionary: Option<(&Arc<crate::data::StrColumn>, &[u32])>,
    hash: u64,
    key_columns: &[KeyColumn<'_>],
    r: usize,
) -> u32 {
    match dictionary {
        Some((_, ids)) => {
            let id = ids.get(r).map_or(0, |id| *id as usize);
            match slot_of_id.get(id) {
                Some(&known) if known != u32::MAX => known,
                _ => {
                    let found = keys.find_or_insert(hash, key_columns, r);
                    if let Some(cached) = slot_of_id.get_mut(id) {
                        *cached = found;
                    }
                    found
                }
            }
        }
        None => keys.find_or_insert(hash, key_columns, r),
    }
}

impl WindowOperator {
    /// Adds the records of `input` to their windows. A record an argument
    /// fails on follows the policy first; `screened`: those are gone.
    fn add_batch(&mut self, input: Batch, out: &mut Vec<Batch>, screened: bool) -> Result<(), OperatorError> {
        let n = input.len();
        if n == 0 {
            return Ok(());
        }
        let vals: Vec<Option<Vals<'_>>> = match eval_args(&self.args, &input) {
            Ok(v) => v,
            Err(e) => {
                return match self.errors.screen(&self.name, &input, &self.input, &self.args, e, screened)? {
                    Some(good) => self.add_batch(good, out, true),
                    None => Ok(()),
                }
            }
        };
        let proc_now = (self.spec.window.time == TimeDomain::ProcessingTime).then(crate::clock::now_ms);
        let event_time = self.spec.window.time == TimeDomain::EventTime;
        // The hashes of the HASH edge that brought the records, else our own.
        let mut own = std::mem::take(&mut self.hashes);
        let hashes = match input.hashes_of(&self.spec.key) {
            Some(h) => h,
            None => {
                key_hashes(&input.columns, &self.spec.key, n, &mut own);
                &own
            }
        };
        let sel = Sel::All(n);
        // Aggregates skip the rows where their argument is null, as SQL's do.
        let present: Vec<Option<crate::data::Validity>> =
            vals.iter().map(|v| v.as_ref().and_then(|v| v.validity(sel))).collect();
        let mut readers = Vec::with_capacity(vals.len());
        for (v, call) in vals.iter().zip(&self.spec.aggregates) {
            let r = match v {
                None => Ok(ArgReader::None),
                Some(v) => match call.arg_type {
                    DataType::Int | DataType::Long | DataType::Timestamp => v.i64s(sel).map(ArgReader::I64),
                    DataType::Double => v.f64s(sel).map(ArgReader::F64),
                    DataType::String => v.strs(sel).map(ArgReader::Str),
                    // `count(x)` of a bool or an array reads only its nulls.
                    DataType::Bool | DataType::Array(_) => Ok(ArgReader::None),
                },
            };
            readers.push(r.map_err(|e| self.eval_error(e, &input, &self.input))?);
        }
        let Some(key_columns) = KeyColumn::of(&input.columns, &self.spec.key) else {
            return Err(self.eval_error(EvalError::internal("a key column is missing"), &input, &self.input));
        };
        // A key of one dictionary column: each distinct string is looked up
        // once per batch, then found by its id.
        let dictionary = match key_columns.as_slice() {
            [KeyColumn::Str(c)] => c.dictionary().filter(|(strings, _)| strings.len() <= n),
            _ => None,
        };
        let mut slot_of_id: Vec<u32> = vec![u32::MAX; dictionary.map_or(0, |(strings, _)| strings.len())];
        let (size, slide, gap, lateness, watermark) = (self.size, self.slide, self.gap, self.lateness, self.watermark);
        // A window is kept until the watermark passes `end - 1 + lateness`.
        let kept = |end: i64| !event_time || end.saturating_sub(1).saturating_add(lateness) > watermark;
        let passed = |end: i64| event_time && end - 1 <= watermark;
        let aggregates = &self.spec.aggregates;
        let fresh = || aggregates.iter().filter_map(Acc::new).collect::<Vec<_>>();
        let mut late_rows: Vec<u32> = Vec::new();
        let mut refire: Vec<(i64, u32)> = Vec::new();
        for (r, (&ts, &hash)) in input.timestamps.iter().zip(hashes).enumerate() {
            let t = proc_now.unwrap_or(ts);
            if t == NO_TIMESTAMP {
                late_rows.push(r as u32);
                continue;
            }
            if let Some(gap) = gap {
                let (start, end) = (t, t.saturating_add(gap));
                let s = find_slot(&mut self.keys, &mut slot_of_id, dictionary, hash, &key_columns, r);
                let Some(entry) = self.keys.get_mut(s) else { continue };
                // Late only if it is late itself and merges with no window
                // still kept (as Flink drops a merged window that is late).
                if !kept(end) && !session::intersects_any(&entry.windows, start, end) {
                    if entry.windows.is_empty() {
                        self.keys.remove(s);
                        slot_of_id.iter_mut().filter(|x| **x == s).for_each(|x| *x = u32::MAX);
                    }
                    late_rows.push(r as u32);
                    continue;
                }
                let placed = session::place(&mut entry.windows, start, end, fresh);
                let window = &mut entry.windows[placed.at];
                for (acc, reader) in window.accs.iter_mut().zip(&readers) {
                    acc.add(reader, r);
                }
                let end = window.end;
                if passed(end) {
                    refire.push((end, s));
                } else if placed.new_end {
                    self.timers.entry(end).or_default().push(s);
                }
                continue;
            }
            // The key is found (or added) only for a record with a window that is not late.
            let mut slot = None;
            let last = t - t.rem_euclid(slide);
            let mut start = last;
            let mut taken = false;
            while start > t - size {
                let end = start + size;
                if !kept(end) {
                    start -= slide;
                    continue;
                }
                taken = true;
                let s = *slot.get_or_insert_with(|| {
                    find_slot(&mut self.keys, &mut slot_of_id, dictionary, hash, &key_columns, r)
                });
                if let Some(entry) = self.keys.get_mut(s) {
                    let (window, new) = entry.window(start, end, fresh);
                    add_row(&mut window.accs, &readers, &present, r);
                    if passed(end) {
                        window.fired = false;
                        refire.push((end, s));
                    } else if new {
                        self.timers.entry(end).or_default().push(s);
                    }
                }
                start -= slide;
            }
            if !taken {
                late_rows.push(r as u32);
            }
        }
        drop(readers);
        drop(vals);
        self.hashes = own;
        if let Some(&r) = late_rows.last() {
            // For the watermark-lineage view: the last late record's time
            // and the watermark it met.
            let t = proc_now.unwrap_or(input.timestamps[r as usize]);
            if t != NO_TIMESTAMP {
                self.counters.note_late(t, watermark);
            }
        }
        if !late_rows.is_empty() {
            let late = late_rows.len() as u64;
            if self.spec.late_output {
                TaskCounters::add(&self.counters.late_side_output, late);
                self.late.push(input.gather(&late_rows));
            } else {
                TaskCounters::add(&self.counters.late_records, late);
            }
        }
        self.refire(refire, out)
    }
}

impl Operator for WindowOperator {
    fn process(&mut self, input: Batch, out: &mut Vec<Batch>) -> Result<(), OperatorError> {
        self.add_batch(input, out, false)
    }

    fn flush(&mut self) -> Result<(), OperatorError> {
        self.errors.flush()
    }

    fn take_late(&mut self) -> Vec<Batch> {
        std::mem::take(&mut self.late)
    }

    fn on_signal(&mut self, signal: Signal, out: &mut Vec<Batch>) -> Result<Option<Signal>, OperatorError> {
        if let Signal::Watermark(w) = signal {
            if w > self.watermark {
                self.watermark = w;
                if self.spec.window.time == TimeDomain::EventTime {
                    self.fire_until(w, out)?;
                }
            }
        }
        Ok(Some(signal))
    }

    fn on_timer(&mut self, now_ms: i64, out: &mut Vec<Batch>) -> Result<Option<Signal>, OperatorError> {
        if self.spec.window.time == TimeDomain::ProcessingTime {
            self.fire_until(now_ms, out)?;
        }
        Ok(None)
    }

    fn pending_windows(&self) -> Option<crate::metrics::PendingWindows> {
        if self.gap.is_some() {
            // Session windows: the timers keep the ends of windows that
            // merged away; the keys' unfired windows are the ones waiting.
            let ends = self.keys.entries().flat_map(|e| e.windows.iter().filter(|w| !w.fired).map(|w| w.end));
            let (count, earliest_end) = ends
                .fold((0u64, None), |(n, min): (u64, Option<i64>), end| (n + 1, Some(min.map_or(end, |m| m.min(end)))));
            return Some(crate::metrics::PendingWindows { count, earliest_end });
        }
        Some(crate::metrics::PendingWindows {
            count: self.timers.values().map(|keys| keys.len() as u64).sum(),
            earliest_end: self.timers.keys().next().copied(),
        })
    }

    fn on_end_of_input(&mut self, out: &mut Vec<Batch>) -> Result<(), OperatorError> {
        // Event time fired everything on the final watermark; processing
        // time fires what is left, as a bounded job's last windows.
        self.fire_until(i64::MAX, out)
    }

    fn snapshot(&self) -> KeyedSnapshot {
        KeyedSnapshot::collect(|out| self.snapshot_into(out))
    }

    fn snapshot_into(&self, out: &mut dyn KeyGroupWriter) -> std::io::Result<()> {
        let v2 = self.needs_v2();
        let mut groups: BTreeMap<u32, Vec<(&[u8], &super::window_state::KeyEntry)>> = BTreeMap::new();
        for e in self.keys.entries() {
            let kg = key_group(e.hash, self.max_parallelism);
            groups.entry(kg).or_default().push((&e.order, e));
        }
        let config = bincode::config::standard();
        // One key group's entries are saved and encoded at a time.
        while let Some((kg, mut entries)) = groups.pop_first() {
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let body = if v2 {
                let entries: Vec<SnapshotEntryV2> =
                    entries.into_iter().map(|(_, e)| e.saved_v2(&self.spec.aggregates)).collect();
                let mut bytes = vec![SNAPSHOT_VERSION_2];
                bytes.extend(bincode::serde::encode_to_vec(&entries, config).unwrap_or_default());
                bytes
            } else {
                let entries: Vec<SnapshotEntry> =
                    entries.into_iter().map(|(_, e)| e.saved(&self.spec.aggregates)).collect();
                let mut bytes = vec![SNAPSHOT_VERSION];
                bytes.extend(bincode::serde::encode_to_vec(&entries, config).unwrap_or_default());
                bytes
            };
            out.key_group(kg, &body)?;
        }
        Ok(())
    }

    fn restore(&mut self, state: KeyedSnapshot) -> Result<(), OperatorError> {
        let fail = |m: String| OperatorError::Restore { operator: self.name.clone(), message: m };
        let config = bincode::config::standard();
        let mut restored: Vec<SnapshotEntryV2> = Vec::new();
        for (kg, bytes) in &state.key_groups {
            let corrupt = |e: String| fail(format!("key group {kg} is corrupt: {e}"));
            match bytes.split_first() {
                Some((&SNAPSHOT_VERSION, body)) => {
                    let (entries, used): (Vec<SnapshotEntry>, usize) =
                        bincode::serde::decode_from_slice(body, config).map_err(|e| corrupt(e.to_string()))?;
                    if used != body.len() {
                        return Err(fail(format!("key group {kg} has trailing bytes")));
                    }
                    if self.gap.is_some() {
                        return Err(fail("the state is of fixed-size windows, and the job's are session windows".into()));
                    }
                    for e in entries {
                        restored.push(SnapshotEntryV2 { key: e.key, windows: v1_windows(e.windows, self.size) });
                    }
                }
                Some((&SNAPSHOT_VERSION_2, body)) => {
                    let (entries, used): (Vec<SnapshotEntryV2>, usize) =
                        bincode::serde::decode_from_slice(body, config).map_err(|e| corrupt(e.to_string()))?;
                    if used != body.len() {
                        return Err(fail(format!("key group {kg} has trailing bytes")));
                    }
                    restored.extend(entries);
                }
                Some((v, _)) => {
                    return Err(fail(format!(
                        "key group {kg} is in state format {v}, which this flowc does not read (it reads {SNAPSHOT_VERSION} and {SNAPSHOT_VERSION_2})"
                    )))
                }
                None => return Err(fail(format!("key group {kg} is empty"))),
            }
        }
        for e in restored {
            if e.key.0.len() != self.spec.key.len() {
                return Err(fail("the state has keys of another length than the job's".into()));
            }
            let windows = restore_windows_v2(e.windows, &self.spec.aggregates).ok_or_else(|| {
                fail("the state has other aggregates than the job (a different number or type)".into())
            })?;
            let hash = key_hash(&e.key.0);
            let slot = match self.keys.find_owned(&e.key.0, hash) {
                Some(s) => s,
                None => self.keys.insert(e.key.0, hash),
            };
            let Some(entry) = self.keys.get_mut(slot) else { continue };
            for w in windows {
                let end = w.end;
                if w.fired {
                    self.cleanup.entry(end - 1 + self.lateness).or_default().push((slot, end));
                } else {
                    self.timers.entry(end).or_default().push(slot);
                }
                if self.gap.is_some() {
                    let at = entry.windows.iter().position(|x| x.start > w.start).unwrap_or(entry.windows.len());
                    entry.windows.insert(at, w);
                } else {
                    let accs = w.accs;
                    let fired = w.fired;
                    let (window, _) = entry.window(w.start, end, Vec::new);
                    window.accs = accs;
                    window.fired = fired;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Value;
    use flowc_compiler::ir::{AggCall, AggFunc, Expr, WindowSpec};

    fn schema(fields: &[(&str, DataType)]) -> Schema {
        Schema { name: None, fields: fields.iter().map(|(n, t)| Field::new(*n, *t)).collect() }
    }

    fn count_per_key(kind: WindowKind, time: TimeDomain) -> WindowOperator {
        let spec = WindowAggregate {
            key: vec![1],
            window: WindowSpec { kind, time },
            aggregates: vec![AggCall {
                func: AggFunc::Count,
                arg: None,
                arg_type: DataType::Long,
                result_type: DataType::Long,
            }],
            output: vec![Expr::WindowStart, Expr::Key(0), Expr::Aggregate(0)],
            lateness_ms: 0,
            late_output: false,
        };
        let input = schema(&[("ts", DataType::Timestamp), ("page", DataType::String)]);
        let output = schema(&[("start", DataType::Timestamp), ("page", DataType::String), ("n", DataType::Long)]);
        let counters = Arc::new(TaskCounters::new());
        WindowOperator::new("w".into(), spec, &input, &output, 128, counters, &SourceMap::default()).expect("builds")
    }

    fn recs(events: &[(i64, &str)]) -> Batch {
        let rows: Vec<(i64, Vec<Value>)> =
            events.iter().map(|(t, p)| (*t, vec![Value::Timestamp(*t), Value::Str(p.to_string())])).collect();
        Batch::from_rows(&[DataType::Timestamp, DataType::String], &rows).expect("fits")
    }

    fn rows(out: &[Batch]) -> Vec<(i64, Vec<Value>)> {
        out.iter().flat_map(|b| b.rows()).collect()
    }

    #[test]
    fn tumbling_event_time_counts_and_fires_on_watermark() {
        let mut w = count_per_key(WindowKind::Tumbling { size_ms: 15_000 }, TimeDomain::EventTime);
        let mut out = Vec::new();
        let events: Vec<(i64, &str)> = (0..30).map(|i| (i * 1000, if i % 2 == 0 { "/a" } else { "/b" })).collect();
        w.process(recs(&events), &mut out).unwrap();
        assert!(out.is_empty());
        w.on_signal(Signal::Watermark(14_998), &mut out).unwrap();
        assert!(out.is_empty());
        w.on_signal(Signal::Watermark(14_999), &mut out).unwrap();
        let rows = rows(&out);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].1, vec![Value::Timestamp(0), Value::Str("/a".into()), Value::Int(8)]);
        assert_eq!(rows[1].1, vec![Value::Timestamp(0), Value::Str("/b".into()), Value::Int(7)]);
        assert_eq!(rows[0].0, 14_999);
        // A late record is dropped and counted.
        out.clear();
        w.process(recs(&[(100, "/a")]), &mut out).unwrap();
        assert_eq!(TaskCounters::get(&w.counters.late_records), 1);
    }

    #[test]
    fn with_lateness_a_late_record_fires_its_window_again_until_the_lateness_passes() {
        let mut w = count_per_key(WindowKind::Tumbling { size_ms: 10 }, TimeDomain::EventTime);
        w.spec.lateness_ms = 5;
        w.lateness = 5;
        let mut out = Vec::new();
        w.process(recs(&[(1, "/a"), (2, "/a"), (12, "/a")]), &mut out).unwrap();
        w.on_signal(Signal::Watermark(9), &mut out).unwrap();
        assert_eq!(rows(&out), vec![(9, vec![Value::Timestamp(0), Value::Str("/a".into()), Value::Int(2)])]);
        out.clear();
        // Late for [0, 10), within its lateness: fired again, updated.
        w.process(recs(&[(3, "/a"), (4, "/b")]), &mut out).unwrap();
        assert_eq!(
            rows(&out),
            vec![
                (9, vec![Value::Timestamp(0), Value::Str("/a".into()), Value::Int(3)]),
                (9, vec![Value::Timestamp(0), Value::Str("/b".into()), Value::Int(1)]),
            ]
        );
        assert_eq!(TaskCounters::get(&w.counters.late_records), 0);
        out.clear();
        // A checkpoint keeps the fired windows as fired.
        let mut restored = count_per_key(WindowKind::Tumbling { size_ms: 10 }, TimeDomain::EventTime);
        restored.spec.lateness_ms = 5;
        restored.lateness = 5;
        restored.restore(w.snapshot()).unwrap();
        assert_eq!(restored.snapshot(), w.snapshot());
        for op in [&mut w, &mut restored] {
            let mut out = Vec::new();
            // The watermark passes end - 1 + lateness = 14: the state goes,
            // and nothing fires again; [10, 20) is still open.
            op.on_signal(Signal::Watermark(14), &mut out).unwrap();
            assert!(out.is_empty());
            op.process(recs(&[(5, "/a")]), &mut out).unwrap();
            assert!(out.is_empty());
            assert_eq!(TaskCounters::get(&op.counters.late_records), 1);
            op.on_signal(Signal::Watermark(19), &mut out).unwrap();
            assert_eq!(rows(&out), vec![(19, vec![Value::Timestamp(10), Value::Str("/a".into()), Value::Int(1)])]);
        }
    }

    #[test]
    fn late_records_go_to_the_late_output_once_per_record() {
        let mut w = count_per_key(WindowKind::Sliding { size_ms: 10, slide_ms: 5 }, TimeDomain::EventTime);
        w.spec.late_output = true;
        let mut out = Vec::new();
        w.on_signal(Signal::Watermark(100), &mut out).unwrap();
        w.process(recs(&[(3, "/a"), (200, "/b"), (7, "/c")]), &mut out).unwrap();
        let late: Vec<_> = w.take_late().iter().flat_map(|b| b.rows()).collect();
        assert_eq!(
            late,
            vec![
                (3, vec![Value::Timestamp(3), Value::Str("/a".into())]),
                (7, vec![Value::Timestamp(7), Value::Str("/c".into())]),
            ]
        );
        assert!(w.take_late().is_empty());
        assert_eq!(TaskCounters::get(&w.counters.late_side_output), 2);
        assert_eq!(TaskCounters::get(&w.counters.late_records), 0);
    }

    /// The sessions a batch of output holds: key, start and count, by key.
    fn sessions(out: &[Batch]) -> Vec<(String, i64, i64)> {
        let mut s: Vec<(String, i64, i64)> = rows(out)
            .into_iter()
            .map(|(_, r)| match r.as_slice() {
                [Value::Timestamp(start), Value::Str(k), Value::Int(n)] => (k.clone(), *start, *n),
                other => panic!("not a session row: {other:?}"),
            })
            .collect();
        s.sort();
        s
    }

    #[test]
    fn processing_time_sessions_merge_by_the_clock_and_fire_on_the_timer() {
        // Records are placed at the clock's time, whatever their event time.
        let gap = 300;
        let mut w = count_per_key(WindowKind::Session { gap_ms: gap }, TimeDomain::ProcessingTime);
        let mut out = Vec::new();
        let before = crate::clock::now_ms();
        w.process(recs(&[(0, "/a"), (5_000_000, "/b"), (7, "/a")]), &mut out).unwrap();
        w.on_timer(before, &mut out).unwrap();
        assert!(out.is_empty(), "no session ends before its gap has passed");
        // /a again, more than the gap later: a session of its own.
        std::thread::sleep(std::time::Duration::from_millis(2 * gap));
        let second = crate::clock::now_ms();
        w.process(recs(&[(1, "/a")]), &mut out).unwrap();
        let after = crate::clock::now_ms();
        w.on_timer(second - 1, &mut out).unwrap();
        let first = sessions(&out);
        assert_eq!(first.iter().map(|(k, _, n)| (k.as_str(), *n)).collect::<Vec<_>>(), [("/a", 2), ("/b", 1)]);
        assert!(first.iter().all(|(_, start, _)| (before..second).contains(start)), "{first:?} from the clock");
        out.clear();
        w.on_timer(after + gap as i64, &mut out).unwrap();
        let later = sessions(&out);
        assert_eq!(later.len(), 1, "{later:?}");
        assert_eq!((later[0].0.as_str(), later[0].2), ("/a", 1));
        assert!((second..=after).contains(&later[0].1), "{later:?}");
        assert!(w.pending_windows().is_some_and(|p| p.count == 0));

        // Batches closer than the gap merge into one session, which the
        // end of a bounded input fires.
        let mut w = count_per_key(WindowKind::Session { gap_ms: 60_000 }, TimeDomain::ProcessingTime);
        w.process(recs(&[(0, "/c")]), &mut out).unwrap();
        w.process(recs(&[(0, "/c"), (0, "/d")]), &mut out).unwrap();
        out.clear();
        w.on_timer(crate::clock::now_ms(), &mut out).unwrap();
        assert!(out.is_empty());
        w.on_end_of_input(&mut out).unwrap();
        let merged = sessions(&out);
        assert_eq!(merged.iter().map(|(k, _, n)| (k.as_str(), *n)).collect::<Vec<_>>(), [("/c", 2), ("/d", 1)]);
    }

    #[test]
    fn keys_in_dictionary_form_count_as_plain_ones() {
        let events: Vec<(i64, &str)> =
            (0..3000).map(|i| (i * 13, ["/a", "/b", "/c", "/d"][(i * 7 % 4) as usize])).collect();
        let (mut plain, mut dict) = (
            count_per_key(WindowKind::Sliding { size_ms: 10_000, slide_ms: 5000 }, TimeDomain::EventTime),
            count_per_key(WindowKind::Sliding { size_ms: 10_000, slide_ms: 5000 }, TimeDomain::EventTime),
        );
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for chunk in events.chunks(700) {
            plain.process(recs(chunk), &mut a).unwrap();
            let mut d = recs(chunk);
            crate::expr::tests::dictionary_encode(&mut d);
            dict.process(d, &mut b).unwrap();
        }
        assert_eq!(plain.snapshot(), dict.snapshot());
        plain.on_signal(Signal::Watermark(i64::MAX), &mut a).unwrap();
        dict.on_signal(Signal::Watermark(i64::MAX), &mut b).unwrap();
        assert_eq!(rows(&a), rows(&b));
        assert!(rows(&a).len() > 8);
    }

    #[test]
    fn sliding_windows_overlap() {
        let mut w = count_per_key(WindowKind::Sliding { size_ms: 10, slide_ms: 5 }, TimeDomain::EventTime);
        let mut out = Vec::new();
        w.process(recs(&[(7, "/a")]), &mut out).unwrap();
        w.on_signal(Signal::Watermark(i64::MAX), &mut out).unwrap();
        let starts: Vec<_> = rows(&out).into_iter().map(|r| r.1[0].clone()).collect();
        assert_eq!(starts, vec![Value::Timestamp(0), Value::Timestamp(5)]);
    }

    /// The lineage view's pending session windows are the unfired windows,
    /// not the timers of windows that merged away.
    #[test]
    fn pending_session_windows_are_the_merged_ones() {
        let mut w = count_per_key(WindowKind::Session { gap_ms: 10 }, TimeDomain::EventTime);
        let mut out = Vec::new();
        let pending = |w: &WindowOperator| w.pending_windows().map(|p| (p.count, p.earliest_end));
        // /a: [0, 10) then [5, 15) merge into [0, 15) (its timer at 10 stays); /b: [100, 110).
        w.process(recs(&[(0, "/a"), (100, "/b")]), &mut out).unwrap();
        w.process(recs(&[(5, "/a")]), &mut out).unwrap();
        assert_eq!(pending(&w), Some((2, Some(15))));
        w.on_signal(Signal::Watermark(50), &mut out).unwrap();
        assert_eq!(rows(&out).len(), 1, "the merged window fired");
        assert_eq!(pending(&w), Some((1, Some(110))));
    }

    /// `array_agg`'s values are state per key group: a snapshot split by
    /// key group (a restore at parallelism 2) fires what the whole one
    /// fires, and both are the model's values per key in arrival order.
    #[test]
    fn array_agg_state_restores_split_by_key_group() {
        use flowc_compiler::ir::Elem;
        let spec = WindowAggregate {
            key: vec![1],
            window: WindowSpec { kind: WindowKind::Tumbling { size_ms: 1000 }, time: TimeDomain::EventTime },
            aggregates: vec![AggCall {
                func: AggFunc::ArrayAgg,
                arg: Some(Expr::Field(2)),
                arg_type: DataType::String,
                result_type: DataType::Array(Elem::STRING),
            }],
            output: vec![Expr::Key(0), Expr::Aggregate(0)],
            lateness_ms: 0,
            late_output: false,
        };
        let input = schema(&[("ts", DataType::Timestamp), ("user", DataType::String), ("tag", DataType::String)]);
        let output = schema(&[("user", DataType::String), ("tags", DataType::Array(Elem::STRING))]);
        let make = || {
            let counters = Arc::new(TaskCounters::new());
            WindowOperator::new("w".into(), spec.clone(), &input, &output, 128, counters, &SourceMap::default())
                .expect("builds")
        };
        let users = ["ann", "bob", "cy", "dan", "eve", "fay", "gus"];
        let events: Vec<(i64, Vec<Value>)> = (0..60i64)
            .map(|i| {
                let row = vec![
                    Value::Timestamp(i * 15),
                    Value::Str(users[(i * 3 % 7) as usize].into()),
                    Value::Str(format!("t{i}")),
                ];
                (i * 15, row)
            })
            .collect();
        let batch =
            Batch::from_rows(&[DataType::Timestamp, DataType::String, DataType::String], &events).expect("fits");
        let mut whole = make();
        let mut out = Vec::new();
        whole.process(batch, &mut out).expect("processes");
        let snap = whole.snapshot();
        let (low, high): (Vec<_>, Vec<_>) = snap.key_groups.iter().cloned().partition(|(g, _)| *g < 64);
        assert!(!low.is_empty() && !high.is_empty(), "the keys spread over both halves");
        let (mut a, mut b) = (make(), make());
        a.restore(KeyedSnapshot { key_groups: low }).expect("restores");
        b.restore(KeyedSnapshot { key_groups: high }).expect("restores");
        let mut again: Vec<(u32, Vec<u8>)> = a.snapshot().key_groups;
        again.extend(b.snapshot().key_groups);
        again.sort();
        assert_eq!(again, snap.key_groups, "each half snapshots its own key groups");
        let fire = |w: &mut WindowOperator| {
            let mut out = Vec::new();
            w.on_signal(Signal::Watermark(i64::MAX), &mut out).expect("fires");
            let mut r: Vec<Vec<Value>> = rows(&out).into_iter().map(|(_, r)| r).collect();
            r.sort_by(|x, y| format!("{x:?}").cmp(&format!("{y:?}")));
            r
        };
        let mut split = fire(&mut a);
        split.extend(fire(&mut b));
        split.sort_by(|x, y| format!("{x:?}").cmp(&format!("{y:?}")));
        let one = fire(&mut whole);
        assert_eq!(split, one);
        let mut model: Vec<Vec<Value>> = users
            .iter()
            .map(|u| {
                let tags = events.iter().filter(|(_, r)| r[1] == Value::Str(u.to_string())).map(|(_, r)| r[2].clone());
                vec![Value::Str(u.to_string()), Value::Array(tags.collect())]
            })
            .collect();
        model.sort_by(|x, y| format!("{x:?}").cmp(&format!("{y:?}")));
        assert_eq!(one, model);
    }

    #[test]
    fn snapshot_restore_round_trip() {
        let mut w = count_per_key(WindowKind::Tumbling { size_ms: 15_000 }, TimeDomain::EventTime);
        let mut out = Vec::new();
        let events: Vec<(i64, &str)> = (0..100).map(|i| (i * 300, ["/a", "/b", "/c"][i as usize % 3])).collect();
        w.process(recs(&events), &mut out).unwrap();
        let snap = w.snapshot();
        let mut w2 = count_per_key(WindowKind::Tumbling { size_ms: 15_000 }, TimeDomain::EventTime);
        w2.restore(snap.clone()).unwrap();
        assert_eq!(w2.snapshot(), snap);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        w.on_signal(Signal::Watermark(i64::MAX), &mut a).unwrap();
        w2.on_signal(Signal::Watermark(i64::MAX), &mut b).unwrap();
        assert_eq!(a, b);
        // A corrupt snapshot is refused.
        let mut bad = snap.clone();
        bad.key_groups[0].1.truncate(3);
        assert!(count_per_key(WindowKind::Tumbling { size_ms: 15_000 }, TimeDomain::EventTime).restore(bad).is_err());
        // So is a format this flowc does not know, saying so.
        let mut newer = snap;
        newer.key_groups[0].1[0] = 3;
        let e = count_per_key(WindowKind::Tumbling { size_ms: 15_000 }, TimeDomain::EventTime)
            .restore(newer)
            .expect_err("refused")
            .to_string();
        assert!(e.contains("state format 3"), "{e}");
    }

    /// The job of `testdata/window_v1.*`: keyed by (page, user), counting,
    /// summing, averaging and taking minima and maxima of every type.
    fn fixture_operator() -> WindowOperator {
        let agg = |func, arg: Option<Expr>, arg_type, result_type| AggCall { func, arg, arg_type, result_type };
        let spec = WindowAggregate {
            key: vec![1, 2],
            window: WindowSpec { kind: WindowKind::Tumbling { size_ms: 1000 }, time: TimeDomain::EventTime },
            aggregates: vec![
                agg(AggFunc::Count, None, DataType::Long, DataType::Long),
                agg(AggFunc::Sum, Some(Expr::Field(3)), DataType::Long, DataType::Long),
                agg(AggFunc::Min, Some(Expr::Field(1)), DataType::String, DataType::String),
                agg(AggFunc::Max, Some(Expr::Field(4)), DataType::Double, DataType::Double),
                agg(AggFunc::Avg, Some(Expr::Field(3)), DataType::Long, DataType::Double),
                agg(AggFunc::Min, Some(Expr::Field(0)), DataType::Timestamp, DataType::Timestamp),
            ],
            output: vec![
                Expr::WindowStart,
                Expr::WindowEnd,
                Expr::Key(0),
                Expr::Key(1),
                Expr::Aggregate(0),
                Expr::Aggregate(1),
                Expr::Aggregate(2),
                Expr::Aggregate(3),
                Expr::Aggregate(4),
                Expr::Aggregate(5),
            ],
            lateness_ms: 0,
            late_output: false,
        };
        let input = schema(&[
            ("ts", DataType::Timestamp),
            ("page", DataType::String),
            ("user", DataType::Long),
            ("n", DataType::Long),
            ("x", DataType::Double),
        ]);
        use DataType as T;
        let output = schema(&[
            ("start", T::Timestamp),
            ("end", T::Timestamp),
            ("page", T::String),
            ("user", T::Long),
            ("count", T::Long),
            ("sum", T::Long),
            ("min", T::String),
            ("max", T::Double),
            ("avg", T::Double),
            ("first", T::Timestamp),
        ]);
        let counters = Arc::new(TaskCounters::new());
        WindowOperator::new("w".into(), spec, &input, &output, 128, counters, &SourceMap::default()).expect("builds")
    }

    fn fixture_input() -> Batch {
        let pages = ["/a", "/b", "/c", "/héllo"];
        let rows: Vec<(i64, Vec<Value>)> = (0..60i64)
            .map(|i| {
                let t = i * 47;
                let row = vec![
                    Value::Timestamp(t),
                    Value::Str(pages[(i % 4) as usize].into()),
                    Value::Int(i % 3 - 1),
                    Value::Int(i * 11 - 300),
                    Value::Double((i as f64) * 0.5 - 7.25),
                ];
                (t, row)
            })
            .collect();
        let types = [DataType::Timestamp, DataType::String, DataType::Long, DataType::Long, DataType::Double];
        Batch::from_rows(&types, &rows).expect("fits")
    }

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{}/src/operators/testdata/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn shown(out: &[Batch]) -> String {
        rows(out).iter().map(|(t, r)| format!("{t} {r:?}\n")).collect()
    }

    /// `window_v1.snapshot` was written by the window operator before its
    /// state was typed (commit b4cce50): restoring it fires exactly what
    /// that operator fired (`window_v1.fired`), and today's operator writes
    /// the very same bytes for the same input.
    #[test]
    fn a_version_1_snapshot_of_the_untyped_operator_restores_and_is_written_the_same() {
        let (saved, _): (Vec<(u32, Vec<u8>)>, usize) =
            bincode::serde::decode_from_slice(&fixture("window_v1.snapshot"), bincode::config::standard())
                .expect("the fixture decodes");
        let saved = KeyedSnapshot { key_groups: saved };
        let mut w = fixture_operator();
        w.restore(saved.clone()).expect("restores");
        let mut fired = Vec::new();
        w.on_signal(Signal::Watermark(i64::MAX), &mut fired).unwrap();
        assert_eq!(shown(&fired), String::from_utf8(fixture("window_v1.fired")).expect("UTF-8"));
        // The same input, processed today, snapshots to the same bytes.
        let mut today = fixture_operator();
        let mut early = Vec::new();
        today.process(fixture_input(), &mut early).unwrap();
        today.on_signal(Signal::Watermark(999), &mut early).unwrap();
        assert_eq!(rows(&early).len(), 12, "the first window fired before the snapshot");
        assert_eq!(today.snapshot(), saved);
    }
}
