//! JSON objects to rows and back, driven by the job's schema.
//!
//! The decoder streams through the object with serde_json and fills the
//! row by field name, without building a `serde_json::Value` first. Unknown
//! fields are skipped; a missing field, a value of the wrong type or a
//! timestamp that does not match its pattern makes the record undecodable.

use crate::record::{Row, Value};
use flowc_compiler::ir::{DataType, Schema, TimestampFormat};
use flowc_compiler::timefmt::TimeFormat;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DecodeError(pub String);

/// How one field is read and written.
#[derive(Clone)]
struct FieldCodec {
    name: String,
    ty: DataType,
    /// For timestamps written as text.
    time: Option<TimeFormat>,
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
            FieldCodec { name: f.name.clone(), ty: f.ty, time }
        })
        .collect()
}

/// Reads JSON objects into rows of one schema.
#[derive(Clone)]
pub struct JsonDecoder {
    fields: Vec<FieldCodec>,
}

impl JsonDecoder {
    pub fn new(schema: &Schema) -> JsonDecoder {
        JsonDecoder { fields: field_codecs(schema) }
    }

    /// Decodes one record; never panics.
    pub fn decode(&self, bytes: &[u8]) -> Result<Row, DecodeError> {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let row = RowSeed { fields: &self.fields }.deserialize(&mut de).map_err(|e| DecodeError(e.to_string()))?;
        de.end().map_err(|e| DecodeError(e.to_string()))?;
        Ok(row)
    }
}

struct RowSeed<'a> {
    fields: &'a [FieldCodec],
}

impl<'de> DeserializeSeed<'de> for RowSeed<'_> {
    type Value = Row;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Row, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RowSeed<'_> {
    type Value = Row;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Row, A::Error> {
        let mut slots: Vec<Option<Value>> = vec![None; self.fields.len()];
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match self.fields.iter().position(|f| f.name == *key) {
                Some(i) => slots[i] = Some(map.next_value_seed(ValueSeed(&self.fields[i]))?),
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        slots
            .into_iter()
            .zip(self.fields)
            .map(|(v, f)| v.ok_or_else(|| de::Error::custom(format!("missing field `{}`", f.name))))
            .collect()
    }
}

struct ValueSeed<'a>(&'a FieldCodec);

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a {} for field `{}`", self.0.ty, self.0.name)
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Value, E> {
        match (self.0.ty, &self.0.time) {
            (DataType::String, _) => Ok(Value::Str(s.to_string())),
            (DataType::Timestamp, Some(t)) => t.parse(s).map(Value::Timestamp).ok_or_else(|| {
                E::custom(format!("field `{}`: `{s}` does not match the timestamp pattern", self.0.name))
            }),
            _ => Err(E::invalid_type(de::Unexpected::Str(s), &self)),
        }
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        match self.0.ty {
            DataType::Int if i32::try_from(v).is_ok() => Ok(Value::Int(v)),
            DataType::Long => Ok(Value::Int(v)),
            DataType::Double => Ok(Value::Double(v as f64)),
            DataType::Timestamp if self.0.time.is_none() => Ok(Value::Timestamp(v)),
            _ => Err(E::invalid_type(de::Unexpected::Signed(v), &self)),
        }
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        match i64::try_from(v) {
            Ok(i) => self.visit_i64(i),
            Err(_) => Err(E::invalid_type(de::Unexpected::Unsigned(v), &self)),
        }
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        match self.0.ty {
            DataType::Double => Ok(Value::Double(v)),
            _ => Err(E::invalid_type(de::Unexpected::Float(v), &self)),
        }
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        match self.0.ty {
            DataType::Bool => Ok(Value::Bool(v)),
            _ => Err(E::invalid_type(de::Unexpected::Bool(v), &self)),
        }
    }
}

/// Writes rows of one schema as JSON objects.
#[derive(Clone)]
pub struct JsonEncoder {
    fields: Vec<FieldCodec>,
    /// `"name":` for each field, escaped once.
    keys: Vec<String>,
}

impl JsonEncoder {
    pub fn new(schema: &Schema) -> JsonEncoder {
        let fields = field_codecs(schema);
        let keys = fields.iter().map(|f| format!("{}:", escape(&f.name))).collect();
        JsonEncoder { fields, keys }
    }

    /// Appends one record as a JSON object (no newline) to `out`.
    pub fn encode(&self, row: &Row, out: &mut Vec<u8>) {
        out.push(b'{');
        let mut text = String::new();
        for (i, (v, f)) in row.iter().zip(&self.fields).enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(self.keys[i].as_bytes());
            match v {
                Value::Str(s) => out.extend_from_slice(escape(s).as_bytes()),
                Value::Int(n) => out.extend_from_slice(n.to_string().as_bytes()),
                Value::Double(d) if d.is_finite() => out.extend_from_slice(format!("{d:?}").as_bytes()),
                Value::Double(_) => out.extend_from_slice(b"null"),
                Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
                Value::Timestamp(t) => match &f.time {
                    Some(fmt) => {
                        text.clear();
                        out.push(b'"');
                        fmt.format_into(*t, &mut text);
                        out.extend_from_slice(text.as_bytes());
                        out.push(b'"');
                    }
                    None => out.extend_from_slice(t.to_string().as_bytes()),
                },
            }
        }
        out.push(b'}');
    }
}

fn escape(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowc_compiler::ir::Field;

    fn click_schema() -> Schema {
        Schema {
            name: Some("ClickEvent".into()),
            fields: vec![Field::new("timestamp", DataType::Timestamp), Field::new("page", DataType::String)],
        }
    }

    #[test]
    fn decodes_a_click_event_and_ignores_unknown_fields() {
        let d = JsonDecoder::new(&click_schema());
        let row = d.decode(br#"{"page":"/index","extra":[1,{"a":2}],"timestamp":"2026-11-24T22:15:00.015Z"}"#).unwrap();
        assert_eq!(row, vec![Value::Timestamp(1_795_558_500_015), Value::Str("/index".into())]);
    }

    #[test]
    fn round_trips() {
        let s = click_schema();
        let row = vec![Value::Timestamp(1_795_558_500_015), Value::Str("/sh\"op".into())];
        let mut buf = Vec::new();
        JsonEncoder::new(&s).encode(&row, &mut buf);
        assert_eq!(String::from_utf8_lossy(&buf), r#"{"timestamp":"2026-11-24T22:15:00.015Z","page":"/sh\"op"}"#);
        assert_eq!(JsonDecoder::new(&s).decode(&buf).unwrap(), row);
    }

    #[test]
    fn refuses_bad_records() {
        let d = JsonDecoder::new(&click_schema());
        for bad in [
            &b""[..],
            b"not json",
            b"[1,2]",
            br#"{"page":"/index"}"#,
            br#"{"page":1,"timestamp":"2026-11-24T22:15:00.015Z"}"#,
            br#"{"page":"/a","timestamp":"24-11-2026 10:15:00:015"}"#,
            br#"{"page":"/a","timestamp":"2026-11-24T22:15:00.015Z"} trailing"#,
            b"\xff\xfe",
        ] {
            assert!(d.decode(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
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
            d.decode(br#"{"i":1,"l":-5000000000,"d":2,"b":true}"#).unwrap(),
            vec![Value::Int(1), Value::Int(-5_000_000_000), Value::Double(2.0), Value::Bool(true)]
        );
        assert!(d.decode(br#"{"i":5000000000,"l":1,"d":2,"b":true}"#).is_err());
        assert!(d.decode(br#"{"i":1.5,"l":1,"d":2,"b":true}"#).is_err());
    }
}
