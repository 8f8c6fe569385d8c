//! The regular join: `join s on k == s.k ttl D` with no time bound, Flink
//! SQL's `FROM a JOIN b ON a.k = b.k` (its `StreamingJoinOperator` for a
//! join of two append-only inputs), inner or left outer.
//!
//! Each arriving row of either side meets every kept row of the other side
//! with an equal key, each pair is emitted at once, and the row is kept
//! under its key. An inner join's output is append-only: an inner join of
//! append-only inputs never takes a row back. A pair's event time is the later of its
//! two rows' (rows without one give none), but the output carries no
//! watermark of its own: the checker treats it as a stream without event
//! time, as Flink SQL drops the time attributes of a regular join.
//! Watermarks are forwarded as they come. A row with a null key field
//! meets nothing (SQL's `NULL = NULL` is not true) and is not kept.
//!
//! State is bounded by `ttl` only, in processing time as Flink's
//! `table.exec.state.ttl` (`OnCreateAndWrite`, `NeverReturnExpired`): a
//! row meets rows for `D` after it arrived, never later (each kept row
//! carries its arrival time, which a probe checks), and is dropped from
//! state by the timer within `D + D/8` (rows are kept in buckets of `D/8`
//! of arrival time, dropped whole). A row is written once, so meeting rows
//! does not make it live longer, as in Flink where reads do not refresh
//! the TTL.
//!
//! **Left outer** (`left join … ttl D`, Flink's `StreamingJoinOperator`
//! with an `OuterJoinRecordStateView` on the left): every left row comes
//! out. One that meets no kept right row is emitted at once with the
//! right's fields null (`+I`); when its first right row comes, that row
//! is retracted (`-D`, the same values and event time) and the pair
//! emitted (`+I`); later right rows emit their pairs (`+I`). A left row
//! with a null key field comes out null-padded and is not kept (it can
//! meet nothing). The output is a changelog (every batch carries its row
//! kinds), a retract stream with no key: folded, it is the left join of
//! the kept rows. Flink keeps per left row its number of matches, since a
//! retraction on its right input takes one back; flowc's right input is
//! append-only (the checker refuses an updating one) and a right row that
//! expires leaves without a retraction, as in Flink
//! (`NeverReturnExpired`), so the number only grows and all that matters
//! is whether it is zero: each kept left row carries that bit (`done` in
//! the buffer), snapshotted with it. A left row that expires leaves
//! without a retraction, as in Flink. Flink writes a left row again when
//! its count changes, which restarts its TTL; flowc does not (a row lives
//! `D` after it arrived, on both sides, as in the inner join).
//!
//! Snapshots are per key group: both sides' rows with their event and
//! arrival times (and, for the left, whether it has met a row), so that a
//! restore, at any parallelism, keeps each row's remaining time to live.

use super::buffer::SideBuffer;
use super::{decode_all, Emitter, KeyGroupWriter, KeyedSnapshot, Operator, OperatorError};
use crate::data::Batch;
use crate::keygroup::key_hashes;
use crate::operators::LAYOUT_HINT;
use crate::record::Value;
use flowc_compiler::ir::DataType;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Format of a key group's bytes in a snapshot; bump on change. Version 2:
/// bincode of [`SavedGroup`]; version 1 (read too) had no `left_matched`.
const SNAPSHOT_VERSION: u8 = 2;

/// One key group's state.
#[derive(Debug, Default, Serialize, Deserialize)]
struct SavedGroup {
    /// (event time, values) of the left rows kept…
    left: Vec<(i64, Vec<Value>)>,
    /// …and when each arrived (processing time)…
    left_at: Vec<i64>,
    right: Vec<(i64, Vec<Value>)>,
    right_at: Vec<i64>,
    /// …and whether each has met a right row (a left join retracts its
    /// null-padded row at the first match; an inner join's are all false).
    left_matched: Vec<bool>,
}

/// A key group's state in format 1 (inner joins only).
#[derive(Debug, Deserialize)]
struct SavedGroupV1 {
    left: Vec<(i64, Vec<Value>)>,
    left_at: Vec<i64>,
    right: Vec<(i64, Vec<Value>)>,
    right_at: Vec<i64>,
}

/// What a regular join joins.
#[derive(Debug, Clone)]
pub struct RegularSpec {
    /// Key fields of the left, pairwise equal to…
    pub left_key: Vec<usize>,
    /// …these of the right.
    pub right_key: Vec<usize>,
    /// How long a row is kept after it arrived (processing time).
    pub ttl_ms: u64,
    /// `left join`: every left row comes out, null-padded until its first
    /// match (then retracted); the output is a changelog.
    pub left_outer: bool,
}

pub struct RegularJoin {
    name: String,
    spec: RegularSpec,
    ttl_ms: i64,
    left: SideBuffer,
    right: SideBuffer,
    left_types: Vec<DataType>,
    right_types: Vec<DataType>,
    max_parallelism: u32,
    hashes: Vec<u64>,
    /// The wall clock (epoch ms); a fixed one in tests.
    clock: fn() -> i64,
}

impl RegularJoin {
    pub fn new(
        name: String,
        spec: RegularSpec,
        left_types: Vec<DataType>,
        right_types: Vec<DataType>,
        max_parallelism: u32,
    ) -> Result<RegularJoin, OperatorError> {
        let fits = !spec.left_key.is_empty()
            && spec.left_key.len() == spec.right_key.len()
            && spec.left_key.iter().all(|k| *k < left_types.len())
            && spec.right_key.iter().all(|k| *k < right_types.len())
            && spec.ttl_ms > 0;
        if !fits {
            return Err(OperatorError::Setup {
                operator: name,
                message: "the regular join's keys or ttl do not fit its inputs (this is a bug in flowc)".into(),
            });
        }
        let ttl_ms = i64::try_from(spec.ttl_ms).unwrap_or(i64::MAX / 4);
        let bucket_ms = (ttl_ms / 8).max(1);
        Ok(RegularJoin {
            left: SideBuffer::new(left_types.clone(), spec.left_key.clone(), bucket_ms),
            right: SideBuffer::new(right_types.clone(), spec.right_key.clone(), bucket_ms),
            name,
            spec,
            ttl_ms,
            left_types,
            right_types,
            max_parallelism,
            hashes: Vec::new(),
            clock: crate::clock::now_ms,
        })
    }

    /// Rows kept on each side (tests, metrics).
    pub fn buffered(&self) -> (usize, usize) {
        (self.left.len(), self.right.len())
    }

    /// The earliest arrival of a row still alive at `now`.
    fn since(&self, now: i64) -> i64 {
        now.saturating_sub(self.ttl_ms).saturating_add(1)
    }

    /// Drops the buckets whose rows' time to live is over at `now`.
    fn expire(&mut self, now: i64) {
        let since = self.since(now);
        self.left.expire(since);
        self.right.expire(since);
    }

    fn side(&mut self, side: u32, batch: Batch, out: &mut Vec<Batch>) {
        let n = batch.len();
        if n == 0 {
            return;
        }
        let now = (self.clock)();
        self.expire(now);
        let since = self.since(now);
        let is_left = side == 0;
        let key = if is_left { &self.spec.left_key } else { &self.spec.right_key };
        let mut own = std::mem::take(&mut self.hashes);
        let hashes = match batch.hashes_of(key) {
            Some(h) => h,
            None => {
                key_hashes(&batch.columns, key, n, &mut own);
                &own
            }
        };
        let outer = self.spec.left_outer;
        let mut emit = if outer {
            Emitter::changelog(&self.left_types, &self.right_types)
        } else {
            Emitter::new(&self.left_types, &self.right_types)
        };
        for (r, (&ts, &h)) in batch.timestamps.iter().zip(hashes).enumerate() {
            // A null key meets nothing (SQL's `NULL = NULL` is not true):
            // a left join emits such a left row alone, for good.
            if key.iter().any(|&c| !batch.columns[c].is_valid(r)) {
                if outer && is_left {
                    emit.push_unmatched(&batch, r, ts);
                }
                continue;
            }
            if is_left {
                let mut met = false;
                self.right.probe_since(h, since, &batch, &self.spec.left_key, r, |rows, j| {
                    met = true;
                    emit.push(&batch, r, rows, j, ts.max(rows.timestamps[j]))
                });
                if outer && !met {
                    emit.push_unmatched(&batch, r, ts);
                }
                self.left.insert_at(now, &batch, r, h, met);
            } else if outer {
                // A left row's first match retracts its null-padded row.
                self.left.probe_since_marking(h, since, &batch, &self.spec.right_key, r, |rows, j, matched| {
                    if !matched {
                        emit.retract_unmatched(rows, j, rows.timestamps[j]);
                    }
                    emit.push(rows, j, &batch, r, ts.max(rows.timestamps[j]))
                });
                self.right.insert_at(now, &batch, r, h, false);
            } else {
                self.left.probe_since(h, since, &batch, &self.spec.right_key, r, |rows, j| {
                    emit.push(rows, j, &batch, r, ts.max(rows.timestamps[j]))
                });
                self.right.insert_at(now, &batch, r, h, false);
            }
        }
        emit.finish(out);
        self.hashes = own;
    }

    fn restore_error(&self, m: String) -> OperatorError {
        OperatorError::Restore { operator: self.name.clone(), message: m }
    }
}

impl Operator for RegularJoin {
    fn process(&mut self, input: Batch, out: &mut Vec<Batch>) -> Result<(), OperatorError> {
        self.side(0, input, out);
        Ok(())
    }

    fn process_input(&mut self, input: u32, batch: Batch, out: &mut Vec<Batch>) -> Result<(), OperatorError> {
        match input {
            0 | 1 => {
                self.side(input, batch, out);
                Ok(())
            }
            other => Err(OperatorError::Setup {
                operator: self.name.clone(),
                message: format!("a join has two inputs, not input {other} (this is a bug in flowc)"),
            }),
        }
    }

    fn on_timer(&mut self, now_ms: i64, _out: &mut Vec<Batch>) -> Result<Option<crate::record::Signal>, OperatorError> {
        self.expire(now_ms);
        Ok(None)
    }

    fn snapshot(&self) -> KeyedSnapshot {
        KeyedSnapshot::collect(|out| self.snapshot_into(out))
    }

    fn snapshot_into(&self, out: &mut dyn KeyGroupWriter) -> std::io::Result<()> {
        // One key group's rows become values at a time (see
        // `rows_by_key_group`): the state is all of both inputs.
        let left = self.left.rows_by_key_group(self.max_parallelism);
        let right = self.right.rows_by_key_group(self.max_parallelism);
        let groups: BTreeSet<u32> = left.keys().chain(right.keys()).copied().collect();
        for kg in groups {
            let (l, r) = (left.get(&kg).map_or(&[][..], Vec::as_slice), right.get(&kg).map_or(&[][..], Vec::as_slice));
            let g = SavedGroup {
                left: l.iter().map(|k| k.saved()).collect(),
                left_at: l.iter().map(|k| k.arrived()).collect(),
                right: r.iter().map(|k| k.saved()).collect(),
                right_at: r.iter().map(|k| k.arrived()).collect(),
                left_matched: l.iter().map(|k| k.done()).collect(),
            };
            let mut bytes = vec![SNAPSHOT_VERSION];
            bytes.extend(bincode::serde::encode_to_vec(&g, bincode::config::standard()).unwrap_or_default());
            out.key_group(kg, &bytes)?;
        }
        Ok(())
    }

    fn restore(&mut self, state: KeyedSnapshot) -> Result<(), OperatorError> {
        let mut hashes = Vec::new();
        for (kg, bytes) in &state.key_groups {
            let g: SavedGroup = match bytes.split_first() {
                Some((&SNAPSHOT_VERSION, body)) => {
                    decode_all(body).map_err(|e| self.restore_error(format!("key group {kg} {e}")))?
                }
                Some((1, body)) => decode_all::<SavedGroupV1>(body)
                    .map(|g| SavedGroup {
                        left: g.left,
                        left_at: g.left_at,
                        right: g.right,
                        right_at: g.right_at,
                        left_matched: Vec::new(),
                    })
                    .map_err(|e| self.restore_error(format!("key group {kg} {e}")))?,
                Some((v, _)) => {
                    return Err(self.restore_error(format!(
                        "key group {kg} is in regular join state format {v}, which this flowc does not read (it reads 1 to {SNAPSHOT_VERSION})"
                    )))
                }
                None => return Err(self.restore_error(format!("key group {kg} is empty"))),
            };
            if !self.left.insert_saved_at(&g.left, &g.left_at, &g.left_matched, &mut hashes)
                || !self.right.insert_saved_at(&g.right, &g.right_at, &[], &mut hashes)
            {
                return Err(self
                    .restore_error(format!("key group {kg} has rows of another layout than the job's{LAYOUT_HINT}")));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
