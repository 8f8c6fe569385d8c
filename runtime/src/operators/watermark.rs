//! `watermark`: gives each record its event time from a timestamp field and
//! makes watermarks: bounded out-of-orderness, plus idleness.
//!
//! When the stage reads straight from a Kafka source (chained, or over a
//! FORWARD edge), the source already makes the watermarks per partition, as
//! Flink's `KafkaSource` does with a `WatermarkStrategy`; the stage then
//! only assigns timestamps and passes the source's watermarks on.
//! Otherwise it makes them itself from the records it sees, every timer
//! tick (200 ms, Flink's default `autoWatermarkInterval`).
//!
//! With `max_future: 1h`, a record whose event time is more than that
//! ahead of the clock (an event from the year 3000) moves no watermark:
//! it follows the stage's `on_error` (skip, dead-letter or fail), is
//! counted in `numRecordsFromTheFuture`, and the first one is logged with
//! its value. A Kafka source that makes the watermarks leaves it out of
//! them too.

use super::stage_errors::StageErrors;
use super::{Operator, OperatorError};
use crate::codec::json::JsonEncoder;
use crate::data::{Batch, Data};
use crate::metrics::TaskCounters;
use crate::record::Signal;
use flowc_compiler::ir::{ErrorPolicy, Schema, WatermarkSpec};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct WatermarkAssigner {
    pub spec: WatermarkSpec,
    /// The source upstream makes the watermarks.
    pub from_source: bool,
    max_timestamp: i64,
    last_watermark: i64,
    last_record: Instant,
    idle: bool,
    /// For records beyond `max_future`: the operator's name, its records,
    /// its policy.
    name: String,
    schema: Schema,
    policy: ErrorPolicy,
    errors: StageErrors,
    /// A record from the future was logged.
    logged_future: bool,
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
            name: "watermark".into(),
            schema: Schema::default(),
            policy: ErrorPolicy::Fail,
            errors: StageErrors::none(),
            logged_future: false,
        }
    }

    /// The same, named `name`, over records of `schema`, with `policy` for
    /// the records beyond `max_future`, counted in `counters`.
    pub fn with_errors(
        mut self,
        name: &str,
        schema: &Schema,
        policy: ErrorPolicy,
        counters: Arc<TaskCounters>,
    ) -> Result<WatermarkAssigner, OperatorError> {
        self.errors = StageErrors::new(&[&policy], name, counters)?;
        self.name = name.to_string();
        self.schema = schema.clone();
        self.policy = policy;
        Ok(self)
    }

    /// `batch` without its records whose event time is beyond `limit`
    /// (`now` + `max_future_ms`), each of which follows the policy.
    fn drop_future(&mut self, batch: Batch, now: i64, max_future_ms: u64) -> Result<Batch, OperatorError> {
        let limit = now.saturating_add(max_future_ms as i64);
        let mut good = Vec::with_capacity(batch.len());
        for (i, &t) in batch.timestamps.iter().enumerate() {
            if t <= limit {
                good.push(i as u32);
                continue;
            }
            if !self.logged_future {
                self.logged_future = true;
                let mut record = Vec::new();
                JsonEncoder::new(&self.schema).encode_row(&batch, i, &mut record);
                tracing::warn!(
                    operator = %self.name,
                    event_time = t,
                    ahead_ms = t.saturating_sub(now),
                    max_future_ms,
                    record = %String::from_utf8_lossy(&record),
                    "A record's event time is beyond `max_future`: it does not move the watermark and follows `on_error` (logged once; all are counted in numRecordsFromTheFuture)."
                );
            }
            let message = format!(
                "event time {t} is {}ms ahead of the clock, beyond `max_future` ({max_future_ms}ms)",
                t.saturating_sub(now)
            );
            self.errors.from_the_future(&self.policy, &self.name, &batch, &self.schema, i, message)?;
        }
        Ok(if good.len() == batch.len() { batch } else { batch.gather(&good) })
    }
}

impl Operator for WatermarkAssigner {
    fn process(&mut self, mut input: Batch, out: &mut Vec<Batch>) -> Result<(), OperatorError> {
        let f = self.spec.field;
        match input.columns.get(f).map(|c| &c.data) {
            Some(Data::I64(ts)) if ts.len() == input.timestamps.len() => input.timestamps.copy_from_slice(ts),
            _ => {
                return Err(OperatorError::Eval {
                    operator: "watermark".into(),
                    message: format!("internal error: field #{f} is not a timestamp column (this is a bug in flowc)"),
                })
            }
        }
        if let (Some(max_future_ms), Some(max)) = (self.spec.max_future_ms, input.timestamps.iter().max().copied()) {
            // One clock read per batch; a record is from the future only if the batch's latest is.
            let now = crate::clock::now_ms();
            if max > now.saturating_add(max_future_ms as i64) {
                input = self.drop_future(input, now, max_future_ms)?;
            }
        }
        if let Some(max) = input.timestamps.iter().max() {
            self.max_timestamp = self.max_timestamp.max(*max);
        }
        if !input.is_empty() {
            self.last_record = Instant::now();
            self.idle = false;
            out.push(input);
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), OperatorError> {
        self.errors.flush()
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
        let spec = WatermarkSpec { field: 0, out_of_orderness_ms: 200, idleness_ms: None, max_future_ms: None };
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
    fn records_beyond_max_future_follow_the_policy_and_move_no_watermark() {
        use flowc_compiler::ir::{DataType, Field};
        let now = crate::clock::now_ms();
        let year_3000 = 32_503_680_000_000;
        let spec =
            WatermarkSpec { field: 0, out_of_orderness_ms: 0, idleness_ms: None, max_future_ms: Some(3_600_000) };
        let schema = Schema { name: None, fields: vec![Field::new("ts", DataType::Timestamp)] };
        let batch = || {
            let rows = [now - 1000, year_3000, now + 60_000, now + 7_200_000];
            let values: Vec<Vec<Value>> = rows.iter().map(|t| vec![Value::Timestamp(*t)]).collect();
            Batch::from_values(&[DataType::Timestamp], &values).expect("fits")
        };
        let counters = Arc::new(TaskCounters::new());
        let mut w = WatermarkAssigner::new(spec.clone(), false)
            .with_errors("Timestamps", &schema, ErrorPolicy::Skip, counters.clone())
            .expect("no I/O");
        let mut out = Vec::new();
        w.process(batch(), &mut out).expect("skips");
        assert_eq!(out.iter().flat_map(|b| b.timestamps.clone()).collect::<Vec<_>>(), vec![now - 1000, now + 60_000]);
        assert_eq!(w.on_timer(0, &mut out).unwrap(), Some(Signal::Watermark(now + 60_000 - 1)), "not the year 3000");
        assert_eq!(TaskCounters::get(&counters.from_the_future), 2);
        let samples = counters.error_samples();
        assert_eq!(samples.len(), 2);
        assert_eq!(samples[0].class, crate::metrics::ErrorClass::FromTheFuture);
        assert!(samples[0].error.contains("beyond `max_future` (3600000ms)"), "{:?}", samples[0]);
        assert_eq!(samples[0].action, "skipped");
        assert!(w.logged_future);
        // Under `fail` the task fails, naming the record.
        let mut w = WatermarkAssigner::new(spec.clone(), false)
            .with_errors("Timestamps", &schema, ErrorPolicy::Fail, Arc::new(TaskCounters::new()))
            .expect("no I/O");
        let e = w.process(batch(), &mut out).expect_err("fails").to_string();
        assert!(e.starts_with("Timestamps: event time 32503680000000 is") && e.contains("record {\"ts\":"), "{e}");
        // Without `max_future`, the year 3000 is the watermark.
        let mut w = WatermarkAssigner::new(WatermarkSpec { max_future_ms: None, ..spec }, false);
        w.process(batch(), &mut out).expect("no limit");
        assert_eq!(w.on_timer(0, &mut out).unwrap(), Some(Signal::Watermark(year_3000 - 1)));
    }

    #[test]
    fn goes_idle() {
        let spec = WatermarkSpec { field: 0, out_of_orderness_ms: 0, idleness_ms: Some(0), max_future_ms: None };
        let mut w = WatermarkAssigner::new(spec, false);
        let mut out = Vec::new();
        assert_eq!(w.on_timer(0, &mut out).unwrap(), Some(Signal::Idle));
        assert_eq!(w.on_timer(0, &mut out).unwrap(), None);
    }
}
