//! The object-storage backend of checkpoints (`ObjectStoreStorage`, through
//! the `Storages` router the runtime uses) against a real S3-protocol
//! server (`tests/support/s3.rs`): state files and `_metadata` round-trip,
//! `_metadata` is what completes a checkpoint, nothing is written into a
//! checkpoint that was never prepared or was removed, listing and removal
//! work by checkpoint, a corrupt state file falls back to an older
//! checkpoint, and a server that is gone is a failure to read, not
//! corruption.

mod support;

use flowc_runtime::checkpoint::fallback::{choose_restore, RestoreOutcome};
use flowc_runtime::checkpoint::format::{encode, CheckpointMetadata, TaskEntry, TaskState, STATE_MAGIC};
use flowc_runtime::checkpoint::storage::{CheckpointStorage, S3Settings, Storages, PREPARED_MARKER};
use flowc_runtime::checkpoint::CheckpointRef;
use std::path::{Path, PathBuf};
use support::s3::{unique_bucket, S3};

fn settings(endpoint: String) -> S3Settings {
    S3Settings {
        endpoint,
        access_key: "flowc-test".into(),
        secret_key: "flowc-test-secret".into(),
        path_style: true,
        region: "us-east-1".into(),
    }
}

/// A storage on the shared server and a fresh bucket.
fn storage(test: &str) -> (Storages, String) {
    let s3 = S3::shared();
    let bucket = unique_bucket(test);
    s3.create_bucket(&bucket).expect("create bucket");
    (Storages::new(settings(s3.endpoint())), bucket)
}

fn metadata(id: u64, files: &[&str]) -> CheckpointMetadata {
    CheckpointMetadata {
        job_id: "j".into(),
        job_name: "j".into(),
        checkpoint_id: id,
        savepoint: false,
        timestamp: 0,
        max_parallelism: 128,
        tasks: files
            .iter()
            .enumerate()
            .map(|(i, f)| TaskEntry {
                vertex: Default::default(),
                vertex_name: "v".into(),
                subtask: i as u32,
                parallelism: files.len() as u32,
                operators: Vec::new(),
                file: Some(f.to_string()),
                size: 1,
            })
            .collect(),
    }
}

fn state(subtask: u32) -> Vec<u8> {
    encode(STATE_MAGIC, &TaskState { vertex: Default::default(), subtask, operators: Vec::new() })
}

/// A complete checkpoint `id` of two state files under `base`.
fn complete(s: &Storages, base: &Path, id: u64) -> PathBuf {
    let chk = base.join(format!("chk-{id}"));
    s.prepare(&chk).expect("prepare");
    for subtask in 0..2 {
        s.write_state(&chk, &format!("v-{subtask}.state"), &state(subtask)).expect("state");
    }
    s.write_metadata(&chk, &metadata(id, &["v-0.state", "v-1.state"])).expect("metadata");
    chk
}

#[test]
fn metadata_completes_a_checkpoint_and_nothing_goes_where_none_was_prepared() -> anyhow::Result<()> {
    let (s, bucket) = storage("metadata-last");
    let s3 = S3::shared();
    let base = PathBuf::from(format!("s3://{bucket}/ckpt/job"));
    let chk = base.join("chk-1");

    // Not prepared: no state file, no _metadata, nothing in the bucket.
    assert!(s.write_state(&chk, "v-0.state", &state(0)).is_err());
    assert!(s.write_metadata(&chk, &metadata(1, &[])).is_err());
    assert_eq!(s3.list(&bucket, "")?, Vec::<String>::new());

    s.prepare(&chk)?;
    s.write_state(&chk, "v-0.state", &state(0))?;
    assert_eq!(s.read(&chk.join("v-0.state"))?, state(0));
    // State files without _metadata: not a checkpoint, and never will be.
    let e = s.validate(&chk).expect_err("no _metadata yet");
    assert!(e.is_corruption() && e.to_string().contains("no _metadata"), "{e}");
    assert!(s.read_metadata(&chk).is_err());

    s.write_metadata(&chk, &metadata(1, &["v-0.state"]))?;
    assert_eq!(s.validate(&chk)?.checkpoint_id, 1);
    assert_eq!(
        s3.list(&bucket, "ckpt/")?,
        ["_metadata", PREPARED_MARKER, "v-0.state"].map(|f| format!("ckpt/job/chk-1/{f}")).to_vec()
    );

    // A listed state file that is missing makes the checkpoint invalid.
    s.write_metadata(&chk, &metadata(1, &["v-0.state", "v-1.state"]))?;
    let e = s.validate(&chk).expect_err("v-1.state is missing");
    assert!(e.is_corruption() && e.to_string().contains("v-1.state"), "{e}");
    Ok(())
}

#[test]
fn checkpoints_are_listed_and_removed_one_by_one() -> anyhow::Result<()> {
    let (s, bucket) = storage("list-remove");
    let s3 = S3::shared();
    let base = PathBuf::from(format!("s3://{bucket}/ckpt/job"));
    for id in [1, 2, 10] {
        complete(&s, &base, id);
    }
    s3.put(&bucket, "ckpt/job/shared/x", b"not a checkpoint")?;
    let mut listed = s.list(&base)?;
    listed.sort();
    assert_eq!(listed, [1, 2, 10].map(|n| (n, base.join(format!("chk-{n}")))).to_vec());
    assert_eq!(s.list(&PathBuf::from(format!("s3://{bucket}/nothing")))?, Vec::new());

    // chk-1 goes, chk-10 (whose key starts the same) stays.
    s.remove(&base.join("chk-1"))?;
    s.remove(&base.join("chk-1"))?;
    let keys = s3.list(&bucket, "ckpt/job/chk-1")?;
    assert!(keys.iter().all(|k| k.starts_with("ckpt/job/chk-10/")) && keys.len() == 4, "{keys:?}");
    assert_eq!(s.validate(&base.join("chk-10"))?.checkpoint_id, 10);

    // A late writer into a removed checkpoint writes nothing.
    assert!(s.write_state(&base.join("chk-1"), "v-0.state", &state(0)).is_err());
    assert!(s3.list(&bucket, "ckpt/job/chk-1/")?.is_empty());

    s.remove(&base)?;
    assert_eq!(s3.list(&bucket, "")?, Vec::<String>::new());
    assert!(s.remove(&PathBuf::from(format!("s3://{bucket}"))).is_err(), "never a whole bucket");
    Ok(())
}

#[test]
fn a_corrupt_checkpoint_on_s3_falls_back_to_the_one_before() -> anyhow::Result<()> {
    let (s, bucket) = storage("fallback");
    let base = PathBuf::from(format!("s3://{bucket}/ckpt/job"));
    let candidates: Vec<CheckpointRef> =
        [3, 2].map(|id| CheckpointRef { id, dir: complete(&s, &base, id), savepoint: false }).to_vec();
    let mut bytes = state(1);
    let at = bytes.len() / 2;
    bytes[at] ^= 0x5a;
    // Overwritten through the storage (the server refuses an unsigned
    // overwrite of a signed object); the checkpoint is still prepared.
    s.write_state(&base.join("chk-3"), "v-1.state", &bytes)?;
    let choice = choose_restore(candidates, &s);
    assert_eq!(choice.skipped.len(), 1, "{:?}", choice.skipped);
    assert_eq!(choice.skipped[0].0.id, 3);
    assert!(choice.skipped[0].1.to_string().contains("v-1.state"), "{}", choice.skipped[0].1);
    match choice.outcome {
        RestoreOutcome::Chosen(p) => {
            assert_eq!(p.checkpoint.id, 2);
            assert_eq!(p.checkpoint.location(), format!("s3://{bucket}/ckpt/job/chk-2"));
        }
        other => panic!("expected checkpoint 2, got {other:?}"),
    }
    Ok(())
}

#[test]
fn a_server_that_is_gone_is_a_failure_to_read_not_corruption() {
    let s = Storages::new(settings(format!("http://127.0.0.1:{}", support::free_port())));
    let chk = PathBuf::from("s3://gone/ckpt/job/chk-1");
    let e = s.validate(&chk).expect_err("nobody listens");
    assert!(!e.is_corruption(), "a passing failure must not skip the checkpoint: {e}");
    assert!(s.prepare(&chk).is_err());
}
