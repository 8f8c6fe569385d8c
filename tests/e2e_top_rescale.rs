//! End to end on the real Kafka: the window Top-N per partition (`top 3
//! by views desc per category`, as `jobs/examples/top3_per_category.flow`)
//! at parallelism 2, stopped with a savepoint while a window is half read
//! (its counts in the aggregate's state), resumed at parallelism 3 from
//! the savepoint, and written to an exactly-once Kafka sink. A
//! `read_committed` reader must see every window's exact ranked rows —
//! computed here from the events with a plain model — once each, across
//! the stop and the rescale.
//!
//! The events: ten 10-second windows; in each, three categories of six
//! pages, page `p` of category `c` viewed `1 + (p + w + c) % 6` times in
//! window `w` — six different counts per window and category, so the
//! ranks have no ties. One more view of each page, at the end of the
//! tenth window, ends it in every input partition (and opens an eleventh
//! window, which never ends).

mod support;

use flowc_playground::generator::TickSink;
use flowc_playground::kafka::{KafkaSink, ProducerSettings};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use support::cluster::Cluster;
use support::kafka::{create_topic, read_committed, unique_topic, Kafka};

const START: i64 = 1_795_558_500_000;
const WINDOW_MS: i64 = 10_000;
const WINDOWS: i64 = 10;
const CATEGORIES: [&str; 3] = ["books", "games", "music"];
const PAGES: i64 = 6;
const TOP: usize = 3;

/// A view: (ts, category, page).
type View = (i64, &'static str, String);

/// A ranked row as written: (window end, category, rank, page, views).
type Row = (i64, String, i64, String, i64);

fn views_of(w: i64, c: usize, p: i64) -> i64 {
    1 + (p + w + c as i64) % PAGES
}

/// Every view of window `w`, in time order, spread over the window: in
/// rounds, one view of each page that has one more, so that every page is
/// viewed early in the window (every input partition has rows early in it).
fn window_views(w: i64) -> Vec<View> {
    let mut each: Vec<(&'static str, String)> = Vec::new();
    for round in 0..PAGES {
        for (c, category) in CATEGORIES.iter().enumerate() {
            for p in (0..PAGES).filter(|p| views_of(w, c, *p) > round) {
                each.push((category, format!("/{category}/{p}")));
            }
        }
    }
    // The k-th view at an even step through the window.
    let n = each.len() as i64;
    each.into_iter().enumerate().map(|(k, (c, p))| (START + w * WINDOW_MS + k as i64 * WINDOW_MS / n, c, p)).collect()
}

/// The rows the job must write: per window and category, the three most
/// viewed pages ranked from 1.
fn model() -> Vec<Row> {
    let mut out = Vec::new();
    for w in 0..WINDOWS {
        let mut counts: BTreeMap<(&str, String), i64> = BTreeMap::new();
        for (_, c, p) in window_views(w) {
            *counts.entry((c, p)).or_default() += 1;
        }
        for category in CATEGORIES {
            let mut pages: Vec<(i64, &String)> =
                counts.iter().filter(|((c, _), _)| *c == category).map(|((_, p), n)| (*n, p)).collect();
            pages.sort_by_key(|p| std::cmp::Reverse(p.0));
            for (rank, (views, page)) in pages.into_iter().take(TOP).enumerate() {
                out.push((START + (w + 1) * WINDOW_MS, category.to_string(), rank as i64 + 1, page.clone(), views));
            }
        }
    }
    out.sort();
    out
}

/// Writes `views` to `topic` in one transaction, keyed by page (so each
/// page's views keep their order in one partition).
fn write(kafka: &Kafka, topic: &str, views: &[View], id: &str) {
    let mut s = KafkaSink::connect(&ProducerSettings {
        bootstrap: kafka.bootstrap().to_string(),
        topic: topic.to_string(),
        transactional_id: format!("test-top-{topic}-{id}"),
        transaction_timeout: Duration::from_secs(30),
        startup_timeout: Duration::from_secs(30),
    })
    .expect("connecting the producer");
    s.begin().expect("begin");
    for (ts, category, page) in views {
        let json = format!(r#"{{"ts":{ts},"category":"{category}","page":"{page}"}}"#);
        s.send_payload(Some(page), &json).expect("a view");
    }
    s.commit().expect("commit");
}

fn job(dir: &std::path::Path, bootstrap: &str, input: &str, output: &str) -> std::path::PathBuf {
    let text = format!(
        r#"job "Top 3 pages per window and category"
set execution.checkpointing.interval = 1s
set pipeline.max-parallelism = 128
schema View {{ ts: timestamp(epoch_millis), page: string, category: string }}
source kafka {{ servers: "{bootstrap}", topic: "{input}", group: "top", offsets: earliest, schema: View }} uid "source"
    | watermark ts {{ out_of_orderness: 0ms, idleness: 1s }} uid "watermarks"
    | key_by category, page
    | window tumbling {{ size: 10s }}
    | aggregate {{ end: window_end(), category, page, views: count() }} uid "views"
    | top 3 by views desc per category uid "top"
    | sink kafka {{ servers: "{bootstrap}", topic: "{output}", delivery: exactly_once }} uid "sink"
"#
    );
    let path = dir.join("top_rescale.flow");
    std::fs::write(&path, text).expect("writing the job");
    path
}

/// The committed rows of `output`, sorted, once `want` are in (and two
/// quiet seconds more, in which a duplicate would show).
fn written(bootstrap: &str, output: &str, want: usize, timeout: Duration) -> Vec<Row> {
    let fmt = flowc_compiler::timefmt::TimeFormat::new(flowc_compiler::ir::DEFAULT_TIMESTAMP_PATTERN).expect("pattern");
    let mut rows = read_committed(bootstrap, &[(output, 2)], want, timeout, Duration::from_secs(2), |m| {
        let v: Value = serde_json::from_slice(rdkafka::message::Message::payload(m).expect("a value")).expect("JSON");
        let text = |k: &str| v[k].as_str().unwrap_or_else(|| panic!("{k} in {v}")).to_string();
        let int = |k: &str| v[k].as_i64().unwrap_or_else(|| panic!("{k} in {v}"));
        (fmt.parse(&text("end")).expect("a time"), text("category"), int("rank"), text("page"), int("views"))
    });
    rows.sort();
    rows
}

#[test]
fn top_n_per_category_stopped_with_a_savepoint_resumes_at_parallelism_3_with_every_window_exact() {
    let kafka = Kafka::shared();
    let (input, output) = (unique_topic("top-rescale-input"), unique_topic("top-rescale-output"));
    create_topic(kafka.bootstrap(), &input, 2).expect("creating the input topic");
    create_topic(kafka.bootstrap(), &output, 2).expect("creating the output topic");
    let want = model();
    assert_eq!(want.len(), WINDOWS as usize * CATEGORIES.len() * TOP);

    // Windows 0 to 4, and the first half of window 5: 0 to 4 close.
    let mut views: Vec<View> = (0..WINDOWS).flat_map(window_views).collect();
    // The eleventh window's views: every partition's watermark passes the tenth.
    let pages: BTreeSet<(&'static str, String)> = window_views(0).into_iter().map(|(_, c, p)| (c, p)).collect();
    views.extend(pages.into_iter().map(|(c, p)| (START + WINDOWS * WINDOW_MS, c, p)));
    let half = START + 5 * WINDOW_MS + WINDOW_MS / 2;
    let (first, rest): (Vec<View>, Vec<View>) = views.into_iter().partition(|v| v.0 < half);
    write(kafka, &input, &first, "first");

    let cluster = Cluster::start("top-rescale", 2, 2);
    let job = job(&cluster.scratch.0, kafka.bootstrap(), &input, &output);
    let id = cluster.submit(&job, &["-p", "2"]);
    cluster.wait_all_tasks(&id, "RUNNING", Duration::from_secs(30));
    let closed = 5 * CATEGORIES.len() * TOP;
    let got = written(kafka.bootstrap(), &output, closed, Duration::from_secs(60));
    assert_eq!(got, want[..closed], "windows 0 to 4 before the stop");

    // Window 5's counts so far are in the savepoint.
    let savepoint = cluster.stop_with_savepoint(&id, Duration::from_secs(30));
    write(kafka, &input, &rest, "rest");
    let id2 = cluster.submit(&job, &["-p", "3", "-s", savepoint.as_str()]);
    cluster.wait_all_tasks(&id2, "RUNNING", Duration::from_secs(30));
    let got = written(kafka.bootstrap(), &output, want.len(), Duration::from_secs(60));
    cluster.wait_for_more_checkpoints(&id2, 2);
    let again = written(kafka.bootstrap(), &output, usize::MAX, Duration::from_secs(5));
    assert_eq!(got, want);
    assert_eq!(again, want, "nothing more after two more checkpoints");
    let j = cluster.job(&id2);
    assert!(j["vertices"].as_array().expect("vertices").iter().all(|v| v["parallelism"] == 3), "{j}");
}
