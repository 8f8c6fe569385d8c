//! One side's buffered rows of a join: columnar, in time buckets, each
//! bucket indexed by key hash.
//!
//! A row is copied once, column by column, into the bucket of its event
//! time; the bucket chains the rows of one key hash (`heads`/`prev`), so
//! that a probe walks only candidates and allocates nothing. Expiry drops
//! whole buckets once the watermark has passed their end: memory stays
//! bounded by the join's bounds times the input rate, plus one bucket.
//!
//! Each row carries a `done` flag for left outer joins: set once the row
//! has met a right row or has been emitted with nulls, so that no row is
//! emitted unmatched twice, nor unmatched after a match (a regular left
//! join's left rows: set once the row has met a right row, so that its
//! null-padded row is retracted once, at its first match). A regular join's
//! rows are bucketed by when they arrived instead of their event time, and
//! carry that arrival time, so that its `ttl` drops whole buckets and a
//! probe skips a row whose `ttl` is over before its bucket goes.

use crate::data::{Batch, Column, ValueRef};
use crate::keygroup::key_group;
use crate::record::Value;
use flowc_compiler::ir::DataType;
use std::collections::{BTreeMap, HashMap};

const NONE: u32 = u32::MAX;

/// Rows of one time bucket.
pub struct Bucket {
    pub rows: Batch,
    pub hashes: Vec<u64>,
    /// Key hash → the last row with it; `prev` chains to the one before.
    heads: HashMap<u64, u32>,
    prev: Vec<u32>,
    /// Per row: matched, or emitted unmatched (left outer joins).
    done: Vec<bool>,
    /// Per row: when it arrived, in processing time (regular joins' rows,
    /// inserted with [`SideBuffer::insert_at`]; empty otherwise).
    stamps: Vec<i64>,
}

impl Bucket {
    fn new(types: &[DataType]) -> Bucket {
        Bucket {
            rows: Batch::empty(types, 0),
            hashes: Vec::new(),
            heads: HashMap::new(),
            prev: Vec::new(),
            done: Vec::new(),
            stamps: Vec::new(),
        }
    }

    fn push(&mut self, src: &Batch, r: usize, hash: u64, done: bool) {
        let i = self.rows.len() as u32;
        let one = [r as u32];
        for (d, s) in self.rows.columns.iter_mut().zip(&src.columns) {
            d.extend_rows(s, &one);
        }
        self.rows.timestamps.push(src.timestamps[r]);
        self.hashes.push(hash);
        let prev = self.heads.insert(hash, i).unwrap_or(NONE);
        self.prev.push(prev);
        self.done.push(done);
    }
}

/// A buffered row, for a snapshot to read (see
/// [`SideBuffer::rows_by_key_group`]).
#[derive(Clone, Copy)]
pub struct KeptRow<'a> {
    bucket: &'a Bucket,
    row: usize,
}

impl KeptRow<'_> {
    /// Its event time and values.
    pub fn saved(&self) -> (i64, Vec<Value>) {
        (self.bucket.rows.timestamps[self.row], self.bucket.rows.row(self.row))
    }

    /// Matched, or emitted unmatched (left outer joins).
    pub fn done(&self) -> bool {
        self.bucket.done[self.row]
    }

    /// When it arrived (a regular join's rows; `i64::MIN` for others).
    pub fn arrived(&self) -> i64 {
        self.bucket.stamps.get(self.row).copied().unwrap_or(i64::MIN)
    }
}

/// One side of a join.
pub struct SideBuffer {
    types: Vec<DataType>,
    /// The key fields of this side's records.
    pub key: Vec<usize>,
    bucket_ms: i64,
    /// Bucket start → its rows.
    buckets: BTreeMap<i64, Bucket>,
    len: usize,
}

/// Whether row `a` of `ac` (key fields `ak`) and row `b` of `bc` (`bk`)
/// have equal keys.
pub fn keys_equal(ac: &[Column], ak: &[usize], a: usize, bc: &[Column], bk: &[usize], b: usize) -> bool {
    ak.iter().zip(bk).all(|(&x, &y)| match (ac[x].value_ref(a), bc[y].value_ref(b)) {
        (Some(ValueRef::Double(p)), Some(ValueRef::Double(q))) => p.to_bits() == q.to_bits(),
        (Some(p), Some(q)) => p == q,
        _ => false,
    })
}

impl SideBuffer {
    pub fn new(types: Vec<DataType>, key: Vec<usize>, bucket_ms: i64) -> SideBuffer {
        SideBuffer { types, key, bucket_ms: bucket_ms.max(1), buckets: BTreeMap::new(), len: 0 }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn bucket_of(&self, ts: i64) -> i64 {
        ts.saturating_sub(ts.rem_euclid(self.bucket_ms))
    }

    /// Buffers row `r` of `src`, whose key hash is `hash`; `done`: it has
    /// matched already (left outer joins).
    pub fn insert(&mut self, src: &Batch, r: usize, hash: u64, done: bool) {
        let b = self.bucket_of(src.timestamps[r]);
        let types = &self.types;
        self.buckets.entry(b).or_insert_with(|| Bucket::new(types)).push(src, r, hash, done);
        self.len += 1;
    }

    /// Buffers row `r` of `src` (key hash `hash`) in the bucket of `at`
    /// rather than of its event time, and remembers `at`: a regular join's
    /// rows, bucketed by when they arrived so that expiry drops whole
    /// buckets. `done`: it has met a row already (a regular left join's).
    pub fn insert_at(&mut self, at: i64, src: &Batch, r: usize, hash: u64, done: bool) {
        let b = self.bucket_of(at);
        let types = &self.types;
        let bucket = self.buckets.entry(b).or_insert_with(|| Bucket::new(types));
        bucket.push(src, r, hash, done);
        bucket.stamps.push(at);
        self.len += 1;
    }

    /// Calls `f(bucket rows, row)` for every row inserted with
    /// [`SideBuffer::insert_at`] at or after `since`, with key hash `hash`
    /// and key equal to row `r` of `probe` (key fields `probe_key`).
    pub fn probe_since(
        &self,
        hash: u64,
        since: i64,
        probe: &Batch,
        probe_key: &[usize],
        r: usize,
        mut f: impl FnMut(&Batch, usize),
    ) {
        for (_, bucket) in self.buckets.range(self.bucket_of(since)..) {
            let mut i = bucket.heads.get(&hash).copied().unwrap_or(NONE);
            while i != NONE {
                let row = i as usize;
                if bucket.stamps.get(row).is_some_and(|&at| at >= since)
                    && keys_equal(&bucket.rows.columns, &self.key, row, &probe.columns, probe_key, r)
                {
                    f(&bucket.rows, row);
                }
                i = bucket.prev[row];
            }
        }
    }

    /// As [`SideBuffer::probe_since`], calling `f(bucket rows, row, done)`
    /// with whether the row had met a row before, and marks it done: the
    /// left side of a regular left join, probed by a right row.
    #[allow(clippy::too_many_arguments)] // as `probe`
    pub fn probe_since_marking(
        &mut self,
        hash: u64,
        since: i64,
        probe: &Batch,
        probe_key: &[usize],
        r: usize,
        mut f: impl FnMut(&Batch, usize, bool),
    ) {
        let from = self.bucket_of(since);
        for (_, bucket) in self.buckets.range_mut(from..) {
            let mut i = bucket.heads.get(&hash).copied().unwrap_or(NONE);
            while i != NONE {
                let row = i as usize;
                if bucket.stamps.get(row).is_some_and(|&at| at >= since)
                    && keys_equal(&bucket.rows.columns, &self.key, row, &probe.columns, probe_key, r)
                {
                    f(&bucket.rows, row, bucket.done[row]);
                    bucket.done[row] = true;
                }
                i = bucket.prev[row];
            }
        }
    }

    /// Calls `f(bucket rows, row)` for every buffered row with key hash
    /// `hash`, event time in `[from, to]`, and key equal to row `r` of
    /// `probe` (key fields `probe_key`).
    #[allow(clippy::too_many_arguments)] // three of them are the probe row; a struct would only rename them
    pub fn probe(
        &self,
        hash: u64,
        from: i64,
        to: i64,
        probe: &Batch,
        probe_key: &[usize],
        r: usize,
        mut f: impl FnMut(&Batch, usize),
    ) {
        if from > to {
            return;
        }
        for (_, bucket) in self.buckets.range(self.bucket_of(from)..=to) {
            let mut i = bucket.heads.get(&hash).copied().unwrap_or(NONE);
            while i != NONE {
                let row = i as usize;
                let ts = bucket.rows.timestamps[row];
                if ts >= from
                    && ts <= to
                    && keys_equal(&bucket.rows.columns, &self.key, row, &probe.columns, probe_key, r)
                {
                    f(&bucket.rows, row);
                }
                i = bucket.prev[row];
            }
        }
    }

    /// As [`SideBuffer::probe`], and marks every row met as done (the left
    /// side of a left outer join, probed by a right row).
    #[allow(clippy::too_many_arguments)] // as `probe`
    pub fn probe_marking(
        &mut self,
        hash: u64,
        from: i64,
        to: i64,
        probe: &Batch,
        probe_key: &[usize],
        r: usize,
        mut f: impl FnMut(&Batch, usize),
    ) {
        if from > to {
            return;
        }
        let from_bucket = self.bucket_of(from);
        for (_, bucket) in self.buckets.range_mut(from_bucket..=to) {
            let mut i = bucket.heads.get(&hash).copied().unwrap_or(NONE);
            while i != NONE {
                let row = i as usize;
                let ts = bucket.rows.timestamps[row];
                if ts >= from
                    && ts <= to
                    && keys_equal(&bucket.rows.columns, &self.key, row, &probe.columns, probe_key, r)
                {
                    bucket.done[row] = true;
                    f(&bucket.rows, row);
                }
                i = bucket.prev[row];
            }
        }
    }

    /// Calls `f(bucket rows, row, key hash)` for every row not done with
    /// event time at or before `to`, in bucket order, and marks it done:
    /// the left outer join's rows that can meet no right row any more, the
    /// temporal join's rows whose version is known.
    pub fn take_undone(&mut self, to: i64, mut f: impl FnMut(&Batch, usize, u64)) {
        for (_, bucket) in self.buckets.range_mut(..=to) {
            for row in 0..bucket.rows.len() {
                if !bucket.done[row] && bucket.rows.timestamps[row] <= to {
                    bucket.done[row] = true;
                    f(&bucket.rows, row, bucket.hashes[row]);
                }
            }
        }
    }

    /// Calls `f(bucket rows, row, hash)` for every row with event time in `[from, to]`.
    pub fn scan(&self, from: i64, to: i64, mut f: impl FnMut(&Batch, usize, u64)) {
        if from > to {
            return;
        }
        for (_, bucket) in self.buckets.range(self.bucket_of(from)..=to) {
            for (row, &ts) in bucket.rows.timestamps.iter().enumerate() {
                if ts >= from && ts <= to {
                    f(&bucket.rows, row, bucket.hashes[row]);
                }
            }
        }
    }

    /// The start of every bucket holding rows, in order.
    pub fn bucket_starts(&self) -> impl Iterator<Item = i64> + '_ {
        self.buckets.keys().copied()
    }

    /// The earliest event time buffered (of a bucket, not exact).
    pub fn first_bucket(&self) -> Option<i64> {
        self.buckets.keys().next().copied()
    }

    /// Drops the buckets whose rows are all before `before`.
    pub fn expire(&mut self, before: i64) {
        while let Some(entry) = self.buckets.first_entry() {
            if entry.key().saturating_add(self.bucket_ms) > before {
                break;
            }
            self.len -= entry.get().rows.len();
            entry.remove();
        }
    }

    /// Where every row is, by the key group of its key hash (of
    /// `max_parallelism` groups), in bucket order within a group: a
    /// snapshot's first pass, which copies no value, so that a snapshot
    /// holds one key group's rows as values at a time rather than the
    /// whole state's (a regular join's state is all of both inputs).
    pub fn rows_by_key_group(&self, max_parallelism: u32) -> BTreeMap<u32, Vec<KeptRow<'_>>> {
        let mut groups: BTreeMap<u32, Vec<KeptRow<'_>>> = BTreeMap::new();
        for bucket in self.buckets.values() {
            for (r, &h) in bucket.hashes.iter().enumerate() {
                groups.entry(key_group(h, max_parallelism)).or_default().push(KeptRow { bucket, row: r });
            }
        }
        groups
    }

    /// Every row at or after `from` as (key hash, event time, values,
    /// done): for snapshots, in bucket order.
    pub fn saved_rows(&self, from: i64) -> impl Iterator<Item = (u64, i64, Vec<Value>, bool)> + '_ {
        self.buckets.values().flat_map(move |b| {
            (0..b.rows.len())
                .filter(move |&r| b.rows.timestamps[r] >= from)
                .map(move |r| (b.hashes[r], b.rows.timestamps[r], b.rows.row(r), b.done[r]))
        })
    }

    /// Buffers rows of owned values that arrived at `at[i]` (a regular
    /// join's restore), row `i` done if `done[i]` (missing: not done);
    /// `false` if one does not fit this side's layout.
    pub fn insert_saved_at(
        &mut self,
        rows: &[(i64, Vec<Value>)],
        at: &[i64],
        done: &[bool],
        hashes: &mut Vec<u64>,
    ) -> bool {
        if rows.len() != at.len() || (!done.is_empty() && done.len() != rows.len()) {
            return false;
        }
        let Some(batch) = Batch::from_rows(&self.types, rows) else { return false };
        crate::keygroup::key_hashes(&batch.columns, &self.key, batch.len(), hashes);
        for (r, (&h, &t)) in hashes.iter().zip(at).enumerate() {
            self.insert_at(t, &batch, r, h, done.get(r).copied().unwrap_or(false));
        }
        true
    }

    /// Buffers rows of owned values (a restore), row `i` done if `done[i]`
    /// (missing: not done); `false` if one does not fit this side's layout.
    pub fn insert_saved(&mut self, rows: &[(i64, Vec<Value>)], done: &[bool], hashes: &mut Vec<u64>) -> bool {
        let Some(batch) = Batch::from_rows(&self.types, rows) else { return false };
        crate::keygroup::key_hashes(&batch.columns, &self.key, batch.len(), hashes);
        for (r, &h) in hashes.iter().enumerate() {
            self.insert(&batch, r, h, done.get(r).copied().unwrap_or(false));
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(rows: &[(i64, i64, &str)]) -> Batch {
        let rows: Vec<(i64, Vec<Value>)> =
            rows.iter().map(|(t, k, s)| (*t, vec![Value::Int(*k), Value::Str(s.to_string())])).collect();
        Batch::from_rows(&[DataType::Long, DataType::String], &rows).expect("fits")
    }

    #[test]
    fn probes_by_key_and_time_and_expires_whole_buckets() {
        let mut side = SideBuffer::new(vec![DataType::Long, DataType::String], vec![0], 10);
        let b = batch(&[(1, 7, "a"), (5, 8, "b"), (12, 7, "c"), (25, 7, "d")]);
        let mut hashes = Vec::new();
        crate::keygroup::key_hashes(&b.columns, &[0], b.len(), &mut hashes);
        for (r, &h) in hashes.iter().enumerate() {
            side.insert(&b, r, h, false);
        }
        let mut seen = Vec::new();
        side.probe(hashes[0], 0, 20, &b, &[0], 0, |rows, r| seen.push(rows.row(r)[1].clone()));
        seen.sort_by_key(|v| v.to_string());
        assert_eq!(seen, vec![Value::Str("a".into()), Value::Str("c".into())]);
        side.expire(12);
        assert_eq!(side.len(), 2, "the bucket [0, 10) is gone, [10, 20) stays");
        let mut scanned = 0;
        side.scan(i64::MIN, i64::MAX, |_, _, _| scanned += 1);
        assert_eq!(scanned, 2);
        assert_eq!(side.saved_rows(13).count(), 1);
    }
}
