//! `flowc-limit`: the benchmark jobs written by hand as typed Rust — the
//! physical-limit column of `bench/`. Each job makes the same records as
//! flowc's datagen source does for `bench/jobs/*.flow`, with one thread
//! per subtask, and prints one JSON line:
//! `{"job": …, "events": N, "parallelism": P, "seconds": S, "events_per_second": R, "check": C}`.
//!
//! ```text
//! flowc-limit core [--events N] [--parallelism P]                 click_count_datagen*.flow
//! flowc-limit filter-strings [--events N] [--parallelism P]       filter_strings.flow
//! flowc-limit filter-map-select [--events N] [--parallelism P]    filter_map_select.flow
//! flowc-limit udf [--events N] [--parallelism P]                  udf_pipeline.flow
//! ```
//!
//! `check` is a figure of the result (windows fired, records kept) that
//! flowc's run must match, so that both sides are seen to do the work.

mod core;
mod gen;
mod pipelines;

use std::process::ExitCode;
use std::time::Instant;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USAGE: &str = "usage: flowc-limit core|filter-strings|filter-map-select|udf [--events N] [--parallelism P]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(job) = args.first() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let (mut events, mut parallelism) = (60_000_000u64, 2u32);
    let mut rest = args[1..].iter();
    while let Some(a) = rest.next() {
        let value = rest.next().and_then(|v| v.parse::<u64>().ok());
        match (a.as_str(), value) {
            ("--events", Some(v)) => events = v,
            ("--parallelism", Some(v)) if (1..=64).contains(&v) => parallelism = v as u32,
            _ => {
                eprintln!("bad argument `{a}`\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let started = Instant::now();
    let check = match job.as_str() {
        "core" => core::run(events, parallelism),
        "filter-strings" => pipelines::run(pipelines::Job::FilterStrings, events, parallelism),
        "filter-map-select" => pipelines::run(pipelines::Job::FilterMapSelect, events, parallelism),
        "udf" => pipelines::run(pipelines::Job::Udf, events, parallelism),
        other => {
            eprintln!("unknown job `{other}`\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{{\"job\": \"{job}\", \"events\": {events}, \"parallelism\": {parallelism}, \"seconds\": {seconds:.6}, \
         \"events_per_second\": {:.0}, \"check\": {check}}}",
        events as f64 / seconds
    );
    ExitCode::SUCCESS
}
