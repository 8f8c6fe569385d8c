//! End to end: metrics measured for real, in Flink's names and shapes.
//! Under back pressure (an unpaced source into a sink made slow by the
//! test-only `FLOWC_TEST_SLOW_SINK_US_PER_RECORD`), the source spends most
//! of each second back-pressured and the sink most of it busy; a job with
//! next to nothing to do is idle; the processes report memory, CPU and
//! threads; aggregates follow Flink's `agg=`.

mod support;

use serde_json::Value;
use std::path::Path;
use std::time::Duration;
use support::cluster::Cluster;

fn job(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/jobs").join(name)
}

/// Vertex ids of a job, in the job's order, with their names.
fn vertices(c: &Cluster, id: &str) -> Vec<(String, String)> {
    c.job(id)["vertices"]
        .as_array()
        .expect("vertices")
        .iter()
        .map(|v| (v["id"].as_str().unwrap_or_default().to_string(), v["name"].as_str().unwrap_or_default().to_string()))
        .collect()
}

/// `0.<name>` of a vertex, as a number.
fn subtask0(c: &Cluster, id: &str, vid: &str, name: &str) -> Option<f64> {
    let v = c.rest().get(&format!("/jobs/{id}/vertices/{vid}/metrics?get=0.{name}")).ok()?;
    v[0]["value"].as_str()?.parse().ok()
}

/// Waits until `f` holds for `secs` seconds in a row of readings (every
/// 500 ms), so that one lucky reading does not pass the test.
fn holds(c: &Cluster, what: &str, timeout: Duration, mut f: impl FnMut(&Cluster) -> Option<String>) {
    let mut ok_since: Option<std::time::Instant> = None;
    let mut last = String::new();
    c.wait_for(what, timeout, |c| {
        match f(c) {
            None => ok_since = None,
            Some(s) => {
                last = s;
                let since = *ok_since.get_or_insert_with(std::time::Instant::now);
                if since.elapsed() >= Duration::from_secs(3) {
                    return Some(());
                }
            }
        }
        std::thread::sleep(Duration::from_millis(400));
        None
    });
    eprintln!("{what}: {last}");
}

#[test]
fn back_pressure_shows_upstream_and_a_slow_sink_is_busy() {
    let mut cluster = Cluster::jobmanager_only("metrics-bp");
    // 50 µs per record: the sink takes at most 20 000 records a second.
    cluster.add_taskmanager_env(2, &[("FLOWC_TEST_SLOW_SINK_US_PER_RECORD", "50")]);
    cluster.wait_for_taskmanagers(1);
    let id = cluster.submit(&job("unpaced_into_sink.flow"), &[]);
    cluster.wait_all_tasks(&id, "RUNNING", Duration::from_secs(30));
    let vs = vertices(&cluster, &id);
    assert_eq!(vs.len(), 2, "{vs:?}");
    let (source, sink) = (&vs[0].0, &vs[1].0);
    holds(&cluster, "the source back-pressured and the sink busy", Duration::from_secs(40), |c| {
        let bp = subtask0(c, &id, source, "backPressuredTimeMsPerSecond")?;
        let busy = subtask0(c, &id, sink, "busyTimeMsPerSecond")?;
        (bp > 500.0 && busy > 500.0).then(|| format!("source back-pressured {bp} ms/s, sink busy {busy} ms/s"))
    });
    // The back-pressure endpoint says the same, in Flink's shape.
    let bp = cluster.rest().get(&format!("/jobs/{id}/vertices/{source}/backpressure")).expect("backpressure");
    assert_eq!(bp["status"], "ok", "{bp}");
    assert!(bp["end-timestamp"].as_i64().unwrap_or(0) > 0, "{bp}");
    let s0 = &bp["subtasks"][0];
    assert!(s0["ratio"].as_f64().unwrap_or(0.0) > 0.5, "{bp}");
    assert_eq!(s0["backpressureLevel"], "high", "{bp}");
    let total = s0["ratio"].as_f64().unwrap_or(0.0)
        + s0["idleRatio"].as_f64().unwrap_or(0.0)
        + s0["busyRatio"].as_f64().unwrap_or(0.0);
    assert!((total - 1.0).abs() < 0.01, "ratios add up to {total}: {bp}");
    let sink_bp = cluster.rest().get(&format!("/jobs/{id}/vertices/{sink}/backpressure")).expect("backpressure");
    assert_eq!(sink_bp["backpressureLevel"], "ok", "{sink_bp}");
    // Rates and bytes are real.
    let rate = subtask0(&cluster, &id, sink, "numRecordsInPerSecond").unwrap_or(0.0);
    assert!(rate > 1000.0 && rate < 25_000.0, "the slow sink takes {rate} records/s");
    assert!(subtask0(&cluster, &id, source, "numBytesOutPerSecond").unwrap_or(0.0) > 0.0);
    assert!(subtask0(&cluster, &id, source, "Shuffle.Netty.Output.Buffers.outPoolUsage").unwrap_or(0.0) > 0.5);
    // The vertex's accumulated times in /jobs/:jid.
    let j = cluster.job(&id);
    assert!(j["vertices"][0]["metrics"]["accumulated-backpressured-time"].as_u64().unwrap_or(0) > 1000, "{j}");
    // Aggregated over subtasks, as Flink: only the aggregates asked for.
    let agg = cluster
        .rest()
        .get(&format!("/jobs/{id}/vertices/{sink}/subtasks/metrics?get=busyTimeMsPerSecond&agg=min,max"))
        .expect("subtasks/metrics");
    assert_eq!(agg[0]["id"], "busyTimeMsPerSecond", "{agg}");
    assert!(agg[0]["max"].as_f64().unwrap_or(0.0) > 500.0 && agg[0].get("sum").is_none(), "{agg}");
    let bad = cluster.rest().get(&format!("/jobs/{id}/vertices/{sink}/subtasks/metrics?get=numRecordsIn&agg=median"));
    assert!(bad.is_err(), "an unknown aggregation is refused: {bad:?}");
    cluster.flowc(&["cancel", &id]);
}

#[test]
fn a_job_with_nothing_to_do_is_idle() {
    let cluster = Cluster::start("metrics-idle", 1, 4);
    let id = cluster.submit(&job("steady_clicks.flow"), &["--rate", "5"]);
    cluster.wait_all_tasks(&id, "RUNNING", Duration::from_secs(30));
    let vs = vertices(&cluster, &id);
    holds(&cluster, "every vertex idle", Duration::from_secs(40), |c| {
        let mut seen = Vec::new();
        for (vid, name) in &vs {
            let idle = subtask0(c, &id, vid, "idleTimeMsPerSecond")?;
            let busy = subtask0(c, &id, vid, "busyTimeMsPerSecond")?;
            let bp = subtask0(c, &id, vid, "backPressuredTimeMsPerSecond")?;
            if idle < 900.0 || bp > 0.0 || busy > 100.0 {
                return None;
            }
            seen.push(format!("{name}: idle {idle}, busy {busy}"));
        }
        Some(seen.join("; "))
    });
    // Watermarks reach the window vertex (the job's event time starts at
    // the epoch: a small number, not Long.MIN_VALUE as before the first).
    let window = &vs[2].0;
    cluster.wait_for("the window's input watermark", Duration::from_secs(10), |c| {
        (subtask0(c, &id, window, "currentInputWatermark")? > -1e12).then_some(())
    });
    cluster.flowc(&["cancel", &id]);
}

#[test]
fn processes_report_memory_cpu_and_threads() {
    let cluster = Cluster::start("metrics-proc", 2, 1);
    let tms = cluster.rest().get("/taskmanagers").expect("taskmanagers");
    let tm = tms["taskmanagers"][0]["id"].as_str().expect("a TaskManager id").to_string();
    let names = "Status.JVM.Memory.Heap.Used,Status.JVM.Threads.Count,Status.JVM.CPU.Time,Status.JVM.CPU.Load";
    let got = |path: &str| -> Vec<(String, f64)> {
        let v: Value = cluster.rest().get(path).expect(path);
        v.as_array()
            .expect("a list")
            .iter()
            .map(|m| {
                (
                    m["id"].as_str().unwrap_or_default().to_string(),
                    m["value"].as_str().unwrap_or("x").parse().unwrap_or(-1.0),
                )
            })
            .collect()
    };
    // A TaskManager's come with its heartbeats (every second here).
    cluster.wait_for("a TaskManager's process metrics", Duration::from_secs(10), |c| {
        let v = c.rest().get(&format!("/taskmanagers/{tm}/metrics?get=Status.JVM.Memory.Heap.Used")).ok()?;
        (v[0]["value"].as_str()?.parse::<f64>().ok()? > 0.0).then_some(())
    });
    let pid = cluster.taskmanager_pid(0);
    for (path, pids) in [
        (format!("/taskmanagers/{tm}/metrics?get={names}"), None),
        (
            format!("/jobmanager/metrics?get={names},numRegisteredTaskManagers,taskSlotsTotal"),
            Some(cluster.jobmanager_pid()),
        ),
    ] {
        let m = got(&path);
        let value = |k: &str| m.iter().find(|(n, _)| n == k).map(|(_, v)| *v).unwrap_or(-1.0);
        assert!(value("Status.JVM.Memory.Heap.Used") > 1e6, "{path}: {m:?}");
        assert!(value("Status.JVM.Threads.Count") >= 2.0, "{path}: {m:?}");
        assert!(value("Status.JVM.CPU.Time") > 0.0, "{path}: {m:?}");
        assert!((0.0..=1.0).contains(&value("Status.JVM.CPU.Load")), "{path}: {m:?}");
        if let Some(jm) = pids {
            assert_eq!(value("numRegisteredTaskManagers"), 2.0, "{m:?}");
            assert_eq!(value("taskSlotsTotal"), 2.0, "{m:?}");
            let _ = jm;
        }
    }
    let _ = pid;
    // Listing without get=, and aggregated over TaskManagers.
    let list = cluster.rest().get("/taskmanagers/metrics").expect("list");
    assert!(list.as_array().is_some_and(|l| l.iter().any(|m| m["id"] == "Status.JVM.Memory.Heap.Used")), "{list}");
    let agg = cluster.rest().get("/taskmanagers/metrics?get=Status.JVM.Threads.Count&agg=sum,min").expect("agg");
    assert!(agg[0]["sum"].as_f64().unwrap_or(0.0) >= 2.0 * agg[0]["min"].as_f64().unwrap_or(f64::MAX), "{agg}");
    let jobs = cluster.rest().get("/jobs/metrics").expect("jobs metrics");
    assert!(jobs.is_array(), "{jobs}");
}
