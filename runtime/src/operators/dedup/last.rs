//! `dedup k keep last`: the latest record per key, as an upsert stream
//! keyed by `k` (Flink SQL's deduplication keeping the last row,
//! `ROW_NUMBER() OVER (PARTITION BY k ORDER BY rowtime DESC) = 1`).
//!
//! The first record of a key goes out as `+I`; a later one replaces it,
//! `-U` with the kept row then `+U` with the new one. In event time (a
//! `watermark` upstream) "later" is by the record's event time, as Flink's
//! `RowTimeDeduplicateFunction` judges it: a record older than the kept
//! one is dropped, an equal time replaces it (the later arrival wins). In
//! processing time every record replaces the kept one (Flink's
//! `ProcTimeDeduplicateKeepLastRowFunction`). A record equal to the kept
//! one in every field changes nothing and emits nothing (as Flink does in
//! processing time without state TTL). Nothing waits for the watermark:
//! each record is answered at once.
//!
//! With `ttl`, a key whose row was not replaced for that long (processing
//! time) is forgotten by a timer, emitting nothing; its next record starts
//! again at `+I`. State is the kept row per key, snapshotted per key group
//! (format 1: the key, the row, its event time and when it was written)
//! and redistributed on rescale.

use crate::data::{Batch, RowKind, ValueRef};
use crate::expr::EvalError;
use crate::keygroup::{key_group, key_hash, Key};
use crate::operators::keyed::{decode_groups, encode_groups, find_slots, SlotTimers};
use crate::operators::window_state::KeyTable;
use crate::operators::{KeyedSnapshot, Operator, OperatorError};
use crate::record::{Value, NO_TIMESTAMP};
use flowc_compiler::ir::{DataType, Dedup, Schema, TimeDomain};
use serde::{Deserialize, Serialize};

/// Format of a key group's bytes in a snapshot; bump on change.
const SNAPSHOT_VERSION: u8 = 1;

/// One key in a checkpoint.
#[derive(Serialize, Deserialize)]
struct LastEntry {
    key: Key,
    row: Vec<Value>,
    /// The row's event time (`NO_TIMESTAMP` if it had none).
    time: i64,
    /// When it was written, in processing time (for `ttl`).
    written: i64,
}

/// A key's kept row.
#[derive(Debug, Clone)]
struct Kept {
    row: Vec<Value>,
    time: i64,
    written: i64,
}

pub struct DedupLastOperator {
    name: String,
    spec: Dedup,
    max_parallelism: u32,
    keys: KeyTable,
    /// Per slot: the kept row.
    kept: Vec<Option<Kept>>,
    /// With `ttl`: when to look at a key again.
    expiry: SlotTimers,
    input: Schema,
    types: Vec<DataType>,
    hashes: Vec<u64>,
    slots: Vec<u32>,
    clock: fn() -> i64,
}

impl DedupLastOperator {
    pub fn new(name: String, spec: Dedup, input: &Schema, max_parallelism: u32) -> DedupLastOperator {
        DedupLastOperator {
            name,
            spec,
            max_parallelism,
            keys: KeyTable::default(),
            kept: Vec::new(),
            expiry: SlotTimers::default(),
            input: input.clone(),
            types: input.fields.iter().map(|f| f.ty).collect(),
            hashes: Vec::new(),
            slots: Vec::new(),
            clock: crate::clock::now_ms,
        }
    }

    /// The number of keys held (tests).
    pub fn key_count(&self) -> usize {
        self.keys.entries().count()
    }

    /// Keeps `row` for the key at `slot`; a key that is `new` gets a ttl
    /// timer (a replaced one is re-armed when its timer fires).
    fn keep(&mut self, slot: u32, kept: Kept, new: bool) {
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

/// Appends one row to `out` with its time and kind.
fn push<'v>(out: &mut Batch, row: impl Iterator<Item = ValueRef<'v>>, time: i64, kind: RowKind) {
    for (c, v) in out.columns.iter_mut().zip(row) {
        c.push_value(v);
    }
    out.timestamps.push(time);
    if let Some(k) = &mut out.kinds {
        k.push(kind);
    }
}

impl Operator for DedupLastOperator {
    fn process(&mut self, input: Batch, out: &mut Vec<Batch>) -> Result<(), OperatorError> {
        let n = input.len();
        if n == 0 {
            return Ok(());
        }
        let now = (self.clock)();
        let event_time = self.spec.time == TimeDomain::EventTime;
        let mut own = std::mem::take(&mut self.hashes);
        let mut slots = std::mem::take(&mut self.slots);
        if !find_slots(&mut self.keys, &input, &self.spec.key, &mut own, &mut slots) {
            let e = EvalError::internal("a key column is missing");
            return Err(OperatorError::Eval { operator: self.name.clone(), message: e.describe(&input, &self.input) });
        }
        let mut changes = Batch::empty(&self.types, 2 * n);
        changes.kinds = Some(Vec::with_capacity(2 * n));
        for (r, &slot) in slots.iter().enumerate() {
            let time = input.timestamps[r];
            let prev = match self.kept.get_mut(slot as usize).and_then(Option::take) {
                // Expired but not yet swept: forgotten all the same.
                Some(k) if self.spec.ttl_ms.is_some_and(|ttl| k.written.saturating_add(ttl as i64) <= now) => None,
                other => other,
            };
            let new = prev.is_none();
            if let Some(p) = &prev {
                let older = event_time && time != NO_TIMESTAMP && p.time != NO_TIMESTAMP && time < p.time;
                let same = p.row.len() == input.columns.len()
                    && p.row.iter().zip(&input.columns).all(|(v, c)| c.value_ref(r) == Some(ValueRef::from(v)));
                if older {
                    self.keep(slot, p.clone(), false);
                    continue;
                }
                if same {
                    // The kept row stays, as of the newer time (a write for `ttl`).
                    let kept = Kept { row: p.row.clone(), time: p.time.max(time), written: now };
                    self.keep(slot, kept, false);
                    continue;
                }
                push(&mut changes, p.row.iter().map(ValueRef::from), p.time, RowKind::UpdateBefore);
            }
            let row = input.row(r);
            let kind = if new { RowKind::Insert } else { RowKind::UpdateAfter };
            push(&mut changes, row.iter().map(ValueRef::from), time, kind);
            self.keep(slot, Kept { row, time, written: now }, new);
        }
        self.hashes = own;
        self.slots = slots;
        if !changes.is_empty() {
            out.push(changes);
        }
        Ok(())
    }

    fn on_timer(&mut self, now_ms: i64, _out: &mut Vec<Batch>) -> Result<Option<crate::record::Signal>, OperatorError> {
        let Some(ttl) = self.spec.ttl_ms else { return Ok(None) };
        for (_, slot) in self.expiry.due(now_ms) {
            let Some(Some(k)) = self.kept.get(slot as usize) else { continue };
            let at = k.written.saturating_add(ttl as i64);
            if at <= now_ms {
                self.keys.remove(slot);
                self.kept[slot as usize] = None;
            } else {
                // Written since the timer was set: look again when it expires.
                self.expiry.add(at, slot);
            }
        }
        Ok(None)
    }

    fn snapshot(&self) -> KeyedSnapshot {
        let entries = self.keys.slots().filter_map(|(slot, e)| {
            let Some(Some(k)) = self.kept.get(slot as usize) else { return None };
            let entry = LastEntry { key: Key(e.key.clone()), row: k.row.clone(), time: k.time, written: k.written };
            Some((key_group(e.hash, self.max_parallelism), &e.order[..], entry))
        });
        encode_groups(SNAPSHOT_VERSION, entries)
    }

    fn restore(&mut self, state: KeyedSnapshot) -> Result<(), OperatorError> {
        let restored: Vec<LastEntry> = decode_groups(&self.name, SNAPSHOT_VERSION, &state)?;
        for e in restored {
            if e.key.0.len() != self.spec.key.len() || e.row.len() != self.types.len() {
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
            self.keep(slot, Kept { row: e.row, time: e.time, written: e.written }, true);
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

    fn op(time: TimeDomain, ttl_ms: Option<u64>) -> DedupLastOperator {
        let input =
            Schema { name: None, fields: vec![Field::new("id", DataType::String), Field::new("n", DataType::Long)] };
        let spec = Dedup { key: vec![0], within_ms: 0, keep_last: true, time, ttl_ms };
        DedupLastOperator::new("d".into(), spec, &input, MAX_PARALLELISM)
    }

    fn batch(rows: &[(i64, &str, i64)]) -> Batch {
        let rows: Vec<(i64, Vec<Value>)> =
            rows.iter().map(|(t, id, n)| (*t, vec![Value::Str(id.to_string()), Value::Int(*n)])).collect();
        Batch::from_rows(&[DataType::String, DataType::Long], &rows).expect("fits")
    }

    fn changes(out: &[Batch]) -> Vec<(RowKind, String, i64)> {
        let mut v = Vec::new();
        for b in out {
            for (r, (_, row)) in b.rows().into_iter().enumerate() {
                let (Value::Str(id), Value::Int(n)) = (&row[0], &row[1]) else { panic!("{row:?}") };
                v.push((b.kind(r), id.clone(), *n));
            }
        }
        v
    }

    /// Applies a changelog to a table keyed by id, checking that every
    /// `-U` retracts the row the table holds.
    fn compact(changes: &[(RowKind, String, i64)], table: &mut HashMap<String, i64>) {
        for (kind, id, n) in changes {
            match kind {
                RowKind::Insert | RowKind::UpdateAfter => {
                    table.insert(id.clone(), *n);
                }
                RowKind::UpdateBefore | RowKind::Delete => {
                    assert_eq!(table.remove(id), Some(*n), "a retraction of a row the table does not hold");
                }
            }
        }
    }

    #[test]
    fn keeps_the_latest_row_by_event_time_as_an_upsert_stream() {
        use RowKind::*;
        let mut d = op(TimeDomain::EventTime, None);
        let mut out = Vec::new();
        d.process(
            batch(&[(10, "a", 1), (5, "b", 2), (20, "a", 3), (15, "a", 4), (20, "a", 5), (20, "a", 5)]),
            &mut out,
        )
        .unwrap();
        // `a` at 15 is older than the kept row (20): dropped; at 20 again it
        // replaces it (the later arrival); the same row again changes nothing.
        assert_eq!(
            changes(&out),
            vec![
                (Insert, "a".into(), 1),
                (Insert, "b".into(), 2),
                (UpdateBefore, "a".into(), 1),
                (UpdateAfter, "a".into(), 3),
                (UpdateBefore, "a".into(), 3),
                (UpdateAfter, "a".into(), 5),
            ]
        );
        assert_eq!(d.key_count(), 2);
    }

    #[test]
    fn in_processing_time_every_record_replaces_the_kept_one() {
        let mut d = op(TimeDomain::ProcessingTime, None);
        let mut out = Vec::new();
        d.process(batch(&[(10, "a", 1), (5, "a", 2)]), &mut out).unwrap();
        assert_eq!(changes(&out).last(), Some(&(RowKind::UpdateAfter, "a".to_string(), 2)));
    }

    #[test]
    fn ttl_forgets_a_key_and_its_next_record_is_an_insert() {
        let mut d = op(TimeDomain::EventTime, Some(1000));
        d.clock = || 5_000;
        let mut out = Vec::new();
        d.process(batch(&[(0, "a", 1), (1, "b", 2)]), &mut out).unwrap();
        d.clock = || 5_500;
        d.process(batch(&[(2, "a", 3)]), &mut out).unwrap();
        d.on_timer(6_000, &mut out).unwrap();
        assert_eq!(d.key_count(), 1, "`b` expired, `a` was written again at 5 500");
        d.on_timer(6_500, &mut out).unwrap();
        assert_eq!(d.key_count(), 0);
        assert!(d.snapshot().key_groups.is_empty());
        out.clear();
        d.process(batch(&[(3, "a", 4)]), &mut out).unwrap();
        assert_eq!(changes(&out), vec![(RowKind::Insert, "a".into(), 4)]);
    }

    #[test]
    fn a_foreign_snapshot_is_refused() {
        let mut d = op(TimeDomain::EventTime, None);
        d.process(batch(&[(0, "a", 1)]), &mut Vec::new()).unwrap();
        let mut bad = d.snapshot();
        bad.key_groups[0].1[0] = 7;
        let e = op(TimeDomain::EventTime, None).restore(bad).unwrap_err().to_string();
        assert!(e.contains("state format 7"), "{e}");
    }

    /// Restores `snap` at parallelism `p`: each subtask takes its key groups.
    fn restore_at(snap: &KeyedSnapshot, p: u32) -> Vec<DedupLastOperator> {
        (0..p)
            .map(|i| {
                let range = key_group_range(i, p, MAX_PARALLELISM);
                let mine = snap.key_groups.iter().filter(|(kg, _)| range.contains(kg)).cloned().collect();
                let mut o = op(TimeDomain::EventTime, None);
                o.restore(KeyedSnapshot { key_groups: mine }).expect("restores");
                o
            })
            .collect()
    }

    /// Sends each record to its key's subtask, as a HASH edge does.
    fn run(ops: &mut [DedupLastOperator], records: &[(i64, String, i64)], chunk: usize) -> Vec<(RowKind, String, i64)> {
        let p = ops.len() as u32;
        let mut routed = vec![Vec::new(); ops.len()];
        for (t, id, n) in records {
            let kg = key_group(key_hash(&[Value::Str(id.clone())]), MAX_PARALLELISM);
            routed[subtask_for_key_group(kg, p, MAX_PARALLELISM) as usize].push((*t, id.as_str(), *n));
        }
        let mut out = Vec::new();
        for (o, recs) in ops.iter_mut().zip(routed) {
            for c in recs.chunks(chunk.max(1)) {
                o.process(batch(c), &mut out).expect("processes");
            }
        }
        changes(&out)
    }

    /// The model: per key, the row of the latest time, the later arrival
    /// among equal times.
    fn model(records: &[(i64, String, i64)]) -> HashMap<String, i64> {
        let mut latest: HashMap<String, (i64, i64)> = HashMap::new();
        for (t, id, n) in records {
            match latest.get(id) {
                Some((kept, _)) if t < kept => {}
                _ => {
                    latest.insert(id.clone(), (*t, *n));
                }
            }
        }
        latest.into_iter().map(|(k, (_, n))| (k, n)).collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// The changelog applied to a table equals the model's latest row
        /// per key, also across a snapshot at `p` restored at `p2`.
        #[test]
        fn the_changelog_compacted_by_key_equals_the_latest_row_per_key(
            records in proptest::collection::vec((0i64..40, 0u8..10, 0i64..5), 0..300),
            cut in 0usize..300,
            p in 1u32..4,
            p2 in 1u32..5,
            chunk in 1usize..50,
        ) {
            let records: Vec<(i64, String, i64)> =
                records.into_iter().map(|(t, k, n)| (t, format!("k{k}"), n)).collect();
            let cut = cut.min(records.len());
            let (before, after) = records.split_at(cut);
            let mut first: Vec<DedupLastOperator> = (0..p).map(|_| op(TimeDomain::EventTime, None)).collect();
            let mut table = HashMap::new();
            compact(&run(&mut first, before, chunk), &mut table);
            prop_assert_eq!(&table, &model(before));
            let mut snap = KeyedSnapshot::default();
            for o in &first {
                snap.key_groups.extend(o.snapshot().key_groups);
            }
            snap.key_groups.sort_by_key(|g| g.0);
            let mut second = restore_at(&snap, p2);
            compact(&run(&mut second, after, chunk), &mut table);
            prop_assert_eq!(&table, &model(&records));
        }
    }
}
