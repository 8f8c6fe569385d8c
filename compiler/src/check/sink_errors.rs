//! A sink's `on_error` (issue 11 §6): what a Kafka sink does with a record
//! it cannot write — a message over Kafka's limit. The same policies,
//! settings and diagnostics as a source's (`on_error`, `dead_letter_topic`,
//! `dead_letter_servers`), with the stages' default: the job's
//! `pipeline.on-error`, else `fail`. The other sinks can write every record
//! of their schema, so they take no `on_error`, and say so.

use super::Checker;
use crate::catalog::{self, Role};
use crate::consts::Const;
use crate::ir::{DeadLetterTarget, ErrorPolicy};
use flowc_dsl::ast::{Connector, Prop, Props};
use flowc_dsl::{Diagnostic, Span};
use std::collections::HashMap;

/// A sink's settings for its policy.
pub(super) const POLICY_KEYS: &[&str] = &["on_error", "dead_letter_topic", "dead_letter_servers"];

impl Checker {
    /// A Kafka sink's policy (`servers` and `topic` are the sink's, where
    /// they checked): its `on_error`, else `pipeline.on-error`, else
    /// `fail`. `dead_letter` writes to `dead_letter_topic` (on
    /// `dead_letter_servers`, by default the sink's), else to the job's
    /// `pipeline.dead-letter.topic`. `None` when something is wrong
    /// (reported).
    pub(super) fn sink_error_policy(
        &mut self,
        props: &HashMap<String, (Const, Span)>,
        servers: Option<&str>,
        topic: Option<&str>,
        whole: Span,
    ) -> Option<ErrorPolicy> {
        let values = catalog::values(Role::Sink, "kafka", "on_error");
        let (policy, from_job) = match (props.contains_key("on_error"), &self.stage_errors.policy) {
            (true, _) => (self.symbol_prop(props, "on_error", values, "fail")?, false),
            (false, Some((p, _))) => (p.clone(), true),
            (false, None) => ("fail".to_string(), false),
        };
        self.dead_letter_settings_need_the_policy(props, &policy, "records the sink cannot write");
        let target = match policy.as_str() {
            "fail" => return Some(ErrorPolicy::Fail),
            "skip" => return Some(ErrorPolicy::Skip),
            _ if props.contains_key("dead_letter_topic") => {
                let dl_topic = self.string_prop(props, "dead_letter_topic", None, whole)?;
                let dl_servers = match (props.get("dead_letter_servers"), servers) {
                    (Some(_), _) => self.string_prop(props, "dead_letter_servers", None, whole)?,
                    (None, Some(s)) => s.to_string(),
                    // The sink's servers are missing: already reported.
                    (None, None) => return None,
                };
                let span = props.get("dead_letter_topic").map_or(whole, |(_, s)| *s);
                (DeadLetterTarget { servers: dl_servers, topic: dl_topic }, span)
            }
            _ => match (&self.stage_errors.topic, &self.stage_errors.servers) {
                (Some((t, span)), Some((s, _))) => (DeadLetterTarget { servers: s.clone(), topic: t.clone() }, *span),
                // The job's default without its target is reported once, by `check_stage_defaults`.
                _ if from_job => return None,
                _ => {
                    let at = props.get("dead_letter_servers").or(props.get("on_error")).map_or(whole, |(_, s)| *s);
                    self.err(
                        Diagnostic::error(
                            "flow::check::missing-setting",
                            "`on_error: dead_letter` needs `dead_letter_topic`",
                            at,
                        )
                        .with_label("where do the records this sink cannot write go?")
                        .with_help(
                            "add `dead_letter_topic: \"<topic>\"`, or set the job's `pipeline.dead-letter.topic` and `pipeline.dead-letter.servers`",
                        ),
                    );
                    return None;
                }
            },
        };
        let (target, span) = target;
        if Some(target.topic.as_str()) == topic && Some(target.servers.as_str()) == servers {
            self.err(
                Diagnostic::error(
                    "flow::check::dead-letter-loop",
                    "the dead-letter topic is the topic this sink writes",
                    span,
                )
                .with_label("the records it cannot write would be mixed with those it writes")
                .with_help(format!("name another topic, such as `\"{}-dlq\"`", target.topic)),
            );
            return None;
        }
        Some(ErrorPolicy::DeadLetter(target))
    }

    /// The settings of a sink of kind `kind` other than Kafka, but a
    /// policy setting: such a sink has no record it cannot write, so that
    /// is an error that says why (and not an unknown setting).
    pub(super) fn sink_without_policy(&mut self, c: &Connector, kind: &str) -> Option<Props> {
        let mut props = c.props.clone()?;
        let (policy, others): (Vec<Prop>, Vec<Prop>) =
            props.entries.into_iter().partition(|e| POLICY_KEYS.contains(&e.key.text.as_str()));
        props.entries = others;
        for e in &policy {
            self.err(
                Diagnostic::error(
                    "flow::check::on-error",
                    format!("a {kind} sink takes no `{}`", e.key.text),
                    e.key.span,
                )
                .with_label("nothing in it can fail on a record")
                .with_help(format!(
                    "a {kind} sink can write every record of its schema in its format; only a Kafka sink has records it cannot write (a message over Kafka's limit), and takes `on_error`"
                )),
            );
        }
        Some(props)
    }
}
