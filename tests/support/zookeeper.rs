//! A real Apache ZooKeeper for the end-to-end tests of JobManager high
//! availability.
//!
//! [`ZooKeeper::shared`] gives every test of a test binary the same server:
//!
//! - with `FLOWC_TEST_ZOOKEEPER=host:port` set, that server;
//! - otherwise it runs `playground/zookeeper/zookeeper.sh fetch` (ZooKeeper's
//!   jars from Maven Central, cached in `~/.cache/flowc`) and starts a
//!   standalone server on a free port in a fresh temporary directory. The
//!   script is given `--parent-pid <this process> --cleanup`: a small
//!   watchdog stops the server and deletes its directory as soon as the
//!   test process is gone, however it ended.
//!
//! Tests share the server, so each one uses its own
//! `high-availability.cluster-id`: make one with [`unique_cluster_id`]. A
//! test that stops or restarts ZooKeeper starts its own with
//! [`ZooKeeper::start_private`].

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context as _};

/// Environment variable naming an already running server (`host:port`).
pub const ENV_SERVER: &str = "FLOWC_TEST_ZOOKEEPER";

/// A ZooKeeper server the tests use.
#[derive(Debug)]
pub struct ZooKeeper {
    connect: String,
    port: u16,
    /// State directory of a server this process started (deleted by the
    /// watchdog when the process exits); `None` for `FLOWC_TEST_ZOOKEEPER`.
    dir: Option<PathBuf>,
}

impl ZooKeeper {
    /// The server shared by all tests of this process, started on first use.
    ///
    /// Panics (failing the calling test) with the script's output if
    /// ZooKeeper cannot be fetched or started; later calls report the same
    /// error.
    pub fn shared() -> &'static ZooKeeper {
        static SHARED: OnceLock<Result<ZooKeeper, String>> = OnceLock::new();
        let result = SHARED.get_or_init(|| {
            let started = Instant::now();
            let zk = match std::env::var(ENV_SERVER) {
                Ok(addr) if !addr.trim().is_empty() => {
                    let addr = addr.trim().to_owned();
                    let port = addr.rsplit(':').next().and_then(|p| p.parse().ok()).unwrap_or(2181);
                    Ok(ZooKeeper { connect: addr, port, dir: None })
                }
                _ => ZooKeeper::start_private().map_err(|e| format!("{e:#}")),
            }?;
            eprintln!(
                "test support: ZooKeeper at {} ({}; ready after {:.1} s)",
                zk.connect,
                zk.dir
                    .as_deref()
                    .map_or_else(|| format!("from {ENV_SERVER}"), |d| format!("started in {}", d.display())),
                started.elapsed().as_secs_f64()
            );
            Ok(zk)
        });
        match result {
            Ok(zk) => zk,
            Err(e) => panic!("no ZooKeeper for the tests: {e}"),
        }
    }

    /// A server of this test alone, on a free port, stopped (and its
    /// directory deleted) when the test process exits or [`Self::stop`] is
    /// called.
    pub fn start_private() -> anyhow::Result<ZooKeeper> {
        run_script(&["fetch"])?;
        let mut last_error = None;
        // The free port can be taken by someone else before ZooKeeper binds
        // it: then try another.
        for _attempt in 0..3 {
            let port = super::free_port();
            let dir =
                std::env::temp_dir().join(format!("flowc-test-zookeeper-{}-{}", std::process::id(), unique_suffix()));
            let zk = ZooKeeper { connect: format!("127.0.0.1:{port}"), port, dir: Some(dir) };
            match zk.start() {
                Ok(()) => return Ok(zk),
                Err(e) if e.to_string().contains("already in use") => last_error = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow!("could not start ZooKeeper")))
    }

    /// (Re)starts a server this process started, on the same port and
    /// directory (its data survive a stop).
    pub fn start(&self) -> anyhow::Result<()> {
        let Some(dir) = &self.dir else { bail!("ZooKeeper from {ENV_SERVER} is not this test's to start") };
        let dir_arg = dir.to_string_lossy().into_owned();
        let port = self.port.to_string();
        let parent = std::process::id().to_string();
        run_script(&["start", "--dir", &dir_arg, "--port", &port, "--parent-pid", &parent, "--cleanup"]).map(|_| ())
    }

    /// Stops a server this process started (SIGTERM); its directory stays
    /// for a later [`Self::start`].
    pub fn stop(&self) -> anyhow::Result<()> {
        let Some(dir) = &self.dir else { bail!("ZooKeeper from {ENV_SERVER} is not this test's to stop") };
        run_script(&["stop", "--dir", &dir.to_string_lossy()]).map(|_| ())
    }

    /// `host:port` for `high-availability.zookeeper.quorum`.
    pub fn connect(&self) -> &str {
        &self.connect
    }

    /// The directory of a server this process started (its log is
    /// `zookeeper.log` there).
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// A cluster's `high-availability.*` lines on this server: the HA job
    /// store in `storage_dir`, a fresh cluster id made from `name`
    /// ([`unique_cluster_id`]), ZooKeeper sessions of `session_ms`.
    pub fn ha_settings(&self, storage_dir: &Path, name: &str, session_ms: u64) -> String {
        format!(
            "high-availability.type: zookeeper\n\
             high-availability.zookeeper.quorum: {}\n\
             high-availability.storageDir: {}\n\
             high-availability.cluster-id: {}\n\
             high-availability.zookeeper.client.session-timeout: {session_ms}\n",
            self.connect,
            storage_dir.display(),
            unique_cluster_id(name),
        )
    }
}

impl ZooKeeper {
    /// A cluster's `high-availability.*` lines on this server with nothing
    /// on a local disk: checkpoints, savepoints and the HA job store in
    /// `bucket` of the S3 server `s3`, cluster id `cluster_id`, ZooKeeper
    /// sessions of `session_ms`.
    pub fn ha_on_s3_settings(&self, s3: &super::s3::S3, bucket: &str, cluster_id: &str, session_ms: u64) -> String {
        format!(
            "high-availability.type: zookeeper\n\
             high-availability.zookeeper.quorum: {}\n\
             high-availability.storageDir: s3://{bucket}/ha\n\
             high-availability.cluster-id: {cluster_id}\n\
             high-availability.zookeeper.client.session-timeout: {session_ms}\n\
             state.checkpoints.dir: s3://{bucket}/checkpoints\n\
             state.savepoints.dir: s3://{bucket}/savepoints\n\
             s3.endpoint: {}\n\
             s3.access-key: flowc-test\n\
             s3.secret-key: flowc-test-secret\n\
             s3.path.style.access: true\n",
            self.connect,
            s3.endpoint(),
        )
    }
}

/// `playground/zookeeper/zookeeper.sh` of this checkout.
pub fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("playground/zookeeper/zookeeper.sh")
}

fn run_script(args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("bash")
        .arg(script())
        .args(args)
        .output()
        .with_context(|| format!("running bash {}", script().display()))?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if !out.status.success() {
        bail!("zookeeper.sh {} failed ({}):\n{text}", args.join(" "), out.status);
    }
    Ok(text)
}

fn unique_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    format!("{}-{nanos:08x}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// A `high-availability.cluster-id` no other test (in this or another
/// process) uses: `<prefix>-<pid>-<counter>-<nanos>`.
pub fn unique_cluster_id(prefix: &str) -> String {
    format!("{prefix}-{}-{}", std::process::id(), unique_suffix())
}
