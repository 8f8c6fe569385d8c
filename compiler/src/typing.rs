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

mod arrays;

/// Where an expression is evaluated.
pub enum Scope<'a> {
    /// Over one record of this schema.
    Record(&'a Schema),
    /// In an `aggregate`'s output: over the keys, the aggregates (collected
    /// into `aggs`, their arguments over `input`) and the window bounds.
    Aggregate { input: &'a Schema, key: &'a [usize], aggs: &'a mut Vec<AggCall> },
}

impl Scope<'_> {
    /// Whether `e`, checked in this scope, can be null ([`nullable`]).
    fn may_be_null(&self, e: &Expr) -> bool {
        match self {
            Scope::Record(schema) => nullable(e, schema, None),
            Scope::Aggregate { input, key, aggs } => nullable(e, input, Some((key, aggs))),
        }
    }
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
        if !ty.fits(want) {
            let mut d = Diagnostic::error("flow::check::type", format!("{what} must be {want}, not {ty}"), e.span)
                .with_label(format!("this is {ty}"));
            if let Some(help) = element_nulls_help(ty, want) {
                d = d.with_help(help);
            }
            return Err(self.fail(d));
        }
        if ty != want {
            return Ok(Expr::Cast(want, Box::new(x)));
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
            ExprKind::Null => Err(self.fail(untyped_null(e.span))),
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
                // `-x` of an integer overflows on the least long: the error names this place.
                let located = ty.is_integral() && !matches!(xe, Expr::Literal(_));
                let neg = Expr::Neg(Box::new(xe));
                if located {
                    return Ok((Expr::At(SourceSpan::new(e.span.start, e.span.end), Box::new(neg)), ty));
                }
                Ok((neg, ty))
            }
            ExprKind::Binary(op, l, r) => self.binary(*op, l, r, e.span, scope),
            ExprKind::If(c, t, f) => {
                let c = self.expect(c, scope, DataType::Bool, "the condition of `if`")?;
                // A `null` branch takes the other's type (Flink SQL's `CASE … ELSE NULL`).
                let ((te, tt), (fe, ft)) = match (&t.kind, &f.kind) {
                    (ExprKind::Null, ExprKind::Null) => {
                        return Err(self.fail(untyped_null(e.span).with_label("both branches are `null`")))
                    }
                    (ExprKind::Null, _) => {
                        let (fe, ft) = self.expr(f, scope)?;
                        ((typed_null(ft), ft), (fe, ft))
                    }
                    (_, ExprKind::Null) => {
                        let (te, tt) = self.expr(t, scope)?;
                        ((te, tt), (typed_null(tt), tt))
                    }
                    _ => (self.expr(t, scope)?, self.expr(f, scope)?),
                };
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
            ExprKind::Where(call, cond) => self.where_call(call, cond, scope),
            ExprKind::IsNull(x, negated) => {
                let (x, _) = self.expr(x, scope)?;
                Ok((Expr::IsNull(Box::new(x), *negated), DataType::Bool))
            }
            ExprKind::Cast(x, to) => self.cast(x, to, e.span, scope),
            ExprKind::List(_) => Err(self.fail(
                Diagnostic::error("flow::check::list", "a list is a setting's value, not a value of a record", e.span)
                    .with_label("a list here")
                    .with_help("lists are for settings such as `topics: [\"a\", \"b\"]`; an array in a record is `array(\"a\", \"b\")`"),
            )),
        }
    }

    /// `cast(x as T)`: between numbers (a double or long that does not fit
    /// fails), of anything to a string, of a string to anything (parsing,
    /// which may fail), between bools and integers, and between timestamps
    /// and integers (epoch milliseconds).
    fn cast(&mut self, x: &ast::Expr, to: &ast::Name, span: Span, scope: &mut Scope) -> Typed {
        let typed = match x.kind {
            // `cast(null as long)`: a null of that type (Flink SQL's `CAST(NULL AS BIGINT)`).
            ExprKind::Null => None,
            _ => Some(self.expr(x, scope)?),
        };
        let Some(target) = DataType::by_name(&to.text) else {
            return Err(self.fail(
                Diagnostic::error("flow::check::cast", format!("unknown type `{}`", to.text), to.span)
                    .with_label("not a type")
                    .with_help("the types are string, int, long, double, bool and timestamp"),
            ));
        };
        let Some((xe, from)) = typed else { return Ok((typed_null(target), target)) };
        let (ok, fallible) = crate::casts::cast_kind(from, target);
        if !ok {
            let help = match (from, target) {
                (DataType::Timestamp, DataType::Double) | (DataType::Double, DataType::Timestamp) => {
                    "cast through `long` (epoch milliseconds)"
                }
                (DataType::Array(_), _) => {
                    "an array casts to nothing else: convert its elements (`element_at(a, i)`, or each after `| unnest`)"
                }
                _ => "cast through `string` or `long`",
            };
            return Err(self.fail(
                Diagnostic::error("flow::check::cast", format!("cannot cast {from} to {target}"), span)
                    .with_label(format!("this is {from}"))
                    .with_help(help),
            ));
        }
        if from == target {
            return Ok((xe, target));
        }
        let e = Expr::Cast(target, Box::new(xe));
        // A cast that can fail on some data names this place in its error.
        if fallible {
            return Ok((Expr::At(SourceSpan::new(span.start, span.end), Box::new(e)), target));
        }
        Ok((e, target))
    }

    fn param_value(&mut self, c: &Const, span: Span) -> Typed {
        Ok(match c {
            Const::Str(s) => (Expr::Literal(Value::Str(s.clone())), DataType::String),
            Const::Int(i) => int_literal(*i),
            Const::Float(x) => (Expr::Literal(Value::Double(*x)), DataType::Double),
            Const::Bool(b) => (Expr::Literal(Value::Bool(*b)), DataType::Bool),
            Const::Duration(ms) => (Expr::Literal(Value::Int(i64::try_from(*ms).unwrap_or(i64::MAX))), DataType::Long),
            Const::None | Const::Symbol(_) | Const::List(_) => {
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
                // A key by its name, or qualified after a join (`clicks.page`).
                let pos = key
                    .iter()
                    .position(|k| input.fields[*k].name == name)
                    .or_else(|| input.index_of(name).and_then(|i| key.iter().position(|k| *k == i)));
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
        if let Some(d) = null_comparison(op, l, r, span) {
            return Err(self.fail(d));
        }
        // `x + null`: a null of x's type is meant, and is written so.
        let null_side = match (&l.kind, &r.kind) {
            (ExprKind::Null, _) => Some((l, r)),
            (_, ExprKind::Null) => Some((r, l)),
            _ => None,
        };
        if let Some((null, other)) = null_side {
            let mut d = untyped_null(null.span);
            if !matches!(other.kind, ExprKind::Null) {
                let (_, t) = self.expr(other, scope)?;
                d = d.with_help(format!(
                    "`{}` of a null is null: if that is meant, write `cast(null as {t})`",
                    op.symbol()
                ));
            }
            return Err(self.fail(d));
        }
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
                if lt.is_array() || rt.is_array() {
                    return Err(self.fail(arrays::compared(op.symbol(), lt, rt, span)));
                }
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
                Ok((Expr::At(SourceSpan::new(span.start, span.end), Box::new(bin(o, le, re))), DataType::Timestamp))
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
                // Integer arithmetic fails on a result out of the range of a
                // long, and a division on a zero divisor: the error names this place.
                if ty.is_integral() {
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
        if name == "cast" {
            return Err(self.fail(
                Diagnostic::error("flow::check::cast", "`cast` takes a value and a type", span)
                    .with_label("no type given")
                    .with_help("write `cast(x as long)`"),
            ));
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
        let typed = self.args(func, args, span, scope)?;
        use DataType as T;
        let types: Vec<T> = typed.iter().map(|(_, t)| *t).collect();
        let mut typed = typed;
        if let Some(r) = self.special_call(func, f, args, &mut typed, span) {
            // `array(x, …)` of a nullable `x`: an array whose elements may be null.
            return r.map(|(e, t)| match (&e, t) {
                (Expr::Call(Function::Array, xs), DataType::Array(el)) if xs.iter().any(|x| scope.may_be_null(x)) => {
                    (e, DataType::Array(el.with_nulls(true)))
                }
                _ => (e, t),
            });
        }
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
            Function::Floor | Function::Ceil => {
                (&[&[T::Int, T::Long, T::Double]], types.first().copied().unwrap_or(T::Double))
            }
            Function::RegexMatch => (&[&[T::String], &[T::String]], T::Bool),
            Function::DateFormat => (&[&[T::Timestamp], &[T::String]], T::String),
            Function::DateTrunc => (&[&[T::String], &[T::Timestamp]], T::Timestamp),
            Function::SplitPart => (&[&[T::String], &[T::String], &[T::Int, T::Long]], T::String),
            Function::Extract => (&[&[T::String], &[T::Timestamp]], T::Long),
            Function::Md5 => (&[&[T::String]], T::String),
            // Checked by `special_call`.
            Function::Coalesce
            | Function::Round
            | Function::RegexExtract
            | Function::Hash
            | Function::Cardinality
            | Function::ElementAt
            | Function::ArrayContains
            | Function::Array
            | Function::Split => {
                return Err(self.fail(Diagnostic::error(
                    "flow::check::internal",
                    format!("`{name}` was not checked (a bug in flowc)"),
                    span,
                )))
            }
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
        if let Err(d) = self.constant_args(func, args, &typed) {
            return Err(self.fail(d));
        }
        Ok((Expr::Call(func, typed.into_iter().map(|(e, _)| e).collect()), result))
    }

    /// The typed arguments of a call of `func`. A `null` among the
    /// arguments of `coalesce` or `array` takes the type of the first
    /// typed one (Flink SQL's `COALESCE(NULL, x)`, `ARRAY[x, NULL]`);
    /// elsewhere it needs a cast.
    fn args(
        &mut self,
        func: Function,
        args: &[ast::Expr],
        span: Span,
        scope: &mut Scope,
    ) -> Result<Vec<(Expr, DataType)>, Failed> {
        let takes_null = matches!(func, Function::Coalesce | Function::Array);
        let mut typed: Vec<Option<(Expr, DataType)>> = Vec::with_capacity(args.len());
        for a in args {
            typed.push(match a.kind {
                ExprKind::Null if takes_null => None,
                _ => Some(self.expr(a, scope)?),
            });
        }
        let Some(ty) = typed.iter().flatten().map(|(_, t)| *t).next() else {
            if args.is_empty() {
                return Ok(Vec::new());
            }
            return Err(self.fail(
                untyped_null(span)
                    .with_label(format!("every argument of `{}` is `null`", func.name()))
                    .with_help("give one a type: `cast(null as long)` (Flink SQL's `CAST(NULL AS BIGINT)`)"),
            ));
        };
        Ok(typed.into_iter().map(|t| t.unwrap_or_else(|| (typed_null(ty), ty))).collect())
    }

    /// The functions whose signature is not a fixed list of parameter
    /// types: `coalesce` (any number of one type), `round` (an optional
    /// second argument), `regex_extract` (an optional group). `None` for
    /// the others.
    fn special_call(
        &mut self,
        func: Function,
        f: &ast::Name,
        args: &[ast::Expr],
        typed: &mut Vec<(Expr, DataType)>,
        span: Span,
    ) -> Option<Typed> {
        use DataType as T;
        let name = f.text.as_str();
        let result = match func {
            Function::Cardinality
            | Function::ElementAt
            | Function::ArrayContains
            | Function::Array
            | Function::Split => {
                return Some(self.array_call(func, args, typed, span));
            }
            Function::Coalesce => {
                if typed.len() < 2 {
                    return Some(Err(self.fail(
                        Diagnostic::error(
                            "flow::check::arity",
                            format!("`coalesce` takes at least 2 arguments, not {}", typed.len()),
                            span,
                        )
                        .with_label("too few arguments")
                        .with_help("`coalesce(x, default)` gives `default` where `x` is null"),
                    )));
                }
                // One type for all: numbers widen to the widest.
                let mut ty = typed[0].1;
                for (i, (_, t)) in typed.iter().enumerate().skip(1) {
                    let widened = match (ty, *t) {
                        (a, b) if a.join_nulls(b).is_some() => a.join_nulls(b),
                        (a, b) if a.is_numeric() && b.is_numeric() => {
                            Some(if a == T::Double || b == T::Double { T::Double } else { T::Long })
                        }
                        _ => None,
                    };
                    let Some(w) = widened else {
                        return Some(Err(self.fail(
                            Diagnostic::error(
                                "flow::check::type",
                                format!("the arguments of `coalesce` have different types: {ty} and {t}"),
                                args[i].span,
                            )
                            .with_label(format!("this is {t}"))
                            .with_help("give every argument one type, e.g. with `cast(… as …)`"),
                        )));
                    };
                    ty = w;
                }
                let exprs: Vec<Expr> = std::mem::take(typed)
                    .into_iter()
                    .map(|(e, t)| if t == ty { e } else { Expr::Cast(ty, Box::new(e)) })
                    .collect();
                return Some(Ok((Expr::Call(func, exprs), ty)));
            }
            Function::Round => {
                if typed.is_empty() || typed.len() > 2 {
                    return Some(Err(
                        self.fail(arity(name, 1, typed.len(), span).with_help("`round(x)` or `round(x, digits)`"))
                    ));
                }
                let t = typed[0].1;
                if !t.is_numeric() {
                    return Some(Err(self.fail(
                        Diagnostic::error(
                            "flow::check::type",
                            format!("argument 1 of `round` must be a number, not {t}"),
                            args[0].span,
                        )
                        .with_label(format!("this is {t}")),
                    )));
                }
                if let Some((_, d)) = typed.get(1) {
                    if !d.is_integral() {
                        return Some(Err(self.fail(
                            Diagnostic::error(
                                "flow::check::type",
                                format!("the digits of `round` must be int or long, not {d}"),
                                args[1].span,
                            )
                            .with_label(format!("this is {d}")),
                        )));
                    }
                } else {
                    typed.push((Expr::Literal(Value::Int(0)), T::Int));
                }
                t
            }
            Function::Hash => {
                if typed.is_empty() {
                    return Some(Err(
                        self.fail(arity(name, 1, 0, span).with_help("`hash(x, …)` takes one or more values"))
                    ));
                }
                if let Some(i) = typed.iter().position(|(_, t)| t.is_array()) {
                    let t = typed[i].1;
                    return Some(Err(self.fail(
                        Diagnostic::error("flow::check::type", format!("`hash` takes scalars, not {t}"), args[i].span)
                            .with_label(format!("this is {t}"))
                            .with_help("hash its elements one by one after `| unnest`"),
                    )));
                }
                T::Long
            }
            Function::RegexExtract => {
                if typed.len() < 2 || typed.len() > 3 {
                    return Some(Err(self.fail(
                        arity(name, 2, typed.len(), span)
                            .with_help("`regex_extract(s, pattern)` or `regex_extract(s, pattern, group)`"),
                    )));
                }
                for (i, want) in [(0, T::String), (1, T::String), (2, T::Int)] {
                    let Some((_, t)) = typed.get(i) else { continue };
                    let ok = if want == T::Int { t.is_integral() } else { *t == want };
                    if !ok {
                        let what = if want == T::Int { "int".to_string() } else { want.to_string() };
                        return Some(Err(self.fail(
                            Diagnostic::error(
                                "flow::check::type",
                                format!("argument {} of `{name}` must be {what}, not {t}", i + 1),
                                args[i].span,
                            )
                            .with_label(format!("this is {t}")),
                        )));
                    }
                }
                if typed.len() == 2 {
                    typed.push((Expr::Literal(Value::Int(0)), T::Int));
                }
                T::String
            }
            _ => return None,
        };
        if let Err(d) = self.constant_args(func, args, typed) {
            return Some(Err(self.fail(d)));
        }
        let exprs = std::mem::take(typed).into_iter().map(|(e, _)| e).collect();
        Some(Ok((Expr::Call(func, exprs), result)))
    }

    /// Arguments that must be constants, and are checked here: a regular
    /// expression is compiled once, and a bad one is an error now rather
    /// than on every record.
    fn constant_args(&self, func: Function, args: &[ast::Expr], typed: &[(Expr, DataType)]) -> Result<(), Diagnostic> {
        let constant = |i: usize| typed.get(i).map(|(e, _)| e.unlocated());
        match func {
            Function::RegexMatch | Function::RegexExtract => {
                let Some(Expr::Literal(Value::Str(pattern))) = constant(1) else {
                    return Err(Diagnostic::error(
                        "flow::check::regex",
                        format!("the pattern of `{}` must be a constant string", func.name()),
                        args.get(1).map_or(Span::default(), |a| a.span),
                    )
                    .with_label("not a constant")
                    .with_help("write the pattern as a string literal or a parameter; it is compiled once"));
                };
                let re = regex::Regex::new(pattern).map_err(|e| {
                    let msg = e.to_string();
                    let last = msg.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("invalid").trim().to_string();
                    Diagnostic::error("flow::check::regex", "invalid regular expression", args[1].span)
                        .with_label(last.trim_start_matches("error: ").to_string())
                        .with_help(
                            "the syntax is Rust's `regex` crate's (as RE2's): no look-around, no back-references",
                        )
                })?;
                if func == Function::RegexExtract {
                    match constant(2) {
                        Some(Expr::Literal(Value::Int(g))) => {
                            let groups = re.captures_len() - 1;
                            if *g < 0 || *g as usize > groups {
                                return Err(Diagnostic::error(
                                    "flow::check::regex",
                                    format!("the pattern has no group {g}"),
                                    args.get(2).map_or(Span::default(), |a| a.span),
                                )
                                .with_label(format!(
                                    "the pattern has {groups} group{}",
                                    if groups == 1 { "" } else { "s" }
                                ))
                                .with_help("group 0 is the whole match, 1 the first `(…)`"));
                            }
                        }
                        _ => {
                            return Err(Diagnostic::error(
                                "flow::check::regex",
                                "the group of `regex_extract` must be a constant integer",
                                args.get(2).map_or(Span::default(), |a| a.span),
                            )
                            .with_label("not a constant"))
                        }
                    }
                }
                Ok(())
            }
            Function::DateFormat => match constant(1) {
                Some(Expr::Literal(Value::Str(p))) => {
                    crate::timefmt::check_output_pattern(p).map(|_| ()).map_err(|problem| {
                        Diagnostic::error(
                            "flow::check::timestamp-pattern",
                            format!("bad timestamp pattern: {}", problem.message),
                            args[1].span,
                        )
                        .with_label(problem.label)
                        .with_help(problem.help)
                    })
                }
                _ => Err(Diagnostic::error(
                    "flow::check::timestamp-pattern",
                    "the pattern of `date_format` must be a constant string",
                    args.get(1).map_or(Span::default(), |a| a.span),
                )
                .with_label("not a constant")
                .with_help("write it as a string literal or a parameter, e.g. \"yyyy-MM-dd HH\"")),
            },
            Function::DateTrunc => match constant(0) {
                Some(Expr::Literal(Value::Str(u))) if DATE_UNITS.contains(&u.as_str()) => Ok(()),
                other => {
                    let mut d = Diagnostic::error(
                        "flow::check::date-unit",
                        match other {
                            Some(Expr::Literal(Value::Str(u))) => format!("unknown unit `{u}` for `date_trunc`"),
                            _ => "the unit of `date_trunc` must be a constant string".to_string(),
                        },
                        args.first().map_or(Span::default(), |a| a.span),
                    )
                    .with_label("not a unit");
                    d = match other.and_then(|o| match o {
                        Expr::Literal(Value::Str(u)) => suggest(u, DATE_UNITS.iter().copied()),
                        _ => None,
                    }) {
                        Some(s) => d.with_help(format!("did you mean \"{s}\"?")),
                        None => d.with_help(format!("the units are: {}", DATE_UNITS.join(", "))),
                    };
                    Err(d)
                }
            },
            Function::Extract => match constant(0) {
                Some(Expr::Literal(Value::Str(u))) if EXTRACT_UNITS.contains(&u.as_str()) => Ok(()),
                other => {
                    let mut d = Diagnostic::error(
                        "flow::check::date-unit",
                        match other {
                            Some(Expr::Literal(Value::Str(u))) => format!("unknown unit `{u}` for `extract`"),
                            _ => "the unit of `extract` must be a constant".to_string(),
                        },
                        args.first().map_or(Span::default(), |a| a.span),
                    )
                    .with_label("not a unit");
                    d = match other.and_then(|o| match o {
                        Expr::Literal(Value::Str(u)) => suggest(u, EXTRACT_UNITS.iter().copied()),
                        _ => None,
                    }) {
                        Some(s) => d.with_help(format!("did you mean `{s}`?")),
                        None => d.with_help(format!("the units are: {}", EXTRACT_UNITS.join(", "))),
                    };
                    Err(d)
                }
            },
            Function::SplitPart => match constant(2) {
                Some(Expr::Literal(Value::Int(n))) if *n < 1 => Err(Diagnostic::error(
                    "flow::check::split-part",
                    format!("`split_part` counts parts from 1, not {n}"),
                    args[2].span,
                )
                .with_label("the first part is 1")
                .with_help("as PostgreSQL's `split_part`; Flink's `SPLIT_INDEX` counts from 0")),
                _ => Ok(()),
            },
            _ => Ok(()),
        }
    }

    /// A call of a function imported with `use rust`: as many arguments as
    /// it has parameters, each of its parameter's type (an `int` widens to
    /// `long` or `double`, a `long` to `double`; an `array<long>` fits a
    /// `Vec<Option<i64>>`, but an `array<long?>` no `Vec<i64>`).
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
                (t, w) if t.fits(w) => Some(e),
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
                    (DataType::Array(a), DataType::Array(w)) if a.ty() == DataType::Int && w.ty() == DataType::Long => {
                        d.with_help(format!(
                            "an array's elements are not widened: take `Vec<i32>` in `{name}`, \
                             or build the array of longs (`array(cast(x as long), …)`)"
                        ))
                    }
                    (DataType::Array(a), DataType::Array(w)) if a.ty() == w.ty() && a.nullable() => {
                        let elem = p.ty.rust.rust();
                        let vec = if p.ty.optional {
                            format!("Option<Vec<Option<{elem}>>>")
                        } else {
                            format!("Vec<Option<{elem}>>")
                        };
                        d.with_help(format!(
                            "its elements may be null: take `{vec}` in `{name}` (a null element is `None`), \
                             or make them non-null where the array is built (`array(coalesce(x, 0), …)`)"
                        ))
                    }
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

    /// `agg(x) where c` (Flink SQL's `agg(x) FILTER (WHERE c)`): the
    /// aggregate of `if c then x else null`, as aggregates skip nulls
    /// (`count()` counts `if c then 1 else null`). A null condition leaves
    /// the row out, as SQL's. The accumulator is the call's own.
    fn where_call(&mut self, call: &ast::Expr, cond: &ast::Expr, scope: &mut Scope) -> Typed {
        let ExprKind::Call(f, args) = &call.kind else {
            return Err(self.fail(where_not_aggregate(call.span, "this is not a call")));
        };
        let Some(agg) = AggFunc::by_name(&f.text) else {
            return Err(self.fail(where_not_aggregate(f.span, &format!("`{}` is not an aggregate", f.text))));
        };
        if let Some(inner) = first_aggregate(cond) {
            return Err(self.fail(
                Diagnostic::error(
                    "flow::check::where-aggregate",
                    "an aggregate's `where` condition cannot contain an aggregate",
                    inner,
                )
                .with_label("an aggregate in the condition")
                .with_help("the condition runs to the end of the expression: parenthesise the filtered aggregate, `(sum(x) where c) / count()`"),
            ));
        }
        let typed = self.aggregate_call(agg, f, args, call.span, scope)?;
        let Scope::Aggregate { input, aggs, .. } = scope else { return Ok(typed) };
        let input: &Schema = input;
        let c = self.expect(cond, &mut Scope::Record(input), DataType::Bool, "an aggregate's `where` condition")?;
        let Expr::Aggregate(i) = typed.0 else { return Ok(typed) };
        if let Some(a) = aggs.get_mut(i) {
            let (arg, ty) = match a.arg.take() {
                Some(x) => (x, a.arg_type),
                None => (Expr::Literal(Value::Int(1)), DataType::Long),
            };
            a.arg = Some(Expr::If(Box::new(c), Box::new(arg), Box::new(Expr::Literal(Value::Null))));
            a.arg_type = ty;
        }
        Ok(typed)
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
            // `count(x)`: the rows where `x` is not null, as SQL's.
            (AggFunc::Count, [a]) => {
                let mut inner = Scope::Record(input);
                let (e, t) = self.expr(a, &mut inner)?;
                (Some(e), t)
            }
            (AggFunc::Count, _) => {
                return Err(self.fail(
                    arity("count", 0, args.len(), span)
                        .with_help("`count()` counts rows, `count(x)` the rows where `x` is not null"),
                ))
            }
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
                    _ => t != DataType::Bool && !t.is_array(),
                };
                if agg == AggFunc::ArrayAgg && t == DataType::Bool {
                    return Err(self.fail(
                        Diagnostic::error("flow::check::type", "`array_agg` of bool is not offered", a.span)
                            .with_label("this is bool")
                            .with_help("collect it as numbers: `array_agg(cast(x as int))`"),
                    ));
                }
                if !ok {
                    let mut d =
                        Diagnostic::error("flow::check::type", format!("`{}` cannot aggregate {t}", f.text), a.span)
                            .with_label(format!("this is {t}"));
                    if t.is_array() {
                        d = d.with_help("aggregate the elements: `| unnest <array> as item` before the window, then aggregate `item`");
                    }
                    return Err(self.fail(d));
                }
                (Some(e), t)
            }
            (_, _) => return Err(self.fail(arity(&f.text, 1, args.len(), span))),
        };
        let result_type = match agg {
            AggFunc::Count | AggFunc::CountDistinct | AggFunc::ApproxCountDistinct => DataType::Long,
            AggFunc::Avg | AggFunc::ApproxPercentile { .. } => DataType::Double,
            AggFunc::Sum if arg_type.is_integral() => DataType::Long,
            AggFunc::ArrayAgg => DataType::Array(crate::ir::Elem::of(arg_type).unwrap_or(crate::ir::Elem::LONG)),
            _ => arg_type,
        };
        aggs.push(AggCall { func: agg, arg, arg_type, result_type });
        Ok((Expr::Aggregate(aggs.len() - 1), result_type))
    }
}

/// The units `date_trunc` takes.
pub const DATE_UNITS: &[&str] = &["year", "month", "day", "hour", "minute", "second"];
/// The units `extract(unit from t)` takes.
pub const EXTRACT_UNITS: &[&str] = &["year", "month", "day", "hour", "minute", "second", "millisecond", "dayofweek"];

/// Whether `e`, checked over records of `input`, can be null: a nullable
/// field, or anything computed of one (SQL's propagation), except `is
/// null` and a `coalesce` with a non-null argument; `regex_extract` and
/// `split_part` are null where nothing matches, `element_at` out of range.
/// In an aggregate's output (`aggregate`: its key fields and calls), the
/// counts and `array_agg` are never null and the other aggregates are where
/// their argument is.
pub fn nullable(e: &Expr, input: &Schema, aggregate: Option<(&[usize], &[AggCall])>) -> bool {
    let rec = |x: &Expr| nullable(x, input, aggregate);
    match e {
        Expr::Literal(v) => *v == Value::Null,
        Expr::Field(i) => input.fields.get(*i).is_some_and(|f| f.nullable),
        Expr::Key(i) => {
            aggregate.and_then(|(key, _)| key.get(*i)).and_then(|k| input.fields.get(*k)).is_some_and(|f| f.nullable)
        }
        Expr::Aggregate(i) => aggregate.and_then(|(_, aggs)| aggs.get(*i)).is_some_and(|a| {
            // Counts are 0 and `array_agg` is empty over no value, never null.
            !matches!(
                a.func,
                AggFunc::Count | AggFunc::CountDistinct | AggFunc::ApproxCountDistinct | AggFunc::ArrayAgg
            ) && a.arg.as_ref().is_some_and(|x| nullable(x, input, None))
        }),
        Expr::WindowStart | Expr::WindowEnd => false,
        Expr::IsNull(..) => false,
        Expr::Call(Function::Coalesce, args) => args.iter().all(rec),
        // A null argument is a null element (Flink SQL's `ARRAY[x, NULL]`).
        Expr::Call(Function::Array, _) => false,
        Expr::Call(Function::RegexExtract | Function::SplitPart | Function::ElementAt, _) => true,
        // A null needle is looked for among the elements (Flink SQL's `ARRAY_CONTAINS`).
        Expr::Call(Function::ArrayContains, args) => args.first().is_some_and(rec),
        // An `Option` result may be null; a null argument of a plain
        // parameter makes the result null (the function is not called).
        Expr::Udf(r, args) => r.null_result || args.iter().enumerate().any(|(i, a)| !r.takes_null(i) && rec(a)),
        Expr::Call(_, args) => args.iter().any(rec),
        Expr::Cast(_, x) | Expr::Neg(x) | Expr::Not(x) | Expr::At(_, x) => rec(x),
        Expr::Binary(_, a, b) => rec(a) || rec(b),
        // A null condition takes `else`: only the branches matter.
        Expr::If(_, t, f) => rec(t) || rec(f),
    }
}

/// `x where c` of something that is not an aggregate call.
fn where_not_aggregate(span: Span, label: &str) -> Diagnostic {
    Diagnostic::error("flow::check::where-not-aggregate", "`where` filters the rows of an aggregate", span)
        .with_label(label.to_string())
        .with_help("write it after an aggregate call, `count() where price < 10000`; for a value per row use `if … then … else …`")
}

/// The first aggregate call in `e`, if any.
fn first_aggregate(e: &ast::Expr) -> Option<Span> {
    match &e.kind {
        ExprKind::Call(f, _) if AggFunc::by_name(&f.text).is_some() => Some(e.span),
        ExprKind::Call(_, args) | ExprKind::List(args) => args.iter().find_map(first_aggregate),
        ExprKind::Where(a, b) | ExprKind::Binary(_, a, b) => first_aggregate(a).or_else(|| first_aggregate(b)),
        ExprKind::If(a, b, c) => first_aggregate(a).or_else(|| first_aggregate(b)).or_else(|| first_aggregate(c)),
        ExprKind::Unary(_, x) | ExprKind::IsNull(x, _) | ExprKind::Cast(x, _) => first_aggregate(x),
        _ => None,
    }
}

/// A `null` of type `ty`: how the checker writes SQL's `CAST(NULL AS T)`.
/// An untyped null never leaves the checker.
pub fn typed_null(ty: DataType) -> Expr {
    Expr::Cast(ty, Box::new(Expr::Literal(Value::Null)))
}

/// A `null` where nothing gives it a type.
fn untyped_null(span: Span) -> Diagnostic {
    Diagnostic::error("flow::check::untyped-null", "`null` has no type here", span)
        .with_label("a null of which type?")
        .with_help("give it one: `cast(null as long)` (Flink SQL's `CAST(NULL AS BIGINT)`)")
}

/// `x == null` (or `!=`, `<`, …): never true in SQL (it is UNKNOWN), so
/// always a mistake; `x is null` is meant.
fn null_comparison(op: BinaryOp, l: &ast::Expr, r: &ast::Expr, span: Span) -> Option<Diagnostic> {
    if !matches!(op, BinaryOp::Eq | BinaryOp::Ne | BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge) {
        return None;
    }
    let other = match (&l.kind, &r.kind) {
        (ExprKind::Null, _) => r,
        (_, ExprKind::Null) => l,
        _ => return None,
    };
    let x = flowc_dsl::format::expr(other);
    let help = match op {
        BinaryOp::Eq => format!("to test for null, write `{x} is null`"),
        BinaryOp::Ne => format!("to test for a value, write `{x} is not null`"),
        _ => format!("to test for null, write `{x} is null` or `{x} is not null`"),
    };
    Some(
        Diagnostic::error("flow::check::null-comparison", format!("`{}` with `null` is never true", op.symbol()), span)
            .with_label("a comparison with null is null (SQL's UNKNOWN), and drops every row")
            .with_help(help),
    )
}

fn int_literal(i: i64) -> (Expr, DataType) {
    let ty = if i32::try_from(i).is_ok() { DataType::Int } else { DataType::Long };
    (Expr::Literal(Value::Int(i)), ty)
}

/// Why an `array<T?>` does not fit where an `array<T>` is wanted, and
/// what to write instead; `None` for other mismatches.
pub fn element_nulls_help(got: DataType, want: DataType) -> Option<String> {
    match (got, want) {
        (DataType::Array(g), DataType::Array(w)) if g.ty() == w.ty() && g.nullable() && !w.nullable() => Some(format!(
            "its elements may be null and {want}'s may not: read one with `coalesce(element_at(a, i), …)`, or `| unnest` it and `coalesce` each element, or declare {got} where it is wanted"
        )),
        _ => None,
    }
}

/// Brings two typed expressions to one type, widening numbers (and an
/// array's elements to nullable where one side's are).
fn unify(a: Expr, at: DataType, b: Expr, bt: DataType) -> Option<(Expr, Expr, DataType)> {
    if at == bt {
        return Some((a, b, at));
    }
    if let Some(t) = at.join_nulls(bt) {
        let widen = |e: Expr, from: DataType| if from == t { e } else { Expr::Cast(t, Box::new(e)) };
        return Some((widen(a, at), widen(b, bt), t));
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
    if let Some(d) = unknown_qualified(name, span, schema) {
        return d;
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

/// `q.f` after a join that `q` is no side of, or whose side `q` has no
/// `f`; `None` for other names (and a nested record's path, `payload.x`).
fn unknown_qualified(name: &str, span: Span, schema: &Schema) -> Option<Diagnostic> {
    let (q, f) = name.split_once('.')?;
    let sides = schema.qualifiers();
    if sides.is_empty() {
        return None;
    }
    if !sides.contains(&q) {
        let prefix = format!("{q}.");
        if schema.fields.iter().any(|x| x.name.starts_with(&prefix)) {
            return None;
        }
        let list: Vec<String> = sides.iter().filter(|s| **s != "left").map(|s| format!("`{s}`")).collect();
        let mut d = Diagnostic::error("flow::check::unknown-qualifier", format!("`{q}` is no input of the join"), span)
            .with_label(format!("no stream `{q}` was joined here"));
        d = match suggest(q, sides.iter().copied()) {
            Some(s) => d.with_help(format!("did you mean `{s}.{f}`?")),
            None => d.with_help(format!("qualify with a joined stream's name: {}", list.join(" or "))),
        };
        return Some(d);
    }
    let names = schema.fields_of(q);
    let d = Diagnostic::error("flow::check::unknown-field", format!("unknown field `{name}`"), span)
        .with_label(format!("`{q}` has no field `{f}`"));
    Some(match suggest(f, names.iter().copied()) {
        Some(s) => d.with_help(format!("did you mean `{q}.{s}`?")),
        None => d.with_help(format!("the fields of `{q}` are: {}", names.join(", "))),
    })
}

fn arity(name: &str, want: usize, got: usize, span: Span) -> Diagnostic {
    let s = |n: usize| if n == 1 { "" } else { "s" };
    Diagnostic::error("flow::check::arity", format!("`{name}` takes {want} argument{}, not {got}", s(want)), span)
        .with_label(format!("{got} argument{} given", s(got)))
}
