//! What a keyed aggregate compiles from its spec when it is deployed — the
//! window operator, the running aggregate and the retracting one alike:
//! each aggregate's argument over the input, and the output expressions
//! over the scope `[keys…, aggregates…, extra…]` (a window's bounds are
//! its extra fields). And what such an aggregate does with a record an
//! argument fails on (`sum(100 / n)` with `n = 0`): its `on_error`
//! ([`AggregateErrors`]).

use super::calc::Projection;
use super::stage_errors::StageErrors;
use super::OperatorError;
use crate::data::Batch;
use crate::expr::{AggregateScope, CompiledExpr, EvalError, Sel, SourceMap, Vals};
use crate::metrics::TaskCounters;
use flowc_compiler::ir::{AggCall, DataType, ErrorPolicy, Expr, Field, Schema};
use std::sync::Arc;

pub(crate) struct AggregatePlan {
    /// Per aggregate: its argument, compiled over the input (none for `count()`).
    pub args: Vec<Option<CompiledExpr>>,
    /// The output over the scope.
    pub output: Projection,
    pub scope_types: Vec<DataType>,
    pub scope_schema: Schema,
}

/// A keyed aggregate's spec, as the compiler gives it.
pub(crate) struct AggregateSpec<'a> {
    pub key: &'a [usize],
    pub aggregates: &'a [AggCall],
    pub output: &'a [Expr],
}

impl AggregatePlan {
    /// Compiles `spec` over `input` for `output`. `unsupported` names why
    /// the operator cannot run an aggregate (the checker refuses it first:
    /// reaching it is a bug, said so).
    pub fn compile(
        operator: &str,
        spec: AggregateSpec<'_>,
        extra: &[Field],
        input: &Schema,
        output: &Schema,
        sources: &SourceMap,
        unsupported: impl Fn(&AggCall) -> Option<String>,
    ) -> Result<AggregatePlan, OperatorError> {
        let setup = |m: String| OperatorError::Setup {
            operator: operator.to_string(),
            message: format!("{m} (this is a bug in flowc)"),
        };
        let input_types: Vec<DataType> = input.fields.iter().map(|f| f.ty).collect();
        let mut scope_fields = Vec::new();
        for k in spec.key {
            let f = input.fields.get(*k).ok_or_else(|| setup(format!("key field #{k} does not exist")))?;
            scope_fields.push(f.clone());
        }
        let mut args = Vec::new();
        for (i, call) in spec.aggregates.iter().enumerate() {
            if let Some(why) = unsupported(call) {
                return Err(setup(why));
            }
            let arg = match &call.arg {
                Some(e) => Some(CompiledExpr::compile(e, &input_types, sources).map_err(setup)?),
                None => None,
            };
            scope_fields.push(Field::new(format!("{}#{i}", call.func.name()), call.result_type));
            args.push(arg);
        }
        scope_fields.extend(extra.iter().cloned());
        let scope_types: Vec<DataType> = scope_fields.iter().map(|f| f.ty).collect();
        let scope = AggregateScope { keys: spec.key.len(), aggregates: spec.aggregates.len() };
        let exprs = spec
            .output
            .iter()
            .map(|e| CompiledExpr::compile_aggregate_output(e, &scope_types, scope, sources))
            .collect::<Result<Vec<_>, _>>()
            .map_err(setup)?;
        let out_types: Vec<DataType> = output.fields.iter().map(|f| f.ty).collect();
        if out_types.len() != exprs.len() {
            return Err(setup("one output expression per output field expected".into()));
        }
        Ok(AggregatePlan {
            args,
            output: Projection::new(exprs, out_types),
            scope_types,
            scope_schema: Schema { name: None, fields: scope_fields },
        })
    }
}

/// The arguments `args` (none for `count()`) over every row of `batch`.
pub(crate) fn eval_args<'a>(
    args: &'a [Option<CompiledExpr>],
    batch: &'a Batch,
) -> Result<Vec<Option<Vals<'a>>>, EvalError> {
    let sel = Sel::All(batch.len());
    args.iter().map(|a| a.as_ref().map(|c| c.eval(batch, sel)).transpose()).collect()
}

/// What a keyed aggregate does with a record one of its arguments fails
/// on: its `on_error` policy (`fail` by default), as a `filter`'s.
///
/// The arguments are evaluated over the whole batch before anything
/// touches the state; only a batch in which one fails is evaluated again
/// record by record, and the aggregate then takes the batch of the
/// records that did not fail (so a record counts wholly or not at all).
pub(crate) struct AggregateErrors {
    policy: ErrorPolicy,
    errors: StageErrors,
}

impl AggregateErrors {
    /// Fails the task on a failed record, counting nowhere.
    pub fn fail() -> AggregateErrors {
        AggregateErrors { policy: ErrorPolicy::Fail, errors: StageErrors::none() }
    }

    /// With `policy`, counting in `counters`; connects to the dead-letter
    /// topic only when something can fail (`fallible`).
    pub fn new(
        policy: ErrorPolicy,
        fallible: bool,
        operator: &str,
        counters: Arc<TaskCounters>,
    ) -> Result<AggregateErrors, OperatorError> {
        if !fallible {
            return Ok(AggregateErrors::fail());
        }
        let errors = StageErrors::new(&[&policy], operator, counters)?;
        Ok(AggregateErrors { policy, errors })
    }

    /// Whether any of `exprs` can fail on a record.
    pub fn fallible<'a>(exprs: impl IntoIterator<Item = &'a CompiledExpr>) -> bool {
        exprs.into_iter().any(CompiledExpr::fallible)
    }

    /// The arguments failed with `first` over `batch` (records of
    /// `schema`): under `fail` the task's failure, else the rows on which
    /// every argument evaluates, after the others followed the policy.
    pub fn good_rows(
        &mut self,
        operator: &str,
        batch: &Batch,
        schema: &Schema,
        args: &[Option<CompiledExpr>],
        first: EvalError,
    ) -> Result<Vec<u32>, OperatorError> {
        self.errors.split(&self.policy, operator, batch, schema, first, 0..batch.len() as u32, |r| {
            let rows = [r];
            for c in args.iter().flatten() {
                c.eval(batch, Sel::Rows(&rows))?;
            }
            Ok(true)
        })
    }

    /// The arguments failed with `first` over `batch`: the records to
    /// aggregate instead (`None`: none is left), by [`Self::good_rows`].
    /// A batch already `screened` (its failing records gone) that fails
    /// again is the task's failure whatever the policy.
    pub fn screen(
        &mut self,
        operator: &str,
        batch: &Batch,
        schema: &Schema,
        args: &[Option<CompiledExpr>],
        first: EvalError,
        screened: bool,
    ) -> Result<Option<Batch>, OperatorError> {
        if screened {
            return Err(super::stage_errors::eval_error(operator, batch, schema, first));
        }
        let good = self.good_rows(operator, batch, schema, args, first)?;
        Ok((!good.is_empty()).then(|| batch.gather(&good)))
    }

    /// `output` failed with `first` over the rows `scope` of fired windows
    /// (records of `schema`): under `fail` the task's failure, else the
    /// rows whose output evaluates, after the others followed the policy.
    pub fn good_output_rows(
        &mut self,
        operator: &str,
        scope: &Batch,
        schema: &Schema,
        output: &Projection,
        first: EvalError,
    ) -> Result<Vec<u32>, OperatorError> {
        self.errors.split(&self.policy, operator, scope, schema, first, 0..scope.len() as u32, |r| {
            output.eval_row(scope, r).map(|()| true)
        })
    }

    /// Every dead letter so far is delivered when this returns.
    pub fn flush(&self) -> Result<(), OperatorError> {
        self.errors.flush()
    }
}

#[cfg(test)]
mod tests;
