//! A job file with its program arguments, as every compiling command takes
//! them: `flowc CMD [options] JOB.flow [program args…] [-p N]`.
//!
//! Program arguments bind the job's parameters (`--bootstrap.servers …`).
//! flowc's own options may also follow the job file, as in
//! `flowc explain jobs/click_count.flow -p 2 --event-time`, unless the job
//! declares a parameter of the same name.

use anyhow::{bail, Context};
use flowc_compiler::{compile, CheckOptions, Compiled, ProgramArgs};
use flowc_dsl::SourceFile;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(clap::Args, Debug, Clone)]
pub struct JobArgs {
    /// Default parallelism of the job's operators.
    #[arg(short = 'p', long = "parallelism")]
    pub parallelism: Option<u32>,
    /// The job file.
    pub job: PathBuf,
    /// Program arguments for the job's parameters, e.g. `--event-time`.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

/// flowc options found among the program arguments.
#[derive(Debug, Default)]
pub struct Trailing {
    pub parallelism: Option<u32>,
    pub values: Vec<(String, String)>,
}

impl JobArgs {
    /// Loads the job file, or prints why it cannot be loaded.
    pub fn load(&self) -> anyhow::Result<SourceFile> {
        Ok(flowc_dsl::load(&self.job)?)
    }

    /// Splits flowc's own options (`-p N`, and the long `extra` options
    /// such as `--format`) from the program arguments.
    pub fn split(&self, src: &SourceFile, extra: &[&str]) -> anyhow::Result<(ProgramArgs, Trailing)> {
        let declared = declared_params(src);
        let mut rest = Vec::new();
        let mut t = Trailing { parallelism: self.parallelism, values: Vec::new() };
        let mut it = self.args.iter();
        while let Some(a) = it.next() {
            let long = a.strip_prefix("--").unwrap_or("");
            if a == "-p" || (long == "parallelism" && !declared.contains(&long.to_string())) {
                let v = it.next().with_context(|| format!("`{a}` needs a number"))?;
                t.parallelism = Some(parse_parallelism(v)?);
            } else if let Some(v) = a.strip_prefix("-p").filter(|v| !v.is_empty() && !a.starts_with("--")) {
                t.parallelism = Some(parse_parallelism(v)?);
            } else if extra.contains(&long) && !declared.contains(&long.to_string()) {
                let v = it.next().with_context(|| format!("`{a}` needs a value"))?;
                t.values.push((long.to_string(), v.clone()));
            } else if a.starts_with('-') && !a.starts_with("--") {
                bail!("unknown option `{a}` (program arguments are written `--name value`)");
            } else {
                rest.push(a.clone());
            }
        }
        Ok((ProgramArgs::parse(&rest)?, t))
    }

    /// Loads, splits and compiles; on failure prints the diagnostics and
    /// returns `None`. Warnings are printed either way.
    pub fn compile(&self, extra: &[&str]) -> anyhow::Result<Option<(SourceFile, Compiled, Trailing)>> {
        self.compile_with_default(extra, || None)
    }

    /// As [`JobArgs::compile`]; where neither `-p` nor the job sets a
    /// parallelism, `cluster_default` gives it (the cluster's
    /// `parallelism.default`, as Flink's client applies it).
    pub fn compile_with_default(
        &self,
        extra: &[&str],
        cluster_default: impl FnOnce() -> Option<u32>,
    ) -> anyhow::Result<Option<(SourceFile, Compiled, Trailing)>> {
        let src = self.load()?;
        let (args, trailing) = self.split(&src, extra)?;
        let parallelism =
            trailing.parallelism.or_else(|| if sets_parallelism(&src) { None } else { cluster_default() });
        let rust_files = self.rust_files(&src);
        let options = CheckOptions { args, parallelism, rust_files };
        match compile(&src, &options) {
            Ok(c) => {
                if !c.warnings.is_empty() {
                    eprint!("{}", src.render_all(&c.warnings));
                }
                Ok(Some((src, c, trailing)))
            }
            Err(diags) => {
                eprint!("{}", src.render_all(&diags));
                Ok(None)
            }
        }
    }
}

impl JobArgs {
    /// The Rust files the job imports (`use rust`), read next to the job file.
    pub fn rust_files(&self, src: &SourceFile) -> BTreeMap<String, Result<Arc<SourceFile>, String>> {
        flowc_dsl::load::rust_imports(&self.job, &flowc_dsl::parse(&src.text).file)
    }
}

fn parse_parallelism(v: &str) -> anyhow::Result<u32> {
    match v.parse::<u32>() {
        Ok(p) if p >= 1 => Ok(p),
        _ => bail!("parallelism must be a positive integer, not `{v}`"),
    }
}

/// Whether the job file sets `parallelism.default` itself.
fn sets_parallelism(src: &SourceFile) -> bool {
    flowc_dsl::parse(&src.text)
        .file
        .items
        .iter()
        .any(|i| matches!(i, flowc_dsl::ast::Item::Set(s) if s.key.text == "parallelism.default"))
}

fn declared_params(src: &SourceFile) -> Vec<String> {
    flowc_dsl::parse(&src.text)
        .file
        .items
        .iter()
        .filter_map(|i| match i {
            flowc_dsl::ast::Item::Param(p) => Some(p.name.text.clone()),
            flowc_dsl::ast::Item::Flag(f) => Some(f.text.clone()),
            _ => None,
        })
        .collect()
}
