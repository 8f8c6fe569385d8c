//! Records the target triple this crate is built for, which a UDF
//! artifact must have been built for too.

fn main() {
    let target = std::env::var("TARGET").unwrap_or_else(|_| "unknown".into());
    println!("cargo:rustc-env=FLOWC_UDF_HOST_TARGET={target}");
    println!("cargo:rerun-if-changed=build.rs");
}
