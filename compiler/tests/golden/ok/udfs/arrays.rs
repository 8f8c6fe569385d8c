//! Functions that take and return arrays, for the UDF golden cases.

/// A plain `Vec`: an `array<long>` (never a null element).
pub fn total(xs: Vec<i64>) -> i64 {
    xs.iter().sum()
}

/// `Vec<Option<i64>>`: an `array<long?>`, or an `array<long>`.
pub fn present(xs: Vec<Option<i64>>) -> i64 {
    xs.iter().flatten().count() as i64
}

/// An `array<string>` result.
pub fn words(s: &str) -> Vec<String> {
    s.split('/').filter(|w| !w.is_empty()).map(str::to_string).collect()
}

/// A nullable `array<string?>`: `None` for a null, an empty part a null element.
pub fn parts(s: Option<&str>) -> Option<Vec<Option<String>>> {
    s.map(|s| s.split('/').map(|w| (!w.is_empty()).then(|| w.to_string())).collect())
}

/// A null array is `None`; the strings are borrowed.
pub fn longest(xs: Option<Vec<&str>>) -> Option<String> {
    xs?.into_iter().max_by_key(|w| w.len()).map(str::to_string)
}
