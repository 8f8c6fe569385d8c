//! End to end against a real ZooKeeper: JobManager leader election and
//! leader retrieval (`flowc_runtime::ha`).
//!
//! Three contenders, each on its own ZooKeeper session as three JobManager
//! processes would be: exactly one leads and publishes its addresses and a
//! leader session id. When the leader resigns it stops leading at once and
//! the next one in line leads under a new id, which a retriever sees; when
//! that one's task is gone (its session closed with it), the third leads.
//!
//! Fast failover: a leader whose RPC port stops listening while its
//! session lives on (what a SIGKILLed process looks like to the others
//! until its session expires) is replaced at once by the next in line,
//! and steps down itself when it finds its election node deleted; with
//! `high-availability.flowc.fast-failover: false` it is not replaced.
//!
//! Fencing on a live connection: a real `flowc taskmanager` finds a leader
//! (a contender here, whose RPC port the test serves) through ZooKeeper and
//! registers in its session; commands of another (a deposed) leader
//! session on that same connection are refused and counted, the leader's
//! own are carried out.

mod support;

use std::sync::Arc;
use std::time::Duration;

use flowc_runtime::config::Config;
use flowc_runtime::ha::zookeeper::{connect, current_leader, next_leader, Contender, Leadership};
use flowc_runtime::ha::{HaConfig, LeaderSessionId};
use flowc_runtime::ids::JobId;
use flowc_runtime::rpc::{self, ToJobManager, ToTaskManager};
use std::time::Instant;
use support::zookeeper::{unique_cluster_id, ZooKeeper};
use tokio::net::TcpListener;
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

/// A contender advertising the RPC address of `listener`, as a JobManager
/// advertises its bound RPC port.
async fn contend_at(config: &HaConfig, listener: &TcpListener) -> Running {
    let addr = listener.local_addr().expect("a bound listener");
    let contender = Arc::new(Contender::new(config, addr.to_string(), format!("http://{addr}")));
    let rx = contender.leadership();
    let c = Arc::clone(&contender);
    let task = tokio::spawn(async move { c.run().await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    Running { contender, task, rx }
}

/// Two contenders on listening ports; the first leads and the second has
/// probed it (seen it accept) for a while.
async fn leader_and_standby(config: &HaConfig) -> (Running, TcpListener, Running, TcpListener, Leadership) {
    let (l0, l1) =
        (TcpListener::bind("127.0.0.1:0").await.expect("bind"), TcpListener::bind("127.0.0.1:0").await.expect("bind"));
    let mut first = contend_at(config, &l0).await;
    let second = contend_at(config, &l1).await;
    let led = wait_for(&mut first.rx, true, Duration::from_secs(10)).await.expect("the first contender leads");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(*second.rx.borrow(), Leadership::Standby, "a listening leader is not deposed");
    (first, l0, second, l1, led)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_whose_rpc_port_refuses_connections_is_replaced_before_its_session_expires_and_steps_down() {
    let zk = ZooKeeper::shared();
    let mut config = ha_config(zk, &unique_cluster_id("fast-failover"));
    // A session that would take long to expire: the replacement must not wait for it.
    config.session_timeout = Duration::from_secs(10);
    let (mut first, l0, mut second, _l1, led) = leader_and_standby(&config).await;

    // The leader's port stops listening; its session (and node) live on.
    let closed = Instant::now();
    drop(l0);
    let next = wait_for(&mut second.rx, true, Duration::from_secs(5)).await.expect("the standby leads");
    let took = closed.elapsed();
    eprintln!("a leader whose port refuses connections was replaced in {} ms", took.as_millis());
    assert!(took < Duration::from_secs(3), "replaced only after {took:?}");
    assert_ne!(next, led, "a new term has a new leader session id");
    // The deposed one, alive after all, found its node deleted and stepped down.
    assert_eq!(wait_for(&mut first.rx, false, Duration::from_secs(5)).await, Some(Leadership::Standby));
    let reader = connect(&config).await.expect("a retriever's session");
    let now = current_leader(&reader, &config.paths).await.expect("reading the leader").expect("a leader");
    let Leadership::Leader(id) = next else { unreachable!() };
    assert_eq!(now.session(), Ok(id), "the leader information is the new leader's");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(matches!(*second.rx.borrow(), Leadership::Leader(_)), "the new leader keeps leading");
    assert_eq!(*first.rx.borrow(), Leadership::Standby, "the deposed one does not lead again");
    first.contender.resign();
    second.contender.resign();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_fast_failover_a_leader_whose_port_refuses_connections_keeps_leading() {
    let zk = ZooKeeper::shared();
    let mut config = ha_config(zk, &unique_cluster_id("no-fast-failover"));
    config.fast_failover = false;
    let (first, l0, second, _l1, _) = leader_and_standby(&config).await;
    drop(l0);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(matches!(*first.rx.borrow(), Leadership::Leader(_)), "the leader was deposed");
    assert_eq!(*second.rx.borrow(), Leadership::Standby);
    first.contender.resign();
    second.contender.resign();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taskmanager_refuses_and_counts_a_deposed_leaders_commands_on_a_live_connection() {
    let zk = ZooKeeper::shared();
    let cluster_id = unique_cluster_id("fencing");
    let config = ha_config(zk, &cluster_id);
    // The leader: a contender advertising a port this test serves.
    let rpc_port = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let mut leader = contend_at(&config, &rpc_port).await;
    let Some(Leadership::Leader(session)) = wait_for(&mut leader.rx, true, Duration::from_secs(10)).await else {
        panic!("the contender leads")
    };
    let deposed = LeaderSessionId::random();

    // A real TaskManager finds it through ZooKeeper.
    let scratch = support::cluster::Scratch::new("ha-fencing");
    let conf = scratch.0.join("flowc.yaml");
    std::fs::write(
        &conf,
        format!(
            "high-availability.type: zookeeper\n\
             high-availability.zookeeper.quorum: {}\n\
             high-availability.storageDir: {}\n\
             high-availability.cluster-id: {cluster_id}\n\
             high-availability.zookeeper.client.session-timeout: 2000\n\
             heartbeat.interval: 1000\n",
            zk.connect(),
            scratch.0.join("ha").display()
        ),
    )
    .expect("writing the config");
    let log = scratch.0.join("taskmanager.log");
    let out = std::fs::File::create(&log).expect("a log file");
    let tm = std::process::Command::new(support::cluster::flowc_bin())
        .args(["taskmanager", "--config"])
        .arg(&conf)
        .stdout(out.try_clone().expect("log"))
        .stderr(out)
        .env("FLOWC_LOG", "info")
        .spawn()
        .expect("starting a TaskManager");
    let mut tm = KilledOnDrop(tm);

    let (stream, _) = tokio::time::timeout(Duration::from_secs(30), rpc_port.accept())
        .await
        .expect("the TaskManager connects within 30 s")
        .expect("accept");
    let (mut r, mut w) = stream.into_split();
    let body = rpc::read_body(&mut r).await.expect("a registration");
    let Ok(ToJobManager::Register(reg)) = rpc::decode::<ToJobManager>(&body) else { panic!("not a registration") };
    assert_eq!(reg.leader_session, Some(session), "it registers in the session it found in ZooKeeper");
    let registered = ToTaskManager::Registered { tm_id: reg.tm_id.clone(), proof: None, leader_session: Some(session) };
    rpc::write_frame(&mut w, &registered).await.expect("answer");

    // On the same live connection: two commands of a deposed leader's
    // session, then one of the leader's own.
    let job_id = JobId::random();
    let cancel = |leader_session| ToTaskManager::Cancel { job_id, attempt: 1, leader_session };
    rpc::write_frame(&mut w, &cancel(Some(deposed))).await.expect("send");
    let commit =
        ToTaskManager::CheckpointComplete { job_id, attempt: 1, checkpoint_id: 7, leader_session: Some(deposed) };
    rpc::write_frame(&mut w, &commit).await.expect("send");
    rpc::write_frame(&mut w, &cancel(Some(session))).await.expect("send");

    let text = |p: &std::path::Path| std::fs::read_to_string(p).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(20);
    while text(&log).matches("Refused a command of another leader session").count() < 2 {
        assert!(Instant::now() < deadline, "the deposed session's commands were not refused:\n{}", text(&log));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The connection lives on: the TaskManager still sends its heartbeats on it.
    let heartbeat = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match rpc::read_frame::<_, ToJobManager>(&mut r).await {
                Ok(ToJobManager::Heartbeat { .. }) => return true,
                Ok(_) => {}
                Err(_) => return false,
            }
        }
    })
    .await;
    assert_eq!(heartbeat.ok(), Some(true), "the connection ended:\n{}", text(&log));
    tm.kill();
    let log_text = text(&log);
    assert_eq!(log_text.matches("Refused a command of another leader session").count(), 2, "{log_text}");
    assert!(log_text.contains("refused=2"), "the second refusal counts two: {log_text}");
    assert!(log_text.contains(&deposed.to_string()), "the refusal names the deposed session: {log_text}");
    leader.contender.resign();
}

/// A child process that is SIGKILLed when dropped, on success and panic alike.
struct KilledOnDrop(std::process::Child);

impl KilledOnDrop {
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for KilledOnDrop {
    fn drop(&mut self) {
        self.kill();
    }
}
