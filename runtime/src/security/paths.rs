//! Path confinement: the directories a REST caller or a job may make flowc
//! read or write.
//!
//! Savepoint targets, restore paths (`-s`, `savepointPath`) and file sinks
//! must resolve under one of the allowed roots: `state.savepoints.dir`,
//! `state.checkpoints.dir` and the directories listed in
//! `flowc.security.allowed-directories` (separated by `,` or `;`). A path is
//! resolved as the operating system would: relative paths against the
//! working directory, every existing component with its symbolic links
//! followed, `..` applied to what it really names (so neither `..` nor a
//! symbolic link inside a root can lead out of it), and the part that does
//! not exist yet taken as written. Roots are compared whole component by
//! component: `/data/ckpt-evil` is not under `/data/ckpt`.
//!
//! Checkpoints and savepoints may also live in S3 (`s3://bucket/key`):
//! [`AllowedRoots::check_location`] allows a savepoint target or restore
//! path there only inside an allowed bucket — the buckets of
//! `state.savepoints.dir` and `state.checkpoints.dir` when they are on S3,
//! and the buckets or prefixes listed in `flowc.security.allowed-buckets`
//! (`bucket` or `s3://bucket/prefix`). Keys are compared segment by
//! segment after removing empty segments, and `.` or `..` segments are
//! refused (S3 keeps them as written, but people read them as climbing).
//! File sinks and sources never take an `s3://` path ([`AllowedRoots::check`]).
//!
//! The check runs when a path is named; someone who can create symbolic
//! links inside a root between the check and the write can still redirect
//! it. Roots are for separating what REST callers may name from the rest of
//! the machine, not for sharing a root with untrusted local users.

use crate::checkpoint::storage::is_object_location;
use crate::config::Config;
use std::path::{Component, Path, PathBuf};

/// The configuration key of the extra allowed directories.
pub const ALLOWED_DIRECTORIES: &str = "flowc.security.allowed-directories";
/// The configuration key of the allowed S3 buckets and prefixes.
pub const ALLOWED_BUCKETS: &str = "flowc.security.allowed-buckets";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("`{path}` is outside the allowed directories ({roots}); allow it in flowc.security.allowed-directories")]
    Outside { path: String, roots: String },
    #[error("`{path}` cannot be resolved: {reason}")]
    Unresolvable { path: String, reason: String },
    #[error("`{path}` is outside the allowed buckets ({buckets}); allow it in flowc.security.allowed-buckets")]
    OutsideBuckets { path: String, buckets: String },
}

/// The directories paths must resolve under.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedRoots {
    roots: Vec<PathBuf>,
    /// (bucket, key prefix without `/` at either end; empty: all of it).
    buckets: Vec<(String, String)>,
}

impl AllowedRoots {
    /// `state.savepoints.dir`, `state.checkpoints.dir` and
    /// `flowc.security.allowed-directories` of a configuration.
    pub fn from_config(config: &Config) -> AllowedRoots {
        let state_dirs = [config.get("state.savepoints.dir"), config.get("state.checkpoints.dir")];
        let mut dirs = state_dirs.to_vec();
        dirs.extend(split_list(&config.get(ALLOWED_DIRECTORIES)));
        let mut roots = AllowedRoots::new(dirs);
        // The state directories' buckets are allowed whole; the list names
        // buckets (`b`) or prefixes (`s3://b/p`).
        for d in state_dirs.iter().filter(|d| is_object_location(d.trim())) {
            if let Some((bucket, _)) = bucket_and_key(d.trim()) {
                roots.allow_bucket(bucket, String::new());
            }
        }
        for entry in split_list(&config.get(ALLOWED_BUCKETS)) {
            let written = if is_object_location(&entry) { entry } else { format!("s3://{entry}") };
            if let Some((bucket, key)) = bucket_and_key(&written) {
                roots.allow_bucket(bucket, key);
            }
        }
        roots
    }

    fn allow_bucket(&mut self, bucket: String, prefix: String) {
        if !bucket.is_empty() && !self.buckets.contains(&(bucket.clone(), prefix.clone())) {
            self.buckets.push((bucket, prefix));
        }
    }

    /// The allowed buckets and prefixes for messages: "`s3://b`, `s3://c/p`".
    pub fn describe_buckets(&self) -> String {
        if self.buckets.is_empty() {
            return "none are configured".to_string();
        }
        let shown =
            self.buckets
                .iter()
                .map(|(b, p)| if p.is_empty() { format!("`s3://{b}`") } else { format!("`s3://{b}/{p}`") });
        shown.collect::<Vec<_>>().join(", ")
    }

    /// Checks a savepoint target or restore path, which may be on S3:
    /// `s3://…` inside an allowed bucket or prefix (returned as
    /// `s3://bucket/key`), anything else as [`check`](Self::check) does.
    pub fn check_location(&self, location: &str) -> Result<PathBuf, PathError> {
        let written = location.trim();
        if !is_object_location(written) {
            return self.check(written);
        }
        let unresolvable = |reason: &str| PathError::Unresolvable { path: written.to_string(), reason: reason.into() };
        let (bucket, key) = bucket_and_key(written).ok_or_else(|| unresolvable("it names no bucket"))?;
        if key.split('/').any(|c| c == "." || c == "..") {
            return Err(unresolvable("`.` and `..` are not allowed in an s3:// key"));
        }
        let inside = self.buckets.iter().any(|(b, prefix)| {
            *b == bucket && (prefix.is_empty() || key == *prefix || key.starts_with(&format!("{prefix}/")))
        });
        if !inside {
            return Err(PathError::OutsideBuckets { path: written.to_string(), buckets: self.describe_buckets() });
        }
        Ok(PathBuf::from(if key.is_empty() { format!("s3://{bucket}") } else { format!("s3://{bucket}/{key}") }))
    }

    /// Roots as written (`file:` prefixes allowed); empty entries are ignored.
    pub fn new(dirs: impl IntoIterator<Item = impl AsRef<str>>) -> AllowedRoots {
        let mut roots: Vec<PathBuf> = Vec::new();
        for d in dirs {
            let d = strip_file_uri(d.as_ref().trim());
            // S3 locations are buckets, never directories of this machine.
            if d.is_empty() || is_object_location(d) {
                continue;
            }
            let p = PathBuf::from(d);
            if !roots.contains(&p) {
                roots.push(p);
            }
        }
        AllowedRoots { roots, buckets: Vec::new() }
    }

    /// The roots as configured.
    pub fn roots(&self) -> &[PathBuf] {
        &self.roots
    }

    /// The roots for messages: "`/a`, `/b`".
    pub fn describe(&self) -> String {
        if self.roots.is_empty() {
            return "none are configured".to_string();
        }
        self.roots.iter().map(|r| format!("`{}`", r.display())).collect::<Vec<_>>().join(", ")
    }

    /// Resolves `location` (`file:` prefixes allowed) and checks that it is
    /// under a root; returns the resolved path, which is what should be used.
    pub fn check(&self, location: &str) -> Result<PathBuf, PathError> {
        let written = strip_file_uri(location.trim());
        let unresolvable = |reason: String| PathError::Unresolvable { path: written.to_string(), reason };
        if written.is_empty() {
            return Err(unresolvable("the path is empty".into()));
        }
        if is_object_location(written) {
            return Err(unresolvable(
                "object storage (s3://) holds checkpoints and savepoints only; this needs a file path".into(),
            ));
        }
        let resolved = resolve(Path::new(written)).map_err(unresolvable)?;
        // Roots are resolved at each check: a root created (or replaced)
        // after the start is judged by what it is now.
        let inside = self.roots.iter().filter_map(|r| resolve(r).ok()).any(|root| resolved.starts_with(&root));
        if inside {
            Ok(resolved)
        } else {
            Err(PathError::Outside { path: written.to_string(), roots: self.describe() })
        }
    }
}

/// The bucket and the key (empty segments removed) of `s3://bucket/key`.
fn bucket_and_key(location: &str) -> Option<(String, String)> {
    crate::checkpoint::storage::object_location(Path::new(location)).filter(|(b, _)| !b.is_empty())
}

/// Splits a list of directories separated by `,` or `;`.
pub fn split_list(s: &str) -> Vec<String> {
    s.split([',', ';']).map(str::trim).filter(|d| !d.is_empty()).map(str::to_string).collect()
}

/// A path as users write it, without Flink's `file:` or `file://` prefix.
pub fn strip_file_uri(location: &str) -> &str {
    location.strip_prefix("file://").or_else(|| location.strip_prefix("file:")).unwrap_or(location)
}

/// Resolves a path as the operating system would when creating it: made
/// absolute against the working directory; each existing component with
/// its symbolic links followed; `..` taken from what the path so far really
/// is; components that do not exist taken as written. A symbolic link that
/// cannot be followed (it points nowhere) is an error: writing through it
/// would create its target, wherever that is.
pub fn resolve(path: &Path) -> Result<PathBuf, String> {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().map_err(|e| format!("no working directory: {e}"))?.join(path)
    };
    let mut out = PathBuf::new();
    for c in absolute.components() {
        match c {
            Component::Prefix(_) | Component::RootDir => out.push(c.as_os_str()),
            Component::CurDir => {}
            // `out` is free of symbolic links (each was resolved when it was
            // pushed), so its parent is what `..` names.
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(name) => {
                out.push(name);
                match std::fs::symlink_metadata(&out) {
                    Ok(m) if m.file_type().is_symlink() => {
                        out = std::fs::canonicalize(&out).map_err(|e| {
                            format!("`{}` is a symbolic link that cannot be followed: {e}", out.display())
                        })?;
                    }
                    Ok(_) => {}
                    // Not there (yet): the rest is taken as written.
                    Err(e) if matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory) => {}
                    Err(e) => return Err(format!("cannot look at `{}`: {e}", out.display())),
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Dir(PathBuf);

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn scratch(name: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("flowc-paths-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("scratch dir");
        // The temporary directory itself may be behind a symbolic link.
        Dir(std::fs::canonicalize(&d).expect("canonical scratch dir"))
    }

    fn check(roots: &AllowedRoots, path: &Path) -> Result<PathBuf, PathError> {
        roots.check(&path.display().to_string())
    }

    #[test]
    fn dot_dot_cannot_climb_out_of_a_root() {
        let d = scratch("dotdot");
        let root = d.0.join("savepoints");
        std::fs::create_dir_all(&root).expect("root");
        let roots = AllowedRoots::new([root.display().to_string()]);
        assert_eq!(check(&roots, &root.join("a/b")), Ok(root.join("a/b")));
        assert_eq!(check(&roots, &root.join("a/../b")), Ok(root.join("b")));
        assert_eq!(check(&roots, &root), Ok(root.clone()));
        for escape in ["..", "../..", "../../../../../etc", "a/../../x", "./../savepoints-other"] {
            let e = check(&roots, &root.join(escape)).expect_err(escape);
            assert!(matches!(e, PathError::Outside { .. }), "{escape}: {e}");
            assert!(e.to_string().contains(&root.display().to_string()), "the message names the root: {e}");
        }
        // `file:` prefixes are stripped first.
        assert_eq!(roots.check(&format!("file:{}/x", root.display())), Ok(root.join("x")));
        assert_eq!(roots.check(&format!("file://{}/x", root.display())), Ok(root.join("x")));
        assert!(roots.check(&format!("file:{}/../x", root.display())).is_err());
        assert!(roots.check("   ").is_err());
    }

    #[test]
    fn prefixes_that_only_look_alike_are_not_inside() {
        let d = scratch("alike");
        let roots = AllowedRoots::new([d.0.join("ckpt").display().to_string()]);
        assert!(check(&roots, &d.0.join("ckpt-evil")).is_err());
        assert!(check(&roots, &d.0.join("ckpt-evil/x")).is_err());
        assert!(check(&roots, &d.0.join("ckp")).is_err());
        assert!(check(&roots, &d.0.join("ckpt/x")).is_ok());
    }

    #[test]
    fn symbolic_links_are_judged_by_their_target() {
        let d = scratch("links");
        let (root, outside) = (d.0.join("root"), d.0.join("outside"));
        std::fs::create_dir_all(&root).expect("root");
        std::fs::create_dir_all(&outside).expect("outside");
        let roots = AllowedRoots::new([root.display().to_string()]);
        std::os::unix::fs::symlink(&outside, root.join("out")).expect("link out");
        std::os::unix::fs::symlink(root.join("sub"), d.0.join("in")).expect("link in");
        std::fs::create_dir_all(root.join("sub")).expect("sub");
        std::os::unix::fs::symlink(d.0.join("nowhere"), root.join("dangling")).expect("dangling");
        // A link inside the root that points out is outside.
        assert!(matches!(check(&roots, &root.join("out")), Err(PathError::Outside { .. })));
        assert!(matches!(check(&roots, &root.join("out/new/dir")), Err(PathError::Outside { .. })));
        // `..` after a link applies to its target.
        assert!(check(&roots, &root.join("out/../root/x")).is_ok());
        assert!(check(&roots, &root.join("sub/../../outside")).is_err());
        // A link outside that points in is inside, as what it names.
        assert_eq!(check(&roots, &d.0.join("in/x")), Ok(root.join("sub/x")));
        // A dangling link would create its target: refused.
        assert!(matches!(check(&roots, &root.join("dangling/x")), Err(PathError::Unresolvable { .. })));
        // A root that is itself a link is judged by its target.
        let link_root = AllowedRoots::new([d.0.join("in").display().to_string()]);
        assert!(check(&link_root, &root.join("sub/y")).is_ok());
        assert!(check(&link_root, &root.join("y")).is_err());
    }

    #[test]
    fn from_config_takes_both_state_directories_and_the_list() {
        let mut c = Config::default();
        c.set("state.checkpoints.dir", "/data/ckpt");
        c.set("state.savepoints.dir", "file:///data/sp");
        c.set(ALLOWED_DIRECTORIES, " /srv/a ; /srv/b,,/srv/c ");
        let roots = AllowedRoots::from_config(&c);
        let expected: Vec<PathBuf> = ["/data/sp", "/data/ckpt", "/srv/a", "/srv/b", "/srv/c"].map(PathBuf::from).into();
        assert_eq!(roots.roots(), expected.as_slice());
        assert!(roots.describe().contains("`/srv/b`"));
        assert!(roots.check("/srv/b/x").is_ok());
        assert!(roots.check("/srv/bb").is_err());
    }

    #[test]
    fn s3_locations_must_be_in_an_allowed_bucket_or_prefix() {
        let mut c = Config::default();
        c.set("state.checkpoints.dir", "s3://ckpt-bucket/flowc/checkpoints");
        c.set("state.savepoints.dir", "/data/sp");
        c.set(ALLOWED_BUCKETS, "shared-bucket; s3://team/savepoints/");
        let roots = AllowedRoots::from_config(&c);
        // The checkpoint directory's bucket, whole; it is no local root.
        assert_eq!(roots.roots(), [PathBuf::from("/data/sp")].as_slice());
        assert_eq!(
            roots.check_location("s3://ckpt-bucket/other//sp-1/"),
            Ok(PathBuf::from("s3://ckpt-bucket/other/sp-1"))
        );
        assert_eq!(roots.check_location("s3a://shared-bucket/x"), Ok(PathBuf::from("s3://shared-bucket/x")));
        assert!(roots.check_location("s3://team/savepoints").is_ok());
        assert!(roots.check_location("s3://team/savepoints/a/b").is_ok());
        for refused in ["s3://team/savepoints-evil/x", "s3://team/other", "s3://ckpt-bucket-evil/x", "s3://evil/x"] {
            let e = roots.check_location(refused).expect_err(refused);
            assert!(matches!(e, PathError::OutsideBuckets { .. }), "{refused}: {e}");
            assert!(e.to_string().contains("`s3://team/savepoints`") && e.to_string().contains(ALLOWED_BUCKETS), "{e}");
        }
        let e = roots.check_location("s3://team/savepoints/../other").expect_err("climbing");
        assert!(matches!(e, PathError::Unresolvable { .. }), "{e}");
        assert!(roots.check_location("s3:///x").is_err(), "no bucket");
        // Local paths are checked as before through the same entry point.
        assert!(roots.check_location("/data/sp/x").is_ok());
        assert!(roots.check_location("/data/other").is_err());
        // File sinks and sources never take an s3:// path, allowed bucket or not.
        let e = roots.check("s3://ckpt-bucket/flowc/out").expect_err("not a file");
        assert!(e.to_string().contains("checkpoints and savepoints only"), "{e}");
        // Nothing configured on S3: every bucket is refused.
        let none = AllowedRoots::from_config(&Config::default());
        assert!(none.check_location("s3://any/x").unwrap_err().to_string().contains("none are configured"));
    }

    #[test]
    fn relative_paths_resolve_against_the_working_directory() {
        let cwd = std::env::current_dir().expect("cwd");
        let roots = AllowedRoots::new([cwd.display().to_string()]);
        let cwd = resolve(&cwd).expect("resolves");
        assert_eq!(roots.check("out/x"), Ok(cwd.join("out/x")));
        assert!(roots.check("../outside-the-working-directory").is_err());
    }
}
