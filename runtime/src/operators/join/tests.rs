//! The join against a nested-loop model: random keys, random out-of-order
//! arrival within the watermark's bound, random parallelism, and a
//! snapshot → restore at another parallelism half way; inner and left
//! outer. Every row a subtask emits is checked not to be behind the
//! watermark it forwarded before.

use super::*;
use crate::keygroup::{key_group_range, subtask_for_key_group};
use flowc_compiler::ir::Field;
use proptest::prelude::*;

const MAXP: u32 = 16;

fn schema(fields: &[(&str, DataType)]) -> Schema {
    Schema { name: None, fields: fields.iter().map(|(n, t)| Field::new(*n, *t)).collect() }
}

fn side_schema() -> Schema {
    schema(&[("ts", DataType::Timestamp), ("k", DataType::String), ("id", DataType::Long)])
}

fn spec(bound: JoinBound, join_type: JoinType) -> Join {
    Join { join_type, left_key: vec![1], right_key: vec![1], bound, right: side_schema(), late_output: false }
}

fn op(bound: JoinBound, join_type: JoinType) -> JoinOperator {
    JoinOperator::new("join".into(), spec(bound, join_type), &side_schema(), MAXP, Arc::new(TaskCounters::new()))
        .expect("builds")
}

/// An output row: (left id, right id or none, event time).
type Out = (i64, Option<i64>, i64);

/// Checks that no row of `batches` is behind `watermark` (the last one the
/// subtask forwarded), then adds them to `out`.
fn take(batches: Vec<Batch>, watermark: i64, out: &mut Vec<Batch>) {
    for b in &batches {
        for &ts in &b.timestamps {
            assert!(ts >= watermark, "a row at {ts} is behind the watermark {watermark} forwarded before it");
        }
    }
    out.extend(batches);
}

/// One record: its side (0 left, 1 right), event time, key and id.
#[derive(Debug, Clone)]
struct Rec {
    side: u32,
    ts: i64,
    key: u8,
    id: i64,
}

/// Runs `recs` (in arrival order) through `p` subtasks, restoring at `p2`
/// after `cut` records; the watermark trails the largest time seen by
/// `delay + 1`. Returns every output row.
#[allow(clippy::too_many_arguments)] // the dimensions of the property
fn run(
    bound: JoinBound,
    jt: JoinType,
    recs: &[Rec],
    delay: i64,
    p: u32,
    p2: u32,
    cut: usize,
    chunk: usize,
) -> Vec<Out> {
    let mut ops: Vec<JoinOperator> = (0..p).map(|_| op(bound, jt)).collect();
    // The watermark each subtask forwarded last.
    let mut fwd: Vec<i64> = vec![i64::MIN; p as usize];
    let mut out = Vec::new();
    let mut max_ts = i64::MIN;
    let types = [DataType::Timestamp, DataType::String, DataType::Long];
    let mut i = 0;
    while i < recs.len() {
        if i >= cut && ops.len() as u32 == p && p2 != 0 {
            // Snapshot every subtask, restore at p2 by key-group ranges.
            let mut groups: Vec<(u32, Vec<u8>)> = ops.iter().flat_map(|o| o.snapshot().key_groups).collect();
            groups.sort_by_key(|(kg, _)| *kg);
            ops = (0..p2)
                .map(|s| {
                    let range = key_group_range(s, p2, MAXP);
                    let mine: Vec<(u32, Vec<u8>)> =
                        groups.iter().filter(|(kg, _)| range.contains(kg)).cloned().collect();
                    let mut o = op(bound, jt);
                    o.restore(KeyedSnapshot { key_groups: mine }).expect("restores");
                    // The watermark is not state: it comes again from upstream.
                    o
                })
                .collect();
            fwd = vec![i64::MIN; p2 as usize];
        }
        let n = ops.len() as u32;
        // A chunk of one side's consecutive records.
        let side = recs[i].side;
        let mut j = i;
        while j < recs.len() && j - i < chunk && recs[j].side == side && !(i < cut && j >= cut) {
            j += 1;
        }
        let rows: Vec<(i64, Vec<Value>)> = recs[i..j]
            .iter()
            .map(|r| (r.ts, vec![Value::Timestamp(r.ts), Value::Str(format!("k{}", r.key)), Value::Int(r.id)]))
            .collect();
        let batch = Batch::from_rows(&types, &rows).expect("fits");
        let mut hashes = Vec::new();
        key_hashes(&batch.columns, &[1], batch.len(), &mut hashes);
        let mut per: Vec<Vec<u32>> = vec![Vec::new(); n as usize];
        for (r, h) in hashes.iter().enumerate() {
            per[subtask_for_key_group(key_group(*h, MAXP), n, MAXP) as usize].push(r as u32);
        }
        for (s, rows) in per.iter().enumerate() {
            if !rows.is_empty() {
                let mut emitted = Vec::new();
                ops[s].process_input(side, batch.gather(rows), &mut emitted).expect("joins");
                take(emitted, fwd[s], &mut out);
            }
        }
        for r in &recs[i..j] {
            max_ts = max_ts.max(r.ts);
        }
        let wm = max_ts - delay - 1;
        for (s, o) in ops.iter_mut().enumerate() {
            signal(o, wm, &mut fwd[s], &mut out);
        }
        i = j;
    }
    for (s, o) in ops.iter_mut().enumerate() {
        signal(o, i64::MAX, &mut fwd[s], &mut out);
        assert_eq!(o.buffered(), (0, 0), "the final watermark leaves nothing in state");
    }
    let mut got: Vec<Out> = Vec::new();
    for b in &out {
        for (ts, row) in b.rows() {
            match (&row[2], &row[5]) {
                (Value::Int(l), Value::Int(r)) => {
                    assert_eq!(row[1], row[4], "keys are equal");
                    got.push((*l, Some(*r), ts));
                }
                (Value::Int(l), Value::Null) if jt == JoinType::LeftOuter => {
                    assert!(row[3..].iter().all(|v| *v == Value::Null), "the right's fields are all null: {row:?}");
                    got.push((*l, None, ts));
                }
                _ => panic!("bad row {row:?}"),
            }
        }
    }
    got.sort();
    got
}

/// Sends watermark `wm` to `o`, checks what it emits against the watermark
/// it forwarded before, and records the one it forwards now.
fn signal(o: &mut JoinOperator, wm: i64, fwd: &mut i64, out: &mut Vec<Batch>) {
    let mut emitted = Vec::new();
    let forwarded = o.on_signal(Signal::Watermark(wm), &mut emitted).expect("signal");
    take(emitted, *fwd, out);
    if let Some(Signal::Watermark(w)) = forwarded {
        assert!(w <= wm, "the forwarded watermark {w} is ahead of the input's {wm}");
        *fwd = (*fwd).max(w);
    }
}

/// What a nested loop over all records gives: for a left outer join, a
/// left row that met no right row (in an interval join) or none in a
/// window (in a window join, per window) comes out alone.
fn model(bound: JoinBound, jt: JoinType, recs: &[Rec]) -> Vec<Out> {
    let mut want = Vec::new();
    let outer = jt == JoinType::LeftOuter;
    for l in recs.iter().filter(|r| r.side == 0) {
        let rights = || recs.iter().filter(|r| r.side == 1 && r.key == l.key);
        match bound {
            JoinBound::Interval { lower_ms, upper_ms } => {
                let before = want.len();
                for r in rights() {
                    if r.ts >= l.ts + lower_ms && r.ts <= l.ts + upper_ms {
                        want.push((l.id, Some(r.id), l.ts.max(r.ts)));
                    }
                }
                if outer && want.len() == before {
                    want.push((l.id, None, l.ts));
                }
            }
            JoinBound::Window(w) => {
                let (size, slide) = match w {
                    WindowKind::Tumbling { size_ms } => (size_ms as i64, size_ms as i64),
                    WindowKind::Sliding { size_ms, slide_ms } => (size_ms as i64, slide_ms as i64),
                    WindowKind::Session { .. } => unreachable!("the strategy makes no session joins"),
                };
                // Every window of the left row: [start, start + size).
                let mut start = l.ts - l.ts.rem_euclid(slide);
                while start > l.ts - size {
                    let before = want.len();
                    for r in rights() {
                        if r.ts >= start && r.ts < start + size {
                            want.push((l.id, Some(r.id), start + size - 1));
                        }
                    }
                    if outer && want.len() == before {
                        want.push((l.id, None, start + size - 1));
                    }
                    start -= slide;
                }
            }
            JoinBound::Temporal { .. } => unreachable!("`temporal/tests.rs` tests temporal joins"),
            JoinBound::Regular { .. } => unreachable!("`regular/tests.rs` tests regular joins"),
        }
    }
    want.sort();
    want
}

/// Records in time order with random gaps, then shuffled within `delay`:
/// each arrives at most `delay` after a later one.
fn records(spec: Vec<(bool, u8, u8, u8)>, delay: i64) -> Vec<Rec> {
    let mut t = 1_000_000;
    let mut recs: Vec<(i64, Rec)> = spec
        .into_iter()
        .enumerate()
        .map(|(i, (right, key, gap, jitter))| {
            t += i64::from(gap);
            let rec = Rec { side: u32::from(right), ts: t, key: key % 5, id: i as i64 };
            // Arrival: its time plus a random lag of at most `delay`.
            (t + i64::from(jitter) % (delay + 1), rec)
        })
        .collect();
    recs.sort_by_key(|(arrival, r)| (*arrival, r.id));
    recs.into_iter().map(|(_, r)| r).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn interval_join_equals_a_nested_loop_also_across_a_rescale(
        spec in proptest::collection::vec((any::<bool>(), any::<u8>(), 0u8..40, any::<u8>()), 1..200),
        lower in -60i64..20,
        width in 0i64..60,
        delay in 0i64..50,
        p in 1u32..5,
        p2 in 0u32..5,
        cut in 0usize..200,
        chunk in 1usize..20,
        left_outer in any::<bool>(),
    ) {
        let bound = JoinBound::Interval { lower_ms: lower, upper_ms: lower + width };
        let jt = if left_outer { JoinType::LeftOuter } else { JoinType::Inner };
        let recs = records(spec, delay);
        let got = run(bound, jt, &recs, delay, p, p2, cut, chunk);
        prop_assert_eq!(got, model(bound, jt, &recs));
    }

    #[test]
    fn window_join_equals_a_nested_loop_also_across_a_rescale(
        spec in proptest::collection::vec((any::<bool>(), any::<u8>(), 0u8..40, any::<u8>()), 1..200),
        size in 1i64..80,
        slides in 1i64..4,
        delay in 0i64..50,
        p in 1u32..5,
        p2 in 0u32..5,
        cut in 0usize..200,
        chunk in 1usize..20,
        left_outer in any::<bool>(),
    ) {
        let jt = if left_outer { JoinType::LeftOuter } else { JoinType::Inner };
        let kind = if slides == 1 {
            WindowKind::Tumbling { size_ms: size as u64 }
        } else {
            WindowKind::Sliding { size_ms: (size * slides) as u64, slide_ms: size as u64 }
        };
        let bound = JoinBound::Window(kind);
        let recs = records(spec, delay);
        let got = run(bound, jt, &recs, delay, p, p2, cut, chunk);
        prop_assert_eq!(got, model(bound, jt, &recs));
    }
}

#[test]
fn late_rows_are_dropped_and_counted_and_state_is_cleaned_by_the_watermark() {
    let counters = Arc::new(TaskCounters::new());
    let bound = JoinBound::Interval { lower_ms: -10, upper_ms: 0 };
    let mut j = JoinOperator::new("join".into(), spec(bound, JoinType::Inner), &side_schema(), MAXP, counters.clone())
        .expect("builds");
    let types = [DataType::Timestamp, DataType::String, DataType::Long];
    let b = |ts: i64, id: i64| {
        Batch::from_rows(&types, &[(ts, vec![Value::Timestamp(ts), Value::Str("a".into()), Value::Int(id)])])
            .expect("fits")
    };
    let mut out = Vec::new();
    j.process_input(1, b(100, 1), &mut out).expect("right");
    j.process_input(0, b(105, 2), &mut out).expect("left");
    assert_eq!(out.iter().map(Batch::len).sum::<usize>(), 1);
    assert_eq!(j.buffered(), (1, 1));
    // State goes a whole time bucket (here 100 ms) at a time.
    j.on_signal(Signal::Watermark(195), &mut out).expect("signal");
    assert_eq!(j.buffered(), (1, 1), "the bucket [100, 200) goes once the watermark passes 200 (- lower)");
    j.on_signal(Signal::Watermark(300), &mut out).expect("signal");
    assert_eq!(j.buffered(), (0, 0), "nothing can match any more");
    j.process_input(0, b(150, 3), &mut out).expect("late");
    assert_eq!(counters.late_records.load(std::sync::atomic::Ordering::Relaxed), 1);
    assert_eq!(j.buffered(), (0, 0));
}

#[test]
fn a_snapshot_of_another_format_is_refused() {
    let mut j = op(JoinBound::Interval { lower_ms: 0, upper_ms: 0 }, JoinType::Inner);
    let err = j.restore(KeyedSnapshot { key_groups: vec![(3, vec![9, 1, 2])] }).expect_err("refused");
    assert!(err.to_string().contains("state format 9"), "{err}");
}

/// A batch of one row of the test layout, key `"a"`.
fn one(ts: i64, id: i64) -> Batch {
    let types = [DataType::Timestamp, DataType::String, DataType::Long];
    Batch::from_rows(&types, &[(ts, vec![Value::Timestamp(ts), Value::Str("a".into()), Value::Int(id)])]).expect("fits")
}

/// (left id, right id or none, time) of every row of `out`.
fn ids(out: &[Batch]) -> Vec<Out> {
    let mut got = Vec::new();
    for b in out {
        for (ts, row) in b.rows() {
            let Value::Int(l) = row[2] else { panic!("bad row {row:?}") };
            let r = match row[5] {
                Value::Int(r) => Some(r),
                _ => None,
            };
            got.push((l, r, ts));
        }
    }
    got
}

#[test]
fn an_unmatched_left_row_comes_out_with_nulls_once_the_watermark_passes_its_upper_bound() {
    let mut j = op(JoinBound::Interval { lower_ms: -10, upper_ms: 5 }, JoinType::LeftOuter);
    let mut out = Vec::new();
    j.process_input(0, one(100, 1), &mut out).expect("left");
    j.process_input(0, one(200, 2), &mut out).expect("left");
    j.process_input(1, one(195, 3), &mut out).expect("right");
    assert_eq!(ids(&out), [(2, Some(3), 200)]);
    out.clear();
    // A right row at 105 may still come and meet the left row at 100.
    let fwd = j.on_signal(Signal::Watermark(105), &mut out).expect("signal");
    assert!(out.is_empty());
    assert_eq!(fwd, Some(Signal::Watermark(100)), "held back by the upper bound");
    let fwd = j.on_signal(Signal::Watermark(106), &mut out).expect("signal");
    assert_eq!(ids(&out), [(1, None, 100)], "at its own time, not behind the watermark forwarded before (100)");
    assert_eq!(fwd, Some(Signal::Watermark(101)));
    let row = out[0].rows().remove(0).1;
    assert_eq!(row[3..], [Value::Null, Value::Null, Value::Null]);
    out.clear();
    // The left row at 200 matched: it never comes out alone, also after a restore.
    let mut restored = op(JoinBound::Interval { lower_ms: -10, upper_ms: 5 }, JoinType::LeftOuter);
    restored.restore(j.snapshot()).expect("restores");
    let fwd = restored.on_signal(Signal::Watermark(i64::MAX), &mut out).expect("signal");
    assert!(out.is_empty(), "{:?}", ids(&out));
    assert_eq!(fwd, Some(Signal::Watermark(i64::MAX)), "the final watermark is not held back");
    assert_eq!(restored.buffered(), (0, 0));
}

#[test]
fn a_left_row_that_can_meet_nothing_more_comes_out_at_once() {
    // Right rows 11 to 20 before the left one: once the watermark is at
    // 150, a left row at 160 or 155 (whose right rows are before 150) is
    // done on arrival.
    let mut j = op(JoinBound::Interval { lower_ms: -20, upper_ms: -11 }, JoinType::LeftOuter);
    let mut out = Vec::new();
    j.process_input(1, one(145, 7), &mut out).expect("right");
    j.on_signal(Signal::Watermark(150), &mut out).expect("signal");
    j.process_input(0, one(160, 1), &mut out).expect("left");
    j.process_input(0, one(155, 2), &mut out).expect("left");
    assert_eq!(ids(&out), [(1, Some(7), 160), (2, None, 155)]);
    assert_eq!(j.buffered().0, 0, "neither is kept");
}

#[test]
fn a_version_1_snapshot_still_restores() {
    let rows = |ts: i64, id: i64| vec![(ts, vec![Value::Timestamp(ts), Value::Str("a".into()), Value::Int(id)])];
    let v1 = (i64::MIN, rows(100, 1), rows(95, 2));
    let mut bytes = vec![1u8];
    bytes.extend(bincode::serde::encode_to_vec(&v1, bincode::config::standard()).expect("encodes"));
    let mut j = op(JoinBound::Interval { lower_ms: -10, upper_ms: 0 }, JoinType::Inner);
    j.restore(KeyedSnapshot { key_groups: vec![(0, bytes)] }).expect("restores");
    assert_eq!(j.buffered(), (1, 1));
}

#[test]
fn late_left_rows_go_to_the_late_output_and_late_right_rows_are_dropped() {
    use std::sync::atomic::Ordering::Relaxed;
    for bound in
        [JoinBound::Interval { lower_ms: -10, upper_ms: 0 }, JoinBound::Window(WindowKind::Tumbling { size_ms: 100 })]
    {
        let counters = Arc::new(TaskCounters::new());
        let mut with_late = spec(bound, JoinType::Inner);
        with_late.late_output = true;
        let mut j =
            JoinOperator::new("join".into(), with_late, &side_schema(), MAXP, counters.clone()).expect("builds");
        let mut out = Vec::new();
        j.process_input(0, one(150, 1), &mut out).expect("on time");
        j.on_signal(Signal::Watermark(300), &mut out).expect("signal");
        assert!(j.take_late().is_empty(), "{bound:?}: nothing late yet");
        j.process_input(0, one(120, 2), &mut out).expect("late left");
        j.process_input(1, one(110, 3), &mut out).expect("late right");
        let late: Vec<(i64, Vec<Value>)> = j.take_late().iter().flat_map(Batch::rows).collect();
        assert_eq!(late, [(120, vec![Value::Timestamp(120), Value::Str("a".into()), Value::Int(2)])], "{bound:?}");
        assert!(j.take_late().is_empty(), "taken once");
        assert_eq!(counters.late_side_output.load(Relaxed), 1, "{bound:?}");
        assert_eq!(counters.late_records.load(Relaxed), 1, "{bound:?}: only the right row is dropped");
        // The watermark-lineage view's last late record: the right row, against the watermark it met.
        assert_eq!((counters.last_late_ts.load(Relaxed), counters.last_late_watermark.load(Relaxed)), (110, 300));
    }
}

#[test]
fn a_window_join_counts_the_windows_waiting_to_fire() {
    let pending = |j: &JoinOperator| j.pending_windows().map(|p| (p.count, p.earliest_end));
    let mut out = Vec::new();
    // Tumbling 100: rows at 150 and 420 wait in [100, 200) and [400, 500).
    let mut j = op(JoinBound::Window(WindowKind::Tumbling { size_ms: 100 }), JoinType::Inner);
    assert_eq!(pending(&j), Some((0, None)));
    j.process_input(0, one(150, 1), &mut out).expect("left");
    j.process_input(1, one(420, 2), &mut out).expect("right");
    j.process_input(1, one(199, 3), &mut out).expect("right");
    assert_eq!(pending(&j), Some((2, Some(200))));
    j.on_signal(Signal::Watermark(199), &mut out).expect("fires [100, 200)");
    assert_eq!(pending(&j), Some((1, Some(500))));
    // Sliding 100 by 50: a row at 120 is in [50, 150) and [100, 200), one
    // at 160 in [100, 200) and [150, 250): three windows, the first ends at 150.
    let mut j = op(JoinBound::Window(WindowKind::Sliding { size_ms: 100, slide_ms: 50 }), JoinType::Inner);
    j.process_input(0, one(120, 1), &mut out).expect("left");
    j.process_input(1, one(160, 2), &mut out).expect("right");
    assert_eq!(pending(&j), Some((3, Some(150))));
    j.on_signal(Signal::Watermark(149), &mut out).expect("fires [50, 150)");
    assert_eq!(pending(&j), Some((2, Some(200))));
    // An interval join has no windows.
    assert_eq!(pending(&op(JoinBound::Interval { lower_ms: -10, upper_ms: 0 }, JoinType::Inner)), None);
}

#[test]
fn a_temporal_join_sends_late_left_rows_to_its_late_output() {
    use std::sync::atomic::Ordering::Relaxed;
    let counters = Arc::new(TaskCounters::new());
    let types = vec![DataType::Timestamp, DataType::String, DataType::Long];
    let spec =
        temporal::TemporalSpec { join_type: JoinType::Inner, left_key: vec![1], right_key: vec![1], deleted: None };
    let mut j = temporal::TemporalJoin::new("t".into(), spec, types.clone(), types, MAXP, counters.clone())
        .expect("builds")
        .with_late_output(true);
    let mut out = Vec::new();
    j.on_signal(Signal::Watermark(300), &mut out).expect("signal");
    j.process_input(0, one(120, 2), &mut out).expect("late left");
    j.process_input(1, one(110, 3), &mut out).expect("late version");
    let late: Vec<i64> = j.take_late().iter().flat_map(|b| b.timestamps.clone()).collect();
    assert_eq!(late, [120]);
    assert_eq!((counters.late_side_output.load(Relaxed), counters.late_records.load(Relaxed)), (1, 1));
}
