//! The rules loaded settings must follow, each broken rule reported with a hint.

use std::net::IpAddr;

use super::{Environment, EventBusKind, Problem, Settings, DEVELOPMENT_JWT_KEY};

impl Settings {
    /// Every rule the loaded settings break, each with a hint.
    pub fn validate(&self) -> Vec<Problem> {
        let mut p = Vec::new();
        let mut add = |key: &str, message: String, hint: &str| {
            p.push(Problem { key: key.into(), message, hint: hint.into() });
        };
        let production = self.environment == Environment::Production;

        if self.server.host.parse::<IpAddr>().is_err() && !is_hostname(&self.server.host) {
            add(
                "server.host",
                format!("`{}` is not an IP address or host name", self.server.host),
                "use 0.0.0.0 to listen everywhere or 127.0.0.1 for loopback",
            );
        }
        if self.server.shutdown_grace_period_secs == 0 || self.server.shutdown_grace_period_secs > 600 {
            add(
                "server.shutdown_grace_period_secs",
                format!("{} is out of range", self.server.shutdown_grace_period_secs),
                "give a number of seconds between 1 and 600, below terminationGracePeriodSeconds",
            );
        }
        if self.server.max_body_bytes < 1024 {
            add(
                "server.max_body_bytes",
                format!("{} bytes is too small", self.server.max_body_bytes),
                "allow at least 1024 bytes",
            );
        }
        if !is_log_filter(&self.log.level) {
            add(
                "log.level",
                format!("`{}` is not a log level", self.log.level),
                "use TRACE, DEBUG, INFO, WARN or ERROR, or filter directives such as info,actix_server=warn",
            );
        }
        if self.tracing.enabled && self.tracing.endpoint().is_none() {
            add(
                "tracing.enabled",
                "tracing is enabled but no collector is named".into(),
                "set JAEGER_HOST (OTLP/HTTP on port 4318) or OTEL_EXPORTER_OTLP_ENDPOINT, or TRACING_ENABLED=false",
            );
        }
        if !(0.0..=1.0).contains(&self.tracing.sample_ratio) {
            add(
                "tracing.sample_ratio",
                format!("{} is not a fraction", self.tracing.sample_ratio),
                "give a number between 0.0 and 1.0",
            );
        }
        if self.audit.max_file_bytes < 4096 {
            add(
                "audit.max_file_bytes",
                format!("{} bytes is too small", self.audit.max_file_bytes),
                "allow at least 4096 bytes, e.g. 104857600",
            );
        }
        if self.audit.flush_interval_ms == 0 || self.audit.flush_interval_ms > 10_000 || self.audit.batch_max == 0 {
            add(
                "audit.flush_interval_ms",
                "flush interval must be 1..=10000 ms and batch_max at least 1".into(),
                "for example 5 ms and 1024 records",
            );
        }
        if self.audit.enabled && self.audit.log_file.as_os_str().is_empty() {
            add(
                "audit.log_file",
                "audit is enabled but no file is named".into(),
                "set AUDIT_LOG_FILE to a path on a persistent volume",
            );
        }
        if self.event_bus.kind == Some(EventBusKind::Kafka)
            && self.event_bus.kafka_bootstrap_servers.as_deref().is_none_or(|s| s.trim().is_empty())
        {
            add(
                "event_bus.kafka_bootstrap_servers",
                "EVENT_BUS=kafka needs brokers".into(),
                "set KAFKA_BOOTSTRAP_SERVERS=host:9092[,host:9092]",
            );
        }
        let bus = &self.event_bus;
        if production && bus.effective_kind() == EventBusKind::Memory {
            add(
                "event_bus.kafka_bootstrap_servers",
                "production cannot run on the in-process event bus (events would never leave the process)".into(),
                "set KAFKA_BOOTSTRAP_SERVERS=host:9092[,host:9092]",
            );
        }
        if bus.effective_kind() == EventBusKind::Memory && self.server.role != super::Role::All {
            add(
                "event_bus.kind",
                format!(
                    "the in-process bus needs the API and the worker in one process, not role {}",
                    self.server.role.as_str()
                ),
                "run SERVICE_ROLE=all, or set KAFKA_BOOTSTRAP_SERVERS for separate api and worker deployments",
            );
        }
        if bus.events_topic.trim().is_empty() || bus.inbound_topics.iter().any(|t| t.trim().is_empty()) {
            add("event_bus.events_topic", "topic names cannot be empty".into(), "for example beryl.{domain}.events");
        }
        if bus.dead_letter_suffix.is_empty() || bus.consumer_group.trim().is_empty() {
            add(
                "event_bus.dead_letter_suffix",
                "the dead-letter suffix and the consumer group cannot be empty".into(),
                "for example .dlq and beryl-core-api",
            );
        }
        if bus.max_in_flight == 0 || bus.max_attempts == 0 || bus.relay_batch_rows == 0 {
            add(
                "event_bus.max_in_flight",
                "max_in_flight, max_attempts and relay_batch_rows must be at least 1".into(),
                "for example 2048, 5 and 64",
            );
        }
        if bus.relay_poll_ms == 0 || bus.commit_interval_ms == 0 || bus.fetch_wait_max_ms == 0 {
            add(
                "event_bus.relay_poll_ms",
                "relay_poll_ms, commit_interval_ms and fetch_wait_max_ms must be at least 1 ms".into(),
                "for example 50, 500 and 100",
            );
        }
        match &self.auth.jwt_secret_key {
            Some(key) if key.expose().len() < 32 => add(
                "auth.jwt_secret_key",
                "the key is shorter than 32 bytes".into(),
                "generate one with `openssl rand -hex 32`",
            ),
            Some(key)
                if key.expose() == DEVELOPMENT_JWT_KEY
                    && matches!(self.environment, Environment::Staging | Environment::Production) =>
            {
                add(
                    "auth.jwt_secret_key",
                    "the development key is public".into(),
                    "mount the beryl-secrets secret's jwt-secret-key as JWT_SECRET_KEY",
                )
            }
            None if production => add(
                "auth.jwt_secret_key",
                "production needs a signing key".into(),
                "mount the beryl-secrets secret's jwt-secret-key as JWT_SECRET_KEY",
            ),
            _ => {}
        }
        if self.auth.jwt_secret_key_previous.as_ref().is_some_and(|k| k.expose().len() < 32) {
            add(
                "auth.jwt_secret_key_previous",
                "the key is shorter than 32 bytes".into(),
                "keep the previous value of JWT_SECRET_KEY here during rotation",
            );
        }
        for (key, path) in
            [("auth.public_key_file", &self.auth.public_key_file), ("auth.jwks_file", &self.auth.jwks_file)]
        {
            if let Some(path) = path {
                if !path.is_file() {
                    add(
                        key,
                        format!("{} is not a readable file", path.display()),
                        "mount the key file or unset the variable",
                    );
                }
            }
        }
        if self.auth.issuer.is_empty() || self.auth.audience.is_empty() {
            add(
                "auth.issuer",
                "issuer and audience must not be empty".into(),
                "set JWT_ISSUER and JWT_AUDIENCE to the values your token issuer uses",
            );
        }
        if self.auth.leeway_secs > 300 {
            add(
                "auth.leeway_secs",
                format!("{} s of clock skew is too lenient", self.auth.leeway_secs),
                "keep it under 300, e.g. 30",
            );
        }
        for (name, group) in [
            ("api_read", self.rate_limit.api_read),
            ("api_write", self.rate_limit.api_write),
            ("graphql", self.rate_limit.graphql),
        ] {
            if group.period_secs == 0 {
                add(
                    &format!("rate_limit.{name}.period_secs"),
                    "the period must be at least 1 second".into(),
                    "for example 60",
                );
            }
        }
        for origin in &self.cors.allowed_origins {
            if origin == "*" || !(origin.starts_with("https://") || origin.starts_with("http://")) {
                add(
                    "cors.allowed_origins",
                    format!("`{origin}` is not an exact origin"),
                    "list exact origins such as https://app.beryl-ecosystem.com; wildcards are refused",
                );
            }
        }
        if self.fintech.idempotency_ttl_secs < 60 || self.fintech.max_live_wallets == 0 {
            add(
                "fintech.idempotency_ttl_secs",
                "keys must live at least 60 s, and wallet actors need room".into(),
                "for example 86400 and 10000",
            );
        }
        if self.server.request_timeout_secs == 0 || self.server.request_timeout_secs > 300 {
            add(
                "server.request_timeout_secs",
                format!("{} is out of range", self.server.request_timeout_secs),
                "between 1 and 300 seconds",
            );
        }
        if let Some(url) = &self.database.url {
            if !(url.expose().starts_with("postgres://") || url.expose().starts_with("postgresql://")) {
                add(
                    "database.url",
                    format!("`{}` is not a PostgreSQL URL", url.redacted()),
                    "use postgres://user@host:5432/database",
                );
            } else if url.expose().parse::<tokio_postgres::Config>().is_err() {
                add(
                    "database.url",
                    format!("`{}` cannot be parsed", url.redacted()),
                    "use postgres://user@host:5432/database",
                );
            }
        } else if production {
            add(
                "database.url",
                "production cannot run on the embedded in-memory store".into(),
                "set DATABASE_URL (and DATABASE_PASSWORD from the secret)",
            );
        }
        if let Some(url) = &self.redis.url {
            if redis::Client::open(url.expose()).is_err() {
                add("redis.url", format!("`{}` is not a Redis URL", url.redacted()), "use redis://host:6379/0");
            }
        } else if production {
            add("redis.url", "production cannot run on the embedded in-memory store".into(), "set REDIS_URL");
        }
        if self.database.max_connections == 0 {
            add(
                "database.max_connections",
                "a pool needs at least one connection".into(),
                "use a number from 1 to a few dozen",
            );
        }
        if self.redis.max_connections == 0 {
            add(
                "redis.max_connections",
                "a pool needs at least one connection".into(),
                "use a number from 1 to a few dozen",
            );
        }
        let s = &self.supervision;
        if s.min_backoff_ms == 0 || s.min_backoff_ms > s.max_backoff_ms {
            add(
                "supervision.min_backoff_ms",
                format!("{} ms must be above 0 and at most max_backoff_ms ({} ms)", s.min_backoff_ms, s.max_backoff_ms),
                "for example 100 and 30000",
            );
        }
        if !(0.0..=1.0).contains(&s.jitter) {
            add(
                "supervision.jitter",
                format!("{} is not a fraction", s.jitter),
                "give a number between 0.0 and 1.0, e.g. 0.2",
            );
        }
        if s.max_restarts == 0 {
            add(
                "supervision.max_restarts",
                "0 would fail an actor at its first restart".into(),
                "allow at least 1 restart per window",
            );
        }
        if s.restart_window_secs == 0 {
            add("supervision.restart_window_secs", "the window must not be empty".into(), "for example 60");
        }
        if s.ask_timeout_ms == 0 {
            add("supervision.ask_timeout_ms", "asks would time out at once".into(), "for example 5000");
        }
        if s.mailbox_capacity == 0 {
            add("supervision.mailbox_capacity", "a mailbox needs room for one message".into(), "for example 1024");
        }
        if s.watchdog_interval_ms == 0 || s.watchdog_interval_ms > 1000 {
            add(
                "supervision.watchdog_interval_ms",
                format!("{} ms is out of range", s.watchdog_interval_ms),
                "between 1 and 1000 so readiness follows within a second",
            );
        }
        let h = &self.health;
        if h.probe_interval_ms == 0 || h.probe_timeout_ms == 0 {
            add(
                "health.probe_interval_ms",
                "probe interval and timeout must be above 0".into(),
                "for example 500 and 400",
            );
        }
        if h.live_stall_secs == 0 {
            add("health.live_stall_secs", "must be above 0".into(), "for example 10");
        }
        if self.fault_injection.enabled && production {
            add(
                "fault_injection.enabled",
                "fault injection is refused in production".into(),
                "unset FAULT_INJECTION_ENABLED",
            );
        }
        p
    }
}

/// A level (`INFO`) or directives whose every part names a level (`info,actix_server=warn`).
fn is_log_filter(filter: &str) -> bool {
    const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];
    let filter = filter.to_lowercase();
    let level_ok = |l: &str| LEVELS.contains(&l.trim());
    !filter.trim().is_empty()
        && filter.split(',').all(|part| match part.rsplit_once('=') {
            Some((_, level)) => level_ok(level),
            None => level_ok(part),
        })
        && tracing_subscriber::EnvFilter::try_new(&filter).is_ok()
}

fn is_hostname(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty() && label.len() <= 63 && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}
