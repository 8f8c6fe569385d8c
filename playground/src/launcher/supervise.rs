//! The supervisor (`playground supervise --exit-file F -- PROGRAM ARGS…`):
//! runs one service, forwards SIGTERM, SIGINT and SIGHUP to it exactly once
//! each time it gets one, and when the service ends writes its exit code to
//! F (128 + signal number if a signal ended it, as a shell reports it). This
//! is what lets `playground ps` show `Exit 0` for the client, like
//! docker-compose. The launcher stops a service by signalling the
//! supervisor, and kills it (`SIGKILL`) by signalling the whole process
//! group, recording 137 itself.

use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Command;

use rustix::process::{kill_process, Pid, Signal};

use super::error::LaunchError;
use super::state::write_atomic;

/// Exit code recorded when the program cannot be started at all.
pub const EXIT_NOT_STARTED: i32 = 127;

/// Runs `program args…` to its end and records the exit code in
/// `exit_file`; returns the code.
pub fn supervise(exit_file: &Path, program: &OsString, args: &[OsString]) -> Result<i32, LaunchError> {
    let mut child = match Command::new(program).args(args).spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("playground: cannot start {}: {e}", Path::new(program).display());
            write_atomic(exit_file, &EXIT_NOT_STARTED.to_string())?;
            return Ok(EXIT_NOT_STARTED);
        }
    };
    if let Some(pid) = i32::try_from(child.id()).ok().and_then(Pid::from_raw) {
        std::thread::spawn(move || forward_signals(pid));
    }
    let status = child.wait().map_err(LaunchError::io("waiting for the service"))?;
    let code = status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    write_atomic(exit_file, &code.to_string())?;
    Ok(code)
}

/// Forwards SIGTERM, SIGINT and SIGHUP to `child` until the process exits.
fn forward_signals(child: Pid) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_io().build() else {
        eprintln!("playground: cannot install signal forwarding; signals reach only the supervisor");
        return;
    };
    rt.block_on(async move {
        let (Ok(mut term), Ok(mut int), Ok(mut hup)) =
            (signal(SignalKind::terminate()), signal(SignalKind::interrupt()), signal(SignalKind::hangup()))
        else {
            eprintln!("playground: cannot install signal handlers; signals reach only the supervisor");
            return;
        };
        loop {
            let sig = tokio::select! {
                _ = term.recv() => Signal::TERM,
                _ = int.recv() => Signal::INT,
                _ = hup.recv() => Signal::HUP,
            };
            let _ = kill_process(child, sig);
        }
    });
}
