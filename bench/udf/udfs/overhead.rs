//! Trivial functions for measuring what a UDF call costs per row
//! (`runtime/examples/udf_overhead.rs`, `bench/README.md`).

pub fn add1(x: i64) -> i64 {
    x + 1
}

pub fn shout(s: &str) -> String {
    s.to_ascii_uppercase()
}
