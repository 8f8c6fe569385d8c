//! A client of the JobManager's REST API: what `flowc run`, `list`, `cancel`
//! and the end-to-end tests use to talk to a cluster.

pub mod http;
pub mod rest;
