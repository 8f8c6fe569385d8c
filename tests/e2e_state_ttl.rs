//! End to end: state TTL is cleaned by timers and the checkpoints show it.
//! Two jobs run side by side on one cluster, each a running count per user
//! over a paced source where every record is a new user: one keeps its
//! keys for ever, the other with `ttl 1s`. Read over REST, the forever
//! job's checkpoints grow with every key it has seen; the TTL job's stay
//! at the keys of about the last second.

mod support;

use std::time::Duration;
use support::cluster::{Cluster, Scratch};

fn job(dir: &Scratch, name: &str, ttl: &str) -> std::path::PathBuf {
    let path = dir.0.join(format!("{name}.flow"));
    let text = format!(
        r#"job "Visits per user, {name}"
set execution.checkpointing.interval = 500ms
schema Visit {{ user: long, page: string }}
source datagen {{ schema: Visit, rate: 2000, user: sequence(1, 1) }}
    | key_by user
    | aggregate {{ user, visits: count() }} {ttl}
    | sink discard
"#
    );
    std::fs::write(&path, text).expect("job file");
    path
}

/// The size of the job's latest completed checkpoint, once it has
/// completed at least `n`.
fn size_after(cluster: &Cluster, id: &str, n: i64) -> i64 {
    cluster.wait_for(&format!("checkpoint {n} of {id}"), Duration::from_secs(60), |c| {
        (c.metric(id, "numberOfCompletedCheckpoints")? >= n).then(|| c.metric(id, "lastCheckpointSize"))?
    })
}

#[test]
fn expired_keys_leave_the_checkpoints_and_kept_keys_fill_them() {
    let cluster = Cluster::start("state-ttl", 1, 2);
    cluster.wait_for_taskmanagers(1);
    let jobs = Scratch::new("state-ttl-jobs");
    let forever = cluster.submit(&job(&jobs, "forever", ""), &["-p", "1"]);
    let expiring = cluster.submit(&job(&jobs, "ttl", "ttl 1s"), &["-p", "1"]);
    cluster.wait_all_tasks(&forever, "RUNNING", Duration::from_secs(30));
    cluster.wait_all_tasks(&expiring, "RUNNING", Duration::from_secs(30));

    // About 2 s in, then about 6 s later: 2,000 new users a second.
    let (forever_early, expiring_early) = (size_after(&cluster, &forever, 4), size_after(&cluster, &expiring, 4));
    let (forever_late, expiring_late) = (size_after(&cluster, &forever, 16), size_after(&cluster, &expiring, 16));
    let sizes = format!(
        "forever: {forever_early} then {forever_late} bytes; ttl 1s: {expiring_early} then {expiring_late} bytes"
    );
    eprintln!("{sizes}");
    assert!(forever_late >= 2 * forever_early, "the kept keys did not accumulate: {sizes}");
    assert!(
        expiring_late * 2 <= forever_late,
        "the expired keys stayed in the checkpoints: {sizes}\n{}",
        cluster.logs()
    );
}
