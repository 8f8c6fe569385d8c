//! TLS for the REST API, in Flink's keys: `security.ssl.rest.enabled` with
//! the server's certificate from a PKCS12 keystore
//! (`security.ssl.rest.keystore`, `…keystore-password`, `…key-password`,
//! `…keystore-type`) or from PEM files (flowc's `security.ssl.rest.cert` and
//! `security.ssl.rest.key`); the client trusts a PKCS12 truststore
//! (`security.ssl.rest.truststore`, `…truststore-password`) or a PEM CA file
//! (flowc's `security.ssl.rest.ca`), never any certificate. rustls on the
//! `ring` provider.

use super::pem::{self, KeyFileError};
use crate::config::{Config, ConfigError};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum TlsConfigError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("config key `{key}`: {source}")]
    KeyFile { key: &'static str, source: KeyFileError },
    #[error("config key `{key}`: {reason}")]
    Invalid { key: &'static str, reason: String },
}

fn invalid(key: &'static str, reason: impl Into<String>) -> TlsConfigError {
    TlsConfigError::Invalid { key, reason: reason.into() }
}

/// Whether `security.ssl.rest.enabled` is set.
pub fn enabled(config: &Config) -> Result<bool, ConfigError> {
    config.get_bool("security.ssl.rest.enabled")
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn store_type(config: &Config, key: &'static str) -> Result<(), TlsConfigError> {
    let t = config.get(key);
    match t.trim().to_ascii_uppercase().as_str() {
        "" | "PKCS12" | "P12" => Ok(()),
        other => Err(invalid(key, format!("`{other}` is not supported: flowc reads PKCS12 (convert with `keytool -importkeystore -deststoretype PKCS12`)"))),
    }
}

/// The server's certificate chain and key, from the keystore or the PEM files.
fn server_identity(config: &Config) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsConfigError> {
    let keystore = config.get("security.ssl.rest.keystore");
    let (cert, key) = (config.get("security.ssl.rest.cert"), config.get("security.ssl.rest.key"));
    match (keystore.is_empty(), cert.is_empty(), key.is_empty()) {
        (false, true, true) => {
            store_type(config, "security.ssl.rest.keystore-type")?;
            let password = config.get("security.ssl.rest.keystore-password");
            let key_password = config.get("security.ssl.rest.key-password");
            if !key_password.is_empty() && key_password != password {
                return Err(invalid(
                    "security.ssl.rest.key-password",
                    "differs from security.ssl.rest.keystore-password; a PKCS12 keystore has one password for both",
                ));
            }
            let k = "security.ssl.rest.keystore";
            let store = pem::pkcs12(Path::new(&keystore), &password).map_err(|source| TlsConfigError::KeyFile { key: k, source })?;
            let (key, chain) = store
                .key
                .ok_or_else(|| TlsConfigError::KeyFile { key: k, source: KeyFileError::NoKeyInStore { path: keystore.clone() } })?;
            if chain.is_empty() {
                return Err(TlsConfigError::KeyFile { key: k, source: KeyFileError::NoCertificateInStore { path: keystore } });
            }
            Ok((chain, key))
        }
        (true, false, false) => {
            let chain = pem::certificates(Path::new(&cert))
                .map_err(|source| TlsConfigError::KeyFile { key: "security.ssl.rest.cert", source })?;
            let key = pem::private_key(Path::new(&key))
                .map_err(|source| TlsConfigError::KeyFile { key: "security.ssl.rest.key", source })?;
            Ok((chain, key))
        }
        (true, true, true) => Err(invalid(
            "security.ssl.rest.enabled",
            "REST TLS needs a certificate: set security.ssl.rest.keystore (PKCS12), or security.ssl.rest.cert and security.ssl.rest.key (PEM)",
        )),
        (false, _, _) => Err(invalid(
            "security.ssl.rest.keystore",
            "give either a keystore or security.ssl.rest.cert and security.ssl.rest.key, not both",
        )),
        (true, false, true) => Err(invalid("security.ssl.rest.key", "security.ssl.rest.cert is set without its key")),
        (true, true, false) => Err(invalid("security.ssl.rest.cert", "security.ssl.rest.key is set without its certificate")),
    }
}

/// The REST server's TLS configuration, or `None` when REST TLS is off.
/// Every file is read and checked now, so a bad one stops the start.
pub fn server_config(config: &Config) -> Result<Option<Arc<ServerConfig>>, TlsConfigError> {
    if config.get_bool("security.ssl.rest.authentication-enabled")? {
        return Err(invalid(
            "security.ssl.rest.authentication-enabled",
            "mutual TLS for REST is not supported; use flowc.security.rest.token for client authentication",
        ));
    }
    if !enabled(config)? {
        return Ok(None);
    }
    let (chain, key) = server_identity(config)?;
    let mut tls = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid("security.ssl.rest.enabled", e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| {
            invalid("security.ssl.rest.enabled", format!("the certificate and key do not form a usable pair: {e}"))
        })?;
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(Arc::new(tls)))
}

/// The certificates a REST client trusts: the truststore's or the CA file's.
fn trusted(config: &Config) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    let truststore = config.get("security.ssl.rest.truststore");
    let ca = config.get("security.ssl.rest.ca");
    match (truststore.is_empty(), ca.is_empty()) {
        (false, true) => {
            store_type(config, "security.ssl.rest.truststore-type")?;
            let k = "security.ssl.rest.truststore";
            let store = pem::pkcs12(Path::new(&truststore), &config.get("security.ssl.rest.truststore-password"))
                .map_err(|source| TlsConfigError::KeyFile { key: k, source })?;
            if store.certificates.is_empty() {
                return Err(TlsConfigError::KeyFile { key: k, source: KeyFileError::NoCertificateInStore { path: truststore } });
            }
            Ok(store.certificates)
        }
        (true, false) => pem::certificates(Path::new(&ca))
            .map_err(|source| TlsConfigError::KeyFile { key: "security.ssl.rest.ca", source }),
        (true, true) => Err(invalid(
            "security.ssl.rest.enabled",
            "a REST client over TLS needs what to trust: set security.ssl.rest.truststore (PKCS12) or security.ssl.rest.ca (PEM)",
        )),
        (false, false) => Err(invalid("security.ssl.rest.truststore", "give either a truststore or security.ssl.rest.ca, not both")),
    }
}

/// A REST client's TLS configuration, or `None` when REST TLS is off.
pub fn client_config(config: &Config) -> Result<Option<Arc<ClientConfig>>, TlsConfigError> {
    if !enabled(config)? {
        return Ok(None);
    }
    let mut roots = RootCertStore::empty();
    for c in trusted(config)? {
        roots
            .add(c)
            .map_err(|e| invalid("security.ssl.rest.truststore", format!("a trusted certificate is unusable: {e}")))?;
    }
    let tls = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid("security.ssl.rest.enabled", e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Some(Arc::new(tls)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate for 127.0.0.1 as PEM files and a PKCS12 keystore.
    fn material(dir: &Path) -> (String, String, String) {
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
            .expect("params")
            .self_signed(&key)
            .expect("certificate");
        let (c, k, p) = (dir.join("c.pem"), dir.join("k.pem"), dir.join("s.p12"));
        std::fs::write(&c, cert.pem()).expect("write");
        std::fs::write(&k, key.serialize_pem()).expect("write");
        let mut ks = p12_keystore::KeyStore::new();
        let chain = p12_keystore::PrivateKeyChain::new(
            b"id".as_slice(),
            p12_keystore::PrivateKey::from_der(&key.serialize_der()).expect("key"),
            [p12_keystore::Certificate::from_der(cert.der()).expect("cert")],
        );
        ks.add_entry("flowc", p12_keystore::KeyStoreEntry::PrivateKeyChain(chain));
        std::fs::write(&p, ks.writer("pw").write().expect("p12")).expect("write");
        let s = |p: std::path::PathBuf| p.display().to_string();
        (s(c), s(k), s(p))
    }

    #[test]
    fn pem_and_pkcs12_serve_and_errors_name_the_key() {
        let dir = std::env::temp_dir().join(format!("flowc-rest-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let (cert, key, p12) = material(&dir);
        let mut c = Config::default();
        assert!(server_config(&c).expect("off").is_none());
        c.set("security.ssl.rest.enabled", "true");
        let err = |c: &Config| server_config(c).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err(&c).contains("security.ssl.rest.enabled"), "{}", err(&c));
        c.set("security.ssl.rest.cert", &cert);
        c.set("security.ssl.rest.key", &key);
        assert!(server_config(&c).expect("PEM").is_some());
        c.set("security.ssl.rest.ca", &cert);
        assert!(client_config(&c).expect("PEM CA").is_some());
        c.set("security.ssl.rest.key", &cert);
        assert!(err(&c).contains("security.ssl.rest.key"), "{}", err(&c));

        let mut c = Config::default();
        c.set("security.ssl.rest.enabled", "true");
        c.set("security.ssl.rest.keystore", &p12);
        c.set("security.ssl.rest.keystore-password", "pw");
        assert!(server_config(&c).expect("PKCS12").is_some());
        c.set("security.ssl.rest.keystore-password", "wrong");
        assert!(err(&c).contains("security.ssl.rest.keystore"), "{}", err(&c));
        c.set("security.ssl.rest.keystore-password", "pw");
        c.set("security.ssl.rest.keystore-type", "JKS");
        assert!(err(&c).contains("security.ssl.rest.keystore-type"), "{}", err(&c));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
