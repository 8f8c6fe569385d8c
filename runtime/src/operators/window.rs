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
mod tests;
