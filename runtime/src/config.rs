//! Cluster configuration: one YAML file with Flink's keys (flat `a.b: v` or
//! nested), overridden by `-D key=value`. Unknown keys are warned about by
//! name, never silently ignored.

use std::collections::BTreeMap;
use std::path::Path;

/// Every key flowc reads, with its default and what it means.
pub const KEYS: &[(&str, &str, &str)] = &[
    ("jobmanager.rpc.address", "127.0.0.1", "where TaskManagers reach the JobManager"),
    ("jobmanager.rpc.port", "6123", "the JobManager's RPC port"),
    ("jobmanager.bind-host", "127.0.0.1", "the address the JobManager's RPC port binds (not rest.bind-address)"),
    ("rest.address", "127.0.0.1", "where clients reach the REST API"),
    ("rest.bind-address", "127.0.0.1", "the address the REST server binds"),
    ("rest.port", "8081", "the REST port"),
    ("taskmanager.numberOfTaskSlots", "2", "slots per TaskManager"),
    ("taskmanager.data.port", "0", "the TaskManager's data port (0: any free port)"),
    ("taskmanager.bind-host", "127.0.0.1", "the address a TaskManager's data port binds"),
    ("taskmanager.bind-address", "", "the earlier name of taskmanager.bind-host"),
    ("taskmanager.resource-id", "", "the TaskManager's id (default: host:port-random)"),
    ("state.checkpoints.dir", "/tmp/flowc-checkpoints", "where checkpoints are written"),
    ("state.savepoints.dir", "/tmp/flowc-savepoints", "where savepoints are written by default"),
    ("state.checkpoints.num-retained", "1", "completed checkpoints kept per job (Flink's default); older ones are deleted once a newer one is durable"),
    ("execution.checkpointing.num-retained", "", "Flink 2's name of state.checkpoints.num-retained; wins when both are set"),
    ("s3.endpoint", "", "the S3 endpoint for s3:// checkpoints and savepoints, http(s)://host:port (default: AWS)"),
    ("s3.access-key", "", "the S3 access key (default: the AWS environment's credentials)"),
    ("s3.secret-key", "", "the S3 secret key (shown as ******)"),
    ("s3.path.style.access", "false", "S3 requests as http://host/bucket/key rather than http://bucket.host/key"),
    ("s3.region", "us-east-1", "the S3 region of the buckets"),
    ("heartbeat.interval", "10000", "ms between heartbeats (Flink's default)"),
    ("heartbeat.timeout", "50000", "ms without a heartbeat before a TaskManager is lost (Flink's default)"),
    ("metrics.reporter.prom.factory.class", "", "org.apache.flink.metrics.prometheus.PrometheusReporterFactory: serve /metrics for Prometheus"),
    ("metrics.reporter.prom.class", "", "the reporter's class, as older Flink versions name it"),
    ("metrics.reporter.prom.port", "9249", "the Prometheus reporter's port, or a range such as 9250-9260 (the first free one)"),
    ("metrics.reporter.prom.host", "", "flowc: the address the Prometheus reporter binds (default: all)"),
    // Cluster-internal security (docs/SECURITY.md): off by default, as in Flink.
    ("flowc.security.cluster.secret", "", "a secret TaskManagers must prove they know (beyond Flink)"),
    ("flowc.security.cluster.secret-file", "", "a file holding the cluster secret"),
    ("security.ssl.internal.enabled", "false", "mutual TLS on the RPC and data ports"),
    ("security.ssl.internal.keystore", "", "PKCS12 keystore: this process's certificate and key"),
    ("security.ssl.internal.keystore-password", "", "the keystore's password"),
    ("security.ssl.internal.key-password", "", "the key's password (PKCS12: as the keystore's)"),
    ("security.ssl.internal.truststore", "", "PKCS12 truststore: the certificates peers must be signed by"),
    ("security.ssl.internal.truststore-password", "", "the truststore's password"),
    ("security.ssl.internal.cert", "", "PEM certificate chain of this process (instead of a keystore)"),
    ("security.ssl.internal.key", "", "PEM private key of this process"),
    ("security.ssl.internal.ca", "", "PEM certificates peers must be signed by (instead of a truststore)"),
    ("security.ssl.verify-hostname", "true", "a server's certificate must name the host it is reached at"),
    (
        "restart-strategy.type",
        "",
        "none | fixed-delay | failure-rate | exponential-delay (unset: exponential-delay for jobs with checkpointing, none without, as Flink)",
    ),
    ("restart-strategy.fixed-delay.attempts", "1", "fixed-delay: restarts before the job fails"),
    ("restart-strategy.fixed-delay.delay", "1000", "fixed-delay: ms between restarts"),
    ("restart-strategy.failure-rate.max-failures-per-interval", "1", "failure-rate: restarts allowed per interval"),
    ("restart-strategy.failure-rate.failure-rate-interval", "60000", "failure-rate: the interval in ms"),
    ("restart-strategy.failure-rate.delay", "1000", "failure-rate: ms between restarts"),
    ("restart-strategy.exponential-delay.initial-backoff", "1000", "exponential-delay: ms before the first restart"),
    ("restart-strategy.exponential-delay.max-backoff", "60000", "exponential-delay: the longest delay in ms"),
    ("restart-strategy.exponential-delay.backoff-multiplier", "1.5", "exponential-delay: growth of the delay"),
    ("restart-strategy.exponential-delay.jitter-factor", "0.1", "exponential-delay: ± this share of the delay, at random"),
    (
        "restart-strategy.exponential-delay.reset-backoff-threshold",
        "3600000",
        "exponential-delay: ms without a failure after which the delay starts over",
    ),
    (
        "restart-strategy.exponential-delay.attempts-before-reset-backoff",
        "2147483647",
        "exponential-delay: restarts before the job fails, counted since the delay last started over",
    ),
    ("parallelism.default", "1", "parallelism of jobs that do not set one"),
    ("execution.checkpointing.interval", "", "default checkpoint interval of jobs that set none"),
    ("web.upload.dir", "/tmp/flowc-web-upload", "where uploaded job files are kept"),
    (
        "flowc.security.allowed-directories",
        "",
        "directories (`,` or `;` separated) that savepoint targets, restore paths and file sinks may name, besides state.savepoints.dir and state.checkpoints.dir",
    ),
    (
        "flowc.security.allowed-buckets",
        "",
        "S3 buckets or prefixes (`bucket` or `s3://bucket/prefix`, `,` or `;` separated) that savepoint targets and restore paths may name, besides the buckets of state.savepoints.dir and state.checkpoints.dir",
    ),
    (
        "execution.checkpointing.externalized-checkpoint-retention",
        "DELETE_ON_CANCELLATION",
        "what happens to a job's checkpoints when it ends: DELETE_ON_CANCELLATION (deleted when cancelled or finished), RETAIN_ON_CANCELLATION (deleted when finished), NO_EXTERNALIZED_CHECKPOINTS (deleted when it ends, failed too); a FAILED job's are kept by the first two",
    ),
    ("jobstore.expiration-time", "3600", "seconds a finished, cancelled or failed job stays listed"),
    ("jobstore.max-capacity", "2147483647", "finished, cancelled or failed jobs listed at most (the oldest go first)"),
    ("web.exception-history-size", "16", "failures kept per job for /jobs/:jid/exceptions"),
    // REST resource limits (docs/SECURITY.md).
    ("rest.server.max-content-length", "104857600", "the largest REST request body in bytes; larger ones get 413"),
    (
        "rest.server.max-connections",
        "",
        "REST connections at once; more are closed at once (default: a quarter of the open-file limit, at most 4096)",
    ),
    (
        "rest.server.header-timeout",
        "10000",
        "ms a REST connection may take to send a request's headers (idle keep-alive included)",
    ),
    ("rest.idleness-timeout", "300000", "ms a REST connection may move no byte before it is closed"),
    ("rest.server.request-timeout", "300000", "ms a REST request may take, its body included; then 503"),
    ("rest.connection-timeout", "15000", "ms the flowc client waits to connect to the REST API"),
    // REST security switches (docs/SECURITY.md).
    ("web.submit.enable", "true", "false: REST refuses job uploads and submissions (403)"),
    ("web.cancel.enable", "true", "false: REST refuses to cancel jobs (403)"),
    ("flowc.security.rest.token", "", "a shared secret every REST request must send as `Authorization: Bearer …`"),
    ("security.ssl.rest.enabled", "false", "REST over TLS"),
    ("security.ssl.rest.keystore", "", "the REST server's PKCS12 keystore: its key and certificate chain"),
    ("security.ssl.rest.keystore-password", "", "the keystore's password"),
    ("security.ssl.rest.key-password", "", "the key's password (PKCS12: the keystore's)"),
    ("security.ssl.rest.keystore-type", "PKCS12", "PKCS12 (the only type flowc reads)"),
    ("security.ssl.rest.cert", "", "instead of a keystore: the REST server's certificate chain, PEM"),
    ("security.ssl.rest.key", "", "instead of a keystore: the REST server's private key, PEM"),
    ("security.ssl.rest.truststore", "", "PKCS12 truststore a REST client trusts"),
    ("security.ssl.rest.truststore-password", "", "the truststore's password"),
    ("security.ssl.rest.truststore-type", "PKCS12", "PKCS12 (the only type flowc reads)"),
    ("security.ssl.rest.ca", "", "instead of a truststore: the CA certificates a REST client trusts, PEM"),
    (
        "security.ssl.rest.authentication-enabled",
        "false",
        "mutual TLS for REST: not supported (use flowc.security.rest.token)",
    ),
    (
        "blob.storage.directory",
        "/tmp/flowc-blobs",
        "UDF artifacts: the JobManager's blob store (`jobmanager/`) and the TaskManagers' cache (`taskmanager-cache/`)",
    ),
    ("udf.isolation", "in-process", "how TaskManagers run Rust UDFs: in-process (a loaded library) or process (a sidecar per task)"),
    // JobManager high availability (docs/HA.md), with Flink's names and defaults.
    ("high-availability.type", "NONE", "NONE, or zookeeper: a standby JobManager takes over"),
    ("high-availability.zookeeper.quorum", "", "ZooKeeper's host:port[,host:port…]"),
    ("high-availability.storageDir", "", "where job plans and checkpoint pointers' payloads are kept"),
    ("high-availability.cluster-id", "/default", "this cluster's node under path.root"),
    ("high-availability.zookeeper.path.root", "/flink", "the root ZooKeeper node of all clusters"),
    ("high-availability.zookeeper.client.session-timeout", "60000", "ms: ZooKeeper session timeout"),
    ("high-availability.zookeeper.client.connection-timeout", "15000", "ms: ZooKeeper connection timeout"),
    (
        "high-availability.flowc.fast-failover",
        "true",
        "flowc's own: a standby replaces a leader whose RPC port refuses connections without waiting for its session timeout",
    ),
    // Logs (runtime/src/logging.rs): to standard output and, if set, to a file.
    ("log.file", "", "the process's log file (Flink's key; default: env.log.dir/flowc-<role>-<host>.log)"),
    ("env.log.dir", "", "the directory of the process's log file (Flink's key)"),
    ("flowc.log.file.max-size", "67108864", "bytes (or 10m, 1g) at which the log file rolls over"),
    ("flowc.log.file.max-count", "5", "how many rolled-over log files are kept"),
];

/// Whether a key's value is a secret, shown as `******` by `/jobmanager/config`
/// (Flink's rule: the key names a password, secret or token); a key naming
/// the file that holds a secret (`…secret-file`) is shown.
pub fn is_sensitive(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    !k.ends_with("-file") && ["password", "secret", "token", "apikey", "api-key"].iter().any(|w| k.contains(w))
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file `{path}`: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("config file `{path}` is not valid YAML: {message}")]
    Yaml { path: String, message: String },
    #[error("`-D {0}` is not of the form key=value")]
    BadOverride(String),
    #[error("config key `{key}` = `{value}`: {expected}")]
    BadValue { key: String, value: String, expected: &'static str },
}

#[derive(Debug, Clone, Default)]
pub struct Config {
    values: BTreeMap<String, String>,
}

impl Config {
    /// Reads the file (if it exists, or fails if it was named explicitly),
    /// then applies `-D` overrides. Returns the warnings about unknown keys.
    pub fn load(
        path: Option<&Path>,
        explicit: bool,
        overrides: &[String],
    ) -> Result<(Config, Vec<String>), ConfigError> {
        let mut values = BTreeMap::new();
        if let Some(path) = path {
            match std::fs::read_to_string(path) {
                Ok(text) => flatten_yaml(&text, &path.display().to_string(), &mut values)?,
                Err(e) if !explicit && e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(ConfigError::Read { path: path.display().to_string(), source }),
            }
        }
        for o in overrides {
            let (k, v) = o.split_once('=').ok_or_else(|| ConfigError::BadOverride(o.clone()))?;
            values.insert(k.trim().to_string(), v.trim().to_string());
        }
        let warnings = values
            .keys()
            .filter(|k| !KEYS.iter().any(|(known, _, _)| known == k))
            .map(|k| format!("unknown configuration key `{k}` is ignored"))
            .collect();
        Ok((Config { values }, warnings))
    }

    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        self.values.insert(key.to_string(), value.into());
    }

    /// The value of a key, or its default.
    pub fn get(&self, key: &str) -> String {
        self.values
            .get(key)
            .cloned()
            .or_else(|| KEYS.iter().find(|(k, _, _)| *k == key).map(|(_, d, _)| d.to_string()))
            .unwrap_or_default()
    }

    pub fn is_set(&self, key: &str) -> bool {
        self.values.contains_key(key)
    }

    pub fn get_u64(&self, key: &str) -> Result<u64, ConfigError> {
        let v = self.get(key);
        parse_millis_or_number(&v).ok_or(ConfigError::BadValue {
            key: key.into(),
            value: v,
            expected: "a number (durations may say ms, s, min)",
        })
    }

    pub fn get_u16(&self, key: &str) -> Result<u16, ConfigError> {
        let v = self.get(key);
        v.trim().parse().map_err(|_| ConfigError::BadValue { key: key.into(), value: v, expected: "a port number" })
    }

    pub fn get_bool(&self, key: &str) -> Result<bool, ConfigError> {
        let v = self.get(key);
        match v.trim().to_ascii_lowercase().as_str() {
            "true" => Ok(true),
            "false" | "" => Ok(false),
            _ => Err(ConfigError::BadValue { key: key.into(), value: v, expected: "true or false" }),
        }
    }

    pub fn get_f64(&self, key: &str) -> Result<f64, ConfigError> {
        let v = self.get(key);
        v.trim().parse().map_err(|_| ConfigError::BadValue { key: key.into(), value: v, expected: "a number" })
    }

    /// All keys with their values, defaults included (for `/jobmanager/config`);
    /// secrets and passwords show as `******`, as Flink shows them.
    pub fn entries(&self) -> Vec<(String, String)> {
        let mut out: BTreeMap<String, String> =
            KEYS.iter().filter(|(_, d, _)| !d.is_empty()).map(|(k, d, _)| (k.to_string(), d.to_string())).collect();
        out.extend(self.values.clone());
        for (k, v) in out.iter_mut() {
            if is_sensitive(k) && !v.is_empty() {
                *v = "******".to_string();
            }
        }
        out.into_iter().collect()
    }
}

/// `1000`, `1000 ms`, `5 s`, `5s`, `1 min` → milliseconds (Flink's duration syntax).
pub fn parse_millis_or_number(v: &str) -> Option<u64> {
    let v = v.trim();
    let digits = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let n: u64 = v[..digits].parse().ok()?;
    let mult = match v[digits..].trim() {
        "" | "ms" => 1,
        "s" => 1000,
        "min" | "m" => 60_000,
        "h" => 3_600_000,
        _ => return None,
    };
    n.checked_mul(mult)
}

fn flatten_yaml(text: &str, path: &str, out: &mut BTreeMap<String, String>) -> Result<(), ConfigError> {
    use yaml_rust2::{Yaml, YamlLoader};
    let docs =
        YamlLoader::load_from_str(text).map_err(|e| ConfigError::Yaml { path: path.into(), message: e.to_string() })?;
    fn walk(prefix: &str, y: &Yaml, out: &mut BTreeMap<String, String>) {
        match y {
            Yaml::Hash(h) => {
                for (k, v) in h {
                    let key = match k {
                        Yaml::String(s) => s.clone(),
                        Yaml::Integer(i) => i.to_string(),
                        other => format!("{other:?}"),
                    };
                    let full = if prefix.is_empty() { key } else { format!("{prefix}.{key}") };
                    walk(&full, v, out);
                }
            }
            Yaml::String(s) => {
                out.insert(prefix.to_string(), s.clone());
            }
            Yaml::Integer(i) => {
                out.insert(prefix.to_string(), i.to_string());
            }
            Yaml::Real(r) => {
                out.insert(prefix.to_string(), r.clone());
            }
            Yaml::Boolean(b) => {
                out.insert(prefix.to_string(), b.to_string());
            }
            _ => {}
        }
    }
    for d in &docs {
        walk("", d, out);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_and_nested_keys_and_overrides() {
        let dir = std::env::temp_dir().join(format!("flowc-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp");
        let f = dir.join("flowc.yaml");
        std::fs::write(&f, "rest.port: 9000\nheartbeat:\n  interval: 500\nbogus.key: 1\n").expect("write");
        let (c, warnings) = Config::load(Some(&f), true, &["rest.port=9001".into()]).expect("loads");
        assert_eq!(c.get("rest.port"), "9001");
        assert_eq!(c.get_u64("heartbeat.interval").expect("number"), 500);
        assert_eq!(c.get_u64("heartbeat.timeout").expect("default"), 50000);
        assert_eq!(warnings, vec!["unknown configuration key `bogus.key` is ignored".to_string()]);
        assert_eq!(parse_millis_or_number("5 s"), Some(5000));
    }

    #[test]
    fn secrets_and_passwords_are_not_shown() {
        let mut c = Config::default();
        c.set("flowc.security.cluster.secret", "do-not-show-this-secret");
        c.set("security.ssl.internal.keystore-password", "do-not-show");
        c.set("flowc.security.cluster.secret-file", "/etc/flowc/secret");
        let shown: BTreeMap<String, String> = c.entries().into_iter().collect();
        assert_eq!(shown["flowc.security.cluster.secret"], "******");
        assert_eq!(shown["security.ssl.internal.keystore-password"], "******");
        assert_eq!(shown["flowc.security.cluster.secret-file"], "/etc/flowc/secret", "a path is not a secret");
        assert_eq!(c.get("flowc.security.cluster.secret"), "do-not-show-this-secret");
    }
}
