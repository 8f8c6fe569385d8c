//! End to end against a real ZooKeeper: JobManager leader election and
//! leader retrieval (`flowc_runtime::ha`).
//!
//! Three contenders, each on its own ZooKeeper session as three JobManager
//! processes would be: exactly one leads and publishes its addresses and a
//! leader session id. When the leader resigns it stops leading at once and
//! the next one in line leads under a new id, which a retriever sees; when
//! that one's task is gone (its session closed with it), the third leads.

mod support;

use std::sync::Arc;
use std::time::Duration;

use flowc_runtime::config::Config;
use flowc_runtime::ha::zookeeper::{connect, current_leader, next_leader, Contender, Leadership};
use flowc_runtime::ha::HaConfig;
use support::zookeeper::{unique_cluster_id, ZooKeeper};
use tokio::sync::watch;

fn ha_config(zk: &ZooKeeper, cluster_id: &str) -> HaConfig {
    let mut c = Config::default();
    c.set("high-availability.type", "zookeeper");
    c.set("high-availability.zookeeper.quorum", zk.connect());
    c.set("high-availability.storageDir", "/tmp/unused-by-this-test");
    c.set("high-availability.cluster-id", cluster_id);
    c.set("high-availability.zookeeper.client.session-timeout", "2000");
    HaConfig::from_config(&c).expect("valid HA config")
}

/// Waits until `rx` shows leadership (or not), for at most `within`.
async fn wait_for(rx: &mut watch::Receiver<Leadership>, leading: bool, within: Duration) -> Option<Leadership> {
    let done = tokio::time::timeout(within, rx.wait_for(|l| matches!(l, Leadership::Leader(_)) == leading)).await;
    done.ok().and_then(Result::ok).map(|l| *l)
}

struct Running {
    contender: Arc<Contender>,
    task: tokio::task::JoinHandle<()>,
    rx: watch::Receiver<Leadership>,
}

async fn contend(config: &HaConfig, n: usize) -> Running {
    let contender =
        Arc::new(Contender::new(config, format!("127.0.0.1:{}", 6100 + n), format!("http://127.0.0.1:{}", 8100 + n)));
    let rx = contender.leadership();
    let c = Arc::clone(&contender);
    let task = tokio::spawn(async move { c.run().await });
    // Join in order, so that the first one leads.
    tokio::time::sleep(Duration::from_millis(200)).await;
    Running { contender, task, rx }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_leads_and_the_next_in_line_takes_over_under_a_new_session_id() {
    let zk = ZooKeeper::shared();
    let config = ha_config(zk, &unique_cluster_id("election"));
    let mut all = Vec::new();
    for n in 0..3 {
        all.push(contend(&config, n).await);
    }
    let within = Duration::from_secs(10);
    let first = wait_for(&mut all[0].rx, true, within).await.expect("the first contender leads");
    for r in &all[1..] {
        assert_eq!(*r.rx.borrow(), Leadership::Standby, "only one leads");
    }

    let reader = connect(&config).await.expect("a retriever's session");
    let published = current_leader(&reader, &config.paths).await.expect("reading the leader").expect("a leader");
    assert_eq!(published.rpc_address, "127.0.0.1:6100");
    assert_eq!(published.rest_url, "http://127.0.0.1:8100");
    let Leadership::Leader(first_id) = first else { unreachable!() };
    assert_eq!(published.session(), Ok(first_id), "the published id is the leader's term");

    // The leader resigns (a JobManager shutting down): it leads no more at
    // once, its session closes and its nodes vanish.
    let Running { contender, task, mut rx } = all.remove(0);
    contender.resign();
    assert_eq!(wait_for(&mut rx, false, within).await, Some(Leadership::Standby), "a resigned leader leads no more");
    tokio::time::timeout(within, task).await.expect("run returns after resign").expect("the task ran to its end");

    let second = wait_for(&mut all[0].rx, true, within).await.expect("the next in line leads");
    assert_ne!(second, first, "a new term has a new leader session id");
    assert_eq!(*all[1].rx.borrow(), Leadership::Standby, "the third still waits");

    // The retriever may see "no leader" between the two terms.
    let changed = tokio::time::timeout(within, async {
        let mut known = Some(published.clone());
        loop {
            match next_leader(&reader, &config.paths, known.as_ref()).await.expect("retrieving the leader") {
                Some(info) => return info,
                None => known = None,
            }
        }
    })
    .await
    .expect("the retriever sees the new leader in time");
    assert_eq!(changed.rpc_address, "127.0.0.1:6101");
    let Leadership::Leader(second_id) = second else { unreachable!() };
    assert_eq!(changed.session(), Ok(second_id));

    // The second leader's task is gone without resigning: dropping its
    // client closes its session, and the third one leads.
    let Running { task, .. } = all.remove(0);
    task.abort();
    let third = wait_for(&mut all[0].rx, true, within).await.expect("the third leads");
    assert!(third != first && third != second, "each term has its own id");
    let now = current_leader(&reader, &config.paths).await.expect("reading the leader").expect("a leader");
    assert_eq!(now.rpc_address, "127.0.0.1:6102");
    all[0].contender.resign();
}
