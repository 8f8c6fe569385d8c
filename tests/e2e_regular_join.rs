//! End to end on the real Kafka: a regular join (`join … ttl 1d`, no time
//! bound) of clicks with impressions into the exactly-once Kafka sink. A
//! `read_committed` reader sees every click whose impression exists joined
//! with it exactly once, whatever the time between the two — through a
//! killed TaskManager, and through a stop with a savepoint and a resume at
//! parallelism 3. The records of the second load meet rows of both sides
//! that only the restored state holds: clicks held back meet impressions
//! of the first load, impressions held back meet clicks of the first load.
//! And `ttl` shows in the checkpoints: once the input is read, the
//! checkpoint size falls as the join's rows expire.
//!
//! The regular left join (`left join … ttl 1d`) on the same loads: every
//! click comes out, null-padded until its impression comes, then
//! retracted (`-D`) and joined. Its changelog, written to files through a
//! stop with a savepoint and a resume at parallelism 3, folds to exactly
//! the left join of all records, every row checked, no `-D` of a row not
//! there; and through a killed TaskManager, a running aggregate of it per
//! click into an upsert topic holds exactly one row per click, with its
//! campaign or none.

mod support;

use flowc_playground::joins::{events, parse_joined, write_all, write_order, Click, Impression, Joined};
use flowc_playground::kafka::{read_topic, KafkaSink, ProducerSettings};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use support::cluster::Cluster;
use support::kafka::{create_topic, unique_topic, Kafka};

const START: i64 = 1_795_558_500_000;
const SECOND_START: i64 = START + 20_000;

struct Topics {
    clicks: String,
    impressions: String,
    out: String,
}

fn topics(kafka: &Kafka, name: &str) -> Topics {
    let t = Topics {
        clicks: unique_topic(&format!("{name}-clicks")),
        impressions: unique_topic(&format!("{name}-impressions")),
        out: unique_topic(&format!("{name}-out")),
    };
    for topic in [&t.clicks, &t.impressions, &t.out] {
        create_topic(kafka.bootstrap(), topic, 2).expect("creating a topic");
    }
    t
}

fn producer(kafka: &Kafka, topic: &str) -> KafkaSink {
    KafkaSink::connect(&ProducerSettings {
        bootstrap: kafka.bootstrap().to_string(),
        topic: topic.to_string(),
        transactional_id: format!("test-rjoin-generator-{topic}"),
        transaction_timeout: Duration::from_secs(30),
        startup_timeout: Duration::from_secs(30),
    })
    .expect("connecting the generator")
}

/// Writes the records, each topic in one transaction, out of order.
fn write(kafka: &Kafka, t: &Topics, imps: &[Impression], clicks: &[Click]) {
    let mut s = producer(kafka, &t.impressions);
    write_all(&mut s, write_order(imps, |m| m.ts, |m| m.imp_id).iter().map(|m| m.to_json())).expect("impressions");
    let mut s = producer(kafka, &t.clicks);
    write_all(&mut s, write_order(clicks, |c| c.ts, |c| c.click_id).iter().map(|c| c.to_json())).expect("clicks");
}

/// What the regular join emits: each click with the impression of its id,
/// however far apart in time (every 50th click names none).
fn expected(imps: &[Impression], clicks: &[Click]) -> BTreeMap<Joined, usize> {
    let by_id: BTreeMap<i64, &Impression> = imps.iter().map(|m| (m.imp_id, m)).collect();
    let mut out = BTreeMap::new();
    for c in clicks {
        if let Some(m) = by_id.get(&c.imp_id) {
            *out.entry((c.click_id, m.imp_id, m.campaign.clone())).or_insert(0) += 1;
        }
    }
    out
}

/// The records of the second load: held back from the first, and the
/// events of impressions 3000..6000.
struct Held {
    imps: Vec<Impression>,
    clicks: Vec<Click>,
}

/// The first load: impressions 0..3000 but every fifth, and their clicks
/// before `START + 30 s`. Returns what is held back for the second load
/// and every row the two loads must give.
fn load_first(kafka: &Kafka, t: &Topics) -> (Held, BTreeMap<Joined, usize>) {
    let (imps, clicks) = events(START, 0, 3000);
    let mut want = expected(&imps, &clicks);
    let (early, held_clicks): (Vec<Click>, Vec<Click>) = clicks.into_iter().partition(|c| c.ts < START + 30_000);
    let (first, held_imps): (Vec<Impression>, Vec<Impression>) = imps.into_iter().partition(|m| m.imp_id % 5 != 0);
    let meets = |c: &Click, ms: &[Impression]| ms.iter().any(|m| m.imp_id == c.imp_id);
    let clicks_on_state = held_clicks.iter().filter(|c| meets(c, &first)).count();
    let imps_on_state = early.iter().filter(|c| meets(c, &held_imps)).count();
    assert!(clicks_on_state > 100 && imps_on_state > 100, "{clicks_on_state} and {imps_on_state} rows need state");
    write(kafka, t, &first, &early);
    let (imps2, clicks2) = events(SECOND_START, 3000, 6000);
    want.extend(expected(&imps2, &clicks2));
    let mut held = Held { imps: held_imps, clicks: held_clicks };
    held.imps.extend(imps2);
    held.clicks.extend(clicks2);
    (held, want)
}

fn load_second(kafka: &Kafka, t: &Topics, held: Held) {
    write(kafka, t, &held.imps, &held.clicks);
}

/// No `watermark`: a regular join needs none.
fn job(dir: &std::path::Path, t: &Topics) -> std::path::PathBuf {
    let text = format!(
        r#"job "Clicks with their impressions, a regular join"
param bootstrap.servers: string = "localhost:9092"
set execution.checkpointing.interval = 1s
schema Click {{ ts: timestamp, click_id: long, imp_id: long }}
schema Impression {{ ts: timestamp, imp_id: long, campaign: string }}
let clicks = source kafka {{
        servers: $bootstrap.servers, topic: "{}", group: "rjoin-clicks", offsets: earliest, format: json, schema: Click
    }} uid "clicks"
let impressions = source kafka {{
        servers: $bootstrap.servers, topic: "{}", group: "rjoin-impressions", offsets: earliest, format: json
        schema: Impression
    }} uid "impressions"
from clicks
    | join impressions on imp_id == impressions.imp_id ttl 1d uid "join"
    | select {{ click_id, imp_id: clicks.imp_id, campaign }}
    | sink kafka {{ servers: $bootstrap.servers, topic: "{}", format: json, delivery: exactly_once }} uid "sink"
"#,
        t.clicks, t.impressions, t.out
    );
    let path = dir.join("rjoin.flow");
    std::fs::write(&path, text).expect("writing the job");
    path
}

/// Reads the output (committed only) until it holds `at_least` rows, or
/// `timeout`; every row counted.
fn read_joined(kafka: &Kafka, topic: &str, at_least: usize, timeout: Duration) -> BTreeMap<Joined, usize> {
    let mut got: BTreeMap<Joined, usize> = BTreeMap::new();
    let mut bad = Vec::new();
    let mut n = 0usize;
    let count = std::cell::Cell::new(0usize);
    read_topic(
        kafka.bootstrap(),
        topic,
        timeout,
        |r| {
            let text = String::from_utf8_lossy(r.payload);
            match parse_joined(&text) {
                Some(j) => *got.entry(j).or_insert(0) += 1,
                None => bad.push(text.to_string()),
            }
            n += 1;
            count.set(n);
        },
        || count.get() >= at_least,
    )
    .expect("reading the output");
    assert!(bad.is_empty(), "undecodable output: {bad:?}");
    got
}

fn total(m: &BTreeMap<Joined, usize>) -> usize {
    m.values().sum()
}

/// Every expected row once, nothing else; read again after the job took
/// two more checkpoints, so that a late repeat would show.
fn expect_exactly(cluster: &Cluster, kafka: &Kafka, id: &str, topic: &str, want: &BTreeMap<Joined, usize>) {
    let got = read_joined(kafka, topic, total(want), Duration::from_secs(120));
    let missing: Vec<_> = want.keys().filter(|k| !got.contains_key(*k)).take(5).collect();
    assert!(
        missing.is_empty(),
        "{} of {} rows missing, e.g. {missing:?}\n{}",
        total(want).saturating_sub(total(&got)),
        total(want),
        cluster.logs()
    );
    let done = cluster.metric(id, "numberOfCompletedCheckpoints").unwrap_or(0);
    cluster.wait_for("two more checkpoints", Duration::from_secs(30), |c| {
        (c.metric(id, "numberOfCompletedCheckpoints").unwrap_or(0) >= done + 2).then_some(())
    });
    let again = read_joined(kafka, topic, usize::MAX, Duration::from_secs(5));
    let repeated: Vec<_> = again.iter().filter(|(_, n)| **n > 1).take(5).collect();
    assert!(repeated.is_empty(), "rows written more than once: {repeated:?}");
    assert_eq!(&again, want);
}

/// Waits until some joined rows are committed and two more checkpoints
/// have completed, so that the join's state is in a checkpoint.
fn wait_for_output_and_checkpoints(cluster: &Cluster, kafka: &Kafka, id: &str, topic: &str) {
    read_joined(kafka, topic, 50, Duration::from_secs(60));
    let done = cluster.metric(id, "numberOfCompletedCheckpoints").unwrap_or(0);
    cluster.wait_for("two more checkpoints", Duration::from_secs(30), |c| {
        (c.metric(id, "numberOfCompletedCheckpoints").unwrap_or(0) >= done + 2).then_some(())
    });
}

#[test]
fn a_regular_join_writes_every_row_exactly_once_through_a_savepoint_and_a_resume_at_parallelism_3() {
    let kafka = Kafka::shared();
    let t = topics(kafka, "rjoin-rescale");
    let (held, want) = load_first(kafka, &t);
    let mut cluster = Cluster::start("rjoin-rescale", 1, 2);
    let job = job(&cluster.scratch.0, &t);
    let id = cluster.submit(&job, &["-p", "2", "--bootstrap.servers", kafka.bootstrap()]);
    cluster.wait_all_tasks(&id, "RUNNING", Duration::from_secs(30));
    let plan = cluster.rest().get(&format!("/jobs/{id}/plan")).expect("the plan");
    let join = plan["plan"]["nodes"]
        .as_array()
        .and_then(|ns| ns.iter().find(|n| n["description"].as_str().is_some_and(|d| d.starts_with("Join"))))
        .unwrap_or_else(|| panic!("no join vertex in {plan}"));
    let inputs = join["inputs"].as_array().expect("inputs");
    assert!(inputs.len() == 2 && inputs.iter().all(|i| i["ship_strategy"] == "HASH"), "{join}");
    wait_for_output_and_checkpoints(&cluster, kafka, &id, &t.out);
    let savepoint = cluster.stop_with_savepoint(&id, Duration::from_secs(30));
    load_second(kafka, &t, held);
    cluster.add_taskmanager(2);
    let id2 = cluster.submit(&job, &["-p", "3", "-s", savepoint.as_str(), "--bootstrap.servers", kafka.bootstrap()]);
    cluster.wait_all_tasks(&id2, "RUNNING", Duration::from_secs(30));
    let j = cluster.job(&id2);
    assert!(j["vertices"].as_array().expect("vertices").iter().all(|v| v["parallelism"] == 3), "{j}");
    expect_exactly(&cluster, kafka, &id2, &t.out, &want);
}

#[test]
fn a_regular_join_writes_every_row_exactly_once_through_a_killed_taskmanager() {
    let kafka = Kafka::shared();
    let t = topics(kafka, "rjoin-kill");
    let (held, want) = load_first(kafka, &t);
    let mut cluster = Cluster::start("rjoin-kill", 1, 2);
    let job = job(&cluster.scratch.0, &t);
    let id = cluster.submit(&job, &["-p", "2", "--bootstrap.servers", kafka.bootstrap()]);
    cluster.wait_all_tasks(&id, "RUNNING", Duration::from_secs(30));
    wait_for_output_and_checkpoints(&cluster, kafka, &id, &t.out);
    cluster.kill_taskmanager(0);
    cluster.wait_all_tasks(&id, "SCHEDULED", Duration::from_secs(15));
    cluster.add_taskmanager(2);
    cluster.wait_all_tasks(&id, "RUNNING", Duration::from_secs(30));
    load_second(kafka, &t, held);
    expect_exactly(&cluster, kafka, &id, &t.out, &want);
}

#[test]
fn a_regular_joins_rows_leave_the_checkpoints_once_their_ttl_is_over() {
    let kafka = Kafka::shared();
    let t = topics(kafka, "rjoin-ttl");
    let (imps, clicks) = events(START, 0, 3000);
    write(kafka, &t, &imps, &clicks);
    let cluster = Cluster::start("rjoin-ttl", 1, 2);
    let job = job(&cluster.scratch.0, &t);
    let text = std::fs::read_to_string(&job).expect("the job").replace("ttl 1d", "ttl 4s");
    std::fs::write(&job, text).expect("writing the job");
    let id = cluster.submit(&job, &["-p", "2", "--bootstrap.servers", kafka.bootstrap()]);
    cluster.wait_all_tasks(&id, "RUNNING", Duration::from_secs(30));
    // Every joined row comes out (the input is read in well under 4 s)…
    let want = expected(&imps, &clicks);
    let got = read_joined(kafka, &t.out, total(&want), Duration::from_secs(60));
    assert_eq!(total(&got), total(&want));
    // …and the checkpoints that held the rows of 4000 records shrink to
    // the sources' offsets once the rows are over.
    let size = |c: &Cluster| c.metric(&id, "lastCheckpointSize").unwrap_or(0);
    let mut peak = 0;
    let small = cluster.wait_for("the join's state to expire", Duration::from_secs(60), |c| {
        let s = size(c);
        peak = peak.max(s);
        (peak > 50_000 && s < peak / 10).then_some(s)
    });
    assert!(small < 20_000, "a checkpoint of {small} bytes after a peak of {peak}");
}

/// A row of the left join: click id, impression id, the campaign if one
/// met it.
type LeftRow = (i64, i64, Option<String>);

/// What the left join folds to: every click, with its impression's
/// campaign or alone (every 50th click names none).
fn left_expected(imps: &[Impression], clicks: &[Click]) -> BTreeMap<LeftRow, i64> {
    let by_id: BTreeMap<i64, &Impression> = imps.iter().map(|m| (m.imp_id, m)).collect();
    let mut out = BTreeMap::new();
    for c in clicks {
        let campaign = by_id.get(&c.imp_id).map(|m| m.campaign.clone());
        *out.entry((c.click_id, c.imp_id, campaign)).or_insert(0) += 1;
    }
    out
}

/// The left join, to `sink` (the stages after the select, ending in a sink).
fn left_job(dir: &Path, t: &Topics, sink: &str) -> PathBuf {
    let text = format!(
        r#"job "Clicks and their impressions, a regular left join"
param bootstrap.servers: string = "localhost:9092"
set execution.checkpointing.interval = 1s
schema Click {{ ts: timestamp, click_id: long, imp_id: long }}
schema Impression {{ ts: timestamp, imp_id: long, campaign: string }}
let clicks = source kafka {{
        servers: $bootstrap.servers, topic: "{}", group: "ljoin-clicks", offsets: earliest, format: json, schema: Click
    }} uid "clicks"
let impressions = source kafka {{
        servers: $bootstrap.servers, topic: "{}", group: "ljoin-impressions", offsets: earliest, format: json
        schema: Impression
    }} uid "impressions"
from clicks
    | left join impressions on imp_id == impressions.imp_id ttl 1d uid "join"
    | select {{ click_id, imp_id: clicks.imp_id, campaign }} uid "select"
    {sink}
"#,
        t.clicks, t.impressions
    );
    let path = dir.join("ljoin.flow");
    std::fs::write(&path, text).expect("writing the job");
    path
}

/// The lines of each part file under `out`, by file name.
fn part_lines(out: &Path) -> BTreeMap<String, Vec<String>> {
    let mut parts = BTreeMap::new();
    let Ok(dir) = std::fs::read_dir(out) else { return parts };
    for entry in dir {
        let path = entry.expect("an entry").path();
        let text = std::fs::read_to_string(&path).expect("a part file");
        let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        // A line being written has no newline yet: not read.
        let complete = text.rfind('\n').map_or("", |end| &text[..end]);
        parts.insert(name, complete.lines().map(str::to_string).collect());
    }
    parts
}

/// Applies changelog lines (`+I {…}`, `-D {…}`) to `table` in order;
/// a `-D` of a row not there, or another line, is an error.
fn fold_lines<'a>(
    table: &mut BTreeMap<LeftRow, i64>,
    lines: impl IntoIterator<Item = &'a String>,
) -> Result<(), String> {
    for line in lines {
        let (kind, json) = line.split_once(' ').ok_or_else(|| format!("no kind in {line}"))?;
        let v: serde_json::Value = serde_json::from_str(json).map_err(|e| format!("{line}: {e}"))?;
        let campaign = match &v["campaign"] {
            serde_json::Value::Null => None,
            c => Some(c.as_str().ok_or_else(|| format!("campaign not a string in {line}"))?.to_string()),
        };
        let (Some(click), Some(imp)) = (v["click_id"].as_i64(), v["imp_id"].as_i64()) else {
            return Err(format!("no ids in {line}"));
        };
        let row = (click, imp, campaign);
        match kind {
            "+I" => *table.entry(row).or_insert(0) += 1,
            "-D" => {
                let n = table.entry(row.clone()).or_insert(0);
                if *n == 0 {
                    return Err(format!("-D of {row:?}, which is not there"));
                }
                *n -= 1;
            }
            other => return Err(format!("a left join writes +I and -D, not {other}: {line}")),
        }
    }
    table.retain(|_, n| *n != 0);
    Ok(())
}

/// Waits until `written()` reaches `at_least` and two more checkpoints
/// completed, so that the join's state is in a checkpoint.
fn wait_for_output(cluster: &Cluster, id: &str, at_least: usize, written: impl Fn() -> usize) {
    cluster.wait_for("the output", Duration::from_secs(60), |_| (written() >= at_least).then_some(()));
    let done = cluster.metric(id, "numberOfCompletedCheckpoints").unwrap_or(0);
    cluster.wait_for("two more checkpoints", Duration::from_secs(30), |c| {
        (c.metric(id, "numberOfCompletedCheckpoints").unwrap_or(0) >= done + 2).then_some(())
    });
}

#[test]
fn a_regular_left_joins_changelog_folds_to_the_left_join_through_a_savepoint_and_a_resume_at_parallelism_3() {
    let kafka = Kafka::shared();
    let t = topics(kafka, "ljoin-rescale");
    let (imps1, clicks1) = events(START, 0, 3000);
    let (imps2, clicks2) = events(SECOND_START, 3000, 6000);
    let want = left_expected(&[imps1, imps2].concat(), &[clicks1.clone(), clicks2].concat());
    let (held, _) = load_first(kafka, &t);
    let mut cluster = Cluster::start("ljoin-rescale", 1, 2);
    let out = cluster.scratch.0.join("out");
    let job = left_job(&cluster.scratch.0, &t, &format!("| sink file {{ path: \"{}\" }} uid \"sink\"", out.display()));
    let id = cluster.submit(&job, &["-p", "2", "--bootstrap.servers", kafka.bootstrap()]);
    cluster.wait_all_tasks(&id, "RUNNING", Duration::from_secs(30));
    // Every click of the first load has come out (alone or joined).
    let first_clicks = clicks1.iter().filter(|c| c.ts < START + 30_000).count();
    let clicks_out = || {
        let lines = part_lines(&out);
        let ids: std::collections::BTreeSet<&str> =
            lines.values().flatten().filter_map(|l| l.split("\"click_id\":").nth(1)?.split(',').next()).collect();
        ids.len()
    };
    wait_for_output(&cluster, &id, first_clicks, clicks_out);
    let savepoint = cluster.stop_with_savepoint(&id, Duration::from_secs(30));
    // The first run's changelog: each click's changes in one file, in order.
    let first = part_lines(&out);
    let mut table = BTreeMap::new();
    for lines in first.values() {
        fold_lines(&mut table, lines).unwrap_or_else(|e| panic!("the first run: {e}"));
    }
    load_second(kafka, &t, held);
    cluster.add_taskmanager(2);
    let id2 = cluster.submit(&job, &["-p", "3", "-s", savepoint.as_str(), "--bootstrap.servers", kafka.bootstrap()]);
    cluster.wait_all_tasks(&id2, "RUNNING", Duration::from_secs(30));
    // The resumed run's lines come after the first run's in each file; a
    // `-D` there retracts a row of the first run (whatever its file) or
    // one of its own file.
    let folded = || {
        let mut t = table.clone();
        for (name, lines) in &part_lines(&out) {
            let skip = first.get(name).map_or(0, Vec::len);
            fold_lines(&mut t, &lines[skip..]).unwrap_or_else(|e| panic!("the resumed run, {name}: {e}"));
        }
        t
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let mut got = folded();
    while got != want && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_secs(1));
        got = folded();
    }
    let missing: Vec<_> = want.iter().filter(|(k, n)| got.get(*k) != Some(*n)).take(5).collect();
    let extra: Vec<_> = got.iter().filter(|(k, n)| want.get(*k) != Some(*n)).take(5).collect();
    assert!(missing.is_empty() && extra.is_empty(), "missing {missing:?}, extra {extra:?}\n{}", cluster.logs());
    // Clicks alone in the first run whose impression came in the second
    // were retracted there.
    let matched_later = table
        .keys()
        .filter(|(click, imp, c)| c.is_none() && want.keys().any(|(k, i, c)| k == click && i == imp && c.is_some()))
        .count();
    assert!(matched_later > 100, "{matched_later} clicks met their impression only after the resume");
}

#[test]
fn a_running_aggregate_of_a_regular_left_join_holds_one_row_per_click_through_a_killed_taskmanager() {
    let kafka = Kafka::shared();
    let t = topics(kafka, "ljoin-kill");
    let (imps1, clicks1) = events(START, 0, 3000);
    let (imps2, clicks2) = events(SECOND_START, 3000, 6000);
    let want: BTreeMap<i64, serde_json::Value> = left_expected(&[imps1, imps2].concat(), &[clicks1, clicks2].concat())
        .into_keys()
        .map(|(click, _, campaign)| (click, serde_json::json!({"click_id": click, "rows": 1, "campaign": campaign})))
        .collect();
    let (held, _) = load_first(kafka, &t);
    let mut cluster = Cluster::start("ljoin-kill", 1, 2);
    // `rows` is 1 for every click only if each null-padded row was
    // retracted when its impression came.
    let sink = format!(
        "| key_by click_id\n    | aggregate {{ click_id, rows: count(), campaign: max(campaign) }} uid \"per-click\"\n    | sink kafka {{ servers: $bootstrap.servers, topic: \"{}\", format: json }} uid \"sink\"",
        t.out
    );
    let job = left_job(&cluster.scratch.0, &t, &sink);
    let id = cluster.submit(&job, &["-p", "2", "--bootstrap.servers", kafka.bootstrap()]);
    cluster.wait_all_tasks(&id, "RUNNING", Duration::from_secs(30));
    let written = || {
        support::kafka::end_offsets(kafka.bootstrap(), &t.out)
            .into_iter()
            .map(|(_, end)| usize::try_from(end.unwrap_or(0)).unwrap_or(0))
            .sum()
    };
    wait_for_output(&cluster, &id, 50, written);
    cluster.kill_taskmanager(0);
    cluster.wait_all_tasks(&id, "SCHEDULED", Duration::from_secs(15));
    cluster.add_taskmanager(2);
    cluster.wait_all_tasks(&id, "RUNNING", Duration::from_secs(30));
    load_second(kafka, &t, held);
    let table = || -> BTreeMap<i64, serde_json::Value> {
        support::kafka::compacted(kafka.bootstrap(), &t.out, 2, |k| String::from_utf8_lossy(k).to_string())
            .into_values()
            .map(|v| (v["click_id"].as_i64().unwrap_or(-1), v))
            .collect()
    };
    let mut last = BTreeMap::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while std::time::Instant::now() < deadline {
        last = table();
        if last == want {
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    let wrong: Vec<_> = want.iter().filter(|(k, v)| last.get(*k) != Some(*v)).take(5).collect();
    assert!(
        wrong.is_empty() && last.len() == want.len(),
        "{} of {} clicks wrong, e.g. {wrong:?} (got {:?})\n{}",
        want.iter().filter(|(k, v)| last.get(*k) != Some(*v)).count(),
        want.len(),
        wrong.iter().map(|(k, _)| last.get(*k)).collect::<Vec<_>>(),
        cluster.logs()
    );
    let alone = want.values().filter(|v| v["campaign"].is_null()).count();
    assert!(alone >= 30, "every 50th of 2000 clicks names no impression: {alone}");
}

#[test]
fn the_left_join_example_prints_a_changelog_that_folds_to_every_order_with_its_customer_or_none() {
    let scratch = support::cluster::Scratch::new("ljoin-example");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let o = std::process::Command::new(support::cluster::flowc_bin())
        .current_dir(root)
        .env("FLOWC_CONF_DIR", scratch.0.join("no-conf"))
        .arg("run")
        .arg("jobs/examples/joins/orders_customers_left.flow")
        .output()
        .expect("running flowc");
    let stdout = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success(), "flowc run failed:\n{stdout}{}", String::from_utf8_lossy(&o.stderr));
    let mut table: BTreeMap<String, i64> = BTreeMap::new();
    for line in stdout.lines().filter(|l| l.starts_with('+') || l.starts_with('-')) {
        let (kind, json) = line.split_once(' ').unwrap_or_else(|| panic!("no kind in {line}"));
        let row: serde_json::Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{line}: {e}"));
        let n = table.entry(row.to_string()).or_insert(0);
        match kind {
            "+I" => *n += 1,
            "-D" if *n > 0 => *n -= 1,
            _ => panic!("{line}: a left join prints +I, and -D of a row printed before\n{stdout}"),
        }
    }
    table.retain(|_, n| *n != 0);
    let want: BTreeMap<String, i64> = [
        (100, "\"ann\"", 10),
        (101, "\"bob\"", 15),
        (102, "null", 20),
        (103, "\"ann\"", 25),
        (104, "\"cy\"", 30),
        (105, "\"bob\"", 35),
    ]
    .iter()
    .map(|(id, name, amount)| {
        let v: serde_json::Value =
            serde_json::from_str(&format!(r#"{{"order_id":{id},"name":{name},"amount":{amount}}}"#)).expect("JSON");
        (v.to_string(), 1)
    })
    .collect();
    assert_eq!(table, want, "{stdout}");
}
