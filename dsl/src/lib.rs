//! The flowc pipeline language: grammar, syntax tree, parser, formatter and
//! diagnostics.
//!
//! This crate is the first stage of the compiler pipeline and knows nothing
//! of plans, types or the runtime:
//!
//! ```text
//!  job.flow ──parse──▶ JobFile (AST + spans) ──▶ flowc-compiler: check → plan → job graph
//!              │
//!              └──────▶ Diagnostic (file:line:col, label, help)
//! ```
//!
//! [`parse`] never stops at the first syntax error: it reports every
//! statement that does not parse and keeps the ones that do. [`format()`]
//! prints a tree in the canonical layout, keeping the source's comments.
//! [`load`] reads a job file from disk with the checks a user needs (missing
//! file, binary or non-UTF-8 content, absurd size) turned into diagnostics.

// Diagnostics are returned by value on error paths only; they carry spans,
// labels and help text, and boxing them would buy nothing measurable.
#![allow(clippy::result_large_err)]

pub mod ast;
pub mod diagnostic;
pub mod format;
pub mod load;
pub mod names;
pub mod not_yet;
pub mod parser;
pub mod span;

pub use diagnostic::{Diagnostic, Severity, SourceFile};
pub use format::format;
pub use load::{load, LoadError};
pub use parser::{parse, Parsed};
pub use span::Span;
