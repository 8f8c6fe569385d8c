//! Message keys both ways. A Kafka sink writes `key: user` (one string
//! field: its text, as Flink's `'key.format' = 'raw'`), `key: [user,
//! region]` or one field of another type (the JSON of the fields,
//! `{"user":"a","region":"eu"}`, as `'key.format' = 'json'`), and
//! `timestamp: ts` (the record timestamp; a null leaves it to the
//! producer, as no `timestamp` does). A null text key writes no key.
//! `headers: [trace, region]` writes each of those string fields as a
//! message header named as the field, its text the value; a null writes
//! no header (Flink SQL's writable `headers` metadata).
//!
//! A versioned source (`versioned by id`) reads a tombstone, a message
//! with a key and no value, as the deletion of that key's version at the
//! message's timestamp, as Flink's `upsert-kafka` does ([`Tombstones`]):
//! the key fields are read back from the key as a sink writes them (one
//! field: the key's text, a number's digits or a JSON object of it;
//! several: a JSON object), and the record is marked `-D`.

use super::upsert_kafka::key_batch;
use super::ConnectorError;
use crate::codec::json::{DecodeError, JsonDecoder, JsonEncoder};
use crate::data::{Batch, Data, RowKind};
use crate::record::{Value, NO_TIMESTAMP};
use flowc_compiler::ir::{DataType, KafkaSink, Schema};
use rdkafka::message::Message;

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
    /// `headers:`: each header's name and its (string) column.
    headers: Vec<(String, usize)>,
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
        if !spec.header_names.is_empty() && spec.header_names.len() != spec.headers.len() {
            return Err(ConnectorError::Io(format!(
                "{} header names for {} headers (a bug in flowc)",
                spec.header_names.len(),
                spec.headers.len()
            )));
        }
        let headers = spec
            .headers
            .iter()
            .enumerate()
            .map(|(k, i)| Ok((spec.header_name(k, &field(*i)?.name).to_string(), *i)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(MessageMeta { key, timestamp: spec.timestamp, headers, keys: None })
    }

    /// Whether messages get neither a key, a timestamp nor headers.
    pub fn is_empty(&self) -> bool {
        matches!(self.key, KeyCodec::None) && self.timestamp.is_none() && self.headers.is_empty()
    }

    /// Row `row`'s headers (name, value), those of null fields left out;
    /// empty without `headers:`.
    pub fn headers(&self, batch: &Batch, row: usize) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        for (name, i) in &self.headers {
            if let Some(c) = batch.columns.get(*i).filter(|c| c.is_valid(row)) {
                if let Data::Str(s) = &c.data {
                    out.push((name.clone(), s.get(row).as_bytes().to_vec()));
                }
            }
        }
        out
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

/// What a tombstone puts in a column of the value's batch.
#[derive(Debug, Clone)]
enum Fill {
    /// Key value `i`, read from the message key.
    Key(usize),
    /// The message's timestamp.
    Time,
    /// A null, a zero or (a `deleted: bool`) true.
    Value(Value),
}

/// How a versioned Kafka source reads tombstones into the batch of its
/// value's fields (the schema's fields not read from metadata; those are
/// appended by `kafka_metadata`, a `from key` field from the key as for
/// any message).
#[derive(Debug, Clone)]
pub struct Tombstones {
    /// Per column of the value's batch.
    fill: Vec<Fill>,
    /// The key fields among the value's, in the key's order, as JSON.
    key: JsonDecoder,
    key_fields: Vec<(String, DataType)>,
    key_row: Batch,
    /// The versioned key is one field: the message key is its text.
    single: bool,
    /// The rows of the batch being read that are tombstones.
    rows: Vec<usize>,
}

impl Tombstones {
    pub fn new(spec: &flowc_compiler::ir::Tombstones, schema: &Schema) -> Result<Tombstones, ConnectorError> {
        let bug = |what: &str| ConnectorError::Io(format!("{what} (a bug in flowc)"));
        if spec.key.is_empty() || spec.key.iter().chain([&spec.time]).any(|i| *i >= schema.fields.len()) {
            return Err(bug("the tombstones of a versioned source name fields its schema does not have"));
        }
        let mut fill = Vec::new();
        let mut key_fields = Vec::new();
        let mut key_schema = Schema { name: None, fields: Vec::new() };
        for (i, f) in schema.fields.iter().enumerate() {
            if f.metadata.is_some() {
                continue;
            }
            fill.push(if spec.key.contains(&i) {
                key_schema.fields.push(flowc_compiler::ir::Field { nested: false, ..f.clone() });
                key_fields.push((f.name.clone(), f.ty));
                Fill::Key(key_fields.len() - 1)
            } else if i == spec.time {
                Fill::Time
            } else if f.name == "deleted" && f.ty == DataType::Bool {
                Fill::Value(Value::Bool(true))
            } else if f.nullable {
                Fill::Value(Value::Null)
            } else {
                Fill::Value(zero(f.ty))
            });
        }
        let key_types: Vec<DataType> = key_fields.iter().map(|(_, t)| *t).collect();
        Ok(Tombstones {
            fill,
            key: JsonDecoder::new(&key_schema),
            key_row: Batch::empty(&key_types, 1),
            key_fields,
            single: spec.key.len() == 1,
            rows: Vec::new(),
        })
    }

    /// Appends the deletion `msg` (a message without a value) stands for
    /// to `batch`; on error (no key, a key that does not read, no
    /// timestamp) appends nothing.
    pub fn push<M: Message>(&mut self, msg: &M, batch: &mut Batch) -> Result<(), DecodeError> {
        let key = self.read_key(msg.key())?;
        let needs_time = self.fill.iter().any(|f| matches!(f, Fill::Time));
        let time = match msg.timestamp().to_millis() {
            Some(t) => t,
            None if needs_time => {
                return Err(DecodeError("a message without a value (a deletion) has no timestamp".into()))
            }
            None => NO_TIMESTAMP,
        };
        let row: Vec<Value> = self
            .fill
            .iter()
            .map(|f| match f {
                Fill::Key(i) => key.get(*i).cloned().unwrap_or(Value::Null),
                Fill::Time => Value::Timestamp(time),
                Fill::Value(v) => v.clone(),
            })
            .collect();
        let at = batch.len();
        if !batch.push_row(NO_TIMESTAMP, &row) {
            return Err(DecodeError("a deletion does not fit the source's batch (a bug in flowc)".into()));
        }
        self.rows.push(at);
        Ok(())
    }

    /// The key fields' values from the message key.
    fn read_key(&mut self, key: Option<&[u8]>) -> Result<Vec<Value>, DecodeError> {
        if self.key_fields.is_empty() {
            // Every key field is read from metadata (`id: string from key`).
            return Ok(Vec::new());
        }
        let Some(key) = key else {
            return Err(DecodeError("a message without a value (a deletion) has no key".into()));
        };
        let text = std::str::from_utf8(key)
            .map_err(|_| DecodeError("the key of a message without a value is not UTF-8 text".into()))?;
        let name = &self.key_fields[0].0;
        if self.single && self.key_fields[0].1 == DataType::String {
            return Ok(vec![Value::Str(text.to_string())]);
        }
        let quoted = || serde_json::to_string(text).unwrap_or_default();
        let attempts: Vec<String> = if !self.single || text.trim_start().starts_with('{') {
            vec![text.to_string()]
        } else {
            // One field: its text (`7`, `true`), or a quoted text (a timestamp).
            vec![format!("{{{}:{text}}}", quoted_name(name)), format!("{{{}:{}}}", quoted_name(name), quoted())]
        };
        let mut last = DecodeError(String::new());
        for a in attempts {
            self.key_row.truncate(0);
            match self.key.decode_into(a.as_bytes(), &mut self.key_row) {
                Ok(()) => return Ok(self.key_row.row(0)),
                Err(e) => last = e,
            }
        }
        Err(DecodeError(format!("the key of a message without a value (a deletion), {text:?}, does not read: {last}")))
    }

    /// Drops the tombstones at or after row `len` (the batch was cut back).
    pub fn truncate(&mut self, len: usize) {
        self.rows.retain(|r| *r < len);
    }

    /// Marks the tombstones of the poll as deletions in its batch (the
    /// value's and the metadata's columns assembled), and forgets them.
    pub fn mark(&mut self, batch: &mut Batch) {
        if self.rows.is_empty() {
            return;
        }
        let mut kinds = batch.kinds.take().unwrap_or_else(|| vec![RowKind::Insert; batch.len()]);
        kinds.resize(batch.len(), RowKind::Insert);
        for r in self.rows.drain(..) {
            if let Some(k) = kinds.get_mut(r) {
                *k = RowKind::Delete;
            }
        }
        batch.kinds = Some(kinds);
    }
}

/// A JSON object key.
fn quoted_name(name: &str) -> String {
    serde_json::to_string(name).unwrap_or_default()
}

/// The zero of a type: what a tombstone puts in a field that cannot be null.
fn zero(ty: DataType) -> Value {
    match ty {
        DataType::String => Value::Str(String::new()),
        DataType::Int | DataType::Long => Value::Int(0),
        DataType::Double => Value::Double(0.0),
        DataType::Bool => Value::Bool(false),
        DataType::Timestamp => Value::Timestamp(0),
        DataType::Array(_) => Value::Array(Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
            headers: Vec::new(),
            on_error: flowc_compiler::ir::ErrorPolicy::Fail,
            header_names: Vec::new(),
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

#[cfg(test)]
mod tombstone_tests {
    use super::*;
    use flowc_compiler::ir::{Field, Metadata};
    use rdkafka::message::{OwnedMessage, Timestamp};

    fn message(key: Option<&str>, ts: Option<i64>) -> OwnedMessage {
        let ts = ts.map_or(Timestamp::NotAvailable, Timestamp::CreateTime);
        OwnedMessage::new(None, key.map(|k| k.as_bytes().to_vec()), "t".into(), ts, 0, 7, None)
    }

    /// `{ updated_at: timestamp, id: long, name: string, tier: string?, deleted: bool }`.
    fn customers() -> Schema {
        Schema {
            name: None,
            fields: vec![
                Field::new("updated_at", DataType::Timestamp),
                Field::new("id", DataType::Long),
                Field::new("name", DataType::String),
                Field::new("tier", DataType::String).with_nullable(true),
                Field::new("deleted", DataType::Bool),
            ],
        }
    }

    fn spec(key: Vec<usize>, time: usize) -> flowc_compiler::ir::Tombstones {
        flowc_compiler::ir::Tombstones { key, time }
    }

    #[test]
    fn a_tombstone_is_a_delete_row_with_its_key_and_time() {
        let schema = customers();
        let mut t = Tombstones::new(&spec(vec![1], 0), &schema).expect("fits");
        let json = JsonDecoder::new(&schema);
        let mut b = json.batch(4);
        json.decode_into(
            br#"{"updated_at":"2026-11-30T20:00:00.000Z","id":3,"name":"a","tier":"gold","deleted":false}"#,
            &mut b,
        )
        .expect("a version");
        // The key as text (a number's digits), and as a sink writes a JSON key.
        t.push(&message(Some("3"), Some(5_000)), &mut b).expect("a deletion");
        t.push(&message(Some(r#"{"id":4}"#), Some(6_000)), &mut b).expect("a deletion");
        // No key, a key that does not read, no timestamp: errors, nothing appended.
        assert!(t.push(&message(None, Some(1)), &mut b).is_err());
        assert!(t.push(&message(Some("x"), Some(1)), &mut b).is_err());
        assert!(t.push(&message(Some("5"), None), &mut b).is_err());
        assert_eq!(b.len(), 3);
        t.mark(&mut b);
        assert_eq!(b.kinds, Some(vec![RowKind::Insert, RowKind::Delete, RowKind::Delete]));
        assert_eq!(
            b.row(1),
            [Value::Timestamp(5_000), Value::Int(3), Value::Str(String::new()), Value::Null, Value::Bool(true)]
        );
        assert_eq!(b.row(2)[1], Value::Int(4));
        // The next poll's batch starts without deletions.
        let mut next = json.batch(1);
        t.mark(&mut next);
        assert_eq!(next.kinds, None);
    }

    #[test]
    fn a_string_key_is_the_text_and_several_fields_are_json() {
        let schema = Schema {
            name: None,
            fields: vec![
                Field::new("ts", DataType::Timestamp),
                Field::new("region", DataType::String),
                Field::new("id", DataType::Long),
            ],
        };
        let mut one = Tombstones::new(&spec(vec![1], 0), &schema).expect("fits");
        let mut b = Batch::empty(&[DataType::Timestamp, DataType::String, DataType::Long], 2);
        one.push(&message(Some(r#"{"region":"eu"}"#), Some(1)), &mut b).expect("text, as it is");
        assert_eq!(b.row(0)[1], Value::Str(r#"{"region":"eu"}"#.into()));
        let mut two = Tombstones::new(&spec(vec![1, 2], 0), &schema).expect("fits");
        two.push(&message(Some(r#"{"id":9,"region":"us"}"#), Some(2)), &mut b).expect("json");
        assert_eq!(b.row(1), [Value::Timestamp(2), Value::Str("us".into()), Value::Int(9)]);
        assert!(two.push(&message(Some("9"), Some(2)), &mut b).is_err(), "two fields need an object");
        // A cut-back batch forgets the tombstones past its end.
        two.truncate(1);
        one.truncate(1);
        let mut marked = b.clone();
        two.mark(&mut marked);
        assert_eq!(marked.kinds, None);
    }

    #[test]
    fn a_key_read_from_metadata_needs_no_parsing() {
        let mut id = Field::new("id", DataType::String);
        id.metadata = Some(Metadata::Key);
        let schema = Schema { name: None, fields: vec![Field::new("ts", DataType::Timestamp), id] };
        let mut t = Tombstones::new(&spec(vec![1], 0), &schema).expect("fits");
        // The value's batch has `ts` only; `kafka_metadata` appends the key.
        let mut b = Batch::empty(&[DataType::Timestamp], 1);
        t.push(&message(Some("anything"), Some(42)), &mut b).expect("a deletion");
        assert_eq!(b.row(0), [Value::Timestamp(42)]);
        assert!(Tombstones::new(&spec(vec![5], 0), &schema).is_err(), "a key the schema lacks");
    }
}
