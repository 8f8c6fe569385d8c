//! `map` and `select`: one expression per output field. The record keeps
//! its event time.

use super::{Operator, OperatorError};
use crate::eval::{eval, Scope};
use crate::record::Record;
use flowc_compiler::ir::Expr;

pub struct Project {
    pub name: String,
    pub fields: Vec<Expr>,
}

impl Operator for Project {
    fn process(&mut self, input: Vec<Record>, out: &mut Vec<Record>) -> Result<(), OperatorError> {
        let scope = Scope::default();
        for r in input {
            let row = self
                .fields
                .iter()
                .map(|e| eval(e, &r.row, &scope))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| OperatorError::Eval { operator: self.name.clone(), message: e.to_string() })?;
            out.push(Record { timestamp: r.timestamp, row });
        }
        Ok(())
    }
}
