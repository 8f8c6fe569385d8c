//! End to end: compiled expressions on real flowc processes. A job with a
//! guarded division, fused filter → map → select and a keyed window runs at
//! parallelism 2 on two TaskManagers (so its batches cross the data plane
//! between processes) and writes exactly what the same logic computes here;
//! a division by zero fails the job with the place in the job file and the
//! record, and so does an integer overflow, which under `on_error skip`
//! drops exactly the records whose result is no long (or, of `int`s, no
//! int).

mod support;

use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;
use support::cluster::Cluster;

const PAGES: [&str; 3] = ["/help", "/index", "/shop"];
const START: i64 = 1_795_558_500_000;
const EVENTS: i64 = 6000;

fn job(dir: &std::path::Path, out: &std::path::Path) -> std::path::PathBuf {
    let text = format!(
        r#"job "Expressions"
schema E {{ ts: timestamp, page: string, n: long }}
source datagen {{
        schema: E, count: {EVENTS}
        ts: ticks({START}, 150, 6)
        page: cycle("/help", "/index", "/shop")
        n: sequence(-10, 1)
    }}
    | filter n != 0 and 1000 / n >= 0
    | map {{ q: if n % 2 == 0 then 1000 / n else -n, up: upper(page) }}
    | select {{ ts, up, q }}
    | watermark ts
    | key_by up
    | window tumbling {{ size: 15s }}
    | aggregate {{ start: window_start(), up, c: count(), s: sum(q), low: min(q) }}
    | sink file {{ path: "{}" }}
"#,
        out.display()
    );
    let path = dir.join("expressions.flow");
    std::fs::write(&path, text).expect("writing the job");
    path
}

/// What the job must write, computed here record by record.
fn expected() -> BTreeMap<(i64, String), (i64, i64, i64)> {
    let mut windows: BTreeMap<(i64, String), (i64, i64, i64)> = BTreeMap::new();
    for i in 0..EVENTS {
        let (ts, page, n) = (START + (i / 6) * 150, PAGES[(i % 3) as usize], -10 + i);
        if n == 0 || 1000 / n < 0 {
            continue;
        }
        let q = if n % 2 == 0 { 1000 / n } else { -n };
        let start = ts - ts.rem_euclid(15_000);
        let w = windows.entry((start, page.to_uppercase())).or_insert((0, 0, i64::MAX));
        w.0 += 1;
        w.1 += q;
        w.2 = w.2.min(q);
    }
    windows
}

fn iso(ms: i64) -> String {
    let s = flowc_compiler::timefmt::TimeFormat::new(flowc_compiler::ir::DEFAULT_TIMESTAMP_PATTERN).expect("pattern");
    s.format(ms)
}

#[test]
fn a_fused_chain_and_a_window_across_two_taskmanagers_write_exactly_the_expected_records() {
    let cluster = Cluster::start("expr", 2, 1);
    let out = cluster.scratch.0.join("out");
    let job = job(&cluster.scratch.0, &out);
    let id = cluster.submit(&job, &["-p", "2"]);
    cluster.wait_job_state(&id, "FINISHED", Duration::from_secs(60));
    let mut got: BTreeMap<(i64, String), (i64, i64, i64)> = BTreeMap::new();
    for entry in std::fs::read_dir(&out).expect("the sink's directory") {
        let text = std::fs::read_to_string(entry.expect("entry").path()).expect("a part file");
        for line in text.lines() {
            let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
            let start = v["start"].as_str().expect("start").to_string();
            let start = (0..)
                .map(|k| START + k * 15_000)
                .take(20)
                .find(|s| iso(*s) == start)
                .unwrap_or_else(|| panic!("unexpected window {start}"));
            let key = (start, v["up"].as_str().expect("up").to_string());
            let value = (v["c"].as_i64().expect("c"), v["s"].as_i64().expect("s"), v["low"].as_i64().expect("low"));
            assert!(got.insert(key.clone(), value).is_none(), "{key:?} written twice");
        }
    }
    let want = expected();
    assert!(want.len() > 6, "the job has several windows: {want:?}");
    assert_eq!(got, want);
}

#[test]
fn a_division_by_zero_fails_the_job_naming_the_operator_the_place_and_the_record() {
    let cluster = Cluster::start("div0", 1, 1);
    let text = "job \"Division\"\nschema E { page: string, n: long }\n\
                source datagen { schema: E, count: 50, page: cycle(\"/help\", \"/index\"), n: sequence(-3, 1) }\n    \
                | map { page, r: 10 / n } name \"Ratio\"\n    | sink discard\n";
    let job = cluster.scratch.0.join("division.flow");
    std::fs::write(&job, text).expect("writing the job");
    let id = cluster.submit(&job, &["-p", "1"]);
    cluster.wait_job_state(&id, "FAILED", Duration::from_secs(60));
    let exceptions = cluster.rest().get(&format!("/jobs/{id}/exceptions")).expect("exceptions");
    let want = format!(
        "Ratio: division by zero in `10 / n` at {}:4:22, record {{\"page\":\"/index\",\"n\":0}}",
        job.display()
    );
    assert!(exceptions.to_string().contains(&want.replace('"', "\\\"")), "{exceptions}\nwanted: {want}");
}

/// `flowc run` of `n * factor` over n = -3..=3, `n` of type `ty`, with the
/// map's `policy`.
fn run_overflow(ty: &str, factor: i64, policy: &str) -> (bool, String, std::path::PathBuf) {
    let scratch = support::cluster::Scratch::new("overflow");
    let text = format!(
        "job \"Overflow\"\nschema E {{ n: {ty} }}\nsource datagen {{ schema: E, count: 7, n: sequence(-3, 1) }}\n    \
         | map {{ n, x: n * {factor} }} {policy} name \"Wide\"\n    | sink print\n"
    );
    let job = scratch.0.join("overflow.flow");
    std::fs::write(&job, text).expect("writing the job");
    let o = support::local::flowc_run(&scratch, &scratch.0, &job, &[]);
    (o.status.success(), support::local::output_text(&o), job)
}

/// `n * factor` of `n` of type `ty` over -3..=3: under `on_error skip`
/// exactly the records `want` are printed (sorted); by default the job
/// fails at -3 with `message` (``integer overflow (…) in `n * factor` ``).
fn check_overflow(ty: &str, factor: i64, want: &[&str], message: &str) {
    let (ok, out, _) = run_overflow(ty, factor, "on_error skip");
    assert!(ok, "{out}");
    let mut records: Vec<&str> = out.lines().filter(|l| l.starts_with('{')).collect();
    records.sort();
    assert_eq!(records, want, "{out}");
    let (ok, out, job) = run_overflow(ty, factor, "");
    assert!(!ok, "the default policy fails the job: {out}");
    let want = format!("Wide: {message} in `n * {factor}` at {}:4:19, record {{\"n\":-3}}", job.display());
    assert!(out.contains(&want), "{out}\nwanted: {want}");
}

/// `n * 2^62`: -2 * 2^62 is the least long, -3, 2 and 3 overflow.
#[test]
fn an_integer_overflow_follows_the_stage_policy_instead_of_wrapping() {
    check_overflow(
        "long",
        1 << 62,
        &[
            r#"{"n":-1,"x":-4611686018427387904}"#,
            r#"{"n":-2,"x":-9223372036854775808}"#,
            r#"{"n":0,"x":0}"#,
            r#"{"n":1,"x":4611686018427387904}"#,
        ],
        "integer overflow (the result is out of the range of a long)",
    );
}

/// `n * 2^30` of an `int` (the literal is one too): -2 * 2^30 is the least
/// int, -3, 2 and 3 are past 32 bits, which an `int` result may not be.
#[test]
fn an_int_overflow_follows_the_stage_policy_instead_of_growing_past_32_bits() {
    check_overflow(
        "int",
        1 << 30,
        &[
            r#"{"n":-1,"x":-1073741824}"#,
            r#"{"n":-2,"x":-2147483648}"#,
            r#"{"n":0,"x":0}"#,
            r#"{"n":1,"x":1073741824}"#,
        ],
        "integer overflow (the result is out of the range of an int)",
    );
    // A long beside the int widens it: the same products are longs and fit.
    let (ok, out, _) = run_overflow("int", 1 << 31, "");
    assert!(ok, "{out}");
    assert_eq!(out.lines().filter(|l| l.starts_with('{')).count(), 7, "{out}");
}
