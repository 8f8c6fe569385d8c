//! Where a cluster process writes its log: to its standard output and, when
//! `log.file` or `env.log.dir` is set, to a file with size rotation
//! (`flowc.log.file.max-size` bytes, `flowc.log.file.max-count` old files:
//! `x.log.1` is the newest). The file's path is remembered so that REST can
//! list and serve the log directory (`/jobmanager/logs`, and each
//! TaskManager's over RPC) — only files directly in that directory, by name.

use crate::config::Config;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

/// The default size at which the log file rolls over.
pub const DEFAULT_MAX_SIZE: u64 = 64 * 1024 * 1024;
/// How many rolled-over files are kept by default.
pub const DEFAULT_MAX_COUNT: u32 = 5;

static LOG_FILE: OnceLock<PathBuf> = OnceLock::new();

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("cannot open the log file {path}: {source}")]
    Open { path: PathBuf, source: io::Error },
    #[error("`{key}`: {value:?} is not a number")]
    BadNumber { key: &'static str, value: String },
}

/// The log file a process of `role` (`jobmanager`, `taskmanager`) writes,
/// as the configuration says: `log.file`, else
/// `env.log.dir/flowc-<role>-<host>.log`, else none.
pub fn log_file_path(config: &Config, role: &str) -> Option<PathBuf> {
    let file = config.get("log.file");
    if !file.is_empty() {
        return Some(PathBuf::from(file));
    }
    let dir = config.get("env.log.dir");
    if dir.is_empty() {
        return None;
    }
    Some(Path::new(&dir).join(format!("flowc-{role}-{}.log", host_name())))
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.'))
        .unwrap_or_else(|| "localhost".into())
}

/// The log file this process writes, once [`RotatingFile::open`] ran.
pub fn current_log_file() -> Option<&'static Path> {
    LOG_FILE.get().map(PathBuf::as_path)
}

fn number(config: &Config, key: &'static str, default: u64) -> Result<u64, LogError> {
    let v = config.get(key);
    if v.is_empty() {
        return Ok(default);
    }
    parse_bytes(&v).ok_or(LogError::BadNumber { key, value: v })
}

/// `1024`, `64k`, `10m`, `1g` (also `kb`, `mb`, `gb`).
fn parse_bytes(v: &str) -> Option<u64> {
    let v = v.trim().to_ascii_lowercase();
    let digits = v.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit: u64 = match v[digits.len()..].trim_end_matches('b') {
        "" => 1,
        "k" => 1024,
        "m" => 1024 * 1024,
        "g" => 1024 * 1024 * 1024,
        _ => return None,
    };
    digits.trim().parse::<u64>().ok()?.checked_mul(unit)
}

/// A log file that rolls over at a size.
#[derive(Clone)]
pub struct RotatingFile {
    inner: Arc<Mutex<Inner>>,
}

struct Inner {
    path: PathBuf,
    file: File,
    size: u64,
    max_size: u64,
    max_count: u32,
}

impl RotatingFile {
    /// Opens (appends to) the log file of `role`, if the configuration names one.
    pub fn from_config(config: &Config, role: &str) -> Result<Option<RotatingFile>, LogError> {
        let Some(path) = log_file_path(config, role) else { return Ok(None) };
        let max_size = number(config, "flowc.log.file.max-size", DEFAULT_MAX_SIZE)?.max(1024);
        let max_count = number(config, "flowc.log.file.max-count", u64::from(DEFAULT_MAX_COUNT))?;
        RotatingFile::open(path, max_size, u32::try_from(max_count).unwrap_or(u32::MAX)).map(Some)
    }

    pub fn open(path: PathBuf, max_size: u64, max_count: u32) -> Result<RotatingFile, LogError> {
        let open = |p: &Path| -> io::Result<File> {
            if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            OpenOptions::new().create(true).append(true).open(p)
        };
        let file = open(&path).map_err(|source| LogError::Open { path: path.clone(), source })?;
        let size = file.metadata().map_or(0, |m| m.len());
        let _ = LOG_FILE.set(path.clone());
        Ok(RotatingFile { inner: Arc::new(Mutex::new(Inner { path, file, size, max_size, max_count })) })
    }
}

impl Inner {
    /// `x.log.(n-1)` → `x.log.n` … `x.log` → `x.log.1`, and a fresh `x.log`.
    fn rotate(&mut self) -> io::Result<()> {
        let numbered = |n: u32| PathBuf::from(format!("{}.{n}", self.path.display()));
        if self.max_count == 0 {
            self.file.set_len(0)?;
        } else {
            let _ = std::fs::remove_file(numbered(self.max_count));
            for n in (1..self.max_count).rev() {
                let _ = std::fs::rename(numbered(n), numbered(n + 1));
            }
            std::fs::rename(&self.path, numbered(1))?;
            self.file = OpenOptions::new().create(true).append(true).open(&self.path)?;
        }
        self.size = 0;
        Ok(())
    }
}

impl Write for RotatingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut g = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if g.size > 0 && g.size + buf.len() as u64 > g.max_size {
            // A log that cannot roll over keeps growing rather than losing lines.
            let _ = g.rotate();
        }
        g.file.write_all(buf)?;
        g.size += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner).file.flush()
    }
}

/// One file of a log directory, as `/jobmanager/logs` lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LogFileInfo {
    pub name: String,
    pub size: u64,
    pub mtime: i64,
}

/// The files directly in the directory of this process's log file.
pub fn list_log_dir() -> Vec<LogFileInfo> {
    let Some(dir) = current_log_file().and_then(Path::parent) else { return Vec::new() };
    let mut out: Vec<LogFileInfo> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| {
                    let meta = e.metadata().ok().filter(std::fs::Metadata::is_file)?;
                    let mtime = meta
                        .modified()
                        .ok()
                        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                        .map_or(0, |d| d.as_millis() as i64);
                    Some(LogFileInfo { name: e.file_name().to_str()?.to_string(), size: meta.len(), mtime })
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// What a log request may read, at most this many bytes (the end of the file).
pub const MAX_LOG_READ: u64 = 8 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum LogRequest {
    /// The listing of the log directory.
    List,
    /// This process's log file.
    Log,
    /// A file of the listing, by name.
    File(String),
    /// What this process wrote to its standard output, when that is a file.
    Stdout,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum LogAnswer {
    List(Vec<LogFileInfo>),
    Text(String),
    /// No such file (or no log file configured): the reason.
    NotFound(String),
}

/// Answers a log request of this process. A file name is served only if it
/// is one of the listed files: no path, no `..`.
pub fn answer(request: &LogRequest) -> LogAnswer {
    match request {
        LogRequest::List => LogAnswer::List(list_log_dir()),
        LogRequest::Log => match current_log_file() {
            Some(p) => read_tail(p),
            None => LogAnswer::NotFound("this process writes no log file (set log.file or env.log.dir)".into()),
        },
        LogRequest::File(name) => {
            let listed = list_log_dir().into_iter().any(|f| &f.name == name);
            match current_log_file().and_then(Path::parent) {
                Some(dir) if listed && !name.contains('/') && name != ".." => read_tail(&dir.join(name)),
                _ => LogAnswer::NotFound(format!("no log file named `{name}`")),
            }
        }
        LogRequest::Stdout => stdout_file().map_or_else(
            || LogAnswer::NotFound("this process's standard output is not a file".into()),
            |p| read_tail(&p),
        ),
    }
}

/// The file this process's standard output goes to, if it is a regular file.
fn stdout_file() -> Option<PathBuf> {
    let p = std::fs::read_link("/proc/self/fd/1").ok()?;
    std::fs::metadata(&p).ok().filter(std::fs::Metadata::is_file).map(|_| p)
}

fn read_tail(p: &Path) -> LogAnswer {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = match File::open(p) {
        Ok(f) => f,
        Err(e) => return LogAnswer::NotFound(format!("cannot read {}: {e}", p.display())),
    };
    let len = f.metadata().map_or(0, |m| m.len());
    if len > MAX_LOG_READ {
        let _ = f.seek(SeekFrom::Start(len - MAX_LOG_READ));
    }
    let mut bytes = Vec::new();
    match f.take(MAX_LOG_READ).read_to_end(&mut bytes) {
        Ok(_) => LogAnswer::Text(String::from_utf8_lossy(&bytes).into_owned()),
        Err(e) => LogAnswer::NotFound(format!("cannot read {}: {e}", p.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_with_units() {
        assert_eq!(parse_bytes("2048"), Some(2048));
        assert_eq!(parse_bytes("10m"), Some(10 << 20));
        assert_eq!(parse_bytes("1GB"), Some(1 << 30));
        assert_eq!(parse_bytes("ten"), None);
    }

    #[test]
    fn the_file_rolls_over_at_its_size_and_keeps_max_count_old_files() {
        let dir = std::env::temp_dir().join(format!("flowc-logging-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("x.log");
        let mut f = RotatingFile::open(path.clone(), 1024, 2).expect("open");
        let line = [b'a'; 100];
        for _ in 0..40 {
            f.write_all(&line).expect("write");
        }
        let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).ok();
        assert!(size(&path).is_some_and(|s| s <= 1024), "{:?}", size(&path));
        assert_eq!(size(&dir.join("x.log.1")), Some(1000));
        assert_eq!(size(&dir.join("x.log.2")), Some(1000));
        assert_eq!(size(&dir.join("x.log.3")), None, "only max-count old files are kept");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
