//! What a keyed aggregate compiles from its spec when it is deployed — the
//! window operator, the running aggregate and the retracting one alike:
//! each aggregate's argument over the input, and the output expressions
//! over the scope `[keys…, aggregates…, extra…]` (a window's bounds are
//! its extra fields).

use super::calc::Projection;
use super::OperatorError;
use crate::expr::{AggregateScope, CompiledExpr, SourceMap};
use flowc_compiler::ir::{AggCall, DataType, Expr, Field, Schema};

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
