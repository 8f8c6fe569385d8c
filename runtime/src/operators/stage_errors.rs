//! What a stage does with a record its expressions fail on (a division by
//! zero, a failed cast): its `on_error` policy (issue 11 §6), `fail` unless
//! the stage or `pipeline.on-error` says otherwise. The stages are `filter`,
//! `map` and `select` ([`Calc`](super::calc::Calc)), a `watermark` with
//! `max_future`, and the aggregates (windowed, running and retracting: an
//! aggregate's argument, a window's output).
//!
//! Whatever the policy, the record is counted (`numRecordsExpressionErrors`)
//! and kept among the subtask's latest samples (`GET
//! /jobs/:jid/vertices/:vid/errors`). Then `fail` fails the task (the
//! message names the operator, the place in the job file and the record),
//! `skip` drops the record, and `dead_letter` writes it to the job's
//! dead-letter topic (`pipeline.dead-letter.topic`) as the sources do, with
//! the row as the stage read it, and drops it. A record read from Kafka or
//! a file carries its origin ([`Origins`](crate::data::Origins), filled by
//! the sources of a job with a dead-lettering stage): its dead letter has
//! its `source` position and its original bytes as `value`, as a source's
//! own dead letter has:
//!
//! ```json
//! {"error": "division by zero in `100 / n` at job.flow:7:20", "operator": "Ratio",
//!  "source": {"topic": "events", "partition": 1, "offset": 17},
//!  "value": "{\"id\": 3, \"n\": 0}", "row": {"id": 3, "n": 0}, "timestamp": 1795558500015}
//! ```
//!
//! A record an operator made (a window's output, a join's, datagen's) has
//! no origin: no `source`, and its `value` is the row.
//!
//! The only I/O of an operator: the dead-letter producer is flushed at
//! every checkpoint barrier ([`Operator::flush`](super::Operator::flush)),
//! so a dead letter is never lost between a checkpoint and a failure.

use super::OperatorError;
use crate::codec::json::JsonEncoder;
use crate::connectors::bad_records::{dead_letter_json, describe, DeadLetterWriter};
use crate::data::Batch;
use crate::expr::EvalError;
use crate::metrics::{sample_text, ErrorClass, ErrorSample, TaskCounters};
use flowc_compiler::ir::{ErrorPolicy, Schema};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The task's failure for `e` in the stage `operator`, over `batch`
/// (records of `schema`): the error, its place and the record.
pub fn eval_error(operator: &str, batch: &Batch, schema: &Schema, e: EvalError) -> OperatorError {
    OperatorError::Eval { operator: operator.to_string(), message: e.describe(batch, schema) }
}

/// What went wrong with a record.
struct Failure {
    class: ErrorClass,
    message: String,
}

/// The failed records of the stages of one operator (a fused run of
/// `filter`/`map`/`select`, a watermark, an aggregate).
pub struct StageErrors {
    counters: Arc<TaskCounters>,
    /// Connected when a stage dead-letters: every stage of a job writes
    /// to the job's one dead-letter topic.
    dead_letters: Option<DeadLetterWriter>,
    last_log: Option<Instant>,
    row: Vec<u8>,
    buf: Vec<u8>,
}

impl StageErrors {
    /// For stages with these policies; connects to the dead-letter topic
    /// if one of them needs it. `operator` names them in a setup error.
    pub fn new(
        policies: &[&ErrorPolicy],
        operator: &str,
        counters: Arc<TaskCounters>,
    ) -> Result<StageErrors, OperatorError> {
        let target = policies.iter().find_map(|p| match p {
            ErrorPolicy::DeadLetter(t) => Some(t),
            _ => None,
        });
        let dead_letters = match target {
            Some(t) => Some(
                DeadLetterWriter::new(t)
                    .map_err(|e| OperatorError::Setup { operator: operator.to_string(), message: e.to_string() })?,
            ),
            None => None,
        };
        Ok(StageErrors { counters, dead_letters, last_log: None, row: Vec::new(), buf: Vec::new() })
    }

    /// For stages that fail the task on a failed record: no I/O, counted
    /// nowhere that is read.
    pub fn none() -> StageErrors {
        StageErrors {
            counters: Arc::new(TaskCounters::new()),
            dead_letters: None,
            last_log: None,
            row: Vec::new(),
            buf: Vec::new(),
        }
    }

    /// Row `row` of `batch` (records of `schema`) failed with `error` in
    /// the stage `operator` whose policy is `policy`: counted
    /// (`numRecordsExpressionErrors`), sampled, then the task's failure
    /// (`Err`), dropped, or dead-lettered.
    pub fn failed(
        &mut self,
        policy: &ErrorPolicy,
        operator: &str,
        batch: &Batch,
        schema: &Schema,
        row: usize,
        error: &EvalError,
    ) -> Result<(), OperatorError> {
        let failure = Failure { class: ErrorClass::Expression, message: error.to_string() };
        self.record(failure, policy, operator, batch, schema, row)
    }

    /// Row `row` of `batch` has an event time too far ahead of the clock
    /// (`message` says how far) for the watermark stage `operator`:
    /// counted (`numRecordsFromTheFuture`), then as [`StageErrors::failed`].
    pub fn from_the_future(
        &mut self,
        policy: &ErrorPolicy,
        operator: &str,
        batch: &Batch,
        schema: &Schema,
        row: usize,
        message: String,
    ) -> Result<(), OperatorError> {
        let failure = Failure { class: ErrorClass::FromTheFuture, message };
        self.record(failure, policy, operator, batch, schema, row)
    }

    fn record(
        &mut self,
        failure: Failure,
        policy: &ErrorPolicy,
        operator: &str,
        batch: &Batch,
        schema: &Schema,
        row: usize,
    ) -> Result<(), OperatorError> {
        let (counter, what) = match failure.class {
            ErrorClass::FromTheFuture => (&self.counters.from_the_future, "numRecordsFromTheFuture"),
            _ => (&self.counters.expression_errors, "numRecordsExpressionErrors"),
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.row.clear();
        if row < batch.len() {
            JsonEncoder::new(schema).encode_row(batch, row, &mut self.row);
        }
        let action = match policy {
            // A dead-letter directory is a file source's: a stage never has one.
            ErrorPolicy::Fail | ErrorPolicy::DeadLetterFiles(_) => "failed",
            ErrorPolicy::Skip => "skipped",
            ErrorPolicy::DeadLetter(_) => "dead-lettered",
        };
        let message = failure.message;
        // Where the record was read, and its bytes as read, if it was.
        let origin = batch.origins.as_ref().and_then(|o| o.get(row));
        let position = origin.map(|o| o.position());
        self.counters.sample_error(ErrorSample {
            time_ms: crate::clock::now_ms(),
            class: failure.class,
            operator: operator.to_string(),
            error: message.clone(),
            position: position.clone(),
            value: sample_text(&self.row),
            action: action.to_string(),
        });
        let row_text = String::from_utf8_lossy(&self.row).into_owned();
        // For the log: where the record was read, if known.
        let read_at = position.as_ref().map(describe).unwrap_or_default();
        let log = self.last_log.is_none_or(|t| t.elapsed() > Duration::from_secs(10));
        match policy {
            ErrorPolicy::Fail | ErrorPolicy::DeadLetterFiles(_) => {
                let mut m = message;
                if !row_text.is_empty() {
                    m.push_str(", record ");
                    m.push_str(&row_text);
                }
                if !read_at.is_empty() {
                    m.push_str(" read at ");
                    m.push_str(&read_at);
                }
                return Err(OperatorError::Eval { operator: operator.to_string(), message: m });
            }
            ErrorPolicy::Skip => {
                if log {
                    self.last_log = Some(Instant::now());
                    tracing::warn!(operator, error = %message, record = %row_text, position = %read_at, counted_in = what, "Skipping a record that failed in a stage.");
                }
            }
            ErrorPolicy::DeadLetter(_) => {
                self.buf.clear();
                let timestamp = batch.timestamps.get(row).copied().filter(|t| *t != i64::MIN);
                let Some(w) = &self.dead_letters else {
                    return Err(OperatorError::Setup {
                        operator: operator.to_string(),
                        message: "no dead-letter topic to write to (this is a bug in flowc)".into(),
                    });
                };
                // The original bytes where the record has an origin, else the
                // row; cut to fit the dead-letter topic's own limit, read when it opened.
                let value = origin.map_or(self.row.as_slice(), |o| o.bytes);
                let (at, fit) = (position.as_ref(), w.limits());
                dead_letter_json(&mut self.buf, &message, operator, at, value, Some(&row_text), timestamp, fit);
                w.send(&self.buf).map_err(|e| OperatorError::Eval {
                    operator: operator.to_string(),
                    message: format!("cannot dead-letter a record: {e}"),
                })?;
                self.counters.dead_lettered.fetch_add(1, Ordering::Relaxed);
                if log {
                    self.last_log = Some(Instant::now());
                    tracing::warn!(operator, error = %message, record = %row_text, position = %read_at, counted_in = what, "Dead-lettering a record that failed in a stage (also counted in numRecordsDeadLettered).");
                }
            }
        }
        Ok(())
    }

    /// A batch failed with `first` in the stage `operator` (policy
    /// `policy`, records of `schema`): under `fail`, the task's failure;
    /// else each row of `candidates` is evaluated alone (`eval_one`:
    /// whether it is kept), those that fail follow the policy, and the
    /// others that are kept are returned, in order. An error that is no
    /// record's fault (no row) is a bug, whatever the policy.
    #[allow(clippy::too_many_arguments)] // the stage, its batch, and what to evaluate
    pub fn split(
        &mut self,
        policy: &ErrorPolicy,
        operator: &str,
        batch: &Batch,
        schema: &Schema,
        first: EvalError,
        candidates: impl Iterator<Item = u32>,
        mut eval_one: impl FnMut(u32) -> Result<bool, EvalError>,
    ) -> Result<Vec<u32>, OperatorError> {
        let Some(row) = first.row else {
            return Err(eval_error(operator, batch, schema, first));
        };
        if matches!(policy, ErrorPolicy::Fail | ErrorPolicy::DeadLetterFiles(_)) {
            self.failed(policy, operator, batch, schema, row, &first)?;
            return Err(eval_error(operator, batch, schema, first));
        }
        let mut good = Vec::new();
        for r in candidates {
            match eval_one(r) {
                Ok(true) => good.push(r),
                Ok(false) => {}
                Err(e) if e.row.is_none() => return Err(eval_error(operator, batch, schema, e)),
                Err(e) => self.failed(policy, operator, batch, schema, r as usize, &e)?,
            }
        }
        Ok(good)
    }

    /// Everything dead-lettered so far is delivered when this returns.
    pub fn flush(&self) -> Result<(), OperatorError> {
        match &self.dead_letters {
            Some(w) => w.flush().map_err(|e| OperatorError::Eval {
                operator: "dead-letter topic".into(),
                message: format!("cannot deliver dead letters: {e}"),
            }),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::calc::{Calc, CalcOp};
    use super::super::Operator;
    use crate::data::{Batch, Origins};
    use crate::expr::SourceMap;
    use crate::metrics::{RecordPosition, TaskCounters};
    use crate::record::Value;
    use flowc_compiler::ir::{BinOp, DataType, ErrorPolicy, Expr, Field, Schema, SourceSpan};
    use std::sync::Arc;

    fn schema(fields: &[(&str, DataType)]) -> Schema {
        Schema { name: None, fields: fields.iter().map(|(n, t)| Field::new(*n, *t)).collect() }
    }

    /// `filter n != 5 | select { n, page } | map { page, r: 10 / n }`, the
    /// map under `policy`.
    fn stages(policy: ErrorPolicy, counters: Arc<TaskCounters>) -> Calc {
        let s = schema(&[("page", DataType::String), ("n", DataType::Long)]);
        let lit = |v: i64| Box::new(Expr::Literal(Value::Int(v)));
        let cond = Expr::Binary(BinOp::Ne, Box::new(Expr::Field(1)), lit(5));
        let swap = vec![Expr::Field(1), Expr::Field(0)];
        let swapped = schema(&[("n", DataType::Long), ("page", DataType::String)]);
        let q = Expr::At(SourceSpan::new(0, 0), Box::new(Expr::Binary(BinOp::Div, lit(10), Box::new(Expr::Field(0)))));
        let map = vec![Expr::Field(1), q];
        let out = schema(&[("page", DataType::String), ("r", DataType::Long)]);
        let ops = vec![
            ("F".to_string(), CalcOp::Filter(&cond), s.clone(), s.clone()),
            ("S".to_string(), CalcOp::Project(&swap), s, swapped.clone()),
            ("Ratio".to_string(), CalcOp::Project(&map), swapped, out),
        ];
        let policies = [ErrorPolicy::Fail, ErrorPolicy::Fail, policy];
        Calc::with_policies(&ops, &policies, &SourceMap::default(), counters).expect("compiles")
    }

    /// Four records, `n` 0, 5, 2, 0, read from partition 1 of `in` at offsets 100 to 103.
    fn input() -> Batch {
        let rows: Vec<Vec<Value>> =
            [0, 5, 2, 0].iter().map(|n| vec![Value::Str(format!("/p{n}")), Value::Int(*n)]).collect();
        let mut b = Batch::from_values(&[DataType::String, DataType::Long], &rows).expect("fits");
        let mut origins = Origins::default();
        for (i, n) in [0, 5, 2, 0].iter().enumerate() {
            origins.push_kafka("in", 1, 100 + i as i64, format!("{{\"n\": {n}}}").as_bytes());
        }
        b.origins = Some(origins);
        b
    }

    fn at(offset: i64) -> RecordPosition {
        RecordPosition::Kafka { topic: "in".into(), partition: 1, offset }
    }

    #[test]
    fn a_failed_record_is_named_by_its_origin_through_filters_and_projections() {
        let counters = Arc::new(TaskCounters::new());
        let mut calc = stages(ErrorPolicy::Skip, counters.clone());
        let mut emitted = Vec::new();
        calc.process(input(), &mut emitted).expect("skips");
        let samples = counters.error_samples();
        assert_eq!(samples.iter().map(|s| s.position.clone()).collect::<Vec<_>>(), vec![Some(at(100)), Some(at(103))]);
        // The good record keeps its origin on the way out.
        let kept = emitted[0].origins.as_ref().and_then(|o| o.get(0)).map(|o| (o.position(), o.bytes.to_vec()));
        assert_eq!(kept, Some((at(102), b"{\"n\": 2}".to_vec())));
        // `fail` names where the record was read.
        let mut calc = stages(ErrorPolicy::Fail, counters);
        let err = calc.process(input(), &mut Vec::new()).expect_err("fails").to_string();
        assert!(err.ends_with(r#"record {"n":0,"page":"/p0"} read at in/1@100"#), "{err}");
    }
}
