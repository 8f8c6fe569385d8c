//! Kafka metadata as schema fields (Flink SQL's `METADATA FROM`):
//! `user: string from key`, `ts: timestamp from timestamp`, `p: int from
//! partition`, `o: long from offset`, `t: string from topic`,
//! `t: string? from header("trace-id")`.
//!
//! The source's decoder reads the message value into the columns of the
//! payload fields (the schema without its metadata fields); this module
//! appends each message's metadata to columns of its own, and at the end of
//! a poll puts the columns together in the schema's order (moving them, not
//! copying values). A message whose metadata does not fit its field (no key
//! for a `string` key, a missing header for a non-nullable field, a key or
//! header that is not UTF-8) is a bad record like an undecodable value.

use crate::data::{Batch, Column, Data};
use flowc_compiler::ir::{DataType, Metadata, Schema};
use rdkafka::message::{Headers, Message};

/// Where a field of the schema comes from.
#[derive(Debug, Clone, Copy)]
enum Slot {
    /// Column `i` of the payload batch.
    Payload(usize),
    /// Metadata column `i`.
    Meta(usize),
}

#[derive(Debug, Clone)]
struct MetaField {
    name: String,
    what: Metadata,
    ty: DataType,
    nullable: bool,
}

/// Where a source's event-time field is read from, per message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeSource {
    /// Column `i` of the payload batch (its last value).
    Payload(usize),
    /// The message's timestamp.
    KafkaTimestamp,
    /// Metadata that is no timestamp (the checker refuses it).
    None,
}

/// One value of metadata, borrowed from the message.
enum MetaValue<'m> {
    Null,
    Text(&'m str),
    Int(i64),
}

/// The metadata columns of a schema, filled as messages are read.
#[derive(Debug, Clone)]
pub struct MetadataColumns {
    slots: Vec<Slot>,
    fields: Vec<MetaField>,
    columns: Vec<Column>,
}

impl MetadataColumns {
    /// `None` when the schema reads no metadata.
    pub fn new(schema: &Schema) -> Option<MetadataColumns> {
        if !schema.has_metadata() {
            return None;
        }
        let (mut payload, mut fields, mut slots) = (0, Vec::new(), Vec::new());
        for f in &schema.fields {
            match &f.metadata {
                None => {
                    slots.push(Slot::Payload(payload));
                    payload += 1;
                }
                Some(m) => {
                    slots.push(Slot::Meta(fields.len()));
                    fields.push(MetaField { name: f.name.clone(), what: m.clone(), ty: f.ty, nullable: f.nullable });
                }
            }
        }
        let mut me = MetadataColumns { slots, fields, columns: Vec::new() };
        me.reset(0);
        Some(me)
    }

    /// Empty columns for the next batch.
    pub fn reset(&mut self, rows: usize) {
        self.columns = self.fields.iter().map(|f| Column::empty(f.ty, rows)).collect();
    }

    /// Where field `field` of the schema (an event-time field) is read from.
    pub fn time_source(&self, field: usize) -> TimeSource {
        match self.slots.get(field) {
            Some(Slot::Payload(i)) => TimeSource::Payload(*i),
            Some(Slot::Meta(m)) if self.fields[*m].what == Metadata::Timestamp => TimeSource::KafkaTimestamp,
            _ => TimeSource::None,
        }
    }

    /// The value of metadata field `m` of `msg`, checked against its type.
    fn value<'m, M: Message>(&self, m: usize, msg: &'m M) -> Result<MetaValue<'m>, String> {
        let f = &self.fields[m];
        let text = |bytes: Option<&'m [u8]>, what: &str| -> Result<MetaValue<'m>, String> {
            match bytes {
                None if f.nullable => Ok(MetaValue::Null),
                None => {
                    Err(format!("field `{}`: the message has no {what} (declare it `string?` to read a null)", f.name))
                }
                Some(b) => std::str::from_utf8(b)
                    .map(MetaValue::Text)
                    .map_err(|_| format!("field `{}`: the message's {what} is not UTF-8 text", f.name)),
            }
        };
        match &f.what {
            Metadata::Key => text(msg.key(), "key"),
            Metadata::Header(name) => {
                // The last header of that name, as a map of them would keep.
                let value = msg.headers().and_then(|h| h.iter().filter(|h| h.key == name).last()).and_then(|h| h.value);
                let present = msg.headers().is_some_and(|h| h.iter().any(|h| h.key == name));
                match (present, value) {
                    // A header with a null value reads as null too.
                    (true, None) if f.nullable => Ok(MetaValue::Null),
                    (true, None) => Err(format!("field `{}`: header `{name}` has no value", f.name)),
                    (_, v) => text(v, &format!("header `{name}`")),
                }
            }
            Metadata::Timestamp => match msg.timestamp().to_millis() {
                Some(ms) => Ok(MetaValue::Int(ms)),
                None if f.nullable => Ok(MetaValue::Null),
                None => Err(format!("field `{}`: the message has no timestamp", f.name)),
            },
            Metadata::Partition => Ok(MetaValue::Int(i64::from(msg.partition()))),
            Metadata::Offset => Ok(MetaValue::Int(msg.offset())),
            Metadata::Topic => Ok(MetaValue::Text(msg.topic())),
        }
    }

    /// Appends the metadata of `msg`, all of it or, on error, nothing.
    pub fn push<M: Message>(&mut self, msg: &M) -> Result<(), String> {
        for m in 0..self.fields.len() {
            self.value(m, msg)?;
        }
        for m in 0..self.fields.len() {
            let v = self.value(m, msg)?;
            let column = &mut self.columns[m];
            match (v, &mut column.data) {
                (MetaValue::Null, _) => {
                    column.push_null();
                    continue;
                }
                (MetaValue::Text(s), Data::Str(c)) => c.push(s),
                (MetaValue::Int(i), Data::I64(c)) => c.push(i),
                _ => return Err("internal error: metadata column type (a bug in flowc)".to_string()),
            }
            column.mark_appended_valid();
        }
        Ok(())
    }

    /// The batch of the whole schema: `payload`'s columns and the metadata
    /// columns (which must have as many rows), in the schema's order.
    pub fn assemble(&mut self, payload: Batch) -> Batch {
        let Batch { timestamps, columns, .. } = payload;
        let mut payload: Vec<Option<Column>> = columns.into_iter().map(Some).collect();
        let rows = timestamps.len();
        let mut meta: Vec<Option<Column>> = std::mem::take(&mut self.columns).into_iter().map(Some).collect();
        let columns = self
            .slots
            .iter()
            .map(|s| {
                let (taken, i) = match *s {
                    Slot::Payload(i) => (payload.get_mut(i).and_then(Option::take), i),
                    Slot::Meta(i) => (meta.get_mut(i).and_then(Option::take), i),
                };
                taken.unwrap_or_else(|| {
                    // Unreachable with a batch of the payload schema; nulls keep the layout.
                    tracing::error!(column = i, "A Kafka source's batch lost a column; filling it with nulls.");
                    Column::nulls(self.fields.first().map_or(DataType::String, |f| f.ty), rows)
                })
            })
            .collect();
        self.reset(rows);
        Batch::new(timestamps, columns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Value;
    use flowc_compiler::ir::Field;
    use rdkafka::message::{Header, OwnedHeaders, OwnedMessage};
    use rdkafka::Timestamp;

    fn meta(name: &str, ty: DataType, m: Metadata, nullable: bool) -> Field {
        let mut f = Field::new(name, ty).with_nullable(nullable);
        f.metadata = Some(m);
        f
    }

    fn schema() -> Schema {
        Schema {
            name: Some("S".into()),
            fields: vec![
                meta("user", DataType::String, Metadata::Key, false),
                Field::new("page", DataType::String),
                meta("ts", DataType::Timestamp, Metadata::Timestamp, false),
                meta("p", DataType::Int, Metadata::Partition, false),
                Field::new("n", DataType::Long),
                meta("o", DataType::Long, Metadata::Offset, false),
                meta("trace", DataType::String, Metadata::Header("trace-id".into()), true),
                meta("topic", DataType::String, Metadata::Topic, false),
            ],
        }
    }

    fn message(key: Option<&[u8]>, headers: &[(&str, Option<&[u8]>)], offset: i64) -> OwnedMessage {
        let mut h = OwnedHeaders::new();
        for (k, v) in headers {
            h = h.insert(Header { key: k, value: *v });
        }
        OwnedMessage::new(
            Some(b"{}".to_vec()),
            key.map(<[u8]>::to_vec),
            "t".into(),
            Timestamp::CreateTime(1_000 + offset),
            3,
            offset,
            Some(h),
        )
    }

    fn payload_batch(rows: &[(&str, i64)]) -> Batch {
        let rows: Vec<Vec<Value>> = rows.iter().map(|(p, n)| vec![Value::Str((*p).into()), Value::Int(*n)]).collect();
        Batch::from_values(&[DataType::String, DataType::Long], &rows).unwrap()
    }

    #[test]
    fn metadata_goes_into_its_columns_in_schema_order() {
        let s = schema();
        let mut m = MetadataColumns::new(&s).unwrap();
        m.push(&message(Some(&b"alice"[..]), &[("trace-id", Some(&b"t-1"[..])), ("other", Some(&b"x"[..]))], 7))
            .unwrap();
        m.push(&message(Some(&b"bob"[..]), &[("trace-id", Some(&b"old"[..])), ("trace-id", Some(&b"t-2"[..]))], 8))
            .unwrap();
        m.push(&message(Some(&b"carol"[..]), &[], 9)).unwrap();
        let b = m.assemble(payload_batch(&[("/a", 1), ("/b", 2), ("/c", 3)]));
        let types: Vec<DataType> = s.fields.iter().map(|f| f.ty).collect();
        b.check_layout(&types).unwrap();
        assert_eq!(
            b.row(0),
            vec![
                Value::Str("alice".into()),
                Value::Str("/a".into()),
                Value::Timestamp(1_007),
                Value::Int(3),
                Value::Int(1),
                Value::Int(7),
                Value::Str("t-1".into()),
                Value::Str("t".into())
            ]
        );
        assert_eq!(b.row(1)[6], Value::Str("t-2".into()), "the last header of a name counts");
        assert_eq!(b.row(2)[6], Value::Null, "a missing header is null where the field is nullable");
        assert_eq!(b.row(2)[0], Value::Str("carol".into()));
        // The next batch starts empty.
        let next = m.assemble(payload_batch(&[]));
        assert_eq!(next.len(), 0);
        next.check_layout(&types).unwrap();
    }

    #[test]
    fn metadata_that_does_not_fit_appends_nothing() {
        let s = schema();
        let mut m = MetadataColumns::new(&s).unwrap();
        let e = m.push(&message(None, &[], 1)).unwrap_err();
        assert!(e.contains("no key"), "{e}");
        let e = m.push(&message(Some(&b"\xff"[..]), &[], 1)).unwrap_err();
        assert!(e.contains("not UTF-8"), "{e}");
        let e = m.push(&message(Some(&b"k"[..]), &[("trace-id", Some(&b"\xfe"[..]))], 1)).unwrap_err();
        assert!(e.contains("header `trace-id`"), "{e}");
        m.push(&message(Some(&b"k"[..]), &[("trace-id", None)], 2)).unwrap();
        let b = m.assemble(payload_batch(&[("/a", 1)]));
        assert_eq!(b.len(), 1);
        assert_eq!(b.row(0)[6], Value::Null);
        assert_eq!(b.row(0)[5], Value::Int(2));
    }

    #[test]
    fn the_event_time_may_be_the_kafka_timestamp() {
        let m = MetadataColumns::new(&schema()).unwrap();
        assert_eq!(m.time_source(2), TimeSource::KafkaTimestamp);
        assert_eq!(m.time_source(4), TimeSource::Payload(1));
        assert_eq!(m.time_source(5), TimeSource::None);
        assert!(MetadataColumns::new(&Schema { name: None, fields: vec![Field::new("a", DataType::Long)] }).is_none());
    }
}
