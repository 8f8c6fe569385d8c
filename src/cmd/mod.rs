//! One module per subcommand.

pub mod cancel;
pub mod check;
pub mod cluster;
pub mod compile;
pub mod config_args;
pub mod explain;
pub mod fmt;
pub mod job_args;
pub mod list;
pub mod lsp;
pub mod ops;
pub mod run;
pub mod savepoint;
pub mod udf_build;
