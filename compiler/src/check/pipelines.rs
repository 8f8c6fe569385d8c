//! The stage walk: each pipeline from its head (a source or a `let`
//! stream) through its stages, each checked against the records it
//! receives, into operators and edges of the logical plan.
//!
//! A stage that does not check does not end the walk: the stages after it
//! are checked against what is still known (see `stream`), so that one run
//! reports every independent mistake of a pipeline.

use super::stream::{StreamEnd, Unknown};
use super::top::WindowRows;
use super::windows::{key_by_without_window, window_without_aggregate};
use super::{Checker, PipelineInfo, StageInfo};
use crate::consts::{self, Const};
use crate::ir::*;
use crate::logical::{JobSettings, LogicalEdge, LogicalOperator, Partitioning};
use crate::typing::{Scope, Typer};
use flowc_dsl::ast::{self, Attrs, Connector, PipeHead, StageKind};
use flowc_dsl::diagnostic::suggest;
use flowc_dsl::{Diagnostic, Span};
use std::collections::HashMap;

/// What the rows of a windowed `aggregate` are, for a `top` after it; a
/// window that failed to check counts as a good one (it has its errors).
fn window_rows(spec: Option<&WindowSpec>, wc: &Connector) -> WindowRows {
    let lateness = wc
        .props
        .as_ref()
        .and_then(|p| p.get("lateness"))
        .is_some_and(|p| !matches!(p.value.kind, ast::ExprKind::Duration(d) if d.value == 0));
    match spec {
        Some(s) if s.time == TimeDomain::ProcessingTime => WindowRows::ProcessingTime,
        _ if lateness => WindowRows::Lateness,
        _ => WindowRows::EventTime,
    }
}

/// The key of a keyed stream: `key_by`'s fields as indices into its input.
pub(super) struct Key {
    pub fields: Vec<usize>,
    /// The `key_by` stage.
    pub span: Span,
    /// Every field of the key resolved. When not, an `aggregate`'s reads
    /// of plain fields (which must be keys) cannot be judged.
    pub known: bool,
}

/// A record field's value: its expression, or its own name (`{ page }`).
pub(super) fn field_value(rf: &ast::RecordField) -> ast::Expr {
    rf.value.clone().unwrap_or(ast::Expr { kind: ast::ExprKind::Ident(rf.name.text.clone()), span: rf.name.span })
}

/// `field \`x\` is given twice` in a record.
pub(super) fn duplicate_field(rf: &ast::RecordField, first: Span) -> Diagnostic {
    Diagnostic::error("flow::check::duplicate-field", format!("field `{}` is given twice", rf.name.text), rf.name.span)
        .with_label("again here")
        .with_secondary(first, "first here")
}

impl Checker {
    /// Checks an operator's attributes, and adds the operator to the plan
    /// when it checked (`kind`) and its input did (a source has none).
    #[allow(clippy::too_many_arguments)] // one call site per operator kind; a struct would only rename them
    pub(super) fn add_op(
        &mut self,
        kind: Option<OperatorKind>,
        default_name: String,
        attrs: &Attrs,
        input: Option<&StreamEnd>,
        partitioning: Partitioning,
        output: Schema,
        span: Span,
        settings: &JobSettings,
    ) -> Option<usize> {
        let name = attrs.name().map_or(default_name, |n| n.value.clone());
        let uid = attrs.uid().map(|u| u.value.clone());
        self.check_attrs(attrs);
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
        let keyed = |k: &OperatorKind| {
            matches!(k, OperatorKind::RunningAggregate(_) | OperatorKind::Dedup(_) | OperatorKind::KeyedTop(_))
                || matches!(k, OperatorKind::Join(j) if matches!(j.bound, JoinBound::Regular { .. }))
        };
        if kind.as_ref().is_some_and(|k| !keyed(k)) {
            self.refuse_ttl(attrs, "this operator");
        }
        let on_error = self.stage_policy(kind.as_ref(), attrs);
        let kind = kind?;
        let from = match input {
            Some(i) => Some(i.op?),
            None => None,
        };
        self.ops.push(LogicalOperator {
            uid,
            name,
            parallelism,
            kind,
            input: input.map(|i| i.schema.clone()),
            output,
            span,
            on_error,
        });
        let id = self.ops.len() - 1;
        if let Some(from) = from {
            self.edges.push(LogicalEdge { from, to: id, partitioning, input: 0 });
        }
        Some(id)
    }

    pub(super) fn check_attrs(&mut self, attrs: &Attrs) {
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

    /// Checks a pipeline; returns its end, to bind with `let` (it has no
    /// operator if anything in it failed).
    pub(super) fn pipeline(&mut self, p: &ast::Pipeline, settings: &JobSettings, bound: bool) -> StreamEnd {
        let mut info = PipelineInfo { span: p.span, head_output: None, stages: Vec::new(), output: None };
        let end = self.pipeline_stages(p, settings, bound, &mut info);
        info.output = end.known_schema();
        self.info.pipelines.push(info);
        end
    }

    /// The stage walk of [`Checker::pipeline`], noting in `info` the schema
    /// each stage receives.
    fn pipeline_stages(
        &mut self,
        p: &ast::Pipeline,
        settings: &JobSettings,
        bound: bool,
        info: &mut PipelineInfo,
    ) -> StreamEnd {
        let mut end = match &p.head {
            PipeHead::Source(c) => self.source(c, settings),
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
                    StreamEnd::unknown(n.span)
                }
            },
        };
        let mut key: Option<Key> = None;
        let mut window: Option<(Option<WindowSpec>, &Connector)> = None;
        let mut sunk: Option<Span> = None;
        // Whether the records are a windowed aggregate's rows, for `top`;
        // a stream that did not check is not blamed for it.
        let mut rows = match end.op {
            Some(op) => self.window_rows.get(&op).copied().unwrap_or(WindowRows::No),
            None => WindowRows::EventTime,
        };
        info.head_output = end.known_schema();
        for stage in &p.stages {
            if let (Some(op), false) = (end.op, rows == WindowRows::No) {
                self.window_rows.insert(op, rows);
            }
            let prev_rows = std::mem::replace(&mut rows, WindowRows::No);
            info.stages.push(StageInfo { span: stage.span, input: end.known_schema() });
            if let Some(sink_span) = sunk {
                self.err(
                    Diagnostic::error("flow::check::after-sink", "nothing can follow a sink", stage.span)
                        .with_label("this stage gets no records")
                        .with_secondary(sink_span, "the sink"),
                );
                end.op = None;
                return end;
            }
            // Stages that cannot take the updates of an upsert stream; a
            // running aggregate (`key_by` then `aggregate`) retracts them,
            // so a `key_by` is judged by the stage after it.
            let retracting = match &stage.kind {
                StageKind::KeyBy { .. } => true,
                StageKind::Aggregate { .. } => key.is_some() && window.is_none(),
                _ => false,
            };
            if !retracting && self.refuse_updates(&end, stage) {
                end.op = None;
                // A refused `window` still windows the stream, so that the
                // aggregate after it is not blamed too.
                if let StageKind::Window(c) = &stage.kind {
                    key.get_or_insert(Key { fields: Vec::new(), span: stage.span, known: false });
                    window = Some((None, c));
                } else {
                    key = None;
                }
                continue;
            }
            // What a `key_by` and a `window` must be followed by.
            if let Some((spec, wc)) = window.take() {
                if let StageKind::Aggregate { fields, attrs } = &stage.kind {
                    rows = window_rows(spec.as_ref(), wc);
                    end = self.window_aggregate(&end, key.take(), spec, Some(wc), fields, attrs, stage.span, settings);
                    continue;
                }
                self.err(window_without_aggregate(wc.span, Some(stage.span)));
                key = None;
                end.op = None;
            }
            // `key_by` then `aggregate`, no window: a running aggregate.
            if let (Some(k), StageKind::Aggregate { fields, attrs }) = (&key, &stage.kind) {
                let k = Key { fields: k.fields.clone(), span: k.span, known: k.known };
                key = None;
                end = self.running_aggregate(&end, k, fields, attrs, stage.span, settings);
                continue;
            }
            // `key_by` then `top`, no window: the best rows per key.
            if let (Some(k), StageKind::Top(t)) = (&key, &stage.kind) {
                let k = Key { fields: k.fields.clone(), span: k.span, known: k.known };
                key = None;
                end = self.keyed_top(&end, k, t, stage.span, settings);
                continue;
            }
            if let Some(k) = &key {
                if !matches!(stage.kind, StageKind::Window(_)) {
                    self.err(key_by_without_window(k.span, Some(stage.span)));
                    end.op = None;
                    if let StageKind::Aggregate { fields, attrs } = &stage.kind {
                        // Keyed, but no window: the aggregate is checked all the same.
                        end = self.window_aggregate(&end, key.take(), None, None, fields, attrs, stage.span, settings);
                        continue;
                    }
                    key = None;
                }
            }
            match &stage.kind {
                StageKind::Watermark { field, props, attrs } => {
                    end = self.watermark(&end, field, props.as_ref(), attrs, stage.span, settings);
                }
                StageKind::Filter { predicate, attrs } => {
                    rows = prev_rows;
                    let pred = if end.can_check(predicate) {
                        let mut typer = Typer::new(&self.params, &self.udfs);
                        let pred = typer.expect(
                            predicate,
                            &mut Scope::Record(&end.schema),
                            DataType::Bool,
                            "a filter condition",
                        );
                        self.diags.extend(typer.diagnostics);
                        pred.ok()
                    } else {
                        None
                    };
                    let schema = end.schema.clone();
                    let kind = pred.map(OperatorKind::Filter);
                    let op = self.add_op(
                        kind,
                        "Filter".into(),
                        attrs,
                        Some(&end),
                        Partitioning::Forward,
                        schema,
                        stage.span,
                        settings,
                    );
                    self.filter_retract(&end, op);
                    end.op = op;
                    end.span = stage.span;
                }
                StageKind::Map { fields, attrs } | StageKind::Select { fields, attrs } => {
                    rows = prev_rows;
                    let is_map = matches!(stage.kind, StageKind::Map { .. });
                    let (exprs, schema, unknown) = self.project(&end, fields, is_map, stage.span);
                    let default = if is_map { "Map" } else { "Select" };
                    let partitioning = self.forward_from(&end);
                    let op = self.add_op(
                        exprs.map(OperatorKind::Project),
                        default.into(),
                        attrs,
                        Some(&end),
                        partitioning,
                        schema.clone(),
                        stage.span,
                        settings,
                    );
                    let mut after =
                        StreamEnd { op, schema, unknown, has_watermark: end.has_watermark, span: stage.span };
                    self.project_upsert(&end, &mut after);
                    end = after;
                }
                StageKind::KeyBy { fields } => key = Some(self.key_by(&end, fields, stage.span)),
                StageKind::Window(c) => {
                    // A window without `key_by` is Flink's `windowAll`: one key, parallelism 1.
                    key.get_or_insert(Key { fields: Vec::new(), span: stage.span, known: true });
                    window = Some((self.window_spec(c, &end), c));
                }
                StageKind::Aggregate { fields, attrs } => {
                    self.err(
                        Diagnostic::error("flow::check::aggregate-without-window", "`aggregate` needs a window before it", stage.span)
                            .with_label("no window here")
                            .with_help("aggregate per key and window: `| key_by f | window tumbling { size: 15s } | aggregate { … }`"),
                    );
                    end.op = None;
                    end = self.window_aggregate(&end, None, None, None, fields, attrs, stage.span, settings);
                }
                StageKind::Dedup { fields, within, keep, attrs } => {
                    end = self.dedup(&end, fields, within.as_ref(), keep.as_ref(), attrs, stage.span, settings);
                }
                StageKind::Top(t) => {
                    end = self.top(&end, t, prev_rows, stage.span, settings);
                }
                StageKind::Sink(c) => {
                    self.sink(c, &end, settings);
                    sunk = Some(stage.span);
                }
                StageKind::Union { streams, attrs } => {
                    end = self.union(&end, streams, attrs, stage.span, settings);
                }
                StageKind::Join(j) => {
                    let left_name = match &p.head {
                        PipeHead::From(n) => n.text.as_str(),
                        _ => "left",
                    };
                    end = self.join(&end, left_name, j, stage.span, settings);
                }
                StageKind::Versioned { fields } => {
                    let last = p.stages.last().is_some_and(|s| std::ptr::eq(s, stage));
                    self.versioned(&end, fields, stage.span, bound && last);
                }
                StageKind::Unnest(u) => {
                    end = self.unnest(&end, u, stage.span, settings);
                }
            }
        }
        if let (Some(op), false) = (end.op, rows == WindowRows::No) {
            self.window_rows.insert(op, rows);
        }
        // A pipeline that ends after a `key_by` or a `window` is told so;
        // that it has no sink then goes without saying.
        let unfinished = key.is_some() || window.is_some();
        if let Some(k) = key {
            self.err(key_by_without_window(k.span, None));
            end.op = None;
        }
        if let Some((_, wc)) = window {
            self.err(window_without_aggregate(wc.span, None));
            end.op = None;
        }
        match (bound, sunk) {
            (true, Some(s)) => {
                self.err(
                    Diagnostic::error("flow::check::let-sink", "a `let` stream cannot end in a sink", s)
                        .with_label("this sink leaves nothing to continue")
                        .with_help("write the pipeline without `let name =`"),
                );
                end.op = None;
            }
            (false, None) if !unfinished => {
                self.err(
                    Diagnostic::error("flow::check::no-sink", "this pipeline's records go nowhere", end.span)
                        .with_label("the pipeline ends here")
                        .with_help(
                            "end it with `| sink …`, or bind it with `let name = …` and continue it with `from name`",
                        ),
                );
            }
            _ => {}
        }
        end
    }

    /// `key_by f, …`: the key's fields, each of which must exist once.
    pub(super) fn key_by(&mut self, input: &StreamEnd, fields: &[ast::Name], span: Span) -> Key {
        self.key_fields(input, fields, span, "key by")
    }

    /// Fields that key or partition the rows (`key_by`, `top … per`),
    /// checked by the same rules; `verb` says what for in messages.
    pub(super) fn key_fields(&mut self, input: &StreamEnd, fields: &[ast::Name], span: Span, verb: &str) -> Key {
        let mut key = Key { fields: Vec::new(), span, known: true };
        for f in fields {
            if input.is_unknown_field(&f.text) {
                key.known = false;
                continue;
            }
            match input.schema.index_of(&f.text) {
                Some(i) if key.fields.contains(&i) => self.err(
                    Diagnostic::error(
                        "flow::check::duplicate-key",
                        format!("`{}` is in the key twice", f.text),
                        f.span,
                    )
                    .with_label("again here"),
                ),
                Some(i) if input.schema.fields[i].ty.is_array() => {
                    self.err(array_key(&f.text, input.schema.fields[i].ty, f.span));
                    key.fields.push(i);
                }
                Some(i) if input.schema.fields[i].nullable => {
                    let ty = input.schema.fields[i].ty;
                    self.err(super::nulls::refused("a key", &f.text, f.span, super::nulls::example_default(ty)));
                    key.fields.push(i);
                }
                Some(i) => key.fields.push(i),
                None => {
                    if let Some(d) = super::paths::why_not_a_field(&input.schema, f, verb) {
                        self.err(d);
                        key.known = false;
                        continue;
                    }
                    let names: Vec<&str> = input.schema.fields.iter().map(|x| x.name.as_str()).collect();
                    let d = Diagnostic::error(
                        "flow::check::unknown-field",
                        format!("cannot {verb} `{}`: no such field", f.text),
                        f.span,
                    )
                    .with_label("not a field of the input");
                    let d = match suggest(&f.text, names.iter().copied()) {
                        Some(s) => d.with_help(format!("did you mean `{s}`?")),
                        None => d.with_help(format!("the fields are: {}", names.join(", "))),
                    };
                    self.err(d);
                    key.known = false;
                }
            }
        }
        key
    }

    /// `map { … }` (the input's fields, some added or replaced) or `select
    /// { … }` (only the listed fields): the expressions if every field
    /// checked, the output schema, and the fields whose type is unknown.
    pub(super) fn project(
        &mut self,
        input: &StreamEnd,
        fields: &[ast::RecordField],
        is_map: bool,
        span: Span,
    ) -> (Option<Vec<Expr>>, Schema, Unknown) {
        let mut typer = Typer::new(&self.params, &self.udfs);
        let mut out_fields: Vec<Field> = Vec::new();
        let mut exprs: Vec<Expr> = Vec::new();
        let mut unknown = Unknown::None;
        if is_map {
            for (i, f) in input.schema.fields.iter().enumerate() {
                out_fields.push(f.clone());
                exprs.push(Expr::Field(i));
            }
            unknown = input.unknown.clone();
        }
        let mut seen: HashMap<&str, Span> = HashMap::new();
        let mut ok = true;
        for rf in fields {
            if let Some(first) = seen.insert(rf.name.text.as_str(), rf.name.span) {
                typer.diagnostics.push(duplicate_field(rf, first));
                ok = false;
                continue;
            }
            let value = field_value(rf);
            let typed =
                if input.can_check(&value) { typer.expr(&value, &mut Scope::Record(&input.schema)).ok() } else { None };
            let Some((e, ty)) = typed else {
                ok = false;
                out_fields.retain(|f| f.name != rf.name.text);
                unknown.add([rf.name.text.clone()]);
                continue;
            };
            let nullable = crate::typing::nullable(&e, &input.schema, None);
            let mut field = Field::new(rf.name.text.clone(), ty).with_nullable(nullable);
            if let Expr::Field(i) = e {
                field.timestamp_format = input.schema.fields[i].timestamp_format.clone();
            }
            unknown.remove(&rf.name.text);
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
        if fields.is_empty() && !is_map {
            self.err(
                Diagnostic::error("flow::check::empty-select", "`select` needs at least one field", span)
                    .with_label("empty")
                    .with_help("list the fields to keep: `select { page, ts }`"),
            );
            ok = false;
        }
        let exprs = (ok && out_fields.len() == exprs.len()).then_some(exprs);
        (exprs, Schema { name: None, fields: out_fields }, unknown)
    }
}

/// An array field named as a key: arrays are not keys (Flink SQL allows
/// them, but a key of many values is rarely what is meant).
pub(super) fn array_key(field: &str, ty: DataType, span: Span) -> Diagnostic {
    Diagnostic::error("flow::check::array-key", format!("`{field}` is {ty} and cannot be a key"), span)
        .with_label("an array")
        .with_help(match field.rsplit_once('.') {
            // `unnest` takes a field of the record, not a path: name it first.
            Some((_, last)) => format!(
                "key by one element, `| map {{ first: element_at({field}, 1) }} | key_by first`, or by each: `| map {{ {last}: {field} }} | unnest {last} as item | key_by item`"
            ),
            None => format!(
                "key by one element, `| map {{ first: element_at({field}, 1) }} | key_by first`, or by each: `| unnest {field} as item | key_by item`"
            ),
        })
}
