//! `flowc check JOB.flow [args]`: diagnostics only.

use super::job_args::JobArgs;
use std::process::ExitCode;

pub fn run(a: JobArgs) -> anyhow::Result<ExitCode> {
    match a.compile(&[])? {
        Some((src, c, _)) => {
            println!(
                "{}: job \"{}\" is valid: {} vertices, {} operators",
                src.name,
                c.graph.name,
                c.graph.vertex_count(),
                c.logical.operators.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        None => Ok(ExitCode::FAILURE),
    }
}
