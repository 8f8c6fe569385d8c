//! The temporal join against a plain model: each left row with the latest
//! version of its key at or before its time (the last to arrive of equal
//! times), none if that is a deletion; random keys, random out-of-order
//! arrival within the watermark's bound, random parallelism, and a
//! snapshot → restore at another parallelism half way.

use super::*;
use crate::keygroup::{key_group_range, subtask_for_key_group};
use proptest::prelude::*;

const MAXP: u32 = 16;
const LEFT: [DataType; 3] = [DataType::Timestamp, DataType::String, DataType::Long];
const RIGHT: [DataType; 4] = [DataType::Timestamp, DataType::String, DataType::Long, DataType::Bool];

fn op(join_type: JoinType) -> TemporalJoin {
    let spec = TemporalSpec { join_type, left_key: vec![1], right_key: vec![1], deleted: Some(3) };
    TemporalJoin::new("temporal".into(), spec, LEFT.to_vec(), RIGHT.to_vec(), MAXP, Arc::new(TaskCounters::new()))
        .expect("builds")
}

/// One record: its side (0 left, 1 right), event time, key, id, and (for
/// a version) whether it deletes.
#[derive(Debug, Clone)]
struct Rec {
    side: u32,
    ts: i64,
    key: u8,
    id: i64,
    deleted: bool,
}

fn batch(recs: &[Rec]) -> Batch {
    let side = recs[0].side;
    let rows: Vec<(i64, Vec<Value>)> = recs
        .iter()
        .map(|r| {
            let mut row = vec![Value::Timestamp(r.ts), Value::Str(format!("k{}", r.key)), Value::Int(r.id)];
            if side == 1 {
                row.push(Value::Bool(r.deleted));
            }
            (r.ts, row)
        })
        .collect();
    Batch::from_rows(if side == 0 { &LEFT } else { &RIGHT }, &rows).expect("fits")
}

/// An output row: (left id, version id or none, event time).
type Out = (i64, Option<i64>, i64);

fn ids(out: &[Batch]) -> Vec<Out> {
    let mut got = Vec::new();
    for b in out {
        for (ts, row) in b.rows() {
            let Value::Int(l) = row[2] else { panic!("bad row {row:?}") };
            let r = match row[5] {
                Value::Int(r) => {
                    assert_eq!(row[1], row[4], "keys are equal");
                    assert_eq!(row[6], Value::Bool(false), "a deletion never comes out");
                    Some(r)
                }
                Value::Null => {
                    assert!(row[3..].iter().all(|v| *v == Value::Null), "{row:?}");
                    None
                }
                _ => panic!("bad row {row:?}"),
            };
            got.push((l, r, ts));
        }
    }
    got.sort();
    got
}

/// Runs `recs` (in arrival order) through `p` subtasks, restoring at `p2`
/// after `cut` records; the watermark trails the largest time seen by
/// `delay + 1`. Every row emitted is checked not to be behind the
/// watermark forwarded before it.
#[allow(clippy::too_many_arguments)] // the dimensions of the property
fn run(jt: JoinType, recs: &[Rec], delay: i64, p: u32, p2: u32, cut: usize, chunk: usize) -> (Vec<Out>, usize) {
    let mut ops: Vec<TemporalJoin> = (0..p).map(|_| op(jt)).collect();
    let mut fwd = vec![i64::MIN; p as usize];
    let mut out = Vec::new();
    let mut max_ts = i64::MIN;
    let mut peak_versions = 0;
    let mut i = 0;
    while i < recs.len() {
        if i >= cut && ops.len() as u32 == p && p2 != 0 {
            let mut groups: Vec<(u32, Vec<u8>)> = ops.iter().flat_map(|o| o.snapshot().key_groups).collect();
            groups.sort_by_key(|(kg, _)| *kg);
            ops = (0..p2)
                .map(|s| {
                    let range = key_group_range(s, p2, MAXP);
                    let mine: Vec<(u32, Vec<u8>)> =
                        groups.iter().filter(|(kg, _)| range.contains(kg)).cloned().collect();
                    let mut o = op(jt);
                    o.restore(KeyedSnapshot { key_groups: mine }).expect("restores");
                    o
                })
                .collect();
            fwd = vec![i64::MIN; p2 as usize];
        }
        let n = ops.len() as u32;
        let side = recs[i].side;
        let mut j = i;
        while j < recs.len() && j - i < chunk && recs[j].side == side && !(i < cut && j >= cut) {
            j += 1;
        }
        let b = batch(&recs[i..j]);
        let mut hashes = Vec::new();
        key_hashes(&b.columns, &[1], b.len(), &mut hashes);
        let mut per: Vec<Vec<u32>> = vec![Vec::new(); n as usize];
        for (r, h) in hashes.iter().enumerate() {
            per[subtask_for_key_group(key_group(*h, MAXP), n, MAXP) as usize].push(r as u32);
        }
        for (s, rows) in per.iter().enumerate() {
            if !rows.is_empty() {
                let mut emitted = Vec::new();
                ops[s].process_input(side, b.gather(rows), &mut emitted).expect("joins");
                assert!(emitted.is_empty(), "a temporal join emits on the watermark only");
            }
        }
        max_ts = recs[i..j].iter().fold(max_ts, |m, r| m.max(r.ts));
        for (s, o) in ops.iter_mut().enumerate() {
            let mut emitted = Vec::new();
            let f = o.on_signal(Signal::Watermark(max_ts - delay - 1), &mut emitted).expect("signal");
            for b in &emitted {
                assert!(b.timestamps.iter().all(|&t| t >= fwd[s]), "a row behind the watermark forwarded");
            }
            out.extend(emitted);
            if let Some(Signal::Watermark(w)) = f {
                fwd[s] = w;
            }
        }
        peak_versions = peak_versions.max(ops.iter().map(|o| o.buffered().1).sum());
        i = j;
    }
    for o in &mut ops {
        o.on_signal(Signal::Watermark(i64::MAX), &mut out).expect("signal");
        assert_eq!(o.buffered().0, 0, "the final watermark leaves no left row");
    }
    (ids(&out), peak_versions)
}

/// The plain model: per left row, the latest version at or before it.
fn model(jt: JoinType, recs: &[Rec]) -> Vec<Out> {
    let mut want = Vec::new();
    for l in recs.iter().filter(|r| r.side == 0) {
        // The last to arrive of the latest time wins.
        let mut best: Option<&Rec> = None;
        for r in recs.iter().filter(|r| r.side == 1 && r.key == l.key && r.ts <= l.ts) {
            if best.is_none_or(|b| r.ts >= b.ts) {
                best = Some(r);
            }
        }
        match best {
            Some(r) if !r.deleted => want.push((l.id, Some(r.id), l.ts)),
            _ if jt == JoinType::LeftOuter => want.push((l.id, None, l.ts)),
            _ => {}
        }
    }
    want.sort();
    want
}

/// Records in time order with random gaps, then shuffled within `delay`.
fn records(spec: Vec<(bool, u8, u8, u8, u8)>, delay: i64) -> Vec<Rec> {
    let mut t = 1_000_000;
    let mut recs: Vec<(i64, Rec)> = spec
        .into_iter()
        .enumerate()
        .map(|(i, (right, key, gap, jitter, del))| {
            t += i64::from(gap);
            let rec = Rec { side: u32::from(right), ts: t, key: key % 5, id: i as i64, deleted: right && del % 6 == 0 };
            (t + i64::from(jitter) % (delay + 1), rec)
        })
        .collect();
    recs.sort_by_key(|(arrival, r)| (*arrival, r.id));
    recs.into_iter().map(|(_, r)| r).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn temporal_join_equals_the_model_also_across_a_rescale(
        spec in proptest::collection::vec((any::<bool>(), any::<u8>(), 0u8..40, any::<u8>(), any::<u8>()), 1..200),
        delay in 0i64..50,
        p in 1u32..5,
        p2 in 0u32..5,
        cut in 0usize..200,
        chunk in 1usize..20,
        left_outer in any::<bool>(),
    ) {
        let jt = if left_outer { JoinType::LeftOuter } else { JoinType::Inner };
        let recs = records(spec, delay);
        let (got, _) = run(jt, &recs, delay, p, p2, cut, chunk);
        prop_assert_eq!(got, model(jt, &recs));
    }
}

#[test]
fn old_versions_are_pruned_to_one_per_key_below_the_watermark() {
    // 5 keys, 2,000 versions each, one left row now and then: state stays
    // at about the versions of the watermark's delay, not all of them.
    let mut spec = Vec::new();
    for i in 0..10_000u32 {
        spec.push((i % 50 != 0, (i % 5) as u8, 1u8, 0u8, 1u8));
    }
    let recs = records(spec, 0);
    let (got, peak) = run(JoinType::Inner, &recs, 0, 1, 0, usize::MAX, 10);
    assert_eq!(got, model(JoinType::Inner, &recs));
    assert!(peak <= 20, "versions kept at most: {peak}");
}

#[test]
fn a_deletion_ends_the_versions_and_late_rows_are_counted() {
    let counters = Arc::new(TaskCounters::new());
    let spec = TemporalSpec { join_type: JoinType::LeftOuter, left_key: vec![1], right_key: vec![1], deleted: Some(3) };
    let mut j = TemporalJoin::new("t".into(), spec, LEFT.to_vec(), RIGHT.to_vec(), MAXP, counters.clone()).expect("ok");
    let v = |ts, id, deleted| Rec { side: 1, ts, key: 1, id, deleted };
    let l = |ts, id| Rec { side: 0, ts, key: 1, id, deleted: false };
    let mut out = Vec::new();
    j.process_input(1, batch(&[v(100, 1, false), v(200, 2, true)]), &mut out).expect("versions");
    j.process_input(0, batch(&[l(150, 10), l(250, 11), l(90, 12)]), &mut out).expect("left");
    j.on_signal(Signal::Watermark(300), &mut out).expect("signal");
    assert_eq!(ids(&out), [(10, Some(1), 150), (11, None, 250), (12, None, 90)]);
    assert_eq!(j.buffered().1, 0, "the deletion, latest before the watermark, is forgotten");
    j.process_input(0, batch(&[l(299, 13)]), &mut out).expect("late");
    j.process_input(1, batch(&[v(280, 3, false)]), &mut out).expect("late");
    assert_eq!(counters.late_records.load(std::sync::atomic::Ordering::Relaxed), 2);
}

#[test]
fn a_snapshot_of_another_format_is_refused() {
    let mut j = op(JoinType::Inner);
    let err = j.restore(KeyedSnapshot { key_groups: vec![(3, vec![7, 1])] }).expect_err("refused");
    assert!(err.to_string().contains("format 7"), "{err}");
}

#[test]
fn a_delete_row_ends_the_versions_like_a_deleted_field() {
    // A Kafka tombstone on a versioned source comes as a `-D` row, its
    // `deleted` field false or absent: it deletes all the same.
    let spec = TemporalSpec { join_type: JoinType::LeftOuter, left_key: vec![1], right_key: vec![1], deleted: None };
    let counters = Arc::new(TaskCounters::new());
    let mut j = TemporalJoin::new("t".into(), spec, LEFT.to_vec(), RIGHT.to_vec(), MAXP, counters).expect("ok");
    let v = |ts, id| Rec { side: 1, ts, key: 1, id, deleted: false };
    let l = |ts, id| Rec { side: 0, ts, key: 1, id, deleted: false };
    let mut versions = batch(&[v(100, 1), v(200, 2), v(300, 3)]);
    versions.kinds = Some(vec![RowKind::Insert, RowKind::Delete, RowKind::Insert]);
    let mut out = Vec::new();
    j.process_input(1, versions, &mut out).expect("versions");
    j.process_input(0, batch(&[l(150, 10), l(250, 11), l(350, 12)]), &mut out).expect("left");
    j.on_signal(Signal::Watermark(400), &mut out).expect("signal");
    assert_eq!(ids(&out), [(10, Some(1), 150), (11, None, 250), (12, Some(3), 350)]);
}
