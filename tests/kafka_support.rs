//! Self-test of the Kafka test support: a broker starts (or
//! `FLOWC_TEST_KAFKA` is used), topics get created and are visible in the
//! broker's metadata, and tests sharing the broker get distinct topics.

mod support;

use support::kafka::{create_topic, topic_partitions, unique_topic, Kafka};

#[test]
fn created_topic_shows_in_metadata() {
    let kafka = Kafka::shared();
    let topic = unique_topic("kafka-support");
    assert_eq!(
        topic_partitions(kafka.bootstrap(), &topic).expect("metadata"),
        None,
        "a fresh topic name must not exist yet"
    );
    create_topic(kafka.bootstrap(), &topic, 3).expect("create topic");
    assert_eq!(topic_partitions(kafka.bootstrap(), &topic).expect("metadata"), Some(3));
    // Creating it again is accepted.
    create_topic(kafka.bootstrap(), &topic, 3).expect("create topic again");
}

#[test]
fn tests_share_one_broker_with_distinct_topics() {
    let a = Kafka::shared();
    let b = Kafka::shared();
    assert!(std::ptr::eq(a, b));
    assert_eq!(a.to_string(), a.bootstrap());
    let (t1, t2) = (unique_topic("share"), unique_topic("share"));
    assert_ne!(t1, t2);
    create_topic(a.bootstrap(), &t1, 1).expect("create first topic");
    create_topic(b.bootstrap(), &t2, 2).expect("create second topic");
    assert_eq!(topic_partitions(a.bootstrap(), &t1).expect("metadata"), Some(1));
    assert_eq!(topic_partitions(a.bootstrap(), &t2).expect("metadata"), Some(2));
}

#[test]
fn free_ports_differ() {
    let ports = support::free_ports(3);
    assert_eq!(ports.len(), 3);
    assert!(ports[0] != ports[1] && ports[1] != ports[2] && ports[0] != ports[2]);
    assert_ne!(support::free_port(), 0);
}
