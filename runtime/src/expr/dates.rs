//! `date_format`, `date_trunc` and `extract`: their pattern and unit are constants
//! (the checker proves them), prepared once when the expression compiles.
//! Times are UTC, as every timestamp in flowc.

use super::functions::{Arg, ColumnFunction, FnError};
use crate::data::{Column, Data, StrColumn};
use flowc_compiler::ir::DataType;
use flowc_compiler::timefmt::{civil_from_days, days_from_civil, TimeFormat};

/// `date_format(t, pattern)`.
#[derive(Debug)]
pub struct DateFormatFn {
    fmt: TimeFormat,
}

impl DateFormatFn {
    pub fn new(pattern: &str) -> Result<DateFormatFn, String> {
        TimeFormat::for_output(pattern).map(|fmt| DateFormatFn { fmt }).map_err(|p| p.message)
    }
}

impl ColumnFunction for DateFormatFn {
    fn name(&self) -> &str {
        "date_format"
    }
    fn return_type(&self) -> DataType {
        DataType::String
    }
    fn fallible(&self) -> bool {
        false
    }
    fn invoke(&self, args: &[Arg<'_>], n: usize) -> Result<Column, FnError> {
        let Some(Arg::I64(t)) = args.first() else {
            return Err(FnError {
                k: 0,
                message: "internal error: date_format of a non-timestamp (a bug in flowc)".into(),
            });
        };
        let mut out = StrColumn::with_capacity(n, n * 16);
        for k in 0..n {
            out.push_with(|buf| self.fmt.format_into(t.get(k), buf));
        }
        Ok(Column::new(DataType::String, Data::Str(out)))
    }
}

/// A unit of `date_trunc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Year,
    Month,
    /// A fixed length in milliseconds: day, hour, minute, second.
    Fixed(i64),
}

impl Unit {
    pub fn by_name(name: &str) -> Option<Unit> {
        Some(match name {
            "year" => Unit::Year,
            "month" => Unit::Month,
            "day" => Unit::Fixed(86_400_000),
            "hour" => Unit::Fixed(3_600_000),
            "minute" => Unit::Fixed(60_000),
            "second" => Unit::Fixed(1_000),
            _ => return None,
        })
    }

    /// The start of the unit `t` is in.
    pub fn truncate(self, t: i64) -> i64 {
        match self {
            Unit::Fixed(ms) => t - t.rem_euclid(ms),
            Unit::Year | Unit::Month => {
                let (y, m, _) = civil_from_days(t.div_euclid(86_400_000));
                let m = if self == Unit::Year { 1 } else { m };
                days_from_civil(y, m, 1).saturating_mul(86_400_000)
            }
        }
    }
}

/// `date_trunc(unit, t)`.
#[derive(Debug)]
pub struct DateTruncFn {
    pub unit: Unit,
}

impl ColumnFunction for DateTruncFn {
    fn name(&self) -> &str {
        "date_trunc"
    }
    fn return_type(&self) -> DataType {
        DataType::Timestamp
    }
    fn fallible(&self) -> bool {
        false
    }
    fn invoke(&self, args: &[Arg<'_>], n: usize) -> Result<Column, FnError> {
        map_timestamps(args, n, "date_trunc", DataType::Timestamp, |t| self.unit.truncate(t))
    }
}

/// A part of a timestamp, for `extract(unit from t)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Year,
    Month,
    Day,
    Hour,
    Minute,
    Second,
    Millisecond,
    /// 1 = Sunday to 7 = Saturday, as Flink SQL's `EXTRACT(DOW FROM t)`.
    DayOfWeek,
}

impl Part {
    pub fn by_name(name: &str) -> Option<Part> {
        Some(match name {
            "year" => Part::Year,
            "month" => Part::Month,
            "day" => Part::Day,
            "hour" => Part::Hour,
            "minute" => Part::Minute,
            "second" => Part::Second,
            "millisecond" => Part::Millisecond,
            "dayofweek" => Part::DayOfWeek,
            _ => return None,
        })
    }

    /// This part of `t`, in UTC.
    pub fn of(self, t: i64) -> i64 {
        let days = t.div_euclid(86_400_000);
        let ms = t.rem_euclid(86_400_000);
        match self {
            Part::Year | Part::Month | Part::Day => {
                let (y, m, d) = civil_from_days(days);
                match self {
                    Part::Year => y,
                    Part::Month => m,
                    _ => d,
                }
            }
            Part::Hour => ms / 3_600_000,
            Part::Minute => ms / 60_000 % 60,
            Part::Second => ms / 1000 % 60,
            Part::Millisecond => ms % 1000,
            // 1970-01-01 was a Thursday (5).
            Part::DayOfWeek => (days + 4).rem_euclid(7) + 1,
        }
    }
}

/// `extract(unit from t)`.
#[derive(Debug)]
pub struct ExtractFn {
    pub part: Part,
}

impl ColumnFunction for ExtractFn {
    fn name(&self) -> &str {
        "extract"
    }
    fn return_type(&self) -> DataType {
        DataType::Long
    }
    fn fallible(&self) -> bool {
        false
    }
    fn invoke(&self, args: &[Arg<'_>], n: usize) -> Result<Column, FnError> {
        map_timestamps(args, n, "extract", DataType::Long, |t| self.part.of(t))
    }
}

/// `f` of each of the `n` timestamps of the first argument, as a column of
/// type `ty` (the checker gives these functions a timestamp only).
fn map_timestamps(
    args: &[Arg<'_>],
    n: usize,
    name: &str,
    ty: DataType,
    f: impl Fn(i64) -> i64,
) -> Result<Column, FnError> {
    let Some(Arg::I64(t)) = args.first() else {
        return Err(FnError { k: 0, message: format!("internal error: {name} of a non-timestamp (a bug in flowc)") });
    };
    Ok(Column::new(ty, Data::I64((0..n).map(|k| f(t.get(k))).collect())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncates_in_utc() {
        // 2026-11-24T22:15:42.123Z
        let t = 1_795_558_542_123;
        let iso = |ms| TimeFormat::new(flowc_compiler::ir::DEFAULT_TIMESTAMP_PATTERN).expect("pattern").format(ms);
        let at = |u: &str| iso(Unit::by_name(u).expect("unit").truncate(t));
        assert_eq!(at("year"), "2026-01-01T00:00:00.000Z");
        assert_eq!(at("month"), "2026-11-01T00:00:00.000Z");
        assert_eq!(at("day"), "2026-11-24T00:00:00.000Z");
        assert_eq!(at("hour"), "2026-11-24T22:00:00.000Z");
        assert_eq!(at("minute"), "2026-11-24T22:15:00.000Z");
        assert_eq!(at("second"), "2026-11-24T22:15:42.000Z");
        assert_eq!(iso(Unit::Month.truncate(-1)), "1969-12-01T00:00:00.000Z");
        let f = DateFormatFn::new("yyyy-MM-dd HH").expect("pattern");
        let c = f.invoke(&[Arg::I64(super::super::vals::I64s::Scalar(t))], 1).expect("formats");
        assert_eq!(c.value(0), Some(crate::record::Value::Str("2026-11-24 22".into())));
    }

    #[test]
    fn extracts_parts_in_utc() {
        // 2026-11-24T22:15:42.123Z, a Tuesday.
        let t = 1_795_558_542_123;
        let part = |u: &str, t| Part::by_name(u).expect("unit").of(t);
        let got: Vec<i64> = UNITS.iter().map(|u| part(u, t)).collect();
        assert_eq!(got, vec![2026, 11, 24, 22, 15, 42, 123, 3]);
        // Before the epoch: 1969-12-31T23:59:59.999Z, a Wednesday.
        let got: Vec<i64> = UNITS.iter().map(|u| part(u, -1)).collect();
        assert_eq!(got, vec![1969, 12, 31, 23, 59, 59, 999, 4]);
        assert_eq!(part("dayofweek", 0), 5, "1970-01-01 was a Thursday");
        assert_eq!(part("dayofweek", 3 * 86_400_000), 1, "1970-01-04 was a Sunday");
        for u in flowc_compiler::typing::EXTRACT_UNITS {
            assert!(Part::by_name(u).is_some(), "{u}");
        }
    }

    const UNITS: [&str; 8] = ["year", "month", "day", "hour", "minute", "second", "millisecond", "dayofweek"];
}
