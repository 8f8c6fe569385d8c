//! The HA job store in files: round trips, atomic replacement, corrupt
//! entries refused without stopping a recovery, and the choice of store
//! from the configuration. The ZooKeeper store is tested against a real
//! ZooKeeper in `tests/e2e_ha_store.rs`.

use super::*;
use crate::checkpoint::storage::S3Settings;
use crate::checkpoint::CheckpointRef;
use crate::config::Config;
use crate::ids::JobStatus;
use std::path::PathBuf;

fn scratch(name: &str) -> PathBuf {
    let d =
        std::env::temp_dir().join(format!("flowc-ha-store-{name}-{}-{:x}", std::process::id(), rand::random::<u32>()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn submission(name: &str) -> Submission {
    Submission { name: name.into(), submitted_ms: 42, plan: vec![1, 2, 3, 0, 255], artifacts: vec![vec![9; 10]] }
}

fn checkpoints() -> CheckpointStore {
    let mut c = CheckpointStore::new(None);
    for _ in 0..2 {
        let id = c.take_id();
        c.add(CheckpointRef { id, dir: PathBuf::from(format!("/c/chk-{id}")), savepoint: false }, 3);
    }
    c.take_id();
    c
}

#[test]
fn a_job_written_is_read_back_whole_and_a_result_forgets_it() {
    let dir = scratch("roundtrip");
    let jobs = HaJobs::new(Arc::new(FileJobStore::new(&dir)));
    let (a, b) = (JobId::random(), JobId::random());
    jobs.put_submission(a, &submission("a")).expect("put");
    jobs.put_checkpoints(a, &checkpoints()).expect("put");
    jobs.put_submission(b, &submission("b")).expect("put");
    let mut read = jobs.read_all().expect("read");
    read.sort_by_key(|j| j.submission.as_ref().map(|s| s.name.clone()));
    assert_eq!(read.len(), 2);
    assert_eq!(read[0].id, a);
    assert_eq!(read[0].submission, Some(submission("a")));
    assert_eq!(read[0].checkpoints, Some(checkpoints()));
    assert_eq!(read[0].checkpoints.as_ref().map(|c| c.clone().take_id()), Some(4), "the counter survives");
    assert_eq!((read[1].checkpoints.as_ref(), read[1].result), (None, None));
    // Replaced, not appended; nothing temporary is left behind.
    jobs.put_submission(a, &submission("a2")).expect("put");
    let files: Vec<String> = std::fs::read_dir(dir.join("jobs").join(a.to_string()))
        .expect("dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(files.iter().all(|f| f.ends_with(".bin")), "{files:?}");
    // An ended job is recorded, then forgotten.
    jobs.put_result(a, JobResult { status: JobStatus::FINISHED, end_ms: 7 }).expect("result");
    let read = jobs.read_all().expect("read");
    assert_eq!(read.iter().map(|j| j.id).collect::<Vec<_>>(), vec![b]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_result_left_by_a_crash_before_the_removal_is_read_so_the_job_is_not_rerun() {
    let dir = scratch("result");
    let store = Arc::new(FileJobStore::new(&dir));
    let jobs = HaJobs::new(store.clone());
    let id = JobId::random();
    jobs.put_submission(id, &submission("a")).expect("put");
    let result = JobResult { status: JobStatus::CANCELED, end_ms: 9 };
    store.put(id, Entry::Result, &serde_json::to_vec(&result).expect("json")).expect("put");
    let read = jobs.read_all().expect("read");
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].result, Some(result));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_corrupt_or_truncated_entry_is_refused_and_the_other_jobs_are_still_recovered() {
    let dir = scratch("corrupt");
    let store = Arc::new(FileJobStore::new(&dir));
    let jobs = HaJobs::new(store.clone());
    let (bad, good, cut) = (JobId::random(), JobId::random(), JobId::random());
    for id in [bad, good, cut] {
        jobs.put_submission(id, &submission("x")).expect("put");
        jobs.put_checkpoints(id, &checkpoints()).expect("put");
    }
    let flipped = dir.join("jobs").join(bad.to_string()).join("checkpoints.bin");
    let mut bytes = std::fs::read(&flipped).expect("read");
    let last = bytes.len() - 2;
    bytes[last] ^= 0x20;
    std::fs::write(&flipped, &bytes).expect("write");
    let truncated = dir.join("jobs").join(cut.to_string()).join("submission.bin");
    std::fs::write(&truncated, b"FLOWCHA1").expect("write");
    let err = store.get(bad, Entry::Checkpoints).expect_err("corrupt");
    assert!(err.to_string().contains("does not match its checksum"), "{err}");
    assert!(store.get(cut, Entry::Submission).expect_err("truncated").to_string().contains("truncated"));
    let read = jobs.read_all().expect("read");
    assert_eq!(read.iter().map(|j| j.id).collect::<Vec<_>>(), vec![good]);
    assert!(flipped.exists() && truncated.exists(), "left in place for the operator");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_settings_choose_no_store_files_or_zookeeper_under_the_cluster_id() {
    let ha = |pairs: &[(&str, &str)]| {
        let mut c = Config::default();
        for (k, v) in pairs {
            c.set(k, *v);
        }
        HaConfig::from_config(&c).expect("valid")
    };
    let ha_s3 = |pairs: &[(&str, &str)]| (ha(pairs), S3Settings::default());
    let from = |(ha, s3): (HaConfig, S3Settings)| HaJobs::from_config(&ha, &s3);
    assert!(from(ha_s3(&[])).expect("ok").is_none(), "no storageDir, no store");
    let dir = scratch("config");
    let (uri, plain) = (format!("file://{}", dir.display()), dir.display().to_string());
    let files =
        from(ha_s3(&[("high-availability.storageDir", uri.as_str()), ("high-availability.cluster-id", "prod")]))
            .expect("ok")
            .expect("a store");
    assert_eq!(files.describe(), format!("files under {}", dir.join("prod").display()));
    let zk = from(ha_s3(&[
        ("high-availability.type", "zookeeper"),
        ("high-availability.zookeeper.quorum", "127.0.0.1:1"),
        ("high-availability.storageDir", plain.as_str()),
    ]))
    .expect("ok")
    .expect("a store");
    assert!(zk.describe().contains("pointers in ZooKeeper 127.0.0.1:1 at /flink/default"), "{}", zk.describe());
    let s3 = from(ha_s3(&[("high-availability.storageDir", "s3://bucket/ha")])).expect("ok").expect("a store");
    assert_eq!(s3.describe(), "objects under s3://bucket/ha/default");
    let hdfs = from(ha_s3(&[("high-availability.storageDir", "hdfs://nn/ha")]));
    assert!(matches!(hdfs, Err(StoreError::UnsupportedScheme(_))));
}
