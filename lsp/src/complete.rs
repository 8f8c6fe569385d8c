//! Completion: stage names after `|`, kinds after `source`/`sink`/`window`,
//! options and their values inside settings blocks, setting keys after
//! `set`, parameters after `$`, streams after `from`, and inside a stage's
//! expression the fields of the records that reach it and the functions,
//! the job's Rust functions (`use rust`) among them.
//!
//! The fields come from the checker's record of the schema at each stage.
//! When the statement being typed does not parse, the text is analysed
//! again with the unfinished stage (from its `|` to the end of the
//! statement) blanked out: the pipeline up to there usually checks, and
//! its end is what the stage receives.

use crate::analysis::Analysis;
use crate::context::{cursor, statement_end, statement_start, Context};
use crate::udfs;
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
            let mut items = fields(schema.as_ref(), None);
            // Stages that take a list of fields take no functions.
            if !matches!(stage.as_str(), "key_by" | "watermark" | "dedup" | "top" | "unnest") {
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
                items.extend(udfs::completions(a));
            }
            items
        }
        Context::Join { kw, pipe, right } => {
            let left = stage_input(a, *kw, *pipe, offset);
            let mut items = fields(left.as_ref(), None);
            items.extend(fields(a.stream_output(right), Some(right)));
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

/// The fields of `schema`, qualified by `side` (`imps.imp_id`) if given.
fn fields(schema: Option<&Schema>, side: Option<&str>) -> Vec<CompletionItem> {
    schema
        .iter()
        .flat_map(|s| &s.fields)
        .map(|f| {
            let name = match side {
                Some(side) => format!("{side}.{}", f.name),
                None => f.name.clone(),
            };
            let ty = format!("{}{}", f.ty, if f.nullable { "?" } else { "" });
            let mut i = item(&name, CompletionItemKind::FIELD, Some(&ty), None);
            i.sort_text = Some(format!("0{name}"));
            i
        })
        .collect()
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
    let again = Analysis::at(a.path.as_deref(), patched);
    again
        .info
        .pipelines
        .iter()
        .filter(|p| p.span.start >= start && p.span.end <= pipe)
        .max_by_key(|p| p.span.end)
        .and_then(|p| p.output.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    const JOB: &str = "job \"j\"\n\
        schema Click { ts: timestamp, imp_id: long, tags: array<string>?, payload: { user: { id: long } } }\n\
        schema Impression { ts: timestamp, imp_id: long, campaign: string }\n\
        let imps = source kafka { topic: \"i\", schema: Impression }\n    | watermark ts\n\
        source kafka { topic: \"c\", schema: Click }\n    | watermark ts\n    | ‸\n    | sink print\n";

    /// The labels offered with `stage` typed at the `‸` of [`JOB`], the
    /// cursor at the `‸` of `stage`, and the text they replace.
    fn offered(stage: &str) -> (Vec<String>, String) {
        let text = JOB.replace('‸', stage);
        let at = JOB.find('‸').expect("cursor") + stage.find('‸').expect("cursor in the stage");
        let text = text.replacen('‸', "", 1);
        let a = Analysis::new(text);
        let (start, items) = complete(&a, at);
        (items.into_iter().map(|i| i.label).collect(), a.text[start..at].to_string())
    }

    const CLICK: [&str; 4] = ["ts", "imp_id", "tags", "payload.user.id"];

    #[test]
    fn fields_in_every_stage_that_takes_them() {
        for stage in ["dedup ‸", "dedup imp_id, ‸", "key_by payload.us‸", "unnest ‸", "left unnest ta‸"] {
            let (labels, _) = offered(stage);
            assert_eq!(labels, CLICK, "{stage}: no functions in a list of fields");
        }
        let (labels, _) = offered("key_by imp_id\n    | top 3 by ‸");
        assert_eq!(labels, CLICK);
        let (labels, replaced) = offered("key_by payload.us‸");
        assert_eq!((labels.len(), replaced.as_str()), (4, "payload.us"));
        let (labels, _) = offered("filter ‸");
        assert_eq!(labels[..4], CLICK);
        assert!(labels.contains(&"upper".to_string()), "{labels:?}");
        assert_eq!(offered("dedup imp_id within ‸").0, Vec::<String>::new());
    }

    #[test]
    fn both_sides_of_a_join() {
        let both = ["ts", "imp_id", "tags", "payload.user.id", "imps.ts", "imps.imp_id", "imps.campaign"];
        let (labels, _) = offered("join imps on ‸");
        assert_eq!(labels, both);
        let (labels, replaced) = offered("left join imps on imp_id == imps.im‸ within -1s, 0s");
        assert_eq!((labels, replaced.as_str()), (both.map(String::from).to_vec(), "imps.im"));
        assert_eq!(offered("join imps on imp_id == imps.imp_id within ‸").0, Vec::<String>::new());
    }
}
