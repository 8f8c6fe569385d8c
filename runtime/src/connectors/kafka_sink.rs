//! The Kafka sink (at-least-once): an idempotent producer, `acks=all`;
//! `flush` returns only when every record handed to it is acknowledged.
//! `key:`, `timestamp:` and `headers:` set each message's key, timestamp
//! and headers (`kafka_keys`). A message over Kafka's limit follows the sink's
//! `on_error` (`sink_errors`). A null in `format: raw` is a message
//! without a value, a tombstone (as Flink's raw format writes it).

use super::kafka_keys::MessageMeta;
use super::sink_errors::SinkErrors;
use super::{ConnectorError, SinkWriter};
use crate::codec::Encoder;
use crate::data::Batch;
use flowc_compiler::ir::KafkaSink;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn kafka_err(servers: &str, e: impl std::fmt::Display) -> ConnectorError {
    ConnectorError::Kafka { servers: servers.to_string(), message: e.to_string() }
}

/// Hands one record to the producer, waiting while its queue is full:
/// backpressure from the brokers reaches the task.
pub fn send_waiting(
    producer: &ThreadedProducer<DeliveryErrors>,
    topic: &str,
    payload: &[u8],
) -> Result<(), KafkaError> {
    send_record(producer, topic, Some(payload), None, None, &[])
}

/// A message's headers for rdkafka, in order.
pub fn owned_headers(headers: &[(String, Vec<u8>)]) -> OwnedHeaders {
    headers.iter().fold(OwnedHeaders::new_with_capacity(headers.len()), |h, (key, value)| {
        h.insert(Header { key: key.as_str(), value: Some(value) })
    })
}

/// [`send_waiting`] with a message key, a record timestamp (epoch
/// milliseconds) and headers where given; a `payload` of `None` is a
/// tombstone.
pub fn send_record(
    producer: &ThreadedProducer<DeliveryErrors>,
    topic: &str,
    payload: Option<&[u8]>,
    key: Option<&[u8]>,
    timestamp: Option<i64>,
    headers: &[(String, Vec<u8>)],
) -> Result<(), KafkaError> {
    let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic);
    if !headers.is_empty() {
        record = record.headers(owned_headers(headers));
    }
    if let Some(p) = payload {
        record = record.payload(p);
    }
    if let Some(k) = key {
        record = record.key(k);
    }
    if let Some(t) = timestamp {
        record = record.timestamp(t);
    }
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                std::thread::sleep(Duration::from_millis(5));
            }
            Err((e, _)) => return Err(e),
        }
    }
}

/// Collects the first delivery failure, which fails the task.
#[derive(Default, Clone)]
pub struct DeliveryErrors(pub Arc<Mutex<Option<String>>>);

impl ClientContext for DeliveryErrors {}

impl ProducerContext for DeliveryErrors {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            let mut first = self.0.lock().unwrap_or_else(|p| p.into_inner());
            if first.is_none() {
                *first = Some(e.to_string());
            }
        }
    }
}

pub struct KafkaSinkWriter {
    servers: String,
    topic: String,
    producer: ThreadedProducer<DeliveryErrors>,
    errors: DeliveryErrors,
    encoder: Encoder,
    buf: Vec<u8>,
    /// `key:` and `timestamp:`.
    meta: MessageMeta,
    key_buf: Vec<u8>,
    /// Messages over Kafka's limit.
    bad: SinkErrors,
}

impl KafkaSinkWriter {
    /// `bad` handles the messages over Kafka's limit (by `spec.on_error`).
    pub fn new(
        spec: &KafkaSink,
        schema: &flowc_compiler::ir::Schema,
        bad: SinkErrors,
    ) -> Result<KafkaSinkWriter, ConnectorError> {
        let errors = DeliveryErrors::default();
        let limits = super::topic_limits::TopicLimits::describe(&spec.servers, &spec.topic);
        let producer: ThreadedProducer<DeliveryErrors> = ClientConfig::new()
            .set("bootstrap.servers", &spec.servers)
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("linger.ms", "5")
            .set("message.timeout.ms", "120000")
            .set("message.max.bytes", limits.producer_setting())
            .create_with_context(errors.clone())
            .map_err(|e| kafka_err(&spec.servers, e))?;
        Ok(KafkaSinkWriter {
            servers: spec.servers.clone(),
            topic: spec.topic.clone(),
            producer,
            errors,
            encoder: Encoder::new(schema, &spec.format),
            buf: Vec::with_capacity(256),
            meta: MessageMeta::new(spec, schema)?,
            key_buf: Vec::new(),
            bad: bad.with_limits(limits),
        })
    }

    fn check(&self) -> Result<(), ConnectorError> {
        match self.errors.0.lock().unwrap_or_else(|p| p.into_inner()).take() {
            Some(e) => Err(kafka_err(&self.servers, format!("delivery to `{}` failed: {e}", self.topic))),
            None => Ok(()),
        }
    }
}

impl SinkWriter for KafkaSinkWriter {
    fn write(&mut self, batch: &Batch) -> Result<(), ConnectorError> {
        self.check()?;
        self.meta.begin(batch);
        for r in 0..batch.len() {
            self.buf.clear();
            let value = if self.encoder.is_tombstone(batch, r) {
                None
            } else {
                self.encoder.encode_row(batch, r, &mut self.buf);
                Some(&self.buf[..])
            };
            let key = self.meta.key(batch, r, &mut self.key_buf).then_some(&self.key_buf[..]);
            let timestamp = self.meta.timestamp(batch, r);
            let headers = self.meta.headers(batch, r);
            let origin = batch.origins.as_ref().and_then(|o| o.get(r));
            if !self.bad.admit(value, key, &headers, timestamp, origin)? {
                continue;
            }
            send_record(&self.producer, &self.topic, value, key, timestamp, &headers)
                .map_err(|e| kafka_err(&self.servers, format!("cannot produce to `{}`: {e}", self.topic)))?;
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
