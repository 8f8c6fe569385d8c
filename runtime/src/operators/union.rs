//! `union a, b`: the records of every input, passed on as they come. The
//! task merges the inputs (their watermark is the least of all channels');
//! the operator has nothing to do but be the vertex's head.

use super::{Operator, OperatorError};
use crate::data::Batch;

pub struct Union;

impl Operator for Union {
    fn process(&mut self, input: Batch, out: &mut Vec<Batch>) -> Result<(), OperatorError> {
        out.push(input);
        Ok(())
    }
}
