//! `key_by k | aggregate { … }` without a window: a running aggregate per
//! key whose output is an upsert stream (Flink SQL's `GroupAggFunction`).
//!
//! Each key holds one typed accumulator per aggregate (the window
//! operator's [`Acc`]s, in one window that never closes). Every record
//! updates its key's accumulators and emits the key's row: `+I` the first
//! time, then `-U` with the old row and `+U` with the new one, or nothing
//! when the row did not change (as Flink does without state TTL). The
//! emitted rows carry the record's event time.
//!
//! With `ttl`, a key whose state was not updated for that long (processing
//! time, as Flink's state TTL) is removed by timers, without emitting
//! anything; its next record starts again at `+I`. State is snapshotted
//! per key group (format 1: the key, its accumulators as the window
//! operator saves them, and when it was last updated) and redistributed on
//! rescale like the window operator's.
//!
//! A record an argument fails on follows the aggregate's `on_error`
//! ([`AggregateErrors`]) before it finds its key: it never touches the
//! state. An output expression that fails (`sum(a) / sum(b)`) fails the
//! task whatever the policy: the key's state has taken the record by then,
//! and its changelog would lose a `-U` or a `+U`.

use super::calc::Projection;
use super::keyed::{decode_groups, find_slots, write_groups, SlotTimers};
use super::window_state::{add_row, restore_windows_v2, v1_windows, Acc, ArgReader, KeyTable, SnapshotEntry, Window};
use super::{KeyGroupWriter, KeyedSnapshot, Operator, OperatorError};
use crate::data::{Batch, RowKind, ValueRef};
use crate::expr::{CompiledExpr, EvalError, Sel, SourceMap, Vals};
use crate::keygroup::{key_group, key_hash};
use crate::metrics::TaskCounters;
use crate::operators::aggregate_plan::{eval_args, AggregateErrors, AggregatePlan, AggregateSpec};
use crate::record::Signal;
use flowc_compiler::ir::{DataType, ErrorPolicy, RunningAggregate, Schema};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Format of a key group's bytes in a snapshot; bump on change.
const SNAPSHOT_VERSION: u8 = 1;

/// One key in a checkpoint: the key and its accumulators (as one window
/// starting at 0), and when its state was last updated (epoch ms).
#[derive(Serialize, Deserialize)]
struct RunningEntry {
    entry: SnapshotEntry,
    updated: i64,
}

pub struct RunningAggregateOperator {
    name: String,
    spec: RunningAggregate,
    max_parallelism: u32,
    keys: KeyTable,
    /// Per slot: when the key's state was last updated (processing time).
    updated: Vec<i64>,
    /// With `ttl`: when to look at a key again.
    expiry: SlotTimers,
    args: Vec<Option<CompiledExpr>>,
    /// The output over `[keys…, aggregates…]`.
    output: Projection,
    scope_types: Vec<DataType>,
    scope_schema: Schema,
    input: Schema,
    /// Reused per batch.
    hashes: Vec<u64>,
    slots: Vec<u32>,
    /// The processing-time clock (tests set it).
    clock: fn() -> i64,
    /// What a record an argument fails on does: `on_error`.
    errors: AggregateErrors,
    counters: Arc<TaskCounters>,
}

impl RunningAggregateOperator {
    /// The operator for `spec` over records of `input`; fails on a spec
    /// the checker would refuse (a bug).
    pub fn new(
        name: String,
        spec: RunningAggregate,
        input: &Schema,
        output: &Schema,
        max_parallelism: u32,
        counters: Arc<TaskCounters>,
        sources: &SourceMap,
    ) -> Result<RunningAggregateOperator, OperatorError> {
        let spec_ref = AggregateSpec { key: &spec.key, aggregates: &spec.aggregates, output: &spec.output };
        let plan = AggregatePlan::compile(&name, spec_ref, &[], input, output, sources, |call| {
            Acc::new(call).is_none().then(|| format!("{}() of {}", call.func.name(), call.arg_type))
        })?;
        Ok(RunningAggregateOperator {
            name,
            max_parallelism,
            keys: KeyTable::default(),
            updated: Vec::new(),
            expiry: SlotTimers::default(),
            args: plan.args,
            output: plan.output,
            scope_types: plan.scope_types,
            scope_schema: plan.scope_schema,
            input: input.clone(),
            hashes: Vec::new(),
            slots: Vec::new(),
            clock: crate::clock::now_ms,
            errors: AggregateErrors::fail(),
            counters,
            spec,
        })
    }

    /// The operator with the `on_error` policy `policy` for
    /// records its arguments fail on.
    pub fn with_on_error(mut self, policy: ErrorPolicy) -> Result<RunningAggregateOperator, OperatorError> {
        let fallible = AggregateErrors::fallible(self.args.iter().flatten());
        self.errors = AggregateErrors::new(policy, fallible, &self.name, self.counters.clone())?;
        Ok(self)
    }

    fn eval_error(&self, e: EvalError, batch: &Batch, schema: &Schema) -> OperatorError {
        OperatorError::Eval { operator: self.name.clone(), message: e.describe(batch, schema) }
    }

    /// The number of keys held (tests, metrics).
    pub fn key_count(&self) -> usize {
        self.keys.entries().count()
    }

    /// Notes that the key at `slot` was updated at `now`; a key that is
    /// `new` gets a ttl timer (an updated one is re-armed when it fires).
    fn set_updated(updated: &mut Vec<i64>, expiry: &mut SlotTimers, ttl: Option<u64>, slot: u32, now: i64, new: bool) {
        let i = slot as usize;
        if updated.len() <= i {
            updated.resize(i + 1, i64::MIN);
        }
        updated[i] = now;
        if let (Some(ttl), true) = (ttl, new) {
            expiry.add(now.saturating_add(ttl as i64), slot);
        }
    }

    /// Whether the key at `slot` has expired at `now` under `ttl`.
    fn expired(&self, slot: u32, now: i64) -> bool {
        match (self.spec.ttl_ms, self.updated.get(slot as usize)) {
            (Some(ttl), Some(&u)) => u.saturating_add(ttl as i64) <= now,
            _ => false,
        }
    }

    /// Pushes the key's row (keys, then results) to the scope batch.
    fn push_row(scope: &mut Batch, key: &[crate::record::Value], accs: &[Acc], ts: i64, kind: RowKind) {
        let mut c = 0;
        for v in key {
            scope.columns[c].push_value(v.into());
            c += 1;
        }
        for acc in accs {
            acc.push_result(&mut scope.columns[c]);
            c += 1;
        }
        scope.timestamps.push(ts);
        if let Some(k) = &mut scope.kinds {
            k.push(kind);
        }
    }

    /// Whether the last two rows of the scope batch have equal results.
    fn last_two_equal(scope: &Batch, keys: usize) -> bool {
        let n = scope.len();
        n >= 2
            && scope.columns[keys..].iter().all(|c| match (c.value_ref(n - 2), c.value_ref(n - 1)) {
                (Some(ValueRef::Double(a)), Some(ValueRef::Double(b))) => a.to_bits() == b.to_bits(),
                (a, b) => a == b,
            })
    }

    /// Adds the records of `input` to their keys. A record an argument
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
        let now = (self.clock)();
        let mut own = std::mem::take(&mut self.hashes);
        let mut slots = std::mem::take(&mut self.slots);
        if !find_slots(&mut self.keys, &input, &self.spec.key, &mut own, &mut slots) {
            return Err(self.eval_error(EvalError::internal("a key column is missing"), &input, &self.input));
        }
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
        let mut scope = Batch::empty(&self.scope_types, 2 * n);
        scope.kinds = Some(Vec::with_capacity(2 * n));
        let keys = self.spec.key.len();
        for (r, &slot) in slots.iter().enumerate() {
            let expired = self.expired(slot, now);
            let aggregates = &self.spec.aggregates;
            let Some(entry) = self.keys.get_mut(slot) else { continue };
            if expired {
                entry.windows.clear();
            }
            let ts = input.timestamps[r];
            let new = entry.windows.is_empty();
            if new {
                entry.windows.push(Window {
                    start: 0,
                    end: i64::MAX,
                    fired: false,
                    accs: aggregates.iter().filter_map(Acc::new).collect(),
                });
            }
            let Some(window) = entry.windows.first_mut() else { continue };
            if !new {
                Self::push_row(&mut scope, &entry.key, &window.accs, ts, RowKind::UpdateBefore);
            }
            add_row(&mut window.accs, &readers, &present, r);
            let kind = if new { RowKind::Insert } else { RowKind::UpdateAfter };
            Self::push_row(&mut scope, &entry.key, &window.accs, ts, kind);
            if !new && Self::last_two_equal(&scope, keys) {
                scope.truncate(scope.len() - 2);
            }
            Self::set_updated(&mut self.updated, &mut self.expiry, self.spec.ttl_ms, slot, now, new);
        }
        drop(readers);
        drop(vals);
        self.hashes = own;
        self.slots = slots;
        if scope.is_empty() {
            return Ok(());
        }
        match self.output.run(scope, None) {
            Ok(b) => {
                out.push(b);
                Ok(())
            }
            Err(e) => Err(self.eval_error(e.0, &e.1, &self.scope_schema)),
        }
    }
}

impl Operator for RunningAggregateOperator {
    fn process(&mut self, input: Batch, out: &mut Vec<Batch>) -> Result<(), OperatorError> {
        self.add_batch(input, out, false)
    }

    fn flush(&mut self) -> Result<(), OperatorError> {
        self.errors.flush()
    }

    fn on_timer(&mut self, now_ms: i64, _out: &mut Vec<Batch>) -> Result<Option<Signal>, OperatorError> {
        let Some(ttl) = self.spec.ttl_ms else { return Ok(None) };
        for (_, slot) in self.expiry.due(now_ms) {
            let Some(&u) = self.updated.get(slot as usize) else { continue };
            if self.keys.get(slot).is_none() {
                continue;
            }
            let at = u.saturating_add(ttl as i64);
            if at <= now_ms {
                self.keys.remove(slot);
                self.updated[slot as usize] = i64::MIN;
            } else {
                // Updated since the timer was set: look again when it expires.
                self.expiry.add(at, slot);
            }
        }
        Ok(None)
    }

    fn snapshot(&self) -> KeyedSnapshot {
        KeyedSnapshot::collect(|out| self.snapshot_into(out))
    }

    fn snapshot_into(&self, out: &mut dyn KeyGroupWriter) -> std::io::Result<()> {
        // Slots first; an entry is saved only while its key group is written.
        let slots =
            self.keys.slots().map(|(slot, e)| (key_group(e.hash, self.max_parallelism), &e.order[..], (slot, e)));
        let make = |(slot, e): (u32, &super::window_state::KeyEntry)| {
            let updated = self.updated.get(slot as usize).copied().unwrap_or(i64::MIN);
            RunningEntry { entry: e.saved(&self.spec.aggregates), updated }
        };
        write_groups(SNAPSHOT_VERSION, slots, make, out)
    }

    fn restore(&mut self, state: KeyedSnapshot) -> Result<(), OperatorError> {
        let restored: Vec<RunningEntry> = decode_groups(&self.name, SNAPSHOT_VERSION, &state)?;
        let name = self.name.clone();
        let fail = |m: &str| OperatorError::Restore { operator: name.clone(), message: m.to_string() };
        for RunningEntry { entry, updated } in restored {
            if entry.key.0.len() != self.spec.key.len() {
                return Err(fail("the state has keys of another length than the job's"));
            }
            let windows = restore_windows_v2(v1_windows(entry.windows, i64::MAX), &self.spec.aggregates)
                .ok_or_else(|| fail("the state has other aggregates than the job (a different number or type)"))?;
            let hash = key_hash(&entry.key.0);
            let slot = match self.keys.find_owned(&entry.key.0, hash) {
                Some(s) => s,
                None => self.keys.insert(entry.key.0, hash),
            };
            let Some(e) = self.keys.get_mut(slot) else { continue };
            e.windows = windows;
            Self::set_updated(&mut self.updated, &mut self.expiry, self.spec.ttl_ms, slot, updated, true);
        }
        Ok(())
    }
}

pub mod retract;

#[cfg(test)]
mod tests;
