//! A Kafka sink's `key: user` / `key: [user, region]` (the message key:
//! one string field as its text, else the JSON of the fields, as Flink's
//! `'key.fields'` with `'key.format' = 'json'`) and `timestamp: ts` (the
//! record timestamp, as Flink SQL's writable `timestamp` metadata) and
//! `headers: [trace, region]` (string fields, each a message header named
//! as the field, as Flink SQL's writable `headers` metadata; `["trace-id",
//! trace]` names a header otherwise, each name once).

use super::stream::{StreamEnd, Unknown};
use super::Checker;
use crate::consts::Const;
use crate::ir::{DataType, Schema};
use flowc_dsl::diagnostic::suggest;
use flowc_dsl::{Diagnostic, Span};
use std::collections::HashMap;

impl Checker {
    /// The fields of `key:` (empty without it), `None` if it does not check.
    pub(super) fn sink_key(&mut self, props: &HashMap<String, (Const, Span)>, input: &StreamEnd) -> Option<Vec<usize>> {
        let Some((value, span)) = props.get("key") else { return Some(Vec::new()) };
        // A retract stream's Kafka sink is refused (`upsert_sink`).
        if let Some(upsert) = self.upsert_key(input).filter(|u| !u.is_retract()) {
            let origin = upsert.origin;
            self.err(
                Diagnostic::error("flow::check::sink-key", "an upsert stream's message key is its key", *span)
                    .with_label("`key` cannot be set here")
                    .with_secondary(origin, "the stream's key comes from here")
                    .with_help("remove `key`: the upsert sink writes the key fields as the message key"),
            );
            return None;
        }
        let names: Vec<&Const> = match value {
            Const::List(items) if items.is_empty() => {
                self.err(
                    Diagnostic::error("flow::check::sink-key", "`key` names no field", *span)
                        .with_label("empty")
                        .with_help("name one field, `key: user`, or several, `key: [user, region]`; or remove `key`"),
                );
                return None;
            }
            Const::List(items) => items.iter().collect(),
            v => vec![v],
        };
        self.sink_fields(&names, "key", *span, input)
    }

    /// The fields `names` of the setting `key` names, each once; `None`
    /// if one is no field or repeated (all are reported).
    fn sink_fields(&mut self, names: &[&Const], key: &str, span: Span, input: &StreamEnd) -> Option<Vec<usize>> {
        let mut out = Vec::new();
        let mut ok = true;
        for n in names {
            match self.sink_field(n, key, span, input) {
                Some(Some(i)) if out.contains(&i) => {
                    let code = if key == "key" { "flow::check::sink-key" } else { "flow::check::sink-headers" };
                    self.err(
                        Diagnostic::error(code, format!("`{key}` names `{n}` twice"), span)
                            .with_label("repeated field"),
                    );
                    ok = false;
                }
                Some(Some(i)) => out.push(i),
                Some(None) => {}
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    /// The field of `timestamp:` (a timestamp), `Some(None)` without it.
    pub(super) fn sink_timestamp(
        &mut self,
        props: &HashMap<String, (Const, Span)>,
        input: &StreamEnd,
    ) -> Option<Option<usize>> {
        let Some((value, span)) = props.get("timestamp") else { return Some(None) };
        let i = self.sink_field(value, "timestamp", *span, input)?;
        if let Some(i) = i {
            let f = &input.schema.fields[i];
            if f.ty != DataType::Timestamp {
                let d = Diagnostic::error(
                    "flow::check::sink-timestamp",
                    format!("`timestamp` takes a timestamp field, and `{}` is a {}", f.name, f.ty),
                    *span,
                )
                .with_label("not a timestamp")
                .with_help(format!("`map` it first: `ts: cast({} as timestamp)` (epoch milliseconds)", f.name));
                self.err(d);
                return None;
            }
        }
        Some(i)
    }

    /// The fields of `headers:` (string fields; empty without it) and the
    /// headers' names (empty where each is named as its field), `None` if
    /// it does not check.
    pub(super) fn sink_headers(
        &mut self,
        props: &HashMap<String, (Const, Span)>,
        input: &StreamEnd,
    ) -> Option<(Vec<usize>, Vec<String>)> {
        let Some((value, span)) = props.get("headers") else { return Some((Vec::new(), Vec::new())) };
        let span = *span;
        let entries: Vec<&Const> = match value {
            // `["trace-id", trace]` alone is a list of a string and a field.
            Const::List(items) if matches!(items.as_slice(), [Const::Str(_), Const::Symbol(_)]) => {
                self.err(
                    Diagnostic::error(
                        "flow::check::sink-headers",
                        format!("`headers` takes fields, not {value}"),
                        span,
                    )
                    .with_label("a list of a string and a field")
                    .with_help(format!("one header named otherwise is a pair in the list: `headers: [{value}]`")),
                );
                return None;
            }
            Const::List(items) => items.iter().collect(),
            v => vec![v],
        };
        let (mut fields, mut names) = (Vec::new(), Vec::new());
        let mut ok = true;
        for entry in entries {
            // `["trace-id", trace]`: a header named other than its field.
            let (name, field) = match entry {
                Const::List(pair) => {
                    match pair.as_slice() {
                        [Const::Str(name), field @ Const::Symbol(_)] if !name.is_empty() => (Some(name.clone()), field),
                        _ => {
                            self.err(
                            Diagnostic::error(
                                "flow::check::sink-headers",
                                format!("`headers` takes fields, or `[\"name\", field]` pairs, not {entry}"),
                                span,
                            )
                            .with_label("not a field or a named header")
                            .with_help("name a header other than its field with a pair: `headers: [[\"trace-id\", trace]]`"),
                        );
                            ok = false;
                            continue;
                        }
                    }
                }
                field => (None, field),
            };
            match self.sink_field(field, "headers", span, input) {
                Some(Some(i)) => {
                    fields.push(i);
                    names.push(name.unwrap_or_else(|| input.schema.fields[i].name.clone()));
                }
                Some(None) => {}
                None => ok = false,
            }
        }
        let mut repeated: Vec<&String> = Vec::new();
        for (k, name) in names.iter().enumerate() {
            if names[..k].contains(name) && !repeated.contains(&name) {
                repeated.push(name);
                self.err(
                    Diagnostic::error("flow::check::sink-headers", format!("`headers` names the header `{name}` twice"), span)
                        .with_label("repeated header name")
                        .with_help(format!(
                            "a message gets each header once: leave one out, or name it otherwise with a pair, `[\"{name}-2\", {}]`",
                            input.schema.fields[fields[k]].name
                        )),
                );
                ok = false;
            }
        }
        let mut distinct = fields.clone();
        distinct.sort_unstable();
        distinct.dedup();
        for f in distinct.iter().map(|i| &input.schema.fields[*i]).filter(|f| f.ty != DataType::String) {
            let d = Diagnostic::error(
                "flow::check::sink-headers",
                format!("`headers` takes string fields, and `{}` is a {}", f.name, f.ty),
                span,
            )
            .with_label("not a string")
            .with_help(format!("`map` it first: `{0}: cast({0} as string)`", f.name));
            self.err(d);
            ok = false;
        }
        let as_fields = fields.iter().zip(&names).all(|(i, n)| input.schema.fields[*i].name == *n);
        if as_fields {
            names.clear();
        }
        ok.then_some((fields, names))
    }

    /// A field of the input named by a setting: `Some(None)` when the
    /// field's existence is unknown after an error upstream.
    fn sink_field(&mut self, v: &Const, key: &str, span: Span, input: &StreamEnd) -> Option<Option<usize>> {
        let name = match v {
            Const::Symbol(s) => s,
            Const::Str(s) => {
                self.err(
                    Diagnostic::error(
                        "flow::check::setting-value",
                        format!("`{key}` takes field names, not strings"),
                        span,
                    )
                    .with_label(format!("this is {v}"))
                    .with_help(format!("write the field's name without quotes: `{key}: {s}`")),
                );
                return None;
            }
            v => {
                self.bad_prop(key, "a field name (or for `key` and `headers`, a list of them)", v, span);
                return None;
            }
        };
        if let Some(i) = input.schema.index_of(name) {
            return Some(Some(i));
        }
        match &input.unknown {
            Unknown::All => return Some(None),
            Unknown::Fields(f) if f.contains(name) => return Some(None),
            _ => {}
        }
        self.err(unknown_field(name, key, span, &input.schema));
        None
    }
}

fn unknown_field(name: &str, key: &str, span: Span, schema: &Schema) -> Diagnostic {
    let d = Diagnostic::error("flow::check::unknown-field", format!("`{key}` names `{name}`, which is no field"), span)
        .with_label(format!("the records are {schema}"));
    match suggest(name, schema.fields.iter().map(|f| f.name.as_str())) {
        Some(s) => d.with_help(format!("did you mean `{s}`?")),
        None => d.with_help("name a field of the records that reach the sink"),
    }
}
