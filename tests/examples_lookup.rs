//! The lookup join example, `jobs/examples/joins/clicks_categories.flow`,
//! runs with `flowc run` (the mini cluster) at parallelism 2: each subtask
//! of the join reads the whole side file, so every click meets its page's
//! rows whichever subtask it reaches; a side input that is not there fails
//! the job with its path.

mod support;

use std::path::Path;
use std::process::Output;
use support::cluster::Scratch;
use support::local::flowc_run;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn run(args: &[&str]) -> Output {
    let scratch = Scratch::new("example-lookup");
    flowc_run(&scratch, root(), &root().join("jobs/examples/joins/clicks_categories.flow"), args)
}

#[test]
fn a_lookup_join_at_parallelism_2_meets_the_whole_file_in_each_subtask() {
    let o = run(&["-p", "2"]);
    let stdout = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success(), "{stdout}{}", String::from_utf8_lossy(&o.stderr));
    // `print` at parallelism 2 prefixes each row with its subtask (`1> `).
    let mut rows: Vec<&str> =
        stdout.lines().filter_map(|l| l.split_once("> ").map(|(_, r)| r)).filter(|r| r.starts_with('{')).collect();
    rows.sort_unstable();
    assert_eq!(
        rows,
        vec![
            r#"{"user":"ann","page":"/docs/api","category":"docs"}"#,
            r#"{"user":"ann","page":"/home","category":"landing"}"#,
            r#"{"user":"bob","page":"/home","category":"landing"}"#,
            r#"{"user":"bob","page":"/pricing","category":"product"}"#,
            r#"{"user":"bob","page":"/pricing","category":"sales"}"#,
            r#"{"user":"cy","page":"/careers","category":"other"}"#,
        ]
    );
    let subtasks: std::collections::BTreeSet<&str> =
        stdout.lines().filter_map(|l| l.split_once("> ").map(|(s, _)| s)).filter(|s| s.len() <= 2).collect();
    assert_eq!(subtasks.len(), 2, "both subtasks of the join emit rows: {stdout}");
}

#[test]
fn a_missing_side_input_fails_the_job_with_its_path() {
    let o = run(&["--categories", "jobs/examples/data/no-such-pages"]);
    let stderr = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(!o.status.success(), "the job should fail: {stderr}");
    assert!(
        stderr.contains("cannot read the side input") && stderr.contains("no-such-pages"),
        "the error names the side input and its path: {stderr}"
    );
}
