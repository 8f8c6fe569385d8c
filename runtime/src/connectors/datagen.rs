//! The datagen source: records made from per-field generators, for tests
//! and benchmarks. Subtask k of p makes records k, k+p, k+2p, … so that all
//! subtasks together make exactly records 0..count.

use super::{ConnectorError, SourcePoll, SourceReader};
use crate::checkpoint::SourceState;
use crate::codec::json::{JsonDecoder, JsonEncoder};
use crate::record::{Record, Row, Value};
use flowc_compiler::ir::{DataType, DatagenSource, Generator};
use std::time::{Duration, Instant};

pub struct DatagenReader {
    spec: DatagenSource,
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
    /// (a record index of this subtask's sequence).
    pub fn new(spec: DatagenSource, subtask: u32, parallelism: u32, resume_at: Option<u64>) -> DatagenReader {
        let rate = spec.rate.map(|r| r as f64 / f64::from(parallelism.max(1)));
        let json = spec
            .json
            .then(|| (JsonEncoder::new(&spec.schema), JsonDecoder::new(&spec.schema), Vec::with_capacity(256)));
        DatagenReader {
            next: resume_at.unwrap_or(u64::from(subtask)),
            step: u64::from(parallelism.max(1)),
            rate,
            started: Instant::now(),
            emitted: 0,
            json,
            spec,
        }
    }

    fn row(&self, i: u64) -> Row {
        self.spec.generators.iter().zip(&self.spec.schema.fields).map(|(g, f)| generate(g, f.ty, i)).collect()
    }
}

fn splitmix(i: u64) -> u64 {
    let mut z = i.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn generate(g: &Generator, ty: DataType, i: u64) -> Value {
    let i = i as i64;
    let int = |v: i64| match ty {
        DataType::Timestamp => Value::Timestamp(v),
        DataType::Double => Value::Double(v as f64),
        _ => Value::Int(v),
    };
    match g {
        Generator::Sequence { start, step } => int(start.wrapping_add(i.wrapping_mul(*step))),
        Generator::Ticks { start, step, per_tick } => {
            int(start.wrapping_add((i / (*per_tick).max(1)).wrapping_mul(*step)))
        }
        Generator::Random { min, max } => {
            let span = (*max as i128 - *min as i128 + 1) as u128;
            int((*min as i128 + (u128::from(splitmix(i as u64)) % span) as i128) as i64)
        }
        Generator::Cycle(values) => values.get((i as usize) % values.len().max(1)).cloned().unwrap_or(Value::Int(0)),
        Generator::Constant(v) => v.clone(),
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
        let mut batch = Vec::with_capacity(n as usize);
        while batch.len() < n as usize && self.next < count {
            let row = self.row(self.next);
            let row = match &mut self.json {
                Some((enc, dec, buf)) => {
                    buf.clear();
                    enc.encode(&row, buf);
                    dec.decode(buf).map_err(|e| ConnectorError::Io(format!("datagen JSON round trip failed: {e}")))?
                }
                None => row,
            };
            batch.push(Record::new(row));
            self.next += self.step;
        }
        self.emitted += batch.len() as u64;
        Ok(SourcePoll::Records(batch))
    }

    fn snapshot(&self) -> SourceState {
        SourceState::Datagen { next: self.next }
    }
}
