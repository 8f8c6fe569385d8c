//! The event-time temporal join (Flink's `TemporalRowTimeJoinOperator`,
//! Flink SQL's `FOR SYSTEM_TIME AS OF`): each left row meets the version of
//! the right (a changelog keyed by its primary key) valid at the left row's
//! event time.
//!
//! The right input is a stream of versions: a row at `v` is the key's
//! version from `v` on, until the next one; a row whose `deleted` field is
//! true, or a `-D` row (a Kafka tombstone read by a versioned source),
//! ends the key's versions (no version from then). Versions are kept
//! per key in time order. A left row waits in [`SideBuffer`] until the
//! watermark passes its time `t` (every version at or before `t` has come
//! then), and comes out with the latest version at or before `t` — with
//! event time `t` — or, in a left outer join, alone with the right's
//! fields null when there is none (or it is a deletion); an inner join
//! drops it. Rows come out while the watermark is forwarded, never behind
//! the one forwarded before, so the watermark is not held back.
//!
//! State stays bounded: a left row goes once emitted; of the versions
//! before the watermark only the latest is kept per key (a left row to
//! come is at or after the watermark), and none if that one is a deletion.
//! Pruning visits only the keys that got a version since: a version at `v`
//! puts its key on a list to visit once the watermark passes `v`. A row of
//! either side behind the watermark is late, dropped and counted: for a
//! version, that is stricter than Flink (which keeps it, and it may be the
//! latest before the watermark), and what lets a deletion be forgotten
//! once it is the latest before the watermark. A version with a null key
//! field is dropped: no left row can meet it.
//!
//! Snapshots are per key group: the waiting left rows, and every key's
//! versions with the key's values (a deletion has no row to hash).

use super::buffer::SideBuffer;
use super::{decode_all, late_rows, Emitter, KeyGroupWriter, KeyedSnapshot, Operator, OperatorError};
use crate::data::{Batch, RowKind, ValueRef};
use crate::keygroup::{key_group, key_hash, key_hashes};
use crate::metrics::TaskCounters;
use crate::operators::LAYOUT_HINT;
use crate::record::{Signal, Value, NO_TIMESTAMP};
use flowc_compiler::ir::{DataType, JoinType};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

/// Format of a key group's bytes in a snapshot; bump on change. Version 1:
/// bincode of [`SavedGroup`].
const SNAPSHOT_VERSION: u8 = 1;

/// Bucket width of the waiting left rows.
const BUCKET_MS: i64 = 1000;

/// What a temporal join joins.
#[derive(Debug, Clone)]
pub struct TemporalSpec {
    pub join_type: JoinType,
    /// Key fields of the left, pairwise equal to…
    pub left_key: Vec<usize>,
    /// …the right's primary key.
    pub right_key: Vec<usize>,
    /// The right's `deleted: bool` field, if it has one.
    pub deleted: Option<usize>,
}

/// The versions of one key; `None`: deleted from then on.
#[derive(Debug)]
struct KeyVersions {
    key: Vec<Value>,
    versions: BTreeMap<i64, Option<Vec<Value>>>,
}

/// One key group's state.
#[derive(Debug, Default, Serialize, Deserialize)]
struct SavedGroup {
    /// The left rows waiting for the watermark.
    left: Vec<(i64, Vec<Value>)>,
    /// (key, time, version or deletion) of every version kept.
    versions: Vec<(Vec<Value>, i64, Option<Vec<Value>>)>,
}

pub struct TemporalJoin {
    name: String,
    spec: TemporalSpec,
    left: SideBuffer,
    left_types: Vec<DataType>,
    right_types: Vec<DataType>,
    /// Key hash → the keys of that hash and their versions.
    versions: HashMap<u64, Vec<KeyVersions>>,
    /// Time of a version → the key hashes to prune once the watermark
    /// passes it.
    prune_at: BTreeMap<i64, Vec<u64>>,
    /// Versions kept, over all keys.
    version_count: usize,
    watermark: i64,
    max_parallelism: u32,
    counters: Arc<TaskCounters>,
    hashes: Vec<u64>,
    /// Late left rows go to the late output (`{ late: name }`).
    late_output: bool,
    late: Vec<Batch>,
}

impl TemporalJoin {
    pub fn new(
        name: String,
        spec: TemporalSpec,
        left_types: Vec<DataType>,
        right_types: Vec<DataType>,
        max_parallelism: u32,
        counters: Arc<TaskCounters>,
    ) -> Result<TemporalJoin, OperatorError> {
        let fits = !spec.left_key.is_empty()
            && spec.left_key.len() == spec.right_key.len()
            && spec.left_key.iter().all(|k| *k < left_types.len())
            && spec.right_key.iter().all(|k| *k < right_types.len())
            && spec.deleted.is_none_or(|d| right_types.get(d) == Some(&DataType::Bool));
        if !fits {
            return Err(OperatorError::Setup {
                operator: name,
                message: "the temporal join's keys do not fit its inputs (this is a bug in flowc)".into(),
            });
        }
        Ok(TemporalJoin {
            left: SideBuffer::new(left_types.clone(), spec.left_key.clone(), BUCKET_MS),
            name,
            spec,
            left_types,
            right_types,
            versions: HashMap::new(),
            prune_at: BTreeMap::new(),
            version_count: 0,
            watermark: i64::MIN,
            max_parallelism,
            counters,
            hashes: Vec::new(),
            late_output: false,
            late: Vec::new(),
        })
    }

    /// The same, sending late left rows to the late output when `on`.
    pub fn with_late_output(mut self, on: bool) -> TemporalJoin {
        self.late_output = on;
        self
    }

    /// (left rows waiting, versions kept): tests, metrics.
    pub fn buffered(&self) -> (usize, usize) {
        (self.left.len(), self.version_count)
    }

    fn outer(&self) -> bool {
        self.spec.join_type == JoinType::LeftOuter
    }

    fn side(&mut self, side: u32, batch: Batch) -> Result<(), OperatorError> {
        let n = batch.len();
        if n == 0 {
            return Ok(());
        }
        let key = if side == 0 { &self.spec.left_key } else { &self.spec.right_key };
        let mut own = std::mem::take(&mut self.hashes);
        let hashes = match batch.hashes_of(key) {
            Some(h) => h,
            None => {
                key_hashes(&batch.columns, key, n, &mut own);
                &own
            }
        };
        let wm = self.watermark;
        let mut late: Vec<u32> = Vec::new();
        for (r, (&ts, &h)) in batch.timestamps.iter().zip(hashes).enumerate() {
            if ts == NO_TIMESTAMP || (wm != i64::MIN && ts < wm) {
                late.push(r as u32);
            } else if side == 0 {
                self.left.insert(&batch, r, h, false);
            } else {
                self.add_version(&batch, r, h, ts);
            }
        }
        self.hashes = own;
        late_rows(&batch, &late, side == 0 && self.late_output, wm, &mut self.late, &self.counters);
        Ok(())
    }

    /// Keeps row `r` of `batch` as its key's version from `ts` on (a later
    /// row of the same key and time replaces it).
    fn add_version(&mut self, batch: &Batch, r: usize, h: u64, ts: i64) {
        let rk = &self.spec.right_key;
        if rk.iter().any(|&c| !batch.columns[c].is_valid(r)) {
            return;
        }
        let deleted = batch.kind(r) == RowKind::Delete
            || self.spec.deleted.is_some_and(|d| matches!(batch.columns[d].value_ref(r), Some(ValueRef::Bool(true))));
        let keys = self.versions.entry(h).or_default();
        let i = match keys.iter().position(|k| rk.iter().zip(&k.key).all(|(&c, v)| row_key_eq(batch, c, r, v))) {
            Some(i) => i,
            None => {
                let key = rk.iter().map(|&c| batch.columns[c].value(r).unwrap_or(Value::Null)).collect();
                keys.push(KeyVersions { key, versions: BTreeMap::new() });
                keys.len() - 1
            }
        };
        let row = (!deleted).then(|| batch.row(r));
        if keys[i].versions.insert(ts, row).is_none() {
            self.version_count += 1;
        }
        self.prune_at.entry(ts).or_default().push(h);
    }

    /// Emits the left rows before `w` with their versions, forgets them,
    /// and prunes the versions no left row to come can meet.
    fn advance(&mut self, w: i64, out: &mut Vec<Batch>) {
        if w <= self.watermark {
            return;
        }
        self.watermark = w;
        let mut emit = Emitter::new(&self.left_types, &self.right_types);
        let (versions, lk, outer) = (&self.versions, &self.spec.left_key, self.outer());
        self.left.take_undone(w.saturating_sub(1), |rows, l, h| {
            let t = rows.timestamps[l];
            let found = versions
                .get(&h)
                .and_then(|keys| keys.iter().find(|k| lk.iter().zip(&k.key).all(|(&c, v)| row_key_eq(rows, c, l, v))))
                .and_then(|k| k.versions.range(..=t).next_back())
                .and_then(|(_, row)| row.as_ref());
            match found {
                Some(row) => emit.push_values(rows, l, row, t),
                None if outer => emit.push_unmatched(rows, l, t),
                None => {}
            }
        });
        emit.finish(out);
        self.left.expire(w);
        self.prune(w);
    }

    /// Prunes the keys that got a version before `w` since the last time.
    fn prune(&mut self, w: i64) {
        let mut visit = Vec::new();
        while let Some(entry) = self.prune_at.first_entry() {
            if *entry.key() >= w {
                break;
            }
            visit.extend(entry.remove());
        }
        visit.sort_unstable();
        visit.dedup();
        for h in visit {
            let Some(keys) = self.versions.get_mut(&h) else { continue };
            for k in keys.iter_mut() {
                // Keep the latest before `w` (if not a deletion) and all after.
                let before: Vec<i64> = k.versions.range(..w).map(|(t, _)| *t).collect();
                let Some((&latest, rest)) = before.split_last() else { continue };
                for t in rest {
                    k.versions.remove(t);
                    self.version_count -= 1;
                }
                if k.versions.get(&latest).is_some_and(Option::is_none) {
                    k.versions.remove(&latest);
                    self.version_count -= 1;
                }
            }
            keys.retain(|k| !k.versions.is_empty());
            if keys.is_empty() {
                self.versions.remove(&h);
            }
        }
    }
}

impl Operator for TemporalJoin {
    fn process(&mut self, input: Batch, _out: &mut Vec<Batch>) -> Result<(), OperatorError> {
        self.side(0, input)
    }

    fn process_input(&mut self, input: u32, batch: Batch, _out: &mut Vec<Batch>) -> Result<(), OperatorError> {
        match input {
            0 | 1 => self.side(input, batch),
            other => Err(OperatorError::Setup {
                operator: self.name.clone(),
                message: format!("a join has two inputs, not input {other} (this is a bug in flowc)"),
            }),
        }
    }

    fn take_late(&mut self) -> Vec<Batch> {
        std::mem::take(&mut self.late)
    }

    fn on_signal(&mut self, signal: Signal, out: &mut Vec<Batch>) -> Result<Option<Signal>, OperatorError> {
        if let Signal::Watermark(w) = signal {
            self.advance(w, out);
        }
        Ok(Some(signal))
    }

    fn snapshot(&self) -> KeyedSnapshot {
        KeyedSnapshot::collect(|out| self.snapshot_into(out))
    }

    fn snapshot_into(&self, out: &mut dyn KeyGroupWriter) -> std::io::Result<()> {
        // Where everything is first, copying no value; one key group's rows
        // and versions become values at a time.
        let maxp = self.max_parallelism;
        let mut left = self.left.rows_by_key_group(maxp);
        let mut versions: BTreeMap<u32, Vec<&KeyVersions>> = BTreeMap::new();
        for (h, keys) in &self.versions {
            versions.entry(key_group(*h, maxp)).or_default().extend(keys.iter());
        }
        let groups: BTreeSet<u32> = left.keys().chain(versions.keys()).copied().collect();
        for kg in groups {
            let mut g = SavedGroup::default();
            for k in left.remove(&kg).unwrap_or_default() {
                if !k.done() {
                    g.left.push(k.saved());
                }
            }
            let keys = versions.remove(&kg);
            if g.left.is_empty() && keys.is_none() {
                // A key group of done left rows only is not kept.
                continue;
            }
            for k in keys.unwrap_or_default() {
                for (t, row) in &k.versions {
                    g.versions.push((k.key.clone(), *t, row.clone()));
                }
            }
            let mut bytes = vec![SNAPSHOT_VERSION];
            bytes.extend(bincode::serde::encode_to_vec(&g, bincode::config::standard()).unwrap_or_default());
            out.key_group(kg, &bytes)?;
        }
        Ok(())
    }

    fn restore(&mut self, state: KeyedSnapshot) -> Result<(), OperatorError> {
        let name = self.name.clone();
        let error = move |m: String| OperatorError::Restore { operator: name.clone(), message: m };
        let mut hashes = Vec::new();
        for (kg, bytes) in &state.key_groups {
            let g: SavedGroup = match bytes.split_first() {
                Some((&SNAPSHOT_VERSION, body)) => {
                    decode_all(body).map_err(|e| error(format!("key group {kg} {e}")))?
                }
                Some((v, _)) => {
                    return Err(error(format!(
                        "key group {kg} is in temporal join state format {v}, which this flowc does not read (it reads {SNAPSHOT_VERSION})"
                    )))
                }
                None => return Err(error(format!("key group {kg} is empty"))),
            };
            if !self.left.insert_saved(&g.left, &[], &mut hashes) {
                return Err(error(format!(
                    "key group {kg} has left rows of another layout than the job's{LAYOUT_HINT}"
                )));
            }
            for (key, t, row) in g.versions {
                let fits = key.len() == self.spec.right_key.len()
                    && row.as_ref().is_none_or(|r| Batch::from_rows(&self.right_types, &[(t, r.clone())]).is_some());
                if !fits {
                    return Err(error(format!("key group {kg} has versions of another layout than the job's")));
                }
                let h = key_hash(&key);
                let keys = self.versions.entry(h).or_default();
                let i = match keys.iter().position(|k| k.key == key) {
                    Some(i) => i,
                    None => {
                        keys.push(KeyVersions { key, versions: BTreeMap::new() });
                        keys.len() - 1
                    }
                };
                if keys[i].versions.insert(t, row).is_none() {
                    self.version_count += 1;
                }
                self.prune_at.entry(t).or_default().push(h);
            }
        }
        Ok(())
    }
}

/// Whether row `r`'s value of column `c` of `batch` equals `v` as keys are
/// (a null equals nothing, as in [`super::buffer::keys_equal`]).
fn row_key_eq(batch: &Batch, c: usize, r: usize, v: &Value) -> bool {
    match batch.columns[c].value_ref(r) {
        Some(ValueRef::Null) | None => false,
        Some(x) => x.key_eq(v),
    }
}

#[cfg(test)]
mod tests;
