//! The Kafka sink of an upsert stream, as Flink's `upsert-kafka`: the
//! message key is the JSON of the stream's key fields (`{"user":"a"}`),
//! the value the row's JSON for `+I` and `+U`; `-U` writes nothing (the
//! `+U` that follows replaces it) and `-D` a tombstone (a null value).
//! A topic compacted by key then holds the final table. `timestamp: ts`
//! and `headers: [a, b]` set the record timestamp and headers as on the
//! plain sink.
//!
//! At-least-once, like the plain Kafka sink: an idempotent producer with
//! `acks=all`, `flush` waiting for every acknowledgement. Writing a row
//! twice leaves the same table, so no transactions are needed. A message
//! over Kafka's limit follows the sink's `on_error` (`sink_errors`).

use super::kafka::DeliveryErrors;
use super::sink_errors::SinkErrors;
use super::{ConnectorError, SinkWriter};
use crate::codec::json::JsonEncoder;
use crate::data::{Batch, RowKind};
use flowc_compiler::ir::{Schema, UpsertKafkaSink};
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use std::time::Duration;

pub struct UpsertKafkaSinkWriter {
    servers: String,
    topic: String,
    key: Vec<usize>,
    producer: ThreadedProducer<DeliveryErrors>,
    errors: DeliveryErrors,
    key_encoder: JsonEncoder,
    encoder: JsonEncoder,
    key_buf: Vec<u8>,
    buf: Vec<u8>,
    /// `timestamp:` (the key is the stream's, never `key:`).
    meta: super::kafka_keys::MessageMeta,
    /// Messages over Kafka's limit.
    bad: SinkErrors,
}

fn kafka_err(servers: &str, e: impl std::fmt::Display) -> ConnectorError {
    ConnectorError::Kafka { servers: servers.to_string(), message: e.to_string() }
}

impl UpsertKafkaSinkWriter {
    /// `bad` handles the messages over Kafka's limit (by the sink's `on_error`).
    pub fn new(
        spec: &UpsertKafkaSink,
        schema: &Schema,
        bad: SinkErrors,
    ) -> Result<UpsertKafkaSinkWriter, ConnectorError> {
        let servers = &spec.sink.servers;
        let mut key_fields = Vec::new();
        for k in &spec.key {
            let f = schema
                .fields
                .get(*k)
                .ok_or_else(|| ConnectorError::Io(format!("upsert key field #{k} does not exist (a bug in flowc)")))?;
            key_fields.push(f.clone());
        }
        let errors = DeliveryErrors::default();
        let limits = super::topic_limits::TopicLimits::describe(servers, &spec.sink.topic);
        let producer: ThreadedProducer<DeliveryErrors> = ClientConfig::new()
            .set("bootstrap.servers", servers)
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("linger.ms", "5")
            .set("message.timeout.ms", "120000")
            .set("message.max.bytes", limits.producer_setting())
            .create_with_context(errors.clone())
            .map_err(|e| kafka_err(servers, e))?;
        Ok(UpsertKafkaSinkWriter {
            servers: servers.clone(),
            topic: spec.sink.topic.clone(),
            key: spec.key.clone(),
            producer,
            errors,
            key_encoder: JsonEncoder::new(&Schema { name: None, fields: key_fields }),
            encoder: JsonEncoder::new(schema),
            key_buf: Vec::with_capacity(64),
            buf: Vec::with_capacity(256),
            meta: super::kafka_keys::MessageMeta::new(&spec.sink, schema)?,
            bad: bad.with_limits(limits),
        })
    }

    fn check(&self) -> Result<(), ConnectorError> {
        match self.errors.0.lock().unwrap_or_else(|p| p.into_inner()).take() {
            Some(e) => Err(kafka_err(&self.servers, format!("delivery to `{}` failed: {e}", self.topic))),
            None => Ok(()),
        }
    }

    /// Hands one message to the producer, waiting while its queue is full.
    fn send(
        &self,
        payload: Option<&[u8]>,
        timestamp: Option<i64>,
        headers: &[(String, Vec<u8>)],
    ) -> Result<(), KafkaError> {
        let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(&self.topic).key(&self.key_buf[..]);
        if !headers.is_empty() {
            record = record.headers(super::kafka_sink::owned_headers(headers));
        }
        if let Some(p) = payload {
            record = record.payload(p);
        }
        if let Some(t) = timestamp {
            record = record.timestamp(t);
        }
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err((e, _)) => return Err(e),
            }
        }
    }
}

/// The key columns of `batch`, as a batch of their own (for the key's JSON).
pub fn key_batch(batch: &Batch, key: &[usize]) -> Batch {
    let columns = key.iter().filter_map(|k| batch.columns.get(*k).cloned()).collect();
    Batch::new(Vec::new(), columns)
}

impl SinkWriter for UpsertKafkaSinkWriter {
    fn write(&mut self, batch: &Batch) -> Result<(), ConnectorError> {
        self.check()?;
        let keys = key_batch(batch, &self.key);
        for r in 0..batch.len() {
            let kind = batch.kind(r);
            if kind == RowKind::UpdateBefore {
                continue;
            }
            self.key_buf.clear();
            self.key_encoder.encode_row(&keys, r, &mut self.key_buf);
            let payload = if kind == RowKind::Delete {
                None
            } else {
                self.buf.clear();
                self.encoder.encode_row(batch, r, &mut self.buf);
                Some(std::mem::take(&mut self.buf))
            };
            let timestamp = self.meta.timestamp(batch, r);
            let headers = self.meta.headers(batch, r);
            let origin = batch.origins.as_ref().and_then(|o| o.get(r));
            let admitted = self.bad.admit(payload.as_deref(), Some(&self.key_buf), &headers, timestamp, origin);
            let sent = match admitted {
                Ok(true) => self.send(payload.as_deref(), timestamp, &headers),
                Ok(false) => Ok(()),
                Err(e) => {
                    if let Some(p) = payload {
                        self.buf = p;
                    }
                    return Err(e);
                }
            };
            if let Some(p) = payload {
                self.buf = p;
            }
            sent.map_err(|e| kafka_err(&self.servers, format!("cannot produce to `{}`: {e}", self.topic)))?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), ConnectorError> {
        self.producer
            .flush(Duration::from_secs(120))
            .map_err(|e| kafka_err(&self.servers, format!("flushing `{}`: {e}", self.topic)))?;
        self.bad.flush()?;
        self.check()
    }
}
