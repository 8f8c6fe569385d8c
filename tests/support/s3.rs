//! A real S3-protocol server for the end-to-end tests.
//!
//! [`S3::shared`] gives every test of a test binary the same server:
//!
//! - with `FLOWC_TEST_S3=host:port` set, that server;
//! - otherwise it runs `playground/s3/s3.sh start` (moto's standalone
//!   server from PyPI, installed into `~/.cache/flowc` on first use) on a
//!   free loopback port in a fresh temporary directory, with
//!   `--parent-pid <this process> --cleanup`: a watchdog stops the server
//!   and deletes its directory as soon as the test process is gone.
//!
//! The server does not check credentials. Tests share it, so each uses its
//! own bucket: [`unique_bucket`] makes a name, [`S3::create_bucket`] makes
//! the bucket, [`S3::list`] lists keys (plain HTTP, no signing, so the
//! helper needs no S3 client of its own).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _};

/// Environment variable naming an already running server (`host:port`).
pub const ENV_SERVER: &str = "FLOWC_TEST_S3";

/// The S3 server the tests of this process use.
#[derive(Debug)]
pub struct S3 {
    address: String,
    /// Directory of a server this process started (log `s3.log`), `None`
    /// for `FLOWC_TEST_S3`.
    dir: Option<PathBuf>,
}

impl S3 {
    /// The server shared by all tests of this process, started on first use.
    /// Panics (failing the calling test) if it cannot be installed or started.
    pub fn shared() -> &'static S3 {
        static SHARED: OnceLock<Result<S3, String>> = OnceLock::new();
        let result = SHARED.get_or_init(|| {
            let started = Instant::now();
            let s3 = S3::from_env_or_start().map_err(|e| format!("{e:#}"))?;
            eprintln!("test support: S3 at {} (ready after {:.1} s)", s3.address, started.elapsed().as_secs_f64());
            Ok(s3)
        });
        match result {
            Ok(s3) => s3,
            Err(e) => panic!("no S3 server for the tests: {e}"),
        }
    }

    fn from_env_or_start() -> anyhow::Result<S3> {
        if let Ok(address) = std::env::var(ENV_SERVER) {
            return Ok(S3 { address, dir: None });
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("playground/s3/s3.sh");
        let dir = std::env::temp_dir().join(format!("flowc-e2e-s3-{}", std::process::id()));
        let port = super::free_port();
        let out = Command::new("bash")
            .arg(&script)
            .args(["start", "--port", &port.to_string(), "--dir"])
            .arg(&dir)
            .args(["--parent-pid", &std::process::id().to_string(), "--cleanup"])
            .output()
            .with_context(|| format!("running {}", script.display()))?;
        if !out.status.success() {
            bail!("{} start failed: {}", script.display(), String::from_utf8_lossy(&out.stderr));
        }
        Ok(S3 { address: format!("127.0.0.1:{port}"), dir: Some(dir) })
    }

    /// `host:port` of the server.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The value for Flink's `s3.endpoint`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The directory of a server this process started, if it did.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Creates `bucket` (a name from [`unique_bucket`]).
    pub fn create_bucket(&self, bucket: &str) -> anyhow::Result<()> {
        let (status, body) = self.request("PUT", &format!("/{bucket}"), b"")?;
        if status != 200 {
            bail!("creating bucket {bucket}: HTTP {status}: {body}");
        }
        Ok(())
    }

    /// Stores `data` at `key` in `bucket`.
    pub fn put(&self, bucket: &str, key: &str, data: &[u8]) -> anyhow::Result<()> {
        let (status, body) = self.request("PUT", &format!("/{bucket}/{key}"), data)?;
        if status != 200 {
            bail!("putting {bucket}/{key}: HTTP {status}: {body}");
        }
        Ok(())
    }

    /// Every key in `bucket` under `prefix`, sorted (at most 1000).
    pub fn list(&self, bucket: &str, prefix: &str) -> anyhow::Result<Vec<String>> {
        let (status, body) = self.request("GET", &format!("/{bucket}?list-type=2&prefix={prefix}"), b"")?;
        if status != 200 {
            bail!("listing {bucket}/{prefix}: HTTP {status}: {body}");
        }
        let mut keys: Vec<String> = body
            .split("<Key>")
            .skip(1)
            .filter_map(|rest| rest.split_once("</Key>").map(|(k, _)| k.to_string()))
            .collect();
        keys.sort();
        Ok(keys)
    }

    /// One HTTP/1.1 request with `Connection: close`: status and body.
    fn request(&self, method: &str, target: &str, body: &[u8]) -> anyhow::Result<(u16, String)> {
        let mut stream =
            TcpStream::connect(&self.address).with_context(|| format!("connecting to {}", self.address))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        let head = format!(
            "{method} {target} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
            self.address,
            body.len()
        );
        stream.write_all(head.as_bytes())?;
        stream.write_all(body)?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response)?;
        let text = String::from_utf8_lossy(&response).into_owned();
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("no HTTP status in {text:?}"))?;
        let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_string();
        Ok((status, body))
    }
}

/// A bucket name unique within and across test runs (S3 rules: 3–63
/// characters of lower-case letters, digits and `-`).
pub fn unique_bucket(test: &str) -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let clean: String =
        test.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).take(30).collect();
    format!("flowc-{clean}-{}-{nanos}-{}", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed))
}
