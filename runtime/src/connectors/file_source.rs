//! `source file { path, format, schema, watch }`: the files under a
//! directory, one record a line (JSON, CSV or raw).
//!
//! Each file belongs to one subtask, by a hash of its path (FNV-1a, never
//! to change: checkpoints depend on it), and is read whole, in name order,
//! by it. A file is taken as complete once it is listed: write it elsewhere
//! and move it in (as with Flink's `FileSource`). Without `watch` the source
//! reads the files there are when it starts and ends; with `watch: 10s` it
//! lists the directory again every 10 s, reads new files, and never ends
//! (it is idle while it has nothing to read, so it holds back no
//! watermark).
//!
//! The position — per file, the byte offset of the next line, the lines
//! read and whether it is done — is checkpointed. A restore gives every
//! subtask the positions of all files, and each keeps those of its own
//! files: the same at any parallelism. A CSV file with `header: true` has
//! its header read again when a restore starts in the middle of it.
//!
//! A CSV record may span lines where a quoted field holds line breaks: the
//! lines are joined while a quoted field is open (up to
//! [`MAX_RECORD_BYTES`]); its position is the line it starts on.

use super::bad_records::BadRecords;
use super::{ConnectorError, SourcePoll, SourceReader};
use crate::checkpoint::{FileProgress, SourceState};
use crate::codec::Decoder;
use crate::data::Origins;
use crate::metrics::{RecordPosition, TaskCounters};
use crate::record::Signal;
use crate::security::paths::AllowedRoots;
use flowc_compiler::ir::{ErrorPolicy, FileSource, Format};
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

const BATCH: usize = 1024;
/// A CSV record whose quoted field stays open longer than this is bad
/// (an unbalanced quote would otherwise swallow the rest of the file).
pub const MAX_RECORD_BYTES: usize = 1 << 20;

/// The subtask (of `parallelism`) that reads `file`. Never change: the
/// checkpointed positions of a job depend on it.
pub fn owner(file: &str, parallelism: u32) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in file.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % u64::from(parallelism.max(1))) as u32
}

struct Open {
    progress: usize,
    reader: BufReader<std::fs::File>,
}

pub struct FileSourceReader {
    spec: FileSource,
    root: PathBuf,
    subtask: u32,
    parallelism: u32,
    decoder: Decoder,
    bad: BadRecords,
    counters: Arc<TaskCounters>,
    /// This subtask's files, in name order.
    files: Vec<FileProgress>,
    open: Option<Open>,
    line: Vec<u8>,
    last_scan: Option<Instant>,
    idle: bool,
    /// Records read while idle, handed out after the `Active` signal.
    pending: Option<crate::data::Batch>,
    /// Records per batch at most.
    batch_rows: usize,
    /// Where the records of the batch being read came from (file, line)
    /// and their bytes: kept only when a later stage dead-letters
    /// ([`Self::with_origins`]).
    origins: Option<Origins>,
}

impl FileSourceReader {
    pub fn new(
        spec: &FileSource,
        operator: &str,
        subtask: u32,
        parallelism: u32,
        restored: Vec<FileProgress>,
        allowed: &AllowedRoots,
        counters: Arc<TaskCounters>,
    ) -> Result<FileSourceReader, ConnectorError> {
        let root = allowed
            .check(&spec.path)
            .map_err(|e| ConnectorError::Io(format!("the file source's path is refused: {e}")))?;
        let files = restored.into_iter().filter(|f| owner(&f.file, parallelism) == subtask).collect();
        let mut bad = BadRecords::new(&spec.on_error, operator, counters.clone())?;
        if let ErrorPolicy::DeadLetterFiles(path) = &spec.on_error {
            let dir = allowed
                .check(path)
                .map_err(|e| ConnectorError::Io(format!("the file source's `dead_letter_path` is refused: {e}")))?;
            bad.write_to(super::dead_letter_files::DeadLetterFile::open(&dir, subtask)?);
        }
        let mut reader = FileSourceReader {
            decoder: Decoder::new(&spec.schema, &spec.format),
            bad,
            spec: spec.clone(),
            root,
            subtask,
            parallelism,
            counters,
            files,
            open: None,
            line: Vec::with_capacity(256),
            last_scan: None,
            idle: false,
            pending: None,
            batch_rows: BATCH,
            origins: None,
        };
        reader.scan()?;
        Ok(reader)
    }

    /// Its batches carry their records' origins (file, line and the
    /// record's bytes), for a stage after it that dead-letters.
    pub fn with_origins(mut self) -> FileSourceReader {
        self.origins = Some(Origins::default());
        self
    }

    /// Lists the path: new files of this subtask are added, unread.
    fn scan(&mut self) -> Result<(), ConnectorError> {
        self.last_scan = Some(Instant::now());
        let meta = std::fs::metadata(&self.root)
            .map_err(|e| ConnectorError::Io(format!("cannot read `{}`: {e}", self.root.display())))?;
        let mut found: Vec<String> = if meta.is_dir() {
            let entries = std::fs::read_dir(&self.root)
                .map_err(|e| ConnectorError::Io(format!("cannot list `{}`: {e}", self.root.display())))?;
            let mut names = Vec::new();
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                // Hidden files are files being written (or editors' own).
                if name.starts_with('.') || !e.file_type().is_ok_and(|t| t.is_file()) {
                    continue;
                }
                names.push(format!("{}/{name}", self.spec.path.trim_end_matches('/')));
            }
            names
        } else {
            vec![self.spec.path.clone()]
        };
        found.sort();
        for f in found {
            if owner(&f, self.parallelism) == self.subtask && !self.files.iter().any(|p| p.file == f) {
                self.files.push(FileProgress { file: f, offset: 0, lines: 0, done: false });
            }
        }
        self.files.sort_by(|a, b| a.file.cmp(&b.file));
        Ok(())
    }

    /// Opens the next file not done, reading a CSV header first.
    fn open_next(&mut self) -> Result<bool, ConnectorError> {
        let Some(k) = self.files.iter().position(|f| !f.done) else { return Ok(false) };
        let p = &mut self.files[k];
        let io = |e: std::io::Error| ConnectorError::Io(format!("cannot read `{}`: {e}", p.file));
        let file = std::fs::File::open(&p.file).map_err(io)?;
        let mut reader = BufReader::new(file);
        if let Decoder::Csv(d) = &mut self.decoder {
            d.reset_header();
            if d.format().header {
                self.line.clear();
                let n = reader.read_until(b'\n', &mut self.line).map_err(io)? as u64;
                let header = self.line.strip_suffix(b"\n").unwrap_or(&self.line);
                if n > 0 {
                    if let Err(e) = d.set_header(header) {
                        let position = RecordPosition::File { file: p.file.clone(), line: 1 };
                        let bytes = header.to_vec();
                        p.done = true;
                        self.bad.decode_error(&bytes, &format!("a bad CSV header: {e}"), position, None)?;
                        return Ok(true);
                    }
                }
                if p.offset == 0 {
                    p.offset = n;
                    p.lines = 1;
                }
            }
        }
        reader.seek(SeekFrom::Start(p.offset)).map_err(io)?;
        self.open = Some(Open { progress: k, reader });
        Ok(true)
    }
}

impl SourceReader for FileSourceReader {
    fn snapshot(&mut self, _checkpoint_id: u64) -> SourceState {
        SourceState::Files { files: self.files.clone() }
    }

    fn flush(&mut self) -> Result<(), ConnectorError> {
        self.bad.flush()
    }

    fn poll(&mut self, timeout: Duration) -> Result<SourcePoll, ConnectorError> {
        if let Some(b) = self.pending.take() {
            return Ok(SourcePoll::Records(b));
        }
        let deadline = Instant::now() + timeout;
        let mut batch = self.decoder.batch(self.batch_rows);
        if let Some(o) = &mut self.origins {
            o.truncate(0);
        }
        let mut bytes = 0u64;
        while batch.len() < self.batch_rows {
            if self.open.is_none() && !self.open_next()? {
                break;
            }
            let Some(open) = self.open.as_mut() else { continue };
            let p = &mut self.files[open.progress];
            self.line.clear();
            let n = open
                .reader
                .read_until(b'\n', &mut self.line)
                .map_err(|e| ConnectorError::Io(format!("cannot read `{}`: {e}", p.file)))?;
            if n == 0 {
                p.done = true;
                self.open = None;
                continue;
            }
            let first_line = p.lines + 1;
            let mut n = n;
            let mut lines = 1;
            if let Decoder::Csv(d) = &self.decoder {
                let (delimiter, quote) = (d.format().delimiter, d.format().quote);
                // A quoted field with line breaks: the record goes on.
                while self.line.ends_with(b"\n")
                    && self.line.len() < MAX_RECORD_BYTES
                    && crate::codec::csv::is_open(&self.line, delimiter, quote)
                {
                    let more = open
                        .reader
                        .read_until(b'\n', &mut self.line)
                        .map_err(|e| ConnectorError::Io(format!("cannot read `{}`: {e}", p.file)))?;
                    if more == 0 {
                        break;
                    }
                    n += more;
                    lines += 1;
                }
            }
            p.offset += n as u64;
            p.lines += lines;
            bytes += n as u64;
            let mut record = self.line.strip_suffix(b"\n").unwrap_or(&self.line);
            if self.spec.format != Format::Raw {
                record = record.strip_suffix(b"\r").unwrap_or(record);
                if record.iter().all(u8::is_ascii_whitespace) {
                    continue; // blank lines separate nothing
                }
            }
            match self.decoder.decode_into(record, &mut batch) {
                Ok(()) => {
                    if let Some(o) = &mut self.origins {
                        o.push_file(&p.file, first_line, record);
                    }
                }
                Err(e) => {
                    let position = RecordPosition::File { file: p.file.clone(), line: first_line };
                    let record = record.to_vec();
                    self.bad.decode_error(&record, &e.0, position, None)?;
                }
            }
        }
        TaskCounters::add(&self.counters.bytes_in, bytes);
        // One origin per record read (a mismatch would be a bug: none, rather than wrong ones).
        batch.origins = self.origins.as_mut().map(Origins::take).filter(|o| o.len() == batch.len());
        if !batch.is_empty() {
            if self.idle {
                self.idle = false;
                // Records follow at once: the next poll hands them out.
                self.pending = Some(batch);
                return Ok(SourcePoll::Signal(Signal::Active));
            }
            return Ok(SourcePoll::Records(batch));
        }
        match self.spec.watch_ms {
            None => Ok(SourcePoll::End),
            Some(every) => {
                if self.last_scan.is_none_or(|t| t.elapsed() >= Duration::from_millis(every)) {
                    self.scan()?;
                    if self.files.iter().any(|f| !f.done) {
                        return Ok(SourcePoll::Nothing);
                    }
                }
                if !self.idle {
                    self.idle = true;
                    return Ok(SourcePoll::Signal(Signal::Idle));
                }
                std::thread::sleep(
                    deadline.saturating_duration_since(Instant::now()).min(Duration::from_millis(every)),
                );
                Ok(SourcePoll::Nothing)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Value;
    use flowc_compiler::ir::{DataType, ErrorPolicy, Field, Schema};
    use proptest::prelude::*;

    fn spec(path: &std::path::Path, format: Format, schema: Schema) -> FileSource {
        FileSource { path: path.display().to_string(), format, schema, watch_ms: None, on_error: ErrorPolicy::Skip }
    }

    fn lines_schema() -> Schema {
        Schema { name: None, fields: vec![Field::new("line", DataType::String)] }
    }

    fn reader(s: &FileSource, subtask: u32, p: u32, restored: Vec<FileProgress>, rows: usize) -> FileSourceReader {
        let allowed = AllowedRoots::new([s.path.clone()]);
        let mut r = FileSourceReader::new(s, "src", subtask, p, restored, &allowed, Arc::new(TaskCounters::new()))
            .expect("reader");
        r.batch_rows = rows;
        r
    }

    /// Polls up to `polls` times (all if `None`); the lines read.
    fn read(r: &mut FileSourceReader, polls: Option<usize>) -> Vec<String> {
        let mut out = Vec::new();
        let mut n = 0;
        while polls.is_none_or(|p| n < p) {
            n += 1;
            match r.poll(Duration::from_millis(1)).expect("poll") {
                SourcePoll::Records(b) => out.extend(b.rows().into_iter().map(|(_, v)| match &v[0] {
                    Value::Str(s) => s.clone(),
                    other => panic!("{other:?}"),
                })),
                SourcePoll::End => break,
                _ => {}
            }
        }
        out
    }

    fn scratch(tag: &str) -> PathBuf {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("flowc-filesource-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch");
        dir
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        /// Read part of the files at parallelism p, checkpoint, restore at
        /// p2 and read the rest: every line exactly once, each file's lines
        /// in order — as the plain model, reading each file whole, has them.
        #[test]
        fn positions_restore_at_any_parallelism(
            sizes in proptest::collection::vec(0usize..25, 1..6),
            p in 1u32..4,
            p2 in 1u32..4,
            polls in proptest::collection::vec(0usize..6, 3),
            rows in 1usize..5,
        ) {
            let dir = scratch("prop");
            let mut model: Vec<String> = Vec::new();
            for (f, n) in sizes.iter().enumerate() {
                let text: String = (0..*n).map(|l| format!("f{f}-l{l}\n")).collect();
                std::fs::write(dir.join(format!("part-{f}.txt")), text).unwrap();
                model.extend((0..*n).map(|l| format!("f{f}-l{l}")));
            }
            let s = spec(&dir, Format::Raw, lines_schema());
            let mut got = Vec::new();
            let mut saved = Vec::new();
            for sub in 0..p {
                let mut r = reader(&s, sub, p, Vec::new(), rows);
                got.extend(read(&mut r, Some(polls[sub as usize])));
                match r.snapshot(1) {
                    SourceState::Files { files } => saved.extend(files),
                    other => panic!("{other:?}"),
                }
            }
            for sub in 0..p2 {
                let mut r = reader(&s, sub, p2, saved.clone(), rows);
                got.extend(read(&mut r, None));
            }
            let mut sorted = got.clone();
            sorted.sort();
            let mut want = model.clone();
            want.sort();
            prop_assert_eq!(sorted, want);
            // Each file's lines in order.
            for (f, n) in sizes.iter().enumerate() {
                let prefix = format!("f{f}-");
                let of_file: Vec<&String> = got.iter().filter(|l| l.starts_with(&prefix)).collect();
                let expect: Vec<String> = (0..*n).map(|l| format!("f{f}-l{l}")).collect();
                prop_assert_eq!(of_file.into_iter().cloned().collect::<Vec<_>>(), expect);
            }
            let _ = std::fs::remove_dir_all(&dir);
        }
    }

    #[test]
    fn csv_headers_are_read_again_after_a_restore_and_bad_lines_are_skipped() {
        let dir = scratch("csv");
        std::fs::write(dir.join("a.csv"), "n,name\n1,x\n2,y\nbad,z\n\n3,\"w, v\"\r\n").unwrap();
        let schema =
            Schema { name: None, fields: vec![Field::new("name", DataType::String), Field::new("n", DataType::Long)] };
        let csv = flowc_compiler::ir::CsvFormat { header: true, ..Default::default() };
        let s = spec(&dir, Format::Csv(csv), schema);
        let mut r = reader(&s, 0, 1, Vec::new(), 1);
        let first = r.poll(Duration::from_millis(1)).unwrap();
        let SourcePoll::Records(b) = first else { panic!("{first:?}") };
        assert_eq!(b.row(0), vec![Value::Str("x".into()), Value::Int(1)]);
        let SourceState::Files { files } = r.snapshot(1) else { panic!() };
        assert_eq!(files[0].lines, 2, "the header and one record");
        let mut r = reader(&s, 0, 1, files, 10);
        let SourcePoll::Records(b) = r.poll(Duration::from_millis(1)).unwrap() else { panic!() };
        assert_eq!(
            b.rows().into_iter().map(|(_, v)| v).collect::<Vec<_>>(),
            vec![vec![Value::Str("y".into()), Value::Int(2)], vec![Value::Str("w, v".into()), Value::Int(3)],]
        );
        assert_eq!(TaskCounters::get(&r.counters.decode_errors), 1);
        let sample = r.counters.error_samples().pop().unwrap();
        assert_eq!(sample.position, Some(RecordPosition::File { file: format!("{}/a.csv", dir.display()), line: 4 }));
        assert!(matches!(r.poll(Duration::from_millis(1)).unwrap(), SourcePoll::End));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn with_origins_each_record_carries_its_file_line_and_bytes() {
        let dir = scratch("origins");
        std::fs::write(dir.join("a.csv"), "n,name\n1,x\nbad,z\n\n3,\"w,\nv\"\r\n").unwrap();
        let schema =
            Schema { name: None, fields: vec![Field::new("n", DataType::Long), Field::new("name", DataType::String)] };
        let csv = flowc_compiler::ir::CsvFormat { header: true, ..Default::default() };
        let s = spec(&dir, Format::Csv(csv), schema);
        let file = format!("{}/a.csv", dir.display());
        let mut plain = reader(&s, 0, 1, Vec::new(), 10);
        let SourcePoll::Records(b) = plain.poll(Duration::from_millis(1)).unwrap() else { panic!("records") };
        assert_eq!((b.len(), b.origins), (2, None), "none unless asked for");
        let mut r = reader(&s, 0, 1, Vec::new(), 10).with_origins();
        let SourcePoll::Records(b) = r.poll(Duration::from_millis(1)).unwrap() else { panic!("records") };
        let o = b.origins.as_ref().expect("origins");
        let got: Vec<(RecordPosition, Vec<u8>)> =
            (0..b.len()).filter_map(|i| o.get(i)).map(|g| (g.position(), g.bytes.to_vec())).collect();
        let at = |line| RecordPosition::File { file: file.clone(), line };
        // A record spanning lines is at the line it starts on, with its line break.
        assert_eq!(got, vec![(at(2), b"1,x".to_vec()), (at(5), b"3,\"w,\nv\"".to_vec())]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_csv_record_spans_lines_where_a_quoted_field_holds_line_breaks() {
        let dir = scratch("csv-lines");
        std::fs::write(dir.join("a.csv"), "1,\"a\nb\"\n2,\"c,\"\"d\"\"\"\r\n3,plain\n4,\"never closed\n5,x\n").unwrap();
        let schema =
            Schema { name: None, fields: vec![Field::new("n", DataType::Long), Field::new("s", DataType::String)] };
        let s = spec(&dir, Format::Csv(flowc_compiler::ir::CsvFormat::default()), schema);
        let mut r = reader(&s, 0, 1, Vec::new(), 1);
        let SourcePoll::Records(b) = r.poll(Duration::from_millis(1)).unwrap() else { panic!() };
        assert_eq!(b.row(0), vec![Value::Int(1), Value::Str("a\nb".into())]);
        let SourceState::Files { files } = r.snapshot(1) else { panic!() };
        assert_eq!((files[0].lines, files[0].offset), (2, 8), "the record's two lines");
        // Restored there, the rest reads on; the open quote runs to the end and is one bad record.
        let mut r = reader(&s, 0, 1, files, 10);
        let SourcePoll::Records(b) = r.poll(Duration::from_millis(1)).unwrap() else { panic!() };
        assert_eq!(
            b.rows().into_iter().map(|(_, v)| v).collect::<Vec<_>>(),
            vec![vec![Value::Int(2), Value::Str("c,\"d\"".into())], vec![Value::Int(3), Value::Str("plain".into())]]
        );
        assert_eq!(TaskCounters::get(&r.counters.decode_errors), 1);
        let sample = r.counters.error_samples().pop().unwrap();
        assert_eq!(sample.position, Some(RecordPosition::File { file: format!("{}/a.csv", dir.display()), line: 5 }));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn bad_lines_go_to_the_dead_letter_path_as_json_lines() {
        let dir = scratch("dead-letter-path");
        std::fs::write(dir.join("a.txt"), "{\"n\":1}\nnot json\n{\"n\":2}\n").unwrap();
        let schema = Schema { name: None, fields: vec![Field::new("n", DataType::Long)] };
        let mut s = spec(&dir, Format::Json, schema);
        s.on_error = ErrorPolicy::DeadLetterFiles(format!("{}/bad", dir.display()));
        let mut r = reader(&s, 0, 1, Vec::new(), 10);
        let SourcePoll::Records(b) = r.poll(Duration::from_millis(1)).unwrap() else { panic!() };
        assert_eq!(b.len(), 2);
        r.flush().unwrap();
        let text = std::fs::read_to_string(dir.join("bad/dead-letters-0.jsonl")).unwrap();
        let v: serde_json::Value = serde_json::from_str(text.trim_end()).unwrap();
        assert_eq!(v["source"], serde_json::json!({"file": format!("{}/a.txt", dir.display()), "line": 2}));
        assert_eq!(v["value"], "not json");
        assert_eq!(TaskCounters::get(&r.counters.dead_lettered), 1);
        // The directory of dead letters is no file of the source.
        assert!(matches!(r.poll(Duration::from_millis(1)).unwrap(), SourcePoll::End));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn watching_picks_up_new_files_and_is_idle_in_between() {
        let dir = scratch("watch");
        std::fs::write(dir.join("a.txt"), "a1\na2\n").unwrap();
        let mut s = spec(&dir, Format::Raw, lines_schema());
        s.watch_ms = Some(20);
        let mut r = reader(&s, 0, 1, Vec::new(), 10);
        assert_eq!(read(&mut r, Some(1)), ["a1", "a2"]);
        // Nothing to read: idle once, and never the end.
        let mut signals = Vec::new();
        for _ in 0..3 {
            match r.poll(Duration::from_millis(5)).unwrap() {
                SourcePoll::Signal(sig) => signals.push(sig),
                SourcePoll::End => panic!("a watching source never ends"),
                _ => {}
            }
        }
        assert_eq!(signals, [Signal::Idle]);
        // A hidden file (being written) is left alone; a new file is read after `Active`.
        std::fs::write(dir.join(".b.txt.tmp"), "tmp\n").unwrap();
        std::fs::write(dir.join("b.txt"), "b1\n").unwrap();
        std::thread::sleep(Duration::from_millis(30));
        let mut got = Vec::new();
        let mut active = false;
        for _ in 0..10 {
            match r.poll(Duration::from_millis(5)).unwrap() {
                SourcePoll::Signal(Signal::Active) => active = true,
                SourcePoll::Records(b) => got.extend(b.rows().into_iter().map(|(_, v)| v)),
                _ => {}
            }
        }
        assert!(active);
        assert_eq!(got, vec![vec![Value::Str("b1".into())]]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_path_outside_the_allowed_roots_is_refused() {
        let dir = scratch("refused");
        let s = spec(&dir, Format::Raw, lines_schema());
        let allowed = AllowedRoots::new([dir.join("elsewhere").display().to_string()]);
        let e = FileSourceReader::new(&s, "src", 0, 1, Vec::new(), &allowed, Arc::new(TaskCounters::new()))
            .err()
            .expect("refused");
        assert!(e.to_string().contains("refused"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
