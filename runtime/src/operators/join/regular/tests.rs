//! The regular join against a nested loop: every pair of a left and a
//! right row with equal, non-null keys, once; random keys (some null),
//! random arrival order of both sides, random parallelism, and a snapshot →
//! restore at another parallelism half way. Then `ttl`: a row meets no row
//! once its time is over, leaves state and checkpoints, and keeps its
//! arrival time through a restore.
//!
//! The left join against a plain model: its changelog, folded (`+I` adds
//! a row, `-D` takes an equal one back, never below none), is the left
//! join of all rows — each left row with every right row of its key, or
//! alone with nulls — also across a restore at another parallelism; and
//! the order of its changes: null-padded at once, `-D` then the pair at
//! the first match, pairs only after.

use super::*;
use crate::keygroup::{key_group, key_group_range, subtask_for_key_group};
use proptest::prelude::*;
use std::cell::Cell;
use std::collections::BTreeMap;

const MAXP: u32 = 16;
const LEFT: [DataType; 3] = [DataType::Timestamp, DataType::String, DataType::Long];
const RIGHT: [DataType; 3] = [DataType::Long, DataType::String, DataType::Timestamp];

thread_local! {
    static NOW: Cell<i64> = const { Cell::new(1_000_000) };
}

fn now() -> i64 {
    NOW.with(Cell::get)
}

fn set_now(t: i64) {
    NOW.with(|n| n.set(t));
}

fn op(ttl_ms: u64) -> RegularJoin {
    join(ttl_ms, false)
}

fn join(ttl_ms: u64, left_outer: bool) -> RegularJoin {
    let spec = RegularSpec { left_key: vec![1], right_key: vec![1], ttl_ms, left_outer };
    let mut j = RegularJoin::new("regular".into(), spec, LEFT.to_vec(), RIGHT.to_vec(), MAXP).expect("builds");
    j.clock = now;
    j
}

/// One record: its side (0 left, 1 right), key (`None`: null), id.
#[derive(Debug, Clone)]
struct Rec {
    side: u32,
    key: Option<u8>,
    id: i64,
}

fn key_value(k: Option<u8>) -> Value {
    k.map_or(Value::Null, |k| Value::Str(format!("k{k}")))
}

/// The left's key is its second column, the right's too; the id is the
/// left's third column and the right's first, the event time `1000 + id`.
fn batch(recs: &[Rec]) -> Batch {
    let side = recs[0].side;
    let rows: Vec<(i64, Vec<Value>)> = recs
        .iter()
        .map(|r| {
            let ts = 1000 + r.id;
            let row = if side == 0 {
                vec![Value::Timestamp(ts), key_value(r.key), Value::Int(r.id)]
            } else {
                vec![Value::Int(r.id), key_value(r.key), Value::Timestamp(ts)]
            };
            (ts, row)
        })
        .collect();
    Batch::from_rows(if side == 0 { &LEFT } else { &RIGHT }, &rows).expect("fits")
}

/// (left id, right id) of each output row, sorted; each row checked to
/// be the left's fields then the right's, keys equal, event time the later.
fn ids(out: &[Batch]) -> Vec<(i64, i64)> {
    let mut got = Vec::new();
    for b in out {
        for (ts, row) in b.rows() {
            let (Value::Int(l), Value::Int(r)) = (&row[2], &row[3]) else { panic!("bad row {row:?}") };
            assert_eq!(row[1], row[4], "keys are equal: {row:?}");
            assert_ne!(row[1], Value::Null, "a null key meets nothing");
            assert_eq!(ts, 1000 + l.max(r), "the later of the two times");
            got.push((*l, *r));
        }
    }
    got.sort_unstable();
    got
}

/// Sends `recs` (in arrival order, in batches of up to `chunk` of one
/// side) to `p` subtasks by key group, and after `cut` records snapshots
/// them all and restores at `p2` (0: never).
fn run(recs: &[Rec], p: u32, p2: u32, cut: usize, chunk: usize) -> Vec<(i64, i64)> {
    ids(&run_join(recs, p, p2, cut, chunk, false))
}

/// As [`run`], an inner or a left join; the output as it came.
fn run_join(recs: &[Rec], p: u32, p2: u32, cut: usize, chunk: usize, left_outer: bool) -> Vec<Batch> {
    set_now(1_000_000);
    let op = |ttl_ms| join(ttl_ms, left_outer);
    let mut ops: Vec<RegularJoin> = (0..p).map(|_| op(86_400_000)).collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut restored = false;
    while i < recs.len() {
        if i >= cut && !restored && p2 != 0 {
            restored = true;
            let mut groups: Vec<(u32, Vec<u8>)> = ops.iter().flat_map(|o| o.snapshot().key_groups).collect();
            groups.sort_by_key(|(kg, _)| *kg);
            let kept: usize = ops.iter().map(|o| o.buffered().0 + o.buffered().1).sum();
            ops = (0..p2)
                .map(|s| {
                    let range = key_group_range(s, p2, MAXP);
                    let mine: Vec<(u32, Vec<u8>)> =
                        groups.iter().filter(|(kg, _)| range.contains(kg)).cloned().collect();
                    let mut o = op(86_400_000);
                    o.restore(KeyedSnapshot { key_groups: mine }).expect("restores");
                    o
                })
                .collect();
            let after: usize = ops.iter().map(|o| o.buffered().0 + o.buffered().1).sum();
            assert_eq!(after, kept, "a rescale keeps every row");
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
                ops[s].process_input(side, b.gather(rows), &mut out).expect("joins");
            }
        }
        set_now(now() + 7);
        i = j;
    }
    out
}

/// The plain model: a nested loop.
fn model(recs: &[Rec]) -> Vec<(i64, i64)> {
    let mut want = Vec::new();
    for l in recs.iter().filter(|r| r.side == 0) {
        for r in recs.iter().filter(|r| r.side == 1) {
            if l.key.is_some() && l.key == r.key {
                want.push((l.id, r.id));
            }
        }
    }
    want.sort_unstable();
    want
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn regular_join_equals_a_nested_loop_also_across_a_rescale(
        spec in proptest::collection::vec((any::<bool>(), 0u8..8), 1..200),
        p in 1u32..5,
        p2 in 0u32..5,
        cut in 0usize..200,
        chunk in 1usize..20,
    ) {
        let recs: Vec<Rec> = spec
            .into_iter()
            .enumerate()
            .map(|(i, (right, k))| Rec { side: u32::from(right), key: (k < 7).then_some(k % 5), id: i as i64 })
            .collect();
        prop_assert_eq!(run(&recs, p, p2, cut, chunk), model(&recs));
    }
}

fn state_bytes(j: &RegularJoin) -> usize {
    j.snapshot().key_groups.iter().map(|(_, b)| b.len()).sum()
}

#[test]
fn a_row_meets_rows_for_ttl_after_it_arrived_then_leaves_state_and_checkpoints() {
    let mut j = op(1000);
    let mut out = Vec::new();
    set_now(10_000);
    j.process_input(0, batch(&[Rec { side: 0, key: Some(1), id: 1 }]), &mut out).unwrap();
    set_now(10_999);
    j.process_input(1, batch(&[Rec { side: 1, key: Some(1), id: 2 }]), &mut out).unwrap();
    assert_eq!(ids(&out), vec![(1, 2)], "alive until 1000 ms after it arrived");
    out.clear();
    set_now(11_000);
    j.process_input(1, batch(&[Rec { side: 1, key: Some(1), id: 3 }]), &mut out).unwrap();
    assert!(out.is_empty(), "left row 1 is 1000 ms old: it meets nothing");
    // Rows are dropped in buckets of ttl / 8 = 125 ms of arrival time,
    // once every row of the bucket is over: row 1's, [10 000, 10 125),
    // at 11 125.
    assert_eq!(j.buffered(), (1, 2), "over, but its bucket is not yet");
    set_now(11_100);
    j.process_input(0, batch(&[Rec { side: 0, key: Some(1), id: 4 }]), &mut out).unwrap();
    assert_eq!(ids(&out), vec![(4, 2), (4, 3)]);
    out.clear();
    let before = state_bytes(&j);
    j.on_timer(12_050, &mut out).unwrap();
    // Gone: rows 1 (bucket over at 11 125) and 2 (at 10 999, bucket
    // [10 875, 11 000) over at 12 000). Kept: 4 (at 11 100) and 3 (at
    // 11 000: over at 12 000, but its bucket [11 000, 11 125) at 12 125).
    assert_eq!(j.buffered(), (1, 1));
    assert!(state_bytes(&j) < before, "the checkpoint shrinks");
    j.on_timer(13_000, &mut out).unwrap();
    assert_eq!(j.buffered(), (0, 0));
    assert!(j.snapshot().key_groups.is_empty(), "nothing left to checkpoint");
    assert!(out.is_empty(), "expiry emits nothing");
}

#[test]
fn a_restore_keeps_each_rows_arrival_time() {
    let mut j = op(1000);
    let mut out = Vec::new();
    set_now(20_000);
    j.process_input(0, batch(&[Rec { side: 0, key: Some(1), id: 1 }]), &mut out).unwrap();
    set_now(20_600);
    j.process_input(0, batch(&[Rec { side: 0, key: Some(2), id: 2 }]), &mut out).unwrap();
    let snap = j.snapshot();
    let mut k = op(1000);
    k.restore(snap.clone()).unwrap();
    assert_eq!(k.snapshot(), snap, "a restore round-trips");
    set_now(21_100);
    k.process_input(1, batch(&[Rec { side: 1, key: Some(1), id: 3 }, Rec { side: 1, key: Some(2), id: 4 }]), &mut out)
        .unwrap();
    assert_eq!(ids(&out), vec![(2, 4)], "row 1 arrived at 20 000: over at 21 000, restored or not");
    let mut bad = snap;
    bad.key_groups[0].1[0] = 9;
    assert!(op(1000).restore(bad).unwrap_err().to_string().contains("state format 9"));
}

/// A left join's output row: (left id, right id or `None` when
/// null-padded); each row checked to be the left's fields then the
/// right's, keys equal, event time the later (the left's when alone).
fn left_row(ts: i64, row: &[Value]) -> (i64, Option<i64>) {
    let Value::Int(l) = row[2] else { panic!("bad row {row:?}") };
    match &row[3] {
        Value::Int(r) => {
            assert_eq!(row[1], row[4], "keys are equal: {row:?}");
            assert_ne!(row[1], Value::Null, "a null key meets nothing");
            assert_eq!(ts, 1000 + l.max(*r), "the later of the two times");
            (l, Some(*r))
        }
        Value::Null => {
            assert!(row[3..].iter().all(|v| *v == Value::Null), "null-padded: {row:?}");
            assert_eq!(ts, 1000 + l, "a left row alone has its own time");
            (l, None)
        }
        other => panic!("bad right id {other:?} in {row:?}"),
    }
}

/// Folds a changelog in order: `+I` adds a row, `-D` takes an equal one
/// back (a `-D` of a row not there fails). Every batch carries its kinds.
fn fold(out: &[Batch]) -> BTreeMap<(i64, Option<i64>), i64> {
    let mut table: BTreeMap<(i64, Option<i64>), i64> = BTreeMap::new();
    for b in out {
        assert!(b.kinds.is_some(), "a left join's batches carry their row kinds");
        for (r, (ts, row)) in b.rows().into_iter().enumerate() {
            let key = left_row(ts, &row);
            match b.kind(r) {
                crate::data::RowKind::Insert => *table.entry(key).or_insert(0) += 1,
                crate::data::RowKind::Delete => {
                    let n = table.entry(key).or_insert(0);
                    assert!(*n > 0, "-D of {key:?}, which is not there");
                    *n -= 1;
                }
                other => panic!("a left join emits +I and -D only, not {other:?}"),
            }
        }
    }
    table.retain(|_, n| *n != 0);
    table
}

/// The plain model of a left join: each left row with every right row of
/// its (non-null) key, or alone.
fn left_model(recs: &[Rec]) -> BTreeMap<(i64, Option<i64>), i64> {
    let mut want = BTreeMap::new();
    for l in recs.iter().filter(|r| r.side == 0) {
        let mut met = false;
        for r in recs.iter().filter(|r| r.side == 1) {
            if l.key.is_some() && l.key == r.key {
                *want.entry((l.id, Some(r.id))).or_insert(0) += 1;
                met = true;
            }
        }
        if !met {
            *want.entry((l.id, None)).or_insert(0) += 1;
        }
    }
    want
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn a_left_joins_changelog_folds_to_the_left_join_also_across_a_rescale(
        spec in proptest::collection::vec((any::<bool>(), 0u8..8), 1..200),
        p in 1u32..5,
        p2 in 0u32..5,
        cut in 0usize..200,
        chunk in 1usize..20,
    ) {
        let recs: Vec<Rec> = spec
            .into_iter()
            .enumerate()
            .map(|(i, (right, k))| Rec { side: u32::from(right), key: (k < 7).then_some(k % 5), id: i as i64 })
            .collect();
        prop_assert_eq!(fold(&run_join(&recs, p, p2, cut, chunk, true)), left_model(&recs));
    }
}

/// Each output row as `(kind, left id, right id)`, in order.
fn changes(out: &[Batch]) -> Vec<(&'static str, i64, Option<i64>)> {
    let mut got = Vec::new();
    for b in out {
        for (r, (ts, row)) in b.rows().into_iter().enumerate() {
            let (l, rid) = left_row(ts, &row);
            got.push((b.kind(r).short(), l, rid));
        }
    }
    got
}

fn send(j: &mut RegularJoin, side: u32, key: Option<u8>, id: i64) -> Vec<(&'static str, i64, Option<i64>)> {
    let mut out = Vec::new();
    j.process_input(side, batch(&[Rec { side, key, id }]), &mut out).expect("joins");
    changes(&out)
}

#[test]
fn a_left_row_comes_out_alone_then_is_retracted_at_its_first_match() {
    let mut j = join(1000, true);
    set_now(30_000);
    assert_eq!(send(&mut j, 0, Some(1), 1), [("+I", 1, None)], "no right row yet: alone, at once");
    assert_eq!(send(&mut j, 1, Some(1), 2), [("-D", 1, None), ("+I", 1, Some(2))], "the first match retracts it");
    assert_eq!(send(&mut j, 1, Some(1), 3), [("+I", 1, Some(3))], "later matches are pairs only");
    assert_eq!(send(&mut j, 0, Some(1), 4).len(), 2, "a left row with matches: pairs only");
    assert!(send(&mut j, 0, Some(1), 4).iter().all(|c| c.0 == "+I" && c.2.is_some()));
    assert_eq!(send(&mut j, 0, None, 5), [("+I", 5, None)], "a null key: alone, for good");
    assert_eq!(j.buffered(), (3, 2), "a null key is not kept");
    assert!(send(&mut j, 1, Some(2), 6).is_empty(), "a right row without a left one: nothing");
    // Its time is over: the left row 7 leaves without a retraction, and
    // a right row after that meets nothing.
    assert_eq!(send(&mut j, 0, Some(3), 7), [("+I", 7, None)]);
    set_now(31_000);
    assert!(send(&mut j, 1, Some(3), 8).is_empty(), "left row 7 is 1000 ms old");
    let mut out = Vec::new();
    j.on_timer(32_000, &mut out).expect("expires");
    assert!(out.is_empty(), "expiry retracts nothing (NeverReturnExpired)");
    assert_eq!(j.buffered(), (0, 1), "only right row 8 (at 31 000) is left");
}

#[test]
fn a_restore_keeps_whether_a_left_row_has_matched() {
    let mut j = join(60_000, true);
    set_now(40_000);
    assert_eq!(send(&mut j, 0, Some(1), 1), [("+I", 1, None)]);
    assert_eq!(send(&mut j, 0, Some(2), 2), [("+I", 2, None)]);
    assert_eq!(send(&mut j, 1, Some(1), 3), [("-D", 1, None), ("+I", 1, Some(3))]);
    let snap = j.snapshot();
    let mut k = join(60_000, true);
    k.restore(snap.clone()).expect("restores");
    assert_eq!(k.snapshot(), snap, "a restore round-trips");
    assert_eq!(send(&mut k, 1, Some(1), 4), [("+I", 1, Some(4))], "row 1 had matched: no second -D");
    assert_eq!(send(&mut k, 1, Some(2), 5), [("-D", 2, None), ("+I", 2, Some(5))], "row 2 had not");
}

#[test]
fn state_of_format_1_an_inner_joins_restores() {
    /// Format 1's key group, as the flowc before left joins wrote it.
    #[derive(serde::Serialize)]
    struct V1 {
        left: Vec<(i64, Vec<Value>)>,
        left_at: Vec<i64>,
        right: Vec<(i64, Vec<Value>)>,
        right_at: Vec<i64>,
    }
    set_now(50_000);
    let left = vec![(1001, vec![Value::Timestamp(1001), key_value(Some(1)), Value::Int(1)])];
    let g = V1 { left, left_at: vec![50_000], right: Vec::new(), right_at: Vec::new() };
    let mut bytes = vec![1u8];
    bytes.extend(bincode::serde::encode_to_vec(&g, bincode::config::standard()).expect("encodes"));
    let mut h = Vec::new();
    key_hashes(&batch(&[Rec { side: 0, key: Some(1), id: 1 }]).columns, &[1], 1, &mut h);
    let mut j = op(1000);
    j.restore(KeyedSnapshot { key_groups: vec![(key_group(h[0], MAXP), bytes)] }).expect("format 1 restores");
    let mut out = Vec::new();
    j.process_input(1, batch(&[Rec { side: 1, key: Some(1), id: 2 }]), &mut out).unwrap();
    assert_eq!(ids(&out), vec![(1, 2)]);
}
