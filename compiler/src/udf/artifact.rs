//! The artifact of a built UDF library, as it travels from `flowc compile`
//! to the JobManager's blob store and on to TaskManagers: one file holding
//! what the runtime checks before it loads anything, and the binaries.
//!
//! ```text
//!  "FLOWCUDF", u32 format version (1), u32 ABI version,
//!  string target triple, string flowc version, string signatures (one line per function),
//!  bytes cdylib, bytes sidecar executable
//!  (string and bytes: u64 length + contents; all little-endian)
//! ```
//!
//! Its name everywhere is its digest, `sha256:<hex>` of the whole file: a
//! plan names the artifacts it needs by digest, and whoever holds a copy
//! checks it against the digest before use.

use sha2::{Digest, Sha256};

pub const MAGIC: &[u8; 8] = b"FLOWCUDF";
pub const FORMAT_VERSION: u32 = 1;

/// A built library and what it was built for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    pub abi_version: u32,
    pub target: String,
    pub flowc_version: String,
    /// `codegen::signature_lines` of its functions.
    pub signatures: String,
    pub cdylib: Vec<u8>,
    pub sidecar: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArtifactError {
    #[error("not a flowc UDF artifact (it does not start with `FLOWCUDF`)")]
    BadMagic,
    #[error("the artifact is in format version {0}; this flowc reads version {FORMAT_VERSION}")]
    Version(u32),
    #[error("the artifact is truncated")]
    Truncated,
    #[error("the artifact is corrupt: {0}")]
    Corrupt(String),
}

/// `sha256:<hex>` of `bytes`.
pub fn digest(bytes: &[u8]) -> String {
    format_digest(&Sha256::digest(bytes))
}

/// `sha256:<hex>` of a SHA-256 hash computed elsewhere (say, while the
/// artifact streamed in).
pub fn format_digest(hash: &[u8]) -> String {
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256:");
    for b in hash {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Whether `d` is a digest as [`digest`] writes them (and so safe in a file name).
pub fn is_digest(d: &str) -> bool {
    d.strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
}

impl Artifact {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.cdylib.len() + self.sidecar.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&self.abi_version.to_le_bytes());
        for part in [
            self.target.as_bytes(),
            self.flowc_version.as_bytes(),
            self.signatures.as_bytes(),
            &self.cdylib,
            &self.sidecar,
        ] {
            out.extend_from_slice(&(part.len() as u64).to_le_bytes());
            out.extend_from_slice(part);
        }
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Artifact, ArtifactError> {
        if bytes.len() < 8 || &bytes[..8] != MAGIC {
            return Err(ArtifactError::BadMagic);
        }
        let mut r = Reader { bytes, pos: 8 };
        let version = r.u32()?;
        if version != FORMAT_VERSION {
            return Err(ArtifactError::Version(version));
        }
        let abi_version = r.u32()?;
        let text = |r: &mut Reader| -> Result<String, ArtifactError> {
            String::from_utf8(r.part()?.to_vec()).map_err(|_| ArtifactError::Corrupt("a text that is not UTF-8".into()))
        };
        let target = text(&mut r)?;
        let flowc_version = text(&mut r)?;
        let signatures = text(&mut r)?;
        let cdylib = r.part()?.to_vec();
        let sidecar = r.part()?.to_vec();
        if r.pos != bytes.len() {
            return Err(ArtifactError::Corrupt(format!("{} bytes after the end", bytes.len() - r.pos)));
        }
        Ok(Artifact { abi_version, target, flowc_version, signatures, cdylib, sidecar })
    }
}

/// Checks that `len` bytes read from `r` are an artifact laid out as
/// [`Artifact::from_bytes`] reads it, without holding its binaries in
/// memory: what a store checks before it keeps an artifact streamed to disk.
pub fn check_layout(r: &mut impl std::io::Read, len: u64) -> Result<(), ArtifactError> {
    let io = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => ArtifactError::Truncated,
        _ => ArtifactError::Corrupt(format!("cannot read it: {e}")),
    };
    let mut head = [0u8; 16];
    if len < 8 {
        return Err(ArtifactError::BadMagic);
    }
    r.read_exact(&mut head[..8]).map_err(io)?;
    if &head[..8] != MAGIC {
        return Err(ArtifactError::BadMagic);
    }
    r.read_exact(&mut head[8..16]).map_err(io)?;
    let version = u32::from_le_bytes([head[8], head[9], head[10], head[11]]);
    if version != FORMAT_VERSION {
        return Err(ArtifactError::Version(version));
    }
    let mut pos = 16u64;
    // Three texts (UTF-8), then two binaries.
    for part in 0..5 {
        let mut n = [0u8; 8];
        r.read_exact(&mut n).map_err(io)?;
        let n = u64::from_le_bytes(n);
        pos =
            pos.checked_add(8).and_then(|p| p.checked_add(n)).filter(|p| *p <= len).ok_or(ArtifactError::Truncated)?;
        let mut rest = std::io::Read::take(&mut *r, n);
        if part < 3 {
            check_utf8(&mut rest, n).map_err(io)?;
        } else if std::io::copy(&mut rest, &mut std::io::sink()).map_err(io)? != n {
            return Err(ArtifactError::Truncated);
        }
    }
    if pos != len {
        return Err(ArtifactError::Corrupt(format!("{} bytes after the end", len - pos)));
    }
    Ok(())
}

/// Reads exactly `n` bytes of `r` in chunks; an error if they are not UTF-8.
fn check_utf8(r: &mut impl std::io::Read, n: u64) -> std::io::Result<()> {
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "a text that is not UTF-8");
    let (mut buf, mut carry, mut seen) = (vec![0u8; 64 * 1024], 0usize, 0u64);
    loop {
        let got = r.read(&mut buf[carry..])?;
        if got == 0 {
            if seen != n {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            return if carry == 0 { Ok(()) } else { Err(bad()) };
        }
        seen += got as u64;
        let filled = carry + got;
        match std::str::from_utf8(&buf[..filled]) {
            Ok(_) => carry = 0,
            // A character cut at the chunk's end: keep its bytes for the next.
            Err(e) if e.error_len().is_none() => {
                let from = e.valid_up_to();
                buf.copy_within(from..filled, 0);
                carry = filled - from;
            }
            Err(_) => return Err(bad()),
        }
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ArtifactError> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.bytes.len()).ok_or(ArtifactError::Truncated)?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u32(&mut self) -> Result<u32, ArtifactError> {
        let mut b = [0u8; 4];
        b.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(b))
    }
    fn part(&mut self) -> Result<&'a [u8], ArtifactError> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8)?);
        let n = usize::try_from(u64::from_le_bytes(b)).map_err(|_| ArtifactError::Truncated)?;
        self.take(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_what_is_not_an_artifact() {
        let a = Artifact {
            abi_version: 1,
            target: "x86_64-unknown-linux-gnu".into(),
            flowc_version: "0.1.0".into(),
            signatures: "fn f(x: i64) -> i64\n".into(),
            cdylib: vec![1, 2, 3],
            sidecar: vec![],
        };
        let bytes = a.to_bytes();
        assert_eq!(Artifact::from_bytes(&bytes), Ok(a));
        assert_eq!(Artifact::from_bytes(&bytes[..bytes.len() - 1]), Err(ArtifactError::Truncated));
        assert_eq!(Artifact::from_bytes(b"\x7fELF...."), Err(ArtifactError::BadMagic));
        let d = digest(&bytes);
        assert!(is_digest(&d), "{d}");
        assert!(!is_digest("sha256:../../etc/passwd"));
        assert_ne!(digest(&bytes[1..]), d);
    }

    #[test]
    fn the_layout_check_agrees_with_from_bytes() {
        let a = Artifact {
            abi_version: 1,
            target: "t".into(),
            flowc_version: "v".into(),
            signatures: "fn é(x: i64) -> i64\n".repeat(10_000),
            cdylib: vec![9; 200_000],
            sidecar: vec![1],
        };
        let bytes = a.to_bytes();
        let check = |b: &[u8]| check_layout(&mut &b[..], b.len() as u64);
        assert_eq!(check(&bytes), Ok(()));
        assert_eq!(check(&bytes[..bytes.len() - 1]), Err(ArtifactError::Truncated));
        assert_eq!(check(b"\x7fELF...."), Err(ArtifactError::BadMagic));
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(check(&longer), Err(ArtifactError::Corrupt(_))));
        // A signature byte that is not UTF-8.
        let mut bad = bytes.clone();
        let at = bytes.windows(2).position(|w| w == "é".as_bytes()).expect("an é");
        bad[at + 1] = b'x';
        assert!(matches!(Artifact::from_bytes(&bad), Err(ArtifactError::Corrupt(_))));
        assert!(matches!(check(&bad), Err(ArtifactError::Corrupt(_))));
    }
}
