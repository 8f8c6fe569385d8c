//! A TaskManager's artifact cache: `<dir>/<hex>.flowcudf` as fetched from
//! the JobManager, checked against its digest every time a deployment
//! uses it, and the binaries extracted from it next to it.
//!
//! A cached file that no longer matches its digest is refused (the
//! deployment fails with the reason) and removed, so that the next attempt
//! fetches it again.

use super::{remember, Isolation, Prepared, UdfError};
use flowc_compiler::graph::JobGraph;
use flowc_compiler::udf::artifact::{self, Artifact};
use flowc_compiler::udf::codegen;
use flowc_udf_host::Library;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct ArtifactCache {
    dir: PathBuf,
}

impl ArtifactCache {
    pub fn new(dir: impl Into<PathBuf>) -> ArtifactCache {
        ArtifactCache { dir: dir.into() }
    }

    fn path(&self, digest: &str) -> Option<PathBuf> {
        artifact::is_digest(digest).then(|| self.dir.join(format!("{}.flowcudf", &digest[7..])))
    }

    /// The digests of the plan's artifacts that are not in the cache (nor
    /// prepared in this process), in plan order; a library without an
    /// artifact is an error.
    pub fn missing(&self, graph: &JobGraph) -> Result<Vec<String>, UdfError> {
        let mut out = Vec::new();
        for lib in &graph.udfs {
            let a = lib.artifact.as_ref().ok_or_else(|| UdfError::NotBuilt(lib.path.clone()))?;
            let here = super::prepared(&a.digest).is_some() || self.path(&a.digest).is_some_and(|p| p.exists());
            if !here && !out.contains(&a.digest) {
                out.push(a.digest.clone());
            }
        }
        Ok(out)
    }

    /// Keeps an artifact fetched for `digest`, if it is what it claims to be.
    pub fn store(&self, digest: &str, bytes: &[u8]) -> Result<(), String> {
        let path = self.path(digest).ok_or_else(|| format!("`{digest}` is not a digest"))?;
        let actual = artifact::digest(bytes);
        if actual != digest {
            return Err(format!("the JobManager sent {} bytes with digest {actual} for {digest}", bytes.len()));
        }
        std::fs::create_dir_all(&self.dir).map_err(|e| format!("cannot create `{}`: {e}", self.dir.display()))?;
        write_atomically(&path, bytes)
    }

    /// Checks and prepares every library of the plan: digest, format, ABI
    /// version, target, signatures; extracts and (in process) loads it.
    pub fn prepare(&self, graph: &JobGraph, isolation: Isolation) -> Result<Vec<Arc<Prepared>>, UdfError> {
        let mut out = Vec::with_capacity(graph.udfs.len());
        for lib in &graph.udfs {
            let a = lib.artifact.as_ref().ok_or_else(|| UdfError::NotBuilt(lib.path.clone()))?;
            let (digest, path) = (a.digest.clone(), lib.path.clone());
            let mismatch = |reason: String| UdfError::Mismatch { digest: digest.clone(), path: path.clone(), reason };
            if a.abi_version != codegen::ABI_VERSION {
                return Err(mismatch(format!(
                    "it was built for UDF ABI version {}, and this TaskManager speaks {}",
                    a.abi_version,
                    codegen::ABI_VERSION
                )));
            }
            if a.target != flowc_udf_host::TARGET {
                return Err(mismatch(format!(
                    "it was built for {}, and this TaskManager runs on {}",
                    a.target,
                    flowc_udf_host::TARGET
                )));
            }
            let prepared = match super::prepared(&digest) {
                Some(p) if isolation == Isolation::Process || p.library.is_some() => p,
                _ => self.prepare_one(&digest, &path, isolation)?,
            };
            out.push(prepared);
        }
        // The functions the plan calls are the ones the library has.
        for (lib, p) in graph.udfs.iter().zip(&out) {
            let want = codegen::signature_lines(&lib.functions);
            if let Some(l) = &p.library {
                if l.signatures() != want {
                    return Err(UdfError::Mismatch {
                        digest: p.digest.clone(),
                        path: lib.path.clone(),
                        reason: format!("it has the functions\n{}and the plan calls\n{want}", l.signatures()),
                    });
                }
            }
        }
        Ok(out)
    }

    fn prepare_one(&self, digest: &str, path: &str, isolation: Isolation) -> Result<Arc<Prepared>, UdfError> {
        let file = self.path(digest).ok_or_else(|| UdfError::Corrupt {
            digest: digest.into(),
            path: path.into(),
            reason: "not a sha256 digest".into(),
        })?;
        let bytes = std::fs::read(&file).map_err(|e| UdfError::Missing {
            digest: digest.into(),
            path: path.into(),
            reason: format!("not in the TaskManager's cache either ({e})"),
        })?;
        let corrupt = |reason: String| {
            let _ = std::fs::remove_file(&file);
            UdfError::Corrupt { digest: digest.into(), path: path.into(), reason }
        };
        let actual = artifact::digest(&bytes);
        if actual != digest {
            return Err(corrupt(format!("`{}` has digest {actual}", file.display())));
        }
        let a = Artifact::from_bytes(&bytes).map_err(|e| corrupt(e.to_string()))?;
        let mismatch = |reason: String| UdfError::Mismatch { digest: digest.into(), path: path.into(), reason };
        if a.abi_version != codegen::ABI_VERSION {
            return Err(mismatch(format!(
                "it speaks UDF ABI version {}, this TaskManager {}",
                a.abi_version,
                codegen::ABI_VERSION
            )));
        }
        if a.target != flowc_udf_host::TARGET {
            return Err(mismatch(format!(
                "it was built for {}, this TaskManager runs on {}",
                a.target,
                flowc_udf_host::TARGET
            )));
        }
        // Extracted afresh by each process that loads it, from the checked
        // artifact: a file another process has mapped is replaced, not changed.
        let dir = self.dir.join(&digest[7..]);
        std::fs::create_dir_all(&dir).map_err(|e| UdfError::Io(format!("cannot create `{}`: {e}", dir.display())))?;
        let so = dir.join(format!("lib-{}.so", std::process::id()));
        let exe = dir.join("sidecar");
        write_atomically(&so, &a.cdylib).map_err(UdfError::Io)?;
        if !exe.exists() {
            write_atomically(&exe, &a.sidecar).map_err(UdfError::Io)?;
            make_executable(&exe).map_err(UdfError::Io)?;
        }
        let library = match isolation {
            Isolation::InProcess => Some(Arc::new(Library::open(&so, codegen::ABI_VERSION)?)),
            Isolation::Process => None,
        };
        Ok(remember(Arc::new(Prepared { digest: digest.to_string(), sidecar: exe, library })))
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let tmp = path.with_extension(format!("tmp-{}-{}", std::process::id(), rand::random::<u32>()));
    std::fs::write(&tmp, bytes).map_err(|e| format!("cannot write `{}`: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("cannot rename `{}`: {e}", tmp.display()))
}

#[cfg(unix)]
fn make_executable(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| format!("cannot make `{}` executable: {e}", path.display()))
}

#[cfg(not(unix))]
fn make_executable(_: &Path) -> Result<(), String> {
    Ok(())
}
