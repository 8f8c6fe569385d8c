//! From the compiler's [`Expr`] to a tree of typed kernels ([`node`](super::node)),
//! once per operator when a task is deployed.
//!
//! Compiling resolves every type (the checker proved them; an
//! inconsistency is a bug reported at deploy time), folds constants,
//! turns casts between integer types into relabellings, and gives each
//! fallible node its place in the job file. Evaluating walks the tree
//! once per batch, not per record: every node produces the values of all
//! selected rows at once. `and`, `or` and `if` evaluate their right side
//! (or branches) only on the rows that need it, through a narrower
//! selection, so a guard such as `x != 0 and 10 / x > 1` keeps the
//! division away from the rows it excludes.

use super::arrays::{ArrayContainsFn, ArrayHasNullFn, CardinalityFn, ElementAtFn, SplitFn};
use super::cast::CastFn;
use super::dates::{DateFormatFn, DateTruncFn, ExtractFn, Part, Unit};
use super::error::{EvalError, Location, SourceMap};
use super::functions::{Builtin, ColumnFunction};
use super::hash_fn::HashFn;
use super::node::{kind, Node};
use super::regex_fn::RegexFn;
use super::vals::{Sel, Vals};
use crate::data::Batch;
use crate::record::Value;
use flowc_compiler::ir::{BinOp, DataType, Elem, Expr, Function};
use std::sync::Arc;

/// An expression ready to run over batches of one schema.
#[derive(Debug)]
pub struct CompiledExpr {
    node: Node,
    /// The type of its values.
    pub ty: DataType,
}

/// How an aggregate's output sees keys, aggregates and the window: as
/// fields of a record `[keys…, aggregates…, window start, window end]`.
#[derive(Debug, Clone, Copy)]
pub struct AggregateScope {
    pub keys: usize,
    pub aggregates: usize,
}

fn literal_type(v: &Value) -> Result<DataType, String> {
    Ok(match v {
        Value::Str(_) => DataType::String,
        Value::Int(_) => DataType::Long,
        Value::Double(_) => DataType::Double,
        Value::Bool(_) => DataType::Bool,
        Value::Timestamp(_) => DataType::Timestamp,
        Value::Null => return Err("a null literal without a type".into()),
        Value::Array(items) => {
            let first = items.first().ok_or("an empty array literal without a type")?;
            let element = literal_type(first)?;
            if items.iter().any(|v| literal_type(v).ok() != Some(element)) {
                return Err("an array literal of mixed types".into());
            }
            DataType::Array(Elem::of(element).ok_or("an array literal of arrays")?)
        }
    })
}

struct Compiler<'a> {
    input: &'a [DataType],
    sources: &'a SourceMap,
    scope: Option<AggregateScope>,
}

type Compiled = Result<(Node, DataType), String>;

impl CompiledExpr {
    /// Compiles `e` over records of `input`. An error means the plan is
    /// inconsistent (a bug in flowc, or a plan from a foreign tool).
    pub fn compile(e: &Expr, input: &[DataType], sources: &SourceMap) -> Result<CompiledExpr, String> {
        let (node, ty) = Compiler { input, sources, scope: None }.expr(e, None)?;
        Ok(CompiledExpr { node, ty })
    }

    /// Compiles an aggregate's output expression over records of `input`
    /// laid out as `scope` says.
    pub fn compile_aggregate_output(
        e: &Expr,
        input: &[DataType],
        scope: AggregateScope,
        sources: &SourceMap,
    ) -> Result<CompiledExpr, String> {
        let (node, ty) = Compiler { input, sources, scope: Some(scope) }.expr(e, None)?;
        Ok(CompiledExpr { node, ty })
    }

    /// The input field this expression is, if it is only that.
    pub fn as_field(&self) -> Option<usize> {
        match &self.node {
            Node::Field(i) => Some(*i),
            _ => None,
        }
    }

    /// The constant this expression folded to, if it did.
    pub fn as_const(&self) -> Option<&Value> {
        match &self.node {
            Node::Const(v) => Some(v),
            _ => None,
        }
    }

    /// Whether evaluating it can fail (an integer division by something
    /// not a non-zero constant, a fallible function).
    pub fn fallible(&self) -> bool {
        self.node.fallible()
    }

    /// Its values on the selected rows of `batch`.
    pub fn eval<'a>(&'a self, batch: &'a Batch, sel: Sel<'_>) -> Result<Vals<'a>, EvalError> {
        self.node.eval(batch, sel)
    }

    /// A condition: the rows of `sel` where it holds (is true: a null
    /// condition drops the row, as SQL's `WHERE`).
    pub fn select(&self, batch: &Batch, sel: Sel<'_>) -> Result<Vec<u32>, EvalError> {
        let v = self.eval(batch, sel)?;
        let valid = v.validity(sel);
        let b = v.bools(sel)?;
        let n = sel.len();
        let mut out = Vec::with_capacity(n);
        for k in 0..n {
            if b.get(k) && valid.as_ref().is_none_or(|v| v.get(k)) {
                out.push(sel.row(k) as u32);
            }
        }
        Ok(out)
    }
}

impl Compiler<'_> {
    fn expr(&self, e: &Expr, at: Option<Arc<Location>>) -> Compiled {
        let (node, ty) = self.node(e, at)?;
        Ok((fold(node, ty), ty))
    }

    fn field(&self, i: usize) -> Compiled {
        let ty = self.input.get(i).copied().ok_or_else(|| format!("field #{i} does not exist"))?;
        Ok((Node::Field(i), ty))
    }

    fn node(&self, e: &Expr, at: Option<Arc<Location>>) -> Compiled {
        let b = Box::new;
        let scoped = |what: &str| -> Result<AggregateScope, String> {
            self.scope.ok_or_else(|| format!("{what} outside an aggregate's output"))
        };
        Ok(match e {
            Expr::Literal(v) => (Node::Const(v.clone()), literal_type(v)?),
            Expr::Field(i) if self.scope.is_none() => self.field(*i)?,
            Expr::Field(_) => return Err("a record field in an aggregate's output".into()),
            Expr::Key(i) => {
                let s = scoped("a key")?;
                if *i >= s.keys {
                    return Err(format!("key #{i} does not exist"));
                }
                self.field(*i)?
            }
            Expr::Aggregate(i) => {
                let s = scoped("an aggregate")?;
                if *i >= s.aggregates {
                    return Err(format!("aggregate #{i} does not exist"));
                }
                self.field(s.keys + i)?
            }
            Expr::WindowStart => {
                let s = scoped("window_start()")?;
                self.field(s.keys + s.aggregates)?
            }
            Expr::WindowEnd => {
                let s = scoped("window_end()")?;
                self.field(s.keys + s.aggregates + 1)?
            }
            Expr::At(span, inner) => return self.node(inner, self.sources.locate(*span).or(at)),
            Expr::IsNull(x, negated) => {
                let (x, _) = self.expr(x, None)?;
                (Node::IsNull { x: b(x), negated: *negated }, DataType::Bool)
            }
            // A typed `null` (`cast(null as long)`, or a `null` the checker
            // typed by where it stands): a constant of nulls of that type.
            Expr::Cast(to, x) if **x == Expr::Literal(Value::Null) => (Node::Const(Value::Null), *to),
            Expr::Cast(to, x) => {
                let (x, from) = self.expr(x, None)?;
                use DataType as T;
                match (*to, from) {
                    (T::Double, T::Int | T::Long) => (Node::IntToDouble(b(x)), T::Double),
                    (t, f) if t != f && CastFn::new(f, t).is_some() => {
                        let f = CastFn::new(f, t).ok_or("a cast")?;
                        (Node::Call { f: Box::new(f), args: vec![(x, from)], at }, t)
                    }
                    (T::String, f) => {
                        let f = Builtin::new(Function::ToString, &[f]).ok_or_else(|| format!("to_string() of {f}"))?;
                        (Node::Call { f: Box::new(f), args: vec![(x, from)], at }, T::String)
                    }
                    (T::Int | T::Long | T::Timestamp, T::Int | T::Long | T::Timestamp) => (Node::Relabel(b(x)), *to),
                    (t, f) if f.fits(t) => (x, t),
                    (t, f) => return Err(format!("cannot cast {f} to {t}")),
                }
            }
            Expr::Neg(x) => match self.expr(x, None)? {
                (x, t @ (DataType::Int | DataType::Long)) => (Node::NegI { x: b(x), at, int: t == DataType::Int }, t),
                (x, DataType::Double) => (Node::NegF(b(x)), DataType::Double),
                (_, t) => return Err(format!("negating {t}")),
            },
            Expr::Not(x) => match self.expr(x, None)? {
                (x, DataType::Bool) => (Node::Not(b(x)), DataType::Bool),
                (_, t) => return Err(format!("`not` of {t}")),
            },
            Expr::Binary(op, l, r) => {
                let (l, lt) = self.expr(l, None)?;
                let (r, rt) = self.expr(r, None)?;
                self.binary(*op, l, lt, r, rt, at)?
            }
            Expr::If(c, t, f) => {
                let (c, ct) = self.expr(c, None)?;
                let (t, tt) = self.expr(t, None)?;
                // `agg(x) where c` aggregates `if c then x else null`: a null of x's type.
                let (f, ft) = match &**f {
                    Expr::Literal(Value::Null) => (Node::Const(Value::Null), tt),
                    f => self.expr(f, None)?,
                };
                if ct != DataType::Bool || kind(tt) != kind(ft) {
                    return Err(format!("if({ct}, {tt}, {ft})"));
                }
                // Arrays whose elements' nullability differs: elements that
                // may be null. An `int` beside an integer constant is `int`
                // (see `integer_result`).
                let ty = match (tt, ft) {
                    (DataType::Int | DataType::Long, DataType::Int | DataType::Long) => integer_result(tt, ft),
                    _ => tt.join_nulls(ft).unwrap_or(tt),
                };
                (Node::If { c: b(c), t: b(t), f: b(f), ty }, ty)
            }
            Expr::Call(Function::Millis, args) => match args.as_slice() {
                [x] => match self.expr(x, None)? {
                    (x, DataType::Timestamp) => (Node::Relabel(b(x)), DataType::Long),
                    (_, t) => return Err(format!("millis() of {t}")),
                },
                _ => return Err("millis() takes one argument".into()),
            },
            Expr::Call(Function::ToTimestamp, args) => match args.as_slice() {
                [x] => match self.expr(x, None)? {
                    (x, t) if t.is_integral() => (Node::Relabel(b(x)), DataType::Timestamp),
                    (_, t) => return Err(format!("to_timestamp() of {t}")),
                },
                _ => return Err("to_timestamp() takes one argument".into()),
            },
            Expr::Udf(r, args) => {
                let f = self.sources.udf(*r).ok_or_else(|| {
                    format!("a call of UDF #{}.{}, which this task has not loaded", r.library, r.function)
                })?;
                let args = args.iter().map(|a| self.expr(a, None)).collect::<Result<Vec<_>, _>>()?;
                // An array's storage may allow null elements its type does
                // not have (`array(n, n)`): the checker took the elements' nulls.
                if args.len() != f.signature.params.len()
                    || args.iter().zip(&f.signature.params).any(|((_, t), p)| t.join_nulls(p.ty.data_type()).is_none())
                {
                    return Err(format!(
                        "`{}` called with other argument types than {}",
                        f.signature.name, f.signature
                    ));
                }
                let ty = f.return_type();
                (Node::Call { f: Box::new(f), args, at }, ty)
            }
            Expr::Call(Function::Coalesce, args) => {
                let mut args = args.iter().map(|a| self.expr(a, None)).collect::<Result<Vec<_>, _>>()?;
                let Some(first) = args.first().map(|(_, t)| *t) else { return Err("coalesce() of nothing".into()) };
                // One storage for all; an `int` beside integer constants is
                // `int` (see `integer_result`).
                let same = |t: DataType| {
                    kind(t) == kind(first) && (t == DataType::Timestamp) == (first == DataType::Timestamp)
                };
                if !args.iter().all(|(_, t)| same(*t)) {
                    return Err("coalesce() of different types".into());
                }
                // Arrays whose elements' nullability differs: elements that may be null.
                let arrays = args.iter().try_fold(first, |acc, (_, t)| acc.join_nulls(*t));
                let ty = match arrays {
                    _ if args.iter().all(|(_, t)| *t == first) => first,
                    Some(t) if t.is_array() => t,
                    _ => args.iter().fold(first, |ty, (_, t)| integer_result(ty, *t)),
                };
                // A null constant is never chosen: `coalesce(null, x)` is `x`.
                if args.len() > 1 {
                    args.retain(|(n, _)| !matches!(n, Node::Const(Value::Null)));
                }
                match args.as_slice() {
                    [] => (Node::Const(Value::Null), ty),
                    [(_, t)] if *t == ty => {
                        let (only, _) = args.remove(0);
                        (only, ty)
                    }
                    _ => (Node::Coalesce { args: args.into_iter().map(|(n, _)| n).collect(), ty }, ty),
                }
            }
            Expr::Call(f @ (Function::RegexMatch | Function::RegexExtract), args) => {
                let args = args.iter().map(|a| self.expr(a, None)).collect::<Result<Vec<_>, _>>()?;
                let mut it = args.into_iter();
                let (s, pattern, group) = (it.next(), it.next(), it.next());
                let Some((s, DataType::String)) = s else { return Err(format!("{}() of a non-string", f.name())) };
                let Some((Node::Const(Value::Str(pattern)), _)) = pattern else {
                    return Err(format!("{}() with a pattern that is not a constant", f.name()));
                };
                let func = match (f, group) {
                    (Function::RegexMatch, None) => RegexFn::matcher(&pattern)?,
                    (Function::RegexExtract, Some((Node::Const(Value::Int(g)), _))) => RegexFn::extractor(&pattern, g)?,
                    _ => return Err(format!("{}() with the wrong arguments", f.name())),
                };
                let ty = func.return_type();
                (Node::Call { f: Box::new(func), args: vec![(s, DataType::String)], at }, ty)
            }
            Expr::Call(Function::DateFormat, args) => {
                let args = args.iter().map(|a| self.expr(a, None)).collect::<Result<Vec<_>, _>>()?;
                let mut it = args.into_iter();
                match (it.next(), it.next()) {
                    (Some((t, DataType::Timestamp)), Some((Node::Const(Value::Str(p)), _))) => (
                        Node::Call { f: Box::new(DateFormatFn::new(&p)?), args: vec![(t, DataType::Timestamp)], at },
                        DataType::String,
                    ),
                    _ => return Err("date_format() with the wrong arguments".into()),
                }
            }
            Expr::Call(Function::DateTrunc, args) => {
                let args = args.iter().map(|a| self.expr(a, None)).collect::<Result<Vec<_>, _>>()?;
                let mut it = args.into_iter();
                match (it.next(), it.next()) {
                    (Some((Node::Const(Value::Str(u)), _)), Some((t, DataType::Timestamp))) => {
                        let unit = Unit::by_name(&u).ok_or_else(|| format!("date_trunc() to an unknown unit {u:?}"))?;
                        (
                            Node::Call { f: Box::new(DateTruncFn { unit }), args: vec![(t, DataType::Timestamp)], at },
                            DataType::Timestamp,
                        )
                    }
                    _ => return Err("date_trunc() with the wrong arguments".into()),
                }
            }
            Expr::Call(Function::Extract, args) => {
                let args = args.iter().map(|a| self.expr(a, None)).collect::<Result<Vec<_>, _>>()?;
                let mut it = args.into_iter();
                match (it.next(), it.next()) {
                    (Some((Node::Const(Value::Str(u)), _)), Some((t, DataType::Timestamp))) => {
                        let part = Part::by_name(&u).ok_or_else(|| format!("extract() of an unknown unit {u:?}"))?;
                        (
                            Node::Call { f: Box::new(ExtractFn { part }), args: vec![(t, DataType::Timestamp)], at },
                            DataType::Long,
                        )
                    }
                    _ => return Err("extract() with the wrong arguments".into()),
                }
            }
            Expr::Call(Function::Hash, args) => {
                let args = args.iter().map(|a| self.expr(a, None)).collect::<Result<Vec<_>, _>>()?;
                let types = args.iter().map(|(_, t)| *t).collect();
                (Node::Call { f: Box::new(HashFn { args: types }), args, at }, DataType::Long)
            }
            Expr::Call(
                f @ (Function::Cardinality
                | Function::ElementAt
                | Function::ArrayContains
                | Function::Array
                | Function::Split),
                exprs,
            ) => {
                let args = exprs.iter().map(|a| self.expr(a, None)).collect::<Result<Vec<_>, _>>()?;
                let types: Vec<DataType> = args.iter().map(|(_, t)| *t).collect();
                let element = types.first().and_then(|t| t.element());
                let func: Box<dyn ColumnFunction> = match (f, element, types.as_slice()) {
                    (Function::Cardinality, Some(_), [_]) => Box::new(CardinalityFn),
                    (Function::ElementAt, Some(e), [_, i]) if i.is_integral() => Box::new(ElementAtFn { element: e }),
                    (Function::ArrayContains, Some(e), [_, x]) if *x == e => Box::new(ArrayContainsFn { element: e }),
                    (Function::Array, None, [t, ..]) if Elem::of(*t).is_some() && types.iter().all(|u| u == t) => {
                        // Not a call: a null argument is a null element, not a null array.
                        let ty = DataType::Array(Elem::of(*t).ok_or("an array of arrays")?.with_nulls(true));
                        let args = args.into_iter().map(|(n, _)| n).collect();
                        return Ok((Node::MakeArray { args, element: *t }, ty));
                    }
                    (Function::Split, None, [DataType::String, DataType::String]) => Box::new(SplitFn),
                    _ => return Err(format!("{}() cannot take {types:?}", f.name())),
                };
                let ty = func.return_type();
                let needle_may_be_null = *f == Function::ArrayContains
                    && !matches!(args.get(1), Some((Node::Const(v), _)) if *v != Value::Null);
                if let (true, [a, x]) = (needle_may_be_null, exprs.as_slice()) {
                    // Flink SQL's `ARRAY_CONTAINS(a, NULL)`: whether an element is null.
                    let (a, array_ty) = self.expr(a, None)?;
                    let (x, _) = self.expr(x, None)?;
                    let has_null: Box<dyn ColumnFunction> = Box::new(ArrayHasNullFn);
                    return Ok((
                        Node::If {
                            c: b(Node::IsNull { x: b(x), negated: false }),
                            t: b(Node::Call { f: has_null, args: vec![(a, array_ty)], at: at.clone() }),
                            f: b(Node::Call { f: func, args, at }),
                            ty,
                        },
                        ty,
                    ));
                }
                (Node::Call { f: func, args, at }, ty)
            }
            Expr::Call(f, args) => {
                let args = args.iter().map(|a| self.expr(a, None)).collect::<Result<Vec<_>, _>>()?;
                let types: Vec<DataType> = args.iter().map(|(_, t)| *t).collect();
                let builtin =
                    Builtin::new(*f, &types).ok_or_else(|| format!("{}() cannot take {types:?}", f.name()))?;
                let ty = builtin.return_type();
                (Node::Call { f: Box::new(builtin), args, at }, ty)
            }
        })
    }

    fn binary(&self, op: BinOp, l: Node, lt: DataType, r: Node, rt: DataType, at: Option<Arc<Location>>) -> Compiled {
        use DataType as T;
        let b = Box::new;
        let wrong = || Err(format!("`{}` on {lt} and {rt}", op.symbol()));
        Ok(match op {
            BinOp::And | BinOp::Or => {
                if lt != T::Bool || rt != T::Bool {
                    return wrong();
                }
                let node = if op == BinOp::And { Node::And(b(l), b(r)) } else { Node::Or(b(l), b(r)) };
                (node, T::Bool)
            }
            BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
                // As the interpreter: int and long compare with each other,
                // timestamps only with timestamps.
                let same = kind(lt) == kind(rt) && ((lt == T::Timestamp) == (rt == T::Timestamp));
                if !same {
                    return wrong();
                }
                (Node::Cmp { op, kind: kind(lt), a: b(l), b: b(r) }, T::Bool)
            }
            _ => match (lt, rt) {
                (T::Int | T::Long, T::Int | T::Long) => {
                    let ty = integer_result(lt, rt);
                    (Node::ArithI { op, a: b(l), b: b(r), at, int: ty == T::Int }, ty)
                }
                (T::Timestamp, T::Int | T::Long) => {
                    (Node::ArithI { op, a: b(l), b: b(r), at, int: false }, T::Timestamp)
                }
                (T::Double, T::Double) => (Node::ArithF { op, a: b(l), b: b(r) }, T::Double),
                _ => return wrong(),
            },
        })
    }
}

/// `int op int` is `int`, computed in 64 bits and then required to fit
/// 32. The checker gives both operands one type (widening an `int` beside
/// a `long` with a cast), so one `int` operand makes the result `int`: the
/// other is then an integer literal the checker typed `int`, which the
/// plan stores as a plain integer (a `long` here). Two constants are
/// folded as `long`s.
fn integer_result(a: DataType, b: DataType) -> DataType {
    if a == DataType::Int || b == DataType::Int {
        DataType::Int
    } else {
        DataType::Long
    }
}

/// Folds a node whose inputs are all constants into its value, and
/// simplifies `and`/`or`/`if` with a constant condition. A constant that
/// fails (`1 / 0`) stays unfolded: it fails at run time, and only on rows
/// that reach it.
fn fold(node: Node, ty: DataType) -> Node {
    let is_const = |n: &Node| matches!(n, Node::Const(_));
    let foldable = match &node {
        Node::Const(_) | Node::Field(_) => false,
        Node::And(a, b) | Node::Or(a, b) => {
            let want_and = matches!(node, Node::And(..));
            match (&**a, &**b) {
                (Node::Const(Value::Bool(x)), _) => {
                    // false and _ = false; true and x = x; true or _ = true; false or x = x
                    if *x != want_and {
                        return Node::Const(Value::Bool(*x));
                    }
                    let (Node::And(_, b) | Node::Or(_, b)) = node else { return node };
                    return *b;
                }
                _ => is_const(a) && is_const(b),
            }
        }
        Node::If { c, .. } if matches!(**c, Node::Const(Value::Bool(_))) => {
            let Node::If { c, t, f, .. } = node else { return node };
            return if matches!(*c, Node::Const(Value::Bool(true))) { *t } else { *f };
        }
        Node::If { c, t, f, .. } => is_const(c) && is_const(t) && is_const(f),
        Node::Relabel(x) | Node::IntToDouble(x) | Node::NegI { x, .. } | Node::NegF(x) | Node::Not(x) => is_const(x),
        Node::ArithI { a, b, .. } | Node::ArithF { a, b, .. } | Node::Cmp { a, b, .. } => is_const(a) && is_const(b),
        Node::Call { args, .. } => args.iter().all(|(a, _)| is_const(a)),
        Node::IsNull { x, .. } => is_const(x),
        Node::Coalesce { args, .. } | Node::MakeArray { args, .. } => args.iter().all(is_const),
    };
    if !foldable {
        return node;
    }
    let empty = Batch::default();
    let sel = Sel::All(1);
    let value = match node.eval(&empty, sel).and_then(|v| v.into_column(sel, ty)) {
        Ok(c) => c.value(0),
        Err(_) => None,
    };
    match value {
        // A relabelled integer takes the type it was relabelled to.
        Some(Value::Int(x) | Value::Timestamp(x)) if ty == DataType::Timestamp => Node::Const(Value::Timestamp(x)),
        Some(Value::Int(x) | Value::Timestamp(x)) => Node::Const(Value::Int(x)),
        Some(v) => Node::Const(v),
        None => node,
    }
}
