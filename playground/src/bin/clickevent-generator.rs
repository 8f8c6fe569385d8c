//! `clickevent-generator`: writes click events to Kafka, exactly 1000 per
//! page per 15 s window of event time, resuming after the last committed
//! event on restart.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use flowc_playground::clickevent::{format_timestamp, parse_timestamp, ticks_for_events, EVENTS_PER_TICK};
use flowc_playground::generator::{choose_start, Generator, Pacing, Plan};
use flowc_playground::kafka::{self, KafkaSink, ProducerSettings};

/// Writes JSON click events ({"timestamp":…,"page":…}) for the Click Event
/// Count job to Kafka: 6 pages, one event per page every 15 ms of event time,
/// so exactly 1000 per page in every 15 s window; paced to real time (400
/// events/s) by default. Whole ticks are committed in Kafka transactions, so
/// after a restart — even after kill -9 — event time continues right after
/// the last committed event and never goes backwards.
#[derive(Debug, Parser)]
#[command(name = "clickevent-generator", version)]
struct Args {
    /// Kafka bootstrap servers.
    #[arg(
        long = "bootstrap.servers",
        alias = "bootstrap-servers",
        value_name = "HOST:PORT",
        default_value = "localhost:9092"
    )]
    bootstrap_servers: String,

    /// Topic to write to.
    #[arg(long, default_value = "input")]
    topic: String,

    /// Events per second of wall time (6 events per 15 ms tick of event
    /// time); above 400 event time runs ahead of the clock. 0 writes as fast
    /// as possible.
    #[arg(long, value_name = "N", default_value_t = flowc_playground::clickevent::DEFAULT_RATE)]
    rate: u64,

    /// Write as fast as possible (same as --rate 0).
    #[arg(long)]
    no_pacing: bool,

    /// Stop after N events (rounded up to whole ticks of 6), then flush and
    /// exit 0. Without it, run until SIGINT or SIGTERM.
    #[arg(long, value_name = "N")]
    count: Option<u64>,

    /// Event time of the first event (RFC 3339 like 2026-11-24T22:15:00Z, or
    /// epoch milliseconds) instead of resuming from the topic or starting at
    /// the current 15 s window. Refused if it is behind the topic's last
    /// event.
    #[arg(long, value_name = "TIME", value_parser = parse_start_time)]
    start_time: Option<i64>,

    /// Allow --start-time behind the events already in the topic (the
    /// windows it overlaps will then count more than 1000).
    #[arg(long, requires = "start_time")]
    force_start: bool,

    /// Kafka transactional.id [default: clickevent-generator-<topic>]. A new
    /// generator with the same id fences the old one.
    #[arg(long, value_name = "ID")]
    transactional_id: Option<String>,

    /// Partitions of the topic if the generator has to create it.
    #[arg(long, value_name = "N", default_value_t = 2)]
    partitions: i32,

    /// Commit a transaction at least this often, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 100)]
    commit_interval_ms: u64,

    /// The broker aborts a transaction left open this long by a generator
    /// that died and was not restarted, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    transaction_timeout_ms: u64,

    /// How long to wait for Kafka at start-up, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    startup_timeout: u64,
}

fn parse_start_time(s: &str) -> Result<i64, String> {
    parse_timestamp(s).map_err(|e| e.to_string())
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("clickevent-generator: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    tokio::spawn(watch_signals(stop.clone()));

    let startup = Duration::from_secs(args.startup_timeout);
    let deadline = Instant::now() + startup;
    loop {
        match kafka::ensure_topic(&args.bootstrap_servers, &args.topic, args.partitions, Duration::from_secs(5)).await {
            Ok(()) => break,
            Err(e) if Instant::now() < deadline && !stop.load(Ordering::Relaxed) => {
                tracing::info!(error = %e, "Kafka not ready yet; retrying.");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => return Err(e).context("checking the topic"),
        }
    }

    tokio::task::spawn_blocking(move || generate(args, &stop))
        .await
        .context("generator thread panicked (internal; a bug)")?
}

fn generate(args: Args, stop: &AtomicBool) -> anyhow::Result<()> {
    let settings = ProducerSettings {
        bootstrap: args.bootstrap_servers.clone(),
        topic: args.topic.clone(),
        transactional_id: args.transactional_id.clone().unwrap_or_else(|| kafka::transactional_id(&args.topic)),
        transaction_timeout: Duration::from_millis(args.transaction_timeout_ms),
        startup_timeout: Duration::from_secs(args.startup_timeout),
    };
    // Fence any earlier generator first: after this its last transaction is
    // either committed or aborted, so the topic's tail is final.
    let t = Instant::now();
    let mut sink = KafkaSink::connect(&settings)?;
    tracing::info!(transactional_id = %settings.transactional_id, elapsed_ms = t.elapsed().as_millis() as u64, "Initialised transactions; earlier generators are fenced.");
    let t = Instant::now();
    let last = kafka::last_committed_timestamp(
        &args.bootstrap_servers,
        &args.topic,
        Duration::from_secs(args.startup_timeout),
    )?;
    tracing::info!(last = ?last.map(format_timestamp), elapsed_ms = t.elapsed().as_millis() as u64, "Read the last committed event.");
    let now_ms = chrono::Utc::now().timestamp_millis();
    let decision = choose_start(now_ms, last, args.start_time, args.force_start)?;

    let pacing = if args.no_pacing { Pacing::Unpaced } else { Pacing::from_rate(args.rate) };
    let ticks = args.count.map(ticks_for_events);
    if let Some(n) = args.count {
        if n % EVENTS_PER_TICK != 0 {
            tracing::warn!(
                count = n,
                writing = ticks_for_events(n) * EVENTS_PER_TICK,
                "--count is not a multiple of 6; rounding up to whole ticks so every tick has all six pages."
            );
        }
    }
    let plan = Plan {
        commit_interval: Duration::from_millis(args.commit_interval_ms.max(1)),
        ..Plan::new(decision.start_ms, ticks, pacing)
    };
    let pace = match pacing {
        Pacing::Unpaced => "as fast as possible".to_owned(),
        Pacing::EventsPerSecond(r) => format!("{r} events/s"),
    };
    let until = match ticks {
        Some(t) => format!("{} events", t * EVENTS_PER_TICK),
        None => "until SIGINT/SIGTERM".to_owned(),
    };
    eprintln!(
        "clickevent-generator: event time starts at {decision}; writing to topic {:?} at {} ({pace}, {until})",
        args.topic, args.bootstrap_servers
    );

    let mut generator = Generator::new(plan);
    let result = generator.run(&mut sink, stop);
    let p = generator.progress();
    eprintln!(
        "clickevent-generator: wrote {} events ({} ticks in {} transactions, {} aborted) to topic {:?}; event time {} to {}",
        p.events(),
        p.ticks,
        p.transactions,
        p.aborted_transactions,
        args.topic,
        format_timestamp(decision.start_ms),
        p.last_ms.map_or_else(|| "-".to_owned(), format_timestamp),
    );
    drop(sink);
    result.map_err(Into::into)
}

/// First SIGINT/SIGTERM: finish the current tick, commit, exit 0. Second:
/// exit at once (the open transaction is aborted by the next generator or
/// the broker's transaction timeout).
async fn watch_signals(stop: Arc<AtomicBool>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
        tracing::warn!("Cannot install signal handlers; SIGINT/SIGTERM will kill without a final commit.");
        return;
    };
    for n in 0.. {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        if n == 0 {
            tracing::info!("Stopping after the current transaction (signal again to exit at once).");
            stop.store(true, Ordering::Relaxed);
        } else {
            std::process::exit(130);
        }
    }
}
