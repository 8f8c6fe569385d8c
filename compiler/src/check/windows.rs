//! Windows: the `window` stage's kind and settings, and the windowed
//! `aggregate` that follows it.

use super::{Checker, StreamEnd};
use crate::consts::Const;
use crate::ir::*;
use crate::logical::{JobSettings, Partitioning};
use crate::typing::{Scope, Typer};
use flowc_dsl::ast::{self, Attrs, Connector};
use flowc_dsl::diagnostic::suggest;
use flowc_dsl::{Diagnostic, Span};
use std::collections::HashMap;

impl Checker {
    pub(super) fn window_spec(&mut self, c: &Connector, input: &StreamEnd) -> Option<WindowSpec> {
        let kind = c.kind.text.as_str();
        let allowed: &[&str] = match kind {
            "tumbling" => &["size", "time"],
            "sliding" => &["size", "slide", "time"],
            other => {
                let mut d =
                    Diagnostic::error("flow::check::window-kind", format!("unknown window `{other}`"), c.kind.span)
                        .with_label("not a window kind");
                d = match suggest(other, ["tumbling", "sliding"]) {
                    Some(s) => d.with_help(format!("did you mean `{s}`?")),
                    None => d.with_help("windows are `tumbling { size: … }` and `sliding { size: …, slide: … }`"),
                };
                self.err(d);
                return None;
            }
        };
        if let Some(a) = c.attrs.items.first() {
            self.err(
                Diagnostic::error(
                    "flow::check::window-attribute",
                    "put `name`, `uid` and `parallelism` on the `aggregate`",
                    a.span(),
                )
                .with_label("a window and its aggregate are one operator"),
            );
        }
        let props = self.props(c.props.as_ref(), allowed, "window");
        let whole = c.props.as_ref().map_or(c.span, |p| p.span);
        let size = match props.get("size") {
            Some((Const::Duration(ms), _)) if *ms > 0 => *ms,
            Some((v, s)) => {
                self.bad_prop("size", "a positive duration", v, *s);
                return None;
            }
            None => {
                self.err(
                    Diagnostic::error("flow::check::missing-setting", "the window has no `size`", whole)
                        .with_label("`size` missing")
                        .with_help("for example `{ size: 15s }`"),
                );
                return None;
            }
        };
        let time = match props.get("time") {
            None => TimeDomain::EventTime,
            Some((Const::Symbol(s), _)) if s == "event" => TimeDomain::EventTime,
            Some((Const::Symbol(s), _)) if s == "processing" => TimeDomain::ProcessingTime,
            Some((v, s)) => {
                self.bad_prop("time", "`event` or `processing`", v, *s);
                return None;
            }
        };
        if time == TimeDomain::EventTime && !input.has_watermark {
            self.err(
                Diagnostic::error("flow::check::no-watermark", "an event-time window needs watermarks", c.span)
                    .with_label("no `watermark` stage before this window")
                    .with_help("add `| watermark <timestamp field> { out_of_orderness: 200ms }` after the source, or use `time: processing`"),
            );
            return None;
        }
        let kind = if kind == "sliding" {
            let slide = match props.get("slide") {
                Some((Const::Duration(ms), _)) if *ms > 0 => *ms,
                Some((v, s)) => {
                    self.bad_prop("slide", "a positive duration", v, *s);
                    return None;
                }
                None => {
                    self.err(
                        Diagnostic::error("flow::check::missing-setting", "a sliding window needs `slide`", whole)
                            .with_label("`slide` missing")
                            .with_help("for example `{ size: 1m, slide: 10s }`"),
                    );
                    return None;
                }
            };
            if slide > size || size % slide != 0 {
                let s = props.get("slide").map_or(whole, |(_, s)| *s);
                self.err(
                    Diagnostic::error(
                        "flow::check::window-slide",
                        format!("the slide ({slide}ms) must divide the size ({size}ms)"),
                        s,
                    )
                    .with_label("does not divide the size")
                    .with_help("each record then belongs to exactly size/slide windows"),
                );
                return None;
            }
            WindowKind::Sliding { size_ms: size, slide_ms: slide }
        } else {
            WindowKind::Tumbling { size_ms: size }
        };
        Some(WindowSpec { kind, time })
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn window_aggregate(
        &mut self,
        input: &StreamEnd,
        key: Vec<usize>,
        window: WindowSpec,
        wc: &Connector,
        fields: &[ast::RecordField],
        attrs: &Attrs,
        span: Span,
        settings: &JobSettings,
    ) -> Option<StreamEnd> {
        let mut typer = Typer::new(&self.params);
        let mut aggs = Vec::new();
        let mut out_fields = Vec::new();
        let mut output = Vec::new();
        let mut seen: HashMap<&str, Span> = HashMap::new();
        let mut ok = true;
        for rf in fields {
            if let Some(first) = seen.insert(rf.name.text.as_str(), rf.name.span) {
                typer.diagnostics.push(
                    Diagnostic::error(
                        "flow::check::duplicate-field",
                        format!("field `{}` is given twice", rf.name.text),
                        rf.name.span,
                    )
                    .with_label("again here")
                    .with_secondary(first, "first here"),
                );
                ok = false;
                continue;
            }
            let value = rf
                .value
                .clone()
                .unwrap_or(ast::Expr { kind: ast::ExprKind::Ident(rf.name.text.clone()), span: rf.name.span });
            let mut scope = Scope::Aggregate { input: &input.schema, key: &key, aggs: &mut aggs };
            match typer.expr(&value, &mut scope) {
                Ok((e, ty)) => {
                    let mut field = Field::new(rf.name.text.clone(), ty);
                    if let Expr::Key(k) = e {
                        field.timestamp_format = input.schema.fields[key[k]].timestamp_format.clone();
                    }
                    out_fields.push(field);
                    output.push(e);
                }
                Err(_) => ok = false,
            }
        }
        self.diags.extend(typer.diagnostics);
        if !ok {
            return None;
        }
        if out_fields.is_empty() {
            self.err(
                Diagnostic::error("flow::check::empty-aggregate", "`aggregate` needs at least one field", span)
                    .with_label("empty"),
            );
            return None;
        }
        let schema = Schema { name: None, fields: out_fields };
        let agg_names: Vec<&str> = aggs.iter().map(|a| a.func.name()).collect();
        // As Flink names it: `Window(TumblingEventTimeWindows(15000), count)`.
        let window_text = window.to_string();
        let window_text = window_text.strip_suffix(')').unwrap_or(&window_text);
        let default_name = format!(
            "{window_text}, {})",
            if agg_names.is_empty() { "project".to_string() } else { agg_names.join(", ") }
        );
        let kind =
            OperatorKind::WindowAggregate(WindowAggregate { key: key.clone(), window, aggregates: aggs, output });
        let op = self.add_op(
            kind,
            default_name,
            attrs,
            Some(input),
            Partitioning::Hash { key },
            schema.clone(),
            wc.span.to(span),
            settings,
        );
        Some(StreamEnd { op, schema, has_watermark: input.has_watermark, span })
    }
}

/// `key_by` not followed by a `window`: at the stage that came instead, or
/// at the `key_by` when the pipeline ends there.
pub(super) fn key_by_without_window(key_by: Span, instead: Option<Span>) -> Diagnostic {
    let (code, message) = ("flow::check::key-by-without-window", "`key_by` must be followed by a `window`");
    let d = match instead {
        Some(stage) => Diagnostic::error(code, message, stage)
            .with_label("expected `| window …` here")
            .with_secondary(key_by, "keyed here"),
        None => Diagnostic::error(code, message, key_by).with_label("the pipeline ends after this `key_by`"),
    };
    d.with_help("flowc computes keyed state in windows: `| key_by f | window tumbling { size: 1m } | aggregate { … }`")
}

/// A `window` not followed by `aggregate`: at the stage that came instead,
/// or at the window when the pipeline ends there.
pub(super) fn window_without_aggregate(window: Span, instead: Option<Span>) -> Diagnostic {
    let (code, message) = ("flow::check::window-without-aggregate", "a window must be followed by `aggregate`");
    let d = match instead {
        Some(stage) => Diagnostic::error(code, message, stage)
            .with_label("expected `| aggregate { … }` here")
            .with_secondary(window, "the window"),
        None => Diagnostic::error(code, message, window).with_label("the pipeline ends after this window"),
    };
    d.with_help("a window groups records for the `aggregate` that follows it: `| window … | aggregate { n: count() }`")
}
