//! `[left] unnest tags as tag`: one record per element of an array field
//! (Flink SQL's `CROSS JOIN UNNEST(tags) AS t(tag)`; `left` is `LEFT JOIN
//! UNNEST(tags) AS t(tag) ON TRUE`).
//!
//! The output holds the input's fields in order without the array, then
//! the element: each output record would otherwise carry the whole array
//! once per element (`map { n: cardinality(tags) }` before the `unnest`
//! keeps what is needed of it). With `with ordinality [as pos]` (Flink
//! SQL's `WITH ORDINALITY`), a last field holds the element's 1-based
//! position. A stateless FORWARD stage, chained with its neighbours.

use super::stream::StreamEnd;
use super::Checker;
use crate::ir::*;
use crate::logical::{JobSettings, Partitioning};
use flowc_dsl::ast;
use flowc_dsl::diagnostic::suggest;
use flowc_dsl::{Diagnostic, Span};

impl Checker {
    pub(super) fn unnest(
        &mut self,
        input: &StreamEnd,
        u: &ast::UnnestStage,
        span: Span,
        settings: &JobSettings,
    ) -> StreamEnd {
        let mut ok = true;
        let index = if input.is_unknown_field(&u.field.text) {
            ok = false;
            None
        } else {
            match input.schema.index_of(&u.field.text) {
                Some(i) if input.schema.fields[i].ty.is_array() => Some(i),
                Some(i) => {
                    let ty = input.schema.fields[i].ty;
                    let mut d = Diagnostic::error(
                        "flow::check::unnest-not-array",
                        format!("`unnest` takes an array field, and `{}` is {ty}", u.field.text),
                        u.field.span,
                    )
                    .with_label(format!("this is {ty}"));
                    d = if ty == DataType::String {
                        d.with_help(format!(
                            "split it into one first: `| map {{ parts: split({}, \",\") }} | unnest parts as part`",
                            u.field.text
                        ))
                    } else {
                        d.with_help("declare the field `array<…>` in the schema, or make one with `array(x, …)`")
                    };
                    self.err(d);
                    ok = false;
                    None
                }
                None => {
                    let names: Vec<&str> = input.schema.fields.iter().map(|f| f.name.as_str()).collect();
                    let d = Diagnostic::error(
                        "flow::check::unknown-field",
                        format!("cannot unnest `{}`: no such field", u.field.text),
                        u.field.span,
                    )
                    .with_label("not a field of the input");
                    self.err(match suggest(&u.field.text, names.iter().copied()) {
                        Some(s) => d.with_help(format!("did you mean `{s}`?")),
                        None => d.with_help(format!("the fields are: {}", names.join(", "))),
                    });
                    ok = false;
                    None
                }
            }
        };
        if let Some(other) = input.schema.index_of(&u.alias.text).filter(|i| Some(*i) != index) {
            self.err(
                Diagnostic::error(
                    "flow::check::duplicate-field",
                    format!("the element field `{}` is already a field of the input", u.alias.text),
                    u.alias.span,
                )
                .with_label(format!("the input's field #{} is `{}`", other + 1, u.alias.text))
                .with_help(format!("name the element otherwise: `unnest {} as {}_item`", u.field.text, u.alias.text)),
            );
            ok = false;
        }
        if let Some(o) = &u.ordinality {
            let taken = input.schema.index_of(&o.text).filter(|i| Some(*i) != index).is_some();
            if taken || o.text == u.alias.text {
                let what = if taken { "a field of the input" } else { "the element's name" };
                self.err(
                    Diagnostic::error(
                        "flow::check::duplicate-field",
                        format!("the position field `{}` is already {what}", o.text),
                        o.span,
                    )
                    .with_label("named twice")
                    .with_help(format!(
                        "name the position otherwise: `unnest {} as {} with ordinality as {}_pos`",
                        u.field.text, u.alias.text, u.alias.text
                    )),
                );
                ok = false;
            }
        }
        // The output: the other fields in order, then the element (and its position).
        let mut schema = Schema { name: None, fields: Vec::new() };
        schema
            .fields
            .extend(input.schema.fields.iter().enumerate().filter(|(i, _)| Some(*i) != index).map(|(_, f)| f.clone()));
        let mut unknown = input.unknown.clone();
        unknown.remove(&u.field.text);
        match index.map(|i| &input.schema.fields[i]) {
            Some(array) => schema.fields.push(Field {
                name: u.alias.text.clone(),
                ty: array.ty.element().unwrap_or(array.ty),
                timestamp_format: array.timestamp_format.clone(),
                nullable: u.left_outer || array.ty.element_nullable(),
                nested: false,
                metadata: None,
                qualifiers: Default::default(),
            }),
            None => unknown.add([u.alias.text.clone()]),
        }
        if let Some(o) = &u.ordinality {
            // A `left` record of no element has no position.
            schema.fields.push(Field::new(o.text.clone(), DataType::Long).with_nullable(u.left_outer));
        }
        let kind = index.filter(|_| ok).map(|field| {
            OperatorKind::Unnest(Unnest { field, left_outer: u.left_outer, ordinality: u.ordinality.is_some() })
        });
        let default_name = if u.left_outer { "LeftUnnest" } else { "Unnest" };
        let op = self.add_op(
            kind,
            default_name.into(),
            &u.attrs,
            Some(input),
            Partitioning::Forward,
            schema.clone(),
            span,
            settings,
        );
        StreamEnd { op, schema, unknown, has_watermark: input.has_watermark, span }
    }
}
