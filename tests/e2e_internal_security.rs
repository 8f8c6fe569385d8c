//! End to end: cluster-internal traffic. The RPC port does not follow
//! `rest.bind-address`; with a cluster secret only TaskManagers that prove
//! it register and only senders that prove it open data channels; with
//! mutual TLS only processes with a certificate of the cluster's CA get in;
//! malformed security settings stop a process at once, naming the key.

mod support;

use flowc_runtime::network::{greeting, hello_frame, ChannelHello, ChannelKey};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::cluster::{flowc_bin, Cluster, Scratch};
use support::kafka::Kafka;
use support::pki::Pki;
use support::playground::{click_count_job, click_topics, expect_windows};

/// The click job made bounded: it reads what is in its topic and finishes,
/// firing all 6 windows.
fn bounded_click_job(dir: &Path, input: &str, output: &str) -> PathBuf {
    let job = click_count_job(dir, input, output);
    let text = std::fs::read_to_string(&job).expect("job");
    std::fs::write(&job, text.replace("offsets: committed", "offsets: earliest\n        bounded: latest"))
        .expect("write");
    job
}

/// Runs the bounded job at p=2 on a cluster of two 1-slot TaskManagers (so
/// its HASH edge crosses processes) to FINISHED, and checks every window.
fn run_across_two_taskmanagers(cluster: &Cluster, kafka: &Kafka, name: &str) -> String {
    let (input, output) = click_topics(kafka, name, 36_000);
    let job = bounded_click_job(&cluster.scratch.0, &input, &output);
    let id = cluster.submit(&job, &["-p", "2", "--bootstrap.servers", kafka.bootstrap(), "--event-time"]);
    cluster.wait_job_state(&id, "FINISHED", Duration::from_secs(90));
    let summary = expect_windows(kafka.bootstrap(), &output, 6, true, Duration::from_secs(30));
    assert_eq!(summary.complete_windows, 6);
    id
}

fn taskmanager_count(cluster: &Cluster) -> u64 {
    cluster.rest().get("/overview").ok().and_then(|o| o["taskmanagers"].as_u64()).unwrap_or(0)
}

/// Starts TaskManager with `settings`, expects it to exit non-zero within
/// 30 s with `reason` in its log; returns the log.
fn expect_refused_and_exit(cluster: &mut Cluster, settings: &[String], reason: &str) -> String {
    let i = cluster.add_taskmanager_with(1, settings);
    let status = cluster.wait_taskmanager_exit(i, Duration::from_secs(30));
    let log = cluster.taskmanager_log(i);
    let status = status.unwrap_or_else(|| panic!("the TaskManager is still running:\n{log}"));
    assert!(!status.success(), "exited with {status}:\n{log}");
    assert!(log.contains(reason), "expected `{reason}` in:\n{log}");
    log
}

#[test]
fn exposing_rest_does_not_expose_the_rpc_port() {
    // 127.0.0.2 is loopback too, but a socket bound to 127.0.0.1 does not answer there.
    let cluster = Cluster::jobmanager_with("bindhost", "rest.bind-address: 0.0.0.0\n");
    let rest_port = cluster.rest_addr.rsplit(':').next().expect("port").to_string();
    assert!(TcpStream::connect(format!("127.0.0.2:{rest_port}")).is_ok(), "REST is exposed as configured");
    assert!(TcpStream::connect(("127.0.0.1", cluster.rpc_port)).is_ok());
    let e = TcpStream::connect(("127.0.0.2", cluster.rpc_port)).expect_err("the RPC port followed rest.bind-address");
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{e}");
}

#[test]
fn with_a_cluster_secret_only_processes_that_prove_it_get_in() {
    let kafka = Kafka::shared();
    let secrets = Scratch::new("secret-files");
    let (right, wrong) = (secrets.0.join("secret"), secrets.0.join("wrong"));
    std::fs::write(&right, "correct horse battery staple\n").expect("write");
    std::fs::write(&wrong, "incorrect horse battery staple\n").expect("write");
    let mut cluster =
        Cluster::jobmanager_with("secret", &format!("flowc.security.cluster.secret-file: {}\n", right.display()));

    let wrong_secret = [format!("flowc.security.cluster.secret-file={}", wrong.display())];
    expect_refused_and_exit(&mut cluster, &wrong_secret, "did not prove it knows the cluster secret");
    let no_secret = ["flowc.security.cluster.secret-file=".to_string()];
    expect_refused_and_exit(&mut cluster, &no_secret, "requires the cluster secret");
    let jm_log = cluster.jobmanager_log();
    assert!(jm_log.contains("Refused a connection from 127.0.0.1:"), "{jm_log}");
    assert_eq!(taskmanager_count(&cluster), 0);
    // The secret is not shown; its file is.
    let config = cluster.rest().get("/jobmanager/config").expect("config").to_string();
    assert!(!config.contains("correct horse"), "{config}");
    assert!(config.contains(&right.display().to_string()), "{config}");

    cluster.add_taskmanager(1);
    cluster.add_taskmanager(1);
    cluster.wait_for_taskmanagers(2);
    let id = run_across_two_taskmanagers(&cluster, kafka, "secret");

    // A raw client on a TaskManager's data port: a well-formed greeting
    // and channel hello without the proof, then an element. It is closed.
    let tms = cluster.rest().get("/taskmanagers").expect("taskmanagers");
    let data_port = tms["taskmanagers"][0]["dataPort"].as_u64().expect("data port");
    let mut raw = TcpStream::connect(("127.0.0.1", data_port as u16)).expect("connect");
    raw.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    raw.write_all(&greeting()).expect("greeting");
    let mut nonce = [0u8; 32];
    raw.read_exact(&mut nonce).expect("the receiver's nonce");
    let key = ChannelKey {
        job_id: flowc_runtime::ids::JobId::parse(&id).expect("job id"),
        attempt: 1,
        target: flowc_runtime::ids::SubtaskId { vertex: 2, subtask: 0 },
        input: 0,
        source_subtask: 1,
    };
    raw.write_all(&hello_frame(&ChannelHello { key, proof: None }).expect("hello")).expect("hello");
    let _ = raw.write_all(&[8, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8]);
    let mut buf = [0u8; 16];
    let answer = raw.read(&mut buf);
    assert!(matches!(answer, Ok(0) | Err(_)), "the data port answered {answer:?}");
    let logs: String = (2..4).map(|i| cluster.taskmanager_log(i)).collect();
    assert!(logs.contains("the sender did not prove it knows the cluster secret"), "{logs}");
}

#[test]
fn with_mutual_tls_the_job_runs_across_taskmanagers_and_strangers_are_refused() {
    let kafka = Kafka::shared();
    let certs = Scratch::new("tls-certs");
    let (ours, theirs) = (Pki::new(&certs.0, "cluster"), Pki::new(&certs.0, "stranger"));
    let (cert, key) = ours.pem("node");
    let mut cluster = Cluster::jobmanager_with(
        "tls",
        &format!(
            "security.ssl.internal.enabled: true\nsecurity.ssl.internal.cert: {cert}\n\
             security.ssl.internal.key: {key}\nsecurity.ssl.internal.ca: {}\n",
            ours.ca_file()
        ),
    );
    // A certificate of another CA (the TaskManager trusts ours): refused at the handshake.
    let (cert, key) = theirs.pem("intruder");
    let stranger = [format!("security.ssl.internal.cert={cert}"), format!("security.ssl.internal.key={key}")];
    expect_refused_and_exit(&mut cluster, &stranger, "refused this TaskManager's certificate");
    let jm_log = cluster.jobmanager_log();
    assert!(
        jm_log.contains("Refused a connection from 127.0.0.1:") && jm_log.contains("TLS handshake failed"),
        "{jm_log}"
    );
    // Without TLS: never registered.
    let plain = cluster.add_taskmanager_with(1, &["security.ssl.internal.enabled=false".to_string()]);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(taskmanager_count(&cluster), 0, "a TaskManager without TLS registered");
    cluster.kill_taskmanager(plain);

    // One TaskManager with the cluster's PEM files, one with PKCS12 stores.
    cluster.add_taskmanager(1);
    let (keystore, truststore) = ours.pkcs12("tm-p12", "changeit");
    let p12: Vec<String> = [
        ("security.ssl.internal.cert", ""),
        ("security.ssl.internal.key", ""),
        ("security.ssl.internal.ca", ""),
        ("security.ssl.internal.keystore", &keystore),
        ("security.ssl.internal.keystore-password", "changeit"),
        ("security.ssl.internal.key-password", "changeit"),
        ("security.ssl.internal.truststore", &truststore),
        ("security.ssl.internal.truststore-password", "changeit"),
    ]
    .iter()
    .map(|(k, v)| format!("{k}={v}"))
    .collect();
    cluster.add_taskmanager_with(1, &p12);
    cluster.wait_for_taskmanagers(2);
    run_across_two_taskmanagers(&cluster, kafka, "tls");
}

/// Runs `flowc ROLE -D settings…` without a cluster; it must exit non-zero
/// within 20 s with one `error:` line that names `key`.
fn expect_refusal_to_start(role: &str, settings: &[String], key: &str) {
    let scratch = Scratch::new("badconf");
    let ports = support::free_ports(2);
    let mut cmd = Command::new(flowc_bin());
    cmd.arg(role)
        .args(["-D", &format!("rest.port={}", ports[0]), "-D", &format!("jobmanager.rpc.port={}", ports[1])])
        .env("FLOWC_CONF_DIR", &scratch.0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for s in settings {
        cmd.arg("-D").arg(s);
    }
    let mut child = cmd.spawn().expect("starting flowc");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            break Some(s);
        }
        if Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    if status.is_none() {
        let _ = child.kill();
    }
    let mut err = String::new();
    let _ = child.stderr.take().expect("stderr").read_to_string(&mut err);
    let _ = child.wait();
    let status = status.unwrap_or_else(|| panic!("flowc {role} with {settings:?} kept running:\n{err}"));
    assert!(!status.success(), "{err}");
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(lines[0].contains(&format!("`{key}`")), "{err}");
}

#[test]
fn malformed_security_settings_stop_the_process_naming_the_key() {
    let certs = Scratch::new("badconf-certs");
    let pki = Pki::new(&certs.0, "cluster");
    let (keystore, truststore) = pki.pkcs12("node", "right");
    let tls = |pairs: &[(&str, &str)]| -> Vec<String> {
        let mut s = vec!["security.ssl.internal.enabled=true".to_string()];
        s.extend(pairs.iter().map(|(k, v)| format!("security.ssl.internal.{k}={v}")));
        s
    };
    let stores = |store_pw: &str, trust_pw: &str| {
        tls(&[
            ("keystore", &keystore),
            ("keystore-password", store_pw),
            ("truststore", &truststore),
            ("truststore-password", trust_pw),
        ])
    };
    for role in ["taskmanager", "jobmanager"] {
        let missing = tls(&[("keystore", "/nonexistent/flowc.p12"), ("truststore", &truststore)]);
        expect_refusal_to_start(role, &missing, "security.ssl.internal.keystore");
        expect_refusal_to_start(role, &stores("wrong", "right"), "security.ssl.internal.keystore-password");
        expect_refusal_to_start(role, &stores("right", "wrong"), "security.ssl.internal.truststore-password");
        let secret_file = ["flowc.security.cluster.secret-file=/nonexistent/secret".to_string()];
        expect_refusal_to_start(role, &secret_file, "flowc.security.cluster.secret-file");
    }
    // The settings that work start fine (a TaskManager then waits for its JobManager).
    let scratch = Scratch::new("goodconf");
    let mut tm = Command::new(flowc_bin())
        .arg("taskmanager")
        .args(stores("right", "right").iter().flat_map(|s| ["-D".to_string(), s.clone()]))
        .env("FLOWC_CONF_DIR", &scratch.0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting flowc");
    std::thread::sleep(Duration::from_secs(2));
    let running = tm.try_wait().expect("try_wait").is_none();
    let _ = tm.kill();
    let _ = tm.wait();
    assert!(running, "a TaskManager with good settings exited");
}
