//! Scalar functions applied to whole columns.
//!
//! [`ColumnFunction`] is the one shape every function call takes in a
//! compiled expression: the built-in string and number functions here,
//! and the place where a user-defined function plugs in (it gets its
//! arguments as typed column readers over the selected rows, and returns a
//! column with one value per row, or the row it failed on and why).

use super::kernels::map1;
use super::vals::{Bools, F64s, I64s, Lists, Strs};
use crate::data::{Column, Data, StrColumn, Validity};
use flowc_compiler::ir::{DataType, Function, DEFAULT_TIMESTAMP_PATTERN};
use flowc_compiler::timefmt::TimeFormat;
use std::fmt::Write as _;

/// One argument of a call: its values for the selected rows.
#[derive(Debug, Clone, Copy)]
pub enum Arg<'a> {
    I64(I64s<'a>),
    F64(F64s<'a>),
    Bool(Bools<'a>),
    Str(Strs<'a>),
    /// Arrays (`array<T>`).
    List(Lists<'a>),
}

/// A function failed on the k-th selected row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FnError {
    pub k: usize,
    pub message: String,
}

/// A function over columns.
pub trait ColumnFunction: Send + Sync + std::fmt::Debug {
    fn name(&self) -> &str;
    /// The type of what it returns.
    fn return_type(&self) -> DataType;
    /// Its values for `n` rows; `args` are of the types the call was
    /// checked with.
    fn invoke(&self, args: &[Arg<'_>], n: usize) -> Result<Column, FnError>;
    /// Whether it can fail on some arguments (then a call is evaluated
    /// only on the rows that reach it, never speculatively).
    fn fallible(&self) -> bool {
        true
    }
    /// Whether argument `i` may be null: the function is then called on
    /// the rows where it is, and told which ([`invoke_nullable`]). Otherwise
    /// (the default) a null argument makes the result null there, and the
    /// function is not called on that row.
    ///
    /// [`invoke_nullable`]: ColumnFunction::invoke_nullable
    fn takes_nulls(&self, _i: usize) -> bool {
        false
    }
    /// [`invoke`](ColumnFunction::invoke) where some arguments may be null:
    /// `nulls[i]` is argument `i`'s validity over the `n` rows (`None`: all
    /// present; always `None` where [`takes_nulls`](ColumnFunction::takes_nulls)
    /// is false). A null's value in `args` is its type's default.
    fn invoke_nullable(&self, args: &[Arg<'_>], nulls: &[Option<Validity>], n: usize) -> Result<Column, FnError> {
        let _ = nulls;
        self.invoke(args, n)
    }
}

/// A built-in function, with the argument types of its call.
#[derive(Debug)]
pub struct Builtin {
    f: Function,
    args: Vec<DataType>,
    ret: DataType,
    /// For `to_string` of a timestamp.
    time: Option<TimeFormat>,
}

impl Builtin {
    /// The built-in `f` called with arguments of `args`; `None` if the
    /// call is not one the checker accepts (a bug).
    pub fn new(f: Function, args: &[DataType]) -> Option<Builtin> {
        use DataType as T;
        let ret = match (f, args) {
            (Function::Upper | Function::Lower | Function::Trim, [T::String]) => T::String,
            (Function::Length, [T::String]) => T::Int,
            (Function::Concat, a) if !a.is_empty() && a.iter().all(|t| *t == T::String) => T::String,
            (Function::Substring, [T::String, a, b]) if a.is_integral() && b.is_integral() => T::String,
            (Function::Contains | Function::StartsWith | Function::EndsWith, [T::String, T::String]) => T::Bool,
            (Function::Replace, [T::String, T::String, T::String]) => T::String,
            (Function::ToString, [t]) if !t.is_array() => T::String,
            (Function::Abs, [t]) if t.is_numeric() => *t,
            (Function::Round, [t, d]) if t.is_numeric() && d.is_integral() => *t,
            (Function::Floor | Function::Ceil, [t]) if t.is_numeric() => *t,
            (Function::SplitPart, [T::String, T::String, n]) if n.is_integral() => T::String,
            (Function::Md5, [T::String]) => T::String,
            _ => return None,
        };
        let time = match (f, args) {
            (Function::ToString, [T::Timestamp]) => Some(TimeFormat::new(DEFAULT_TIMESTAMP_PATTERN).ok()?),
            _ => None,
        };
        Some(Builtin { f, args: args.to_vec(), ret, time })
    }
}

#[cfg(test)]
#[test]
fn rounds_half_away_from_zero() {
    assert_eq!(round_int(1250, -2), 1300);
    assert_eq!(round_int(-1250, -2), -1300);
    assert_eq!(round_int(1249, -2), 1200);
    assert_eq!(round_int(7, 2), 7);
    assert_eq!(round_double(2.5, 0), 3.0);
    assert_eq!(round_double(-2.5, 0), -3.0);
    assert_eq!(round_double(1.2345, 2), 1.23);
    assert_eq!(round_double(1234.5, -2), 1200.0);
}

fn bug(k: usize, what: &str) -> FnError {
    FnError { k, message: format!("internal error: {what} (this is a bug in flowc)") }
}

fn strs<'a>(args: &[Arg<'a>], i: usize) -> Result<Strs<'a>, FnError> {
    match args.get(i) {
        Some(Arg::Str(s)) => Ok(*s),
        _ => Err(bug(0, "a string argument that is not a string")),
    }
}

fn ints<'a>(args: &[Arg<'a>], i: usize) -> Result<I64s<'a>, FnError> {
    match args.get(i) {
        Some(Arg::I64(s)) => Ok(*s),
        _ => Err(bug(0, "an integer argument that is not an integer")),
    }
}

/// Strings made row by row into one column.
fn strings(n: usize, mut f: impl FnMut(usize, &mut String)) -> Data {
    let mut out = StrColumn::with_capacity(n, n * 8);
    for k in 0..n {
        out.push_with(|buf| f(k, buf));
    }
    Data::Str(out)
}

/// The char index `chars` characters into `s`, or its end.
fn char_offset(s: &str, chars: usize) -> usize {
    s.char_indices().nth(chars).map_or(s.len(), |(i, _)| i)
}

/// `x` rounded half away from zero to `digits` decimals: an integer is
/// itself for `digits >= 0`, else rounded to tens, hundreds, ….
fn round_int(x: i64, digits: i64) -> i64 {
    if digits >= 0 {
        return x;
    }
    let Some(p) = u32::try_from(-digits).ok().and_then(|e| 10i64.checked_pow(e)) else { return 0 };
    let (q, r) = (x / p, x % p);
    let up = r.unsigned_abs() * 2 >= p.unsigned_abs();
    let q = if up { q + x.signum() } else { q };
    q.wrapping_mul(p)
}

fn round_double(x: f64, digits: i64) -> f64 {
    if digits == 0 || !x.is_finite() {
        return x.round();
    }
    let p = 10f64.powi(digits.clamp(-400, 400) as i32);
    let r = (x * p).round() / p;
    if r.is_finite() {
        r
    } else {
        x
    }
}

impl ColumnFunction for Builtin {
    fn name(&self) -> &str {
        self.f.name()
    }

    fn fallible(&self) -> bool {
        false
    }

    fn return_type(&self) -> DataType {
        self.ret
    }

    fn invoke(&self, args: &[Arg<'_>], n: usize) -> Result<Column, FnError> {
        let data = match self.f {
            Function::Upper | Function::Lower => {
                let s = strs(args, 0)?;
                let upper = self.f == Function::Upper;
                strings(n, |k, buf| {
                    let v = s.get(k);
                    if v.is_ascii() {
                        let start = buf.len();
                        buf.push_str(v);
                        if upper {
                            buf[start..].make_ascii_uppercase();
                        } else {
                            buf[start..].make_ascii_lowercase();
                        }
                    } else if upper {
                        buf.push_str(&v.to_uppercase());
                    } else {
                        buf.push_str(&v.to_lowercase());
                    }
                })
            }
            Function::Trim => {
                let s = strs(args, 0)?;
                strings(n, |k, buf| buf.push_str(s.get(k).trim()))
            }
            Function::Md5 => {
                let s = strs(args, 0)?;
                strings(n, |k, buf| super::md5::hex_into(s.get(k).as_bytes(), buf))
            }
            Function::Length => {
                // Characters of UTF-8: the bytes that do not continue a character.
                let s = strs(args, 0)?;
                Data::I64(s.map_bytes(n, |b| b.iter().filter(|c| (**c as i8) >= -0x40).count() as i64))
            }
            Function::Concat => {
                let parts = (0..args.len()).map(|i| strs(args, i)).collect::<Result<Vec<_>, _>>()?;
                strings(n, |k, buf| parts.iter().for_each(|p| buf.push_str(p.get(k))))
            }
            Function::Substring => {
                // substring(s, start, length), in characters, clamped to the string.
                let (s, start, len) = (strs(args, 0)?, ints(args, 1)?, ints(args, 2)?);
                strings(n, |k, buf| {
                    let v = s.get(k);
                    let from = char_offset(v, start.get(k).max(0) as usize);
                    let rest = &v[from..];
                    buf.push_str(&rest[..char_offset(rest, len.get(k).max(0) as usize)]);
                })
            }
            // On bytes: for UTF-8, a byte match is a character match.
            Function::Contains | Function::StartsWith | Function::EndsWith => {
                let (s, p) = (strs(args, 0)?, strs(args, 1)?);
                Data::Bool(match (self.f, p) {
                    (Function::Contains, Strs::Scalar(needle)) => {
                        // The searcher is built once per batch, not per record.
                        let finder = memchr::memmem::Finder::new(needle.as_bytes());
                        s.map_bytes(n, |b| finder.find(b).is_some())
                    }
                    (Function::Contains, _) => {
                        (0..n).map(|k| memchr::memmem::find(s.bytes(k), p.bytes(k)).is_some()).collect()
                    }
                    (Function::StartsWith, _) => (0..n).map(|k| s.bytes(k).starts_with(p.bytes(k))).collect(),
                    _ => (0..n).map(|k| s.bytes(k).ends_with(p.bytes(k))).collect(),
                })
            }
            Function::Replace => {
                let (s, from, to) = (strs(args, 0)?, strs(args, 1)?, strs(args, 2)?);
                strings(n, |k, buf| {
                    let (v, from, to) = (s.get(k), from.get(k), to.get(k));
                    if from.is_empty() {
                        buf.push_str(v);
                        return;
                    }
                    let mut last = 0;
                    for (i, m) in v.match_indices(from) {
                        buf.push_str(&v[last..i]);
                        buf.push_str(to);
                        last = i + m.len();
                    }
                    buf.push_str(&v[last..]);
                })
            }
            Function::ToString => match (args.first(), self.args.first()) {
                (Some(Arg::Str(s)), _) => strings(n, |k, buf| buf.push_str(s.get(k))),
                (Some(Arg::I64(v)), Some(DataType::Timestamp)) => {
                    let fmt = self.time.as_ref().ok_or_else(|| bug(0, "no timestamp format"))?;
                    strings(n, |k, buf| fmt.format_into(v.get(k), buf))
                }
                (Some(Arg::I64(v)), _) => strings(n, |k, buf| {
                    let _ = write!(buf, "{}", v.get(k));
                }),
                (Some(Arg::F64(v)), _) => strings(n, |k, buf| {
                    let _ = write!(buf, "{:?}", v.get(k));
                }),
                (Some(Arg::Bool(v)), _) => strings(n, |k, buf| buf.push_str(if v.get(k) { "true" } else { "false" })),
                (Some(Arg::List(_)), _) => return Err(bug(0, "to_string() of an array")),
                (None, _) => return Err(bug(0, "to_string() without an argument")),
            },
            Function::Abs => match args.first() {
                Some(Arg::I64(v)) => Data::I64(map1!(I64s, *v, n, |x| x.wrapping_abs())),
                Some(Arg::F64(v)) => Data::F64(map1!(F64s, *v, n, |x| x.abs())),
                _ => return Err(bug(0, "abs() of a non-number")),
            },
            Function::Round => match (args.first(), ints(args, 1)) {
                (Some(Arg::I64(v)), Ok(d)) => Data::I64((0..n).map(|k| round_int(v.get(k), d.get(k))).collect()),
                (Some(Arg::F64(v)), Ok(d)) => Data::F64((0..n).map(|k| round_double(v.get(k), d.get(k))).collect()),
                _ => return Err(bug(0, "round() of a non-number")),
            },
            Function::Floor | Function::Ceil => match args.first() {
                Some(Arg::I64(v)) => Data::I64(map1!(I64s, *v, n, |x| x)),
                Some(Arg::F64(v)) if self.f == Function::Floor => Data::F64(map1!(F64s, *v, n, |x| x.floor())),
                Some(Arg::F64(v)) => Data::F64(map1!(F64s, *v, n, |x| x.ceil())),
                _ => return Err(bug(0, "floor()/ceil() of a non-number")),
            },
            Function::SplitPart => {
                // The n-th part, 1-based; null past the last part (as Flink's SPLIT_INDEX).
                let (s, d, i) = (strs(args, 0)?, strs(args, 1)?, ints(args, 2)?);
                let mut out = StrColumn::with_capacity(n, n * 8);
                let mut valid = Validity::default();
                for k in 0..n {
                    let (v, delim, part) = (s.get(k), d.get(k), i.get(k));
                    let found = match usize::try_from(part).ok().and_then(|p| p.checked_sub(1)) {
                        None => None,
                        Some(p) if delim.is_empty() => (p == 0).then_some(v),
                        Some(p) => v.split(delim).nth(p),
                    };
                    out.push(found.unwrap_or(""));
                    valid.push(found.is_some());
                }
                return Ok(Column::with_validity(self.ret, Data::Str(out), Some(valid)));
            }
            // Compiled as relabelling of the same values, never called.
            Function::Millis | Function::ToTimestamp => return Err(bug(0, "millis/to_timestamp called")),
            // Compiled to their own nodes and functions, never called here.
            Function::Coalesce
            | Function::RegexMatch
            | Function::RegexExtract
            | Function::DateFormat
            | Function::DateTrunc
            | Function::Extract
            | Function::Hash
            | Function::Cardinality
            | Function::ElementAt
            | Function::ArrayContains
            | Function::Array
            | Function::Split => return Err(bug(0, "a function with its own kernel called as a builtin")),
        };
        Ok(Column::new(self.ret, data))
    }
}
