use super::*;
use crate::record::Value;
use flowc_compiler::ir::{AggCall, AggFunc, Expr, WindowSpec};

fn schema(fields: &[(&str, DataType)]) -> Schema {
    Schema { name: None, fields: fields.iter().map(|(n, t)| Field::new(*n, *t)).collect() }
}

fn count_per_key(kind: WindowKind, time: TimeDomain) -> WindowOperator {
    let spec = WindowAggregate {
        key: vec![1],
        window: WindowSpec { kind, time },
        aggregates: vec![AggCall {
            func: AggFunc::Count,
            arg: None,
            arg_type: DataType::Long,
            result_type: DataType::Long,
        }],
        output: vec![Expr::WindowStart, Expr::Key(0), Expr::Aggregate(0)],
        lateness_ms: 0,
        late_output: false,
    };
    let input = schema(&[("ts", DataType::Timestamp), ("page", DataType::String)]);
    let output = schema(&[("start", DataType::Timestamp), ("page", DataType::String), ("n", DataType::Long)]);
    let counters = Arc::new(TaskCounters::new());
    WindowOperator::new("w".into(), spec, &input, &output, 128, counters, &SourceMap::default()).expect("builds")
}

fn recs(events: &[(i64, &str)]) -> Batch {
    let rows: Vec<(i64, Vec<Value>)> =
        events.iter().map(|(t, p)| (*t, vec![Value::Timestamp(*t), Value::Str(p.to_string())])).collect();
    Batch::from_rows(&[DataType::Timestamp, DataType::String], &rows).expect("fits")
}

fn rows(out: &[Batch]) -> Vec<(i64, Vec<Value>)> {
    out.iter().flat_map(|b| b.rows()).collect()
}

#[test]
fn tumbling_event_time_counts_and_fires_on_watermark() {
    let mut w = count_per_key(WindowKind::Tumbling { size_ms: 15_000 }, TimeDomain::EventTime);
    let mut out = Vec::new();
    let events: Vec<(i64, &str)> = (0..30).map(|i| (i * 1000, if i % 2 == 0 { "/a" } else { "/b" })).collect();
    w.process(recs(&events), &mut out).unwrap();
    assert!(out.is_empty());
    w.on_signal(Signal::Watermark(14_998), &mut out).unwrap();
    assert!(out.is_empty());
    w.on_signal(Signal::Watermark(14_999), &mut out).unwrap();
    let rows = rows(&out);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].1, vec![Value::Timestamp(0), Value::Str("/a".into()), Value::Int(8)]);
    assert_eq!(rows[1].1, vec![Value::Timestamp(0), Value::Str("/b".into()), Value::Int(7)]);
    assert_eq!(rows[0].0, 14_999);
    // A late record is dropped and counted.
    out.clear();
    w.process(recs(&[(100, "/a")]), &mut out).unwrap();
    assert_eq!(TaskCounters::get(&w.counters.late_records), 1);
}

#[test]
fn with_lateness_a_late_record_fires_its_window_again_until_the_lateness_passes() {
    let mut w = count_per_key(WindowKind::Tumbling { size_ms: 10 }, TimeDomain::EventTime);
    w.spec.lateness_ms = 5;
    w.lateness = 5;
    let mut out = Vec::new();
    w.process(recs(&[(1, "/a"), (2, "/a"), (12, "/a")]), &mut out).unwrap();
    w.on_signal(Signal::Watermark(9), &mut out).unwrap();
    assert_eq!(rows(&out), vec![(9, vec![Value::Timestamp(0), Value::Str("/a".into()), Value::Int(2)])]);
    out.clear();
    // Late for [0, 10), within its lateness: fired again, updated.
    w.process(recs(&[(3, "/a"), (4, "/b")]), &mut out).unwrap();
    assert_eq!(
        rows(&out),
        vec![
            (9, vec![Value::Timestamp(0), Value::Str("/a".into()), Value::Int(3)]),
            (9, vec![Value::Timestamp(0), Value::Str("/b".into()), Value::Int(1)]),
        ]
    );
    assert_eq!(TaskCounters::get(&w.counters.late_records), 0);
    out.clear();
    // A checkpoint keeps the fired windows as fired.
    let mut restored = count_per_key(WindowKind::Tumbling { size_ms: 10 }, TimeDomain::EventTime);
    restored.spec.lateness_ms = 5;
    restored.lateness = 5;
    restored.restore(w.snapshot()).unwrap();
    assert_eq!(restored.snapshot(), w.snapshot());
    for op in [&mut w, &mut restored] {
        let mut out = Vec::new();
        // The watermark passes end - 1 + lateness = 14: the state goes,
        // and nothing fires again; [10, 20) is still open.
        op.on_signal(Signal::Watermark(14), &mut out).unwrap();
        assert!(out.is_empty());
        op.process(recs(&[(5, "/a")]), &mut out).unwrap();
        assert!(out.is_empty());
        assert_eq!(TaskCounters::get(&op.counters.late_records), 1);
        op.on_signal(Signal::Watermark(19), &mut out).unwrap();
        assert_eq!(rows(&out), vec![(19, vec![Value::Timestamp(10), Value::Str("/a".into()), Value::Int(1)])]);
    }
}

#[test]
fn late_records_go_to_the_late_output_once_per_record() {
    let mut w = count_per_key(WindowKind::Sliding { size_ms: 10, slide_ms: 5 }, TimeDomain::EventTime);
    w.spec.late_output = true;
    let mut out = Vec::new();
    w.on_signal(Signal::Watermark(100), &mut out).unwrap();
    w.process(recs(&[(3, "/a"), (200, "/b"), (7, "/c")]), &mut out).unwrap();
    let late: Vec<_> = w.take_late().iter().flat_map(|b| b.rows()).collect();
    assert_eq!(
        late,
        vec![
            (3, vec![Value::Timestamp(3), Value::Str("/a".into())]),
            (7, vec![Value::Timestamp(7), Value::Str("/c".into())]),
        ]
    );
    assert!(w.take_late().is_empty());
    assert_eq!(TaskCounters::get(&w.counters.late_side_output), 2);
    assert_eq!(TaskCounters::get(&w.counters.late_records), 0);
}

/// The sessions a batch of output holds: key, start and count, by key.
fn sessions(out: &[Batch]) -> Vec<(String, i64, i64)> {
    let mut s: Vec<(String, i64, i64)> = rows(out)
        .into_iter()
        .map(|(_, r)| match r.as_slice() {
            [Value::Timestamp(start), Value::Str(k), Value::Int(n)] => (k.clone(), *start, *n),
            other => panic!("not a session row: {other:?}"),
        })
        .collect();
    s.sort();
    s
}

#[test]
fn processing_time_sessions_merge_by_the_clock_and_fire_on_the_timer() {
    // Records are placed at the clock's time, whatever their event time.
    let gap = 300;
    let mut w = count_per_key(WindowKind::Session { gap_ms: gap }, TimeDomain::ProcessingTime);
    let mut out = Vec::new();
    let before = crate::clock::now_ms();
    w.process(recs(&[(0, "/a"), (5_000_000, "/b"), (7, "/a")]), &mut out).unwrap();
    w.on_timer(before, &mut out).unwrap();
    assert!(out.is_empty(), "no session ends before its gap has passed");
    // /a again, more than the gap later: a session of its own.
    std::thread::sleep(std::time::Duration::from_millis(2 * gap));
    let second = crate::clock::now_ms();
    w.process(recs(&[(1, "/a")]), &mut out).unwrap();
    let after = crate::clock::now_ms();
    w.on_timer(second - 1, &mut out).unwrap();
    let first = sessions(&out);
    assert_eq!(first.iter().map(|(k, _, n)| (k.as_str(), *n)).collect::<Vec<_>>(), [("/a", 2), ("/b", 1)]);
    assert!(first.iter().all(|(_, start, _)| (before..second).contains(start)), "{first:?} from the clock");
    out.clear();
    w.on_timer(after + gap as i64, &mut out).unwrap();
    let later = sessions(&out);
    assert_eq!(later.len(), 1, "{later:?}");
    assert_eq!((later[0].0.as_str(), later[0].2), ("/a", 1));
    assert!((second..=after).contains(&later[0].1), "{later:?}");
    assert!(w.pending_windows().is_some_and(|p| p.count == 0));

    // Batches closer than the gap merge into one session, which the
    // end of a bounded input fires.
    let mut w = count_per_key(WindowKind::Session { gap_ms: 60_000 }, TimeDomain::ProcessingTime);
    w.process(recs(&[(0, "/c")]), &mut out).unwrap();
    w.process(recs(&[(0, "/c"), (0, "/d")]), &mut out).unwrap();
    out.clear();
    w.on_timer(crate::clock::now_ms(), &mut out).unwrap();
    assert!(out.is_empty());
    w.on_end_of_input(&mut out).unwrap();
    let merged = sessions(&out);
    assert_eq!(merged.iter().map(|(k, _, n)| (k.as_str(), *n)).collect::<Vec<_>>(), [("/c", 2), ("/d", 1)]);
}

#[test]
fn keys_in_dictionary_form_count_as_plain_ones() {
    let events: Vec<(i64, &str)> =
        (0..3000).map(|i| (i * 13, ["/a", "/b", "/c", "/d"][(i * 7 % 4) as usize])).collect();
    let (mut plain, mut dict) = (
        count_per_key(WindowKind::Sliding { size_ms: 10_000, slide_ms: 5000 }, TimeDomain::EventTime),
        count_per_key(WindowKind::Sliding { size_ms: 10_000, slide_ms: 5000 }, TimeDomain::EventTime),
    );
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for chunk in events.chunks(700) {
        plain.process(recs(chunk), &mut a).unwrap();
        let mut d = recs(chunk);
        crate::expr::tests::dictionary_encode(&mut d);
        dict.process(d, &mut b).unwrap();
    }
    assert_eq!(plain.snapshot(), dict.snapshot());
    plain.on_signal(Signal::Watermark(i64::MAX), &mut a).unwrap();
    dict.on_signal(Signal::Watermark(i64::MAX), &mut b).unwrap();
    assert_eq!(rows(&a), rows(&b));
    assert!(rows(&a).len() > 8);
}

#[test]
fn sliding_windows_overlap() {
    let mut w = count_per_key(WindowKind::Sliding { size_ms: 10, slide_ms: 5 }, TimeDomain::EventTime);
    let mut out = Vec::new();
    w.process(recs(&[(7, "/a")]), &mut out).unwrap();
    w.on_signal(Signal::Watermark(i64::MAX), &mut out).unwrap();
    let starts: Vec<_> = rows(&out).into_iter().map(|r| r.1[0].clone()).collect();
    assert_eq!(starts, vec![Value::Timestamp(0), Value::Timestamp(5)]);
}

/// The lineage view's pending session windows are the unfired windows,
/// not the timers of windows that merged away.
#[test]
fn pending_session_windows_are_the_merged_ones() {
    let mut w = count_per_key(WindowKind::Session { gap_ms: 10 }, TimeDomain::EventTime);
    let mut out = Vec::new();
    let pending = |w: &WindowOperator| w.pending_windows().map(|p| (p.count, p.earliest_end));
    // /a: [0, 10) then [5, 15) merge into [0, 15) (its timer at 10 stays); /b: [100, 110).
    w.process(recs(&[(0, "/a"), (100, "/b")]), &mut out).unwrap();
    w.process(recs(&[(5, "/a")]), &mut out).unwrap();
    assert_eq!(pending(&w), Some((2, Some(15))));
    w.on_signal(Signal::Watermark(50), &mut out).unwrap();
    assert_eq!(rows(&out).len(), 1, "the merged window fired");
    assert_eq!(pending(&w), Some((1, Some(110))));
}

/// `array_agg`'s values are state per key group: a snapshot split by
/// key group (a restore at parallelism 2) fires what the whole one
/// fires, and both are the model's values per key in arrival order.
#[test]
fn array_agg_state_restores_split_by_key_group() {
    use flowc_compiler::ir::Elem;
    let spec = WindowAggregate {
        key: vec![1],
        window: WindowSpec { kind: WindowKind::Tumbling { size_ms: 1000 }, time: TimeDomain::EventTime },
        aggregates: vec![AggCall {
            func: AggFunc::ArrayAgg,
            arg: Some(Expr::Field(2)),
            arg_type: DataType::String,
            result_type: DataType::Array(Elem::STRING),
        }],
        output: vec![Expr::Key(0), Expr::Aggregate(0)],
        lateness_ms: 0,
        late_output: false,
    };
    let input = schema(&[("ts", DataType::Timestamp), ("user", DataType::String), ("tag", DataType::String)]);
    let output = schema(&[("user", DataType::String), ("tags", DataType::Array(Elem::STRING))]);
    let make = || {
        let counters = Arc::new(TaskCounters::new());
        WindowOperator::new("w".into(), spec.clone(), &input, &output, 128, counters, &SourceMap::default())
            .expect("builds")
    };
    let users = ["ann", "bob", "cy", "dan", "eve", "fay", "gus"];
    let events: Vec<(i64, Vec<Value>)> = (0..60i64)
        .map(|i| {
            let row = vec![
                Value::Timestamp(i * 15),
                Value::Str(users[(i * 3 % 7) as usize].into()),
                Value::Str(format!("t{i}")),
            ];
            (i * 15, row)
        })
        .collect();
    let batch = Batch::from_rows(&[DataType::Timestamp, DataType::String, DataType::String], &events).expect("fits");
    let mut whole = make();
    let mut out = Vec::new();
    whole.process(batch, &mut out).expect("processes");
    let snap = whole.snapshot();
    let (low, high): (Vec<_>, Vec<_>) = snap.key_groups.iter().cloned().partition(|(g, _)| *g < 64);
    assert!(!low.is_empty() && !high.is_empty(), "the keys spread over both halves");
    let (mut a, mut b) = (make(), make());
    a.restore(KeyedSnapshot { key_groups: low }).expect("restores");
    b.restore(KeyedSnapshot { key_groups: high }).expect("restores");
    let mut again: Vec<(u32, Vec<u8>)> = a.snapshot().key_groups;
    again.extend(b.snapshot().key_groups);
    again.sort();
    assert_eq!(again, snap.key_groups, "each half snapshots its own key groups");
    let fire = |w: &mut WindowOperator| {
        let mut out = Vec::new();
        w.on_signal(Signal::Watermark(i64::MAX), &mut out).expect("fires");
        let mut r: Vec<Vec<Value>> = rows(&out).into_iter().map(|(_, r)| r).collect();
        r.sort_by(|x, y| format!("{x:?}").cmp(&format!("{y:?}")));
        r
    };
    let mut split = fire(&mut a);
    split.extend(fire(&mut b));
    split.sort_by(|x, y| format!("{x:?}").cmp(&format!("{y:?}")));
    let one = fire(&mut whole);
    assert_eq!(split, one);
    let mut model: Vec<Vec<Value>> = users
        .iter()
        .map(|u| {
            let tags = events.iter().filter(|(_, r)| r[1] == Value::Str(u.to_string())).map(|(_, r)| r[2].clone());
            vec![Value::Str(u.to_string()), Value::Array(tags.collect())]
        })
        .collect();
    model.sort_by(|x, y| format!("{x:?}").cmp(&format!("{y:?}")));
    assert_eq!(one, model);
}

#[test]
fn snapshot_restore_round_trip() {
    let mut w = count_per_key(WindowKind::Tumbling { size_ms: 15_000 }, TimeDomain::EventTime);
    let mut out = Vec::new();
    let events: Vec<(i64, &str)> = (0..100).map(|i| (i * 300, ["/a", "/b", "/c"][i as usize % 3])).collect();
    w.process(recs(&events), &mut out).unwrap();
    let snap = w.snapshot();
    let mut w2 = count_per_key(WindowKind::Tumbling { size_ms: 15_000 }, TimeDomain::EventTime);
    w2.restore(snap.clone()).unwrap();
    assert_eq!(w2.snapshot(), snap);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    w.on_signal(Signal::Watermark(i64::MAX), &mut a).unwrap();
    w2.on_signal(Signal::Watermark(i64::MAX), &mut b).unwrap();
    assert_eq!(a, b);
    // A corrupt snapshot is refused.
    let mut bad = snap.clone();
    bad.key_groups[0].1.truncate(3);
    assert!(count_per_key(WindowKind::Tumbling { size_ms: 15_000 }, TimeDomain::EventTime).restore(bad).is_err());
    // So is a format this flowc does not know, saying so.
    let mut newer = snap;
    newer.key_groups[0].1[0] = 3;
    let e = count_per_key(WindowKind::Tumbling { size_ms: 15_000 }, TimeDomain::EventTime)
        .restore(newer)
        .expect_err("refused")
        .to_string();
    assert!(e.contains("state format 3"), "{e}");
}

/// The job of `testdata/window_v1.*`: keyed by (page, user), counting,
/// summing, averaging and taking minima and maxima of every type.
fn fixture_operator() -> WindowOperator {
    let agg = |func, arg: Option<Expr>, arg_type, result_type| AggCall { func, arg, arg_type, result_type };
    let spec = WindowAggregate {
        key: vec![1, 2],
        window: WindowSpec { kind: WindowKind::Tumbling { size_ms: 1000 }, time: TimeDomain::EventTime },
        aggregates: vec![
            agg(AggFunc::Count, None, DataType::Long, DataType::Long),
            agg(AggFunc::Sum, Some(Expr::Field(3)), DataType::Long, DataType::Long),
            agg(AggFunc::Min, Some(Expr::Field(1)), DataType::String, DataType::String),
            agg(AggFunc::Max, Some(Expr::Field(4)), DataType::Double, DataType::Double),
            agg(AggFunc::Avg, Some(Expr::Field(3)), DataType::Long, DataType::Double),
            agg(AggFunc::Min, Some(Expr::Field(0)), DataType::Timestamp, DataType::Timestamp),
        ],
        output: vec![
            Expr::WindowStart,
            Expr::WindowEnd,
            Expr::Key(0),
            Expr::Key(1),
            Expr::Aggregate(0),
            Expr::Aggregate(1),
            Expr::Aggregate(2),
            Expr::Aggregate(3),
            Expr::Aggregate(4),
            Expr::Aggregate(5),
        ],
        lateness_ms: 0,
        late_output: false,
    };
    let input = schema(&[
        ("ts", DataType::Timestamp),
        ("page", DataType::String),
        ("user", DataType::Long),
        ("n", DataType::Long),
        ("x", DataType::Double),
    ]);
    use DataType as T;
    let output = schema(&[
        ("start", T::Timestamp),
        ("end", T::Timestamp),
        ("page", T::String),
        ("user", T::Long),
        ("count", T::Long),
        ("sum", T::Long),
        ("min", T::String),
        ("max", T::Double),
        ("avg", T::Double),
        ("first", T::Timestamp),
    ]);
    let counters = Arc::new(TaskCounters::new());
    WindowOperator::new("w".into(), spec, &input, &output, 128, counters, &SourceMap::default()).expect("builds")
}

fn fixture_input() -> Batch {
    let pages = ["/a", "/b", "/c", "/héllo"];
    let rows: Vec<(i64, Vec<Value>)> = (0..60i64)
        .map(|i| {
            let t = i * 47;
            let row = vec![
                Value::Timestamp(t),
                Value::Str(pages[(i % 4) as usize].into()),
                Value::Int(i % 3 - 1),
                Value::Int(i * 11 - 300),
                Value::Double((i as f64) * 0.5 - 7.25),
            ];
            (t, row)
        })
        .collect();
    let types = [DataType::Timestamp, DataType::String, DataType::Long, DataType::Long, DataType::Double];
    Batch::from_rows(&types, &rows).expect("fits")
}

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/src/operators/testdata/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn shown(out: &[Batch]) -> String {
    rows(out).iter().map(|(t, r)| format!("{t} {r:?}\n")).collect()
}

/// `window_v1.snapshot` was written by the window operator before its
/// state was typed (commit b4cce50): restoring it fires exactly what
/// that operator fired (`window_v1.fired`), and today's operator writes
/// the very same bytes for the same input.
#[test]
fn a_version_1_snapshot_of_the_untyped_operator_restores_and_is_written_the_same() {
    let (saved, _): (Vec<(u32, Vec<u8>)>, usize) =
        bincode::serde::decode_from_slice(&fixture("window_v1.snapshot"), bincode::config::standard())
            .expect("the fixture decodes");
    let saved = KeyedSnapshot { key_groups: saved };
    let mut w = fixture_operator();
    w.restore(saved.clone()).expect("restores");
    let mut fired = Vec::new();
    w.on_signal(Signal::Watermark(i64::MAX), &mut fired).unwrap();
    assert_eq!(shown(&fired), String::from_utf8(fixture("window_v1.fired")).expect("UTF-8"));
    // The same input, processed today, snapshots to the same bytes.
    let mut today = fixture_operator();
    let mut early = Vec::new();
    today.process(fixture_input(), &mut early).unwrap();
    today.on_signal(Signal::Watermark(999), &mut early).unwrap();
    assert_eq!(rows(&early).len(), 12, "the first window fired before the snapshot");
    assert_eq!(today.snapshot(), saved);
}
