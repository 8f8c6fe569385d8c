//! `flowc check JOB.flow [args] [--format text|json]`: diagnostics only.
//!
//! `text` (the default) renders each diagnostic as rustc does, on stderr,
//! and says on stdout that the job is valid. `json` prints one JSON object
//! per diagnostic per line on stdout, and nothing else, like cargo's
//! `--message-format=json`, for editors and CI:
//!
//! ```text
//! {"code":"flow::check::unknown-field","severity":"error","file":"unknown_field_did_you_mean.flow",
//!  "message":"unknown field `pgae`",
//!  "span":{"start":168,"end":172,"line_start":6,"column_start":14,"line_end":6,"column_end":18},
//!  "labels":[{"primary":true,"span":{…},"text":"no field `pgae` in ClickEvent"}],
//!  "help":"did you mean `page`?","rendered":"error[flow::check::unknown-field]: …"}
//! ```
//!
//! (one line in the output). Spans are byte offsets, lines and columns
//! count from 1, columns in characters; `span` is `null` for a problem
//! outside the file (a program argument). The exit status is 1 if any
//! diagnostic is an error, in both formats.

use super::job_args::JobArgs;
use anyhow::bail;
use flowc_compiler::{compile, CheckOptions};
use flowc_dsl::{Diagnostic, Severity, SourceFile, Span};
use serde_json::{json, Value};
use std::io::Write as _;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// Output: `text` (rustc-like, on stderr) or `json` (one object per
    /// diagnostic per line, on stdout).
    #[arg(long, default_value = "text")]
    pub format: String,
    #[command(flatten)]
    pub job: JobArgs,
}

pub fn run(a: CheckArgs) -> anyhow::Result<ExitCode> {
    // `--format` may follow the job file; before the file is read, whether
    // it declares a parameter of that name is not known yet.
    let json_asked = a.format == "json" || a.job.args.windows(2).any(|w| w[0] == "--format" && w[1] == "json");
    let name = a.job.job.display().to_string();
    let src = match a.job.load() {
        Ok(src) => src,
        Err(e) if json_asked => return Ok(json_failure(&name, "flow::load::file", &e)),
        Err(e) => return Err(e),
    };
    let (args, trailing) = match a.job.split(&src, &["format"]) {
        Ok(split) => split,
        Err(e) if json_asked => return Ok(json_failure(&src.name, "flow::args::syntax", &e)),
        Err(e) => return Err(e),
    };
    let format = trailing.values.iter().rev().find(|(k, _)| k == "format").map_or(a.format.as_str(), |(_, v)| v);
    let rust_files = flowc_dsl::load::rust_imports(&a.job.job, &flowc_dsl::parse(&src.text).file);
    let options = CheckOptions { args, parallelism: trailing.parallelism, rust_files };
    let result = compile(&src, &options);
    let failed = result.is_err();
    match (format, result) {
        ("text", Ok(c)) => {
            if !c.warnings.is_empty() {
                eprint!("{}", src.render_all(&c.warnings));
            }
            println!(
                "{}: job \"{}\" is valid: {} vertices, {} operators",
                src.name,
                c.graph.name,
                c.graph.vertex_count(),
                c.logical.operators.len()
            );
        }
        ("text", Err(diags)) => eprint!("{}", src.render_all(&diags)),
        ("json", Ok(c)) => print_json(&src, &c.warnings)?,
        ("json", Err(diags)) => print_json(&src, &diags)?,
        (other, _) => bail!("unknown format `{other}`: use text or json"),
    }
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// Prints the diagnostics as JSON lines. A reader that stops reading
/// (`| head -1`) ends the output, as it would for any Unix tool.
fn print_json(src: &SourceFile, diags: &[Diagnostic]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    let written =
        diags.iter().try_for_each(|d| writeln!(out, "{}", diagnostic_json(src, d))).and_then(|()| out.flush());
    match written {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// One diagnostic as a JSON object; `file` is the file its spans point
/// into (a Rust file of `use rust`, or the job file).
fn diagnostic_json(job: &SourceFile, d: &Diagnostic) -> Value {
    let src: &SourceFile = d.file().map_or(job, |f| &**f);
    let span = |s: Span| {
        let (start, end) = (src.line_col(s.start), src.line_col(s.end));
        json!({
            "start": s.start,
            "end": s.end,
            "line_start": start.line,
            "column_start": start.col,
            "line_end": end.line,
            "column_end": end.col,
        })
    };
    let mut labels = Vec::new();
    if let Some(s) = d.span {
        labels.push(json!({ "primary": true, "span": span(s), "text": d.label }));
    }
    labels.extend(d.secondary().iter().map(|(s, text)| json!({ "primary": false, "span": span(*s), "text": text })));
    json!({
        "code": d.code,
        "severity": match d.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        },
        "file": src.name,
        "message": d.message,
        "span": d.span.map(span),
        "labels": labels,
        "help": d.help,
        "rendered": job.render(d),
    })
}

/// A failure before the file could be checked (unreadable, bad program
/// arguments), as one JSON error without a span.
fn json_failure(file: &str, code: &str, e: &anyhow::Error) -> ExitCode {
    let message = format!("{e:#}");
    let object = json!({
        "code": code,
        "severity": "error",
        "file": file,
        "message": message,
        "span": null,
        "labels": [],
        "help": null,
        "rendered": format!("error: {message}\n"),
    });
    let mut out = std::io::stdout().lock();
    // Nothing more can be said if stdout is gone; the exit status says it.
    let _ = writeln!(out, "{object}").and_then(|()| out.flush());
    ExitCode::FAILURE
}
