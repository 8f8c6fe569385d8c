//! Dead letters as JSON lines in a directory (a file source's
//! `dead_letter_path`): each subtask appends to its own
//! `dead-letters-<subtask>.jsonl`, one dead-letter object a line, as the
//! Kafka dead-letter topic holds them. At-least-once like the topic: the
//! file is flushed and synced at every checkpoint barrier, before the
//! source's positions are snapshotted, so a bad line is never lost (it may
//! be written twice after a restore).

use super::ConnectorError;
use std::io::Write as _;
use std::path::{Path, PathBuf};

pub struct DeadLetterFile {
    path: PathBuf,
    out: std::io::BufWriter<std::fs::File>,
}

impl DeadLetterFile {
    /// Opens (creating the directory and the file if need be) subtask
    /// `subtask`'s file in `dir`, to append to.
    pub fn open(dir: &Path, subtask: u32) -> Result<DeadLetterFile, ConnectorError> {
        let io = |what: &str, p: &Path, e: std::io::Error| {
            ConnectorError::Io(format!("cannot {what} the dead-letter file `{}`: {e}", p.display()))
        };
        std::fs::create_dir_all(dir).map_err(|e| io("create the directory of", dir, e))?;
        let path = dir.join(format!("dead-letters-{subtask}.jsonl"));
        let file =
            std::fs::OpenOptions::new().create(true).append(true).open(&path).map_err(|e| io("open", &path, e))?;
        Ok(DeadLetterFile { out: std::io::BufWriter::new(file), path })
    }

    /// Appends one dead letter (a JSON object) and a line break.
    pub fn write(&mut self, dead_letter: &[u8]) -> Result<(), ConnectorError> {
        self.out.write_all(dead_letter).and_then(|()| self.out.write_all(b"\n")).map_err(|e| {
            ConnectorError::Io(format!("cannot write the dead-letter file `{}`: {e}", self.path.display()))
        })
    }

    /// Everything written so far is on disk when this returns.
    pub fn flush(&mut self) -> Result<(), ConnectorError> {
        self.out
            .flush()
            .and_then(|()| self.out.get_ref().sync_data())
            .map_err(|e| ConnectorError::Io(format!("cannot sync the dead-letter file `{}`: {e}", self.path.display())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_json_lines_per_subtask() {
        let dir = std::env::temp_dir().join(format!("flowc-dead-letter-files-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut f = DeadLetterFile::open(&dir.join("bad"), 2).unwrap();
        f.write(br#"{"error":"a"}"#).unwrap();
        f.flush().unwrap();
        // Opened again (a restart): appended to.
        let mut f = DeadLetterFile::open(&dir.join("bad"), 2).unwrap();
        f.write(br#"{"error":"b"}"#).unwrap();
        f.flush().unwrap();
        let text = std::fs::read_to_string(dir.join("bad/dead-letters-2.jsonl")).unwrap();
        assert_eq!(text, "{\"error\":\"a\"}\n{\"error\":\"b\"}\n");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
