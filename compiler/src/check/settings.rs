//! `set key = value`: the job-wide settings, and whether the default
//! parallelism they give is possible.

use super::Checker;
use crate::consts::{self, Const};
use crate::logical::JobSettings;
use flowc_dsl::ast::{Item, JobFile};
use flowc_dsl::diagnostic::suggest;
use flowc_dsl::{Diagnostic, Span};
use std::collections::HashMap;

/// The settings a job may `set`, with what they take.
pub const SETTINGS: &[(&str, &str)] = &[
    ("execution.checkpointing.interval", "a duration, or `none` to switch checkpoints off"),
    ("pipeline.operator-chaining", "`true` or `false`"),
    ("pipeline.max-parallelism", "an integer from 1 to 32768"),
    ("parallelism.default", "a positive integer"),
    ("pipeline.on-error", "`fail`, `skip` or `dead_letter`"),
    ("pipeline.dead-letter.topic", "a string"),
    ("pipeline.dead-letter.servers", "a string"),
    ("table.optimizer.projection-pushdown-enabled", "`true` or `false`"),
];

impl Checker {
    pub(super) fn settings(&mut self, file: &JobFile) -> JobSettings {
        let mut s = JobSettings::default();
        let mut seen: HashMap<String, Span> = HashMap::new();
        for item in &file.items {
            let Item::Set(set) = item else { continue };
            let key = set.key.text.as_str();
            if let Some(first) = seen.insert(key.to_string(), set.key.span) {
                self.err(
                    Diagnostic::error("flow::check::duplicate-setting", format!("`{key}` is set twice"), set.key.span)
                        .with_label("set again here")
                        .with_secondary(first, "first set here"),
                );
                continue;
            }
            let Some((_, takes)) = SETTINGS.iter().find(|(k, _)| *k == key) else {
                let mut d =
                    Diagnostic::error("flow::check::unknown-setting", format!("unknown setting `{key}`"), set.key.span)
                        .with_label("not a setting flowc knows");
                d = match suggest(key, SETTINGS.iter().map(|(k, _)| *k)) {
                    Some(k) => d.with_help(format!("did you mean `{k}`?")),
                    None => {
                        let keys: Vec<&str> = SETTINGS.iter().map(|(k, _)| *k).collect();
                        d.with_help(format!("the settings are: {}", keys.join(", ")))
                    }
                };
                self.err(d);
                continue;
            };
            let v = match consts::eval(&set.value, &self.params) {
                Ok(v) => v,
                Err(e) => {
                    self.err(e);
                    continue;
                }
            };
            let bad = |v: &Const| {
                Diagnostic::error(
                    "flow::check::setting-value",
                    format!("`{key}` takes {takes}, not {}", v.kind()),
                    set.value.span,
                )
                .with_label(format!("this is {v}"))
            };
            match (key, &v) {
                ("execution.checkpointing.interval", Const::Duration(0)) => self.err(
                    Diagnostic::error(
                        "flow::check::setting-value",
                        "a checkpoint interval of 0 is not allowed",
                        set.value.span,
                    )
                    .with_label("zero")
                    .with_help("use `none` to switch checkpoints off"),
                ),
                ("execution.checkpointing.interval", Const::Duration(ms)) => s.checkpoint_interval_ms = Some(*ms),
                ("execution.checkpointing.interval", Const::None) => s.checkpoint_interval_ms = None,
                ("pipeline.operator-chaining", Const::Bool(b)) => s.chaining = *b,
                ("table.optimizer.projection-pushdown-enabled", Const::Bool(b)) => s.projection_pushdown = *b,
                ("pipeline.max-parallelism", Const::Int(n)) if (1..=32768).contains(n) => s.max_parallelism = *n as u32,
                ("parallelism.default", Const::Int(n)) if (1..=32768).contains(n) => s.parallelism = *n as u32,
                ("pipeline.on-error", Const::Symbol(p)) if super::bad_records::STAGE_POLICIES.contains(&p.as_str()) => {
                    self.stage_errors.policy = Some((p.clone(), set.value.span))
                }
                ("pipeline.on-error", Const::Symbol(p)) => {
                    let mut d = bad(&v).with_label("not a policy");
                    if let Some(s) = suggest(p, super::bad_records::STAGE_POLICIES.iter().copied()) {
                        d = d.with_help(format!("did you mean `{s}`?"));
                    }
                    self.err(d)
                }
                ("pipeline.dead-letter.topic", Const::Str(t)) if !t.is_empty() => {
                    self.stage_errors.topic = Some((t.clone(), set.value.span))
                }
                ("pipeline.dead-letter.servers", Const::Str(t)) if !t.is_empty() => {
                    self.stage_errors.servers = Some((t.clone(), set.value.span))
                }
                _ => self.err(bad(&v)),
            }
        }
        s
    }

    /// The job's default parallelism (`-p` or `parallelism.default`) must
    /// be possible: from 1 to the max parallelism.
    pub(super) fn check_default_parallelism(&mut self, file: &JobFile, settings: &JobSettings, from_cli: bool) {
        let (p, max) = (settings.parallelism, settings.max_parallelism);
        if (1..=max).contains(&p) {
            return;
        }
        let message = format!("parallelism {p} is not possible: it must be from 1 to {max} (the max parallelism)");
        let set = file.items.iter().find_map(|i| match i {
            Item::Set(s) if s.key.text == "parallelism.default" => Some(s.value.span),
            _ => None,
        });
        let d = match set {
            Some(span) if !from_cli => Diagnostic::error("flow::check::parallelism", message, span)
                .with_label("the default parallelism")
                .with_help("lower it, or raise `pipeline.max-parallelism`"),
            _ => Diagnostic::unlocated("flow::args::parallelism", format!("`-p {p}`: {message}")),
        };
        self.err(d);
    }
}
