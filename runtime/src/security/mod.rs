//! Security of the cluster's edges (`docs/SECURITY.md` holds the threat
//! model and every option):
//!
//! - [`pem`]: the key material the TLS setups read (PEM files, PKCS12
//!   keystores);
//! - [`rest_tls`]: REST's TLS (the server's certificate, the client's trust);
//! - [`internal`]: what protects the RPC and data ports of a process;
//! - [`secret`]: the cluster secret and its challenge–response proofs;
//! - [`internal_tls`]: mutual TLS on the RPC and data ports;
//! - [`paths`]: the directories a REST caller or a job may name.

pub mod internal;
pub mod internal_tls;
pub mod paths;
pub mod pem;
pub mod rest_tls;
pub mod secret;
