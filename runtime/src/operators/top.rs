//! `top N by f [desc|asc] [as rank]` after a windowed aggregate: the rows
//! of each window ranked across keys (Flink SQL's window Top-N).
//!
//! The rows of one window all carry its time, `end - 1`, and come over a
//! `ShipStrategy::Window` edge (by the hash of that time), so that every
//! row of a window meets in one subtask. They are buffered per time, as
//! columns, until the watermark passes it: the window has then fired in
//! every upstream subtask and its rows are all in. The first `n` by the
//! field (a stable sort: ties keep their arrival order) go out with their
//! rank, 1-based, appended as a `long`.
//!
//! The buffered rows are state: snapshotted per key group (of the hash of
//! their time), restored, and redistributed on rescale as keyed state is.
//!
//! `key_by k | top N by f` without a window is the other operator, in
//! `keyed`.

mod keyed;

pub use keyed::KeyedTopOperator;

use super::{KeyGroupWriter, KeyedSnapshot, Operator, OperatorError};
use crate::data::{Batch, Column, Data, ValueRef};
use crate::keygroup::{key_group, key_hash_refs};
use crate::record::{Signal, Value};
use flowc_compiler::ir::{DataType, Schema, WindowTop};
use std::cmp::Ordering;
use std::collections::BTreeMap;

/// Format of a key group's bytes in a snapshot: bincode of
/// `Vec<(time, Vec<row>)>`.
const SNAPSHOT_VERSION: u8 = 1;

/// One window's buffered rows in a snapshot: its time and its rows.
type SavedWindow = (i64, Vec<Vec<Value>>);

/// The hash a window's rows are routed and snapshotted by: of their time.
pub fn window_hash(time: i64) -> u64 {
    key_hash_refs([ValueRef::Timestamp(time)])
}

pub struct TopOperator {
    name: String,
    spec: WindowTop,
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
        input: &Schema,
        output: &Schema,
        max_parallelism: u32,
    ) -> Result<TopOperator, OperatorError> {
        let input_types: Vec<DataType> = input.fields.iter().map(|f| f.ty).collect();
        if spec.field >= input_types.len() || output.fields.len() != input_types.len() + 1 {
            return Err(OperatorError::Setup {
                operator: name,
                message: "the ranked field or the rank is out of range (this is a bug in flowc)".into(),
            });
        }
        Ok(TopOperator { name, spec, input_types, max_parallelism, pending: BTreeMap::new(), watermark: i64::MIN })
    }

    /// Ranks and emits every window whose time is at or before `time`.
    fn fire_until(&mut self, time: i64, out: &mut Vec<Batch>) {
        while let Some((&t, _)) = self.pending.first_key_value() {
            if t > time {
                break;
            }
            let Some((_, rows)) = self.pending.pop_first() else { break };
            out.push(self.ranked(&rows));
        }
    }

    /// The first `n` rows of one window, ranked.
    fn ranked(&self, rows: &Batch) -> Batch {
        let mut order: Vec<u32> = (0..rows.len() as u32).collect();
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
        // Windows by key group first; one key group's rows become values at a time.
        let mut groups: BTreeMap<u32, Vec<(i64, &_)>> = BTreeMap::new();
        for (&t, rows) in &self.pending {
            groups.entry(key_group(window_hash(t), self.max_parallelism)).or_default().push((t, rows));
        }
        while let Some((kg, windows)) = groups.pop_first() {
            let windows: Vec<SavedWindow> =
                windows.into_iter().map(|(t, rows)| (t, (0..rows.len()).map(|r| rows.row(r)).collect())).collect();
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

    fn op(n: u64, descending: bool) -> TopOperator {
        let schema =
            |f: &[(&str, DataType)]| Schema { name: None, fields: f.iter().map(|(n, t)| Field::new(*n, *t)).collect() };
        let input = schema(&[("page", DataType::String), ("views", DataType::Long)]);
        let output = schema(&[("page", DataType::String), ("views", DataType::Long), ("rank", DataType::Long)]);
        TopOperator::new("top".into(), WindowTop { n, field: 1, descending, rank_field: 2 }, &input, &output, 128)
            .expect("builds")
    }

    fn rows(rows: &[(i64, &str, i64)]) -> Batch {
        let rows: Vec<(i64, Vec<Value>)> =
            rows.iter().map(|(t, p, v)| (*t, vec![Value::Str(p.to_string()), Value::Int(*v)])).collect();
        Batch::from_rows(&[DataType::String, DataType::Long], &rows).expect("fits")
    }

    fn shown(out: &[Batch]) -> Vec<(i64, String, i64, i64)> {
        out.iter()
            .flat_map(|b| b.rows())
            .map(|(t, r)| match r.as_slice() {
                [Value::Str(p), Value::Int(v), Value::Int(rank)] => (t, p.clone(), *v, *rank),
                other => panic!("unexpected row {other:?}"),
            })
            .collect()
    }

    #[test]
    fn ranks_the_rows_of_each_window_once_the_watermark_passes_it() {
        let mut top = op(2, true);
        let mut out = Vec::new();
        top.process(rows(&[(9, "/a", 3), (9, "/b", 7), (19, "/a", 1)]), &mut out).unwrap();
        top.process(rows(&[(9, "/c", 7), (9, "/d", 5)]), &mut out).unwrap();
        assert!(out.is_empty());
        top.on_signal(Signal::Watermark(9), &mut out).unwrap();
        // Ties keep their arrival order.
        assert_eq!(shown(&out), vec![(9, "/b".into(), 7, 1), (9, "/c".into(), 7, 2)]);
        out.clear();
        top.on_end_of_input(&mut out).unwrap();
        assert_eq!(shown(&out), vec![(19, "/a".into(), 1, 1)]);
        let mut asc = op(3, false);
        let mut out = Vec::new();
        asc.process(rows(&[(9, "/a", 3), (9, "/b", 7), (9, "/c", -1), (9, "/d", 5)]), &mut out).unwrap();
        asc.on_signal(Signal::Watermark(100), &mut out).unwrap();
        assert_eq!(shown(&out), vec![(9, "/c".into(), -1, 1), (9, "/a".into(), 3, 2), (9, "/d".into(), 5, 3)]);
    }

    proptest! {
        /// Buffered windows snapshotted at parallelism p and restored at p2
        /// rank as an operator that saw every row: the plain model.
        #[test]
        fn windows_restored_at_another_parallelism_rank_as_the_model(
            input in proptest::collection::vec((0i64..6, 0i64..20), 0..80),
            n in 1u64..5,
            p in 1u32..=4,
            p2 in 1u32..=4,
        ) {
            let maxp = 128;
            let owner = |t: i64, p: u32| subtask_for_key_group(key_group(window_hash(t), maxp), p, maxp) as usize;
            let mut ops: Vec<TopOperator> = (0..p).map(|_| op(n, true)).collect();
            for (i, (t, v)) in input.iter().enumerate() {
                let page = format!("/{i}");
                ops[owner(*t, p)].process(rows(&[(*t, &page, *v)]), &mut Vec::new()).unwrap();
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
                let mut o = op(n, true);
                let range = key_group_range(i, p2, maxp);
                o.restore(crate::checkpoint::restore::select_key_groups(&states, &range)).unwrap();
                let mut out = Vec::new();
                o.on_end_of_input(&mut out).unwrap();
                for row in shown(&out) {
                    prop_assert_eq!(owner(row.0, p2), i as usize);
                    got.push(row);
                }
            }
            got.sort();
            let mut want = Vec::new();
            let mut by_time: BTreeMap<i64, Vec<(String, i64)>> = BTreeMap::new();
            for (i, (t, v)) in input.iter().enumerate() {
                by_time.entry(*t).or_default().push((format!("/{i}"), *v));
            }
            for (t, mut rs) in by_time {
                rs.sort_by_key(|r| std::cmp::Reverse(r.1));
                for (rank, (page, v)) in rs.into_iter().take(n as usize).enumerate() {
                    want.push((t, page, v, rank as i64 + 1));
                }
            }
            want.sort();
            prop_assert_eq!(got, want);
        }
    }
}
