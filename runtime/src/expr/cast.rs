//! `cast(x as T)` where it is more than a relabelling of the same values
//! (`compiler::casts` lists them all): parsing strings, narrowing numbers,
//! bools to and from integers. A value that does not convert fails the
//! row with a message naming the value, as division by zero does.

use super::functions::{Arg, ColumnFunction, FnError};
use super::kernels::map1;
use super::vals::{Bools, I64s};
use crate::data::{Column, Data};
use flowc_compiler::ir::{DataType, DEFAULT_TIMESTAMP_PATTERN};
use flowc_compiler::timefmt::TimeFormat;

#[derive(Debug)]
pub struct CastFn {
    to: DataType,
    /// For strings to timestamps: ISO-8601, as timestamps are written.
    time: Option<TimeFormat>,
}

impl CastFn {
    /// The cast of `from` to `to`; `None` for a pair compiled otherwise
    /// (the same values under another type, or `to_string`) or refused.
    pub fn new(from: DataType, to: DataType) -> Option<CastFn> {
        use DataType as T;
        let ok = matches!(
            (from, to),
            (T::String, T::Int | T::Long | T::Double | T::Bool | T::Timestamp)
                | (T::Long, T::Int)
                | (T::Double, T::Int | T::Long)
                | (T::Int | T::Long, T::Bool)
                | (T::Bool, T::Int | T::Long)
        );
        if !ok {
            return None;
        }
        let time = (to == T::Timestamp).then(|| TimeFormat::new(DEFAULT_TIMESTAMP_PATTERN).ok()).flatten();
        Some(CastFn { to, time })
    }
}

fn fail(k: usize, what: impl std::fmt::Display, to: DataType) -> FnError {
    FnError { k, message: format!("cannot cast {what} to {to}") }
}

/// An integer that fits `to` (an int is 32 bits in the data).
fn fits(x: i64, to: DataType) -> bool {
    to != DataType::Int || i32::try_from(x).is_ok()
}

impl ColumnFunction for CastFn {
    fn name(&self) -> &str {
        "cast"
    }

    fn return_type(&self) -> DataType {
        self.to
    }

    fn invoke(&self, args: &[Arg<'_>], n: usize) -> Result<Column, FnError> {
        use DataType as T;
        let bug = || FnError { k: 0, message: "internal error: a cast of the wrong argument (a bug in flowc)".into() };
        let data = match (args.first(), self.to) {
            (Some(Arg::Str(s)), T::Int | T::Long) => {
                let mut out = Vec::with_capacity(n);
                for k in 0..n {
                    let text = s.get(k);
                    match text.trim().parse::<i64>() {
                        Ok(x) if fits(x, self.to) => out.push(x),
                        _ => return Err(fail(k, format_args!("{text:?}"), self.to)),
                    }
                }
                Data::I64(out)
            }
            (Some(Arg::Str(s)), T::Double) => {
                let mut out = Vec::with_capacity(n);
                for k in 0..n {
                    let text = s.get(k);
                    match text.trim().parse::<f64>() {
                        Ok(x) => out.push(x),
                        Err(_) => return Err(fail(k, format_args!("{text:?}"), self.to)),
                    }
                }
                Data::F64(out)
            }
            (Some(Arg::Str(s)), T::Bool) => {
                let mut out = Vec::with_capacity(n);
                for k in 0..n {
                    let text = s.get(k);
                    let t = text.trim();
                    if t.eq_ignore_ascii_case("true") || t == "1" {
                        out.push(true);
                    } else if t.eq_ignore_ascii_case("false") || t == "0" {
                        out.push(false);
                    } else {
                        return Err(fail(k, format_args!("{text:?}"), self.to));
                    }
                }
                Data::Bool(out)
            }
            (Some(Arg::Str(s)), T::Timestamp) => {
                let fmt = self.time.as_ref().ok_or_else(bug)?;
                let mut out = Vec::with_capacity(n);
                for k in 0..n {
                    let text = s.get(k);
                    match fmt.parse(text.trim()) {
                        Some(t) => out.push(t),
                        None => return Err(fail(k, format_args!("{text:?} (not ISO-8601)"), self.to)),
                    }
                }
                Data::I64(out)
            }
            (Some(Arg::I64(v)), T::Int) => {
                let mut out = Vec::with_capacity(n);
                for k in 0..n {
                    let x = v.get(k);
                    if !fits(x, T::Int) {
                        return Err(fail(k, x, T::Int));
                    }
                    out.push(x);
                }
                Data::I64(out)
            }
            (Some(Arg::F64(v)), T::Int | T::Long) => {
                // Toward zero, as Flink SQL; NaN and numbers out of range fail.
                let mut out = Vec::with_capacity(n);
                for k in 0..n {
                    let x = v.get(k);
                    let t = x.trunc();
                    if !t.is_finite()
                        || !(-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&t)
                        || !fits(t as i64, self.to)
                    {
                        return Err(fail(k, x, self.to));
                    }
                    out.push(t as i64);
                }
                Data::I64(out)
            }
            (Some(Arg::I64(v)), T::Bool) => Data::Bool(map1!(I64s, *v, n, |x| x != 0)),
            (Some(Arg::Bool(v)), T::Int | T::Long) => Data::I64(map1!(Bools, *v, n, |x| i64::from(x))),
            _ => return Err(bug()),
        };
        Ok(Column::new(self.to, data))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::vals::{F64s, Strs};
    use crate::record::Value;

    #[test]
    fn parses_and_narrows_or_names_the_value() {
        let c = CastFn::new(DataType::String, DataType::Long).expect("cast");
        let out = c.invoke(&[Arg::Str(Strs::Scalar(" 42 "))], 2).expect("parses");
        assert_eq!(out.value(1), Some(Value::Int(42)));
        let e = c.invoke(&[Arg::Str(Strs::Scalar("abc"))], 1).expect_err("fails");
        assert_eq!(e.message, "cannot cast \"abc\" to long");
        let i = CastFn::new(DataType::Long, DataType::Int).expect("cast");
        assert!(i.invoke(&[Arg::I64(I64s::Scalar(1 << 40))], 1).is_err());
        let d = CastFn::new(DataType::Double, DataType::Long).expect("cast");
        assert_eq!(d.invoke(&[Arg::F64(F64s::Scalar(-2.7))], 1).expect("fits").value(0), Some(Value::Int(-2)));
        assert!(d.invoke(&[Arg::F64(F64s::Scalar(f64::NAN))], 1).is_err());
        let t = CastFn::new(DataType::String, DataType::Timestamp).expect("cast");
        let ts = t.invoke(&[Arg::Str(Strs::Scalar("2026-01-01T00:00:00.000Z"))], 1).expect("parses");
        assert_eq!(ts.value(0), Some(Value::Timestamp(1_767_225_600_000)));
        let b = CastFn::new(DataType::String, DataType::Bool).expect("cast");
        assert_eq!(b.invoke(&[Arg::Str(Strs::Scalar("TRUE"))], 1).expect("parses").value(0), Some(Value::Bool(true)));
        assert!(CastFn::new(DataType::Long, DataType::Double).is_none(), "compiled as IntToDouble");
    }
}
