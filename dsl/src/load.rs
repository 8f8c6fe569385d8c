//! Reading a job file from disk, refusing what is not a job file.

use crate::ast::{Item, JobFile};
use crate::diagnostic::SourceFile;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// The largest job file flowc reads. Real jobs are a few kilobytes; this is
/// a guard against pointing flowc at a data file by mistake.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    // The reason is part of the message, and so not also a `source`: an
    // error chain printed with `{:#}` would say it twice.
    #[error("cannot read `{path}`: {reason}")]
    Io { path: String, reason: std::io::Error },
    #[error("`{path}` is {size} bytes; job files are at most {max} bytes (is this the right file?)")]
    TooLarge { path: String, size: u64, max: u64 },
    #[error("`{path}` is not a text file (it contains a NUL byte at offset {offset})")]
    Binary { path: String, offset: usize },
    #[error("`{path}` is not valid UTF-8 (invalid byte at line {line}, column {col})")]
    NotUtf8 { path: String, line: usize, col: usize },
    #[error("`{path}` is empty: a job file needs at least a source and a sink")]
    Empty { path: String },
}

/// Reads a job file as source text, with `name` being the path as given.
pub fn load(path: &Path) -> Result<SourceFile, LoadError> {
    let name = path.display().to_string();
    let io = |reason| LoadError::Io { path: name.clone(), reason };
    let meta = std::fs::metadata(path).map_err(io)?;
    if meta.is_dir() {
        return Err(LoadError::Io {
            path: name.clone(),
            reason: std::io::Error::new(std::io::ErrorKind::InvalidInput, "it is a directory"),
        });
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(LoadError::TooLarge { path: name, size: meta.len(), max: MAX_FILE_BYTES });
    }
    let bytes = std::fs::read(path).map_err(io)?;
    from_bytes(name, bytes)
}

/// The Rust files a job imports (`use rust "…"`), read relative to the job
/// file at `job_path`: by the path the job writes, the file (named as the
/// user would find it) or why it could not be read.
pub fn rust_imports(job_path: &Path, file: &JobFile) -> BTreeMap<String, Result<Arc<SourceFile>, String>> {
    let dir = job_path.parent().unwrap_or(Path::new(""));
    let mut out = BTreeMap::new();
    for item in &file.items {
        let Item::UseRust(u) = item else { continue };
        let path = dir.join(&u.path.value);
        let read = || -> Result<Arc<SourceFile>, String> {
            let meta = std::fs::metadata(&path).map_err(|e| e.to_string())?;
            if meta.is_dir() {
                return Err("it is a directory".into());
            }
            if meta.len() > MAX_FILE_BYTES {
                return Err(format!("it is {} bytes; UDF files are at most {MAX_FILE_BYTES} bytes", meta.len()));
            }
            let text = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
            Ok(Arc::new(SourceFile::new(path.display().to_string(), text)))
        };
        out.insert(u.path.value.clone(), read());
    }
    out
}

/// The checks of [`load`] on bytes already read.
pub fn from_bytes(name: String, bytes: Vec<u8>) -> Result<SourceFile, LoadError> {
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(LoadError::TooLarge { path: name, size: bytes.len() as u64, max: MAX_FILE_BYTES });
    }
    if let Some(offset) = bytes.iter().position(|b| *b == 0) {
        return Err(LoadError::Binary { path: name, offset });
    }
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let good = e.utf8_error().valid_up_to();
            let prefix = String::from_utf8_lossy(&e.as_bytes()[..good]).into_owned();
            let line = prefix.matches('\n').count() + 1;
            let col = prefix.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            return Err(LoadError::NotUtf8 { path: name, line, col });
        }
    };
    if text.trim().is_empty() {
        return Err(LoadError::Empty { path: name });
    }
    Ok(SourceFile::new(name, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_binary_and_bad_utf8() {
        assert!(matches!(from_bytes("a".into(), vec![b'x', 0, 1]), Err(LoadError::Binary { offset: 1, .. })));
        assert!(matches!(
            from_bytes("a".into(), b"ok\nab\xff".to_vec()),
            Err(LoadError::NotUtf8 { line: 2, col: 3, .. })
        ));
        assert!(matches!(from_bytes("a".into(), b"  \n".to_vec()), Err(LoadError::Empty { .. })));
    }
}
