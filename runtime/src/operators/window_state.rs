//! The window operator's state: each key held once, found from a batch's
//! columns without allocating, with its open windows and their typed
//! accumulators; and the form the state takes in a checkpoint.
//!
//! Keys live in a slab of entries indexed by a `hashbrown::HashTable` of
//! slot numbers: a record's key is looked up with its precomputed
//! [`key_hash`](crate::keygroup::key_hash) and compared with the columns
//! in place; only a new key allocates (its values, and its bincode
//! encoding, which orders timers and snapshots as before).

use super::sketches::{SavedSketch, SketchAcc};
use crate::data::{Column, Data, Validity, ValueRef};
use crate::expr::vals::{F64s, I64s, Strs};
use crate::keygroup::Key;
use crate::record::Value;
use flowc_compiler::ir::{AggCall, AggFunc, DataType};
use hashbrown::HashTable;
use serde::{Deserialize, Serialize};

/// The running state of one aggregate in one window, typed.
#[derive(Debug, Clone, PartialEq)]
pub enum Acc {
    Count(i64),
    SumI(Option<i64>),
    SumF(Option<f64>),
    MinI(Option<i64>),
    MaxI(Option<i64>),
    MinF(Option<f64>),
    MaxF(Option<f64>),
    MinS(Option<String>),
    MaxS(Option<String>),
    Avg {
        sum: f64,
        count: i64,
    },
    /// `count_distinct`, `approx_count_distinct`, `first`, `last`,
    /// `approx_percentile` (`sketches`).
    Sketch(Box<SketchAcc>),
}

/// An aggregate's argument for the rows of a batch.
#[derive(Clone, Copy)]
pub enum ArgReader<'a> {
    None,
    I64(I64s<'a>),
    F64(F64s<'a>),
    Str(Strs<'a>),
}

/// How an aggregate's argument is stored, for [`Acc::new`].
fn stored(t: DataType) -> DataType {
    match t {
        DataType::Int | DataType::Long | DataType::Timestamp => DataType::Long,
        other => other,
    }
}

impl Acc {
    /// A fresh accumulator for `call`; `None` if the call is one the
    /// checker refuses (a bug).
    pub fn new(call: &AggCall) -> Option<Acc> {
        if let Some(s) = SketchAcc::new(call) {
            return Some(Acc::Sketch(Box::new(s)));
        }
        Some(match (call.func, stored(call.arg_type)) {
            (AggFunc::Count, _) => Acc::Count(0),
            (AggFunc::Sum, DataType::Long) => Acc::SumI(None),
            (AggFunc::Sum, DataType::Double) => Acc::SumF(None),
            (AggFunc::Min, DataType::Long) => Acc::MinI(None),
            (AggFunc::Max, DataType::Long) => Acc::MaxI(None),
            (AggFunc::Min, DataType::Double) => Acc::MinF(None),
            (AggFunc::Max, DataType::Double) => Acc::MaxF(None),
            (AggFunc::Min, DataType::String) => Acc::MinS(None),
            (AggFunc::Max, DataType::String) => Acc::MaxS(None),
            (AggFunc::Avg, DataType::Long | DataType::Double) => Acc::Avg { sum: 0.0, count: 0 },
            _ => return None,
        })
    }

    /// Adds row `k` of `arg`.
    #[inline]
    pub fn add(&mut self, arg: &ArgReader<'_>, k: usize) {
        match (self, arg) {
            (Acc::Count(n), _) => *n += 1,
            (Acc::SumI(s), ArgReader::I64(a)) => {
                let v = a.get(k);
                *s = Some(s.map_or(v, |x| x.wrapping_add(v)));
            }
            (Acc::SumF(s), ArgReader::F64(a)) => {
                let v = a.get(k);
                *s = Some(s.map_or(v, |x| x + v));
            }
            (Acc::MinI(m), ArgReader::I64(a)) => {
                let v = a.get(k);
                if m.is_none_or(|cur| v < cur) {
                    *m = Some(v);
                }
            }
            (Acc::MaxI(m), ArgReader::I64(a)) => {
                let v = a.get(k);
                if m.is_none_or(|cur| v > cur) {
                    *m = Some(v);
                }
            }
            (Acc::MinF(m), ArgReader::F64(a)) => {
                let v = a.get(k);
                if m.is_none_or(|cur| v.total_cmp(&cur).is_lt()) {
                    *m = Some(v);
                }
            }
            (Acc::MaxF(m), ArgReader::F64(a)) => {
                let v = a.get(k);
                if m.is_none_or(|cur| v.total_cmp(&cur).is_gt()) {
                    *m = Some(v);
                }
            }
            (Acc::MinS(m), ArgReader::Str(a)) => set_str(m, a.get(k), true),
            (Acc::MaxS(m), ArgReader::Str(a)) => set_str(m, a.get(k), false),
            (Acc::Avg { sum, count }, arg) => {
                *sum += match arg {
                    ArgReader::I64(a) => a.get(k) as f64,
                    ArgReader::F64(a) => a.get(k),
                    _ => 0.0,
                };
                *count += 1;
            }
            (Acc::Sketch(s), arg) => s.add(arg, k),
            _ => {}
        }
    }

    /// Adds `other`'s state, of the same aggregate, to this one: the state
    /// of two windows that merge (session windows).
    pub fn merge(&mut self, other: &Acc) {
        fn opt<T: Copy>(a: &mut Option<T>, b: Option<T>, f: impl Fn(T, T) -> T) {
            *a = match (*a, b) {
                (Some(x), Some(y)) => Some(f(x, y)),
                (x, None) => x,
                (None, y) => y,
            };
        }
        match (self, other) {
            (Acc::Count(a), Acc::Count(b)) => *a += b,
            (Acc::SumI(a), Acc::SumI(b)) => opt(a, *b, i64::wrapping_add),
            (Acc::SumF(a), Acc::SumF(b)) => opt(a, *b, |x, y| x + y),
            (Acc::MinI(a), Acc::MinI(b)) => opt(a, *b, i64::min),
            (Acc::MaxI(a), Acc::MaxI(b)) => opt(a, *b, i64::max),
            (Acc::MinF(a), Acc::MinF(b)) => opt(a, *b, |x, y| if y.total_cmp(&x).is_lt() { y } else { x }),
            (Acc::MaxF(a), Acc::MaxF(b)) => opt(a, *b, |x, y| if y.total_cmp(&x).is_gt() { y } else { x }),
            (Acc::MinS(a), Acc::MinS(Some(b))) => set_str(a, b, true),
            (Acc::MaxS(a), Acc::MaxS(Some(b))) => set_str(a, b, false),
            (Acc::MinS(_) | Acc::MaxS(_), _) => {}
            (Acc::Avg { sum, count }, Acc::Avg { sum: s2, count: c2 }) => {
                *sum += s2;
                *count += c2;
            }
            // Accumulators of one aggregate are of one variant: cannot happen.
            _ => {}
        }
    }

    /// Appends the result to `column` (of the aggregate's result type).
    /// An aggregate that saw no value (every argument was null) is null,
    /// as in SQL; `count` is 0.
    pub fn push_result(&self, column: &mut Column) {
        if let Acc::Sketch(s) = self {
            if s.is_absent() {
                column.push_null();
                return;
            }
            s.push_result(column);
            column.mark_appended_valid();
            return;
        }
        let absent = matches!(
            self,
            Acc::SumI(None)
                | Acc::SumF(None)
                | Acc::MinI(None)
                | Acc::MaxI(None)
                | Acc::MinF(None)
                | Acc::MaxF(None)
                | Acc::MinS(None)
                | Acc::MaxS(None)
                | Acc::Avg { count: 0, .. }
        );
        if absent {
            column.push_null();
            return;
        }
        self.push_value(column);
        column.mark_appended_valid();
    }

    fn push_value(&self, column: &mut Column) {
        match (self, &mut column.data) {
            (Acc::Count(n), Data::I64(c)) => c.push(*n),
            (Acc::SumI(s) | Acc::MinI(s) | Acc::MaxI(s), Data::I64(c)) => c.push(s.unwrap_or(0)),
            (Acc::SumF(s) | Acc::MinF(s) | Acc::MaxF(s), Data::F64(c)) => c.push(s.unwrap_or(0.0)),
            (Acc::MinS(s) | Acc::MaxS(s), Data::Str(c)) => c.push(s.as_deref().unwrap_or("")),
            (Acc::Avg { sum, count }, Data::F64(c)) => c.push(if *count == 0 { 0.0 } else { sum / *count as f64 }),
            // Built for the spec's result types: cannot happen.
            _ => {}
        }
    }

    /// The checkpoint form of this accumulator, as the window operator
    /// wrote it before accumulators were typed.
    pub(super) fn saved(&self, call: &AggCall) -> SavedAcc {
        let int = |x: i64| if call.arg_type == DataType::Timestamp { Value::Timestamp(x) } else { Value::Int(x) };
        match self {
            Acc::Count(n) => SavedAcc::Count(*n),
            Acc::SumI(s) => SavedAcc::Sum(s.map(Value::Int)),
            Acc::SumF(s) => SavedAcc::Sum(s.map(Value::Double)),
            Acc::MinI(m) => SavedAcc::Min(m.map(int)),
            Acc::MaxI(m) => SavedAcc::Max(m.map(int)),
            Acc::MinF(m) => SavedAcc::Min(m.map(Value::Double)),
            Acc::MaxF(m) => SavedAcc::Max(m.map(Value::Double)),
            Acc::MinS(m) => SavedAcc::Min(m.clone().map(Value::Str)),
            Acc::MaxS(m) => SavedAcc::Max(m.clone().map(Value::Str)),
            Acc::Avg { sum, count } => SavedAcc::Avg { sum: *sum, count: *count },
            Acc::Sketch(s) => SavedAcc::Sketch(s.saved(call)),
        }
    }

    /// The accumulator of `call` a checkpoint holds; `None` if it does not
    /// fit the call (a state of another job).
    pub(super) fn from_saved(saved: SavedAcc, call: &AggCall) -> Option<Acc> {
        let fresh = Acc::new(call)?;
        Some(match (fresh, saved) {
            (Acc::Count(_), SavedAcc::Count(n)) => Acc::Count(n),
            (Acc::SumI(_), SavedAcc::Sum(None)) => Acc::SumI(None),
            (Acc::SumI(_), SavedAcc::Sum(Some(Value::Int(x)))) => Acc::SumI(Some(x)),
            (Acc::SumF(_), SavedAcc::Sum(None)) => Acc::SumF(None),
            (Acc::SumF(_), SavedAcc::Sum(Some(Value::Double(x)))) => Acc::SumF(Some(x)),
            (Acc::MinI(_), SavedAcc::Min(v)) => Acc::MinI(int_of(v)?),
            (Acc::MaxI(_), SavedAcc::Max(v)) => Acc::MaxI(int_of(v)?),
            (Acc::MinF(_), SavedAcc::Min(v)) => Acc::MinF(double_of(v)?),
            (Acc::MaxF(_), SavedAcc::Max(v)) => Acc::MaxF(double_of(v)?),
            (Acc::MinS(_), SavedAcc::Min(v)) => Acc::MinS(str_of(v)?),
            (Acc::MaxS(_), SavedAcc::Max(v)) => Acc::MaxS(str_of(v)?),
            (Acc::Avg { .. }, SavedAcc::Avg { sum, count }) => Acc::Avg { sum, count },
            (Acc::Sketch(_), SavedAcc::Sketch(s)) => Acc::Sketch(Box::new(SketchAcc::from_saved(s, call)?)),
            _ => return None,
        })
    }
}

fn int_of(v: Option<Value>) -> Option<Option<i64>> {
    match v {
        None => Some(None),
        Some(Value::Int(x) | Value::Timestamp(x)) => Some(Some(x)),
        Some(_) => None,
    }
}

fn double_of(v: Option<Value>) -> Option<Option<f64>> {
    match v {
        None => Some(None),
        Some(Value::Double(x)) => Some(Some(x)),
        Some(_) => None,
    }
}

fn str_of(v: Option<Value>) -> Option<Option<String>> {
    match v {
        None => Some(None),
        Some(Value::Str(s)) => Some(Some(s)),
        Some(_) => None,
    }
}

/// Keeps the smaller (`min`) or larger string, allocating only on change.
fn set_str(m: &mut Option<String>, v: &str, min: bool) {
    match m {
        Some(cur) if (min && v < cur.as_str()) || (!min && v > cur.as_str()) => {
            cur.clear();
            cur.push_str(v);
        }
        Some(_) => {}
        None => *m = Some(v.to_string()),
    }
}

/// One aggregate's state in a checkpoint: the window operator's
/// accumulator before it was typed. Its serde layout is part of state
/// format 1 and MUST NOT change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SavedAcc {
    Count(i64),
    /// `None` until the first value.
    Sum(Option<Value>),
    Min(Option<Value>),
    Max(Option<Value>),
    Avg {
        sum: f64,
        count: i64,
    },
    /// Added after format 1 was first written: older snapshots never hold it.
    Sketch(SavedSketch),
}

/// One key's entry in a checkpoint (state format 1).
#[derive(Serialize, Deserialize)]
pub struct SnapshotEntry {
    pub key: Key,
    pub windows: Vec<(i64, Vec<SavedAcc>)>,
}

/// One window of a key in a checkpoint of state format 2 (session
/// windows, allowed lateness): its bounds, whether it has fired, and its
/// accumulators.
#[derive(Serialize, Deserialize)]
pub struct SavedWindow {
    pub start: i64,
    pub end: i64,
    pub fired: bool,
    pub accs: Vec<SavedAcc>,
}

/// One key's entry in a checkpoint of state format 2.
#[derive(Serialize, Deserialize)]
pub struct SnapshotEntryV2 {
    pub key: Key,
    pub windows: Vec<SavedWindow>,
}

/// An open window of a key: `[start, end)`.
#[derive(Debug)]
pub struct Window {
    pub start: i64,
    pub end: i64,
    /// It fired and is kept for its allowed lateness.
    pub fired: bool,
    pub accs: Vec<Acc>,
}

/// A key and its open windows.
#[derive(Debug)]
pub struct KeyEntry {
    pub key: Vec<Value>,
    /// `key_hash` of the key.
    pub hash: u64,
    /// The key's bincode encoding: the order windows of one end fire in,
    /// and keys are listed in a snapshot, as before state was typed.
    pub order: Vec<u8>,
    /// By start, ascending.
    pub windows: Vec<Window>,
}

impl KeyEntry {
    /// The window `[start, end)` (of a fixed-size kind: one per start),
    /// made with `fresh` if it is new (then `true`).
    pub fn window(&mut self, start: i64, end: i64, fresh: impl FnOnce() -> Vec<Acc>) -> (&mut Window, bool) {
        // Records mostly go to the newest window: search from the end.
        let pos = self.windows.iter().rposition(|w| w.start <= start);
        match pos {
            Some(i) if self.windows[i].start == start => (&mut self.windows[i], false),
            _ => {
                let at = pos.map_or(0, |i| i + 1);
                self.windows.insert(at, Window { start, end, fired: false, accs: fresh() });
                (&mut self.windows[at], true)
            }
        }
    }

    /// The window ending at `end`.
    pub fn window_ending(&mut self, end: i64) -> Option<&mut Window> {
        self.windows.iter_mut().find(|w| w.end == end)
    }

    /// Removes the window ending at `end`.
    pub fn take_window(&mut self, end: i64) -> Option<Window> {
        let i = self.windows.iter().position(|w| w.end == end)?;
        Some(self.windows.remove(i))
    }

    /// The checkpoint form of state format 2.
    pub fn saved_v2(&self, calls: &[AggCall]) -> SnapshotEntryV2 {
        SnapshotEntryV2 {
            key: Key(self.key.clone()),
            windows: self
                .windows
                .iter()
                .map(|w| SavedWindow {
                    start: w.start,
                    end: w.end,
                    fired: w.fired,
                    accs: w.accs.iter().zip(calls).map(|(a, c)| a.saved(c)).collect(),
                })
                .collect(),
        }
    }

    pub fn saved(&self, calls: &[AggCall]) -> SnapshotEntry {
        SnapshotEntry {
            key: Key(self.key.clone()),
            windows: self
                .windows
                .iter()
                .map(|w| (w.start, w.accs.iter().zip(calls).map(|(a, c)| a.saved(c)).collect()))
                .collect(),
        }
    }
}

/// Adds row `r` to each accumulator whose argument is present there:
/// aggregates skip the rows where their argument is null, as SQL's do
/// (`present[i]` is the validity of argument `i`, `None` when it has no
/// nulls). The window operator and the running aggregate both add rows
/// through here.
pub fn add_row(accs: &mut [Acc], readers: &[ArgReader<'_>], present: &[Option<Validity>], r: usize) {
    for ((acc, reader), present) in accs.iter_mut().zip(readers).zip(present) {
        if present.as_ref().is_none_or(|p| p.get(r)) {
            acc.add(reader, r);
        }
    }
}

/// A key's windows of state format 1 (windows `size` long, none fired) in
/// the form of format 2.
pub fn v1_windows(saved: Vec<(i64, Vec<SavedAcc>)>, size: i64) -> Vec<SavedWindow> {
    saved.into_iter().map(|(start, accs)| SavedWindow { start, end: start + size, fired: false, accs }).collect()
}

/// Restores a checkpoint's windows of one key; `None` if they do not fit
/// the aggregates (another job's state).
pub fn restore_windows_v2(saved: Vec<SavedWindow>, calls: &[AggCall]) -> Option<Vec<Window>> {
    let mut out = Vec::with_capacity(saved.len());
    for w in saved {
        if w.accs.len() != calls.len() || w.end <= w.start {
            return None;
        }
        let accs = w.accs.into_iter().zip(calls).map(|(a, c)| Acc::from_saved(a, c)).collect::<Option<Vec<_>>>()?;
        out.push(Window { start: w.start, end: w.end, fired: w.fired, accs });
    }
    Some(out)
}

/// The bincode encoding of a key, as timers were ordered by.
pub fn key_order(key: &[Value]) -> Vec<u8> {
    // A Vec of our own values always encodes.
    bincode::serde::encode_to_vec(Key(key.to_vec()), bincode::config::standard()).unwrap_or_default()
}

/// A key column of a batch, read without matching on its type per row.
#[derive(Clone, Copy)]
pub enum KeyColumn<'a> {
    Str(&'a crate::data::StrColumn),
    Int(&'a [i64]),
    Timestamp(&'a [i64]),
    Double(&'a [f64]),
    Bool(&'a [bool]),
}

impl<'a> KeyColumn<'a> {
    /// The key columns `key` of `columns`; `None` if one is missing.
    pub fn of(columns: &'a [Column], key: &[usize]) -> Option<Vec<KeyColumn<'a>>> {
        key.iter()
            .map(|k| {
                let c = columns.get(*k)?;
                Some(match (&c.data, c.ty) {
                    (Data::Str(s), _) => KeyColumn::Str(s),
                    (Data::I64(v), DataType::Timestamp) => KeyColumn::Timestamp(v),
                    (Data::I64(v), _) => KeyColumn::Int(v),
                    (Data::F64(v), _) => KeyColumn::Double(v),
                    (Data::Bool(v), _) => KeyColumn::Bool(v),
                    // The checker refuses array keys.
                    (Data::List(_), _) => return None,
                })
            })
            .collect()
    }

    /// Whether row `row` holds `v`, as keys compare (doubles by bits).
    #[inline]
    fn eq(&self, row: usize, v: &Value) -> bool {
        match (self, v) {
            (KeyColumn::Str(c), Value::Str(s)) => c.bytes(row) == s.as_bytes(),
            (KeyColumn::Int(c), Value::Int(x)) | (KeyColumn::Timestamp(c), Value::Timestamp(x)) => {
                c.get(row) == Some(x)
            }
            (KeyColumn::Double(c), Value::Double(x)) => c.get(row).is_some_and(|d| d.to_bits() == x.to_bits()),
            (KeyColumn::Bool(c), Value::Bool(x)) => c.get(row) == Some(x),
            _ => false,
        }
    }

    fn value(&self, row: usize) -> Value {
        let v = match self {
            KeyColumn::Str(c) => Some(Value::Str(c.get(row).to_string())),
            KeyColumn::Int(c) => c.get(row).map(|x| Value::Int(*x)),
            KeyColumn::Timestamp(c) => c.get(row).map(|x| Value::Timestamp(*x)),
            KeyColumn::Double(c) => c.get(row).map(|x| Value::Double(*x)),
            KeyColumn::Bool(c) => c.get(row).map(|x| Value::Bool(*x)),
        };
        v.unwrap_or(Value::Int(0))
    }
}

/// The keys of one window operator.
#[derive(Debug, Default)]
pub struct KeyTable {
    table: HashTable<u32>,
    entries: Vec<Option<KeyEntry>>,
    free: Vec<u32>,
}

impl KeyTable {
    /// The slot of the key at `row` of the key columns, added if it is new.
    #[inline]
    pub fn find_or_insert(&mut self, hash: u64, key: &[KeyColumn<'_>], row: usize) -> u32 {
        let entries = &self.entries;
        let found = self.table.find(hash, |&slot| {
            entries[slot as usize]
                .as_ref()
                .is_some_and(|e| e.hash == hash && e.key.iter().zip(key).all(|(v, c)| c.eq(row, v)))
        });
        if let Some(slot) = found {
            return *slot;
        }
        let values: Vec<Value> = key.iter().map(|c| c.value(row)).collect();
        self.insert(values, hash)
    }

    /// Adds a key known to be new.
    pub fn insert(&mut self, key: Vec<Value>, hash: u64) -> u32 {
        let order = key_order(&key);
        let entry = KeyEntry { key, hash, order, windows: Vec::new() };
        let slot = match self.free.pop() {
            Some(s) => {
                self.entries[s as usize] = Some(entry);
                s
            }
            None => {
                self.entries.push(Some(entry));
                (self.entries.len() - 1) as u32
            }
        };
        let entries = &self.entries;
        self.table.insert_unique(hash, slot, |s| entries[*s as usize].as_ref().map_or(0, |e| e.hash));
        slot
    }

    /// The slot of an owned key (restore).
    pub fn find_owned(&self, key: &[Value], hash: u64) -> Option<u32> {
        let entries = &self.entries;
        self.table
            .find(hash, |&slot| {
                entries[slot as usize].as_ref().is_some_and(|e| {
                    e.key.len() == key.len() && e.key.iter().zip(key).all(|(a, b)| ValueRef::from(b).key_eq(a))
                })
            })
            .copied()
    }

    pub fn get(&self, slot: u32) -> Option<&KeyEntry> {
        self.entries.get(slot as usize).and_then(Option::as_ref)
    }

    pub fn get_mut(&mut self, slot: u32) -> Option<&mut KeyEntry> {
        self.entries.get_mut(slot as usize).and_then(Option::as_mut)
    }

    /// Forgets a key (once it has no windows).
    pub fn remove(&mut self, slot: u32) {
        let Some(hash) = self.get(slot).map(|e| e.hash) else { return };
        if let Ok(e) = self.table.find_entry(hash, |s| *s == slot) {
            e.remove();
        }
        self.entries[slot as usize] = None;
        self.free.push(slot);
    }

    pub fn entries(&self) -> impl Iterator<Item = &KeyEntry> {
        self.entries.iter().flatten()
    }

    /// Every key with its slot.
    pub fn slots(&self) -> impl Iterator<Item = (u32, &KeyEntry)> {
        self.entries.iter().enumerate().filter_map(|(i, e)| e.as_ref().map(|e| (i as u32, e)))
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.table.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Batch;
    use crate::keygroup::key_hash;

    #[test]
    fn keys_are_found_from_columns_and_allocated_once() {
        let types = [DataType::String, DataType::Long];
        let rows: Vec<Vec<Value>> = [("/a", 1), ("/b", 1), ("/a", 1), ("/a", 2)]
            .iter()
            .map(|(p, n)| vec![Value::Str(p.to_string()), Value::Int(*n)])
            .collect();
        let b = Batch::from_values(&types, &rows).expect("fits");
        let mut t = KeyTable::default();
        let cols = KeyColumn::of(&b.columns, &[0, 1]).expect("key columns");
        let slots: Vec<u32> =
            rows.iter().enumerate().map(|(r, row)| t.find_or_insert(key_hash(row.iter()), &cols, r)).collect();
        assert_eq!(slots[0], slots[2]);
        assert_ne!(slots[0], slots[1]);
        assert_ne!(slots[0], slots[3]);
        assert_eq!(t.len(), 3);
        t.remove(slots[1]);
        assert_eq!(t.len(), 2);
        assert_eq!(t.find_owned(&rows[1], key_hash(rows[1].iter())), None);
        assert_eq!(t.find_owned(&rows[3], key_hash(rows[3].iter())), Some(slots[3]));
        // A freed slot is reused.
        let again = t.find_or_insert(key_hash(rows[1].iter()), &cols, 1);
        assert_eq!(again, slots[1]);
    }

    #[test]
    fn first_and_last_of_no_value_are_null_as_other_aggregates() {
        // Before: 0 and "" (a value nobody wrote).
        for (func, ty) in [(AggFunc::First, DataType::Long), (AggFunc::Last, DataType::String)] {
            let call = AggCall { func, arg: None, arg_type: ty, result_type: ty };
            let acc = Acc::new(&call).expect("an accumulator");
            let mut col = Column::empty(ty, 2);
            acc.push_result(&mut col);
            let mut seen = Acc::new(&call).expect("an accumulator");
            let values = [5i64];
            let reader = match ty {
                DataType::Long => ArgReader::I64(I64s::Slice(&values)),
                _ => ArgReader::Str(Strs::Scalar("x")),
            };
            add_row(std::slice::from_mut(&mut seen), &[reader], &[None], 0);
            seen.push_result(&mut col);
            let want = if ty == DataType::Long { Value::Int(5) } else { Value::Str("x".into()) };
            assert_eq!((col.value(0), col.value(1)), (Some(Value::Null), Some(want)), "{func:?}");
        }
    }

    #[test]
    fn windows_stay_ordered_by_start() {
        let mut e = KeyEntry { key: vec![], hash: 0, order: vec![], windows: vec![] };
        for s in [10, 0, 20, 10, 5] {
            e.window(s, s + 10, Vec::new);
        }
        assert_eq!(e.windows.iter().map(|w| w.start).collect::<Vec<_>>(), vec![0, 5, 10, 20]);
        assert!(!e.window(5, 15, Vec::new).1);
        assert!(e.take_window(20).is_some());
        assert!(e.take_window(20).is_none());
    }
}
