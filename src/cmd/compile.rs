//! `flowc compile JOB.flow [args] -o plan.bin`: the plan for `POST /jobs`.
//!
//! A job that imports Rust functions (`use rust`) has them built first
//! (`udf_build`); the plan names each artifact by its digest, and says
//! where the artifact file is: it must be uploaded to the JobManager's
//! blob store (`POST /blobs`) before the plan is submitted, as `flowc run`
//! does.

use super::job_args::JobArgs;
use anyhow::Context;
use flowc_compiler::plan_file;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct CompileArgs {
    /// Where to write the plan; `.json` writes the readable JSON form.
    #[arg(short = 'o', long = "output")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub job: JobArgs,
}

pub fn run(a: CompileArgs) -> anyhow::Result<ExitCode> {
    let Some((src, mut c, trailing)) = a.job.compile(&["output"])? else { return Ok(ExitCode::FAILURE) };
    let built = super::udf_build::build_all(&mut c.graph, &a.job.rust_files(&src))?;
    let output = trailing
        .values
        .iter()
        .rev()
        .find(|(k, _)| k == "output")
        .map(|(_, v)| PathBuf::from(v))
        .or(a.output)
        .unwrap_or_else(|| a.job.job.with_extension("plan"));
    let json = output.extension().is_some_and(|e| e == "json");
    let bytes = if json { plan_file::to_json(&c.graph).into_bytes() } else { plan_file::to_bytes(&c.graph) };
    std::fs::write(&output, &bytes).with_context(|| format!("cannot write `{}`", output.display()))?;
    println!(
        "{}: wrote {} ({} bytes, plan format {})",
        src.name,
        output.display(),
        bytes.len(),
        plan_file::FORMAT_VERSION
    );
    for b in &built {
        let how = if b.cached { "cached" } else { "built" };
        println!(
            "{}: UDF artifact {} ({how}) at {}: upload it with `POST /blobs` before the plan",
            src.name,
            b.digest,
            b.path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
