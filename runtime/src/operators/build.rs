//! Builds the operator of a chained plan operator.

use super::filter::Filter;
use super::project::Project;
use super::watermark::WatermarkAssigner;
use super::window::WindowOperator;
use super::{Operator, OperatorError};
use crate::metrics::TaskCounters;
use flowc_compiler::graph::ChainedOperator;
use flowc_compiler::ir::OperatorKind;
use std::sync::Arc;

/// What an operator needs to know about the subtask it runs in.
pub struct BuildContext {
    pub subtask: u32,
    pub parallelism: u32,
    pub max_parallelism: u32,
    /// A watermark stage whose source makes the watermarks per partition.
    pub watermarks_from_source: bool,
    pub counters: Arc<TaskCounters>,
}

/// The operator for `op`; sources and sinks are connectors, not operators.
pub fn build_operator(op: &ChainedOperator, ctx: &BuildContext) -> Result<Box<dyn Operator>, OperatorError> {
    Ok(match &op.kind {
        OperatorKind::Filter(e) => Box::new(Filter { name: op.name.clone(), condition: e.clone() }),
        OperatorKind::Project(fields) => Box::new(Project { name: op.name.clone(), fields: fields.clone() }),
        OperatorKind::Watermark(w) => Box::new(WatermarkAssigner::new(w.clone(), ctx.watermarks_from_source)),
        OperatorKind::WindowAggregate(w) => {
            Box::new(WindowOperator::new(op.name.clone(), w.clone(), ctx.max_parallelism, ctx.counters.clone()))
        }
        other => {
            return Err(OperatorError::Setup {
                operator: op.name.clone(),
                message: format!("{} is not an operator of a chain (this is a bug in flowc)", other.describe()),
            })
        }
    })
}
