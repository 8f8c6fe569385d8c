//! Sinks that stay on the TaskManager: print (stdout, Flink's `N> record`),
//! file (JSON lines, one file per subtask) and discard (for benchmarks).

use super::{ConnectorError, SinkWriter};
use crate::codec::json::JsonEncoder;
use crate::data::Batch;
use flowc_compiler::ir::Schema;
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
    encoder: JsonEncoder,
    buf: Vec<u8>,
}

impl FileSink {
    pub fn new(dir: &str, schema: &Schema, subtask: u32) -> Result<FileSink, ConnectorError> {
        let dir = std::path::Path::new(dir);
        std::fs::create_dir_all(dir)
            .map_err(|e| ConnectorError::Io(format!("cannot create `{}`: {e}", dir.display())))?;
        let path = dir.join(format!("part-{subtask}.jsonl"));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| ConnectorError::Io(format!("cannot open `{}`: {e}", path.display())))?;
        Ok(FileSink { path, file: std::io::BufWriter::new(file), encoder: JsonEncoder::new(schema), buf: Vec::new() })
    }
}

impl SinkWriter for FileSink {
    fn write(&mut self, batch: &Batch) -> Result<(), ConnectorError> {
        self.buf.clear();
        for r in 0..batch.len() {
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
