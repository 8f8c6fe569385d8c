//! The types of the array functions: `cardinality(a)`, `element_at(a, i)`,
//! `array_contains(a, x)`, `array(x, …)` and `split(s, sep)` (Flink SQL's
//! `CARDINALITY`, `ELEMENT_AT`, `ARRAY_CONTAINS`, `ARRAY[…]`, `SPLIT`).
//! Their signatures are generic in the element type, so they are checked
//! here rather than by the table of fixed signatures.

use super::{arity, Failed, Typed, Typer};
use crate::ir::{DataType, Elem, Expr, Function};
use flowc_dsl::ast;
use flowc_dsl::{Diagnostic, Span};

/// A comparison of arrays: refused, with what to compare instead.
pub(super) fn compared(op: &str, lt: DataType, rt: DataType, span: Span) -> Diagnostic {
    Diagnostic::error("flow::check::type", format!("`{op}` cannot compare arrays ({lt} {op} {rt})"), span)
        .with_label("an array here")
        .with_help("compare their sizes with `cardinality(a)`, an element with `element_at(a, i)`, or look one up with `array_contains(a, x)`")
}

impl Typer<'_> {
    /// Checks a call of an array function whose arguments are `typed`.
    pub(super) fn array_call(
        &mut self,
        func: Function,
        args: &[ast::Expr],
        typed: &mut Vec<(Expr, DataType)>,
        span: Span,
    ) -> Typed {
        let name = func.name();
        let exprs = |typed: &mut Vec<(Expr, DataType)>| -> Vec<Expr> {
            std::mem::take(typed).into_iter().map(|(e, _)| e).collect()
        };
        match func {
            Function::Cardinality => {
                self.count(name, 1, typed.len(), span, "`cardinality(a)`")?;
                self.array_arg(name, args, typed, 0)?;
                Ok((Expr::Call(func, exprs(typed)), DataType::Int))
            }
            Function::ElementAt => {
                self.count(name, 2, typed.len(), span, "`element_at(a, i)`, with `i` from 1")?;
                let element = self.array_arg(name, args, typed, 0)?;
                let t = typed[1].1;
                if !t.is_integral() {
                    return Err(self.fail(
                        Diagnostic::error(
                            "flow::check::type",
                            format!("the index of `element_at` must be int or long, not {t}"),
                            args[1].span,
                        )
                        .with_label(format!("this is {t}"))
                        .with_help("indices count from 1, as Flink SQL's `ELEMENT_AT`"),
                    ));
                }
                Ok((Expr::Call(func, exprs(typed)), element))
            }
            Function::ArrayContains => {
                self.count(name, 2, typed.len(), span, "`array_contains(a, x)`")?;
                let element = self.array_arg(name, args, typed, 0)?;
                let t = typed[1].1;
                match (element, t) {
                    (e, t) if e == t => {}
                    // A number of another width is widened to the element's type.
                    (e, t)
                        if t.is_numeric() && (e == DataType::Double || (e == DataType::Long && t == DataType::Int)) =>
                    {
                        let (x, _) = typed.remove(1);
                        typed.push((Expr::Cast(e, Box::new(x)), e));
                    }
                    _ => {
                        return Err(self.fail(
                            Diagnostic::error(
                                "flow::check::type",
                                format!("`array_contains` looks for {element} elements, and this is {t}"),
                                args[1].span,
                            )
                            .with_label(format!("this is {t}"))
                            .with_secondary(args[0].span, format!("an {}", typed[0].1))
                            .with_help(format!("look for {element}, converting with `cast(… as {element})`")),
                        ))
                    }
                }
                Ok((Expr::Call(func, exprs(typed)), DataType::Bool))
            }
            Function::Array => {
                if typed.is_empty() {
                    return Err(self.fail(
                        arity(name, 1, 0, span)
                            .with_help("an array needs an element to give it a type: `array(\"a\", \"b\")`"),
                    ));
                }
                // One type for all: numbers widen to the widest, as in `coalesce`.
                let mut ty = typed[0].1;
                for (i, (_, t)) in typed.iter().enumerate() {
                    let widened = match (ty, *t) {
                        (a, b) if a == b => Some(a),
                        (a, b) if a.is_numeric() && b.is_numeric() => {
                            Some(if a == DataType::Double || b == DataType::Double {
                                DataType::Double
                            } else {
                                DataType::Long
                            })
                        }
                        _ => None,
                    };
                    let element = widened.and_then(Elem::of);
                    let Some(element) = element else {
                        let what = if t.is_array() || ty.is_array() {
                            format!("an array's elements are scalars, and this is {t}")
                        } else {
                            format!("the elements of `array` have different types: {ty} and {t}")
                        };
                        return Err(self.fail(
                            Diagnostic::error("flow::check::type", what, args[i].span)
                                .with_label(format!("this is {t}"))
                                .with_help("give every element one scalar type, e.g. with `cast(… as …)`"),
                        ));
                    };
                    ty = element.ty();
                }
                // A null argument is a null element: the caller, which knows
                // which arguments may be null, makes the elements nullable.
                let exprs: Vec<Expr> = std::mem::take(typed)
                    .into_iter()
                    .map(|(e, t)| if t == ty { e } else { Expr::Cast(ty, Box::new(e)) })
                    .collect();
                let element = Elem::of(ty).ok_or(Failed)?;
                Ok((Expr::Call(func, exprs), DataType::Array(element)))
            }
            _ => {
                // `split`
                self.count(name, 2, typed.len(), span, "`split(s, delimiter)`")?;
                for (i, (_, t)) in typed.iter().enumerate() {
                    if *t != DataType::String {
                        return Err(self.fail(
                            Diagnostic::error(
                                "flow::check::type",
                                format!("argument {} of `split` must be string, not {t}", i + 1),
                                args[i].span,
                            )
                            .with_label(format!("this is {t}")),
                        ));
                    }
                }
                Ok((Expr::Call(func, exprs(typed)), DataType::Array(Elem::STRING)))
            }
        }
    }

    /// `want` arguments, else an arity error with `usage` as the help.
    fn count(&mut self, name: &str, want: usize, got: usize, span: Span, usage: &str) -> Result<(), Failed> {
        if want == got {
            return Ok(());
        }
        Err(self.fail(arity(name, want, got, span).with_help(usage.to_string())))
    }

    /// Argument `i` of `name`, which must be an array: its element type.
    fn array_arg(
        &mut self,
        name: &str,
        args: &[ast::Expr],
        typed: &[(Expr, DataType)],
        i: usize,
    ) -> Result<DataType, Failed> {
        let t = typed[i].1;
        match t.element() {
            Some(e) => Ok(e),
            None => Err(self.fail(
                Diagnostic::error(
                    "flow::check::type",
                    format!("argument {} of `{name}` must be an array, not {t}", i + 1),
                    args[i].span,
                )
                .with_label(format!("this is {t}"))
                .with_help(if t == DataType::String {
                    "make one with `split(s, \",\")` or `array(x, …)`, or declare the field `array<…>` in the schema"
                } else {
                    "make one with `array(x, …)`, or declare the field `array<…>` in the schema"
                }),
            )),
        }
    }
}
