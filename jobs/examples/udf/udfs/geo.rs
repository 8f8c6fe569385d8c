//! Functions for `jobs/examples/udf/trips.flow`: a distance on the Earth,
//! a label made with a crates.io dependency, a timestamp's hour, a
//! page's section, which may be null, and a page's segments, an array.
//!
//! ```cargo
//! [dependencies]
//! itoa = "1"
//! chrono = { version = "0.4", default-features = false, features = ["std"] }
//! ```

use chrono::{DateTime, Timelike, Utc};

/// Great-circle distance in kilometres between two points given in degrees.
pub fn geo_distance(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let r = 6371.0_f64;
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = (lat2 - lat1).to_radians();
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * r * a.sqrt().asin()
}

/// `page#n`, the number written by `itoa`.
pub fn label(page: &str, n: i64) -> String {
    let mut b = itoa::Buffer::new();
    let mut s = String::with_capacity(page.len() + 21);
    s.push_str(page);
    s.push('#');
    s.push_str(b.format(n));
    s
}

/// The hour of the day (UTC) of a timestamp.
pub fn hour_of(t: DateTime<Utc>) -> i32 {
    t.hour() as i32
}

/// The page past its first segment (`/shop/cart` → `cart`); `None`, a
/// null, for a page without one.
pub fn subpage(page: &str) -> Option<String> {
    page.trim_start_matches('/').split_once('/').map(|(_, rest)| rest.to_string())
}

/// An `Option` parameter is called with `None` for a null argument.
pub fn or_top(section: Option<&str>) -> String {
    section.unwrap_or("(top)").to_string()
}

/// A page's segments (`/shop/cart` → `["shop", "cart"]`): a `Vec` is an
/// `array<string>`.
pub fn segments(page: &str) -> Vec<String> {
    page.split('/').filter(|s| !s.is_empty()).map(str::to_string).collect()
}

/// The longest of the segments; `None` (a null) for none.
pub fn longest(segments: Vec<&str>) -> Option<String> {
    segments.into_iter().max_by_key(|s| s.len()).map(str::to_string)
}

/// Fails on purpose for a negative id: how a panicking UDF fails its task.
pub fn checked_id(id: i64) -> i64 {
    if id < 0 {
        panic!("negative id {id}");
    }
    id
}

/// Not imported: flowc has no unsigned types (a warning in `flowc check`).
pub fn unsigned(x: u32) -> u32 {
    x
}
