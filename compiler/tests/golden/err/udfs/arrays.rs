//! Array parameters whose elements may not be null, for the UDF golden cases.

pub fn total(xs: Vec<i64>) -> i64 {
    xs.iter().sum()
}

pub fn how_many(xs: Option<Vec<i64>>) -> i64 {
    xs.map_or(0, |v| v.len() as i64)
}
