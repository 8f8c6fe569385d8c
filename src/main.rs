//! `flowc`: the command-line entry point. One binary, a subcommand per role:
//! the compiler's front (`check`, `explain`, `fmt`, `compile`), the cluster
//! processes and the client.

mod cmd;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// flowc: a dataflow language and a stream-processing runtime that speaks Flink.
#[derive(Parser)]
#[command(name = "flowc", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Checks a job file and its program arguments; exits 1 on any error.
    Check(cmd::job_args::JobArgs),
    /// Shows the job graph: vertices, operator chains, edges.
    Explain(cmd::explain::ExplainArgs),
    /// Rewrites job files in the canonical layout.
    Fmt(cmd::fmt::FmtArgs),
    /// Compiles a job into a plan file for `POST /jobs`.
    Compile(cmd::compile::CompileArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check(a) => cmd::check::run(a),
        Command::Explain(a) => cmd::explain::run(a),
        Command::Fmt(a) => cmd::fmt::run(a),
        Command::Compile(a) => cmd::compile::run(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
