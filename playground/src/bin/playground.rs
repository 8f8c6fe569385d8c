//! `playground`: runs the flowc Operations Playground as local processes,
//! with docker-compose's verbs (see `flowc_playground::launcher`).

use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use flowc_playground::launcher::compose::KillSignal;
use flowc_playground::launcher::logs::print_logs;
use flowc_playground::launcher::{ps, supervise, Options, Playground, Service, Target};

/// Runs the Operations Playground — Kafka, a flowc JobManager,
/// TaskManagers, the click-event generator and the client that submits Click
/// Event Count — as local processes, with docker-compose's verbs. State
/// (pids, exit codes, logs, Kafka data) lives in $FLOWC_PLAYGROUND_DIR
/// (default /tmp/flowc-playground).
#[derive(Debug, Parser)]
#[command(name = "playground", version)]
struct Args {
    /// State directory [default: $FLOWC_PLAYGROUND_DIR or /tmp/flowc-playground].
    #[arg(long, global = true, value_name = "DIR")]
    state_dir: Option<PathBuf>,

    /// flowc configuration file [default: playground/conf/flowc.yaml].
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,

    /// Use this existing Kafka cluster instead of starting one.
    #[arg(long, global = true, value_name = "HOST:PORT", conflicts_with = "kafka_port")]
    kafka: Option<String>,

    /// Client port of the playground's own Kafka broker (its controller
    /// listens on the next port) [default: 9092].
    #[arg(long, global = true, value_name = "PORT")]
    kafka_port: Option<u16>,

    /// Seconds a stopping service gets before it is killed.
    #[arg(long, global = true, value_name = "SECS", default_value_t = 20)]
    stop_timeout: u64,

    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Starts services (all if none given) and what they depend on.
    Up {
        /// Detached: start and return. Without it, follow the logs and stop
        /// the services on Ctrl-C.
        #[arg(short = 'd', long)]
        detach: bool,
        /// kafka, jobmanager, taskmanager (or taskmanager-N),
        /// clickevent-generator, client.
        #[arg(value_name = "SERVICE")]
        services: Vec<Target>,
    },
    /// Stops and removes all services.
    Down {
        /// Also delete Kafka's data, the logs and the checkpoint and
        /// savepoint directories.
        #[arg(short = 'v', long)]
        volumes: bool,
    },
    /// Lists the services: name, command, state (Up / Exit N), ports.
    Ps,
    /// Shows the output of services (all if none given).
    Logs {
        /// Keep printing new output.
        #[arg(short = 'f', long)]
        follow: bool,
        /// Do not prefix lines with the service name.
        #[arg(long)]
        no_log_prefix: bool,
        #[arg(value_name = "SERVICE")]
        services: Vec<Target>,
    },
    /// Kills services at once (SIGKILL, as a crash would).
    Kill {
        /// Signal to send: KILL, TERM, INT or HUP.
        #[arg(short = 's', long, default_value = "KILL")]
        signal: KillSignal,
        #[arg(value_name = "SERVICE", required = true)]
        services: Vec<Target>,
    },
    /// Stops services (all if none given) without removing them.
    Stop {
        #[arg(value_name = "SERVICE")]
        services: Vec<Target>,
    },
    /// Stops and starts services again.
    Restart {
        #[arg(value_name = "SERVICE", required = true)]
        services: Vec<Target>,
    },
    /// Sets the number of instances: `scale taskmanager=2`.
    Scale {
        #[arg(value_name = "SERVICE=N", required = true, value_parser = parse_scale)]
        settings: Vec<(Service, u32)>,
    },
    /// Runs one service and records its exit code (used by `up`).
    #[command(hide = true)]
    Supervise {
        #[arg(long)]
        exit_file: PathBuf,
        #[arg(last = true, required = true)]
        command: Vec<OsString>,
    },
}

fn parse_scale(s: &str) -> Result<(Service, u32), String> {
    let (name, n) = s.split_once('=').ok_or_else(|| format!("expected SERVICE=N, like taskmanager=2, not {s:?}"))?;
    let target: Target = name.parse().map_err(|e| format!("{e}"))?;
    let Target::Service(service) = target else {
        return Err(format!("scale a service, not an instance: {name:?}"));
    };
    let n = n.parse().map_err(|_| format!("{n:?} is not a number of instances"))?;
    Ok((service, n))
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Cmd::Supervise { exit_file, command } = &args.command {
        let Some((program, rest)) = command.split_first() else {
            return ExitCode::from(2);
        };
        return match supervise::supervise(exit_file, program, rest) {
            Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
            Err(e) => {
                eprintln!("playground supervise: error: {e}");
                ExitCode::FAILURE
            }
        };
    }
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("playground: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    let pg = Playground::open(Options {
        state_dir: args.state_dir,
        config: args.config,
        kafka: args.kafka,
        kafka_port: args.kafka_port,
        stop_timeout: Some(Duration::from_secs(args.stop_timeout)),
    })?;
    match args.command {
        Cmd::Up { detach, services } => {
            let covered = pg.up(&services)?;
            if detach {
                println!(
                    "Web UI and REST API: http://{}  (state and logs: {})",
                    pg.config().rest_endpoint(),
                    pg.state_dir().display()
                );
                return Ok(());
            }
            let targets: Vec<Target> = covered.iter().map(|i| Target::Instance(*i)).collect();
            let mut sources = Vec::new();
            for t in &targets {
                sources.extend(pg.log_sources(Some(*t)).unwrap_or_default());
            }
            let stop = interrupted();
            println!("Following the logs; Ctrl-C stops the services.");
            print_logs(&sources, true, true, &stop, &mut std::io::stdout().lock()).context("printing logs")?;
            println!("Gracefully stopping...");
            pg.stop(&targets)?;
        }
        Cmd::Down { volumes } => pg.down(volumes)?,
        Cmd::Ps => print!("{}", ps::render(&pg.rows())),
        Cmd::Logs { follow, no_log_prefix, services } => {
            let mut sources = Vec::new();
            if services.is_empty() {
                sources = pg.log_sources(None)?;
            }
            for t in services {
                sources.extend(pg.log_sources(Some(t))?);
            }
            let stop = if follow { interrupted() } else { Arc::new(AtomicBool::new(true)) };
            match print_logs(&sources, follow, !no_log_prefix, &stop, &mut std::io::stdout().lock()) {
                // The reader went away (`playground logs jobmanager | head`): done.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
                r => r.context("printing logs")?,
            }
        }
        Cmd::Kill { signal, services } => {
            for t in services {
                pg.kill(t, signal)?;
            }
        }
        Cmd::Stop { services } => pg.stop(&services)?,
        Cmd::Restart { services } => {
            for t in services {
                pg.restart(t)?;
            }
        }
        Cmd::Scale { settings } => {
            for (service, n) in settings {
                pg.scale(service, n)?;
            }
        }
        Cmd::Supervise { .. } => bail!("supervise is handled before (internal; a bug)"),
    }
    Ok(())
}

/// A flag set on the first Ctrl-C (SIGINT) or SIGTERM; a second one exits
/// at once.
fn interrupted() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let set = flag.clone();
    std::thread::spawn(move || {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_io().build() else {
            return;
        };
        rt.block_on(async move {
            let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
                return;
            };
            loop {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
                if set.swap(true, Ordering::Relaxed) {
                    std::process::exit(130);
                }
                if std::io::stderr().is_terminal() {
                    eprintln!(" (Ctrl-C again to quit without stopping the services)");
                }
            }
        });
    });
    flag
}
