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
#[derive(Debug, PartialEq, Eq)]
pub enum IntError {
    /// A division or remainder by zero.
    DivByZero(usize),
    /// A result out of the range of a long (`i64::MAX + 1`,
    /// `i64::MIN / -1`).
    Overflow(usize),
}

/// Unsigned division and remainder by a divisor fixed for many values,
/// with multiplications instead of a division instruction (D. Lemire, O.
/// Kaser, N. Kurz, "Faster remainder by direct computation", 2019: with a
/// 128-bit multiplier, exact for every 64-bit dividend). A division costs
/// tens of cycles; these cost a few multiplications.
#[derive(Debug, Clone, Copy)]
pub struct FastDiv {
    /// `ceil(2^128 / d)` (0 for `d == 1`, whose quotient is the dividend).
    m: u128,
    d: u64,
}

impl FastDiv {
    /// By `d` (0 is taken as 1: callers check for zero first).
    pub fn new(d: u64) -> FastDiv {
        let d = d.max(1);
        FastDiv { m: (u128::MAX / u128::from(d)).wrapping_add(1), d }
    }

    /// `x % d`.
    #[inline]
    pub fn remainder(self, x: u64) -> u64 {
        let low = self.m.wrapping_mul(u128::from(x));
        let bottom = ((low & u128::from(u64::MAX)) * u128::from(self.d)) >> 64;
        let top = (low >> 64) * u128::from(self.d);
        ((bottom + top) >> 64) as u64
    }

    /// `x / d`.
    #[inline]
    pub fn quotient(self, x: u64) -> u64 {
        if self.d == 1 {
            return x;
        }
        let low = (self.m & u128::from(u64::MAX)) * u128::from(x);
        let high = (self.m >> 64) * u128::from(x);
        ((high + (low >> 64)) >> 64) as u64
    }
}

/// `i64::wrapping_div` and `wrapping_rem` by a non-zero constant, through
/// [`FastDiv`] on the magnitudes (Rust's division truncates: the quotient
/// is negative when the signs differ, the remainder takes the dividend's
/// sign).
#[derive(Debug, Clone, Copy)]
struct SignedDiv {
    negative: bool,
    by: FastDiv,
}

impl SignedDiv {
    fn new(d: i64) -> SignedDiv {
        SignedDiv { negative: d < 0, by: FastDiv::new(d.unsigned_abs()) }
    }

    #[inline]
    fn div(self, x: i64) -> i64 {
        let q = self.by.quotient(x.unsigned_abs()) as i64;
        if (x < 0) != self.negative {
            q.wrapping_neg()
        } else {
            q
        }
    }

    #[inline]
    fn rem(self, x: i64) -> i64 {
        let r = self.by.remainder(x.unsigned_abs()) as i64;
        if x < 0 {
            -r
        } else {
            r
        }
    }
}

/// Integer arithmetic, failing at the first value whose result does not
/// fit a long (as Java's `Math.addExact`) and at the first division or
/// remainder by zero. The overflow check is one flag per loop, so the
/// loops stay as fast as wrapping ones.
pub fn arith_i64(op: BinOp, a: I64s<'_>, b: I64s<'_>, n: usize) -> Result<Vec<i64>, IntError> {
    let mut over = false;
    let out: Vec<i64> = match op {
        BinOp::Add => map2!(I64s, a, b, n, |x, y| {
            let (r, o) = x.overflowing_add(y);
            over |= o;
            r
        }),
        BinOp::Sub => map2!(I64s, a, b, n, |x, y| {
            let (r, o) = x.overflowing_sub(y);
            over |= o;
            r
        }),
        BinOp::Mul => map2!(I64s, a, b, n, |x, y| {
            let (r, o) = x.overflowing_mul(y);
            over |= o;
            r
        }),
        BinOp::Div | BinOp::Rem => {
            let div = op == BinOp::Div;
            if let I64s::Scalar(y) = b {
                // A constant divisor is checked once.
                if y == 0 {
                    return if n == 0 { Ok(Vec::new()) } else { Err(IntError::DivByZero(0)) };
                }
                // Only `i64::MIN / -1` overflows (the remainder is 0).
                if div && y == -1 {
                    if let Some(k) = (0..n).find(|k| a.get(*k) == i64::MIN) {
                        return Err(IntError::Overflow(k));
                    }
                }
                // ... and divides by multiplications (`user % 10` on every row).
                let by = SignedDiv::new(y);
                return Ok(if div { map1!(I64s, a, n, |x| by.div(x)) } else { map1!(I64s, a, n, |x| by.rem(x)) });
            }
            let mut out = Vec::with_capacity(n);
            for k in 0..n {
                let (x, y) = (a.get(k), b.get(k));
                if y == 0 {
                    return Err(IntError::DivByZero(k));
                }
                if div && x == i64::MIN && y == -1 {
                    return Err(IntError::Overflow(k));
                }
                out.push(if div { x.wrapping_div(y) } else { x.wrapping_rem(y) });
            }
            out
        }
        _ => Vec::new(),
    };
    if over {
        // The rare case: find the first value that overflowed.
        let exact = |x: i64, y: i64| match op {
            BinOp::Add => x.checked_add(y),
            BinOp::Sub => x.checked_sub(y),
            _ => x.checked_mul(y),
        };
        let k = (0..n).find(|k| exact(a.get(*k), b.get(*k)).is_none()).unwrap_or(0);
        return Err(IntError::Overflow(k));
    }
    Ok(out)
}

/// `-x` for each value, failing at the first `i64::MIN` (whose negation
/// is no long).
pub fn neg_i64(a: I64s<'_>, n: usize) -> Result<Vec<i64>, IntError> {
    let mut over = false;
    let out = map1!(I64s, a, n, |x| {
        let (r, o) = x.overflowing_neg();
        over |= o;
        r
    });
    if over {
        return Err(IntError::Overflow((0..n).find(|k| a.get(*k) == i64::MIN).unwrap_or(0)));
    }
    Ok(out)
}

/// Whether some value is out of the range of an `int` (32 bits), with
/// one flag for the loop.
pub fn beyond_int(v: &[i64]) -> bool {
    v.iter().fold(false, |beyond, x| beyond | (i64::from(*x as i32) != *x))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn mix(i: u64) -> u64 {
        let mut z = i.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    #[test]
    fn division_by_a_constant_is_exact_for_every_dividend() {
        let edges =
            |d: u64| [0, 1, 2, d - 1, d, d.wrapping_add(1), d.wrapping_mul(3), u64::MAX / 2, u64::MAX - 1, u64::MAX];
        let mut x = 7u64;
        for d in [
            1u64,
            2,
            3,
            6,
            7,
            10,
            16,
            1000,
            100_000,
            1 << 32,
            (1 << 32) + 1,
            1 << 63,
            (1 << 63) + 1,
            u64::MAX - 1,
            u64::MAX,
        ] {
            let by = FastDiv::new(d);
            for _ in 0..20_000 {
                x = mix(x);
                for v in [x, x >> 32, x >> 48] {
                    assert_eq!(by.remainder(v), v % d, "{v} % {d}");
                    assert_eq!(by.quotient(v), v / d, "{v} / {d}");
                }
            }
            for v in edges(d) {
                assert_eq!(by.remainder(v), v % d, "{v} % {d}");
                assert_eq!(by.quotient(v), v / d, "{v} / {d}");
            }
        }
    }

    #[test]
    fn overflow_fails_at_the_first_value_that_does_not_fit_a_long() {
        use IntError::*;
        let a = [1i64, i64::MAX, 3, i64::MAX];
        let b = [1i64, 1, 1, 1];
        let (sa, sb) = (I64s::Slice(&a), I64s::Slice(&b));
        assert_eq!(arith_i64(BinOp::Add, sa, sb, 4), Err(Overflow(1)));
        assert_eq!(arith_i64(BinOp::Add, sa, sb, 1), Ok(vec![2]), "only the first n values count");
        assert_eq!(arith_i64(BinOp::Sub, I64s::Scalar(i64::MIN), sb, 4), Err(Overflow(0)));
        assert_eq!(arith_i64(BinOp::Mul, sa, I64s::Scalar(2), 4), Err(Overflow(1)));
        assert_eq!(arith_i64(BinOp::Mul, I64s::Scalar(1 << 31), I64s::Scalar(1 << 31), 2), Ok(vec![1 << 62; 2]));
        let min = [5i64, i64::MIN];
        assert_eq!(arith_i64(BinOp::Div, I64s::Slice(&min), I64s::Scalar(-1), 2), Err(Overflow(1)));
        assert_eq!(arith_i64(BinOp::Div, I64s::Slice(&min), I64s::Slice(&[-1, -1]), 2), Err(Overflow(1)));
        assert_eq!(arith_i64(BinOp::Rem, I64s::Slice(&min), I64s::Scalar(-1), 2), Ok(vec![0, 0]), "MIN % -1 is 0");
        assert_eq!(arith_i64(BinOp::Div, I64s::Slice(&min), I64s::Slice(&[1, 0]), 2), Err(DivByZero(1)));
        assert_eq!(neg_i64(I64s::Slice(&min), 2), Err(Overflow(1)));
        assert_eq!(neg_i64(I64s::Slice(&min), 1), Ok(vec![-5]));
    }

    #[test]
    fn beyond_int_finds_any_value_past_32_bits() {
        let edge = [i64::from(i32::MIN), i64::from(i32::MAX), 0, -1];
        assert!(!beyond_int(&edge));
        assert!(!beyond_int(&[]));
        for past in [i64::from(i32::MAX) + 1, i64::from(i32::MIN) - 1, i64::MAX, i64::MIN, 1 << 32] {
            let mut v = edge.to_vec();
            v.insert(2, past);
            assert!(beyond_int(&v), "{past}");
        }
    }

    #[test]
    fn signed_division_by_a_constant_wraps_and_truncates_as_rust_does() {
        let mut x = 11u64;
        for d in [1i64, -1, 2, -2, 3, -7, 10, 16, -16, 100_000, i64::MAX, i64::MIN, i64::MIN + 1] {
            let by = SignedDiv::new(d);
            let check = |v: i64| {
                assert_eq!(by.div(v), v.wrapping_div(d), "{v} / {d}");
                assert_eq!(by.rem(v), v.wrapping_rem(d), "{v} % {d}");
            };
            for v in [0, 1, -1, 9, -9, 10, -10, i64::MAX, i64::MIN, i64::MIN + 1, d, d.wrapping_neg()] {
                check(v);
            }
            for _ in 0..20_000 {
                x = mix(x);
                check(x as i64);
                check((x as i64) >> 40);
            }
        }
    }

    #[test]
    fn a_constant_divisor_gives_what_the_division_gives() {
        let a: Vec<i64> = (-50..50).map(|v| v * 7919).collect();
        for y in [1i64, -3, 10, 16] {
            for op in [BinOp::Div, BinOp::Rem] {
                let Ok(got) = arith_i64(op, I64s::Slice(&a), I64s::Scalar(y), a.len()) else {
                    panic!("no zero, no overflow")
                };
                let want: Vec<i64> =
                    a.iter().map(|x| if op == BinOp::Div { x.wrapping_div(y) } else { x.wrapping_rem(y) }).collect();
                assert_eq!(got, want);
            }
        }
    }
}
