//! Completion: stage names after `|`, kinds after `source`/`sink`/`window`,
//! options and their values inside settings blocks, setting keys after
//! `set`, parameters after `$`, streams after `from`, and inside a stage's
//! expression the fields of the records that reach it and the functions.
//!
//! The fields come from the checker's record of the schema at each stage.
//! When the statement being typed does not parse, the text is analysed
//! again with the unfinished stage (from its `|` to the end of the
//! statement) blanked out: the pipeline up to there usually checks, and
//! its end is what the stage receives.

use crate::analysis::Analysis;
use crate::context::{cursor, statement_end, statement_start, Context};
use flowc_compiler::catalog::{self, FunctionKind};
use flowc_compiler::check::SETTINGS;
use flowc_compiler::ir::Schema;
use flowc_dsl::ast::Item;
use flowc_dsl::names::SymbolKind;
use flowc_dsl::parser::STATEMENT_KEYWORDS;
use lsp_types::{CompletionItem, CompletionItemKind, Documentation, MarkupContent, MarkupKind};

/// The completions at `offset`, and where the word they replace starts.
pub fn complete(a: &Analysis, offset: usize) -> (usize, Vec<CompletionItem>) {
    let cur = cursor(&a.text, offset);
    let items = match &cur.context {
        Context::Statement => {
            STATEMENT_KEYWORDS.iter().map(|k| item(k, CompletionItemKind::KEYWORD, None, None)).collect()
        }
        Context::Stage => catalog::STAGES
            .iter()
            .map(|s| item(s.name, CompletionItemKind::KEYWORD, Some(s.syntax), Some(s.doc)))
            .collect(),
        Context::Kind(role) => catalog::kinds(*role)
            .map(|k| item(k.name, CompletionItemKind::CLASS, Some(&k.title()), Some(k.doc)))
            .collect(),
        Context::SettingKey => {
            SETTINGS.iter().map(|(k, takes)| item(k, CompletionItemKind::PROPERTY, Some(takes), None)).collect()
        }
        Context::OptionKey { role, kind } => match catalog::kind(*role, kind) {
            Some(k) => k
                .options
                .iter()
                .map(|o| {
                    let mut i = item(o.key, CompletionItemKind::PROPERTY, Some(o.takes), Some(o.doc));
                    i.insert_text = Some(format!("{}: ", o.key));
                    i
                })
                .collect(),
            None => Vec::new(),
        },
        Context::OptionValue { role, kind, key } => {
            let values = catalog::values(*role, kind, key);
            if key == "schema" {
                names(a, SymbolKind::Schema, CompletionItemKind::STRUCT)
            } else if !values.is_empty() {
                let doc = catalog::kind(*role, kind).and_then(|k| k.option(key)).map(|o| o.doc);
                values.iter().map(|v| item(v, CompletionItemKind::ENUM_MEMBER, None, doc)).collect()
            } else {
                params(a)
            }
        }
        Context::Param => params(a),
        Context::Stream => names(a, SymbolKind::Stream, CompletionItemKind::VARIABLE),
        Context::Expr { stage, kw, pipe } => {
            let schema = stage_input(a, *kw, *pipe, offset);
            let mut items: Vec<CompletionItem> = schema
                .iter()
                .flat_map(|s| &s.fields)
                .map(|f| {
                    let mut i = item(&f.name, CompletionItemKind::FIELD, Some(&f.ty.to_string()), None);
                    i.sort_text = Some(format!("0{}", f.name));
                    i
                })
                .collect();
            if !matches!(stage.as_str(), "key_by" | "watermark") {
                let in_aggregate = stage == "aggregate";
                items.extend(
                    catalog::functions().into_iter().filter(|f| in_aggregate || f.kind == FunctionKind::Scalar).map(
                        |f| {
                            let mut i = item(f.name, CompletionItemKind::FUNCTION, Some(f.signature), Some(f.doc));
                            i.sort_text = Some(format!("1{}", f.name));
                            i
                        },
                    ),
                );
            }
            items
        }
        Context::None => Vec::new(),
    };
    (cur.word_start, items)
}

fn item(label: &str, kind: CompletionItemKind, detail: Option<&str>, doc: Option<&str>) -> CompletionItem {
    CompletionItem {
        label: label.to_string(),
        kind: Some(kind),
        detail: detail.map(str::to_string),
        documentation: doc
            .map(|d| Documentation::MarkupContent(MarkupContent { kind: MarkupKind::Markdown, value: d.to_string() })),
        ..CompletionItem::default()
    }
}

fn names(a: &Analysis, kind: SymbolKind, item_kind: CompletionItemKind) -> Vec<CompletionItem> {
    a.symbols.iter().filter(|s| s.kind == kind && s.def).map(|s| item(&s.name, item_kind, None, None)).collect()
}

fn params(a: &Analysis) -> Vec<CompletionItem> {
    a.file
        .items
        .iter()
        .filter_map(|i| match i {
            Item::Param(p) => Some((p.name.text.clone(), format!("param: {}", p.ty.keyword()))),
            Item::Flag(f) => Some((f.text.clone(), "flag: bool".to_string())),
            _ => None,
        })
        .map(|(name, detail)| item(&format!("${name}"), CompletionItemKind::VARIABLE, Some(&detail), None))
        .collect()
}

/// The records the stage whose keyword is at `kw` receives.
fn stage_input(a: &Analysis, kw: usize, pipe: usize, offset: usize) -> Option<Schema> {
    let found = a.info.pipelines.iter().flat_map(|p| &p.stages).find(|s| s.span.start == kw);
    if let Some(stage) = found {
        return stage.input.clone();
    }
    // The statement does not parse: analyse it without the stage being typed.
    let start = statement_start(&a.text, pipe);
    let end = statement_end(&a.text, offset);
    let mut patched = String::with_capacity(a.text.len());
    patched.push_str(&a.text[..pipe]);
    // One space per byte blanked, so that offsets stay where they were.
    for c in a.text[pipe..end].chars() {
        if c == '\n' {
            patched.push('\n');
        } else {
            patched.extend(std::iter::repeat_n(' ', c.len_utf8()));
        }
    }
    patched.push_str(&a.text[end..]);
    let again = Analysis::new(patched);
    again
        .info
        .pipelines
        .iter()
        .filter(|p| p.span.start >= start && p.span.end <= pipe)
        .max_by_key(|p| p.span.end)
        .and_then(|p| p.output.clone())
}
