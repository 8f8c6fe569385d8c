//! One module per subcommand.

pub mod check;
pub mod compile;
pub mod explain;
pub mod fmt;
pub mod job_args;
