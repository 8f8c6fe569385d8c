//! An aggregate's `on_error`: a record an argument fails on is left out of
//! every aggregate (whole, never half counted) under `skip`, fails the
//! task under `fail`; a window whose output fails follows the policy too.
//! Windowed, running and retracting aggregates, and a property: under
//! `skip` an aggregate emits what it emits for its input without the bad
//! records, however the input is cut into batches.

use crate::data::{Batch, RowKind};
use crate::expr::SourceMap;
use crate::metrics::{ErrorClass, TaskCounters};
use crate::operators::running::retract::RetractingAggregateOperator;
use crate::operators::running::RunningAggregateOperator;
use crate::operators::window::WindowOperator;
use crate::operators::{Operator, OperatorError};
use crate::record::{Signal, Value};
use flowc_compiler::ir::{
    AggCall, AggFunc, BinOp, DataType, ErrorPolicy, Expr, Field, RunningAggregate, Schema, SourceSpan, TimeDomain,
    WindowAggregate, WindowKind, WindowSpec,
};
use proptest::prelude::*;
use std::sync::Arc;

const SIZE_MS: u64 = 10_000;

fn schema(fields: &[(&str, DataType)]) -> Schema {
    Schema { name: None, fields: fields.iter().map(|(n, t)| Field::new(*n, *t)).collect() }
}

/// Records `(page, n)`.
fn input_schema() -> Schema {
    schema(&[("page", DataType::String), ("n", DataType::Long)])
}

/// `100 / n`, placed in the job file.
fn hundred_over_n() -> Expr {
    Expr::At(
        SourceSpan::new(0, 7),
        Box::new(Expr::Binary(BinOp::Div, Box::new(Expr::Literal(Value::Int(100))), Box::new(Expr::Field(1)))),
    )
}

fn calls() -> Vec<AggCall> {
    vec![
        AggCall { func: AggFunc::Count, arg: None, arg_type: DataType::Long, result_type: DataType::Long },
        AggCall {
            func: AggFunc::Sum,
            arg: Some(hundred_over_n()),
            arg_type: DataType::Long,
            result_type: DataType::Long,
        },
    ]
}

/// `key_by page | window tumbling { size: 10s } | aggregate { page, n: count(), total: sum(100 / n) }`.
fn window(policy: ErrorPolicy, counters: Arc<TaskCounters>) -> WindowOperator {
    let spec = WindowAggregate {
        key: vec![0],
        window: WindowSpec { kind: WindowKind::Tumbling { size_ms: SIZE_MS }, time: TimeDomain::EventTime },
        aggregates: calls(),
        output: vec![Expr::Key(0), Expr::Aggregate(0), Expr::Aggregate(1)],
        lateness_ms: 0,
        late_output: false,
    };
    let output = schema(&[("page", DataType::String), ("n", DataType::Long), ("total", DataType::Long)]);
    WindowOperator::new("Agg".into(), spec, &input_schema(), &output, 128, counters, &SourceMap::default())
        .and_then(|w| w.with_on_error(policy))
        .expect("builds")
}

/// `key_by page | aggregate { page, n: count(), total: sum(100 / n) }`.
fn running(policy: ErrorPolicy, counters: Arc<TaskCounters>) -> RunningAggregateOperator {
    let spec = RunningAggregate {
        key: vec![0],
        aggregates: calls(),
        output: vec![Expr::Key(0), Expr::Aggregate(0), Expr::Aggregate(1)],
        ttl_ms: None,
        retract: false,
    };
    let output = schema(&[("page", DataType::String), ("n", DataType::Long), ("total", DataType::Long)]);
    RunningAggregateOperator::new("Agg".into(), spec, &input_schema(), &output, 128, counters, &SourceMap::default())
        .and_then(|r| r.with_on_error(policy))
        .expect("builds")
}

/// The same over an updating input.
fn retracting(policy: ErrorPolicy, counters: Arc<TaskCounters>) -> RetractingAggregateOperator {
    let spec = RunningAggregate {
        key: vec![0],
        aggregates: calls(),
        output: vec![Expr::Key(0), Expr::Aggregate(0), Expr::Aggregate(1)],
        ttl_ms: None,
        retract: true,
    };
    let output = schema(&[("page", DataType::String), ("n", DataType::Long), ("total", DataType::Long)]);
    RetractingAggregateOperator::new("Agg".into(), spec, &input_schema(), &output, 128, counters, &SourceMap::default())
        .and_then(|r| r.with_on_error(policy))
        .expect("builds")
}

/// Records `(time, page, n)`.
fn batch(records: &[(i64, &str, i64)]) -> Batch {
    let rows: Vec<(i64, Vec<Value>)> =
        records.iter().map(|(t, p, n)| (*t, vec![Value::Str(p.to_string()), Value::Int(*n)])).collect();
    Batch::from_rows(&[DataType::String, DataType::Long], &rows).expect("fits")
}

fn rows(out: &[Batch]) -> Vec<(i64, Vec<Value>)> {
    out.iter().flat_map(|b| b.rows()).collect()
}

fn changes(out: &[Batch]) -> Vec<(RowKind, Vec<Value>)> {
    out.iter().flat_map(|b| (0..b.len()).map(|r| (b.kind(r), b.row(r)))).collect()
}

fn row(page: &str, n: i64, total: i64) -> Vec<Value> {
    vec![Value::Str(page.into()), Value::Int(n), Value::Int(total)]
}

#[test]
fn a_window_under_skip_leaves_a_failed_record_out_of_every_aggregate() {
    let counters = Arc::new(TaskCounters::new());
    let mut w = window(ErrorPolicy::Skip, counters.clone());
    let mut out = Vec::new();
    // /a: n = 4, 0, 5 (the 0 fails); /b: only a 0; /c in the next window.
    let records = [(1000, "/a", 4), (2000, "/a", 0), (3000, "/b", 0), (4000, "/a", 5), (12_000, "/c", 2)];
    w.process(batch(&records), &mut out).expect("skips");
    w.on_signal(Signal::Watermark(9_999), &mut out).expect("fires");
    // `count()` left the failed record out too: counted wholly or not at all.
    assert_eq!(rows(&out), vec![(9_999, row("/a", 2, 25 + 20))]);
    assert_eq!(TaskCounters::get(&counters.expression_errors), 2);
    let samples = counters.error_samples();
    assert_eq!(samples.len(), 2);
    for s in &samples {
        assert_eq!((s.class, s.operator.as_str(), s.action.as_str()), (ErrorClass::Expression, "Agg", "skipped"));
        assert!(s.error.starts_with("division by zero"), "{s:?}");
    }
    let mut values: Vec<&str> = samples.iter().map(|s| s.value.as_str()).collect();
    values.sort();
    assert_eq!(values, vec![r#"{"page":"/a","n":0}"#, r#"{"page":"/b","n":0}"#]);
    // A key whose only record failed never got a window: nothing fires for it.
    out.clear();
    w.on_signal(Signal::Watermark(19_999), &mut out).expect("fires");
    assert_eq!(rows(&out), vec![(19_999, row("/c", 1, 50))]);
}

#[test]
fn a_window_under_fail_fails_the_task_naming_the_record() {
    let counters = Arc::new(TaskCounters::new());
    let mut w = window(ErrorPolicy::Fail, counters.clone());
    let mut out = Vec::new();
    let err = w.process(batch(&[(1000, "/a", 4), (2000, "/a", 0)]), &mut out).expect_err("fails");
    let OperatorError::Eval { operator, message } = err else { panic!("not an evaluation error: {err:?}") };
    assert_eq!(operator, "Agg");
    assert!(message.starts_with("division by zero") && message.ends_with(r#"record {"page":"/a","n":0}"#), "{message}");
    // Counted and sampled before the task fails, as a `filter`'s.
    assert_eq!(TaskCounters::get(&counters.expression_errors), 1);
    assert_eq!(counters.error_samples()[0].action, "failed");
}

#[test]
fn a_window_whose_output_fails_follows_the_policy_with_its_row() {
    // `aggregate { page, r: 100 / sum(n) }`: a window whose sum is 0 fails.
    let spec = |_: ()| WindowAggregate {
        key: vec![0],
        window: WindowSpec { kind: WindowKind::Tumbling { size_ms: SIZE_MS }, time: TimeDomain::EventTime },
        aggregates: vec![AggCall {
            func: AggFunc::Sum,
            arg: Some(Expr::Field(1)),
            arg_type: DataType::Long,
            result_type: DataType::Long,
        }],
        output: vec![
            Expr::Key(0),
            Expr::Binary(BinOp::Div, Box::new(Expr::Literal(Value::Int(100))), Box::new(Expr::Aggregate(0))),
        ],
        lateness_ms: 0,
        late_output: false,
    };
    let output = schema(&[("page", DataType::String), ("r", DataType::Long)]);
    let build = |policy: ErrorPolicy, counters: Arc<TaskCounters>| {
        WindowOperator::new("Agg".into(), spec(()), &input_schema(), &output, 128, counters, &SourceMap::default())
            .and_then(|w| w.with_on_error(policy))
            .expect("builds")
    };
    let records = [(1000, "/a", 4), (2000, "/b", 0), (3000, "/c", 5)];
    let counters = Arc::new(TaskCounters::new());
    let mut w = build(ErrorPolicy::Skip, counters.clone());
    let mut out = Vec::new();
    w.process(batch(&records), &mut out).expect("no argument fails");
    w.on_signal(Signal::Watermark(9_999), &mut out).expect("skips the failed window");
    let got: Vec<Vec<Value>> = rows(&out).into_iter().map(|r| r.1).collect();
    assert_eq!(got, vec![vec![Value::Str("/a".into()), Value::Int(25)], vec![Value::Str("/c".into()), Value::Int(20)]]);
    let samples = counters.error_samples();
    assert_eq!(samples.len(), 1);
    assert!(samples[0].value.starts_with(r#"{"page":"/b","sum#0":0,"#), "{:?}", samples[0]);
    // Under `fail`, the task fails.
    let mut w = build(ErrorPolicy::Fail, Arc::new(TaskCounters::new()));
    w.process(batch(&records), &mut out).expect("no argument fails");
    assert!(w.on_signal(Signal::Watermark(9_999), &mut out).is_err());
}

#[test]
fn a_running_aggregate_under_skip_never_lets_a_failed_record_touch_the_state() {
    let counters = Arc::new(TaskCounters::new());
    let mut r = running(ErrorPolicy::Skip, counters.clone());
    let mut out = Vec::new();
    r.process(batch(&[(1, "/a", 4), (2, "/b", 0), (3, "/a", 0), (4, "/a", 5)]), &mut out).expect("skips");
    assert_eq!(
        changes(&out),
        vec![
            (RowKind::Insert, row("/a", 1, 25)),
            (RowKind::UpdateBefore, row("/a", 1, 25)),
            (RowKind::UpdateAfter, row("/a", 2, 45)),
        ]
    );
    // `/b` had only a failed record: it has no state, in memory or in a snapshot.
    assert_eq!(r.key_count(), 1);
    assert_eq!(TaskCounters::get(&counters.expression_errors), 2);
    let mut restored = running(ErrorPolicy::Skip, Arc::new(TaskCounters::new()));
    restored.restore(r.snapshot()).expect("restores");
    assert_eq!(restored.key_count(), 1);
    // Under `fail` the batch fails the task.
    let mut r = running(ErrorPolicy::Fail, Arc::new(TaskCounters::new()));
    assert!(r.process(batch(&[(1, "/a", 4), (2, "/a", 0)]), &mut out).is_err());
}

#[test]
fn a_retracting_aggregate_leaves_out_a_failed_record_and_its_retraction_alike() {
    let counters = Arc::new(TaskCounters::new());
    let mut r = retracting(ErrorPolicy::Skip, counters.clone());
    let mut out = Vec::new();
    // +I n=4, +I n=0 (fails), -U n=0 (its retraction: fails the same way), +I n=5.
    let mut b = batch(&[(1, "/a", 4), (2, "/a", 0), (3, "/a", 0), (4, "/a", 5)]);
    b.kinds = Some(vec![RowKind::Insert, RowKind::Insert, RowKind::UpdateBefore, RowKind::Insert]);
    r.process(b, &mut out).expect("skips");
    assert_eq!(
        changes(&out),
        vec![
            (RowKind::Insert, row("/a", 1, 25)),
            (RowKind::UpdateBefore, row("/a", 1, 25)),
            (RowKind::UpdateAfter, row("/a", 2, 45)),
        ]
    );
    assert_eq!(TaskCounters::get(&counters.expression_errors), 2);
}

/// What `op` emits for `records` cut into batches of `chunk`, with a
/// watermark after each batch and a final one.
fn drive(op: &mut dyn Operator, records: &[(i64, String, i64)], chunk: usize) -> Vec<(i64, RowKind, Vec<Value>)> {
    let mut out = Vec::new();
    for part in records.chunks(chunk.max(1)) {
        let part: Vec<(i64, &str, i64)> = part.iter().map(|(t, p, n)| (*t, p.as_str(), *n)).collect();
        op.process(batch(&part), &mut out).expect("processes");
        let wm = part.iter().map(|r| r.0).max().unwrap_or(0) - 5_000;
        op.on_signal(Signal::Watermark(wm), &mut out).expect("fires");
    }
    op.on_signal(Signal::Watermark(i64::MAX), &mut out).expect("fires");
    out.iter().flat_map(|b| (0..b.len()).map(|r| (b.timestamps[r], b.kind(r), b.row(r)))).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Under `skip`, a windowed and a running aggregate emit exactly what
    /// they emit for the same records without the failing ones.
    #[test]
    fn under_skip_an_aggregate_is_the_aggregate_of_the_good_records(
        records in prop::collection::vec((0i64..40_000, 0usize..3, 0i64..4), 1..60),
        chunk in 1usize..20,
    ) {
        let mut records: Vec<(i64, String, i64)> =
            records.into_iter().map(|(t, p, n)| (t, format!("/p{p}"), n)).collect();
        // In time order, so that no record is late for a window.
        records.sort_by_key(|r| r.0);
        let good: Vec<(i64, String, i64)> = records.iter().filter(|r| r.2 != 0).cloned().collect();
        let bad = (records.len() - good.len()) as u64;

        let counters = Arc::new(TaskCounters::new());
        let got = drive(&mut window(ErrorPolicy::Skip, counters.clone()), &records, chunk);
        let want = drive(&mut window(ErrorPolicy::Fail, Arc::new(TaskCounters::new())), &good, chunk);
        prop_assert_eq!(got, want);
        prop_assert_eq!(TaskCounters::get(&counters.expression_errors), bad);

        let counters = Arc::new(TaskCounters::new());
        let got = drive(&mut running(ErrorPolicy::Skip, counters.clone()), &records, chunk);
        let want = drive(&mut running(ErrorPolicy::Fail, Arc::new(TaskCounters::new())), &good, chunk);
        prop_assert_eq!(got, want);
        prop_assert_eq!(TaskCounters::get(&counters.expression_errors), bad);
    }
}
