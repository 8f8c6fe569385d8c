//! End to end: `jobs/examples/threshold_alert.flow`, nulls through a real
//! job. Readings that are not numbers become nulls, travel through a HASH
//! edge between two TaskManagers (the wire's validity bitmaps), are skipped
//! by `count(temp)`, `max` and `avg`, make `peak > 30.0` null (which
//! `filter` drops) and are replaced by `coalesce`; the file sink writes
//! them as `null`. The output is compared, record for record, with the
//! same logic computed here.

mod support;

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;
use support::cluster::Cluster;

const START: i64 = 1_795_558_500_000;
const SENSORS: [&str; 4] = ["s1", "s2", "s3", "s4"];
const RAW: [&str; 8] = ["21.5", "n/a", "35.25", " 18 ", "40", "", "19.75", "19"];

fn iso(ms: i64) -> String {
    let s = flowc_compiler::timefmt::TimeFormat::new(flowc_compiler::ir::DEFAULT_TIMESTAMP_PATTERN).expect("pattern");
    s.format(ms)
}

/// The records the job must write, keyed by (sensor, window end).
fn expected() -> BTreeMap<(String, String), Value> {
    // Per (sensor, window start): the readings that parse, and the count of all.
    let mut windows: BTreeMap<(&str, i64), (Vec<f64>, i64)> = BTreeMap::new();
    for i in 0..120i64 {
        let ts = START + (i / 4) * 1000;
        let raw = RAW[(i % 8) as usize].trim();
        let w = windows.entry((SENSORS[(i % 4) as usize], ts - ts.rem_euclid(10_000))).or_default();
        w.1 += 1;
        if let Ok(t) = raw.parse::<f64>() {
            w.0.push(t);
        }
    }
    let mut out = BTreeMap::new();
    for ((sensor, start), (temps, all)) in windows {
        let readings = temps.len() as i64;
        let missing = all - readings;
        let peak = temps.iter().copied().reduce(f64::max);
        let mean = (!temps.is_empty()).then(|| temps.iter().sum::<f64>() / readings as f64);
        let hot = peak.is_some_and(|p| p > 30.0);
        if !(hot || missing > 4) {
            continue;
        }
        let end = iso(start + 10_000);
        let record = json!({
            "sensor": sensor,
            "end": end,
            "readings": readings,
            "missing": missing,
            "peak": peak,
            "mean": mean,
            "alert": if hot { "hot" } else { "missing readings" },
            "peak_text": peak.map_or("none".to_string(), |p| format!("{p:?}")),
        });
        out.insert((sensor.to_string(), end), record);
    }
    out
}

#[test]
fn the_threshold_alert_example_writes_exactly_the_expected_alerts_with_nulls() {
    let want = expected();
    assert!(want.values().any(|v| v["peak"].is_null()), "some alert has no reading at all: {want:?}");
    assert!(want.values().any(|v| v["alert"] == "hot"), "{want:?}");
    assert_eq!(want.len(), 9, "s4 never alerts: {want:?}");
    let cluster = Cluster::start("threshold", 2, 1);
    let out = cluster.scratch.0.join("alerts");
    let job = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("jobs/examples/threshold_alert.flow");
    let id = cluster.submit(&job, &["-p", "2", &format!("--out={}", out.display())]);
    cluster.wait_job_state(&id, "FINISHED", Duration::from_secs(60));
    let mut got = BTreeMap::new();
    for entry in std::fs::read_dir(&out).expect("the sink's directory") {
        let text = std::fs::read_to_string(entry.expect("entry").path()).expect("a part file");
        for line in text.lines() {
            let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
            let key = (v["sensor"].as_str().expect("sensor").to_string(), v["end"].as_str().expect("end").to_string());
            assert!(got.insert(key.clone(), v).is_none(), "{key:?} written twice");
        }
    }
    assert_eq!(got, want);
}
