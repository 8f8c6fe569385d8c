//! The loops: arithmetic and comparisons over typed values, one batch at
//! a time. A dense input against a constant (`field op literal`) gets a
//! loop of its own, so the common case runs over plain slices.

use super::vals::{Bools, F64s, I64s, Strs};
use flowc_compiler::ir::BinOp;
use std::cmp::Ordering;

/// `f(a[k], b[k])` for k in 0..n, with a loop per shape of the inputs.
macro_rules! map2 {
    ($G:ident, $a:expr, $b:expr, $n:expr, |$x:ident, $y:ident| $body:expr) => {{
        let n = $n;
        match ($a, $b) {
            ($G::Slice(a), $G::Slice(b)) => a[..n].iter().zip(&b[..n]).map(|(&$x, &$y)| $body).collect(),
            ($G::Slice(a), $G::Scalar($y)) => a[..n].iter().map(|&$x| $body).collect(),
            ($G::Scalar($x), $G::Slice(b)) => b[..n].iter().map(|&$y| $body).collect(),
            (a, b) => (0..n)
                .map(|k| {
                    let ($x, $y) = (a.get(k), b.get(k));
                    $body
                })
                .collect(),
        }
    }};
}

/// `f(a[k])` for k in 0..n.
macro_rules! map1 {
    ($G:ident, $a:expr, $n:expr, |$x:ident| $body:expr) => {{
        let n = $n;
        match $a {
            $G::Slice(a) => a[..n].iter().map(|&$x| $body).collect(),
            a => (0..n)
                .map(|k| {
                    let $x = a.get(k);
                    $body
                })
                .collect(),
        }
    }};
}

pub(crate) use map1;

/// Why an integer operation failed, and on which value.
pub struct DivByZero(pub usize);

/// Integer arithmetic, wrapping on overflow; division and remainder by
/// zero fail at the first such value.
pub fn arith_i64(op: BinOp, a: I64s<'_>, b: I64s<'_>, n: usize) -> Result<Vec<i64>, DivByZero> {
    Ok(match op {
        BinOp::Add => map2!(I64s, a, b, n, |x, y| x.wrapping_add(y)),
        BinOp::Sub => map2!(I64s, a, b, n, |x, y| x.wrapping_sub(y)),
        BinOp::Mul => map2!(I64s, a, b, n, |x, y| x.wrapping_mul(y)),
        BinOp::Div | BinOp::Rem => {
            let div = op == BinOp::Div;
            if let I64s::Scalar(y) = b {
                // A constant divisor is checked once.
                if y == 0 {
                    return if n == 0 { Ok(Vec::new()) } else { Err(DivByZero(0)) };
                }
                return Ok(if div {
                    map1!(I64s, a, n, |x| x.wrapping_div(y))
                } else {
                    map1!(I64s, a, n, |x| x.wrapping_rem(y))
                });
            }
            let mut out = Vec::with_capacity(n);
            for k in 0..n {
                let (x, y) = (a.get(k), b.get(k));
                if y == 0 {
                    return Err(DivByZero(k));
                }
                out.push(if div { x.wrapping_div(y) } else { x.wrapping_rem(y) });
            }
            out
        }
        _ => Vec::new(),
    })
}

pub fn arith_f64(op: BinOp, a: F64s<'_>, b: F64s<'_>, n: usize) -> Vec<f64> {
    match op {
        BinOp::Add => map2!(F64s, a, b, n, |x, y| x + y),
        BinOp::Sub => map2!(F64s, a, b, n, |x, y| x - y),
        BinOp::Mul => map2!(F64s, a, b, n, |x, y| x * y),
        BinOp::Div => map2!(F64s, a, b, n, |x, y| x / y),
        BinOp::Rem => map2!(F64s, a, b, n, |x, y| x % y),
        _ => Vec::new(),
    }
}

/// Whether an ordering satisfies a comparison operator.
#[inline]
fn holds(op: BinOp, o: Ordering) -> bool {
    match op {
        BinOp::Eq => o == Ordering::Equal,
        BinOp::Ne => o != Ordering::Equal,
        BinOp::Lt => o == Ordering::Less,
        BinOp::Le => o != Ordering::Greater,
        BinOp::Gt => o == Ordering::Greater,
        _ => o != Ordering::Less,
    }
}

pub fn cmp_i64(op: BinOp, a: I64s<'_>, b: I64s<'_>, n: usize) -> Vec<bool> {
    match op {
        BinOp::Eq => map2!(I64s, a, b, n, |x, y| x == y),
        BinOp::Ne => map2!(I64s, a, b, n, |x, y| x != y),
        BinOp::Lt => map2!(I64s, a, b, n, |x, y| x < y),
        BinOp::Le => map2!(I64s, a, b, n, |x, y| x <= y),
        BinOp::Gt => map2!(I64s, a, b, n, |x, y| x > y),
        _ => map2!(I64s, a, b, n, |x, y| x >= y),
    }
}

/// Doubles compare by IEEE total order, and NaN is unequal to everything
/// (as in SQL and Java): `NaN != x` holds, every other comparison fails.
pub fn cmp_f64(op: BinOp, a: F64s<'_>, b: F64s<'_>, n: usize) -> Vec<bool> {
    map2!(F64s, a, b, n, |x, y| if x.is_nan() || y.is_nan() { op == BinOp::Ne } else { holds(op, x.total_cmp(&y)) })
}

pub fn cmp_bool(op: BinOp, a: Bools<'_>, b: Bools<'_>, n: usize) -> Vec<bool> {
    map2!(Bools, a, b, n, |x, y| holds(op, x.cmp(&y)))
}

/// Strings compare by their bytes: for UTF-8 that is their order by
/// characters.
pub fn cmp_str(op: BinOp, a: Strs<'_>, b: Strs<'_>, n: usize) -> Vec<bool> {
    match (op, b) {
        // The common filter: a string field against a literal.
        (BinOp::Eq, Strs::Scalar(s)) => a.map_bytes(n, |x| x == s.as_bytes()),
        (BinOp::Ne, Strs::Scalar(s)) => a.map_bytes(n, |x| x != s.as_bytes()),
        _ => (0..n).map(|k| holds(op, a.bytes(k).cmp(b.bytes(k)))).collect(),
    }
}
