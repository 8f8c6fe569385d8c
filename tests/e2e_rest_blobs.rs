//! End to end: `POST /blobs` (UDF artifacts) streams to disk (issue 9:
//! "uploads stream to disk with `rest.server.max-content-length` enforced
//! while reading: 413, and flat memory"). Concurrent large uploads are
//! stored by digest without the JobManager's memory growing with them; a
//! body that runs past the limit without declaring its length is cut off
//! with 413, and neither it nor a refused artifact leaves a file.

mod support;

use flowc_compiler::udf::artifact::{self, Artifact};
use flowc_runtime::client::http;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;
use support::cluster::{Cluster, Scratch};

const LIMIT: usize = 48 << 20;
const ARTIFACT: usize = 32 << 20;
const UPLOADS: usize = 4;

/// An artifact of about `size` bytes, different for each `seed`.
fn artifact_bytes(seed: u8, size: usize) -> Vec<u8> {
    Artifact {
        abi_version: 1,
        target: "x86_64-unknown-linux-gnu".into(),
        flowc_version: format!("test-{seed}"),
        signatures: "fn f(x: i64) -> i64\n".into(),
        cdylib: vec![seed; size],
        sidecar: Vec::new(),
    }
    .to_bytes()
}

/// Everything in the blob store's directory.
fn stored(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.file_name().to_string_lossy().to_string()).collect())
        .unwrap_or_default();
    names.sort();
    names
}

/// Sends `total` bytes of `byte` to `POST /blobs` in 1 MiB chunks of a
/// chunked body (no `Content-Length`), reading the answer meanwhile; the
/// answer's status line.
fn chunked_upload(addr: &str, total: usize) -> String {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60))).expect("timeout");
    let mut reader = s.try_clone().expect("clone");
    let answer = std::thread::spawn(move || {
        let mut got = Vec::new();
        let _ = reader.read_to_end(&mut got);
        String::from_utf8_lossy(&got).lines().next().unwrap_or("").to_string()
    });
    let head = format!(
        "POST /blobs HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    let mut ok = s.write_all(head.as_bytes()).is_ok();
    let chunk = vec![b'F'; 1 << 20];
    let mut sent = 0;
    while ok && sent < total {
        ok = s.write_all(format!("{:x}\r\n", chunk.len()).as_bytes()).is_ok()
            && s.write_all(&chunk).is_ok()
            && s.write_all(b"\r\n").is_ok();
        sent += chunk.len();
    }
    if ok {
        let _ = s.write_all(b"0\r\n\r\n");
    }
    answer.join().expect("reader")
}

#[test]
fn blob_uploads_stream_to_disk_within_the_limit_and_leave_nothing_when_refused() {
    let blobs = Scratch::new("restblobs-store");
    let config = format!("blob.storage.directory: {}\nrest.server.max-content-length: {LIMIT}\n", blobs.0.display());
    let cluster = Cluster::jobmanager_with("restblobs", &config);
    let store: PathBuf = blobs.0.join("jobmanager");
    let pid = cluster.jobmanager_pid();
    // Settle, then measure.
    std::thread::sleep(Duration::from_secs(1));
    let rss_before = support::rss_kb(pid);

    // Concurrent large uploads, memory sampled meanwhile.
    let artifacts: Vec<Vec<u8>> = (0..UPLOADS).map(|i| artifact_bytes(i as u8 + 1, ARTIFACT)).collect();
    let digests: Vec<String> = artifacts.iter().map(|a| artifact::digest(a)).collect();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut max = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                max = max.max(support::rss_kb(pid));
                std::thread::sleep(Duration::from_millis(20));
            }
            max
        })
    };
    let answers: Vec<(u16, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = artifacts
            .iter()
            .map(|a| {
                let addr = cluster.rest_addr.clone();
                s.spawn(move || {
                    let r = http::request(
                        "POST",
                        &addr,
                        "/blobs",
                        Some(("application/octet-stream", a)),
                        Duration::from_secs(120),
                    )
                    .expect("POST /blobs");
                    (r.status, r.text())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("upload")).collect()
    });
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let rss_max = sampler.join().expect("sampler");
    for ((status, body), digest) in answers.iter().zip(&digests) {
        assert_eq!(*status, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(body).expect("json");
        assert_eq!(v["digest"], digest.as_str(), "{body}");
        assert_eq!(v["size"].as_u64(), Some(artifacts[0].len() as u64), "{body}");
    }
    let grew = rss_max.saturating_sub(rss_before) / 1024;
    eprintln!(
        "{UPLOADS} concurrent uploads of {} MiB: JobManager RSS {} MiB → max {} MiB (+{grew} MiB)",
        ARTIFACT >> 20,
        rss_before / 1024,
        rss_max / 1024
    );
    // Buffered, the bodies alone would be 128 MiB.
    assert!(grew < 48, "memory grew with the uploads: +{grew} MiB");
    let want: Vec<String> = {
        let mut w: Vec<String> = digests.iter().map(|d| format!("{}.flowcudf", &d[7..])).collect();
        w.sort();
        w
    };
    assert_eq!(stored(&store), want);
    // Stored as uploaded: served back, checked against the digest.
    let back =
        http::request("GET", &cluster.rest_addr, &format!("/blobs/{}", digests[0]), None, Duration::from_secs(60))
            .expect("GET /blobs");
    assert_eq!(back.status, 200);
    assert!(back.body == artifacts[0], "the stored artifact differs");

    // Past the limit without a declared length: cut off while reading.
    let status = chunked_upload(&cluster.rest_addr, LIMIT + (16 << 20));
    assert!(status.starts_with("HTTP/1.1 413"), "{status}");
    // A declared length past the limit: refused before reading.
    let big = vec![0u8; LIMIT + 1];
    let r = http::request(
        "POST",
        &cluster.rest_addr,
        "/blobs",
        Some(("application/octet-stream", &big)),
        Duration::from_secs(60),
    )
    .expect("POST /blobs");
    assert_eq!(r.status, 413, "{}", r.text());
    // Not an artifact: 400.
    let r = http::request(
        "POST",
        &cluster.rest_addr,
        "/blobs",
        Some(("application/octet-stream", &vec![b'x'; 1 << 20])),
        Duration::from_secs(60),
    )
    .expect("POST /blobs");
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("not a flowc UDF artifact"), "{}", r.text());
    // The same artifact again: the same digest, stored once.
    let r = http::request(
        "POST",
        &cluster.rest_addr,
        "/blobs",
        Some(("application/octet-stream", &artifacts[1])),
        Duration::from_secs(120),
    )
    .expect("POST /blobs");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(stored(&store), want, "nothing partial or refused is left");
}
