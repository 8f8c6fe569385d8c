//! The join against a nested-loop model: random keys, random out-of-order
//! arrival within the watermark's bound, random parallelism, and a
//! snapshot → restore at another parallelism half way.

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

fn spec(bound: JoinBound) -> Join {
    Join { join_type: JoinType::Inner, left_key: vec![1], right_key: vec![1], bound, right: side_schema() }
}

fn op(bound: JoinBound) -> JoinOperator {
    JoinOperator::new("join".into(), spec(bound), &side_schema(), MAXP, Arc::new(TaskCounters::new())).expect("builds")
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
/// `delay + 1`. Returns (left id, right id, time) of every output row.
fn run(bound: JoinBound, recs: &[Rec], delay: i64, p: u32, p2: u32, cut: usize, chunk: usize) -> Vec<(i64, i64, i64)> {
    let mut ops: Vec<JoinOperator> = (0..p).map(|_| op(bound)).collect();
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
                    let mut o = op(bound);
                    o.restore(KeyedSnapshot { key_groups: mine }).expect("restores");
                    // The watermark is not state: it comes again from upstream.
                    o
                })
                .collect();
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
                ops[s].process_input(side, batch.gather(rows), &mut out).expect("joins");
            }
        }
        for r in &recs[i..j] {
            max_ts = max_ts.max(r.ts);
        }
        let wm = max_ts - delay - 1;
        for o in &mut ops {
            o.on_signal(Signal::Watermark(wm), &mut out).expect("signal");
        }
        i = j;
    }
    for o in &mut ops {
        o.on_signal(Signal::Watermark(i64::MAX), &mut out).expect("signal");
        assert_eq!(o.buffered(), (0, 0), "the final watermark leaves nothing in state");
    }
    let mut got: Vec<(i64, i64, i64)> = Vec::new();
    for b in &out {
        for (ts, row) in b.rows() {
            let (Value::Int(l), Value::Int(r)) = (&row[2], &row[5]) else { panic!("bad row {row:?}") };
            assert_eq!(row[1], row[4], "keys are equal");
            got.push((*l, *r, ts));
        }
    }
    got.sort();
    got
}

/// What a nested loop over all records gives.
fn model(bound: JoinBound, recs: &[Rec]) -> Vec<(i64, i64, i64)> {
    let mut want = Vec::new();
    for l in recs.iter().filter(|r| r.side == 0) {
        for r in recs.iter().filter(|r| r.side == 1 && r.key == l.key) {
            match bound {
                JoinBound::Interval { lower_ms, upper_ms } => {
                    if r.ts >= l.ts + lower_ms && r.ts <= l.ts + upper_ms {
                        want.push((l.id, r.id, l.ts.max(r.ts)));
                    }
                }
                JoinBound::Window(w) => {
                    let (size, slide) = match w {
                        WindowKind::Tumbling { size_ms } => (size_ms as i64, size_ms as i64),
                        WindowKind::Sliding { size_ms, slide_ms } => (size_ms as i64, slide_ms as i64),
                        WindowKind::Session { .. } => unreachable!("the strategy makes no session joins"),
                    };
                    let (lo, hi) = (l.ts.min(r.ts), l.ts.max(r.ts));
                    let mut start = lo - lo.rem_euclid(slide);
                    while start > hi - size {
                        want.push((l.id, r.id, start + size - 1));
                        start -= slide;
                    }
                }
            }
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
    ) {
        let bound = JoinBound::Interval { lower_ms: lower, upper_ms: lower + width };
        let recs = records(spec, delay);
        let got = run(bound, &recs, delay, p, p2, cut, chunk);
        prop_assert_eq!(got, model(bound, &recs));
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
    ) {
        let kind = if slides == 1 {
            WindowKind::Tumbling { size_ms: size as u64 }
        } else {
            WindowKind::Sliding { size_ms: (size * slides) as u64, slide_ms: size as u64 }
        };
        let bound = JoinBound::Window(kind);
        let recs = records(spec, delay);
        let got = run(bound, &recs, delay, p, p2, cut, chunk);
        prop_assert_eq!(got, model(bound, &recs));
    }
}

#[test]
fn late_rows_are_dropped_and_counted_and_state_is_cleaned_by_the_watermark() {
    let counters = Arc::new(TaskCounters::new());
    let bound = JoinBound::Interval { lower_ms: -10, upper_ms: 0 };
    let mut j = JoinOperator::new("join".into(), spec(bound), &side_schema(), MAXP, counters.clone()).expect("builds");
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
    let mut j = op(JoinBound::Interval { lower_ms: 0, upper_ms: 0 });
    let err = j.restore(KeyedSnapshot { key_groups: vec![(3, vec![9, 1, 2])] }).expect_err("refused");
    assert!(err.to_string().contains("state format 9"), "{err}");
}
