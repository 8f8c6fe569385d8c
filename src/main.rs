//! `flowc`: the command-line entry point. One binary, a subcommand per role:
//! the compiler's front (`check`, `explain`, `fmt`, `compile`), the language
//! server (`lsp`), the cluster processes and the client.

mod cmd;

use clap::{Parser, Subcommand};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
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
    Check(cmd::check::CheckArgs),
    /// Shows the job graph: vertices, operator chains, edges.
    Explain(cmd::explain::ExplainArgs),
    /// Rewrites job files in the canonical layout.
    Fmt(cmd::fmt::FmtArgs),
    /// Compiles a job into a plan file for `POST /jobs`.
    Compile(cmd::compile::CompileArgs),
    /// Runs the language server for editors (LSP over stdio).
    Lsp(cmd::lsp::LspArgs),
    /// Compiles a job and runs it on a cluster (or on a mini cluster in this process).
    Run(cmd::run::RunArgs),
    /// Lists the jobs of a cluster.
    List(cmd::list::ListArgs),
    /// Cancels a job.
    Cancel(cmd::cancel::CancelArgs),
    /// Stops a job with a savepoint.
    Stop(cmd::savepoint::StopArgs),
    /// Takes a savepoint of a running job, or disposes of one (`-d PATH`).
    Savepoint(cmd::savepoint::SavepointArgs),
    /// Takes a checkpoint of a running job now.
    Checkpoint(cmd::ops::CheckpointArgs),
    /// Prints a job's execution plan as JSON, as `flink info` does.
    Info(cmd::ops::InfoArgs),
    /// Prints the JobManager's or a TaskManager's log (`-f`: and follows it).
    Logs(cmd::ops::LogsArgs),
    /// Runs a JobManager: REST API, web UI, scheduling, checkpoint coordination.
    Jobmanager(cmd::cluster::JobManagerArgs),
    /// Runs a TaskManager that offers its slots to a JobManager.
    Taskmanager(cmd::cluster::TaskManagerArgs),
}

fn main() -> ExitCode {
    // Flink's client spells some long options with one dash.
    let args = std::env::args_os().map(|a| match a.to_str() {
        Some("-type") => "--type".into(),
        Some("-detached") => "--detached".into(),
        Some("-full") => "--full".into(),
        _ => a,
    });
    let cli = Cli::parse_from(args);
    // The cluster processes set up their logging once their configuration
    // is read (`cmd::cluster`): to standard output and the log file.
    if !matches!(cli.command, Command::Jobmanager(_) | Command::Taskmanager(_)) {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("FLOWC_LOG").unwrap_or_else(|_| "warn".into()))
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()) && std::env::var_os("NO_COLOR").is_none())
            .init();
    }
    let result = match cli.command {
        Command::Check(a) => cmd::check::run(a),
        Command::Explain(a) => cmd::explain::run(a),
        Command::Fmt(a) => cmd::fmt::run(a),
        Command::Compile(a) => cmd::compile::run(a),
        Command::Lsp(a) => cmd::lsp::run(a),
        Command::Run(a) => cmd::run::run(a),
        Command::List(a) => cmd::list::run(a),
        Command::Cancel(a) => cmd::cancel::run(a),
        Command::Stop(a) => cmd::savepoint::stop(a),
        Command::Savepoint(a) => cmd::savepoint::savepoint(a),
        Command::Checkpoint(a) => cmd::ops::checkpoint(a),
        Command::Info(a) => cmd::ops::info(a),
        Command::Logs(a) => cmd::ops::logs(a),
        Command::Jobmanager(a) => cmd::cluster::jobmanager(a),
        Command::Taskmanager(a) => cmd::cluster::taskmanager(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
