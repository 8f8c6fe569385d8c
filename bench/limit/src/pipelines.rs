//! The expression-heavy pipelines, by hand: datagen → filter (→ map →
//! select) → discard, one thread per subtask, a batch of 1024 records at a
//! time (as flowc's source makes them).
//!
//! ```text
//! filter-strings:    filter page != "/help" and contains(referrer, "q=")
//! filter-map-select: filter user % 10 != 0 and page != "/about"
//!                    | map { bucket: user % 16, score: user * 3 + length(page), later: ts + 1s }
//!                    | select { page, bucket, score, later }
//! udf:               filter page != "/help"
//!                    | select { page, user, score: score(user, millis(ts)) }
//! ```
//!
//! `score` is `bench/jobs/udfs/visits.rs`, the UDF file of
//! `udf_pipeline.flow`, compiled in here as a plain (inlinable) function.

use crate::gen::{click_ts, cycle, random, PAGES, REFERRERS};

#[path = "../../jobs/udfs/visits.rs"]
mod visits;

const BATCH: u64 = 1024;

#[derive(Clone, Copy)]
pub enum Job {
    FilterStrings,
    FilterMapSelect,
    Udf,
}

#[derive(Clone, Copy)]
struct Visit {
    ts: i64,
    page: &'static str,
    referrer: &'static str,
    user: i64,
}

struct Scored {
    page: &'static str,
    user: i64,
    score: i64,
}

struct Out {
    page: &'static str,
    bucket: i64,
    score: i64,
    later: i64,
}

fn visit(i: u64) -> Visit {
    Visit { ts: click_ts(i), page: cycle(&PAGES, i), referrer: cycle(&REFERRERS, i), user: random(1, 100_000, i) }
}

/// One subtask; returns the records that reached the sink.
fn subtask(job: Job, k: u32, p: u32, events: u64) -> u64 {
    let mut kept = 0u64;
    let mut batch: Vec<Visit> = Vec::with_capacity(BATCH as usize);
    let mut out: Vec<Out> = Vec::with_capacity(BATCH as usize);
    let mut scored: Vec<Scored> = Vec::with_capacity(BATCH as usize);
    let mut i = u64::from(k);
    while i < events {
        batch.clear();
        while batch.len() < BATCH as usize && i < events {
            batch.push(visit(i));
            i += u64::from(p);
        }
        match job {
            Job::FilterStrings => {
                let n = batch.iter().filter(|v| v.page != "/help" && v.referrer.contains("q=")).count();
                kept += std::hint::black_box(n) as u64;
            }
            Job::FilterMapSelect => {
                out.clear();
                out.extend(batch.iter().filter(|v| v.user % 10 != 0 && v.page != "/about").map(|v| Out {
                    page: v.page,
                    bucket: v.user % 16,
                    score: v.user * 3 + v.page.chars().count() as i64,
                    later: v.ts + 1000,
                }));
                std::hint::black_box(
                    out.iter().map(|o| o.bucket ^ o.score ^ o.later ^ o.page.len() as i64).sum::<i64>(),
                );
                kept += out.len() as u64;
            }
            Job::Udf => {
                scored.clear();
                scored.extend(batch.iter().filter(|v| v.page != "/help").map(|v| Scored {
                    page: v.page,
                    user: v.user,
                    score: visits::score(v.user, v.ts),
                }));
                std::hint::black_box(scored.iter().map(|o| o.user ^ o.score ^ o.page.len() as i64).sum::<i64>());
                kept += scored.len() as u64;
            }
        }
    }
    kept
}

/// Runs the job; returns the records that reached the sink.
pub fn run(job: Job, events: u64, p: u32) -> u64 {
    let threads: Vec<_> = (0..p).map(|k| std::thread::spawn(move || subtask(job, k, p, events))).collect();
    threads.into_iter().map(|t| t.join().unwrap_or(0)).sum()
}
