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
//! again at `+I`. State is the kept row per key, in the typed row encoding
//! ([`KeptRows`]): a record is compared with its key's row, replaces it
//! and retracts it column by column, without an owned value per record.
//! It is snapshotted per key group (format 2: the rows as columns, their
//! event times and when each was written, in key order; format 1, one
//! owned row per key, is still read) and redistributed on rescale.

use crate::data::{Batch, RowKind};
use crate::expr::EvalError;
use crate::keygroup::{key_group, Key};
use crate::operators::kept_rows::{
    decode_group, deltas, encode_group, restore_columns, save_columns, undo_deltas, KeptRows, SavedColumn,
};
use crate::operators::keyed::{find_slots, SlotTimers};
use crate::operators::window_state::KeyTable;
use crate::operators::{KeyGroupWriter, KeyedSnapshot, Operator, OperatorError, LAYOUT_HINT};
use crate::record::{Value, NO_TIMESTAMP};
use flowc_compiler::ir::{DataType, Dedup, Schema, TimeDomain};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Format of a key group's bytes in a snapshot ([`LastGroup`]); bump on
/// change.
const SNAPSHOT_VERSION: u8 = 2;
/// The format before the rows were typed: a [`LastEntry`] per key.
const SNAPSHOT_VERSION_1: u8 = 1;

/// One key group in a checkpoint (format 2): its keys' rows in key order.
#[derive(Serialize, Deserialize)]
struct LastGroup {
    /// Per row: when it was written, in processing time, as [`deltas`];
    /// with `ttl` only (a restore without them writes the rows anew).
    written: Vec<i64>,
    /// Per row: its event time (`NO_TIMESTAMP` if it had none), as
    /// [`deltas`].
    times: Vec<i64>,
    /// The rows, whose key fields are the key.
    columns: Vec<SavedColumn>,
}

/// One key in a checkpoint of format 1.
#[derive(Serialize, Deserialize)]
struct LastEntry {
    key: Key,
    row: Vec<Value>,
    /// The row's event time (`NO_TIMESTAMP` if it had none).
    time: i64,
    /// When it was written, in processing time (for `ttl`).
    written: i64,
}

/// A key's kept row: its number in [`KeptRows`] (whose timestamp is the
/// row's event time) and when it was written.
#[derive(Debug, Clone, Copy)]
struct Kept {
    row: u32,
    written: i64,
}

pub struct DedupLastOperator {
    name: String,
    spec: Dedup,
    max_parallelism: u32,
    keys: KeyTable,
    /// Per slot: the kept row.
    kept: Vec<Option<Kept>>,
    rows: KeptRows,
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
        let types: Vec<DataType> = input.fields.iter().map(|f| f.ty).collect();
        DedupLastOperator {
            name,
            spec,
            max_parallelism,
            keys: KeyTable::default(),
            kept: Vec::new(),
            rows: KeptRows::new(&types),
            expiry: SlotTimers::default(),
            input: input.clone(),
            types,
            hashes: Vec::new(),
            slots: Vec::new(),
            clock: crate::clock::now_ms,
        }
    }

    /// The number of keys held (tests).
    pub fn key_count(&self) -> usize {
        self.keys.entries().count()
    }

    /// Keeps `kept` for the key at `slot`; a key that is `new` gets a ttl
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

    /// Drops the rows no key holds, once there are enough of them.
    fn compact(&mut self) {
        if self.rows.wants_compaction() {
            self.rows.compact(self.kept.iter_mut().flatten().map(|k| &mut k.row));
        }
    }

    /// Keeps every row of `batch` for its key, written at `written[r]` (a
    /// restore); a later row of a key replaces an earlier one.
    fn keep_all(&mut self, batch: Batch, written: &[i64]) -> Result<(), OperatorError> {
        let fail = |m: &str| OperatorError::Restore { operator: self.name.clone(), message: m.into() };
        if batch.check_layout(&self.types).is_err() || written.len() != batch.len() {
            return Err(fail("the state has rows of another layout than the job's"));
        }
        let (mut own, mut slots) = (Vec::new(), Vec::new());
        if !find_slots(&mut self.keys, &batch, &self.spec.key, &mut own, &mut slots) {
            return Err(fail("the state's rows lack a key field"));
        }
        let first = self.rows.extend(&batch);
        for (r, &slot) in slots.iter().enumerate() {
            if let Some(Some(old)) = self.kept.get(slot as usize) {
                self.rows.release(old.row);
            }
            self.keep(slot, Kept { row: first + r as u32, written: written[r] }, true);
        }
        Ok(())
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
        // The changes, as kept rows: a replaced row is released but stays
        // readable until the compaction after they are gathered.
        let mut emit: Vec<u32> = Vec::with_capacity(2 * n);
        let mut kinds: Vec<RowKind> = Vec::with_capacity(2 * n);
        // Each change's time as of the change (an equal row later in the
        // batch moves a kept row's time on).
        let mut times: Vec<i64> = Vec::with_capacity(2 * n);
        for (r, &slot) in slots.iter().enumerate() {
            let time = input.timestamps[r];
            let prev = match self.kept.get(slot as usize).copied().flatten() {
                // Expired but not yet swept: forgotten all the same.
                Some(k) if self.spec.ttl_ms.is_some_and(|ttl| k.written.saturating_add(ttl as i64) <= now) => {
                    self.rows.release(k.row);
                    None
                }
                other => other,
            };
            let new = prev.is_none();
            if let Some(p) = prev {
                let kept_time = self.rows.time(p.row);
                if event_time && time != NO_TIMESTAMP && kept_time != NO_TIMESTAMP && time < kept_time {
                    // Older than the kept row: dropped.
                    continue;
                }
                if self.rows.same_row(p.row, &input, r) {
                    // The kept row stays, as of the newer time (a write for `ttl`).
                    self.rows.set_time(p.row, kept_time.max(time));
                    self.keep(slot, Kept { row: p.row, written: now }, false);
                    continue;
                }
                emit.push(p.row);
                kinds.push(RowKind::UpdateBefore);
                times.push(kept_time);
                self.rows.release(p.row);
            }
            let row = self.rows.push(&input, r);
            emit.push(row);
            kinds.push(if new { RowKind::Insert } else { RowKind::UpdateAfter });
            times.push(time);
            self.keep(slot, Kept { row, written: now }, new);
        }
        self.hashes = own;
        self.slots = slots;
        if !emit.is_empty() {
            out.push(self.rows.emit(&emit, times, kinds));
        }
        self.compact();
        Ok(())
    }

    fn on_timer(&mut self, now_ms: i64, _out: &mut Vec<Batch>) -> Result<Option<crate::record::Signal>, OperatorError> {
        let Some(ttl) = self.spec.ttl_ms else { return Ok(None) };
        for (_, slot) in self.expiry.due(now_ms) {
            let Some(Some(k)) = self.kept.get(slot as usize).copied() else { continue };
            let at = k.written.saturating_add(ttl as i64);
            if at <= now_ms {
                self.keys.remove(slot);
                self.kept[slot as usize] = None;
                self.rows.release(k.row);
            } else {
                // Written since the timer was set: look again when it expires.
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
        let mut groups: BTreeMap<u32, Vec<(&[u8], Kept)>> = BTreeMap::new();
        for (slot, e) in self.keys.slots() {
            if let Some(Some(k)) = self.kept.get(slot as usize) {
                groups.entry(key_group(e.hash, self.max_parallelism)).or_default().push((&e.order[..], *k));
            }
        }
        // One key group's rows are gathered and encoded at a time.
        while let Some((kg, mut keys)) = groups.pop_first() {
            // In key order, so that the bytes do not depend on the key table's layout.
            keys.sort_by(|a, b| a.0.cmp(b.0));
            let rows: Vec<u32> = keys.iter().map(|(_, k)| k.row).collect();
            let batch = self.rows.gather(&rows);
            let written: Vec<i64> = match self.spec.ttl_ms {
                Some(_) => keys.iter().map(|(_, k)| k.written).collect(),
                None => Vec::new(),
            };
            let group = LastGroup {
                written: deltas(&written),
                times: deltas(&batch.timestamps),
                columns: save_columns(&batch),
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
            let (batch, written) = match bytes.split_first() {
                Some((&SNAPSHOT_VERSION, body)) => {
                    let g: LastGroup = decode_group(body).map_err(corrupt)?;
                    let rows = g.times.len();
                    let columns = restore_columns(g.columns, &self.types, rows).map_err(|e| {
                        fail(format!("key group {kg} has rows of another layout than the job's ({e}){LAYOUT_HINT}"))
                    })?;
                    let written = match g.written.is_empty() {
                        true => vec![(self.clock)(); rows],
                        false => undo_deltas(g.written),
                    };
                    (Batch::new(undo_deltas(g.times), columns), written)
                }
                Some((&SNAPSHOT_VERSION_1, body)) => {
                    let entries: Vec<LastEntry> = decode_group(body).map_err(corrupt)?;
                    if entries.iter().any(|e| e.key.0.len() != self.spec.key.len()) {
                        return Err(fail("the state has keys of another length than the job's".into()));
                    }
                    let written = entries.iter().map(|e| e.written).collect();
                    let rows: Vec<(i64, Vec<Value>)> = entries.into_iter().map(|e| (e.time, e.row)).collect();
                    let batch = Batch::from_rows(&self.types, &rows)
                        .ok_or_else(|| fail(format!("the state has rows of another layout than the job's{LAYOUT_HINT}")))?;
                    (batch, written)
                }
                Some((v, _)) => {
                    return Err(fail(format!(
                        "key group {kg} is in state format {v}, which this flowc does not read (it reads {SNAPSHOT_VERSION_1} and {SNAPSHOT_VERSION})"
                    )))
                }
                None => return Err(fail(format!("key group {kg} is empty"))),
            };
            self.keep_all(batch, &written)?;
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

    /// Each change carries its row's time as of the change: an equal row
    /// later in the same batch moves the kept row's time on, not the time
    /// of the `+I` already emitted.
    #[test]
    fn each_change_carries_the_time_of_its_row_when_it_was_emitted() {
        let mut d = op(TimeDomain::EventTime, None);
        let mut out = Vec::new();
        d.process(batch(&[(10, "a", 1), (20, "a", 1), (30, "a", 2)]), &mut out).unwrap();
        let got: Vec<(&str, i64)> =
            out.iter().flat_map(|b| (0..b.len()).map(move |r| (b.kind(r).short(), b.timestamps[r]))).collect();
        assert_eq!(got, vec![("+I", 10), ("-U", 20), ("+U", 30)]);
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
    fn with_ttl_a_restored_key_expires_when_it_was_written_not_when_it_was_restored() {
        let mut d = op(TimeDomain::EventTime, Some(1000));
        d.clock = || 5_000;
        d.process(batch(&[(0, "a", 1)]), &mut Vec::new()).unwrap();
        let mut e = op(TimeDomain::EventTime, Some(1000));
        e.clock = || 5_500;
        e.restore(d.snapshot()).unwrap();
        e.on_timer(5_999, &mut Vec::new()).unwrap();
        assert_eq!(e.key_count(), 1);
        e.on_timer(6_000, &mut Vec::new()).unwrap();
        assert_eq!(e.key_count(), 0);
        // Without `ttl` no write time is kept: a job restored with one
        // counts from the restore.
        let mut f = op(TimeDomain::EventTime, None);
        f.clock = || 5_000;
        f.process(batch(&[(0, "a", 1)]), &mut Vec::new()).unwrap();
        let mut g = op(TimeDomain::EventTime, Some(1000));
        g.clock = || 7_000;
        g.restore(f.snapshot()).unwrap();
        g.on_timer(7_999, &mut Vec::new()).unwrap();
        assert_eq!(g.key_count(), 1);
        g.on_timer(8_000, &mut Vec::new()).unwrap();
        assert_eq!(g.key_count(), 0);
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

    /// The job of `testdata/dedup_last_v1.*`: keyed by (id, n), rows of
    /// every type, nullable and an array among them.
    fn fixture_operator() -> DedupLastOperator {
        let f = |n: &str, t| Field::new(n, t);
        let mut x = f("x", DataType::Double);
        x.nullable = true;
        let mut note = f("note", DataType::String);
        note.nullable = true;
        let long = flowc_compiler::ir::Elem::LONG;
        let input = Schema {
            name: None,
            fields: vec![
                f("id", DataType::String),
                f("n", DataType::Long),
                x,
                note,
                f("tags", DataType::Array(long)),
                f("at", DataType::Timestamp),
                f("ok", DataType::Bool),
            ],
        };
        let spec = Dedup { key: vec![0, 1], within_ms: 0, keep_last: true, time: TimeDomain::EventTime, ttl_ms: None };
        DedupLastOperator::new("d".into(), spec, &input, MAX_PARALLELISM)
    }

    fn fixture_types() -> Vec<DataType> {
        fixture_operator().types.clone()
    }

    /// Rows `(time, id, n, x, note, tags, ok)` of the fixture's layout.
    #[allow(clippy::type_complexity)]
    fn fixture_batch(rows: &[(i64, &str, i64, Option<f64>, Option<&str>, &[i64], bool)]) -> Batch {
        let rows: Vec<(i64, Vec<Value>)> = rows
            .iter()
            .map(|(t, id, n, x, note, tags, ok)| {
                let row = vec![
                    Value::Str(id.to_string()),
                    Value::Int(*n),
                    x.map_or(Value::Null, Value::Double),
                    note.map_or(Value::Null, |s| Value::Str(s.to_string())),
                    Value::Array(tags.iter().map(|v| Value::Int(*v)).collect()),
                    Value::Timestamp(*t),
                    Value::Bool(*ok),
                ];
                (*t, row)
            })
            .collect();
        Batch::from_rows(&fixture_types(), &rows).expect("fits")
    }

    /// What the fixture's operator saw before its snapshot.
    fn fixture_input() -> Batch {
        fixture_batch(&[
            (10, "h\u{e9}llo", 1, Some(1.5), Some("first"), &[1, 2], true),
            (11, "h\u{e9}llo", 2, None, None, &[], false),
            (12, "b", 1, Some(-0.25), Some(""), &[7], true),
            (20, "h\u{e9}llo", 1, Some(2.5), None, &[3], false),
            (15, "h\u{e9}llo", 1, Some(9.0), Some("older: dropped"), &[], true),
            (30, "c", 3, None, Some("\u{1f600} emoji"), &[-1, 0, 1], true),
            (31, "c", 4, Some(f64::MAX), Some("x"), &[i64::MIN], false),
            (40, "b", 1, Some(-0.25), Some("again"), &[7, 8], true),
        ])
    }

    /// What the restored operator sees after it.
    fn fixture_more() -> Batch {
        fixture_batch(&[
            (50, "h\u{e9}llo", 1, Some(3.5), Some("after"), &[4], true),
            (5, "b", 1, None, None, &[], false),
            (60, "c", 3, None, Some("\u{1f600} emoji"), &[-1, 0, 1], true),
            (61, "c", 4, None, None, &[], true),
            (70, "new", 9, Some(0.0), Some("n"), &[], true),
            (80, "h\u{e9}llo", 2, None, None, &[], false),
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
    fn rows_of(snap: &KeyedSnapshot) -> Vec<(u32, Vec<i64>, Vec<SavedColumn>)> {
        snap.key_groups
            .iter()
            .map(|(kg, bytes)| {
                assert_eq!(bytes[0], SNAPSHOT_VERSION);
                let g: LastGroup = decode_group(&bytes[1..]).expect("decodes");
                (*kg, undo_deltas(g.times), g.columns)
            })
            .collect()
    }

    /// `dedup_last_v1.snapshot` was written by the operator before its rows
    /// were typed (format 1, at commit afeaafa): restored, it answers a
    /// further batch exactly as that operator did (`dedup_last_v1.out`),
    /// and holds what an operator that saw the same records holds.
    #[test]
    fn a_version_1_snapshot_restores_and_answers_as_the_old_operator_did() {
        let (groups, _): (Vec<(u32, Vec<u8>)>, usize) =
            bincode::serde::decode_from_slice(&fixture("dedup_last_v1.snapshot"), bincode::config::standard())
                .expect("the fixture decodes");
        assert!(groups.iter().all(|g| g.1[0] == SNAPSHOT_VERSION_1));
        let mut d = fixture_operator();
        d.restore(KeyedSnapshot { key_groups: groups }).expect("restores");
        let mut today = fixture_operator();
        today.process(fixture_input(), &mut Vec::new()).unwrap();
        let snap = d.snapshot();
        assert_eq!(rows_of(&snap), rows_of(&today.snapshot()));
        let mut more = Vec::new();
        d.process(fixture_more(), &mut more).unwrap();
        assert_eq!(shown(&more), String::from_utf8(fixture("dedup_last_v1.out")).expect("UTF-8"));
    }

    #[test]
    fn a_snapshot_restores_to_the_same_bytes_and_a_bad_one_is_refused_with_its_reason() {
        let mut d = fixture_operator();
        d.process(fixture_input(), &mut Vec::new()).unwrap();
        d.process(fixture_more(), &mut Vec::new()).unwrap();
        let snap = d.snapshot();
        let mut e = fixture_operator();
        e.restore(snap.clone()).expect("restores");
        assert_eq!(e.snapshot(), snap);
        let mut truncated = snap.clone();
        truncated.key_groups[0].1.pop();
        let err = fixture_operator().restore(truncated).unwrap_err().to_string();
        assert!(err.contains("corrupt"), "{err}");
        // Another job's rows (one field fewer) are refused, not misread.
        let err = op(TimeDomain::EventTime, None).restore(snap).unwrap_err().to_string();
        assert!(err.contains("fields"), "{err}");
    }

    /// A row of the fixture's layout from small choices, so that equal
    /// rows, nulls and arrays all occur.
    fn rich_row(k: u8, n: i64, x: Option<u8>, note: Option<u8>, tags: &[i64], ok: bool) -> Vec<Value> {
        let ids = ["h\u{e9}llo", "", "b", "\u{1f600}"];
        vec![
            Value::Str(ids[k as usize % ids.len()].to_string()),
            Value::Int(n),
            x.map_or(Value::Null, |x| Value::Double(f64::from(x) / 4.0)),
            note.map_or(Value::Null, |s| Value::Str("n".repeat(usize::from(s)))),
            Value::Array(tags.iter().map(|t| Value::Int(*t)).collect()),
            Value::Timestamp(i64::from(ok)),
            Value::Bool(ok),
        ]
    }

    type RichKey = (String, i64);

    fn rich_key(row: &[Value]) -> RichKey {
        match (&row[0], &row[1]) {
            (Value::Str(s), Value::Int(n)) => (s.clone(), *n),
            other => panic!("{other:?}"),
        }
    }

    /// The state of 2 000 keys in both formats: format 1 as the operator
    /// wrote it before its rows were typed (a key and an owned row per
    /// key), format 2 as columns.
    #[test]
    fn a_state_of_many_keys_takes_fewer_bytes_in_format_2_than_in_format_1() {
        let mut d = fixture_operator();
        let rows: Vec<(i64, Vec<Value>)> =
            (0..2000).map(|i| (i, rich_row((i % 4) as u8, i / 4, Some((i % 3) as u8), None, &[i], true))).collect();
        d.process(Batch::from_rows(&fixture_types(), &rows).expect("fits"), &mut Vec::new()).unwrap();
        assert_eq!(d.key_count(), 2000);
        let size = |s: &KeyedSnapshot| s.key_groups.iter().map(|g| g.1.len()).sum::<usize>();
        let v2 = size(&d.snapshot());
        let v1 = size(&crate::operators::keyed::encode_groups(
            SNAPSHOT_VERSION_1,
            d.keys.slots().filter_map(|(slot, e)| {
                let k = d.kept[slot as usize]?;
                let entry = LastEntry {
                    key: Key(e.key.clone()),
                    row: d.rows.gather(&[k.row]).row(0),
                    time: d.rows.time(k.row),
                    written: k.written,
                };
                Some((key_group(e.hash, MAX_PARALLELISM), &e.order[..], entry))
            }),
        ));
        eprintln!("2 000 keys: format 1 {v1} bytes, format 2 {v2} bytes");
        assert!(v2 < v1, "format 2 takes {v2} bytes, format 1 {v1}");
    }

    /// Sends each record to its key's subtask, as a HASH edge does.
    fn run_rich(ops: &mut [DedupLastOperator], records: &[(i64, Vec<Value>)], chunk: usize) -> Vec<Batch> {
        let p = ops.len() as u32;
        let mut routed = vec![Vec::new(); ops.len()];
        for (t, row) in records {
            let kg = key_group(key_hash(&row[..2]), MAX_PARALLELISM);
            routed[subtask_for_key_group(kg, p, MAX_PARALLELISM) as usize].push((*t, row.clone()));
        }
        let mut out = Vec::new();
        for (o, recs) in ops.iter_mut().zip(routed) {
            for c in recs.chunks(chunk.max(1)) {
                o.process(Batch::from_rows(&fixture_types(), c).expect("fits"), &mut out).expect("processes");
            }
        }
        out
    }

    /// Applies a changelog to a table of key → row, checking that every
    /// `-U` retracts the very row the table holds (its time may have moved
    /// on: an equal row later changes nothing but the kept time).
    fn apply(out: &[Batch], table: &mut BTreeMap<RichKey, (i64, Vec<Value>)>) {
        for b in out {
            for (r, (t, row)) in b.rows().into_iter().enumerate() {
                let key = rich_key(&row);
                match b.kind(r) {
                    RowKind::Insert | RowKind::UpdateAfter => {
                        table.insert(key, (t, row));
                    }
                    RowKind::UpdateBefore | RowKind::Delete => {
                        let held = table.remove(&key).map(|(_, row)| row);
                        assert_eq!(format!("{held:?}"), format!("{:?}", Some(row)), "a retraction of another row");
                    }
                }
            }
        }
    }

    /// The plain model: per key, the row of the latest time (the later
    /// arrival among equal times; an equal row only moves the time on).
    fn rich_model(records: &[(i64, Vec<Value>)]) -> BTreeMap<RichKey, Vec<Value>> {
        let mut last: BTreeMap<RichKey, (i64, Vec<Value>)> = BTreeMap::new();
        for (t, row) in records {
            match last.get(&rich_key(row)) {
                Some((kept, _)) if t < kept => {}
                _ => {
                    last.insert(rich_key(row), (*t, row.clone()));
                }
            }
        }
        last.into_iter().map(|(k, (_, row))| (k, row)).collect()
    }

    fn rows_only(table: &BTreeMap<RichKey, (i64, Vec<Value>)>) -> BTreeMap<RichKey, Vec<Value>> {
        table.iter().map(|(k, (_, row))| (k.clone(), row.clone())).collect()
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

        /// Rows of every type through the typed encoding: the changelog,
        /// applied to a table, holds the model's last row per key, every
        /// `-U` retracts the exact row held, and a snapshot at `p`
        /// restored at `p2` carries on as one operator would, and writes
        /// the same key groups again.
        #[test]
        fn typed_rows_of_every_type_keep_the_models_last_row_per_key_across_a_rescale(
            records in proptest::collection::vec(
                (0i64..30, 0u8..4, 0i64..2, proptest::option::of(0u8..3), proptest::option::of(0u8..3),
                 proptest::collection::vec(-2i64..2, 0..3), any::<bool>()),
                0..200),
            cut in 0usize..200,
            p in 1u32..4,
            p2 in 1u32..5,
            chunk in 1usize..40,
        ) {
            let records: Vec<(i64, Vec<Value>)> = records
                .into_iter()
                .map(|(t, k, n, x, note, tags, ok)| (t, rich_row(k, n, x, note, &tags, ok)))
                .collect();
            let cut = cut.min(records.len());
            let (before, after) = records.split_at(cut);
            let mut first: Vec<DedupLastOperator> = (0..p).map(|_| fixture_operator()).collect();
            let mut table = BTreeMap::new();
            apply(&run_rich(&mut first, before, chunk), &mut table);
            prop_assert_eq!(rows_only(&table), rich_model(before));
            let mut snap = KeyedSnapshot::default();
            for o in &first {
                snap.key_groups.extend(o.snapshot().key_groups);
            }
            snap.key_groups.sort_by_key(|g| g.0);
            let mut second: Vec<DedupLastOperator> = (0..p2)
                .map(|i| {
                    let range = key_group_range(i, p2, MAX_PARALLELISM);
                    let mut o = fixture_operator();
                    o.restore(KeyedSnapshot {
                        key_groups: snap.key_groups.iter().filter(|(kg, _)| range.contains(kg)).cloned().collect(),
                    })
                    .expect("restores");
                    o
                })
                .collect();
            let mut again = KeyedSnapshot::default();
            for o in &second {
                again.key_groups.extend(o.snapshot().key_groups);
            }
            again.key_groups.sort_by_key(|g| g.0);
            prop_assert_eq!(&again, &snap);
            apply(&run_rich(&mut second, after, chunk), &mut table);
            prop_assert_eq!(rows_only(&table), rich_model(&records));
        }
    }
}
