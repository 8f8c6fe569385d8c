//! What one re-check (parse, check, names) of a 1,000-line job costs the
//! language server, and of `jobs/examples/udf/trips.flow`, whose re-check
//! also reads and parses its `use rust` file: a measurement, not a test
//! (no timing is asserted).
//!
//! `cargo run --release -p flowc-lsp --example analysis_time`

use flowc_lsp::analysis::{big_job, Analysis};
use std::time::Instant;

fn main() {
    let text = big_job(1000);
    let runs = 20;
    let started = Instant::now();
    for _ in 0..runs {
        std::hint::black_box(Analysis::new(text.clone()));
    }
    let per = started.elapsed() / runs;
    println!("{} lines, {} bytes: {per:?} per analysis (mean of {runs})", text.lines().count(), text.len());
    let started = Instant::now();
    for _ in 0..runs {
        std::hint::black_box(flowc_dsl::parse(&text));
    }
    println!("of which parsing: {:?}", started.elapsed() / runs);
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../jobs/examples/udf/trips.flow");
    let Ok(text) = std::fs::read_to_string(&path) else { return };
    let started = Instant::now();
    for _ in 0..runs {
        std::hint::black_box(Analysis::at(Some(&path), text.clone()));
    }
    let with_rust = started.elapsed() / runs;
    let started = Instant::now();
    for _ in 0..runs {
        std::hint::black_box(Analysis::new(text.clone()));
    }
    println!(
        "trips.flow: {with_rust:?} per analysis with its `use rust` file read and parsed, {:?} without",
        started.elapsed() / runs
    );
}
