#![allow(dead_code)] // shared by several benchmarks, each using a part
//! The broker the event benchmarks run against (BENCH_KAFKA, or one of their own started by
//! `scripts/kafka.sh`, as the tests' is), and a bare rdkafka consumer to compare with.

use std::{
    process::{Command, Stdio},
    time::Instant,
};

use rdkafka::{
    config::ClientConfig,
    consumer::{Consumer, StreamConsumer},
    Message, Offset, TopicPartitionList,
};

/// A broker, and whether it was started here.
pub struct Broker {
    pub address: String,
    /// Port and data directory of a broker started here.
    own: Option<(u16, tempfile::TempDir)>,
}

impl Broker {
    /// The broker's process, when started here.
    pub fn pid(&self) -> Option<u32> {
        let (_, dir) = self.own.as_ref()?;
        std::fs::read_to_string(dir.path().join("tansu.pid")).ok()?.trim().parse().ok()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some((port, dir)) = &self.own {
            let _ = Command::new("scripts/kafka.sh")
                .args(["stop", &port.to_string(), &dir.path().display().to_string()])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// BENCH_KAFKA, or a broker of its own started by `scripts/kafka.sh` (as the tests' is).
pub fn broker() -> Broker {
    if let Ok(address) = std::env::var("BENCH_KAFKA") {
        return Broker { address, own: None };
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let started = Command::new("scripts/kafka.sh")
        .args(["start", &port.to_string(), &dir.path().display().to_string()])
        .stderr(Stdio::null())
        .status()
        .expect("scripts/kafka.sh start");
    assert!(started.success(), "the broker did not start");
    Broker { address: format!("127.0.0.1:{port}"), own: Some((port, dir)) }
}

/// A bare group consumer reading `count` records from the start of `topic` and committing at
/// the end; returns records/s.
pub async fn bare_consume(brokers: &str, topic: &str, group: &str, count: usize) -> f64 {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", "10")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let mut last = TopicPartitionList::new();
    let first = consumer.recv().await.unwrap().detach();
    let start = Instant::now();
    let mut ends = std::collections::BTreeMap::new();
    ends.insert(first.partition(), first.offset());
    for _ in 1..count {
        let m = consumer.recv().await.unwrap();
        ends.insert(m.partition(), m.offset());
    }
    for (p, o) in ends {
        last.add_partition_offset(topic, p, Offset::Offset(o + 1)).unwrap();
    }
    consumer.commit(&last, rdkafka::consumer::CommitMode::Sync).unwrap();
    count as f64 / start.elapsed().as_secs_f64()
}
