//! What bounds a join's state: `within lower, upper` (an interval join),
//! `window …` (a window join), `as of` (a temporal join, see `temporal`),
//! or, with none of them, `ttl D` (a regular join, Flink SQL's join on
//! keys alone under `table.exec.state.ttl`); and `{ late: name }`, the
//! stream of the left's late records, for the joins in event time.

use super::super::stream::StreamEnd;
use super::super::versioned::Versioned;
use super::super::Checker;
use crate::consts::{self, Const};
use crate::ir::*;
use flowc_dsl::ast::{self, ExprKind, JoinStage, UnaryOp};
use flowc_dsl::{Diagnostic, Span};

impl Checker {
    /// The bound of `j` (`None` if it does not check, and said why), and
    /// whether `ttl` fits it: only a join without `within`, `window` or
    /// `as of` takes one. `temporal`: the versioned right of an `as of`.
    pub(super) fn join_bound(
        &mut self,
        j: &JoinStage,
        left: &StreamEnd,
        right_name: &str,
        temporal: Option<&Versioned>,
    ) -> (Option<JoinBound>, bool) {
        let mut ok = true;
        let ttl = j.attrs.ttl().map(|e| e.span);
        let bound = match &j.bound {
            None if j.as_of.is_none() => match ttl {
                Some(_) => self.regular_join(j),
                None => {
                    self.err(
                        Diagnostic::error("flow::check::join-unbounded", "a join needs a bound", j.on.span)
                            .with_label("every row would be kept forever")
                            .with_help(format!(
                                "bound it in event time: `within -10m, 0s` (a `{right_name}` row at most 10m before the left one), `window tumbling {{ size: 1m }}`, or `as of ts` against a `versioned by` stream; or, for a join on keys alone (Flink SQL's regular join), keep each row for a time: `ttl 1d`"
                            )),
                    );
                    None
                }
            },
            None => None,
            Some(ast::JoinBound::Within { lower, upper, span: bspan }) => {
                let lo = self.signed_duration(lower);
                let hi = self.signed_duration(upper);
                match (lo, hi) {
                    (Some(lo), Some(hi)) if lo > hi => {
                        self.err(
                            Diagnostic::error(
                                "flow::check::join-bounds",
                                format!("the lower bound ({lo}ms) is above the upper bound ({hi}ms)"),
                                *bspan,
                            )
                            .with_label("no row can match")
                            .with_help("write the lower bound first: `within -10m, 0s`"),
                        );
                        None
                    }
                    (Some(lower_ms), Some(upper_ms)) => Some(JoinBound::Interval { lower_ms, upper_ms }),
                    _ => None,
                }
            }
            Some(ast::JoinBound::Window(c)) => match self.window_spec(c, left) {
                Some(w) if w.time == TimeDomain::ProcessingTime => {
                    self.err(
                        Diagnostic::error("flow::check::join-window-time", "a window join is in event time", c.span)
                            .with_label("`time: processing` is not offered for joins")
                            .with_help("remove `time: processing`; both inputs need a `watermark`"),
                    );
                    None
                }
                Some(w) if matches!(w.kind, WindowKind::Session { .. }) => {
                    self.err(
                        Diagnostic::error("flow::check::join-window-kind", "a window join takes a tumbling or sliding window", c.span)
                            .with_label("session windows are not offered for joins")
                            .with_help("use `window tumbling { … }` or `window sliding { … }`, or an interval join: `within lower, upper`"),
                    );
                    None
                }
                Some(w) => Some(JoinBound::Window(w.kind)),
                None => None,
            },
        };
        let bound = match temporal {
            Some(v) if j.bound.is_none() => Some(JoinBound::Temporal { deleted: v.deleted }),
            _ => bound,
        };
        // `ttl` is the bound of a regular join only.
        if let (Some(tspan), true) = (ttl, j.bound.is_some() || j.as_of.is_some()) {
            self.err(
                Diagnostic::error("flow::check::join-ttl", "a time-bounded join takes no `ttl`", tspan)
                    .with_label(if j.as_of.is_some() { "`as of` already bounds its state" } else { "its bound already limits its state" })
                    .with_help("remove `ttl`: the watermark forgets each row once it can meet no more; `ttl` bounds a join without `within`, `window` or `as of`"),
            );
            ok = false;
        }
        (bound, ok)
    }

    /// A bound of `within`: a duration, maybe negated.
    fn signed_duration(&mut self, e: &ast::Expr) -> Option<i64> {
        let (neg, inner) = match &e.kind {
            ExprKind::Unary(UnaryOp::Neg, x) => (true, x.as_ref()),
            _ => (false, e),
        };
        match consts::eval(inner, &self.params) {
            Ok(Const::Duration(ms)) => {
                let ms = i64::try_from(ms).unwrap_or(i64::MAX / 2);
                Some(if neg { -ms } else { ms })
            }
            Ok(v) => {
                self.err(
                    Diagnostic::error("flow::check::join-bounds", "a join bound must be a duration", e.span)
                        .with_label(format!("this is {}", v.kind()))
                        .with_help("for example `within -10m, 0s`"),
                );
                None
            }
            Err(d) => {
                self.err(d);
                None
            }
        }
    }

    /// `{ late: name }` after a join's bound, or `late: name` in a window
    /// join's window: the stream of the left's late records (the right's
    /// are dropped and counted, as Flink drops them), and whether it
    /// checked. `lateness` in a join's window is refused: a window join
    /// fires each window once.
    pub(super) fn join_late(&mut self, j: &JoinStage, event_time: bool) -> (Option<(String, Span)>, bool) {
        let mut late = None;
        let mut ok = true;
        if let Some(ast::JoinBound::Window(c)) = &j.bound {
            for p in c.props.iter().flat_map(|p| &p.entries) {
                match (p.key.text.as_str(), consts::eval(&p.value, &self.params)) {
                    ("lateness", _) => {
                        self.err(
                            Diagnostic::error(
                                "flow::check::join-window-lateness",
                                "a window join takes no `lateness`",
                                p.span,
                            )
                            .with_label("each window is joined once, when the watermark passes its end")
                            .with_help(
                                "remove it; to keep the left's late records, give them a stream: `late: late_clicks`",
                            ),
                        );
                        ok = false;
                    }
                    ("late", Ok(Const::Symbol(name))) => late = Some((name, p.value.span)),
                    _ => {}
                }
            }
        }
        let props = self.props(j.props.as_ref(), &["late"], "a join");
        match props.get("late") {
            Some((Const::Symbol(_), s)) if late.is_some() => {
                let first = late.as_ref().map_or(*s, |(_, f)| *f);
                self.err(
                    Diagnostic::error("flow::check::join-late", "`late` is given twice", *s)
                        .with_label("again here")
                        .with_secondary(first, "first here, in the window")
                        .with_help("give it once, in the window's settings or after the join"),
                );
                ok = false;
            }
            Some((Const::Symbol(name), s)) => late = Some((name.clone(), *s)),
            Some((v, s)) => {
                self.err(
                    Diagnostic::error(
                        "flow::check::setting-value",
                        format!("`late` takes the name of a new stream, not {}", v.kind()),
                        *s,
                    )
                    .with_label(format!("this is {v}"))
                    .with_help(
                        "for example `{ late: late_clicks }`, then `from late_clicks | …` reads the late records",
                    ),
                );
                ok = false;
            }
            None => {}
        }
        if let (Some((_, s)), false) = (&late, event_time) {
            self.err(
                Diagnostic::error("flow::check::join-late", "only a join in event time has late records", *s)
                    .with_label("a regular join has no watermark to be late for")
                    .with_help("remove `late`, or bound the join in event time: `within`, `window` or `as of`"),
            );
            ok = false;
            late = None;
        }
        (late, ok)
    }

    /// `[left] join s on … ttl D` without `within`, `window` or `as of`: a
    /// regular join whose rows are kept `D` (processing time). A left one
    /// makes a retract stream (`join`).
    fn regular_join(&mut self, j: &JoinStage) -> Option<JoinBound> {
        let ttl_ms = self.ttl(&j.attrs)??;
        Some(JoinBound::Regular { ttl_ms })
    }
}
