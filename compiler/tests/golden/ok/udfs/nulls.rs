//! Functions that take and return nulls, for the UDF golden cases.

/// Called on a null too (`None`): never null itself.
pub fn or_zero(x: Option<i64>) -> i64 {
    x.unwrap_or(0)
}

/// A plain parameter: a null argument is a null result, without a call.
pub fn half(x: i64) -> i64 {
    x / 2
}

/// `None` is a null.
pub fn half_even(x: i64) -> Option<i64> {
    (x % 2 == 0).then_some(x / 2)
}

pub fn tag(s: Option<&str>) -> String {
    s.map_or_else(|| "none".to_string(), |s| format!("sub:{s}"))
}
