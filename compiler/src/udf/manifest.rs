//! The dependencies of a UDF file, declared in its header as `rust-script`
//! and Cargo's inline manifests do, in a doc comment so that the file
//! stays valid Rust:
//!
//! ```text
//! //! ```cargo
//! //! [dependencies]
//! //! itoa = "1"
//! //! chrono = { version = "0.4", default-features = false }
//! //! ```
//! ```
//!
//! The block is read from the file's leading `//!` lines. Only
//! `[dependencies]` is read, and only crates.io dependencies are allowed
//! (a version, features, `default-features`, `package`); a `path`, `git`
//! or other registry is refused, so that a plan builds the same anywhere.

use flowc_dsl::Span;
use std::collections::BTreeMap;

/// The dependencies a UDF file declares, in the form Cargo reads.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Manifest {
    /// Name → the dependency's TOML value as written (`"1"` or a table).
    pub dependencies: BTreeMap<String, toml::Value>,
}

/// A header that is not a manifest flowc accepts.
#[derive(Debug, Clone, PartialEq)]
pub struct ManifestError {
    pub message: String,
    /// Where in the Rust file.
    pub span: Span,
    pub help: Option<String>,
}

/// The keys a crates.io dependency may have.
const ALLOWED_KEYS: &[&str] = &["version", "features", "default-features", "default_features", "package"];

impl Manifest {
    /// Reads the manifest block of a Rust file's header; no block is no dependencies.
    pub fn read(text: &str) -> Result<Manifest, ManifestError> {
        let Some(block) = Block::find(text) else { return Ok(Manifest::default()) };
        let table: toml::Table = block.toml.parse().map_err(|e: toml::de::Error| ManifestError {
            message: format!("the `cargo` block is not valid TOML: {}", e.message()),
            span: e.span().map_or(block.span, |r| block.file_span(r.start, r.end)),
            help: None,
        })?;
        let mut deps = BTreeMap::new();
        for (key, value) in &table {
            if key != "dependencies" {
                return Err(ManifestError {
                    message: format!("`[{key}]` is not read in a UDF file's manifest"),
                    span: block.span_of_key(key),
                    help: Some("only `[dependencies]` is read (from crates.io)".into()),
                });
            }
            let toml::Value::Table(t) = value else {
                return Err(ManifestError {
                    message: "`dependencies` must be a table".into(),
                    span: block.span_of_key(key),
                    help: None,
                });
            };
            for (name, spec) in t {
                let at = block.span_of_key(name);
                match spec {
                    toml::Value::String(_) => {}
                    toml::Value::Table(d) => {
                        if let Some(k) = d.keys().find(|k| !ALLOWED_KEYS.contains(&k.as_str())) {
                            let what = match k.as_str() {
                                "path" | "git" | "branch" | "tag" | "rev" => "only crates.io dependencies are allowed",
                                "registry" | "registry-index" => "only crates.io dependencies are allowed",
                                _ => "this key is not allowed in a UDF file's manifest",
                            };
                            return Err(ManifestError {
                                message: format!("dependency `{name}`: `{k}`: {what}"),
                                span: at,
                                help: Some(format!(
                                    "a UDF's dependencies come from crates.io, by version: `{name} = \"1\"` (the keys allowed are {})",
                                    ALLOWED_KEYS.join(", ")
                                )),
                            });
                        }
                        if !d.contains_key("version") {
                            return Err(ManifestError {
                                message: format!("dependency `{name}` has no version"),
                                span: at,
                                help: Some(format!("give a crates.io version: `{name} = {{ version = \"1\", … }}`")),
                            });
                        }
                    }
                    _ => {
                        return Err(ManifestError {
                            message: format!("dependency `{name}` must be a version string or a table"),
                            span: at,
                            help: Some(format!("`{name} = \"1\"`")),
                        })
                    }
                }
                deps.insert(name.clone(), spec.clone());
            }
        }
        Ok(Manifest { dependencies: deps })
    }

    /// The `[dependencies]` section for the generated crate's `Cargo.toml`,
    /// one line per dependency (a table is written inline).
    pub fn dependencies_toml(&self) -> String {
        let mut out = String::from("[dependencies]\n");
        for (name, spec) in &self.dependencies {
            out.push_str(&format!("{name} = {}\n", inline(spec)));
        }
        out
    }

    pub fn depends_on(&self, name: &str) -> bool {
        self.dependencies.contains_key(name)
            || self.dependencies.values().any(|v| v.get("package").and_then(|p| p.as_str()) == Some(name))
    }
}

/// A TOML value on one line.
fn inline(v: &toml::Value) -> String {
    match v {
        toml::Value::Table(t) => {
            let parts: Vec<String> = t.iter().map(|(k, v)| format!("{k} = {}", inline(v))).collect();
            format!("{{ {} }}", parts.join(", "))
        }
        toml::Value::Array(a) => format!("[{}]", a.iter().map(inline).collect::<Vec<_>>().join(", ")),
        other => other.to_string(),
    }
}

/// The ```` ```cargo ```` block of the header: its TOML text and where each
/// of its lines is in the file.
struct Block {
    toml: String,
    /// For each TOML line: its start in the TOML text and in the file.
    lines: Vec<(usize, usize)>,
    span: Span,
}

impl Block {
    fn find(text: &str) -> Option<Block> {
        let mut offset = 0;
        let mut inside: Option<Block> = None;
        for line in text.split_inclusive('\n') {
            let start = offset;
            offset += line.len();
            let trimmed = line.trim_start();
            let Some(doc) = trimmed.strip_prefix("//!") else {
                if trimmed.trim().is_empty() || trimmed.starts_with("#!") && !trimmed.starts_with("#![") {
                    continue; // blank lines and a shebang before the header
                }
                break;
            };
            let doc_start = start + (line.len() - trimmed.len()) + 3;
            let content = doc.strip_prefix(' ').unwrap_or(doc);
            let content_start = doc_start + (doc.len() - content.len());
            let content = content.trim_end_matches(['\n', '\r']);
            match &mut inside {
                None if content.trim_end() == "```cargo" => {
                    inside = Some(Block { toml: String::new(), lines: Vec::new(), span: Span::new(start, offset) })
                }
                None => {}
                Some(b) if content.trim_end() == "```" => {
                    b.span = Span::new(b.span.start, offset);
                    return inside;
                }
                Some(b) => {
                    b.lines.push((b.toml.len(), content_start));
                    b.toml.push_str(content);
                    b.toml.push('\n');
                }
            }
        }
        // An unclosed block is read to where the header ends.
        inside
    }

    /// The file span of TOML bytes `start..end` (on one line).
    fn file_span(&self, start: usize, end: usize) -> Span {
        let i = self.lines.partition_point(|(s, _)| *s <= start).saturating_sub(1);
        match self.lines.get(i) {
            Some((t, f)) => Span::new(f + (start - t), f + (end.max(start) - t)),
            None => self.span,
        }
    }

    /// Where `key` is first written at the start of a TOML line (or inside `[…]`).
    fn span_of_key(&self, key: &str) -> Span {
        for (t, _) in &self.lines {
            let line = &self.toml[*t..];
            let line = line.split('\n').next().unwrap_or("");
            let lead = line.len() - line.trim_start().len();
            let rest = line.trim_start();
            let at = if rest.starts_with(key) {
                Some(lead)
            } else if rest.starts_with('[') && rest[1..].trim_start().starts_with(key) {
                Some(lead + 1 + (rest[1..].len() - rest[1..].trim_start().len()))
            } else {
                None
            };
            if let Some(a) = at {
                return self.file_span(t + a, t + a + key.len());
            }
        }
        self.span
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "//! Geo functions.\n//!\n//! ```cargo\n//! [dependencies]\n//! itoa = \"1\"\n//! chrono = { version = \"0.4\", default-features = false }\n//! ```\n\npub fn f() -> i64 { 0 }\n";

    #[test]
    fn reads_the_dependencies_of_the_header() {
        let m = Manifest::read(HEADER).expect("reads");
        assert_eq!(m.dependencies.keys().collect::<Vec<_>>(), ["chrono", "itoa"]);
        assert!(m.depends_on("chrono"));
        let toml = m.dependencies_toml();
        assert_eq!(toml, "[dependencies]\nchrono = { default-features = false, version = \"0.4\" }\nitoa = \"1\"\n");
        assert_eq!(Manifest::read("pub fn f() -> i64 { 0 }\n").expect("none"), Manifest::default());
        // A block after the header is not the manifest.
        assert_eq!(
            Manifest::read("fn a() {}\n//! ```cargo\n//! [dependencies]\n//! x = \"1\"\n//! ```\n").expect("none"),
            Manifest::default()
        );
    }

    #[test]
    fn refuses_other_sources_and_says_where() {
        let src = "//! ```cargo\n//! [dependencies]\n//! mine = { path = \"../mine\" }\n//! ```\n";
        let e = Manifest::read(src).expect_err("refused");
        assert!(e.message.contains("only crates.io"), "{e:?}");
        assert_eq!(&src[e.span.start..e.span.end], "mine");
        let src = "//! ```cargo\n//! [package]\n//! name = \"x\"\n//! ```\n";
        let e = Manifest::read(src).expect_err("refused");
        assert_eq!(&src[e.span.start..e.span.end], "package");
        let src = "//! ```cargo\n//! [dependencies]\n//! x = = 1\n//! ```\n";
        let e = Manifest::read(src).expect_err("refused");
        assert!(e.message.contains("not valid TOML"), "{e:?}");
        assert_eq!(src[..e.span.start].matches('\n').count(), 2, "on the third line: {e:?}");
    }
}
