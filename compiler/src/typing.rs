//! Name resolution and type checking of record expressions: `filter`,
//! `map`, `select`, and the outputs and arguments of `aggregate`.
//!
//! An expression is checked against the schema of the records it reads and
//! becomes an [`ir::Expr`](crate::ir::Expr) with fields as indices and every
//! implicit conversion made explicit.

use crate::consts::{Const, Params};
use crate::ir::{AggCall, AggFunc, BinOp, DataType, Expr, Function, Schema, SourceSpan, Value};
use crate::udf::{Imported, ImportedFn, Udfs};
use flowc_dsl::ast::{self, BinaryOp, ExprKind, UnaryOp};
use flowc_dsl::diagnostic::suggest;
use flowc_dsl::{Diagnostic, Span};

/// Where an expression is evaluated.
pub enum Scope<'a> {
    /// Over one record of this schema.
    Record(&'a Schema),
    /// In an `aggregate`'s output: over the keys, the aggregates (collected
    /// into `aggs`, their arguments over `input`) and the window bounds.
    Aggregate { input: &'a Schema, key: &'a [usize], aggs: &'a mut Vec<AggCall> },
}

pub struct Typer<'p> {
    pub params: &'p Params,
    /// The Rust functions the job imports.
    pub udfs: &'p Udfs,
    pub diagnostics: Vec<Diagnostic>,
}

/// An expression failed to check; the reason is in the diagnostics.
pub struct Failed;

type Typed = Result<(Expr, DataType), Failed>;

impl<'p> Typer<'p> {
    pub fn new(params: &'p Params, udfs: &'p Udfs) -> Typer<'p> {
        Typer { params, udfs, diagnostics: Vec::new() }
    }

    fn fail(&mut self, d: Diagnostic) -> Failed {
        self.diagnostics.push(d);
        Failed
    }

    /// Checks an expression that must have type `want`.
    pub fn expect(&mut self, e: &ast::Expr, scope: &mut Scope, want: DataType, what: &str) -> Result<Expr, Failed> {
        let (x, ty) = self.expr(e, scope)?;
        if ty != want {
            return Err(self.fail(
                Diagnostic::error("flow::check::type", format!("{what} must be {want}, not {ty}"), e.span)
                    .with_label(format!("this is {ty}")),
            ));
        }
        Ok(x)
    }

    pub fn expr(&mut self, e: &ast::Expr, scope: &mut Scope) -> Typed {
        match &e.kind {
            ExprKind::Str(s) => Ok((Expr::Literal(Value::Str(s.clone())), DataType::String)),
            ExprKind::Int(i) => Ok(int_literal(*i)),
            ExprKind::Float(x) => Ok((Expr::Literal(Value::Double(*x)), DataType::Double)),
            ExprKind::Bool(b) => Ok((Expr::Literal(Value::Bool(*b)), DataType::Bool)),
            ExprKind::Duration(d) => {
                let ms = d.as_millis().and_then(|m| i64::try_from(m).ok()).unwrap_or(i64::MAX);
                Ok((Expr::Literal(Value::Int(ms)), DataType::Long))
            }
            ExprKind::None => Err(self.fail(
                Diagnostic::error("flow::check::type", "`none` has no value in a record", e.span)
                    .with_label("only settings can be `none`"),
            )),
            ExprKind::Param(p) => match self.params.get(p) {
                Some(c) => self.param_value(c, e.span),
                None => {
                    let mut d =
                        Diagnostic::error("flow::check::unknown-param", format!("unknown parameter `${p}`"), e.span)
                            .with_label("not declared");
                    if let Some(s) = suggest(p, self.params.keys().map(String::as_str)) {
                        d = d.with_help(format!("did you mean `${s}`?"));
                    }
                    Err(self.fail(d))
                }
            },
            ExprKind::Ident(name) => self.field(name, e.span, scope),
            ExprKind::Unary(UnaryOp::Not, x) => {
                let x = self.expect(x, scope, DataType::Bool, "the operand of `not`")?;
                Ok((Expr::Not(Box::new(x)), DataType::Bool))
            }
            ExprKind::Unary(UnaryOp::Neg, x) => {
                let (xe, ty) = self.expr(x, scope)?;
                if !ty.is_numeric() {
                    return Err(self.fail(
                        Diagnostic::error("flow::check::type", format!("`-` cannot be applied to {ty}"), x.span)
                            .with_label(format!("this is {ty}")),
                    ));
                }
                Ok((Expr::Neg(Box::new(xe)), ty))
            }
            ExprKind::Binary(op, l, r) => self.binary(*op, l, r, e.span, scope),
            ExprKind::If(c, t, f) => {
                let c = self.expect(c, scope, DataType::Bool, "the condition of `if`")?;
                let (te, tt) = self.expr(t, scope)?;
                let (fe, ft) = self.expr(f, scope)?;
                let Some((te, fe, ty)) = unify(te, tt, fe, ft) else {
                    return Err(self.fail(
                        Diagnostic::error(
                            "flow::check::type",
                            format!("the branches of `if` have different types: {tt} and {ft}"),
                            e.span,
                        )
                        .with_label("both branches must have one type"),
                    ));
                };
                Ok((Expr::If(Box::new(c), Box::new(te), Box::new(fe)), ty))
            }
            ExprKind::Call(f, args) => self.call(f, args, e.span, scope),
        }
    }

    fn param_value(&mut self, c: &Const, span: Span) -> Typed {
        Ok(match c {
            Const::Str(s) => (Expr::Literal(Value::Str(s.clone())), DataType::String),
            Const::Int(i) => int_literal(*i),
            Const::Float(x) => (Expr::Literal(Value::Double(*x)), DataType::Double),
            Const::Bool(b) => (Expr::Literal(Value::Bool(*b)), DataType::Bool),
            Const::Duration(ms) => (Expr::Literal(Value::Int(i64::try_from(*ms).unwrap_or(i64::MAX))), DataType::Long),
            Const::None | Const::Symbol(_) => {
                return Err(self.fail(
                    Diagnostic::error("flow::check::type", "this parameter has no value usable in a record", span)
                        .with_label("here"),
                ))
            }
        })
    }

    fn field(&mut self, name: &str, span: Span, scope: &mut Scope) -> Typed {
        match scope {
            Scope::Record(schema) => match schema.index_of(name) {
                Some(i) => Ok((Expr::Field(i), schema.fields[i].ty)),
                None => Err(self.fail(unknown_field(name, span, schema))),
            },
            Scope::Aggregate { input, key, .. } => {
                let pos = key.iter().position(|k| input.fields[*k].name == name);
                match pos {
                    Some(p) => Ok((Expr::Key(p), input.fields[key[p]].ty)),
                    None if input.index_of(name).is_some() => {
                        let keys: Vec<String> = key.iter().map(|k| format!("`{}`", input.fields[*k].name)).collect();
                        Err(self.fail(
                            Diagnostic::error(
                                "flow::check::not-grouped",
                                format!("field `{name}` is neither a key nor inside an aggregate"),
                                span,
                            )
                            .with_label("one window has many values of this field")
                            .with_help(if keys.is_empty() {
                                format!("a window without `key_by` has no key: aggregate it, e.g. `max({name})`, or key the stream by it")
                            } else {
                                format!("use a key ({}) or aggregate it, e.g. `max({name})`", keys.join(", "))
                            }),
                        ))
                    }
                    None => Err(self.fail(unknown_field(name, span, input))),
                }
            }
        }
    }

    fn binary(&mut self, op: BinaryOp, l: &ast::Expr, r: &ast::Expr, span: Span, scope: &mut Scope) -> Typed {
        let (le, lt) = self.expr(l, scope)?;
        let (re, rt) = self.expr(r, scope)?;
        let mismatch = |this: &mut Self| {
            this.fail(
                Diagnostic::error(
                    "flow::check::type",
                    format!("`{}` cannot be applied to {lt} and {rt}", op.symbol()),
                    span,
                )
                .with_label(format!("{lt} {} {rt}", op.symbol())),
            )
        };
        let bin = |o: BinOp, a: Expr, b: Expr| Expr::Binary(o, Box::new(a), Box::new(b));
        match op {
            BinaryOp::And | BinaryOp::Or => {
                if lt != DataType::Bool || rt != DataType::Bool {
                    return Err(mismatch(self));
                }
                let o = if op == BinaryOp::And { BinOp::And } else { BinOp::Or };
                Ok((bin(o, le, re), DataType::Bool))
            }
            BinaryOp::Eq | BinaryOp::Ne | BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge => {
                let o = match op {
                    BinaryOp::Eq => BinOp::Eq,
                    BinaryOp::Ne => BinOp::Ne,
                    BinaryOp::Lt => BinOp::Lt,
                    BinaryOp::Le => BinOp::Le,
                    BinaryOp::Gt => BinOp::Gt,
                    _ => BinOp::Ge,
                };
                let Some((le, re, ty)) = unify(le, lt, re, rt) else { return Err(mismatch(self)) };
                if ty == DataType::Bool && !matches!(o, BinOp::Eq | BinOp::Ne) {
                    return Err(mismatch(self));
                }
                Ok((bin(o, le, re), DataType::Bool))
            }
            BinaryOp::Add if lt == DataType::String && rt == DataType::String => {
                Ok((Expr::Call(Function::Concat, vec![le, re]), DataType::String))
            }
            BinaryOp::Add | BinaryOp::Sub if lt == DataType::Timestamp && rt.is_integral() => {
                let o = if op == BinaryOp::Add { BinOp::Add } else { BinOp::Sub };
                Ok((bin(o, le, re), DataType::Timestamp))
            }
            BinaryOp::Sub if lt == DataType::Timestamp && rt == DataType::Timestamp => Ok((
                bin(BinOp::Sub, Expr::Cast(DataType::Long, Box::new(le)), Expr::Cast(DataType::Long, Box::new(re))),
                DataType::Long,
            )),
            BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div | BinaryOp::Rem => {
                if !lt.is_numeric() || !rt.is_numeric() {
                    return Err(mismatch(self));
                }
                let Some((le, re, ty)) = unify(le, lt, re, rt) else { return Err(mismatch(self)) };
                let o = match op {
                    BinaryOp::Add => BinOp::Add,
                    BinaryOp::Sub => BinOp::Sub,
                    BinaryOp::Mul => BinOp::Mul,
                    BinaryOp::Div => BinOp::Div,
                    _ => BinOp::Rem,
                };
                let e = bin(o, le, re);
                // An integer division fails on a zero divisor: the error names this place.
                if ty.is_integral() && matches!(o, BinOp::Div | BinOp::Rem) {
                    return Ok((Expr::At(SourceSpan::new(span.start, span.end), Box::new(e)), ty));
                }
                Ok((e, ty))
            }
        }
    }

    fn call(&mut self, f: &ast::Name, args: &[ast::Expr], span: Span, scope: &mut Scope) -> Typed {
        let name = f.text.as_str();
        if let Some(agg) = AggFunc::by_name(name) {
            return self.aggregate_call(agg, f, args, span, scope);
        }
        if name == "window_start" || name == "window_end" {
            if !matches!(scope, Scope::Aggregate { .. }) {
                return Err(self.fail(
                    Diagnostic::error("flow::check::window-bound", format!("`{name}()` outside `aggregate`"), span)
                        .with_label("there is no window here")
                        .with_help("window bounds are known in the `aggregate` after a `window`"),
                ));
            }
            if !args.is_empty() {
                return Err(self.fail(arity(name, 0, args.len(), span)));
            }
            let e = if name == "window_start" { Expr::WindowStart } else { Expr::WindowEnd };
            return Ok((e, DataType::Timestamp));
        }
        let udfs = self.udfs;
        if let (None, Some(imported)) = (Function::by_name(name), udfs.call(name)) {
            return self.udf_call(imported, f, args, span, scope);
        }
        let Some(func) = Function::by_name(name) else {
            let mut known: Vec<&str> = crate::catalog::functions().iter().map(|f| f.name).collect();
            let mut imported: Vec<&str> = self.udfs.names().collect();
            imported.sort_unstable();
            known.extend(imported);
            let mut d =
                Diagnostic::error("flow::check::unknown-function", format!("unknown function `{name}`"), f.span)
                    .with_label("not a function");
            d = match suggest(name, known.iter().copied()) {
                Some(s) => d.with_help(format!("did you mean `{s}`?")),
                None => d.with_help(format!("the functions are: {}", known.join(", "))),
            };
            return Err(self.fail(d));
        };
        let mut typed = Vec::with_capacity(args.len());
        for a in args {
            typed.push(self.expr(a, scope)?);
        }
        use DataType as T;
        let types: Vec<T> = typed.iter().map(|(_, t)| *t).collect();
        let sig: (&[&[T]], T) = match func {
            Function::Upper | Function::Lower | Function::Trim => (&[&[T::String]], T::String),
            Function::Length => (&[&[T::String]], T::Int),
            Function::Substring => (&[&[T::String], &[T::Int, T::Long], &[T::Int, T::Long]], T::String),
            Function::Contains | Function::StartsWith | Function::EndsWith => (&[&[T::String], &[T::String]], T::Bool),
            Function::Replace => (&[&[T::String], &[T::String], &[T::String]], T::String),
            Function::ToString => (&[&[T::String, T::Int, T::Long, T::Double, T::Bool, T::Timestamp]], T::String),
            Function::Abs => (&[&[T::Int, T::Long, T::Double]], types.first().copied().unwrap_or(T::Long)),
            Function::Millis => (&[&[T::Timestamp]], T::Long),
            Function::ToTimestamp => (&[&[T::Int, T::Long]], T::Timestamp),
            Function::Concat => {
                if typed.is_empty() {
                    return Err(self.fail(arity(name, 1, 0, span)));
                }
                if let Some((i, t)) = types.iter().enumerate().find(|(_, t)| **t != T::String) {
                    return Err(self.fail(
                        Diagnostic::error(
                            "flow::check::type",
                            format!("`concat` takes strings, not {t}"),
                            args[i].span,
                        )
                        .with_label(format!("this is {t}"))
                        .with_help("convert it with `to_string(…)`"),
                    ));
                }
                return Ok((Expr::Call(func, typed.into_iter().map(|(e, _)| e).collect()), T::String));
            }
        };
        let (params, result) = sig;
        if params.len() != typed.len() {
            return Err(self.fail(arity(name, params.len(), typed.len(), span)));
        }
        for (i, (allowed, t)) in params.iter().zip(&types).enumerate() {
            if !allowed.contains(t) {
                let names: Vec<String> = allowed.iter().map(|t| t.to_string()).collect();
                return Err(self.fail(
                    Diagnostic::error(
                        "flow::check::type",
                        format!("argument {} of `{name}` must be {}, not {t}", i + 1, names.join(" or ")),
                        args[i].span,
                    )
                    .with_label(format!("this is {t}")),
                ));
            }
        }
        Ok((Expr::Call(func, typed.into_iter().map(|(e, _)| e).collect()), result))
    }

    /// A call of a function imported with `use rust`: as many arguments as
    /// it has parameters, each of its parameter's type (an `int` widens to
    /// `long` or `double`, a `long` to `double`).
    fn udf_call(
        &mut self,
        imported: &ImportedFn,
        f: &ast::Name,
        args: &[ast::Expr],
        span: Span,
        scope: &mut Scope,
    ) -> Typed {
        let name = f.text.as_str();
        let (at, signature) = match &imported.what {
            Imported::Callable { at, signature } => (*at, signature),
            Imported::Refused(r) => {
                let mut d =
                    Diagnostic::error("flow::udf::signature", format!("`{name}` cannot be called from flowc"), f.span)
                        .with_label("called here")
                        .with_elsewhere(imported.file.clone(), r.span, r.reason.clone());
                if let Some(h) = &r.help {
                    d = d.with_help(h.clone());
                }
                return Err(self.fail(d));
            }
        };
        let mut typed = Vec::with_capacity(args.len());
        for a in args {
            typed.push(self.expr(a, scope)?);
        }
        if typed.len() != signature.params.len() {
            return Err(self.fail(arity(name, signature.params.len(), typed.len(), span).with_elsewhere(
                imported.file.clone(),
                imported.name_span,
                format!("{signature}"),
            )));
        }
        let mut out = Vec::with_capacity(typed.len());
        for (i, ((e, t), p)) in typed.into_iter().zip(&signature.params).enumerate() {
            let want = p.ty.data_type();
            let widened = match (t, want) {
                (t, w) if t == w => Some(e),
                (DataType::Int, DataType::Long) | (DataType::Int | DataType::Long, DataType::Double) => {
                    Some(Expr::Cast(want, Box::new(e)))
                }
                _ => None,
            };
            let Some(e) = widened else {
                let mut d = Diagnostic::error(
                    "flow::check::type",
                    format!("argument {} of `{name}` (`{}: {}`) must be {want}, not {t}", i + 1, p.name, p.ty),
                    args[i].span,
                )
                .with_label(format!("this is {t}"))
                .with_elsewhere(imported.file.clone(), imported.name_span, format!("{signature}"));
                d = match (t, want) {
                    (DataType::Timestamp, DataType::Long | DataType::Int) => {
                        d.with_help("`millis(…)` gives a timestamp's epoch milliseconds")
                    }
                    (DataType::Long | DataType::Int, DataType::Timestamp) => {
                        d.with_help("`to_timestamp(…)` makes a timestamp of epoch milliseconds")
                    }
                    (_, DataType::String) => d.with_help("convert it with `to_string(…)`"),
                    _ => d,
                };
                return Err(self.fail(d));
            };
            out.push(e);
        }
        // A UDF can fail on any row (a panic, a `None`): the error names this place.
        let call = Expr::Udf(at, out);
        Ok((Expr::At(SourceSpan::new(span.start, span.end), Box::new(call)), signature.ret.data_type()))
    }

    fn aggregate_call(
        &mut self,
        agg: AggFunc,
        f: &ast::Name,
        args: &[ast::Expr],
        span: Span,
        scope: &mut Scope,
    ) -> Typed {
        let Scope::Aggregate { input, aggs, .. } = scope else {
            return Err(self.fail(
                Diagnostic::error(
                    "flow::check::aggregate-outside",
                    format!("`{}()` outside `aggregate`", f.text),
                    span,
                )
                .with_label("aggregates need a window")
                .with_help("aggregates are computed per key and window: `| key_by … | window … | aggregate { … }`"),
            ));
        };
        let input: &Schema = input;
        let (arg, arg_type) = match (agg, args) {
            (AggFunc::Count, []) => (None, DataType::Long),
            (AggFunc::Count, _) => return Err(self.fail(arity("count", 0, args.len(), span))),
            (AggFunc::ApproxPercentile { .. }, [a, q]) => {
                let (e, t) = self.expr(a, &mut Scope::Record(input))?;
                if !t.is_numeric() {
                    return Err(self.fail(
                        Diagnostic::error("flow::check::type", format!("`{}` cannot aggregate {t}", f.text), a.span)
                            .with_label(format!("this is {t}"))
                            .with_help("`approx_percentile` takes an int, long or double"),
                    ));
                }
                let fraction = match crate::consts::eval(q, self.params) {
                    Ok(crate::consts::Const::Float(d)) if (0.0..=1.0).contains(&d) => Some(d),
                    Ok(crate::consts::Const::Int(i)) if i == 0 || i == 1 => Some(i as f64),
                    _ => None,
                };
                let Some(fraction) = fraction else {
                    return Err(self.fail(
                        Diagnostic::error(
                            "flow::check::percentile",
                            "the quantile of `approx_percentile` must be a constant from 0 to 1",
                            q.span,
                        )
                        .with_label("not a constant in [0, 1]")
                        .with_help("for the 95th percentile write `approx_percentile(x, 0.95)`"),
                    ));
                };
                let q_millionths = (fraction * 1_000_000.0).round() as u32;
                aggs.push(AggCall {
                    func: AggFunc::ApproxPercentile { q_millionths },
                    arg: Some(e),
                    arg_type: t,
                    result_type: DataType::Double,
                });
                return Ok((Expr::Aggregate(aggs.len() - 1), DataType::Double));
            }
            (AggFunc::ApproxPercentile { .. }, _) => {
                return Err(self.fail(arity("approx_percentile", 2, args.len(), span)))
            }
            (_, [a]) => {
                let mut inner = Scope::Record(input);
                let (e, t) = self.expr(a, &mut inner)?;
                let ok = match agg {
                    AggFunc::Sum | AggFunc::Avg => t.is_numeric(),
                    _ => t != DataType::Bool,
                };
                if !ok {
                    return Err(self.fail(
                        Diagnostic::error("flow::check::type", format!("`{}` cannot aggregate {t}", f.text), a.span)
                            .with_label(format!("this is {t}")),
                    ));
                }
                (Some(e), t)
            }
            (_, _) => return Err(self.fail(arity(&f.text, 1, args.len(), span))),
        };
        let result_type = match agg {
            AggFunc::Count | AggFunc::CountDistinct | AggFunc::ApproxCountDistinct => DataType::Long,
            AggFunc::Avg | AggFunc::ApproxPercentile { .. } => DataType::Double,
            AggFunc::Sum if arg_type.is_integral() => DataType::Long,
            _ => arg_type,
        };
        aggs.push(AggCall { func: agg, arg, arg_type, result_type });
        Ok((Expr::Aggregate(aggs.len() - 1), result_type))
    }
}

fn int_literal(i: i64) -> (Expr, DataType) {
    let ty = if i32::try_from(i).is_ok() { DataType::Int } else { DataType::Long };
    (Expr::Literal(Value::Int(i)), ty)
}

/// Brings two typed expressions to one type, widening numbers.
fn unify(a: Expr, at: DataType, b: Expr, bt: DataType) -> Option<(Expr, Expr, DataType)> {
    if at == bt {
        return Some((a, b, at));
    }
    if !at.is_numeric() || !bt.is_numeric() {
        return None;
    }
    let target = if at == DataType::Double || bt == DataType::Double { DataType::Double } else { DataType::Long };
    let widen = |e: Expr, t: DataType| if t == target { e } else { Expr::Cast(target, Box::new(e)) };
    Some((widen(a, at), widen(b, bt), target))
}

fn unknown_field(name: &str, span: Span, schema: &Schema) -> Diagnostic {
    // After a join, a name on both sides is there only qualified (`clicks.ts`).
    let suffix = format!(".{name}");
    let candidates: Vec<&str> =
        schema.fields.iter().map(|f| f.name.as_str()).filter(|f| f.ends_with(&suffix)).collect();
    if candidates.len() >= 2 && !name.contains('.') {
        let list: Vec<String> = candidates.iter().map(|c| format!("`{c}`")).collect();
        return Diagnostic::error("flow::check::ambiguous-field", format!("ambiguous field `{name}`"), span)
            .with_label(format!("both sides of the join have `{name}`"))
            .with_help(format!("say which: {}, or rename one with `select` first", list.join(" or ")));
    }
    let in_what = schema.name.clone().unwrap_or_else(|| "the input record".to_string());
    let mut d = Diagnostic::error("flow::check::unknown-field", format!("unknown field `{name}`"), span)
        .with_label(format!("no field `{name}` in {in_what}"));
    d = match suggest(name, schema.fields.iter().map(|f| f.name.as_str())) {
        Some(s) => d.with_help(format!("did you mean `{s}`?")),
        None => {
            let names: Vec<&str> = schema.fields.iter().map(|f| f.name.as_str()).collect();
            d.with_help(format!("the fields are: {}", names.join(", ")))
        }
    };
    d
}

fn arity(name: &str, want: usize, got: usize, span: Span) -> Diagnostic {
    let s = |n: usize| if n == 1 { "" } else { "s" };
    Diagnostic::error("flow::check::arity", format!("`{name}` takes {want} argument{}, not {got}", s(want)), span)
        .with_label(format!("{got} argument{} given", s(got)))
}
