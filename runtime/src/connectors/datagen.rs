//! The datagen source: records made from per-field generators, for tests
//! and benchmarks. Subtask k of p makes records k, k+p, k+2p, … so that all
//! subtasks together make exactly records 0..count. Values are generated
//! straight into the batch's columns.

use super::{ConnectorError, SourcePoll, SourceReader};
use crate::checkpoint::SourceState;
use crate::codec::json::{JsonDecoder, JsonEncoder};
use crate::data::{Batch, Column, Data, StrColumn};
use crate::expr::kernels::FastDiv;
use crate::record::Value;
use flowc_compiler::ir::{DataType, DatagenSource, Generator};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct DatagenReader {
    spec: DatagenSource,
    types: Vec<DataType>,
    /// For each `cycle` of strings, its strings as a dictionary, shared by
    /// every batch: a record's string is an id.
    dictionaries: Vec<Option<Arc<StrColumn>>>,
    next: u64,
    step: u64,
    /// Records per second for this subtask.
    rate: Option<f64>,
    started: Instant,
    emitted: u64,
    json: Option<(JsonEncoder, JsonDecoder, Vec<u8>)>,
}

const BATCH: u64 = 1024;

impl DatagenReader {
    /// Subtask `subtask` of `parallelism`; `resume_at` is a restored position
    /// (a record index of this subtask's sequence). Fails on a generator that
    /// does not fit its field (the checker refuses those: a bug).
    pub fn new(
        spec: DatagenSource,
        subtask: u32,
        parallelism: u32,
        resume_at: Option<u64>,
    ) -> Result<DatagenReader, ConnectorError> {
        for (g, f) in spec.generators.iter().zip(&spec.schema.fields) {
            if !fits(g, f.ty) {
                return Err(ConnectorError::Io(format!(
                    "datagen: the generator of `{}` does not make {} values (a bug in flowc)",
                    f.name, f.ty
                )));
            }
        }
        let rate = spec.rate.map(|r| r as f64 / f64::from(parallelism.max(1)));
        let json = spec
            .json
            .then(|| (JsonEncoder::new(&spec.schema), JsonDecoder::new(&spec.schema), Vec::with_capacity(256)));
        let dictionaries = spec
            .generators
            .iter()
            .map(|g| match g {
                Generator::Cycle(values) if !values.is_empty() && values.iter().all(|v| matches!(v, Value::Str(_))) => {
                    let mut strings = StrColumn::new();
                    for v in values {
                        if let Value::Str(s) = v {
                            strings.push(s);
                        }
                    }
                    Some(Arc::new(strings))
                }
                _ => None,
            })
            .collect();
        Ok(DatagenReader {
            types: spec.schema.fields.iter().map(|f| f.ty).collect(),
            dictionaries,
            next: resume_at.unwrap_or(u64::from(subtask)),
            step: u64::from(parallelism.max(1)),
            rate,
            started: Instant::now(),
            emitted: 0,
            json,
            spec,
        })
    }

    /// Records `first, first + step, …` (`n` of them), column by column.
    fn generate(&self, first: u64, n: usize) -> Batch {
        let columns = self
            .spec
            .generators
            .iter()
            .zip(&self.types)
            .zip(&self.dictionaries)
            .map(|((g, ty), dict)| Column::new(*ty, generate(g, *ty, dict.as_ref(), first, self.step, n)))
            .collect();
        Batch::new(vec![crate::record::NO_TIMESTAMP; n], columns)
    }
}

/// Whether `g` makes values of type `ty`.
fn fits(g: &Generator, ty: DataType) -> bool {
    let value_fits = |v: &Value| {
        matches!(
            (ty, v),
            (DataType::String, Value::Str(_))
                | (DataType::Int | DataType::Long, Value::Int(_))
                | (DataType::Double, Value::Double(_))
                | (DataType::Bool, Value::Bool(_))
                | (DataType::Timestamp, Value::Timestamp(_))
        )
    };
    match g {
        Generator::Sequence { .. } | Generator::Ticks { .. } | Generator::Random { .. } => {
            matches!(ty, DataType::Int | DataType::Long | DataType::Double | DataType::Timestamp)
        }
        Generator::Cycle(values) => !values.is_empty() && values.iter().all(value_fits),
        Generator::Constant(v) => value_fits(v),
    }
}

fn splitmix(i: u64) -> u64 {
    let mut z = i.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// `f(i)` for the record indices `first, first + step, …` (`n` of them), as
/// `i64`s or, for a double field, `f64`s: one monomorphic loop per generator.
fn ints(ty: DataType, first: u64, step: u64, n: usize, f: impl Fn(u64) -> i64) -> Data {
    let indices = (0..n as u64).map(|j| first + j * step);
    match ty {
        DataType::Double => Data::F64(indices.map(|i| f(i) as f64).collect()),
        _ => Data::I64(indices.map(f).collect()),
    }
}

/// `i64`s as a column of `ty`.
fn of_i64s(ty: DataType, values: Vec<i64>) -> Data {
    match ty {
        DataType::Double => Data::F64(values.into_iter().map(|v| v as f64).collect()),
        _ => Data::I64(values),
    }
}

/// `i mod len` for the indices `first, first + step, …` (`n` of them),
/// without a division per record: the remainder advances by `step mod
/// len` and wraps (a datagen batch is generated faster than it is
/// processed; a division per field and record was most of its cost).
fn cycle_positions(first: u64, step: u64, n: usize, len: u64) -> Vec<u32> {
    let len = len.max(1);
    let (mut at, by) = (first % len, step % len);
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(at as u32);
        at += by;
        if at >= len {
            at -= len;
        }
    }
    out
}

/// `i / per` (as `i64`, `per > 0`) for the indices `first, first + step,
/// …` (`n` of them), without a division per record; `None` when an index
/// passes `i64::MAX` (the rare case keeps the division).
fn tick_numbers(first: u64, step: u64, n: usize, per: i64) -> Option<Vec<i64>> {
    let last = step.checked_mul(n as u64).and_then(|d| first.checked_add(d))?;
    if i64::try_from(last).is_err() || per <= 0 {
        return None;
    }
    let per = per as u64;
    let (mut q, mut r) = (first / per, first % per);
    let (dq, dr) = (step / per, step % per);
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(q as i64);
        q += dq;
        r += dr;
        if r >= per {
            r -= per;
            q += 1;
        }
    }
    Some(out)
}

/// The values of generator `g` for record indices `first, first + step,
/// …` (`n` of them), as a column of `ty` (which [`fits`] `g`); a cycle of
/// strings as ids into `dict`, its strings.
fn generate(g: &Generator, ty: DataType, dict: Option<&Arc<StrColumn>>, first: u64, step: u64, n: usize) -> Data {
    match g {
        Generator::Sequence { start, step: by } => {
            ints(ty, first, step, n, |i| start.wrapping_add((i as i64).wrapping_mul(*by)))
        }
        Generator::Ticks { start, step: by, per_tick } => {
            let per = (*per_tick).max(1);
            match tick_numbers(first, step, n, per) {
                Some(mut ticks) => {
                    ticks.iter_mut().for_each(|t| *t = start.wrapping_add(t.wrapping_mul(*by)));
                    of_i64s(ty, ticks)
                }
                None => ints(ty, first, step, n, |i| start.wrapping_add((i as i64 / per).wrapping_mul(*by))),
            }
        }
        Generator::Random { min, max } => {
            let span = (*max as i128 - *min as i128 + 1) as u128;
            match u64::try_from(span) {
                // The same values as the 128-bit form below, by 64-bit arithmetic.
                Ok(span) if span > 0 => {
                    let m = FastDiv::new(span);
                    ints(ty, first, step, n, |i| (*min as i128 + m.remainder(splitmix(i)) as i128) as i64)
                }
                _ => ints(ty, first, step, n, |i| (*min as i128 + (u128::from(splitmix(i)) % span) as i128) as i64),
            }
        }
        Generator::Cycle(values) => {
            let positions = cycle_positions(first, step, n, values.len() as u64);
            // A string is an id into the cycle's strings, never a copy.
            let positions = match dict {
                Some(dict) => match StrColumn::from_ids(dict.clone(), positions) {
                    Some(column) => return Data::Str(column),
                    None => cycle_positions(first, step, n, values.len() as u64),
                },
                None => positions,
            };
            let mut column = Column::empty(ty, n);
            for p in positions {
                column.push_value((&values[p as usize]).into());
            }
            column.data
        }
        Generator::Constant(v) => {
            let mut column = Column::empty(ty, n);
            for _ in 0..n {
                column.push_value(v.into());
            }
            column.data
        }
    }
}

impl SourceReader for DatagenReader {
    fn poll(&mut self, timeout: Duration) -> Result<SourcePoll, ConnectorError> {
        let count = self.spec.count.unwrap_or(u64::MAX);
        if self.next >= count {
            return Ok(SourcePoll::End);
        }
        let mut n = BATCH;
        if let Some(rate) = self.rate {
            // Emit what the schedule allows by now; wait (within the timeout) otherwise.
            let due = (self.started.elapsed().as_secs_f64() * rate) as u64;
            if due <= self.emitted {
                let ahead = ((self.emitted + 1) as f64 / rate) - self.started.elapsed().as_secs_f64();
                let wait = Duration::from_secs_f64(ahead.max(0.0));
                std::thread::sleep(wait.min(timeout));
                return Ok(SourcePoll::Nothing);
            }
            n = n.min(due - self.emitted);
        }
        let n = n.min((count - self.next).div_ceil(self.step)) as usize;
        let mut batch = self.generate(self.next, n);
        self.next += n as u64 * self.step;
        if let Some((enc, dec, buf)) = &mut self.json {
            let mut decoded = dec.batch(n);
            for r in 0..n {
                buf.clear();
                enc.encode_row(&batch, r, buf);
                dec.decode_into(buf, &mut decoded)
                    .map_err(|e| ConnectorError::Io(format!("datagen JSON round trip failed: {e}")))?;
            }
            batch = decoded;
        }
        self.emitted += n as u64;
        Ok(SourcePoll::Records(batch))
    }

    fn snapshot(&mut self, _checkpoint_id: u64) -> SourceState {
        SourceState::Datagen { next: self.next }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowc_compiler::ir::{Field, Schema};

    fn spec(json: bool, count: u64) -> DatagenSource {
        DatagenSource {
            schema: Schema {
                name: None,
                fields: vec![
                    Field::new("ts", DataType::Timestamp),
                    Field::new("page", DataType::String),
                    Field::new("n", DataType::Long),
                    Field::new("x", DataType::Double),
                ],
            },
            generators: vec![
                Generator::Ticks { start: 1000, step: 15, per_tick: 2 },
                Generator::Cycle(vec![Value::Str("/a".into()), Value::Str("/b".into()), Value::Str("/c".into())]),
                Generator::Random { min: -3, max: 3 },
                Generator::Sequence { start: 1, step: 2 },
            ],
            count: Some(count),
            rate: None,
            json,
        }
    }

    fn all(mut r: DatagenReader) -> Vec<Vec<Value>> {
        let mut out = Vec::new();
        loop {
            match r.poll(Duration::from_millis(10)).expect("polls") {
                SourcePoll::Records(b) => out.extend(b.rows().into_iter().map(|(_, row)| row)),
                SourcePoll::End => return out,
                _ => {}
            }
        }
    }

    #[test]
    fn subtasks_together_make_every_record_once_with_or_without_json() {
        let count = 2500;
        for json in [false, true] {
            let mut rows: Vec<Vec<Value>> =
                (0..3).flat_map(|s| all(DatagenReader::new(spec(json, count), s, 3, None).expect("builds"))).collect();
            assert_eq!(rows.len(), count as usize);
            rows.sort_by_key(|r| match r[3] {
                Value::Double(x) => x as i64,
                _ => 0,
            });
            for (i, r) in rows.iter().enumerate() {
                let i = i as i64;
                assert_eq!(r[0], Value::Timestamp(1000 + (i / 2) * 15));
                assert_eq!(r[1], Value::Str(["/a", "/b", "/c"][i as usize % 3].into()));
                assert!(matches!(r[2], Value::Int(v) if (-3..=3).contains(&v)));
                assert_eq!(r[3], Value::Double((1 + 2 * i) as f64));
            }
        }
    }

    #[test]
    fn resumes_where_it_stood() {
        let mut r = DatagenReader::new(spec(false, 100), 1, 2, None).expect("builds");
        let SourcePoll::Records(b) = r.poll(Duration::from_millis(10)).expect("polls") else { panic!("records") };
        assert_eq!(b.len(), 50);
        assert_eq!(r.snapshot(1), SourceState::Datagen { next: 101 });
        let resumed = DatagenReader::new(spec(false, 100), 1, 2, Some(51)).expect("builds");
        assert_eq!(all(resumed).len(), 25);
    }

    #[test]
    fn the_generators_without_division_make_what_the_divisions_make() {
        for (first, step, len) in [(0u64, 1u64, 6u64), (1, 2, 6), (5, 7, 5), (3, 64, 1), (u64::MAX - 9000, 3, 7)] {
            let want: Vec<u32> = (0..1000u64).map(|j| ((first.wrapping_add(j * step)) % len) as u32).collect();
            if first < u64::MAX / 2 {
                assert_eq!(cycle_positions(first, step, 1000, len), want, "cycle {first} {step} {len}");
            }
            for per in [1i64, 2, 6, 1000] {
                let want: Option<Vec<i64>> =
                    (first < u64::MAX / 2).then(|| (0..1000u64).map(|j| (first + j * step) as i64 / per).collect());
                assert_eq!(tick_numbers(first, step, 1000, per), want, "ticks {first} {step} {per}");
            }
        }
        // random(): the remainder by multiplications (kernels' own tests cover every divisor).
        let m = FastDiv::new(100_000);
        assert!((0..10_000u64).all(|i| m.remainder(splitmix(i)) == splitmix(i) % 100_000));
    }

    #[test]
    fn a_generator_of_the_wrong_type_is_refused() {
        let mut s = spec(false, 1);
        s.generators[1] = Generator::Sequence { start: 0, step: 1 };
        assert!(DatagenReader::new(s, 0, 1, None).is_err());
    }
}
