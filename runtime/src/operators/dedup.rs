//! `dedup k within D`: the first record per key passes, later ones with
//! the same key are dropped until the key is forgotten, `D` after it was
//! first seen (Flink SQL's deduplication keeping the first row). Time is
//! event time when the stream has watermarks (a key is forgotten once the
//! watermark passes first-seen + `D`, and a record at or after that time
//! counts as new even before), else processing time. With `ttl`, a key is
//! also forgotten `ttl` after it was first seen in processing time (as
//! Flink's state TTL, which dedup state only writes once). The output is
//! append-only: the records that pass, unchanged.
//!
//! State is a set of keys with when each was first seen, snapshotted per
//! key group (format 1) and redistributed on rescale.
//!
//! `dedup k keep last` is the other operator, in `last`.

mod last;

pub use last::DedupLastOperator;

use super::keyed::{decode_groups, find_slots, write_groups, SlotTimers};
use super::window_state::KeyTable;
use super::{KeyGroupWriter, KeyedSnapshot, Operator, OperatorError};
use crate::data::Batch;
use crate::expr::EvalError;
use crate::keygroup::{key_group, key_hash, Key};
use crate::record::{Signal, NO_TIMESTAMP};
use flowc_compiler::ir::{Dedup, Schema, TimeDomain};
use serde::{Deserialize, Serialize};

/// Format of a key group's bytes in a snapshot; bump on change.
const SNAPSHOT_VERSION: u8 = 1;

/// One key in a checkpoint.
#[derive(Serialize, Deserialize)]
struct DedupEntry {
    key: Key,
    /// When the key was first seen, in the operator's time.
    first_seen: i64,
    /// When it was first seen in processing time (for `ttl`).
    written: i64,
}

/// A key's state, per slot.
#[derive(Debug, Clone, Copy)]
struct Seen {
    first_seen: i64,
    written: i64,
}

pub struct DedupOperator {
    name: String,
    spec: Dedup,
    max_parallelism: u32,
    keys: KeyTable,
    seen: Vec<Option<Seen>>,
    /// When keys are forgotten, in the operator's time (`within`).
    forget: SlotTimers,
    /// When keys expire in processing time (`ttl`).
    expiry: SlotTimers,
    watermark: i64,
    input: Schema,
    hashes: Vec<u64>,
    slots: Vec<u32>,
    kept: Vec<u32>,
    clock: fn() -> i64,
}

impl DedupOperator {
    pub fn new(name: String, spec: Dedup, input: &Schema, max_parallelism: u32) -> DedupOperator {
        DedupOperator {
            name,
            spec,
            max_parallelism,
            keys: KeyTable::default(),
            seen: Vec::new(),
            forget: SlotTimers::default(),
            expiry: SlotTimers::default(),
            watermark: i64::MIN,
            input: input.clone(),
            hashes: Vec::new(),
            slots: Vec::new(),
            kept: Vec::new(),
            clock: crate::clock::now_ms,
        }
    }

    /// The number of keys held (tests).
    pub fn key_count(&self) -> usize {
        self.keys.entries().count()
    }

    fn within(&self) -> i64 {
        i64::try_from(self.spec.within_ms).unwrap_or(i64::MAX)
    }

    /// Remembers the key at `slot` as first seen at `t` (and `now`).
    fn remember(&mut self, slot: u32, t: i64, now: i64) {
        let i = slot as usize;
        if self.seen.len() <= i {
            self.seen.resize(i + 1, None);
        }
        self.seen[i] = Some(Seen { first_seen: t, written: now });
        self.forget.add(t.saturating_add(self.within()), slot);
        if let Some(ttl) = self.spec.ttl_ms {
            self.expiry.add(now.saturating_add(ttl as i64), slot);
        }
    }

    /// Forgets the keys whose `within` (at `time`) or `ttl` (at `now`) is
    /// over; a timer of a key seen anew since is only a hint and is
    /// dropped (the newer one stands).
    fn forget_until(&mut self, time: Option<i64>, now: Option<i64>) {
        let within = self.within();
        let mut due = Vec::new();
        if let Some(t) = time {
            due.extend(self.forget.due(t).into_iter().map(|(_, s)| s));
        }
        if let Some(n) = now {
            due.extend(self.expiry.due(n).into_iter().map(|(_, s)| s));
        }
        for slot in due {
            let Some(Some(s)) = self.seen.get(slot as usize).copied() else { continue };
            let by_time = time.is_some_and(|t| s.first_seen.saturating_add(within) <= t);
            let by_ttl = match (now, self.spec.ttl_ms) {
                (Some(n), Some(ttl)) => s.written.saturating_add(ttl as i64) <= n,
                _ => false,
            };
            if by_time || by_ttl {
                self.keys.remove(slot);
                self.seen[slot as usize] = None;
            }
        }
    }
}

impl Operator for DedupOperator {
    fn process(&mut self, input: Batch, out: &mut Vec<Batch>) -> Result<(), OperatorError> {
        let n = input.len();
        if n == 0 {
            return Ok(());
        }
        let now = (self.clock)();
        let event_time = self.spec.time == TimeDomain::EventTime;
        let mut own = std::mem::take(&mut self.hashes);
        let mut slots = std::mem::take(&mut self.slots);
        let mut kept = std::mem::take(&mut self.kept);
        kept.clear();
        if !find_slots(&mut self.keys, &input, &self.spec.key, &mut own, &mut slots) {
            let e = EvalError::internal("a key column is missing");
            return Err(OperatorError::Eval { operator: self.name.clone(), message: e.describe(&input, &self.input) });
        }
        let within = self.within();
        for (r, &slot) in slots.iter().enumerate() {
            let ts = input.timestamps[r];
            let t = if event_time && ts != NO_TIMESTAMP { ts } else { now };
            let first = match self.seen.get(slot as usize).copied().flatten() {
                None => true,
                Some(s) => {
                    s.first_seen.saturating_add(within) <= t
                        || self.spec.ttl_ms.is_some_and(|ttl| s.written.saturating_add(ttl as i64) <= now)
                }
            };
            if first {
                self.remember(slot, t, now);
                kept.push(r as u32);
            }
        }
        self.hashes = own;
        self.slots = slots;
        if kept.len() == n {
            out.push(input);
        } else if !kept.is_empty() {
            out.push(input.gather(&kept));
        }
        self.kept = kept;
        Ok(())
    }

    fn on_signal(&mut self, signal: Signal, _out: &mut Vec<Batch>) -> Result<Option<Signal>, OperatorError> {
        if let Signal::Watermark(w) = signal {
            if w > self.watermark {
                self.watermark = w;
                if self.spec.time == TimeDomain::EventTime {
                    self.forget_until(Some(w), None);
                }
            }
        }
        Ok(Some(signal))
    }

    fn on_timer(&mut self, now_ms: i64, _out: &mut Vec<Batch>) -> Result<Option<Signal>, OperatorError> {
        let time = (self.spec.time == TimeDomain::ProcessingTime).then_some(now_ms);
        let now = self.spec.ttl_ms.map(|_| now_ms);
        if time.is_some() || now.is_some() {
            self.forget_until(time, now);
        }
        Ok(None)
    }

    fn snapshot(&self) -> KeyedSnapshot {
        KeyedSnapshot::collect(|out| self.snapshot_into(out))
    }

    fn snapshot_into(&self, out: &mut dyn KeyGroupWriter) -> std::io::Result<()> {
        // References first; a key is copied only while its key group is written.
        let slots = self.keys.slots().filter_map(|(slot, e)| {
            let Some(Some(s)) = self.seen.get(slot as usize) else { return None };
            Some((key_group(e.hash, self.max_parallelism), &e.order[..], (e, s)))
        });
        let make = |(e, s): (&super::window_state::KeyEntry, &Seen)| DedupEntry {
            key: Key(e.key.clone()),
            first_seen: s.first_seen,
            written: s.written,
        };
        write_groups(SNAPSHOT_VERSION, slots, make, out)
    }

    fn restore(&mut self, state: KeyedSnapshot) -> Result<(), OperatorError> {
        let restored: Vec<DedupEntry> = decode_groups(&self.name, SNAPSHOT_VERSION, &state)?;
        for e in restored {
            if e.key.0.len() != self.spec.key.len() {
                return Err(OperatorError::Restore {
                    operator: self.name.clone(),
                    message: "the state has keys of another length than the job's".into(),
                });
            }
            let hash = key_hash(&e.key.0);
            let slot = match self.keys.find_owned(&e.key.0, hash) {
                Some(s) => s,
                None => self.keys.insert(e.key.0, hash),
            };
            self.remember(slot, e.first_seen, e.written);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Value;
    use flowc_compiler::ir::{DataType, Field};

    fn op(time: TimeDomain, ttl_ms: Option<u64>) -> DedupOperator {
        let input =
            Schema { name: None, fields: vec![Field::new("id", DataType::String), Field::new("n", DataType::Long)] };
        DedupOperator::new(
            "d".into(),
            Dedup { key: vec![0], within_ms: 100, keep_last: false, time, ttl_ms },
            &input,
            128,
        )
    }

    fn batch(rows: &[(i64, &str, i64)]) -> Batch {
        let rows: Vec<(i64, Vec<Value>)> =
            rows.iter().map(|(t, id, n)| (*t, vec![Value::Str(id.to_string()), Value::Int(*n)])).collect();
        Batch::from_rows(&[DataType::String, DataType::Long], &rows).expect("fits")
    }

    fn ns(out: &[Batch]) -> Vec<i64> {
        out.iter().flat_map(|b| b.rows()).map(|(_, r)| if let Value::Int(n) = r[1] { n } else { -1 }).collect()
    }

    #[test]
    fn keeps_the_first_record_per_key_until_within_has_passed_in_event_time() {
        let mut d = op(TimeDomain::EventTime, None);
        let mut out = Vec::new();
        d.process(batch(&[(0, "a", 1), (10, "b", 2), (20, "a", 3), (99, "a", 4), (100, "a", 5)]), &mut out).unwrap();
        // `a` at 100 is `within` (100 ms) after its first sighting at 0: new again.
        assert_eq!(ns(&out), vec![1, 2, 5]);
        assert_eq!(d.key_count(), 2);
        d.on_signal(Signal::Watermark(150), &mut out).unwrap();
        // `b` (first seen at 10) is forgotten at 110; `a` (seen anew at 100) at 200.
        assert_eq!(d.key_count(), 1);
        d.on_signal(Signal::Watermark(200), &mut out).unwrap();
        assert_eq!(d.key_count(), 0);
    }

    #[test]
    fn snapshot_and_restore_keep_what_was_seen() {
        let mut d = op(TimeDomain::EventTime, None);
        let mut out = Vec::new();
        let rows: Vec<(i64, String, i64)> = (0..50).map(|i| (i, format!("k{}", i % 17), i)).collect();
        let rows: Vec<(i64, &str, i64)> = rows.iter().map(|(t, k, n)| (*t, k.as_str(), *n)).collect();
        d.process(batch(&rows), &mut out).unwrap();
        let snap = d.snapshot();
        let mut e = op(TimeDomain::EventTime, None);
        e.restore(snap.clone()).unwrap();
        assert_eq!(e.snapshot(), snap);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        d.process(batch(&[(60, "k3", 1000), (61, "new", 1001)]), &mut a).unwrap();
        e.process(batch(&[(60, "k3", 1000), (61, "new", 1001)]), &mut b).unwrap();
        assert_eq!(ns(&a), vec![1001]);
        assert_eq!(ns(&a), ns(&b));
        let mut bad = snap;
        bad.key_groups[0].1[0] = 7;
        assert!(op(TimeDomain::EventTime, None).restore(bad).unwrap_err().to_string().contains("state format 7"));
    }

    #[test]
    fn ttl_forgets_keys_by_processing_time_and_shrinks_the_snapshot() {
        let mut d = op(TimeDomain::EventTime, Some(1000));
        d.clock = || 5_000;
        let mut out = Vec::new();
        d.process(batch(&[(0, "a", 1), (1, "b", 2)]), &mut out).unwrap();
        let before: usize = d.snapshot().key_groups.iter().map(|g| g.1.len()).sum();
        assert!(before > 0);
        d.on_timer(5_999, &mut out).unwrap();
        assert_eq!(d.key_count(), 2);
        d.on_timer(6_000, &mut out).unwrap();
        assert_eq!(d.key_count(), 0);
        assert!(d.snapshot().key_groups.is_empty());
    }
}
