//! What the checker knows about a stream at one point of a pipeline: the
//! operator that produces it, its schema, whether watermarks flow in it —
//! and, after an error upstream, what it does not know.
//!
//! A stage that does not check does not stop the walk: the stages after it
//! are checked against the best-known schema, so that one run reports every
//! independent mistake. What the failed stage would have made is *unknown*:
//! a field it computes, or the whole schema when a source or a `from` does
//! not resolve. An expression that reads something unknown is not checked
//! at all, so that one mistake is reported once, not again at every stage
//! that follows it. No plan is built once anything failed.

use crate::ir::{AggFunc, Schema};
use flowc_dsl::ast::{Expr, ExprKind};
use flowc_dsl::Span;
use std::collections::BTreeSet;

/// A stream bound with `let`, or the current end of a pipeline.
#[derive(Clone)]
pub(super) struct StreamEnd {
    /// The operator that produces the stream; `None` once a stage of the
    /// pipeline failed to check (there is no plan to build then).
    pub op: Option<usize>,
    pub schema: Schema,
    pub unknown: Unknown,
    /// Some watermark stage is upstream (or was meant to be: a watermark
    /// stage that failed counts, so that its windows are not blamed too).
    pub has_watermark: bool,
    pub span: Span,
}

/// What a stream's schema does not tell, after an error upstream.
#[derive(Clone, Default)]
pub(super) enum Unknown {
    /// Fields of these names exist, but their types are unknown.
    #[default]
    None,
    Fields(BTreeSet<String>),
    /// Nothing is known: the stream's head did not resolve.
    All,
}

impl StreamEnd {
    /// A stream of a known schema, produced by operator `op` (if that checked).
    pub fn new(op: Option<usize>, schema: Schema, has_watermark: bool, span: Span) -> StreamEnd {
        StreamEnd { op, schema, unknown: Unknown::None, has_watermark, span }
    }

    /// A stream nothing is known about (an unknown source or stream).
    pub fn unknown(span: Span) -> StreamEnd {
        StreamEnd {
            op: None,
            schema: Schema { name: None, fields: Vec::new() },
            unknown: Unknown::All,
            has_watermark: true,
            span,
        }
    }

    /// The schema as far as it is known: `None` when nothing is; else the
    /// fields of known type.
    pub fn known_schema(&self) -> Option<Schema> {
        match self.unknown {
            Unknown::All => None,
            _ => Some(self.schema.clone()),
        }
    }

    /// Whether a field of this name exists with a type nobody knows.
    pub fn is_unknown_field(&self, name: &str) -> bool {
        match &self.unknown {
            Unknown::None => false,
            Unknown::Fields(names) => names.contains(name),
            Unknown::All => true,
        }
    }

    /// Whether `e` can be checked: it reads no field of unknown type.
    pub fn can_check(&self, e: &Expr) -> bool {
        match &self.unknown {
            Unknown::None => true,
            Unknown::All => false,
            Unknown::Fields(names) => {
                let mut refs = Vec::new();
                field_refs(e, false, &mut refs);
                refs.iter().all(|r| !names.contains(*r))
            }
        }
    }
}

impl Unknown {
    /// Marks fields as of unknown type.
    pub fn add(&mut self, names: impl IntoIterator<Item = String>) {
        match self {
            Unknown::All => {}
            Unknown::Fields(set) => set.extend(names),
            Unknown::None => {
                let set: BTreeSet<String> = names.into_iter().collect();
                if !set.is_empty() {
                    *self = Unknown::Fields(set);
                }
            }
        }
    }

    /// A field is known again: a stage computed it anew.
    pub fn remove(&mut self, name: &str) {
        if let Unknown::Fields(set) = self {
            set.remove(name);
            if set.is_empty() {
                *self = Unknown::None;
            }
        }
    }
}

/// The fields an expression reads, in order, with repeats; with
/// `outside_aggregates`, only those read outside aggregate calls such as
/// `count(…)` (the ones an `aggregate` must find among its keys).
pub(super) fn field_refs<'e>(e: &'e Expr, outside_aggregates: bool, out: &mut Vec<&'e str>) {
    match &e.kind {
        ExprKind::Ident(name) => out.push(name),
        ExprKind::Call(f, args) => {
            if outside_aggregates && AggFunc::by_name(&f.text).is_some() {
                return;
            }
            for a in args {
                field_refs(a, outside_aggregates, out);
            }
        }
        ExprKind::Unary(_, x) | ExprKind::IsNull(x, _) | ExprKind::Cast(x, _) => field_refs(x, outside_aggregates, out),
        ExprKind::List(items) => {
            for x in items {
                field_refs(x, outside_aggregates, out);
            }
        }
        // The condition of `count() where c` is read per row, as the call's argument.
        ExprKind::Where(call, cond) => {
            field_refs(call, outside_aggregates, out);
            if !outside_aggregates {
                field_refs(cond, outside_aggregates, out);
            }
        }
        ExprKind::Binary(_, l, r) => {
            field_refs(l, outside_aggregates, out);
            field_refs(r, outside_aggregates, out);
        }
        ExprKind::If(c, t, f) => {
            field_refs(c, outside_aggregates, out);
            field_refs(t, outside_aggregates, out);
            field_refs(f, outside_aggregates, out);
        }
        ExprKind::Str(_)
        | ExprKind::Int(_)
        | ExprKind::Float(_)
        | ExprKind::Bool(_)
        | ExprKind::Duration(_)
        | ExprKind::None
        | ExprKind::Null
        | ExprKind::Param(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{DataType, Field};

    fn expr(text: &str) -> Expr {
        let parsed = flowc_dsl::parse(&format!("set x = {text}"));
        match parsed.file.items.into_iter().next() {
            Some(flowc_dsl::ast::Item::Set(s)) => s.value,
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn reads_of_unknown_fields_are_not_checked() {
        let schema = Schema { name: None, fields: vec![Field::new("page", DataType::String)] };
        let mut end = StreamEnd::new(Some(0), schema, false, Span::default());
        assert!(end.can_check(&expr("upper(path) == page")));
        end.unknown.add(["path".to_string()]);
        assert!(!end.can_check(&expr("upper(path) == page")));
        assert!(end.can_check(&expr("page")));
        assert!(end.is_unknown_field("path") && !end.is_unknown_field("page"));
        assert!(!StreamEnd::unknown(Span::default()).can_check(&expr("1")));
    }

    #[test]
    fn fields_outside_aggregates() {
        let e = expr("page + to_string(count()) + to_string(max(n)) + x");
        let mut refs = Vec::new();
        field_refs(&e, true, &mut refs);
        assert_eq!(refs, ["page", "x"]);
    }
}
