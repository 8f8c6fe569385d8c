//! `watermark`: gives each record its event time from a timestamp field and
//! makes watermarks: bounded out-of-orderness, plus idleness.
//!
//! When the stage reads straight from a Kafka source (chained, or over a
//! FORWARD edge), the source already makes the watermarks per partition, as
//! Flink's `KafkaSource` does with a `WatermarkStrategy`; the stage then
//! only assigns timestamps and passes the source's watermarks on.
//! Otherwise it makes them itself from the records it sees, every timer
//! tick (200 ms, Flink's default `autoWatermarkInterval`).

use super::{Operator, OperatorError};
use crate::data::{Batch, Data};
use crate::record::Signal;
use flowc_compiler::ir::WatermarkSpec;
use std::time::{Duration, Instant};

pub struct WatermarkAssigner {
    pub spec: WatermarkSpec,
    /// The source upstream makes the watermarks.
    pub from_source: bool,
    max_timestamp: i64,
    last_watermark: i64,
    last_record: Instant,
    idle: bool,
}

impl WatermarkAssigner {
    pub fn new(spec: WatermarkSpec, from_source: bool) -> WatermarkAssigner {
        WatermarkAssigner {
            spec,
            from_source,
            max_timestamp: i64::MIN,
            last_watermark: i64::MIN,
            last_record: Instant::now(),
            idle: false,
        }
    }
}

impl Operator for WatermarkAssigner {
    fn process(&mut self, mut input: Batch, out: &mut Vec<Batch>) -> Result<(), OperatorError> {
        let f = self.spec.field;
        match input.columns.get(f).map(|c| &c.data) {
            Some(Data::I64(ts)) if ts.len() == input.timestamps.len() => {
                input.timestamps.copy_from_slice(ts);
                if let Some(max) = ts.iter().max() {
                    self.max_timestamp = self.max_timestamp.max(*max);
                }
            }
            _ => {
                return Err(OperatorError::Eval {
                    operator: "watermark".into(),
                    message: format!("internal error: field #{f} is not a timestamp column (this is a bug in flowc)"),
                })
            }
        }
        if !input.is_empty() {
            self.last_record = Instant::now();
            self.idle = false;
            out.push(input);
        }
        Ok(())
    }

    fn on_signal(&mut self, signal: Signal, _out: &mut Vec<Batch>) -> Result<Option<Signal>, OperatorError> {
        if self.from_source {
            return Ok(Some(signal));
        }
        // An own strategy ignores upstream event time, except the end of input.
        Ok(match signal {
            Signal::Watermark(i64::MAX) => Some(signal),
            _ => None,
        })
    }

    fn on_timer(&mut self, _now_ms: i64, _out: &mut Vec<Batch>) -> Result<Option<Signal>, OperatorError> {
        if self.from_source {
            return Ok(None);
        }
        if let Some(idle_ms) = self.spec.idleness_ms {
            if !self.idle && self.last_record.elapsed() >= Duration::from_millis(idle_ms) {
                self.idle = true;
                return Ok(Some(Signal::Idle));
            }
        }
        if self.idle || self.max_timestamp == i64::MIN {
            return Ok(None);
        }
        let wm = self.max_timestamp.saturating_sub(self.spec.out_of_orderness_ms as i64).saturating_sub(1);
        if wm > self.last_watermark {
            self.last_watermark = wm;
            return Ok(Some(Signal::Watermark(wm)));
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Value;

    #[test]
    fn assigns_timestamps_and_bounds_out_of_orderness() {
        let spec = WatermarkSpec { field: 0, out_of_orderness_ms: 200, idleness_ms: None };
        let mut w = WatermarkAssigner::new(spec, false);
        let mut out = Vec::new();
        let recs = Batch::from_values(
            &[flowc_compiler::ir::DataType::Timestamp],
            &[vec![Value::Timestamp(1000)], vec![Value::Timestamp(900)]],
        )
        .expect("fits");
        w.process(recs, &mut out).unwrap();
        assert_eq!(out.iter().flat_map(|b| b.timestamps.clone()).collect::<Vec<_>>(), vec![1000, 900]);
        assert_eq!(w.on_timer(0, &mut out).unwrap(), Some(Signal::Watermark(799)));
        assert_eq!(w.on_timer(0, &mut out).unwrap(), None);
        assert_eq!(w.on_signal(Signal::Watermark(5000), &mut out).unwrap(), None);
    }

    #[test]
    fn goes_idle() {
        let spec = WatermarkSpec { field: 0, out_of_orderness_ms: 0, idleness_ms: Some(0) };
        let mut w = WatermarkAssigner::new(spec, false);
        let mut out = Vec::new();
        assert_eq!(w.on_timer(0, &mut out).unwrap(), Some(Signal::Idle));
        assert_eq!(w.on_timer(0, &mut out).unwrap(), None);
    }
}
