//! `union a, b`: the current stream merged with named streams of the same
//! schema (field names and types in the same order) and alike in
//! watermarks; one operator whose vertex reads every stream. A field is
//! nullable after it where it is nullable in any input, and an array's
//! elements where they are in any input.

use super::super::stream::{StreamEnd, Unknown};
use super::super::Checker;
use crate::ir::*;
use crate::logical::{JobSettings, LogicalEdge, Partitioning};
use flowc_dsl::ast::{self, Attrs};
use flowc_dsl::{Diagnostic, Span};

impl Checker {
    /// `union a, b`: one operator whose vertex reads every stream.
    pub(in crate::check) fn union(
        &mut self,
        input: &StreamEnd,
        streams: &[ast::Name],
        attrs: &Attrs,
        span: Span,
        settings: &JobSettings,
    ) -> StreamEnd {
        let others: Vec<(StreamEnd, &ast::Name)> = streams.iter().map(|n| (self.named_stream(n), n)).collect();
        let mut ok = true;
        let known = !matches!(input.unknown, Unknown::All);
        for (other, n) in &others {
            if matches!(other.unknown, Unknown::All) || !known {
                continue;
            }
            let diffs = schema_differences(&input.schema, &other.schema);
            if !diffs.is_empty() {
                self.err(
                    Diagnostic::error(
                        "flow::check::union-schema",
                        format!("`{}` has another schema than the stream it is merged with", n.text),
                        n.span,
                    )
                    .with_label(diffs.join("; "))
                    .with_help("a union needs the same field names and types in the same order: `select` them first"),
                );
                ok = false;
            }
            if other.has_watermark != input.has_watermark {
                self.err(
                    Diagnostic::error(
                        "flow::check::union-watermark",
                        format!("`{}` and the stream it is merged with differ in watermarks", n.text),
                        n.span,
                    )
                    .with_label(if other.has_watermark { "this one has watermarks" } else { "this one has none" })
                    .with_help(
                        "the union's watermark is the least of its inputs': give every input a `watermark`, or none",
                    ),
                );
                ok = false;
            }
        }
        // A field is nullable after the union if it is in any input (Flink
        // SQL's UNION ALL of `BIGINT NOT NULL` and `BIGINT` is `BIGINT`),
        // and so are an array's elements (`array<long>` and `array<long?>`
        // give `array<long?>`, Flink SQL's `ARRAY<BIGINT>`).
        let mut schema = input.schema.clone();
        if ok {
            for (other, _) in &others {
                for (f, o) in schema.fields.iter_mut().zip(&other.schema.fields) {
                    f.nullable |= o.nullable;
                    f.ty = f.ty.join_nulls(o.ty).unwrap_or(f.ty);
                }
            }
        }
        let mut mine: Vec<Option<usize>> = others.iter().map(|(o, _)| o.op).collect();
        let kind = (ok && mine.iter().all(Option::is_some)).then_some(OperatorKind::Union);
        // It reads records of the widened schema from every input.
        let widened = StreamEnd { schema: schema.clone(), ..input.clone() };
        let op = self.add_op(
            kind,
            "Union".into(),
            attrs,
            Some(&widened),
            Partitioning::Forward,
            schema.clone(),
            span,
            settings,
        );
        if let Some(to) = op {
            for from in mine.drain(..).flatten() {
                self.edges.push(LogicalEdge { from, to, partitioning: Partitioning::Forward, input: 0 });
            }
        }
        let mut end = input.clone();
        end.op = op;
        end.span = span;
        end.schema = schema;
        for (o, _) in others {
            if matches!(o.unknown, Unknown::All) {
                end.unknown = Unknown::All;
            }
        }
        end
    }
}

/// How `other` differs from `want`, one phrase per difference.
fn schema_differences(want: &Schema, other: &Schema) -> Vec<String> {
    let mut out = Vec::new();
    for f in &want.fields {
        match other.index_of(&f.name) {
            None => out.push(format!("no field `{}`", f.name)),
            // `array<long>` beside `array<long?>`: widened, as nullability.
            Some(i) if other.fields[i].ty.join_nulls(f.ty).is_none() => {
                out.push(format!("`{}` is {}, not {}", f.name, other.fields[i].ty, f.ty))
            }
            _ => {}
        }
    }
    for f in &other.fields {
        if want.index_of(&f.name).is_none() {
            out.push(format!("extra field `{}`", f.name));
        }
    }
    if out.is_empty() && want.fields.iter().map(|f| &f.name).ne(other.fields.iter().map(|f| &f.name)) {
        out.push("the fields are in another order".to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(fields: &[(&str, DataType)]) -> Schema {
        Schema { name: None, fields: fields.iter().map(|(n, t)| Field::new(*n, *t)).collect() }
    }

    #[test]
    fn schema_differences_name_each_one() {
        let a = schema(&[("id", DataType::Long), ("page", DataType::String)]);
        let b = schema(&[("id", DataType::Int), ("url", DataType::String)]);
        assert_eq!(schema_differences(&a, &b), ["`id` is int, not long", "no field `page`", "extra field `url`"]);
        let c = schema(&[("page", DataType::String), ("id", DataType::Long)]);
        assert_eq!(schema_differences(&a, &c), ["the fields are in another order"]);
        assert!(schema_differences(&a, &a).is_empty());
    }

    #[test]
    fn arrays_differing_in_element_nulls_are_alike() {
        let strict = DataType::Array(Elem::LONG);
        let loose = DataType::Array(Elem::LONG.with_nulls(true));
        let a = schema(&[("xs", strict)]);
        let b = schema(&[("xs", loose)]);
        assert!(schema_differences(&a, &b).is_empty());
        assert!(schema_differences(&b, &a).is_empty());
        let c = schema(&[("xs", DataType::Array(Elem::STRING))]);
        assert_eq!(schema_differences(&a, &c), ["`xs` is array<string>, not array<long>"]);
    }
}
