//! `schema Name { field: type, … }` declarations, and the `schema: Name`
//! a source names. A field may read Kafka metadata instead of the value
//! (`user: string from key`): only a Kafka source reads such a schema.

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
        let mut metadata_spans = Vec::new();
        self.schema_fields(&s.fields, "", false, &mut fields, &mut metadata_spans);
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
        if !metadata_spans.is_empty() {
            self.metadata_spans.insert(s.name.text.clone(), metadata_spans);
        }
        self.schemas.insert(s.name.text.clone(), (Schema { name: Some(s.name.text.clone()), fields }, s.name.span));
    }

    /// The fields `declared` (of a nested record when `prefix` is not
    /// empty: `payload.user.`, and nullable as a whole when `nullable`),
    /// flattened into `out`; the spans of their Kafka metadata (`from …`)
    /// into `metadata_spans`.
    fn schema_fields(
        &mut self,
        declared: &[ast::SchemaField],
        prefix: &str,
        nullable: bool,
        out: &mut Vec<Field>,
        metadata_spans: &mut Vec<Span>,
    ) {
        let mut spans: HashMap<&str, Span> = HashMap::new();
        for f in declared {
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
            let name = format!("{prefix}{}", f.name.text);
            let (ty, format) = match &f.ty {
                ast::FieldType::Record(inner) => {
                    if inner.is_empty() {
                        self.err(
                            Diagnostic::error(
                                "flow::check::empty-schema",
                                format!("the nested record `{name}` has no fields"),
                                f.ty_span,
                            )
                            .with_label("empty")
                            .with_help("list its fields, `{ id: long, name: string? }`, or leave it out: unknown JSON fields are skipped"),
                        );
                    }
                    self.schema_fields(inner, &format!("{name}."), nullable || f.nullable, out, metadata_spans);
                    continue;
                }
                ast::FieldType::Array(element) => match self.array_element(&name, element) {
                    Some((e, format)) => (DataType::Array(e), format),
                    None => continue,
                },
                scalar => self.scalar_type(scalar),
            };
            let metadata = f.metadata.as_ref().and_then(|m| {
                metadata_spans.push(m.span);
                self.field_metadata(f, m, ty)
            });
            out.push(Field {
                name,
                ty,
                timestamp_format: format,
                nullable: nullable || f.nullable,
                nested: !prefix.is_empty(),
                metadata,
                qualifiers: Default::default(),
            });
        }
    }

    /// The type of a field that is neither a record nor an array, with how
    /// a timestamp is written.
    fn scalar_type(&mut self, t: &ast::FieldType) -> (DataType, Option<TimestampFormat>) {
        match t {
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
            // Records and arrays are taken apart by the caller.
            ast::FieldType::String | ast::FieldType::Record(_) | ast::FieldType::Array(_) => (DataType::String, None),
        }
    }

    /// The element type of `array<…>` field `name`: a scalar (a timestamp
    /// with its format), with `?` one whose elements may be null; else an
    /// error and `None`.
    fn array_element(&mut self, name: &str, e: &ast::ArrayElement) -> Option<(Elem, Option<TimestampFormat>)> {
        let refuse = |what: &str, label: &str, help: String| {
            Diagnostic::error("flow::check::array-element", format!("`{name}`: {what}"), e.span)
                .with_label(label.to_string())
                .with_help(help)
        };
        let d = match &e.ty {
            ast::FieldType::Record(_) => refuse(
                "arrays of records are not supported yet",
                "a record element",
                "an array's elements are `string`, `int`, `long`, `double`, `bool` or `timestamp`; leave this field out of the schema (unknown JSON fields are skipped)".to_string(),
            ),
            ast::FieldType::Array(_) => refuse(
                "arrays of arrays are not supported yet",
                "an array element",
                "an array's elements are `string`, `int`, `long`, `double`, `bool` or `timestamp`".to_string(),
            ),
            scalar => {
                let (ty, format) = self.scalar_type(scalar);
                return Elem::of(ty).map(|elem| (elem.with_nulls(e.nullable), format));
            }
        };
        self.err(d);
        None
    }

    /// `from key | timestamp | partition | offset | header("name")`: what
    /// it reads, if the name and the field's type fit.
    fn field_metadata(&mut self, f: &ast::SchemaField, m: &ast::FieldMetadata, ty: DataType) -> Option<Metadata> {
        const NAMES: [&str; 6] = ["key", "timestamp", "partition", "offset", "topic", "header"];
        let (metadata, want, declare) = match (m.name.text.as_str(), &m.header) {
            ("key", None) => (Metadata::Key, DataType::String, "string"),
            ("timestamp", None) => (Metadata::Timestamp, DataType::Timestamp, "timestamp"),
            ("partition", None) => (Metadata::Partition, DataType::Int, "int"),
            ("offset", None) => (Metadata::Offset, DataType::Long, "long"),
            ("topic", None) => (Metadata::Topic, DataType::String, "string"),
            ("header", Some(h)) if !h.value.is_empty() => {
                (Metadata::Header(h.value.clone()), DataType::String, "string")
            }
            ("header", Some(h)) => {
                self.err(
                    Diagnostic::error("flow::check::metadata", "a header's name cannot be empty", h.span)
                        .with_label("empty")
                        .with_help("name the header: `from header(\"trace-id\")`"),
                );
                return None;
            }
            ("header", None) => {
                self.err(
                    Diagnostic::error("flow::check::metadata", "`from header` needs the header's name", m.name.span)
                        .with_label("which header?")
                        .with_help(format!("write `{}: string? from header(\"trace-id\")`", f.name.text)),
                );
                return None;
            }
            (other, _) => {
                let mut d = Diagnostic::error(
                    "flow::check::metadata",
                    format!("`{other}` is not Kafka metadata a field can read"),
                    m.name.span,
                )
                .with_label("unknown metadata");
                d = match suggest(other, NAMES.iter().copied()) {
                    Some(s) => d.with_help(format!("did you mean `{s}`?")),
                    None => d.with_help(
                        "a field can read `from key`, `from timestamp`, `from partition`, `from offset`, `from topic` or `from header(\"name\")`",
                    ),
                };
                self.err(d);
                return None;
            }
        };
        if ty != want {
            let q = if f.nullable { "?" } else { "" };
            self.err(
                Diagnostic::error(
                    "flow::check::metadata",
                    format!("Kafka's {metadata} is {}, and field `{}` is {}", a(want), f.name.text, a(ty)),
                    f.ty_span,
                )
                .with_label(format!("should be `{declare}{q}`"))
                .with_secondary(m.span, "read from here")
                .with_help(format!(
                    "declare `{}: {declare}{q} {}`, and `cast` it after the source if you need {}",
                    f.name.text,
                    flowc_dsl::format::metadata(m),
                    a(ty)
                )),
            );
            return None;
        }
        Some(metadata)
    }

    /// A schema with Kafka metadata fields, read by a source that is not
    /// Kafka (`kind`): an error at each `from …`.
    pub(super) fn metadata_outside_kafka(&mut self, schema: &Schema, kind: &str, at: Span) {
        let Some(name) = &schema.name else { return };
        let Some(spans) = self.metadata_spans.get(name).cloned() else { return };
        for span in spans {
            self.err(
                Diagnostic::error(
                    "flow::check::metadata-not-kafka",
                    format!("schema `{name}` reads Kafka metadata, and a {kind} source has none"),
                    span,
                )
                .with_label("only a Kafka source has this")
                .with_secondary(at, format!("`{name}` is read by this {kind} source"))
                .with_help(
                    "remove `from …` to read the field from the record, or declare another schema for this source",
                ),
            );
        }
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

/// A type with its article: "an int", "a long".
fn a(ty: DataType) -> String {
    let name = ty.to_string();
    if name.starts_with(['a', 'e', 'i', 'o', 'u']) {
        format!("an {name}")
    } else {
        format!("a {name}")
    }
}
