//! `logs [-f]`: prints the logs of one or more instances, each line
//! prefixed with the instance name as docker-compose does
//! (`taskmanager-1  | …`), and with `-f` keeps printing what is appended
//! until interrupted.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// A log file and the name to prefix its lines with.
#[derive(Debug, Clone)]
pub struct LogSource {
    pub name: String,
    pub path: PathBuf,
}

struct Tail {
    source: LogSource,
    offset: u64,
    partial: Vec<u8>,
}

/// Prints `sources` to `out`; with `follow`, keeps polling for new lines
/// until `stop` is set. A missing file counts as empty (it may appear).
pub fn print_logs(
    sources: &[LogSource],
    follow: bool,
    prefix: bool,
    stop: &AtomicBool,
    out: &mut impl Write,
) -> io::Result<()> {
    let width = sources.iter().map(|s| s.name.len()).max().unwrap_or(0);
    let mut tails: Vec<Tail> =
        sources.iter().map(|s| Tail { source: s.clone(), offset: 0, partial: Vec::new() }).collect();
    loop {
        for t in &mut tails {
            read_new(t, prefix, width, out)?;
        }
        out.flush()?;
        if !follow || stop.load(Ordering::Relaxed) {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    // A last line without a newline.
    for t in &mut tails {
        if !t.partial.is_empty() {
            let line = std::mem::take(&mut t.partial);
            write_line(&t.source.name, &line, prefix, width, out)?;
        }
    }
    out.flush()
}

fn read_new(t: &mut Tail, prefix: bool, width: usize, out: &mut impl Write) -> io::Result<()> {
    let Ok(mut f) = File::open(&t.source.path) else {
        return Ok(());
    };
    let len = f.metadata()?.len();
    if len < t.offset {
        // Truncated or replaced: start over.
        t.offset = 0;
        t.partial.clear();
    }
    if len == t.offset {
        return Ok(());
    }
    f.seek(SeekFrom::Start(t.offset))?;
    let mut buf = Vec::new();
    f.take(len - t.offset).read_to_end(&mut buf)?;
    t.offset += buf.len() as u64;
    t.partial.extend_from_slice(&buf);
    while let Some(nl) = t.partial.iter().position(|b| *b == b'\n') {
        let line: Vec<u8> = t.partial.drain(..=nl).collect();
        write_line(&t.source.name, &line[..line.len() - 1], prefix, width, out)?;
    }
    Ok(())
}

fn write_line(name: &str, line: &[u8], prefix: bool, width: usize, out: &mut impl Write) -> io::Result<()> {
    if prefix {
        write!(out, "{name:<width$}  | ")?;
    }
    out.write_all(line)?;
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_lines_and_keeps_the_last_partial_one() {
        let dir = std::env::temp_dir().join(format!("flowc-launcher-logs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let a = dir.join("a.log");
        let b = dir.join("b.log");
        std::fs::write(&a, "one\ntwo\n").expect("write");
        std::fs::write(&b, "three").expect("write");
        let sources = [
            LogSource { name: "jobmanager".into(), path: a },
            LogSource { name: "kafka".into(), path: b },
            LogSource { name: "gone".into(), path: dir.join("missing.log") },
        ];
        let mut out = Vec::new();
        print_logs(&sources, false, true, &AtomicBool::new(false), &mut out).expect("print");
        assert_eq!(String::from_utf8_lossy(&out), "jobmanager  | one\njobmanager  | two\nkafka       | three\n");
        let mut raw = Vec::new();
        print_logs(&sources[..1], false, false, &AtomicBool::new(false), &mut raw).expect("print");
        assert_eq!(String::from_utf8_lossy(&raw), "one\ntwo\n");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
