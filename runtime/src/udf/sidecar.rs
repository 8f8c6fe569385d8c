//! A UDF library's functions in a process of their own: the generated
//! crate's binary, fed `u32 function, u32 length, arguments` frames on its
//! stdin and answering `u32 length, result` on its stdout (PyFlink's
//! process mode). A UDF that aborts ends only this process, and the task
//! that uses it fails with the reason.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

#[derive(Debug)]
pub struct Sidecar {
    child: Child,
    stdin: ChildStdin,
    stdout: ChildStdout,
}

impl Sidecar {
    pub fn spawn(exe: &Path) -> Result<Sidecar, String> {
        let mut child = Command::new(exe)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start the UDF sidecar `{}`: {e}", exe.display()))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            return Err("the UDF sidecar has no pipes".into());
        };
        Ok(Sidecar { child, stdin, stdout })
    }

    pub fn call(&mut self, func: u32, input: &[u8]) -> Result<Vec<u8>, String> {
        let len = u32::try_from(input.len()).map_err(|_| "a batch too large for the sidecar".to_string())?;
        let mut head = [0u8; 8];
        head[..4].copy_from_slice(&func.to_le_bytes());
        head[4..].copy_from_slice(&len.to_le_bytes());
        let sent =
            self.stdin.write_all(&head).and_then(|()| self.stdin.write_all(input)).and_then(|()| self.stdin.flush());
        let mut n = [0u8; 4];
        let got = sent.and_then(|()| self.stdout.read_exact(&mut n));
        if got.is_err() {
            return Err(self.died());
        }
        let mut out = vec![0u8; u32::from_le_bytes(n) as usize];
        if self.stdout.read_exact(&mut out).is_err() {
            return Err(self.died());
        }
        Ok(out)
    }

    /// Why the sidecar stopped answering.
    fn died(&mut self) -> String {
        match self.child.wait() {
            Ok(status) => format!("the UDF sidecar process ended ({status})"),
            Err(e) => format!("the UDF sidecar process stopped answering: {e}"),
        }
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
