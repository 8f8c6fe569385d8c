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

/// Logs to standard output and, when `log.file` or `env.log.dir` is set,
/// to a size-rotated file (`flowc_runtime::logging`); `FLOWC_LOG` filters.
fn init_logging(config: &flowc_runtime::config::Config, role: &str) -> anyhow::Result<()> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = tracing_subscriber::EnvFilter::try_from_env("FLOWC_LOG").unwrap_or_else(|_| "info".into());
    let file = flowc_runtime::logging::RotatingFile::from_config(config, role)?;
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout()) && std::env::var_os("NO_COLOR").is_none();
    tracing_subscriber::registry()
        .with(filter)
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stdout).with_ansi(ansi))
        .with(file.map(|f| tracing_subscriber::fmt::layer().with_writer(move || f.clone()).with_ansi(false)))
        .init();
    if let Some(p) = flowc_runtime::logging::current_log_file() {
        tracing::info!(path = %p.display(), "Logging to {}.", p.display());
    }
    Ok(())
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
    let (config, _, warnings) = a.config.load_with_warnings()?;
    init_logging(&config, "jobmanager")?;
    for w in warnings {
        tracing::warn!("{w}");
    }
    raise_open_file_limit();
    runtime()?.block_on(async move {
        let h = cluster::start_jobmanager(config).await?;
        println!("JobManager running: REST and web UI at http://{}/, RPC at {}", h.rest, h.rpc);
        tokio::select! {
            _ = shutdown_signal() => {}
            _ = flowc_runtime::rest::shutdown_requested().notified() => {}
        }
        tracing::info!("JobManager stopping.");
        // With ZooKeeper: leave the election and close the session, so that
        // a standby leads at once rather than after the session timeout.
        if let Some(contender) = &h.contender {
            if !contender.resign_and_wait(std::time::Duration::from_secs(5)).await {
                tracing::warn!(
                    "Could not close the ZooKeeper session in time; a standby leads after the session timeout."
                );
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

pub fn taskmanager(a: TaskManagerArgs) -> anyhow::Result<ExitCode> {
    let (config, _, warnings) = a.config.load_with_warnings()?;
    init_logging(&config, "taskmanager")?;
    for w in warnings {
        tracing::warn!("{w}");
    }
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
