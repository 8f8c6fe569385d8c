//! The model of the compiled evaluator, for its tests only: the record-at-
//! a-time interpreter flowc used before expressions were compiled, kept
//! as it was. The property test of `expr` checks that the compiled
//! evaluator agrees with it on random expressions and records.

use crate::record::Value;
use flowc_compiler::ir::{BinOp, DataType, Expr, Function};
use std::cmp::Ordering;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EvalError {
    #[error("division by zero")]
    DivisionByZero,
    #[error("integer overflow")]
    Overflow,
    #[error("integer overflow of an int")]
    IntOverflow,
    #[error("internal error: {0} (this is a bug in flowc)")]
    Internal(String),
}

/// What an expression can see besides the record's fields: in an
/// aggregate's output, the key, the aggregate results and the window; and
/// the types of the record's fields, for the arithmetic of `int`s (none
/// given: every integer is a long).
#[derive(Default)]
pub struct Scope<'a> {
    pub fields: &'a [DataType],
    pub key: &'a [Value],
    pub aggregates: &'a [Value],
    pub window: Option<(i64, i64)>,
}

fn bug(what: &str) -> EvalError {
    EvalError::Internal(what.to_string())
}

/// Evaluates `e` over `row`.
pub fn eval(e: &Expr, row: &[Value], scope: &Scope<'_>) -> Result<Value, EvalError> {
    Ok(match e {
        Expr::Literal(v) => v.clone(),
        Expr::Field(i) => row.get(*i).cloned().ok_or_else(|| bug("field index out of range"))?,
        Expr::Key(i) => scope.key.get(*i).cloned().ok_or_else(|| bug("key index out of range"))?,
        Expr::Aggregate(i) => scope.aggregates.get(*i).cloned().ok_or_else(|| bug("aggregate index out of range"))?,
        Expr::WindowStart => Value::Timestamp(scope.window.ok_or_else(|| bug("window_start() outside a window"))?.0),
        Expr::WindowEnd => Value::Timestamp(scope.window.ok_or_else(|| bug("window_end() outside a window"))?.1),
        Expr::At(_, inner) => eval(inner, row, scope)?,
        // SQL's nulls: an operator or function of a null is null, except
        // the ones below that look at nullness.
        Expr::Cast(ty, inner) => match eval(inner, row, scope)? {
            Value::Null => Value::Null,
            v => cast(*ty, v)?,
        },
        Expr::Neg(inner) => match eval(inner, row, scope)? {
            Value::Int(i) => narrow(Value::Int(i.checked_neg().ok_or(EvalError::Overflow)?), is_int(inner, scope))?,
            Value::Double(d) => Value::Double(-d),
            Value::Null => Value::Null,
            _ => return Err(bug("negating a non-number")),
        },
        Expr::Not(inner) => match eval(inner, row, scope)? {
            Value::Null => Value::Null,
            v => Value::Bool(!truth(&v)?),
        },
        Expr::IsNull(inner, negated) => Value::Bool((eval(inner, row, scope)? == Value::Null) != *negated),
        Expr::Binary(op @ (BinOp::And | BinOp::Or), a, b) => {
            // Three-valued logic; the right side only where the left does not decide.
            let decisive = *op == BinOp::Or;
            let l = eval(a, row, scope)?;
            if l == Value::Bool(decisive) {
                return Ok(l);
            }
            let r = eval(b, row, scope)?;
            match (l, r) {
                (_, Value::Bool(x)) if x == decisive => Value::Bool(x),
                (Value::Bool(_), Value::Bool(x)) => Value::Bool(x),
                (Value::Null | Value::Bool(_), Value::Null | Value::Bool(_)) => Value::Null,
                _ => return Err(bug("`and`/`or` of a non-bool")),
            }
        }
        Expr::Binary(op, a, b) => match (eval(a, row, scope)?, eval(b, row, scope)?) {
            (Value::Null, _) | (_, Value::Null) => Value::Null,
            (x, y) => narrow(binary(*op, x, y)?, is_int(e, scope))?,
        },
        Expr::If(c, t, f) => {
            // A null condition takes `else`.
            if eval(c, row, scope)? == Value::Bool(true) {
                eval(t, row, scope)?
            } else {
                eval(f, row, scope)?
            }
        }
        Expr::Call(Function::Coalesce, args) => {
            for a in args {
                let v = eval(a, row, scope)?;
                if v != Value::Null {
                    return Ok(v);
                }
            }
            Value::Null
        }
        Expr::Udf(..) => return Err(bug("a UDF call in the interpreter, which cannot call UDFs")),
        Expr::Call(f, args) => {
            let vals = args.iter().map(|a| eval(a, row, scope)).collect::<Result<Vec<_>, _>>()?;
            // Flink SQL's `ARRAY[x, NULL]`: a null element.
            if *f == Function::Array {
                return Ok(Value::Array(vals));
            }
            // Flink SQL's `ARRAY_CONTAINS(a, NULL)`: whether `a` holds a null element.
            if let (Function::ArrayContains, [Value::Array(a), Value::Null]) = (f, vals.as_slice()) {
                return Ok(Value::Bool(a.contains(&Value::Null)));
            }
            if vals.contains(&Value::Null) {
                return Ok(Value::Null);
            }
            call(*f, vals)?
        }
    })
}

/// An `int` result must fit 32 bits.
fn narrow(v: Value, int: bool) -> Result<Value, EvalError> {
    match v {
        Value::Int(i) if int && i32::try_from(i).is_err() => Err(EvalError::IntOverflow),
        v => Ok(v),
    }
}

/// Whether `e` is an `int`, by the checker's rule: an operator or `if` or
/// `coalesce` with an `int` operand is `int` (the checker gives all
/// operands one type, and a plain integer literal beside an `int` is one).
/// Covers the expressions of the property tests; the rest are longs. (A
/// timestamp moved by an `int` counts too, harmlessly: only `Value::Int`
/// results are narrowed.)
fn is_int(e: &Expr, scope: &Scope<'_>) -> bool {
    match e {
        Expr::Field(i) => scope.fields.get(*i) == Some(&DataType::Int),
        Expr::Cast(t, _) => *t == DataType::Int,
        Expr::Neg(x) | Expr::At(_, x) => is_int(x, scope),
        Expr::Binary(BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Rem, a, b) => {
            is_int(a, scope) || is_int(b, scope)
        }
        Expr::If(_, t, f) => is_int(t, scope) || is_int(f, scope),
        Expr::Call(Function::Coalesce, args) => args.iter().any(|a| is_int(a, scope)),
        Expr::Call(Function::Length | Function::Cardinality, _) => true,
        Expr::Call(Function::Abs | Function::Floor | Function::Ceil | Function::Round, args) => {
            args.first().is_some_and(|x| is_int(x, scope))
        }
        _ => false,
    }
}

/// A filter's condition.
pub fn truth(v: &Value) -> Result<bool, EvalError> {
    match v {
        Value::Bool(b) => Ok(*b),
        _ => Err(bug("a condition that is not a bool")),
    }
}

fn cast(ty: DataType, v: Value) -> Result<Value, EvalError> {
    Ok(match (ty, v) {
        (DataType::Double, Value::Int(i)) => Value::Double(i as f64),
        (DataType::Double, Value::Double(d)) => Value::Double(d),
        (DataType::Long | DataType::Int, Value::Int(i)) => Value::Int(i),
        (DataType::Long | DataType::Int, Value::Timestamp(t)) => Value::Int(t),
        (DataType::Timestamp, Value::Int(i) | Value::Timestamp(i)) => Value::Timestamp(i),
        (DataType::String, Value::Str(s)) => Value::Str(s),
        (DataType::Bool, Value::Bool(b)) => Value::Bool(b),
        // `array<T>` where `array<T?>` is wanted: the same elements.
        (DataType::Array(_), Value::Array(a)) => Value::Array(a),
        (ty, v) => return Err(EvalError::Internal(format!("cannot cast {v} to {ty}"))),
    })
}

/// Orders two values of one type (doubles by IEEE total order).
pub fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    Some(match (a, b) {
        (Value::Int(x), Value::Int(y)) | (Value::Timestamp(x), Value::Timestamp(y)) => x.cmp(y),
        (Value::Double(x), Value::Double(y)) => x.total_cmp(y),
        (Value::Str(x), Value::Str(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        _ => return None,
    })
}

fn binary(op: BinOp, a: Value, b: Value) -> Result<Value, EvalError> {
    use BinOp::*;
    if matches!(op, Eq | Ne | Lt | Le | Gt | Ge) {
        let ord = compare(&a, &b).ok_or_else(|| bug("comparing values of different types"))?;
        // NaN is unequal to everything, as in SQL and Java.
        let nan =
            matches!((&a, &b), (Value::Double(x), _) if x.is_nan()) || matches!(&b, Value::Double(y) if y.is_nan());
        return Ok(Value::Bool(match op {
            Eq => !nan && ord == Ordering::Equal,
            Ne => nan || ord != Ordering::Equal,
            Lt => !nan && ord == Ordering::Less,
            Le => !nan && ord != Ordering::Greater,
            Gt => !nan && ord == Ordering::Greater,
            _ => !nan && ord != Ordering::Less,
        }));
    }
    Ok(match (a, b) {
        (Value::Int(x), Value::Int(y)) => Value::Int(int_op(op, x, y)?),
        (Value::Timestamp(x), Value::Int(y)) => Value::Timestamp(int_op(op, x, y)?),
        (Value::Double(x), Value::Double(y)) => Value::Double(match op {
            Add => x + y,
            Sub => x - y,
            Mul => x * y,
            Div => x / y,
            Rem => x % y,
            _ => return Err(bug("a non-arithmetic operator on doubles")),
        }),
        _ => return Err(bug("arithmetic on values of different types")),
    })
}

fn int_op(op: BinOp, x: i64, y: i64) -> Result<i64, EvalError> {
    let exact = match op {
        BinOp::Add => x.checked_add(y),
        BinOp::Sub => x.checked_sub(y),
        BinOp::Mul => x.checked_mul(y),
        BinOp::Div | BinOp::Rem if y == 0 => return Err(EvalError::DivisionByZero),
        BinOp::Div => x.checked_div(y),
        BinOp::Rem => Some(x.wrapping_rem(y)),
        _ => return Err(bug("a non-arithmetic operator on integers")),
    };
    exact.ok_or(EvalError::Overflow)
}

fn str_arg(v: &[Value], i: usize) -> Result<&str, EvalError> {
    match v.get(i) {
        Some(Value::Str(s)) => Ok(s),
        _ => Err(bug("a string argument that is not a string")),
    }
}

fn int_arg(v: &[Value], i: usize) -> Result<i64, EvalError> {
    match v.get(i) {
        Some(Value::Int(n)) => Ok(*n),
        _ => Err(bug("an integer argument that is not an integer")),
    }
}

fn call(f: Function, args: Vec<Value>) -> Result<Value, EvalError> {
    Ok(match f {
        Function::Upper => Value::Str(str_arg(&args, 0)?.to_uppercase()),
        Function::Lower => Value::Str(str_arg(&args, 0)?.to_lowercase()),
        Function::Trim => Value::Str(str_arg(&args, 0)?.trim().to_string()),
        Function::Length => Value::Int(str_arg(&args, 0)?.chars().count() as i64),
        Function::Concat => {
            let mut s = String::new();
            for i in 0..args.len() {
                s.push_str(str_arg(&args, i)?);
            }
            Value::Str(s)
        }
        Function::Substring => {
            // substring(s, start, length), in characters, clamped to the string.
            let s = str_arg(&args, 0)?;
            let start = int_arg(&args, 1)?.max(0) as usize;
            let len = int_arg(&args, 2)?.max(0) as usize;
            Value::Str(s.chars().skip(start).take(len).collect())
        }
        Function::Contains => Value::Bool(str_arg(&args, 0)?.contains(str_arg(&args, 1)?)),
        Function::StartsWith => Value::Bool(str_arg(&args, 0)?.starts_with(str_arg(&args, 1)?)),
        Function::EndsWith => Value::Bool(str_arg(&args, 0)?.ends_with(str_arg(&args, 1)?)),
        Function::Replace => {
            let (s, from, to) = (str_arg(&args, 0)?, str_arg(&args, 1)?, str_arg(&args, 2)?);
            Value::Str(if from.is_empty() { s.to_string() } else { s.replace(from, to) })
        }
        Function::ToString => match args.into_iter().next() {
            Some(Value::Str(s)) => Value::Str(s),
            Some(Value::Timestamp(t)) => {
                let fmt = flowc_compiler::timefmt::TimeFormat::new(flowc_compiler::ir::DEFAULT_TIMESTAMP_PATTERN)
                    .map_err(|_| bug("the default timestamp pattern does not parse"))?;
                Value::Str(fmt.format(t))
            }
            Some(Value::Double(d)) => Value::Str(format!("{d:?}")),
            Some(v) => Value::Str(v.to_string()),
            None => return Err(bug("to_string() without an argument")),
        },
        Function::Abs => match args.first() {
            Some(Value::Int(i)) => Value::Int(i.wrapping_abs()),
            Some(Value::Double(d)) => Value::Double(d.abs()),
            _ => return Err(bug("abs() of a non-number")),
        },
        Function::Millis => match args.first() {
            Some(Value::Timestamp(t)) => Value::Int(*t),
            _ => return Err(bug("millis() of a non-timestamp")),
        },
        Function::ToTimestamp => Value::Timestamp(int_arg(&args, 0)?),
        Function::Floor | Function::Ceil | Function::Round => match args.first() {
            Some(Value::Int(i)) if f != Function::Round || int_arg(&args, 1)? >= 0 => Value::Int(*i),
            Some(Value::Double(d)) if f == Function::Floor => Value::Double(d.floor()),
            Some(Value::Double(d)) if f == Function::Ceil => Value::Double(d.ceil()),
            Some(Value::Double(d)) if int_arg(&args, 1)? == 0 => Value::Double(d.round()),
            _ => return Err(bug("round() with digits: not modelled")),
        },
        Function::SplitPart => {
            let (s, d, n) = (str_arg(&args, 0)?, str_arg(&args, 1)?, int_arg(&args, 2)?);
            let part = if n < 1 {
                None
            } else if d.is_empty() {
                (n == 1).then_some(s)
            } else {
                s.split(d).nth(n as usize - 1)
            };
            part.map_or(Value::Null, |p| Value::Str(p.to_string()))
        }
        Function::Cardinality => match args.first() {
            Some(Value::Array(a)) => Value::Int(a.len() as i64),
            _ => return Err(bug("cardinality() of a non-array")),
        },
        Function::ElementAt => match args.first() {
            Some(Value::Array(a)) => {
                let i = int_arg(&args, 1)?;
                usize::try_from(i).ok().filter(|i| *i >= 1).and_then(|i| a.get(i - 1)).cloned().unwrap_or(Value::Null)
            }
            _ => return Err(bug("element_at() of a non-array")),
        },
        Function::ArrayContains => match (args.first(), args.get(1)) {
            (Some(Value::Array(a)), Some(x)) => Value::Bool(a.contains(x)),
            _ => return Err(bug("array_contains() of a non-array")),
        },
        Function::Array => Value::Array(args),
        Function::Split => {
            let (s, d) = (str_arg(&args, 0)?, str_arg(&args, 1)?);
            let parts: Vec<Value> = if d.is_empty() {
                s.chars().map(|c| Value::Str(c.to_string())).collect()
            } else {
                s.split(d).map(|p| Value::Str(p.to_string())).collect()
            };
            Value::Array(parts)
        }
        Function::Coalesce
        | Function::RegexMatch
        | Function::RegexExtract
        | Function::DateFormat
        | Function::DateTrunc
        | Function::Extract
        | Function::Md5
        | Function::Hash => return Err(bug("not modelled here")),
    })
}
