//! Security of the cluster. This file is H2's minimal stand-in for the
//! module H1 creates (REST TLS, PEM loading): only the cluster-internal
//! part is declared here, to be folded into H1's `mod.rs` at merge.
//!
//! - [`internal`]: what protects the RPC and data ports of a process.
//! - [`secret`]: the cluster secret and its challenge–response proofs.
//! - [`internal_tls`]: mutual TLS on the RPC and data ports.

pub mod internal;
pub mod internal_tls;
pub mod secret;
