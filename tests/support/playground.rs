//! The click-event side of the end-to-end tests: load click events into a
//! topic with the playground's generator, make a copy of the Click Event
//! Count job that reads and writes a test's own topics, and read the job's
//! output back and check every window.

use flowc_playground::check::{check_counts_with, CheckOptions, OutputRecord, Summary};
use flowc_playground::generator::{Generator, Pacing, Plan};
use flowc_playground::kafka::{read_topic, KafkaSink, ProducerSettings};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

/// Event time of the first generated event: a 15 s window boundary.
pub const START_MS: i64 = 1_795_558_500_000; // 2026-11-24T22:15:00Z

/// Writes `events` click events (a multiple of 6) to `topic`, unpaced,
/// starting at `start_ms`, in committed transactions.
pub fn load_events(bootstrap: &str, topic: &str, start_ms: i64, events: u64) {
    let settings = ProducerSettings {
        bootstrap: bootstrap.to_string(),
        topic: topic.to_string(),
        transactional_id: format!("test-generator-{topic}"),
        transaction_timeout: Duration::from_secs(10),
        startup_timeout: Duration::from_secs(30),
    };
    let mut sink = KafkaSink::connect(&settings).expect("connecting the generator");
    let plan = Plan::new(start_ms, Some(events / 6), Pacing::Unpaced);
    Generator::new(plan).run(&mut sink, &AtomicBool::new(false)).expect("generating click events");
}

/// Fresh `input` and `output` topics of 2 partitions for one test, with
/// `events` click events loaded into `input` from [`START_MS`].
pub fn click_topics(kafka: &super::kafka::Kafka, name: &str, events: u64) -> (String, String) {
    use super::kafka::{create_topic, unique_topic};
    let (input, output) = (unique_topic(&format!("{name}-input")), unique_topic(&format!("{name}-output")));
    create_topic(kafka.bootstrap(), &input, 2).expect("creating the input topic");
    create_topic(kafka.bootstrap(), &output, 2).expect("creating the output topic");
    load_events(kafka.bootstrap(), &input, START_MS, events);
    (input, output)
}

/// `jobs/click_count.flow` with its topics renamed, written into `dir`.
pub fn click_count_job(dir: &Path, input: &str, output: &str) -> PathBuf {
    click_count_job_with(dir, input, output, "at_least_once")
}

/// The same with another delivery guarantee for the sink.
pub fn click_count_job_with(dir: &Path, input: &str, output: &str, delivery: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("jobs/click_count.flow")).expect("reading jobs/click_count.flow");
    let text = text
        .replace("topic: \"input\"", &format!("topic: \"{input}\""))
        .replace("topic: \"output\"", &format!("topic: \"{output}\""));
    assert!(text.contains(input) && text.contains(output), "the job's topics were not renamed");
    let text = text.replace("delivery: at_least_once", &format!("delivery: {delivery}"));
    let path = dir.join("click_count.flow");
    std::fs::write(&path, text).expect("writing the test job");
    path
}

/// Reads `topic` from the beginning until at least `windows` windows have
/// a record for each page (or `timeout`): (window start, page, count).
pub fn read_output(bootstrap: &str, topic: &str, windows: usize, timeout: Duration) -> Vec<(i64, String, u64)> {
    read_output_by_partition(bootstrap, topic, windows, timeout).0
}

/// Output records: (window start, page, count).
pub type OutputRows = Vec<(i64, String, u64)>;

/// As [`read_output`], with the records read from each partition.
fn read_output_by_partition(
    bootstrap: &str,
    topic: &str,
    windows: usize,
    timeout: Duration,
) -> (OutputRows, BTreeMap<i32, u64>) {
    let records: RefCell<Vec<(i64, String, u64)>> = RefCell::new(Vec::new());
    let mut per_partition: BTreeMap<i32, u64> = BTreeMap::new();
    let mut bad: Vec<String> = Vec::new();
    read_topic(
        bootstrap,
        topic,
        timeout,
        |r| {
            *per_partition.entry(r.partition).or_default() += 1;
            let text = String::from_utf8_lossy(r.payload);
            match OutputRecord::parse(&text) {
                Ok(o) => records.borrow_mut().push(o.as_tuple()),
                Err(e) => bad.push(format!("{e}: {text}")),
            }
        },
        || complete_windows(&records.borrow()) >= windows,
    )
    .expect("reading the output topic");
    assert!(bad.is_empty(), "undecodable output records: {bad:?}");
    (records.into_inner(), per_partition)
}

/// Reads `topic` until at least `windows` complete windows are there (or
/// `timeout`), and checks every window: 1000 per page, none missing.
/// Repeated identical records are allowed with `allow_repeats` (an
/// at-least-once sink).
pub fn expect_windows(bootstrap: &str, topic: &str, windows: usize, allow_repeats: bool, timeout: Duration) -> Summary {
    let (records, per_partition) = read_output_by_partition(bootstrap, topic, windows, timeout);
    if complete_windows(&records) < windows {
        // Tell a reader that missed records from records never written:
        // what each partition holds, and what a second, fresh reader sees.
        let ends = super::kafka::end_offsets(bootstrap, topic);
        let again = read_output(bootstrap, topic, windows, Duration::from_secs(10));
        panic!(
            "expected at least {windows} complete windows in `{topic}`, got {}: {records:?}\n\
             records read per partition: {per_partition:?}; end offsets: {ends:?}; \
             a second reader then saw {} complete windows",
            complete_windows(&records),
            complete_windows(&again)
        );
    }
    let opts = CheckOptions { allow_repeats, max_pending: 1, ..CheckOptions::default() };
    match check_counts_with(&records, &opts) {
        Ok(s) => s,
        Err(problems) => panic!("window check failed: {problems:?}\nrecords: {records:?}"),
    }
}

/// Windows with a record for each of the six pages.
pub fn complete_windows(records: &[(i64, String, u64)]) -> usize {
    let mut by_window: BTreeMap<i64, BTreeSet<&str>> = BTreeMap::new();
    for (w, p, _) in records {
        by_window.entry(*w).or_default().insert(p.as_str());
    }
    by_window.values().filter(|pages| pages.len() == 6).count()
}
