//! End to end: the examples of issue 11 §4 and §6 that need no Kafka. The
//! nested-JSON example (`jobs/examples/nested_json.flow`) reads nested
//! records, skips the record its division fails on (`pipeline.on-error =
//! skip`) and the one it cannot decode, and writes exactly the expected
//! nested JSON lines, at parallelism 1 and 2. The future-events example
//! (`jobs/examples/future_events.flow`) keeps a reading from the year 3000
//! out of its windows (`max_future`), and shows `extract`, `md5` and a
//! `last` of nothing but nulls. The null-literal example
//! (`jobs/examples/null_literal.flow`) unions `array<long>` with
//! `array<long?>` (the union's vertex reads the non-null one as nullable)
//! and types `null` by an `if`'s other branch, a cast and an `array`.

mod support;

use std::path::Path;
use support::cluster::Scratch;
use support::local::{flowc_run, output_text};

const EXPECTED_SIGNUPS: &str = r#"{"id":1,"user":{"id":10,"name":"Ana","address":{"country":"PT","city":"Porto"}},"plan":{"seats":4,"price":100},"referrer":"blog","per_seat":25,"country":"pt"}
{"id":4,"user":{"id":13,"name":"Dee","address":{"country":"NO","city":"Oslo"}},"plan":{"seats":3,"price":90},"referrer":"ad","per_seat":30,"country":"no"}
"#;

const EXPECTED_READINGS: &str = r#"{"device":"a","readings":2,"first_value":1,"last_hour":22,"device_md5":"0cc175b9c0f1b6a831c399e269772661","last_note":null,"window_end":"2026-11-24T23:00:00.000Z"}
{"device":"b","readings":1,"first_value":2,"last_hour":22,"device_md5":"92eb5ffee6ae2fec3ad71c777531578f","last_note":"ok","window_end":"2026-11-24T23:00:00.000Z"}
{"device":"a","readings":1,"first_value":4,"last_hour":23,"device_md5":"0cc175b9c0f1b6a831c399e269772661","last_note":null,"window_end":"2026-11-25T00:00:00.000Z"}
"#;

const EXPECTED_SHELVES: &str = r#"{"shelf":"a1","levels":[5,3,0],"battery":80,"gaps":false,"alert":null,"first_level":5,"flags":[null,"empty"]}
{"shelf":"a2","levels":[7,7],"battery":15,"gaps":false,"alert":"battery low","first_level":7,"flags":["battery",null]}
{"shelf":"b1","levels":[4,null,2],"battery":null,"gaps":true,"alert":null,"first_level":4,"flags":[null,null]}
{"shelf":"b2","levels":[0],"battery":10,"gaps":false,"alert":"battery low","first_level":0,"flags":["battery","empty"]}
{"shelf":"b3","levels":[],"battery":55,"gaps":false,"alert":null,"first_level":0,"flags":[null,null]}
"#;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every line of every file in `dir`, sorted.
fn lines_in(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("output directory").flatten() {
        out.extend(std::fs::read_to_string(e.path()).expect("read").lines().map(str::to_string));
    }
    out.sort();
    out
}

/// Runs example `job` on `data` at parallelism 1 and 2; checks that it
/// writes exactly `expected` (in any order).
fn check_example(job: &str, data: &str, expected: &str) {
    let data = repo().join(data);
    let job = repo().join(job);
    for p in ["1", "2"] {
        let scratch = Scratch::new(&format!("example-p{p}"));
        let o =
            flowc_run(&scratch, &scratch.0, &job, &["-p", p, "--input", &data.display().to_string(), "--out", "out"]);
        let log = output_text(&o);
        assert!(o.status.success() && log.contains("has finished"), "{log}");
        let mut want: Vec<String> = expected.lines().map(str::to_string).collect();
        want.sort();
        assert_eq!(lines_in(&scratch.0.join("out")), want, "{} at -p {p}", job.display());
    }
}

#[test]
fn the_nested_json_example_writes_exactly_the_expected_records() {
    check_example("jobs/examples/nested_json.flow", "jobs/examples/data/signups", EXPECTED_SIGNUPS);
}

#[test]
fn the_future_events_example_keeps_the_year_3000_out_of_its_windows() {
    check_example("jobs/examples/future_events.flow", "jobs/examples/data/readings", EXPECTED_READINGS);
}

#[test]
fn the_null_literal_example_unions_arrays_of_both_nullabilities() {
    check_example("jobs/examples/null_literal.flow", "jobs/examples/data/shelves", EXPECTED_SHELVES);
}
