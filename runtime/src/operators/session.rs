//! Session windows of one key: Flink's `MergingWindowSet` over
//! `TimeWindow`s. A record at `t` makes the window `[t, t + gap)`; windows
//! of one key that overlap or touch (`a.start <= b.end && a.end >=
//! b.start`, Flink's `TimeWindow.intersects`) merge into one spanning
//! both, and their accumulators merge ([`Acc::merge`]). A key's windows
//! are kept sorted by start and pairwise apart.

use super::window_state::{Acc, Window};

/// Where `[start, end)` went among `windows`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placed {
    /// The index of the window that now holds the record.
    pub at: usize,
    /// The window's end changed or it is new: it needs a timer there.
    pub new_end: bool,
}

/// Whether `[start, end)` would merge with one of `windows`.
pub fn intersects_any(windows: &[Window], start: i64, end: i64) -> bool {
    windows.iter().any(|w| w.start <= end && w.end >= start)
}

/// Puts the record window `[start, end)` among `windows`, merging it with
/// every window it overlaps or touches; `fresh` makes a new window's
/// accumulators. A window that merged has not fired in its new extent:
/// it fires again (at once if the watermark has passed its end).
pub fn place(windows: &mut Vec<Window>, start: i64, end: i64, fresh: impl FnOnce() -> Vec<Acc>) -> Placed {
    let first = windows.iter().position(|w| w.end >= start);
    let Some(first) = first.filter(|&i| windows[i].start <= end) else {
        // Nothing to merge with: a new window, in start order.
        let at = first.unwrap_or(windows.len());
        windows.insert(at, Window { start, end, fired: false, accs: fresh() });
        return Placed { at, new_end: true };
    };
    let mut last = first;
    while last + 1 < windows.len() && windows[last + 1].start <= end {
        last += 1;
    }
    let old_end = windows[first].end;
    let merged: Vec<Window> = windows.drain(first + 1..=last).collect();
    let w = &mut windows[first];
    w.start = w.start.min(start);
    w.end = w.end.max(end);
    for m in &merged {
        w.end = w.end.max(m.end);
        for (a, b) in w.accs.iter_mut().zip(&m.accs) {
            a.merge(b);
        }
    }
    w.fired = false;
    // Each window had a timer at its end (or has fired, and its end is
    // behind the watermark): the merged window needs one only at a new end.
    let new_end = w.end != old_end && merged.iter().all(|m| m.end != w.end);
    Placed { at: first, new_end }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spans(ws: &[Window]) -> Vec<(i64, i64, i64)> {
        ws.iter()
            .map(|w| {
                let n = match w.accs.first() {
                    Some(Acc::Count(n)) => *n,
                    _ => -1,
                };
                (w.start, w.end, n)
            })
            .collect()
    }

    fn add(ws: &mut Vec<Window>, t: i64, gap: i64) -> Placed {
        let p = place(ws, t, t + gap, || vec![Acc::Count(0)]);
        if let Some(Acc::Count(n)) = ws[p.at].accs.first_mut() {
            *n += 1;
        }
        p
    }

    #[test]
    fn records_closer_than_the_gap_merge_and_touching_windows_merge() {
        let mut ws = Vec::new();
        assert!(add(&mut ws, 100, 10).new_end);
        assert!(add(&mut ws, 0, 10).new_end);
        assert_eq!(spans(&ws), vec![(0, 10, 1), (100, 110, 1)]);
        // Inside an existing window: no new end.
        assert!(!add(&mut ws, 3, 7).new_end);
        assert_eq!(spans(&ws), vec![(0, 10, 2), (100, 110, 1)]);
        // Extending one: a new end.
        assert!(add(&mut ws, 5, 10).new_end);
        assert_eq!(spans(&ws), vec![(0, 15, 3), (100, 110, 1)]);
        // [90, 100) touches [100, 110): they merge.
        add(&mut ws, 90, 10);
        assert_eq!(spans(&ws), vec![(0, 15, 3), (90, 110, 2)]);
        // One record bridging two windows merges all three; the end is
        // one a window had: no new timer.
        assert!(!add(&mut ws, 15, 75).new_end);
        assert_eq!(spans(&ws), vec![(0, 110, 6)]);
    }

    /// The session operator of the property tests: per key `k`, over
    /// records `(t, k, v)`, `{ k, start, end, n: count(), sum: sum(v) }`.
    fn session_op(gap: u64, lateness: u64, late_output: bool) -> super::super::window::WindowOperator {
        use flowc_compiler::ir::{
            AggCall, AggFunc, DataType as T, Expr, Field, Schema, TimeDomain, WindowAggregate, WindowKind, WindowSpec,
        };
        let spec = WindowAggregate {
            key: vec![1],
            window: WindowSpec { kind: WindowKind::Session { gap_ms: gap }, time: TimeDomain::EventTime },
            aggregates: vec![
                AggCall { func: AggFunc::Count, arg: None, arg_type: T::Long, result_type: T::Long },
                AggCall { func: AggFunc::Sum, arg: Some(Expr::Field(2)), arg_type: T::Long, result_type: T::Long },
            ],
            output: vec![Expr::Key(0), Expr::WindowStart, Expr::WindowEnd, Expr::Aggregate(0), Expr::Aggregate(1)],
            lateness_ms: lateness,
            late_output,
        };
        let schema =
            |f: &[(&str, T)]| Schema { name: None, fields: f.iter().map(|(n, t)| Field::new(*n, *t)).collect() };
        let input = schema(&[("t", T::Timestamp), ("k", T::Long), ("v", T::Long)]);
        let output =
            schema(&[("k", T::Long), ("start", T::Timestamp), ("end", T::Timestamp), ("n", T::Long), ("sum", T::Long)]);
        let counters = std::sync::Arc::new(crate::metrics::TaskCounters::new());
        super::super::window::WindowOperator::new("s".into(), spec, &input, &output, 128, counters, &Default::default())
            .expect("builds")
    }

    fn batch(events: &[(i64, i64, i64)]) -> crate::data::Batch {
        use crate::record::Value;
        let rows: Vec<(i64, Vec<Value>)> =
            events.iter().map(|&(t, k, v)| (t, vec![Value::Timestamp(t), Value::Int(k), Value::Int(v)])).collect();
        let types = [
            flowc_compiler::ir::DataType::Timestamp,
            flowc_compiler::ir::DataType::Long,
            flowc_compiler::ir::DataType::Long,
        ];
        crate::data::Batch::from_rows(&types, &rows).expect("fits")
    }

    /// Output rows as (k, start, end, n, sum).
    type Session = (i64, i64, i64, i64, i64);

    fn sessions(out: &[crate::data::Batch]) -> Vec<Session> {
        use crate::record::Value;
        out.iter()
            .flat_map(|b| b.rows())
            .map(|(_, r)| match r.as_slice() {
                [Value::Int(k), Value::Timestamp(s), Value::Timestamp(e), Value::Int(n), Value::Int(sum)] => {
                    (*k, *s, *e, *n, *sum)
                }
                other => panic!("unexpected row {other:?}"),
            })
            .collect()
    }

    /// The plain model: per key, records sorted by time, a new session
    /// wherever the next record is more than `gap` after the previous.
    fn model(events: &[(i64, i64, i64)], gap: i64) -> Vec<Session> {
        let mut by_key: std::collections::BTreeMap<i64, Vec<(i64, i64)>> = Default::default();
        for &(t, k, v) in events {
            by_key.entry(k).or_default().push((t, v));
        }
        let mut out = Vec::new();
        for (k, mut recs) in by_key {
            recs.sort();
            let mut cur: Option<Session> = None;
            for (t, v) in recs {
                cur = match cur {
                    Some((k, s, e, n, sum)) if t <= e => Some((k, s, e.max(t + gap), n + 1, sum + v)),
                    other => {
                        out.extend(other);
                        Some((k, t, t + gap, 1, v))
                    }
                };
            }
            out.extend(cur);
        }
        out.sort();
        out
    }

    /// Runs `events` in this order through `p` subtasks routed by key
    /// group, the watermark trailing the earliest record still to come by
    /// 2 ms (no record is late, none touches a fired session); after `cut`
    /// records each subtask snapshots, and `p2` subtasks restored from the
    /// snapshots take the rest.
    fn run(events: &[(i64, i64, i64)], gap: u64, p: u32, p2: u32, cut: usize, chunk: usize) -> Vec<Session> {
        use crate::keygroup::{key_group_range, subtask_for_key_group, Key};
        use crate::operators::Operator;
        use crate::record::{Signal, Value};
        let maxp = 128;
        let route = |k: i64, p: u32| subtask_for_key_group(Key(vec![Value::Int(k)]).key_group(maxp), p, maxp) as usize;
        let mut ops: Vec<_> = (0..p).map(|_| session_op(gap, 0, false)).collect();
        let mut out = Vec::new();
        let cut = cut.min(events.len());
        let feed = |ops: &mut Vec<super::super::window::WindowOperator>,
                    part: &[(i64, i64, i64)],
                    rest: &[(i64, i64, i64)],
                    out: &mut Vec<crate::data::Batch>| {
            let par = ops.len() as u32;
            for (i, c) in part.chunks(chunk.max(1)).enumerate() {
                for (sub, op) in ops.iter_mut().enumerate() {
                    let mine: Vec<_> = c.iter().copied().filter(|e| route(e.1, par) == sub).collect();
                    if !mine.is_empty() {
                        op.process(batch(&mine), out).unwrap();
                    }
                }
                let ahead = part[((i + 1) * chunk.max(1)).min(part.len())..].iter().chain(rest);
                if let Some(min) = ahead.map(|e| e.0).min() {
                    for op in ops.iter_mut() {
                        op.on_signal(Signal::Watermark(min - 2), out).unwrap();
                    }
                }
            }
        };
        feed(&mut ops, &events[..cut], &events[cut..], &mut out);
        let states: Vec<crate::checkpoint::format::OperatorState> = ops
            .iter()
            .map(|o| crate::checkpoint::format::OperatorState {
                operator: Default::default(),
                keyed: o.snapshot().key_groups,
                raw: Vec::new(),
            })
            .collect();
        let mut ops2: Vec<_> = (0..p2)
            .map(|i| {
                let mut op = session_op(gap, 0, false);
                let range = key_group_range(i, p2, maxp);
                op.restore(crate::checkpoint::restore::select_key_groups(&states, &range)).unwrap();
                op
            })
            .collect();
        feed(&mut ops2, &events[cut..], &[], &mut out);
        for op in &mut ops2 {
            op.on_signal(Signal::Watermark(i64::MAX), &mut out).unwrap();
        }
        let mut got = sessions(&out);
        got.sort();
        got
    }

    proptest::proptest! {
        /// Sessions merge the same whatever the order records arrive in
        /// (within the watermark bound), and after a snapshot restored at
        /// another parallelism.
        #[test]
        fn sessions_merge_the_same_in_any_order_and_across_a_rescale(
            events in proptest::collection::vec((0i64..3000, 0i64..6, -50i64..50), 0..120),
            order in proptest::collection::vec(proptest::prelude::any::<u32>(), 120),
            gap in 1u64..200,
            p in 1u32..=4,
            p2 in 1u32..=4,
            cut in 0usize..120,
            chunk in 1usize..20,
        ) {
            let mut shuffled: Vec<_> = events.iter().copied().zip(order.iter().copied()).collect();
            shuffled.sort_by_key(|(_, o)| *o);
            let shuffled: Vec<_> = shuffled.into_iter().map(|(e, _)| e).collect();
            proptest::prop_assert_eq!(run(&shuffled, gap, p, p2, cut, chunk), model(&events, gap as i64));
        }
    }

    #[test]
    fn a_late_record_within_the_lateness_merges_and_fires_the_session_again() {
        use crate::operators::Operator;
        use crate::record::Signal;
        let mut op = session_op(10, 100, true);
        let mut out = Vec::new();
        op.process(batch(&[(0, 1, 1), (5, 1, 2)]), &mut out).unwrap();
        op.on_signal(Signal::Watermark(14), &mut out).unwrap();
        assert_eq!(sessions(&out), vec![(1, 0, 15, 2, 3)]);
        out.clear();
        // Late (its window ends before the watermark), within the lateness:
        // it merges into the fired session, which fires again at once.
        op.process(batch(&[(3, 1, 4)]), &mut out).unwrap();
        assert_eq!(sessions(&out), vec![(1, 0, 15, 3, 7)]);
        out.clear();
        // One that extends the session past the watermark makes it fire
        // again when the watermark passes its new end.
        op.process(batch(&[(12, 1, 1)]), &mut out).unwrap();
        assert!(out.is_empty());
        op.on_signal(Signal::Watermark(21), &mut out).unwrap();
        assert_eq!(sessions(&out), vec![(1, 0, 22, 4, 8)]);
        out.clear();
        // A snapshot keeps what fired; restored, it does not fire again.
        let mut restored = session_op(10, 100, true);
        restored.restore(op.snapshot()).unwrap();
        restored.on_signal(Signal::Watermark(50), &mut out).unwrap();
        assert!(out.is_empty(), "{:?}", sessions(&out));
        // Past the lateness its state is gone: a record for it is late and
        // goes to the late output.
        restored.on_signal(Signal::Watermark(121), &mut out).unwrap();
        assert!(out.is_empty());
        assert!(restored.snapshot().key_groups.is_empty());
        restored.process(batch(&[(3, 1, 9)]), &mut out).unwrap();
        assert!(out.is_empty());
        let late: Vec<_> = restored.take_late().iter().flat_map(|b| b.rows()).collect();
        assert_eq!(late.len(), 1);
        assert_eq!(late[0].0, 3);
    }
}
