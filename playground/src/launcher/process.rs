//! Processes: starting a service detached (own process group, no terminal,
//! output to its log), telling whether it still runs (by pid *and* start
//! time, so a recycled pid is not mistaken for it), signalling it, and
//! probing TCP ports and HTTP servers. Linux only (`/proc`).

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{kill_process, kill_process_group, Pid, Signal};

use super::error::LaunchError;

/// A process, identified by pid and start time (clock ticks since boot).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessId {
    pub pid: i32,
    pub start: u64,
}

impl ProcessId {
    /// The running process `pid`, if there is one.
    pub fn of(pid: i32) -> Option<ProcessId> {
        let (state, start) = proc_stat(pid)?;
        (state != 'Z' && state != 'X').then_some(ProcessId { pid, start })
    }

    /// Parses `"<pid> <start>"`.
    pub fn from_record(s: &str) -> Option<ProcessId> {
        let mut it = s.split_whitespace();
        let pid = it.next()?.parse().ok()?;
        let start = it.next()?.parse().ok()?;
        Some(ProcessId { pid, start })
    }

    pub fn to_record(self) -> String {
        format!("{} {}\n", self.pid, self.start)
    }

    /// Whether this very process still runs (not a zombie, not a recycled
    /// pid).
    pub fn alive(self) -> bool {
        matches!(proc_stat(self.pid), Some((s, start)) if start == self.start && s != 'Z' && s != 'X')
    }

    /// Sends `sig` to the process.
    pub fn signal(self, sig: Signal) -> std::io::Result<()> {
        match Pid::from_raw(self.pid) {
            Some(pid) if self.alive() => kill_process(pid, sig).map_err(Into::into),
            _ => Ok(()),
        }
    }

    /// Sends `sig` to the process group this process leads.
    pub fn signal_group(self, sig: Signal) -> std::io::Result<()> {
        match Pid::from_raw(self.pid) {
            Some(pid) if self.alive() => kill_process_group(pid, sig).map_err(Into::into),
            _ => Ok(()),
        }
    }

    /// Waits until the process is gone, up to `timeout`; true if it is.
    pub fn wait_gone(self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.alive() {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        true
    }
}

/// State letter and start time of `pid` from `/proc/<pid>/stat`.
fn proc_stat(pid: i32) -> Option<(char, u64)> {
    if pid <= 0 {
        return None;
    }
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) state ppid …": comm may hold spaces and parentheses.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    // Field 22 of the line is the start time; `fields` starts at field 3.
    let start = fields.get(19)?.parse().ok()?;
    Some((state, start))
}

/// Starts `program args…` detached: in a new process group (so the
/// terminal's Ctrl-C does not reach it and the whole group can be
/// signalled), stdin from /dev/null, stdout and stderr appended to `log`,
/// working directory `cwd`. Returns at once.
pub fn spawn_detached(
    program: &Path,
    args: &[String],
    cwd: &Path,
    log: &Path,
    banner: &str,
) -> Result<ProcessId, LaunchError> {
    let mut out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(LaunchError::io(format!("opening {}", log.display())))?;
    writeln!(out, "{banner}").map_err(LaunchError::io(format!("writing {}", log.display())))?;
    let err = out.try_clone().map_err(LaunchError::io(format!("opening {}", log.display())))?;
    let child = Command::new(program)
        .args(args)
        // The output goes to a log file, not a terminal: no ANSI colour
        // codes in it (tracing-subscriber honours NO_COLOR).
        .env("NO_COLOR", "1")
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn()
        .map_err(LaunchError::io(format!("starting {}", program.display())))?;
    let pid = i32::try_from(child.id())
        .map_err(|_| LaunchError::Usage(format!("pid {} out of range (internal; a bug)", child.id())))?;
    // The child is not waited for: it outlives the launcher. Its start time
    // is read while it surely runs (a zombie still has its stat).
    let start = proc_stat(pid).map_or(0, |(_, s)| s);
    Ok(ProcessId { pid, start })
}

/// Whether something accepts TCP connections at `host:port`.
pub fn port_open(host: &str, port: u16) -> bool {
    connect(host, port).is_some()
}

fn connect(host: &str, port: u16) -> Option<TcpStream> {
    let addr: Option<SocketAddr> = format!("{host}:{port}").parse().ok().or_else(|| {
        use std::net::ToSocketAddrs;
        (host, port).to_socket_addrs().ok()?.next()
    });
    TcpStream::connect_timeout(&addr?, Duration::from_millis(300)).ok()
}

/// Whether the HTTP server on `host:port` serves: it accepts a connection
/// and answers `GET path` with anything but `503 Service Unavailable`,
/// which a JobManager with high availability answers until a leader is
/// elected (Flink's "ongoing leader election"). A server that accepts but
/// does not answer plain HTTP (REST over TLS) counts as serving.
pub fn http_serves(host: &str, port: u16, path: &str) -> bool {
    let Some(mut stream) = connect(host, port) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return true;
    }
    let mut head = [0u8; 12];
    let mut got = 0;
    while got < head.len() {
        match stream.read(&mut head[got..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    // "HTTP/1.1 503"
    !(head[..got].starts_with(b"HTTP/1.") && head[..got].ends_with(b" 503"))
}

/// Polls `ready` every 200 ms until it is true (Ok), `failed` returns a
/// reason (Err), or `timeout` passes (Err).
pub fn wait_until(
    timeout: Duration,
    mut ready: impl FnMut() -> bool,
    mut failed: impl FnMut() -> Option<String>,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    loop {
        if ready() {
            return Ok(());
        }
        if let Some(reason) = failed() {
            return Err(reason);
        }
        if Instant::now() >= deadline {
            return Err(format!("not ready after {} s", timeout.as_secs()));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A server that answers each connection with the next status.
    fn answering(statuses: &'static [u16]) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        std::thread::spawn(move || {
            for status in statuses {
                let Ok((mut s, _)) = listener.accept() else { return };
                let mut buf = [0u8; 512];
                let _ = s.read(&mut buf);
                let _ = write!(s, "HTTP/1.1 {status} X\r\ncontent-length: 0\r\n\r\n");
            }
        });
        port
    }

    #[test]
    fn a_server_serves_once_it_answers_other_than_503() {
        let port = answering(&[503, 200, 401]);
        assert!(!http_serves("127.0.0.1", port, "/overview"), "503: a leader election is under way");
        assert!(http_serves("127.0.0.1", port, "/overview"));
        assert!(http_serves("127.0.0.1", port, "/overview"), "401: it serves, just not us");
        let closed = TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        assert!(!http_serves("127.0.0.1", closed, "/overview"), "nothing listens");
    }

    #[test]
    fn this_process_is_alive_and_records_round_trip() {
        let me = ProcessId::of(i32::try_from(std::process::id()).expect("pid fits")).expect("we run");
        assert!(me.alive());
        assert_eq!(ProcessId::from_record(&me.to_record()), Some(me));
        let other = ProcessId { start: me.start + 1, ..me };
        assert!(!other.alive(), "a different start time is another process");
        assert_eq!(ProcessId::from_record("x y"), None);
    }

    #[test]
    fn detached_process_runs_in_its_own_group_and_can_be_killed() {
        let dir = std::env::temp_dir().join(format!("flowc-launcher-proc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let log = dir.join("sleep.log");
        let p = spawn_detached(Path::new("sleep"), &["30".to_owned()], &dir, &log, "== test").expect("spawn");
        assert!(p.alive());
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", p.pid)).expect("stat");
        let pgrp: i32 = stat[stat.rfind(')').expect(")") + 1..]
            .split_whitespace()
            .nth(2)
            .and_then(|s| s.parse().ok())
            .expect("pgrp");
        assert_eq!(pgrp, p.pid, "leads its own process group");
        p.signal_group(Signal::KILL).expect("kill");
        assert!(p.wait_gone(Duration::from_secs(5)));
        assert!(std::fs::read_to_string(&log).expect("log").starts_with("== test"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
