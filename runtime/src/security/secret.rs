//! The cluster secret: a shared key that JobManager and TaskManagers prove
//! they know, without ever sending it (`flowc.security.cluster.secret` or,
//! better, `flowc.security.cluster.secret-file`; beyond Flink).
//!
//! A proof is HMAC-SHA256(secret, label ‖ nonce ‖ message): the label keeps
//! the proofs of different steps apart (a TaskManager's answer can never be
//! replayed as the JobManager's), the nonce is fresh random bytes of the
//! verifying side, so a recorded proof is worth nothing on the next
//! connection. Proofs are compared in constant time.

use super::internal::SecurityError;
use ring::hmac;
use std::fmt;

/// The key naming the secret in the configuration.
pub const SECRET_KEY: &str = "flowc.security.cluster.secret";
/// The key naming a file that holds the secret.
pub const SECRET_FILE_KEY: &str = "flowc.security.cluster.secret-file";
/// Fewer bytes than this are too easy to guess.
const MIN_LEN: usize = 16;

/// Bytes of a nonce and of a proof.
pub const NONCE_LEN: usize = 32;
pub type Nonce = [u8; NONCE_LEN];
pub type Proof = [u8; 32];

/// What a proof is for: each step of each protocol has its own label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// A TaskManager registering at the JobManager.
    Registration,
    /// The JobManager answering a registration.
    JobManager,
    /// A sender opening a data channel.
    DataChannel,
}

impl Purpose {
    fn label(self) -> &'static [u8] {
        match self {
            Purpose::Registration => b"flowc rpc registration v2\0",
            Purpose::JobManager => b"flowc rpc jobmanager v2\0",
            Purpose::DataChannel => b"flowc data channel v2\0",
        }
    }
}

/// The cluster secret, loaded once at start. `Debug` never shows it.
#[derive(Clone)]
pub struct ClusterSecret {
    key: hmac::Key,
}

impl fmt::Debug for ClusterSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClusterSecret(<redacted>)")
    }
}

impl ClusterSecret {
    /// A secret from its bytes; at least 16 of them.
    pub fn new(bytes: &[u8]) -> Option<ClusterSecret> {
        (bytes.len() >= MIN_LEN).then(|| ClusterSecret { key: hmac::Key::new(hmac::HMAC_SHA256, bytes) })
    }

    /// The secret of a configuration: from `flowc.security.cluster.secret`
    /// or the file `flowc.security.cluster.secret-file` names (its content
    /// without the trailing line break), or none when neither is set.
    pub fn from_config(config: &crate::config::Config) -> Result<Option<ClusterSecret>, SecurityError> {
        let inline = config.get(SECRET_KEY);
        let file = config.get(SECRET_FILE_KEY);
        let bytes = match (inline.is_empty(), file.trim().is_empty()) {
            (true, true) => return Ok(None),
            (false, false) => {
                return Err(SecurityError::key(SECRET_FILE_KEY, format!("set either it or `{SECRET_KEY}`, not both")))
            }
            (false, true) => inline.into_bytes(),
            (true, false) => {
                let path = file.trim();
                let text = std::fs::read(path)
                    .map_err(|e| SecurityError::key(SECRET_FILE_KEY, format!("cannot read `{path}`: {e}")))?;
                let end = text.iter().rposition(|b| !matches!(b, b'\n' | b'\r')).map_or(0, |i| i + 1);
                text[..end].to_vec()
            }
        };
        let key = if config.is_set(SECRET_KEY) { SECRET_KEY } else { SECRET_FILE_KEY };
        ClusterSecret::new(&bytes)
            .map(Some)
            .ok_or_else(|| SecurityError::key(key, format!("the cluster secret must have at least {MIN_LEN} bytes")))
    }

    /// The proof that the holder of the secret saw `nonce` and `message`.
    pub fn prove(&self, purpose: Purpose, nonce: &Nonce, message: &[u8]) -> Proof {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(purpose.label());
        ctx.update(nonce);
        ctx.update(message);
        let tag = ctx.sign();
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// Whether `proof` is [`ClusterSecret::prove`]'s, compared in constant time.
    pub fn verify(&self, purpose: Purpose, nonce: &Nonce, message: &[u8], proof: &[u8]) -> bool {
        let mut data = Vec::with_capacity(purpose.label().len() + NONCE_LEN + message.len());
        data.extend_from_slice(purpose.label());
        data.extend_from_slice(nonce);
        data.extend_from_slice(message);
        hmac::verify(&self.key, &data, proof).is_ok()
    }
}

/// Fresh random bytes for one exchange.
pub fn nonce() -> Nonce {
    rand::random()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn config(pairs: &[(&str, &str)]) -> Config {
        let mut c = Config::default();
        for (k, v) in pairs {
            c.set(k, *v);
        }
        c
    }

    #[test]
    fn a_proof_holds_only_for_its_secret_purpose_nonce_and_message() {
        let s = ClusterSecret::new(b"0123456789abcdef-right").expect("long enough");
        let other = ClusterSecret::new(b"0123456789abcdef-wrong").expect("long enough");
        let n = nonce();
        let p = s.prove(Purpose::Registration, &n, b"tm-1");
        assert!(s.verify(Purpose::Registration, &n, b"tm-1", &p));
        assert!(!other.verify(Purpose::Registration, &n, b"tm-1", &p), "another secret");
        assert!(!s.verify(Purpose::JobManager, &n, b"tm-1", &p), "another purpose");
        assert!(!s.verify(Purpose::Registration, &nonce(), b"tm-1", &p), "another nonce");
        assert!(!s.verify(Purpose::Registration, &n, b"tm-2", &p), "another message");
        assert!(!s.verify(Purpose::Registration, &n, b"tm-1", &p[..31]), "a truncated proof");
        assert_eq!(format!("{s:?}"), "ClusterSecret(<redacted>)");
    }

    #[test]
    fn the_secret_comes_from_the_config_or_a_file_and_bad_settings_name_their_key() {
        assert!(ClusterSecret::from_config(&Config::default()).expect("no secret is fine").is_none());
        let inline = ClusterSecret::from_config(&config(&[(SECRET_KEY, "a-long-enough-secret")])).expect("ok");
        let dir = std::env::temp_dir().join(format!("flowc-secret-{}-{}", std::process::id(), rand::random::<u32>()));
        std::fs::create_dir_all(&dir).expect("tmp");
        let file = dir.join("secret");
        std::fs::write(&file, "a-long-enough-secret\n").expect("write");
        let path = file.display().to_string();
        let from_file = ClusterSecret::from_config(&config(&[(SECRET_FILE_KEY, &path)])).expect("ok");
        let n = nonce();
        let p = inline.expect("set").prove(Purpose::DataChannel, &n, b"x");
        assert!(from_file.expect("set").verify(Purpose::DataChannel, &n, b"x", &p), "the line break is not part of it");

        let missing = dir.join("missing").display().to_string();
        let e = ClusterSecret::from_config(&config(&[(SECRET_FILE_KEY, &missing)])).expect_err("unreadable");
        assert!(e.to_string().starts_with(&format!("`{SECRET_FILE_KEY}`")) && e.to_string().contains(&missing), "{e}");
        let e = ClusterSecret::from_config(&config(&[(SECRET_KEY, "short")])).expect_err("too short");
        assert!(e.to_string().contains(SECRET_KEY) && e.to_string().contains("16 bytes"), "{e}");
        let both = config(&[(SECRET_KEY, "a-long-enough-secret"), (SECRET_FILE_KEY, &path)]);
        assert!(ClusterSecret::from_config(&both).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
