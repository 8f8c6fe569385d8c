//! Distances on the Earth, for the UDF golden cases.
//!
//! ```cargo
//! [dependencies]
//! itoa = "1"
//! ```

/// Great-circle distance in kilometres.
pub fn geo_distance(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let r = 6371.0_f64;
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = (lat2 - lat1).to_radians();
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * r * a.sqrt().asin()
}

pub fn label(page: &str, n: i64) -> String {
    let mut b = itoa::Buffer::new();
    format!("{page}#{}", b.format(n))
}

pub fn is_short(s: &str) -> bool {
    s.len() < 6
}

pub fn bucket(n: i32) -> Option<i32> {
    if n >= 0 { Some(n / 10) } else { None }
}

pub fn hour(t: chrono::DateTime<chrono::Utc>) -> chrono::NaiveDateTime {
    t.naive_utc()
}

fn helper(x: u8) -> u8 {
    x
}
