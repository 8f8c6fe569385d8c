//! `key_by k | top N by f desc[, g asc…] [as rank]` without a window: the
//! N best rows per key, as Flink SQL's Top-N over an append-only input
//! (`AppendOnlyTopNFunction`) keeps them.
//!
//! Each key holds at most N rows, best first; a new row goes after the
//! rows it ties with (ties in arrival order), and a row no better than
//! the last of a full top is dropped at once. Without a rank field a row
//! entering the top is emitted `+I` and the row it pushes out `-D`. With
//! one (`as rank`) the output is keyed by key and rank: the new row takes
//! its rank and every rank below it changes its row (`-U` the old row with
//! that rank, `+U` the new one), and a rank not held before is `+I`, as
//! Flink's operator emits them with a row number. The emitted rows carry
//! the record's event time.
//!
//! With `ttl`, a key not updated for that long (processing time) is
//! forgotten by a timer, emitting nothing. State is the kept rows per key,
//! snapshotted per key group (format 1: the key, its rows best first, and
//! when they were last written) and redistributed on rescale.

use crate::data::{Batch, RowKind, ValueRef};
use crate::expr::EvalError;
use crate::keygroup::{key_group, key_hash, Key};
use crate::operators::keyed::{decode_groups, encode_groups, find_slots, SlotTimers};
use crate::operators::window_state::KeyTable;
use crate::operators::{KeyedSnapshot, Operator, OperatorError};
use crate::record::{Signal, Value};
use flowc_compiler::ir::{DataType, KeyedTop, Schema};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;

/// Format of a key group's bytes in a snapshot; bump on change.
const SNAPSHOT_VERSION: u8 = 1;

/// One key in a checkpoint.
#[derive(Serialize, Deserialize)]
struct TopEntry {
    key: Key,
    /// Best first.
    rows: Vec<Vec<Value>>,
    /// When the key's rows were last written, in processing time.
    written: i64,
}

/// A key's top rows.
#[derive(Debug, Clone, Default)]
struct Kept {
    rows: Vec<Vec<Value>>,
    written: i64,
}

pub struct KeyedTopOperator {
    name: String,
    spec: KeyedTop,
    max_parallelism: u32,
    keys: KeyTable,
    kept: Vec<Option<Kept>>,
    expiry: SlotTimers,
    input: Schema,
    /// The output's column types: the input's, then the rank's.
    out_types: Vec<DataType>,
    hashes: Vec<u64>,
    slots: Vec<u32>,
    clock: fn() -> i64,
}

/// SQL's order of two values of one column, nulls first (smallest), as
/// Flink orders them by default.
fn compare(a: ValueRef<'_>, b: ValueRef<'_>) -> Ordering {
    match (a, b) {
        (ValueRef::Null, ValueRef::Null) => Ordering::Equal,
        (ValueRef::Null, _) => Ordering::Less,
        (_, ValueRef::Null) => Ordering::Greater,
        (ValueRef::Int(x) | ValueRef::Timestamp(x), ValueRef::Int(y) | ValueRef::Timestamp(y)) => x.cmp(&y),
        (ValueRef::Double(x), ValueRef::Double(y)) => x.total_cmp(&y),
        (ValueRef::Str(x), ValueRef::Str(y)) => x.cmp(y),
        (ValueRef::Bool(x), ValueRef::Bool(y)) => x.cmp(&y),
        _ => Ordering::Equal,
    }
}

/// Appends one row (and its rank) to `out` with its time and kind.
fn push(out: &mut Batch, row: &[Value], rank: Option<usize>, time: i64, kind: RowKind) {
    let rank = rank.map(|r| ValueRef::Int(r as i64));
    for (c, v) in out.columns.iter_mut().zip(row.iter().map(ValueRef::from).chain(rank)) {
        c.push_value(v);
    }
    out.timestamps.push(time);
    if let Some(k) = &mut out.kinds {
        k.push(kind);
    }
}

impl KeyedTopOperator {
    /// The operator for `spec`; fails on a spec the checker would refuse
    /// (a bug).
    pub fn new(
        name: String,
        spec: KeyedTop,
        input: &Schema,
        output: &Schema,
        max_parallelism: u32,
    ) -> Result<KeyedTopOperator, OperatorError> {
        let fields = input.fields.len();
        let ranked = usize::from(spec.rank_field.is_some());
        if spec.order.iter().any(|(f, _)| *f >= fields) || output.fields.len() != fields + ranked {
            return Err(OperatorError::Setup {
                operator: name,
                message: "a sort field or the rank is out of range (this is a bug in flowc)".into(),
            });
        }
        Ok(KeyedTopOperator {
            name,
            spec,
            max_parallelism,
            keys: KeyTable::default(),
            kept: Vec::new(),
            expiry: SlotTimers::default(),
            input: input.clone(),
            out_types: output.fields.iter().map(|f| f.ty).collect(),
            hashes: Vec::new(),
            slots: Vec::new(),
            clock: crate::clock::now_ms,
        })
    }

    /// The number of keys held (tests).
    pub fn key_count(&self) -> usize {
        self.keys.entries().count()
    }

    /// How row `r` of `batch` compares with a kept row: `Less` if it
    /// ranks before it.
    fn order(&self, batch: &Batch, r: usize, kept: &[Value]) -> Ordering {
        for &(f, descending) in &self.spec.order {
            let a = batch.columns[f].value_ref(r).unwrap_or(ValueRef::Null);
            let b = kept.get(f).map_or(ValueRef::Null, ValueRef::from);
            let o = compare(a, b);
            let o = if descending { o.reverse() } else { o };
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    }

    fn set(&mut self, slot: u32, kept: Kept, new: bool) {
        let i = slot as usize;
        if self.kept.len() <= i {
            self.kept.resize(i + 1, None);
        }
        if let (Some(ttl), true) = (self.spec.ttl_ms, new) {
            self.expiry.add(kept.written.saturating_add(ttl as i64), slot);
        }
        self.kept[i] = Some(kept);
    }
}

impl Operator for KeyedTopOperator {
    fn process(&mut self, input: Batch, out: &mut Vec<Batch>) -> Result<(), OperatorError> {
        let n_rows = input.len();
        if n_rows == 0 {
            return Ok(());
        }
        let now = (self.clock)();
        let mut own = std::mem::take(&mut self.hashes);
        let mut slots = std::mem::take(&mut self.slots);
        if !find_slots(&mut self.keys, &input, &self.spec.key, &mut own, &mut slots) {
            let e = EvalError::internal("a key column is missing");
            return Err(OperatorError::Eval { operator: self.name.clone(), message: e.describe(&input, &self.input) });
        }
        let n = usize::try_from(self.spec.n).unwrap_or(usize::MAX);
        let ranked = self.spec.rank_field.is_some();
        let mut changes = Batch::empty(&self.out_types, 2 * n_rows);
        changes.kinds = Some(Vec::with_capacity(2 * n_rows));
        for (r, &slot) in slots.iter().enumerate() {
            let time = input.timestamps[r];
            let mut kept = match self.kept.get_mut(slot as usize).and_then(Option::take) {
                // Expired but not yet swept: forgotten all the same.
                Some(k) if self.spec.ttl_ms.is_some_and(|ttl| k.written.saturating_add(ttl as i64) <= now) => None,
                other => other,
            };
            let new = kept.is_none();
            let k = kept.get_or_insert_with(Kept::default);
            // After every row it ties with: ties rank in arrival order.
            let at = k.rows.partition_point(|row| self.order(&input, r, row) != Ordering::Less);
            if at >= n {
                // No better than the last of a full top.
                if !new {
                    self.set(slot, kept.unwrap_or_default(), false);
                }
                continue;
            }
            let row = input.row(r);
            let before = k.rows.len();
            k.rows.insert(at, row);
            if ranked {
                // Each rank from the new row's down changes its row.
                for rank in (at + 1)..=before.min(n) {
                    push(&mut changes, &k.rows[rank], Some(rank), time, RowKind::UpdateBefore);
                    push(&mut changes, &k.rows[rank - 1], Some(rank), time, RowKind::UpdateAfter);
                }
                if before < n {
                    push(&mut changes, &k.rows[before], Some(before + 1), time, RowKind::Insert);
                }
                k.rows.truncate(n);
            } else {
                if k.rows.len() > n {
                    if let Some(gone) = k.rows.pop() {
                        push(&mut changes, &gone, None, time, RowKind::Delete);
                    }
                }
                push(&mut changes, &k.rows[at], None, time, RowKind::Insert);
            }
            k.written = now;
            let kept = kept.unwrap_or_default();
            self.set(slot, kept, new);
        }
        self.hashes = own;
        self.slots = slots;
        if !changes.is_empty() {
            out.push(changes);
        }
        Ok(())
    }

    fn on_timer(&mut self, now_ms: i64, _out: &mut Vec<Batch>) -> Result<Option<Signal>, OperatorError> {
        let Some(ttl) = self.spec.ttl_ms else { return Ok(None) };
        for (_, slot) in self.expiry.due(now_ms) {
            let Some(Some(k)) = self.kept.get(slot as usize) else { continue };
            let at = k.written.saturating_add(ttl as i64);
            if at <= now_ms {
                self.keys.remove(slot);
                self.kept[slot as usize] = None;
            } else {
                self.expiry.add(at, slot);
            }
        }
        Ok(None)
    }

    fn snapshot(&self) -> KeyedSnapshot {
        let entries = self.keys.slots().filter_map(|(slot, e)| {
            let Some(Some(k)) = self.kept.get(slot as usize) else { return None };
            let entry = TopEntry { key: Key(e.key.clone()), rows: k.rows.clone(), written: k.written };
            Some((key_group(e.hash, self.max_parallelism), &e.order[..], entry))
        });
        encode_groups(SNAPSHOT_VERSION, entries)
    }

    fn restore(&mut self, state: KeyedSnapshot) -> Result<(), OperatorError> {
        let restored: Vec<TopEntry> = decode_groups(&self.name, SNAPSHOT_VERSION, &state)?;
        let width = self.input.fields.len();
        for e in restored {
            if e.key.0.len() != self.spec.key.len() || e.rows.iter().any(|r| r.len() != width) {
                return Err(OperatorError::Restore {
                    operator: self.name.clone(),
                    message: "the state has keys or rows of another length than the job's".into(),
                });
            }
            let hash = key_hash(&e.key.0);
            let slot = match self.keys.find_owned(&e.key.0, hash) {
                Some(s) => s,
                None => self.keys.insert(e.key.0, hash),
            };
            self.set(slot, Kept { rows: e.rows, written: e.written }, true);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keygroup::{key_group_range, subtask_for_key_group};
    use flowc_compiler::ir::Field;
    use proptest::prelude::*;
    use std::collections::HashMap;

    const MAX_PARALLELISM: u32 = 128;

    fn schema(ranked: bool) -> (Schema, Schema) {
        let f = |n: &str, t| Field::new(n, t);
        let input = Schema {
            name: None,
            fields: vec![f("id", DataType::String), f("price", DataType::Long), f("seq", DataType::Long)],
        };
        let mut output = input.clone();
        if ranked {
            output.fields.push(f("rank", DataType::Long));
        }
        (input, output)
    }

    /// The `n` highest prices per id, ties by `seq` ascending when
    /// `by_seq`, else in arrival order.
    fn op(n: u64, ranked: bool, by_seq: bool, ttl_ms: Option<u64>) -> KeyedTopOperator {
        let (input, output) = schema(ranked);
        let mut order = vec![(1, true)];
        if by_seq {
            order.push((2, false));
        }
        let spec = KeyedTop { key: vec![0], n, order, rank_field: ranked.then_some(3), ttl_ms };
        KeyedTopOperator::new("t".into(), spec, &input, &output, MAX_PARALLELISM).expect("a good spec")
    }

    fn batch(rows: &[(&str, i64, i64)]) -> Batch {
        let rows: Vec<(i64, Vec<Value>)> = rows
            .iter()
            .map(|(id, price, seq)| (0, vec![Value::Str(id.to_string()), Value::Int(*price), Value::Int(*seq)]))
            .collect();
        Batch::from_rows(&[DataType::String, DataType::Long, DataType::Long], &rows).expect("fits")
    }

    /// `(kind, id, price, seq, rank)`; rank 0 without one.
    type Change = (RowKind, String, i64, i64, i64);

    fn changes(out: &[Batch]) -> Vec<Change> {
        let mut v = Vec::new();
        for b in out {
            for (r, (_, row)) in b.rows().into_iter().enumerate() {
                let int = |i: usize| if let Some(Value::Int(x)) = row.get(i) { *x } else { 0 };
                let Value::Str(id) = &row[0] else { panic!("{row:?}") };
                v.push((b.kind(r), id.clone(), int(1), int(2), int(3)));
            }
        }
        v
    }

    #[test]
    fn without_a_rank_a_row_enters_with_insert_and_pushes_one_out_with_delete() {
        use RowKind::*;
        let mut t = op(2, false, false, None);
        let mut out = Vec::new();
        t.process(batch(&[("a", 10, 1), ("a", 20, 2), ("a", 5, 3), ("a", 15, 4), ("a", 15, 5)]), &mut out).unwrap();
        // 5 is below a full top; 15 pushes 10 out; the second 15 ties with the last: dropped.
        assert_eq!(
            changes(&out),
            vec![
                (Insert, "a".into(), 10, 1, 0),
                (Insert, "a".into(), 20, 2, 0),
                (Delete, "a".into(), 10, 1, 0),
                (Insert, "a".into(), 15, 4, 0),
            ]
        );
    }

    #[test]
    fn with_a_rank_every_rank_below_the_new_row_is_updated() {
        use RowKind::*;
        let mut t = op(3, true, false, None);
        let mut out = Vec::new();
        t.process(batch(&[("a", 10, 1), ("a", 30, 2)]), &mut out).unwrap();
        assert_eq!(
            changes(&out),
            vec![
                (Insert, "a".into(), 10, 1, 1),
                (UpdateBefore, "a".into(), 10, 1, 1),
                (UpdateAfter, "a".into(), 30, 2, 1),
                (Insert, "a".into(), 10, 1, 2),
            ]
        );
        out.clear();
        // Full at 3, then 20 goes to rank 2: ranks 2 and 3 change, 5 leaves.
        t.process(batch(&[("a", 5, 3), ("a", 20, 4)]), &mut out).unwrap();
        assert_eq!(
            changes(&out),
            vec![
                (Insert, "a".into(), 5, 3, 3),
                (UpdateBefore, "a".into(), 10, 1, 2),
                (UpdateAfter, "a".into(), 20, 4, 2),
                (UpdateBefore, "a".into(), 5, 3, 3),
                (UpdateAfter, "a".into(), 10, 1, 3),
            ]
        );
    }

    #[test]
    fn a_second_sort_field_orders_the_ties_of_the_first() {
        let mut t = op(1, true, true, None);
        let mut out = Vec::new();
        t.process(batch(&[("a", 10, 5), ("a", 10, 3), ("a", 10, 4)]), &mut out).unwrap();
        assert_eq!(changes(&out).last(), Some(&(RowKind::UpdateAfter, "a".to_string(), 10, 3, 1)));
    }

    #[test]
    fn ttl_forgets_a_key_and_a_foreign_snapshot_is_refused() {
        let mut t = op(2, false, false, Some(1000));
        t.clock = || 5_000;
        t.process(batch(&[("a", 1, 1), ("b", 2, 2)]), &mut Vec::new()).unwrap();
        let mut bad = t.snapshot();
        bad.key_groups[0].1[0] = 7;
        let e = op(2, false, false, None).restore(bad).unwrap_err().to_string();
        assert!(e.contains("state format 7"), "{e}");
        t.on_timer(6_000, &mut Vec::new()).unwrap();
        assert_eq!(t.key_count(), 0);
        assert!(t.snapshot().key_groups.is_empty());
    }

    fn restore_at(snap: &KeyedSnapshot, p: u32, n: u64, ranked: bool) -> Vec<KeyedTopOperator> {
        (0..p)
            .map(|i| {
                let range = key_group_range(i, p, MAX_PARALLELISM);
                let mine = snap.key_groups.iter().filter(|(kg, _)| range.contains(kg)).cloned().collect();
                let mut o = op(n, ranked, false, None);
                o.restore(KeyedSnapshot { key_groups: mine }).expect("restores");
                o
            })
            .collect()
    }

    fn run(ops: &mut [KeyedTopOperator], records: &[(String, i64, i64)], chunk: usize) -> Vec<Change> {
        let p = ops.len() as u32;
        let mut routed = vec![Vec::new(); ops.len()];
        for (id, price, seq) in records {
            let kg = key_group(key_hash(&[Value::Str(id.clone())]), MAX_PARALLELISM);
            routed[subtask_for_key_group(kg, p, MAX_PARALLELISM) as usize].push((id.as_str(), *price, *seq));
        }
        let mut out = Vec::new();
        for (o, recs) in ops.iter_mut().zip(routed) {
            for c in recs.chunks(chunk.max(1)) {
                o.process(batch(c), &mut out).expect("processes");
            }
        }
        changes(&out)
    }

    /// The final table of a changelog: `(id, price, seq, rank)` → count;
    /// a retraction must find its row.
    fn compact(changes: &[Change], table: &mut HashMap<(String, i64, i64, i64), i64>) {
        for (kind, id, price, seq, rank) in changes {
            let row = (id.clone(), *price, *seq, *rank);
            if kind.is_retraction() {
                let n = table.get_mut(&row).expect("a retraction of a row the table holds");
                *n -= 1;
                if *n == 0 {
                    table.remove(&row);
                }
            } else {
                *table.entry(row).or_default() += 1;
            }
        }
    }

    /// The model: per id, every row stably sorted by price descending
    /// (ties in arrival order), the first `n`, ranked 1.. when `ranked`.
    fn model(records: &[(String, i64, i64)], n: usize, ranked: bool) -> HashMap<(String, i64, i64, i64), i64> {
        let mut per_key: HashMap<&str, Vec<(i64, i64)>> = HashMap::new();
        for (id, price, seq) in records {
            per_key.entry(id).or_default().push((*price, *seq));
        }
        let mut table = HashMap::new();
        for (id, mut rows) in per_key {
            rows.sort_by_key(|r| std::cmp::Reverse(r.0));
            for (i, (price, seq)) in rows.into_iter().take(n).enumerate() {
                let rank = if ranked { i as i64 + 1 } else { 0 };
                *table.entry((id.to_string(), price, seq, rank)).or_default() += 1;
            }
        }
        table
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// The changelog applied to a table equals the model's top rows
        /// per key, also across a snapshot at `p` restored at `p2`.
        #[test]
        fn the_changelog_compacted_equals_the_sorted_top_rows_per_key(
            prices in proptest::collection::vec((0u8..6, 0i64..20), 0..300),
            cut in 0usize..300,
            n in 1u64..5,
            ranked in any::<bool>(),
            p in 1u32..4,
            p2 in 1u32..5,
            chunk in 1usize..50,
        ) {
            let records: Vec<(String, i64, i64)> =
                prices.into_iter().enumerate().map(|(i, (k, price))| (format!("k{k}"), price, i as i64)).collect();
            let cut = cut.min(records.len());
            let (before, after) = records.split_at(cut);
            let mut first: Vec<KeyedTopOperator> = (0..p).map(|_| op(n, ranked, false, None)).collect();
            let mut table = HashMap::new();
            compact(&run(&mut first, before, chunk), &mut table);
            prop_assert_eq!(&table, &model(before, n as usize, ranked));
            let mut snap = KeyedSnapshot::default();
            for o in &first {
                snap.key_groups.extend(o.snapshot().key_groups);
            }
            snap.key_groups.sort_by_key(|g| g.0);
            let mut second = restore_at(&snap, p2, n, ranked);
            compact(&run(&mut second, after, chunk), &mut table);
            prop_assert_eq!(&table, &model(&records, n as usize, ranked));
        }
    }
}
