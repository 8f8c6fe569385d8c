//! CSV lines straight into batch columns, and batch rows back to CSV
//! (`format: csv`), driven by the job's schema.
//!
//! One record is one line, or more where a quoted field holds line breaks
//! (the file source joins them, see [`is_open`]; a Kafka message is one
//! record). Fields are separated by the delimiter; a field that starts with
//! the quote character runs to the next quote that is not doubled, and a
//! doubled quote inside it is one quote (RFC 4180). A field of a nullable
//! type is null when it is unquoted and equals `null_literal`, or when it
//! is unquoted and empty and its type is not `string` (as Flink's CSV
//! format reads them). Without a header the
//! fields are the schema's in order, exactly as many; with one (files
//! only), [`CsvDecoder::set_header`] maps columns to fields by name, and
//! other columns are ignored. Values are parsed in place by the field's
//! type: integers, doubles, `true`/`false` (any case), timestamps by their
//! pattern (or epoch milliseconds without one); strings are copied, and
//! unescaped in a scratch buffer only when quoted with doubled quotes. A
//! record that does not parse appends nothing.
//!
//! The encoder quotes a field only when it holds the delimiter, the quote
//! or a line break (or is the null literal); timestamps are written by
//! their pattern, nulls as the null literal (empty without one).

use super::json::DecodeError;
use crate::data::{Batch, Data};
use crate::record::NO_TIMESTAMP;
use flowc_compiler::ir::{CsvFormat, DataType, Schema, TimestampFormat};
use flowc_compiler::timefmt::TimeFormat;
use std::io::Write as _;

#[derive(Debug, Clone)]
struct FieldCodec {
    name: String,
    ty: DataType,
    time: Option<TimeFormat>,
    nullable: bool,
}

/// A field of the line being read.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: usize,
    end: usize,
    /// In `scratch` (a quoted field with doubled quotes), else in the line.
    escaped: bool,
    /// It was quoted (so never a null).
    quoted: bool,
}

/// Whether `record` ends inside a quoted field: a line break read there
/// belongs to the field, and the record goes on on the next line.
pub fn is_open(record: &[u8], delimiter: u8, quote: u8) -> bool {
    let (mut in_quotes, mut field_start, mut i) = (false, true, 0);
    while i < record.len() {
        let b = record[i];
        if in_quotes {
            if b == quote {
                if record.get(i + 1) == Some(&quote) {
                    i += 1;
                } else {
                    in_quotes = false;
                }
            }
        } else if field_start && b == quote {
            in_quotes = true;
        }
        field_start = !in_quotes && (b == delimiter || b == b'\n');
        i += 1;
    }
    in_quotes
}

fn field_codecs(schema: &Schema) -> Vec<FieldCodec> {
    schema
        .fields
        .iter()
        .map(|f| {
            let time = match &f.timestamp_format {
                Some(TimestampFormat::Pattern(p)) if f.ty == DataType::Timestamp => TimeFormat::new(p).ok(),
                _ => None,
            };
            FieldCodec { name: f.name.clone(), ty: f.ty, time, nullable: f.nullable }
        })
        .collect()
}

/// Reads CSV lines into batches of one schema.
#[derive(Debug, Clone)]
pub struct CsvDecoder {
    fields: Vec<FieldCodec>,
    types: Vec<DataType>,
    format: CsvFormat,
    /// For each column of a line, the schema field it fills (`None`:
    /// ignored). Without a header: column i is field i.
    columns: Vec<Option<usize>>,
    /// Unescaped quoted fields.
    scratch: Vec<u8>,
    /// The fields of the line being read.
    spans: Vec<Span>,
}

impl CsvDecoder {
    pub fn new(schema: &Schema, format: CsvFormat) -> CsvDecoder {
        let fields = field_codecs(schema);
        let columns = (0..fields.len()).map(Some).collect();
        CsvDecoder {
            types: schema.fields.iter().map(|f| f.ty).collect(),
            fields,
            format,
            columns,
            scratch: Vec::new(),
            spans: Vec::new(),
        }
    }

    pub fn format(&self) -> &CsvFormat {
        &self.format
    }

    /// An empty batch of this schema.
    pub fn batch(&self, rows: usize) -> Batch {
        Batch::empty(&self.types, rows)
    }

    /// Reads the columns' names from a header line; every schema field
    /// must be one of them.
    pub fn set_header(&mut self, line: &[u8]) -> Result<(), DecodeError> {
        self.split(line)?;
        let mut columns = Vec::with_capacity(self.spans.len());
        for k in 0..self.spans.len() {
            let name = self.text(line, k)?;
            columns.push(self.fields.iter().position(|f| f.name == name.trim()));
        }
        if let Some(missing) = (0..self.fields.len()).find(|i| !columns.contains(&Some(*i))) {
            return Err(DecodeError(format!("the header has no column `{}`", self.fields[missing].name)));
        }
        self.columns = columns;
        Ok(())
    }

    /// Back to columns by position (a new file without a header line yet).
    pub fn reset_header(&mut self) {
        self.columns = (0..self.fields.len()).map(Some).collect();
    }

    /// Decodes one line (without its line break) and appends it to
    /// `batch`; on error appends nothing. Never panics.
    pub fn decode_into(&mut self, line: &[u8], batch: &mut Batch) -> Result<(), DecodeError> {
        let before = batch.len();
        let result = self.decode_fields(line, batch);
        match result {
            Ok(()) => {
                batch.timestamps.push(NO_TIMESTAMP);
                Ok(())
            }
            Err(e) => {
                batch.truncate(before);
                Err(e)
            }
        }
    }

    fn decode_fields(&mut self, line: &[u8], batch: &mut Batch) -> Result<(), DecodeError> {
        if batch.columns.len() != self.fields.len() {
            return Err(DecodeError("the batch does not have this schema (a bug in flowc)".into()));
        }
        self.split(line)?;
        if self.spans.len() != self.columns.len() {
            return Err(DecodeError(format!(
                "{} fields, and the {} has {}",
                self.spans.len(),
                if self.columns.len() == self.fields.len() { "schema" } else { "header" },
                self.columns.len()
            )));
        }
        for k in 0..self.spans.len() {
            let Some(i) = self.columns[k] else { continue };
            let text = self.text(line, k)?;
            let f = &self.fields[i];
            let null = !self.spans[k].quoted
                && (self.format.null_literal.as_ref().is_some_and(|n| text == n)
                    || (text.is_empty() && f.ty != DataType::String));
            if null {
                if !f.nullable {
                    return Err(DecodeError(format!(
                        "field `{}` is null, and its type is not nullable (declare it `{}?`)",
                        f.name, f.ty
                    )));
                }
                batch.columns[i].push_null();
                continue;
            }
            let bad = || DecodeError(format!("field `{}`: `{text}` is not a {}", f.name, f.ty));
            match (&mut batch.columns[i].data, f.ty) {
                (Data::Str(c), DataType::String) => c.push(text),
                (Data::I64(c), DataType::Int) => {
                    let v: i32 = text.trim().parse().map_err(|_| bad())?;
                    c.push(i64::from(v));
                }
                (Data::I64(c), DataType::Long) => c.push(text.trim().parse().map_err(|_| bad())?),
                (Data::I64(c), DataType::Timestamp) => match &f.time {
                    Some(t) => c.push(t.parse(text.trim()).ok_or_else(|| {
                        DecodeError(format!("field `{}`: `{text}` does not match the timestamp pattern", f.name))
                    })?),
                    None => c.push(text.trim().parse().map_err(|_| bad())?),
                },
                (Data::F64(c), DataType::Double) => c.push(text.trim().parse().map_err(|_| bad())?),
                (Data::Bool(c), DataType::Bool) => {
                    let t = text.trim();
                    if t.eq_ignore_ascii_case("true") {
                        c.push(true)
                    } else if t.eq_ignore_ascii_case("false") {
                        c.push(false)
                    } else {
                        return Err(bad());
                    }
                }
                _ => return Err(DecodeError("internal error: column type (a bug in flowc)".into())),
            }
            batch.columns[i].mark_appended_valid();
        }
        Ok(())
    }

    /// Field `k` of the line last split, as text.
    fn text<'a>(&'a self, line: &'a [u8], k: usize) -> Result<&'a str, DecodeError> {
        let Span { start, end, escaped, .. } = self.spans[k];
        let bytes = if escaped { &self.scratch[start..end] } else { &line[start..end] };
        std::str::from_utf8(bytes).map_err(|_| DecodeError(format!("field {} is not UTF-8", k + 1)))
    }

    /// Splits a line into `spans`: plain fields as ranges of the line,
    /// quoted fields with doubled quotes as ranges of `scratch`.
    fn split(&mut self, line: &[u8]) -> Result<(), DecodeError> {
        let (d, q) = (self.format.delimiter, self.format.quote);
        self.spans.clear();
        self.scratch.clear();
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let mut i = 0;
        loop {
            if line.get(i) == Some(&q) {
                // Quoted: up to the closing quote; `""` is one quote.
                let start = i + 1;
                let mut j = start;
                let mut escaped = false;
                let from = self.scratch.len();
                loop {
                    match line.get(j) {
                        None => {
                            return Err(DecodeError(format!(
                                "a quoted field (column {}) is not closed",
                                self.spans.len() + 1
                            )))
                        }
                        Some(&b) if b == q && line.get(j + 1) == Some(&q) => {
                            if !escaped {
                                escaped = true;
                                self.scratch.extend_from_slice(&line[start..j]);
                            }
                            self.scratch.push(q);
                            j += 2;
                        }
                        Some(&b) if b == q => break,
                        Some(&b) => {
                            if escaped {
                                self.scratch.push(b);
                            }
                            j += 1;
                        }
                    }
                }
                if escaped {
                    self.spans.push(Span { start: from, end: self.scratch.len(), escaped: true, quoted: true });
                } else {
                    self.spans.push(Span { start, end: j, escaped: false, quoted: true });
                }
                i = j + 1;
                match line.get(i) {
                    None => return Ok(()),
                    Some(&b) if b == d => i += 1,
                    Some(_) => {
                        return Err(DecodeError(format!("text after the closing quote of column {}", self.spans.len())))
                    }
                }
            } else {
                let end = memchr::memchr(d, &line[i..]).map_or(line.len(), |k| i + k);
                self.spans.push(Span { start: i, end, escaped: false, quoted: false });
                if end == line.len() {
                    return Ok(());
                }
                i = end + 1;
            }
        }
    }
}

/// Writes rows of one schema as CSV lines, straight from the columns.
#[derive(Debug, Clone)]
pub struct CsvEncoder {
    fields: Vec<FieldCodec>,
    format: CsvFormat,
    scratch: std::cell::RefCell<String>,
}

impl CsvEncoder {
    pub fn new(schema: &Schema, format: CsvFormat) -> CsvEncoder {
        CsvEncoder { fields: field_codecs(schema), format, scratch: std::cell::RefCell::new(String::new()) }
    }

    pub fn format(&self) -> &CsvFormat {
        &self.format
    }

    /// The header line (no line break): the fields' names.
    pub fn header(&self, out: &mut Vec<u8>) {
        for (i, f) in self.fields.iter().enumerate() {
            if i > 0 {
                out.push(self.format.delimiter);
            }
            self.field(f.name.as_bytes(), out);
        }
    }

    /// Appends record `row` of `batch` as a line (no line break) to `out`.
    pub fn encode_row(&self, batch: &Batch, row: usize, out: &mut Vec<u8>) {
        for (i, (c, f)) in batch.columns.iter().zip(&self.fields).enumerate() {
            if i > 0 {
                out.push(self.format.delimiter);
            }
            if !c.is_valid(row) {
                if let Some(n) = &self.format.null_literal {
                    out.extend_from_slice(n.as_bytes());
                }
                continue;
            }
            match &c.data {
                Data::Str(s) => self.field(s.get(row).as_bytes(), out),
                Data::I64(v) => {
                    let x = v.get(row).copied().unwrap_or(0);
                    match (&f.time, c.ty) {
                        (Some(fmt), DataType::Timestamp) => {
                            let mut text = self.scratch.borrow_mut();
                            text.clear();
                            fmt.format_into(x, &mut text);
                            self.field(text.as_bytes(), out);
                        }
                        _ => {
                            let _ = write!(out, "{x}");
                        }
                    }
                }
                // NaN and ±infinity as Java (and Flink's CSV format) write them.
                Data::F64(v) => match v.get(row).copied().unwrap_or(f64::NAN) {
                    d if d.is_finite() => {
                        let _ = write!(out, "{d:?}");
                    }
                    d if d.is_nan() => out.extend_from_slice(b"NaN"),
                    d if d > 0.0 => out.extend_from_slice(b"Infinity"),
                    _ => out.extend_from_slice(b"-Infinity"),
                },
                Data::Bool(v) => {
                    out.extend_from_slice(if v.get(row).copied().unwrap_or(false) { b"true" } else { b"false" })
                }
                // The checker refuses CSV of arrays (`flow::check::csv-array`).
                Data::List(_) => {}
            }
        }
    }

    /// One field, quoted when it must be: a text that reads back as a
    /// null (the null literal, or empty for a non-string type) is quoted too.
    fn field(&self, bytes: &[u8], out: &mut Vec<u8>) {
        let (d, q) = (self.format.delimiter, self.format.quote);
        let reads_as_null = self.format.null_literal.as_ref().is_some_and(|n| n.as_bytes() == bytes);
        if !reads_as_null && !bytes.iter().any(|&b| b == d || b == q || b == b'\n' || b == b'\r') {
            out.extend_from_slice(bytes);
            return;
        }
        out.push(q);
        for &b in bytes {
            if b == q {
                out.push(q);
            }
            out.push(b);
        }
        out.push(q);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Value;
    use flowc_compiler::ir::Field;

    fn schema() -> Schema {
        Schema {
            name: Some("S".into()),
            fields: vec![
                Field::new("ts", DataType::Timestamp),
                Field::new("page", DataType::String),
                Field::new("n", DataType::Int),
                Field::new("x", DataType::Double),
                Field::new("ok", DataType::Bool),
            ],
        }
    }

    fn decode(d: &mut CsvDecoder, line: &str) -> Result<Vec<Value>, DecodeError> {
        let mut b = d.batch(1);
        d.decode_into(line.as_bytes(), &mut b)?;
        Ok(b.row(0))
    }

    #[test]
    fn decodes_by_position_with_quotes() {
        let mut d = CsvDecoder::new(&schema(), CsvFormat::default());
        assert_eq!(
            decode(&mut d, "2026-11-24T22:15:00.015Z,\"/a,\"\"b\"\"\",-3,2.5,TRUE\r").unwrap(),
            vec![
                Value::Timestamp(1_795_558_500_015),
                Value::Str("/a,\"b\"".into()),
                Value::Int(-3),
                Value::Double(2.5),
                Value::Bool(true)
            ]
        );
        assert_eq!(decode(&mut d, "2026-11-24T22:15:00.015Z,\"\",0,1,false").unwrap()[1], Value::Str(String::new()));
    }

    #[test]
    fn refuses_bad_lines_and_appends_nothing() {
        let mut d = CsvDecoder::new(&schema(), CsvFormat::default());
        let mut batch = d.batch(4);
        d.decode_into(b"2026-11-24T22:15:00.015Z,/a,1,1,true", &mut batch).unwrap();
        for bad in [
            "",
            "2026-11-24T22:15:00.015Z,/a,1,1",
            "2026-11-24T22:15:00.015Z,/a,1,1,true,extra",
            "yesterday,/a,1,1,true",
            "2026-11-24T22:15:00.015Z,/a,1.5,1,true",
            "2026-11-24T22:15:00.015Z,/a,5000000000,1,true",
            "2026-11-24T22:15:00.015Z,/a,1,x,true",
            "2026-11-24T22:15:00.015Z,/a,1,1,yes",
            "2026-11-24T22:15:00.015Z,\"/a,1,1,true",
            "2026-11-24T22:15:00.015Z,\"/a\"x,1,1,true",
            "2026-11-24T22:15:00.015Z,\u{fffd}\u{0},1,1,tru",
        ] {
            assert!(d.decode_into(bad.as_bytes(), &mut batch).is_err(), "{bad:?}");
            assert_eq!(batch.len(), 1, "{bad:?}");
        }
        assert!(d.decode_into(b"2026-11-24T22:15:00.015Z,\xff,1,1,true", &mut batch).is_err());
        assert!(batch.check_layout(&schema().fields.iter().map(|f| f.ty).collect::<Vec<_>>()).is_ok());
    }

    #[test]
    fn a_header_maps_columns_by_name_and_ignores_others() {
        let mut d = CsvDecoder::new(
            &schema(),
            CsvFormat { header: true, delimiter: b';', quote: b'\'', ..CsvFormat::default() },
        );
        d.set_header(b"ok;extra;n;page;x;ts").unwrap();
        assert_eq!(
            decode(&mut d, "false;zzz;7;'it''s';0.5;2026-11-24T22:15:00.015Z").unwrap(),
            vec![
                Value::Timestamp(1_795_558_500_015),
                Value::Str("it's".into()),
                Value::Int(7),
                Value::Double(0.5),
                Value::Bool(false)
            ]
        );
        let e = d.set_header(b"ok;n;page;x").unwrap_err();
        assert!(e.0.contains("no column `ts`"), "{e}");
    }

    #[test]
    fn round_trips_what_it_writes() {
        let s = schema();
        let types: Vec<DataType> = s.fields.iter().map(|f| f.ty).collect();
        let rows = vec![
            vec![
                Value::Timestamp(1),
                Value::Str("a,b \"q\"\nline".into()),
                Value::Int(-1),
                Value::Double(1e20),
                Value::Bool(true),
            ],
            vec![
                Value::Timestamp(2),
                Value::Str(String::new()),
                Value::Int(0),
                Value::Double(-0.25),
                Value::Bool(false),
            ],
        ];
        let batch = Batch::from_values(&types, &rows).unwrap();
        let e = CsvEncoder::new(&s, CsvFormat::default());
        let mut header = Vec::new();
        e.header(&mut header);
        assert_eq!(String::from_utf8(header).unwrap(), "ts,page,n,x,ok");
        let mut d = CsvDecoder::new(&s, CsvFormat::default());
        for (r, row) in rows.iter().enumerate() {
            let mut out = Vec::new();
            e.encode_row(&batch, r, &mut out);
            assert_eq!(&decode(&mut d, std::str::from_utf8(&out).unwrap()).unwrap(), row);
        }
        let mut out = Vec::new();
        e.encode_row(&batch, 0, &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), "1970-01-01T00:00:00.001Z,\"a,b \"\"q\"\"\nline\",-1,1e20,true");
    }

    /// NaN and ±infinity are written as Java writes them (Flink's CSV
    /// format), not as Rust's `inf`, and read back.
    #[test]
    fn nan_and_infinities_are_written_as_flink_writes_them_and_read_back() {
        let s = Schema { name: None, fields: vec![Field::new("x", DataType::Double)] };
        let mut d = CsvDecoder::new(&s, CsvFormat::default());
        let e = CsvEncoder::new(&s, CsvFormat::default());
        for (x, text) in [(f64::NAN, "NaN"), (f64::INFINITY, "Infinity"), (f64::NEG_INFINITY, "-Infinity")] {
            let batch = Batch::from_values(&[DataType::Double], &[vec![Value::Double(x)]]).unwrap();
            let mut out = Vec::new();
            e.encode_row(&batch, 0, &mut out);
            assert_eq!(String::from_utf8_lossy(&out), text);
            let back = decode(&mut d, text).unwrap();
            let Value::Double(y) = back[0] else { panic!("a double: {back:?}") };
            assert!(y.to_bits() == x.to_bits() || (x.is_nan() && y.is_nan()), "{x} read back as {y}");
        }
    }

    fn nullable_schema() -> Schema {
        Schema {
            name: None,
            fields: vec![
                Field::new("s", DataType::String).with_nullable(true),
                Field::new("n", DataType::Long).with_nullable(true),
                Field::new("m", DataType::Int),
            ],
        }
    }

    #[test]
    fn nulls_by_the_null_literal_or_empty_non_strings() {
        let mut d = CsvDecoder::new(&nullable_schema(), CsvFormat::default());
        assert_eq!(decode(&mut d, ",,1").unwrap(), vec![Value::Str(String::new()), Value::Null, Value::Int(1)]);
        assert_eq!(decode(&mut d, "\"\",7,1").unwrap(), vec![Value::Str(String::new()), Value::Int(7), Value::Int(1)]);
        let e = decode(&mut d, "a,1,").unwrap_err();
        assert!(e.0.contains("`m` is null"), "{e}");
        let format = CsvFormat { null_literal: Some("\\N".into()), ..CsvFormat::default() };
        let mut d = CsvDecoder::new(&nullable_schema(), format.clone());
        assert_eq!(decode(&mut d, "\\N,\\N,2").unwrap(), vec![Value::Null, Value::Null, Value::Int(2)]);
        // Quoted, the literal is text; an empty number is a null still.
        assert_eq!(decode(&mut d, "\"\\N\",,2").unwrap(), vec![Value::Str("\\N".into()), Value::Null, Value::Int(2)]);
        assert_eq!(decode(&mut d, "\"\\N\",3,2").unwrap()[0], Value::Str("\\N".into()));
        // Written back: nulls as the literal, the literal as text quoted.
        let types: Vec<DataType> = nullable_schema().fields.iter().map(|f| f.ty).collect();
        let rows = vec![
            vec![Value::Null, Value::Null, Value::Int(1)],
            vec![Value::Str("\\N".into()), Value::Int(4), Value::Int(2)],
        ];
        let batch = Batch::from_values(&types, &rows).unwrap();
        let e = CsvEncoder::new(&nullable_schema(), format);
        let mut lines = Vec::new();
        for (r, row) in rows.iter().enumerate() {
            let mut out = Vec::new();
            e.encode_row(&batch, r, &mut out);
            assert_eq!(&decode(&mut d, std::str::from_utf8(&out).unwrap()).unwrap(), row);
            lines.push(String::from_utf8(out).unwrap());
        }
        assert_eq!(lines, vec!["\\N,\\N,1", "\"\\N\",4,2"]);
        let mut out = Vec::new();
        CsvEncoder::new(&nullable_schema(), CsvFormat::default()).encode_row(&batch, 0, &mut out);
        assert_eq!(out, b",,1");
    }

    #[test]
    fn a_record_is_open_while_a_quoted_field_is() {
        for (text, open) in [
            ("a,b,c\n", false),
            ("a,\"b\n", true),
            ("a,\"b\nc\",d\n", false),
            ("a,\"say \"\"hi\"\"\n", true),
            ("a,\"say \"\"hi\"\"\"\n", false),
            ("ab\"c,d\n", false),
            ("\"\"\n", false),
            ("\"\"\"\n", true),
        ] {
            assert_eq!(is_open(text.as_bytes(), b',', b'"'), open, "{text:?}");
        }
        // A quoted field over lines decodes with its line breaks.
        let mut d = CsvDecoder::new(&schema(), CsvFormat::default());
        let row = decode(&mut d, "2026-11-24T22:15:00.015Z,\"two\r\nlines, \"\"quoted\"\"\",1,1,true").unwrap();
        assert_eq!(row[1], Value::Str("two\r\nlines, \"quoted\"".into()));
    }
}
