//! `[left] join side as of proctime() on e == side.k`: a lookup join of
//! the stream against a bounded side input (Flink SQL's `JOIN side FOR
//! SYSTEM_TIME AS OF p_time`, with `p_time` a `PROCTIME()` column). The
//! side must be a `let` that is a `source file { … }` alone, without
//! `watch`, or a `source kafka { …, bounded: latest }` alone (not one whose
//! deletions a `versioned by` reads): each subtask of the join reads it
//! whole when it opens, so the
//! source is no operator of the plan (unless a pipeline reads it too).
//! The condition is equalities of an expression of the left's fields with
//! a field of the side (`auction % 10000 == side.key`). The left goes on
//! FORWARD (chained): no shuffle is needed, each subtask has all the side.

use super::super::stream::{StreamEnd, Unknown};
use super::super::Checker;
use super::schema::joined_schema;
use crate::ir::*;
use crate::logical::{JobSettings, Partitioning};
use crate::typing::{Scope, Typer};
use flowc_dsl::ast::{self, BinaryOp, ExprKind, JoinStage};
use flowc_dsl::{Diagnostic, Span};

/// Whether `j` is `join … as of proctime() …` (with arguments or not:
/// the lookup join says they are not taken).
pub(super) fn is_lookup(j: &JoinStage) -> bool {
    matches!(&j.as_of, Some(e) if matches!(&e.kind, ExprKind::Call(n, _) if n.text == "proctime"))
}

impl Checker {
    /// A lookup join: checks the side and the condition, adds the operator.
    pub(super) fn lookup_join(
        &mut self,
        left: &StreamEnd,
        left_name: &str,
        j: &JoinStage,
        span: Span,
        settings: &JobSettings,
    ) -> StreamEnd {
        let right = self.named_stream(&j.right);
        let right_name = j.right.text.as_str();
        let left_name = if left_name == right_name { "left" } else { left_name };
        let both_known = !matches!(left.unknown, Unknown::All) && !matches!(right.unknown, Unknown::All);
        let mut ok = true;
        if let Some(ast::Expr { kind: ExprKind::Call(_, args), span: at }) = &j.as_of {
            if !args.is_empty() {
                self.err(
                    Diagnostic::error("flow::check::join-as-of", "`proctime()` takes no arguments", *at)
                        .with_label("the processing time of each record as it reaches the join")
                        .with_help("write `as of proctime()`"),
                );
                ok = false;
            }
        }
        if let Some(b) = &j.bound {
            let bspan = match b {
                ast::JoinBound::Within { span, .. } => *span,
                ast::JoinBound::Window(c) => c.span,
            };
            self.err(
                Diagnostic::error("flow::check::join-lookup-bound", "a lookup join takes no other bound", bspan)
                    .with_label("the side is read whole: nothing of the stream is kept")
                    .with_help("remove this: each record meets the side input as it was read"),
            );
            ok = false;
        }
        if let Some(t) = j.attrs.ttl() {
            self.err(
                Diagnostic::error("flow::check::join-lookup-bound", "a lookup join takes no `ttl`", t.span)
                    .with_label("a lookup join keeps no state to expire")
                    .with_help("remove it"),
            );
            ok = false;
        }
        if let Some(p) = &j.props {
            self.err(
                Diagnostic::error("flow::check::join-lookup-bound", "a lookup join takes no settings", p.span)
                    .with_label("a lookup join in processing time has no late records")
                    .with_help("remove them"),
            );
            ok = false;
        }
        let side = if right.op.is_some() { self.lookup_side(j, &right, right_name) } else { None };
        ok &= side.is_some() || right.op.is_none();
        if let Some(u) = self.upsert_key(left).cloned() {
            self.err(
                Diagnostic::error(
                    "flow::check::updates",
                    format!("a lookup join cannot take the updates of {}", u.what()),
                    left.span,
                )
                .with_label("this stream is an updating one")
                .with_secondary(u.origin, format!("{} makes {} here", u.maker, u.what()))
                .with_help(format!(
                    "join the records before the {}: a lookup join reads an append-only stream",
                    u.stage
                )),
            );
            ok = false;
        }
        let keys = if both_known { self.lookup_keys(&j.on, left, &right, right_name) } else { None };
        let schema = joined_schema(&left.schema, left_name, &right.schema, right_name, j.left_outer);
        let kind = match (ok, keys, side) {
            (true, Some((left_key, right_key)), Some(side)) => Some(OperatorKind::LookupJoin(LookupJoin {
                join_type: if j.left_outer { JoinType::LeftOuter } else { JoinType::Inner },
                left_key,
                right_key,
                side,
            })),
            _ => None,
        };
        let op = self.add_op(
            kind,
            "LookupJoin".into(),
            &j.attrs,
            Some(left),
            Partitioning::Forward,
            schema.clone(),
            span,
            settings,
        );
        let unknown = if both_known { Unknown::None } else { Unknown::All };
        StreamEnd { op, schema, unknown, has_watermark: left.has_watermark, span }
    }

    /// The file source a lookup join reads: `right` must be a `let` of a
    /// `source file` alone, without `watch`.
    fn lookup_side(&mut self, j: &JoinStage, right: &StreamEnd, right_name: &str) -> Option<LookupSide> {
        let op = right.op?;
        let bounded_help = format!(
            "a lookup side is a bounded source alone, read whole by each subtask: `let {right_name} = source file {{ path: \"…\", format: csv, schema: … }}`, or a `source kafka {{ …, bounded: latest }}`"
        );
        let refuse = |what: &str, label: &str| {
            Diagnostic::error("flow::check::join-lookup-side", format!("`{right_name}` {what}"), j.right.span)
                .with_label(label.to_string())
        };
        let d = match &self.ops[op].kind {
            OperatorKind::FileSource(f) if f.watch_ms.is_none() => {
                self.lookup_sides.push(op);
                return Some(LookupSide::File(f.clone()));
            }
            OperatorKind::KafkaSource(k) if k.bounded && k.tombstones.is_none() => {
                self.lookup_sides.push(op);
                return Some(LookupSide::Kafka(k.clone()));
            }
            OperatorKind::KafkaSource(_) if self.upsert_key(right).is_none() => {
                refuse("is not bounded", "a Kafka source without `bounded: latest` never ends").with_help(
                    "add `bounded: latest` to its settings: each subtask of the join reads the topic up to the offsets that are the latest when it opens",
                )
            }
            OperatorKind::FileSource(_) => refuse("is not bounded", "a file source with `watch` never ends")
                .with_help("remove `watch`: a lookup join reads its side once, when each subtask opens"),
            k if k.is_source() => {
                refuse("is not a bounded file source", "a lookup join reads a file source").with_help(bounded_help)
            }
            _ if self.upsert_key(right).is_some() || self.versioned.contains_key(&op) => {
                refuse("is an updating stream", "a lookup side is a bounded table, read once").with_help(format!(
                    "for a changelog, a temporal join: `join {right_name} as of ts on …`; or {bounded_help}"
                ))
            }
            _ => {
                let help = format!("make the `let` the `source file {{ … }}` alone, and filter or compute after the join; {bounded_help}");
                refuse("is not a source alone", "a lookup join reads its side as the source gives it").with_help(help)
            }
        };
        self.err(d);
        None
    }

    /// `e == side.k and …`: per equality, an expression of the left's
    /// fields (typed as the side field, `int` widened to `long`) and a
    /// field of the side.
    fn lookup_keys(
        &mut self,
        on: &ast::Expr,
        left: &StreamEnd,
        right: &StreamEnd,
        right_name: &str,
    ) -> Option<(Vec<Expr>, Vec<usize>)> {
        let mut equalities = Vec::new();
        conjuncts(on, &mut equalities);
        let (mut lk, mut rk) = (Vec::new(), Vec::new());
        let mut ok = true;
        for e in equalities {
            let side_field = |x: &ast::Expr| side_field(x, left, right, right_name);
            let pair = match &e.kind {
                ExprKind::Binary(BinaryOp::Eq, a, b) => match (side_field(a), side_field(b)) {
                    (None, Some(r)) => Some((a, r, b.span)),
                    (Some(r), None) => Some((b, r, a.span)),
                    _ => None,
                },
                _ => None,
            };
            let Some((l, r, rspan)) = pair else {
                self.err(
                    Diagnostic::error(
                        "flow::check::join-condition",
                        "a lookup join's condition is equalities of the stream's values with the side's fields",
                        e.span,
                    )
                    .with_label(format!("not `expression == {right_name}.field`"))
                    .with_help(format!("for example `on auction % 10000 == {right_name}.key`")),
                );
                ok = false;
                continue;
            };
            let field = &right.schema.fields[r];
            let mut typer = Typer::new(&self.params, &self.udfs);
            let checked = typer.expr(l, &mut Scope::Record(&left.schema));
            self.diags.extend(typer.diagnostics);
            let Ok((x, ty)) = checked else {
                ok = false;
                continue;
            };
            let want = field.ty;
            let x = if ty == want {
                x
            } else if ty.fits(want) && ty != DataType::Timestamp {
                Expr::Cast(want, Box::new(x))
            } else {
                self.err(
                    Diagnostic::error(
                        "flow::check::join-key-type",
                        format!("the join keys have different types: {ty} and {}", field.ty),
                        l.span,
                    )
                    .with_label(format!("this is {ty}"))
                    .with_secondary(rspan, format!("this is {}", field.ty))
                    .with_help(format!("convert it: `cast(… as {})`", field.ty)),
                );
                ok = false;
                continue;
            };
            lk.push(x);
            rk.push(r);
        }
        (ok && !lk.is_empty()).then_some((lk, rk))
    }

    /// Removes the file sources that only lookup joins read (no edge
    /// leaves them), renumbering the edges.
    pub(in crate::check) fn drop_lookup_sides(&mut self) {
        let mut dead: Vec<usize> = std::mem::take(&mut self.lookup_sides)
            .into_iter()
            .filter(|op| !self.edges.iter().any(|e| e.from == *op || e.to == *op))
            .collect();
        dead.sort_unstable();
        dead.dedup();
        if dead.is_empty() {
            return;
        }
        let shift = |i: usize| i - dead.partition_point(|d| *d < i);
        for e in &mut self.edges {
            e.from = shift(e.from);
            e.to = shift(e.to);
        }
        for d in dead.iter().rev() {
            self.ops.remove(*d);
        }
    }
}

/// The side field `x` names: `side.f`, or a plain `f` the left lacks.
fn side_field(x: &ast::Expr, left: &StreamEnd, right: &StreamEnd, right_name: &str) -> Option<usize> {
    let ExprKind::Ident(name) = &x.kind else { return None };
    match name.split_once('.') {
        Some((q, f)) if q == right_name => right.schema.index_of(f),
        Some(_) => None,
        None if left.schema.index_of(name).is_none() => right.schema.index_of(name),
        None => None,
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
