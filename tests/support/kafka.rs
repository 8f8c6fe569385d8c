//! A real Apache Kafka for the end-to-end tests.
//!
//! [`Kafka::shared`] gives every test of a test binary the same broker:
//!
//! - with `FLOWC_TEST_KAFKA=host:port` set (as `.ci/run` does), that broker;
//! - otherwise it runs `playground/kafka/kafka.sh fetch` (Kafka's jars from
//!   Maven Central, cached in `~/.cache/flowc`) and starts a one-node KRaft
//!   broker on free ports in a fresh temporary directory. The script is
//!   given `--parent-pid <this process> --cleanup`: a small watchdog stops
//!   the broker and deletes its directory as soon as the test process is
//!   gone, however it ended (success, panic, `kill -9`).
//!
//! Tests share the broker, so each one uses its own topics: make names with
//! [`unique_topic`] and create them with [`create_topic`].

use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context as _};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::types::RDKafkaErrorCode;

/// Environment variable naming an already running broker (`host:port`).
pub const ENV_BROKER: &str = "FLOWC_TEST_KAFKA";

/// The broker the tests of this process use.
#[derive(Debug)]
pub struct Kafka {
    bootstrap: String,
    /// State directory of a broker this process started (deleted by the
    /// watchdog when the process exits); `None` for `FLOWC_TEST_KAFKA`.
    dir: Option<PathBuf>,
}

impl Kafka {
    /// The broker shared by all tests of this process, started on first use.
    ///
    /// Panics (failing the calling test) with the script's output if Kafka
    /// cannot be fetched or started; later calls report the same error.
    pub fn shared() -> &'static Kafka {
        static SHARED: OnceLock<Result<Kafka, String>> = OnceLock::new();
        let result = SHARED.get_or_init(|| {
            let started = Instant::now();
            let kafka = Kafka::from_env_or_start().map_err(|e| format!("{e:#}"))?;
            eprintln!(
                "test support: Kafka at {} ({}; ready after {:.1} s)",
                kafka.bootstrap,
                kafka
                    .dir
                    .as_deref()
                    .map_or_else(|| format!("from {ENV_BROKER}"), |d| format!("started in {}", d.display())),
                started.elapsed().as_secs_f64()
            );
            Ok(kafka)
        });
        match result {
            Ok(kafka) => kafka,
            Err(e) => panic!("no Kafka for the tests: {e}"),
        }
    }

    /// `host:port` for `bootstrap.servers`.
    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    /// The directory of a broker this process started (its log is
    /// `kafka.log` there), or `None` if the broker came from
    /// `FLOWC_TEST_KAFKA`.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    fn from_env_or_start() -> anyhow::Result<Kafka> {
        match std::env::var(ENV_BROKER) {
            Ok(addr) if !addr.trim().is_empty() => Ok(Kafka { bootstrap: addr.trim().to_owned(), dir: None }),
            _ => start_private_broker(),
        }
    }
}

impl fmt::Display for Kafka {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.bootstrap)
    }
}

/// `playground/kafka/kafka.sh` of this checkout.
pub fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("playground/kafka/kafka.sh")
}

fn run_script(args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("bash")
        .arg(script())
        .args(args)
        .output()
        .with_context(|| format!("running bash {}", script().display()))?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if !out.status.success() {
        bail!("kafka.sh {} failed ({}):\n{text}", args.join(" "), out.status);
    }
    Ok(text)
}

fn start_private_broker() -> anyhow::Result<Kafka> {
    run_script(&["fetch"])?;
    let mut last_error = None;
    // The free ports can be taken by someone else before Kafka binds them:
    // then try other ones.
    for _attempt in 0..3 {
        let ports = super::free_ports(2);
        let (port, cport) = (ports[0].to_string(), ports[1].to_string());
        let dir = std::env::temp_dir().join(format!("flowc-test-kafka-{}-{}", std::process::id(), unique_suffix()));
        let dir_arg = dir.to_string_lossy().into_owned();
        let parent = std::process::id().to_string();
        let args = [
            "start",
            "--dir",
            &dir_arg,
            "--port",
            &port,
            "--controller-port",
            &cport,
            "--partitions",
            "2",
            "--parent-pid",
            &parent,
            "--cleanup",
        ];
        match run_script(&args) {
            Ok(_) => return Ok(Kafka { bootstrap: format!("127.0.0.1:{port}"), dir: Some(dir) }),
            Err(e) if e.to_string().contains("already in use") => last_error = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last_error.unwrap_or_else(|| anyhow!("could not start Kafka")))
}

fn unique_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    format!("{}-{nanos:08x}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// A topic name no other test (in this or another process) uses:
/// `<prefix>-<pid>-<counter>-<nanos>`. Legal for Kafka as long as `prefix`
/// is (letters, digits, `.`, `_`, `-`).
pub fn unique_topic(prefix: &str) -> String {
    format!("{prefix}-{}-{}", std::process::id(), unique_suffix())
}

/// Creates `name` with `partitions` partitions (replication factor 1) on
/// the broker at `bootstrap`, and waits until every partition has a leader,
/// so that producers and consumers can use it at once. An existing topic is
/// accepted as it is.
pub fn create_topic(bootstrap: &str, name: &str, partitions: i32) -> anyhow::Result<()> {
    create_topic_with(bootstrap, name, partitions, &[])
}

/// [`create_topic`] with topic configs.
pub fn create_topic_with(bootstrap: &str, name: &str, partitions: i32, configs: &[(&str, &str)]) -> anyhow::Result<()> {
    let timeout = Duration::from_secs(30);
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", bootstrap).create().context("creating a Kafka admin client")?;
    let mut topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    for (k, v) in configs {
        topic = topic.set(k, v);
    }
    let opts = AdminOptions::new().operation_timeout(Some(timeout)).request_timeout(Some(timeout));
    let results = block_on(admin.create_topics([&topic], &opts))
        .with_context(|| format!("creating topic {name:?} on {bootstrap}"))?;
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => bail!("creating topic {topic:?} on {bootstrap}: {code}"),
        }
    }
    let deadline = Instant::now() + timeout;
    loop {
        match topic_partitions(bootstrap, name) {
            Ok(Some(n)) if n == partitions => return Ok(()),
            Ok(_) | Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            Ok(n) => bail!(
                "topic {name:?} on {bootstrap} has {n:?} partitions with a leader after {} s, expected {partitions}",
                timeout.as_secs()
            ),
            Err(e) => return Err(e),
        }
    }
}

/// As [`create_topic`], with `cleanup.policy=compact` (a changelog: Kafka
/// keeps the last record of each key).
pub fn create_compacted_topic(bootstrap: &str, name: &str, partitions: i32) -> anyhow::Result<()> {
    create_topic_with(bootstrap, name, partitions, &[("cleanup.policy", "compact")])
}

/// The number of partitions of `topic` that have a leader, or `None` if the
/// broker does not know the topic.
pub fn topic_partitions(bootstrap: &str, topic: &str) -> anyhow::Result<Option<i32>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("allow.auto.create.topics", "false")
        .create()
        .context("creating a Kafka consumer for metadata")?;
    let md = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .with_context(|| format!("reading metadata of {topic:?} from {bootstrap}"))?;
    let Some(t) = md.topics().iter().find(|t| t.name() == topic) else {
        return Ok(None);
    };
    if t.error().is_some() || t.partitions().is_empty() {
        return Ok(None);
    }
    let led = t.partitions().iter().filter(|p| p.leader() >= 0).count();
    Ok(Some(i32::try_from(led).unwrap_or(i32::MAX)))
}

/// The end offset (high watermark) of each partition of `topic`, for
/// failure messages: how much was written, whatever a reader saw.
pub fn end_offsets(bootstrap: &str, topic: &str) -> Vec<(i32, Result<i64, String>)> {
    let Ok(consumer) = ClientConfig::new().set("bootstrap.servers", bootstrap).create::<BaseConsumer>() else {
        return Vec::new();
    };
    let parts = topic_partitions(bootstrap, topic).ok().flatten().unwrap_or(0);
    (0..parts)
        .map(|p| {
            let end = consumer
                .fetch_watermarks(topic, p, Duration::from_secs(5))
                .map(|(_, hi)| hi)
                .map_err(|e| e.to_string());
            (p, end)
        })
        .collect()
}

/// Runs a future to completion on this thread. rdkafka's admin futures are
/// completed by its own background thread, so no async runtime is needed.
fn block_on<F: Future>(fut: F) -> F::Output {
    struct ThreadWaker(std::thread::Thread);
    impl Wake for ThreadWaker {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    loop {
        match fut.as_mut().poll(&mut cx) {
            Poll::Ready(out) => return out,
            Poll::Pending => std::thread::park(),
        }
    }
}

/// The first `partitions` partitions of `topic` compacted by key: the
/// latest value of every key (a tombstone removes it), keys as `key` reads
/// them. Panics on a message without a key or a value that is not JSON.
pub fn compacted(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    key: impl Fn(&[u8]) -> String,
) -> std::collections::BTreeMap<String, serde_json::Value> {
    use rdkafka::message::Message;
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("reader-{topic}"))
        .set("enable.auto.commit", "false")
        .create()
        .expect("a Kafka consumer");
    let mut tpl = rdkafka::TopicPartitionList::new();
    let mut ends = Vec::new();
    for p in 0..partitions {
        let (_, hi) = consumer.fetch_watermarks(topic, p, Duration::from_secs(10)).expect("watermarks");
        tpl.add_partition_offset(topic, p, rdkafka::Offset::Beginning).expect("partition");
        ends.push(hi);
    }
    consumer.assign(&tpl).expect("assign");
    let mut read = vec![0i64; ends.len()];
    let mut table = std::collections::BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while (0..ends.len()).any(|p| read[p] < ends[p]) && Instant::now() < deadline {
        let Some(m) = consumer.poll(Duration::from_millis(200)) else { continue };
        let m = m.expect("a message");
        read[m.partition() as usize] = m.offset() + 1;
        let k = key(m.key().expect("every message has a key"));
        match m.payload() {
            Some(v) => {
                table.insert(k, serde_json::from_slice(v).expect("a JSON value"));
            }
            None => {
                table.remove(&k);
            }
        }
    }
    table
}

/// Every message of `topic` up to its end, each value as JSON (`null` for
/// one that is not), waiting up to a minute for the topic.
pub fn read_json(bootstrap: &str, topic: &str) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    flowc_playground::kafka::read_topic(
        bootstrap,
        topic,
        Duration::from_secs(60),
        |r| out.push(serde_json::from_slice(r.payload).unwrap_or(serde_json::Value::Null)),
        || true,
    )
    .expect("reading");
    out
}

/// Every committed message of `topics` (each with its partition count),
/// read from the beginning and mapped by `each`, until `want` are in and
/// `quiet` longer (anything more would be a duplicate), or `timeout`.
#[allow(dead_code)] // not every test binary reads this way
pub fn read_committed<T>(
    bootstrap: &str,
    topics: &[(&str, i32)],
    want: usize,
    timeout: Duration,
    quiet: Duration,
    mut each: impl FnMut(&rdkafka::message::BorrowedMessage<'_>) -> T,
) -> Vec<T> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("reader-{}", topics[0].0))
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()
        .expect("a Kafka consumer");
    let mut tpl = rdkafka::TopicPartitionList::new();
    for (t, partitions) in topics {
        for p in 0..*partitions {
            tpl.add_partition_offset(t, p, rdkafka::Offset::Beginning).expect("partition");
        }
    }
    consumer.assign(&tpl).expect("assign");
    let mut out = Vec::new();
    let deadline = Instant::now() + timeout;
    let mut quiet_until: Option<Instant> = None;
    while Instant::now() < deadline && quiet_until.is_none_or(|q| Instant::now() < q) {
        let Some(m) = consumer.poll(Duration::from_millis(200)) else { continue };
        out.push(each(&m.expect("a message")));
        if out.len() >= want && quiet_until.is_none() {
            quiet_until = Some(Instant::now() + quiet);
        }
    }
    out
}
