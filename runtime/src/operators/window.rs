//! `key_by | window | aggregate`: keyed tumbling and sliding windows in
//! event or processing time, with incremental aggregates.
//!
//! State is kept per key and window as one accumulator per aggregate, and
//! snapshotted per key group, so that a restore at another parallelism
//! takes exactly the key groups the new subtask owns. A window fires once
//! the watermark (event time) or the clock (processing time) passes its last
//! millisecond, `end - 1`, as Flink's `EventTimeTrigger` does; its output
//! records carry that time. Records for windows that have already fired
//! are late: dropped and counted.

use super::{KeyedSnapshot, Operator, OperatorError};
use crate::eval::{compare, eval, Scope};
use crate::keygroup::{Key, KeyMap};
use crate::metrics::TaskCounters;
use crate::record::{Record, Signal, Value, NO_TIMESTAMP};
use flowc_compiler::ir::{AggCall, AggFunc, TimeDomain, WindowAggregate, WindowKind};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// The running state of one aggregate in one window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Acc {
    Count(i64),
    /// `None` until the first value.
    Sum(Option<Value>),
    Min(Option<Value>),
    Max(Option<Value>),
    Avg {
        sum: f64,
        count: i64,
    },
}

impl Acc {
    fn new(f: AggFunc) -> Acc {
        match f {
            AggFunc::Count => Acc::Count(0),
            AggFunc::Sum => Acc::Sum(None),
            AggFunc::Min => Acc::Min(None),
            AggFunc::Max => Acc::Max(None),
            AggFunc::Avg => Acc::Avg { sum: 0.0, count: 0 },
        }
    }

    fn add(&mut self, v: Option<Value>) {
        match (self, v) {
            (Acc::Count(n), _) => *n += 1,
            (Acc::Sum(s), Some(v)) => {
                *s = Some(match (s.take(), v) {
                    (None, v) => v,
                    (Some(Value::Int(a)), Value::Int(b)) => Value::Int(a.wrapping_add(b)),
                    (Some(Value::Double(a)), Value::Double(b)) => Value::Double(a + b),
                    (Some(a), _) => a,
                })
            }
            (Acc::Min(m), Some(v)) if m.as_ref().is_none_or(|cur| compare(&v, cur) == Some(Ordering::Less)) => {
                *m = Some(v)
            }
            (Acc::Max(m), Some(v)) if m.as_ref().is_none_or(|cur| compare(&v, cur) == Some(Ordering::Greater)) => {
                *m = Some(v)
            }
            (Acc::Avg { sum, count }, Some(v)) => {
                *sum += match v {
                    Value::Int(i) => i as f64,
                    Value::Double(d) => d,
                    _ => 0.0,
                };
                *count += 1;
            }
            _ => {}
        }
    }

    fn result(&self, call: &AggCall) -> Value {
        match self {
            Acc::Count(n) => Value::Int(*n),
            Acc::Sum(s) => s.clone().unwrap_or(match call.result_type {
                flowc_compiler::ir::DataType::Double => Value::Double(0.0),
                _ => Value::Int(0),
            }),
            // A window holds at least one record, so min and max are set.
            Acc::Min(m) | Acc::Max(m) => m.clone().unwrap_or(Value::Int(0)),
            Acc::Avg { sum, count } => Value::Double(if *count == 0 { 0.0 } else { sum / *count as f64 }),
        }
    }
}

/// The windows of one key: window start → accumulators.
type KeyWindows = BTreeMap<i64, Vec<Acc>>;

/// One key's entry in a snapshot.
#[derive(Serialize, Deserialize)]
struct SnapshotEntry {
    key: Key,
    windows: Vec<(i64, Vec<Acc>)>,
}

/// Format of a key group's bytes in a snapshot; bump on change.
const SNAPSHOT_VERSION: u8 = 1;

pub struct WindowOperator {
    name: String,
    spec: WindowAggregate,
    size: i64,
    slide: i64,
    max_parallelism: u32,
    state: KeyMap<KeyWindows>,
    /// (window end, key): the windows waiting to fire, in firing order.
    timers: BTreeSet<(i64, KeyRef)>,
    watermark: i64,
    counters: Arc<TaskCounters>,
}

/// A key in the timer set, ordered by its encoding for determinism.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct KeyRef(Vec<u8>);

fn key_ref(k: &Key) -> KeyRef {
    KeyRef(bincode::serde::encode_to_vec(k, bincode::config::standard()).unwrap_or_default())
}

impl WindowOperator {
    pub fn new(
        name: String,
        spec: WindowAggregate,
        max_parallelism: u32,
        counters: Arc<TaskCounters>,
    ) -> WindowOperator {
        let (size, slide) = match spec.window.kind {
            WindowKind::Tumbling { size_ms } => (size_ms as i64, size_ms as i64),
            WindowKind::Sliding { size_ms, slide_ms } => (size_ms as i64, slide_ms as i64),
        };
        WindowOperator {
            name,
            spec,
            size: size.max(1),
            slide: slide.max(1),
            max_parallelism,
            state: KeyMap::default(),
            timers: BTreeSet::new(),
            watermark: i64::MIN,
            counters,
        }
    }

    /// The starts of the windows that contain `t`.
    fn window_starts(&self, t: i64) -> impl Iterator<Item = i64> {
        let last = t - t.rem_euclid(self.slide);
        let (size, slide) = (self.size, self.slide);
        (0..).map(move |i| last - i * slide).take_while(move |s| *s > t - size)
    }

    fn eval_error(&self, e: crate::eval::EvalError) -> OperatorError {
        OperatorError::Eval { operator: self.name.clone(), message: e.to_string() }
    }

    /// Fires every window whose last millisecond is at or before `time`.
    fn fire_until(&mut self, time: i64, out: &mut Vec<Record>) -> Result<(), OperatorError> {
        while let Some((end, _)) = self.timers.first() {
            if end - 1 > time {
                break;
            }
            let Some((end, kref)) = self.timers.pop_first() else { break };
            let key: Key = match bincode::serde::decode_from_slice(&kref.0, bincode::config::standard()) {
                Ok((k, _)) => k,
                Err(e) => {
                    return Err(OperatorError::Eval {
                        operator: self.name.clone(),
                        message: format!("bad timer key: {e}"),
                    })
                }
            };
            let start = end - self.size;
            let Some(windows) = self.state.get_mut(&key) else { continue };
            let Some(accs) = windows.remove(&start) else { continue };
            if windows.is_empty() {
                self.state.remove(&key);
            }
            let results: Vec<Value> = accs.iter().zip(&self.spec.aggregates).map(|(a, c)| a.result(c)).collect();
            let scope = Scope { key: &key.0, aggregates: &results, window: Some((start, end)) };
            let row = self.spec.output.iter().map(|e| eval(e, &[], &scope)).collect::<Result<Vec<_>, _>>();
            let row = row.map_err(|e| self.eval_error(e))?;
            out.push(Record::with_timestamp(end - 1, row));
        }
        Ok(())
    }
}

impl Operator for WindowOperator {
    fn process(&mut self, input: Vec<Record>, _out: &mut Vec<Record>) -> Result<(), OperatorError> {
        let mut late = 0u64;
        let proc_now = (self.spec.window.time == TimeDomain::ProcessingTime).then(crate::clock::now_ms);
        let has_args = self.spec.aggregates.iter().any(|c| c.arg.is_some());
        let mut starts: Vec<i64> = Vec::with_capacity(4);
        for mut r in input {
            let t = proc_now.unwrap_or(r.timestamp);
            if t == NO_TIMESTAMP {
                late += 1;
                continue;
            }
            let args: Vec<Option<Value>> = if has_args {
                self.spec
                    .aggregates
                    .iter()
                    .map(|c| c.arg.as_ref().map(|e| eval(e, &r.row, &Scope::default())).transpose())
                    .collect::<Result<_, _>>()
                    .map_err(|e| self.eval_error(e))?
            } else {
                Vec::new()
            };
            // The record is ours: move its key fields out instead of cloning them.
            let key = Key(self
                .spec
                .key
                .iter()
                .map(|i| r.row.get_mut(*i).map_or(Value::Int(0), |v| std::mem::replace(v, Value::Int(0))))
                .collect());
            starts.clear();
            starts.extend(self.window_starts(t));
            let event_time = self.spec.window.time == TimeDomain::EventTime;
            for &start in &starts {
                let end = start + self.size;
                if event_time && end - 1 <= self.watermark {
                    late += 1;
                    continue;
                }
                if !self.state.contains_key(&key) {
                    self.state.insert(key.clone(), KeyWindows::new());
                }
                let Some(windows) = self.state.get_mut(&key) else { continue };
                let accs = windows.entry(start).or_insert_with(|| {
                    self.timers.insert((end, key_ref(&key)));
                    self.spec.aggregates.iter().map(|c| Acc::new(c.func)).collect()
                });
                for (i, acc) in accs.iter_mut().enumerate() {
                    acc.add(args.get(i).cloned().flatten());
                }
            }
        }
        if late > 0 {
            TaskCounters::add(&self.counters.late_records, late);
        }
        Ok(())
    }

    fn on_signal(&mut self, signal: Signal, out: &mut Vec<Record>) -> Result<Option<Signal>, OperatorError> {
        if let Signal::Watermark(w) = signal {
            if w > self.watermark {
                self.watermark = w;
                if self.spec.window.time == TimeDomain::EventTime {
                    self.fire_until(w, out)?;
                }
            }
        }
        Ok(Some(signal))
    }

    fn on_timer(&mut self, now_ms: i64, out: &mut Vec<Record>) -> Result<Option<Signal>, OperatorError> {
        if self.spec.window.time == TimeDomain::ProcessingTime {
            self.fire_until(now_ms, out)?;
        }
        Ok(None)
    }

    fn on_end_of_input(&mut self, out: &mut Vec<Record>) -> Result<(), OperatorError> {
        // Event time fired everything on the final watermark; processing
        // time fires what is left, as a bounded job's last windows.
        self.fire_until(i64::MAX, out)
    }

    fn snapshot(&self) -> KeyedSnapshot {
        let mut groups: BTreeMap<u32, Vec<SnapshotEntry>> = BTreeMap::new();
        for (key, windows) in &self.state {
            groups.entry(key.key_group(self.max_parallelism)).or_default().push(SnapshotEntry {
                key: key.clone(),
                windows: windows.iter().map(|(s, a)| (*s, a.clone())).collect(),
            });
        }
        let key_groups = groups
            .into_iter()
            .map(|(kg, mut entries)| {
                entries.sort_by_key(|e| key_ref(&e.key));
                let mut bytes = vec![SNAPSHOT_VERSION];
                bytes.extend(bincode::serde::encode_to_vec(&entries, bincode::config::standard()).unwrap_or_default());
                (kg, bytes)
            })
            .collect();
        KeyedSnapshot { key_groups }
    }

    fn restore(&mut self, state: KeyedSnapshot) -> Result<(), OperatorError> {
        let fail = |m: String| OperatorError::Restore { operator: self.name.clone(), message: m };
        let mut restored: Vec<SnapshotEntry> = Vec::new();
        for (kg, bytes) in &state.key_groups {
            match bytes.split_first() {
                Some((&SNAPSHOT_VERSION, body)) => {
                    let (entries, used): (Vec<SnapshotEntry>, usize) =
                        bincode::serde::decode_from_slice(body, bincode::config::standard())
                            .map_err(|e| fail(format!("key group {kg} is corrupt: {e}")))?;
                    if used != body.len() {
                        return Err(fail(format!("key group {kg} has trailing bytes")));
                    }
                    restored.extend(entries);
                }
                Some((v, _)) => {
                    return Err(fail(format!("key group {kg} is in state format {v}, not {SNAPSHOT_VERSION}")))
                }
                None => return Err(fail(format!("key group {kg} is empty"))),
            }
        }
        for e in restored {
            let kref = key_ref(&e.key);
            let windows = self.state.entry(e.key).or_default();
            for (start, accs) in e.windows {
                if accs.len() != self.spec.aggregates.len() {
                    return Err(fail("the state has a different number of aggregates than the job".into()));
                }
                self.timers.insert((start + self.size, kref.clone()));
                windows.insert(start, accs);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowc_compiler::ir::{DataType, Expr, WindowSpec};

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
        };
        WindowOperator::new("w".into(), spec, 128, Arc::new(TaskCounters::new()))
    }

    fn rec(t: i64, page: &str) -> Record {
        Record::with_timestamp(t, vec![Value::Timestamp(t), Value::Str(page.into())])
    }

    #[test]
    fn tumbling_event_time_counts_and_fires_on_watermark() {
        let mut w = count_per_key(WindowKind::Tumbling { size_ms: 15_000 }, TimeDomain::EventTime);
        let mut out = Vec::new();
        w.process((0..30).map(|i| rec(i * 1000, if i % 2 == 0 { "/a" } else { "/b" })).collect(), &mut out).unwrap();
        assert!(out.is_empty());
        w.on_signal(Signal::Watermark(14_998), &mut out).unwrap();
        assert!(out.is_empty());
        w.on_signal(Signal::Watermark(14_999), &mut out).unwrap();
        let mut rows: Vec<_> = out.iter().map(|r| (r.timestamp, r.row.clone())).collect();
        rows.sort_by(|a, b| format!("{:?}", a).cmp(&format!("{:?}", b)));
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].1, vec![Value::Timestamp(0), Value::Str("/a".into()), Value::Int(8)]);
        assert_eq!(rows[1].1, vec![Value::Timestamp(0), Value::Str("/b".into()), Value::Int(7)]);
        assert_eq!(rows[0].0, 14_999);
        // A late record is dropped and counted.
        out.clear();
        w.process(vec![rec(100, "/a")], &mut out).unwrap();
        assert_eq!(TaskCounters::get(&w.counters.late_records), 1);
    }

    #[test]
    fn sliding_windows_overlap() {
        let mut w = count_per_key(WindowKind::Sliding { size_ms: 10, slide_ms: 5 }, TimeDomain::EventTime);
        let mut out = Vec::new();
        w.process(vec![rec(7, "/a")], &mut out).unwrap();
        w.on_signal(Signal::Watermark(i64::MAX), &mut out).unwrap();
        let starts: Vec<_> = out.iter().map(|r| r.row[0].clone()).collect();
        assert_eq!(starts, vec![Value::Timestamp(0), Value::Timestamp(5)]);
    }

    #[test]
    fn snapshot_restore_round_trip() {
        let mut w = count_per_key(WindowKind::Tumbling { size_ms: 15_000 }, TimeDomain::EventTime);
        let mut out = Vec::new();
        w.process((0..100).map(|i| rec(i * 300, ["/a", "/b", "/c"][i as usize % 3])).collect(), &mut out).unwrap();
        let snap = w.snapshot();
        let mut w2 = count_per_key(WindowKind::Tumbling { size_ms: 15_000 }, TimeDomain::EventTime);
        w2.restore(snap.clone()).unwrap();
        assert_eq!(w2.snapshot(), snap);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        w.on_signal(Signal::Watermark(i64::MAX), &mut a).unwrap();
        w2.on_signal(Signal::Watermark(i64::MAX), &mut b).unwrap();
        assert_eq!(a, b);
        // A corrupt snapshot is refused.
        let mut bad = snap;
        bad.key_groups[0].1.truncate(3);
        assert!(count_per_key(WindowKind::Tumbling { size_ms: 15_000 }, TimeDomain::EventTime).restore(bad).is_err());
    }
}
