//! The cluster configuration as every cluster-facing command takes it:
//! `--config FILE` (default `conf/flowc.yaml`, or `$FLOWC_CONF_DIR/flowc.yaml`,
//! where it exists) and `-D key=value` overrides.

use anyhow::Context;
use flowc_runtime::client::http::Client;
use flowc_runtime::client::rest::Rest;
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
        let (config, found, warnings) = self.load_with_warnings()?;
        for w in warnings {
            tracing::warn!("{w}");
        }
        Ok((config, found))
    }

    /// As [`ConfigArgs::load`], the warnings returned rather than logged
    /// (for a process that sets up its logging from the configuration).
    pub fn load_with_warnings(&self) -> anyhow::Result<(Config, bool, Vec<String>)> {
        let (path, explicit) = match &self.config {
            Some(p) => (Some(p.clone()), true),
            None => {
                let dir = std::env::var_os("FLOWC_CONF_DIR").map_or_else(|| PathBuf::from("conf"), PathBuf::from);
                (Some(dir.join("flowc.yaml")), false)
            }
        };
        let found = path.as_ref().is_some_and(|p| p.is_file());
        let (config, warnings) = Config::load(path.as_deref(), explicit, &self.dynamic).context("configuration")?;
        Ok((config, found, warnings))
    }

    /// A REST client for `addr` as the configuration sets it up (TLS, token).
    /// The token: `-D flowc.security.rest.token=…`, else `FLOWC_REST_TOKEN`,
    /// else the configuration file's.
    pub fn rest(&self, addr: String) -> anyhow::Result<Rest> {
        let (config, _) = self.load()?;
        self.rest_with(addr, &config)
    }

    /// As [`ConfigArgs::rest`], with the configuration already loaded.
    pub fn rest_with(&self, addr: String, config: &Config) -> anyhow::Result<Rest> {
        let on_command_line = self.dynamic.iter().any(|d| d.trim_start().starts_with("flowc.security.rest.token="));
        let env = std::env::var("FLOWC_REST_TOKEN").ok().filter(|_| !on_command_line);
        let client = Client::from_config(config, env).context("the REST client's configuration")?;
        Ok(Rest::with_client(addr, client))
    }
}
