//! The checker: from a parsed [`JobFile`] and the program arguments to a
//! [`LogicalPlan`], or to every problem it can find.
//!
//! It binds parameters, evaluates settings, resolves schemas and streams,
//! checks each stage against the records it receives and builds the
//! operators and edges of the logical plan.

use crate::args::ProgramArgs;
use crate::consts::{self, Const, Params};
use crate::ir::*;
use crate::logical::{JobSettings, LogicalEdge, LogicalOperator, LogicalPlan, Partitioning};
use crate::typing::{Scope, Typer};
use flowc_dsl::ast::{self, Attrs, Connector, Item, JobFile, ParamType, PipeHead, Props, StageKind};
use flowc_dsl::diagnostic::suggest;
use flowc_dsl::{Diagnostic, Span};
use std::collections::{BTreeMap, HashMap};

/// The settings a job may `set`, with what they take.
pub const SETTINGS: &[(&str, &str)] = &[
    ("execution.checkpointing.interval", "a duration, or `none` to switch checkpoints off"),
    ("pipeline.operator-chaining", "`true` or `false`"),
    ("pipeline.max-parallelism", "an integer from 1 to 32768"),
    ("parallelism.default", "a positive integer"),
];

/// What the checker needs besides the file.
#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    pub args: ProgramArgs,
    /// `-p`: the default parallelism, overriding `parallelism.default`.
    pub parallelism: Option<u32>,
}

/// Checks a job; on success the plan, and warnings either way.
pub fn check(file: &JobFile, options: &CheckOptions) -> (Option<LogicalPlan>, Vec<Diagnostic>) {
    let mut c = Checker::default();
    let plan = c.run(file, options);
    let has_errors = c.diags.iter().any(Diagnostic::is_error);
    (if has_errors { None } else { plan }, c.diags)
}

/// A stream bound with `let`, or the current end of a pipeline.
#[derive(Clone)]
struct StreamEnd {
    op: usize,
    schema: Schema,
    /// Some watermark stage is upstream.
    has_watermark: bool,
    span: Span,
}

#[derive(Default)]
struct Checker {
    diags: Vec<Diagnostic>,
    params: Params,
    schemas: HashMap<String, (Schema, Span)>,
    streams: HashMap<String, (StreamEnd, Span, bool)>,
    ops: Vec<LogicalOperator>,
    edges: Vec<LogicalEdge>,
    uids: HashMap<String, Span>,
}

impl Checker {
    fn err(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    fn run(&mut self, file: &JobFile, options: &CheckOptions) -> Option<LogicalPlan> {
        let name = self.job_name(file);
        self.bind_params(file, &options.args);
        let mut settings = self.settings(file);
        if let Some(p) = options.parallelism {
            settings.parallelism = p;
        }
        self.check_default_parallelism(file, &settings, options.parallelism.is_some());
        for item in &file.items {
            if let Item::Schema(s) = item {
                self.schema(s);
            }
        }
        for item in &file.items {
            match item {
                Item::Let(l) => {
                    if let Some(end) = self.pipeline(&l.pipeline, &settings, true) {
                        if let Some((_, first, _)) = self.streams.get(&l.name.text) {
                            let first = *first;
                            self.err(
                                Diagnostic::error(
                                    "flow::check::duplicate-stream",
                                    format!("stream `{}` is defined twice", l.name.text),
                                    l.name.span,
                                )
                                .with_label("defined again here")
                                .with_secondary(first, "first defined here"),
                            );
                        } else {
                            self.streams.insert(l.name.text.clone(), (end, l.name.span, false));
                        }
                    }
                }
                Item::Pipeline(p) => {
                    self.pipeline(p, &settings, false);
                }
                _ => {}
            }
        }
        let mut unused: Vec<_> = self.streams.iter().filter(|(_, (_, _, used))| !used).collect();
        unused.sort_by_key(|(_, (_, s, _))| s.start);
        let warnings: Vec<Diagnostic> = unused
            .into_iter()
            .map(|(n, (_, span, _))| {
                Diagnostic::warning("flow::check::unused-stream", format!("stream `{n}` is never used"), *span)
                    .with_label("defined here")
                    .with_help(format!("continue it with `from {n} | …`, or remove it"))
            })
            .collect();
        self.diags.extend(warnings);
        if !self.ops.iter().any(|o| o.kind.is_sink()) && !self.diags.iter().any(Diagnostic::is_error) {
            self.err(
                Diagnostic::error("flow::check::no-sink", "the job has no sink", Span::new(0, 0))
                    .with_label("nothing is written anywhere")
                    .with_help("end a pipeline with `| sink kafka { … }`, `| sink print` or `| sink file { … }`"),
            );
        }
        Some(LogicalPlan {
            name: name?,
            settings,
            operators: std::mem::take(&mut self.ops),
            edges: std::mem::take(&mut self.edges),
        })
    }

    fn job_name(&mut self, file: &JobFile) -> Option<String> {
        let mut found: Option<&ast::StrLit> = None;
        for item in &file.items {
            if let Item::Job(n) = item {
                if let Some(first) = found {
                    self.err(
                        Diagnostic::error("flow::check::duplicate-job", "the job is named twice", n.span)
                            .with_label("second name")
                            .with_secondary(first.span, "first named here"),
                    );
                } else {
                    if n.value.trim().is_empty() {
                        self.err(
                            Diagnostic::error("flow::check::job-name", "the job's name is empty", n.span)
                                .with_label("empty"),
                        );
                    }
                    found = Some(n);
                }
            }
        }
        match found {
            Some(n) => Some(n.value.clone()),
            None => {
                self.err(
                    Diagnostic::error("flow::check::no-job-name", "the job has no name", Span::new(0, 0))
                        .with_label("expected `job \"…\"` in this file")
                        .with_help(
                            "start the file with `job \"My Job\"`: the name shows in `flowc list`, REST and the web UI",
                        ),
                );
                None
            }
        }
    }

    fn bind_params(&mut self, file: &JobFile, args: &ProgramArgs) {
        let mut declared: BTreeMap<String, Span> = BTreeMap::new();
        for item in &file.items {
            let (name, decl_span) = match item {
                Item::Param(p) => (&p.name, p.span),
                Item::Flag(f) => (f, f.span),
                _ => continue,
            };
            if let Some(first) = declared.get(&name.text) {
                let first = *first;
                self.err(
                    Diagnostic::error(
                        "flow::check::duplicate-param",
                        format!("parameter `{}` is declared twice", name.text),
                        name.span,
                    )
                    .with_label("declared again here")
                    .with_secondary(first, "first declared here"),
                );
                continue;
            }
            declared.insert(name.text.clone(), decl_span);
            let given = args.values.get(&name.text);
            let value = match item {
                Item::Flag(_) => match given {
                    None => Some(Const::Bool(false)),
                    Some(None) => Some(Const::Bool(true)),
                    Some(Some(v)) => match v.as_str() {
                        "true" => Some(Const::Bool(true)),
                        "false" => Some(Const::Bool(false)),
                        other => {
                            self.err(
                                Diagnostic::error(
                                    "flow::args::flag-value",
                                    format!("flag `--{}` takes no value, but was given `{other}`", name.text),
                                    name.span,
                                )
                                .with_label("declared as a flag here")
                                .with_help(format!("write `--{}` alone, or `--{}=false`", name.text, name.text)),
                            );
                            None
                        }
                    },
                },
                Item::Param(p) => match given {
                    Some(Some(v)) => self.parse_param(p, v),
                    Some(None) => {
                        self.err(
                            Diagnostic::error(
                                "flow::args::missing-value",
                                format!("`--{}` needs a value", name.text),
                                p.span,
                            )
                            .with_label(format!("declared as {} here", p.ty.keyword()))
                            .with_help(format!("write `--{} VALUE`", name.text)),
                        );
                        None
                    }
                    None => match &p.default {
                        Some(d) => match consts::eval(d, &self.params) {
                            Ok(v) => self.coerce_param(p, v, d.span),
                            Err(e) => {
                                self.err(e);
                                None
                            }
                        },
                        None => {
                            self.err(
                                Diagnostic::error(
                                    "flow::args::unbound",
                                    format!("parameter `{}` has no value", name.text),
                                    p.span,
                                )
                                .with_label("declared without a default")
                                .with_help(format!(
                                    "pass `--{} VALUE` after the job file, or give it a default: `= …`",
                                    name.text
                                )),
                            );
                            None
                        }
                    },
                },
                _ => None,
            };
            // A value given wrong (missing, or not of the declared type) was
            // reported above and fails the compile. Checking goes on with the
            // declared default, if any, so that the argument's error is the
            // only one, not followed by errors at every use of the parameter.
            let value = match (value, item, given) {
                (None, Item::Param(p), Some(_)) => {
                    p.default.as_ref().and_then(|d| consts::eval(d, &self.params).ok()).filter(|v| {
                        matches!(
                            (p.ty, v),
                            (ParamType::String, Const::Str(_))
                                | (ParamType::Int | ParamType::Long, Const::Int(_))
                                | (ParamType::Double, Const::Float(_) | Const::Int(_))
                                | (ParamType::Bool, Const::Bool(_))
                                | (ParamType::Duration, Const::Duration(_))
                        )
                    })
                }
                (v, _, _) => v,
            };
            if let Some(v) = value {
                self.params.insert(name.text.clone(), v);
            }
        }
        for given in args.values.keys() {
            if !declared.contains_key(given) {
                let mut d =
                    Diagnostic::unlocated("flow::args::unknown", format!("unknown program argument `--{given}`"));
                let all: Vec<String> = declared.keys().map(|k| format!("--{k}")).collect();
                d = match suggest(given, declared.keys().map(String::as_str)) {
                    Some(s) => d.with_help(format!("did you mean `--{s}`?")),
                    None if all.is_empty() => d.with_help("this job declares no parameters"),
                    None => d.with_help(format!("this job's parameters are: {}", all.join(", "))),
                };
                self.err(d);
            }
        }
    }

    fn parse_param(&mut self, p: &ast::ParamDecl, raw: &str) -> Option<Const> {
        let v = match p.ty {
            ParamType::String => Some(Const::Str(raw.to_string())),
            ParamType::Int => raw.parse::<i32>().ok().map(|i| Const::Int(i.into())),
            ParamType::Long => raw.parse::<i64>().ok().map(Const::Int),
            ParamType::Double => raw.parse::<f64>().ok().filter(|x| x.is_finite()).map(Const::Float),
            ParamType::Bool => match raw {
                "true" => Some(Const::Bool(true)),
                "false" => Some(Const::Bool(false)),
                _ => None,
            },
            ParamType::Duration => parse_duration(raw).map(Const::Duration),
        };
        if v.is_none() {
            let example = match p.ty {
                ParamType::String => "text",
                ParamType::Int => "42",
                ParamType::Long => "42",
                ParamType::Double => "0.5",
                ParamType::Bool => "true",
                ParamType::Duration => "15s",
            };
            self.err(
                Diagnostic::error(
                    "flow::args::type",
                    format!("`--{} {raw}`: `{raw}` is not a valid {}", p.name.text, p.ty.keyword()),
                    p.ty_span,
                )
                .with_label(format!("declared as {} here", p.ty.keyword()))
                .with_help(format!("for example `--{} {example}`", p.name.text)),
            );
        }
        v
    }

    fn coerce_param(&mut self, p: &ast::ParamDecl, v: Const, span: Span) -> Option<Const> {
        let ok = match (p.ty, &v) {
            (ParamType::String, Const::Str(_))
            | (ParamType::Int | ParamType::Long, Const::Int(_))
            | (ParamType::Bool, Const::Bool(_))
            | (ParamType::Duration, Const::Duration(_)) => Some(v.clone()),
            (ParamType::Double, Const::Float(_)) => Some(v.clone()),
            (ParamType::Double, Const::Int(i)) => Some(Const::Float(*i as f64)),
            _ => None,
        };
        if ok.is_none() {
            self.err(
                Diagnostic::error(
                    "flow::check::type",
                    format!("the default of `{}` must be {}, not {}", p.name.text, p.ty.keyword(), v.kind()),
                    span,
                )
                .with_label(format!("this is {}", v.kind())),
            );
        }
        if let (ParamType::Int, Some(Const::Int(i))) = (p.ty, &ok) {
            if i32::try_from(*i).is_err() {
                self.err(Diagnostic::error("flow::check::type", "the default does not fit in an int", span));
                return None;
            }
        }
        ok
    }

    fn settings(&mut self, file: &JobFile) -> JobSettings {
        let mut s = JobSettings::default();
        let mut seen: HashMap<String, Span> = HashMap::new();
        for item in &file.items {
            let Item::Set(set) = item else { continue };
            let key = set.key.text.as_str();
            if let Some(first) = seen.insert(key.to_string(), set.key.span) {
                self.err(
                    Diagnostic::error("flow::check::duplicate-setting", format!("`{key}` is set twice"), set.key.span)
                        .with_label("set again here")
                        .with_secondary(first, "first set here"),
                );
                continue;
            }
            let Some((_, takes)) = SETTINGS.iter().find(|(k, _)| *k == key) else {
                let mut d =
                    Diagnostic::error("flow::check::unknown-setting", format!("unknown setting `{key}`"), set.key.span)
                        .with_label("not a setting flowc knows");
                d = match suggest(key, SETTINGS.iter().map(|(k, _)| *k)) {
                    Some(k) => d.with_help(format!("did you mean `{k}`?")),
                    None => {
                        let keys: Vec<&str> = SETTINGS.iter().map(|(k, _)| *k).collect();
                        d.with_help(format!("the settings are: {}", keys.join(", ")))
                    }
                };
                self.err(d);
                continue;
            };
            let v = match consts::eval(&set.value, &self.params) {
                Ok(v) => v,
                Err(e) => {
                    self.err(e);
                    continue;
                }
            };
            let bad = |v: &Const| {
                Diagnostic::error(
                    "flow::check::setting-value",
                    format!("`{key}` takes {takes}, not {}", v.kind()),
                    set.value.span,
                )
                .with_label(format!("this is {v}"))
            };
            match (key, &v) {
                ("execution.checkpointing.interval", Const::Duration(0)) => self.err(
                    Diagnostic::error(
                        "flow::check::setting-value",
                        "a checkpoint interval of 0 is not allowed",
                        set.value.span,
                    )
                    .with_label("zero")
                    .with_help("use `none` to switch checkpoints off"),
                ),
                ("execution.checkpointing.interval", Const::Duration(ms)) => s.checkpoint_interval_ms = Some(*ms),
                ("execution.checkpointing.interval", Const::None) => s.checkpoint_interval_ms = None,
                ("pipeline.operator-chaining", Const::Bool(b)) => s.chaining = *b,
                ("pipeline.max-parallelism", Const::Int(n)) if (1..=32768).contains(n) => s.max_parallelism = *n as u32,
                ("parallelism.default", Const::Int(n)) if (1..=32768).contains(n) => s.parallelism = *n as u32,
                _ => self.err(bad(&v)),
            }
        }
        s
    }

    /// The job's default parallelism (`-p` or `parallelism.default`) must
    /// be possible: from 1 to the max parallelism.
    fn check_default_parallelism(&mut self, file: &JobFile, settings: &JobSettings, from_cli: bool) {
        let (p, max) = (settings.parallelism, settings.max_parallelism);
        if (1..=max).contains(&p) {
            return;
        }
        let message = format!("parallelism {p} is not possible: it must be from 1 to {max} (the max parallelism)");
        let set = file.items.iter().find_map(|i| match i {
            Item::Set(s) if s.key.text == "parallelism.default" => Some(s.value.span),
            _ => None,
        });
        let d = match set {
            Some(span) if !from_cli => Diagnostic::error("flow::check::parallelism", message, span)
                .with_label("the default parallelism")
                .with_help("lower it, or raise `pipeline.max-parallelism`"),
            _ => Diagnostic::unlocated("flow::args::parallelism", format!("`-p {p}`: {message}")),
        };
        self.err(d);
    }

    fn schema(&mut self, s: &ast::SchemaDecl) {
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
            fields.push(Field { name: f.name.text.clone(), ty, timestamp_format: format });
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

    // ------------------------------------------------------------ pipelines

    #[allow(clippy::too_many_arguments)] // one call site per operator kind; a struct would only rename them
    fn add_op(
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

    fn check_attrs(&mut self, attrs: &Attrs, _settings: &JobSettings) {
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

    fn pipeline(&mut self, p: &ast::Pipeline, settings: &JobSettings, bound: bool) -> Option<StreamEnd> {
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
                    self.err(
                        Diagnostic::error(
                            "flow::check::window-without-aggregate",
                            "a window must be followed by `aggregate`",
                            stage.span,
                        )
                        .with_label("expected `| aggregate { … }` here")
                        .with_secondary(wc.span, "the window"),
                    );
                    return None;
                };
                let (k, _) = key.take()?;
                end = self.window_aggregate(&end, k, w, wc, fields, attrs, stage.span, settings)?;
                continue;
            }
            if let Some((_, kspan)) = &key {
                if !matches!(stage.kind, StageKind::Window(_)) {
                    self.err(
                        Diagnostic::error("flow::check::key-by-without-window", "`key_by` must be followed by a `window`", stage.span)
                            .with_label("expected `| window …` here")
                            .with_secondary(*kspan, "keyed here")
                            .with_help("flowc computes keyed state in windows: `| key_by f | window tumbling { size: 1m } | aggregate { … }`"),
                    );
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
            self.err(
                Diagnostic::error(
                    "flow::check::key-by-without-window",
                    "`key_by` must be followed by a `window`",
                    kspan,
                )
                .with_label("the pipeline ends here"),
            );
            return None;
        }
        if let Some((_, wc)) = window {
            self.err(
                Diagnostic::error(
                    "flow::check::window-without-aggregate",
                    "a window must be followed by `aggregate`",
                    wc.span,
                )
                .with_label("the pipeline ends after this window"),
            );
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

    fn project(&mut self, input: &Schema, fields: &[ast::RecordField], is_map: bool) -> Option<(Vec<Expr>, Schema)> {
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

    fn window_spec(&mut self, c: &Connector, input: &StreamEnd) -> Option<WindowSpec> {
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
    fn window_aggregate(
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

    // ------------------------------------------------------------ connectors

    /// Evaluates a settings block, reporting unknown keys against `allowed`.
    fn props(&mut self, props: Option<&Props>, allowed: &[&str], what: &str) -> HashMap<String, (Const, Span)> {
        let mut out = HashMap::new();
        let Some(props) = props else { return out };
        for p in &props.entries {
            if !allowed.contains(&p.key.text.as_str()) {
                let mut d = Diagnostic::error(
                    "flow::check::unknown-setting",
                    format!("unknown {} setting `{}`", what.trim_start_matches("a "), p.key.text),
                    p.key.span,
                )
                .with_label(format!("not a setting of {what}"));
                d = match suggest(&p.key.text, allowed.iter().copied()) {
                    Some(s) => d.with_help(format!("did you mean `{s}`?")),
                    None => d.with_help(format!("{what} takes: {}", allowed.join(", "))),
                };
                self.err(d);
                continue;
            }
            if out.contains_key(&p.key.text) {
                self.err(
                    Diagnostic::error(
                        "flow::check::duplicate-setting",
                        format!("`{}` is set twice", p.key.text),
                        p.key.span,
                    )
                    .with_label("set again here"),
                );
                continue;
            }
            match consts::eval(&p.value, &self.params) {
                Ok(v) => {
                    out.insert(p.key.text.clone(), (v, p.value.span));
                }
                Err(d) => self.err(d),
            }
        }
        out
    }

    fn bad_prop(&mut self, key: &str, takes: &str, v: &Const, span: Span) {
        self.err(
            Diagnostic::error("flow::check::setting-value", format!("`{key}` takes {takes}, not {}", v.kind()), span)
                .with_label(format!("this is {v}")),
        );
    }

    fn string_prop(
        &mut self,
        props: &HashMap<String, (Const, Span)>,
        key: &str,
        default: Option<&str>,
        whole: Span,
    ) -> Option<String> {
        match props.get(key) {
            Some((Const::Str(s), sp)) if s.trim().is_empty() => {
                self.err(
                    Diagnostic::error("flow::check::setting-value", format!("`{key}` cannot be empty"), *sp)
                        .with_label("empty"),
                );
                None
            }
            Some((Const::Str(s), _)) => Some(s.clone()),
            Some((v, s)) => {
                self.bad_prop(key, "a string", v, *s);
                None
            }
            None => match default {
                Some(d) => Some(d.to_string()),
                None => {
                    self.err(
                        Diagnostic::error("flow::check::missing-setting", format!("`{key}` is missing"), whole)
                            .with_label(format!("needs `{key}: \"…\"`")),
                    );
                    None
                }
            },
        }
    }

    fn symbol_prop(
        &mut self,
        props: &HashMap<String, (Const, Span)>,
        key: &str,
        options: &[&str],
        default: &str,
    ) -> Option<String> {
        match props.get(key) {
            None => Some(default.to_string()),
            Some((Const::Symbol(s), _)) if options.contains(&s.as_str()) => Some(s.clone()),
            Some((v, sp)) => {
                let opts: Vec<String> = options.iter().map(|o| format!("`{o}`")).collect();
                let mut d = Diagnostic::error(
                    "flow::check::setting-value",
                    format!("`{key}` takes {}, not {v}", opts.join(" or ")),
                    *sp,
                )
                .with_label("not one of the options");
                if let Const::Symbol(s) = v {
                    if let Some(sug) = suggest(s, options.iter().copied()) {
                        d = d.with_help(format!("did you mean `{sug}`?"));
                    }
                }
                self.err(d);
                None
            }
        }
    }

    fn schema_prop(&mut self, props: &HashMap<String, (Const, Span)>, whole: Span) -> Option<Schema> {
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

    fn source(&mut self, c: &Connector, settings: &JobSettings) -> Option<StreamEnd> {
        let whole = c.props.as_ref().map_or(c.span, |p| p.span);
        let (kind, schema, name) = match c.kind.text.as_str() {
            "kafka" => {
                let props = self.props(
                    c.props.as_ref(),
                    &["servers", "topic", "group", "offsets", "bounded", "format", "schema"],
                    "a kafka source",
                );
                let servers = self.string_prop(&props, "servers", None, whole);
                let topic = self.string_prop(&props, "topic", None, whole);
                let group = self.string_prop(&props, "group", Some("flowc"), whole);
                let offsets = self.symbol_prop(&props, "offsets", &["earliest", "latest", "committed"], "committed");
                let bounded = self.symbol_prop(&props, "bounded", &["none", "latest"], "none");
                let _format = self.symbol_prop(&props, "format", &["json"], "json");
                let schema = self.schema_prop(&props, whole);
                let offsets = match offsets?.as_str() {
                    "earliest" => StartingOffsets::Earliest,
                    "latest" => StartingOffsets::Latest,
                    _ => StartingOffsets::Committed,
                };
                let schema = schema?;
                let topic = topic?;
                let spec = KafkaSource {
                    servers: servers?,
                    topic: topic.clone(),
                    group: group?,
                    offsets,
                    bounded: bounded?.as_str() == "latest",
                    schema: schema.clone(),
                };
                (OperatorKind::KafkaSource(spec), schema, format!("Source: Kafka({topic})"))
            }
            "datagen" => self.datagen(c, whole)?,
            other => {
                let mut d =
                    Diagnostic::error("flow::check::source-kind", format!("unknown source `{other}`"), c.kind.span)
                        .with_label("not a source");
                d = match suggest(other, ["kafka", "datagen"]) {
                    Some(s) => d.with_help(format!("did you mean `{s}`?")),
                    None => d.with_help("sources are `kafka { … }` and `datagen { … }`"),
                };
                self.err(d);
                return None;
            }
        };
        let op = self.add_op(kind, name, &c.attrs, None, Partitioning::Forward, schema.clone(), c.span, settings);
        Some(StreamEnd { op, schema, has_watermark: false, span: c.span })
    }

    fn datagen(&mut self, c: &Connector, whole: Span) -> Option<(OperatorKind, Schema, String)> {
        // Settings first, to find the schema; every other key names a field.
        let entries = c.props.as_ref().map_or(&[][..], |p| &p.entries[..]);
        let mut fixed = HashMap::new();
        for p in entries {
            if matches!(p.key.text.as_str(), "schema" | "count" | "rate" | "format") {
                match consts::eval(&p.value, &self.params) {
                    Ok(v) => {
                        fixed.insert(p.key.text.clone(), (v, p.value.span));
                    }
                    Err(d) => self.err(d),
                }
            }
        }
        let schema = self.schema_prop(&fixed, whole)?;
        let count = match fixed.get("count") {
            None | Some((Const::None, _)) => None,
            Some((Const::Int(n), _)) if *n >= 0 => Some(*n as u64),
            Some((v, s)) => {
                self.bad_prop("count", "a non-negative integer or `none`", v, *s);
                return None;
            }
        };
        let rate = match fixed.get("rate") {
            None | Some((Const::None, _)) | Some((Const::Int(0), _)) => None,
            Some((Const::Int(n), _)) if *n > 0 => Some(*n as u64),
            Some((v, s)) => {
                self.bad_prop("rate", "records per second, or `none` for as fast as possible", v, *s);
                return None;
            }
        };
        let json = match fixed.get("format") {
            None => false,
            Some((Const::Symbol(s), _)) if s == "json" => true,
            Some((v, s)) => {
                self.bad_prop("format", "`json`", v, *s);
                return None;
            }
        };
        let mut generators: Vec<Option<Generator>> = vec![None; schema.fields.len()];
        for p in entries {
            if matches!(p.key.text.as_str(), "schema" | "count" | "rate" | "format") {
                continue;
            }
            let Some(i) = schema.index_of(&p.key.text) else {
                let mut d = Diagnostic::error(
                    "flow::check::unknown-setting",
                    format!("`{}` is neither a datagen setting nor a field", p.key.text),
                    p.key.span,
                )
                .with_label("unknown");
                let mut names: Vec<&str> = vec!["schema", "count", "rate", "format"];
                names.extend(schema.fields.iter().map(|f| f.name.as_str()));
                if let Some(s) = suggest(&p.key.text, names.iter().copied()) {
                    d = d.with_help(format!("did you mean `{s}`?"));
                }
                self.err(d);
                continue;
            };
            if let Some(g) = self.generator(&p.value, schema.fields[i].ty) {
                generators[i] = Some(g);
            }
        }
        let generators: Vec<Generator> = generators
            .into_iter()
            .zip(&schema.fields)
            .map(|(g, f)| {
                g.unwrap_or(match f.ty {
                    DataType::String => {
                        Generator::Cycle(vec![Value::Str(format!("{}-a", f.name)), Value::Str(format!("{}-b", f.name))])
                    }
                    DataType::Bool => Generator::Cycle(vec![Value::Bool(true), Value::Bool(false)]),
                    _ => Generator::Sequence { start: 0, step: 1 },
                })
            })
            .collect();
        let spec = DatagenSource { schema: schema.clone(), generators, count, rate, json };
        Some((OperatorKind::DatagenSource(spec), schema, "Source: Datagen".to_string()))
    }

    /// `sequence(start, step)`, `cycle(v, …)`, `ticks(start, step, per_tick)`,
    /// `random(min, max)` or a constant.
    fn generator(&mut self, e: &ast::Expr, ty: DataType) -> Option<Generator> {
        let ints = |this: &mut Self, args: &[ast::Expr]| -> Option<Vec<i64>> {
            let mut out = Vec::new();
            for a in args {
                match consts::eval(a, &this.params) {
                    Ok(Const::Int(i)) => out.push(i),
                    Ok(Const::Duration(ms)) => out.push(ms as i64),
                    Ok(v) => {
                        this.err(
                            Diagnostic::error(
                                "flow::check::generator",
                                format!("expected an integer or a duration, not {}", v.kind()),
                                a.span,
                            )
                            .with_label("here"),
                        );
                        return None;
                    }
                    Err(d) => {
                        this.err(d);
                        return None;
                    }
                }
            }
            Some(out)
        };
        let value_of = |this: &mut Self, a: &ast::Expr| -> Option<Value> {
            let v = match consts::eval(a, &this.params) {
                Ok(v) => v,
                Err(d) => {
                    this.err(d);
                    return None;
                }
            };
            let value = match (ty, v) {
                (DataType::String, Const::Str(s)) => Value::Str(s),
                (DataType::Int | DataType::Long, Const::Int(i)) => Value::Int(i),
                (DataType::Double, Const::Float(x)) => Value::Double(x),
                (DataType::Double, Const::Int(i)) => Value::Double(i as f64),
                (DataType::Bool, Const::Bool(b)) => Value::Bool(b),
                (DataType::Timestamp, Const::Int(i)) => Value::Timestamp(i),
                (_, v) => {
                    this.err(
                        Diagnostic::error(
                            "flow::check::generator",
                            format!("a {ty} field cannot take {}", v.kind()),
                            a.span,
                        )
                        .with_label("wrong type"),
                    );
                    return None;
                }
            };
            Some(value)
        };
        match &e.kind {
            ast::ExprKind::Call(f, args) => match (f.text.as_str(), args.len()) {
                ("sequence", 2) if ty.is_integral() || ty == DataType::Timestamp => {
                    let v = ints(self, args)?;
                    Some(Generator::Sequence { start: v[0], step: v[1] })
                }
                ("ticks", 3) if ty == DataType::Timestamp || ty.is_integral() => {
                    let v = ints(self, args)?;
                    if v[2] <= 0 {
                        self.err(
                            Diagnostic::error("flow::check::generator", "`per_tick` must be positive", args[2].span)
                                .with_label("here"),
                        );
                        return None;
                    }
                    Some(Generator::Ticks { start: v[0], step: v[1], per_tick: v[2] })
                }
                ("random", 2) if ty.is_numeric() => {
                    let v = ints(self, args)?;
                    if v[0] > v[1] {
                        self.err(
                            Diagnostic::error("flow::check::generator", "`random(min, max)` needs min ≤ max", e.span)
                                .with_label("here"),
                        );
                        return None;
                    }
                    Some(Generator::Random { min: v[0], max: v[1] })
                }
                ("cycle", n) if n > 0 => {
                    let mut vals = Vec::new();
                    for a in args {
                        vals.push(value_of(self, a)?);
                    }
                    Some(Generator::Cycle(vals))
                }
                (name, n) => {
                    self.err(
                        Diagnostic::error("flow::check::generator", format!("`{name}` with {n} arguments is not a generator for a {ty} field"), e.span)
                            .with_label("not a generator")
                            .with_help("generators: `sequence(start, step)`, `ticks(start, step, per_tick)`, `random(min, max)`, `cycle(v, …)`, or a constant"),
                    );
                    None
                }
            },
            _ => Some(Generator::Constant(value_of(self, e)?)),
        }
    }

    fn sink(&mut self, c: &Connector, input: &StreamEnd, settings: &JobSettings) -> Option<usize> {
        let whole = c.props.as_ref().map_or(c.span, |p| p.span);
        let (kind, name) = match c.kind.text.as_str() {
            "kafka" => {
                let props = self.props(
                    c.props.as_ref(),
                    &["servers", "topic", "format", "delivery", "transactional_id_prefix"],
                    "a kafka sink",
                );
                let servers = self.string_prop(&props, "servers", None, whole);
                let topic = self.string_prop(&props, "topic", None, whole);
                let _format = self.symbol_prop(&props, "format", &["json"], "json");
                let delivery =
                    self.symbol_prop(&props, "delivery", &["at_least_once", "exactly_once"], "at_least_once");
                let delivery = match delivery?.as_str() {
                    "exactly_once" => Delivery::ExactlyOnce,
                    _ => Delivery::AtLeastOnce,
                };
                if delivery == Delivery::ExactlyOnce && settings.checkpoint_interval_ms.is_none() {
                    self.err(
                        Diagnostic::warning(
                            "flow::check::exactly-once-without-checkpoints",
                            "exactly-once delivery commits on checkpoints, and checkpointing is off",
                            c.span,
                        )
                        .with_label("records are committed only when the job ends")
                        .with_help("set `execution.checkpointing.interval`"),
                    );
                }
                let topic = topic?;
                let prefix =
                    self.string_prop(&props, "transactional_id_prefix", Some(&format!("flowc-{topic}")), whole)?;
                (
                    OperatorKind::KafkaSink(KafkaSink {
                        servers: servers?,
                        topic: topic.clone(),
                        delivery,
                        transactional_id_prefix: prefix,
                    }),
                    format!("Sink: Kafka({topic})"),
                )
            }
            "print" => {
                self.props(c.props.as_ref(), &[], "a print sink");
                (OperatorKind::PrintSink, "Sink: Print".to_string())
            }
            "discard" => {
                self.props(c.props.as_ref(), &[], "a discard sink");
                (OperatorKind::DiscardSink, "Sink: Discard".to_string())
            }
            "file" => {
                let props = self.props(c.props.as_ref(), &["path", "format"], "a file sink");
                let path = self.string_prop(&props, "path", None, whole);
                let _format = self.symbol_prop(&props, "format", &["json"], "json");
                (OperatorKind::FileSink(FileSink { path: path? }), "Sink: File".to_string())
            }
            other => {
                let mut d = Diagnostic::error("flow::check::sink-kind", format!("unknown sink `{other}`"), c.kind.span)
                    .with_label("not a sink");
                d = match suggest(other, ["kafka", "print", "file", "discard"]) {
                    Some(s) => d.with_help(format!("did you mean `{s}`?")),
                    None => d.with_help("sinks are `kafka { … }`, `print`, `file { path: … }` and `discard`"),
                };
                self.err(d);
                return None;
            }
        };
        let schema = input.schema.clone();
        Some(self.add_op(kind, name, &c.attrs, Some(input), Partitioning::Forward, schema, c.span, settings))
    }
}

/// Parses `15s`, `200ms`, `1m`, `2h`, `1d` or a bare number of milliseconds.
pub fn parse_duration(s: &str) -> Option<u64> {
    let s = s.trim();
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let n: u64 = s[..digits].parse().ok()?;
    let unit = match &s[digits..] {
        "" | "ms" => 1,
        "s" => 1000,
        "m" | "min" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    n.checked_mul(unit)
}
