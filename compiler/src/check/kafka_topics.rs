//! What a Kafka source reads: `topic: "a"`, `topics: ["a", "b"]` or
//! `topic_pattern: "clicks-.*"` (Flink's `'topic'` with one or several
//! topics, and `'topic-pattern'`), and `discovery_interval` (Flink's
//! `'scan.topic-partition-discovery.interval'`, 5 minutes by default).

use super::Checker;
use crate::consts::Const;
use crate::ir::TopicSet;
use flowc_dsl::{Diagnostic, Span};
use std::collections::HashMap;

/// Flink's default `scan.topic-partition-discovery.interval`.
pub const DEFAULT_DISCOVERY_MS: u64 = 5 * 60 * 1000;

/// The topics of a Kafka source, checked.
pub(super) struct Topics {
    /// `topic:`; empty with `set`.
    pub topic: String,
    pub set: Option<TopicSet>,
    pub discovery_ms: Option<u64>,
}

impl Topics {
    /// As the operator's name shows them: `Kafka(a)`, `Kafka(a, b)`.
    pub fn shown(&self) -> String {
        match &self.set {
            None => self.topic.clone(),
            Some(TopicSet::List(t)) => t.join(", "),
            Some(TopicSet::Pattern(p)) => p.clone(),
        }
    }
}

impl Checker {
    pub(super) fn kafka_topics(&mut self, props: &HashMap<String, (Const, Span)>, whole: Span) -> Option<Topics> {
        let given: Vec<(&str, Span)> = ["topic", "topics", "topic_pattern"]
            .into_iter()
            .filter_map(|k| props.get(k).map(|(_, s)| (k, *s)))
            .collect();
        if given.len() > 1 {
            let (first, first_span) = given[0];
            for (k, span) in &given[1..] {
                self.err(
                    Diagnostic::error(
                        "flow::check::kafka-topics",
                        format!("a Kafka source reads `{first}` or `{k}`, not both"),
                        *span,
                    )
                    .with_label("remove one")
                    .with_secondary(first_span, format!("`{first}` given here")),
                );
            }
            return None;
        }
        let Some((key, span)) = given.first().copied() else {
            self.err(
                Diagnostic::error("flow::check::missing-setting", "`topic` is missing", whole)
                    .with_label("needs `topic: \"…\"`")
                    .with_help("or several: `topics: [\"a\", \"b\"]`, or a pattern: `topic_pattern: \"clicks-.*\"`"),
            );
            return None;
        };
        let set = match key {
            "topic" => {
                if let Some((_, s)) = props.get("discovery_interval") {
                    self.err(
                        Diagnostic::error(
                            "flow::check::kafka-topics",
                            "`discovery_interval` is a setting of `topics` and `topic_pattern`",
                            *s,
                        )
                        .with_label("one `topic` has its partitions assigned when the job starts")
                        .with_help("write `topics: [\"…\"]` to have new partitions found while the job runs"),
                    );
                    return None;
                }
                let topic = self.string_prop(props, "topic", None, whole)?;
                return Some(Topics { topic, set: None, discovery_ms: None });
            }
            "topics" => TopicSet::List(self.topic_list(props.get("topics").map(|(v, _)| v), span)?),
            _ => {
                let pattern = self.string_prop(props, "topic_pattern", None, whole)?;
                if let Err(e) = regex::Regex::new(&format!("^(?:{pattern})$")) {
                    self.err(
                        Diagnostic::error(
                            "flow::check::kafka-topics",
                            "`topic_pattern` is not a regular expression",
                            span,
                        )
                        .with_label("does not compile")
                        .with_help(format!(
                            "in Rust's regex syntax (Java's, for such patterns): {}",
                            e.to_string().lines().last().unwrap_or_default().trim_start_matches("error: ")
                        )),
                    );
                    return None;
                }
                TopicSet::Pattern(pattern)
            }
        };
        let discovery_ms = self.discovery(props)?;
        self.no_dead_letter_loop(props, &set)?;
        Some(Topics { topic: String::new(), set: Some(set), discovery_ms })
    }

    fn topic_list(&mut self, v: Option<&Const>, span: Span) -> Option<Vec<String>> {
        let items = match v {
            Some(Const::List(items)) if !items.is_empty() => items,
            Some(Const::List(_)) => {
                self.err(
                    Diagnostic::error("flow::check::kafka-topics", "`topics` names no topic", span)
                        .with_label("empty")
                        .with_help("`topics: [\"a\", \"b\"]`"),
                );
                return None;
            }
            Some(v @ Const::Str(s)) => {
                self.err(
                    Diagnostic::error("flow::check::setting-value", "`topics` takes a list of strings", span)
                        .with_label(format!("this is {v}"))
                        .with_help(format!("write `topics: [\"{s}\"]`, or `topic: \"{s}\"` for one")),
                );
                return None;
            }
            Some(v) => {
                self.bad_prop("topics", "a list of strings", v, span);
                return None;
            }
            None => return None,
        };
        let mut out: Vec<String> = Vec::new();
        for item in items {
            match item {
                Const::Str(s) if s.trim().is_empty() => {
                    self.err(
                        Diagnostic::error("flow::check::setting-value", "a topic's name cannot be empty", span)
                            .with_label("an empty name in this list"),
                    );
                    return None;
                }
                Const::Str(s) if out.contains(s) => {
                    self.err(
                        Diagnostic::error("flow::check::kafka-topics", format!("`topics` names \"{s}\" twice"), span)
                            .with_label("repeated topic"),
                    );
                    return None;
                }
                Const::Str(s) => out.push(s.clone()),
                v => {
                    self.bad_prop("topics", "a list of strings", v, span);
                    return None;
                }
            }
        }
        Some(out)
    }

    /// `discovery_interval`: `Some(None)` for `none`, the default 5 minutes.
    fn discovery(&mut self, props: &HashMap<String, (Const, Span)>) -> Option<Option<u64>> {
        match props.get("discovery_interval") {
            None => Some(Some(DEFAULT_DISCOVERY_MS)),
            Some((Const::None, _)) => Some(None),
            Some((Const::Duration(ms), _)) if *ms > 0 => Some(Some(*ms)),
            Some((v, s)) => {
                self.bad_prop("discovery_interval", "a positive duration or `none`", v, *s);
                None
            }
        }
    }

    /// A dead-letter topic among those read (on the same brokers) would
    /// read every bad record again, forever.
    fn no_dead_letter_loop(&mut self, props: &HashMap<String, (Const, Span)>, set: &TopicSet) -> Option<()> {
        let Some((Const::Str(dl), span)) = props.get("dead_letter_topic") else { return Some(()) };
        if props.get("dead_letter_servers").is_some_and(|(v, _)| Some(v) != props.get("servers").map(|(s, _)| s)) {
            return Some(());
        }
        let read = match set {
            TopicSet::List(t) => t.contains(dl),
            TopicSet::Pattern(p) => regex::Regex::new(&format!("^(?:{p})$")).is_ok_and(|r| r.is_match(dl)),
        };
        if read {
            self.err(
                Diagnostic::error(
                    "flow::check::dead-letter-loop",
                    "the dead-letter topic is a topic this source reads",
                    *span,
                )
                .with_label("bad records would be read again, forever")
                .with_help(format!("name a topic the source does not read, such as `\"dlq-{dl}\"`")),
            );
            return None;
        }
        Some(())
    }
}
