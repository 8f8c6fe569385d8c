//! `flowc explain JOB.flow [args] [-p N] [--format text|json|dot]`.

use super::job_args::JobArgs;
use anyhow::bail;
use flowc_compiler::explain;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct ExplainArgs {
    /// Output: `text` (readable), `json` (Flink's plan JSON) or `dot` (Graphviz).
    #[arg(long, default_value = "text")]
    pub format: String,
    #[command(flatten)]
    pub job: JobArgs,
}

pub fn run(a: ExplainArgs) -> anyhow::Result<ExitCode> {
    let Some((_, c, trailing)) = a.job.compile(&["format"])? else { return Ok(ExitCode::FAILURE) };
    let format =
        trailing.values.iter().rev().find(|(k, _)| k == "format").map_or(a.format.as_str(), |(_, v)| v.as_str());
    match format {
        "text" => print!("{}", explain::text(&c.graph)),
        "json" => println!("{}", serde_json::to_string_pretty(&explain::flink_plan(&c.graph, None))?),
        "dot" => print!("{}", explain::dot(&c.graph)),
        other => bail!("unknown format `{other}`: use text, json or dot"),
    }
    Ok(ExitCode::SUCCESS)
}
