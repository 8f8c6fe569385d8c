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
//! encoder writes a null as `null`.

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
struct FieldCodec {
    name: String,
    ty: DataType,
    /// For timestamps written as text.
    time: Option<TimeFormat>,
    /// `null` and a missing field are nulls, not errors.
    nullable: bool,
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

/// Reads JSON objects into batches of one schema.
#[derive(Debug, Clone)]
pub struct JsonDecoder {
    fields: Vec<FieldCodec>,
    types: Vec<DataType>,
}

impl JsonDecoder {
    pub fn new(schema: &Schema) -> JsonDecoder {
        JsonDecoder { fields: field_codecs(schema), types: schema.fields.iter().map(|f| f.ty).collect() }
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
            let mut de = serde_json::Deserializer::from_slice(bytes);
            RowSeed { fields: &self.fields, columns: &mut batch.columns }
                .deserialize(&mut de)
                .map_err(|e| DecodeError(e.to_string()))?;
            de.end().map_err(|e| DecodeError(e.to_string()))
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

struct RowSeed<'a> {
    fields: &'a [FieldCodec],
    columns: &'a mut [Column],
}

impl<'de> DeserializeSeed<'de> for RowSeed<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RowSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        // Which fields have a value (the columns are appended in any order).
        let mut seen = vec![false; self.fields.len()];
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match self.fields.iter().position(|f| f.name == *key) {
                Some(i) => {
                    if seen[i] {
                        // A repeated key: the last value counts, as before.
                        self.columns[i].pop();
                    }
                    map.next_value_seed(ValueSeed { codec: &self.fields[i], column: &mut self.columns[i] })?;
                    // A value appended to the data: present, if the column tracks nulls.
                    self.columns[i].mark_appended_valid();
                    seen[i] = true;
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        for (i, s) in seen.iter().enumerate() {
            if !s {
                if !self.fields[i].nullable {
                    return Err(de::Error::custom(format!("missing field `{}`", self.fields[i].name)));
                }
                self.columns[i].push_null();
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
        write!(f, "a {} for field `{}`", self.codec.ty, self.codec.name)
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<(), E> {
        match (self.codec.ty, &self.codec.time, &mut self.column.data) {
            (DataType::String, _, Data::Str(c)) => {
                c.push(s);
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
    /// `"name":` for each field, escaped once.
    keys: Vec<String>,
    /// Where timestamps are formatted, reused.
    scratch: std::cell::RefCell<String>,
}

impl JsonEncoder {
    pub fn new(schema: &Schema) -> JsonEncoder {
        let fields = field_codecs(schema);
        let keys = fields.iter().map(|f| format!("{}:", escape(&f.name))).collect();
        JsonEncoder { fields, keys, scratch: std::cell::RefCell::new(String::with_capacity(32)) }
    }

    /// Appends record `row` of `batch` (of this schema) as a JSON object
    /// (no newline) to `out`.
    pub fn encode_row(&self, batch: &Batch, row: usize, out: &mut Vec<u8>) {
        out.push(b'{');
        for (i, (c, f)) in batch.columns.iter().zip(&self.fields).enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(self.keys[i].as_bytes());
            if !c.is_valid(row) {
                out.extend_from_slice(b"null");
                continue;
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
                    _ => out.extend_from_slice(b"null"),
                },
                Data::Bool(v) => {
                    out.extend_from_slice(if v.get(row).copied().unwrap_or(false) { b"true" } else { b"false" })
                }
            }
        }
        out.push(b'}');
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
        let out = encode(&s, vec![Value::Int(1), Value::Int(-2), Value::Double(f64::NAN), Value::Bool(false)]);
        assert_eq!(String::from_utf8_lossy(&out), r#"{"i":1,"l":-2,"d":null,"b":false}"#);
        let out = encode(&s, vec![Value::Int(1), Value::Int(-2), Value::Double(1e20), Value::Bool(true)]);
        assert_eq!(String::from_utf8_lossy(&out), r#"{"i":1,"l":-2,"d":1e20,"b":true}"#);
    }
}
