//! `join s as of t on …`, the temporal join: `s` must be declared
//! `versioned by` its key, the condition must be on that whole key, `t`
//! must be the left's event-time field, and no other bound may be given.

use super::super::stream::StreamEnd;
use super::super::versioned::Versioned;
use super::super::Checker;
use super::Side;
use crate::ir::*;
use flowc_dsl::ast::{self, JoinStage};
use flowc_dsl::Diagnostic;

impl Checker {
    /// The versioned stream an `as of` join reads (`None` without `as of`
    /// or when it does not check), and whether it checked.
    pub(super) fn temporal_right(
        &mut self,
        j: &JoinStage,
        left: &StreamEnd,
        left_name: &str,
        right: &StreamEnd,
        right_name: &str,
        both_known: bool,
    ) -> (Option<Versioned>, bool) {
        let mut ok = true;
        // `as of`: the version of a `versioned by` stream, no other bound.
        let mut temporal = None;
        if let Some(t) = &j.as_of {
            if let Some(b) = &j.bound {
                let bspan = match b {
                    ast::JoinBound::Within { span, .. } => *span,
                    ast::JoinBound::Window(c) => c.span,
                };
                self.err(
                    Diagnostic::error(
                        "flow::check::join-temporal-bound",
                        "a temporal join takes no other bound",
                        bspan,
                    )
                    .with_label("`as of` already bounds it")
                    .with_help("remove this: each left record meets the one version valid at its time"),
                );
                ok = false;
            }
            if both_known && !self.as_of_time(t, left, left_name, right, right_name) {
                ok = false;
            }
            match right.op.and_then(|op| self.versioned.get(&op)) {
                Some(Some(v)) => temporal = Some(v.clone()),
                // A declaration that failed has said why.
                Some(None) => ok = false,
                None if !both_known || right.op.is_none() => ok = false,
                None => {
                    self.err(
                        Diagnostic::error(
                            "flow::check::join-not-versioned",
                            format!("`{right_name}` is not a versioned stream"),
                            j.right.span,
                        )
                        .with_label("a temporal join reads the versions of a changelog")
                        .with_help(format!(
                            "end its `let` with `| versioned by <key>`: `let {right_name} = source … | watermark updated_at | versioned by id`"
                        )),
                    );
                    ok = false;
                }
            }
        }
        (temporal, ok)
    }

    /// Whether the condition's right fields `rk` are the whole versioned
    /// key of `v`, each once.
    pub(super) fn temporal_key(
        &mut self,
        j: &JoinStage,
        v: &Versioned,
        rk: &[usize],
        right: &StreamEnd,
        right_name: &str,
    ) -> bool {
        let (mut want, mut got) = (v.key.clone(), rk.to_vec());
        want.sort_unstable();
        got.sort_unstable();
        got.dedup();
        if want != got {
            let names = |k: &[usize]| {
                k.iter().map(|i| format!("`{}`", right.schema.fields[*i].name)).collect::<Vec<_>>().join(", ")
            };
            self.err(
                Diagnostic::error(
                    "flow::check::join-temporal-key",
                    format!("a temporal join matches on the versioned key of `{right_name}`"),
                    j.on.span,
                )
                .with_label(format!("on {}, not its key {}", names(rk), names(&v.key)))
                .with_help(format!(
                    "one equality per key field: `on customer_id == {right_name}.{}`",
                    right.schema.fields[v.key[0]].name
                )),
            );
            return false;
        }
        true
    }

    /// `as of t`: `t` is a timestamp field of the left, its event time.
    fn as_of_time(
        &mut self,
        t: &ast::Expr,
        left: &StreamEnd,
        left_name: &str,
        right: &StreamEnd,
        right_name: &str,
    ) -> bool {
        let Some((side, i, s)) = self.join_field(t, left, left_name, right, right_name) else { return false };
        if side == Side::Right || left.schema.fields[i].ty != DataType::Timestamp {
            self.err(
                Diagnostic::error("flow::check::join-as-of", "`as of` takes the left's event-time field", s)
                    .with_label(if side == Side::Right { "a field of the right".to_string() } else { format!("this is {}", left.schema.fields[i].ty) })
                    .with_help("the timestamp field the left's `watermark` reads: each left record meets the version valid at its event time"),
            );
            return false;
        }
        true
    }
}
