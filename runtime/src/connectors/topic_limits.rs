//! What a Kafka topic refuses, read from its configuration when a sink
//! opens (an admin `DescribeConfigs`), so that such a record is refused as
//! the sink encodes it and follows the sink's `on_error` — rather than at
//! delivery, where it fails the task, or, for an exactly-once sink, at the
//! commit of a completed checkpoint, which every restore would fail again.
//!
//! - `max.message.bytes`: a topic may take less than the 1,000,000 bytes
//!   flowc's producers send (`message_size`). The producer's own
//!   `message.max.bytes`, which also caps a batch, is set to the smaller,
//!   and a message must fit in it with a batch's header.
//! - `message.timestamp.after.max.ms` and `.before.max.ms` (Kafka 3.6;
//!   before, `message.timestamp.difference.max.ms` both ways): under
//!   `CreateTime`, a record timestamp (a sink's `timestamp:`) further ahead
//!   of or behind the broker's clock is refused. Kafka 4 refuses one more
//!   than an hour ahead by default. A timestamp ahead is checked against
//!   the clock as the record is encoded (it only gets nearer); one behind,
//!   with ten minutes to spare for the time until it is delivered.
//!
//! A topic that cannot be described (it does not exist yet, or the client
//! may not read its configuration) is taken to have flowc's limit and no
//! timestamp bounds, as before; that is logged.

use super::message_size;
use super::ConnectorError;
use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use std::time::Duration;

/// A record batch's header (format 2), which the topic's
/// `max.message.bytes` counts with the records.
const BATCH_OVERHEAD: usize = 61;

/// librdkafka's lowest `message.max.bytes`.
const LOWEST_PRODUCER_LIMIT: usize = 1000;

/// What is left for a record behind the clock to be delivered in.
const BEHIND_MARGIN_MS: i64 = 10 * 60 * 1000;

const TIMEOUT: Duration = Duration::from_secs(30);

/// What one topic takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicLimits {
    /// The producer's `message.max.bytes`: flowc's, or the topic's if smaller.
    pub producer_max_bytes: usize,
    /// The topic's own `max.message.bytes`, if below flowc's.
    topic_max_bytes: Option<usize>,
    /// How far a record timestamp may be ahead of and behind the clock, in
    /// milliseconds (`CreateTime` topics).
    after_ms: Option<i64>,
    before_ms: Option<i64>,
}

impl Default for TopicLimits {
    /// flowc's limit, and no timestamp bounds.
    fn default() -> TopicLimits {
        TopicLimits {
            producer_max_bytes: message_size::MAX_MESSAGE_BYTES,
            topic_max_bytes: None,
            after_ms: None,
            before_ms: None,
        }
    }
}

impl TopicLimits {
    /// The limits of `topic` on `servers`, from its configuration; the
    /// defaults (logged) when it cannot be read.
    pub fn describe(servers: &str, topic: &str) -> TopicLimits {
        match describe(servers, topic) {
            Ok(config) => TopicLimits::from_config(|k| config.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())),
            Err(e) => {
                tracing::warn!(topic, servers, error = %e, "Cannot read the topic's configuration: its own message size and timestamp limits are not checked before delivery.");
                TopicLimits::default()
            }
        }
    }

    /// From a topic's configuration entries (`get(name)`: its value).
    pub fn from_config<'a>(get: impl Fn(&str) -> Option<&'a str>) -> TopicLimits {
        let num = |k: &str| get(k).and_then(|v| v.trim().parse::<i64>().ok());
        let topic_max_bytes =
            num("max.message.bytes").map(|n| n.max(0) as usize).filter(|&n| n < message_size::MAX_MESSAGE_BYTES);
        let create_time = get("message.timestamp.type").is_none_or(|t| t == "CreateTime");
        let difference = num("message.timestamp.difference.max.ms");
        let bound = |k: &str| num(k).or(difference).filter(|&ms| create_time && (0..i64::MAX).contains(&ms));
        TopicLimits {
            producer_max_bytes: topic_max_bytes
                .map_or(message_size::MAX_MESSAGE_BYTES, |n| n.max(LOWEST_PRODUCER_LIMIT)),
            topic_max_bytes,
            after_ms: bound("message.timestamp.after.max.ms"),
            before_ms: bound("message.timestamp.before.max.ms"),
        }
    }

    /// Whether a message of `len` bytes of value and key fits in the topic
    /// (flowc's limit, and the topic's own).
    pub fn fits(&self, len: usize) -> bool {
        message_size::fits(len) && self.topic_max_bytes.is_none_or(|l| message_size::fits_in(len + BATCH_OVERHEAD, l))
    }

    /// By how many bytes a message of `len` bytes is over the topic's limit
    /// (0: it fits).
    pub fn excess(&self, len: usize) -> usize {
        let own = self.topic_max_bytes.map_or(0, |l| message_size::excess_over(len + BATCH_OVERHEAD, l));
        message_size::excess(len).max(own)
    }

    /// Whether record timestamps are bounded.
    pub fn bounds_timestamps(&self) -> bool {
        self.after_ms.is_some() || self.before_ms.is_some()
    }

    /// `producer_max_bytes` as the producer setting's text.
    pub fn producer_setting(&self) -> String {
        self.producer_max_bytes.to_string()
    }

    /// Why the topic would refuse a message of `value` (none: a
    /// tombstone), `key`, `headers` bytes of headers
    /// ([`message_size::headers_bytes`]) and record timestamp `timestamp`
    /// at clock time `now_ms`, if it would.
    pub fn refuse(
        &self,
        value: Option<&[u8]>,
        key: Option<&[u8]>,
        headers: usize,
        timestamp: Option<i64>,
        now_ms: i64,
    ) -> Option<String> {
        if let Some(why) = message_size::over_limit(value, key, headers) {
            return Some(why);
        }
        let (v, k) = (value.map_or(0, <[u8]>::len), key.map_or(0, <[u8]>::len));
        if let Some(limit) = self.topic_max_bytes {
            if !message_size::fits_in(v + k + headers + BATCH_OVERHEAD, limit) {
                return Some(format!(
                    "{} is over the topic's limit of {limit} bytes (its `max.message.bytes`, counting a batch's \
                     header and the record's overhead)",
                    message_size::sizes(v, k, headers)
                ));
            }
        }
        let t = timestamp?;
        if let Some(after) = self.after_ms {
            if t > now_ms.saturating_add(after) {
                return Some(format!(
                    "the record timestamp {t} is {} ms ahead of the clock, more than the topic's \
                     `message.timestamp.after.max.ms` of {after}",
                    t.saturating_sub(now_ms)
                ));
            }
        }
        if let Some(before) = self.before_ms {
            if t < now_ms.saturating_sub(before).saturating_add(BEHIND_MARGIN_MS) {
                return Some(format!(
                    "the record timestamp {t} is {} ms behind the clock, too near the topic's \
                     `message.timestamp.before.max.ms` of {before} to be delivered (10 minutes are kept to spare)",
                    now_ms.saturating_sub(t)
                ));
            }
        }
        None
    }
}

/// The configuration entries of `topic`: (name, value).
fn describe(servers: &str, topic: &str) -> Result<Vec<(String, String)>, ConnectorError> {
    let err = |e: String| ConnectorError::Kafka { servers: servers.to_string(), message: e };
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", servers)
        .create()
        .map_err(|e| err(format!("cannot create an admin client: {e}")))?;
    let opts = AdminOptions::new().request_timeout(Some(TIMEOUT));
    let results = futures::executor::block_on(admin.describe_configs([&ResourceSpecifier::Topic(topic)], &opts))
        .map_err(|e| err(format!("describing the configuration of `{topic}`: {e}")))?;
    let mut out = Vec::new();
    for r in results {
        let resource = r.map_err(|code| err(format!("describing the configuration of `{topic}`: {code}")))?;
        out.extend(resource.entries.into_iter().filter_map(|e| Some((e.name, e.value?))));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(entries: &[(&str, &str)]) -> TopicLimits {
        TopicLimits::from_config(|k| entries.iter().find(|(n, _)| *n == k).map(|(_, v)| *v))
    }

    #[test]
    fn a_topic_below_flowcs_limit_lowers_the_producers_and_refuses_larger_messages() {
        let l = limits(&[("max.message.bytes", "20000")]);
        assert_eq!(l.producer_max_bytes, 20000);
        let fits = vec![b'x'; 20000 - 64 - BATCH_OVERHEAD - 3];
        assert_eq!(l.refuse(Some(&fits), Some(b"abc"), 0, None, 0), None);
        let m = l.refuse(Some(&fits), Some(b"abcd"), 0, None, 0).expect("one byte over");
        assert!(
            m.starts_with("a message of 19872 bytes of value and 4 of key is over the topic's limit of 20000"),
            "{m}"
        );
        // Headers count as a key does.
        assert_eq!(l.refuse(Some(&fits), None, 3, None, 0), None);
        let m = l.refuse(Some(&fits), None, 4, None, 0).expect("one byte over");
        assert!(
            m.starts_with("a message of 19872 bytes of value, 0 of key and 4 of headers is over the topic's"),
            "{m}"
        );
        // Above flowc's own: flowc's holds.
        let l = limits(&[("max.message.bytes", "1048588")]);
        assert_eq!(l, TopicLimits::default());
        assert!(l.refuse(Some(&vec![b'x'; 1_000_000]), None, 0, None, 0).is_some());
        assert_eq!(limits(&[("max.message.bytes", "10")]).producer_max_bytes, LOWEST_PRODUCER_LIMIT);
    }

    #[test]
    fn a_create_time_topic_refuses_timestamps_beyond_its_bounds() {
        let now = 1_795_558_500_000;
        let hour = 3_600_000;
        let l = limits(&[
            ("message.timestamp.type", "CreateTime"),
            ("message.timestamp.after.max.ms", "3600000"),
            ("message.timestamp.before.max.ms", "9223372036854775807"),
        ]);
        assert_eq!(l.refuse(Some(b"{}"), None, 0, Some(now + hour), now), None);
        assert_eq!(l.refuse(Some(b"{}"), None, 0, Some(0), now), None, "no bound behind");
        assert_eq!(l.refuse(Some(b"{}"), None, 0, None, now), None, "the producer's time");
        let m = l.refuse(Some(b"{}"), None, 0, Some(now + hour + 1), now).expect("ahead");
        assert!(m.contains("3600001 ms ahead") && m.contains("`message.timestamp.after.max.ms` of 3600000"), "{m}");
        // Before Kafka 3.6: one bound both ways; behind, with the margin.
        let l = limits(&[("message.timestamp.difference.max.ms", "86400000")]);
        assert!(l.refuse(None, Some(b"k"), 0, Some(now - 86_400_000 + BEHIND_MARGIN_MS), now).is_none());
        let m = l.refuse(None, Some(b"k"), 0, Some(now - 86_400_000 + BEHIND_MARGIN_MS - 1), now).expect("behind");
        assert!(m.contains("behind the clock"), "{m}");
        assert!(l.refuse(None, None, 0, Some(now + 86_400_001), now).is_some());
        // The broker stamps the records itself: no bound.
        let l = limits(&[("message.timestamp.type", "LogAppendTime"), ("message.timestamp.after.max.ms", "1")]);
        assert_eq!(l.refuse(Some(b"{}"), None, 0, Some(now + 10 * hour), now), None);
    }
}
