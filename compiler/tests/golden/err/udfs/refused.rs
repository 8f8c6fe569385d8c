//! Signatures flowc cannot call, one per reason.

pub async fn fetch(url: &str) -> String {
    url.to_string()
}

pub unsafe fn raw(x: i64) -> i64 {
    x
}

pub fn generic<T: Copy>(x: T) -> T {
    x
}

pub fn bump(x: &mut i64) -> i64 {
    *x += 1;
    *x
}

pub fn pair(p: (i64, i64)) -> i64 {
    p.0 + p.1
}

pub fn split(s: &str) -> (String, String) {
    (s.to_string(), s.to_string())
}

pub fn by_ref(x: &i64) -> i64 {
    *x
}

pub fn unsigned(x: u32) -> i64 {
    x as i64
}

pub fn nested(xs: Vec<Vec<i64>>) -> i64 {
    xs.len() as i64
}

pub fn slice(xs: &[i64]) -> i64 {
    xs.len() as i64
}

pub fn bytes(b: Vec<u8>) -> i64 {
    b.len() as i64
}

pub fn nothing(x: i64) {
    let _ = x;
}

pub fn borrowed(s: &str) -> &str {
    s
}

pub fn local(t: chrono::DateTime<chrono::Local>) -> i64 {
    t.timestamp_millis()
}

pub fn fine(x: i64) -> i64 {
    x
}

fn private_is_ignored(x: u8) -> u8 {
    x
}
