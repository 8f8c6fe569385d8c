//! Bad-record policies (issue 11 §6): a source's `on_error: fail | skip |
//! dead_letter` with its dead-letter target.

use super::Checker;
use crate::catalog::{self, Role};
use crate::consts::Const;
use crate::ir::{DeadLetterTarget, ErrorPolicy};
use flowc_dsl::{Diagnostic, Span};
use std::collections::HashMap;

impl Checker {
    /// The `on_error` policy of a kafka source (`servers`, `topic` given)
    /// or a file source (neither), from its settings
    /// `on_error`, `dead_letter_topic` and `dead_letter_servers`; `None`
    /// when something is wrong (reported).
    pub(super) fn source_error_policy(
        &mut self,
        props: &HashMap<String, (Const, Span)>,
        servers: Option<&str>,
        topic: Option<&str>,
        whole: Span,
    ) -> Option<ErrorPolicy> {
        let kind = if servers.is_some() || topic.is_some() { "kafka" } else { "file" };
        let values = catalog::values(Role::Source, kind, "on_error");
        let policy = self.symbol_prop(props, "on_error", values, "skip")?;
        let dead = policy == "dead_letter";
        if !dead {
            // A dead-letter setting without the policy would be silently ignored.
            for key in ["dead_letter_topic", "dead_letter_servers"] {
                if let Some((_, span)) = props.get(key) {
                    self.err(
                        Diagnostic::error(
                            "flow::check::dead-letter-without-policy",
                            format!("`{key}` has no effect unless `on_error: dead_letter`"),
                            *span,
                        )
                        .with_label(format!(
                            "records that fail are {}",
                            if policy == "fail" { "fatal" } else { "skipped" }
                        ))
                        .with_help("add `on_error: dead_letter`, or remove this setting"),
                    );
                }
            }
        }
        match policy.as_str() {
            "fail" => Some(ErrorPolicy::Fail),
            "skip" => Some(ErrorPolicy::Skip),
            _ => {
                if !props.contains_key("dead_letter_topic") {
                    self.err(
                        Diagnostic::error(
                            "flow::check::missing-setting",
                            "`on_error: dead_letter` needs `dead_letter_topic`",
                            props.get("on_error").map_or(whole, |(_, s)| *s),
                        )
                        .with_label("where do bad records go?")
                        .with_help("add `dead_letter_topic: \"<topic>\"`"),
                    );
                    return None;
                }
                let dl_topic = self.string_prop(props, "dead_letter_topic", None, whole)?;
                let dl_servers = match (props.get("dead_letter_servers"), servers) {
                    (Some(_), _) => self.string_prop(props, "dead_letter_servers", None, whole)?,
                    (None, Some(s)) => s.to_string(),
                    (None, None) if kind == "file" => {
                        self.err(
                            Diagnostic::error(
                                "flow::check::missing-setting",
                                "a file source's `on_error: dead_letter` needs `dead_letter_servers`",
                                props.get("dead_letter_topic").map_or(whole, |(_, s)| *s),
                            )
                            .with_label("the brokers of this topic are unknown")
                            .with_help("add `dead_letter_servers: \"host:port\"`"),
                        );
                        return None;
                    }
                    // The source's servers are missing: already reported.
                    (None, None) => return None,
                };
                if Some(dl_topic.as_str()) == topic && Some(dl_servers.as_str()) == servers {
                    let span = props.get("dead_letter_topic").map_or(whole, |(_, s)| *s);
                    self.err(
                        Diagnostic::error(
                            "flow::check::dead-letter-loop",
                            "the dead-letter topic is the topic this source reads",
                            span,
                        )
                        .with_label("bad records would be read again, forever")
                        .with_help(format!("name another topic, such as `\"{dl_topic}-dlq\"`")),
                    );
                    return None;
                }
                Some(ErrorPolicy::DeadLetter(DeadLetterTarget { servers: dl_servers, topic: dl_topic }))
            }
        }
    }
}
