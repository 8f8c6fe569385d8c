//! The UDF of the expression pipeline with a Rust call
//! (`bench/jobs/udf_pipeline.flow`). `bench/limit` compiles this same file
//! into its typed loop, and the Flink peer has the same arithmetic as a Java
//! method (`Udfs.score`).

/// A mix of the user and the minute of the visit, in `0..1000`.
pub fn score(user: i64, at_ms: i64) -> i64 {
    let mut z = (user as u64) ^ ((at_ms / 60_000) as u64).rotate_left(32);
    z = (z ^ (z >> 33)).wrapping_mul(0xff51_afd7_ed55_8ccd);
    z ^= z >> 33;
    (z % 1000) as i64
}
