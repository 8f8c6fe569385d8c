//! End to end: the REST API's resource limits and security switches
//! (docs/SECURITY.md), against real JobManager processes.
//!
//! - connection limit, header and idleness timeouts (issue 9, defect 3);
//! - bodies over `rest.server.max-content-length`: 413, no partial file;
//! - lesser items: bad `parallelism`, an unterminated quote or a missing
//!   value in `programArgs`, a 300-character file name, a 100 MiB upload;
//! - `web.submit.enable` / `web.cancel.enable`: 403;
//! - `flowc.security.rest.token`: 401 without it, `flowc` with
//!   `FLOWC_REST_TOKEN` works;
//! - the web UI stops polling a job that is not there;
//! - the JobManager raises its soft open-file limit to the hard one at start.
//!
//! TLS and refused starts are in `e2e_rest_tls.rs`.

mod support;

use flowc_runtime::client::http::{self, Client};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use support::cluster::{flowc_bin, Cluster};

fn steady_job() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/jobs/steady_clicks.flow")
}

/// The number of open file descriptors of a process.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |rd| rd.count())
}

fn multipart(field: &str, filename: &str, data: &[u8]) -> (String, Vec<u8>) {
    let boundary = "flowc-test-boundary-9c2a";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(data);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

fn upload(c: &Cluster, name: &str, data: &[u8]) -> http::Response {
    let (ctype, body) = multipart("jarfile", name, data);
    c.client
        .request("POST", &c.rest_addr, "/jars/upload", Some((&ctype, &body)), Duration::from_secs(60))
        .expect("upload answered")
}

fn post_json(c: &Cluster, path: &str, body: &Value) -> http::Response {
    c.client
        .request(
            "POST",
            &c.rest_addr,
            path,
            Some(("application/json", body.to_string().as_bytes())),
            Duration::from_secs(30),
        )
        .expect("answered")
}

fn errors(r: &http::Response) -> String {
    let v: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    v["errors"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" | "))
        .unwrap_or_else(|| r.text())
}

/// Files in the upload directory, hidden partial ones included.
fn stored_uploads(c: &Cluster) -> Vec<String> {
    std::fs::read_dir(c.scratch.0.join("uploads"))
        .map(|rd| rd.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default()
}

/// Reads from a socket until EOF, an error or `wait`; what was read and
/// whether the peer ended the connection.
fn read_until_closed(s: &mut TcpStream, wait: Duration) -> (Vec<u8>, bool) {
    let deadline = Instant::now() + wait;
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return (got, false);
        }
        let _ = s.set_read_timeout(Some(left.min(Duration::from_millis(200))));
        match s.read(&mut buf) {
            Ok(0) => return (got, true),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => return (got, true),
        }
    }
}

#[test]
fn rest_limits_connections_and_closes_idle_and_slow_ones() {
    let cluster = Cluster::jobmanager_with(
        "restlimits",
        "rest.server.max-connections: 40\nrest.server.header-timeout: 1500\nrest.idleness-timeout: 3000\n",
    );
    let pid = cluster.jobmanager_pid();
    let before = open_fds(pid);
    // 300 connections that never send a byte: 40 are held, the rest refused at once.
    let mut idle: Vec<TcpStream> =
        (0..300).map(|_| TcpStream::connect(&cluster.rest_addr).expect("connect to REST")).collect();
    std::thread::sleep(Duration::from_millis(500));
    let during = open_fds(pid);
    assert!(
        during <= before + 40 + 10,
        "the JobManager holds {during} descriptors, {before} before 300 idle connections"
    );
    let mut refused_with_503 = 0;
    let mut closed = 0;
    let started = Instant::now();
    for s in &mut idle {
        let (got, ended) = read_until_closed(s, Duration::from_millis(4500).saturating_sub(started.elapsed()));
        refused_with_503 += usize::from(got.starts_with(b"HTTP/1.1 503"));
        closed += usize::from(ended);
    }
    assert!(refused_with_503 >= 200, "only {refused_with_503} of 300 connections over the limit were answered 503");
    assert_eq!(closed, 300, "idle connections must be closed by the header timeout (1.5 s)");

    // A client that sends its headers one byte at a time is cut off too.
    let mut slow = TcpStream::connect(&cluster.rest_addr).expect("connect");
    slow.set_write_timeout(Some(Duration::from_secs(1))).expect("timeout");
    let t0 = Instant::now();
    let mut cut_off = false;
    for b in b"GET /overview HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        .iter()
        .cycle()
        .take(200)
    {
        if slow.write_all(&[*b]).is_err() {
            cut_off = true;
            break;
        }
        let (_, ended) = read_until_closed(&mut slow, Duration::from_millis(100));
        if ended {
            cut_off = true;
            break;
        }
    }
    assert!(cut_off && t0.elapsed() < Duration::from_secs(6), "a slow header was not cut off ({:?})", t0.elapsed());

    // A keep-alive connection that goes quiet after a request is closed too.
    let mut ka = TcpStream::connect(&cluster.rest_addr).expect("connect");
    ka.write_all(b"GET /overview HTTP/1.1\r\nHost: x\r\n\r\n").expect("request");
    let (got, ended) = read_until_closed(&mut ka, Duration::from_secs(5));
    assert!(got.starts_with(b"HTTP/1.1 200") && ended, "keep-alive: {}", String::from_utf8_lossy(&got));

    // A body that stalls half way is cut off by the idleness timeout (3 s).
    let mut stalled = TcpStream::connect(&cluster.rest_addr).expect("connect");
    stalled
        .write_all(b"POST /jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: 1000\r\n\r\nFLOWCPLN")
        .expect("request");
    let t0 = Instant::now();
    let (_, ended) = read_until_closed(&mut stalled, Duration::from_secs(8));
    assert!(ended && t0.elapsed() >= Duration::from_secs(2), "a stalled body: closed {ended} after {:?}", t0.elapsed());

    // And the API answers normally afterwards.
    let o = cluster.rest().get("/overview").expect("GET /overview after the flood");
    assert!(o["flink-version"].is_string(), "{o}");
    let metrics =
        cluster.client.request("GET", &cluster.rest_addr, "/metrics", None, Duration::from_secs(5)).expect("metrics");
    assert!(metrics.text().contains("flowc_rest_connections_refused_total"), "{}", metrics.text());
}

#[test]
fn oversized_bodies_get_413_and_leave_no_partial_file() {
    let cluster = Cluster::jobmanager_with("rest413", "rest.server.max-content-length: 4194304\n");
    // Declared too large: refused before the body is read.
    let r = upload(&cluster, "big.plan", &vec![b'x'; 6 << 20]);
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(errors(&r).contains("rest.server.max-content-length"), "{}", errors(&r));
    // Chunked, so that only reading finds out: cut off, partial file removed.
    let mut s = TcpStream::connect(&cluster.rest_addr).expect("connect");
    let boundary = "b0undary";
    s.write_all(
        format!(
            "POST /jars/upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Type: multipart/form-data; boundary={boundary}\r\n\r\n"
        )
        .as_bytes(),
    )
    .expect("head");
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"jarfile\"; filename=\"big.plan\"\r\n\r\nFLOWCPLN"
    )
    .into_bytes();
    body.extend(std::iter::repeat_n(b'z', 6 << 20));
    let mut answer = Vec::new();
    for chunk in body.chunks(64 * 1024) {
        if s.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .and_then(|()| s.write_all(chunk))
            .and_then(|()| s.write_all(b"\r\n"))
            .is_err()
        {
            break;
        }
    }
    let _ = s.write_all(b"0\r\n\r\n");
    let (got, _) = read_until_closed(&mut s, Duration::from_secs(10));
    answer.extend(got);
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 413"), "chunked upload over the limit: {text}");
    assert!(stored_uploads(&cluster).is_empty(), "left behind: {:?}", stored_uploads(&cluster));
    // `POST /jobs` has the same limit.
    let r = cluster
        .client
        .request(
            "POST",
            &cluster.rest_addr,
            "/jobs",
            Some(("application/octet-stream", &vec![0u8; 5 << 20])),
            Duration::from_secs(30),
        )
        .expect("answered");
    assert_eq!(r.status, 413, "{}", r.text());
    // Under the limit, a plan-sized upload is stored.
    let mut plan = b"FLOWCPLN".to_vec();
    plan.extend(std::iter::repeat_n(7u8, 3 << 20));
    let r = upload(&cluster, "ok.plan", &plan);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(stored_uploads(&cluster).len(), 1, "{:?}", stored_uploads(&cluster));
}

#[test]
fn run_parameters_are_checked_and_odd_uploads_are_answered() {
    let cluster = Cluster::start("restlesser", 1, 2);
    let data = std::fs::read(steady_job()).expect("job file");
    // A 300-character file name: stored under a shortened name that works.
    let long = format!("{}.flow", "n".repeat(295));
    let r = upload(&cluster, &long, &data);
    assert_eq!(r.status, 200, "{}", r.text());
    let up: Value = serde_json::from_slice(&r.body).expect("json");
    let jar = Path::new(up["filename"].as_str().expect("filename"))
        .file_name()
        .and_then(|f| f.to_str())
        .expect("id")
        .to_string();
    assert!(jar.len() < 200 && jar.ends_with(".flow"), "{jar}");
    let run = |body: Value, query: &str| post_json(&cluster, &format!("/jars/{jar}/run{query}"), &body);

    for bad in ["-5", "0", "abc"] {
        let r = run(Value::Null, &format!("?parallelism={bad}"));
        assert_eq!(r.status, 400, "?parallelism={bad}: {}", r.text());
        assert!(errors(&r).contains("parallelism") && errors(&r).contains(bad), "{}", errors(&r));
    }
    let r = run(serde_json::json!({ "parallelism": -5 }), "");
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(errors(&r).contains("parallelism"), "{}", errors(&r));

    let r = run(serde_json::json!({ "programArgs": "--rate \"500" }), "");
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(errors(&r).contains("unterminated quote") && errors(&r).contains("\"500"), "{}", errors(&r));

    let r = run(serde_json::json!({ "programArgs": "--rate" }), "");
    assert_eq!(r.status, 400, "{}", r.text());
    let v: Value = serde_json::from_slice(&r.body).expect("json");
    assert_eq!(v["errors"].as_array().map(Vec::len), Some(1), "{v}");
    assert!(errors(&r).contains("`--rate` needs a value"), "{}", errors(&r));

    let r = run(serde_json::json!({ "programArgs": "--rate 500", "parallelism": 2 }), "");
    // As Flink: a run answers 200 with the job's id.
    assert_eq!(r.status, 200, "{}", r.text());
    let id = serde_json::from_slice::<Value>(&r.body).expect("json")["jobid"].as_str().expect("jobid").to_string();
    cluster.wait_all_tasks(&id, "RUNNING", Duration::from_secs(30));

    // A 100 MiB upload is over Flink's default limit of 100 MiB: 413, not 400.
    let r = upload(&cluster, "huge.flow", &vec![b'a'; 100 << 20]);
    assert_eq!(r.status, 413, "{}", r.text());
}

#[test]
fn submission_and_cancellation_can_be_switched_off() {
    let cluster = Cluster::jobmanager_with("restswitches", "web.submit.enable: false\nweb.cancel.enable: false\n");
    let data = std::fs::read(steady_job()).expect("job file");
    let r = upload(&cluster, "steady.flow", &data);
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(errors(&r).contains("web.submit.enable"), "{}", errors(&r));
    assert!(stored_uploads(&cluster).is_empty());
    let r = post_json(&cluster, "/jars/0123_steady.flow/run", &Value::Null);
    assert_eq!(r.status, 403, "{}", r.text());
    let r = cluster
        .client
        .request(
            "POST",
            &cluster.rest_addr,
            "/v1/jobs",
            Some(("application/octet-stream", b"FLOWCPLN")),
            Duration::from_secs(10),
        )
        .expect("answered");
    assert_eq!(r.status, 403, "{}", r.text());
    let jid = "0123456789abcdef0123456789abcdef";
    let r = cluster
        .client
        .request("PATCH", &cluster.rest_addr, &format!("/jobs/{jid}?mode=cancel"), None, Duration::from_secs(10))
        .expect("answered");
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(errors(&r).contains("web.cancel.enable"), "{}", errors(&r));
    let r = post_json(&cluster, &format!("/jobs/{jid}/savepoints"), &serde_json::json!({ "cancel-job": true }));
    assert_eq!(r.status, 403, "{}", r.text());
    let cfg = cluster.rest().get("/config").expect("/config");
    assert_eq!(cfg["features"]["web-submit"], false, "{cfg}");
    assert_eq!(cfg["features"]["web-cancel"], false, "{cfg}");
    // flowc's own client says why.
    let out = cluster.flowc(&["run", "-d", steady_job().to_str().expect("path")]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("web.submit.enable"), "{out:?}");
}

const TOKEN: &str = "s3cret-token-for-the-e2e-test";

#[test]
fn a_token_guards_every_request_and_flowc_sends_it() {
    let cluster = Cluster::start_with("resttoken", 1, 2, &format!("flowc.security.rest.token: {TOKEN}\n"));
    let plain = |path: &str, auth: Option<&str>| {
        let c = Client { token: auth.map(str::to_string), ..Client::default() };
        c.request("GET", &cluster.rest_addr, path, None, Duration::from_secs(10)).expect("answered")
    };
    for path in ["/overview", "/v1/jobs/overview", "/jobmanager/config", "/metrics", "/no/such/path"] {
        let r = plain(path, None);
        assert_eq!(r.status, 401, "{path}: {}", r.text());
        assert_eq!(plain(path, Some("wrong-token-wrong-token")).status, 401, "{path}");
    }
    let mut raw = TcpStream::connect(&cluster.rest_addr).expect("connect");
    raw.write_all(b"GET /overview HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").expect("request");
    let (got, _) = read_until_closed(&mut raw, Duration::from_secs(5));
    let head = String::from_utf8_lossy(&got).to_ascii_lowercase();
    assert!(head.contains("www-authenticate: bearer"), "{head}");
    // The web UI's page and its scripts hold no data and are served; the
    // script every page loads asks for the token and sends it.
    let page = plain("/", None);
    assert_eq!(page.status, 200);
    assert!(page.text().contains("core.js"), "the page does not load core.js");
    let script = plain("/core.js", None);
    assert_eq!(script.status, 200);
    assert!(
        script.text().contains("sessionStorage") && script.text().contains("Authorization"),
        "the web UI does not send a token"
    );
    assert_eq!(plain("/overview", Some(TOKEN)).status, 200);
    // Secrets are not shown by /jobmanager/config.
    let cfg = plain("/jobmanager/config", Some(TOKEN)).text();
    assert!(!cfg.contains(TOKEN) && cfg.contains("******"), "{cfg}");

    let list = |env: Option<&str>| {
        let mut cmd = Command::new(flowc_bin());
        cmd.args(["list", "-m", &cluster.rest_addr]).env("FLOWC_CONF_DIR", cluster.scratch.0.join("no-conf"));
        cmd.env_remove("FLOWC_REST_TOKEN");
        if let Some(t) = env {
            cmd.env("FLOWC_REST_TOKEN", t);
        }
        cmd.output().expect("flowc list")
    };
    let out = list(None);
    assert!(!out.status.success(), "flowc list without the token succeeded");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("FLOWC_REST_TOKEN"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = list(Some(TOKEN));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("No running jobs."),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // And `flowc run` through the config file's token.
    let id = cluster.submit_with_config(&steady_job(), &["-p", "2"]);
    cluster.wait_all_tasks(&id, "RUNNING", Duration::from_secs(30));
}

/// What the web UI's page fetches in `ms` at `hash` (tests/web/poll_harness.js, Node).
fn web_ui_fetches(cluster: &Cluster, hash: &str, ms: u64) -> Option<Value> {
    let harness = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/web/poll_harness.js");
    let out = match Command::new("node")
        .arg(harness)
        .arg(format!("http://{}/", cluster.rest_addr))
        .arg(hash)
        .arg(ms.to_string())
        .output()
    {
        Ok(o) => o,
        Err(e) => {
            assert!(std::env::var_os("CI").is_none(), "node is needed in CI: {e}");
            eprintln!("skipped: node is not installed ({e})");
            return None;
        }
    };
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    Some(serde_json::from_slice(&out.stdout).expect("the harness's JSON"))
}

#[test]
fn the_web_ui_stops_polling_a_missing_job_and_an_unknown_tab() {
    let cluster = Cluster::jobmanager_only("restwebui");
    let requests = |v: &Value| v["requests"].as_u64().unwrap_or(0);
    // The harness sees the page poll where it should: once a second.
    let Some(live) = web_ui_fetches(&cluster, "#/overview", 3500) else { return };
    assert!(requests(&live) >= 6, "the overview is not polled: {live}");
    // A job that answers 404: one round of requests, then none.
    let missing = web_ui_fetches(&cluster, "#/jobs/0123456789abcdef0123456789abcdef", 3500).expect("node");
    assert!(requests(&missing) <= 7, "a missing job is polled: {} requests in 3.5 s", requests(&missing));
    assert!(missing["content"].as_str().is_some_and(|c| c.contains("not found")), "{missing}");
    let tab = web_ui_fetches(&cluster, "#/jobs/0123456789abcdef0123456789abcdef/no-such-tab", 2500).expect("node");
    assert!(requests(&tab) <= 1, "an unknown tab is polled: {tab}");
}

/// The soft and hard `Max open files` of a process, from `/proc/<pid>/limits`.
fn open_file_limits(pid: u32) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    let mut numbers = line.split_whitespace().filter_map(|w| w.parse::<u64>().ok());
    Some((numbers.next()?, numbers.next()?))
}

#[test]
fn the_jobmanager_raises_its_open_file_limit_at_start() {
    // Started with a soft limit of 256 (below the hard one): idle REST
    // clients could take every descriptor that RPC and checkpoints need,
    // unless the JobManager raises the soft limit to the hard one first thing.
    let scratch = support::cluster::Scratch::new("nofile");
    let ports = support::free_ports(2);
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(r#"ulimit -S -n 256 && exec "$0" "$@""#)
        .arg(flowc_bin())
        .arg("jobmanager")
        .args(["-D", &format!("rest.port={}", ports[0]), "-D", &format!("jobmanager.rpc.port={}", ports[1])])
        .args(["-D", &format!("web.upload.dir={}", scratch.0.join("uploads").display())])
        .env("FLOWC_CONF_DIR", scratch.0.join("no-conf"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("starting flowc jobmanager under sh");
    let pid = child.id();
    let rest = flowc_runtime::client::rest::Rest::new(format!("127.0.0.1:{}", ports[0]));
    let deadline = Instant::now() + Duration::from_secs(30);
    while rest.get("/config").is_err() {
        assert!(Instant::now() < deadline, "the JobManager did not answer within 30 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    let limits = open_file_limits(pid);
    let _ = child.kill();
    let _ = child.wait();
    let (soft, hard) = limits.expect("Max open files in /proc/<pid>/limits");
    assert!(hard > 256, "the test needs a hard limit above 256 (it is {hard})");
    assert_eq!(soft, hard, "the JobManager kept a soft open-file limit of {soft} below the hard {hard}");
}
