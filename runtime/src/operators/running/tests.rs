//! The running aggregate against a model (a plain map from key to its
//! aggregates), through snapshots and restores at other parallelisms.

use super::*;
use crate::keygroup::{key_group_range, subtask_for_key_group};
use crate::record::Value;
use flowc_compiler::ir::{AggCall, AggFunc, Expr, Field};
use proptest::prelude::*;
use std::collections::HashMap;

const MAX_PARALLELISM: u32 = 16;

fn schema(fields: &[(&str, DataType)]) -> Schema {
    Schema { name: None, fields: fields.iter().map(|(n, t)| Field::new(*n, *t)).collect() }
}

/// `key_by user | aggregate { user, n: count(), total: sum(x), top: max(x) }`
fn op(ttl_ms: Option<u64>) -> RunningAggregateOperator {
    let agg = |func, arg: Option<Expr>, result_type| AggCall { func, arg, arg_type: DataType::Long, result_type };
    let spec = RunningAggregate {
        key: vec![0],
        aggregates: vec![
            agg(AggFunc::Count, None, DataType::Long),
            agg(AggFunc::Sum, Some(Expr::Field(1)), DataType::Long),
            agg(AggFunc::Max, Some(Expr::Field(1)), DataType::Long),
        ],
        output: vec![Expr::Key(0), Expr::Aggregate(0), Expr::Aggregate(1), Expr::Aggregate(2)],
        ttl_ms,
        retract: false,
    };
    let input = schema(&[("user", DataType::String), ("x", DataType::Long)]);
    let output = schema(&[
        ("user", DataType::String),
        ("n", DataType::Long),
        ("total", DataType::Long),
        ("top", DataType::Long),
    ]);
    RunningAggregateOperator::new(
        "agg".into(),
        spec,
        &input,
        &output,
        MAX_PARALLELISM,
        Arc::new(TaskCounters::new()),
        &SourceMap::default(),
    )
    .expect("builds")
}

fn batch(rows: &[(&str, i64)]) -> Batch {
    let rows: Vec<(i64, Vec<Value>)> = rows
        .iter()
        .enumerate()
        .map(|(i, (u, x))| (i as i64, vec![Value::Str(u.to_string()), Value::Int(*x)]))
        .collect();
    Batch::from_rows(&[DataType::String, DataType::Long], &rows).expect("fits")
}

/// Every emitted row as (kind, fields).
fn changes(out: &[Batch]) -> Vec<(RowKind, Vec<Value>)> {
    out.iter().flat_map(|b| (0..b.len()).map(|r| (b.kind(r), b.row(r)))).collect()
}

/// The table an upsert sink ends with: the latest `+I`/`+U` per key,
/// keys with a `-D` removed. Checks on the way that every `-U` retracts
/// exactly the row the table holds for its key.
fn compact(changes: &[(RowKind, Vec<Value>)], table: &mut HashMap<String, Vec<Value>>) {
    for (kind, row) in changes {
        let key = row[0].to_string();
        match kind {
            RowKind::Insert => {
                assert!(!table.contains_key(&key), "+I of a key already in the table: {row:?}");
                table.insert(key, row.clone());
            }
            RowKind::UpdateBefore => assert_eq!(table.get(&key), Some(row), "-U retracts what the table holds"),
            RowKind::UpdateAfter => {
                assert!(table.contains_key(&key), "+U of a key never inserted: {row:?}");
                table.insert(key, row.clone());
            }
            RowKind::Delete => {
                table.remove(&key);
            }
        }
    }
}

/// The model: per key, count, sum and max.
fn model(records: &[(String, i64)]) -> HashMap<String, Vec<Value>> {
    let mut m: HashMap<String, (i64, i64, i64)> = HashMap::new();
    for (u, x) in records {
        let e = m.entry(u.clone()).or_insert((0, 0, i64::MIN));
        e.0 += 1;
        e.1 += x;
        e.2 = e.2.max(*x);
    }
    m.into_iter()
        .map(|(u, (n, s, t))| {
            (Value::Str(u.clone()).to_string(), vec![Value::Str(u), Value::Int(n), Value::Int(s), Value::Int(t)])
        })
        .collect()
}

#[test]
fn emits_an_insert_then_update_pairs_and_nothing_for_an_unchanged_row() {
    let mut a = op(None);
    let mut out = Vec::new();
    a.process(batch(&[("a", 5), ("b", 1), ("a", 2)]), &mut out).unwrap();
    let s = |x: &str| Value::Str(x.into());
    let i = Value::Int;
    assert_eq!(
        changes(&out),
        vec![
            (RowKind::Insert, vec![s("a"), i(1), i(5), i(5)]),
            (RowKind::Insert, vec![s("b"), i(1), i(1), i(1)]),
            (RowKind::UpdateBefore, vec![s("a"), i(1), i(5), i(5)]),
            (RowKind::UpdateAfter, vec![s("a"), i(2), i(7), i(5)]),
        ]
    );
    assert_eq!(out[0].timestamps, vec![0, 1, 2, 2], "rows carry their record's time");
}

#[test]
fn aggregates_skip_null_arguments_and_are_null_until_a_value_comes() {
    let mut a = op(None);
    let mut out = Vec::new();
    let rows = vec![(0, vec![Value::Str("a".into()), Value::Null]), (1, vec![Value::Str("a".into()), Value::Int(3)])];
    let input = Batch::from_rows(&[DataType::String, DataType::Long], &rows).expect("fits");
    a.process(input, &mut out).unwrap();
    let s = |x: &str| Value::Str(x.into());
    let i = Value::Int;
    // `count()` counts rows; `sum(x)` and `max(x)` skip the null and are
    // null while they have seen no value, as in the window operator.
    assert_eq!(
        changes(&out),
        vec![
            (RowKind::Insert, vec![s("a"), i(1), Value::Null, Value::Null]),
            (RowKind::UpdateBefore, vec![s("a"), i(1), Value::Null, Value::Null]),
            (RowKind::UpdateAfter, vec![s("a"), i(2), i(3), i(3)]),
        ]
    );
}

#[test]
fn an_update_that_changes_nothing_emits_nothing() {
    // `key_by user | aggregate { user, top: max(x) }`
    let spec = RunningAggregate {
        key: vec![0],
        aggregates: vec![AggCall {
            func: AggFunc::Max,
            arg: Some(Expr::Field(1)),
            arg_type: DataType::Long,
            result_type: DataType::Long,
        }],
        output: vec![Expr::Key(0), Expr::Aggregate(0)],
        ttl_ms: None,
        retract: false,
    };
    let input = schema(&[("user", DataType::String), ("x", DataType::Long)]);
    let output = schema(&[("user", DataType::String), ("top", DataType::Long)]);
    let counters = Arc::new(TaskCounters::new());
    let mut a = RunningAggregateOperator::new("m".into(), spec, &input, &output, 128, counters, &SourceMap::default())
        .expect("builds");
    let mut out = Vec::new();
    a.process(batch(&[("a", 5), ("a", 3), ("a", 5), ("a", 9)]), &mut out).unwrap();
    let kinds: Vec<RowKind> = changes(&out).into_iter().map(|c| c.0).collect();
    assert_eq!(kinds, vec![RowKind::Insert, RowKind::UpdateBefore, RowKind::UpdateAfter]);
}

#[test]
fn dictionary_keys_aggregate_as_plain_ones() {
    let rows: Vec<(String, i64)> = (0..500).map(|i| (format!("u{}", i % 7), i)).collect();
    let refs: Vec<(&str, i64)> = rows.iter().map(|(u, x)| (u.as_str(), *x)).collect();
    let (mut plain, mut dict) = (op(None), op(None));
    // The snapshots hold when each key was last updated: one clock for both.
    plain.clock = || 1_000;
    dict.clock = || 1_000;
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for chunk in refs.chunks(64) {
        plain.process(batch(chunk), &mut a).unwrap();
        let mut d = batch(chunk);
        crate::expr::tests::dictionary_encode(&mut d);
        dict.process(d, &mut b).unwrap();
    }
    assert_eq!(changes(&a), changes(&b));
    assert_eq!(plain.snapshot(), dict.snapshot());
}

#[test]
fn ttl_removes_idle_keys_by_timer_and_the_snapshot_shrinks() {
    let mut a = op(Some(1000));
    a.clock = || 10_000;
    let mut out = Vec::new();
    a.process(batch(&[("a", 1), ("b", 2)]), &mut out).unwrap();
    let size = |a: &RunningAggregateOperator| a.snapshot().key_groups.iter().map(|g| g.1.len()).sum::<usize>();
    let full = size(&a);
    assert!(full > 0);
    // `a` is updated at 10 500: it lives until 11 500, `b` until 11 000.
    a.clock = || 10_500;
    a.process(batch(&[("a", 1)]), &mut out).unwrap();
    a.on_timer(10_999, &mut out).unwrap();
    assert_eq!(a.key_count(), 2);
    a.on_timer(11_000, &mut out).unwrap();
    assert_eq!(a.key_count(), 1);
    assert!(size(&a) < full, "the checkpoint no longer holds `b`");
    a.on_timer(11_500, &mut out).unwrap();
    assert_eq!(a.key_count(), 0);
    assert_eq!(size(&a), 0);
    // A key that comes back starts again with `+I`.
    out.clear();
    a.clock = || 20_000;
    a.process(batch(&[("a", 4)]), &mut out).unwrap();
    assert_eq!(changes(&out)[0].0, RowKind::Insert);
    // Expired but not yet swept: also a fresh start.
    out.clear();
    a.clock = || 30_000;
    a.process(batch(&[("a", 6)]), &mut out).unwrap();
    assert_eq!(
        changes(&out),
        vec![(RowKind::Insert, vec![Value::Str("a".into()), Value::Int(1), Value::Int(6), Value::Int(6)])]
    );
}

#[test]
fn a_corrupt_or_foreign_snapshot_is_refused() {
    let mut a = op(None);
    a.process(batch(&[("a", 1), ("b", 2)]), &mut Vec::new()).unwrap();
    let snap = a.snapshot();
    let mut bad = snap.clone();
    bad.key_groups[0].1.truncate(2);
    assert!(op(None).restore(bad).is_err());
    let mut newer = snap;
    newer.key_groups[0].1[0] = 9;
    let e = op(None).restore(newer).unwrap_err().to_string();
    assert!(e.contains("state format 9"), "{e}");
}

/// Restores `snap` (of any parallelism) at parallelism `p`: each new
/// subtask takes its key groups.
fn restore_at(snap: &KeyedSnapshot, p: u32) -> Vec<RunningAggregateOperator> {
    (0..p)
        .map(|i| {
            let range = key_group_range(i, p, MAX_PARALLELISM);
            let mine = snap.key_groups.iter().filter(|(kg, _)| range.contains(kg)).cloned().collect();
            let mut o = op(None);
            o.restore(KeyedSnapshot { key_groups: mine }).expect("restores");
            o
        })
        .collect()
}

/// Routes records to the subtask of their key group, as a HASH edge does.
fn route(records: &[(String, i64)], p: u32) -> Vec<Vec<(String, i64)>> {
    let mut out = vec![Vec::new(); p as usize];
    for (u, x) in records {
        let kg = key_group(key_hash(&[Value::Str(u.clone())]), MAX_PARALLELISM);
        out[subtask_for_key_group(kg, p, MAX_PARALLELISM) as usize].push((u.clone(), *x));
    }
    out
}

fn run(ops: &mut [RunningAggregateOperator], records: &[(String, i64)], chunk: usize) -> Vec<(RowKind, Vec<Value>)> {
    let mut out = Vec::new();
    let routed = route(records, ops.len() as u32);
    for (o, recs) in ops.iter_mut().zip(routed) {
        let refs: Vec<(&str, i64)> = recs.iter().map(|(u, x)| (u.as_str(), *x)).collect();
        for c in refs.chunks(chunk.max(1)) {
            o.process(batch(c), &mut out).expect("processes");
        }
    }
    changes(&out)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// The upsert output compacted by key equals the model's final table,
    /// also when the job is snapshotted at `p` and restored at `p2` half-way.
    #[test]
    fn upsert_output_compacted_by_key_equals_the_model(
        records in proptest::collection::vec((0u8..12, -50i64..50), 0..300),
        cut in 0usize..300,
        p in 1u32..4,
        p2 in 1u32..5,
        chunk in 1usize..70,
    ) {
        let records: Vec<(String, i64)> = records.into_iter().map(|(k, x)| (format!("user-{k}"), x)).collect();
        let cut = cut.min(records.len());
        let (before, after) = records.split_at(cut);
        let mut first: Vec<RunningAggregateOperator> = (0..p).map(|_| op(None)).collect();
        let mut table = HashMap::new();
        compact(&run(&mut first, before, chunk), &mut table);
        prop_assert_eq!(&table, &model(before));
        // A checkpoint of every subtask, restored at another parallelism.
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

/// `key_by page | aggregate { page, users: count_distinct(user),
/// about: approx_count_distinct(user), latest: last(user), p50: approx_percentile(x, 0.5) }`
fn sketch_op() -> RunningAggregateOperator {
    let agg = |func, arg_type, result_type| AggCall { func, arg: Some(Expr::Field(1)), arg_type, result_type };
    let spec = RunningAggregate {
        key: vec![0],
        aggregates: vec![
            agg(AggFunc::CountDistinct, DataType::String, DataType::Long),
            agg(AggFunc::ApproxCountDistinct, DataType::String, DataType::Long),
            agg(AggFunc::Last, DataType::String, DataType::String),
            AggCall {
                func: AggFunc::ApproxPercentile { q_millionths: 500_000 },
                arg: Some(Expr::Field(2)),
                arg_type: DataType::Long,
                result_type: DataType::Double,
            },
        ],
        output: vec![Expr::Key(0), Expr::Aggregate(0), Expr::Aggregate(1), Expr::Aggregate(2), Expr::Aggregate(3)],
        ttl_ms: None,
        retract: false,
    };
    let input = schema(&[("page", DataType::String), ("user", DataType::String), ("x", DataType::Long)]);
    let output = schema(&[
        ("page", DataType::String),
        ("users", DataType::Long),
        ("about", DataType::Long),
        ("latest", DataType::String),
        ("p50", DataType::Double),
    ]);
    let counters = Arc::new(TaskCounters::new());
    RunningAggregateOperator::new("s".into(), spec, &input, &output, MAX_PARALLELISM, counters, &SourceMap::default())
        .expect("builds")
}

fn visits(range: std::ops::Range<i64>) -> Batch {
    let rows: Vec<(i64, Vec<Value>)> = range
        .map(|i| {
            let row =
                vec![Value::Str(format!("/p{}", i % 3)), Value::Str(format!("u{}", (i * 7) % 11)), Value::Int(i % 50)];
            (i, row)
        })
        .collect();
    Batch::from_rows(&[DataType::String, DataType::String, DataType::Long], &rows).expect("fits")
}

#[test]
fn sketches_in_a_running_aggregate_survive_a_snapshot() {
    let mut a = sketch_op();
    let mut out = Vec::new();
    a.process(visits(0..200), &mut out).unwrap();
    let snap = a.snapshot();
    let mut b = sketch_op();
    b.restore(snap.clone()).unwrap();
    assert_eq!(b.snapshot(), snap);
    let (mut x, mut y) = (Vec::new(), Vec::new());
    a.process(visits(200..260), &mut x).unwrap();
    b.process(visits(200..260), &mut y).unwrap();
    assert_eq!(changes(&x), changes(&y));
    // Every page saw all 11 users; the last one is that of the last visit.
    let last = changes(&x).into_iter().rfind(|(_, r)| r[0] == Value::Str("/p0".into())).expect("/p0");
    assert_eq!(last.1[1], Value::Int(11));
    assert_eq!(last.1[2], Value::Int(11));
    assert_eq!(last.1[3], Value::Str(format!("u{}", (258 * 7) % 11)));
}
