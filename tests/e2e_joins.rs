//! End to end: jobs with several inputs on real flowc processes. A union
//! of two click streams joined with impressions (an interval join; the
//! example `jobs/examples/joins/clicks_impressions.flow`), and a
//! window join, run at parallelism 2 on two TaskManagers (so both inputs'
//! batches cross the data plane between processes) and write exactly what
//! a nested loop over the same records gives; the REST plan lists both
//! inputs of the join.

mod support;

use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;
use support::cluster::Cluster;

const START: i64 = 1_795_558_500_000;
const CAMPAIGNS: [&str; 3] = ["x", "y", "z"];

fn iso(ms: i64) -> String {
    let s = flowc_compiler::timefmt::TimeFormat::new(flowc_compiler::ir::DEFAULT_TIMESTAMP_PATTERN).expect("pattern");
    s.format(ms)
}

/// (ts, imp_id, page) of every click: stream `a` then stream `b`.
fn clicks() -> Vec<(i64, i64, &'static str)> {
    let a = (0..1000).map(|i| (START + i * 10, -500 + 3 * i, if i % 2 == 0 { "/a" } else { "/b" }));
    let b = (0..800).map(|i| (START + (i / 2) * 25, 7 + i, "/c"));
    a.chain(b).collect()
}

/// (ts, imp_id, campaign) of every impression.
fn impressions() -> Vec<(i64, i64, &'static str)> {
    (0..3000).map(|m| (START + m * 10, m, CAMPAIGNS[(m % 3) as usize])).collect()
}

fn write_job(dir: &std::path::Path, name: &str, body: &str) -> std::path::PathBuf {
    let text = format!(
        r#"job "{name}"
schema Click {{ ts: timestamp, imp_id: long, page: string }}
schema Impression {{ ts: timestamp, imp_id: long, campaign: string }}
let a = source datagen {{
        schema: Click, count: 1000
        ts: ticks({START}, 10, 1), imp_id: sequence(-500, 3), page: cycle("/a", "/b")
    }}
    | watermark ts {{ out_of_orderness: 100ms }}
let b = source datagen {{
        schema: Click, count: 800
        ts: ticks({START}, 25, 2), imp_id: sequence(7, 1), page: cycle("/c")
    }}
    | watermark ts {{ out_of_orderness: 100ms }}
let impressions = source datagen {{
        schema: Impression, count: 3000
        ts: ticks({START}, 10, 1), imp_id: sequence(0, 1), campaign: cycle("x", "y", "z")
    }}
    | watermark ts {{ out_of_orderness: 100ms }}
{body}
"#
    );
    let path = dir.join(format!("{}.flow", name.replace(' ', "_")));
    std::fs::write(&path, text).expect("writing the job");
    path
}

/// Every line the file sink wrote, parsed, counted.
fn read_out(out: &std::path::Path) -> BTreeMap<String, usize> {
    let mut got = BTreeMap::new();
    for entry in std::fs::read_dir(out).expect("the sink's directory") {
        let text = std::fs::read_to_string(entry.expect("entry").path()).expect("a part file");
        for line in text.lines() {
            let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
            *got.entry(v.to_string()).or_insert(0) += 1;
        }
    }
    got
}

fn row(v: Value) -> String {
    v.to_string()
}

#[test]
fn a_union_joined_with_impressions_across_two_taskmanagers_writes_exactly_the_nested_loop_join() {
    let cluster = Cluster::start("join", 2, 1);
    let out = cluster.scratch.0.join("out");
    // The example, as checked in.
    let job = cluster.scratch.0.join("clicks_impressions.flow");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::copy(root.join("jobs/examples/joins/clicks_impressions.flow"), &job).expect("copying the example");
    let out_arg = out.display().to_string();
    let id = cluster.submit(&job, &["-p", "2", "--out", out_arg.as_str()]);
    cluster.wait_job_state(&id, "FINISHED", Duration::from_secs(90));
    let plan = cluster.rest().get(&format!("/jobs/{id}/plan")).expect("the plan");
    let join = plan["plan"]["nodes"]
        .as_array()
        .and_then(|ns| ns.iter().find(|n| n["description"].as_str().is_some_and(|d| d.starts_with("Interval Join"))))
        .unwrap_or_else(|| panic!("no join vertex in {plan}"));
    let inputs = join["inputs"].as_array().expect("inputs");
    assert_eq!(inputs.len(), 2, "{join}");
    assert!(inputs.iter().all(|i| i["ship_strategy"] == "HASH"), "{join}");

    let mut want: BTreeMap<String, usize> = BTreeMap::new();
    let imps = impressions();
    for (cts, imp_id, page) in clicks() {
        for (its, m, campaign) in &imps {
            if *m == imp_id && *its >= cts - 2000 && *its <= cts {
                let r = serde_json::json!({"imp_id": imp_id, "page": page, "campaign": campaign,
                    "click_ts": iso(cts), "imp_ts": iso(*its)});
                *want.entry(row(r)).or_insert(0) += 1;
            }
        }
    }
    assert!(want.len() > 100, "the join has matches from both clicks streams: {}", want.len());
    assert!(want.keys().any(|k| k.contains("/c")) && want.keys().any(|k| k.contains("/a")));
    assert_eq!(read_out(&out), want);
}

#[test]
fn a_window_join_writes_each_pair_of_a_window_once() {
    let cluster = Cluster::start("wjoin", 2, 1);
    let out = cluster.scratch.0.join("out");
    let job = write_job(
        &cluster.scratch.0,
        "Window join",
        &format!(
            r#"from b
    | join impressions on imp_id == impressions.imp_id window tumbling {{ size: 1s }}
    | select {{ imp_id: b.imp_id, campaign, click_ts: b.ts, imp_ts: impressions.ts }}
    | sink file {{ path: "{}" }}
from a | sink discard"#,
            out.display()
        ),
    );
    let id = cluster.submit(&job, &["-p", "2"]);
    cluster.wait_job_state(&id, "FINISHED", Duration::from_secs(90));
    let mut want: BTreeMap<String, usize> = BTreeMap::new();
    let imps = impressions();
    for (cts, imp_id, _) in clicks().into_iter().skip(1000) {
        for (its, m, campaign) in &imps {
            if *m == imp_id && cts.div_euclid(1000) == its.div_euclid(1000) {
                let r = serde_json::json!({"imp_id": imp_id, "campaign": campaign,
                    "click_ts": iso(cts), "imp_ts": iso(*its)});
                *want.entry(row(r)).or_insert(0) += 1;
            }
        }
    }
    assert!(want.len() > 10, "the windows have matches: {}", want.len());
    assert_eq!(read_out(&out), want);
}

#[test]
fn a_self_join_reads_one_vertex_on_both_inputs() {
    let cluster = Cluster::start("sjoin", 2, 1);
    let out = cluster.scratch.0.join("out");
    let job = write_job(
        &cluster.scratch.0,
        "Self join",
        &format!(
            r#"from impressions
    | join impressions on imp_id == impressions.imp_id within -20ms, 0s
    | select {{ left_id: left.imp_id, right_id: impressions.imp_id, campaign: left.campaign }}
    | sink file {{ path: "{}" }}
from a | union b | sink discard"#,
            out.display()
        ),
    );
    let id = cluster.submit(&job, &["-p", "2"]);
    cluster.wait_job_state(&id, "FINISHED", Duration::from_secs(90));
    // Both edges come from one vertex: each impression meets itself, and
    // (ids being unique) nothing else.
    let mut want: BTreeMap<String, usize> = BTreeMap::new();
    for (_, m, campaign) in impressions() {
        let r = serde_json::json!({"left_id": m, "right_id": m, "campaign": campaign});
        *want.entry(row(r)).or_insert(0) += 1;
    }
    assert_eq!(read_out(&out), want);
}
