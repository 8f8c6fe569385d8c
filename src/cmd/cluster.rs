//! `flowc jobmanager` and `flowc taskmanager`: the cluster's processes.

use super::config_args::ConfigArgs;
use anyhow::Context;
use flowc_runtime::cluster;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct JobManagerArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
}

#[derive(clap::Args, Debug)]
pub struct TaskManagerArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("flowc-io")
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Raises the open-file limit first thing: idle REST clients must not take
/// the descriptors that RPC, checkpoints and the data exchange need.
fn raise_open_file_limit() {
    let limit = flowc_runtime::rest::server::raise_open_file_limit();
    tracing::info!(limit, "Open-file limit.");
}

pub fn jobmanager(a: JobManagerArgs) -> anyhow::Result<ExitCode> {
    let (config, _) = a.config.load()?;
    raise_open_file_limit();
    runtime()?.block_on(async move {
        let h = cluster::start_jobmanager(config).await?;
        println!("JobManager running: REST and web UI at http://{}/, RPC at {}", h.rest, h.rpc);
        shutdown_signal().await;
        tracing::info!("JobManager stopping.");
        Ok(ExitCode::SUCCESS)
    })
}

pub fn taskmanager(a: TaskManagerArgs) -> anyhow::Result<ExitCode> {
    let (config, _) = a.config.load()?;
    let opts = cluster::taskmanager_options(&config)?;
    raise_open_file_limit();
    runtime()?.block_on(async move {
        tokio::select! {
            r = cluster::run_taskmanager(opts) => r?,
            _ = shutdown_signal() => tracing::info!("TaskManager stopping."),
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
