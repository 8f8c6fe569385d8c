//! End to end: what a cluster does with bad input and lost processes. Each
//! case gets a clear answer, and the JobManager stays up.

mod support;

use flowc_runtime::client::http;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::cluster::{flowc_bin, Cluster};
use support::kafka::{create_topic, unique_topic, Kafka};
use support::playground::{click_count_job, load_events, START_MS};

fn post(cluster: &Cluster, path: &str, body: &[u8]) -> (u16, String) {
    let r = http::request(
        "POST",
        &cluster.rest_addr,
        path,
        Some(("application/octet-stream", body)),
        Duration::from_secs(10),
    )
    .expect("POST");
    (r.status, r.text())
}

#[test]
fn garbage_and_unknown_plan_versions_get_400_with_a_reason() {
    let cluster = Cluster::jobmanager_only("badplan");
    let (status, body) = post(&cluster, "/jobs", b"this is not a plan");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("not a flowc plan"), "{body}");
    let mut plan = b"FLOWCPLN".to_vec();
    plan.extend_from_slice(&99u32.to_le_bytes());
    plan.extend_from_slice(&[0; 32]);
    let (status, body) = post(&cluster, "/v1/jobs", &plan);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("format version 99"), "{body}");
    let (status, body) = post(&cluster, "/jobs", b"{\"format_version\": 1, \"job\": 3}");
    assert_eq!(status, 400, "{body}");
    // Still up.
    assert!(cluster.rest().get("/overview").is_ok());
}

#[test]
fn an_unreachable_broker_fails_the_job_naming_the_servers() {
    let cluster = Cluster::start("nobroker", 1, 2);
    let dead = format!("127.0.0.1:{}", support::free_port());
    let job = click_count_job(&cluster.scratch.0, "input", "output");
    let started = Instant::now();
    let id = cluster.submit(&job, &["-p", "2", "--bootstrap.servers", &dead, "--event-time"]);
    cluster.wait_job_state(&id, "FAILED", Duration::from_secs(60));
    assert!(started.elapsed() < Duration::from_secs(45), "failing took {:?}", started.elapsed());
    let ex = cluster.rest().get(&format!("/jobs/{id}/exceptions")).expect("exceptions");
    let cause = ex["root-exception"].as_str().unwrap_or("");
    assert!(cause.contains(&dead), "the cause does not name the servers: {ex}");
    // The JobManager stays up and its slots are free again.
    let o = cluster.rest().get("/overview").expect("overview");
    assert_eq!(o["slots-available"], 2, "{o}");
}

#[test]
fn a_taskmanager_with_a_wrong_jobmanager_address_says_so_and_retries() {
    let cluster = Cluster::jobmanager_only("wrongjm");
    let port = support::free_port();
    let log = cluster.scratch.0.join("lost-tm.log");
    // The console log goes to standard output (as Flink's `.out`); errors
    // before logging starts go to standard error: both into one file.
    let out = std::fs::File::create(&log).expect("log");
    let err = out.try_clone().expect("log");
    let mut tm = Command::new(flowc_bin())
        .args(["taskmanager", "-D", &format!("jobmanager.rpc.port={port}"), "-D", "jobmanager.rpc.address=127.0.0.1"])
        .env("FLOWC_CONF_DIR", &cluster.scratch.0)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("starting a TaskManager");
    std::thread::sleep(Duration::from_secs(3));
    let still_running = tm.try_wait().expect("try_wait").is_none();
    let _ = tm.kill();
    let _ = tm.wait();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(still_running, "the TaskManager gave up: {text}");
    assert!(text.contains("Cannot reach the JobManager") && text.contains(&port.to_string()), "{text}");
}

#[test]
fn a_taskmanager_that_dies_fails_a_job_without_checkpoints_and_says_why() {
    let kafka = Kafka::shared();
    let (input, output) = (unique_topic("tmdies-input"), unique_topic("tmdies-output"));
    create_topic(kafka.bootstrap(), &input, 2).expect("topic");
    create_topic(kafka.bootstrap(), &output, 2).expect("topic");
    load_events(kafka.bootstrap(), &input, START_MS, 6_000);
    let mut cluster = Cluster::start("tmdies", 1, 2);
    let job = click_count_job(&cluster.scratch.0, &input, &output);
    let id = cluster.submit(&job, &["-p", "2", "--bootstrap.servers", kafka.bootstrap(), "--event-time"]);
    cluster.wait_all_tasks(&id, "RUNNING", Duration::from_secs(30));
    cluster.kill_taskmanager(0);
    // No checkpoints, no restart strategy yet: the job fails.
    cluster.wait_job_state(&id, "FAILED", Duration::from_secs(20));
    let ex = cluster.rest().get(&format!("/jobs/{id}/exceptions")).expect("exceptions");
    assert!(ex["root-exception"].as_str().unwrap_or("").contains("TaskManager"), "{ex}");
    // `flowc list -a` shows the job and its cause.
    let out = Command::new(flowc_bin()).args(["list", "-a", "-m", &cluster.rest_addr]).output().expect("flowc list");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&id) && text.contains("(FAILED)") && text.contains("cause: TaskManager"), "{text}");
    assert!(cluster.rest().get("/overview").is_ok());
}

#[test]
fn undecodable_records_are_counted_and_skipped() {
    use rdkafka::config::ClientConfig;
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let kafka = Kafka::shared();
    let (input, output) = (unique_topic("garbage-input"), unique_topic("garbage-output"));
    create_topic(kafka.bootstrap(), &input, 2).expect("topic");
    create_topic(kafka.bootstrap(), &output, 2).expect("topic");
    let producer: BaseProducer =
        ClientConfig::new().set("bootstrap.servers", kafka.bootstrap()).create().expect("producer");
    let garbage: [&[u8]; 4] = [b"not json", b"{}", br#"{"timestamp": "yesterday", "page": "/index"}"#, b"\xff\xfe\x00"];
    for g in garbage {
        producer.send(BaseRecord::<(), [u8]>::to(&input).payload(g).partition(0)).expect("send");
    }
    producer.flush(Duration::from_secs(10)).expect("flush");
    load_events(kafka.bootstrap(), &input, START_MS, 36_000);
    let cluster = Cluster::start("garbage", 1, 2);
    let job = click_count_job(&cluster.scratch.0, &input, &output);
    let id = cluster.submit(&job, &["-p", "2", "--bootstrap.servers", kafka.bootstrap(), "--event-time"]);
    cluster.wait_all_tasks(&id, "RUNNING", Duration::from_secs(30));
    let summary = support::playground::expect_windows(kafka.bootstrap(), &output, 5, true, Duration::from_secs(60));
    assert_eq!(summary.complete_windows, 5);
    cluster.wait_for("4 decode errors in the metrics", Duration::from_secs(10), |c| {
        (c.metric(&id, "numRecordsDecodeErrors") == Some(4)).then_some(())
    });
    assert_eq!(cluster.job(&id)["state"], "RUNNING");
}
