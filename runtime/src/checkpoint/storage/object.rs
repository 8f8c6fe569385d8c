//! [`ObjectStoreStorage`]: checkpoints on S3 (or any S3-protocol server)
//! through the `object_store` crate, configured by Flink's keys
//! ([`S3Settings`]: `s3.endpoint`, `s3.access-key`, `s3.secret-key`,
//! `s3.path.style.access`, `s3.region`).
//!
//! An object store has no directories: a checkpoint `s3://b/k/chk-3` is
//! the objects under the prefix `k/chk-3/`. [`prepare`] writes an empty
//! [`PREPARED_MARKER`] object there; a state file or `_metadata` is only
//! written while the marker is there, so a checkpoint that was removed
//! stays removed (a writer racing the removal between its check and its
//! write leaves an object that the next sweep removes). Every object is
//! written by one PUT, which S3 makes visible whole or not at all, so no
//! temporary names are needed; `_metadata` is written last by the
//! JobManager, and a checkpoint without it is never used.
//!
//! The crate is asynchronous; the runtime's callers are not (the
//! JobManager's shell under its lock, a task's thread at a barrier). Each
//! operation runs on a small runtime of its own, shared by the process and
//! never dropped, and the caller waits for its result, as it waits for a
//! file to be written. Requests time out (30 s) and are retried a few
//! times, so a lost server fails a checkpoint instead of hanging it.
//!
//! Besides checkpoints, it keeps plain objects for the HA job store on S3
//! (`high-availability.storageDir: s3://…`): [`put_object`], [`get_object`],
//! [`delete_object`] and [`children`] work on any key, prepared or not.
//!
//! [`prepare`]: CheckpointStorage::prepare
//! [`put_object`]: ObjectStoreStorage::put_object
//! [`get_object`]: ObjectStoreStorage::get_object
//! [`delete_object`]: ObjectStoreStorage::delete_object
//! [`children`]: ObjectStoreStorage::children

use super::{object_location, CheckpointStorage, StorageError};
use crate::checkpoint::format::{encode, CheckpointMetadata, StateError, METADATA_FILE, METADATA_MAGIC};
use crate::checkpoint::state_file::StateSink;
use crate::config::{Config, ConfigError};
use flowc_compiler::ids::VertexId;
use futures::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{
    BackoffConfig, ClientOptions, GetOptions, ObjectStore, ObjectStoreExt, PutOptions, PutPayload, RetryConfig,
};
use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// The object `prepare` leaves in a checkpoint: writes go only where it is.
pub const PREPARED_MARKER: &str = "_prepared";

/// The region used when `s3.region` is not set (the S3 servers of tests
/// and most S3-compatible stores ignore it; AWS needs the bucket's).
pub const DEFAULT_REGION: &str = "us-east-1";

/// How to reach S3: Flink's `s3.*` keys. The secret key never appears in
/// `Debug` output.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct S3Settings {
    /// `s3.endpoint`: `http(s)://host:port` of an S3-compatible server;
    /// empty for AWS.
    pub endpoint: String,
    /// `s3.access-key`; with the secret key empty too, credentials come
    /// from the environment (`AWS_ACCESS_KEY_ID`, …) as the AWS SDK finds them.
    pub access_key: String,
    /// `s3.secret-key`.
    pub secret_key: String,
    /// `s3.path.style.access`: `http://host/bucket/key` rather than
    /// `http://bucket.host/key`.
    pub path_style: bool,
    /// `s3.region`.
    pub region: String,
}

impl std::fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secret = if self.secret_key.is_empty() { "" } else { "******" };
        f.debug_struct("S3Settings")
            .field("endpoint", &self.endpoint)
            .field("access_key", &self.access_key)
            .field("secret_key", &secret)
            .field("path_style", &self.path_style)
            .field("region", &self.region)
            .finish()
    }
}

impl S3Settings {
    pub fn from_config(config: &Config) -> Result<S3Settings, ConfigError> {
        let region = config.get("s3.region");
        Ok(S3Settings {
            endpoint: config.get("s3.endpoint").trim().trim_end_matches('/').to_string(),
            access_key: config.get("s3.access-key"),
            secret_key: config.get("s3.secret-key"),
            path_style: config.get_bool("s3.path.style.access")?,
            region: if region.trim().is_empty() { DEFAULT_REGION.to_string() } else { region.trim().to_string() },
        })
    }

    /// The endpoint requests for `bucket` go to: with virtual-hosted style
    /// (Flink's default) the bucket is the first label of the host.
    fn endpoint_for(&self, bucket: &str) -> Option<String> {
        if self.endpoint.is_empty() {
            return None;
        }
        if self.path_style {
            return Some(self.endpoint.clone());
        }
        Some(match self.endpoint.split_once("://") {
            Some((scheme, host)) => format!("{scheme}://{bucket}.{host}"),
            None => format!("https://{bucket}.{}", self.endpoint),
        })
    }

    fn build(&self, bucket: &str) -> Result<Arc<dyn ObjectStore>, String> {
        let mut b = if self.access_key.is_empty() && self.secret_key.is_empty() {
            AmazonS3Builder::from_env()
        } else {
            AmazonS3Builder::new().with_access_key_id(&self.access_key).with_secret_access_key(&self.secret_key)
        };
        b = b
            .with_bucket_name(bucket)
            .with_region(if self.region.is_empty() { DEFAULT_REGION } else { self.region.as_str() })
            .with_virtual_hosted_style_request(!self.path_style)
            .with_client_options(
                ClientOptions::new()
                    .with_timeout(Duration::from_secs(30))
                    .with_connect_timeout(Duration::from_secs(5))
                    .with_allow_http(self.endpoint.starts_with("http://")),
            )
            .with_retry(RetryConfig {
                backoff: BackoffConfig::default(),
                max_retries: 3,
                retry_timeout: Duration::from_secs(60),
            });
        if let Some(endpoint) = self.endpoint_for(bucket) {
            b = b.with_endpoint(endpoint);
        }
        let store = b.build().map_err(|e| format!("cannot use bucket `{bucket}`: {e}"))?;
        Ok(Arc::new(store))
    }
}

/// Checkpoints in S3 buckets, one object store per bucket, made on first use.
pub struct ObjectStoreStorage {
    settings: S3Settings,
    stores: Mutex<HashMap<String, Arc<dyn ObjectStore>>>,
}

/// What one operation works on: the bucket's store and the key.
struct Target {
    store: Arc<dyn ObjectStore>,
    key: String,
}

impl Target {
    fn child(&self, name: &str) -> ObjectPath {
        if self.key.is_empty() {
            ObjectPath::from(name)
        } else {
            ObjectPath::from(format!("{}/{name}", self.key))
        }
    }

    fn path(&self) -> ObjectPath {
        ObjectPath::from(self.key.as_str())
    }
}

fn other(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

fn io_error(e: object_store::Error) -> std::io::Error {
    match e {
        object_store::Error::NotFound { .. } => std::io::Error::new(std::io::ErrorKind::NotFound, e.to_string()),
        e => other(e),
    }
}

/// Runs `work` on the process's object-storage runtime and waits for it.
fn block_on<T: Send + 'static>(work: impl Future<Output = T> + Send + 'static) -> Result<T, std::io::Error> {
    static RUNTIME: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    let runtime = RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("flowc-object-store")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| other(format!("no runtime for object storage: {e}")))?;
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    runtime.spawn(async move {
        let _ = tx.send(work.await);
    });
    rx.recv().map_err(|_| other("the object-storage operation was dropped"))
}

impl ObjectStoreStorage {
    pub fn new(settings: S3Settings) -> ObjectStoreStorage {
        ObjectStoreStorage { settings, stores: Mutex::new(HashMap::new()) }
    }

    pub fn settings(&self) -> &S3Settings {
        &self.settings
    }

    /// The store and key of an `s3://` location.
    fn target(&self, location: &Path) -> Result<Target, std::io::Error> {
        let (bucket, key) = object_location(location)
            .ok_or_else(|| other(format!("`{}` is not an s3:// location", location.display())))?;
        if bucket.is_empty() {
            return Err(other("the location names no bucket"));
        }
        let mut stores = self.stores.lock().unwrap_or_else(|p| p.into_inner());
        let store = match stores.get(&bucket) {
            Some(s) => s.clone(),
            None => {
                let s = self.settings.build(&bucket).map_err(other)?;
                stores.insert(bucket, s.clone());
                s
            }
        };
        Ok(Target { store, key })
    }

    /// Fails with `NotFound` unless `dir` was prepared and not removed since.
    fn check_prepared(t: &Target) -> Result<(), std::io::Error> {
        let (store, marker) = (t.store.clone(), t.child(PREPARED_MARKER));
        match block_on(async move { store.get_opts(&marker, GetOptions::default().with_head(true)).await.map(|_| ()) })?
        {
            Ok(_) => Ok(()),
            Err(object_store::Error::NotFound { .. }) => Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "the checkpoint is not there (never prepared, or removed)",
            )),
            Err(e) => Err(other(e)),
        }
    }

    /// Writes `bytes` as the object at `location`, whole (one PUT), with
    /// no prepared checkpoint needed: what the HA job store keeps.
    pub fn put_object(&self, location: &Path, bytes: Vec<u8>) -> Result<(), std::io::Error> {
        let t = self.target(location)?;
        let (store, path) = (t.store.clone(), t.path());
        block_on(async move { store.put_opts(&path, PutPayload::from(bytes), PutOptions::default()).await })?
            .map_err(io_error)?;
        Ok(())
    }

    /// The object at `location`, or `None` if there is none.
    pub fn get_object(&self, location: &Path) -> Result<Option<Vec<u8>>, std::io::Error> {
        let t = self.target(location)?;
        let (store, key) = (t.store.clone(), t.path());
        let got = block_on(async move {
            match store.get_opts(&key, GetOptions::default()).await {
                Ok(got) => got.bytes().await.map(Some),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        })?
        .map_err(io_error)?;
        Ok(got.map(|b| b.to_vec()))
    }

    /// Deletes the one object at `location`; one that is not there is no error.
    pub fn delete_object(&self, location: &Path) -> Result<(), std::io::Error> {
        let t = self.target(location)?;
        let (store, key) = (t.store.clone(), t.path());
        match block_on(async move { store.delete(&key).await })? {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(io_error(e)),
        }
    }

    /// The names directly under `location`, as a directory's entries: each
    /// next key segment once, object or prefix.
    pub fn children(&self, location: &Path) -> Result<Vec<String>, std::io::Error> {
        let t = self.target(location)?;
        let (store, prefix) = (t.store.clone(), (!t.key.is_empty()).then(|| t.path()));
        let listed = block_on(async move { store.list_with_delimiter(prefix.as_ref()).await })?.map_err(io_error)?;
        let prefixes = listed.common_prefixes.iter().filter_map(|p| p.filename().map(str::to_string));
        let objects = listed.objects.iter().filter_map(|o| o.location.filename().map(str::to_string));
        Ok(prefixes.chain(objects).collect())
    }

    /// Writes `bytes` as `<dir>/<name>` into a prepared checkpoint.
    fn put_into(&self, dir: &Path, name: &str, bytes: Vec<u8>) -> Result<(), StateError> {
        let err = |source| StateError::Write { path: dir.join(name).display().to_string(), source };
        let t = self.target(dir).map_err(err)?;
        Self::check_prepared(&t).map_err(err)?;
        let (store, path) = (t.store.clone(), t.child(name));
        block_on(async move { store.put_opts(&path, PutPayload::from(bytes), PutOptions::default()).await })
            .map_err(err)?
            .map_err(|e| err(io_error(e)))?;
        Ok(())
    }
}

impl CheckpointStorage for ObjectStoreStorage {
    fn prepare(&self, dir: &Path) -> Result<(), StorageError> {
        let err = |source| StorageError::Create { path: dir.display().to_string(), source };
        let t = self.target(dir).map_err(err)?;
        let (store, marker) = (t.store.clone(), t.child(PREPARED_MARKER));
        block_on(async move { store.put_opts(&marker, PutPayload::new(), PutOptions::default()).await })
            .map_err(err)?
            .map_err(|e| err(io_error(e)))?;
        Ok(())
    }

    fn write_metadata(&self, dir: &Path, metadata: &CheckpointMetadata) -> Result<(), StorageError> {
        Ok(self.put_into(dir, METADATA_FILE, encode(METADATA_MAGIC, metadata))?)
    }

    fn write_state(&self, dir: &Path, name: &str, bytes: &[u8]) -> Result<(), StorageError> {
        Ok(self.put_into(dir, name, bytes.to_vec())?)
    }

    fn write_task_state_with(
        &self,
        dir: &Path,
        name: &str,
        vertex: VertexId,
        subtask: u32,
        fill: &mut dyn FnMut(&mut dyn StateSink) -> std::io::Result<()>,
    ) -> Result<Option<u64>, StorageError> {
        // The encoded file is collected in memory (one copy of the state as
        // bytes, no decoded copy beside it) and moved into one upload: a
        // multipart upload would stream it, but needs the async client
        // driven part by part from this thread. Not done yet.
        let Some((bytes, size)) = super::encode_streamed(dir, name, vertex, subtask, fill)? else { return Ok(None) };
        self.put_into(dir, name, bytes)?;
        Ok(Some(size))
    }

    fn read(&self, path: &Path) -> Result<Vec<u8>, StateError> {
        let err = |source| StateError::Read { path: path.display().to_string(), source };
        let t = self.target(path).map_err(err)?;
        let (store, key) = (t.store.clone(), t.path());
        let bytes = block_on(async move {
            match store.get_opts(&key, GetOptions::default()).await {
                Ok(got) => got.bytes().await,
                Err(e) => Err(e),
            }
        })
        .map_err(err)?
        .map_err(|e| err(io_error(e)))?;
        Ok(bytes.to_vec())
    }

    fn remove(&self, dir: &Path) -> Result<(), StorageError> {
        let err = |source| StorageError::Remove { path: dir.display().to_string(), source };
        let t = self.target(dir).map_err(err)?;
        if t.key.is_empty() {
            return Err(err(other("refusing to remove a whole bucket")));
        }
        let (store, prefix) = (t.store.clone(), t.path());
        let failed: Vec<String> = block_on(async move {
            // Segment-wise: `k/chk-1` lists `k/chk-1/…`, never `k/chk-10/…`.
            let listed = store.list(Some(&prefix)).map(|m| m.map(|m| m.location)).boxed();
            store
                .delete_stream(listed)
                .filter_map(|r| async move {
                    match r {
                        Ok(_) | Err(object_store::Error::NotFound { .. }) => None,
                        Err(e) => Some(e.to_string()),
                    }
                })
                .collect::<Vec<String>>()
                .await
        })
        .map_err(err)?;
        match failed.first() {
            None => Ok(()),
            Some(first) => Err(err(other(format!("{} objects not removed, the first: {first}", failed.len())))),
        }
    }

    fn list(&self, base: &Path) -> Result<Vec<(u64, PathBuf)>, StorageError> {
        let err = |source| StorageError::List { path: base.display().to_string(), source };
        let t = self.target(base).map_err(err)?;
        let (store, prefix) = (t.store.clone(), (!t.key.is_empty()).then(|| t.path()));
        let listed = block_on(async move { store.list_with_delimiter(prefix.as_ref()).await })
            .map_err(err)?
            .map_err(|e| err(io_error(e)))?;
        Ok(listed
            .common_prefixes
            .iter()
            .filter_map(|p| {
                let name = p.filename()?;
                let n = name.strip_prefix("chk-")?.parse::<u64>().ok()?;
                Some((n, base.join(name)))
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_key_is_never_shown() {
        let mut c = Config::default();
        c.set("s3.endpoint", "http://127.0.0.1:9000/");
        c.set("s3.access-key", "AKIA-visible");
        c.set("s3.secret-key", "do-not-show-this-secret");
        c.set("s3.path.style.access", "true");
        let s = S3Settings::from_config(&c).expect("settings");
        assert_eq!(s.endpoint, "http://127.0.0.1:9000");
        assert_eq!(s.region, DEFAULT_REGION);
        let shown = format!("{s:?} {:?}", super::super::Storages::new(s.clone()));
        assert!(!shown.contains("do-not-show"), "{shown}");
        assert!(shown.contains("******") && shown.contains("AKIA-visible"), "{shown}");
        // `/jobmanager/config` shows it masked, as Flink does (its key names a secret).
        let entries: HashMap<String, String> = c.entries().into_iter().collect();
        assert_eq!(entries["s3.secret-key"], "******");
        assert_eq!(entries["s3.access-key"], "AKIA-visible");
    }

    #[test]
    fn virtual_hosted_style_puts_the_bucket_into_the_host() {
        let mut s = S3Settings { endpoint: "http://minio:9000".into(), ..S3Settings::default() };
        assert_eq!(s.endpoint_for("b").as_deref(), Some("http://b.minio:9000"));
        s.path_style = true;
        assert_eq!(s.endpoint_for("b").as_deref(), Some("http://minio:9000"));
        s.endpoint.clear();
        assert_eq!(s.endpoint_for("b"), None);
    }

    #[test]
    fn a_bad_path_style_value_is_refused() {
        let mut c = Config::default();
        c.set("s3.path.style.access", "yes");
        let e = S3Settings::from_config(&c).expect_err("not a boolean");
        assert!(e.to_string().contains("s3.path.style.access"), "{e}");
    }
}
