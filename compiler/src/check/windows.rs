//! Event time and windows: the `watermark` stage, the `window` stage's
//! kind and settings, and the windowed `aggregate` that follows it.

use super::pipelines::{duplicate_field, field_value, Key};
use super::stream::{field_refs, StreamEnd, Unknown};
use super::Checker;
use crate::catalog::{self, Role};
use crate::consts::Const;
use crate::ir::*;
use crate::logical::{JobSettings, Partitioning};
use crate::typing::{Scope, Typer};
use flowc_dsl::ast::{self, Attrs, Connector, Props};
use flowc_dsl::diagnostic::suggest;
use flowc_dsl::{not_yet, Diagnostic, Span};
use std::collections::HashMap;

impl Checker {
    /// `watermark field { out_of_orderness: …, idleness: … }`. A watermark
    /// stage that fails still counts as one downstream, so that the
    /// event-time windows after it are not reported too.
    pub(super) fn watermark(
        &mut self,
        input: &StreamEnd,
        field: &ast::Name,
        props: Option<&Props>,
        attrs: &Attrs,
        span: Span,
        settings: &JobSettings,
    ) -> StreamEnd {
        let idx = if input.is_unknown_field(&field.text) {
            None
        } else {
            match input.schema.index_of(&field.text) {
                None => {
                    match super::paths::why_not_a_field(&input.schema, field, "take the event time from") {
                        Some(d) => self.err(d),
                        None => {
                            let mut typer = Typer::new(&self.params, &self.udfs);
                            let _ = typer.expr(
                                &ast::Expr { kind: ast::ExprKind::Ident(field.text.clone()), span: field.span },
                                &mut Scope::Record(&input.schema),
                            );
                            self.diags.extend(typer.diagnostics);
                        }
                    }
                    None
                }
                Some(i) if input.schema.fields[i].ty != DataType::Timestamp => {
                    let ty = input.schema.fields[i].ty;
                    self.err(
                        Diagnostic::error(
                            "flow::check::watermark-field",
                            format!("watermarks need a timestamp field, and `{}` is {ty}", field.text),
                            field.span,
                        )
                        .with_label(format!("this is {ty}"))
                        .with_help(
                            "declare the field as `timestamp(\"pattern\")` or `timestamp(epoch_millis)` in the schema",
                        ),
                    );
                    None
                }
                Some(i) if input.schema.fields[i].nullable => {
                    self.err(super::nulls::refused(
                        "the event time of a watermark",
                        &field.text,
                        field.span,
                        "to_timestamp(0)",
                    ));
                    None
                }
                Some(i) => Some(i),
            }
        };
        let props = self.props(props, &catalog::keys(Role::Watermark, "watermark"), "watermark");
        let ooo = match props.get("out_of_orderness") {
            None => Some(0),
            Some((Const::Duration(ms), _)) => Some(*ms),
            Some((v, s)) => {
                self.bad_prop("out_of_orderness", "a duration", v, *s);
                None
            }
        };
        let idle = match props.get("idleness") {
            None | Some((Const::None, _)) => Some(None),
            Some((Const::Duration(0), s)) => {
                self.bad_prop("idleness", "a positive duration or `none`", &Const::Duration(0), *s);
                None
            }
            Some((Const::Duration(ms), _)) => Some(Some(*ms)),
            Some((v, s)) => {
                self.bad_prop("idleness", "a duration or `none`", v, *s);
                None
            }
        };
        let future = match props.get("max_future") {
            None | Some((Const::None, _)) => Some(None),
            Some((Const::Duration(0), s)) => {
                self.bad_prop("max_future", "a positive duration or `none`", &Const::Duration(0), *s);
                None
            }
            Some((Const::Duration(ms), _)) => Some(Some(*ms)),
            Some((v, s)) => {
                self.bad_prop("max_future", "a duration or `none`", v, *s);
                None
            }
        };
        if let (Some(None), Some(n)) = (future, attrs.on_error()) {
            // Only records from the future fail in a watermark stage.
            self.err(
                Diagnostic::error("flow::check::on-error", "this `watermark` has no `max_future`", n.span)
                    .with_label("no record can fail here")
                    .with_help("`on_error` on a watermark stage is for records beyond `max_future: 1h`"),
            );
        }
        let kind = match (idx, ooo, idle, future) {
            (Some(field), Some(out_of_orderness_ms), Some(idleness_ms), Some(max_future_ms)) => {
                Some(OperatorKind::Watermark(WatermarkSpec { field, out_of_orderness_ms, idleness_ms, max_future_ms }))
            }
            _ => None,
        };
        let schema = input.schema.clone();
        let op = self.add_op(
            kind,
            "Timestamps/Watermarks".into(),
            attrs,
            Some(input),
            Partitioning::Forward,
            schema.clone(),
            span,
            settings,
        );
        StreamEnd { op, schema, unknown: input.unknown.clone(), has_watermark: true, span }
    }

    /// `window tumbling { … }` or `window sliding { … }`; every setting is
    /// checked even when one is wrong.
    pub(super) fn window_spec(&mut self, c: &Connector, input: &StreamEnd) -> Option<WindowSpec> {
        let kind = c.kind.text.as_str();
        let allowed = match catalog::kind(Role::Window, kind) {
            Some(k) => k.keys(),
            None => {
                let other = kind;
                let mut d =
                    Diagnostic::error("flow::check::window-kind", format!("unknown window `{other}`"), c.kind.span)
                        .with_label("not a window kind");
                d = match (not_yet::explain_window(other), suggest(other, catalog::kinds(Role::Window).map(|k| k.name)))
                {
                    (Some(help), _) => d.with_help(help),
                    (None, Some(s)) => d.with_help(format!("did you mean `{s}`?")),
                    (None, None) => {
                        d.with_help("windows are `tumbling { size: … }` and `sliding { size: …, slide: … }`")
                    }
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
        let props = self.props(c.props.as_ref(), &allowed, "window");
        let whole = c.props.as_ref().map_or(c.span, |p| p.span);
        let session = kind == "session";
        let size = if session {
            match props.get("gap") {
                Some((Const::Duration(ms), _)) if *ms > 0 => Some(*ms),
                Some((v, s)) => {
                    self.bad_prop("gap", "a positive duration", v, *s);
                    None
                }
                None => {
                    self.err(
                        Diagnostic::error("flow::check::missing-setting", "a session window needs `gap`", whole)
                            .with_label("`gap` missing")
                            .with_help(
                                "for example `{ gap: 30m }`: records of a key closer than that form one session",
                            ),
                    );
                    None
                }
            }
        } else {
            match props.get("size") {
                Some((Const::Duration(ms), _)) if *ms > 0 => Some(*ms),
                Some((v, s)) => {
                    self.bad_prop("size", "a positive duration", v, *s);
                    None
                }
                None => {
                    self.err(
                        Diagnostic::error("flow::check::missing-setting", "the window has no `size`", whole)
                            .with_label("`size` missing")
                            .with_help("for example `{ size: 15s }`"),
                    );
                    None
                }
            }
        };
        let time = match props.get("time") {
            None => Some(TimeDomain::EventTime),
            Some((Const::Symbol(s), _)) if s == "event" => Some(TimeDomain::EventTime),
            Some((Const::Symbol(s), _)) if s == "processing" => Some(TimeDomain::ProcessingTime),
            Some((v, s)) => {
                self.bad_prop("time", "`event` or `processing`", v, *s);
                None
            }
        };
        let mut ok = size.is_some() && time.is_some();
        if time == Some(TimeDomain::EventTime) && !input.has_watermark {
            self.err(
                Diagnostic::error("flow::check::no-watermark", "an event-time window needs watermarks", c.span)
                    .with_label("no `watermark` stage before this window")
                    .with_help("add `| watermark <timestamp field> { out_of_orderness: 200ms }` after the source, or use `time: processing`"),
            );
            ok = false;
        }
        if time == Some(TimeDomain::ProcessingTime) {
            for key in ["lateness", "late"] {
                if let Some((_, s)) = props.get(key) {
                    self.err(
                        Diagnostic::error(
                            "flow::check::lateness-in-processing-time",
                            format!("`{key}` needs an event-time window"),
                            *s,
                        )
                        .with_label("no record is late in processing time")
                        .with_help("remove it, or use `time: event` after a `watermark` stage"),
                    );
                    ok = false;
                }
            }
        }
        match props.get("lateness") {
            None | Some((Const::Duration(_), _)) => {}
            Some((v, s)) => {
                self.bad_prop("lateness", "a duration", v, *s);
                ok = false;
            }
        }
        match props.get("late") {
            None | Some((Const::Symbol(_), _)) => {}
            Some((v, s)) => {
                self.err(
                    Diagnostic::error(
                        "flow::check::setting-value",
                        format!("`late` takes the name of a new stream, not {}", v.kind()),
                        *s,
                    )
                    .with_label(format!("this is {v}"))
                    .with_help("for example `late: late_clicks`, then `from late_clicks | …` reads the late records"),
                );
                ok = false;
            }
        }
        let kind = if session {
            size.map(|gap_ms| WindowKind::Session { gap_ms })
        } else if kind == "sliding" {
            let slide = match props.get("slide") {
                Some((Const::Duration(ms), _)) if *ms > 0 => Some(*ms),
                Some((v, s)) => {
                    self.bad_prop("slide", "a positive duration", v, *s);
                    None
                }
                None => {
                    self.err(
                        Diagnostic::error("flow::check::missing-setting", "a sliding window needs `slide`", whole)
                            .with_label("`slide` missing")
                            .with_help("for example `{ size: 1m, slide: 10s }`"),
                    );
                    None
                }
            };
            match (size, slide) {
                (Some(size), Some(slide)) if slide > size || size % slide != 0 => {
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
                    None
                }
                (Some(size_ms), Some(slide_ms)) => Some(WindowKind::Sliding { size_ms, slide_ms }),
                _ => None,
            }
        } else {
            size.map(|size_ms| WindowKind::Tumbling { size_ms })
        };
        match (kind, time) {
            (Some(kind), Some(time)) if ok => Some(WindowSpec { kind, time }),
            _ => None,
        }
    }

    /// A window's `lateness` and `late` settings, already checked by
    /// [`Checker::window_spec`]: the allowed lateness, and the name (with
    /// its place) of the stream of late records.
    fn window_lateness(&self, c: Option<&Connector>) -> (u64, Option<(String, Span)>) {
        let mut lateness = 0;
        let mut late = None;
        for p in c.and_then(|c| c.props.as_ref()).map_or(&[][..], |p| &p.entries[..]) {
            match (p.key.text.as_str(), crate::consts::eval(&p.value, &self.params)) {
                ("lateness", Ok(Const::Duration(ms))) => lateness = ms,
                ("late", Ok(Const::Symbol(name))) => late = Some((name, p.value.span)),
                _ => {}
            }
        }
        (lateness, late)
    }

    /// The `aggregate` after a window: each output field is a key, an
    /// aggregate over the window's records, a window bound, or an
    /// expression of these. Checked even when the key or the window before
    /// it failed (`key` or `window` is `None` then); no operator is made.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn window_aggregate(
        &mut self,
        input: &StreamEnd,
        key: Option<Key>,
        window: Option<WindowSpec>,
        wc: Option<&Connector>,
        fields: &[ast::RecordField],
        attrs: &Attrs,
        span: Span,
        settings: &JobSettings,
    ) -> StreamEnd {
        let key = key.unwrap_or(Key { fields: Vec::new(), span, known: false });
        let mut typer = Typer::new(&self.params, &self.udfs);
        let mut aggs = Vec::new();
        let mut out_fields = Vec::new();
        let mut output = Vec::new();
        let mut unknown = Unknown::None;
        let mut seen: HashMap<&str, Span> = HashMap::new();
        let mut ok = true;
        for rf in fields {
            if let Some(first) = seen.insert(rf.name.text.as_str(), rf.name.span) {
                typer.diagnostics.push(duplicate_field(rf, first));
                ok = false;
                continue;
            }
            let value = field_value(rf);
            // Without a known key, a plain field may or may not be one of
            // its fields: such an output is not judged.
            let mut plain = Vec::new();
            field_refs(&value, true, &mut plain);
            let typed = if input.can_check(&value) && (key.known || plain.is_empty()) {
                let mut scope = Scope::Aggregate { input: &input.schema, key: &key.fields, aggs: &mut aggs };
                typer.expr(&value, &mut scope).ok()
            } else {
                None
            };
            match typed {
                Some((e, ty)) => {
                    let nullable = crate::typing::nullable(&e, &input.schema, Some((&key.fields, &aggs)));
                    let mut field = Field::new(rf.name.text.clone(), ty).with_nullable(nullable);
                    if let Expr::Key(k) = e {
                        field.timestamp_format = input.schema.fields[key.fields[k]].timestamp_format.clone();
                    }
                    out_fields.push(field);
                    output.push(e);
                }
                None => {
                    ok = false;
                    unknown.add([rf.name.text.clone()]);
                }
            }
        }
        self.diags.extend(typer.diagnostics);
        if fields.is_empty() {
            self.err(
                Diagnostic::error("flow::check::empty-aggregate", "`aggregate` needs at least one field", span)
                    .with_label("empty"),
            );
        }
        let schema = Schema { name: None, fields: out_fields };
        let window_all = key.known && key.fields.is_empty();
        let (lateness_ms, late) = self.window_lateness(wc);
        if window_all {
            if let Some(e) = attrs.parallelism() {
                if !matches!(crate::consts::eval(e, &self.params), Ok(Const::Int(1))) {
                    self.err(
                        Diagnostic::error(
                            "flow::check::window-all-parallelism",
                            "a window without `key_by` runs at parallelism 1",
                            e.span,
                        )
                        .with_label("must be 1")
                        .with_help("key the stream (`| key_by f` before the window) to aggregate in parallel, or remove `parallelism`"),
                    );
                    ok = false;
                }
            }
        }
        let kind = match window {
            Some(window) if ok && key.known && !fields.is_empty() => {
                let agg_names: Vec<&str> = aggs.iter().map(|a| a.func.name()).collect();
                // As Flink names it: `Window(TumblingEventTimeWindows(15000), count)`.
                let window_text = window.to_string();
                let window_text = window_text.strip_suffix(')').unwrap_or(&window_text);
                let default_name = format!(
                    "{window_text}, {})",
                    if agg_names.is_empty() { "project".to_string() } else { agg_names.join(", ") }
                );
                let default_name = if window_all { format!("All{default_name}") } else { default_name };
                let kind = OperatorKind::WindowAggregate(WindowAggregate {
                    key: key.fields.clone(),
                    window,
                    aggregates: aggs,
                    output,
                    lateness_ms,
                    late_output: late.is_some(),
                });
                Some((kind, default_name))
            }
            _ => None,
        };
        let (kind, name) = match kind {
            Some((k, n)) => (Some(k), n),
            None => (None, String::new()),
        };
        let op = self.add_op(
            kind,
            name,
            attrs,
            Some(input),
            if window_all { Partitioning::Forward } else { Partitioning::Hash { key: key.fields } },
            schema.clone(),
            wc.map_or(span, |w| w.span.to(span)),
            settings,
        );
        if let Some(op) = op {
            if window_all {
                self.ops[op].parallelism = Some(1);
            }
        }
        if let Some((name, name_span)) = late {
            self.late_stream(input, op, name, name_span, settings);
        }
        StreamEnd { op, schema, unknown, has_watermark: input.has_watermark, span }
    }

    /// `late: name`: binds `name` to the records of `window` (with its
    /// input's schema) too late for any window, as `let` binds a stream.
    pub(super) fn late_stream(
        &mut self,
        input: &StreamEnd,
        window: Option<usize>,
        name: String,
        span: Span,
        settings: &JobSettings,
    ) {
        if let Some((_, first, _)) = self.streams.get(&name) {
            let first = *first;
            self.err(
                Diagnostic::error("flow::check::duplicate-stream", format!("stream `{name}` is defined twice"), span)
                    .with_label("defined again here")
                    .with_secondary(first, "first defined here"),
            );
            return;
        }
        let source = StreamEnd { op: window, ..input.clone() };
        let op = self.add_op(
            window.map(|_| OperatorKind::LateOutput),
            format!("Late records of {name}"),
            &Attrs::default(),
            Some(&source),
            Partitioning::Forward,
            input.schema.clone(),
            span,
            settings,
        );
        let end = StreamEnd { op, span, ..input.clone() };
        self.streams.insert(name, (end, span, false));
    }
}

/// `key_by` not followed by a `window`: at the stage that came instead, or
/// at the `key_by` when the pipeline ends there.
pub(super) fn key_by_without_window(key_by: Span, instead: Option<Span>) -> Diagnostic {
    let (code, message) =
        ("flow::check::key-by-without-window", "`key_by` must be followed by a `window` or an `aggregate`");
    let d = match instead {
        Some(stage) => Diagnostic::error(code, message, stage)
            .with_label("expected `| window …` here")
            .with_secondary(key_by, "keyed here"),
        None => Diagnostic::error(code, message, key_by).with_label("the pipeline ends after this `key_by`"),
    };
    d.with_help("aggregate per key and window (`| key_by f | window tumbling { size: 1m } | aggregate { … }`) or keep a running aggregate per key (`| key_by f | aggregate { … }`)")
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
