//! A join's condition: equalities of a left field and a right field, of
//! equal types, each field named plainly (`f`: the left's, else the
//! right's) or qualified by its side (`left.f`, `<left stream>.f`,
//! `<right stream>.f`).

use super::super::stream::StreamEnd;
use super::super::Checker;
use super::Side;
use flowc_dsl::ast::{self, BinaryOp, ExprKind};
use flowc_dsl::diagnostic::suggest;
use flowc_dsl::{Diagnostic, Span};

impl Checker {
    /// The key fields of `on`: `a == s.b and …`, one side's field against
    /// the other's, of equal types.
    pub(super) fn join_keys(
        &mut self,
        on: &ast::Expr,
        left: &StreamEnd,
        left_name: &str,
        right: &StreamEnd,
        right_name: &str,
    ) -> Option<(Vec<usize>, Vec<usize>)> {
        let mut equalities = Vec::new();
        conjuncts(on, &mut equalities);
        let (mut lk, mut rk) = (Vec::new(), Vec::new());
        let mut ok = true;
        for e in equalities {
            let ExprKind::Binary(BinaryOp::Eq, a, b) = &e.kind else {
                self.err(
                    Diagnostic::error("flow::check::join-condition", "a join condition is equalities of fields", e.span)
                        .with_label("not `field == stream.field`")
                        .with_help(format!("for example `on user == {right_name}.user and region == {right_name}.region`; compute other keys with `map` first")),
                );
                ok = false;
                continue;
            };
            let sa = self.join_field(a, left, left_name, right, right_name);
            let sb = self.join_field(b, left, left_name, right, right_name);
            let (Some(fa), Some(fb)) = (sa, sb) else {
                ok = false;
                continue;
            };
            let ((_, li, ls), (_, ri, rs)) = match (fa.0, fb.0) {
                (Side::Left, Side::Right) => (fa, fb),
                (Side::Right, Side::Left) => (fb, fa),
                _ => {
                    self.err(
                        Diagnostic::error(
                            "flow::check::join-condition",
                            "each equality of a join compares a left field with a right one",
                            e.span,
                        )
                        .with_label("both fields are of one side")
                        .with_help(format!("qualify the right one: `{right_name}.field`")),
                    );
                    ok = false;
                    continue;
                }
            };
            let (lt, rt) = (left.schema.fields[li].ty, right.schema.fields[ri].ty);
            if lt != rt {
                self.err(
                    Diagnostic::error(
                        "flow::check::join-key-type",
                        format!("the join keys have different types: {lt} and {rt}"),
                        ls,
                    )
                    .with_label(format!("this is {lt}"))
                    .with_secondary(rs, format!("this is {rt}"))
                    .with_help("convert one with `map` first, so that equal keys meet in one subtask"),
                );
                ok = false;
                continue;
            }
            lk.push(li);
            rk.push(ri);
        }
        (ok && !lk.is_empty()).then_some((lk, rk))
    }

    /// A field of a join condition: `f` (the left's, else the right's),
    /// `left.f` or `<left stream>.f`, `<right stream>.f`.
    pub(super) fn join_field(
        &mut self,
        e: &ast::Expr,
        left: &StreamEnd,
        left_name: &str,
        right: &StreamEnd,
        right_name: &str,
    ) -> Option<(Side, usize, Span)> {
        let ExprKind::Ident(name) = &e.kind else {
            self.err(
                Diagnostic::error("flow::check::join-condition", "a join key must be a field", e.span)
                    .with_label("an expression")
                    .with_help("compute it with `map` before the join, then join on that field"),
            );
            return None;
        };
        let (side, field) = match name.split_once('.') {
            Some((q, f)) if q == right_name => (Some(Side::Right), f),
            Some((q, f)) if q == left_name || q == "left" => (Some(Side::Left), f),
            Some((q, _)) => {
                // A field of a nested record (`payload.user`), or one a
                // side's earlier join qualifies (`bids.price`).
                if let Some(i) = left.schema.index_of(name) {
                    return Some((Side::Left, i, e.span));
                }
                if let Some(i) = right.schema.index_of(name) {
                    return Some((Side::Right, i, e.span));
                }
                self.err(
                    Diagnostic::error(
                        "flow::check::join-condition",
                        format!("`{q}` is neither side of this join"),
                        e.span,
                    )
                    .with_label("unknown qualifier")
                    .with_help(format!("qualify with `{left_name}` (or `left`) or `{right_name}`")),
                );
                return None;
            }
            None => (None, name.as_str()),
        };
        let in_left = left.schema.index_of(field);
        let in_right = right.schema.index_of(field);
        let found = match side {
            Some(Side::Left) => in_left.map(|i| (Side::Left, i)),
            Some(Side::Right) => in_right.map(|i| (Side::Right, i)),
            None => in_left.map(|i| (Side::Left, i)).or(in_right.map(|i| (Side::Right, i))),
        };
        match found {
            Some((s, i)) => Some((s, i, e.span)),
            None => {
                let (schema, which) = match side {
                    Some(Side::Right) => (&right.schema, right_name),
                    _ => (&left.schema, left_name),
                };
                let names: Vec<&str> = schema.fields.iter().map(|f| f.name.as_str()).collect();
                let d = Diagnostic::error("flow::check::unknown-field", format!("unknown field `{name}`"), e.span)
                    .with_label(format!("no field `{field}` in `{which}`"));
                let d = match suggest(field, names.iter().copied()) {
                    Some(s) => d.with_help(format!("did you mean `{s}`?")),
                    None => d.with_help(format!("the fields are: {}", names.join(", "))),
                };
                self.err(d);
                None
            }
        }
    }
}

/// `a and b and c` → `[a, b, c]`.
fn conjuncts<'e>(e: &'e ast::Expr, out: &mut Vec<&'e ast::Expr>) {
    match &e.kind {
        ExprKind::Binary(BinaryOp::And, a, b) => {
            conjuncts(a, out);
            conjuncts(b, out);
        }
        _ => out.push(e),
    }
}
