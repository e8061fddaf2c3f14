//! Kafka through librdkafka (rdkafka): a producer that never gives up on a record (no message
//! timeout: a broker outage delays publication, it never reorders or drops it), topic creation,
//! a broker probe, and a group consumer that commits only the offsets it is told to, at
//! rebalances and when it closes.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use parking_lot::Mutex;
use rdkafka::{
    admin::{AdminClient, AdminOptions, NewTopic, TopicReplication},
    client::DefaultClientContext,
    config::ClientConfig,
    consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer},
    error::RDKafkaErrorCode,
    message::{BorrowedMessage, Header, Headers, OwnedHeaders},
    producer::{FutureProducer, FutureRecord, Producer},
    statistics::Statistics,
    ClientContext, Message, Offset, TopicPartitionList,
};

use super::{BusError, Delivered, InRecord, Offsets, OutRecord, Pending};
use crate::{
    config::EventBusSettings,
    telemetry::{self, Metrics},
};

/// librdkafka's error, as text.
pub type KafkaError = rdkafka::error::KafkaError;

fn err(e: impl std::fmt::Display) -> BusError {
    BusError::Kafka(e.to_string())
}

/// A client's configuration: `defaults` first, then the operator's own properties, which
/// override them.
fn client_config(settings: &EventBusSettings, defaults: &[(&str, &str)]) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", settings.kafka_bootstrap_servers.as_deref().unwrap_or_default());
    config.set("client.id", concat!("beryl-core-api/", env!("CARGO_PKG_VERSION")));
    for (k, v) in defaults {
        config.set(*k, *v);
    }
    for (k, v) in &settings.kafka_properties {
        config.set(k, v);
    }
    config
}

/// The producer shared by the outbox relay and the dead-letter path.
#[derive(Clone)]
pub struct KafkaPublisher {
    producer: FutureProducer,
    config: Arc<ClientConfig>,
}

/// The producer's configuration: the operator's properties may tune batching, never the
/// delivery guarantees.
fn producer_config(settings: &EventBusSettings) -> ClientConfig {
    // Batching defaults, which the operator's properties may change...
    let mut config = client_config(settings, &[("linger.ms", "2"), ("queue.buffering.max.messages", "1000000")]);
    // ...and the guarantees, which they may not: acknowledged by every in-sync replica, and
    // retried until the broker takes it (the outbox holds the backlog).
    config.set("acks", "all").set("message.timeout.ms", "0");
    if settings.idempotent_producer {
        config.set("enable.idempotence", "true");
    } else {
        config.set("max.in.flight.requests.per.connection", "1");
    }
    config
}

impl KafkaPublisher {
    /// A producer for `settings`.
    pub fn new(settings: &EventBusSettings) -> Result<Self, BusError> {
        let producer: FutureProducer = producer_config(settings).create().map_err(err)?;
        Ok(Self { producer, config: Arc::new(client_config(settings, &[])) })
    }

    /// Enqueue `record`; waits only while librdkafka's queue is full.
    pub async fn enqueue(&self, record: OutRecord) -> Result<Pending, BusError> {
        let mut headers = OwnedHeaders::new_with_capacity(record.headers.len());
        for (k, v) in &record.headers {
            headers = headers.insert(Header { key: k, value: Some(v) });
        }
        loop {
            let mut r = FutureRecord::to(&record.topic).payload(&record.payload).headers(headers.clone());
            if let Some(key) = &record.key {
                r = r.key(key);
            }
            match self.producer.send_result(r) {
                Ok(delivery) => {
                    return Ok(Box::pin(async move {
                        match delivery.await {
                            Ok(Ok(d)) => Ok(Delivered { partition: d.partition, offset: d.offset }),
                            Ok(Err((e, _))) => Err(err(e)),
                            Err(_) => Err(BusError::Closed),
                        }
                    }))
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err((e, _)) => return Err(err(e)),
            }
        }
    }

    /// Create the topics that do not exist yet.
    pub async fn ensure_topics(&self, topics: &[String], partitions: i32, replication: i32) -> Result<(), BusError> {
        let admin: AdminClient<DefaultClientContext> = self.config.create().map_err(err)?;
        let new: Vec<NewTopic<'_>> =
            topics.iter().map(|t| NewTopic::new(t, partitions, TopicReplication::Fixed(replication))).collect();
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        for result in admin.create_topics(&new, &options).await.map_err(err)? {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((topic, code)) => return Err(BusError::Kafka(format!("create topic {topic}: {code}"))),
            }
        }
        Ok(())
    }

    /// Ask the cluster for its metadata.
    pub async fn probe(&self, timeout: Duration) -> Result<Duration, BusError> {
        let producer = self.producer.clone();
        let started = Instant::now();
        tokio::task::spawn_blocking(move || producer.client().fetch_metadata(None, timeout))
            .await
            .map_err(err)?
            .map_err(err)?;
        Ok(started.elapsed())
    }
}

/// Progress of the messages being applied, shared with the rebalance callback.
pub type Committable = Arc<Mutex<super::Tracker>>;

/// The consumer's callbacks: commit what is done when partitions are taken away, and export
/// librdkafka's per-partition lag.
pub struct Callbacks {
    committable: Committable,
    metrics: Metrics,
}

impl ClientContext for Callbacks {
    fn stats(&self, statistics: Statistics) {
        self.metrics.with(|| {
            for (name, topic) in &statistics.topics {
                for (id, partition) in &topic.partitions {
                    if *id < 0 || partition.consumer_lag < 0 {
                        continue;
                    }
                    metrics::gauge!(telemetry::EVENTS_CONSUMER_LAG, "topic" => name.clone(), "partition" => id.to_string())
                        .set(partition.consumer_lag as f64);
                }
            }
        });
    }
}

impl ConsumerContext for Callbacks {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(list) = rebalance {
            let mut commit = TopicPartitionList::new();
            {
                let mut tracker = self.committable.lock();
                for e in list.elements() {
                    if let Some(offset) = tracker.revoke(e.topic(), e.partition()) {
                        let _ = commit.add_partition_offset(e.topic(), e.partition(), Offset::Offset(offset));
                    }
                }
            }
            if commit.count() > 0 {
                match consumer.commit(&commit, CommitMode::Sync) {
                    Ok(()) => tracing::info!(
                        partitions = commit.count(),
                        "committed applied offsets before handing partitions over"
                    ),
                    Err(e) => {
                        tracing::warn!(error = %e, "commit before rebalance failed; the next owner re-applies (deduplicated)")
                    }
                }
            }
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(list) => {
                let partitions: Vec<String> =
                    list.elements().iter().map(|e| format!("{}/{}", e.topic(), e.partition())).collect();
                tracing::info!(partitions = ?partitions, "partitions assigned");
            }
            Rebalance::Revoke(list) => tracing::info!(partitions = list.count(), "partitions revoked"),
            Rebalance::Error(e) => tracing::warn!(error = %e, "rebalance failed"),
        }
    }

    fn commit_callback(&self, result: rdkafka::error::KafkaResult<()>, _: &TopicPartitionList) {
        if let Err(e) = result {
            if !matches!(e, KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) {
                tracing::warn!(error = %e, "offset commit failed");
            }
        }
    }
}

/// A member of the consumer group.
pub struct KafkaConsumer {
    consumer: StreamConsumer<Callbacks>,
}

/// A received message as the rest of the service sees it.
fn in_record(m: &BorrowedMessage<'_>) -> InRecord {
    let headers = m
        .headers()
        .map(|h| h.iter().map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec).unwrap_or_default())).collect())
        .unwrap_or_default();
    InRecord {
        topic: m.topic().to_owned(),
        partition: m.partition(),
        offset: m.offset(),
        key: m.key().map(<[u8]>::to_vec),
        payload: m.payload().map(<[u8]>::to_vec),
        headers,
        timestamp_ms: m.timestamp().to_millis(),
    }
}

impl KafkaConsumer {
    /// A member of `settings.consumer_group`, not subscribed yet ([`Self::subscribe`]);
    /// `committable` is what may be committed.
    pub fn new(settings: &EventBusSettings, committable: Committable, metrics: Metrics) -> Result<Self, BusError> {
        let mut config = client_config(settings, &[]);
        config
            .set("group.id", &settings.consumer_group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("fetch.wait.max.ms", settings.fetch_wait_max_ms.to_string())
            .set("session.timeout.ms", settings.session_timeout_ms.to_string())
            .set("statistics.interval.ms", "5000");
        let callbacks = Callbacks { committable, metrics };
        let consumer: StreamConsumer<Callbacks> = config.create_with_context(callbacks).map_err(err)?;
        Ok(Self { consumer })
    }

    /// Subscribe to `topics`. Create them first when the service creates its topics: librdkafka
    /// looks again for a subscribed topic it did not find only every
    /// `topic.metadata.refresh.interval.ms` (5 minutes by default).
    pub fn subscribe(&self, topics: &[String]) -> Result<(), BusError> {
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        self.consumer.subscribe(&names).map_err(err)
    }

    /// The next message.
    pub async fn recv(&self) -> Result<InRecord, BusError> {
        let m = self.consumer.recv().await.map_err(err)?;
        Ok(in_record(&m))
    }

    /// Fetch nothing more of `partition` of `topic` until it is resumed (librdkafka keeps the
    /// position: the partition resumes after the last message received).
    pub fn pause(&self, topic: &str, partition: i32) -> Result<(), BusError> {
        let mut list = TopicPartitionList::new();
        list.add_partition(topic, partition);
        self.consumer.pause(&list).map_err(err)
    }

    /// Fetch `partition` of `topic` again.
    pub fn resume(&self, topic: &str, partition: i32) -> Result<(), BusError> {
        let mut list = TopicPartitionList::new();
        list.add_partition(topic, partition);
        self.consumer.resume(&list).map_err(err)
    }

    /// Commit `offsets` (the next offset to read of each partition).
    pub fn commit(&self, offsets: &Offsets, mode: CommitMode) -> Result<(), BusError> {
        if offsets.is_empty() {
            return Ok(());
        }
        let mut list = TopicPartitionList::new();
        for ((topic, partition), offset) in offsets {
            list.add_partition_offset(topic, *partition, Offset::Offset(*offset)).map_err(err)?;
        }
        match self.consumer.commit(&list, mode) {
            Ok(()) => Ok(()),
            // Partitions no longer ours: the new owner starts from the last commit.
            Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset | RDKafkaErrorCode::UnknownMemberId)) => Ok(()),
            Err(e) => Err(err(e)),
        }
    }

    /// Commit, then leave the group (the remaining members take the partitions over at once).
    pub fn leave(&self, offsets: &Offsets) {
        if let Err(e) = self.commit(offsets, CommitMode::Sync) {
            tracing::warn!(error = %e, "final offset commit failed");
        }
        self.consumer.unsubscribe();
    }
}

/// Every record of `topic` from the beginning of each partition to its end as it was when the
/// read began, outside any consumer group (nothing is committed). Blocking.
pub fn read_all(settings: &EventBusSettings, topic: &str, timeout: Duration) -> Result<Vec<InRecord>, BusError> {
    use rdkafka::consumer::BaseConsumer;
    let group = format!("beryl-core-api-reader-{}", uuid::Uuid::new_v4().simple());
    let consumer: BaseConsumer = client_config(
        settings,
        &[("group.id", group.as_str()), ("enable.auto.commit", "false"), ("enable.auto.offset.store", "false")],
    )
    .create()
    .map_err(err)?;
    let metadata = consumer.fetch_metadata(Some(topic), timeout).map_err(err)?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic)
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    let mut list = TopicPartitionList::new();
    let mut ends = std::collections::HashMap::new();
    for p in &partitions {
        let (low, high) = consumer.fetch_watermarks(topic, *p, timeout).map_err(err)?;
        if high > low {
            list.add_partition_offset(topic, *p, Offset::Offset(low)).map_err(err)?;
            ends.insert(*p, high);
        }
    }
    let mut records = Vec::new();
    if ends.is_empty() {
        return Ok(records);
    }
    consumer.assign(&list).map_err(err)?;
    let started = Instant::now();
    while !ends.is_empty() {
        if started.elapsed() > timeout {
            return Err(BusError::Kafka(format!("{topic} not read to its end within {timeout:?}")));
        }
        let Some(message) = consumer.poll(Duration::from_millis(100)) else { continue };
        let m = message.map_err(err)?;
        if let Some(end) = ends.get(&m.partition()).copied() {
            records.push(in_record(&m));
            if m.offset() + 1 >= end {
                ends.remove(&m.partition());
            }
        }
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_properties_tune_batching_but_not_the_delivery_guarantees() {
        let mut settings = EventBusSettings::default();
        for (k, v) in [("linger.ms", "20"), ("acks", "1"), ("message.timeout.ms", "1000"), ("security.protocol", "ssl")]
        {
            settings.kafka_properties.insert(k.into(), v.into());
        }
        let config = producer_config(&settings);
        assert_eq!(config.get("linger.ms"), Some("20"));
        assert_eq!(config.get("security.protocol"), Some("ssl"));
        assert_eq!(config.get("acks"), Some("all"));
        assert_eq!(config.get("message.timeout.ms"), Some("0"));
        assert_eq!(config.get("enable.idempotence"), Some("true"));
        settings.idempotent_producer = false;
        assert_eq!(producer_config(&settings).get("max.in.flight.requests.per.connection"), Some("1"));
    }

    /// TLS with a private CA and SASL/SCRAM: librdkafka refuses both when built without OpenSSL.
    #[tokio::test]
    async fn every_client_accepts_sasl_ssl_with_scram_and_a_private_ca() {
        let mut settings = EventBusSettings {
            kafka_bootstrap_servers: Some("127.0.0.1:9".into()),
            create_topic_partitions: 0,
            ..Default::default()
        };
        for (k, v) in [
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanisms", "SCRAM-SHA-512"),
            ("sasl.username", "beryl-core-api"),
            ("sasl.password", "scram-password"),
            ("ssl.ca.location", concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/kafka-ca.pem")),
        ] {
            settings.kafka_properties.insert(k.into(), v.into());
        }
        let publisher = KafkaPublisher::new(&settings);
        assert!(publisher.is_ok(), "producer refused the properties: {:?}", publisher.err());
        let admin: Result<AdminClient<DefaultClientContext>, _> = client_config(&settings, &[]).create();
        assert!(admin.is_ok(), "admin client refused the properties: {:?}", admin.err());
        let metrics = Metrics::new().unwrap();
        let consumer = KafkaConsumer::new(&settings, Default::default(), metrics);
        assert!(consumer.is_ok(), "consumer refused the properties: {:?}", consumer.err());

        // The CA file is read when the client is made: a certificate that is not one is refused
        // there, not at the first connection.
        settings
            .kafka_properties
            .insert("ssl.ca.location".into(), concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml").into());
        assert!(KafkaPublisher::new(&settings).is_err());
    }
}
