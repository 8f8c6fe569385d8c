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

#[derive(Debug)]
pub struct Analysis {
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
    pub fn new(text: String) -> Analysis {
        let parsed = flowc_dsl::parse(&text);
        let parses = !parsed.has_errors();
        let (_, check_diags, info) = check_with_info(&parsed.file, &CheckOptions::default());
        // As `flowc_compiler::compile`: checking a partly parsed file would
        // report the missing parts again, so its findings are not shown.
        let mut diagnostics = parsed.diagnostics;
        if parses {
            diagnostics.extend(check_diags);
            diagnostics.sort_by_key(|d| (d.span.map_or(usize::MAX, |s| s.start), d.severity));
        }
        let symbols = symbols(&parsed.file);
        Analysis { lines: Lines::new(&text), text, file: parsed.file, diagnostics, parses, info, symbols }
    }

    /// The text of a span.
    pub fn slice(&self, span: Span) -> &str {
        self.text.get(span.start..span.end).unwrap_or("")
    }

    /// The pipeline whose span contains `offset`.
    pub fn pipeline_at(&self, offset: usize) -> Option<&PipelineInfo> {
        self.info.pipelines.iter().find(|p| p.span.start <= offset && offset <= p.span.end)
    }

    /// The top-level statement that contains `offset`.
    pub fn item_at(&self, offset: usize) -> Option<&Item> {
        self.file.items.iter().find(|i| i.span().start <= offset && offset <= i.span().end)
    }
}
