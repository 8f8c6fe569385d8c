//! Building the UDF libraries of a plan: the crate `flowc_compiler::udf`
//! generates for each `use rust` file, built with `cargo build --release`
//! in `~/.cache/flowc/udf/<content hash>/` (or `$FLOWC_CACHE_DIR/udf/…`).
//!
//! The hash covers the user's file, the generated code, flowc's version and
//! `rustc -vV`, so a second build of the same code is free: the artifact is
//! found in the cache and not built again. The generated crate's
//! `Cargo.lock` stays in its directory, so a rebuild uses the same
//! dependency versions. Cargo runs `--offline` first (the registry cache
//! usually has everything) and online only if that fails to resolve.
//! Cargo's errors are shown with the user's file name: the file is copied
//! unchanged, so its lines and columns are the user's.

use anyhow::{bail, Context};
use flowc_compiler::graph::JobGraph;
use flowc_compiler::ir::UdfArtifact;
use flowc_compiler::udf::artifact::{self, Artifact};
use flowc_compiler::udf::{codegen, Manifest};
use flowc_dsl::SourceFile;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

/// A built library: its artifact file and digest.
#[derive(Debug, Clone)]
pub struct Built {
    pub path: PathBuf,
    pub digest: String,
    /// Whether it came from the cache.
    pub cached: bool,
}

/// The cache directory of flowc (`$FLOWC_CACHE_DIR`, else `$XDG_CACHE_HOME/flowc`, else `~/.cache/flowc`).
pub fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("FLOWC_CACHE_DIR") {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(d).join("flowc");
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".cache").join("flowc")
}

/// Builds every UDF library of `graph` (from the files the job imported)
/// and records each artifact's digest in the plan.
pub fn build_all(
    graph: &mut JobGraph,
    rust_files: &BTreeMap<String, Result<Arc<SourceFile>, String>>,
) -> anyhow::Result<Vec<Built>> {
    let mut out = Vec::new();
    if graph.udfs.is_empty() {
        return Ok(out);
    }
    let toolchain = Toolchain::detect()?;
    for lib in &mut graph.udfs {
        let file = match rust_files.get(&lib.path) {
            Some(Ok(f)) => f.clone(),
            Some(Err(e)) => bail!("cannot read `{}`: {e}", lib.path),
            None => bail!("`{}` was not read", lib.path),
        };
        let built = build(&file, &lib.functions, &toolchain)?;
        lib.artifact = Some(UdfArtifact {
            digest: built.digest.clone(),
            abi_version: codegen::ABI_VERSION,
            target: toolchain.target.clone(),
        });
        out.push(built);
    }
    Ok(out)
}

/// `rustc -vV`: the version text (part of the cache key) and the host triple.
pub struct Toolchain {
    pub version: String,
    pub target: String,
}

impl Toolchain {
    pub fn detect() -> anyhow::Result<Toolchain> {
        let out = Command::new(rustc())
            .arg("-vV")
            .output()
            .context("cannot run `rustc`: Rust UDFs are built with cargo and rustc (install them with rustup)")?;
        if !out.status.success() {
            bail!("`rustc -vV` failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let version = String::from_utf8_lossy(&out.stdout).into_owned();
        let target = version.lines().find_map(|l| l.strip_prefix("host: ")).unwrap_or("unknown").trim().to_string();
        Ok(Toolchain { version, target })
    }
}

fn rustc() -> String {
    std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into())
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// Builds (or finds in the cache) the library of one file.
pub fn build(
    file: &SourceFile,
    functions: &[flowc_compiler::udf::UdfSignature],
    toolchain: &Toolchain,
) -> anyhow::Result<Built> {
    let manifest = Manifest::read(&file.text).map_err(|e| anyhow::anyhow!("{}: {}", file.name, e.message))?;
    let deps = manifest.dependencies_toml();
    // The key: everything that makes the artifact what it is.
    let neutral = codegen::generate("flowc-udf", &file.name, functions, &deps);
    let mut h = Sha256::new();
    for part in [
        file.text.as_str(),
        neutral.cargo_toml.as_str(),
        neutral.lib_rs.as_str(),
        neutral.main_rs.as_str(),
        env!("CARGO_PKG_VERSION"),
        toolchain.version.as_str(),
    ] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    let key: String = h.finalize().iter().take(16).map(|b| format!("{b:02x}")).collect();
    let root = cache_dir().join("udf");
    let dir = root.join(&key);
    let artifact_path = dir.join("artifact.flowcudf");
    if let Ok(bytes) = std::fs::read(&artifact_path) {
        if Artifact::from_bytes(&bytes).is_ok() {
            return Ok(Built { path: artifact_path, digest: artifact::digest(&bytes), cached: true });
        }
    }
    let crate_name = format!("flowc-udf-{}", &key[..16]);
    let generated = codegen::generate(&crate_name, &file.name, functions, &deps);
    std::fs::create_dir_all(dir.join("src")).with_context(|| format!("cannot create `{}`", dir.display()))?;
    let write = |rel: &str, text: &str| -> anyhow::Result<()> {
        let p = dir.join(rel);
        std::fs::write(&p, text).with_context(|| format!("cannot write `{}`", p.display()))
    };
    write("Cargo.toml", &generated.cargo_toml)?;
    write("src/lib.rs", &generated.lib_rs)?;
    write("src/main.rs", &generated.main_rs)?;
    write("src/user.rs", &file.text)?;
    let target_dir = root.join("target");
    let started = Instant::now();
    eprintln!("Building the Rust UDFs of `{}` (cargo build --release)…", file.name);
    let mut result = cargo_build(&dir, &target_dir, true)?;
    if !result.0 && result.1.contains("offline") {
        result = cargo_build(&dir, &target_dir, false)?;
    }
    let (ok, errors) = result;
    if !ok {
        bail!("the Rust UDFs of `{}` do not build:\n{}", file.name, errors.replace("src/user.rs", &file.name));
    }
    let ident = crate_name.replace('-', "_");
    let release = target_dir.join("release");
    let cdylib = std::fs::read(release.join(format!("lib{ident}.so")))
        .or_else(|_| std::fs::read(release.join(format!("lib{ident}.dylib"))))
        .context("cargo built no library")?;
    let sidecar = std::fs::read(release.join(format!("{crate_name}-sidecar"))).context("cargo built no sidecar")?;
    let bytes = Artifact {
        abi_version: codegen::ABI_VERSION,
        target: toolchain.target.clone(),
        flowc_version: env!("CARGO_PKG_VERSION").to_string(),
        signatures: codegen::signature_lines(functions),
        cdylib,
        sidecar,
    }
    .to_bytes();
    let tmp = dir.join("artifact.flowcudf.tmp");
    std::fs::write(&tmp, &bytes).with_context(|| format!("cannot write `{}`", tmp.display()))?;
    std::fs::rename(&tmp, &artifact_path)?;
    eprintln!("Built the Rust UDFs of `{}` in {:.1} s.", file.name, started.elapsed().as_secs_f64());
    Ok(Built { path: artifact_path, digest: artifact::digest(&bytes), cached: false })
}

/// Runs cargo; whether it succeeded, and its errors as rustc renders them.
fn cargo_build(dir: &Path, target_dir: &Path, offline: bool) -> anyhow::Result<(bool, String)> {
    let mut cmd = Command::new(cargo());
    cmd.current_dir(dir)
        .args(["build", "--release", "--quiet", "--message-format=json"])
        .env("CARGO_TARGET_DIR", target_dir)
        .env("CARGO_TERM_COLOR", "never")
        // The generated crate is its own workspace; flowc's settings stay out.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET");
    if offline {
        cmd.arg("--offline");
    }
    let out = cmd.output().context("cannot run `cargo`: Rust UDFs are built with cargo (install it with rustup)")?;
    let mut errors = String::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        if v["reason"] == "compiler-message" && v["message"]["level"] == "error" {
            if let Some(r) = v["message"]["rendered"].as_str() {
                errors.push_str(r);
            }
        }
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    if errors.is_empty() {
        errors.push_str(&stderr);
    }
    Ok((out.status.success(), errors))
}
