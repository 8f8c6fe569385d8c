//! End to end: a REST flood against a JobManager that runs a checkpointed
//! job (issue 9, defect 3). For a bounded time, on loopback only: hundreds
//! of idle connections held open (and reopened when the server closes
//! them), bursts beyond the connection limit, headers sent one byte per
//! second, and concurrent large uploads, some over the body limit. Meanwhile
//! the Click Event Count job counts click events loaded window by window,
//! and a TaskManager is killed and a new one started. The JobManager must
//! keep completing checkpoints, take the new TaskManager's registration,
//! answer normal REST requests, and stay within its descriptor and memory
//! bounds; every window must count exactly 1000 per page; and once the
//! flood ends its memory must come back near where it started.

mod support;

use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::cluster::Cluster;
use support::kafka::Kafka;
use support::playground::{click_count_job, click_topics, expect_windows, load_events, START_MS};

const FLOOD: Duration = Duration::from_secs(40);
const HELD_IDLE: usize = 400;
const SLOW: usize = 40;
const MAX_CONNECTIONS: usize = 600;
/// Windows of click events loaded before the flood (6000 events each).
const FIRST_WINDOWS: u64 = 2;
/// Windows loaded during the flood, one every few seconds.
const FLOOD_WINDOWS: u64 = 8;
/// How much above its level before the flood the JobManager's RSS may stay
/// once the flood is over and has settled for 15 s. Measured 2026-12-02 on
/// the shared 2-core machine (debug build, other builds running): 51 MiB
/// before, 89 to 94 MiB at the peak, 71 to 72 MiB settled (+20 to +21 MiB:
/// the job's own growth and the allocator's retained pages) in three runs.
/// The margin leaves 11 MiB for noise and stays below the peak's growth
/// (+38 to +43 MiB), so memory kept after the flood fails the test.
const SETTLED_MARGIN_KB: u64 = 32 * 1024;

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |rd| rd.count())
}

/// Whether the server has closed a connection (without blocking).
fn closed_by_peer(s: &mut TcpStream) -> bool {
    let _ = s.set_nonblocking(true);
    let mut b = [0u8; 256];
    let closed = match s.read(&mut b) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
    };
    let _ = s.set_nonblocking(false);
    closed
}

fn multipart(filename: &str, data: &[u8]) -> (String, Vec<u8>) {
    let boundary = "soak-boundary-51f0";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"jarfile\"; filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(data);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[test]
fn a_rest_flood_does_not_disturb_checkpoints_registration_or_memory() {
    let config = format!(
        "rest.server.max-connections: {MAX_CONNECTIONS}\nrest.server.header-timeout: 3000\nrest.idleness-timeout: 5000\nrest.server.max-content-length: 33554432\n"
    );
    let kafka = Kafka::shared();
    let (input, output) = click_topics(kafka, "restsoak", FIRST_WINDOWS * 6000);
    let mut cluster = Cluster::start_with("restsoak", 2, 2, &config);
    let job = click_count_job(&cluster.scratch.0, &input, &output);
    let args = ["-p", "2", "--bootstrap.servers", kafka.bootstrap(), "--checkpointing", "--event-time"];
    let id = cluster.submit(&job, &args);
    cluster.wait_all_tasks(&id, "RUNNING", Duration::from_secs(30));
    cluster.wait_for("two completed checkpoints", Duration::from_secs(30), |c| {
        (c.metric(&id, "numberOfCompletedCheckpoints")? >= 2).then_some(())
    });
    let pid = cluster.jobmanager_pid();
    let rss_before = support::rss_kb(pid);
    let fds_before = open_fds(pid);
    let completed_before = cluster.metric(&id, "numberOfCompletedCheckpoints").expect("metric");
    let addr = cluster.rest_addr.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let deadline = Instant::now() + FLOOD;
    let mut threads = Vec::new();

    // Click events, one window's worth every few seconds.
    let loaded = Arc::new(AtomicU64::new(FIRST_WINDOWS));
    {
        let (stop, loaded, bootstrap, input) =
            (stop.clone(), loaded.clone(), kafka.bootstrap().to_string(), input.clone());
        threads.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                let w = loaded.load(Ordering::Relaxed);
                if w >= FIRST_WINDOWS + FLOOD_WINDOWS {
                    break;
                }
                load_events(&bootstrap, &input, START_MS + w as i64 * 15_000, 6000);
                loaded.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_secs(3));
            }
        }));
    }
    // Idle connections, held and reopened when the server closes them.
    let opened = Arc::new(AtomicU64::new(0));
    {
        let (addr, stop, opened) = (addr.clone(), stop.clone(), opened.clone());
        threads.push(std::thread::spawn(move || {
            let mut held: Vec<TcpStream> = Vec::new();
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                held.retain_mut(|s| !closed_by_peer(s));
                while held.len() < HELD_IDLE && opened.load(Ordering::Relaxed) < 50_000 {
                    match TcpStream::connect(&addr) {
                        Ok(s) => {
                            opened.fetch_add(1, Ordering::Relaxed);
                            held.push(s);
                        }
                        Err(_) => break,
                    }
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        }));
    }
    // Bursts past the limit: opened, then dropped after a moment.
    let refused = Arc::new(AtomicU64::new(0));
    {
        let (addr, stop, refused) = (addr.clone(), stop.clone(), refused.clone());
        threads.push(std::thread::spawn(move || {
            let mut bursts = 0;
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline && bursts < 15 {
                bursts += 1;
                let mut burst: Vec<TcpStream> = (0..1000).filter_map(|_| TcpStream::connect(&addr).ok()).collect();
                std::thread::sleep(Duration::from_millis(200));
                for s in &mut burst {
                    let _ = s.set_read_timeout(Some(Duration::from_millis(5)));
                    let mut b = [0u8; 12];
                    if s.read(&mut b).is_ok_and(|n| n > 0 && b.starts_with(b"HTTP/1.1 503")) {
                        refused.fetch_add(1, Ordering::Relaxed);
                    }
                }
                drop(burst);
                std::thread::sleep(Duration::from_secs(2));
            }
        }));
    }
    // Slow headers, one byte a second; reconnect when cut off.
    let cut_off = Arc::new(AtomicU64::new(0));
    {
        let (addr, stop, cut_off) = (addr.clone(), stop.clone(), cut_off.clone());
        threads.push(std::thread::spawn(move || {
            let header = b"GET /overview HTTP/1.1\r\nHost: soak\r\nX-Slow: ";
            let mut slow: Vec<(TcpStream, usize)> = Vec::new();
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                while slow.len() < SLOW {
                    match TcpStream::connect(&addr) {
                        Ok(s) => slow.push((s, 0)),
                        Err(_) => break,
                    }
                }
                slow.retain_mut(|(s, at)| {
                    let b = header.get(*at).copied().unwrap_or(b'a');
                    *at += 1;
                    let alive = s.write_all(&[b]).is_ok() && !closed_by_peer(s);
                    if !alive {
                        cut_off.fetch_add(1, Ordering::Relaxed);
                    }
                    alive
                });
                std::thread::sleep(Duration::from_secs(1));
            }
        }));
    }
    // Concurrent uploads: 24 MiB ones are stored, 40 MiB ones get 413.
    let uploads_ok = Arc::new(AtomicU64::new(0));
    let uploads_413 = Arc::new(AtomicU64::new(0));
    for t in 0..6 {
        let (addr, stop, ok, too_large) = (addr.clone(), stop.clone(), uploads_ok.clone(), uploads_413.clone());
        let client = cluster.client.clone();
        threads.push(std::thread::spawn(move || {
            let size = if t % 2 == 0 { 24 << 20 } else { 40 << 20 };
            let mut data = b"FLOWCPLN".to_vec();
            data.resize(size, b'p');
            let (ctype, body) = multipart(&format!("soak-{t}.plan"), &data);
            // Up to three answered uploads each; one refused at the
            // connection limit (503) is tried again.
            let mut answered = 0;
            while answered < 3 && !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                match client.request("POST", &addr, "/jars/upload", Some((&ctype, &body)), Duration::from_secs(30)) {
                    Ok(r) if r.status == 200 => {
                        answered += 1;
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(r) if r.status == 413 => {
                        answered += 1;
                        too_large.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => std::thread::sleep(Duration::from_millis(250)),
                }
            }
        }));
    }

    // Meanwhile: normal requests, a TaskManager killed and replaced, and the
    // JobManager's memory and descriptors sampled.
    let (mut rss_max, mut fds_max) = (rss_before, fds_before);
    let mut answered = 0;
    let mut probes = 0;
    let mut replaced = false;
    let mut registered_in_flood = false;
    let (mut last_answer, mut longest_silence) = (Instant::now(), Duration::ZERO);
    let flood_started = Instant::now();
    while Instant::now() < deadline {
        rss_max = rss_max.max(support::rss_kb(pid));
        fds_max = fds_max.max(open_fds(pid));
        probes += 1;
        if let Ok(o) = cluster.rest().get("/overview") {
            answered += 1;
            longest_silence = longest_silence.max(last_answer.elapsed());
            last_answer = Instant::now();
            // Two TaskManagers again after the kill: the new one registered.
            registered_in_flood |= replaced && o["taskmanagers"] == 2 && o["slots-total"] == 4;
        }
        if !replaced && flood_started.elapsed() > Duration::from_secs(10) {
            replaced = true;
            cluster.kill_taskmanager(1);
            cluster.add_taskmanager(2);
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    longest_silence = longest_silence.max(last_answer.elapsed());
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }

    // The JobManager took the new TaskManager's registration and the job runs on.
    cluster.wait_for_taskmanagers(2);
    cluster.wait_all_tasks(&id, "RUNNING", Duration::from_secs(60));
    let completed_after = cluster.metric(&id, "numberOfCompletedCheckpoints").expect("metric");
    let overview: Value = cluster.rest().get("/overview").expect("/overview after the flood");
    // Every window the loaded events close counts exactly 1000 per page,
    // through the flood and the TaskManager's replacement (the last window
    // stays open: no later event moves the watermark past it).
    let loaded = loaded.load(Ordering::Relaxed);
    assert!(loaded >= FIRST_WINDOWS + 4, "only {loaded} windows were loaded during the flood");
    let windows = expect_windows(kafka.bootstrap(), &output, loaded as usize - 1, true, Duration::from_secs(90));
    assert_eq!(windows.complete_windows, loaded as usize - 1, "{windows}");
    // Memory is given back once the flood's connections and uploads are gone.
    std::thread::sleep(Duration::from_secs(15));
    let rss_settled = support::rss_kb(pid);
    let summary = format!(
        "{answered}/{probes} probes answered, at most {longest_silence:?} without an answer; the new TaskManager registered during the flood: {registered_in_flood}; {} connections opened and held, {} refused with 503, {} slow headers cut off; \
         uploads: {} stored, {} refused 413; checkpoints completed {completed_before} → {completed_after}; \
         JobManager RSS {} → max {} → settled {} MiB, descriptors {fds_before} → max {fds_max}; {loaded} windows loaded; {overview}",
        opened.load(Ordering::Relaxed),
        refused.load(Ordering::Relaxed),
        cut_off.load(Ordering::Relaxed),
        uploads_ok.load(Ordering::Relaxed),
        uploads_413.load(Ordering::Relaxed),
        rss_before / 1024,
        rss_max / 1024,
        rss_settled / 1024,
    );
    eprintln!("soak: {summary}");
    assert!(completed_after >= completed_before + 15, "checkpoints stalled during the flood: {summary}");
    // Held slots free up at the header timeout (3 s): a normal request gets
    // one soon, though it may be refused (503) while the flood holds them all.
    assert!(longest_silence < Duration::from_secs(8), "REST stopped answering normal requests: {summary}");
    assert!(registered_in_flood, "the new TaskManager did not register during the flood: {summary}");
    assert!(fds_max <= fds_before + MAX_CONNECTIONS + 64, "descriptors were not bounded: {summary}");
    assert!(rss_max <= rss_before + 160 * 1024, "memory grew with the flood: {summary}");
    assert!(rss_settled <= rss_before + SETTLED_MARGIN_KB, "memory was not given back after the flood: {summary}");
    assert!(refused.load(Ordering::Relaxed) > 0 && cut_off.load(Ordering::Relaxed) > 0, "{summary}");
    assert!(uploads_ok.load(Ordering::Relaxed) > 0 && uploads_413.load(Ordering::Relaxed) > 0, "{summary}");
    // Nothing partial is left of the refused uploads.
    let partial = std::fs::read_dir(cluster.scratch.0.join("uploads"))
        .map(|rd| rd.flatten().filter(|e| e.file_name().to_string_lossy().starts_with('.')).count())
        .unwrap_or(0);
    assert_eq!(partial, 0, "partial uploads left behind");
}
