//! Bad-record policies (issue 11 §6): a source's `on_error: fail | skip |
//! dead_letter` with its dead-letter target, and a stage's `on_error`
//! attribute for the records its expressions fail on, with the job's
//! defaults (`pipeline.on-error`, `pipeline.dead-letter.topic`,
//! `pipeline.dead-letter.servers`).

use super::Checker;
use crate::catalog::{self, Role};
use crate::consts::Const;
use crate::ir::{DeadLetterTarget, ErrorPolicy, OperatorKind};
use flowc_dsl::ast::Attrs;
use flowc_dsl::diagnostic::suggest;
use flowc_dsl::{Diagnostic, Span};
use std::collections::HashMap;

/// The policies a stage's `on_error` (and `pipeline.on-error`) takes.
pub const STAGE_POLICIES: &[&str] = &["fail", "skip", "dead_letter"];

/// The job's defaults for stages, from `set`: each value with where it is set.
#[derive(Debug, Default)]
pub(super) struct StageDefaults {
    pub policy: Option<(String, Span)>,
    pub topic: Option<(String, Span)>,
    pub servers: Option<(String, Span)>,
}

impl Checker {
    /// The job's stage defaults hang together: `dead_letter` has a topic
    /// and brokers, and a dead-letter setting has a policy that uses it.
    pub(super) fn check_stage_defaults(&mut self) {
        let d = &self.stage_errors;
        let mut errs = Vec::new();
        let dead = d.policy.as_ref().is_some_and(|(p, _)| p == "dead_letter");
        if let (true, Some((_, span))) = (dead, &d.policy) {
            for (key, v) in [("pipeline.dead-letter.topic", &d.topic), ("pipeline.dead-letter.servers", &d.servers)] {
                if v.is_none() {
                    errs.push(
                        Diagnostic::error(
                            "flow::check::missing-setting",
                            format!("`pipeline.on-error = dead_letter` needs `{key}`"),
                            *span,
                        )
                        .with_label("where do bad records go?")
                        .with_help(format!("add `set {key} = \"…\"`")),
                    );
                }
            }
        }
        self.diags.extend(errs);
    }

    /// A stage's policy for the records its expressions fail on: its
    /// `on_error` attribute, else the job's `pipeline.on-error`, else
    /// `fail`. `None` is `fail` (or a mistake, reported). `filter`, `map`,
    /// `select` and `aggregate` (windowed or running) take one, and a
    /// `watermark` with `max_future` (reported by the watermark's check
    /// when without); `kind` is `None` when the stage did not check.
    pub(super) fn stage_policy(&mut self, kind: Option<&OperatorKind>, attrs: &Attrs) -> Option<ErrorPolicy> {
        let takes = |k: &OperatorKind| match k {
            OperatorKind::Filter(_)
            | OperatorKind::Project(_)
            | OperatorKind::WindowAggregate(_)
            | OperatorKind::RunningAggregate(_) => true,
            // Records beyond `max_future`.
            OperatorKind::Watermark(w) => w.max_future_ms.is_some(),
            _ => false,
        };
        let (name, span, from_attr) = match attrs.on_error() {
            Some(n) => {
                if !STAGE_POLICIES.contains(&n.text.as_str()) {
                    let mut d =
                        Diagnostic::error("flow::check::on-error", format!("unknown policy `{}`", n.text), n.span)
                            .with_label("not a policy");
                    d = match suggest(&n.text, STAGE_POLICIES.iter().copied()) {
                        Some(s) => d.with_help(format!("did you mean `{s}`?")),
                        None => d.with_help("the policies are `fail`, `skip` and `dead_letter`"),
                    };
                    self.err(d);
                    return None;
                }
                if let Some(k) = kind.filter(|&k| !takes(k) && !matches!(k, OperatorKind::Watermark(_))) {
                    let fields_only = |stage: &str, what: &str| {
                        format!("{stage} {what}: nothing in it can fail on a record (compute what it needs with `map` first, and put `on_error` there)")
                    };
                    let help = match k {
                        k if k.is_source() => "a source takes its policy in its settings: `{ …, on_error: skip }`".to_string(),
                        OperatorKind::Dedup(_) => fields_only("`dedup`", "reads its key fields as they are"),
                        OperatorKind::KeyedTop(_) | OperatorKind::WindowTop(_) | OperatorKind::WindowTopPer(_) => {
                            fields_only("`top`", "reads its sort fields (and its key fields) as they are")
                        }
                        OperatorKind::Join(_) => fields_only("a join", "compares its key fields as they are"),
                        OperatorKind::Unnest(_) => fields_only("`unnest`", "copies fields"),
                        _ => "`on_error` goes on the stages that evaluate expressions record by record: `filter`, `map`, `select` and `aggregate`".to_string(),
                    };
                    self.err(
                        Diagnostic::error("flow::check::on-error", "this stage takes no `on_error`", n.span)
                            .with_label(
                                "only `filter`, `map`, `select` and `aggregate` have a policy for failed expressions",
                            )
                            .with_help(help),
                    );
                    return None;
                }
                (n.text.clone(), n.span, true)
            }
            None => match &self.stage_errors.policy {
                Some((p, s)) => (p.clone(), *s, false),
                None => return None,
            },
        };
        if !kind.is_some_and(takes) {
            return None;
        }
        match name.as_str() {
            "skip" => Some(ErrorPolicy::Skip),
            "dead_letter" => match (&self.stage_errors.topic, &self.stage_errors.servers) {
                (Some((topic, _)), Some((servers, _))) => {
                    Some(ErrorPolicy::DeadLetter(DeadLetterTarget { servers: servers.clone(), topic: topic.clone() }))
                }
                // A job default without its target is reported once, by `check_stage_defaults`.
                _ if !from_attr => None,
                (topic, _) => {
                    let missing =
                        if topic.is_none() { "pipeline.dead-letter.topic" } else { "pipeline.dead-letter.servers" };
                    self.err(
                        Diagnostic::error(
                            "flow::check::missing-setting",
                            format!("`on_error dead_letter` needs `set {missing} = …`"),
                            span,
                        )
                        .with_label("where do bad records go?")
                        .with_help("a stage's dead letters go to the job's `pipeline.dead-letter.topic` on `pipeline.dead-letter.servers`"),
                    );
                    None
                }
            },
            _ => None,
        }
    }

    /// A `dead_letter_topic` or `dead_letter_servers` under a policy other
    /// than `dead_letter` would be silently ignored: an error on each.
    /// `what` names the records the policy is about, for the label.
    pub(super) fn dead_letter_settings_need_the_policy(
        &mut self,
        props: &HashMap<String, (Const, Span)>,
        policy: &str,
        what: &str,
    ) {
        if policy == "dead_letter" {
            return;
        }
        for key in ["dead_letter_topic", "dead_letter_servers"] {
            if let Some((_, span)) = props.get(key) {
                self.err(
                    Diagnostic::error(
                        "flow::check::dead-letter-without-policy",
                        format!("`{key}` has no effect unless `on_error: dead_letter`"),
                        *span,
                    )
                    .with_label(format!("{what} are {}", if policy == "fail" { "fatal" } else { "skipped" }))
                    .with_help("add `on_error: dead_letter`, or remove this setting"),
                );
            }
        }
    }

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
        self.dead_letter_settings_need_the_policy(props, &policy, "records that fail");
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
