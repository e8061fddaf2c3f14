//! `event_bus`: Kafka or the in-process bus, topics, the outbox relay and the consumer.

use std::{collections::BTreeMap, fmt, path::Path};

use serde::{Deserialize, Serialize, Serializer};

use super::{Section, SettingsProblems, ValidationContext};

/// Prefix of the variables that set one librdkafka property each: `KAFKA_PROPERTY_SASL_PASSWORD`
/// sets `sasl.password` (`_` stands for `.`, `__` for `_`).
pub const KAFKA_PROPERTY_PREFIX: &str = "KAFKA_PROPERTY_";

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
    /// Extra librdkafka properties for every client: TLS and SASL (`security.protocol`,
    /// `sasl.mechanisms`, `sasl.username`, `sasl.password`, `ssl.ca.location`, ...) or tuning;
    /// also one `KAFKA_PROPERTY_<NAME>` variable each. Credentials are redacted when shown.
    pub kafka_properties: KafkaProperties,
}

impl Default for EventBusSettings {
    fn default() -> Self {
        Self {
            kind: None,
            kafka_bootstrap_servers: None,
            events_topic: "beryl.{domain}.events".into(),
            inbound_topics: vec![
                "beryl.fintech.payments".into(),
                "beryl.mobility.events".into(),
                "beryl.esg.events".into(),
                "beryl.social.events".into(),
                "beryl.fintech.events".into(),
            ],
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
        self.kafka_properties.validate(ctx, problems);
    }
}

/// librdkafka properties given by the operator, applied to every Kafka client. Shown (`config
/// check`, `Debug`) with the values of credentials redacted.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct KafkaProperties(BTreeMap<String, String>);

/// Security protocols librdkafka knows (`security.protocol`, any case).
const SECURITY_PROTOCOLS: &[&str] = &["plaintext", "ssl", "sasl_plaintext", "sasl_ssl"];
/// SASL mechanisms this build supports: librdkafka's own (PLAIN, SCRAM, OAUTHBEARER); GSSAPI
/// (Kerberos) would need Cyrus SASL, which the image does not carry.
const SASL_MECHANISMS: &[&str] = &["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"];
/// Properties naming a file (or, for the CA, a directory) that librdkafka reads when a client is
/// created.
const FILE_PROPERTIES: &[&str] =
    &["ssl.ca.location", "ssl.certificate.location", "ssl.key.location", "ssl.crl.location", "ssl.keystore.location"];

impl KafkaProperties {
    /// The value of `name`, if set.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// Set `name` to `value`, replacing any previous value.
    pub fn insert(&mut self, name: String, value: String) {
        self.0.insert(name, value);
    }

    /// Every property, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &String)> {
        self.0.iter()
    }

    /// Whether no property is set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether the value of property `name` is a credential (a password, a secret, a private key
    /// or a token), never to be shown.
    pub fn is_sensitive(name: &str) -> bool {
        let name = name.to_ascii_lowercase();
        ["password", "secret", "passphrase", "token", "credential", "jaas", "pem", "private", "sasl.oauthbearer.config"]
            .iter()
            .any(|marker| name.contains(marker))
    }

    /// The property set by variable `KAFKA_PROPERTY_<suffix>`: `SASL_PASSWORD` is `sasl.password`,
    /// `__` stands for `_`. `None` when the suffix names no property.
    pub fn name_from_variable(suffix: &str) -> Option<String> {
        let parts: Vec<String> = suffix.split("__").map(|part| part.to_ascii_lowercase().replace('_', ".")).collect();
        let valid = |p: &String| {
            !p.is_empty()
                && !p.starts_with('.')
                && !p.ends_with('.')
                && !p.contains("..")
                && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '.')
        };
        parts.iter().all(valid).then(|| parts.join("_"))
    }

    fn shown(&self) -> BTreeMap<&str, &str> {
        self.0
            .iter()
            .map(|(k, v)| (k.as_str(), if Self::is_sensitive(k) { "[redacted]" } else { v.as_str() }))
            .collect()
    }

    fn value_lowercase(&self, name: &str) -> Option<String> {
        self.get(name).map(|v| v.trim().to_ascii_lowercase())
    }

    fn validate(&self, ctx: &ValidationContext, problems: &mut SettingsProblems) {
        let protocol = self.value_lowercase("security.protocol");
        if let Some(p) = protocol.as_deref().filter(|p| !SECURITY_PROTOCOLS.contains(p)) {
            problems.add(
                "event_bus.kafka_properties.security.protocol",
                format!("unknown security protocol {p:?}"),
                "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL (KAFKA_PROPERTY_SECURITY_PROTOCOL)",
            );
        }
        let sasl = protocol.as_deref().is_some_and(|p| p.starts_with("sasl_"));
        // librdkafka takes either spelling.
        let mechanism = self.get("sasl.mechanisms").or_else(|| self.get("sasl.mechanism")).map(str::trim);
        if let Some(m) = mechanism {
            let m = m.to_ascii_uppercase();
            if !SASL_MECHANISMS.contains(&m.as_str()) {
                problems.add(
                    "event_bus.kafka_properties.sasl.mechanisms",
                    format!("unsupported SASL mechanism {m:?}"),
                    "SCRAM-SHA-512, SCRAM-SHA-256, PLAIN or OAUTHBEARER",
                );
            }
            if !sasl {
                problems.add(
                    "event_bus.kafka_properties.sasl.mechanisms",
                    "a SASL mechanism is set but security.protocol is not SASL_SSL or SASL_PLAINTEXT: the credentials would never be sent",
                    "set KAFKA_PROPERTY_SECURITY_PROTOCOL=SASL_SSL",
                );
            }
            let with_password = m == "PLAIN" || m.starts_with("SCRAM-");
            if with_password && (self.get("sasl.username").is_none() || self.get("sasl.password").is_none()) {
                problems.add(
                    "event_bus.kafka_properties.sasl.username",
                    format!("SASL {m} needs sasl.username and sasl.password"),
                    "set KAFKA_PROPERTY_SASL_USERNAME and KAFKA_PROPERTY_SASL_PASSWORD (from a Secret)",
                );
            }
            if ctx.production() && m == "PLAIN" && protocol.as_deref() == Some("sasl_plaintext") {
                problems.add(
                    "event_bus.kafka_properties.security.protocol",
                    "SASL PLAIN over an unencrypted connection sends the password in clear",
                    "use SASL_SSL (or SCRAM-SHA-512)",
                );
            }
        }
        for name in FILE_PROPERTIES {
            if let Some(path) = self.get(name) {
                // `probe`: librdkafka looks for the system's CA bundle itself.
                if *name == "ssl.ca.location" && path == "probe" {
                    continue;
                }
                if !Path::new(path).exists() {
                    problems.add(
                        &format!("event_bus.kafka_properties.{name}"),
                        format!("{path} does not exist"),
                        "mount the file (for example from a Secret) at this path, or correct the path",
                    );
                }
            }
        }
    }
}

impl<'a> IntoIterator for &'a KafkaProperties {
    type Item = (&'a String, &'a String);
    type IntoIter = std::collections::btree_map::Iter<'a, String, String>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl FromIterator<(String, String)> for KafkaProperties {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

impl fmt::Debug for KafkaProperties {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.shown()).finish()
    }
}

impl Serialize for KafkaProperties {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.shown().serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Environment;

    fn properties(pairs: &[(&str, &str)]) -> KafkaProperties {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn problems_of(properties: KafkaProperties, environment: Environment) -> Vec<String> {
        let mut problems = SettingsProblems::default();
        properties.validate(&ValidationContext { environment }, &mut problems);
        problems.0.iter().map(|p| format!("{}: {}", p.key, p.message)).collect()
    }

    #[test]
    fn variables_name_librdkafka_properties() {
        let name = KafkaProperties::name_from_variable;
        assert_eq!(name("SASL_PASSWORD").as_deref(), Some("sasl.password"));
        assert_eq!(name("SECURITY_PROTOCOL").as_deref(), Some("security.protocol"));
        assert_eq!(name("SSL_CA_LOCATION").as_deref(), Some("ssl.ca.location"));
        assert_eq!(name("SSL__KEY_PASSWORD").as_deref(), Some("ssl_key.password"));
        for bad in ["", "_SASL", "SASL_", "SASL__", "SASL-PASSWORD", "A__B__"] {
            assert_eq!(name(bad), None, "{bad}");
        }
    }

    #[test]
    fn credentials_are_redacted_and_the_rest_shown() {
        let properties = properties(&[
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanisms", "SCRAM-SHA-512"),
            ("sasl.username", "beryl-core-api"),
            ("sasl.password", "scram-pw"),
            ("ssl.key.password", "key-pw"),
            ("ssl.key.pem", "-----BEGIN PRIVATE KEY-----"),
            ("sasl.oauthbearer.client.secret", "oidc-secret"),
            ("linger.ms", "5"),
        ]);
        let json = serde_json::to_value(&properties).unwrap();
        let debug = format!("{properties:?}");
        for secret in ["scram-pw", "key-pw", "BEGIN PRIVATE", "oidc-secret"] {
            assert!(!json.to_string().contains(secret), "{secret} in {json}");
            assert!(!debug.contains(secret), "{secret} in {debug}");
        }
        assert_eq!(json["sasl.password"], "[redacted]");
        assert_eq!(json["security.protocol"], "SASL_SSL");
        assert_eq!(json["sasl.username"], "beryl-core-api");
        assert_eq!(json["linger.ms"], "5");
        // What the clients get is the value itself.
        assert_eq!(properties.get("sasl.password"), Some("scram-pw"));
    }

    #[test]
    fn tls_and_sasl_settings_are_checked_before_any_client_is_made() {
        let scram = [("security.protocol", "SASL_SSL"), ("sasl.mechanisms", "SCRAM-SHA-512")];
        let complete = [&scram[..], &[("sasl.username", "u"), ("sasl.password", "p")][..]].concat();
        assert_eq!(problems_of(properties(&complete), Environment::Production), Vec::<String>::new());

        let problems = problems_of(properties(&scram), Environment::Production);
        assert!(problems.iter().any(|p| p.contains("needs sasl.username and sasl.password")), "{problems:?}");

        let problems = problems_of(properties(&[("security.protocol", "TLS")]), Environment::Development);
        assert!(problems.iter().any(|p| p.contains("unknown security protocol")), "{problems:?}");

        let problems = problems_of(
            properties(&[("sasl.mechanism", "GSSAPI"), ("sasl.username", "u"), ("sasl.password", "p")]),
            Environment::Development,
        );
        assert!(problems.iter().any(|p| p.contains("unsupported SASL mechanism")), "{problems:?}");
        assert!(problems.iter().any(|p| p.contains("would never be sent")), "{problems:?}");

        let plain = [
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanisms", "PLAIN"),
            ("sasl.username", "u"),
            ("sasl.password", "p"),
        ];
        assert!(problems_of(properties(&plain), Environment::Staging).is_empty());
        let problems = problems_of(properties(&plain), Environment::Production);
        assert!(problems.iter().any(|p| p.contains("password in clear")), "{problems:?}");

        let missing = [("security.protocol", "SSL"), ("ssl.ca.location", "/nonexistent/kafka-ca.pem")];
        let problems = problems_of(properties(&missing), Environment::Production);
        assert_eq!(
            problems,
            vec!["event_bus.kafka_properties.ssl.ca.location: /nonexistent/kafka-ca.pem does not exist".to_string()]
        );
        let present = [("security.protocol", "SSL"), ("ssl.ca.location", env!("CARGO_MANIFEST_DIR"))];
        assert!(problems_of(properties(&present), Environment::Production).is_empty());
    }

    #[test]
    fn the_retry_backoff_is_capped_above_its_start() {
        let mut found = SettingsProblems::default();
        let settings = EventBusSettings { retry_backoff_ms: 500, retry_backoff_max_ms: 100, ..Default::default() };
        settings.validate(&ValidationContext { environment: Environment::Test }, &mut found);
        let keys: Vec<String> = found.0.into_iter().map(|p| p.key).collect();
        assert_eq!(keys, vec!["event_bus.retry_backoff_max_ms"]);
    }
}
