//! `schema Name { field: type, … }` declarations, and the `schema: Name`
//! a source names.

use super::Checker;
use crate::consts::Const;
use crate::ir::*;
use flowc_dsl::ast;
use flowc_dsl::diagnostic::suggest;
use flowc_dsl::{Diagnostic, Span};
use std::collections::HashMap;

impl Checker {
    pub(super) fn schema(&mut self, s: &ast::SchemaDecl) {
        if let Some((_, first)) = self.schemas.get(&s.name.text) {
            let first = *first;
            self.err(
                Diagnostic::error(
                    "flow::check::duplicate-schema",
                    format!("schema `{}` is declared twice", s.name.text),
                    s.name.span,
                )
                .with_label("declared again here")
                .with_secondary(first, "first declared here"),
            );
            return;
        }
        let mut fields: Vec<Field> = Vec::new();
        let mut spans: HashMap<&str, Span> = HashMap::new();
        for f in &s.fields {
            if let Some(first) = spans.insert(f.name.text.as_str(), f.name.span) {
                self.err(
                    Diagnostic::error(
                        "flow::check::duplicate-field",
                        format!("field `{}` appears twice", f.name.text),
                        f.name.span,
                    )
                    .with_label("again here")
                    .with_secondary(first, "first here"),
                );
                continue;
            }
            let (ty, format) = match &f.ty {
                ast::FieldType::String => (DataType::String, None),
                ast::FieldType::Int => (DataType::Int, None),
                ast::FieldType::Long => (DataType::Long, None),
                ast::FieldType::Double => (DataType::Double, None),
                ast::FieldType::Bool => (DataType::Bool, None),
                ast::FieldType::Timestamp(None) => {
                    (DataType::Timestamp, Some(TimestampFormat::Pattern(DEFAULT_TIMESTAMP_PATTERN.to_string())))
                }
                ast::FieldType::Timestamp(Some(ast::TimestampFormat::EpochMillis)) => {
                    (DataType::Timestamp, Some(TimestampFormat::EpochMillis))
                }
                ast::FieldType::Timestamp(Some(ast::TimestampFormat::Pattern(p))) => {
                    if let Err(problem) = crate::timefmt::check_pattern(&p.value) {
                        self.err(
                            Diagnostic::error(
                                "flow::check::timestamp-pattern",
                                format!("bad timestamp pattern: {}", problem.message),
                                p.span,
                            )
                            .with_label(problem.label)
                            .with_help(problem.help),
                        );
                    }
                    (DataType::Timestamp, Some(TimestampFormat::Pattern(p.value.clone())))
                }
            };
            fields.push(Field { name: f.name.text.clone(), ty, timestamp_format: format, nullable: f.nullable });
        }
        if fields.is_empty() {
            self.err(
                Diagnostic::error(
                    "flow::check::empty-schema",
                    format!("schema `{}` has no fields", s.name.text),
                    s.span,
                )
                .with_label("empty"),
            );
        }
        self.schemas.insert(s.name.text.clone(), (Schema { name: Some(s.name.text.clone()), fields }, s.name.span));
    }

    pub(super) fn schema_prop(&mut self, props: &HashMap<String, (Const, Span)>, whole: Span) -> Option<Schema> {
        match props.get("schema") {
            Some((Const::Symbol(s), sp)) => match self.schemas.get(s) {
                Some((schema, _)) => Some(schema.clone()),
                None => {
                    let mut d = Diagnostic::error("flow::check::unknown-schema", format!("unknown schema `{s}`"), *sp)
                        .with_label("no schema of this name");
                    if let Some(sug) = suggest(s, self.schemas.keys().map(String::as_str)) {
                        d = d.with_help(format!("did you mean `{sug}`?"));
                    } else {
                        d = d.with_help(format!("declare it: `schema {s} {{ field: type, … }}`"));
                    }
                    self.err(d);
                    None
                }
            },
            Some((v, sp)) => {
                self.bad_prop("schema", "a schema name", v, *sp);
                None
            }
            None => {
                self.err(
                    Diagnostic::error("flow::check::missing-setting", "the source has no `schema`", whole)
                        .with_label("needs `schema: Name`")
                        .with_help("declare the records with `schema Name { … }` and name it here"),
                );
                None
            }
        }
    }
}
