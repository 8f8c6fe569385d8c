//! ```cargo
//! [dependencies]
//! itoa = "1"
//! mine = { path = "../mine" }
//! ```

pub fn f(x: i64) -> i64 {
    x
}
