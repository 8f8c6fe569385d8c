//! Go to definition, find references and the outline (document symbols):
//! schemas, `let` streams and parameters, from `flowc_dsl::names`, and the
//! functions of the job's `use rust` files, defined in those files.

use crate::analysis::Analysis;
use crate::hover::stage_keyword;
use crate::udfs;
use flowc_dsl::ast::*;
use flowc_dsl::names::{self, Symbol};
use flowc_dsl::{SourceFile, Span};
use lsp_types::{DocumentSymbol, SymbolKind};
use std::sync::Arc;

/// A place a name is defined or used.
#[derive(Debug, Clone, PartialEq)]
pub enum Place {
    /// In the job file.
    Here(Span),
    /// In a Rust file the job imports.
    Rust(Arc<SourceFile>, Span),
}

fn at(a: &Analysis, offset: usize) -> Option<&Symbol> {
    a.symbols.iter().find(|s| s.span.start <= offset && offset <= s.span.end)
}

/// Where a function the job calls is defined: a `pub fn` of a Rust file.
fn rust_definition(a: &Analysis, s: &Symbol) -> Option<Place> {
    if s.kind != names::SymbolKind::Function {
        return None;
    }
    let f = udfs::find(a, &s.name)?;
    Some(Place::Rust(Arc::clone(&f.file), f.name_span))
}

/// Where the name at `offset` is defined.
pub fn definition(a: &Analysis, offset: usize) -> Option<Place> {
    let s = at(a, offset)?;
    if let Some(p) = rust_definition(a, s) {
        return Some(p);
    }
    a.symbols.iter().find(|d| d.def && d.kind == s.kind && d.name == s.name).map(|d| Place::Here(d.span))
}

/// Every use of the name at `offset`, and its definition if asked (first,
/// for a Rust function).
pub fn references(a: &Analysis, offset: usize, with_definition: bool) -> Vec<Place> {
    let Some(s) = at(a, offset) else { return Vec::new() };
    let rust = rust_definition(a, s).filter(|_| with_definition);
    rust.into_iter()
        .chain(
            a.symbols
                .iter()
                .filter(|r| r.kind == s.kind && r.name == s.name && (with_definition || !r.def))
                .map(|r| Place::Here(r.span)),
        )
        .collect()
}

/// The outline: the job, parameters, settings, schemas with their fields,
/// `let` streams and pipelines with their stages.
pub fn document_symbols(a: &Analysis) -> Vec<DocumentSymbol> {
    let sym = |name: String, detail: Option<String>, kind: SymbolKind, span: Span, sel: Span, children| {
        #[allow(deprecated)] // `deprecated` is a required field of the struct
        DocumentSymbol {
            name,
            detail,
            kind,
            tags: None,
            deprecated: None,
            range: a.lines.range(&a.text, span),
            selection_range: a.lines.range(&a.text, sel),
            children,
        }
    };
    let pipeline = |p: &Pipeline| -> Vec<DocumentSymbol> {
        let mut out = Vec::new();
        if let PipeHead::Source(c) = &p.head {
            out.push(sym(
                format!("source {}", c.kind.text),
                attr_name(&c.attrs),
                SymbolKind::EVENT,
                c.span,
                c.kind.span,
                None,
            ));
        }
        for s in &p.stages {
            let kw = stage_keyword(&s.kind);
            let (name, detail) = match &s.kind {
                StageKind::Window(c) | StageKind::Sink(c) => (format!("{kw} {}", c.kind.text), attr_name(&c.attrs)),
                StageKind::Watermark { field, attrs, .. } => (format!("{kw} {}", field.text), attr_name(attrs)),
                StageKind::Filter { attrs, .. }
                | StageKind::Map { attrs, .. }
                | StageKind::Select { attrs, .. }
                | StageKind::Aggregate { attrs, .. } => (kw.to_string(), attr_name(attrs)),
                StageKind::Top(t) => (format!("{kw} by {}", t.field.text), attr_name(&t.attrs)),
                StageKind::KeyBy { fields } | StageKind::Versioned { fields } => {
                    (format!("{kw} {}", fields.iter().map(|f| f.text.as_str()).collect::<Vec<_>>().join(", ")), None)
                }
                StageKind::Dedup { fields, attrs, .. } => (
                    format!("{kw} {}", fields.iter().map(|f| f.text.as_str()).collect::<Vec<_>>().join(", ")),
                    attr_name(attrs),
                ),
                StageKind::Union { streams, attrs } => (
                    format!("{kw} {}", streams.iter().map(|f| f.text.as_str()).collect::<Vec<_>>().join(", ")),
                    attr_name(attrs),
                ),
                StageKind::Join(j) => (format!("{kw} {}", j.right.text), attr_name(&j.attrs)),
                StageKind::Unnest(u) => (format!("{kw} {} as {}", u.field.text, u.alias.text), attr_name(&u.attrs)),
            };
            let sel = Span::new(s.span.start, s.span.start + kw.len());
            out.push(sym(name, detail, SymbolKind::OPERATOR, s.span, sel, None));
        }
        out
    };
    let mut out = Vec::new();
    for item in &a.file.items {
        match item {
            Item::Job(n) => {
                out.push(sym(format!("job {}", a.slice(n.span)), None, SymbolKind::MODULE, n.span, n.span, None))
            }
            Item::Param(p) => out.push(sym(
                format!("${}", p.name.text),
                Some(p.ty.keyword().to_string()),
                SymbolKind::VARIABLE,
                p.span,
                p.name.span,
                None,
            )),
            Item::Flag(n) => {
                out.push(sym(format!("${}", n.text), Some("flag".into()), SymbolKind::BOOLEAN, n.span, n.span, None))
            }
            Item::UseRust(u) => out.push(sym(
                format!("use rust {:?}", u.path.value),
                None,
                SymbolKind::PACKAGE,
                u.span,
                u.path.span,
                None,
            )),
            Item::Set(s) => out.push(sym(
                s.key.text.clone(),
                Some(a.slice(s.value.span).to_string()),
                SymbolKind::PROPERTY,
                s.span,
                s.key.span,
                None,
            )),
            Item::Schema(s) => {
                let fields = s
                    .fields
                    .iter()
                    .map(|f| {
                        sym(
                            f.name.text.clone(),
                            Some(a.slice(f.ty_span).to_string()),
                            SymbolKind::FIELD,
                            f.span,
                            f.name.span,
                            None,
                        )
                    })
                    .collect();
                out.push(sym(
                    s.name.text.clone(),
                    Some("schema".into()),
                    SymbolKind::STRUCT,
                    s.span,
                    s.name.span,
                    Some(fields),
                ));
            }
            Item::Let(l) => out.push(sym(
                l.name.text.clone(),
                Some("stream".into()),
                SymbolKind::VARIABLE,
                l.span,
                l.name.span,
                Some(pipeline(&l.pipeline)),
            )),
            Item::Pipeline(p) => {
                let name = match (&p.head, p.stages.last().map(|s| &s.kind)) {
                    (PipeHead::Source(c), Some(StageKind::Sink(k))) => format!("{} → {}", c.kind.text, k.kind.text),
                    (PipeHead::From(n), Some(StageKind::Sink(k))) => format!("{} → {}", n.text, k.kind.text),
                    (PipeHead::Source(c), _) => format!("{} → …", c.kind.text),
                    (PipeHead::From(n), _) => format!("{} → …", n.text),
                };
                let sel = match &p.head {
                    PipeHead::Source(c) => c.kind.span,
                    PipeHead::From(n) => n.span,
                };
                out.push(sym(name, Some("pipeline".into()), SymbolKind::FUNCTION, p.span, sel, Some(pipeline(p))));
            }
        }
    }
    out
}

fn attr_name(attrs: &Attrs) -> Option<String> {
    attrs.name().map(|n| n.value.clone())
}
