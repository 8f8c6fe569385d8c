pub fn scale(x: f64, by: i32) -> f64 {
    x * by as f64
}

pub fn greet(name: &str) -> String {
    format!("hello {name}")
}

pub fn age_ms(at: i64) -> i64 {
    at
}
