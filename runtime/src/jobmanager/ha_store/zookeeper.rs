//! The HA job store with ZooKeeper, as Flink keeps it: each entry's
//! payload under the storageDir (a file or an S3 object, [`Payloads`])
//! with a name of its own (`jobs/<job-id>/<entry>-<random>.bin`), and a
//! small pointer node in
//! ZooKeeper, `<base>/<jobgraphs|checkpoints|job-results>/<job-id>`, that
//! holds the file's relative path and digest. A new payload is written
//! first, then the pointer moves to it, then the old file goes: a crash
//! at any point leaves a pointer to a complete file.
//!
//! While a JobManager leads, every write is a ZooKeeper multi-operation
//! that first checks its election node (Flink checks its leader latch the
//! same way): once its session has expired, the node is gone and a
//! deposed leader's write fails instead of moving a pointer.
//!
//! The JobManager's shell is synchronous; ZooKeeper's client is not. The
//! store owns a one-thread tokio runtime that keeps its session alive and
//! runs each call, which the caller waits for (a few milliseconds on a
//! healthy ensemble, at most the connection timeout otherwise).

use super::{digest, Entry, JobStore, Payloads, StoreError};
use crate::ha::HaConfig;
use crate::ids::JobId;
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;
use zookeeper_client as zk;

/// A pointer node's content.
#[derive(Debug, Serialize, Deserialize)]
struct Pointer {
    /// Relative to the store's directory.
    path: String,
    /// The payload's SHA-256, hex.
    sha256: String,
}

pub struct ZkJobStore {
    /// `<storageDir>/<cluster-id>`: the payloads.
    payloads: Payloads,
    config: HaConfig,
    runtime: Option<tokio::runtime::Runtime>,
    client: Mutex<Option<zk::Client>>,
    /// The election node writes check, while this JobManager leads.
    guard: Mutex<Option<String>>,
}

impl ZkJobStore {
    /// A store of payloads under `dir` and pointers under the cluster's
    /// ZooKeeper node. It connects on first use, and again after its
    /// session ended.
    pub fn new(dir: impl Into<PathBuf>, config: HaConfig) -> ZkJobStore {
        ZkJobStore::on(Payloads::Files(dir.into()), config)
    }

    /// A store of the payloads `payloads` (files or S3 objects) and
    /// pointers under the cluster's ZooKeeper node.
    pub fn on(payloads: Payloads, config: HaConfig) -> ZkJobStore {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("ha-job-store")
            .enable_all()
            .build()
            .map_err(|e| tracing::error!(error = %e, "Cannot start the HA job store's ZooKeeper thread."))
            .ok();
        ZkJobStore { payloads, config, runtime, client: Mutex::new(None), guard: Mutex::new(None) }
    }

    fn guard_node(&self) -> Option<String> {
        self.guard.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn node(&self, job: JobId, entry: Entry) -> String {
        format!("{}/{job}", self.config.paths.store_dir(entry.zk_dir()))
    }

    /// Runs `fut` on the store's runtime and waits for it, at most the
    /// connection timeout (plus a margin).
    fn block<T: Send + 'static>(&self, fut: impl Future<Output = T> + Send + 'static) -> Result<T, StoreError> {
        let Some(rt) = &self.runtime else {
            return Err(StoreError::ZooKeeper("the store's ZooKeeper thread did not start".into()));
        };
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        rt.spawn(async move {
            let _ = tx.send(fut.await);
        });
        let wait = self.config.connection_timeout + std::time::Duration::from_secs(1);
        rx.recv_timeout(wait).map_err(|_| {
            StoreError::ZooKeeper(format!("{} did not answer within {} ms", self.config.quorum, wait.as_millis()))
        })
    }

    /// The session, opened if there is none or the last one ended.
    fn client(&self) -> Result<zk::Client, StoreError> {
        let mut slot = self.client.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = slot.as_ref().filter(|c| !c.state().is_terminated()) {
            return Ok(c.clone());
        }
        let config = self.config.clone();
        let client = self
            .block(async move { crate::ha::zookeeper::connect(&config).await })?
            .map_err(|e| StoreError::ZooKeeper(e.to_string()))?;
        *slot = Some(client.clone());
        Ok(client)
    }

    /// Runs one ZooKeeper operation; `doing` names it in errors.
    fn call<T, F>(&self, doing: impl Fn() -> String, op: impl FnOnce(zk::Client) -> F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, zk::Error>> + Send + 'static,
    {
        let client = self.client()?;
        self.block(op(client))?.map_err(|e| StoreError::ZooKeeper(format!("{}: {e}", doing())))
    }

    fn pointer(&self, node: &str) -> Result<Option<Pointer>, StoreError> {
        let path = node.to_owned();
        let data = self.call(
            || format!("reading {node}"),
            |c| async move {
                match c.get_data(&path).await {
                    Ok((data, _)) => Ok(Some(data)),
                    Err(zk::Error::NoNode) => Ok(None),
                    Err(e) => Err(e),
                }
            },
        )?;
        let Some(data) = data else { return Ok(None) };
        let corrupt = |reason: String| StoreError::Corrupt { what: format!("the ZooKeeper node {node}"), reason };
        let p: Pointer = serde_json::from_slice(&data).map_err(|e| corrupt(e.to_string()))?;
        if !relative(&p.path) {
            return Err(corrupt(format!("it points outside the storageDir: {:?}", p.path)));
        }
        Ok(Some(p))
    }
}

impl Drop for ZkJobStore {
    fn drop(&mut self) {
        // A runtime must not be dropped where blocking is forbidden (inside
        // another runtime's task); this returns at once anywhere.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// A path of plain components only: no `..`, no root.
fn relative(path: &str) -> bool {
    !path.is_empty() && Path::new(path).components().all(|c| matches!(c, Component::Normal(_)))
}

/// Sets `node` to `data` (creating it and its parents if needed) if
/// `guard` exists, in one multi-operation; `Ok(false)` if it does not.
async fn write_guarded(client: zk::Client, guard: String, node: String, data: Vec<u8>) -> Result<bool, zk::Error> {
    let options = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
    let exists = client.check_stat(&node).await?.is_some();
    if !exists {
        if let Some((parent, _)) = node.rsplit_once('/') {
            client.mkdir(parent, &options).await?;
        }
    }
    let mut writer = client.new_check_writer(&guard, None)?;
    if exists {
        writer.add_set_data(&node, &data, None)?;
    } else {
        writer.add_create(&node, &data, &options)?;
    }
    match writer.commit().await {
        Ok(_) => Ok(true),
        Err(zk::CheckWriteError::CheckFailed { .. }) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Deletes `node` if `guard` exists; `Ok(false)` if it does not.
async fn delete_guarded(client: zk::Client, guard: Option<String>, node: String) -> Result<bool, zk::Error> {
    let Some(guard) = guard else {
        return match client.delete(&node, None).await {
            Ok(()) | Err(zk::Error::NoNode) => Ok(true),
            Err(e) => Err(e),
        };
    };
    let mut writer = client.new_check_writer(&guard, None)?;
    writer.add_delete(&node, None)?;
    match writer.commit().await {
        Ok(_) | Err(zk::CheckWriteError::OperationFailed { source: zk::Error::NoNode, .. }) => Ok(true),
        Err(zk::CheckWriteError::CheckFailed { .. }) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Sets `node` to `data`, creating it (and its parents) if needed.
async fn upsert(client: zk::Client, node: String, data: Vec<u8>) -> Result<(), zk::Error> {
    match client.set_data(&node, &data, None).await {
        Ok(_) => return Ok(()),
        Err(zk::Error::NoNode) => {}
        Err(e) => return Err(e),
    }
    let options = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
    if let Some((parent, _)) = node.rsplit_once('/') {
        client.mkdir(parent, &options).await?;
    }
    match client.create(&node, &data, &options).await {
        Ok(_) => Ok(()),
        Err(zk::Error::NodeExists) => client.set_data(&node, &data, None).await.map(|_| ()),
        Err(e) => Err(e),
    }
}

impl JobStore for ZkJobStore {
    fn describe(&self) -> String {
        format!(
            "{} with pointers in ZooKeeper {} at {}",
            self.payloads.describe(),
            self.config.quorum,
            self.config.paths.base()
        )
    }

    fn put(&self, job: JobId, entry: Entry, payload: &[u8]) -> Result<(), StoreError> {
        let node = self.node(job, entry);
        let old = self.pointer(&node).unwrap_or(None);
        let file = format!("jobs/{job}/{}-{:016x}.bin", entry.name(), rand::random::<u64>());
        self.payloads.write(&file, payload)?;
        let pointer = Pointer { path: file, sha256: digest(payload) };
        let data = serde_json::to_vec(&pointer).unwrap_or_default();
        let guard = self.guard_node();
        let moved = {
            let (label, target, guard) = (format!("writing {node}"), node.clone(), guard.clone());
            self.call(
                || label.clone(),
                |c| async move {
                    match guard {
                        Some(g) => write_guarded(c, g, target, data).await,
                        None => upsert(c, target, data).await.map(|()| true),
                    }
                },
            )
        };
        let refused = match moved {
            Ok(true) => None,
            Ok(false) => Some(StoreError::NotLeading(guard.unwrap_or_default())),
            Err(e) => Some(e),
        };
        if let Some(e) = refused {
            let _ = self.payloads.remove(&pointer.path);
            return Err(e);
        }
        if let Some(old) = old.filter(|o| o.path != pointer.path) {
            let _ = self.payloads.remove(&old.path);
        }
        Ok(())
    }

    fn get(&self, job: JobId, entry: Entry) -> Result<Option<Vec<u8>>, StoreError> {
        let node = self.node(job, entry);
        let Some(pointer) = self.pointer(&node)? else { return Ok(None) };
        let what = || format!("the {} of job {job}", entry.name());
        let path = &pointer.path;
        let Some(payload) = self.payloads.read(path, what)? else {
            return Err(StoreError::Corrupt {
                what: what(),
                reason: format!("{node} points to `{path}` in {}, which is missing", self.payloads.describe()),
            });
        };
        if digest(&payload) != pointer.sha256 {
            return Err(StoreError::Corrupt {
                what: what(),
                reason: format!("`{path}` is not the payload {node} points to (digest differs)"),
            });
        }
        Ok(Some(payload))
    }

    fn guard(&self, node: Option<String>) {
        *self.guard.lock().unwrap_or_else(|p| p.into_inner()) = node;
    }

    fn jobs(&self) -> Result<Vec<JobId>, StoreError> {
        let mut ids = Vec::new();
        for entry in Entry::ALL {
            let dir = self.config.paths.store_dir(entry.zk_dir());
            let path = dir.clone();
            let children = self.call(
                || format!("listing {dir}"),
                |c| async move {
                    match c.list_children(&path).await {
                        Ok(children) => Ok(children),
                        Err(zk::Error::NoNode) => Ok(Vec::new()),
                        Err(e) => Err(e),
                    }
                },
            )?;
            ids.extend(children.iter().filter_map(|c| JobId::parse(c)));
        }
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    fn remove(&self, job: JobId) -> Result<(), StoreError> {
        for entry in Entry::ALL {
            let node = self.node(job, entry);
            let (path, guard) = (node.clone(), self.guard_node());
            let deleted = self.call(|| format!("deleting {node}"), |c| delete_guarded(c, guard.clone(), path))?;
            if !deleted {
                return Err(StoreError::NotLeading(guard.unwrap_or_default()));
            }
        }
        self.payloads.remove_all(&format!("jobs/{job}"))
    }
}

#[cfg(test)]
mod tests {
    use super::relative;

    #[test]
    fn pointers_stay_inside_the_storage_dir() {
        assert!(relative("jobs/abc/submission-0011.bin"));
        for bad in ["", "/etc/passwd", "../x", "jobs/../../x", "./x"] {
            assert!(!relative(bad), "{bad}");
        }
    }
}
