//! Constant expressions: parameter defaults, `set` values, connector and
//! window settings, parallelism. They are evaluated once, at compile time,
//! with the job's parameters bound.

use flowc_dsl::ast::{BinaryOp, Expr, ExprKind, UnaryOp};
use flowc_dsl::diagnostic::suggest;
use flowc_dsl::Diagnostic;
use std::collections::BTreeMap;
use std::fmt;

/// The value of a constant expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Const {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// Milliseconds.
    Duration(u64),
    /// `none`: switched off.
    None,
    /// A bare word such as `earliest`, `json` or a schema name.
    Symbol(String),
    /// `["a", "b"]`, `[user, region]`.
    List(Vec<Const>),
}

impl Const {
    pub fn kind(&self) -> &'static str {
        match self {
            Const::Str(_) => "a string",
            Const::Int(_) => "an integer",
            Const::Float(_) => "a number",
            Const::Bool(_) => "a boolean",
            Const::Duration(_) => "a duration",
            Const::None => "`none`",
            Const::Symbol(_) => "a word",
            Const::List(_) => "a list",
        }
    }
}

impl fmt::Display for Const {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Const::Str(s) => write!(f, "{}", flowc_dsl::format::string(s)),
            Const::Int(i) => write!(f, "{i}"),
            Const::Float(x) => write!(f, "{x:?}"),
            Const::Bool(b) => write!(f, "{b}"),
            Const::Duration(ms) => write!(f, "{ms}ms"),
            Const::None => f.write_str("none"),
            Const::Symbol(s) => f.write_str(s),
            Const::List(items) => {
                f.write_str("[")?;
                for (i, x) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{x}")?;
                }
                f.write_str("]")
            }
        }
    }
}

/// Bound parameters by name.
pub type Params = BTreeMap<String, Const>;

/// Evaluates a constant expression.
pub fn eval(e: &Expr, params: &Params) -> Result<Const, Diagnostic> {
    let err = |msg: String| Diagnostic::error("flow::check::constant", msg, e.span);
    Ok(match &e.kind {
        ExprKind::Str(s) => Const::Str(s.clone()),
        ExprKind::Int(i) => Const::Int(*i),
        ExprKind::Float(x) => Const::Float(*x),
        ExprKind::Bool(b) => Const::Bool(*b),
        ExprKind::Duration(d) => Const::Duration(d.as_millis().ok_or_else(|| err("duration too large".into()))?),
        ExprKind::None => Const::None,
        ExprKind::Null => {
            return Err(err("`null` is not a setting's value".into())
                .with_label("a value of a record")
                .with_help("a setting that is switched off is `none`"))
        }
        ExprKind::Ident(s) => Const::Symbol(s.clone()),
        ExprKind::List(items) => Const::List(items.iter().map(|x| eval(x, params)).collect::<Result<_, _>>()?),
        ExprKind::Param(p) => match params.get(p) {
            Some(v) => v.clone(),
            None => {
                let mut d =
                    Diagnostic::error("flow::check::unknown-param", format!("unknown parameter `${p}`"), e.span)
                        .with_label("not declared (or declared further down)");
                d = match suggest(p, params.keys().map(String::as_str)) {
                    Some(s) => d.with_help(format!("did you mean `${s}`?")),
                    None => d.with_help(format!("declare it first: `param {p}: string` or `flag {p}`")),
                };
                return Err(d);
            }
        },
        ExprKind::Where(..) => {
            return Err(err("an aggregate's `where` cannot be used here".into())
                .with_label("settings are constants")
                .with_help("`where` filters the rows of an aggregate: `count() where price < 10000`"))
        }
        ExprKind::IsNull(..) | ExprKind::Cast(..) => {
            return Err(err("`is null` and `cast` cannot be used here".into())
                .with_label("settings are constants")
                .with_help("settings may use literals, parameters, `if`, arithmetic and comparisons"))
        }
        ExprKind::Call(f, _) => {
            return Err(err(format!("`{}(…)` cannot be used here", f.text))
                .with_label("settings are constants")
                .with_help("settings may use literals, parameters, `if`, arithmetic and comparisons"))
        }
        ExprKind::If(c, t, f) => match eval(c, params)? {
            Const::Bool(true) => eval(t, params)?,
            Const::Bool(false) => eval(f, params)?,
            other => {
                return Err(Diagnostic::error(
                    "flow::check::type",
                    format!("the condition of `if` must be a boolean, not {}", other.kind()),
                    c.span,
                )
                .with_label("not a boolean"))
            }
        },
        ExprKind::Unary(op, x) => match (op, eval(x, params)?) {
            (UnaryOp::Not, Const::Bool(b)) => Const::Bool(!b),
            (UnaryOp::Neg, Const::Int(i)) => Const::Int(i.checked_neg().ok_or_else(|| err("overflow".into()))?),
            (UnaryOp::Neg, Const::Float(x)) => Const::Float(-x),
            (op, v) => {
                let what = if *op == UnaryOp::Not { "`not`" } else { "`-`" };
                return Err(err(format!("{what} cannot be applied to {}", v.kind())).with_label("here"));
            }
        },
        ExprKind::Binary(op, l, r) => {
            let (a, b) = (eval(l, params)?, eval(r, params)?);
            binary(*op, a, b).map_err(|m| err(m).with_label("in this expression"))?
        }
    })
}

fn binary(op: BinaryOp, a: Const, b: Const) -> Result<Const, String> {
    use Const::*;
    let overflow = || "arithmetic overflow".to_string();
    let mismatch = |a: &Const, b: &Const| format!("`{}` cannot combine {} and {}", op.symbol(), a.kind(), b.kind());
    Ok(match (op, a, b) {
        (BinaryOp::And, Bool(x), Bool(y)) => Bool(x && y),
        (BinaryOp::Or, Bool(x), Bool(y)) => Bool(x || y),
        (BinaryOp::Eq, x, y) if std::mem::discriminant(&x) == std::mem::discriminant(&y) => Bool(x == y),
        (BinaryOp::Ne, x, y) if std::mem::discriminant(&x) == std::mem::discriminant(&y) => Bool(x != y),
        (BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge, x, y) => {
            let ord = match (&x, &y) {
                (Int(a), Int(b)) => a.partial_cmp(b),
                (Float(a), Float(b)) => a.partial_cmp(b),
                (Int(a), Float(b)) => (*a as f64).partial_cmp(b),
                (Float(a), Int(b)) => a.partial_cmp(&(*b as f64)),
                (Duration(a), Duration(b)) => a.partial_cmp(b),
                (Str(a), Str(b)) => a.partial_cmp(b),
                _ => return Err(mismatch(&x, &y)),
            };
            let ord = ord.ok_or_else(|| "cannot compare NaN".to_string())?;
            Bool(match op {
                BinaryOp::Lt => ord.is_lt(),
                BinaryOp::Le => ord.is_le(),
                BinaryOp::Gt => ord.is_gt(),
                _ => ord.is_ge(),
            })
        }
        (BinaryOp::Add, Str(x), Str(y)) => Str(x + &y),
        (BinaryOp::Add, Int(x), Int(y)) => Int(x.checked_add(y).ok_or_else(overflow)?),
        (BinaryOp::Sub, Int(x), Int(y)) => Int(x.checked_sub(y).ok_or_else(overflow)?),
        (BinaryOp::Mul, Int(x), Int(y)) => Int(x.checked_mul(y).ok_or_else(overflow)?),
        (BinaryOp::Div | BinaryOp::Rem, Int(_), Int(0)) => return Err("division by zero".into()),
        (BinaryOp::Div, Int(x), Int(y)) => Int(x.checked_div(y).ok_or_else(overflow)?),
        (BinaryOp::Rem, Int(x), Int(y)) => Int(x.checked_rem(y).ok_or_else(overflow)?),
        (BinaryOp::Add, Duration(x), Duration(y)) => Duration(x.checked_add(y).ok_or_else(overflow)?),
        (BinaryOp::Sub, Duration(x), Duration(y)) => Duration(x.checked_sub(y).ok_or_else(overflow)?),
        (BinaryOp::Mul, Duration(x), Int(y)) | (BinaryOp::Mul, Int(y), Duration(x)) => {
            Duration(x.checked_mul(u64::try_from(y).map_err(|_| overflow())?).ok_or_else(overflow)?)
        }
        (op @ (BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div), x, y)
            if matches!((&x, &y), (Int(_) | Float(_), Int(_) | Float(_))) =>
        {
            let f = |c: &Const| match c {
                Int(i) => *i as f64,
                Float(v) => *v,
                _ => 0.0,
            };
            let (x, y) = (f(&x), f(&y));
            Float(match op {
                BinaryOp::Add => x + y,
                BinaryOp::Sub => x - y,
                BinaryOp::Mul => x * y,
                _ => x / y,
            })
        }
        (_, x, y) => return Err(mismatch(&x, &y)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(src: &str, params: &[(&str, Const)], expect: Const) {
        let parsed = flowc_dsl::parse(&format!("set x = {src}"));
        let Some(flowc_dsl::ast::Item::Set(s)) = parsed.file.items.first() else { panic!("{:?}", parsed.diagnostics) };
        let params: Params = params.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        assert_eq!(eval(&s.value, &params).expect("evaluates"), expect);
    }

    #[test]
    fn evaluates_constants() {
        check("if $c then 1s else none", &[("c", Const::Bool(true))], Const::Duration(1000));
        check("if $c then 1s else none", &[("c", Const::Bool(false))], Const::None);
        check("2 * 3 + 1", &[], Const::Int(7));
        check("\"a\" + $b", &[("b", Const::Str("z".into()))], Const::Str("az".into()));
        check("if $e then event else processing", &[("e", Const::Bool(true))], Const::Symbol("event".into()));
        check("1m + 500ms", &[], Const::Duration(60_500));
    }
}
