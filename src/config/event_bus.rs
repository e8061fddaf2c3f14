//! `event_bus`: Kafka or the in-process bus, topics, the outbox relay and the consumer.

use serde::{Deserialize, Serialize};

use super::{Section, SettingsProblems, ValidationContext};

/// Event bus.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct EventBusSettings {
    /// `kafka` or `memory` (EVENT_BUS); unset means kafka when bootstrap servers are given.
    pub kind: Option<EventBusKind>,
    /// Comma-separated brokers (KAFKA_BOOTSTRAP_SERVERS).
    pub kafka_bootstrap_servers: Option<String>,
    /// Topic of each domain's events; `{domain}` is replaced (fintech, ...).
    pub events_topic: String,
    /// Topics consumed (KAFKA_INBOUND_TOPICS, comma-separated); each carries payment notifications.
    pub inbound_topics: Vec<String>,
    /// Consumer group of the event-bus workers (KAFKA_CONSUMER_GROUP).
    pub consumer_group: String,
    /// Suffix of each inbound topic's dead-letter topic.
    pub dead_letter_suffix: String,
    /// Create missing topics at start with this many partitions (0: never create).
    pub create_topic_partitions: i32,
    /// Replication factor of created topics.
    pub create_topic_replication: i32,
    /// Whether this process runs the outbox relay (worker and all roles). Replicas' relays take
    /// turns through a database lock, so one publishes at a time; a process that only consumes
    /// can leave publication to others.
    pub relay: bool,
    /// How often the outbox relay looks for new events, milliseconds.
    pub relay_poll_ms: u64,
    /// Most outbox batches published per round.
    pub relay_batch_rows: usize,
    /// How often applied offsets are committed, milliseconds (a tick with nothing new to commit
    /// sends nothing). After a crash, what was applied since the last commit is delivered again
    /// and found applied.
    pub commit_interval_ms: u64,
    /// Most inbound events being applied at once: enough to fill the ledger writer's batches
    /// (512 commands) while the previous one commits; all of them are delivered again after a
    /// crash (and found applied).
    pub max_in_flight: usize,
    /// Wait before the first retry of an event whose failure is transient (the ledger
    /// unreachable, timed out or overloaded), doubled at each attempt, milliseconds. Such an
    /// event is retried until it is applied, never dead-lettered; its partition is paused
    /// meanwhile.
    pub retry_backoff_ms: u64,
    /// Longest wait between two retries, milliseconds.
    pub retry_backoff_max_ms: u64,
    /// Longest time the broker holds a fetch while waiting for data (librdkafka
    /// `fetch.wait.max.ms`).
    pub fetch_wait_max_ms: u64,
    /// A worker that stops sending heartbeats (crashed) loses its partitions after this long,
    /// milliseconds (librdkafka `session.timeout.ms`; the broker bounds it).
    pub session_timeout_ms: u64,
    /// Idempotent producer (ordering and no duplicates across producer retries); turn off only for
    /// brokers without it, which then get one request in flight per connection.
    pub idempotent_producer: bool,
    /// Extra librdkafka properties for every client (security.protocol, sasl.*, ...).
    pub kafka_properties: std::collections::BTreeMap<String, String>,
}

impl Default for EventBusSettings {
    fn default() -> Self {
        Self {
            kind: None,
            kafka_bootstrap_servers: None,
            events_topic: "beryl.{domain}.events".into(),
            inbound_topics: vec!["beryl.fintech.payments".into()],
            consumer_group: "beryl-core-api".into(),
            dead_letter_suffix: ".dlq".into(),
            create_topic_partitions: 6,
            create_topic_replication: 1,
            relay: true,
            relay_poll_ms: 50,
            relay_batch_rows: 64,
            commit_interval_ms: 100,
            max_in_flight: 2048,
            retry_backoff_ms: 100,
            retry_backoff_max_ms: 5_000,
            fetch_wait_max_ms: 100,
            session_timeout_ms: 10_000,
            idempotent_producer: true,
            kafka_properties: Default::default(),
        }
    }
}

impl EventBusSettings {
    /// The topic of `domain`'s events.
    pub fn topic_of(&self, domain: &str) -> String {
        self.events_topic.replace("{domain}", domain)
    }

    /// The bus in effect once defaults are applied.
    pub fn effective_kind(&self) -> EventBusKind {
        self.kind.unwrap_or(if self.kafka_bootstrap_servers.is_some() {
            EventBusKind::Kafka
        } else {
            EventBusKind::Memory
        })
    }
}

/// Event bus implementation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EventBusKind {
    /// Apache Kafka (or a compatible broker).
    #[serde(alias = "KAFKA")]
    Kafka,
    /// In-process bus; nothing survives a restart.
    #[serde(alias = "MEMORY")]
    Memory,
}

impl Section for EventBusSettings {
    fn validate(&self, ctx: &ValidationContext, problems: &mut SettingsProblems) {
        if self.kind == Some(EventBusKind::Kafka)
            && self.kafka_bootstrap_servers.as_deref().is_none_or(|s| s.trim().is_empty())
        {
            problems.add(
                "event_bus.kafka_bootstrap_servers",
                "EVENT_BUS=kafka needs brokers",
                "set KAFKA_BOOTSTRAP_SERVERS=host:9092[,host:9092]",
            );
        }
        if ctx.production() && self.effective_kind() == EventBusKind::Memory {
            problems.add(
                "event_bus.kafka_bootstrap_servers",
                "production cannot run on the in-process event bus (events would never leave the process)",
                "set KAFKA_BOOTSTRAP_SERVERS=host:9092[,host:9092]",
            );
        }
        if self.events_topic.trim().is_empty() || self.inbound_topics.iter().any(|t| t.trim().is_empty()) {
            problems.add("event_bus.events_topic", "topic names cannot be empty", "for example beryl.{domain}.events");
        }
        if self.dead_letter_suffix.is_empty() || self.consumer_group.trim().is_empty() {
            problems.add(
                "event_bus.dead_letter_suffix",
                "the dead-letter suffix and the consumer group cannot be empty",
                "for example .dlq and beryl-core-api",
            );
        }
        if self.max_in_flight == 0 || self.relay_batch_rows == 0 {
            problems.add(
                "event_bus.max_in_flight",
                "max_in_flight and relay_batch_rows must be at least 1",
                "for example 2048 and 64",
            );
        }
        if self.retry_backoff_ms == 0 || self.retry_backoff_max_ms < self.retry_backoff_ms {
            problems.add(
                "event_bus.retry_backoff_max_ms",
                "retry_backoff_ms must be at least 1 ms and retry_backoff_max_ms at least retry_backoff_ms",
                "for example 100 and 5000",
            );
        }
        if self.relay_poll_ms == 0 || self.commit_interval_ms == 0 || self.fetch_wait_max_ms == 0 {
            problems.add(
                "event_bus.relay_poll_ms",
                "relay_poll_ms, commit_interval_ms and fetch_wait_max_ms must be at least 1 ms",
                "for example 50, 500 and 100",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Environment;

    #[test]
    fn the_retry_backoff_is_capped_above_its_start() {
        let mut found = SettingsProblems::default();
        let settings = EventBusSettings { retry_backoff_ms: 500, retry_backoff_max_ms: 100, ..Default::default() };
        settings.validate(&ValidationContext { environment: Environment::Test }, &mut found);
        let keys: Vec<String> = found.0.into_iter().map(|p| p.key).collect();
        assert_eq!(keys, vec!["event_bus.retry_backoff_max_ms"]);
    }
}
