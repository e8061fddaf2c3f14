//! The in-process broker of the embedded mode: topics of partitions, records placed by a hash of
//! their key, per-partition order, and consumer groups whose committed offsets say where a
//! restarted consumer resumes. Each partition keeps its last [`RETAINED`] records (offsets keep
//! counting); nothing survives the process.

use std::{
    collections::{BTreeMap, HashMap},
    hash::{Hash, Hasher},
    sync::Arc,
};

use parking_lot::Mutex;
use tokio::sync::Notify;

use super::{Delivered, InRecord, Offsets, OutRecord};

/// Partitions of a topic created implicitly by a first publish or subscription.
const DEFAULT_PARTITIONS: usize = 6;

/// Records a partition keeps; older ones are dropped, as a broker's retention would.
pub const RETAINED: usize = 100_000;

#[derive(Clone, Default)]
struct Log {
    /// Offset of the first record kept.
    base: i64,
    records: std::collections::VecDeque<InRecord>,
}

impl Log {
    fn end(&self) -> i64 {
        self.base + self.records.len() as i64
    }

    fn get(&self, offset: i64) -> Option<&InRecord> {
        let at = offset.max(self.base) - self.base;
        self.records.get(at as usize)
    }
}

#[derive(Default)]
struct State {
    topics: HashMap<String, Vec<Log>>,
    committed: HashMap<(String, String, i32), i64>,
}

/// The in-process broker, shared by every publisher and consumer of one process.
#[derive(Clone, Default)]
pub struct MemoryBroker {
    state: Arc<Mutex<State>>,
    appended: Arc<Notify>,
}

fn partition_of(key: Option<&[u8]>, partitions: usize, fallback: usize) -> usize {
    match key {
        Some(key) => {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            key.hash(&mut h);
            (h.finish() % partitions as u64) as usize
        }
        None => fallback % partitions,
    }
}

impl MemoryBroker {
    /// An empty broker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Create `topic` with `partitions` partitions unless it exists.
    pub fn ensure_topic(&self, topic: &str, partitions: usize) {
        self.state.lock().topics.entry(topic.to_owned()).or_insert_with(|| vec![Log::default(); partitions.max(1)]);
    }

    /// Append a record; it is acknowledged at once.
    pub fn append(&self, record: OutRecord) -> Delivered {
        let mut state = self.state.lock();
        let parts =
            state.topics.entry(record.topic.clone()).or_insert_with(|| vec![Log::default(); DEFAULT_PARTITIONS]);
        let total: i64 = parts.iter().map(Log::end).sum();
        let partition = partition_of(record.key.as_deref(), parts.len(), total as usize);
        let log = &mut parts[partition];
        let offset = log.end();
        log.records.push_back(InRecord {
            topic: record.topic,
            partition: partition as i32,
            offset,
            key: record.key,
            payload: Some(record.payload),
            headers: record.headers,
            timestamp_ms: Some(chrono::Utc::now().timestamp_millis()),
        });
        if log.records.len() > RETAINED {
            log.records.pop_front();
            log.base += 1;
        }
        drop(state);
        self.appended.notify_waiters();
        Delivered { partition: partition as i32, offset }
    }

    /// Every record of `topic`, partition by partition.
    pub fn records(&self, topic: &str) -> Vec<InRecord> {
        self.state
            .lock()
            .topics
            .get(topic)
            .map(|p| p.iter().flat_map(|l| l.records.iter().cloned()).collect())
            .unwrap_or_default()
    }

    /// A consumer of `topics` in `group`, resuming at the group's committed offsets.
    pub fn consumer(&self, group: &str, topics: &[String]) -> MemoryConsumer {
        for topic in topics {
            self.ensure_topic(topic, DEFAULT_PARTITIONS);
        }
        let positions = {
            let state = self.state.lock();
            let mut positions = BTreeMap::new();
            for topic in topics {
                let parts = state.topics.get(topic).map(Vec::len).unwrap_or(0);
                for p in 0..parts as i32 {
                    let at = state.committed.get(&(group.to_owned(), topic.clone(), p)).copied().unwrap_or(0);
                    positions.insert((topic.clone(), p), at);
                }
            }
            positions
        };
        MemoryConsumer {
            broker: self.clone(),
            group: group.to_owned(),
            positions: Mutex::new(positions),
            paused: Mutex::default(),
        }
    }

    /// The offset `group` has committed on `partition` of `topic` (0 when none).
    pub fn committed(&self, group: &str, topic: &str, partition: i32) -> i64 {
        self.state.lock().committed.get(&(group.to_owned(), topic.to_owned(), partition)).copied().unwrap_or(0)
    }

    fn commit(&self, group: &str, offsets: &Offsets) {
        let mut state = self.state.lock();
        for ((topic, partition), offset) in offsets {
            let slot = state.committed.entry((group.to_owned(), topic.clone(), *partition)).or_insert(0);
            *slot = (*slot).max(*offset);
        }
    }
}

/// One consumer of the in-process broker (the only member of its group).
pub struct MemoryConsumer {
    broker: MemoryBroker,
    group: String,
    positions: Mutex<BTreeMap<(String, i32), i64>>,
    paused: Mutex<std::collections::HashSet<(String, i32)>>,
}

impl MemoryConsumer {
    fn next_ready(&self) -> Option<InRecord> {
        let state = self.broker.state.lock();
        let mut positions = self.positions.lock();
        let paused = self.paused.lock();
        // The partition whose next record is oldest, so that no partition starves.
        let mut best: Option<(&(String, i32), &InRecord)> = None;
        for (tp, at) in positions.iter().filter(|(tp, _)| !paused.contains(*tp)) {
            let Some(record) = state.topics.get(&tp.0).and_then(|p| p.get(tp.1 as usize)).and_then(|l| l.get(*at))
            else {
                continue;
            };
            if best.is_none_or(|(_, b)| record.timestamp_ms < b.timestamp_ms) {
                best = Some((tp, record));
            }
        }
        let (tp, record) = best.map(|(tp, r)| (tp.clone(), r.clone()))?;
        positions.insert(tp, record.offset + 1);
        Some(record)
    }

    /// The next record of any subscribed partition, waiting for one.
    pub async fn recv(&self) -> InRecord {
        loop {
            let appended = self.broker.appended.notified();
            if let Some(record) = self.next_ready() {
                return record;
            }
            appended.await;
        }
    }

    /// Deliver nothing more of `partition` of `topic` until it is resumed.
    pub fn pause(&self, topic: &str, partition: i32) {
        self.paused.lock().insert((topic.to_owned(), partition));
    }

    /// Deliver `partition` of `topic` again.
    pub fn resume(&self, topic: &str, partition: i32) {
        self.paused.lock().remove(&(topic.to_owned(), partition));
        self.broker.appended.notify_waiters();
    }

    /// Record that the group has processed everything before these offsets.
    pub fn commit(&self, offsets: &Offsets) {
        self.broker.commit(&self.group, offsets);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(key: &str, n: u8) -> OutRecord {
        OutRecord { topic: "t".into(), key: Some(key.as_bytes().to_vec()), payload: vec![n], headers: vec![] }
    }

    #[test]
    fn one_key_keeps_its_order_in_one_partition() {
        let broker = MemoryBroker::new();
        let placed: Vec<Delivered> = (0..10).map(|n| broker.append(record("wallet-a", n))).collect();
        assert!(placed.iter().all(|d| d.partition == placed[0].partition));
        assert!(placed.windows(2).all(|w| w[1].offset == w[0].offset + 1));
    }

    #[tokio::test]
    async fn a_new_consumer_resumes_after_the_committed_offsets() {
        let broker = MemoryBroker::new();
        broker.ensure_topic("t", 2);
        for n in 0..4 {
            broker.append(record(&format!("k{n}"), n));
        }
        let first = broker.consumer("g", &["t".into()]);
        let mut done = Offsets::new();
        for _ in 0..2 {
            let r = first.recv().await;
            done.insert((r.topic.clone(), r.partition), r.offset + 1);
        }
        first.commit(&done);
        let second = broker.consumer("g", &["t".into()]);
        let mut rest = Vec::new();
        for _ in 0..2 {
            rest.push(second.recv().await.payload);
        }
        let mut seen: Vec<u8> = rest.into_iter().flatten().flatten().collect();
        seen.sort_unstable();
        assert_eq!(seen.len(), 2);
        assert!(second.next_ready().is_none());
    }
}
