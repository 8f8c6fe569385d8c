//! The retracting running aggregate against a model (the upstream table a
//! changelog leaves, grouped by hand), through snapshots and restores at
//! other parallelisms.

use super::*;
use crate::keygroup::{key_group_range, subtask_for_key_group};
use crate::record::Value;
use flowc_compiler::ir::{Expr, Field};
use proptest::prelude::*;
use std::collections::HashMap;

const MAX_PARALLELISM: u32 = 16;

fn schema(fields: &[(&str, DataType)]) -> Schema {
    Schema { name: None, fields: fields.iter().map(|(n, t)| Field::new(*n, *t)).collect() }
}

const INPUT: [DataType; 3] = [DataType::String, DataType::Long, DataType::Long];

/// Over the upsert stream `(cat, id, x?)` keyed by `id`: `key_by cat |
/// aggregate { cat, n: count(), nx: count(x), total: sum(x), low: min(x),
/// high: max(x), mean: avg(x) }`.
fn op(ttl_ms: Option<u64>) -> RetractingAggregateOperator {
    let agg = |func, arg: Option<Expr>, result_type| AggCall { func, arg, arg_type: DataType::Long, result_type };
    let x = || Some(Expr::Field(2));
    let spec = RunningAggregate {
        key: vec![0],
        aggregates: vec![
            agg(AggFunc::Count, None, DataType::Long),
            agg(AggFunc::Count, x(), DataType::Long),
            agg(AggFunc::Sum, x(), DataType::Long),
            agg(AggFunc::Min, x(), DataType::Long),
            agg(AggFunc::Max, x(), DataType::Long),
            agg(AggFunc::Avg, x(), DataType::Double),
        ],
        output: (0..7).map(|i| if i == 0 { Expr::Key(0) } else { Expr::Aggregate(i - 1) }).collect(),
        ttl_ms,
        retract: true,
    };
    let input = schema(&[("cat", DataType::String), ("id", DataType::Long), ("x", DataType::Long)]);
    let output = schema(&[
        ("cat", DataType::String),
        ("n", DataType::Long),
        ("nx", DataType::Long),
        ("total", DataType::Long),
        ("low", DataType::Long),
        ("high", DataType::Long),
        ("mean", DataType::Double),
    ]);
    RetractingAggregateOperator::new(
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

/// One change of the upstream table: its kind and row `(cat, id, x)`.
type Change = (RowKind, (String, i64, Option<i64>));

fn batch(changes: &[Change]) -> Batch {
    let rows: Vec<(i64, Vec<Value>)> = changes
        .iter()
        .enumerate()
        .map(|(i, (_, (c, id, x)))| {
            (i as i64, vec![Value::Str(c.clone()), Value::Int(*id), x.map_or(Value::Null, Value::Int)])
        })
        .collect();
    let mut b = Batch::from_rows(&INPUT, &rows).expect("fits");
    b.kinds = Some(changes.iter().map(|c| c.0).collect());
    b
}

fn change(kind: RowKind, cat: &str, id: i64, x: Option<i64>) -> Change {
    (kind, (cat.to_string(), id, x))
}

/// Every emitted row as (kind, fields).
fn emitted(out: &[Batch]) -> Vec<(RowKind, Vec<Value>)> {
    out.iter().flat_map(|b| (0..b.len()).map(|r| (b.kind(r), b.row(r)))).collect()
}

/// The table an upsert sink ends with, checking on the way that every
/// `-U` and `-D` retracts exactly the row the table holds for its key.
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
            RowKind::Delete => assert_eq!(table.remove(&key).as_ref(), Some(row), "-D deletes what the table holds"),
        }
    }
}

/// The model: the upstream table the changes leave (by `id`), grouped by
/// `cat` by hand.
fn model(changes: &[Change]) -> HashMap<String, Vec<Value>> {
    let mut upstream: HashMap<i64, (String, Option<i64>)> = HashMap::new();
    for (kind, (cat, id, x)) in changes {
        match kind {
            RowKind::Insert | RowKind::UpdateAfter => {
                upstream.insert(*id, (cat.clone(), *x));
            }
            RowKind::UpdateBefore | RowKind::Delete => {
                upstream.remove(id);
            }
        }
    }
    let mut groups: HashMap<String, Vec<Option<i64>>> = HashMap::new();
    for (cat, x) in upstream.into_values() {
        groups.entry(cat).or_default().push(x);
    }
    groups
        .into_iter()
        .map(|(cat, xs)| {
            let vals: Vec<i64> = xs.iter().flatten().copied().collect();
            let or_null = |v: Option<i64>| v.map_or(Value::Null, Value::Int);
            let sum: i64 = vals.iter().sum();
            let row = vec![
                Value::Str(cat.clone()),
                Value::Int(xs.len() as i64),
                Value::Int(vals.len() as i64),
                if vals.is_empty() { Value::Null } else { Value::Int(sum) },
                or_null(vals.iter().min().copied()),
                or_null(vals.iter().max().copied()),
                if vals.is_empty() { Value::Null } else { Value::Double(sum as f64 / vals.len() as f64) },
            ];
            (Value::Str(cat).to_string(), row)
        })
        .collect()
}

/// A valid changelog of an upsert stream keyed by `id`: each step upserts
/// (`+I`, or `-U` then `+U`, possibly moving the id to another `cat`) or
/// deletes (`-D`) one id.
fn changelog(steps: &[(u8, u8, bool, Option<i64>)]) -> Vec<Change> {
    let mut live: HashMap<i64, (String, Option<i64>)> = HashMap::new();
    let mut out = Vec::new();
    for &(id, cat, delete, x) in steps {
        let (id, cat) = (i64::from(id), format!("cat-{cat}"));
        match (live.get(&id).cloned(), delete) {
            (Some((c, old)), true) => {
                out.push(change(RowKind::Delete, &c, id, old));
                live.remove(&id);
            }
            (None, true) => {}
            (Some((c, old)), false) => {
                out.push(change(RowKind::UpdateBefore, &c, id, old));
                out.push(change(RowKind::UpdateAfter, &cat, id, x));
                live.insert(id, (cat, x));
            }
            (None, false) => {
                out.push(change(RowKind::Insert, &cat, id, x));
                live.insert(id, (cat, x));
            }
        }
    }
    out
}

#[test]
fn an_updated_maximum_is_retracted_from_its_category() {
    // Nexmark q4's shape: a category's aggregates over its auctions' maxima.
    let mut a = op(None);
    let mut out = Vec::new();
    a.process(
        batch(&[
            change(RowKind::Insert, "c", 1, Some(10)),
            change(RowKind::Insert, "c", 2, Some(30)),
            change(RowKind::UpdateBefore, "c", 1, Some(10)),
            change(RowKind::UpdateAfter, "c", 1, Some(50)),
        ]),
        &mut out,
    )
    .unwrap();
    let (s, i, d) = (|x: &str| Value::Str(x.into()), Value::Int, Value::Double);
    let row = |n, sum, lo, hi, mean| vec![s("c"), i(n), i(n), i(sum), i(lo), i(hi), d(mean)];
    assert_eq!(
        emitted(&out),
        vec![
            (RowKind::Insert, row(1, 10, 10, 10, 10.0)),
            (RowKind::UpdateBefore, row(1, 10, 10, 10, 10.0)),
            (RowKind::UpdateAfter, row(2, 40, 10, 30, 20.0)),
            // The `-U` of auction 1 takes its 10 out: the minimum is 30 again.
            (RowKind::UpdateBefore, row(2, 40, 10, 30, 20.0)),
            (RowKind::UpdateAfter, row(1, 30, 30, 30, 30.0)),
            (RowKind::UpdateBefore, row(1, 30, 30, 30, 30.0)),
            (RowKind::UpdateAfter, row(2, 80, 30, 50, 40.0)),
        ]
    );
}

#[test]
fn the_last_retraction_deletes_the_row_and_the_state() {
    let mut a = op(None);
    let mut out = Vec::new();
    a.process(batch(&[change(RowKind::Insert, "c", 1, Some(7)), change(RowKind::Delete, "c", 1, Some(7))]), &mut out)
        .unwrap();
    let i = Value::Int;
    let row = vec![Value::Str("c".into()), i(1), i(1), i(7), i(7), i(7), Value::Double(7.0)];
    assert_eq!(emitted(&out), vec![(RowKind::Insert, row.clone()), (RowKind::Delete, row)]);
    assert_eq!(a.key_count(), 0);
    assert!(a.snapshot().key_groups.is_empty());
    // The key comes back with `+I`; one retracted and re-added in the same
    // batch too.
    out.clear();
    a.process(
        batch(&[
            change(RowKind::Insert, "c", 1, Some(1)),
            change(RowKind::UpdateBefore, "c", 1, Some(1)),
            change(RowKind::UpdateAfter, "c", 1, Some(2)),
        ]),
        &mut out,
    )
    .unwrap();
    let kinds: Vec<RowKind> = emitted(&out).into_iter().map(|c| c.0).collect();
    assert_eq!(kinds, vec![RowKind::Insert, RowKind::Delete, RowKind::Insert]);
    assert_eq!(a.key_count(), 1);
}

#[test]
fn a_retraction_without_state_is_dropped() {
    let mut a = op(None);
    let mut out = Vec::new();
    a.process(batch(&[change(RowKind::UpdateBefore, "c", 1, Some(7))]), &mut out).unwrap();
    a.process(batch(&[change(RowKind::Delete, "d", 2, None)]), &mut out).unwrap();
    assert!(out.is_empty());
    assert_eq!(a.key_count(), 0);
    assert!(a.snapshot().key_groups.is_empty(), "no key is kept for it");
}

#[test]
fn nulls_are_skipped_and_sums_are_null_again_when_every_value_is_retracted() {
    let mut a = op(None);
    let mut out = Vec::new();
    a.process(
        batch(&[
            change(RowKind::Insert, "c", 1, None),
            change(RowKind::Insert, "c", 2, Some(4)),
            change(RowKind::Delete, "c", 2, Some(4)),
        ]),
        &mut out,
    )
    .unwrap();
    let last = emitted(&out).pop().expect("a change");
    let null = Value::Null;
    let c = Value::Str("c".into());
    assert_eq!(
        last,
        (RowKind::UpdateAfter, vec![c, Value::Int(1), Value::Int(0), null.clone(), null.clone(), null.clone(), null])
    );
}

#[test]
fn min_and_max_of_doubles_and_strings_find_the_next_value() {
    for (ty, values) in [
        (DataType::Double, vec![Value::Double(-0.5), Value::Double(2.25), Value::Double(-7.0)]),
        (DataType::String, vec![Value::Str("m".into()), Value::Str("z".into()), Value::Str("a".into())]),
    ] {
        let calls: Vec<AggCall> = [AggFunc::Min, AggFunc::Max]
            .into_iter()
            .map(|func| AggCall { func, arg: Some(Expr::Field(1)), arg_type: ty, result_type: ty })
            .collect();
        let spec = RunningAggregate {
            key: vec![0],
            aggregates: calls,
            output: vec![Expr::Key(0), Expr::Aggregate(0), Expr::Aggregate(1)],
            ttl_ms: None,
            retract: true,
        };
        let input = schema(&[("k", DataType::Long), ("v", ty)]);
        let output = schema(&[("k", DataType::Long), ("lo", ty), ("hi", ty)]);
        let counters = Arc::new(TaskCounters::new());
        let mut a =
            RetractingAggregateOperator::new("m".into(), spec, &input, &output, 128, counters, &SourceMap::default())
                .expect("builds");
        let rows: Vec<(i64, Vec<Value>)> =
            values.iter().chain(&values[2..]).map(|v| (0, vec![Value::Int(1), v.clone()])).collect();
        let mut b = Batch::from_rows(&[DataType::Long, ty], &rows).expect("fits");
        // Three values added, then the smallest retracted.
        b.kinds = Some(vec![RowKind::Insert, RowKind::Insert, RowKind::Insert, RowKind::Delete]);
        let mut out = Vec::new();
        a.process(b, &mut out).unwrap();
        let last = emitted(&out).pop().expect("a change");
        assert_eq!(last.1, vec![Value::Int(1), values[0].clone(), values[1].clone()], "{ty:?}");
    }
}

#[test]
fn ttl_forgets_idle_keys() {
    let mut a = op(Some(1000));
    a.clock = || 10_000;
    let mut out = Vec::new();
    a.process(batch(&[change(RowKind::Insert, "c", 1, Some(1))]), &mut out).unwrap();
    a.on_timer(10_999, &mut out).unwrap();
    assert_eq!(a.key_count(), 1);
    a.on_timer(11_000, &mut out).unwrap();
    assert_eq!(a.key_count(), 0);
    assert!(out.iter().all(|b| b.len() == 1), "expiring emits nothing");
}

#[test]
fn a_corrupt_or_foreign_snapshot_is_refused() {
    let mut a = op(None);
    a.process(batch(&[change(RowKind::Insert, "c", 1, Some(1))]), &mut Vec::new()).unwrap();
    let snap = a.snapshot();
    let mut bad = snap.clone();
    bad.key_groups[0].1.truncate(2);
    assert!(op(None).restore(bad).is_err());
    let mut newer = snap.clone();
    newer.key_groups[0].1[0] = 9;
    let e = op(None).restore(newer).unwrap_err().to_string();
    assert!(e.contains("state format 9"), "{e}");
    // The state of a running aggregate over an append-only input (the same
    // job before its input became updating) is not read as this one's.
    let spec = RunningAggregate {
        key: vec![0],
        aggregates: vec![AggCall {
            func: AggFunc::Count,
            arg: None,
            arg_type: DataType::Long,
            result_type: DataType::Long,
        }],
        output: vec![Expr::Key(0), Expr::Aggregate(0)],
        ttl_ms: None,
        retract: false,
    };
    let input = schema(&[("cat", DataType::String), ("id", DataType::Long), ("x", DataType::Long)]);
    let output = schema(&[("cat", DataType::String), ("n", DataType::Long)]);
    let counters = Arc::new(TaskCounters::new());
    let mut plain = crate::operators::running::RunningAggregateOperator::new(
        "plain".into(),
        spec,
        &input,
        &output,
        MAX_PARALLELISM,
        counters,
        &SourceMap::default(),
    )
    .expect("builds");
    plain.process(batch(&[change(RowKind::Insert, "c", 1, Some(1))]), &mut Vec::new()).unwrap();
    let e = op(None).restore(plain.snapshot()).unwrap_err().to_string();
    assert!(e.contains("state format 1"), "{e}");
}

/// Restores `snap` (of any parallelism) at parallelism `p`: each new
/// subtask takes its key groups.
fn restore_at(snap: &KeyedSnapshot, p: u32) -> Vec<RetractingAggregateOperator> {
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

/// Runs `changes` through `ops`, each change to the subtask of its `cat`'s
/// key group, as a HASH edge sends it, in batches of `chunk`.
fn run(ops: &mut [RetractingAggregateOperator], changes: &[Change], chunk: usize) -> Vec<(RowKind, Vec<Value>)> {
    let p = ops.len() as u32;
    let mut routed = vec![Vec::new(); ops.len()];
    for c in changes {
        let kg = key_group(key_hash(&[Value::Str(c.1 .0.clone())]), MAX_PARALLELISM);
        routed[subtask_for_key_group(kg, p, MAX_PARALLELISM) as usize].push(c.clone());
    }
    let mut out = Vec::new();
    for (o, mine) in ops.iter_mut().zip(routed) {
        for c in mine.chunks(chunk.max(1)) {
            o.process(batch(c), &mut out).expect("processes");
        }
    }
    emitted(&out)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// The output compacted by key equals the model's table, also when the
    /// job is snapshotted at `p` and restored at `p2` half-way.
    #[test]
    fn output_compacted_by_key_equals_the_grouped_upstream_table(
        steps in proptest::collection::vec(
            (0u8..16, 0u8..5, proptest::bool::weighted(0.2), proptest::option::weighted(0.8, -50i64..50)),
            0..200,
        ),
        cut in 0usize..400,
        p in 1u32..4,
        p2 in 1u32..5,
        chunk in 1usize..40,
    ) {
        let changes = changelog(&steps);
        // A cut between a `-U` and its `+U` is fine: a checkpoint may fall there.
        let cut = cut.min(changes.len());
        let (before, after) = changes.split_at(cut);
        let mut first: Vec<RetractingAggregateOperator> = (0..p).map(|_| op(None)).collect();
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
        prop_assert_eq!(&table, &model(&changes));
    }
}
