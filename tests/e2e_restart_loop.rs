//! End to end: a job that fails the same way on every attempt is cut off by
//! its restart strategy, as in Flink (issue 9: "a restart loop on the same
//! failure"), and its exception history stays within
//! `web.exception-history-size`.
//!
//! The job divides by zero at its 4th record, every time it (re)starts from
//! the beginning of its datagen source, so each restart meets the same
//! failure.

mod support;

use serde_json::Value;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use support::cluster::Cluster;

/// A job that fails at its 4th record, on every attempt.
fn failing_job(cluster: &Cluster) -> PathBuf {
    let text = "job \"Always Fails\"\nschema E { page: string, n: long }\n\
                source datagen { schema: E, count: 50, page: cycle(\"/help\", \"/index\"), n: sequence(-3, 1) }\n    \
                | map { page, r: 10 / n } name \"Ratio\"\n    | sink discard\n";
    let job = cluster.scratch.0.join("always_fails.flow");
    std::fs::write(&job, text).expect("writing the job");
    job
}

/// Runs the failing job under `config` until it is FAILED; its restarts and
/// `/exceptions`.
fn run_until_failed(name: &str, config: &str) -> (i64, Value, Duration) {
    let cluster = Cluster::start_with(name, 1, 1, config);
    let job = failing_job(&cluster);
    let started = Instant::now();
    let id = cluster.submit(&job, &["-p", "1"]);
    cluster.wait_job_state(&id, "FAILED", Duration::from_secs(60));
    let took = started.elapsed();
    // FAILED is final: no restart follows.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(cluster.job(&id)["state"], "FAILED");
    let restarts = cluster.metric(&id, "numRestarts").expect("numRestarts");
    let ex = cluster.rest().get(&format!("/jobs/{id}/exceptions")).expect("exceptions");
    let root = ex["root-exception"].as_str().unwrap_or("");
    assert!(root.contains("Ratio: division by zero"), "the job fails for its own reason: {ex}");
    (restarts, ex, took)
}

fn entries(ex: &Value) -> Vec<String> {
    ex["exceptionHistory"]["entries"].as_array().expect("entries").iter().map(Value::to_string).collect()
}

#[test]
fn fixed_delay_gives_up_after_its_attempts_and_caps_the_history() {
    let config = "restart-strategy.type: fixed-delay\nrestart-strategy.fixed-delay.attempts: 3\n\
                  restart-strategy.fixed-delay.delay: 200\nweb.exception-history-size: 2\n";
    let (restarts, ex, took) = run_until_failed("restartloop-fixed", config);
    eprintln!("fixed-delay: FAILED after {restarts} restarts in {took:?}");
    assert_eq!(restarts, 3, "exactly the configured attempts: {ex}");
    // Four failures (the first and one per restart), the newest two kept.
    let kept = entries(&ex);
    assert_eq!(kept.len(), 2, "{ex}");
    assert!(kept.iter().all(|e| e.contains("division by zero")), "{ex}");
    assert_eq!(ex["exceptionHistory"]["truncated"], true, "{ex}");
}

#[test]
fn failure_rate_gives_up_at_the_first_failure_past_its_rate() {
    let config = "restart-strategy.type: failure-rate\n\
                  restart-strategy.failure-rate.max-failures-per-interval: 2\n\
                  restart-strategy.failure-rate.failure-rate-interval: 60000\n\
                  restart-strategy.failure-rate.delay: 200\n";
    let (restarts, ex, took) = run_until_failed("restartloop-rate", config);
    eprintln!("failure-rate: FAILED after {restarts} restarts in {took:?}");
    assert_eq!(restarts, 2, "two restarts within the minute, the third failure fails the job: {ex}");
    // Three failures, all kept (the default history holds 16).
    let kept = entries(&ex);
    assert_eq!(kept.len(), 3, "{ex}");
    assert!(kept.iter().all(|e| e.contains("division by zero")), "{ex}");
    assert_eq!(ex["exceptionHistory"]["truncated"], false, "{ex}");
}
