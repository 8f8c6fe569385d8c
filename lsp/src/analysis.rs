//! One immutable analysis of a document's text: the syntax tree, the
//! diagnostics `flowc check` gives (no program arguments), the schema at
//! every stage, and the names it defines and uses. Every request about a
//! version of a document is answered from its analysis (rust-analyzer's
//! model: an `Arc` snapshot, never mutated, shared with the worker that
//! answers).

use crate::lines::Lines;
use flowc_compiler::check::{check_with_info, CheckInfo, PipelineInfo};
use flowc_compiler::CheckOptions;
use flowc_dsl::ast::{Item, JobFile};
use flowc_dsl::names::{symbols, Symbol};
use flowc_dsl::{Diagnostic, Span};
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub struct Analysis {
    /// The job file's path, where its `use rust` files are read from.
    pub path: Option<PathBuf>,
    pub text: String,
    pub lines: Lines,
    /// Every statement that parsed.
    pub file: JobFile,
    /// What `flowc check` says: the syntax errors if there are any, else
    /// the checker's errors and warnings, in source order.
    pub diagnostics: Vec<Diagnostic>,
    /// Whether the text parsed without error (formatting needs it).
    pub parses: bool,
    /// The checker's findings over the statements that parsed.
    pub info: CheckInfo,
    pub symbols: Vec<Symbol>,
}

impl Analysis {
    /// The analysis of a text that is not a file on disk: its `use rust`
    /// imports cannot be read.
    pub fn new(text: String) -> Analysis {
        Analysis::at(None, text)
    }

    /// The analysis of the text of the job file at `path` (the editor's
    /// buffer, perhaps unsaved): its `use rust` imports are read from disk
    /// beside it, as `flowc check` reads them.
    pub fn at(path: Option<&Path>, text: String) -> Analysis {
        let parsed = flowc_dsl::parse(&text);
        let parses = !parsed.has_errors();
        let rust_files = match path {
            Some(path) => flowc_dsl::load::rust_imports(path, &parsed.file),
            None => Default::default(),
        };
        let options = CheckOptions { rust_files, ..CheckOptions::default() };
        let (_, check_diags, info) = check_with_info(&parsed.file, &options);
        // As `flowc_compiler::compile`: checking a partly parsed file would
        // report the missing parts again, so its findings are not shown.
        let mut diagnostics = parsed.diagnostics;
        if parses {
            diagnostics.extend(check_diags);
            diagnostics.sort_by_key(|d| (d.span.map_or(usize::MAX, |s| s.start), d.severity));
        }
        let symbols = symbols(&parsed.file);
        Analysis {
            path: path.map(Path::to_path_buf),
            lines: Lines::new(&text),
            text,
            file: parsed.file,
            diagnostics,
            parses,
            info,
            symbols,
        }
    }

    /// The text of a span.
    pub fn slice(&self, span: Span) -> &str {
        self.text.get(span.start..span.end).unwrap_or("")
    }

    /// The pipeline whose span contains `offset`.
    pub fn pipeline_at(&self, offset: usize) -> Option<&PipelineInfo> {
        self.info.pipelines.iter().find(|p| p.span.start <= offset && offset <= p.span.end)
    }

    /// The records of the `let` stream `name`, if its pipeline checked.
    pub fn stream_output(&self, name: &str) -> Option<&flowc_compiler::ir::Schema> {
        let start = self.file.items.iter().find_map(|i| match i {
            Item::Let(l) if l.name.text == name => Some(l.pipeline.span.start),
            _ => None,
        })?;
        self.info.pipelines.iter().find(|p| p.span.start == start)?.output.as_ref()
    }

    /// The top-level statement that contains `offset`.
    pub fn item_at(&self, offset: usize) -> Option<&Item> {
        self.file.items.iter().find(|i| i.span().start <= offset && offset <= i.span().end)
    }
}

/// A job of about `lines` lines that checks clean: a schema, then
/// pipelines of 8 lines (the size test below and `examples/analysis_time.rs`).
pub fn big_job(lines: usize) -> String {
    let mut text = String::from(
        "job \"big\"\nparam servers: string = \"localhost:9092\"\nflag fast\n\
         schema Click {\n    ts: timestamp\n    page: string\n    user: long\n}\n",
    );
    let mut i = 0;
    while text.lines().count() < lines {
        text.push_str(&format!(
            "source kafka {{ servers: $servers, topic: \"in{i}\", schema: Click }} uid \"src-{i}\"\n\
             \x20   | watermark ts {{ out_of_orderness: 200ms, idleness: 5s }} uid \"wm-{i}\"\n\
             \x20   | filter page != \"/help\" and user % 2 == {m}\n\
             \x20   | map {{ page: upper(page), heavy: user > 1000 }}\n\
             \x20   | key_by page\n\
             \x20   | window tumbling {{ size: 15s }}\n\
             \x20   | aggregate {{ page, n: count(), top: max(user), start: window_start() }} uid \"agg-{i}\"\n\
             \x20   | sink kafka {{ servers: $servers, topic: \"out{i}\" }} uid \"sink-{i}\"\n",
            m = i % 2
        ));
        i += 1;
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_big_job_checks_clean() {
        let a = Analysis::new(big_job(1000));
        assert!(a.diagnostics.is_empty(), "{:#?}", &a.diagnostics[..a.diagnostics.len().min(3)]);
        assert_eq!(a.info.pipelines.len(), 124);
    }
}

#[cfg(test)]
mod same_as_check {
    use super::*;
    use flowc_compiler::compile;
    use flowc_dsl::SourceFile;

    /// For every golden job (good and bad), the server's diagnostics are
    /// `flowc check`'s: the same codes, spans, messages, labels and hints.
    #[test]
    fn diagnostics_are_those_of_flowc_check() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../compiler/tests/golden");
        let mut files = Vec::new();
        for sub in ["ok", "err"] {
            for e in std::fs::read_dir(dir.join(sub)).expect("golden dir").flatten() {
                if e.path().extension().is_some_and(|x| x == "flow") {
                    files.push(e.path());
                }
            }
        }
        assert!(files.len() > 20, "{files:?}");
        for path in files {
            let text = std::fs::read_to_string(&path).expect("golden job");
            let want = match compile(&SourceFile::new("x.flow", text.clone()), &CheckOptions::default()) {
                Ok(c) => c.warnings,
                Err(d) => d,
            };
            assert_eq!(Analysis::new(text).diagnostics, want, "{}", path.display());
        }
    }
}
