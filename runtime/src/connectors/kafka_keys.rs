//! The message key and record timestamp a Kafka sink writes: `key: user`
//! (one string field: its text, as Flink's `'key.format' = 'raw'`), `key:
//! [user, region]` or one field of another type (the JSON of the fields,
//! `{"user":"a","region":"eu"}`, as `'key.format' = 'json'`), and
//! `timestamp: ts` (the record timestamp; a null leaves it to the
//! producer, as no `timestamp` does). A null text key writes no key.

use super::upsert_kafka::key_batch;
use super::ConnectorError;
use crate::codec::json::JsonEncoder;
use crate::data::{Batch, Data};
use flowc_compiler::ir::{DataType, KafkaSink, Schema};

/// How a message key is made.
#[derive(Debug, Clone)]
enum KeyCodec {
    None,
    /// Column `i`'s text.
    Text(usize),
    /// The JSON object of the columns.
    Json(Vec<usize>, JsonEncoder),
}

/// A sink's key and timestamp, per row of a batch.
#[derive(Debug, Clone)]
pub struct MessageMeta {
    key: KeyCodec,
    timestamp: Option<usize>,
    /// The key columns of the batch being written (JSON keys).
    keys: Option<Batch>,
}

impl MessageMeta {
    pub fn new(spec: &KafkaSink, schema: &Schema) -> Result<MessageMeta, ConnectorError> {
        let field = |i: usize| {
            schema
                .fields
                .get(i)
                .cloned()
                .ok_or_else(|| ConnectorError::Io(format!("sink field #{i} does not exist (a bug in flowc)")))
        };
        let key = match spec.key.as_slice() {
            [] => KeyCodec::None,
            [one] if field(*one)?.ty == DataType::String => KeyCodec::Text(*one),
            keys => {
                let fields = keys.iter().map(|k| field(*k)).collect::<Result<Vec<_>, _>>()?;
                KeyCodec::Json(keys.to_vec(), JsonEncoder::new(&Schema { name: None, fields }))
            }
        };
        if let Some(t) = spec.timestamp {
            field(t)?;
        }
        Ok(MessageMeta { key, timestamp: spec.timestamp, keys: None })
    }

    /// Whether messages get neither a key nor a timestamp.
    pub fn is_empty(&self) -> bool {
        matches!(self.key, KeyCodec::None) && self.timestamp.is_none()
    }

    /// Call before the rows of `batch`.
    pub fn begin(&mut self, batch: &Batch) {
        if let KeyCodec::Json(fields, _) = &self.key {
            self.keys = Some(key_batch(batch, fields));
        }
    }

    /// Writes row `row`'s key to `out` (cleared first); `false`: no key.
    pub fn key(&self, batch: &Batch, row: usize, out: &mut Vec<u8>) -> bool {
        out.clear();
        match &self.key {
            KeyCodec::None => false,
            KeyCodec::Text(i) => match batch.columns.get(*i) {
                Some(c) if c.is_valid(row) => match &c.data {
                    Data::Str(s) => {
                        out.extend_from_slice(s.get(row).as_bytes());
                        true
                    }
                    _ => false,
                },
                _ => false,
            },
            KeyCodec::Json(_, encoder) => match &self.keys {
                Some(keys) => {
                    encoder.encode_row(keys, row, out);
                    true
                }
                None => false,
            },
        }
    }

    /// Row `row`'s record timestamp, if the sink sets one.
    pub fn timestamp(&self, batch: &Batch, row: usize) -> Option<i64> {
        let c = batch.columns.get(self.timestamp?)?;
        match &c.data {
            Data::I64(v) if c.is_valid(row) => v.get(row).copied(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Value;
    use flowc_compiler::ir::{Delivery, Field, Format};

    fn sink(key: Vec<usize>, timestamp: Option<usize>) -> KafkaSink {
        KafkaSink {
            servers: "s".into(),
            topic: "t".into(),
            delivery: Delivery::AtLeastOnce,
            transactional_id_prefix: "p".into(),
            format: Format::Json,
            key,
            timestamp,
        }
    }

    fn schema() -> Schema {
        Schema {
            name: None,
            fields: vec![
                Field::new("user", DataType::String).with_nullable(true),
                Field::new("region", DataType::String),
                Field::new("ts", DataType::Timestamp).with_nullable(true),
                Field::new("n", DataType::Long),
            ],
        }
    }

    fn batch() -> Batch {
        let types: Vec<DataType> = schema().fields.iter().map(|f| f.ty).collect();
        Batch::from_values(
            &types,
            &[
                vec![Value::Str("a\"b".into()), Value::Str("eu".into()), Value::Timestamp(1_000), Value::Int(7)],
                vec![Value::Null, Value::Str("us".into()), Value::Null, Value::Int(8)],
            ],
        )
        .unwrap()
    }

    fn keys(spec: &KafkaSink) -> Vec<Option<String>> {
        let mut m = MessageMeta::new(spec, &schema()).unwrap();
        let b = batch();
        m.begin(&b);
        let mut out = Vec::new();
        (0..b.len()).map(|r| m.key(&b, r, &mut out).then(|| String::from_utf8(out.clone()).unwrap())).collect()
    }

    #[test]
    fn one_string_field_is_the_key_as_text() {
        assert_eq!(keys(&sink(vec![0], None)), vec![Some("a\"b".to_string()), None]);
    }

    #[test]
    fn several_fields_or_one_of_another_type_are_json() {
        assert_eq!(
            keys(&sink(vec![0, 1], None)),
            vec![
                Some(r#"{"user":"a\"b","region":"eu"}"#.to_string()),
                Some(r#"{"user":null,"region":"us"}"#.to_string())
            ]
        );
        assert_eq!(keys(&sink(vec![3], None)), vec![Some(r#"{"n":7}"#.to_string()), Some(r#"{"n":8}"#.to_string())]);
    }

    #[test]
    fn the_timestamp_comes_from_its_field_and_a_null_leaves_it_to_the_producer() {
        let m = MessageMeta::new(&sink(vec![], Some(2)), &schema()).unwrap();
        let b = batch();
        assert_eq!((m.timestamp(&b, 0), m.timestamp(&b, 1)), (Some(1_000), None));
        assert!(!m.is_empty());
        assert!(MessageMeta::new(&sink(vec![], None), &schema()).unwrap().is_empty());
        assert!(MessageMeta::new(&sink(vec![9], None), &schema()).is_err());
    }
}
