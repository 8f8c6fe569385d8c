//! A Kafka source's offsets against a real broker: a checkpoint says where
//! every partition stands, even one nothing was read from yet, and the
//! consumer group's offsets move only when a checkpoint completes (Flink's
//! `notifyCheckpointComplete`).
//!
//! Before, a checkpoint taken before a partition's first record left the
//! partition out, and every snapshot committed its offsets at once. A
//! JobManager that died right after checkpoint 1 (taken before the first
//! record) and after checkpoint 2's snapshot then had its successor restore
//! checkpoint 1 and read from the group's offsets, those of checkpoint 2:
//! the records in between were lost (the HA tutorial's first window counted
//! 891 of 1000). And a savepoint taken before the first record resumed from
//! wherever the group was: the last test replays that with real processes.

mod support;

use flowc_compiler::ir::{DataType, ErrorPolicy, Field, Format, KafkaSource, Schema, StartingOffsets};
use flowc_runtime::checkpoint::SourceState;
use flowc_runtime::connectors::kafka::KafkaSourceReader;
use flowc_runtime::connectors::kafka_topics::Assignment;
use flowc_runtime::connectors::{SourcePoll, SourceReader};
use flowc_runtime::metrics::TaskCounters;
use flowc_runtime::record::Value;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::cluster::Cluster;
use support::kafka::{create_topic, unique_topic, Kafka};
use support::playground::{click_count_job, click_topics, expect_windows, load_events, START_MS};

/// Records 0..n, record `i` in partition `i % 2`.
fn produce(bootstrap: &str, topic: &str, range: std::ops::Range<i64>) {
    let producer: BaseProducer =
        ClientConfig::new().set("bootstrap.servers", bootstrap).create().expect("a Kafka producer");
    for n in range {
        let payload = format!("{{\"n\":{n}}}");
        producer
            .send(BaseRecord::<(), _>::to(topic).partition((n % 2) as i32).payload(&payload))
            .expect("enqueue a record");
    }
    producer.flush(Duration::from_secs(10)).expect("records delivered");
}

fn spec(bootstrap: &str, topic: &str, group: &str, offsets: StartingOffsets) -> KafkaSource {
    KafkaSource {
        servers: bootstrap.to_string(),
        topic: topic.to_string(),
        topics: None,
        discovery_ms: None,
        group: group.to_string(),
        offsets,
        bounded: false,
        schema: Schema { name: None, fields: vec![Field::new("n", DataType::Long)] },
        on_error: ErrorPolicy::Fail,
        format: Format::Json,
        tombstones: None,
    }
}

fn reader(spec: &KafkaSource, restored: &[(String, i32, i64)]) -> KafkaSourceReader {
    let assignment = Assignment { splits: vec![0, 1], subtask: 0, parallelism: 1 };
    KafkaSourceReader::new(spec, "src", &assignment, restored, None, Arc::new(TaskCounters::new()), true)
        .expect("a Kafka source reader")
}

/// Polls `reader` until it has handed out `n` records (fails after 30 s).
fn poll_values(reader: &mut KafkaSourceReader, n: usize) -> Vec<i64> {
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while got.len() < n {
        assert!(Instant::now() < deadline, "only {} of {n} records: {got:?}", got.len());
        if let SourcePoll::Records(b) = reader.poll(Duration::from_millis(100)).expect("poll") {
            got.extend(b.rows().into_iter().map(|(_, r)| match r[0] {
                Value::Int(v) => v,
                ref other => panic!("{other:?}"),
            }));
        }
    }
    got.sort_unstable();
    got
}

/// What the source would restore: its partitions' offsets.
fn offsets(state: SourceState) -> Vec<(i32, i64)> {
    match state {
        SourceState::Kafka { offsets, .. } => offsets,
        other => panic!("a Kafka source's state: {other:?}"),
    }
}

/// The offsets `group` has committed for the topic's two partitions.
fn committed(bootstrap: &str, topic: &str, group: &str) -> Vec<(i32, i64)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .create()
        .expect("a Kafka consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, 0);
    tpl.add_partition(topic, 1);
    let list = consumer.committed_offsets(tpl, Duration::from_secs(10)).expect("the group's offsets");
    list.elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) => Some((e.partition(), o)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_checkpoint_before_the_first_record_says_where_every_partition_starts() {
    let kafka = Kafka::shared();
    let topic = unique_topic("offsets-start");
    create_topic(kafka.bootstrap(), &topic, 2).expect("topic");
    produce(kafka.bootstrap(), &topic, 0..10);
    let group = format!("{topic}-group");

    // A fresh group: `committed` starts at each partition's first offset.
    let mut fresh = reader(&spec(kafka.bootstrap(), &topic, &group, StartingOffsets::Committed), &[]);
    assert_eq!(offsets(fresh.snapshot(1)), vec![(0, 0), (1, 0)]);
    // `latest`: at each partition's end, as it was when the source opened.
    let mut latest = reader(&spec(kafka.bootstrap(), &topic, &group, StartingOffsets::Latest), &[]);
    assert_eq!(offsets(latest.snapshot(1)), vec![(0, 5), (1, 5)]);
    produce(kafka.bootstrap(), &topic, 10..12);
    assert_eq!(poll_values(&mut latest, 2), vec![10, 11]);
    assert_eq!(offsets(latest.snapshot(2)), vec![(0, 6), (1, 6)]);
}

#[test]
fn the_group_follows_completed_checkpoints_only() {
    let kafka = Kafka::shared();
    let topic = unique_topic("offsets-commit");
    create_topic(kafka.bootstrap(), &topic, 2).expect("topic");
    produce(kafka.bootstrap(), &topic, 0..10);
    let group = format!("{topic}-group");
    let spec = spec(kafka.bootstrap(), &topic, &group, StartingOffsets::Committed);

    let mut first = reader(&spec, &[]);
    let before_any = first.snapshot(1);
    assert_eq!(poll_values(&mut first, 10), (0..10).collect::<Vec<_>>());
    assert_eq!(offsets(first.snapshot(2)), vec![(0, 5), (1, 5)]);
    // Checkpoint 2 was taken, not completed: the group has not moved. (Its
    // commit would have been sent by now: the reader polls the consumer.)
    let _ = first.poll(Duration::from_millis(1500));
    assert_eq!(committed(kafka.bootstrap(), &topic, &group), vec![], "committed before the checkpoint completed");

    // Checkpoint 2 completes: the group is where it says.
    first.checkpoint_complete(2);
    let deadline = Instant::now() + Duration::from_secs(20);
    while committed(kafka.bootstrap(), &topic, &group) != vec![(0, 5), (1, 5)] {
        assert!(Instant::now() < deadline, "the group's offsets: {:?}", committed(kafka.bootstrap(), &topic, &group));
        let _ = first.poll(Duration::from_millis(200));
    }
    drop(first);

    // A restore from checkpoint 1 (taken before the first record) reads
    // every record again, although the group is ahead of it.
    let restored: Vec<(String, i32, i64)> =
        offsets(before_any).into_iter().map(|(p, o)| (topic.clone(), p, o)).collect();
    let mut again = reader(&spec, &restored);
    assert_eq!(poll_values(&mut again, 10), (0..10).collect::<Vec<_>>());
    // A new job of the same group, without a checkpoint, continues where the group is.
    produce(kafka.bootstrap(), &topic, 10..12);
    let mut next_job = reader(&spec, &[]);
    assert_eq!(poll_values(&mut next_job, 2), vec![10, 11]);
}

/// A savepoint of the click job taken before any click was written, then
/// the clicks, then a run of the same job (same consumer group) that reads
/// them all, so that the group's offsets are at their end. Resumed from the
/// early savepoint, the job reads every click again: the savepoint says
/// where each partition stood (its start), so the group's offsets, ahead
/// of it, do not count. (Before, the savepoint had no offsets and the
/// resumed job read from the group's: nothing, and no window came out.)
#[test]
fn a_savepoint_taken_before_the_first_record_resumes_from_the_start_not_from_the_group() {
    let kafka = Kafka::shared();
    let (input, output) = click_topics(kafka, "early-savepoint", 0);
    let cluster = Cluster::start("early-savepoint", 1, 2);
    let args = ["--bootstrap.servers", kafka.bootstrap(), "--checkpointing", "--event-time"];
    let job = click_count_job(&cluster.scratch.0, &input, &output);
    let first = cluster.submit(&job, &[&["-p", "2"], &args[..]].concat());
    cluster.wait_all_tasks(&first, "RUNNING", Duration::from_secs(30));
    cluster.wait_for("a checkpoint", Duration::from_secs(30), |c| {
        (c.metric(&first, "numberOfCompletedCheckpoints").unwrap_or(0) >= 1).then_some(())
    });
    let early = cluster.stop_with_savepoint(&first, Duration::from_secs(60));

    // Six windows of clicks, read by a run of the job without the savepoint.
    load_events(kafka.bootstrap(), &input, START_MS, 36_000);
    let second = cluster.submit(&job, &[&["-p", "2"], &args[..]].concat());
    expect_windows(kafka.bootstrap(), &output, 5, true, Duration::from_secs(60));
    let done = cluster.metric(&second, "numberOfCompletedCheckpoints").unwrap_or(0);
    cluster.wait_for("two more checkpoints", Duration::from_secs(30), |c| {
        (c.metric(&second, "numberOfCompletedCheckpoints").unwrap_or(0) >= done + 2).then_some(())
    });
    cluster.stop_with_savepoint(&second, Duration::from_secs(60));

    // Resumed from the early savepoint into a new output topic: every click again.
    let again = unique_topic("early-savepoint-again");
    create_topic(kafka.bootstrap(), &again, 2).expect("output topic");
    let dir = cluster.scratch.0.join("replay");
    std::fs::create_dir_all(&dir).expect("a directory for the replay's job file");
    let replay = click_count_job(&dir, &input, &again);
    let third = cluster.submit(&replay, &[&["-p", "2", "-s", early.as_str()], &args[..]].concat());
    cluster.wait_all_tasks(&third, "RUNNING", Duration::from_secs(30));
    let summary = expect_windows(kafka.bootstrap(), &again, 5, true, Duration::from_secs(60));
    assert_eq!(summary.complete_windows, 5);
}
