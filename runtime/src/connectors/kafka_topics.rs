//! Which (topic, partition)s a Kafka source subtask reads.
//!
//! A source of one `topic` gets its partitions from the JobManager when the
//! job is deployed (partition `p` to subtask `p mod parallelism`). A source
//! of several topics (`topics: [..]`) or of a `topic_pattern` finds them
//! itself: each subtask lists the topics' partitions and keeps those it
//! owns, by the rule Flink's `KafkaSourceEnumerator` uses — the topic's
//! Java `hashCode` picks a start subtask and its partitions follow round
//! robin — so every partition has exactly one owner and the split is the
//! same on every subtask and on every run. With discovery on, a subtask
//! lists them again every interval and starts reading the new ones it
//! owns from their earliest offset (as Flink does).

use super::ConnectorError;
use flowc_compiler::ir::{KafkaSource, TopicSet};
use rdkafka::consumer::{BaseConsumer, Consumer};
use std::time::Duration;

/// A (topic, partition).
pub type TopicPartition = (String, i32);

/// What the deployment gives a source subtask.
#[derive(Debug, Clone, Default)]
pub struct Assignment {
    /// One topic's partitions, assigned by the JobManager.
    pub splits: Vec<i32>,
    pub subtask: u32,
    pub parallelism: u32,
}

/// Java's `String.hashCode` of `s` (over UTF-16 code units).
fn java_hash(s: &str) -> i32 {
    s.encode_utf16().fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
}

/// The subtask that reads `partition` of `topic` (Flink's
/// `KafkaSourceEnumerator.getSplitOwner`).
pub fn owner(topic: &str, partition: i32, parallelism: u32) -> u32 {
    let n = i64::from(parallelism.max(1));
    let start = i64::from(java_hash(topic).wrapping_mul(31) & 0x7FFF_FFFF) % n;
    ((start + i64::from(partition)) % n) as u32
}

/// The topics a source reads, to match listed topic names against.
#[derive(Debug, Clone)]
pub enum Topics {
    List(Vec<String>),
    Pattern(regex::Regex),
}

impl Topics {
    /// `None` for a source of one topic.
    pub fn new(spec: &KafkaSource) -> Result<Option<Topics>, ConnectorError> {
        Ok(match &spec.topics {
            None => None,
            Some(TopicSet::List(t)) => Some(Topics::List(t.clone())),
            Some(TopicSet::Pattern(p)) => Some(Topics::Pattern(
                regex::Regex::new(&format!("^(?:{p})$"))
                    .map_err(|e| ConnectorError::Io(format!("`topic_pattern` does not compile: {e}")))?,
            )),
        })
    }

    pub fn matches(&self, topic: &str) -> bool {
        match self {
            Topics::List(t) => t.iter().any(|x| x == topic),
            Topics::Pattern(r) => r.is_match(topic),
        }
    }

    /// The (topic, partition)s of the matching topics that `subtask` of
    /// `parallelism` owns, sorted. A listed topic that does not exist is an
    /// error; a pattern may match none yet.
    pub fn owned(
        &self,
        consumer: &BaseConsumer,
        servers: &str,
        subtask: u32,
        parallelism: u32,
        timeout: Duration,
    ) -> Result<Vec<TopicPartition>, ConnectorError> {
        let err = |m: String| ConnectorError::Kafka { servers: servers.to_string(), message: m };
        let md =
            consumer.fetch_metadata(None, timeout).map_err(|e| err(format!("cannot list the brokers' topics: {e}")))?;
        if let Topics::List(listed) = self {
            if let Some(missing) = listed.iter().find(|t| !md.topics().iter().any(|m| m.name() == t.as_str())) {
                return Err(err(format!("topic `{missing}` does not exist")));
            }
        }
        let mut out: Vec<TopicPartition> = md
            .topics()
            .iter()
            .filter(|t| t.error().is_none() && self.matches(t.name()))
            .flat_map(|t| t.partitions().iter().map(move |p| (t.name().to_string(), p.id())))
            .filter(|(t, p)| owner(t, *p, parallelism) == subtask)
            .collect();
        out.sort_unstable();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_string_hash_codes() {
        // Values of `"…".hashCode()` in Java.
        assert_eq!(java_hash(""), 0);
        assert_eq!(java_hash("a"), 97);
        assert_eq!(java_hash("clicks"), -1_357_714_453);
        assert_eq!(java_hash("hello world"), 1_794_106_052);
        assert_eq!(java_hash("é"), 233);
    }

    #[test]
    fn every_partition_has_one_owner_and_owners_are_spread() {
        for parallelism in 1..=5u32 {
            for topic in ["a", "clicks-1", "clicks-2", "orders"] {
                let owners: Vec<u32> = (0..10).map(|p| owner(topic, p, parallelism)).collect();
                assert!(owners.iter().all(|o| *o < parallelism));
                // Consecutive partitions go to consecutive subtasks.
                for w in owners.windows(2) {
                    assert_eq!(w[1], (w[0] + 1) % parallelism, "{topic} at {parallelism}: {owners:?}");
                }
            }
        }
        assert_eq!(owner("x", 3, 0), 0, "no subtasks is one");
    }

    #[test]
    fn patterns_match_whole_names() {
        let t = Topics::Pattern(regex::Regex::new("^(?:clicks-.*)$").unwrap());
        assert!(t.matches("clicks-eu"));
        assert!(!t.matches("old-clicks-eu"));
        let l = Topics::List(vec!["a".into(), "b".into()]);
        assert!(l.matches("b") && !l.matches("c"));
    }
}
