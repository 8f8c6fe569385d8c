//! The check of a plan's indices the pass runs on its result: each edge's
//! records are what its receiver reads, each key and field index is within
//! its input, and each pass-through operator's output is its input's
//! columns and what it adds.

use super::{edge_key, input_indices, input_schema};
use crate::ir::{DataType, OperatorKind, Schema, WindowTopPer};
use crate::logical::LogicalPlan;

/// The types (and nullability) of a schema's fields.
fn types(s: &Schema) -> Vec<(DataType, bool)> {
    s.fields.iter().map(|f| (f.ty, f.nullable)).collect()
}

/// Whether every index of the plan fits the records it indexes: each
/// edge's records are what its receiver reads, each key and field index
/// is within its input, and each pass-through operator's output is its
/// input's columns (and what it adds). The pass checks its result with it
/// and keeps the plan as it was should it not hold.
pub fn well_formed(plan: &LogicalPlan) -> Result<(), String> {
    let ops = &plan.operators;
    for e in &plan.edges {
        let (Some(from), Some(to)) = (ops.get(e.from), ops.get(e.to)) else {
            return Err(format!("edge {} -> {} leaves the plan", e.from, e.to));
        };
        if e.from >= e.to {
            return Err(format!("edge {} -> {} goes backwards", e.from, e.to));
        }
        let mut p = e.partitioning.clone();
        if let Some(k) = edge_key(&mut p).and_then(|k| k.iter().find(|k| **k >= from.output.fields.len())) {
            return Err(format!("edge {} -> {} partitions by #{k}, past `{}`'s output", e.from, e.to, from.name));
        }
        if matches!(to.kind, OperatorKind::LateOutput) {
            continue;
        }
        let Some(input) = input_schema(to, e.input) else {
            return Err(format!("`{}` has no input {}", to.name, e.input));
        };
        // The same types; a field (or an array's element) may be nullable
        // where it is read and never null where it is sent (a `union`
        // widens, as Flink's).
        let (want, sent) = (types(input), types(&from.output));
        if want.len() != sent.len() || want.iter().zip(&sent).any(|(w, s)| !s.0.fits(w.0) || (s.1 && !w.1)) {
            return Err(format!(
                "`{}` sends {} to input {} of `{}`, which reads {input}",
                from.name, from.output, e.input, to.name
            ));
        }
    }
    for op in ops {
        let mut bad = None;
        let mut kind = op.kind.clone();
        input_indices(&mut kind, &mut |k, i| {
            if input_schema(op, k).is_none_or(|s| *i >= s.fields.len()) {
                bad = Some((k, *i));
            }
        });
        if let Some((k, i)) = bad {
            return Err(format!("`{}` reads #{i} of input {k}, which has no such field", op.name));
        }
        let (input, output) = (op.input.as_ref().map(types).unwrap_or_default(), types(&op.output));
        let fits = match &op.kind {
            OperatorKind::Filter(_) | OperatorKind::Watermark(_) | OperatorKind::Dedup(_) => input == output,
            OperatorKind::Join(j) => {
                output.len() == input.len() + j.right.fields.len()
                    && output.iter().zip(&input).all(|(o, i)| o.0 == i.0)
                    && output[input.len()..].iter().zip(types(&j.right)).all(|(o, r)| o.0 == r.0)
            }
            OperatorKind::KeyedTop(t) => {
                output.starts_with(&input)
                    && output.len() == input.len() + usize::from(t.rank_field.is_some())
                    && t.rank_field.is_none_or(|r| r == input.len())
            }
            OperatorKind::WindowTop(t) | OperatorKind::WindowTopPer(WindowTopPer { top: t, .. }) => {
                output.starts_with(&input) && output.len() == input.len() + 1 && t.rank_field == input.len()
            }
            OperatorKind::LookupJoin(l) => {
                output.len() == input.len() + l.side.schema().fields.len() && output.starts_with(&input)
            }
            OperatorKind::Unnest(u) => {
                let others: Vec<_> = input.iter().enumerate().filter(|(c, _)| *c != u.field).map(|(_, t)| *t).collect();
                output.starts_with(&others)
            }
            _ => true,
        };
        if !fits {
            return Err(format!("`{}`'s output {} does not follow from its input", op.name, op.output));
        }
    }
    Ok(())
}
