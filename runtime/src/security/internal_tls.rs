//! Mutual TLS for cluster-internal traffic: the JobManager's RPC port and
//! the TaskManagers' data ports, with Flink's keys
//! (`security.ssl.internal.enabled`, `…keystore`, `…keystore-password`,
//! `…key-password`, `…truststore`, `…truststore-password`: PKCS12) or
//! flowc's PEM keys (`security.ssl.internal.cert`, `…key`, `…ca`).
//!
//! Both sides present a certificate and both verify the peer's against the
//! truststore (the CA): a process without a certificate the cluster trusts
//! is refused at the handshake. As in Flink, `security.ssl.verify-hostname`
//! (default true) also checks that the server's certificate names the host
//! it was reached at; client certificates are checked for their chain only.
//! rustls with the `ring` provider.
//!
//! The loading of PEM and PKCS12 files here is deliberately minimal and
//! local to this module (the REST side has its own, in `security::pem`).

use super::internal::SecurityError;
use p12_keystore::{KeyStore, KeyStoreEntry, Pkcs12ImportPolicy};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::{ParsedCertificate, WebPkiClientVerifier};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};
use std::sync::Arc;

pub const ENABLED: &str = "security.ssl.internal.enabled";
pub const KEYSTORE: &str = "security.ssl.internal.keystore";
pub const KEYSTORE_PASSWORD: &str = "security.ssl.internal.keystore-password";
pub const KEY_PASSWORD: &str = "security.ssl.internal.key-password";
pub const TRUSTSTORE: &str = "security.ssl.internal.truststore";
pub const TRUSTSTORE_PASSWORD: &str = "security.ssl.internal.truststore-password";
pub const CERT: &str = "security.ssl.internal.cert";
pub const KEY: &str = "security.ssl.internal.key";
pub const CA: &str = "security.ssl.internal.ca";
pub const VERIFY_HOSTNAME: &str = "security.ssl.verify-hostname";

/// The TLS configurations of one process: as a server (RPC or data port)
/// and as a client (to the JobManager, to other TaskManagers).
#[derive(Debug)]
pub struct InternalTls {
    pub server: Arc<ServerConfig>,
    pub client: Arc<ClientConfig>,
    /// Whether the server's certificate must name the host (Flink's
    /// `security.ssl.verify-hostname`).
    pub verify_hostname: bool,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// `true`/`false` of a key, or its default.
pub(crate) fn flag(config: &crate::config::Config, key: &str, default: bool) -> Result<bool, SecurityError> {
    let v = config.get(key);
    match v.trim().to_ascii_lowercase().as_str() {
        "" => Ok(default),
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(SecurityError::key(key, format!("`{v}` is not true or false"))),
    }
}

impl InternalTls {
    /// The configured TLS, or none when `security.ssl.internal.enabled` is
    /// not true. Every problem names the key to fix.
    pub fn from_config(config: &crate::config::Config) -> Result<Option<Arc<InternalTls>>, SecurityError> {
        if !flag(config, ENABLED, false)? {
            return Ok(None);
        }
        let set = |k: &str| !config.get(k).trim().is_empty();
        let path = |k: &str| config.get(k).trim().to_string();
        let (chain, key, roots) = match (set(CERT) || set(KEY) || set(CA), set(KEYSTORE) || set(TRUSTSTORE)) {
            (true, true) => {
                return Err(SecurityError::key(
                    KEYSTORE,
                    format!("give either PKCS12 stores or PEM files (`{CERT}`, `{KEY}`, `{CA}`), not both"),
                ))
            }
            (false, false) => {
                return Err(SecurityError::key(
                    KEYSTORE,
                    format!("{ENABLED} is true but no keystore is set (or PEM files `{CERT}`, `{KEY}`, `{CA}`)"),
                ))
            }
            (true, false) => {
                for k in [CERT, KEY, CA] {
                    if !set(k) {
                        return Err(SecurityError::key(k, "is needed for internal TLS with PEM files".to_string()));
                    }
                }
                (pem_certs(CERT, &path(CERT))?, pem_key(KEY, &path(KEY))?, pem_certs(CA, &path(CA))?)
            }
            (false, true) => {
                for k in [KEYSTORE, TRUSTSTORE] {
                    if !set(k) {
                        return Err(SecurityError::key(k, "is needed for internal TLS with PKCS12 stores".to_string()));
                    }
                }
                let store_pw = config.get(KEYSTORE_PASSWORD);
                let key_pw = config.get(KEY_PASSWORD);
                let (chain, key) = p12_keystore(&path(KEYSTORE), &store_pw, &key_pw)?;
                let roots = p12_truststore(&path(TRUSTSTORE), &config.get(TRUSTSTORE_PASSWORD))?;
                (chain, key, roots)
            }
        };
        let trust_key = if set(CA) { CA } else { TRUSTSTORE };
        let mut store = RootCertStore::empty();
        for c in roots {
            store.add(c).map_err(|e| SecurityError::key(trust_key, format!("a certificate cannot be trusted: {e}")))?;
        }
        if store.is_empty() {
            return Err(SecurityError::key(trust_key, "holds no certificate".to_string()));
        }
        let store = Arc::new(store);
        let verify_hostname = flag(config, VERIFY_HOSTNAME, true)?;
        let key_name = if set(KEY) { KEY } else { KEYSTORE };
        let provider = provider();
        if let Err(e) = provider.key_provider.load_private_key(key.clone_key()) {
            let hint = if key_name == KEYSTORE {
                " (ring needs an EC key's public key inside it, which keytool leaves out: use an RSA key, or a store made with openssl)"
            } else {
                ""
            };
            return Err(SecurityError::key(key_name, format!("the private key cannot be used: {e}{hint}")));
        }
        let client_verifier = WebPkiClientVerifier::builder_with_provider(store.clone(), provider.clone())
            .build()
            .map_err(|e| SecurityError::key(trust_key, e.to_string()))?;
        let server = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| SecurityError::key(ENABLED, e.to_string()))?
            .with_client_cert_verifier(client_verifier)
            .with_single_cert(chain.clone(), key.clone_key())
            .map_err(|e| SecurityError::key(key_name, format!("the key does not fit the certificate: {e}")))?;
        let server_verifier = WebPkiServerVerifier::builder_with_provider(store.clone(), provider.clone())
            .build()
            .map_err(|e| SecurityError::key(trust_key, e.to_string()))?;
        let verifier = Arc::new(PeerVerifier {
            inner: server_verifier,
            roots: store,
            provider: provider.clone(),
            verify_hostname,
        });
        let client = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| SecurityError::key(ENABLED, e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_client_auth_cert(chain, key)
            .map_err(|e| SecurityError::key(key_name, format!("the key does not fit the certificate: {e}")))?;
        Ok(Some(Arc::new(InternalTls { server: Arc::new(server), client: Arc::new(client), verify_hostname })))
    }

    /// The name a client checks the server's certificate against, from
    /// `host:port`: the host (an IP address or a DNS name).
    pub fn server_name(addr: &str) -> Result<ServerName<'static>, std::io::Error> {
        let host = match addr.rsplit_once(':') {
            Some((h, _)) => h.trim_start_matches('[').trim_end_matches(']'),
            None => addr,
        };
        ServerName::try_from(host.to_string()).map_err(|e| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("`{host}` is not a host name: {e}"))
        })
    }

    /// A blocking TLS client over `tcp`, handshake done.
    pub fn connect_blocking(
        &self,
        addr: &str,
        mut tcp: std::net::TcpStream,
    ) -> std::io::Result<rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>> {
        let mut conn = rustls::ClientConnection::new(self.client.clone(), InternalTls::server_name(addr)?)
            .map_err(std::io::Error::other)?;
        handshake(&mut conn, &mut tcp)?;
        Ok(rustls::StreamOwned::new(conn, tcp))
    }

    /// A blocking TLS server over `tcp`, handshake done.
    pub fn accept_blocking(
        &self,
        mut tcp: std::net::TcpStream,
    ) -> std::io::Result<rustls::StreamOwned<rustls::ServerConnection, std::net::TcpStream>> {
        let mut conn = rustls::ServerConnection::new(self.server.clone()).map_err(std::io::Error::other)?;
        handshake(&mut conn, &mut tcp)?;
        Ok(rustls::StreamOwned::new(conn, tcp))
    }
}

/// Runs a blocking handshake to its end, within 10 s.
fn handshake<C, S>(conn: &mut C, tcp: &mut std::net::TcpStream) -> std::io::Result<()>
where
    C: std::ops::DerefMut<Target = rustls::ConnectionCommon<S>>,
    S: rustls::SideData,
{
    let before = tcp.read_timeout()?;
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    let mut result = Ok(());
    while conn.is_handshaking() {
        if let Err(e) = conn.complete_io(tcp) {
            result = Err(e);
            break;
        }
    }
    // Whatever the handshake left to send (an alert, the last flight).
    while result.is_ok() && conn.wants_write() {
        if let Err(e) = conn.write_tls(tcp) {
            result = Err(e);
        }
    }
    tcp.set_read_timeout(before)?;
    result
}

/// Whether an I/O error is the peer refusing this process's certificate
/// (a TLS alert about it), as opposed to a network failure.
pub fn is_certificate_refusal(e: &std::io::Error) -> bool {
    use rustls::AlertDescription as A;
    let Some(tls) = e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) else { return false };
    matches!(
        tls,
        rustls::Error::AlertReceived(
            A::BadCertificate
                | A::UnsupportedCertificate
                | A::CertificateRevoked
                | A::CertificateExpired
                | A::CertificateUnknown
                | A::UnknownCA
                | A::AccessDenied
                | A::CertificateRequired
                | A::HandshakeFailure
        )
    )
}

/// Checks the server's chain against the truststore, and its name when
/// `security.ssl.verify-hostname` is on.
#[derive(Debug)]
struct PeerVerifier {
    inner: Arc<WebPkiServerVerifier>,
    roots: Arc<RootCertStore>,
    provider: Arc<CryptoProvider>,
    verify_hostname: bool,
}

impl ServerCertVerifier for PeerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self.verify_hostname {
            return self.inner.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now);
        }
        let cert = ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &cert,
            &self.roots,
            intermediates,
            now,
            self.provider.signature_verification_algorithms.all,
        )?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

fn read(key: &str, path: &str) -> Result<Vec<u8>, SecurityError> {
    std::fs::read(path).map_err(|e| SecurityError::key(key, format!("cannot read `{path}`: {e}")))
}

/// The certificates of a PEM file (`security::pem`), the error naming `key`.
fn pem_certs(key: &str, path: &str) -> Result<Vec<CertificateDer<'static>>, SecurityError> {
    super::pem::certificates(std::path::Path::new(path)).map_err(|e| SecurityError::key(key, e.to_string()))
}

/// The private key of a PEM file (`security::pem`), the error naming `key`.
fn pem_key(key: &str, path: &str) -> Result<PrivateKeyDer<'static>, SecurityError> {
    super::pem::private_key(std::path::Path::new(path)).map_err(|e| SecurityError::key(key, e.to_string()))
}

fn open_p12(
    key: &str,
    password_key: &str,
    path: &str,
    password: &str,
    policy: Pkcs12ImportPolicy,
) -> Result<KeyStore, SecurityError> {
    let bytes = read(key, path)?;
    KeyStore::from_pkcs12(&bytes, password, policy).map_err(|e| match e {
        p12_keystore::error::Error::MacError(_) => {
            SecurityError::key(password_key, format!("wrong password for `{path}`"))
        }
        other => SecurityError::key(key, format!("`{path}` is not a readable PKCS12 file with this password: {other}")),
    })
}

/// The certificate chain and private key of a PKCS12 keystore. PKCS12
/// has one password; a different key password is tried if the keystore
/// password does not open it.
fn p12_keystore(
    path: &str,
    store_password: &str,
    key_password: &str,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), SecurityError> {
    let store = match open_p12(KEYSTORE, KEYSTORE_PASSWORD, path, store_password, Pkcs12ImportPolicy::Strict) {
        Err(e) if !key_password.is_empty() && key_password != store_password => {
            open_p12(KEYSTORE, KEY_PASSWORD, path, key_password, Pkcs12ImportPolicy::Strict).map_err(|_| e)?
        }
        other => other?,
    };
    let (_, chain) = store
        .private_key_chain()
        .ok_or_else(|| SecurityError::key(KEYSTORE, format!("`{path}` holds no private key with its certificate")))?;
    let certs = chain.certs().iter().map(|c| CertificateDer::from(c.as_der().to_vec())).collect();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(chain.key().as_der().to_vec()));
    Ok((certs, key))
}

/// Every certificate of a PKCS12 truststore (a keystore's own chain too).
fn p12_truststore(path: &str, password: &str) -> Result<Vec<CertificateDer<'static>>, SecurityError> {
    let store = open_p12(TRUSTSTORE, TRUSTSTORE_PASSWORD, path, password, Pkcs12ImportPolicy::Raw)?;
    Ok(store
        .entries()
        .filter_map(|(_, e)| match e {
            KeyStoreEntry::Certificate(c) => Some(CertificateDer::from(c.as_der().to_vec())),
            _ => None,
        })
        .collect())
}

/// Certificates for tests: a CA and nodes it signs, as PEM files or PKCS12
/// stores, and the configuration that uses them.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use crate::config::Config;
    use std::path::PathBuf;

    pub(crate) struct TestPki {
        pub dir: PathBuf,
        ca: rcgen::Certificate,
        ca_key: rcgen::KeyPair,
    }

    impl TestPki {
        pub fn new(name: &str) -> TestPki {
            let dir =
                std::env::temp_dir().join(format!("flowc-pki-{name}-{}-{}", std::process::id(), rand::random::<u32>()));
            std::fs::create_dir_all(&dir).expect("tmp dir");
            let ca_key = rcgen::KeyPair::generate().expect("key");
            let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
            params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            params.distinguished_name.push(rcgen::DnType::CommonName, format!("{name} CA"));
            let ca = params.self_signed(&ca_key).expect("CA");
            std::fs::write(dir.join("ca.pem"), ca.pem()).expect("write");
            TestPki { dir, ca, ca_key }
        }

        fn leaf(&self, name: &str) -> (rcgen::Certificate, rcgen::KeyPair) {
            let key = rcgen::KeyPair::generate().expect("key");
            let mut params =
                rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).expect("params");
            params.distinguished_name.push(rcgen::DnType::CommonName, name);
            (params.signed_by(&key, &self.ca, &self.ca_key).expect("signed"), key)
        }

        /// A node with PEM files: the configuration keys that use them.
        pub fn pem_node(&self, name: &str) -> Config {
            let (cert, key) = self.leaf(name);
            let (c, k) = (self.dir.join(format!("{name}.pem")), self.dir.join(format!("{name}.key")));
            std::fs::write(&c, cert.pem()).expect("write");
            std::fs::write(&k, key.serialize_pem()).expect("write");
            let mut config = Config::default();
            config.set(ENABLED, "true");
            config.set(CERT, c.display().to_string());
            config.set(KEY, k.display().to_string());
            config.set(CA, self.dir.join("ca.pem").display().to_string());
            config
        }

        /// A node with PKCS12 stores, both with `password`.
        pub fn p12_node(&self, name: &str, password: &str) -> Config {
            use p12_keystore::{Certificate, PrivateKey, PrivateKeyChain};
            let (cert, key) = self.leaf(name);
            let chain = PrivateKeyChain::new(
                vec![1u8, 2, 3, 4],
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
            let mut config = Config::default();
            config.set(ENABLED, "true");
            config.set(KEYSTORE, ks.display().to_string());
            config.set(KEYSTORE_PASSWORD, password);
            config.set(KEY_PASSWORD, password);
            config.set(TRUSTSTORE, ts.display().to_string());
            config.set(TRUSTSTORE_PASSWORD, password);
            config
        }
    }

    impl Drop for TestPki {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::TestPki;
    use super::*;
    use std::io::{Read, Write};

    fn tls(config: &crate::config::Config) -> Arc<InternalTls> {
        InternalTls::from_config(config).expect("loads").expect("enabled")
    }

    /// One blocking exchange: the client sends "ping", the server answers "pong".
    fn exchange(server: Arc<InternalTls>, client: Arc<InternalTls>) -> (std::io::Result<()>, std::io::Result<()>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let server = std::thread::spawn(move || -> std::io::Result<()> {
            let (tcp, _) = listener.accept()?;
            let mut s = server.accept_blocking(tcp)?;
            let mut buf = [0u8; 4];
            s.read_exact(&mut buf)?;
            s.write_all(b"pong")?;
            s.flush()
        });
        let client = (|| -> std::io::Result<()> {
            let tcp = std::net::TcpStream::connect(&addr)?;
            let mut s = client.connect_blocking(&addr, tcp)?;
            s.write_all(b"ping")?;
            s.flush()?;
            let mut buf = [0u8; 4];
            s.read_exact(&mut buf)?;
            Ok(())
        })();
        (server.join().expect("server thread"), client)
    }

    #[test]
    fn nodes_of_one_ca_talk_with_pem_files_and_pkcs12_stores() {
        let pki = TestPki::new("talk");
        let (a, b) = (tls(&pki.pem_node("a")), tls(&pki.p12_node("b", "changeit")));
        let (s, c) = exchange(a.clone(), b.clone());
        assert!(s.is_ok() && c.is_ok(), "{s:?} {c:?}");
        let (s, c) = exchange(b, a);
        assert!(s.is_ok() && c.is_ok(), "{s:?} {c:?}");
    }

    #[test]
    fn a_peer_of_another_ca_is_refused_at_the_handshake_both_ways() {
        let (ours, theirs) = (TestPki::new("ours"), TestPki::new("theirs"));
        let (a, x) = (tls(&ours.pem_node("a")), tls(&theirs.pem_node("x")));
        // A stranger connects: the server refuses its certificate, and the
        // stranger learns it was refused.
        let (s, c) = exchange(a.clone(), x.clone());
        assert!(s.is_err(), "the server accepted a stranger");
        let c = c.expect_err("the stranger got through");
        assert!(is_certificate_refusal(&c) || c.to_string().contains("certificate"), "{c}");
        // We connect to a stranger: refused by our own check of its certificate.
        let (_, c) = exchange(x, a);
        assert!(c.expect_err("trusted a stranger").to_string().contains("UnknownIssuer"));
    }

    #[test]
    fn the_hostname_is_checked_unless_verify_hostname_is_false() {
        let pki = TestPki::new("names");
        let server = tls(&pki.pem_node("a"));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        std::thread::spawn(move || {
            for tcp in listener.incoming().take(2).flatten() {
                let _ = server.accept_blocking(tcp);
            }
        });
        // The certificate names 127.0.0.1 and localhost, not 127.0.0.2.
        let connect = |config: &crate::config::Config| {
            let tcp = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
            tls(config).connect_blocking(&format!("127.0.0.2:{port}"), tcp).map(|_| ())
        };
        let strict = pki.pem_node("b");
        let e = connect(&strict).expect_err("a certificate for another name");
        assert!(e.to_string().contains("not valid for name"), "{e}");
        let mut lax = pki.pem_node("c");
        lax.set(VERIFY_HOSTNAME, "false");
        assert!(connect(&lax).is_ok());
    }

    #[test]
    fn bad_settings_name_their_key() {
        let pki = TestPki::new("bad");
        let check = |config: crate::config::Config, key: &str, says: &str| {
            let e = InternalTls::from_config(&config).expect_err("refused");
            assert_eq!(e.key, key, "{e}");
            assert!(e.to_string().contains(says), "{e}");
        };
        let mut c = pki.p12_node("n", "right");
        c.set(KEYSTORE_PASSWORD, "wrong");
        c.set(KEY_PASSWORD, "wrong");
        check(c, KEYSTORE_PASSWORD, "wrong password");
        let mut c = pki.p12_node("n", "right");
        c.set(TRUSTSTORE_PASSWORD, "wrong");
        check(c, TRUSTSTORE_PASSWORD, "wrong password");
        let mut c = pki.p12_node("n", "right");
        c.set(KEYSTORE, "/nonexistent/keystore.p12");
        check(c, KEYSTORE, "/nonexistent/keystore.p12");
        let mut c = pki.pem_node("n");
        c.set(KEY, pki.dir.join("ca.pem").display().to_string());
        check(c, KEY, "no PEM private key");
        let mut c = pki.pem_node("n");
        c.set(CA, "");
        check(c, CA, "is needed");
        let mut c = crate::config::Config::default();
        c.set(ENABLED, "yes");
        check(c, ENABLED, "not true or false");
        let mut c = crate::config::Config::default();
        c.set(ENABLED, "true");
        check(c, KEYSTORE, "no keystore");
        assert!(InternalTls::from_config(&crate::config::Config::default()).expect("off").is_none());
    }
}
