//! The names a job file defines and where it uses them: schemas, `let`
//! streams, parameters and flags, and the functions it calls. For editors (go to definition, find
//! references, document symbols); purely syntactic, so it works on every
//! statement that parsed, whether or not the file checks.
//!
//! ```
//! use flowc_dsl::names::{symbols, SymbolKind};
//! let file = flowc_dsl::parse("param p: int = 1\nset parallelism.default = $p\n").file;
//! let p: Vec<_> = symbols(&file).into_iter().filter(|s| s.kind == SymbolKind::Param).collect();
//! assert_eq!((p[0].def, p[1].def), (true, false));
//! assert_eq!((p[1].span.start, p[1].span.end), (43, 45)); // `$p`
//! ```

use crate::ast::*;
use crate::span::Span;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SymbolKind {
    /// `schema Name { … }`, used as `schema: Name` in a source.
    Schema,
    /// `let name = …`, used as `from name`.
    Stream,
    /// `param name: …` or `flag name`, used as `$name`.
    Param,
    /// A function, used as `name(…)`: a built-in one, or a `pub fn` of a
    /// `use rust` file, where it is defined (the LSP resolves it through
    /// the checker). Only its uses are in the job file.
    Function,
}

/// One occurrence of a name.
#[derive(Debug, Clone, PartialEq)]
pub struct Symbol {
    pub kind: SymbolKind,
    pub name: String,
    /// The name where it is written (`$name` with its `$` for a use of a
    /// parameter).
    pub span: Span,
    /// The definition, rather than a use.
    pub def: bool,
}

/// Every definition and use of a schema, stream or parameter, and every
/// call of a function, in source order.
pub fn symbols(file: &JobFile) -> Vec<Symbol> {
    let mut out = Vec::new();
    for item in &file.items {
        match item {
            // A Rust file's functions are named in calls (`Function`).
            Item::Job(_) | Item::UseRust(_) => {}
            Item::Param(p) => {
                out.push(def(SymbolKind::Param, &p.name));
                if let Some(d) = &p.default {
                    expr_params(d, &mut out);
                }
            }
            Item::Flag(n) => out.push(def(SymbolKind::Param, n)),
            Item::Set(s) => expr_params(&s.value, &mut out),
            Item::Schema(s) => out.push(def(SymbolKind::Schema, &s.name)),
            Item::Let(l) => {
                out.push(def(SymbolKind::Stream, &l.name));
                pipeline(&l.pipeline, &mut out);
            }
            Item::Pipeline(p) => pipeline(p, &mut out),
        }
    }
    out
}

fn def(kind: SymbolKind, n: &Name) -> Symbol {
    Symbol { kind, name: n.text.clone(), span: n.span, def: true }
}

fn pipeline(p: &Pipeline, out: &mut Vec<Symbol>) {
    match &p.head {
        PipeHead::Source(c) => connector(c, out),
        PipeHead::From(n) => {
            out.push(Symbol { kind: SymbolKind::Stream, name: n.text.clone(), span: n.span, def: false })
        }
    }
    for stage in &p.stages {
        match &stage.kind {
            StageKind::Watermark { props, attrs, .. } => {
                props_params(props.as_ref(), out);
                attrs_params(attrs, out);
            }
            StageKind::Filter { predicate, attrs } => {
                expr_params(predicate, out);
                attrs_params(attrs, out);
            }
            StageKind::Map { fields, attrs }
            | StageKind::Select { fields, attrs }
            | StageKind::Aggregate { fields, attrs } => {
                for f in fields {
                    if let Some(v) = &f.value {
                        expr_params(v, out);
                    }
                }
                attrs_params(attrs, out);
            }
            StageKind::KeyBy { .. } => {}
            StageKind::Window(c) | StageKind::Sink(c) => connector(c, out),
            StageKind::Dedup { within, attrs, .. } => {
                if let Some(w) = within {
                    expr_params(w, out);
                }
                attrs_params(attrs, out);
            }
            StageKind::Union { streams, attrs } => {
                for n in streams {
                    out.push(Symbol { kind: SymbolKind::Stream, name: n.text.clone(), span: n.span, def: false });
                }
                attrs_params(attrs, out);
            }
            StageKind::Join(j) => {
                out.push(Symbol {
                    kind: SymbolKind::Stream,
                    name: j.right.text.clone(),
                    span: j.right.span,
                    def: false,
                });
                expr_params(&j.on, out);
                if let Some(t) = &j.as_of {
                    expr_params(t, out);
                }
                match &j.bound {
                    Some(JoinBound::Within { lower, upper, .. }) => {
                        expr_params(lower, out);
                        expr_params(upper, out);
                    }
                    Some(JoinBound::Window(c)) => connector(c, out),
                    None => {}
                }
                for p in j.props.iter().flat_map(|p| &p.entries) {
                    expr_params(&p.value, out);
                }
                attrs_params(&j.attrs, out);
            }
            StageKind::Top(t) => {
                expr_params(&t.count, out);
                attrs_params(&t.attrs, out);
            }
            StageKind::Versioned { .. } => {}
            StageKind::Unnest(u) => attrs_params(&u.attrs, out),
        }
    }
}

fn connector(c: &Connector, out: &mut Vec<Symbol>) {
    if let Some(props) = &c.props {
        for p in &props.entries {
            match &p.value.kind {
                ExprKind::Ident(name) if p.key.text == "schema" => {
                    out.push(Symbol { kind: SymbolKind::Schema, name: name.clone(), span: p.value.span, def: false })
                }
                _ => expr_params(&p.value, out),
            }
        }
    }
    attrs_params(&c.attrs, out);
}

fn props_params(props: Option<&Props>, out: &mut Vec<Symbol>) {
    for p in props.iter().flat_map(|p| &p.entries) {
        expr_params(&p.value, out);
    }
}

fn attrs_params(attrs: &Attrs, out: &mut Vec<Symbol>) {
    if let Some(e) = attrs.parallelism() {
        expr_params(e, out);
    }
}

/// Every `$param` and call in an expression. Iterative: expressions may nest deeply.
fn expr_params(e: &Expr, out: &mut Vec<Symbol>) {
    let mut todo = vec![e];
    while let Some(e) = todo.pop() {
        match &e.kind {
            ExprKind::Param(name) => {
                out.push(Symbol { kind: SymbolKind::Param, name: name.clone(), span: e.span, def: false })
            }
            ExprKind::Unary(_, x) | ExprKind::IsNull(x, _) | ExprKind::Cast(x, _) => todo.push(x),
            ExprKind::Binary(_, l, r) | ExprKind::Where(l, r) => todo.extend([r.as_ref(), l.as_ref()]),
            ExprKind::If(c, t, f) => todo.extend([f.as_ref(), t.as_ref(), c.as_ref()]),
            ExprKind::Call(f, args) => {
                out.push(Symbol { kind: SymbolKind::Function, name: f.text.clone(), span: f.span, def: false });
                todo.extend(args.iter().rev());
            }
            ExprKind::List(args) => todo.extend(args.iter().rev()),
            ExprKind::Str(_)
            | ExprKind::Int(_)
            | ExprKind::Float(_)
            | ExprKind::Bool(_)
            | ExprKind::Duration(_)
            | ExprKind::None
            | ExprKind::Null
            | ExprKind::Ident(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(src: &str, expect: &[(&str, SymbolKind, bool, &str)]) {
        let parsed = crate::parse(src);
        assert!(parsed.diagnostics.is_empty(), "{:#?}", parsed.diagnostics);
        let got: Vec<(String, SymbolKind, bool, String)> = symbols(&parsed.file)
            .into_iter()
            .map(|s| (s.name, s.kind, s.def, src[s.span.start..s.span.end].to_string()))
            .collect();
        let want: Vec<(String, SymbolKind, bool, String)> =
            expect.iter().map(|(n, k, d, t)| (n.to_string(), *k, *d, t.to_string())).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn definitions_and_uses_in_order() {
        use SymbolKind::*;
        check(
            "job \"j\"\nparam servers: string = \"x\"\nflag fast\nset parallelism.default = if $fast then 2 else 1\n\
             schema S { a: int }\nlet s = source kafka { servers: $servers, schema: S }\n\
             from s | filter a > $servers and len(upper(k)) > 1 | sink print parallelism $fast\n",
            &[
                ("servers", Param, true, "servers"),
                ("fast", Param, true, "fast"),
                ("fast", Param, false, "$fast"),
                ("S", Schema, true, "S"),
                ("s", Stream, true, "s"),
                ("servers", Param, false, "$servers"),
                ("S", Schema, false, "S"),
                ("s", Stream, false, "s"),
                ("servers", Param, false, "$servers"),
                ("len", Function, false, "len"),
                ("upper", Function, false, "upper"),
                ("fast", Param, false, "$fast"),
            ],
        );
    }
}
