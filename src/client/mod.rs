//! The client side of the command line: talks to a JobManager's REST API.

pub mod http;
pub mod rest;
