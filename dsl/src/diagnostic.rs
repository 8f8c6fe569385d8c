//! Diagnostics: what went wrong, where, and what to do about it, rendered
//! in the style of rustc.
//!
//! ```text
//! error[flow::check::unknown-field]: unknown field `pgae`
//!   --> jobs/click_count.flow:31:12
//!    |
//! 31 |   | key_by pgae
//!    |            ^^^^ no field `pgae` in ClickEvent
//!    |
//!    = help: did you mean `page`?
//! ```
//!
//! Every layer (parser, checker) reports [`Diagnostic`]s and collects as many
//! as it can rather than stopping at the first. Rendering is deterministic
//! and colourless, so golden tests can hold it.

use crate::span::{LineIndex, Span};
use std::fmt::Write as _;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
}

/// One finding about a source file.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    pub severity: Severity,
    /// A stable code such as `flow::parse::syntax`.
    pub code: &'static str,
    pub message: String,
    /// Where in the file; `None` for problems outside it (program arguments).
    pub span: Option<Span>,
    /// What the underline says.
    pub label: String,
    pub help: Option<String>,
    /// Further labels, and the file when it is not the job file: rare, so
    /// boxed. Diagnostics travel in the `Err` of every parser and checker
    /// result, and a small one keeps deep recursions' frames small.
    pub more: Option<Box<More>>,
}

/// What few diagnostics have besides their main span.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct More {
    /// Further spans with their own labels ("first defined here").
    pub secondary: Vec<(Span, String)>,
    /// The file `span` and `secondary` point into when it is not the job
    /// file being checked (the Rust file of a `use rust`).
    pub file: Option<Arc<SourceFile>>,
    /// Labels in another file than the diagnostic's own, shown after it
    /// as rustc does (`::: file:line:col`).
    pub elsewhere: Vec<(Arc<SourceFile>, Span, String)>,
}

impl Diagnostic {
    pub fn error(code: &'static str, message: impl Into<String>, span: Span) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            code,
            message: message.into(),
            span: Some(span),
            label: String::new(),
            help: None,
            more: None,
        }
    }

    /// A diagnostic about something outside the file, such as a program argument.
    pub fn unlocated(code: &'static str, message: impl Into<String>) -> Diagnostic {
        Diagnostic { span: None, ..Diagnostic::error(code, message, Span::default()) }
    }

    pub fn warning(code: &'static str, message: impl Into<String>, span: Span) -> Diagnostic {
        Diagnostic { severity: Severity::Warning, ..Diagnostic::error(code, message, span) }
    }

    pub fn with_label(mut self, label: impl Into<String>) -> Diagnostic {
        self.label = label.into();
        self
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    fn more(&mut self) -> &mut More {
        self.more.get_or_insert_with(Box::default)
    }

    pub fn with_secondary(mut self, span: Span, label: impl Into<String>) -> Diagnostic {
        self.more().secondary.push((span, label.into()));
        self
    }

    /// The diagnostic's spans point into `file`, not into the job file.
    pub fn in_file(mut self, file: Arc<SourceFile>) -> Diagnostic {
        self.more().file = Some(file);
        self
    }

    /// A label in another file.
    pub fn with_elsewhere(mut self, file: Arc<SourceFile>, span: Span, label: impl Into<String>) -> Diagnostic {
        self.more().elsewhere.push((file, span, label.into()));
        self
    }

    /// Further spans with their labels.
    pub fn secondary(&self) -> &[(Span, String)] {
        self.more.as_deref().map_or(&[], |m| &m.secondary)
    }

    /// The file the spans point into, when it is not the job file.
    pub fn file(&self) -> Option<&Arc<SourceFile>> {
        self.more.as_deref().and_then(|m| m.file.as_ref())
    }

    /// Labels in other files.
    pub fn elsewhere(&self) -> &[(Arc<SourceFile>, Span, String)] {
        self.more.as_deref().map_or(&[], |m| &m.elsewhere)
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// A source file as diagnostics see it: its name as the user gave it and its text.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub name: String,
    pub text: String,
    index: LineIndex,
}

impl PartialEq for SourceFile {
    fn eq(&self, other: &SourceFile) -> bool {
        self.name == other.name && self.text == other.text
    }
}

impl SourceFile {
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> SourceFile {
        let text = text.into();
        let index = LineIndex::new(&text);
        SourceFile { name: name.into(), text, index }
    }

    pub fn line_col(&self, offset: usize) -> crate::span::LineCol {
        self.index.line_col(&self.text, offset)
    }

    /// Renders one diagnostic, rustc style, without colour. A diagnostic
    /// about another file ([`Diagnostic::file`]) is shown in that file.
    pub fn render(&self, d: &Diagnostic) -> String {
        match d.file() {
            Some(f) if **f != *self => f.render_here(d),
            _ => self.render_here(d),
        }
    }

    fn render_here(&self, d: &Diagnostic) -> String {
        let mut out = String::new();
        let kind = match d.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let _ = writeln!(out, "{kind}[{}]: {}", d.code, d.message);
        let Some(main_span) = d.span else {
            if let Some(help) = &d.help {
                let _ = writeln!(out, "  = help: {help}");
            }
            return out;
        };
        let mut spans = vec![(main_span, d.label.as_str(), '^')];
        spans.extend(d.secondary().iter().map(|(s, l)| (*s, l.as_str(), '-')));
        let last_line = spans.iter().map(|(s, _, _)| self.line_col(s.start).line).max().unwrap_or(1);
        let elsewhere = d.elsewhere();
        let last_elsewhere = elsewhere.iter().map(|(f, s, _)| f.line_col(s.start).line).max().unwrap_or(1);
        let gutter = last_line.max(last_elsewhere).to_string().len();
        let pad = " ".repeat(gutter);
        let at = self.line_col(main_span.start);
        let _ = writeln!(out, "{pad}--> {}:{}:{}", self.name, at.line, at.col);
        let _ = writeln!(out, "{pad} |");
        self.underline(&mut out, gutter, spans);
        for (file, span, label) in elsewhere {
            let at = file.line_col(span.start);
            let _ = writeln!(out, "{pad}::: {}:{}:{}", file.name, at.line, at.col);
            let _ = writeln!(out, "{pad} |");
            file.underline(&mut out, gutter, vec![(*span, label.as_str(), '-')]);
        }
        if let Some(help) = &d.help {
            let _ = writeln!(out, "{pad} |");
            let _ = writeln!(out, "{pad} = help: {help}");
        }
        out
    }

    /// The lines of `spans`, each underlined with its mark and label.
    fn underline(&self, out: &mut String, gutter: usize, spans: Vec<(Span, &str, char)>) {
        let pad = " ".repeat(gutter);
        for (span, label, mark) in spans {
            let start = self.line_col(span.start);
            let line_text = self.index.line_text(&self.text, start.line);
            let shown: String = line_text.chars().map(|c| if c == '\t' { ' ' } else { c }).collect();
            let _ = writeln!(out, "{:>gutter$} | {}", start.line, shown.trim_end());
            // Underline to the span's end or the end of its first line.
            let line_chars = line_text.chars().count();
            let end = self.line_col(span.end.max(span.start));
            let end_col = if end.line == start.line { end.col } else { line_chars + 1 };
            let width = end_col.saturating_sub(start.col).max(1);
            let marks: String = std::iter::repeat_n(mark, width).collect();
            let space = " ".repeat(start.col - 1);
            if label.is_empty() {
                let _ = writeln!(out, "{pad} | {space}{marks}");
            } else {
                let _ = writeln!(out, "{pad} | {space}{marks} {label}");
            }
        }
    }

    /// Renders every diagnostic, then a summary line if any is an error.
    pub fn render_all(&self, diags: &[Diagnostic]) -> String {
        let mut out = String::new();
        for d in diags {
            out.push_str(&self.render(d));
            out.push('\n');
        }
        let errors = diags.iter().filter(|d| d.is_error()).count();
        match errors {
            0 => {}
            1 => out.push_str(&format!("error: could not compile `{}` due to 1 previous error\n", self.name)),
            n => out.push_str(&format!("error: could not compile `{}` due to {n} previous errors\n", self.name)),
        }
        out
    }
}

/// The candidate closest to `name` by edit distance, if any is close enough
/// to be a plausible typo: for "did you mean …?" hints.
pub fn suggest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (edit_distance(name, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, c)| (*d, *c))
        .map(|(_, c)| c)
}

/// Levenshtein distance over characters, with adjacent swaps costing 1.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_rustc() {
        let src = SourceFile::new("x.flow", "job \"a\"\nfrom s | key_by pgae\n");
        let d = Diagnostic::error("flow::check::unknown-field", "unknown field `pgae`", Span::new(24, 28))
            .with_label("no such field")
            .with_help("did you mean `page`?");
        let text = src.render(&d);
        assert_eq!(
            text,
            "error[flow::check::unknown-field]: unknown field `pgae`\n \
             --> x.flow:2:17\n  |\n2 | from s | key_by pgae\n  |                 ^^^^ no such field\n  |\n  = help: did you mean `page`?\n"
        );
    }

    #[test]
    fn renders_diagnostics_about_another_file_and_labels_elsewhere() {
        let job = SourceFile::new("x.flow", "job \"a\"\nuse rust \"f.rs\"\n");
        let rs = Arc::new(SourceFile::new("f.rs", "pub fn upper(s: &str) -> String {\n"));
        let in_rust = Diagnostic::error("flow::udf::x", "in Rust", Span::new(7, 12)).in_file(rs.clone());
        assert!(job.render(&in_rust).contains(" --> f.rs:1:8\n"), "{}", job.render(&in_rust));
        let clash = Diagnostic::error("flow::udf::clash", "clash", Span::new(8, 23))
            .with_label("imported here")
            .with_elsewhere(rs, Span::new(7, 12), "defined here");
        assert_eq!(
            job.render(&clash),
            "error[flow::udf::clash]: clash\n --> x.flow:2:1\n  |\n2 | use rust \"f.rs\"\n  | ^^^^^^^^^^^^^^^ imported here\n \
             ::: f.rs:1:8\n  |\n1 | pub fn upper(s: &str) -> String {\n  |        ----- defined here\n"
        );
    }

    #[test]
    fn suggestions() {
        assert_eq!(suggest("pgae", ["page", "timestamp"]), Some("page"));
        assert_eq!(suggest("xyz", ["page", "timestamp"]), None);
        assert_eq!(suggest("event-tme", ["event-time", "checkpointing"]), Some("event-time"));
    }
}
