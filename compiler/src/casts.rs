//! Which conversions `cast(x as T)` makes, and which of them can fail on
//! some values: shared by the checker (what it accepts, what carries its
//! place for errors) and the runtime (what it compiles).
//!
//! | from \ to | string | int, long | double | bool | timestamp |
//! |-----------|--------|-----------|--------|------|-----------|
//! | string    | =      | parse ✗   | parse ✗| parse ✗ | parse (ISO-8601) ✗ |
//! | int, long | text   | =, long→int ✗ | ✓  | ≠ 0  | epoch ms  |
//! | double    | text   | truncate ✗| =      | —    | —         |
//! | bool      | text   | 0 / 1     | —      | =    | —         |
//! | timestamp | ISO-8601 | epoch ms | —     | —    | =         |
//!
//! Arrays cast to nothing but themselves.
//!
//! ✗: fails on some values (text that does not parse, a number that does
//! not fit, NaN), as Flink SQL's `CAST` does (its `TRY_CAST` is not offered).

use crate::ir::DataType;

/// Whether `from` casts to `to`, and whether that can fail at run time.
pub fn cast_kind(from: DataType, to: DataType) -> (bool, bool) {
    use DataType as T;
    match (from, to) {
        (a, b) if a == b => (true, false),
        (T::Array(_), _) | (_, T::Array(_)) => (false, false),
        (_, T::String) => (true, false),
        (T::String, _) => (true, true),
        (T::Long, T::Int) | (T::Double, T::Int | T::Long) => (true, true),
        (T::Int, T::Long) | (T::Int | T::Long, T::Double) => (true, false),
        (T::Int | T::Long, T::Bool) | (T::Bool, T::Int | T::Long) => (true, false),
        (T::Int | T::Long, T::Timestamp) | (T::Timestamp, T::Int | T::Long) => (true, false),
        _ => (false, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsing_and_narrowing_can_fail() {
        assert_eq!(cast_kind(DataType::String, DataType::Long), (true, true));
        assert_eq!(cast_kind(DataType::Double, DataType::Int), (true, true));
        assert_eq!(cast_kind(DataType::Timestamp, DataType::String), (true, false));
        assert_eq!(cast_kind(DataType::Bool, DataType::Double), (false, false));
        assert_eq!(cast_kind(DataType::Timestamp, DataType::Double), (false, false));
    }
}
