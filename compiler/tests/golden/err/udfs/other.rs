pub fn upper(s: &str) -> String {
    s.to_uppercase()
}

pub fn twice(x: i64) -> i64 {
    2 * x
}
