//! Settings blocks, `{ key: value, … }`, of sources, sinks, windows and
//! watermarks: evaluated once, unknown keys reported, and values read by
//! the type each key takes.

use super::Checker;
use crate::consts::{self, Const};
use flowc_dsl::ast::Props;
use flowc_dsl::diagnostic::suggest;
use flowc_dsl::{Diagnostic, Span};
use std::collections::HashMap;

impl Checker {
    /// Evaluates a settings block, reporting unknown keys against `allowed`.
    pub(super) fn props(
        &mut self,
        props: Option<&Props>,
        allowed: &[&str],
        what: &str,
    ) -> HashMap<String, (Const, Span)> {
        let mut out = HashMap::new();
        let Some(props) = props else { return out };
        for p in &props.entries {
            if !allowed.contains(&p.key.text.as_str()) {
                let mut d = Diagnostic::error(
                    "flow::check::unknown-setting",
                    format!("unknown {} setting `{}`", what.trim_start_matches("a "), p.key.text),
                    p.key.span,
                )
                .with_label(format!("not a setting of {what}"));
                d = match suggest(&p.key.text, allowed.iter().copied()) {
                    Some(s) => d.with_help(format!("did you mean `{s}`?")),
                    None => d.with_help(format!("{what} takes: {}", allowed.join(", "))),
                };
                self.err(d);
                continue;
            }
            if out.contains_key(&p.key.text) {
                self.err(
                    Diagnostic::error(
                        "flow::check::duplicate-setting",
                        format!("`{}` is set twice", p.key.text),
                        p.key.span,
                    )
                    .with_label("set again here"),
                );
                continue;
            }
            match consts::eval(&p.value, &self.params) {
                Ok(v) => {
                    out.insert(p.key.text.clone(), (v, p.value.span));
                }
                Err(d) => self.err(d),
            }
        }
        out
    }

    pub(super) fn bad_prop(&mut self, key: &str, takes: &str, v: &Const, span: Span) {
        // "takes a positive duration, not a duration" would say nothing.
        let given = if *v == Const::Duration(0) { "zero" } else { v.kind() };
        let d = Diagnostic::error("flow::check::setting-value", format!("`{key}` takes {takes}, not {given}"), span)
            .with_label(format!("this is {v}"));
        // A misspelt word among the words it takes (`bids` for `bid`).
        let words = takes.split('`').skip(1).step_by(2);
        let near = match v {
            Const::Symbol(w) | Const::Str(w) => suggest(w, words),
            _ => None,
        };
        self.err(match near {
            Some(w) => d.with_help(format!("did you mean `{w}`?")),
            None => d,
        });
    }

    pub(super) fn string_prop(
        &mut self,
        props: &HashMap<String, (Const, Span)>,
        key: &str,
        default: Option<&str>,
        whole: Span,
    ) -> Option<String> {
        match props.get(key) {
            Some((Const::Str(s), sp)) if s.trim().is_empty() => {
                self.err(
                    Diagnostic::error("flow::check::setting-value", format!("`{key}` cannot be empty"), *sp)
                        .with_label("empty"),
                );
                None
            }
            Some((Const::Str(s), _)) => Some(s.clone()),
            Some((v, s)) => {
                self.bad_prop(key, "a string", v, *s);
                None
            }
            None => match default {
                Some(d) => Some(d.to_string()),
                None => {
                    self.err(
                        Diagnostic::error("flow::check::missing-setting", format!("`{key}` is missing"), whole)
                            .with_label(format!("needs `{key}: \"…\"`")),
                    );
                    None
                }
            },
        }
    }

    pub(super) fn symbol_prop(
        &mut self,
        props: &HashMap<String, (Const, Span)>,
        key: &str,
        options: &[&str],
        default: &str,
    ) -> Option<String> {
        match props.get(key) {
            None => Some(default.to_string()),
            Some((Const::Symbol(s), _)) if options.contains(&s.as_str()) => Some(s.clone()),
            // `none` is a keyword, not a word, but an option all the same.
            Some((Const::None, _)) if options.contains(&"none") => Some("none".to_string()),
            Some((v, sp)) => {
                let opts: Vec<String> = options.iter().map(|o| format!("`{o}`")).collect();
                let mut d = Diagnostic::error(
                    "flow::check::setting-value",
                    format!("`{key}` takes {}, not {v}", opts.join(" or ")),
                    *sp,
                )
                .with_label("not one of the options");
                if let Const::Symbol(s) = v {
                    if let Some(sug) = suggest(s, options.iter().copied()) {
                        d = d.with_help(format!("did you mean `{sug}`?"));
                    }
                }
                self.err(d);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{compile, CheckOptions};
    use flowc_dsl::SourceFile;

    /// `bounded: none`, the documented default, was refused: `none` is a
    /// keyword and was not taken for the option of that name.
    #[test]
    fn bounded_none_is_an_option() {
        let src = SourceFile::new(
            "t.flow",
            "job \"t\"\nschema S { a: int }\n\
             source kafka { servers: \"s\", topic: \"t\", schema: S, bounded: none } | sink print\n",
        );
        let result = compile(&src, &CheckOptions::default());
        assert!(result.is_ok(), "{:#?}", result.err());
    }
}
