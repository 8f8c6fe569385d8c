//! The stage walk: each pipeline from its head (a source or a `let`
//! stream) through its stages, each checked against the records it
//! receives, into operators and edges of the logical plan.

use super::windows::{key_by_without_window, window_without_aggregate};
use super::{Checker, StreamEnd};
use crate::consts::{self, Const};
use crate::ir::*;
use crate::logical::{JobSettings, LogicalEdge, LogicalOperator, Partitioning};
use crate::typing::{Scope, Typer};
use flowc_dsl::ast::{self, Attrs, Connector, PipeHead, StageKind};
use flowc_dsl::diagnostic::suggest;
use flowc_dsl::{Diagnostic, Span};
use std::collections::HashMap;

impl Checker {
    #[allow(clippy::too_many_arguments)] // one call site per operator kind; a struct would only rename them
    pub(super) fn add_op(
        &mut self,
        kind: OperatorKind,
        default_name: String,
        attrs: &Attrs,
        input: Option<&StreamEnd>,
        partitioning: Partitioning,
        output: Schema,
        span: Span,
        settings: &JobSettings,
    ) -> usize {
        let name = attrs.name().map_or(default_name, |n| n.value.clone());
        let uid = attrs.uid().map(|u| u.value.clone());
        self.check_attrs(attrs, settings);
        if let Some(u) = attrs.uid() {
            if u.value.is_empty() {
                self.err(Diagnostic::error("flow::check::uid", "a uid cannot be empty", u.span).with_label("empty"));
            } else if let Some(first) = self.uids.insert(u.value.clone(), u.span) {
                self.err(
                    Diagnostic::error("flow::check::duplicate-uid", format!("uid `{}` is used twice", u.value), u.span)
                        .with_label("used again here")
                        .with_secondary(first, "first used here")
                        .with_help("a uid names one operator's state: make each one unique"),
                );
            }
        }
        let parallelism = attrs.parallelism().and_then(|e| match consts::eval(e, &self.params) {
            Ok(Const::Int(n)) if n >= 1 && n <= i64::from(settings.max_parallelism) => Some(n as u32),
            Ok(v) => {
                self.err(
                    Diagnostic::error(
                        "flow::check::parallelism",
                        format!(
                            "parallelism must be an integer from 1 to {} (the max parallelism)",
                            settings.max_parallelism
                        ),
                        e.span,
                    )
                    .with_label(format!("this is {v}")),
                );
                None
            }
            Err(d) => {
                self.err(d);
                None
            }
        });
        self.ops.push(LogicalOperator {
            uid,
            name,
            parallelism,
            kind,
            input: input.map(|i| i.schema.clone()),
            output,
            span,
        });
        let id = self.ops.len() - 1;
        if let Some(i) = input {
            self.edges.push(LogicalEdge { from: i.op, to: id, partitioning });
        }
        id
    }

    pub(super) fn check_attrs(&mut self, attrs: &Attrs, _settings: &JobSettings) {
        let mut seen: HashMap<&str, Span> = HashMap::new();
        for a in &attrs.items {
            if let Some(first) = seen.insert(a.keyword(), a.span()) {
                self.err(
                    Diagnostic::error(
                        "flow::check::duplicate-attribute",
                        format!("`{}` is given twice", a.keyword()),
                        a.span(),
                    )
                    .with_label("again here")
                    .with_secondary(first, "first here"),
                );
            }
        }
    }

    pub(super) fn pipeline(&mut self, p: &ast::Pipeline, settings: &JobSettings, bound: bool) -> Option<StreamEnd> {
        let mut end = match &p.head {
            PipeHead::Source(c) => self.source(c, settings)?,
            PipeHead::From(n) => match self.streams.get_mut(&n.text) {
                Some((end, _, used)) => {
                    *used = true;
                    end.clone()
                }
                None => {
                    let mut d = Diagnostic::error(
                        "flow::check::unknown-stream",
                        format!("unknown stream `{}`", n.text),
                        n.span,
                    )
                    .with_label("no `let` defines it above");
                    if let Some(s) = suggest(&n.text, self.streams.keys().map(String::as_str)) {
                        d = d.with_help(format!("did you mean `{s}`?"));
                    }
                    self.err(d);
                    return None;
                }
            },
        };
        let mut key: Option<(Vec<usize>, Span)> = None;
        let mut window: Option<(WindowSpec, &Connector)> = None;
        let mut sunk: Option<Span> = None;
        for stage in &p.stages {
            if let Some(sink_span) = sunk {
                self.err(
                    Diagnostic::error("flow::check::after-sink", "nothing can follow a sink", stage.span)
                        .with_label("this stage gets no records")
                        .with_secondary(sink_span, "the sink"),
                );
                return None;
            }
            if let Some((w, wc)) = window.take() {
                let StageKind::Aggregate { fields, attrs } = &stage.kind else {
                    self.err(window_without_aggregate(wc.span, Some(stage.span)));
                    return None;
                };
                let (k, _) = key.take()?;
                end = self.window_aggregate(&end, k, w, wc, fields, attrs, stage.span, settings)?;
                continue;
            }
            if let Some((_, kspan)) = &key {
                if !matches!(stage.kind, StageKind::Window(_)) {
                    self.err(key_by_without_window(*kspan, Some(stage.span)));
                    return None;
                }
            }
            match &stage.kind {
                StageKind::Watermark { field, props, attrs } => {
                    let idx = match end.schema.index_of(&field.text) {
                        Some(i) => i,
                        None => {
                            let mut typer = Typer::new(&self.params);
                            let _ = typer.expr(
                                &ast::Expr { kind: ast::ExprKind::Ident(field.text.clone()), span: field.span },
                                &mut Scope::Record(&end.schema),
                            );
                            self.diags.extend(typer.diagnostics);
                            return None;
                        }
                    };
                    let ty = end.schema.fields[idx].ty;
                    if ty != DataType::Timestamp {
                        self.err(
                            Diagnostic::error(
                                "flow::check::watermark-field",
                                format!("watermarks need a timestamp field, and `{}` is {ty}", field.text),
                                field.span,
                            )
                            .with_label(format!("this is {ty}"))
                            .with_help("declare the field as `timestamp(\"pattern\")` or `timestamp(epoch_millis)` in the schema"),
                        );
                        return None;
                    }
                    let props = self.props(props.as_ref(), &["out_of_orderness", "idleness"], "watermark");
                    let ooo = match props.get("out_of_orderness") {
                        None => 0,
                        Some((Const::Duration(ms), _)) => *ms,
                        Some((v, s)) => {
                            self.bad_prop("out_of_orderness", "a duration", v, *s);
                            0
                        }
                    };
                    let idle = match props.get("idleness") {
                        None | Some((Const::None, _)) => None,
                        Some((Const::Duration(0), s)) => {
                            self.bad_prop("idleness", "a positive duration or `none`", &Const::Duration(0), *s);
                            None
                        }
                        Some((Const::Duration(ms), _)) => Some(*ms),
                        Some((v, s)) => {
                            self.bad_prop("idleness", "a duration or `none`", v, *s);
                            None
                        }
                    };
                    let kind = OperatorKind::Watermark(WatermarkSpec {
                        field: idx,
                        out_of_orderness_ms: ooo,
                        idleness_ms: idle,
                    });
                    let schema = end.schema.clone();
                    let op = self.add_op(
                        kind,
                        "Timestamps/Watermarks".into(),
                        attrs,
                        Some(&end),
                        Partitioning::Forward,
                        schema.clone(),
                        stage.span,
                        settings,
                    );
                    end = StreamEnd { op, schema, has_watermark: true, span: stage.span };
                }
                StageKind::Filter { predicate, attrs } => {
                    let mut typer = Typer::new(&self.params);
                    let pred =
                        typer.expect(predicate, &mut Scope::Record(&end.schema), DataType::Bool, "a filter condition");
                    self.diags.extend(typer.diagnostics);
                    let pred = pred.ok()?;
                    let schema = end.schema.clone();
                    let op = self.add_op(
                        OperatorKind::Filter(pred),
                        "Filter".into(),
                        attrs,
                        Some(&end),
                        Partitioning::Forward,
                        schema.clone(),
                        stage.span,
                        settings,
                    );
                    end = StreamEnd { op, schema, has_watermark: end.has_watermark, span: stage.span };
                }
                StageKind::Map { fields, attrs } | StageKind::Select { fields, attrs } => {
                    let is_map = matches!(stage.kind, StageKind::Map { .. });
                    let (exprs, schema) = self.project(&end.schema, fields, is_map)?;
                    let default = if is_map { "Map" } else { "Select" };
                    let op = self.add_op(
                        OperatorKind::Project(exprs),
                        default.into(),
                        attrs,
                        Some(&end),
                        Partitioning::Forward,
                        schema.clone(),
                        stage.span,
                        settings,
                    );
                    end = StreamEnd { op, schema, has_watermark: end.has_watermark, span: stage.span };
                }
                StageKind::KeyBy { fields } => {
                    let mut idx = Vec::new();
                    for f in fields {
                        match end.schema.index_of(&f.text) {
                            Some(i) if idx.contains(&i) => self.err(
                                Diagnostic::error(
                                    "flow::check::duplicate-key",
                                    format!("`{}` is in the key twice", f.text),
                                    f.span,
                                )
                                .with_label("again here"),
                            ),
                            Some(i) => idx.push(i),
                            None => {
                                let d = Diagnostic::error(
                                    "flow::check::unknown-field",
                                    format!("cannot key by `{}`: no such field", f.text),
                                    f.span,
                                );
                                let d = match suggest(&f.text, end.schema.fields.iter().map(|x| x.name.as_str())) {
                                    Some(s) => d
                                        .with_label("not a field of the input")
                                        .with_help(format!("did you mean `{s}`?")),
                                    None => {
                                        let names: Vec<&str> =
                                            end.schema.fields.iter().map(|x| x.name.as_str()).collect();
                                        d.with_label("not a field of the input")
                                            .with_help(format!("the fields are: {}", names.join(", ")))
                                    }
                                };
                                self.err(d);
                                return None;
                            }
                        }
                    }
                    key = Some((idx, stage.span));
                }
                StageKind::Window(c) => {
                    if key.is_none() {
                        self.err(
                            Diagnostic::error(
                                "flow::check::window-without-key",
                                "a keyed window needs `key_by` before it",
                                c.kind.span.to(stage.span),
                            )
                            .with_label("the stream is not keyed here")
                            .with_help("add `| key_by <field>` before the window"),
                        );
                        return None;
                    }
                    let w = self.window_spec(c, &end)?;
                    window = Some((w, c));
                }
                StageKind::Aggregate { .. } => {
                    self.err(
                        Diagnostic::error("flow::check::aggregate-without-window", "`aggregate` needs a window before it", stage.span)
                            .with_label("no window here")
                            .with_help("aggregate per key and window: `| key_by f | window tumbling { size: 15s } | aggregate { … }`"),
                    );
                    return None;
                }
                StageKind::Sink(c) => {
                    self.sink(c, &end, settings)?;
                    sunk = Some(stage.span);
                }
            }
        }
        if let Some((_, kspan)) = key {
            self.err(key_by_without_window(kspan, None));
            return None;
        }
        if let Some((_, wc)) = window {
            self.err(window_without_aggregate(wc.span, None));
            return None;
        }
        match (bound, sunk) {
            (true, Some(s)) => {
                self.err(
                    Diagnostic::error("flow::check::let-sink", "a `let` stream cannot end in a sink", s)
                        .with_label("this sink leaves nothing to continue")
                        .with_help("write the pipeline without `let name =`"),
                );
                None
            }
            (false, None) => {
                self.err(
                    Diagnostic::error("flow::check::no-sink", "this pipeline's records go nowhere", end.span)
                        .with_label("the pipeline ends here")
                        .with_help(
                            "end it with `| sink …`, or bind it with `let name = …` and continue it with `from name`",
                        ),
                );
                None
            }
            _ => Some(end),
        }
    }

    pub(super) fn project(
        &mut self,
        input: &Schema,
        fields: &[ast::RecordField],
        is_map: bool,
    ) -> Option<(Vec<Expr>, Schema)> {
        let mut typer = Typer::new(&self.params);
        let mut out_fields: Vec<Field> = Vec::new();
        let mut exprs: Vec<Expr> = Vec::new();
        if is_map {
            for (i, f) in input.fields.iter().enumerate() {
                out_fields.push(f.clone());
                exprs.push(Expr::Field(i));
            }
        }
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
            let Ok((e, ty)) = typer.expr(&value, &mut Scope::Record(input)) else {
                ok = false;
                continue;
            };
            let mut field = Field::new(rf.name.text.clone(), ty);
            if let Expr::Field(i) = e {
                field.timestamp_format = input.fields[i].timestamp_format.clone();
            }
            match out_fields.iter().position(|f| f.name == rf.name.text) {
                Some(i) => {
                    out_fields[i] = field;
                    exprs[i] = e;
                }
                None => {
                    out_fields.push(field);
                    exprs.push(e);
                }
            }
        }
        self.diags.extend(typer.diagnostics);
        if !ok {
            return None;
        }
        if out_fields.is_empty() {
            return None;
        }
        Some((exprs, Schema { name: None, fields: out_fields }))
    }
}
