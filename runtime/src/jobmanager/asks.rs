//! Questions the JobManager asks a TaskManager about its process (its logs,
//! its threads) for REST: each gets a number, its answer comes back over
//! the TaskManager's RPC connection with that number, and an answer that
//! does not come in time is given up on.

use super::shell::JobManager;
use crate::diagnostics::{ProcessAnswer, ProcessRequest};
use crate::rpc::ToTaskManager;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::oneshot;

/// How long REST waits for a TaskManager's answer.
pub const ASK_TIMEOUT: Duration = Duration::from_secs(10);

static NEXT: AtomicU64 = AtomicU64::new(1);
static WAITING: Mutex<Option<HashMap<u64, oneshot::Sender<ProcessAnswer>>>> = Mutex::new(None);

fn waiting() -> std::sync::MutexGuard<'static, Option<HashMap<u64, oneshot::Sender<ProcessAnswer>>>> {
    WAITING.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// An answer came in; an answer nobody waits for any more is dropped.
pub fn deliver(request_id: u64, answer: ProcessAnswer) {
    if let Some(tx) = waiting().as_mut().and_then(|m| m.remove(&request_id)) {
        let _ = tx.send(answer);
    }
}

impl JobManager {
    /// Asks TaskManager `tm` about its process; why not, if it cannot answer.
    pub async fn ask_taskmanager(&self, tm: &str, request: ProcessRequest) -> Result<ProcessAnswer, String> {
        let request_id = NEXT.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        waiting().get_or_insert_with(HashMap::new).insert(request_id, tx);
        let sent =
            self.lock().tms.get(tm).is_some_and(|e| e.tx.send(ToTaskManager::Ask { request_id, request }).is_ok());
        let result = if !sent {
            Err(format!("TaskManager {tm} is not connected"))
        } else {
            match tokio::time::timeout(ASK_TIMEOUT, rx).await {
                Ok(Ok(a)) => Ok(a),
                Ok(Err(_)) => Err(format!("TaskManager {tm} did not answer")),
                Err(_) => Err(format!("TaskManager {tm} did not answer within {} s", ASK_TIMEOUT.as_secs())),
            }
        };
        if let Some(m) = waiting().as_mut() {
            m.remove(&request_id);
        }
        result
    }
}
