//! `top N by f [desc|asc] [as rank]` after a windowed `aggregate`: the
//! rows of each window ranked across keys (Flink SQL's window Top-N), run
//! in parallel by re-partitioning the rows by window.

use super::stream::StreamEnd;
use super::Checker;
use crate::consts::{self, Const};
use crate::ir::*;
use crate::logical::{JobSettings, Partitioning};
use flowc_dsl::ast::TopStage;
use flowc_dsl::diagnostic::suggest;
use flowc_dsl::{Diagnostic, Span};

/// What the stream before a `top` says about the window its rows come
/// from, as the stage walk tracks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum WindowRows {
    /// Not the rows of a windowed `aggregate` (or no longer: a stage in
    /// between changed their time).
    No,
    /// Rows of an event-time window that fires once.
    EventTime,
    /// Rows of a processing-time window.
    ProcessingTime,
    /// Rows of a window that fires again for late records.
    Lateness,
}

impl Checker {
    /// `top N by f …`; `rows` says whether the input is a windowed
    /// aggregate's rows.
    pub(super) fn top(
        &mut self,
        input: &StreamEnd,
        t: &TopStage,
        rows: WindowRows,
        span: Span,
        settings: &JobSettings,
    ) -> StreamEnd {
        let mut ok = true;
        let refuse = |code: &'static str, message: &str, label: &str, help: &str| {
            Diagnostic::error(code, message.to_string(), span).with_label(label.to_string()).with_help(help.to_string())
        };
        match rows {
            WindowRows::EventTime => {}
            WindowRows::No => {
                self.err(refuse(
                    "flow::check::top-without-window",
                    "`top` ranks the rows of each window: it needs a windowed `aggregate` before it",
                    "no window's rows here",
                    "for example `| key_by page | window tumbling { size: 1m } | aggregate { page, views: count() } | top 3 by views`",
                ));
                ok = false;
            }
            WindowRows::ProcessingTime => {
                self.err(refuse(
                    "flow::check::top-processing-time",
                    "`top` needs an event-time window before it",
                    "the window before it is in processing time",
                    "a processing-time window closes at a different moment in each subtask, so no one knows when all its rows are in; use `time: event`",
                ));
                ok = false;
            }
            WindowRows::Lateness => {
                self.err(refuse(
                    "flow::check::top-after-lateness",
                    "`top` cannot follow a window with `lateness`",
                    "its window fires again for late records",
                    "a window that fires again would need its ranking taken back; remove `lateness` (late records can go to `late: name`)",
                ));
                ok = false;
            }
        }
        let n = match consts::eval(&t.count, &self.params) {
            Ok(Const::Int(n)) if n >= 1 => Some(n as u64),
            Ok(v) => {
                self.err(
                    Diagnostic::error(
                        "flow::check::top-count",
                        format!("`top` takes a positive number of rows, not {v}"),
                        t.count.span,
                    )
                    .with_label("not a positive integer"),
                );
                None
            }
            Err(d) => {
                self.err(d);
                None
            }
        };
        let field = if input.is_unknown_field(&t.field.text) {
            None
        } else {
            match input.schema.index_of(&t.field.text) {
                Some(i) if input.schema.fields[i].ty.is_array() => {
                    let ty = input.schema.fields[i].ty;
                    self.err(
                        Diagnostic::error(
                            "flow::check::type",
                            format!("cannot rank by `{}`: it is {ty}, and arrays have no order", t.field.text),
                            t.field.span,
                        )
                        .with_label("an array")
                        .with_help(format!(
                            "rank by a number made of it, `map {{ n: cardinality({}) }}`",
                            t.field.text
                        )),
                    );
                    None
                }
                Some(i) => Some(i),
                None => {
                    let names: Vec<&str> = input.schema.fields.iter().map(|f| f.name.as_str()).collect();
                    let d = Diagnostic::error(
                        "flow::check::unknown-field",
                        format!("cannot rank by `{}`: no such field", t.field.text),
                        t.field.span,
                    )
                    .with_label("not a field of the input");
                    self.err(match suggest(&t.field.text, names.iter().copied()) {
                        Some(s) => d.with_help(format!("did you mean `{s}`?")),
                        None => d.with_help(format!("the fields are: {}", names.join(", "))),
                    });
                    None
                }
            }
        };
        let rank_name = t.rank.as_ref().map_or("rank", |r| r.text.as_str()).to_string();
        if let Some(i) = input.schema.index_of(&rank_name) {
            let at = t.rank.as_ref().map_or(span, |r| r.span);
            self.err(
                Diagnostic::error(
                    "flow::check::duplicate-field",
                    format!("the rank field `{rank_name}` is already a field of the input"),
                    at,
                )
                .with_label(format!("the input's field #{} is `{rank_name}`", i + 1))
                .with_help("name the rank otherwise: `top 3 by views as rnk`"),
            );
            ok = false;
        }
        let mut schema = input.schema.clone();
        schema.name = None;
        schema.fields.push(Field::new(rank_name, DataType::Long));
        let kind = match (n, field) {
            (Some(n), Some(field)) if ok => Some(OperatorKind::WindowTop(WindowTop {
                n,
                field,
                descending: t.descending(),
                rank_field: schema.fields.len() - 1,
            })),
            _ => None,
        };
        let op = self.add_op(
            kind,
            format!("Top{}", n.map_or(String::new(), |n| n.to_string())),
            &t.attrs,
            Some(input),
            Partitioning::Window,
            schema.clone(),
            span,
            settings,
        );
        StreamEnd { op, schema, unknown: input.unknown.clone(), has_watermark: input.has_watermark, span }
    }
}
