//! Builds the operators of a chain: consecutive `filter`/`map`/`select`
//! fused into one [`Calc`], each other operator on its own.

use super::calc::{Calc, CalcOp};
use super::top::TopOperator;
use super::watermark::WatermarkAssigner;
use super::window::WindowOperator;
use super::{Operator, OperatorError};
use crate::expr::SourceMap;
use crate::metrics::TaskCounters;
use crate::security::paths::AllowedRoots;
use flowc_compiler::graph::ChainedOperator;
use flowc_compiler::ir::{OperatorKind, Schema};
use std::ops::Range;
use std::sync::Arc;

/// What an operator needs to know about the subtask it runs in.
pub struct BuildContext {
    pub subtask: u32,
    pub parallelism: u32,
    pub max_parallelism: u32,
    /// A watermark stage whose source makes the watermarks per partition.
    pub watermarks_from_source: bool,
    pub counters: Arc<TaskCounters>,
    /// Places in the job file, for expression errors.
    pub sources: Arc<SourceMap>,
    /// The directories a lookup join may read its side input from.
    pub allowed: AllowedRoots,
}

/// Whether `op` runs fused with its neighbours.
pub fn fusable(op: &ChainedOperator) -> bool {
    matches!(op.kind, OperatorKind::Filter(_) | OperatorKind::Project(_))
}

/// Splits the operators `ops` (neither sources nor sinks) into the runs
/// that become one operator each: maximal runs of fusable operators, and
/// every other operator alone.
pub fn runs(ops: &[ChainedOperator]) -> Vec<Range<usize>> {
    let mut out: Vec<Range<usize>> = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        match out.last_mut() {
            Some(r) if fusable(op) && fusable(&ops[r.start]) && r.end == i => r.end = i + 1,
            _ => out.push(i..i + 1),
        }
    }
    out
}

/// The operator that runs `ops` (a run from [`runs`]).
pub fn build_run(ops: &[ChainedOperator], ctx: &BuildContext) -> Result<Box<dyn Operator>, OperatorError> {
    let Some(first) = ops.first() else {
        return Err(OperatorError::Setup { operator: String::new(), message: "an empty run (a bug in flowc)".into() });
    };
    if fusable(first) {
        let mut calc_ops = Vec::with_capacity(ops.len());
        let mut policies = Vec::with_capacity(ops.len());
        for op in ops {
            policies.push(op.on_error.clone().unwrap_or(flowc_compiler::ir::ErrorPolicy::Fail));
            let input = op.input.clone().unwrap_or_else(Schema::default);
            let calc_op = match &op.kind {
                OperatorKind::Filter(e) => CalcOp::Filter(e),
                OperatorKind::Project(es) => CalcOp::Project(es),
                other => return Err(not_in_chain(op, other)),
            };
            calc_ops.push((op.name.clone(), calc_op, input, op.output.clone()));
        }
        return Ok(Box::new(Calc::with_policies(&calc_ops, &policies, &ctx.sources, ctx.counters.clone())?));
    }
    if ops.len() != 1 {
        return Err(OperatorError::Setup {
            operator: first.name.clone(),
            message: "only filters and projections are fused (a bug in flowc)".into(),
        });
    }
    build_operator(first, ctx)
}

fn not_in_chain(op: &ChainedOperator, kind: &OperatorKind) -> OperatorError {
    OperatorError::Setup {
        operator: op.name.clone(),
        message: format!("{} is not an operator of a chain (this is a bug in flowc)", kind.describe()),
    }
}

/// The operator for `op`; sources and sinks are connectors, not operators.
pub fn build_operator(op: &ChainedOperator, ctx: &BuildContext) -> Result<Box<dyn Operator>, OperatorError> {
    Ok(match &op.kind {
        OperatorKind::Filter(_) | OperatorKind::Project(_) => build_run(std::slice::from_ref(op), ctx)?,
        OperatorKind::Watermark(w) => {
            Box::new(WatermarkAssigner::new(w.clone(), ctx.watermarks_from_source).with_errors(
                &op.name,
                op.input.as_ref().unwrap_or(&Schema::default()),
                op.on_error.clone().unwrap_or(flowc_compiler::ir::ErrorPolicy::Fail),
                ctx.counters.clone(),
            )?)
        }
        OperatorKind::WindowAggregate(w) => Box::new(
            WindowOperator::new(
                op.name.clone(),
                w.clone(),
                op.input.as_ref().unwrap_or(&Schema::default()),
                &op.output,
                ctx.max_parallelism,
                ctx.counters.clone(),
                &ctx.sources,
            )?
            .with_on_error(op.on_error.clone().unwrap_or(flowc_compiler::ir::ErrorPolicy::Fail))?,
        ),
        OperatorKind::RunningAggregate(r) if r.retract => Box::new(
            super::running::retract::RetractingAggregateOperator::new(
                op.name.clone(),
                r.clone(),
                op.input.as_ref().unwrap_or(&Schema::default()),
                &op.output,
                ctx.max_parallelism,
                ctx.counters.clone(),
                &ctx.sources,
            )?
            .with_on_error(op.on_error.clone().unwrap_or(flowc_compiler::ir::ErrorPolicy::Fail))?,
        ),
        OperatorKind::RunningAggregate(r) => Box::new(
            super::running::RunningAggregateOperator::new(
                op.name.clone(),
                r.clone(),
                op.input.as_ref().unwrap_or(&Schema::default()),
                &op.output,
                ctx.max_parallelism,
                ctx.counters.clone(),
                &ctx.sources,
            )?
            .with_on_error(op.on_error.clone().unwrap_or(flowc_compiler::ir::ErrorPolicy::Fail))?,
        ),
        OperatorKind::Dedup(d) if d.keep_last => Box::new(super::dedup::DedupLastOperator::new(
            op.name.clone(),
            d.clone(),
            op.input.as_ref().unwrap_or(&Schema::default()),
            ctx.max_parallelism,
        )),
        OperatorKind::Dedup(d) => Box::new(super::dedup::DedupOperator::new(
            op.name.clone(),
            d.clone(),
            op.input.as_ref().unwrap_or(&Schema::default()),
            ctx.max_parallelism,
        )),
        OperatorKind::Union => Box::new(super::union::Union),
        OperatorKind::Unnest(u) => Box::new(super::unnest::UnnestOperator::new(
            op.name.clone(),
            u.clone(),
            op.input.as_ref().unwrap_or(&Schema::default()),
        )?),
        OperatorKind::Join(j) => super::join::build(
            op.name.clone(),
            j.clone(),
            op.input.as_ref().unwrap_or(&Schema::default()),
            ctx.max_parallelism,
            ctx.counters.clone(),
        )?,
        OperatorKind::LookupJoin(l) => {
            let side = super::join::lookup::read_side(l, &op.name, &ctx.allowed, ctx.counters.clone())?;
            Box::new(super::join::lookup::LookupJoinOperator::new(
                op.name.clone(),
                l,
                op.input.as_ref().unwrap_or(&Schema::default()),
                side,
                &ctx.sources,
            )?)
        }
        OperatorKind::KeyedTop(t) => Box::new(super::top::KeyedTopOperator::new(
            op.name.clone(),
            t.clone(),
            op.input.as_ref().unwrap_or(&Schema::default()),
            &op.output,
            ctx.max_parallelism,
        )?),
        kind @ (OperatorKind::WindowTop(_) | OperatorKind::WindowTopPer(_)) => {
            let (t, per) = kind.window_top().ok_or_else(|| not_in_chain(op, kind))?;
            Box::new(TopOperator::new(
                op.name.clone(),
                t.clone(),
                per.to_vec(),
                op.input.as_ref().unwrap_or(&Schema::default()),
                &op.output,
                ctx.max_parallelism,
            )?)
        }
        other => return Err(not_in_chain(op, other)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowc_compiler::ir::{Expr, Value, WatermarkSpec};

    fn op(kind: OperatorKind) -> ChainedOperator {
        ChainedOperator {
            id: Default::default(),
            uid: None,
            name: "x".into(),
            kind,
            input: Some(Schema::default()),
            output: Schema::default(),
            on_error: None,
        }
    }

    #[test]
    fn consecutive_filters_and_projections_form_one_run() {
        let f = || op(OperatorKind::Filter(Expr::Literal(Value::Bool(true))));
        let p = || op(OperatorKind::Project(vec![]));
        let w = || {
            op(OperatorKind::Watermark(WatermarkSpec {
                field: 0,
                out_of_orderness_ms: 0,
                idleness_ms: None,
                max_future_ms: None,
            }))
        };
        assert_eq!(runs(&[f(), p(), f(), w(), p(), w(), w()]), vec![0..3, 3..4, 4..5, 5..6, 6..7]);
        assert_eq!(runs(&[]), Vec::<Range<usize>>::new());
    }
}
