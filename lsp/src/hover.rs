//! Hover: what the thing under the cursor is. A field's type, the records
//! a stage receives and emits, a parameter's declaration, a function's
//! signature (a Rust function's too), a connector option's meaning, a
//! setting, a schema, a stream. Everything comes from the analysis and the
//! compiler's catalog.

use crate::analysis::Analysis;
use crate::udfs;
use flowc_compiler::catalog::{self, KindDoc, Role};
use flowc_compiler::check::{PipelineInfo, SETTINGS};
use flowc_compiler::ir::Schema;
use flowc_dsl::ast::*;
use flowc_dsl::names::SymbolKind;
use flowc_dsl::Span;

/// Markdown about the thing at `offset`, and its span.
pub fn hover(a: &Analysis, offset: usize) -> Option<(Span, String)> {
    if let Some(found) = symbol(a, offset) {
        return Some(found);
    }
    match a.item_at(offset)? {
        Item::Set(s) if within(s.key.span, offset) => {
            let takes = SETTINGS.iter().find(|(k, _)| *k == s.key.text).map(|(_, t)| *t)?;
            Some((s.key.span, format!("{}\n\nsetting: takes {takes}", code(&s.key.text))))
        }
        Item::Pipeline(p) => pipeline(a, p, offset),
        Item::Let(l) => pipeline(a, &l.pipeline, offset),
        _ => None,
    }
}

fn within(span: Span, offset: usize) -> bool {
    span.start <= offset && offset <= span.end
}

fn code(text: &str) -> String {
    format!("```flow\n{text}\n```")
}

/// A schema as a block: `Name {` one field per line `}`.
pub fn schema_block(schema: &Schema) -> String {
    let mut out = match &schema.name {
        Some(n) => format!("{n} {{\n"),
        None => "{\n".to_string(),
    };
    for f in &schema.fields {
        out.push_str(&format!("    {}: {}\n", f.name, f.ty));
    }
    out.push('}');
    out
}

/// A `//` comment at the end of the line where `span` ends: a declaration's doc.
fn trailing_comment(a: &Analysis, span: Span) -> Option<String> {
    let line_end = a.text[span.end..].find('\n').map_or(a.text.len(), |i| span.end + i);
    let rest = a.text[span.end..line_end].trim();
    rest.strip_prefix("//").map(|c| c.trim().to_string()).filter(|c| !c.is_empty())
}

fn symbol(a: &Analysis, offset: usize) -> Option<(Span, String)> {
    let s = a.symbols.iter().find(|s| within(s.span, offset))?;
    let text = match s.kind {
        SymbolKind::Param => {
            let decl = a.file.items.iter().find_map(|i| match i {
                Item::Param(p) if p.name.text == s.name => Some(p.span),
                Item::Flag(f) if f.text == s.name => {
                    let line_start = a.text[..f.span.start].rfind('\n').map_or(0, |i| i + 1);
                    Some(Span::new(line_start, f.span.end))
                }
                _ => None,
            });
            match decl {
                Some(d) => {
                    let mut text = code(a.slice(d).trim_start());
                    if let Some(c) = trailing_comment(a, d) {
                        text.push_str(&format!("\n\n{c}"));
                    }
                    text.push_str(&format!("\n\nparameter: `--{}` on the command line", s.name));
                    text
                }
                None => format!("`${}`: not declared", s.name),
            }
        }
        SymbolKind::Schema => {
            let decl = a.file.items.iter().find_map(|i| match i {
                Item::Schema(d) if d.name.text == s.name => Some(d.span),
                _ => None,
            })?;
            code(a.slice(decl))
        }
        SymbolKind::Stream => {
            a.file.items.iter().find(|i| matches!(i, Item::Let(l) if l.name.text == s.name))?;
            match a.stream_output(&s.name) {
                Some(schema) => format!("stream `{}`\n\n{}", s.name, code(&schema_block(schema))),
                None => format!("stream `{}` (its records are unknown: its pipeline has errors)", s.name),
            }
        }
        SymbolKind::Function => match catalog::function(&s.name) {
            Some(doc) => format!(
                "{}

{}",
                code(doc.signature),
                doc.doc
            ),
            None => udfs::hover(a, udfs::find(a, &s.name)?),
        },
    };
    Some((s.span, text))
}

fn pipeline(a: &Analysis, p: &Pipeline, offset: usize) -> Option<(Span, String)> {
    let info = a.info.pipelines.iter().find(|i| i.span.start == p.span.start);
    if let PipeHead::Source(c) = &p.head {
        if within(c.span, offset) {
            let out = info.and_then(|i| i.head_output.as_ref());
            return connector(a, Role::Source, c, offset, None, out);
        }
    }
    let i = p.stages.iter().position(|s| within(s.span, offset))?;
    let stage = &p.stages[i];
    let input = info.and_then(|p| p.stages.get(i)).and_then(|s| s.input.as_ref());
    let output = info.and_then(|p: &PipelineInfo| p.stage_output(i));
    let keyword = stage_keyword(&stage.kind);
    let kw_span = Span::new(stage.span.start, stage.span.start + keyword.len());
    if within(kw_span, offset) && !matches!(stage.kind, StageKind::Window(_) | StageKind::Sink(_)) {
        let doc = catalog::stage(keyword)?;
        let mut text = format!("{}\n\n{}", code(doc.syntax), doc.doc);
        if let Some(s) = input {
            text.push_str(&format!("\n\nreceives:\n{}", code(&schema_block(s))));
        }
        if let (Some(s), false) = (output, matches!(stage.kind, StageKind::KeyBy { .. } | StageKind::Window(_))) {
            text.push_str(&format!("\n\nemits:\n{}", code(&schema_block(s))));
        }
        return Some((kw_span, text));
    }
    match &stage.kind {
        StageKind::Watermark { field, props, .. } => {
            if within(field.span, offset) {
                return field_hover(&field.text, field.span, input);
            }
            let kind = catalog::kind(Role::Watermark, "watermark")?;
            props.as_ref().and_then(|p| option(kind, p, offset))
        }
        StageKind::Filter { predicate, .. } => expr(predicate, offset, input),
        StageKind::Map { fields, .. } | StageKind::Select { fields, .. } | StageKind::Aggregate { fields, .. } => {
            let rf = fields.iter().find(|f| within(f.span, offset))?;
            match &rf.value {
                Some(v) if within(v.span, offset) => expr(v, offset, input),
                _ => {
                    let ty = output.and_then(|s| s.fields.iter().find(|f| f.name == rf.name.text)).map(|f| f.ty);
                    match (ty, &rf.value) {
                        (Some(ty), _) => Some((
                            rf.name.span,
                            format!("{}\n\noutput field", code(&format!("{}: {ty}", rf.name.text))),
                        )),
                        // `{ page }`: the input's field.
                        (None, None) => field_hover(&rf.name.text, rf.name.span, input),
                        (None, Some(_)) => None,
                    }
                }
            }
        }
        StageKind::KeyBy { fields } | StageKind::Dedup { fields, .. } | StageKind::Versioned { fields } => {
            let f = fields.iter().find(|f| within(f.span, offset))?;
            field_hover(&f.text, f.span, input)
        }
        StageKind::Window(c) => connector(a, Role::Window, c, offset, input, None),
        StageKind::Sink(c) => connector(a, Role::Sink, c, offset, input, None),
        StageKind::Union { .. } => None,
        StageKind::Join(j) => expr(&j.on, offset, input),
        StageKind::Top(t) if within(t.field.span, offset) => field_hover(&t.field.text, t.field.span, input),
        StageKind::Top(_) => None,
        StageKind::Unnest(u) if within(u.field.span, offset) => field_hover(&u.field.text, u.field.span, input),
        StageKind::Unnest(_) => None,
    }
}

pub fn stage_keyword(kind: &StageKind) -> &'static str {
    match kind {
        StageKind::Watermark { .. } => "watermark",
        StageKind::Filter { .. } => "filter",
        StageKind::Map { .. } => "map",
        StageKind::Select { .. } => "select",
        StageKind::KeyBy { .. } => "key_by",
        StageKind::Window(_) => "window",
        StageKind::Aggregate { .. } => "aggregate",
        StageKind::Sink(_) => "sink",
        StageKind::Dedup { .. } => "dedup",
        StageKind::Union { .. } => "union",
        StageKind::Join(j) if j.left_outer => "left join",
        StageKind::Join(_) => "join",
        StageKind::Top(_) => "top",
        StageKind::Versioned { .. } => "versioned",
        StageKind::Unnest(u) if u.left_outer => "left unnest",
        StageKind::Unnest(_) => "unnest",
    }
}

/// A source, window or sink: its keyword and kind, or one of its options.
fn connector(
    a: &Analysis,
    role: Role,
    c: &Connector,
    offset: usize,
    input: Option<&Schema>,
    output: Option<&Schema>,
) -> Option<(Span, String)> {
    let _ = a;
    let kind = catalog::kind(role, &c.kind.text);
    if offset <= c.kind.span.end {
        let span = Span::new(c.span.start, c.kind.span.end);
        let mut text = match kind {
            Some(k) => kind_doc(k),
            None => format!("unknown {} `{}`", role.keyword(), c.kind.text),
        };
        if let Some(s) = input {
            text.push_str(&format!("\n\nreceives:\n{}", code(&schema_block(s))));
        }
        if let Some(s) = output {
            text.push_str(&format!("\n\nemits:\n{}", code(&schema_block(s))));
        }
        return Some((span, text));
    }
    option(kind?, c.props.as_ref()?, offset)
}

fn kind_doc(k: &KindDoc) -> String {
    let mut text = format!("{}\n\n{}", code(&k.title()), k.doc);
    if !k.options.is_empty() {
        text.push_str("\n\noptions: ");
        let keys: Vec<String> = k.options.iter().map(|o| format!("`{}`", o.key)).collect();
        text.push_str(&keys.join(", "));
    }
    text
}

fn option(kind: &KindDoc, props: &Props, offset: usize) -> Option<(Span, String)> {
    let p = props.entries.iter().find(|p| within(p.span, offset))?;
    let o = kind.option(&p.key.text)?;
    let mut text = format!("{}\n\n{}\n\ntakes {}", code(&format!("{}: …", o.key)), o.doc, o.takes);
    if let Some(d) = o.default {
        text.push_str(&format!("; default `{d}`"));
    }
    text.push_str(&format!(" (`{}`)", kind.title()));
    let span = if within(p.key.span, offset) { p.key.span } else { p.value.span };
    Some((span, text))
}

fn field_hover(name: &str, span: Span, schema: Option<&Schema>) -> Option<(Span, String)> {
    let schema = schema?;
    let f = schema.fields.iter().find(|f| f.name == name)?;
    let of = schema.name.as_ref().map_or(String::new(), |n| format!(" of `{n}`"));
    Some((span, format!("{}\n\nfield{of}", code(&format!("{}: {}", f.name, f.ty)))))
}

/// The innermost field at `offset` in an expression (a function's name is
/// a symbol, answered before).
fn expr(e: &Expr, offset: usize, schema: Option<&Schema>) -> Option<(Span, String)> {
    let mut e = e;
    loop {
        let next = match &e.kind {
            ExprKind::Ident(name) => return field_hover(name, e.span, schema),
            ExprKind::Call(_, items) | ExprKind::List(items) => items.iter().find(|x| within(x.span, offset)),
            ExprKind::Unary(_, x) | ExprKind::IsNull(x, _) | ExprKind::Cast(x, _) => {
                Some(x.as_ref()).filter(|x| within(x.span, offset))
            }
            ExprKind::Binary(_, l, r) | ExprKind::Where(l, r) => {
                [l, r].into_iter().map(|b| b.as_ref()).find(|x| within(x.span, offset))
            }
            ExprKind::If(c, t, f) => [c, t, f].into_iter().map(|b| b.as_ref()).find(|x| within(x.span, offset)),
            _ => None,
        };
        e = next?;
    }
}
