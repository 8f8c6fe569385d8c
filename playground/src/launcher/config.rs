//! The keys of the flowc configuration file (`playground/conf/flowc.yaml`)
//! that the launcher itself needs: where the JobManager listens and which
//! directories `down -v` deletes. The file is Flink-style flat YAML
//! (`key: value` per line); nested YAML is not needed here and is refused
//! with a clear message rather than misread.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::error::LaunchError;

/// What the launcher reads from the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaygroundConfig {
    pub rpc_port: u16,
    pub rest_address: String,
    pub rest_port: u16,
    pub checkpoints_dir: Option<PathBuf>,
    pub savepoints_dir: Option<PathBuf>,
    /// `web.upload.dir`: job files uploaded over REST.
    pub upload_dir: Option<PathBuf>,
}

impl Default for PlaygroundConfig {
    fn default() -> Self {
        PlaygroundConfig {
            rpc_port: 6123,
            rest_address: "127.0.0.1".to_owned(),
            rest_port: 8081,
            checkpoints_dir: None,
            savepoints_dir: None,
            upload_dir: None,
        }
    }
}

impl PlaygroundConfig {
    /// Reads `path`.
    pub fn load(path: &Path) -> Result<PlaygroundConfig, LaunchError> {
        let text = std::fs::read_to_string(path).map_err(LaunchError::io(format!("reading {}", path.display())))?;
        Self::parse(&text).map_err(|msg| LaunchError::Config { path: path.to_owned(), msg })
    }

    /// Parses the text of a configuration file.
    pub fn parse(text: &str) -> Result<PlaygroundConfig, String> {
        let keys = flat_keys(text)?;
        let mut c = PlaygroundConfig::default();
        let port = |key: &str, default: u16| -> Result<u16, String> {
            match keys.get(key) {
                None => Ok(default),
                Some(v) => v
                    .parse::<u16>()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| format!("{key}: {v:?} is not a port number")),
            }
        };
        c.rpc_port = port("jobmanager.rpc.port", c.rpc_port)?;
        c.rest_port = port("rest.port", c.rest_port)?;
        if let Some(a) = keys.get("rest.address") {
            c.rest_address = a.clone();
        }
        let dir = |key: &str| keys.get(key).map(|v| PathBuf::from(strip_file_scheme(v)));
        c.checkpoints_dir = dir("state.checkpoints.dir");
        c.savepoints_dir = dir("state.savepoints.dir");
        c.upload_dir = dir("web.upload.dir");
        Ok(c)
    }

    /// `host:port` of the REST endpoint, as `flowc run -m` takes it.
    pub fn rest_endpoint(&self) -> String {
        format!("{}:{}", self.rest_address, self.rest_port)
    }
}

fn strip_file_scheme(v: &str) -> &str {
    v.strip_prefix("file://").unwrap_or(v)
}

/// `key: value` lines; comments (`#`) and blank lines skipped, quotes
/// around values removed.
fn flat_keys(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for (n, raw) in text.lines().enumerate() {
        let line = match raw.find(" #") {
            Some(i) => &raw[..i],
            None => raw,
        };
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        if line.starts_with(char::is_whitespace) {
            return Err(format!(
                "line {}: nested YAML is not supported here; write flat keys like `rest.port: 8081`",
                n + 1
            ));
        }
        let Some((k, v)) = line.split_once(':') else {
            return Err(format!("line {}: expected `key: value`", n + 1));
        };
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|s| s.strip_suffix('"'))
            .or_else(|| v.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')))
            .unwrap_or(v);
        out.insert(k.trim().to_owned(), v.to_owned());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_playground_config() {
        let text = include_str!("../../conf/flowc.yaml");
        let c = PlaygroundConfig::parse(text).expect("valid");
        assert_eq!(c.rest_endpoint(), "127.0.0.1:8081");
        assert_eq!(c.rpc_port, 6123);
        assert_eq!(c.checkpoints_dir.as_deref(), Some(Path::new("/tmp/flowc-checkpoints-directory")));
        assert_eq!(c.savepoints_dir.as_deref(), Some(Path::new("/tmp/flowc-savepoints-directory")));
    }

    #[test]
    fn quotes_comments_and_schemes() {
        let c = PlaygroundConfig::parse("# c\nrest.port: \"18081\" # trailing\nstate.checkpoints.dir: file:///x/y\n")
            .expect("valid");
        assert_eq!(c.rest_port, 18081);
        assert_eq!(c.checkpoints_dir.as_deref(), Some(Path::new("/x/y")));
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(PlaygroundConfig::parse("rest.port: eighty").is_err());
        assert!(PlaygroundConfig::parse("rest:\n  port: 1").is_err());
        assert!(PlaygroundConfig::parse("just words").is_err());
    }
}
