//! Rust UDFs: the functions of a Rust file a job imports with
//! `use rust "udfs/geo.rs"`, callable in expressions like built-in ones.
//!
//! ```text
//!  geo.rs ──signature (syn)──▶ PubFn: UdfSignature | Refusal (line:col in geo.rs)
//!         ──manifest─────────▶ [dependencies] of its `//! ```cargo` header
//!  UdfSignature… ──codegen (quote)──▶ GeneratedCrate: Cargo.toml, lib.rs, main.rs
//! ```
//!
//! The compiler only reads and generates text; the `flowc` binary builds
//! the crate with cargo, and the runtime loads what was built.

pub mod artifact;
pub mod codegen;
pub mod manifest;
pub mod scope;
pub mod signature;
pub mod types;

pub use codegen::{generate, GeneratedCrate, ABI_VERSION};
pub use manifest::Manifest;
pub use scope::{Imported, ImportedFn, Udfs};
pub use signature::{pub_fns, PubFn, Refusal};
pub use types::{ListOf, RustType, UdfParam, UdfSignature, UdfType};
