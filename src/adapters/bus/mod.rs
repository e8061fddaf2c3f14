//! The event bus: Kafka (any broker speaking its protocol) or an in-process broker with the same
//! semantics for the embedded mode (partitions chosen by key, per-partition order, consumer
//! groups with committed offsets, dead-letter topics). Actors own the clients; nothing here
//! knows about actors.

pub mod dlq;
pub mod kafka;
pub mod memory;

use std::collections::BTreeMap;

pub use kafka::KafkaConsumer;
pub use memory::{MemoryBroker, MemoryConsumer};

use crate::config::{EventBusKind, EventBusSettings};

/// A message to publish.
#[derive(Debug, Clone, PartialEq)]
pub struct OutRecord {
    /// Topic.
    pub topic: String,
    /// Key: records with the same key go to the same partition, in order.
    pub key: Option<Vec<u8>>,
    /// Value.
    pub payload: Vec<u8>,
    /// Headers.
    pub headers: Vec<(String, Vec<u8>)>,
}

/// A consumed message.
#[derive(Debug, Clone, PartialEq)]
pub struct InRecord {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset in the partition.
    pub offset: i64,
    /// Key.
    pub key: Option<Vec<u8>>,
    /// Value (none for a tombstone).
    pub payload: Option<Vec<u8>>,
    /// Headers.
    pub headers: Vec<(String, Vec<u8>)>,
    /// Producer or broker timestamp, milliseconds since the epoch.
    pub timestamp_ms: Option<i64>,
}

impl InRecord {
    /// The first header named `name`, as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).and_then(|(_, v)| std::str::from_utf8(v).ok())
    }
}

/// Where an acknowledged record landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
}

/// Why the bus failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BusError {
    /// The Kafka client failed.
    #[error("kafka: {0}")]
    Kafka(String),
    /// The bus is shutting down.
    #[error("the event bus is closed")]
    Closed,
}

/// Offsets to commit: for each (topic, partition), the next offset to read.
pub type Offsets = BTreeMap<(String, i32), i64>;

/// Publishes records, in order per partition.
#[derive(Clone)]
pub enum Publisher {
    /// Kafka.
    Kafka(kafka::KafkaPublisher),
    /// In process.
    Memory(MemoryBroker),
}

/// An enqueued record whose acknowledgement can be awaited.
pub type Pending = futures::future::BoxFuture<'static, Result<Delivered, BusError>>;

impl Publisher {
    /// The publisher for `settings`; `broker` is the process's in-memory broker.
    pub fn from_settings(settings: &EventBusSettings, broker: &MemoryBroker) -> Result<Self, BusError> {
        match settings.effective_kind() {
            EventBusKind::Kafka => Ok(Self::Kafka(kafka::KafkaPublisher::new(settings)?)),
            EventBusKind::Memory => Ok(Self::Memory(broker.clone())),
        }
    }

    /// Enqueue `record` now (records enqueued one after the other keep their order within a
    /// partition) and return the wait for its acknowledgement.
    pub async fn enqueue(&self, record: OutRecord) -> Result<Pending, BusError> {
        match self {
            Self::Kafka(p) => p.enqueue(record).await,
            Self::Memory(b) => {
                let delivered = b.append(record);
                Ok(Box::pin(async move { Ok(delivered) }))
            }
        }
    }

    /// Publish one record and wait for its acknowledgement.
    pub async fn send(&self, record: OutRecord) -> Result<Delivered, BusError> {
        self.enqueue(record).await?.await
    }

    /// Create the topics that do not exist yet.
    pub async fn ensure_topics(&self, topics: &[String], partitions: i32, replication: i32) -> Result<(), BusError> {
        match self {
            Self::Kafka(p) => p.ensure_topics(topics, partitions, replication).await,
            Self::Memory(b) => {
                for topic in topics {
                    b.ensure_topic(topic, partitions.max(1) as usize);
                }
                Ok(())
            }
        }
    }

    /// Whether the broker answers, with the time it took.
    pub async fn probe(&self, timeout: std::time::Duration) -> Result<std::time::Duration, BusError> {
        match self {
            Self::Kafka(p) => p.probe(timeout).await,
            Self::Memory(_) => Ok(std::time::Duration::ZERO),
        }
    }
}

#[derive(Debug, Default)]
struct PartitionProgress {
    in_flight: std::collections::BTreeSet<i64>,
    next: i64,
}

/// Which offsets may be committed while messages of one partition are applied in parallel: the
/// committed position never passes a message that is still being applied.
#[derive(Debug, Default)]
pub struct Tracker {
    partitions: BTreeMap<(String, i32), PartitionProgress>,
    committed: BTreeMap<(String, i32), i64>,
}

impl Tracker {
    /// A message is being applied.
    pub fn start(&mut self, topic: &str, partition: i32, offset: i64) {
        let p = self.partitions.entry((topic.to_owned(), partition)).or_default();
        p.in_flight.insert(offset);
        p.next = p.next.max(offset + 1);
    }

    /// A message is done (applied, a duplicate, or dead-lettered).
    pub fn finish(&mut self, topic: &str, partition: i32, offset: i64) {
        if let Some(p) = self.partitions.get_mut(&(topic.to_owned(), partition)) {
            p.in_flight.remove(&offset);
        }
    }

    fn position(p: &PartitionProgress) -> i64 {
        p.in_flight.first().copied().unwrap_or(p.next)
    }

    /// Every partition's committable position: the lowest offset still in flight, or one past the
    /// highest received.
    pub fn committable(&self) -> Offsets {
        self.partitions.iter().map(|(tp, p)| (tp.clone(), Self::position(p))).collect()
    }

    /// Positions that moved since the last call (to commit now).
    pub fn advanced(&mut self) -> Offsets {
        let mut out = Offsets::new();
        for (tp, p) in &self.partitions {
            let at = Self::position(p);
            if self.committed.get(tp).is_none_or(|c| *c < at) {
                out.insert(tp.clone(), at);
            }
        }
        self.committed.extend(out.clone());
        out
    }

    /// A commit of `offsets` failed: offer them again at the next [`Tracker::advanced`].
    pub fn uncommit(&mut self, offsets: &Offsets) {
        for tp in offsets.keys() {
            self.committed.remove(tp);
        }
    }

    /// The partition was taken away: its committable position, and forget it.
    pub fn revoke(&mut self, topic: &str, partition: i32) -> Option<i64> {
        let key = (topic.to_owned(), partition);
        self.committed.remove(&key);
        self.partitions.remove(&key).map(|p| Self::position(&p))
    }

    /// Messages being applied.
    pub fn in_flight(&self) -> usize {
        self.partitions.values().map(|p| p.in_flight.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::Tracker;

    #[test]
    fn the_commit_never_passes_a_message_still_in_flight() {
        let mut t = Tracker::default();
        for offset in 10..15 {
            t.start("t", 0, offset);
        }
        t.finish("t", 0, 11);
        t.finish("t", 0, 12);
        assert_eq!(t.committable().get(&("t".into(), 0)), Some(&10));
        t.finish("t", 0, 10);
        assert_eq!(t.advanced().get(&("t".into(), 0)), Some(&13));
        assert!(t.advanced().is_empty(), "nothing moved since");
        t.finish("t", 0, 13);
        t.finish("t", 0, 14);
        assert_eq!(t.advanced().get(&("t".into(), 0)), Some(&15));
        assert_eq!(t.in_flight(), 0);
    }

    #[test]
    fn a_revoked_partition_is_forgotten() {
        let mut t = Tracker::default();
        t.start("t", 1, 5);
        t.start("t", 1, 6);
        t.finish("t", 1, 6);
        assert_eq!(t.revoke("t", 1), Some(5));
        t.finish("t", 1, 5);
        assert!(t.committable().is_empty());
    }
}
