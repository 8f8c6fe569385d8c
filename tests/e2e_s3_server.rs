//! The S3 test server itself: `playground/s3/s3.sh` installs and starts a
//! real S3-protocol server on a free port, buckets and objects round-trip
//! over HTTP, and the watchdog stops the server when its parent is gone.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use support::s3::{unique_bucket, S3};

#[test]
fn objects_round_trip_through_the_shared_server() -> anyhow::Result<()> {
    let s3 = S3::shared();
    let bucket = unique_bucket("round-trip");
    s3.create_bucket(&bucket)?;
    s3.put(&bucket, "chk-1/_metadata", b"meta")?;
    s3.put(&bucket, "chk-1/state-0", b"state")?;
    s3.put(&bucket, "other/x", b"x")?;
    assert_eq!(s3.list(&bucket, "chk-1/")?, vec!["chk-1/_metadata".to_string(), "chk-1/state-0".to_string()]);
    assert_eq!(s3.list(&bucket, "")?.len(), 3);
    Ok(())
}

#[test]
fn the_watchdog_stops_the_server_when_its_parent_exits() -> anyhow::Result<()> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/playground/s3/s3.sh");
    let dir = std::env::temp_dir().join(format!("flowc-e2e-s3-watchdog-{}", std::process::id()));
    let port = support::free_port();
    // A parent that lives two seconds: the server must outlive the start,
    // then go away with its directory once the parent is gone.
    let mut parent = Command::new("sleep").arg("2").spawn()?;
    let out = Command::new("bash")
        .args([script, "start", "--port", &port.to_string(), "--dir"])
        .arg(&dir)
        .args(["--parent-pid", &parent.id().to_string(), "--cleanup"])
        .output()?;
    assert!(out.status.success(), "start failed: {}", String::from_utf8_lossy(&out.stderr));
    parent.wait()?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() || dir.exists() {
        assert!(
            Instant::now() < deadline,
            "server on {port} or {} still there 30 s after its parent exited",
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}
