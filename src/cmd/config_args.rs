//! The cluster configuration as every cluster-facing command takes it:
//! `--config FILE` (default `conf/flowc.yaml`, or `$FLOWC_CONF_DIR/flowc.yaml`,
//! where it exists) and `-D key=value` overrides.

use anyhow::Context;
use flowc_runtime::config::Config;
use std::path::PathBuf;

#[derive(clap::Args, Debug, Clone, Default)]
pub struct ConfigArgs {
    /// The configuration file (Flink-style keys); default `conf/flowc.yaml` if it exists.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Sets a configuration key, e.g. `-D rest.port=8082`.
    #[arg(short = 'D', value_name = "KEY=VALUE")]
    pub dynamic: Vec<String>,
}

impl ConfigArgs {
    /// The configuration, and whether a file was found (a configured cluster).
    pub fn load(&self) -> anyhow::Result<(Config, bool)> {
        let (path, explicit) = match &self.config {
            Some(p) => (Some(p.clone()), true),
            None => {
                let dir = std::env::var_os("FLOWC_CONF_DIR").map_or_else(|| PathBuf::from("conf"), PathBuf::from);
                (Some(dir.join("flowc.yaml")), false)
            }
        };
        let found = path.as_ref().is_some_and(|p| p.is_file());
        let (config, warnings) = Config::load(path.as_deref(), explicit, &self.dynamic).context("configuration")?;
        for w in warnings {
            tracing::warn!("{w}");
        }
        Ok((config, found))
    }
}
