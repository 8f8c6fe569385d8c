//! A running aggregate over an updating stream (`key_by k | aggregate { … }`
//! after another running aggregate or any upsert stream), Flink SQL's
//! `GroupAggFunction` with retraction: Nexmark q4's `AVG` per category
//! over each auction's `MAX(price)`.
//!
//! Each key holds one retracting accumulator per aggregate and how many
//! records it counts (`+I`/`+U` add one, `-U`/`-D` take one away, as
//! Flink's hidden `COUNT(*)`). `count`, `sum` and `avg` retract exactly
//! (a sum keeps how many values it holds, so that it is null again when
//! none is left); `min` and `max` keep each key's values with their
//! multiplicities (Flink's `MinWithRetractAggFunction` keeps a `MapView`),
//! so that retracting the extreme finds the next one. Every record emits
//! the key's new row as the operator over an append-only input does
//! (`+I` the first, then `-U` old / `+U` new, nothing when unchanged);
//! when a retraction leaves the key with no record, its old row is
//! deleted (`-D`) and its state removed. A retraction for a key without
//! state (never seen, or forgotten by `ttl`) is dropped, as Flink drops it.
//!
//! State is snapshotted per key group in its own format 2 (the key, the
//! record count, the accumulators, the last update time) and redistributed
//! on rescale like the other keyed operators'.
//!
//! A record an argument fails on follows the aggregate's `on_error` before
//! it touches the state, whatever its kind: the argument of a `-U` is the
//! one its `+I`/`+U` had, which failed the same way and was never added,
//! so leaving the retraction out too keeps the key's aggregates exact.

use super::super::calc::Projection;
use super::super::keyed::{decode_groups, find_slots, write_groups, SlotTimers};
use super::super::window_state::{ArgReader, KeyTable};
use super::super::{KeyGroupWriter, KeyedSnapshot, Operator, OperatorError};
use crate::data::{Batch, Column, Data, RowKind, Validity, ValueRef};
use crate::expr::{CompiledExpr, EvalError, Sel, SourceMap, Vals};
use crate::keygroup::{key_group, key_hash, Key};
use crate::metrics::TaskCounters;
use crate::operators::aggregate_plan::{eval_args, AggregateErrors, AggregatePlan, AggregateSpec};
use crate::record::Signal;
use flowc_compiler::ir::{AggCall, AggFunc, DataType, ErrorPolicy, RunningAggregate, Schema};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Format of a key group's bytes in a snapshot; bump on change. It starts
/// at 2, after the running aggregate's own format 1, so that a job whose
/// aggregate's input became updating refuses the old state instead of
/// misreading it.
const SNAPSHOT_VERSION: u8 = 2;

/// A key's values of a `min` or `max`, each with how many records hold it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Values {
    I64(BTreeMap<i64, u64>),
    /// Doubles by [`f64_order`], which sorts as `f64::total_cmp`.
    F64(BTreeMap<i64, u64>),
    Str(BTreeMap<String, u64>),
}

/// The state of one aggregate of one key, retracting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum RetractAcc {
    /// `count()` and `count(x)`.
    Count(i64),
    /// `sum` of integers: the sum and how many values are in it.
    SumI {
        sum: i64,
        n: i64,
    },
    SumF {
        sum: f64,
        n: i64,
    },
    AvgI {
        sum: i64,
        n: i64,
    },
    AvgF {
        sum: f64,
        n: i64,
    },
    Min(Values),
    Max(Values),
}

/// An `f64` as an `i64` that orders as [`f64::total_cmp`] (its own inverse).
fn f64_order(x: f64) -> i64 {
    let b = x.to_bits() as i64;
    b ^ ((((b >> 63) as u64) >> 1) as i64)
}

fn f64_of_order(k: i64) -> f64 {
    f64::from_bits((k ^ ((((k >> 63) as u64) >> 1) as i64)) as u64)
}

/// Adds `by` (±1) to `v`'s multiplicity, removing it at zero.
fn bump<K: Ord>(m: &mut BTreeMap<K, u64>, v: K, by: i64) {
    if by > 0 {
        *m.entry(v).or_default() += 1;
    } else if let Some(n) = m.get_mut(&v) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            m.remove(&v);
        }
    }
}

impl RetractAcc {
    /// A fresh accumulator for `call`; `None` for one that does not
    /// retract (the checker refuses it: a bug).
    pub fn new(call: &AggCall) -> Option<RetractAcc> {
        let values = || match call.arg_type {
            DataType::Int | DataType::Long | DataType::Timestamp => Some(Values::I64(BTreeMap::new())),
            DataType::Double => Some(Values::F64(BTreeMap::new())),
            DataType::String => Some(Values::Str(BTreeMap::new())),
            DataType::Bool | DataType::Array(_) => None,
        };
        let double = call.arg_type == DataType::Double;
        Some(match call.func {
            AggFunc::Count => RetractAcc::Count(0),
            AggFunc::Sum if double => RetractAcc::SumF { sum: 0.0, n: 0 },
            AggFunc::Sum if call.arg_type.is_integral() => RetractAcc::SumI { sum: 0, n: 0 },
            AggFunc::Avg if double => RetractAcc::AvgF { sum: 0.0, n: 0 },
            AggFunc::Avg if call.arg_type.is_integral() => RetractAcc::AvgI { sum: 0, n: 0 },
            AggFunc::Min => RetractAcc::Min(values()?),
            AggFunc::Max => RetractAcc::Max(values()?),
            _ => return None,
        })
    }

    /// Whether this accumulator is of `call`'s kind (a restored state).
    fn fits(&self, call: &AggCall) -> bool {
        use std::mem::discriminant;
        let Some(fresh) = RetractAcc::new(call) else { return false };
        match (self, &fresh) {
            (RetractAcc::Min(a), RetractAcc::Min(b)) | (RetractAcc::Max(a), RetractAcc::Max(b)) => {
                discriminant(a) == discriminant(b)
            }
            (a, b) => discriminant(a) == discriminant(b),
        }
    }

    /// Adds (`by` = 1) or retracts (`by` = −1) row `k` of `arg`.
    #[inline]
    pub fn apply(&mut self, arg: &ArgReader<'_>, k: usize, by: i64) {
        match (self, arg) {
            (RetractAcc::Count(n), _) => *n += by,
            (RetractAcc::SumI { sum, n } | RetractAcc::AvgI { sum, n }, ArgReader::I64(a)) => {
                *sum = sum.wrapping_add(by.wrapping_mul(a.get(k)));
                *n += by;
            }
            (RetractAcc::SumF { sum, n } | RetractAcc::AvgF { sum, n }, ArgReader::F64(a)) => {
                *sum += by as f64 * a.get(k);
                *n += by;
            }
            (RetractAcc::Min(v) | RetractAcc::Max(v), arg) => match (v, arg) {
                (Values::I64(m), ArgReader::I64(a)) => bump(m, a.get(k), by),
                (Values::F64(m), ArgReader::F64(a)) => bump(m, f64_order(a.get(k)), by),
                (Values::Str(m), ArgReader::Str(a)) => {
                    let s = a.get(k);
                    if by > 0 {
                        match m.get_mut(s) {
                            Some(n) => *n += 1,
                            None => {
                                m.insert(s.to_string(), 1);
                            }
                        }
                    } else if let Some(n) = m.get_mut(s) {
                        *n = n.saturating_sub(1);
                        if *n == 0 {
                            m.remove(s);
                        }
                    }
                }
                // Built for the call's argument type: cannot happen.
                _ => {}
            },
            _ => {}
        }
    }

    /// Appends the result to `column` (of the aggregate's result type):
    /// null where no value is held, as in SQL; `count` is 0.
    pub fn push_result(&self, column: &mut Column) {
        let pushed = match (self, &mut column.data) {
            (RetractAcc::Count(n), Data::I64(c)) => {
                c.push(*n);
                true
            }
            (RetractAcc::SumI { n: 0, .. } | RetractAcc::SumF { n: 0, .. }, _) => false,
            (RetractAcc::AvgI { n: 0, .. } | RetractAcc::AvgF { n: 0, .. }, _) => false,
            (RetractAcc::SumI { sum, .. }, Data::I64(c)) => {
                c.push(*sum);
                true
            }
            (RetractAcc::SumF { sum, .. }, Data::F64(c)) => {
                c.push(*sum);
                true
            }
            (RetractAcc::AvgI { sum, n }, Data::F64(c)) => {
                c.push(*sum as f64 / *n as f64);
                true
            }
            (RetractAcc::AvgF { sum, n }, Data::F64(c)) => {
                c.push(sum / *n as f64);
                true
            }
            (RetractAcc::Min(v), data) => push_extreme(v, data, false),
            (RetractAcc::Max(v), data) => push_extreme(v, data, true),
            // Built for the spec's result types: cannot happen.
            _ => false,
        };
        if pushed {
            column.mark_appended_valid();
        } else {
            column.push_null();
        }
    }
}

/// Pushes the smallest (or largest) value held; `false` if none is.
fn push_extreme(v: &Values, data: &mut Data, max: bool) -> bool {
    match (v, data) {
        (Values::I64(m), Data::I64(c)) => {
            let Some(x) = (if max { m.last_key_value() } else { m.first_key_value() }) else { return false };
            c.push(*x.0);
        }
        (Values::F64(m), Data::F64(c)) => {
            let Some(x) = (if max { m.last_key_value() } else { m.first_key_value() }) else { return false };
            c.push(f64_of_order(*x.0));
        }
        (Values::Str(m), Data::Str(c)) => {
            let Some(x) = (if max { m.last_key_value() } else { m.first_key_value() }) else { return false };
            c.push(x.0);
        }
        _ => return false,
    }
    true
}

/// One key's state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct KeyState {
    /// Records counted: `+I`/`+U` minus `-U`/`-D`.
    rows: i64,
    accs: Vec<RetractAcc>,
}

/// One key in a checkpoint.
#[derive(Serialize, Deserialize)]
struct RetractEntry {
    key: Key,
    state: KeyState,
    /// When its state was last updated (epoch ms).
    updated: i64,
}

pub struct RetractingAggregateOperator {
    name: String,
    spec: RunningAggregate,
    max_parallelism: u32,
    keys: KeyTable,
    /// Per slot: the key's state (`None`: no record counted).
    states: Vec<Option<KeyState>>,
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

impl RetractingAggregateOperator {
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
    ) -> Result<RetractingAggregateOperator, OperatorError> {
        let spec_ref = AggregateSpec { key: &spec.key, aggregates: &spec.aggregates, output: &spec.output };
        let plan = AggregatePlan::compile(&name, spec_ref, &[], input, output, sources, |call| {
            RetractAcc::new(call)
                .is_none()
                .then(|| format!("{}() of {} does not retract", call.func.name(), call.arg_type))
        })?;
        Ok(RetractingAggregateOperator {
            name,
            max_parallelism,
            keys: KeyTable::default(),
            states: Vec::new(),
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
    pub fn with_on_error(mut self, policy: ErrorPolicy) -> Result<RetractingAggregateOperator, OperatorError> {
        let fallible = AggregateErrors::fallible(self.args.iter().flatten());
        self.errors = AggregateErrors::new(policy, fallible, &self.name, self.counters.clone())?;
        Ok(self)
    }

    fn eval_error(&self, e: EvalError, batch: &Batch, schema: &Schema) -> OperatorError {
        OperatorError::Eval { operator: self.name.clone(), message: e.describe(batch, schema) }
    }

    /// The number of keys with state (tests, metrics).
    pub fn key_count(&self) -> usize {
        self.states.iter().flatten().count()
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

    /// The state of the key at `slot`, growing the slab to it.
    fn state_mut(states: &mut Vec<Option<KeyState>>, slot: u32) -> &mut Option<KeyState> {
        let i = slot as usize;
        if states.len() <= i {
            states.resize_with(i + 1, || None);
        }
        &mut states[i]
    }

    /// Pushes the key's row (keys, then results) to the scope batch.
    fn push_row(scope: &mut Batch, key: &[crate::record::Value], accs: &[RetractAcc], ts: i64, kind: RowKind) {
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

    /// Forgets the key at `slot` entirely.
    fn forget(&mut self, slot: u32) {
        self.keys.remove(slot);
        if let Some(s) = self.states.get_mut(slot as usize) {
            *s = None;
        }
        if let Some(u) = self.updated.get_mut(slot as usize) {
            *u = i64::MIN;
        }
    }

    /// Adds (or takes back) the records of `input`. A record an argument
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
        let present: Vec<Option<Validity>> = vals.iter().map(|v| v.as_ref().and_then(|v| v.validity(sel))).collect();
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
        // Keys left without state by this batch: forgotten after it (a
        // later record of the batch may still hold their slot).
        let mut emptied = Vec::new();
        for (r, &slot) in slots.iter().enumerate() {
            let by = match input.kind(r) {
                RowKind::Insert | RowKind::UpdateAfter => 1,
                RowKind::UpdateBefore | RowKind::Delete => -1,
            };
            if self.expired(slot, now) {
                *Self::state_mut(&mut self.states, slot) = None;
            }
            let Some(entry) = self.keys.get(slot) else { continue };
            let state = Self::state_mut(&mut self.states, slot);
            let new = state.is_none();
            if new && by < 0 {
                // Nothing to retract from (Flink drops it too).
                emptied.push(slot);
                continue;
            }
            let st = state.get_or_insert_with(|| KeyState {
                rows: 0,
                accs: self.spec.aggregates.iter().filter_map(RetractAcc::new).collect(),
            });
            let ts = input.timestamps[r];
            if !new {
                Self::push_row(&mut scope, &entry.key, &st.accs, ts, RowKind::UpdateBefore);
            }
            for ((acc, reader), present) in st.accs.iter_mut().zip(&readers).zip(&present) {
                if present.as_ref().is_none_or(|p| p.get(r)) {
                    acc.apply(reader, r, by);
                }
            }
            st.rows += by;
            if st.rows <= 0 {
                // The key's last record was retracted: its row is deleted.
                if let Some(k) = scope.kinds.as_mut().and_then(|k| k.last_mut()) {
                    *k = RowKind::Delete;
                }
                *state = None;
                emptied.push(slot);
                continue;
            }
            let kind = if new { RowKind::Insert } else { RowKind::UpdateAfter };
            Self::push_row(&mut scope, &entry.key, &st.accs, ts, kind);
            if !new && Self::last_two_equal(&scope, keys) {
                scope.truncate(scope.len() - 2);
            }
            Self::set_updated(&mut self.updated, &mut self.expiry, self.spec.ttl_ms, slot, now, new);
        }
        drop(readers);
        drop(vals);
        for slot in emptied {
            if self.states.get(slot as usize).is_none_or(Option::is_none) {
                self.forget(slot);
            }
        }
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

impl Operator for RetractingAggregateOperator {
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
                self.forget(slot);
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
        // References first; a key's state is cloned only while its key
        // group is written.
        let slots = self.keys.slots().filter_map(|(slot, e)| {
            let state = self.states.get(slot as usize)?.as_ref()?;
            Some((key_group(e.hash, self.max_parallelism), &e.order[..], (slot, e, state)))
        });
        let make = |(slot, e, state): (u32, &super::super::window_state::KeyEntry, &KeyState)| {
            let updated = self.updated.get(slot as usize).copied().unwrap_or(i64::MIN);
            RetractEntry { key: Key(e.key.clone()), state: state.clone(), updated }
        };
        write_groups(SNAPSHOT_VERSION, slots, make, out)
    }

    fn restore(&mut self, state: KeyedSnapshot) -> Result<(), OperatorError> {
        let restored: Vec<RetractEntry> = decode_groups(&self.name, SNAPSHOT_VERSION, &state)?;
        let name = self.name.clone();
        let fail = |m: &str| OperatorError::Restore { operator: name.clone(), message: m.to_string() };
        for RetractEntry { key, state, updated } in restored {
            if key.0.len() != self.spec.key.len() {
                return Err(fail("the state has keys of another length than the job's"));
            }
            let fits = state.rows > 0
                && state.accs.len() == self.spec.aggregates.len()
                && state.accs.iter().zip(&self.spec.aggregates).all(|(a, c)| a.fits(c));
            if !fits {
                return Err(fail("the state has other aggregates than the job (a different number or type)"));
            }
            let hash = key_hash(&key.0);
            let slot = match self.keys.find_owned(&key.0, hash) {
                Some(s) => s,
                None => self.keys.insert(key.0, hash),
            };
            *Self::state_mut(&mut self.states, slot) = Some(state);
            Self::set_updated(&mut self.updated, &mut self.expiry, self.spec.ttl_ms, slot, updated, true);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
