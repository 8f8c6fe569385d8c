//! How each input reaches a join: HASH by its own key fields, or FORWARD
//! where the input is already partitioned alike (the output of a join on
//! the same key, through filters and projections that keep the key
//! fields, at the same parallelism).

use super::super::Checker;
use crate::ir::*;
use crate::logical::{JobSettings, Partitioning};

impl Checker {
    /// The edge into a join from `op` by `key`: HASH, or FORWARD where the
    /// records of `op` are already partitioned by that key
    /// (`KeyedForward`: HASH again should the parallelisms differ).
    pub(super) fn keyed_edge(&self, op: Option<usize>, key: &[usize], settings: &JobSettings) -> Partitioning {
        match op {
            Some(o) if self.partitioned_by(o, settings).iter().any(|k| k == key) => {
                Partitioning::KeyedForward { key: key.to_vec() }
            }
            _ => Partitioning::Hash { key: key.to_vec() },
        }
    }

    /// The keys (field lists) by whose hash the records of `op` are
    /// partitioned, as far as the checker can tell: a join's output by its
    /// left key (and, equal to it, its right key), through the filters and
    /// projections after it that keep those fields, all at one
    /// parallelism, FORWARD, no re-key in between.
    fn partitioned_by(&self, op: usize, settings: &JobSettings) -> Vec<Vec<usize>> {
        let parallelism = |i: usize| self.ops[i].parallelism.unwrap_or(settings.parallelism);
        let input = || {
            self.edges
                .iter()
                .find(|e| e.to == op && e.input == 0)
                .filter(|e| e.partitioning == Partitioning::Forward && parallelism(e.from) == parallelism(op))
                .map(|e| e.from)
        };
        match &self.ops[op].kind {
            OperatorKind::Join(j) => {
                let left_len = self.ops[op].input.as_ref().map_or(0, |s| s.fields.len());
                vec![j.left_key.clone(), j.right_key.iter().map(|k| k + left_len).collect()]
            }
            // A lookup join keeps the left's fields where they were.
            OperatorKind::Filter(_) | OperatorKind::LookupJoin(_) => {
                input().map_or_else(Vec::new, |from| self.partitioned_by(from, settings))
            }
            OperatorKind::Project(exprs) => {
                let Some(from) = input() else { return Vec::new() };
                let field_of = |mut e: &Expr| loop {
                    match e {
                        Expr::At(_, inner) => e = &**inner,
                        Expr::Field(f) => return Some(*f),
                        _ => return None,
                    }
                };
                let outputs: Vec<Option<usize>> = exprs.iter().map(field_of).collect();
                self.partitioned_by(from, settings)
                    .into_iter()
                    .filter_map(|key| key.iter().map(|k| outputs.iter().position(|o| *o == Some(*k))).collect())
                    .collect()
            }
            _ => Vec::new(),
        }
    }
}
