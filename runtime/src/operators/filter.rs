//! `filter`: keeps the records whose condition is true.

use super::{Operator, OperatorError};
use crate::eval::{eval, truth, Scope};
use crate::record::Record;
use flowc_compiler::ir::Expr;

pub struct Filter {
    pub name: String,
    pub condition: Expr,
}

impl Operator for Filter {
    fn process(&mut self, input: Vec<Record>, out: &mut Vec<Record>) -> Result<(), OperatorError> {
        let scope = Scope::default();
        for r in input {
            let keep = eval(&self.condition, &r.row, &scope).and_then(|v| truth(&v));
            match keep {
                Ok(true) => out.push(r),
                Ok(false) => {}
                Err(e) => return Err(OperatorError::Eval { operator: self.name.clone(), message: e.to_string() }),
            }
        }
        Ok(())
    }
}
