//! The flowc compiler: from a parsed job file to the job graph the runtime
//! executes.
//!
//! ```text
//!  JobFile ──check──▶ LogicalPlan ──physical──▶ JobGraph ──plan_file──▶ bytes (bincode) / JSON
//!  (flowc-dsl)  │       operators, edges,        vertices (operator       │
//!               │       schemas, settings        chains), FORWARD/HASH    └─▶ explain: text, Flink JSON, dot
//!               └─▶ Diagnostic                   edges, stable ids
//! ```
//!
//! Between the two, [`prune`] pushes projections down into the operators
//! that keep rows in state (unless the job switches it off).
//!
//! [`compile`] runs the whole pipeline. Every stage is a public function and
//! every intermediate form can be printed. The compiler does no I/O: it
//! takes text and arguments and returns values.

// Diagnostics are returned by value on error paths only; they carry spans,
// labels and help text, and boxing them would buy nothing measurable.
#![allow(clippy::result_large_err)]

pub mod args;
pub mod casts;
pub mod catalog;
pub mod check;
pub mod consts;
pub mod explain;
pub mod graph;
pub mod ids;
pub mod ir;
pub mod logical;
pub mod paths;
pub mod plan_file;
pub mod prune;
pub mod timefmt;
pub mod typing;
pub mod udf;

pub use args::ProgramArgs;
pub use check::{check, CheckOptions};
pub use graph::{JobEdge, JobGraph, JobVertex, ShipStrategy};
pub use logical::LogicalPlan;

use flowc_dsl::{Diagnostic, SourceFile};

/// A compiled job with the warnings found on the way.
#[derive(Debug, Clone)]
pub struct Compiled {
    pub graph: JobGraph,
    pub logical: LogicalPlan,
    pub warnings: Vec<Diagnostic>,
}

/// Parses, checks and plans a job file. On failure, every diagnostic found
/// (errors and warnings), in source order.
///
/// ```
/// use flowc_compiler::{compile, CheckOptions};
/// use flowc_dsl::SourceFile;
/// let src = SourceFile::new("hello.flow", r#"
///     job "Hello"
///     schema N { n: long }
///     source datagen { schema: N, count: 10 } | filter n % 2 == 0 | sink print
/// "#);
/// let compiled = compile(&src, &CheckOptions::default()).expect("compiles");
/// assert_eq!(compiled.graph.vertex_count(), 1); // chained into one task
/// ```
pub fn compile(src: &SourceFile, options: &CheckOptions) -> Result<Compiled, Vec<Diagnostic>> {
    let parsed = flowc_dsl::parse(&src.text);
    if parsed.has_errors() {
        // Checking a partly parsed file would report the missing parts again.
        return Err(parsed.diagnostics);
    }
    let mut diags = parsed.diagnostics;
    let (plan, check_diags) = check(&parsed.file, options);
    diags.extend(check_diags);
    // The job file's diagnostics first, then those of each Rust file it imports.
    diags.sort_by_key(|d| (d.file().map(|f| f.name.clone()), d.span.map_or(usize::MAX, |s| s.start), d.severity));
    match plan {
        Some(logical) if !diags.iter().any(Diagnostic::is_error) => {
            let logical = prune::push_down_projections(logical);
            let graph = graph::build(&logical).with_source(src);
            Ok(Compiled { graph, logical, warnings: diags })
        }
        _ => Err(diags),
    }
}
