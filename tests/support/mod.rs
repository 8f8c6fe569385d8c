//! Shared helpers for the end-to-end tests in `tests/`: each test file
//! includes them with `mod support;`.
//!
//! - [`kafka`]: a real Apache Kafka broker for the test process (or the one
//!   named by `FLOWC_TEST_KAFKA`), unique topic names, topic creation.
//! - [`zookeeper`]: a real Apache ZooKeeper server for the test process
//!   (or the one named by `FLOWC_TEST_ZOOKEEPER`), unique cluster ids.
//! - [`s3`]: a real S3-protocol server (moto's, from PyPI) for the test
//!   process (or the one named by `FLOWC_TEST_S3`), unique bucket names.
//! - [`pki`]: a CA and node certificates for internal mutual TLS.
//! - [`local`]: `flowc run` (a mini cluster in one process) and the records
//!   its print sinks printed.
//! - [`free_port`] / [`free_ports`]: loopback ports nobody listens on.
//! - [`rss_kb`]: a process's resident memory.

// Each test binary compiles this module on its own and uses only part of it.
#![allow(dead_code)]

pub mod cluster;
pub mod kafka;
pub mod local;
pub mod pki;
pub mod playground;
pub mod s3;
pub mod zookeeper;

use std::net::TcpListener;

/// A TCP port on 127.0.0.1 that was free a moment ago (the OS picked it).
/// Another process may still take it before the caller binds it.
pub fn free_port() -> u16 {
    free_ports(1)[0]
}

/// `n` distinct free ports on 127.0.0.1: all are held until every one is
/// chosen, so they differ from each other.
pub fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> =
        (0..n).map(|_| TcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1:0 for a free port")).collect();
    listeners.iter().map(|l| l.local_addr().expect("local address of a bound listener").port()).collect()
}

/// The resident memory of process `pid` in KiB (`VmRSS` of
/// `/proc/<pid>/status`); 0 if it cannot be read.
pub fn rss_kb(pid: u32) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
