//! End to end: the REST API in Flink's shapes. Every field of the real
//! Apache Flink 2.3 responses in `tests/reference/flink-2.3-rest/` must be
//! in flowc's answer to the same request (flowc may add fields); job files
//! are uploaded and run through `/jars` as the seed does; errors answer
//! `{"errors": [...]}` with a 4xx.

mod support;

use flowc_runtime::client::http;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;
use support::cluster::Cluster;

fn reference(name: &str) -> Value {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/flink-2.3-rest");
    let text = std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("reading reference {name}: {e}"));
    serde_json::from_str(&text).expect("reference JSON")
}

/// The paths of fields in `want` that `got` lacks (arrays: their first elements).
fn missing(want: &Value, got: &Value, path: &str, out: &mut Vec<String>) {
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => {
            for (k, wv) in w {
                match g.get(k) {
                    None => out.push(format!("{path}.{k}")),
                    Some(gv) => missing(wv, gv, &format!("{path}.{k}"), out),
                }
            }
        }
        (Value::Array(w), Value::Array(g)) => {
            if let (Some(w0), Some(g0)) = (w.first(), g.first()) {
                missing(w0, g0, &format!("{path}[0]"), out);
            }
        }
        // Values may differ, and null stands for an object or array not there yet.
        _ => {}
    }
}

fn steady_job() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/jobs/steady_clicks.flow")
}

#[test]
fn rest_answers_in_flinks_shapes() {
    let cluster = Cluster::start("restshape", 1, 2);
    let id = cluster.submit(&steady_job(), &["-p", "2"]);
    cluster.wait_all_tasks(&id, "RUNNING", Duration::from_secs(30));
    cluster.wait_for("a completed checkpoint", Duration::from_secs(20), |c| {
        (c.metric(&id, "numberOfCompletedCheckpoints").unwrap_or(0) >= 2).then_some(())
    });
    let cases = [
        ("/overview".to_string(), "overview.json"),
        ("/jobs".to_string(), "jobs.json"),
        ("/jobs/overview".to_string(), "jobs-overview.json"),
        (format!("/jobs/{id}"), "job.json"),
        (format!("/jobs/{id}/plan"), "plan.json"),
        (format!("/jobs/{id}/config"), "job-config.json"),
        (format!("/jobs/{id}/checkpoints"), "checkpoints.json"),
        (format!("/jobs/{id}/metrics?get=lastCheckpointSize"), "job-metric-lcs.json"),
        ("/taskmanagers".to_string(), "taskmanagers.json"),
    ];
    // The comparison itself finds what is missing.
    let mut probe = Vec::new();
    missing(&reference("job.json"), &serde_json::json!({ "vertices": [{}] }), "", &mut probe);
    assert!(probe.contains(&".jid".to_string()) && probe.contains(&".vertices[0].metrics".to_string()), "{probe:?}");
    let mut problems = Vec::new();
    for (path, file) in &cases {
        for prefix in ["", "/v1"] {
            let got =
                cluster.rest().get(&format!("{prefix}{path}")).unwrap_or_else(|e| panic!("GET {prefix}{path}: {e}"));
            let mut out = Vec::new();
            missing(&reference(file), &got, "", &mut out);
            if !out.is_empty() {
                problems.push(format!("GET {prefix}{path} lacks {out:?}"));
            }
        }
    }
    // The metric ids Flink lists for a job with checkpoints.
    let ids = cluster.rest().get(&format!("/jobs/{id}/metrics")).expect("metrics");
    for want in [
        "lastCheckpointSize",
        "lastCheckpointDuration",
        "numberOfCompletedCheckpoints",
        "numberOfFailedCheckpoints",
        "numRestarts",
        "uptime",
    ] {
        if !ids.as_array().is_some_and(|a| a.iter().any(|m| m["id"] == want)) {
            problems.push(format!("/jobs/:id/metrics lacks {want}"));
        }
    }
    let lcs = cluster.rest().get(&format!("/jobs/{id}/metrics?get=lastCheckpointSize")).expect("lcs");
    assert!(lcs[0]["value"].as_str().and_then(|v| v.parse::<u64>().ok()).is_some_and(|v| v > 0), "{lcs}");
    // Exceptions after a failure.
    let ex = cluster.rest().get(&format!("/jobs/{id}/exceptions")).expect("exceptions");
    missing(
        &serde_json::json!({"exceptionHistory": {"entries": [], "truncated": false}}),
        &ex,
        "exceptions",
        &mut problems,
    );
    assert!(problems.is_empty(), "{problems:#?}");
}

fn multipart(field: &str, filename: &str, data: &[u8]) -> (String, Vec<u8>) {
    let boundary = "flowc-test-boundary-7d1e";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(data);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[test]
fn job_files_upload_and_run_through_jars_as_in_the_seed() {
    let cluster = Cluster::start("jars", 1, 4);
    let data = std::fs::read(steady_job()).expect("job file");
    let (ctype, body) = multipart("jarfile", "steady_clicks.flow", &data);
    let r = http::request("POST", &cluster.rest_addr, "/jars/upload", Some((&ctype, &body)), Duration::from_secs(10))
        .expect("upload");
    assert_eq!(r.status, 200, "{}", r.text());
    let up: Value = serde_json::from_slice(&r.body).expect("json");
    assert_eq!(up["status"], "success", "{up}");
    let filename = up["filename"].as_str().expect("filename");
    let jar_id = Path::new(filename).file_name().and_then(|f| f.to_str()).expect("jar id").to_string();
    let jars = cluster.rest().get("/jars").expect("GET /jars");
    assert!(jars["files"].as_array().is_some_and(|f| f.iter().any(|j| j["id"] == jar_id.as_str())), "{jars}");

    let run = serde_json::json!({ "programArgs": "--rate 500", "parallelism": 3 });
    let started = cluster.rest().post_json(&format!("/jars/{jar_id}/run"), &run).expect("run");
    let id = started["jobid"].as_str().expect("jobid").to_string();
    cluster.wait_all_tasks(&id, "RUNNING", Duration::from_secs(30));
    let j = cluster.job(&id);
    assert!(j["vertices"].as_array().expect("vertices").iter().all(|v| v["parallelism"] == 3), "{j}");

    // Bad requests get a 4xx with reasons.
    let bad = serde_json::json!({ "programArgs": "--no-such-param 1" });
    let r = http::request(
        "POST",
        &cluster.rest_addr,
        &format!("/jars/{jar_id}/run"),
        Some(("application/json", bad.to_string().as_bytes())),
        Duration::from_secs(10),
    )
    .expect("run");
    assert_eq!(r.status, 400, "{}", r.text());
    let v: Value = serde_json::from_slice(&r.body).expect("json");
    assert!(v["errors"][0].as_str().is_some_and(|e| e.contains("no-such-param")), "{v}");
    // A compiled plan carries its parallelism and arguments: asking for
    // others is refused with the reason, the same parallelism runs.
    let plan_path = cluster.scratch.0.join("steady.plan");
    let out = std::process::Command::new(support::cluster::flowc_bin())
        .args(["compile", "-p", "2", "-o"])
        .arg(&plan_path)
        .arg(steady_job())
        .output()
        .expect("flowc compile");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let plan = std::fs::read(&plan_path).expect("plan");
    let (ctype, body) = multipart("jarfile", "steady.plan", &plan);
    let r = http::request("POST", &cluster.rest_addr, "/jars/upload", Some((&ctype, &body)), Duration::from_secs(10))
        .expect("upload the plan");
    assert_eq!(r.status, 200, "{}", r.text());
    let up: Value = serde_json::from_slice(&r.body).expect("json");
    let plan_id = up["filename"].as_str().and_then(|f| f.rsplit('/').next()).expect("plan id").to_string();
    for (request, says) in [
        (serde_json::json!({ "parallelism": 3 }), "parallelism is fixed"),
        (serde_json::json!({ "programArgs": "--rate 5" }), "program arguments were applied"),
    ] {
        let r = http::request(
            "POST",
            &cluster.rest_addr,
            &format!("/jars/{plan_id}/run"),
            Some(("application/json", request.to_string().as_bytes())),
            Duration::from_secs(10),
        )
        .expect("run the plan");
        assert_eq!(r.status, 400, "{request}: {}", r.text());
        assert!(r.text().contains(says), "{request}: {}", r.text());
    }
    let run = serde_json::json!({ "parallelism": 2 });
    let started = cluster.rest().post_json(&format!("/jars/{plan_id}/run"), &run).expect("run the plan");
    let plan_job = started["jobid"].as_str().expect("jobid").to_string();
    let j = cluster.job(&plan_job);
    assert!(j["vertices"].as_array().expect("vertices").iter().all(|v| v["parallelism"] == 2), "{j}");

    let r = http::request(
        "GET",
        &cluster.rest_addr,
        "/jobs/0123456789abcdef0123456789abcdef",
        None,
        Duration::from_secs(10),
    )
    .expect("get");
    assert_eq!(r.status, 404);
    assert!(serde_json::from_slice::<Value>(&r.body).expect("json")["errors"].is_array());
    let r = http::request(
        "POST",
        &cluster.rest_addr,
        &format!("/jobs/{id}/stop"),
        Some(("application/json", b"{not json")),
        Duration::from_secs(10),
    )
    .expect("stop");
    assert_eq!(r.status, 400, "{}", r.text());
    let r = http::request(
        "POST",
        &cluster.rest_addr,
        "/jars/upload",
        Some(("application/json", b"{}")),
        Duration::from_secs(10),
    )
    .expect("upload");
    assert!((400..500).contains(&r.status), "{}", r.text());
    let r = http::request("GET", &cluster.rest_addr, "/no/such/path", None, Duration::from_secs(10)).expect("get");
    assert_eq!(r.status, 404);
}
