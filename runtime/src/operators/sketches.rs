//! The accumulators of `count_distinct`, `approx_count_distinct`, `first`,
//! `last` and `approx_percentile`: typed, mergeable (for windows that merge
//! and for combining partial results), with a checkpoint form.
//!
//! - `count_distinct`: the exact set of values (integers and doubles by
//!   their bits, strings owned).
//! - `approx_count_distinct`: a HyperLogLog of 2^12 one-byte registers
//!   (Flajolet et al. 2007, with linear counting for small cardinalities)
//!   over the 64-bit key-group hash of the value. Standard error
//!   1.04 / √4096 ≈ 1.6 %; merging takes the registers' maxima, so merges
//!   are associative and commutative and a merged sketch equals the sketch
//!   of the union.
//! - `first` / `last`: the value of the first / last record by arrival (as
//!   Flink SQL's `FIRST_VALUE` / `LAST_VALUE`); merging keeps the first of
//!   the earlier and the last of the later accumulator.
//! - `approx_percentile`: a DDSketch (Masson et al. 2019) with relative
//!   accuracy 1 %: values are counted in logarithmic buckets of ratio
//!   γ = 1.01 / 0.99, so the value it answers for a quantile is within 1 %
//!   of the exact quantile's value (zero exactly; |x| < 1e-9 counts as zero).
//!   Merging adds bucket counts.
//! - `array_agg`: every value, in arrival order (nulls are skipped before
//!   they reach it); merging appends the later accumulator's values. Its
//!   state grows with the window's records, as Flink SQL's `ARRAY_AGG`.

use super::window_state::ArgReader;
use crate::data::{Column, Data, ValueRef};
use crate::keygroup::key_hash_refs;
use crate::record::Value;
use flowc_compiler::ir::{AggCall, AggFunc, DataType};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};

/// log2 of the number of HyperLogLog registers.
const HLL_P: u32 = 12;
const HLL_M: usize = 1 << HLL_P;
/// DDSketch's relative accuracy.
const DD_ALPHA: f64 = 0.01;
/// Magnitudes below this count as zero in a DDSketch.
const DD_MIN: f64 = 1e-9;

/// The state of one of these aggregates.
#[derive(Debug, Clone, PartialEq)]
pub enum SketchAcc {
    DistinctI(HashSet<i64>),
    DistinctS(HashSet<String>),
    Hll(Hll),
    First(Option<Scalar>),
    Last(Option<Scalar>),
    Percentile {
        q: f64,
        sketch: DdSketch,
    },
    /// `array_agg`: the values in arrival order.
    Collect(Vec<Scalar>),
}

/// A value of an aggregate's argument, owned.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    I(i64),
    F(f64),
    S(String),
}

impl Scalar {
    fn read(arg: &ArgReader<'_>, k: usize) -> Option<Scalar> {
        Some(match arg {
            ArgReader::I64(a) => Scalar::I(a.get(k)),
            ArgReader::F64(a) => Scalar::F(a.get(k)),
            ArgReader::Str(a) => Scalar::S(a.get(k).to_string()),
            ArgReader::None => return None,
        })
    }

    fn value(&self, ty: DataType) -> Value {
        match (self, ty) {
            (Scalar::I(x), DataType::Timestamp) => Value::Timestamp(*x),
            (Scalar::I(x), _) => Value::Int(*x),
            (Scalar::F(x), _) => Value::Double(*x),
            (Scalar::S(s), _) => Value::Str(s.clone()),
        }
    }

    fn from_value(v: Value) -> Scalar {
        match v {
            Value::Int(x) | Value::Timestamp(x) => Scalar::I(x),
            Value::Double(x) => Scalar::F(x),
            Value::Str(s) => Scalar::S(s),
            Value::Bool(b) => Scalar::I(i64::from(b)),
            // Aggregates skip nulls before they reach a sketch; the
            // checker refuses arrays.
            Value::Null | Value::Array(_) => Scalar::I(0),
        }
    }
}

/// A HyperLogLog sketch; its registers are allocated by the first value.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Hll {
    registers: Vec<u8>,
}

impl Hll {
    pub fn add_hash(&mut self, hash: u64) {
        if self.registers.is_empty() {
            self.registers = vec![0; HLL_M];
        }
        let index = (hash >> (64 - HLL_P)) as usize;
        // The remaining bits, with a guard bit so that the rank is bounded.
        let rest = (hash << HLL_P) | (1 << (HLL_P - 1));
        let rank = (rest.leading_zeros() + 1) as u8;
        if let Some(r) = self.registers.get_mut(index) {
            *r = (*r).max(rank);
        }
    }

    /// The registers' maxima: the sketch of the union.
    pub fn merge(&mut self, other: &Hll) {
        if other.registers.is_empty() {
            return;
        }
        if self.registers.is_empty() {
            self.registers = other.registers.clone();
            return;
        }
        for (a, b) in self.registers.iter_mut().zip(&other.registers) {
            *a = (*a).max(*b);
        }
    }

    pub fn estimate(&self) -> i64 {
        if self.registers.is_empty() {
            return 0;
        }
        let m = HLL_M as f64;
        let alpha = 0.7213 / (1.0 + 1.079 / m);
        let sum: f64 = self.registers.iter().map(|r| (-f64::from(*r)).exp2()).sum();
        let raw = alpha * m * m / sum;
        let zeros = self.registers.iter().filter(|r| **r == 0).count();
        let e = if raw <= 2.5 * m && zeros > 0 { m * (m / zeros as f64).ln() } else { raw };
        e.round() as i64
    }
}

/// A DDSketch: counts per logarithmic bucket, for negative and positive
/// values, and the zeros.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DdSketch {
    positive: BTreeMap<i32, u64>,
    negative: BTreeMap<i32, u64>,
    zeros: u64,
}

fn gamma() -> f64 {
    (1.0 + DD_ALPHA) / (1.0 - DD_ALPHA)
}

impl DdSketch {
    pub fn add(&mut self, x: f64) {
        if x.is_nan() {
            return;
        }
        let m = x.abs();
        if m < DD_MIN {
            self.zeros += 1;
            return;
        }
        let i = (m.ln() / gamma().ln()).ceil() as i32;
        let store = if x > 0.0 { &mut self.positive } else { &mut self.negative };
        *store.entry(i).or_insert(0) += 1;
    }

    pub fn merge(&mut self, other: &DdSketch) {
        for (i, n) in &other.positive {
            *self.positive.entry(*i).or_insert(0) += n;
        }
        for (i, n) in &other.negative {
            *self.negative.entry(*i).or_insert(0) += n;
        }
        self.zeros += other.zeros;
    }

    pub fn count(&self) -> u64 {
        self.zeros + self.positive.values().sum::<u64>() + self.negative.values().sum::<u64>()
    }

    /// The `q`-quantile's estimate (the value of rank ⌊q·(n−1)⌋, 0-based);
    /// 0 when empty.
    pub fn quantile(&self, q: f64) -> f64 {
        let n = self.count();
        if n == 0 {
            return 0.0;
        }
        let rank = (q.clamp(0.0, 1.0) * (n - 1) as f64).floor() as u64;
        let g = gamma();
        let value = |i: i32| 2.0 * g.powi(i) / (g + 1.0);
        let mut seen = 0u64;
        // From the most negative value up.
        for (i, c) in self.negative.iter().rev() {
            seen += c;
            if seen > rank {
                return -value(*i);
            }
        }
        seen += self.zeros;
        if seen > rank {
            return 0.0;
        }
        for (i, c) in &self.positive {
            seen += c;
            if seen > rank {
                return value(*i);
            }
        }
        self.positive.keys().next_back().map_or(0.0, |i| value(*i))
    }
}

/// The checkpoint form of a [`SketchAcc`] (part of the window and running
/// aggregates' state format: append variants, never change them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SavedSketch {
    /// The distinct values, sorted by their encoding.
    Distinct(Vec<Value>),
    Hll(Vec<u8>),
    First(Option<Value>),
    Last(Option<Value>),
    Percentile {
        positive: Vec<(i32, u64)>,
        negative: Vec<(i32, u64)>,
        zeros: u64,
    },
    /// `array_agg`'s values, in order.
    Collect(Vec<Value>),
}

impl SketchAcc {
    /// A fresh accumulator for `call`, if it is one of these aggregates.
    pub fn new(call: &AggCall) -> Option<SketchAcc> {
        let strings = call.arg_type == DataType::String;
        Some(match call.func {
            AggFunc::CountDistinct if call.arg_type == DataType::Bool => return None,
            AggFunc::CountDistinct if strings => SketchAcc::DistinctS(HashSet::new()),
            AggFunc::CountDistinct => SketchAcc::DistinctI(HashSet::new()),
            AggFunc::ApproxCountDistinct if call.arg_type != DataType::Bool => SketchAcc::Hll(Hll::default()),
            AggFunc::First if call.arg_type != DataType::Bool => SketchAcc::First(None),
            AggFunc::Last if call.arg_type != DataType::Bool => SketchAcc::Last(None),
            AggFunc::ApproxPercentile { q_millionths } if call.arg_type.is_numeric() => {
                SketchAcc::Percentile { q: f64::from(q_millionths.min(1_000_000)) / 1e6, sketch: DdSketch::default() }
            }
            AggFunc::ArrayAgg if call.arg_type != DataType::Bool && !call.arg_type.is_array() => {
                SketchAcc::Collect(Vec::new())
            }
            _ => return None,
        })
    }

    /// Adds row `k` of `arg`.
    #[inline]
    pub fn add(&mut self, arg: &ArgReader<'_>, k: usize) {
        match (self, arg) {
            (SketchAcc::DistinctI(set), ArgReader::I64(a)) => {
                set.insert(a.get(k));
            }
            (SketchAcc::DistinctI(set), ArgReader::F64(a)) => {
                set.insert(a.get(k).to_bits() as i64);
            }
            (SketchAcc::DistinctS(set), ArgReader::Str(a)) => {
                let s = a.get(k);
                if !set.contains(s) {
                    set.insert(s.to_string());
                }
            }
            (SketchAcc::Hll(h), arg) => {
                let hash = match arg {
                    ArgReader::I64(a) => key_hash_refs(std::iter::once(ValueRef::Int(a.get(k)))),
                    ArgReader::F64(a) => key_hash_refs(std::iter::once(ValueRef::Double(a.get(k)))),
                    ArgReader::Str(a) => key_hash_refs(std::iter::once(ValueRef::Str(a.get(k)))),
                    ArgReader::None => return,
                };
                h.add_hash(hash);
            }
            (SketchAcc::First(v), arg) if v.is_none() => *v = Scalar::read(arg, k),
            (SketchAcc::Last(v), arg) => {
                if let Some(x) = Scalar::read(arg, k) {
                    *v = Some(x);
                }
            }
            (SketchAcc::Percentile { sketch, .. }, ArgReader::I64(a)) => sketch.add(a.get(k) as f64),
            (SketchAcc::Percentile { sketch, .. }, ArgReader::F64(a)) => sketch.add(a.get(k)),
            (SketchAcc::Collect(v), arg) => v.extend(Scalar::read(arg, k)),
            _ => {}
        }
    }

    /// Merges `other` (of the same aggregate; the later one for `first`
    /// and `last`) into `self`. For windows that merge (sessions): the
    /// window operator's `Acc::merge` delegates here.
    #[allow(dead_code)] // until `Acc::merge` (session windows) lands beside it
    pub fn merge(&mut self, other: &SketchAcc) {
        match (self, other) {
            (SketchAcc::DistinctI(a), SketchAcc::DistinctI(b)) => a.extend(b.iter().copied()),
            (SketchAcc::DistinctS(a), SketchAcc::DistinctS(b)) => a.extend(b.iter().cloned()),
            (SketchAcc::Hll(a), SketchAcc::Hll(b)) => a.merge(b),
            (SketchAcc::First(a), SketchAcc::First(b)) if a.is_none() => a.clone_from(b),
            (SketchAcc::Last(a), SketchAcc::Last(b)) if b.is_some() => a.clone_from(b),
            (SketchAcc::Percentile { sketch: a, .. }, SketchAcc::Percentile { sketch: b, .. }) => a.merge(b),
            (SketchAcc::Collect(a), SketchAcc::Collect(b)) => a.extend(b.iter().cloned()),
            _ => {}
        }
    }

    /// `first` or `last` that saw no value (every argument was null): its
    /// result is null, as SQL's `FIRST_VALUE` of no row.
    pub fn is_absent(&self) -> bool {
        matches!(self, SketchAcc::First(None) | SketchAcc::Last(None))
    }

    /// Appends the result to `column` (of the aggregate's result type).
    pub fn push_result(&self, column: &mut Column) {
        match (self, &mut column.data) {
            (SketchAcc::DistinctI(s), Data::I64(c)) => c.push(s.len() as i64),
            (SketchAcc::DistinctS(s), Data::I64(c)) => c.push(s.len() as i64),
            (SketchAcc::Hll(h), Data::I64(c)) => c.push(h.estimate()),
            (SketchAcc::First(v) | SketchAcc::Last(v), data) => match (v, data) {
                (Some(Scalar::I(x)), Data::I64(c)) => c.push(*x),
                (None, Data::I64(c)) => c.push(0),
                (Some(Scalar::F(x)), Data::F64(c)) => c.push(*x),
                (None, Data::F64(c)) => c.push(0.0),
                (Some(Scalar::S(s)), Data::Str(c)) => c.push(s),
                (None, Data::Str(c)) => c.push(""),
                _ => {}
            },
            (SketchAcc::Percentile { q, sketch }, Data::F64(c)) => c.push(sketch.quantile(*q)),
            (SketchAcc::Collect(v), Data::List(l)) => {
                let values = l.values_mut();
                for x in v {
                    let pushed = match x {
                        Scalar::I(i) => values.push_value(ValueRef::Int(*i)),
                        Scalar::F(f) => values.push_value(ValueRef::Double(*f)),
                        Scalar::S(s) => values.push_value(ValueRef::Str(s)),
                    };
                    if !pushed {
                        // Of another type than the column (a bug): no element.
                        continue;
                    }
                }
                l.close_row();
            }
            _ => {}
        }
    }

    pub fn saved(&self, call: &AggCall) -> SavedSketch {
        match self {
            SketchAcc::DistinctI(s) => {
                let mut v: Vec<i64> = s.iter().copied().collect();
                v.sort_unstable();
                let ty = call.arg_type;
                SavedSketch::Distinct(
                    v.into_iter()
                        .map(|x| match ty {
                            DataType::Double => Value::Double(f64::from_bits(x as u64)),
                            DataType::Timestamp => Value::Timestamp(x),
                            _ => Value::Int(x),
                        })
                        .collect(),
                )
            }
            SketchAcc::DistinctS(s) => {
                let mut v: Vec<&String> = s.iter().collect();
                v.sort_unstable();
                SavedSketch::Distinct(v.into_iter().map(|x| Value::Str(x.clone())).collect())
            }
            SketchAcc::Hll(h) => SavedSketch::Hll(h.registers.clone()),
            SketchAcc::First(v) => SavedSketch::First(v.as_ref().map(|x| x.value(call.arg_type))),
            SketchAcc::Last(v) => SavedSketch::Last(v.as_ref().map(|x| x.value(call.arg_type))),
            SketchAcc::Percentile { sketch, .. } => SavedSketch::Percentile {
                positive: sketch.positive.iter().map(|(i, n)| (*i, *n)).collect(),
                negative: sketch.negative.iter().map(|(i, n)| (*i, *n)).collect(),
                zeros: sketch.zeros,
            },
            SketchAcc::Collect(v) => SavedSketch::Collect(v.iter().map(|x| x.value(call.arg_type)).collect()),
        }
    }

    /// The accumulator of `call` a checkpoint holds; `None` if it does not
    /// fit the call (a state of another job).
    pub fn from_saved(saved: SavedSketch, call: &AggCall) -> Option<SketchAcc> {
        let fresh = SketchAcc::new(call)?;
        Some(match (fresh, saved) {
            (SketchAcc::DistinctI(_), SavedSketch::Distinct(v)) => SketchAcc::DistinctI(
                v.into_iter()
                    .map(|x| match x {
                        Value::Int(i) | Value::Timestamp(i) => Some(i),
                        Value::Double(d) => Some(d.to_bits() as i64),
                        _ => None,
                    })
                    .collect::<Option<HashSet<i64>>>()?,
            ),
            (SketchAcc::DistinctS(_), SavedSketch::Distinct(v)) => SketchAcc::DistinctS(
                v.into_iter()
                    .map(|x| match x {
                        Value::Str(s) => Some(s),
                        _ => None,
                    })
                    .collect::<Option<HashSet<String>>>()?,
            ),
            (SketchAcc::Hll(_), SavedSketch::Hll(r)) if r.is_empty() || r.len() == HLL_M => {
                SketchAcc::Hll(Hll { registers: r })
            }
            (SketchAcc::First(_), SavedSketch::First(v)) => SketchAcc::First(v.map(Scalar::from_value)),
            (SketchAcc::Last(_), SavedSketch::Last(v)) => SketchAcc::Last(v.map(Scalar::from_value)),
            (SketchAcc::Percentile { q, .. }, SavedSketch::Percentile { positive, negative, zeros }) => {
                SketchAcc::Percentile {
                    q,
                    sketch: DdSketch {
                        positive: positive.into_iter().collect(),
                        negative: negative.into_iter().collect(),
                        zeros,
                    },
                }
            }
            (SketchAcc::Collect(_), SavedSketch::Collect(v)) => {
                if v.iter().any(|x| matches!(x, Value::Null | Value::Array(_))) {
                    return None;
                }
                SketchAcc::Collect(v.into_iter().map(Scalar::from_value).collect())
            }
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// `array_agg` against a plain model (the non-null values in
        /// arrival order), however the records are split into accumulators
        /// that merge in order, each through its checkpoint form.
        #[test]
        fn array_agg_is_the_values_in_arrival_order(
            values in prop::collection::vec(prop::option::of(-50i64..50), 0..60),
            cuts in prop::collection::vec(0usize..60, 0..4),
        ) {
            use crate::expr::vals::I64s;
            let call = AggCall {
                func: AggFunc::ArrayAgg,
                arg: None,
                arg_type: DataType::Timestamp,
                result_type: DataType::Array(flowc_compiler::ir::Elem::TIMESTAMP),
            };
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(values.len())).collect();
            cuts.extend([0, values.len()]);
            cuts.sort_unstable();
            let mut merged = SketchAcc::new(&call).expect("an accumulator");
            for w in cuts.windows(2) {
                let mut part = SketchAcc::new(&call).expect("an accumulator");
                // Nulls are skipped before an accumulator sees them.
                for v in values[w[0]..w[1]].iter().flatten() {
                    part.add(&ArgReader::I64(I64s::Scalar(*v)), 0);
                }
                let cfg = bincode::config::standard();
                let bytes = bincode::serde::encode_to_vec(part.saved(&call), cfg).expect("encodes");
                let (saved, _): (SavedSketch, usize) = bincode::serde::decode_from_slice(&bytes, cfg).expect("decodes");
                let part = SketchAcc::from_saved(saved, &call).expect("restores");
                merged.merge(&part);
            }
            let mut column = Column::empty(call.result_type, 1);
            merged.push_result(&mut column);
            let model: Vec<Value> = values.iter().flatten().map(|v| Value::Timestamp(*v)).collect();
            prop_assert_eq!(column.value(0), Some(Value::Array(model)));
        }
    }

    fn hll_of(values: &[u32]) -> Hll {
        let mut h = Hll::default();
        for v in values {
            h.add_hash(key_hash_refs(std::iter::once(ValueRef::Int(i64::from(*v)))));
        }
        h
    }

    #[test]
    fn hyperloglog_estimates_within_its_error() {
        for n in [0u32, 1, 10, 100, 1000, 10_000, 100_000] {
            let values: Vec<u32> = (0..n).collect();
            let e = hll_of(&values).estimate() as f64;
            let tolerance = (n as f64 * 0.05).max(2.0); // 3 standard errors (1.6 %), and small counts
            assert!((e - n as f64).abs() <= tolerance, "n = {n}: estimate {e}");
        }
        // Repeats do not count.
        let mut repeated: Vec<u32> = (0..500).collect();
        repeated.extend(0..500);
        assert!((hll_of(&repeated).estimate() - 500).abs() <= 25);
    }

    #[test]
    fn ddsketch_quantiles_are_within_one_percent() {
        let mut s = DdSketch::default();
        let values: Vec<f64> = (1..=10_000).map(|i| i as f64 * 0.37).collect();
        for v in &values {
            s.add(*v);
        }
        for q in [0.0, 0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 1.0] {
            let exact = values[(q * (values.len() - 1) as f64).floor() as usize];
            let got = s.quantile(q);
            assert!((got - exact).abs() <= exact * DD_ALPHA + 1e-9, "q = {q}: {got} vs {exact}");
        }
        let mut mixed = DdSketch::default();
        for v in [-5.0, -1.0, 0.0, 0.0, 2.0, 8.0] {
            mixed.add(v);
        }
        assert!((mixed.quantile(0.0) + 5.0).abs() <= 0.05);
        assert_eq!(mixed.quantile(0.4), 0.0);
        assert!((mixed.quantile(1.0) - 8.0).abs() <= 0.08);
        assert_eq!(DdSketch::default().quantile(0.5), 0.0);
    }

    #[test]
    fn first_last_and_distinct_merge_and_survive_a_checkpoint() {
        use crate::expr::vals::I64s;
        let call = |func, arg_type| AggCall { func, arg: None, arg_type, result_type: arg_type };
        let values = [3i64, 1, 3, 7];
        let reader = ArgReader::I64(I64s::Slice(&values));
        let mut accs: Vec<(AggCall, SketchAcc, SketchAcc)> = Vec::new();
        for func in [AggFunc::First, AggFunc::Last, AggFunc::CountDistinct] {
            let c = call(func, DataType::Long);
            let (mut a, mut b) = (SketchAcc::new(&c).expect("a sketch"), SketchAcc::new(&c).expect("a sketch"));
            a.add(&reader, 0);
            a.add(&reader, 1);
            b.add(&reader, 2);
            b.add(&reader, 3);
            accs.push((c, a, b));
        }
        let result = |acc: &SketchAcc| {
            let mut col = Column::empty(DataType::Long, 1);
            acc.push_result(&mut col);
            col.value(0)
        };
        let want = [Value::Int(3), Value::Int(7), Value::Int(3)];
        for ((c, mut a, b), want) in accs.into_iter().zip(want) {
            a.merge(&b);
            assert_eq!(result(&a), Some(want.clone()), "{:?}", c.func);
            let back = SketchAcc::from_saved(a.saved(&c), &c).expect("restores");
            assert_eq!(back, a);
        }
        let pct = call(AggFunc::ApproxPercentile { q_millionths: 500_000 }, DataType::Long);
        let mut p = SketchAcc::new(&pct).expect("a sketch");
        for k in 0..values.len() {
            p.add(&reader, k);
        }
        assert_eq!(SketchAcc::from_saved(p.saved(&pct), &pct), Some(p));
        assert!(SketchAcc::new(&call(AggFunc::CountDistinct, DataType::Bool)).is_none());
        assert!(SketchAcc::new(&call(AggFunc::Sum, DataType::Long)).is_none());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// Merging HyperLogLogs is associative and commutative, and the
        /// merge of sketches is the sketch of the union.
        #[test]
        fn hyperloglog_merges_are_associative_and_commutative(
            a in proptest::collection::vec(0u32..5000, 0..400),
            b in proptest::collection::vec(0u32..5000, 0..400),
            c in proptest::collection::vec(0u32..5000, 0..400),
        ) {
            let (ha, hb, hc) = (hll_of(&a), hll_of(&b), hll_of(&c));
            let mut left = ha.clone();
            left.merge(&hb);
            left.merge(&hc);
            let mut bc = hb.clone();
            bc.merge(&hc);
            let mut right = ha.clone();
            right.merge(&bc);
            prop_assert_eq!(&left, &right);
            let mut ba = hb.clone();
            ba.merge(&ha);
            let mut ab = ha.clone();
            ab.merge(&hb);
            prop_assert_eq!(&ab, &ba);
            let union: Vec<u32> = a.iter().chain(&b).chain(&c).copied().collect();
            prop_assert_eq!(&left, &hll_of(&union));
            let distinct = union.iter().collect::<HashSet<_>>().len() as f64;
            prop_assert!((left.estimate() as f64 - distinct).abs() <= (distinct * 0.05).max(2.0));
        }

        /// Merged DDSketches answer as the sketch of all values.
        #[test]
        fn ddsketch_merges_equal_the_sketch_of_the_union(
            a in proptest::collection::vec(-1e6f64..1e6, 0..200),
            b in proptest::collection::vec(-1e6f64..1e6, 0..200),
        ) {
            let mut sa = DdSketch::default();
            a.iter().for_each(|x| sa.add(*x));
            let mut sb = DdSketch::default();
            b.iter().for_each(|x| sb.add(*x));
            let mut all = DdSketch::default();
            a.iter().chain(&b).for_each(|x| all.add(*x));
            let mut ab = sa.clone();
            ab.merge(&sb);
            let mut ba = sb;
            ba.merge(&sa);
            prop_assert_eq!(&ab, &all);
            prop_assert_eq!(&ba, &all);
        }
    }
}
