//! Security of the cluster's edges: the key material both TLS setups read
//! ([`pem`]: PEM files and PKCS12 keystores) and REST's TLS ([`rest_tls`]:
//! the server's certificate, the client's trust). `docs/SECURITY.md` holds
//! the threat model and every option.

pub mod pem;
pub mod rest_tls;
