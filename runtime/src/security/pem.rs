//! Certificates and private keys from files: PEM (`-----BEGIN CERTIFICATE-----`,
//! a PKCS#8, PKCS#1 or SEC1 key) and PKCS12 keystores (what Java's `keytool`
//! and `openssl pkcs12` write), read in pure Rust. Every error names the file;
//! the caller names the configuration key.

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("cannot read `{path}`: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("`{path}` holds no PEM certificate")]
    NoCertificate { path: String },
    #[error("`{path}` holds no PEM private key (PKCS#8, PKCS#1 or SEC1)")]
    NoKey { path: String },
    #[error("`{path}` is not valid PEM: {message}")]
    BadPem { path: String, message: String },
    #[error("`{path}` is not a PKCS12 keystore this password opens: {message}")]
    Pkcs12 { path: String, message: String },
    #[error("`{path}` holds no private key")]
    NoKeyInStore { path: String },
    #[error("`{path}` holds no certificate")]
    NoCertificateInStore { path: String },
}

fn read(path: &Path) -> Result<Vec<u8>, KeyFileError> {
    std::fs::read(path).map_err(|source| KeyFileError::Read { path: path.display().to_string(), source })
}

/// Every certificate of a PEM file, in order (a chain: leaf first).
pub fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, KeyFileError> {
    let data = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&data)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| KeyFileError::BadPem { path: path.display().to_string(), message: e.to_string() })?;
    if certs.is_empty() {
        return Err(KeyFileError::NoCertificate { path: path.display().to_string() });
    }
    Ok(certs)
}

/// The first private key of a PEM file.
pub fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, KeyFileError> {
    let data = read(path)?;
    PrivateKeyDer::from_pem_slice(&data).map_err(|e| match e {
        rustls_pki_types::pem::Error::NoItemsFound => KeyFileError::NoKey { path: path.display().to_string() },
        other => KeyFileError::BadPem { path: path.display().to_string(), message: other.to_string() },
    })
}

/// What a PKCS12 keystore holds.
pub struct Pkcs12 {
    /// The first private key and its certificate chain (leaf first), if any.
    pub key: Option<(PrivateKeyDer<'static>, Vec<CertificateDer<'static>>)>,
    /// Every certificate in the store (a truststore's trusted certificates).
    pub certificates: Vec<CertificateDer<'static>>,
}

/// Opens a PKCS12 keystore with its password.
pub fn pkcs12(path: &Path, password: &str) -> Result<Pkcs12, KeyFileError> {
    let data = read(path)?;
    let archive = p12_keystore::Pkcs12Archive::from_pkcs12(&data, password)
        .map_err(|e| KeyFileError::Pkcs12 { path: path.display().to_string(), message: e.to_string() })?;
    let certificates: Vec<CertificateDer<'static>> =
        archive.certs.iter().map(|c| CertificateDer::from(c.cert.as_der().to_vec())).collect();
    let key = archive.keys.first().map(|k| {
        // The leaf is the certificate bag with the key's local id (else the
        // first one); the chain follows issuers among the other certificates.
        let leaf = archive
            .certs
            .iter()
            .find(|c| {
                c.local_key_id.is_some()
                    && c.local_key_id.as_deref() == k.local_key_id.as_ref().map(|id| id.0.as_slice())
            })
            .or_else(|| archive.certs.first());
        let mut chain = Vec::new();
        let mut at = leaf;
        while let Some(c) = at {
            if chain.iter().any(|d: &CertificateDer| d.as_ref() == c.cert.as_der()) {
                break;
            }
            chain.push(CertificateDer::from(c.cert.as_der().to_vec()));
            if c.cert.issuer() == c.cert.subject() {
                break;
            }
            at = archive.certs.iter().find(|i| i.cert.subject() == c.cert.issuer());
        }
        (PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(k.key.as_der().to_vec())), chain)
    });
    Ok(Pkcs12 { key, certificates })
}
