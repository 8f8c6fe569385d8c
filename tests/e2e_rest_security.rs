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
//! - REST over TLS (PKCS12 keystore and PEM): `flowc` and Apache Flink 2.3's
//!   CLI with the truststore work; plain HTTP and an untrusting client fail;
//! - a malformed security or limit value stops the JobManager, naming the key.

mod support;

use flowc_runtime::client::http::{self, Client, HttpError};
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
    assert_eq!(r.status, 202, "{}", r.text());
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
    // The web UI's page itself holds no data and is served; it asks for the token.
    let page = plain("/", None);
    assert_eq!(page.status, 200);
    assert!(
        page.text().contains("sessionStorage") && page.text().contains("Authorization"),
        "the page does not send a token"
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

/// A throwaway CA and a server certificate for 127.0.0.1 and localhost, as
/// PEM files, a PKCS12 keystore and (with keytool) a PKCS12 truststore.
struct Pki {
    ca_pem: PathBuf,
    cert_pem: PathBuf,
    key_pem: PathBuf,
    keystore: PathBuf,
    truststore: Option<PathBuf>,
    other_ca_pem: PathBuf,
}

const STORE_PASSWORD: &str = "changeit-e2e";

fn make_pki(dir: &Path) -> Pki {
    let ca_key = rcgen::KeyPair::generate().expect("CA key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "flowc e2e test CA");
    let ca = ca_params.self_signed(&ca_key).expect("CA certificate");
    let key = rcgen::KeyPair::generate().expect("server key");
    let mut params =
        rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).expect("params");
    params.distinguished_name.push(rcgen::DnType::CommonName, "localhost");
    let cert = params.signed_by(&key, &ca, &ca_key).expect("server certificate");
    let other_key = rcgen::KeyPair::generate().expect("other key");
    let mut other_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    other_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let other = other_params.self_signed(&other_key).expect("other CA");

    let pki = Pki {
        ca_pem: dir.join("ca.pem"),
        cert_pem: dir.join("server.pem"),
        key_pem: dir.join("server.key"),
        keystore: dir.join("server.p12"),
        truststore: None,
        other_ca_pem: dir.join("other-ca.pem"),
    };
    std::fs::write(&pki.ca_pem, ca.pem()).expect("write");
    std::fs::write(&pki.cert_pem, format!("{}{}", cert.pem(), ca.pem())).expect("write");
    std::fs::write(&pki.key_pem, key.serialize_pem()).expect("write");
    std::fs::write(&pki.other_ca_pem, other.pem()).expect("write");
    let mut ks = p12_keystore::KeyStore::new();
    let chain = p12_keystore::PrivateKeyChain::new(
        b"flowc-e2e".as_slice(),
        p12_keystore::PrivateKey::from_der(&key.serialize_der()).expect("key der"),
        [
            p12_keystore::Certificate::from_der(cert.der()).expect("cert der"),
            p12_keystore::Certificate::from_der(ca.der()).expect("ca der"),
        ],
    );
    ks.add_entry("flowc", p12_keystore::KeyStoreEntry::PrivateKeyChain(chain));
    std::fs::write(&pki.keystore, ks.writer(STORE_PASSWORD).write().expect("PKCS12")).expect("write");
    let truststore = dir.join("truststore.p12");
    let made = Command::new("keytool")
        .args(["-importcert", "-noprompt", "-alias", "flowc-ca", "-storetype", "PKCS12", "-storepass", STORE_PASSWORD])
        .arg("-keystore")
        .arg(&truststore)
        .arg("-file")
        .arg(&pki.ca_pem)
        .output();
    match made {
        Ok(o) if o.status.success() => Pki { truststore: Some(truststore), ..pki },
        other => {
            assert!(std::env::var_os("CI").is_none(), "keytool failed in CI: {other:?}");
            eprintln!("keytool is not usable ({other:?}): the truststore steps are skipped");
            pki
        }
    }
}

fn flink_lib() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("FLOWC_TEST_FLINK_LIB") {
        return Some(PathBuf::from(p));
    }
    let cached = PathBuf::from(std::env::var_os("HOME")?).join(".cache/flowc/flink-2.3.0/pyflink/lib");
    cached.join("flink-dist-2.3.0.jar").is_file().then_some(cached)
}

fn flink(lib: &Path, conf: &Path, args: &[&str]) -> std::process::Output {
    let cp: Vec<String> = std::fs::read_dir(lib)
        .expect("Flink's lib directory")
        .flatten()
        .map(|e| e.path().display().to_string())
        .filter(|p| p.ends_with(".jar"))
        .collect();
    Command::new("java")
        .arg("-cp")
        .arg(cp.join(":"))
        .arg("org.apache.flink.client.cli.CliFrontend")
        .args(args)
        .env("FLINK_CONF_DIR", conf)
        .output()
        .expect("running Flink's CLI (java)")
}

#[test]
fn rest_over_tls_with_a_pkcs12_keystore() {
    let dir = support::cluster::Scratch::new("tlspki");
    let pki = make_pki(&dir.0);
    let Some(truststore) = pki.truststore.clone() else { return };
    let config = format!(
        "security.ssl.rest.enabled: true\nsecurity.ssl.rest.keystore: {}\nsecurity.ssl.rest.keystore-password: {STORE_PASSWORD}\nsecurity.ssl.rest.key-password: {STORE_PASSWORD}\nsecurity.ssl.rest.truststore: {}\nsecurity.ssl.rest.truststore-password: {STORE_PASSWORD}\n",
        pki.keystore.display(),
        truststore.display()
    );
    let cluster = Cluster::start_with("resttls", 1, 2, &config);
    let id = cluster.submit_with_config(&steady_job(), &["-p", "2"]);
    cluster.wait_all_tasks(&id, "RUNNING", Duration::from_secs(30));
    // flowc with the truststore (the cluster's config file).
    let out = Command::new(flowc_bin()).args(["list", "--config"]).arg(&cluster.config).output().expect("flowc list");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && stdout.contains(&id), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    // Plain HTTP gets no answer.
    match http::request("GET", &cluster.rest_addr, "/overview", None, Duration::from_secs(5)) {
        Err(HttpError::NoAnswer { .. }) | Err(HttpError::Io { .. }) => {}
        other => panic!("plain HTTP to a TLS port: {:?}", other.map(|r| r.text())),
    }
    // A TLS client that trusts another CA is refused.
    let mut c = flowc_runtime::config::Config::default();
    c.set("security.ssl.rest.enabled", "true");
    c.set("security.ssl.rest.ca", pki.other_ca_pem.display().to_string());
    let untrusting = Client::from_config(&c, None).expect("client config");
    match untrusting.request("GET", &cluster.rest_addr, "/overview", None, Duration::from_secs(5)) {
        Err(HttpError::Tls { reason, .. }) => assert!(reason.to_lowercase().contains("certificate"), "{reason}"),
        other => panic!("an untrusting client: {:?}", other.map(|r| r.text())),
    }
    // Apache Flink 2.3's CLI with Flink's keys and the keytool truststore.
    let Some(lib) = flink_lib() else {
        assert!(std::env::var_os("CI").is_none(), "FLOWC_TEST_FLINK_LIB is not set in CI");
        eprintln!("skipped the Flink CLI part: Apache Flink's jars are not installed");
        return;
    };
    let conf = cluster.scratch.0.join("flink-conf");
    std::fs::create_dir_all(&conf).expect("conf dir");
    std::fs::write(
        conf.join("config.yaml"),
        format!(
            // Flink's default suite (TLS_RSA_WITH_AES_128_CBC_SHA) is not
            // offered by rustls: Flink is given modern ones (docs/SECURITY.md).
            "rest.address: 127.0.0.1\nsecurity.ssl.rest.enabled: true\nsecurity.ssl.rest.truststore: {}\nsecurity.ssl.rest.truststore-password: {STORE_PASSWORD}\nsecurity.ssl.algorithms: TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\n",
            truststore.display()
        ),
    )
    .expect("config.yaml");
    // Flink's `-m host:port` means plain HTTP (it sets security.ssl.rest.enabled
    // from the scheme): `-m https://host:port` for TLS.
    let m = format!("https://{}", cluster.rest_addr);
    let out = flink(&lib, &conf, &["list", "-m", &m]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains(&format!(": {id} : Steady Clicks (RUNNING)")),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = flink(&lib, &conf, &["cancel", "-m", &m, &id]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    cluster.wait_job_state(&id, "CANCELED", Duration::from_secs(20));
}

#[test]
fn rest_over_tls_with_pem_files() {
    let dir = support::cluster::Scratch::new("tlspem");
    let pki = make_pki(&dir.0);
    let config = format!(
        "security.ssl.rest.enabled: true\nsecurity.ssl.rest.cert: {}\nsecurity.ssl.rest.key: {}\nsecurity.ssl.rest.ca: {}\n",
        pki.cert_pem.display(),
        pki.key_pem.display(),
        pki.ca_pem.display()
    );
    let cluster = Cluster::jobmanager_with("resttlspem", &config);
    let o = cluster.rest().get("/overview").expect("GET /overview over TLS");
    assert!(o["flink-version"].is_string(), "{o}");
    let out = Command::new(flowc_bin()).args(["list", "--config"]).arg(&cluster.config).output().expect("flowc list");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_malformed_security_or_limit_value_stops_the_jobmanager_naming_the_key() {
    let scratch = support::cluster::Scratch::new("badconf");
    let pki = make_pki(&scratch.0);
    let garbage = scratch.0.join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").expect("write");
    let cases = [
        ("security.ssl.rest.enabled: true\n".to_string(), "security.ssl.rest.enabled"),
        ("security.ssl.rest.enabled: yes-please\n".to_string(), "security.ssl.rest.enabled"),
        (
            "security.ssl.rest.enabled: true\nsecurity.ssl.rest.keystore: /no/such/keystore.p12\n".to_string(),
            "security.ssl.rest.keystore",
        ),
        (
            format!(
                "security.ssl.rest.enabled: true\nsecurity.ssl.rest.keystore: {}\nsecurity.ssl.rest.keystore-password: wrong\n",
                pki.keystore.display()
            ),
            "security.ssl.rest.keystore",
        ),
        (
            format!(
                "security.ssl.rest.enabled: true\nsecurity.ssl.rest.cert: {}\nsecurity.ssl.rest.key: {}\n",
                garbage.display(),
                pki.key_pem.display()
            ),
            "security.ssl.rest.cert",
        ),
        ("rest.server.max-connections: lots\n".to_string(), "rest.server.max-connections"),
        ("rest.server.max-content-length: 0\n".to_string(), "rest.server.max-content-length"),
        ("web.cancel.enable: perhaps\n".to_string(), "web.cancel.enable"),
        ("flowc.security.rest.token: short\n".to_string(), "flowc.security.rest.token"),
    ];
    for (i, (config, key)) in cases.iter().enumerate() {
        let path = scratch.0.join(format!("bad-{i}.yaml"));
        let port = support::free_port();
        std::fs::write(&path, format!("rest.port: {port}\njobmanager.rpc.port: {}\n{config}", support::free_port()))
            .expect("write");
        let mut child = Command::new(flowc_bin())
            .args(["jobmanager", "--config"])
            .arg(&path)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("flowc jobmanager");
        let deadline = Instant::now() + Duration::from_secs(15);
        while child.try_wait().expect("wait").is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        if child.try_wait().expect("wait").is_none() {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the JobManager started with {config:?}");
        }
        let out = child.wait_with_output().expect("output");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last = stderr.lines().last().unwrap_or("");
        assert!(!out.status.success(), "{config:?}");
        assert!(
            last.starts_with("error:") && last.contains(key),
            "{config:?}: the last line does not name `{key}`:\n{stderr}"
        );
    }
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
