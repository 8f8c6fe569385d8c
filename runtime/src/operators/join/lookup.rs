//! The lookup join (`join side as of proctime() on e == side.k`, Flink
//! SQL's `JOIN side FOR SYSTEM_TIME AS OF p_time` against a lookup
//! source): each subtask reads the whole bounded side input when it is
//! built, into one typed [`Batch`] and a hash index of its key, then meets
//! every left row with every side row of an equal key, at once.
//!
//! - The side is read by a [`FileSourceReader`] of parallelism 1 (every
//!   file, in name order), or a [`KafkaSourceReader`] of parallelism 1
//!   (every partition, from the earliest offset to the latest when it
//!   opens), with the source's format, schema and `on_error`;
//!   rows with a null key field are never met and not indexed.
//! - The left key is compiled expressions over the left batch
//!   ([`CompiledExpr`]), evaluated a batch at a time into columns and
//!   hashed with [`key_hashes`]; a hash bucket's rows are compared value
//!   by value ([`ValueRef`]), so no `Value` is built per record.
//! - Output: the left's columns, then the side's, gathered; each row keeps
//!   its left row's event time. A left outer join emits a left row that met
//!   nothing once, with the side's fields null (a null row appended to the
//!   side table is gathered for it). Several side rows of one key: every
//!   one is met, as Flink's lookup join emits every match.
//! - Processing-time semantics, as Flink's: the side is what it was when
//!   the subtask opened. The operator has no state: a restore builds it
//!   anew, which reads the side again (so the side may have changed).
//! - Memory: the side is held whole in every subtask: its columns, and the
//!   index (a `u64` hash and a list per distinct key, a `u32` per row).

use super::{Operator, OperatorError};
use crate::connectors::file_source::FileSourceReader;
use crate::connectors::kafka::KafkaSourceReader;
use crate::connectors::kafka_topics::Assignment;
use crate::connectors::{SourcePoll, SourceReader};
use crate::data::{Batch, Column, ValueRef};
use crate::expr::{CompiledExpr, Sel, SourceMap};
use crate::keygroup::key_hashes;
use crate::metrics::TaskCounters;
use crate::security::paths::AllowedRoots;
use flowc_compiler::ir::{JoinType, LookupJoin, LookupSide, Schema, StartingOffsets, TopicSet};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// The side input, read whole, and its index.
pub struct SideTable {
    /// Every side row, then, for a left outer join, one row of nulls.
    rows: Batch,
    /// Key hash → the side rows with that hash, in the order read.
    index: HashMap<u64, Vec<u32>>,
    /// The side's key columns.
    key: Vec<usize>,
    /// The row of nulls, for a left outer join.
    null_row: Option<u32>,
}

impl SideTable {
    /// Indexes `rows` by the columns `key`; with `null_row`, appends a row
    /// of nulls (not indexed) for the unmatched left rows.
    pub fn new(mut rows: Batch, key: Vec<usize>, null_row: bool) -> SideTable {
        let n = rows.len();
        let mut hashes = Vec::new();
        key_hashes(&rows.columns, &key, n, &mut hashes);
        let mut index: HashMap<u64, Vec<u32>> = HashMap::new();
        for (r, h) in hashes.iter().enumerate() {
            if key.iter().all(|k| rows.columns[*k].is_valid(r)) {
                index.entry(*h).or_default().push(r as u32);
            }
        }
        let null_row = null_row.then(|| {
            for c in &mut rows.columns {
                c.push_null();
            }
            rows.timestamps.push(crate::record::NO_TIMESTAMP);
            n as u32
        });
        SideTable { rows, index, key, null_row }
    }

    /// The number of side rows (the null row left out).
    pub fn len(&self) -> usize {
        self.index.values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }
}

pub struct LookupJoinOperator {
    name: String,
    /// The left's schema, for the messages of failed key expressions.
    left: Schema,
    left_key: Vec<CompiledExpr>,
    side_key_types: Vec<flowc_compiler::ir::DataType>,
    side: SideTable,
    hashes: Vec<u64>,
}

/// Reads the whole side input, as a source of parallelism 1: every file
/// of a file source; every partition of a Kafka source from the earliest
/// offset to the latest when it opens (the group's offsets neither read nor
/// committed).
pub fn read_side(
    spec: &LookupJoin,
    name: &str,
    allowed: &AllowedRoots,
    counters: Arc<TaskCounters>,
) -> Result<Batch, OperatorError> {
    let setup = |message: String| OperatorError::Setup { operator: name.to_string(), message };
    let mut reader: Box<dyn SourceReader> = match &spec.side {
        LookupSide::File(f) => Box::new(
            FileSourceReader::new(f, name, 0, 1, Vec::new(), allowed, counters)
                .map_err(|e| setup(format!("cannot read the side input: {e}")))?,
        ),
        LookupSide::Kafka(k) => {
            let mut k = k.clone();
            // Its partitions found by the reader itself, not the JobManager.
            k.topics.get_or_insert_with(|| TopicSet::List(vec![k.topic.clone()]));
            k.offsets = StartingOffsets::Earliest;
            k.bounded = true;
            let one = Assignment { splits: Vec::new(), subtask: 0, parallelism: 1 };
            // `checkpointing`: no periodic commit of the group's offsets.
            Box::new(
                KafkaSourceReader::new(&k, name, &one, &[], None, counters, true)
                    .map_err(|e| setup(format!("cannot read the side input: {e}")))?,
            )
        }
    };
    let types: Vec<_> = spec.side.schema().fields.iter().map(|f| f.ty).collect();
    let reader = &mut reader;
    let mut all = Batch::empty(&types, 0);
    loop {
        match reader.poll(Duration::from_millis(100)).map_err(|e| setup(format!("cannot read the side input: {e}")))? {
            SourcePoll::Records(b) => all.extend(&b),
            SourcePoll::End => break,
            SourcePoll::Signal(_) | SourcePoll::Nothing => {}
        }
    }
    reader.flush().map_err(|e| setup(format!("cannot write the side input's bad lines: {e}")))?;
    Ok(all)
}

impl LookupJoinOperator {
    /// The join of `spec`, over the side rows `side` (from [`read_side`]).
    pub fn new(
        name: String,
        spec: &LookupJoin,
        left: &Schema,
        side: Batch,
        sources: &SourceMap,
    ) -> Result<LookupJoinOperator, OperatorError> {
        let types: Vec<_> = left.fields.iter().map(|f| f.ty).collect();
        let left_key = spec
            .left_key
            .iter()
            .map(|e| CompiledExpr::compile(e, &types, sources))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|message| OperatorError::Setup { operator: name.clone(), message })?;
        let side_key_types = spec.right_key.iter().map(|k| spec.side.schema().fields[*k].ty).collect();
        let side = SideTable::new(side, spec.right_key.clone(), spec.join_type == JoinType::LeftOuter);
        tracing::info!(operator = %name, rows = side.len(), "Read the lookup join's side input.");
        Ok(LookupJoinOperator { name, left: left.clone(), left_key, side_key_types, side, hashes: Vec::new() })
    }
}

impl Operator for LookupJoinOperator {
    fn process(&mut self, input: Batch, out: &mut Vec<Batch>) -> Result<(), OperatorError> {
        let n = input.len();
        if n == 0 {
            return Ok(());
        }
        // The left key, a column per expression.
        let mut keys = Vec::with_capacity(self.left_key.len());
        for (e, ty) in self.left_key.iter().zip(&self.side_key_types) {
            let col = e
                .eval(&input, Sel::All(n))
                .and_then(|v| v.into_column(Sel::All(n), *ty))
                .map_err(|e| super::super::stage_errors::eval_error(&self.name, &input, &self.left, e))?;
            keys.push(col);
        }
        let key_idx: Vec<usize> = (0..keys.len()).collect();
        key_hashes(&keys, &key_idx, n, &mut self.hashes);
        let (mut left_rows, mut side_rows) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for (r, h) in self.hashes.iter().enumerate() {
            let mut met = false;
            if keys.iter().all(|c| c.is_valid(r)) {
                if let Some(bucket) = self.side.index.get(h) {
                    for &s in bucket {
                        if equal(&keys, r, &self.side.rows.columns, &self.side.key, s as usize) {
                            left_rows.push(r as u32);
                            side_rows.push(s);
                            met = true;
                        }
                    }
                }
            }
            if let (false, Some(null_row)) = (met, self.side.null_row) {
                left_rows.push(r as u32);
                side_rows.push(null_row);
            }
        }
        if left_rows.is_empty() {
            return Ok(());
        }
        let left = input.gather(&left_rows);
        let mut columns = left.columns;
        columns.extend(self.side.rows.columns.iter().map(|c| c.gather(&side_rows)));
        out.push(Batch::new(left.timestamps, columns));
        Ok(())
    }
}

/// Whether row `r` of the key columns `keys` equals row `s` of the side's
/// columns `key`.
fn equal(keys: &[Column], r: usize, side: &[Column], key: &[usize], s: usize) -> bool {
    keys.iter().zip(key).all(|(k, c)| {
        let (a, b) = (k.value_ref(r), side[*c].value_ref(s));
        matches!((a, b), (Some(a), Some(b)) if a == b && a != ValueRef::Null)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Value;
    use flowc_compiler::ir::{BinOp, DataType, ErrorPolicy, Expr, Field, FileSource, Format, LookupSide};

    fn field(name: &str, ty: DataType) -> Field {
        Field::new(name, ty)
    }

    fn spec(join_type: JoinType) -> (LookupJoin, Schema) {
        let side = Schema { name: None, fields: vec![field("key", DataType::Long), field("value", DataType::String)] };
        let left =
            Schema { name: None, fields: vec![field("auction", DataType::Long), field("price", DataType::Long)] };
        let key = Expr::Binary(BinOp::Rem, Box::new(Expr::Field(0)), Box::new(Expr::Literal(Value::Int(10))));
        let spec = LookupJoin {
            join_type,
            left_key: vec![key],
            right_key: vec![0],
            side: LookupSide::File(FileSource {
                path: "unused".into(),
                format: Format::Json,
                schema: side,
                watch_ms: None,
                on_error: ErrorPolicy::Skip,
            }),
        };
        (spec, left)
    }

    fn side_rows() -> Batch {
        let rows = vec![
            vec![Value::Int(1), Value::Str("one".into())],
            vec![Value::Int(2), Value::Str("two".into())],
            vec![Value::Int(1), Value::Str("uno".into())],
        ];
        Batch::from_values(&[DataType::Long, DataType::String], &rows).expect("side rows")
    }

    fn run(join_type: JoinType, left: &[(i64, i64)]) -> Vec<(i64, Vec<Value>)> {
        let (spec, schema) = spec(join_type);
        let mut op =
            LookupJoinOperator::new("j".into(), &spec, &schema, side_rows(), &SourceMap::default()).expect("built");
        let rows: Vec<(i64, Vec<Value>)> =
            left.iter().enumerate().map(|(i, (a, p))| (i as i64, vec![Value::Int(*a), Value::Int(*p)])).collect();
        let batch = Batch::from_rows(&[DataType::Long, DataType::Long], &rows).expect("left rows");
        let mut out = Vec::new();
        op.process(batch, &mut out).expect("joined");
        out.iter().flat_map(Batch::rows).collect()
    }

    #[test]
    fn every_side_row_of_the_key_is_met_and_the_left_time_kept() {
        let got = run(JoinType::Inner, &[(11, 5), (32, 6), (7, 7)]);
        let s = |x: &str| Value::Str(x.into());
        assert_eq!(
            got,
            vec![
                (0, vec![Value::Int(11), Value::Int(5), Value::Int(1), s("one")]),
                (0, vec![Value::Int(11), Value::Int(5), Value::Int(1), s("uno")]),
                (1, vec![Value::Int(32), Value::Int(6), Value::Int(2), s("two")]),
            ]
        );
    }

    /// The plain model: per left row (in order), every side row of an equal
    /// non-null key (in file order), or the row with nulls (left outer).
    fn model(left: &[(Option<i64>, i64)], side: &[(Option<i64>, String)], outer: bool) -> Vec<Vec<Value>> {
        let mut out = Vec::new();
        for (a, p) in left {
            let key = a.map(|a| a % 10);
            let lv = |x: Option<i64>| x.map_or(Value::Null, Value::Int);
            let mut met = false;
            for (k, v) in side {
                if key.is_some() && *k == key {
                    out.push(vec![lv(*a), Value::Int(*p), lv(*k), Value::Str(v.clone())]);
                    met = true;
                }
            }
            if !met && outer {
                out.push(vec![lv(*a), Value::Int(*p), Value::Null, Value::Null]);
            }
        }
        out
    }

    proptest::proptest! {
        #[test]
        fn joins_as_a_nested_loop_over_the_side_in_any_batches(
            side in proptest::collection::vec((proptest::option::weighted(0.9, -3i64..12), "[a-c]{0,2}"), 0..20),
            left in proptest::collection::vec((proptest::option::weighted(0.9, -30i64..40), 0i64..100), 0..40),
            cuts in proptest::collection::vec(0usize..40, 0..4),
            outer in proptest::bool::ANY,
        ) {
            let join_type = if outer { JoinType::LeftOuter } else { JoinType::Inner };
            let (spec, schema) = spec(join_type);
            let side_rows: Vec<Vec<Value>> = side
                .iter()
                .map(|(k, v)| vec![k.map_or(Value::Null, Value::Int), Value::Str(v.clone())])
                .collect();
            let side_batch = Batch::from_values(&[DataType::Long, DataType::String], &side_rows).expect("side");
            let mut op =
                LookupJoinOperator::new("j".into(), &spec, &schema, side_batch, &SourceMap::default()).expect("built");
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(left.len())).collect();
            cuts.push(0);
            cuts.push(left.len());
            cuts.sort_unstable();
            let mut got = Vec::new();
            for w in cuts.windows(2) {
                let rows: Vec<(i64, Vec<Value>)> = left[w[0]..w[1]]
                    .iter()
                    .map(|(a, p)| (*p, vec![a.map_or(Value::Null, Value::Int), Value::Int(*p)]))
                    .collect();
                let batch = Batch::from_rows(&[DataType::Long, DataType::Long], &rows).expect("left");
                let mut out = Vec::new();
                op.process(batch, &mut out).expect("joined");
                for b in &out {
                    for (t, row) in b.rows() {
                        // Each row keeps its left row's event time (here its price).
                        proptest::prop_assert_eq!(Value::Int(t), row[1].clone());
                        got.push(row);
                    }
                }
            }
            proptest::prop_assert_eq!(got, model(&left, &side, outer));
        }
    }

    #[test]
    fn an_empty_side_meets_nothing_and_a_left_join_pads_every_row() {
        // An inner join over an empty side took the row of nulls it has not
        // got (an underflow) before.
        let join = |join_type| {
            let (spec, schema) = spec(join_type);
            let empty = Batch::empty(&[DataType::Long, DataType::String], 0);
            let mut op =
                LookupJoinOperator::new("j".into(), &spec, &schema, empty, &SourceMap::default()).expect("built");
            let left = Batch::from_rows(&[DataType::Long, DataType::Long], &[(0, vec![Value::Int(1), Value::Int(2)])])
                .expect("left");
            let mut out = Vec::new();
            op.process(left, &mut out).expect("joined");
            out.iter().flat_map(Batch::rows).collect::<Vec<_>>()
        };
        assert!(join(JoinType::Inner).is_empty());
        assert_eq!(join(JoinType::LeftOuter), vec![(0, vec![Value::Int(1), Value::Int(2), Value::Null, Value::Null])]);
    }

    #[test]
    fn a_left_outer_join_emits_an_unmatched_row_once_with_nulls() {
        let got = run(JoinType::LeftOuter, &[(7, 7), (2, 8)]);
        assert_eq!(
            got,
            vec![
                (0, vec![Value::Int(7), Value::Int(7), Value::Null, Value::Null]),
                (1, vec![Value::Int(2), Value::Int(8), Value::Int(2), Value::Str("two".into())]),
            ]
        );
    }
}
