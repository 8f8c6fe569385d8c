//! `flowc run` (a job in a mini cluster of its own, in one process), as the
//! examples and cookbook tests run it: no configuration of the user's, and
//! the records its print sinks printed.

use super::cluster::{flowc_bin, Scratch};
use std::path::Path;
use std::process::{Command, Output};

/// `flowc run <job> <args>` in `cwd`. `FLOWC_CONF_DIR` points into
/// `scratch` (where no configuration is), so the user's own
/// `flowc.yaml` never changes what a test sees.
pub fn flowc_run(scratch: &Scratch, cwd: &Path, job: &Path, args: &[&str]) -> Output {
    Command::new(flowc_bin())
        .current_dir(cwd)
        .env("FLOWC_CONF_DIR", scratch.0.join("no-conf"))
        .arg("run")
        .arg(job)
        .args(args)
        .output()
        .expect("running flowc")
}

/// Its standard output then its standard error.
pub fn output_text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// As [`flowc_run`], and the run must succeed: its standard output (the
/// panic message has both outputs).
pub fn flowc_run_ok(scratch: &Scratch, cwd: &Path, job: &Path, args: &[&str]) -> String {
    let o = flowc_run(scratch, cwd, job, args);
    assert!(o.status.success(), "flowc run {} {args:?}:\n{}", job.display(), output_text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The records a print sink printed in `stdout`, in order, each as it is
/// printed without the subtask prefix Flink's print sink puts before it at
/// parallelism > 1 (`2> `): `{json}`, or `+I {json}` (`-U`, `+U`, `-D`) on
/// a changelog stream. The client's own messages are left out.
pub fn printed_records(stdout: &str) -> Vec<String> {
    stdout.lines().filter_map(record).map(str::to_string).collect()
}

fn record(line: &str) -> Option<&str> {
    let is_record = |l: &str| l.starts_with('{') || ["+I ", "-U ", "+U ", "-D "].iter().any(|k| l.starts_with(k));
    if is_record(line) {
        return Some(line);
    }
    let (prefix, rest) = line.split_once("> ")?;
    (!prefix.is_empty() && prefix.bytes().all(|b| b.is_ascii_digit()) && is_record(rest)).then_some(rest)
}
