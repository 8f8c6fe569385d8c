//! `clickevent-check`: reads the Click Event Count job's `output` topic (or,
//! with `--events`, the generator's `input` topic) and checks that every
//! complete 15 s window counted exactly 1000 clicks for each page.

use std::cell::RefCell;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use flowc_playground::check::{check_counts_with, CheckOptions, EventTally, OutputRecord, Problem, Summary, Table};
use flowc_playground::clickevent::{format_timestamp, EVENTS_PER_PAGE_PER_WINDOW};
use flowc_playground::kafka::{self, ReadStats};

/// Reads the Click Event Count output topic ({"windowStart":…,"windowEnd":…,
/// "page":…,"count":…}, read_committed) from the beginning, prints a table
/// per window and a verdict. Exits 0 if every complete window shows exactly
/// 1000 for each of the 6 pages and no window between the first and the last
/// is missing; 1 otherwise.
#[derive(Debug, Parser)]
#[command(name = "clickevent-check", version)]
struct Args {
    /// Kafka bootstrap servers.
    #[arg(
        long = "bootstrap.servers",
        alias = "bootstrap-servers",
        value_name = "HOST:PORT",
        default_value = "localhost:9092"
    )]
    bootstrap_servers: String,

    /// Topic to read [default: output, or input with --events].
    #[arg(long)]
    topic: Option<String>,

    /// Check the raw click events of the generator's topic instead: count
    /// them per window and page and check that event time never goes
    /// backwards. The last window may still be in progress.
    #[arg(long)]
    events: bool,

    /// Read for at most this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    timeout: u64,

    /// Keep reading (up to --timeout) until at least N complete windows are
    /// in; fewer is a failure.
    #[arg(long, value_name = "N", default_value_t = 1)]
    min_windows: usize,

    /// Allow identical repeats of a record, as an at-least-once sink may
    /// write.
    #[arg(long)]
    at_least_once: bool,

    /// The first window may be partial (the job or the generator started in
    /// the middle of it).
    #[arg(long)]
    partial_first: bool,

    /// How many windows after the last complete one may still lack pages.
    #[arg(long, value_name = "N", default_value_t = 2)]
    max_pending: usize,

    /// Print only the verdict, not the table.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Default)]
struct Collected {
    records: Vec<(i64, String, u64)>,
    bad: Vec<Problem>,
    tally: EventTally,
}

impl Collected {
    fn complete_windows(&self, events: bool) -> usize {
        if events {
            let records = self.tally.records();
            let table = Table::from_records(&records);
            table.rows.len().saturating_sub(1)
        } else {
            let table = Table::from_records(&self.records);
            table.rows.values().filter(|r| r.counts.iter().all(|c| !c.is_empty())).count()
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let topic = args.topic.clone().unwrap_or_else(|| if args.events { "input" } else { "output" }.to_owned());

    let collected = RefCell::new(Collected::default());
    let read = kafka::read_topic(
        &args.bootstrap_servers,
        &topic,
        Duration::from_secs(args.timeout),
        |r| {
            let mut c = collected.borrow_mut();
            let text = String::from_utf8_lossy(r.payload);
            if args.events {
                c.tally.push_json(r.partition, r.offset, &text);
            } else {
                match OutputRecord::parse(&text) {
                    Ok(rec) => c.records.push(rec.as_tuple()),
                    Err(error) => c.bad.push(Problem::BadRecord {
                        at: format!("partition {} offset {}", r.partition, r.offset),
                        error,
                    }),
                }
            }
        },
        || collected.borrow().complete_windows(args.events) >= args.min_windows,
    );
    let stats = match read {
        Ok(s) => s,
        Err(e) => {
            eprintln!("clickevent-check: error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let c = collected.into_inner();
    let opts = CheckOptions {
        allow_repeats: args.at_least_once,
        partial_first: args.partial_first,
        max_pending: args.max_pending,
        ..CheckOptions::default()
    };
    let (result, table) = if args.events {
        let records = c.tally.records();
        (c.tally.check(args.partial_first), Table::from_records(&records))
    } else {
        let mut result = check_counts_with(&c.records, &opts);
        if !c.bad.is_empty() {
            let mut problems = c.bad.clone();
            if let Err(p) = result {
                problems.extend(p);
            }
            result = Err(problems);
        }
        (result, Table::from_records(&c.records))
    };
    if !args.quiet {
        println!("{table}");
    }
    print_stats(&topic, &stats, &c, args.events);
    verdict(result, args.min_windows)
}

fn print_stats(topic: &str, stats: &ReadStats, c: &Collected, events: bool) {
    let how = if stats.timed_out && !stats.caught_up { "timed out before reaching its end" } else { "read to its end" };
    if events {
        println!(
            "topic {topic:?}: {} records ({} click events, last event time {}), {how}",
            stats.records,
            c.tally.events,
            c.tally.max_timestamp_ms.map_or_else(|| "-".to_owned(), format_timestamp)
        );
    } else {
        println!("topic {topic:?}: {} records, {how}", stats.records);
    }
}

fn verdict(result: Result<Summary, Vec<Problem>>, min_windows: usize) -> ExitCode {
    match result {
        Ok(s) if s.complete_windows >= min_windows => {
            println!("OK: {s}");
            ExitCode::SUCCESS
        }
        Ok(s) => {
            println!("FAIL: only {} complete window(s), wanted at least {min_windows} ({s})", s.complete_windows);
            ExitCode::FAILURE
        }
        Err(problems) => {
            println!(
                "FAIL: {} problem(s); every complete window must show exactly {EVENTS_PER_PAGE_PER_WINDOW} per page:",
                problems.len()
            );
            for p in problems.iter().take(50) {
                println!("  - {p}");
            }
            if problems.len() > 50 {
                println!("  … and {} more", problems.len() - 50);
            }
            ExitCode::FAILURE
        }
    }
}
