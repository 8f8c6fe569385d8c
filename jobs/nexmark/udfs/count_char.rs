//! Nexmark's user-defined function of query 14, as `CountChar` of the
//! Nexmark Flink queries: how many times the first character of `c`
//! occurs in `s`.

pub fn count_char(s: &str, c: &str) -> i64 {
    match c.chars().next() {
        Some(ch) => s.chars().filter(|x| *x == ch).count() as i64,
        None => 0,
    }
}
