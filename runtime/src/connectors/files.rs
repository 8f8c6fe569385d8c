//! Sinks that stay on the TaskManager: print (stdout, Flink's `N> record`),
//! file (one record a line in the job's format — JSON, CSV or raw — one
//! file per subtask) and discard (for benchmarks). Records of a changelog
//! stream are shown with their kind first, as Flink SQL prints them:
//! `+I {"user":"a","total":1}`.
//!
//! A file sink writes only under the allowed roots (`security/paths.rs`): the
//! JobManager refuses a job whose file sink points elsewhere, and the
//! TaskManager checks again, against its own configuration, before it
//! creates anything — a plan can reach it by other ways than `flowc run`.

use super::{ConnectorError, SinkWriter};
use crate::codec::json::JsonEncoder;
use crate::codec::Encoder;
use crate::data::Batch;
use crate::security::paths::AllowedRoots;
use flowc_compiler::ir::{Format, Schema};
use std::io::Write;

pub struct PrintSink {
    prefix: String,
    encoder: JsonEncoder,
    buf: Vec<u8>,
}

impl PrintSink {
    pub fn new(schema: &Schema, subtask: u32, parallelism: u32) -> PrintSink {
        let prefix = if parallelism > 1 { format!("{}> ", subtask + 1) } else { String::new() };
        PrintSink { prefix, encoder: JsonEncoder::new(schema), buf: Vec::new() }
    }
}

impl SinkWriter for PrintSink {
    fn write(&mut self, batch: &Batch) -> Result<(), ConnectorError> {
        self.buf.clear();
        for r in 0..batch.len() {
            self.buf.extend_from_slice(self.prefix.as_bytes());
            kind_prefix(batch, r, &mut self.buf);
            self.encoder.encode_row(batch, r, &mut self.buf);
            self.buf.push(b'\n');
        }
        let mut out = std::io::stdout().lock();
        out.write_all(&self.buf).map_err(|e| ConnectorError::Io(format!("print: {e}")))
    }
    fn flush(&mut self) -> Result<(), ConnectorError> {
        std::io::stdout().flush().map_err(|e| ConnectorError::Io(format!("print: {e}")))
    }
}

pub struct FileSink {
    path: std::path::PathBuf,
    file: std::io::BufWriter<std::fs::File>,
    encoder: Encoder,
    buf: Vec<u8>,
}

impl FileSink {
    pub fn new(dir: &str, allowed: &AllowedRoots, schema: &Schema, subtask: u32) -> Result<FileSink, ConnectorError> {
        FileSink::with_format(dir, allowed, schema, &Format::Json, subtask)
    }

    /// Writes `part-<subtask>.jsonl` (`.csv`, `.txt` for raw); a CSV
    /// header goes first into a new or empty file.
    pub fn with_format(
        dir: &str,
        allowed: &AllowedRoots,
        schema: &Schema,
        format: &Format,
        subtask: u32,
    ) -> Result<FileSink, ConnectorError> {
        let dir =
            allowed.check(dir).map_err(|e| ConnectorError::Io(format!("the file sink's path is refused: {e}")))?;
        let dir = dir.as_path();
        std::fs::create_dir_all(dir)
            .map_err(|e| ConnectorError::Io(format!("cannot create `{}`: {e}", dir.display())))?;
        let ext = match format {
            Format::Json => "jsonl",
            Format::Csv(_) => "csv",
            Format::Raw => "txt",
        };
        let path = dir.join(format!("part-{subtask}.{ext}"));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| ConnectorError::Io(format!("cannot open `{}`: {e}", path.display())))?;
        let encoder = Encoder::new(schema, format);
        let mut file = std::io::BufWriter::new(file);
        let empty = file.get_ref().metadata().map(|m| m.len() == 0).unwrap_or(false);
        if let (Some(mut header), true) = (encoder.header(), empty) {
            header.push(b'\n');
            file.write_all(&header)
                .map_err(|e| ConnectorError::Io(format!("cannot write `{}`: {e}", path.display())))?;
        }
        Ok(FileSink { path, file, encoder, buf: Vec::new() })
    }
}

impl SinkWriter for FileSink {
    fn write(&mut self, batch: &Batch) -> Result<(), ConnectorError> {
        self.buf.clear();
        for r in 0..batch.len() {
            kind_prefix(batch, r, &mut self.buf);
            self.encoder.encode_row(batch, r, &mut self.buf);
            self.buf.push(b'\n');
        }
        self.file
            .write_all(&self.buf)
            .map_err(|e| ConnectorError::Io(format!("cannot write `{}`: {e}", self.path.display())))
    }
    fn flush(&mut self) -> Result<(), ConnectorError> {
        self.file.flush().map_err(|e| ConnectorError::Io(format!("cannot write `{}`: {e}", self.path.display())))?;
        self.file
            .get_ref()
            .sync_data()
            .map_err(|e| ConnectorError::Io(format!("cannot sync `{}`: {e}", self.path.display())))
    }
}

/// `+I `, `-U `, … before a record of a changelog stream; nothing on an
/// append-only one.
fn kind_prefix(batch: &Batch, row: usize, out: &mut Vec<u8>) {
    if batch.kinds.is_some() {
        out.extend_from_slice(batch.kind(row).short().as_bytes());
        out.push(b' ');
    }
}

/// Drops everything; the task still counts what it received.
pub struct DiscardSink;

impl SinkWriter for DiscardSink {
    fn write(&mut self, _batch: &Batch) -> Result<(), ConnectorError> {
        Ok(())
    }
    fn flush(&mut self) -> Result<(), ConnectorError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowc_compiler::ir::Schema;

    #[test]
    fn a_file_sink_outside_the_allowed_roots_is_refused_before_anything_is_created() {
        let base = std::env::temp_dir().join(format!("flowc-filesink-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let allowed = AllowedRoots::new([base.join("out").display().to_string()]);
        let schema = Schema::default();
        let outside = base.join("elsewhere");
        let e = FileSink::new(&outside.display().to_string(), &allowed, &schema, 0).err().expect("refused");
        assert!(e.to_string().contains("outside the allowed directories"), "{e}");
        assert!(!outside.exists());
        let climbing = format!("{}/out/../elsewhere", base.display());
        assert!(FileSink::new(&climbing, &allowed, &schema, 0).is_err());
        assert!(!outside.exists());
        let inside = base.join("out/job");
        assert!(FileSink::new(&inside.display().to_string(), &allowed, &schema, 1).is_ok());
        assert!(inside.join("part-1.jsonl").exists());
        let _ = std::fs::remove_dir_all(&base);
    }
}
