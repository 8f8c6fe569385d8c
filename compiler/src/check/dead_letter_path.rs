//! A file source's `dead_letter_path`: with `on_error: dead_letter`, bad
//! lines go to JSON-lines files in a directory instead of a Kafka topic.

use super::Checker;
use crate::catalog::{self, Role};
use crate::consts::Const;
use crate::ir::ErrorPolicy;
use flowc_dsl::{Diagnostic, Span};
use std::collections::HashMap;

impl Checker {
    pub(super) fn dead_letter_path(
        &mut self,
        props: &HashMap<String, (Const, Span)>,
        whole: Span,
    ) -> Option<ErrorPolicy> {
        let (_, at) = props.get("dead_letter_path")?;
        let at = *at;
        let policy = self.symbol_prop(props, "on_error", catalog::values(Role::Source, "file", "on_error"), "skip")?;
        if policy != "dead_letter" {
            self.err(
                Diagnostic::error(
                    "flow::check::dead-letter-without-policy",
                    "`dead_letter_path` has no effect unless `on_error: dead_letter`",
                    at,
                )
                .with_label(format!("bad lines are {}", if policy == "fail" { "fatal" } else { "skipped" }))
                .with_help("add `on_error: dead_letter`, or remove this setting"),
            );
            return None;
        }
        if let Some((_, span)) = props.get("dead_letter_topic").or(props.get("dead_letter_servers")) {
            self.err(
                Diagnostic::error(
                    "flow::check::dead-letter-target",
                    "dead letters go to `dead_letter_path` or to `dead_letter_topic`, not both",
                    *span,
                )
                .with_label("remove this")
                .with_secondary(at, "or this"),
            );
            return None;
        }
        let path = self.string_prop(props, "dead_letter_path", None, whole)?;
        if let Some((Const::Str(read), _)) = props.get("path") {
            if read.trim_end_matches('/') == path.trim_end_matches('/') {
                self.err(
                    Diagnostic::error(
                        "flow::check::dead-letter-loop",
                        "the dead-letter directory is the one this source reads",
                        at,
                    )
                    .with_label("bad lines would be read again, as new files")
                    .with_help("name another directory, such as a `bad/` next to it"),
                );
                return None;
            }
        }
        Some(ErrorPolicy::DeadLetterFiles(path))
    }
}
