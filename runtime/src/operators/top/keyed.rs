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
//! in the typed row encoding ([`KeptRows`]): a record is ranked against
//! them and they are emitted column by column, without an owned value per
//! record. It is snapshotted per key group (format 2: the rows as columns,
//! each key's best first, with how many each key holds and when they were
//! last written, in key order; format 1, owned rows per key, is still
//! read) and redistributed on rescale.

use crate::data::{Batch, Column, Data, RowKind};
use crate::expr::EvalError;
use crate::keygroup::{key_group, Key};
use crate::operators::kept_rows::{
    decode_group, deltas, encode_group, restore_columns, save_columns, undo_deltas, KeptRows, SavedColumn,
};
use crate::operators::keyed::{find_slots, SlotTimers};
use crate::operators::window_state::KeyTable;
use crate::operators::{KeyGroupWriter, KeyedSnapshot, Operator, OperatorError, LAYOUT_HINT};
use crate::record::{Signal, Value, NO_TIMESTAMP};
use flowc_compiler::ir::{DataType, KeyedTop, Schema};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::collections::BTreeMap;

/// Format of a key group's bytes in a snapshot ([`TopGroup`]); bump on
/// change.
const SNAPSHOT_VERSION: u8 = 2;
/// The format before the rows were typed: a [`TopEntry`] per key.
const SNAPSHOT_VERSION_1: u8 = 1;

/// One key group in a checkpoint (format 2): its keys' rows, in key order.
#[derive(Serialize, Deserialize)]
struct TopGroup {
    /// Per key: how many rows it holds (at least one).
    counts: Vec<u32>,
    /// Per key: when its rows were last written, in processing time, as
    /// [`deltas`]; with `ttl` only (a restore without them writes the
    /// rows anew).
    written: Vec<i64>,
    /// The rows, each key's best first; their key fields are the key.
    columns: Vec<SavedColumn>,
}

/// One key in a checkpoint of format 1.
#[derive(Serialize, Deserialize)]
struct TopEntry {
    key: Key,
    /// Best first.
    rows: Vec<Vec<Value>>,
    /// When the key's rows were last written, in processing time.
    written: i64,
}

/// A key's top rows: their numbers in [`KeptRows`], best first.
#[derive(Debug, Clone, Default)]
struct Kept {
    rows: Vec<u32>,
    written: i64,
}

pub struct KeyedTopOperator {
    name: String,
    spec: KeyedTop,
    max_parallelism: u32,
    keys: KeyTable,
    kept: Vec<Option<Kept>>,
    rows: KeptRows,
    expiry: SlotTimers,
    input: Schema,
    types: Vec<DataType>,
    /// The rank's type, if the output has one.
    rank_type: Option<DataType>,
    hashes: Vec<u64>,
    slots: Vec<u32>,
    clock: fn() -> i64,
}

/// How row `r` of `batch` compares with kept row `row` by the sort fields
/// `order`: `Less` if it ranks before it.
fn order(order: &[(usize, bool)], rows: &KeptRows, batch: &Batch, r: usize, row: u32) -> Ordering {
    for &(f, descending) in order {
        let o = rows.cmp_field(f, batch, r, row);
        let o = if descending { o.reverse() } else { o };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

/// The changes of one batch, as kept rows with their ranks and kinds.
#[derive(Default)]
struct Changes {
    rows: Vec<u32>,
    ranks: Vec<i64>,
    kinds: Vec<RowKind>,
    times: Vec<i64>,
}

impl Changes {
    fn push(&mut self, row: u32, rank: usize, time: i64, kind: RowKind) {
        self.rows.push(row);
        self.ranks.push(rank as i64);
        self.kinds.push(kind);
        self.times.push(time);
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
        let rank_type = spec.rank_field.and_then(|f| output.fields.get(f)).map(|f| f.ty);
        if spec.order.iter().any(|(f, _)| *f >= fields)
            || output.fields.len() != fields + ranked
            || rank_type.is_some_and(|t| !matches!(t, DataType::Int | DataType::Long))
        {
            return Err(OperatorError::Setup {
                operator: name,
                message: "a sort field or the rank is out of range (this is a bug in flowc)".into(),
            });
        }
        let types: Vec<DataType> = input.fields.iter().map(|f| f.ty).collect();
        Ok(KeyedTopOperator {
            name,
            spec,
            max_parallelism,
            keys: KeyTable::default(),
            kept: Vec::new(),
            rows: KeptRows::new(&types),
            expiry: SlotTimers::default(),
            input: input.clone(),
            types,
            rank_type,
            hashes: Vec::new(),
            slots: Vec::new(),
            clock: crate::clock::now_ms,
        })
    }

    /// The number of keys held (tests).
    pub fn key_count(&self) -> usize {
        self.keys.entries().count()
    }

    /// Drops the rows no key holds, once there are enough of them.
    fn compact(&mut self) {
        if self.rows.wants_compaction() {
            self.rows.compact(self.kept.iter_mut().flatten().flat_map(|k| k.rows.iter_mut()));
        }
    }

    /// Keeps the rows of `batch` for their keys, `counts[i]` rows for the
    /// i-th key (best first), written at `written[i]` (a restore).
    fn keep_all(&mut self, batch: Batch, counts: &[u32], written: &[i64]) -> Result<(), OperatorError> {
        let fail = |m: &str| OperatorError::Restore { operator: self.name.clone(), message: m.into() };
        let total: usize = counts.iter().map(|c| *c as usize).sum();
        if batch.check_layout(&self.types).is_err() || written.len() != counts.len() || total != batch.len() {
            return Err(fail("the state has rows of another layout than the job's"));
        }
        let (mut own, mut slots) = (Vec::new(), Vec::new());
        if !find_slots(&mut self.keys, &batch, &self.spec.key, &mut own, &mut slots) {
            return Err(fail("the state's rows lack a key field"));
        }
        let first = self.rows.extend(&batch);
        let mut start = 0;
        for (&count, &written) in counts.iter().zip(written) {
            if count == 0 {
                // A key without rows (format 1 could hold one): nothing to keep.
                continue;
            }
            let end = start + count as usize;
            let Some(&slot) = slots.get(start) else { continue };
            if slots[start..end].iter().any(|s| *s != slot) {
                return Err(fail("the state has a key's rows under another key"));
            }
            let i = slot as usize;
            if self.kept.len() <= i {
                self.kept.resize(i + 1, None);
            }
            if let Some(old) = self.kept[i].take() {
                old.rows.iter().for_each(|r| self.rows.release(*r));
            }
            let rows = (start..end).map(|r| first + r as u32).collect();
            self.kept[i] = Some(Kept { rows, written });
            if let Some(ttl) = self.spec.ttl_ms {
                self.expiry.add(written.saturating_add(ttl as i64), slot);
            }
            start = end;
        }
        Ok(())
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
        let ranked = self.rank_type.is_some();
        // Rows released here stay readable until the compaction after the
        // changes are gathered.
        let mut changes = Changes::default();
        for (r, &slot) in slots.iter().enumerate() {
            let time = input.timestamps[r];
            let i = slot as usize;
            if self.kept.len() <= i {
                self.kept.resize(i + 1, None);
            }
            // Expired but not yet swept: forgotten all the same.
            if let Some(k) = &self.kept[i] {
                if self.spec.ttl_ms.is_some_and(|ttl| k.written.saturating_add(ttl as i64) <= now) {
                    k.rows.iter().for_each(|row| self.rows.release(*row));
                    self.kept[i] = None;
                }
            }
            let new = self.kept[i].is_none();
            let held = self.kept[i].as_ref().map_or(&[][..], |k| &k.rows[..]);
            // After every row it ties with: ties rank in arrival order.
            let at = held.partition_point(|&row| order(&self.spec.order, &self.rows, &input, r, row) != Ordering::Less);
            if at >= n {
                // No better than the last of a full top.
                continue;
            }
            let row = self.rows.push(&input, r);
            let k = self.kept[i].get_or_insert_with(Kept::default);
            let before = k.rows.len();
            k.rows.insert(at, row);
            if ranked {
                // Each rank from the new row's down changes its row.
                for rank in (at + 1)..=before.min(n) {
                    changes.push(k.rows[rank], rank, time, RowKind::UpdateBefore);
                    changes.push(k.rows[rank - 1], rank, time, RowKind::UpdateAfter);
                }
                if before < n {
                    changes.push(k.rows[before], before + 1, time, RowKind::Insert);
                }
                for gone in k.rows.drain(n.min(k.rows.len())..) {
                    self.rows.release(gone);
                }
            } else {
                if k.rows.len() > n {
                    if let Some(gone) = k.rows.pop() {
                        changes.push(gone, 0, time, RowKind::Delete);
                        self.rows.release(gone);
                    }
                }
                changes.push(k.rows[at], 0, time, RowKind::Insert);
            }
            k.written = now;
            if let (Some(ttl), true) = (self.spec.ttl_ms, new) {
                self.expiry.add(now.saturating_add(ttl as i64), slot);
            }
        }
        self.hashes = own;
        self.slots = slots;
        if !changes.rows.is_empty() {
            let mut batch = self.rows.emit(&changes.rows, changes.times, changes.kinds);
            if let Some(ty) = self.rank_type {
                batch.columns.push(Column::new(ty, Data::I64(changes.ranks)));
            }
            out.push(batch);
        }
        self.compact();
        Ok(())
    }

    fn on_timer(&mut self, now_ms: i64, _out: &mut Vec<Batch>) -> Result<Option<Signal>, OperatorError> {
        let Some(ttl) = self.spec.ttl_ms else { return Ok(None) };
        for (_, slot) in self.expiry.due(now_ms) {
            let Some(Some(k)) = self.kept.get(slot as usize) else { continue };
            let at = k.written.saturating_add(ttl as i64);
            if at <= now_ms {
                k.rows.iter().for_each(|row| self.rows.release(*row));
                self.keys.remove(slot);
                self.kept[slot as usize] = None;
            } else {
                self.expiry.add(at, slot);
            }
        }
        self.compact();
        Ok(None)
    }

    fn snapshot(&self) -> KeyedSnapshot {
        KeyedSnapshot::collect(|out| self.snapshot_into(out))
    }

    fn snapshot_into(&self, out: &mut dyn KeyGroupWriter) -> std::io::Result<()> {
        let mut groups: BTreeMap<u32, Vec<(&[u8], &Kept)>> = BTreeMap::new();
        for (slot, e) in self.keys.slots() {
            if let Some(Some(k)) = self.kept.get(slot as usize) {
                if !k.rows.is_empty() {
                    groups.entry(key_group(e.hash, self.max_parallelism)).or_default().push((&e.order[..], k));
                }
            }
        }
        // One key group's rows are gathered and encoded at a time.
        while let Some((kg, mut keys)) = groups.pop_first() {
            // In key order, so that the bytes do not depend on the key table's layout.
            keys.sort_by(|a, b| a.0.cmp(b.0));
            let rows: Vec<u32> = keys.iter().flat_map(|(_, k)| k.rows.iter().copied()).collect();
            let group = TopGroup {
                counts: keys.iter().map(|(_, k)| k.rows.len() as u32).collect(),
                written: match self.spec.ttl_ms {
                    Some(_) => deltas(&keys.iter().map(|(_, k)| k.written).collect::<Vec<_>>()),
                    None => Vec::new(),
                },
                columns: save_columns(&self.rows.gather(&rows)),
            };
            out.key_group(kg, &encode_group(SNAPSHOT_VERSION, &group))?;
        }
        Ok(())
    }

    fn restore(&mut self, state: KeyedSnapshot) -> Result<(), OperatorError> {
        let name = self.name.clone();
        let fail = |m: String| OperatorError::Restore { operator: name.clone(), message: m };
        for (kg, bytes) in &state.key_groups {
            let corrupt = |e: String| fail(format!("key group {kg} is corrupt: {e}"));
            let (batch, counts, written) = match bytes.split_first() {
                Some((&SNAPSHOT_VERSION, body)) => {
                    let g: TopGroup = decode_group(body).map_err(corrupt)?;
                    let rows = g.counts.iter().map(|c| *c as usize).sum();
                    let columns = restore_columns(g.columns, &self.types, rows).map_err(|e| {
                        fail(format!("key group {kg} has rows of another layout than the job's ({e}){LAYOUT_HINT}"))
                    })?;
                    let written = match g.written.is_empty() {
                        true => vec![(self.clock)(); g.counts.len()],
                        false => undo_deltas(g.written),
                    };
                    (Batch::new(vec![NO_TIMESTAMP; rows], columns), g.counts, written)
                }
                Some((&SNAPSHOT_VERSION_1, body)) => {
                    let entries: Vec<TopEntry> = decode_group(body).map_err(corrupt)?;
                    if entries.iter().any(|e| e.key.0.len() != self.spec.key.len()) {
                        return Err(fail("the state has keys of another length than the job's".into()));
                    }
                    let counts = entries.iter().map(|e| e.rows.len() as u32).collect();
                    let written = entries.iter().map(|e| e.written).collect();
                    let rows: Vec<(i64, Vec<Value>)> =
                        entries.into_iter().flat_map(|e| e.rows).map(|row| (NO_TIMESTAMP, row)).collect();
                    let batch = Batch::from_rows(&self.types, &rows)
                        .ok_or_else(|| fail(format!("the state has rows of another layout than the job's{LAYOUT_HINT}")))?;
                    (batch, counts, written)
                }
                Some((v, _)) => {
                    return Err(fail(format!(
                        "key group {kg} is in state format {v}, which this flowc does not read (it reads {SNAPSHOT_VERSION_1} and {SNAPSHOT_VERSION})"
                    )))
                }
                None => return Err(fail(format!("key group {kg} is empty"))),
            };
            self.keep_all(batch, &counts, &written)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keygroup::{key_group_range, key_hash, subtask_for_key_group};
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
    fn with_ttl_a_restored_key_expires_when_it_was_written_not_when_it_was_restored() {
        let mut t = op(2, true, false, Some(1000));
        t.clock = || 5_000;
        t.process(batch(&[("a", 1, 1)]), &mut Vec::new()).unwrap();
        let mut e = op(2, true, false, Some(1000));
        e.clock = || 5_500;
        e.restore(t.snapshot()).unwrap();
        e.on_timer(5_999, &mut Vec::new()).unwrap();
        assert_eq!(e.key_count(), 1);
        e.on_timer(6_000, &mut Vec::new()).unwrap();
        assert_eq!(e.key_count(), 0);
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

    /// The state of 1 000 keys of 3 rows in both formats: format 1 as the
    /// operator wrote it before its rows were typed, format 2 as columns.
    #[test]
    fn a_state_of_many_keys_takes_fewer_bytes_in_format_2_than_in_format_1() {
        let mut t = op(3, true, false, None);
        let ids: Vec<String> = (0..1000).map(|i| format!("auction-{i}")).collect();
        let rows: Vec<(&str, i64, i64)> =
            (0..4000).map(|i| (ids[i % 1000].as_str(), i as i64 % 97, i as i64)).collect();
        t.process(batch(&rows), &mut Vec::new()).unwrap();
        let size = |s: &KeyedSnapshot| s.key_groups.iter().map(|g| g.1.len()).sum::<usize>();
        let v2 = size(&t.snapshot());
        let v1 = size(&crate::operators::keyed::encode_groups(
            SNAPSHOT_VERSION_1,
            t.keys.slots().filter_map(|(slot, e)| {
                let k = t.kept[slot as usize].as_ref()?;
                let rows = k.rows.iter().map(|r| t.rows.gather(&[*r]).row(0)).collect();
                let entry = TopEntry { key: Key(e.key.clone()), rows, written: k.written };
                Some((key_group(e.hash, MAX_PARALLELISM), &e.order[..], entry))
            }),
        ));
        eprintln!("1 000 keys of 3 rows: format 1 {v1} bytes, format 2 {v2} bytes");
        assert!(v2 < v1, "format 2 takes {v2} bytes, format 1 {v1}");
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

    /// The job of `testdata/keyed_top_v1.*`: the 3 highest prices per id,
    /// ties by `x` ascending (nulls first), ranked; a nullable string and
    /// an array ride along.
    fn fixture_operator() -> KeyedTopOperator {
        let f = |n: &str, t| Field::new(n, t);
        let mut note = f("note", DataType::String);
        note.nullable = true;
        let mut x = f("x", DataType::Double);
        x.nullable = true;
        let input = Schema {
            name: None,
            fields: vec![
                f("id", DataType::String),
                f("price", DataType::Long),
                note,
                x,
                f("tags", DataType::Array(flowc_compiler::ir::Elem::STRING)),
            ],
        };
        let mut output = input.clone();
        output.fields.push(f("rank", DataType::Long));
        let spec =
            KeyedTop { key: vec![0], n: 3, order: vec![(1, true), (3, false)], rank_field: Some(5), ttl_ms: None };
        KeyedTopOperator::new("t".into(), spec, &input, &output, MAX_PARALLELISM).expect("a good spec")
    }

    /// Rows `(time, id, price, note, x, tags)` of the fixture's layout.
    #[allow(clippy::type_complexity)]
    fn fixture_batch(rows: &[(i64, &str, i64, Option<&str>, Option<f64>, &[&str])]) -> Batch {
        let rows: Vec<(i64, Vec<Value>)> = rows
            .iter()
            .map(|(t, id, price, note, x, tags)| {
                let row = vec![
                    Value::Str(id.to_string()),
                    Value::Int(*price),
                    note.map_or(Value::Null, |s| Value::Str(s.to_string())),
                    x.map_or(Value::Null, Value::Double),
                    Value::Array(tags.iter().map(|v| Value::Str(v.to_string())).collect()),
                ];
                (*t, row)
            })
            .collect();
        let types: Vec<DataType> = fixture_operator().input.fields.iter().map(|f| f.ty).collect();
        Batch::from_rows(&types, &rows).expect("fits")
    }

    /// What the fixture's operator saw before its snapshot.
    fn fixture_input() -> Batch {
        fixture_batch(&[
            (1, "h\u{e9}llo", 10, Some("a"), Some(1.0), &["x", "y"]),
            (2, "h\u{e9}llo", 30, None, None, &[]),
            (3, "h\u{e9}llo", 20, Some("\u{1f600}"), Some(-1.0), &["z"]),
            (4, "h\u{e9}llo", 20, Some("tie, x null: first"), None, &[]),
            (5, "b", 5, None, Some(2.0), &[""]),
            (6, "h\u{e9}llo", 1, Some("below a full top"), None, &[]),
            (7, "c", 7, Some("c"), Some(0.5), &["c"]),
        ])
    }

    /// What the restored operator sees after it.
    fn fixture_more() -> Batch {
        fixture_batch(&[
            (10, "h\u{e9}llo", 25, Some("after"), Some(0.0), &["a"]),
            (11, "b", 6, None, None, &[]),
            (12, "c", 7, Some("c, larger x"), Some(0.75), &[]),
            (13, "new", 1, None, None, &[]),
            (14, "h\u{e9}llo", 20, Some("ties the last of a full top"), Some(5.0), &[]),
        ])
    }

    fn shown(out: &[Batch]) -> String {
        out.iter()
            .flat_map(|b| {
                (0..b.len()).map(move |r| format!("{} {} {:?}\n", b.kind(r).short(), b.timestamps[r], b.row(r)))
            })
            .collect()
    }

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{}/src/operators/testdata/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// Each key group of a format 2 snapshot without its write times
    /// (processing time, which two runs do not share).
    fn rows_of(snap: &KeyedSnapshot) -> Vec<(u32, Vec<u32>, Vec<SavedColumn>)> {
        snap.key_groups
            .iter()
            .map(|(kg, bytes)| {
                assert_eq!(bytes[0], SNAPSHOT_VERSION);
                let g: TopGroup = decode_group(&bytes[1..]).expect("decodes");
                (*kg, g.counts, g.columns)
            })
            .collect()
    }

    /// `keyed_top_v1.snapshot` was written by the operator before its rows
    /// were typed (format 1, at commit afeaafa): restored, it answers a
    /// further batch exactly as that operator did (`keyed_top_v1.out`),
    /// and holds what an operator that saw the same records holds.
    #[test]
    fn a_version_1_snapshot_restores_and_answers_as_the_old_operator_did() {
        let (groups, _): (Vec<(u32, Vec<u8>)>, usize) =
            bincode::serde::decode_from_slice(&fixture("keyed_top_v1.snapshot"), bincode::config::standard())
                .expect("the fixture decodes");
        assert!(groups.iter().all(|g| g.1[0] == SNAPSHOT_VERSION_1));
        let mut t = fixture_operator();
        t.restore(KeyedSnapshot { key_groups: groups }).expect("restores");
        let mut today = fixture_operator();
        today.process(fixture_input(), &mut Vec::new()).unwrap();
        assert_eq!(rows_of(&t.snapshot()), rows_of(&today.snapshot()));
        let mut more = Vec::new();
        t.process(fixture_more(), &mut more).unwrap();
        assert_eq!(shown(&more), String::from_utf8(fixture("keyed_top_v1.out")).expect("UTF-8"));
    }

    #[test]
    fn a_snapshot_restores_to_the_same_bytes_and_a_bad_one_is_refused_with_its_reason() {
        let mut t = fixture_operator();
        t.process(fixture_input(), &mut Vec::new()).unwrap();
        t.process(fixture_more(), &mut Vec::new()).unwrap();
        let snap = t.snapshot();
        let mut e = fixture_operator();
        e.restore(snap.clone()).expect("restores");
        assert_eq!(e.snapshot(), snap);
        let mut truncated = snap.clone();
        truncated.key_groups[0].1.pop();
        let err = fixture_operator().restore(truncated).unwrap_err().to_string();
        assert!(err.contains("corrupt"), "{err}");
        let err = op(2, true, false, None).restore(snap).unwrap_err().to_string();
        assert!(err.contains("fields"), "{err}");
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
            let mut again = KeyedSnapshot::default();
            for o in &second {
                again.key_groups.extend(o.snapshot().key_groups);
            }
            again.key_groups.sort_by_key(|g| g.0);
            prop_assert_eq!(&again, &snap);
            compact(&run(&mut second, after, chunk), &mut table);
            prop_assert_eq!(&table, &model(&records, n as usize, ranked));
        }
    }
}
