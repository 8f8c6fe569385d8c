//! The checker: from a parsed [`JobFile`] and the program arguments to a
//! [`LogicalPlan`], or to every problem it can find.
//!
//! It binds parameters, evaluates settings, resolves schemas and streams,
//! checks each stage against the records it receives and builds the
//! operators and edges of the logical plan. One module per concern:
//!
//! - `params`: program arguments bound to `param` and `flag`;
//! - `settings`: `set key = value`;
//! - `schemas`: `schema` declarations and the schema a source names;
//! - `pipelines`: the stage walk, from a pipeline's head to its sink;
//! - `windows`: `window` and the windowed `aggregate`;
//! - `joins`: `union` and `join`, the stages with several inputs;
//! - `connectors`: sources and sinks;
//! - `keyed`: running aggregates, `dedup`, `ttl`, and upsert streams;
//! - `stream`: what is known of a stream at a point of a pipeline, after
//!   an error too, so that checking goes on after the first one;
//! - `props`: the `{ key: value }` settings blocks they all take;
//! - `udfs`: `use rust`, the Rust functions a job imports;
//! - `unnest`: `unnest`, a record per element of an array;
//! - `paths`: a field a stage names (`key_by payload.user.id`) that is
//!   not one, and why.

mod bad_records;
mod connectors;
mod dead_letter_path;
mod formats;
mod joins;
mod kafka_keys;
mod kafka_topics;
mod keyed;
mod nulls;
mod params;
mod paths;
mod pipelines;
mod props;
mod schemas;
mod settings;
mod sink_errors;
mod stream;
mod top;
mod udfs;
mod unnest;
mod versioned;
mod windows;

pub use params::parse_duration;
pub use settings::SETTINGS;

use crate::args::ProgramArgs;
use crate::consts::Params;
use crate::ir::*;
use crate::logical::{LogicalEdge, LogicalOperator, LogicalPlan};
use flowc_dsl::ast::{self, Item, JobFile};
use flowc_dsl::SourceFile;
use flowc_dsl::{Diagnostic, Span};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use stream::StreamEnd;

/// What the checker needs besides the file.
#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    pub args: ProgramArgs,
    /// `-p`: the default parallelism, overriding `parallelism.default`.
    pub parallelism: Option<u32>,
    /// The Rust files of the job's `use rust` statements, by the path the
    /// job writes, as the caller read them: the file, or why it could not.
    pub rust_files: BTreeMap<String, Result<Arc<SourceFile>, String>>,
}

/// Checks a job; on success the plan, and warnings either way.
pub fn check(file: &JobFile, options: &CheckOptions) -> (Option<LogicalPlan>, Vec<Diagnostic>) {
    let (plan, diags, _) = check_with_info(file, options);
    (plan, diags)
}

/// What the checker learnt about a job besides the plan, for editors: the
/// schema of the stream at every stage of every pipeline, as far as it is
/// known (after an error too), and the functions it imports.
#[derive(Debug, Clone, Default)]
pub struct CheckInfo {
    /// In source order.
    pub pipelines: Vec<PipelineInfo>,
    /// The `pub fn`s of the job's `use rust` files, callable or not, in
    /// the order of the imports and of the functions in each file.
    pub udfs: Vec<(String, crate::udf::ImportedFn)>,
}

/// One pipeline, a `let`'s or one that ends in a sink.
#[derive(Debug, Clone)]
pub struct PipelineInfo {
    pub span: Span,
    /// The records its head (a source, or `from` a stream) makes.
    pub head_output: Option<Schema>,
    pub stages: Vec<StageInfo>,
    /// The records at its end (a `let` stream's schema).
    pub output: Option<Schema>,
}

/// A stage and the records it receives (`None`: unknown after an error).
#[derive(Debug, Clone)]
pub struct StageInfo {
    pub span: Span,
    pub input: Option<Schema>,
}

impl PipelineInfo {
    /// The records stage `i` emits: those the next stage receives, or the
    /// pipeline's output. `key_by` and `window` pass their input on to the
    /// `aggregate` that follows them.
    pub fn stage_output(&self, i: usize) -> Option<&Schema> {
        match self.stages.get(i + 1) {
            Some(next) => next.input.as_ref(),
            None => self.output.as_ref(),
        }
    }
}

/// [`check`], and what it learnt on the way.
pub fn check_with_info(file: &JobFile, options: &CheckOptions) -> (Option<LogicalPlan>, Vec<Diagnostic>, CheckInfo) {
    let mut c = Checker::default();
    let plan = c.run(file, options);
    c.info.udfs = c.udfs.in_order().into_iter().map(|(n, f)| (n.to_string(), f.clone())).collect();
    let has_errors = c.diags.iter().any(Diagnostic::is_error);
    (if has_errors { None } else { plan }, c.diags, c.info)
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
    info: CheckInfo,
    udfs: crate::udf::Udfs,
    /// The operators that make an upsert stream, and its key (`keyed`).
    upserts: HashMap<usize, keyed::UpsertKey>,
    /// The operators whose records are a windowed aggregate's rows (for a
    /// `top` after a `from`).
    window_rows: HashMap<usize, top::WindowRows>,
    /// The operators whose stream is declared `versioned by` (`versioned`);
    /// `None`: the declaration failed (and said why).
    versioned: HashMap<usize, Option<versioned::Versioned>>,
    /// The job's defaults for stages' `on_error` (`pipeline.on-error`,
    /// `pipeline.dead-letter.*`).
    stage_errors: bad_records::StageDefaults,
    /// Per schema, its Kafka metadata fields: `from …` spans (`schemas`).
    metadata_spans: HashMap<String, Vec<Span>>,
    /// The file sources lookup joins read whole (`joins::lookup`): removed
    /// from the plan unless a pipeline reads them too.
    lookup_sides: Vec<usize>,
}

impl Checker {
    fn err(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    fn run(&mut self, file: &JobFile, options: &CheckOptions) -> Option<LogicalPlan> {
        let name = self.job_name(file);
        self.bind_params(file, &options.args);
        let mut settings = self.settings(file);
        self.check_stage_defaults();
        if let Some(p) = options.parallelism {
            settings.parallelism = p;
        }
        self.check_default_parallelism(file, &settings, options.parallelism.is_some());
        for item in &file.items {
            if let Item::Schema(s) = item {
                self.schema(s);
            }
        }
        let udfs = self.imports(file, options);
        for item in &file.items {
            match item {
                Item::Let(l) => {
                    // Bound even when its pipeline failed, so that a `from`
                    // of it is checked against what is known, not reported.
                    let end = self.pipeline(&l.pipeline, &settings, true);
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
                Item::Pipeline(p) => {
                    self.pipeline(p, &settings, false);
                }
                _ => {}
            }
        }
        // A stream whose pipeline failed has its errors; that nothing uses
        // it yet is not news.
        let mut unused: Vec<_> = self.streams.iter().filter(|(_, (end, _, used))| !used && end.op.is_some()).collect();
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
        self.uncalled_refusals();
        if !self.ops.iter().any(|o| o.kind.is_sink()) && !self.diags.iter().any(Diagnostic::is_error) {
            self.err(
                Diagnostic::error("flow::check::no-sink", "the job has no sink", Span::new(0, 0))
                    .with_label("nothing is written anywhere")
                    .with_help("end a pipeline with `| sink kafka { … }`, `| sink print` or `| sink file { … }`"),
            );
        }
        self.drop_lookup_sides();
        Some(LogicalPlan {
            name: name?,
            settings,
            operators: std::mem::take(&mut self.ops),
            edges: std::mem::take(&mut self.edges),
            udfs,
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
}
