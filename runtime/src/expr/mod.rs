//! Expressions compiled once per operator and evaluated a batch at a time.
//!
//! ```text
//!  ir::Expr ──compile (at deploy)──▶ CompiledExpr: typed kernel tree, constants folded
//!                                        │ eval(batch, selection)
//!                                        ▼
//!                                   Vals: a borrowed column, a constant, or computed values
//! ```
//!
//! In the spirit of DataFusion's `PhysicalExpr`: the tree is built when a
//! task is deployed and every node works on all selected rows of a batch
//! at once; per-record work is the arithmetic. A field read is a borrow of
//! the batch's column, a literal a borrow of the constant, function
//! arguments are column readers ([`functions::ColumnFunction`], also the
//! shape a user-defined function takes). Failures (a division by zero)
//! name the row and the place in the job file ([`error`]). Arrays are
//! list columns, read a row's slice at a time ([`arrays`]).

pub mod arrays;
pub mod cast;
pub mod compile;
pub mod dates;
pub mod error;
pub mod functions;
pub mod hash_fn;
pub mod kernels;
pub mod md5;
mod node;
pub mod regex_fn;
pub mod udf;
pub mod vals;

#[cfg(test)]
mod null_tests;
#[cfg(test)]
pub(crate) mod reference;
#[cfg(test)]
pub(crate) mod tests;

pub use compile::{AggregateScope, CompiledExpr};
pub use error::{ErrorKind, EvalError, Location, SourceMap};
pub use vals::{Sel, Vals};
