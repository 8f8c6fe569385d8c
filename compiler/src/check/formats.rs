//! Record formats of connectors: `format: json | csv | raw` and the CSV
//! settings `header`, `delimiter`, `quote` and `null_literal` (issue 11 §5).

use super::Checker;
use crate::consts::Const;
use crate::ir::{CsvFormat, DataType, Format, Schema};
use flowc_dsl::{Diagnostic, Span};
use std::collections::HashMap;

impl Checker {
    /// The format a connector's settings give, checked against the
    /// records' `schema` (when known). `files`: whether `header` is a
    /// setting here (files have a first line; a Kafka message does not).
    pub(super) fn format_prop(
        &mut self,
        props: &HashMap<String, (Const, Span)>,
        options: &[&str],
        schema: Option<&Schema>,
        files: bool,
    ) -> Option<Format> {
        let name = self.symbol_prop(props, "format", options, "json")?;
        let csv_keys: &[&str] = if files {
            &["header", "delimiter", "quote", "null_literal"]
        } else {
            &["delimiter", "quote", "null_literal"]
        };
        if name != "csv" {
            let mut ok = true;
            for key in csv_keys {
                if let Some((_, span)) = props.get(*key) {
                    ok = false;
                    self.err(
                        Diagnostic::error(
                            "flow::check::csv-setting-without-csv",
                            format!("`{key}` is a setting of `format: csv`, and the format is {name}"),
                            *span,
                        )
                        .with_label("has no effect")
                        .with_help("add `format: csv`, or remove this setting"),
                    );
                }
            }
            if !ok {
                return None;
            }
        }
        match name.as_str() {
            "csv" => {
                let mut csv = CsvFormat::default();
                let mut ok = true;
                let arrays: Vec<String> = schema
                    .map(|s| {
                        s.fields.iter().filter(|f| f.ty.is_array()).map(|f| format!("`{}: {}`", f.name, f.ty)).collect()
                    })
                    .unwrap_or_default();
                if let (false, Some((_, span))) = (arrays.is_empty(), props.get("format")) {
                    self.err(
                        Diagnostic::error(
                            "flow::check::csv-array",
                            format!("CSV has no arrays, and the records have {}", arrays.join(", ")),
                            *span,
                        )
                        .with_label("a CSV field holds one value")
                        .with_help(
                            "use `format: json`, leave the array out with `select`, or give each element a row of its own with `| unnest <array> as <name>` first",
                        ),
                    );
                    ok = false;
                }
                if let Some((v, span)) = props.get("header") {
                    match v {
                        Const::Bool(b) => csv.header = *b,
                        v => {
                            self.bad_prop("header", "`true` or `false`", v, *span);
                            ok = false;
                        }
                    }
                }
                for (key, slot) in [("delimiter", &mut csv.delimiter), ("quote", &mut csv.quote)] {
                    let Some((v, span)) = props.get(key) else { continue };
                    match v {
                        Const::Str(s) if s.len() == 1 && s.is_ascii() && !matches!(s.as_str(), "\n" | "\r") => {
                            *slot = s.as_bytes()[0]
                        }
                        Const::Str(_) => {
                            self.err(
                                Diagnostic::error(
                                    "flow::check::setting-value",
                                    format!("`{key}` takes one ASCII character other than a line break"),
                                    *span,
                                )
                                .with_label(format!("this is {v}"))
                                .with_help(if key == "delimiter" {
                                    "for tabs write `\"\\t\"`"
                                } else {
                                    "such as `\"\\\"\"` or `\"'\"`"
                                }),
                            );
                            ok = false;
                        }
                        v => {
                            self.bad_prop(key, "a one-character string", v, *span);
                            ok = false;
                        }
                    }
                }
                match props.get("null_literal") {
                    None => {}
                    Some((Const::Str(s), span))
                        if s.contains(['\n', '\r']) || s.as_bytes().contains(&csv.delimiter) =>
                    {
                        self.err(
                            Diagnostic::error(
                                "flow::check::setting-value",
                                "`null_literal` cannot hold the delimiter or a line break",
                                *span,
                            )
                            .with_label("a field could never be this")
                            .with_help("Flink's usual choices are `\"\\\\N\"` and `\"null\"`"),
                        );
                        ok = false;
                    }
                    Some((Const::Str(s), _)) => csv.null_literal = Some(s.clone()),
                    Some((v, span)) => {
                        self.bad_prop("null_literal", "a string", v, *span);
                        ok = false;
                    }
                }
                if ok && csv.delimiter == csv.quote {
                    let span = props.get("quote").or(props.get("delimiter")).map(|(_, s)| *s);
                    if let Some(span) = span {
                        self.err(
                            Diagnostic::error(
                                "flow::check::setting-value",
                                "the CSV delimiter and quote are the same character",
                                span,
                            )
                            .with_label("no field could be told from the next")
                            .with_help("the defaults are `delimiter: \",\"` and `quote: \"\\\"\"`"),
                        );
                        ok = false;
                    }
                }
                ok.then_some(Format::Csv(csv))
            }
            "raw" => {
                let schema = schema?;
                let one_string = schema.fields.len() == 1 && schema.fields[0].ty == DataType::String;
                if !one_string {
                    let span = props.get("format").map(|(_, s)| *s)?;
                    self.err(
                        Diagnostic::error(
                            "flow::check::raw-schema",
                            format!(
                                "`format: raw` reads and writes one string per record, and the records are {schema}"
                            ),
                            span,
                        )
                        .with_label("needs a schema of exactly one `string` field")
                        .with_help(
                            "declare `schema Line { line: string }`, or `select` the one string field before the sink",
                        ),
                    );
                    return None;
                }
                Some(Format::Raw)
            }
            _ => Some(Format::Json),
        }
    }
}
