//! JSON objects straight into batch columns, and batch rows back to JSON,
//! driven by the job's schema.
//!
//! The decoder streams through the object with serde_json's deserializer
//! and appends each field of the schema to its column as it meets it: a
//! string's bytes are copied from the input (unescaped in serde_json's
//! scratch buffer only when they hold escapes), numbers and timestamps are
//! parsed in place. No `serde_json::Value` and no `String` per field is
//! made. Unknown fields are skipped; a missing field, a value of the wrong
//! type or a timestamp that does not match its pattern makes the record
//! undecodable, and what it had appended is rolled back. A field of a
//! nullable type (`string?`) that is missing or `null` is a null; the
//! encoder writes a null as `null`. The fields of a nested record
//! (`payload.user.id`, flattened by the checker) are read from and written
//! to nested objects ([`layout`](super::json_layout)); a nested object
//! that is `null` or missing makes its fields missing. An array
//! (`array<string>`) is a JSON array whose elements are appended straight
//! to the list column's element column; an element of another type makes
//! the record undecodable, and so does a `null` element unless the
//! elements are nullable (`array<string?>`: then it is a null element,
//! written back as `null`).
//!
//! JSON has no number for NaN and ±infinity: a `double` that is one is
//! written as the string `"NaN"`, `"Infinity"` or `"-Infinity"`, as Flink's
//! JSON format writes it (Jackson's default), and those three strings are
//! read back as the doubles they name. So every value of every type can be
//! written, and reads back as it was.

use super::json_layout::{self, EncodeStep, Node};
use crate::data::{Batch, Column, Data};
use crate::record::NO_TIMESTAMP;
use flowc_compiler::ir::{DataType, Schema, TimestampFormat};
use flowc_compiler::timefmt::TimeFormat;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use std::fmt;
use std::io::Write as _;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DecodeError(pub String);

/// How one field is read and written.
#[derive(Debug, Clone)]
pub(super) struct FieldCodec {
    pub(super) name: String,
    ty: DataType,
    /// For timestamps written as text.
    time: Option<TimeFormat>,
    /// `null` and a missing field are nulls, not errors.
    nullable: bool,
    /// For an array: how its elements are read and written.
    element: Option<Box<FieldCodec>>,
    /// An element of the array field `name`.
    in_array: bool,
}

fn field_codecs(schema: &Schema) -> Vec<FieldCodec> {
    schema
        .fields
        .iter()
        .map(|f| {
            let time = match &f.timestamp_format {
                Some(TimestampFormat::Pattern(p)) if f.ty.element().unwrap_or(f.ty) == DataType::Timestamp => {
                    TimeFormat::new(p).ok()
                }
                _ => None,
            };
            let element = f.ty.element().map(|ty| {
                Box::new(FieldCodec {
                    name: f.name.clone(),
                    ty,
                    time: time.clone(),
                    nullable: f.ty.element_nullable(),
                    element: None,
                    in_array: true,
                })
            });
            FieldCodec { name: f.name.clone(), ty: f.ty, time, nullable: f.nullable, element, in_array: false }
        })
        .collect()
}

/// Reads JSON objects into batches of one schema.
#[derive(Debug, Clone)]
pub struct JsonDecoder {
    fields: Vec<FieldCodec>,
    types: Vec<DataType>,
    /// The keys of the top-level object: a field, or a nested object.
    tree: Vec<(String, Node)>,
}

impl JsonDecoder {
    pub fn new(schema: &Schema) -> JsonDecoder {
        JsonDecoder {
            fields: field_codecs(schema),
            types: schema.fields.iter().map(|f| f.ty).collect(),
            tree: json_layout::tree(schema),
        }
    }

    /// An empty batch of this schema.
    pub fn batch(&self, rows: usize) -> Batch {
        Batch::empty(&self.types, rows)
    }

    /// Decodes one record and appends it to `batch` (of this schema, with
    /// no event time); on error appends nothing. Never panics.
    pub fn decode_into(&self, bytes: &[u8], batch: &mut Batch) -> Result<(), DecodeError> {
        let before = batch.len();
        let result = (|| {
            if batch.columns.len() != self.fields.len() {
                return Err(DecodeError("the batch does not have this schema (a bug in flowc)".into()));
            }
            // Validated whole at once (SIMD) so that the parser need not
            // check each string it reads: `from_slice` validated every
            // string on its own, 10 % of a file source's time.
            let text = simdutf8::basic::from_utf8(bytes).map_err(|_| invalid_utf8(bytes))?;
            let mut de = serde_json::Deserializer::from_str(text);
            // Which fields have a value (the columns are appended in any
            // order): on the stack for the usual schema, not a heap
            // allocation per record.
            let mut on_stack = [false; 64];
            let mut on_heap = Vec::new();
            let seen: &mut [bool] = if self.fields.len() <= on_stack.len() {
                &mut on_stack[..self.fields.len()]
            } else {
                on_heap.resize(self.fields.len(), false);
                &mut on_heap
            };
            ObjectSeed {
                entries: &self.tree,
                fields: &self.fields,
                columns: &mut batch.columns,
                seen: &mut *seen,
                top: true,
            }
            .deserialize(&mut de)
            .map_err(|e| DecodeError(e.to_string()))?;
            de.end().map_err(|e| DecodeError(e.to_string()))?;
            for (i, s) in seen.iter().enumerate() {
                if !s {
                    if !self.fields[i].nullable {
                        return Err(DecodeError(format!("missing field `{}`", self.fields[i].name)));
                    }
                    batch.columns[i].push_null();
                }
            }
            Ok(())
        })();
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
}

/// The error of a record that is not UTF-8, and where it stops being so.
fn invalid_utf8(bytes: &[u8]) -> DecodeError {
    match std::str::from_utf8(bytes) {
        Err(e) => DecodeError(format!("invalid UTF-8 at byte {}", e.valid_up_to())),
        Ok(_) => DecodeError("invalid UTF-8".into()),
    }
}

/// An object: the top-level record, or a nested record of it.
struct ObjectSeed<'a> {
    entries: &'a [(String, Node)],
    fields: &'a [FieldCodec],
    columns: &'a mut [Column],
    seen: &'a mut [bool],
    /// The record itself, which must be an object; a nested one may be `null`.
    top: bool,
}

impl<'de> DeserializeSeed<'de> for ObjectSeed<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        if self.top {
            d.deserialize_map(self)
        } else {
            d.deserialize_any(self)
        }
    }
}

impl<'de> Visitor<'de> for ObjectSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    /// A nested record that is `null`: its fields are missing.
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        if self.top {
            return Err(E::invalid_type(de::Unexpected::Unit, &self));
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match self.entries.iter().find(|(k, _)| *k == *key).map(|(_, n)| n) {
                Some(Node::Leaf(i)) => {
                    let i = *i;
                    let (Some(codec), Some(column)) = (self.fields.get(i), self.columns.get_mut(i)) else {
                        return Err(de::Error::custom("internal error: field index (a bug in flowc)"));
                    };
                    if self.seen[i] {
                        // A repeated key: the last value counts, as before.
                        column.pop();
                    }
                    map.next_value_seed(ValueSeed { codec, column: &mut *column })?;
                    // A value appended to the data: present, if the column tracks nulls.
                    column.mark_appended_valid();
                    self.seen[i] = true;
                }
                Some(Node::Group(children)) => {
                    map.next_value_seed(ObjectSeed {
                        entries: children,
                        fields: self.fields,
                        columns: &mut *self.columns,
                        seen: &mut *self.seen,
                        top: false,
                    })?;
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

struct ValueSeed<'a> {
    codec: &'a FieldCodec,
    column: &'a mut Column,
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl ValueSeed<'_> {
    fn push_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        match &mut self.column.data {
            Data::I64(c) => c.push(v),
            _ => return Err(E::custom("internal error: column type (a bug in flowc)")),
        }
        Ok(())
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.codec.in_array {
            write!(f, "a {} element of array `{}`", self.codec.ty, self.codec.name)
        } else if self.codec.ty.is_array() {
            write!(f, "an {} (a JSON array) for field `{}`", self.codec.ty, self.codec.name)
        } else {
            write!(f, "a {} for field `{}`", self.codec.ty, self.codec.name)
        }
    }

    /// A JSON array: each element appended to the list column's elements,
    /// then the row closed. A failure leaves the row open; the decoder's
    /// rollback drops what it appended.
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        if self.codec.element.is_none() || !matches!(self.column.data, Data::List(_)) {
            return Err(de::Error::invalid_type(de::Unexpected::Seq, &self));
        }
        let ValueSeed { codec, column } = self;
        let (Some(codec), Data::List(list)) = (codec.element.as_deref(), &mut column.data) else {
            return Err(de::Error::custom("internal error: array column (a bug in flowc)"));
        };
        while seq.next_element_seed(ValueSeed { codec, column: list.values_mut() })?.is_some() {}
        list.values_mut().mark_appended_valid();
        list.close_row();
        Ok(())
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<(), E> {
        match (self.codec.ty, &self.codec.time, &mut self.column.data) {
            (DataType::String, _, Data::Str(c)) => {
                c.push(s);
                Ok(())
            }
            // NaN and ±infinity, as the encoder (and Flink's JSON format) writes them.
            (DataType::Double, _, Data::F64(c)) if special_double(s).is_some() => {
                c.push(special_double(s).unwrap_or(f64::NAN));
                Ok(())
            }
            (DataType::Timestamp, Some(t), _) => match t.parse(s) {
                Some(ts) => self.push_i64(ts),
                None => {
                    Err(E::custom(format!("field `{}`: `{s}` does not match the timestamp pattern", self.codec.name)))
                }
            },
            _ => Err(E::invalid_type(de::Unexpected::Str(s), &self)),
        }
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        match (self.codec.ty, &mut self.column.data) {
            (DataType::Int, _) if i32::try_from(v).is_ok() => self.push_i64(v),
            (DataType::Long, _) => self.push_i64(v),
            (DataType::Double, Data::F64(c)) => {
                c.push(v as f64);
                Ok(())
            }
            (DataType::Timestamp, _) if self.codec.time.is_none() => self.push_i64(v),
            _ => Err(E::invalid_type(de::Unexpected::Signed(v), &self)),
        }
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        match i64::try_from(v) {
            Ok(i) => self.visit_i64(i),
            Err(_) => Err(E::invalid_type(de::Unexpected::Unsigned(v), &self)),
        }
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        match (self.codec.ty, &mut self.column.data) {
            (DataType::Double, Data::F64(c)) => {
                c.push(v);
                Ok(())
            }
            _ => Err(E::invalid_type(de::Unexpected::Float(v), &self)),
        }
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        if self.codec.in_array && !self.codec.nullable {
            return Err(E::custom(format!(
                "an element of array `{}` is null, and its elements are not nullable (write `array<{}?>` in the schema)",
                self.codec.name, self.codec.ty
            )));
        }
        // Elements before this one were appended without their bits.
        self.column.mark_appended_valid();
        if !self.codec.nullable {
            return Err(E::custom(format!(
                "field `{}` is null, and its type is not nullable (write `{}?` in the schema)",
                self.codec.name, self.codec.ty
            )));
        }
        self.column.push_null();
        Ok(())
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        match (self.codec.ty, &mut self.column.data) {
            (DataType::Bool, Data::Bool(c)) => {
                c.push(v);
                Ok(())
            }
            _ => Err(E::invalid_type(de::Unexpected::Bool(v), &self)),
        }
    }
}

/// Writes rows of one schema as JSON objects, straight from the columns.
#[derive(Debug, Clone)]
pub struct JsonEncoder {
    fields: Vec<FieldCodec>,
    /// The fields in order, with the nested objects they are written in;
    /// each key (`"name":`) escaped once.
    plan: Vec<EncodeStep>,
    /// Where timestamps are formatted, reused.
    scratch: std::cell::RefCell<String>,
}

impl JsonEncoder {
    pub fn new(schema: &Schema) -> JsonEncoder {
        let fields = field_codecs(schema);
        let plan = json_layout::encode_plan(schema, |k| format!("{}:", escape(k)));
        JsonEncoder { fields, plan, scratch: std::cell::RefCell::new(String::with_capacity(32)) }
    }

    /// Appends record `row` of `batch` (of this schema) as a JSON object
    /// (no newline) to `out`.
    pub fn encode_row(&self, batch: &Batch, row: usize, out: &mut Vec<u8>) {
        out.push(b'{');
        let mut first = true;
        for step in &self.plan {
            match step {
                EncodeStep::Open(key) => {
                    if !first {
                        out.push(b',');
                    }
                    out.extend_from_slice(key.as_bytes());
                    out.push(b'{');
                    first = true;
                }
                EncodeStep::Close => {
                    out.push(b'}');
                    first = false;
                }
                EncodeStep::Field(i, key) => {
                    let (Some(c), Some(f)) = (batch.columns.get(*i), self.fields.get(*i)) else { continue };
                    if !first {
                        out.push(b',');
                    }
                    first = false;
                    out.extend_from_slice(key.as_bytes());
                    self.value(c, f, row, out);
                }
            }
        }
        out.push(b'}');
    }

    /// Appends the value of `c` at `row` (field `f`).
    fn value(&self, c: &Column, f: &FieldCodec, row: usize, out: &mut Vec<u8>) {
        if !c.is_valid(row) {
            out.extend_from_slice(b"null");
            return;
        }
        match &c.data {
            Data::Str(s) => escape_into(s.get(row), out),
            Data::I64(v) => {
                let x = v.get(row).copied().unwrap_or(0);
                match (&f.time, c.ty) {
                    (Some(fmt), DataType::Timestamp) => {
                        let mut text = self.scratch.borrow_mut();
                        text.clear();
                        fmt.format_into(x, &mut text);
                        out.push(b'"');
                        out.extend_from_slice(text.as_bytes());
                        out.push(b'"');
                    }
                    _ => {
                        let _ = write!(out, "{x}");
                    }
                }
            }
            Data::F64(v) => match v.get(row) {
                Some(d) if d.is_finite() => {
                    let _ = write!(out, "{d:?}");
                }
                Some(d) if d.is_nan() => out.extend_from_slice(b"\"NaN\""),
                Some(d) if *d > 0.0 => out.extend_from_slice(b"\"Infinity\""),
                Some(_) => out.extend_from_slice(b"\"-Infinity\""),
                None => out.extend_from_slice(b"null"),
            },
            Data::Bool(v) => {
                out.extend_from_slice(if v.get(row).copied().unwrap_or(false) { b"true" } else { b"false" })
            }
            Data::List(l) => {
                out.push(b'[');
                if let Some(e) = f.element.as_deref() {
                    let (start, end) = l.range(row);
                    for j in start..end {
                        if j > start {
                            out.push(b',');
                        }
                        self.value(l.values(), e, j, out);
                    }
                }
                out.push(b']');
            }
        }
    }
}

/// The double a JSON string names: `"NaN"`, `"Infinity"`, `"-Infinity"`.
fn special_double(s: &str) -> Option<f64> {
    match s {
        "NaN" => Some(f64::NAN),
        "Infinity" => Some(f64::INFINITY),
        "-Infinity" => Some(f64::NEG_INFINITY),
        _ => None,
    }
}

fn escape(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len() + 2);
    escape_into(s, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

/// Appends `s` as a JSON string, escaped as serde_json escapes it.
fn escape_into(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..=0x1f => {
                out.extend_from_slice(&bytes[start..i]);
                let _ = write!(out, "\\u{:04x}", b);
                start = i + 1;
                continue;
            }
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(esc);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Value;
    use flowc_compiler::ir::Field;

    fn click_schema() -> Schema {
        Schema {
            name: Some("ClickEvent".into()),
            fields: vec![Field::new("timestamp", DataType::Timestamp), Field::new("page", DataType::String)],
        }
    }

    fn decode(d: &JsonDecoder, bytes: &[u8]) -> Result<Vec<Value>, DecodeError> {
        let mut b = d.batch(1);
        d.decode_into(bytes, &mut b)?;
        assert_eq!(b.len(), 1);
        Ok(b.row(0))
    }

    fn encode(schema: &Schema, row: Vec<Value>) -> Vec<u8> {
        let types: Vec<DataType> = schema.fields.iter().map(|f| f.ty).collect();
        let b = Batch::from_values(&types, &[row]).expect("fits");
        let mut buf = Vec::new();
        JsonEncoder::new(schema).encode_row(&b, 0, &mut buf);
        buf
    }

    #[test]
    fn decodes_a_click_event_and_ignores_unknown_fields() {
        let d = JsonDecoder::new(&click_schema());
        let row =
            decode(&d, br#"{"page":"/index","extra":[1,{"a":2}],"timestamp":"2026-11-24T22:15:00.015Z"}"#).unwrap();
        assert_eq!(row, vec![Value::Timestamp(1_795_558_500_015), Value::Str("/index".into())]);
    }

    #[test]
    fn round_trips() {
        let s = click_schema();
        let row = vec![Value::Timestamp(1_795_558_500_015), Value::Str("/sh\"op\n\u{1}é".into())];
        let buf = encode(&s, row.clone());
        assert_eq!(
            String::from_utf8_lossy(&buf),
            r#"{"timestamp":"2026-11-24T22:15:00.015Z","page":"/sh\"op\n\u0001é"}"#
        );
        assert_eq!(decode(&JsonDecoder::new(&s), &buf).unwrap(), row);
    }

    #[test]
    fn escapes_as_serde_json_does() {
        let all: String = (0u8..128).map(char::from).chain("é€😀".chars()).collect();
        let mut out = Vec::new();
        escape_into(&all, &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), serde_json::to_string(&all).unwrap());
    }

    #[test]
    fn decodes_a_schema_wider_than_the_stack_set_of_seen_fields() {
        let fields: Vec<Field> = (0..70).map(|i| Field::new(format!("f{i}"), DataType::Long)).collect();
        let d = JsonDecoder::new(&Schema { name: None, fields });
        let mut batch = d.batch(1);
        let full: Vec<String> = (0..70).map(|i| format!("\"f{i}\":{i}")).collect();
        d.decode_into(format!("{{{}}}", full.join(",")).as_bytes(), &mut batch).unwrap();
        assert_eq!(batch.row(0)[69], Value::Int(69));
        let err = d.decode_into(format!("{{{}}}", full[..69].join(",")).as_bytes(), &mut batch).unwrap_err();
        assert_eq!(err.0, "missing field `f69`");
        assert_eq!(batch.len(), 1);
    }

    #[test]
    fn refuses_bad_records_and_appends_nothing() {
        let d = JsonDecoder::new(&click_schema());
        let mut batch = d.batch(4);
        d.decode_into(br#"{"page":"/a","timestamp":"2026-11-24T22:15:00.015Z"}"#, &mut batch).unwrap();
        for bad in [
            &b""[..],
            b"not json",
            b"[1,2]",
            br#"{"page":"/index"}"#,
            br#"{"page":"/b","timestamp":1}"#,
            br#"{"page":1,"timestamp":"2026-11-24T22:15:00.015Z"}"#,
            br#"{"page":"/a","timestamp":"24-11-2026 10:15:00:015"}"#,
            br#"{"page":"/a","timestamp":"2026-11-24T22:15:00.015Z"} trailing"#,
            br#"{"timestamp":"2026-11-24T22:15:00.015Z","page":"/c","x":[}"#,
            b"\xff\xfe",
        ] {
            assert!(d.decode_into(bad, &mut batch).is_err(), "{:?}", String::from_utf8_lossy(bad));
            assert_eq!(batch.len(), 1);
            assert!(batch.check_layout(&[DataType::Timestamp, DataType::String]).is_ok(), "rolled back");
        }
        // Not UTF-8 inside a string: refused, saying where.
        let err = d.decode_into(b"{\"page\":\"/\xc3\",\"timestamp\":\"2026-11-24T22:15:00.015Z\"}", &mut batch);
        assert_eq!(err.map_err(|e| e.0), Err("invalid UTF-8 at byte 10".to_string()));
        assert_eq!(batch.len(), 1);
        d.decode_into(br#"{"page":"/d","page":"/e","timestamp":"2026-11-24T22:15:00.016Z"}"#, &mut batch).unwrap();
        assert_eq!(batch.row(1), vec![Value::Timestamp(1_795_558_500_016), Value::Str("/e".into())]);
        assert!(batch.check_layout(&[DataType::Timestamp, DataType::String]).is_ok());
    }

    #[test]
    fn nullable_fields_take_null_or_absence_and_others_refuse_them() {
        let s = Schema {
            name: None,
            fields: vec![
                Field::new("user", DataType::String).with_nullable(true),
                Field::new("n", DataType::Long).with_nullable(true),
                Field::new("page", DataType::String),
            ],
        };
        let d = JsonDecoder::new(&s);
        let mut batch = d.batch(4);
        d.decode_into(br#"{"user":"a","n":1,"page":"/a"}"#, &mut batch).unwrap();
        d.decode_into(br#"{"user":null,"page":"/b"}"#, &mut batch).unwrap();
        d.decode_into(br#"{"n":3,"user":"c","page":"/c"}"#, &mut batch).unwrap();
        for bad in [&br#"{"user":"x","n":1,"page":null}"#[..], br#"{"user":"x","n":1}"#, br#"{"user":1,"page":"/x"}"#] {
            let e = d.decode_into(bad, &mut batch).expect_err("refused");
            assert_eq!(batch.len(), 3, "{e}");
        }
        assert!(d.decode_into(br#"{"page":null}"#, &mut batch).expect_err("refused").0.contains("write `string?`"));
        assert!(batch.check_layout(&[DataType::String, DataType::Long, DataType::String]).is_ok());
        assert_eq!(batch.row(1), vec![Value::Null, Value::Null, Value::Str("/b".into())]);
        assert_eq!(batch.row(2), vec![Value::Str("c".into()), Value::Int(3), Value::Str("/c".into())]);
        let mut out = Vec::new();
        JsonEncoder::new(&s).encode_row(&batch, 1, &mut out);
        assert_eq!(String::from_utf8_lossy(&out), r#"{"user":null,"n":null,"page":"/b"}"#);
    }

    #[test]
    fn nested_records_are_read_from_and_written_to_nested_objects() {
        let nested = |name: &str, ty, nullable| Field { nested: true, ..Field::new(name, ty).with_nullable(nullable) };
        let s = Schema {
            name: None,
            fields: vec![
                Field::new("id", DataType::Long),
                nested("payload.user.id", DataType::Long, false),
                nested("payload.user.name", DataType::String, true),
                nested("payload.kind", DataType::String, false),
                Field::new("page", DataType::String),
            ],
        };
        let d = JsonDecoder::new(&s);
        let mut batch = d.batch(4);
        let text = br#"{"payload":{"kind":"k","x":[1],"user":{"name":"ana","id":7}},"id":1,"page":"/a"}"#;
        d.decode_into(text, &mut batch).unwrap();
        d.decode_into(br#"{"id":2,"page":"/b","payload":{"user":{"id":8},"kind":"j"}}"#, &mut batch).unwrap();
        assert_eq!(
            batch.row(0),
            vec![
                Value::Int(1),
                Value::Int(7),
                Value::Str("ana".into()),
                Value::Str("k".into()),
                Value::Str("/a".into())
            ]
        );
        assert_eq!(batch.row(1)[2], Value::Null, "a nullable nested field may be absent");
        for (bad, why) in [
            (&br#"{"id":3,"page":"/c","payload":{"kind":"k"}}"#[..], "missing field `payload.user.id`"),
            (br#"{"id":3,"page":"/c","payload":null}"#, "missing field `payload.user.id`"),
            (br#"{"id":3,"page":"/c","payload":{"kind":"k","user":5}}"#, "a JSON object"),
            (br#"{"id":3,"page":"/c","payload":{"kind":"k","user":{"id":"x"}}}"#, "payload.user.id"),
        ] {
            let e = d.decode_into(bad, &mut batch).expect_err("refused");
            assert!(e.0.contains(why), "{e}");
            assert_eq!(batch.len(), 2);
            assert!(
                batch
                    .check_layout(&[
                        DataType::Long,
                        DataType::Long,
                        DataType::String,
                        DataType::String,
                        DataType::String
                    ])
                    .is_ok(),
                "rolled back"
            );
        }
        let mut out = Vec::new();
        let e = JsonEncoder::new(&s);
        e.encode_row(&batch, 0, &mut out);
        assert_eq!(
            String::from_utf8_lossy(&out),
            r#"{"id":1,"payload":{"user":{"id":7,"name":"ana"},"kind":"k"},"page":"/a"}"#
        );
        out.clear();
        e.encode_row(&batch, 1, &mut out);
        assert_eq!(
            String::from_utf8_lossy(&out),
            r#"{"id":2,"payload":{"user":{"id":8,"name":null},"kind":"j"},"page":"/b"}"#
        );
        let mut again = d.batch(1);
        d.decode_into(&out, &mut again).unwrap();
        assert_eq!(again.row(0), batch.row(1), "round trip");
    }

    #[test]
    fn arrays_are_json_arrays_and_a_bad_element_is_a_bad_record() {
        use flowc_compiler::ir::Elem;
        let s = Schema {
            name: None,
            fields: vec![
                Field::new("id", DataType::Long),
                Field::new("tags", DataType::Array(Elem::STRING)),
                Field::new("seen", DataType::Array(Elem::TIMESTAMP)).with_nullable(true),
                Field::new("n", DataType::Array(Elem::DOUBLE)).with_nullable(true),
            ],
        };
        let d = JsonDecoder::new(&s);
        let mut batch = d.batch(4);
        let text = br#"{"id":1,"tags":["a","b\"c"],"seen":["2026-11-24T22:15:00.015Z"],"n":[1,2.5]}"#;
        d.decode_into(text, &mut batch).unwrap();
        d.decode_into(br#"{"id":2,"tags":[],"seen":null}"#, &mut batch).unwrap();
        let strs = |v: &[&str]| Value::Array(v.iter().map(|s| Value::Str(s.to_string())).collect());
        assert_eq!(
            batch.row(0),
            vec![
                Value::Int(1),
                strs(&["a", "b\"c"]),
                Value::Array(vec![Value::Timestamp(1_795_558_500_015)]),
                Value::Array(vec![Value::Double(1.0), Value::Double(2.5)])
            ]
        );
        assert_eq!(batch.row(1), vec![Value::Int(2), strs(&[]), Value::Null, Value::Null]);
        for (bad, why) in [
            (&br#"{"id":3,"tags":["a",1]}"#[..], "a string element of array `tags`"),
            (br#"{"id":3,"tags":["a",null]}"#, "an element of array `tags` is null"),
            (br#"{"id":3,"tags":"a"}"#, "an array<string> (a JSON array) for field `tags`"),
            (br#"{"id":3,"tags":null}"#, "write `array<string>?`"),
            (br#"{"id":3,"tags":["x"],"seen":["yesterday"]}"#, "does not match the timestamp pattern"),
            (br#"{"id":3,"tags":["x", "y"],"n":[1,"2"]}"#, "a double element of array `n`"),
            (br#"{"id":[1],"tags":["x"]}"#, "a long for field `id`"),
        ] {
            let e = d.decode_into(bad, &mut batch).expect_err("refused");
            assert!(e.0.contains(why), "{e}");
            assert_eq!(batch.len(), 2);
            let types: Vec<DataType> = s.fields.iter().map(|f| f.ty).collect();
            assert!(batch.check_layout(&types).is_ok(), "rolled back");
            let Data::List(tags) = &batch.columns[1].data else { panic!("a list column") };
            assert_eq!(tags.values().len(), 2, "no element of a refused record is left: {bad:?}");
        }
        let mut out = Vec::new();
        let e = JsonEncoder::new(&s);
        e.encode_row(&batch, 0, &mut out);
        assert_eq!(
            String::from_utf8_lossy(&out),
            r#"{"id":1,"tags":["a","b\"c"],"seen":["2026-11-24T22:15:00.015Z"],"n":[1.0,2.5]}"#
        );
        let mut again = d.batch(1);
        d.decode_into(&out, &mut again).unwrap();
        assert_eq!(again.row(0), batch.row(0), "round trip");
        out.clear();
        e.encode_row(&batch, 1, &mut out);
        assert_eq!(String::from_utf8_lossy(&out), r#"{"id":2,"tags":[],"seen":null,"n":null}"#);
    }

    #[test]
    fn null_elements_of_nullable_elements_decode_and_encode_as_null() {
        use flowc_compiler::ir::Elem;
        let s = Schema {
            name: None,
            fields: vec![
                Field::new("xs", DataType::Array(Elem::LONG.with_nulls(true))),
                Field::new("tags", DataType::Array(Elem::STRING.with_nulls(true))).with_nullable(true),
                Field::new("strict", DataType::Array(Elem::LONG)),
            ],
        };
        let d = JsonDecoder::new(&s);
        let mut batch = d.batch(4);
        let lines: [&[u8]; 4] = [
            br#"{"xs":[1,null,3],"tags":[null,"a",null,null,"b"],"strict":[1]}"#,
            br#"{"xs":[null],"tags":null,"strict":[]}"#,
            br#"{"xs":[4,5],"tags":["",null],"strict":[2,3]}"#,
            br#"{"xs":[],"tags":[],"strict":[]}"#,
        ];
        for (i, line) in lines.iter().enumerate() {
            d.decode_into(line, &mut batch).unwrap();
            // A refused record in between leaves no element and no bit behind.
            let e = d.decode_into(br#"{"xs":[null,7,null],"tags":["x",null],"strict":[1,null]}"#, &mut batch);
            assert!(e.expect_err("refused").0.contains("write `array<long?>`"), "line {i}");
            let types: Vec<DataType> = s.fields.iter().map(|f| f.ty).collect();
            assert!(batch.check_layout(&types).is_ok(), "line {i}");
        }
        let l = |v: &[Option<i64>]| Value::Array(v.iter().map(|x| x.map_or(Value::Null, Value::Int)).collect());
        let t = |v: &[Option<&str>]| {
            Value::Array(v.iter().map(|x| x.map_or(Value::Null, |s| Value::Str(s.to_string()))).collect())
        };
        assert_eq!(
            batch.row(0),
            vec![l(&[Some(1), None, Some(3)]), t(&[None, Some("a"), None, None, Some("b")]), l(&[Some(1)])]
        );
        assert_eq!(batch.row(1), vec![l(&[None]), Value::Null, l(&[])]);
        assert_eq!(batch.row(2), vec![l(&[Some(4), Some(5)]), t(&[Some(""), None]), l(&[Some(2), Some(3)])]);
        assert_eq!(batch.row(3), vec![l(&[]), t(&[]), l(&[])]);
        let e = JsonEncoder::new(&s);
        for (i, line) in lines.iter().enumerate() {
            let mut out = Vec::new();
            e.encode_row(&batch, i, &mut out);
            assert_eq!(String::from_utf8_lossy(&out), String::from_utf8_lossy(line), "written back as read");
        }
    }

    #[test]
    fn numbers_follow_the_schema() {
        let s = Schema {
            name: None,
            fields: vec![
                Field::new("i", DataType::Int),
                Field::new("l", DataType::Long),
                Field::new("d", DataType::Double),
                Field::new("b", DataType::Bool),
            ],
        };
        let d = JsonDecoder::new(&s);
        assert_eq!(
            decode(&d, br#"{"i":1,"l":-5000000000,"d":2,"b":true}"#).unwrap(),
            vec![Value::Int(1), Value::Int(-5_000_000_000), Value::Double(2.0), Value::Bool(true)]
        );
        assert!(decode(&d, br#"{"i":5000000000,"l":1,"d":2,"b":true}"#).is_err());
        assert!(decode(&d, br#"{"i":1.5,"l":1,"d":2,"b":true}"#).is_err());
        let out = encode(&s, vec![Value::Int(1), Value::Int(-2), Value::Double(1e20), Value::Bool(true)]);
        assert_eq!(String::from_utf8_lossy(&out), r#"{"i":1,"l":-2,"d":1e20,"b":true}"#);
    }

    /// NaN and ±infinity have no JSON number: they are written as Flink
    /// writes them (`"NaN"`, `"Infinity"`, `"-Infinity"`), not as a `null`
    /// that a non-nullable `double` could not read back, and read back.
    #[test]
    fn nan_and_infinities_are_written_as_flink_writes_them_and_read_back() {
        let s = Schema {
            name: None,
            fields: vec![
                Field::new("d", DataType::Double),
                Field::new("ds", DataType::Array(flowc_compiler::ir::Elem::DOUBLE)),
            ],
        };
        let d = JsonDecoder::new(&s);
        for (x, text) in [(f64::NAN, "\"NaN\""), (f64::INFINITY, "\"Infinity\""), (f64::NEG_INFINITY, "\"-Infinity\"")]
        {
            let row = vec![Value::Double(x), Value::Array(vec![Value::Double(1.5), Value::Double(x)])];
            let out = encode(&s, row);
            assert_eq!(String::from_utf8_lossy(&out), format!(r#"{{"d":{text},"ds":[1.5,{text}]}}"#));
            let back = decode(&d, &out).expect("reads back");
            let Value::Double(y) = back[0] else { panic!("a double: {back:?}") };
            assert!(y.to_bits() == x.to_bits() || (x.is_nan() && y.is_nan()), "{x} read back as {y}");
        }
        // Other strings are no double.
        for bad in [r#"{"d":"nan","ds":[]}"#, r#"{"d":"1.5","ds":[]}"#, r#"{"d":1,"ds":["inf"]}"#] {
            assert!(decode(&d, bad.as_bytes()).is_err(), "{bad}");
        }
    }
}
