//! A test PKI: a CA and the node certificates it signs, as PEM files and
//! PKCS12 stores, for the tests of internal mutual TLS.

use std::path::{Path, PathBuf};

/// A CA and the certificates it signs, written as PEM files (and PKCS12).
pub struct Pki {
    dir: PathBuf,
    ca: rcgen::Certificate,
    ca_key: rcgen::KeyPair,
}

impl Pki {
    pub fn new(dir: &Path, name: &str) -> Pki {
        let dir = dir.join(name);
        std::fs::create_dir_all(&dir).expect("pki dir");
        let ca_key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, format!("{name} CA"));
        let ca = params.self_signed(&ca_key).expect("CA");
        std::fs::write(dir.join("ca.pem"), ca.pem()).expect("write");
        Pki { dir, ca, ca_key }
    }

    pub fn ca_file(&self) -> String {
        self.dir.join("ca.pem").display().to_string()
    }

    pub fn leaf(&self, name: &str) -> (rcgen::Certificate, rcgen::KeyPair) {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).expect("params");
        params.distinguished_name.push(rcgen::DnType::CommonName, name);
        (params.signed_by(&key, &self.ca, &self.ca_key).expect("signed"), key)
    }

    /// PEM certificate and key files of a node: (cert, key).
    pub fn pem(&self, name: &str) -> (String, String) {
        let (cert, key) = self.leaf(name);
        let (c, k) = (self.dir.join(format!("{name}.pem")), self.dir.join(format!("{name}.key")));
        std::fs::write(&c, cert.pem()).expect("write");
        std::fs::write(&k, key.serialize_pem()).expect("write");
        (c.display().to_string(), k.display().to_string())
    }

    /// A PKCS12 keystore of a node and a truststore with the CA: (keystore, truststore).
    pub fn pkcs12(&self, name: &str, password: &str) -> (String, String) {
        use p12_keystore::{Certificate, KeyStore, KeyStoreEntry, PrivateKey, PrivateKeyChain};
        let (cert, key) = self.leaf(name);
        let chain = PrivateKeyChain::new(
            vec![1u8],
            PrivateKey::from_der(&key.serialize_der()).expect("key"),
            [Certificate::from_der(cert.der()).expect("cert"), Certificate::from_der(self.ca.der()).expect("ca")],
        );
        let mut keystore = KeyStore::new();
        keystore.add_entry(name, KeyStoreEntry::PrivateKeyChain(chain));
        let mut truststore = KeyStore::new();
        truststore.add_entry("ca", KeyStoreEntry::Certificate(Certificate::from_der(self.ca.der()).expect("ca")));
        let (ks, ts) = (self.dir.join(format!("{name}.p12")), self.dir.join("truststore.p12"));
        std::fs::write(&ks, keystore.writer(password).write().expect("p12")).expect("write");
        std::fs::write(&ts, truststore.writer(password).write().expect("p12")).expect("write");
        (ks.display().to_string(), ts.display().to_string())
    }
}
