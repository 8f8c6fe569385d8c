pub fn f(x: i64) -> i64 {
    x +
}
