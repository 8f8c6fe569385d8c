//! `top N by f [desc|asc] [per k, …] [as rank]` after a windowed
//! aggregate: the rows of each window ranked across keys, or within each
//! partition of equal `per` fields (Flink SQL's window Top-N).
//!
//! The rows of one window all carry its time, `end - 1`, and come over a
//! `ShipStrategy::Window` edge (by the hash of that time) or, with `per`,
//! a `ShipStrategy::WindowKey` edge (by the hash of that time and the
//! partition fields), so that every row of a window and partition meets in
//! one subtask. They are buffered per time, as columns, until the
//! watermark passes it: the window has then fired in every upstream
//! subtask and its rows are all in. The first `n` of each partition by the
//! field (a stable sort: ties keep their arrival order) go out with their
//! rank, 1-based, appended as a `long`; partitions in the order their
//! first rows arrived.
//!
//! The buffered rows are state: snapshotted per key group (of the hash
//! their edge routes them by), restored, and redistributed on rescale as
//! keyed state is.
//!
//! `key_by k | top N by f` without a window is the other operator, in
//! `keyed`.

mod keyed;

pub use keyed::KeyedTopOperator;

use super::{KeyGroupWriter, KeyedSnapshot, Operator, OperatorError};
use crate::data::{Batch, Column, Data, ValueRef};
use crate::keygroup::{key_group, key_hash_refs, Key, KeyMap};
use crate::record::{Signal, Value};
use flowc_compiler::ir::{DataType, Schema, WindowTop};
use std::cmp::Ordering;
use std::collections::BTreeMap;

/// Format of a key group's bytes in a snapshot: bincode of
/// `Vec<(time, Vec<row>)>`.
const SNAPSHOT_VERSION: u8 = 1;

/// One window's buffered rows in a snapshot: its time and its rows.
type SavedWindow = (i64, Vec<Vec<Value>>);

/// Some rows of one buffered window: its time, its rows and which of them.
type WindowRows<'a> = (i64, &'a Batch, Vec<usize>);

/// The hash a window's rows are routed and snapshotted by: of their time.
pub fn window_hash(time: i64) -> u64 {
    key_hash_refs([ValueRef::Timestamp(time)])
}

/// The hash each row of `batch` is routed and snapshotted by: of its time
/// and its `per` fields ([`window_hash`] where there are none).
pub fn window_key_hashes(batch: &Batch, per: &[usize], out: &mut Vec<u64>) {
    out.clear();
    out.extend(batch.timestamps.iter().enumerate().map(|(r, t)| {
        let fields = per.iter().map(|k| batch.columns.get(*k).and_then(|c| c.value_ref(r)).unwrap_or(ValueRef::Null));
        key_hash_refs(std::iter::once(ValueRef::Timestamp(*t)).chain(fields))
    }));
}

pub struct TopOperator {
    name: String,
    spec: WindowTop,
    /// The partition fields (`per`); none: the whole window.
    per: Vec<usize>,
    input_types: Vec<DataType>,
    max_parallelism: u32,
    /// Window time → its rows so far, in arrival order.
    pending: BTreeMap<i64, Batch>,
    watermark: i64,
}

impl TopOperator {
    pub fn new(
        name: String,
        spec: WindowTop,
        per: Vec<usize>,
        input: &Schema,
        output: &Schema,
        max_parallelism: u32,
    ) -> Result<TopOperator, OperatorError> {
        let input_types: Vec<DataType> = input.fields.iter().map(|f| f.ty).collect();
        if spec.field >= input_types.len()
            || output.fields.len() != input_types.len() + 1
            || per.iter().any(|k| *k >= input_types.len())
        {
            return Err(OperatorError::Setup {
                operator: name,
                message: "the ranked field or the rank is out of range (this is a bug in flowc)".into(),
            });
        }
        Ok(TopOperator { name, spec, per, input_types, max_parallelism, pending: BTreeMap::new(), watermark: i64::MIN })
    }

    /// Ranks and emits every window whose time is at or before `time`.
    fn fire_until(&mut self, time: i64, out: &mut Vec<Batch>) {
        while let Some((&t, _)) = self.pending.first_key_value() {
            if t > time {
                break;
            }
            let Some((_, rows)) = self.pending.pop_first() else { break };
            for part in self.partitions(&rows) {
                out.push(self.ranked(&rows, part));
            }
        }
    }

    /// The rows of one window by partition, each in arrival order, the
    /// partitions in the order their first rows arrived.
    fn partitions(&self, rows: &Batch) -> Vec<Vec<u32>> {
        if self.per.is_empty() {
            return vec![(0..rows.len() as u32).collect()];
        }
        let mut index: KeyMap<usize> = KeyMap::default();
        let mut parts: Vec<Vec<u32>> = Vec::new();
        for r in 0..rows.len() {
            let key = Key(self.per.iter().map(|k| rows.columns[*k].value(r).unwrap_or(Value::Null)).collect());
            let i = *index.entry(key).or_insert_with(|| {
                parts.push(Vec::new());
                parts.len() - 1
            });
            parts[i].push(r as u32);
        }
        parts
    }

    /// The first `n` of these rows of one window, ranked.
    fn ranked(&self, rows: &Batch, mut order: Vec<u32>) -> Batch {
        let column = &rows.columns[self.spec.field];
        let cmp = |a: &u32, b: &u32| -> Ordering {
            let (a, b) = (*a as usize, *b as usize);
            let o = match &column.data {
                Data::I64(v) => v[a].cmp(&v[b]),
                Data::F64(v) => v[a].total_cmp(&v[b]),
                Data::Bool(v) => v[a].cmp(&v[b]),
                Data::Str(s) => s.bytes(a).cmp(s.bytes(b)),
                // The checker refuses to rank by an array.
                Data::List(_) => Ordering::Equal,
            };
            if self.spec.descending {
                o.reverse()
            } else {
                o
            }
        };
        // Stable: ties keep their arrival order.
        order.sort_by(cmp);
        order.truncate(usize::try_from(self.spec.n).unwrap_or(usize::MAX));
        let mut top = rows.gather(&order);
        top.hashes = None;
        let ranks: Vec<i64> = (1..=order.len() as i64).collect();
        top.columns.push(Column::new(DataType::Long, Data::I64(ranks)));
        top
    }
}

impl Operator for TopOperator {
    fn process(&mut self, input: Batch, out: &mut Vec<Batch>) -> Result<(), OperatorError> {
        // Rows of one window arrive together: group runs of equal times.
        let mut start = 0;
        let n = input.len();
        while start < n {
            let t = input.timestamps[start];
            let mut end = start + 1;
            while end < n && input.timestamps[end] == t {
                end += 1;
            }
            let rows: Vec<u32> = (start as u32..end as u32).collect();
            let types = &self.input_types;
            self.pending.entry(t).or_insert_with(|| Batch::empty(types, 0)).extend_rows(&input, &rows);
            start = end;
        }
        // Rows of a window the watermark has passed (it cannot be, as no
        // window before a `top` fires again, but should it): ranked now.
        let watermark = self.watermark;
        self.fire_until(watermark, out);
        Ok(())
    }

    fn on_signal(&mut self, signal: Signal, out: &mut Vec<Batch>) -> Result<Option<Signal>, OperatorError> {
        if let Signal::Watermark(w) = signal {
            if w > self.watermark {
                self.watermark = w;
                self.fire_until(w, out);
            }
        }
        Ok(Some(signal))
    }

    fn on_end_of_input(&mut self, out: &mut Vec<Batch>) -> Result<(), OperatorError> {
        self.fire_until(i64::MAX, out);
        Ok(())
    }

    fn snapshot(&self) -> KeyedSnapshot {
        KeyedSnapshot::collect(|out| self.snapshot_into(out))
    }

    fn snapshot_into(&self, out: &mut dyn KeyGroupWriter) -> std::io::Result<()> {
        // Rows by key group (of the hash their edge routes them by) first;
        // one key group's rows become values at a time.
        let mut groups: BTreeMap<u32, Vec<WindowRows<'_>>> = BTreeMap::new();
        let mut hashes = Vec::new();
        for (&t, rows) in &self.pending {
            window_key_hashes(rows, &self.per, &mut hashes);
            let mut by_group: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
            for (r, h) in hashes.iter().enumerate() {
                by_group.entry(key_group(*h, self.max_parallelism)).or_default().push(r);
            }
            for (kg, rs) in by_group {
                groups.entry(kg).or_default().push((t, rows, rs));
            }
        }
        while let Some((kg, windows)) = groups.pop_first() {
            let windows: Vec<SavedWindow> =
                windows.into_iter().map(|(t, rows, rs)| (t, rs.into_iter().map(|r| rows.row(r)).collect())).collect();
            let mut bytes = vec![SNAPSHOT_VERSION];
            bytes.extend(bincode::serde::encode_to_vec(&windows, bincode::config::standard()).unwrap_or_default());
            out.key_group(kg, &bytes)?;
        }
        Ok(())
    }

    fn restore(&mut self, state: KeyedSnapshot) -> Result<(), OperatorError> {
        let fail = |m: String| OperatorError::Restore { operator: self.name.clone(), message: m };
        for (kg, bytes) in &state.key_groups {
            let body = match bytes.split_first() {
                Some((&SNAPSHOT_VERSION, body)) => body,
                Some((v, _)) => {
                    return Err(fail(format!(
                        "key group {kg} is in state format {v}, which this flowc does not read (it reads {SNAPSHOT_VERSION})"
                    )))
                }
                None => return Err(fail(format!("key group {kg} is empty"))),
            };
            let (windows, used): (Vec<SavedWindow>, usize) =
                bincode::serde::decode_from_slice(body, bincode::config::standard())
                    .map_err(|e| fail(format!("key group {kg} is corrupt: {e}")))?;
            if used != body.len() {
                return Err(fail(format!("key group {kg} has trailing bytes")));
            }
            for (t, rows) in windows {
                let rows: Vec<(i64, Vec<Value>)> = rows.into_iter().map(|r| (t, r)).collect();
                let batch = Batch::from_rows(&self.input_types, &rows)
                    .ok_or_else(|| fail("the state's rows do not fit the job's schema".into()))?;
                let types = &self.input_types;
                let all: Vec<u32> = (0..batch.len() as u32).collect();
                self.pending.entry(t).or_insert_with(|| Batch::empty(types, 0)).extend_rows(&batch, &all);
            }
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

    const TYPES: [DataType; 3] = [DataType::String, DataType::String, DataType::Long];

    /// `top n by views [desc|asc] [per cat]` over `{page, cat, views}`.
    fn op(n: u64, descending: bool, per: bool) -> TopOperator {
        let schema =
            |f: &[(&str, DataType)]| Schema { name: None, fields: f.iter().map(|(n, t)| Field::new(*n, *t)).collect() };
        let input = schema(&[("page", TYPES[0]), ("cat", TYPES[1]), ("views", TYPES[2])]);
        let output = schema(&[("page", TYPES[0]), ("cat", TYPES[1]), ("views", TYPES[2]), ("rank", DataType::Long)]);
        let spec = WindowTop { n, field: 2, descending, rank_field: 3 };
        let per = if per { vec![1] } else { Vec::new() };
        TopOperator::new("top".into(), spec, per, &input, &output, 128).expect("builds")
    }

    fn rows(rows: &[(i64, &str, &str, i64)]) -> Batch {
        let rows: Vec<(i64, Vec<Value>)> = rows
            .iter()
            .map(|(t, p, c, v)| (*t, vec![Value::Str(p.to_string()), Value::Str(c.to_string()), Value::Int(*v)]))
            .collect();
        Batch::from_rows(&TYPES, &rows).expect("fits")
    }

    type Shown = (i64, String, String, i64, i64);

    fn shown(out: &[Batch]) -> Vec<Shown> {
        out.iter()
            .flat_map(|b| b.rows())
            .map(|(t, r)| match r.as_slice() {
                [Value::Str(p), Value::Str(c), Value::Int(v), Value::Int(rank)] => (t, p.clone(), c.clone(), *v, *rank),
                other => panic!("unexpected row {other:?}"),
            })
            .collect()
    }

    fn row(t: i64, page: &str, cat: &str, views: i64, rank: i64) -> Shown {
        (t, page.into(), cat.into(), views, rank)
    }

    #[test]
    fn ranks_the_rows_of_each_window_once_the_watermark_passes_it() {
        let mut top = op(2, true, false);
        let mut out = Vec::new();
        top.process(rows(&[(9, "/a", "x", 3), (9, "/b", "y", 7), (19, "/a", "x", 1)]), &mut out).unwrap();
        top.process(rows(&[(9, "/c", "x", 7), (9, "/d", "x", 5)]), &mut out).unwrap();
        assert!(out.is_empty());
        top.on_signal(Signal::Watermark(9), &mut out).unwrap();
        // Ties keep their arrival order.
        assert_eq!(shown(&out), vec![row(9, "/b", "y", 7, 1), row(9, "/c", "x", 7, 2)]);
        out.clear();
        top.on_end_of_input(&mut out).unwrap();
        assert_eq!(shown(&out), vec![row(19, "/a", "x", 1, 1)]);
        let mut asc = op(3, false, false);
        let mut out = Vec::new();
        asc.process(rows(&[(9, "/a", "x", 3), (9, "/b", "x", 7), (9, "/c", "x", -1), (9, "/d", "x", 5)]), &mut out)
            .unwrap();
        asc.on_signal(Signal::Watermark(100), &mut out).unwrap();
        assert_eq!(shown(&out), vec![row(9, "/c", "x", -1, 1), row(9, "/a", "x", 3, 2), row(9, "/d", "x", 5, 3)]);
    }

    #[test]
    fn per_ranks_each_partition_of_a_window_apart() {
        let mut top = op(2, true, true);
        let mut out = Vec::new();
        top.process(
            rows(&[(9, "/a", "x", 3), (9, "/b", "y", 7), (9, "/c", "x", 9), (9, "/d", "x", 5), (19, "/e", "y", 1)]),
            &mut out,
        )
        .unwrap();
        top.on_signal(Signal::Watermark(9), &mut out).unwrap();
        // `x` first, as its first row came first; each ranked from 1.
        assert_eq!(shown(&out), vec![row(9, "/c", "x", 9, 1), row(9, "/d", "x", 5, 2), row(9, "/b", "y", 7, 1)]);
        out.clear();
        top.on_end_of_input(&mut out).unwrap();
        assert_eq!(shown(&out), vec![row(19, "/e", "y", 1, 1)]);
    }

    proptest! {
        /// Buffered windows snapshotted at parallelism p and restored at p2
        /// rank as an operator that saw every row: the plain model, per
        /// window or per window and partition. Rows reach the subtask their
        /// edge routes them to, and leave it from the one that owns them
        /// after the rescale.
        #[test]
        fn windows_restored_at_another_parallelism_rank_as_the_model(
            input in proptest::collection::vec((0i64..6, 0usize..3, 0i64..20), 0..80),
            n in 1u64..5,
            per in any::<bool>(),
            p in 1u32..=4,
            p2 in 1u32..=4,
        ) {
            let maxp = 128;
            let cats = ["books", "games", "music"];
            let per_fields: &[usize] = if per { &[1] } else { &[] };
            let owner = |b: &Batch, p: u32| {
                let mut hashes = Vec::new();
                window_key_hashes(b, per_fields, &mut hashes);
                subtask_for_key_group(key_group(hashes[0], maxp), p, maxp) as usize
            };
            let mut ops: Vec<TopOperator> = (0..p).map(|_| op(n, true, per)).collect();
            for (i, (t, c, v)) in input.iter().enumerate() {
                let b = rows(&[(*t, &format!("/{i}"), cats[*c], *v)]);
                ops[owner(&b, p)].process(b, &mut Vec::new()).unwrap();
            }
            let states: Vec<crate::checkpoint::format::OperatorState> = ops
                .iter()
                .map(|o| crate::checkpoint::format::OperatorState {
                    operator: Default::default(),
                    keyed: o.snapshot().key_groups,
                    raw: Vec::new(),
                })
                .collect();
            let mut got = Vec::new();
            for i in 0..p2 {
                let mut o = op(n, true, per);
                let range = key_group_range(i, p2, maxp);
                o.restore(crate::checkpoint::restore::select_key_groups(&states, &range)).unwrap();
                let mut out = Vec::new();
                o.on_end_of_input(&mut out).unwrap();
                for r in shown(&out) {
                    prop_assert_eq!(owner(&rows(&[(r.0, &r.1, &r.2, r.3)]), p2), i as usize);
                    got.push(r);
                }
            }
            got.sort();
            // The model: every row at once, ranked per (window, partition).
            let mut want = Vec::new();
            type Part<'a> = (i64, &'a str);
            let mut parts: BTreeMap<Part<'_>, Vec<(String, &str, i64)>> = BTreeMap::new();
            for (i, (t, c, v)) in input.iter().enumerate() {
                let part = if per { cats[*c] } else { "" };
                parts.entry((*t, part)).or_default().push((format!("/{i}"), cats[*c], *v));
            }
            for ((t, _), mut rs) in parts {
                rs.sort_by_key(|r| std::cmp::Reverse(r.2));
                for (rank, (page, c, v)) in rs.into_iter().take(n as usize).enumerate() {
                    want.push(row(t, &page, c, v, rank as i64 + 1));
                }
            }
            want.sort();
            prop_assert_eq!(got, want);
        }
    }
}
