//! The window examples of `jobs/examples/` run as written (`flowc run`, a
//! mini cluster at parallelism 2) and print exactly what the same logic,
//! computed here, says they must: a session per user, late records to a
//! side output, the top 3 of every window and of every window and category.

mod support;

use serde_json::{json, Value};
use std::path::Path;
use support::cluster::Scratch;
use support::local::{flowc_run_ok, printed_records};

/// The records a job prints (`N> {json}` lines), sorted.
fn run(example: &str, parallelism: &str) -> Vec<Value> {
    let scratch = Scratch::new(&format!("example-{example}"));
    let job = Path::new(env!("CARGO_MANIFEST_DIR")).join("jobs/examples").join(format!("{example}.flow"));
    let stdout = flowc_run_ok(&scratch, &scratch.0, &job, &["-p", parallelism]);
    let mut rows: Vec<Value> = printed_records(&stdout)
        .iter()
        .map(|j| serde_json::from_str(j).unwrap_or_else(|e| panic!("{j}: {e}")))
        .collect();
    rows.sort_by_key(|v| v.to_string());
    rows
}

fn iso(ms: i64) -> String {
    let s = flowc_compiler::timefmt::TimeFormat::new(flowc_compiler::ir::DEFAULT_TIMESTAMP_PATTERN).expect("pattern");
    s.format(ms)
}

fn sorted(mut rows: Vec<Value>) -> Vec<Value> {
    rows.sort_by_key(|v| v.to_string());
    rows
}

#[test]
fn sessions_example_prints_one_session_per_user_and_burst() {
    let ts = |n: i64| n * 1000 + (n / 10) * 60_000;
    let mut want = Vec::new();
    for (k, user) in ["ann", "bob", "cy"].iter().enumerate() {
        for block in 0..3 {
            let ns: Vec<i64> = (block * 10..block * 10 + 10).filter(|n| n % 3 == k as i64).collect();
            let (first, last) = (ns[0], ns[ns.len() - 1]);
            want.push(json!({
                "user": user, "start": iso(ts(first)), "end": iso(ts(last) + 30_000),
                "clicks": ns.len(), "first": first, "last": last,
            }));
        }
    }
    assert_eq!(run("sessions", "2"), sorted(want));
}

#[test]
fn late_side_output_example_passes_the_late_records_on_and_counts_the_rest() {
    let late = [39i64, 59];
    let mut want = Vec::new();
    for start in (0..60).step_by(10) {
        for (p, page) in ["/a", "/b"].iter().enumerate() {
            let clicks = (start..start + 10).filter(|n| n % 2 == p as i64 && !late.contains(n)).count();
            want.push(json!({ "page": page, "start": iso(start * 1000), "clicks": clicks }));
        }
    }
    for n in late {
        want.push(json!({ "late": n, "page": "/b", "ts": iso(n * 1000 - 60_000) }));
    }
    assert_eq!(run("late_side_output", "1"), sorted(want));
}

#[test]
fn top3_example_ranks_the_pages_of_every_window() {
    let mut want = Vec::new();
    for end in [10_000, 20_000, 30_000] {
        for (rank, (page, views)) in [("/d", 40), ("/c", 30), ("/b", 20)].iter().enumerate() {
            want.push(json!({ "end": iso(end), "page": page, "views": views, "rank": rank + 1 }));
        }
    }
    assert_eq!(run("top3", "2"), sorted(want));
}

#[test]
fn top3_per_category_example_ranks_the_pages_of_every_window_and_category() {
    let mut want = Vec::new();
    for end in [10_000, 20_000, 30_000] {
        let books = [("/d", 40), ("/c", 30), ("/b", 20)].map(|r| ("books", r));
        let games = [("/w", 40), ("/x", 30), ("/y", 20)].map(|r| ("games", r));
        for (category, ranked) in [("books", books), ("games", games)] {
            for (rank, (_, (page, views))) in ranked.iter().enumerate() {
                want.push(
                    json!({ "end": iso(end), "category": category, "page": page, "views": views, "rank": rank + 1 }),
                );
            }
        }
    }
    // At 3, the windows' rows go to the subtasks by window and category.
    assert_eq!(run("top3_per_category", "3"), sorted(want));
}
