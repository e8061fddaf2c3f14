//! Settings: built-in defaults, then `config/<environment>.yaml`, then `BERYL__SECTION__KEY`
//! variables, then the flat variable names the infrastructure document uses (`LOG_LEVEL`, ...).
//!
//! [`Settings::load`] never stops at the first problem: every malformed value and every rule that
//! [`Settings::validate`] finds broken is collected, each with the variable that sets it and a hint.

mod secret;
mod validate;

use std::{fmt, path::PathBuf, time::Duration};

use config::{Config, ConfigError, Environment as EnvSource, File, FileFormat, Value};
use serde::{Deserialize, Serialize};

pub use secret::{Secret, SecretUrl};

/// Flat variable names documented by the infrastructure document (and a few more), with the
/// settings key each one sets. They win over `BERYL__*` and the configuration file.
pub const FLAT_VARIABLES: &[(&str, &str)] = &[
    ("ENVIRONMENT", "environment"),
    ("LOG_LEVEL", "log.level"),
    ("LOG_FORMAT", "log.format"),
    ("METRICS_ENABLED", "metrics.enabled"),
    ("TRACING_ENABLED", "tracing.enabled"),
    ("JAEGER_HOST", "tracing.jaeger_host"),
    ("OTEL_EXPORTER_OTLP_ENDPOINT", "tracing.otlp_endpoint"),
    ("AUDIT_ENABLED", "audit.enabled"),
    ("AUDIT_LOG_FILE", "audit.log_file"),
    ("EVENT_BUS", "event_bus.kind"),
    ("KAFKA_BOOTSTRAP_SERVERS", "event_bus.kafka_bootstrap_servers"),
    ("KAFKA_INBOUND_TOPICS", "event_bus.inbound_topics"),
    ("KAFKA_CONSUMER_GROUP", "event_bus.consumer_group"),
    ("JWT_SECRET_KEY", "auth.jwt_secret_key"),
    ("JWT_KEY_ID", "auth.jwt_key_id"),
    ("JWT_SECRET_KEY_PREVIOUS", "auth.jwt_secret_key_previous"),
    ("JWT_KEY_ID_PREVIOUS", "auth.jwt_key_id_previous"),
    ("JWT_PUBLIC_KEY_FILE", "auth.public_key_file"),
    ("JWT_JWKS_FILE", "auth.jwks_file"),
    ("JWT_ISSUER", "auth.issuer"),
    ("JWT_AUDIENCE", "auth.audience"),
    ("CORS_ALLOWED_ORIGINS", "cors.allowed_origins"),
    ("DATABASE_URL", "database.url"),
    ("DATABASE_PASSWORD", "database.password"),
    ("REDIS_URL", "redis.url"),
    ("HOST", "server.host"),
    ("PORT", "server.port"),
    ("SERVICE_ROLE", "server.role"),
    ("SHUTDOWN_GRACE_PERIOD", "server.shutdown_grace_period_secs"),
    ("FAULT_INJECTION_ENABLED", "fault_injection.enabled"),
];

/// Prefix of the nested form: `BERYL__SUPERVISION__MAX_RESTARTS=5`.
pub const NESTED_PREFIX: &str = "BERYL";

/// The whole configuration of one process.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Deployment environment (ENVIRONMENT): development, test, staging or production.
    pub environment: Environment,
    /// HTTP listener and process lifecycle.
    pub server: ServerSettings,
    /// Log output.
    pub log: LogSettings,
    /// Prometheus exposition.
    pub metrics: MetricsSettings,
    /// OpenTelemetry span export.
    pub tracing: TracingSettings,
    /// Audit trail.
    pub audit: AuditSettings,
    /// Event bus (Kafka or in-process).
    pub event_bus: EventBusSettings,
    /// Token verification.
    pub auth: AuthSettings,
    /// Rate limits.
    pub rate_limit: RateLimitSettings,
    /// Cross-origin requests.
    pub cors: CorsSettings,
    /// PostgreSQL; absent URL means the embedded in-memory mode.
    pub database: DatabaseSettings,
    /// Redis; absent URL means the embedded in-memory mode.
    pub redis: RedisSettings,
    /// Restart policy and timeouts of the actor runtime.
    pub supervision: SupervisionSettings,
    /// Wallets, transfers and idempotency.
    pub fintech: FintechSettings,
    /// Health probing of dependencies.
    pub health: HealthSettings,
    /// Fault-injection switch used by resilience tests; refused in production.
    pub fault_injection: FaultInjectionSettings,
}

/// Where the process runs; changes defaults (log format) and what validation allows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    /// A developer's machine (readable logs, GraphiQL, embedded mode allowed).
    #[default]
    #[serde(alias = "dev", alias = "DEVELOPMENT", alias = "Development")]
    Development,
    /// Automated tests.
    #[serde(alias = "TEST", alias = "Test")]
    Test,
    /// Pre-production cluster.
    #[serde(alias = "STAGING", alias = "Staging")]
    Staging,
    /// Production cluster: secrets and real infrastructure required.
    #[serde(alias = "prod", alias = "PRODUCTION", alias = "Production")]
    Production,
}

impl Environment {
    /// Lower-case name, also the name of the configuration file.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Development => "development",
            Self::Test => "test",
            Self::Staging => "staging",
            Self::Production => "production",
        }
    }
}

/// Which parts of the service this process runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// REST, GraphQL and event-bus workers.
    #[default]
    All,
    /// REST and GraphQL.
    Api,
    /// GraphQL only (the graphql-gateway deployment).
    Graphql,
    /// Event-bus worker: consumers and outbox relay; health and metrics only over HTTP.
    Worker,
}

impl Role {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::All => "all",
            Self::Api => "api",
            Self::Graphql => "graphql",
            Self::Worker => "worker",
        }
    }
    /// Whether the REST API is mounted.
    pub fn serves_rest(self) -> bool {
        matches!(self, Self::All | Self::Api)
    }
    /// Whether the event-bus workers (outbox relay, event consumer) run.
    pub fn runs_worker(self) -> bool {
        matches!(self, Self::All | Self::Worker)
    }
    /// Whether `/graphql` is mounted.
    pub fn serves_graphql(self) -> bool {
        matches!(self, Self::All | Self::Api | Self::Graphql)
    }
}

/// HTTP listener and lifecycle.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    /// Address to bind (HOST).
    pub host: String,
    /// Port to bind (PORT); 0 picks a free port.
    pub port: u16,
    /// Parts of the service this process runs (SERVICE_ROLE).
    pub role: Role,
    /// HTTP worker threads; 0 means one per core.
    pub workers: usize,
    /// Seconds allowed for in-flight requests and actor mailboxes to drain after SIGTERM
    /// (SHUTDOWN_GRACE_PERIOD). Keep it below Kubernetes' terminationGracePeriodSeconds.
    pub shutdown_grace_period_secs: u64,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// Longest time a client may take to send the request head, seconds; handlers themselves are
    /// bounded by `supervision.ask_timeout_ms`.
    pub request_timeout_secs: u64,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            host: "0.0.0.0".into(),
            port: 8000,
            role: Role::All,
            workers: 0,
            shutdown_grace_period_secs: 25,
            max_body_bytes: 256 * 1024,
            request_timeout_secs: 30,
        }
    }
}

impl ServerSettings {
    /// Grace period as a duration.
    pub fn shutdown_grace_period(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_period_secs)
    }
}

/// Log output.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    /// Level or filter directives (LOG_LEVEL), e.g. `INFO` or `info,actix_server=warn`.
    pub level: String,
    /// `json` or `pretty` (LOG_FORMAT); unset means json in staging/production, pretty elsewhere.
    pub format: Option<LogFormat>,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self { level: "info".into(), format: None }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One JSON object per line.
    #[serde(alias = "JSON")]
    Json,
    /// Human-readable lines.
    #[serde(alias = "PRETTY", alias = "text")]
    Pretty,
}

/// Prometheus exposition.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsSettings {
    /// Serve `/metrics` (METRICS_ENABLED).
    pub enabled: bool,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        Self { enabled: true }
    }
}

/// OpenTelemetry span export over OTLP/HTTP.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TracingSettings {
    /// Export spans (TRACING_ENABLED).
    pub enabled: bool,
    /// Collector host (JAEGER_HOST); spans go to `http://<host>:4318/v1/traces`.
    pub jaeger_host: Option<String>,
    /// Full OTLP/HTTP traces endpoint (OTEL_EXPORTER_OTLP_ENDPOINT); wins over `jaeger_host`.
    pub otlp_endpoint: Option<String>,
    /// Fraction of traces sampled, 0.0 to 1.0.
    pub sample_ratio: f64,
}

impl Default for TracingSettings {
    fn default() -> Self {
        Self { enabled: false, jaeger_host: None, otlp_endpoint: None, sample_ratio: 1.0 }
    }
}

impl TracingSettings {
    /// The OTLP/HTTP traces endpoint, if one is configured.
    pub fn endpoint(&self) -> Option<String> {
        self.otlp_endpoint
            .clone()
            .or_else(|| self.jaeger_host.as_ref().map(|host| format!("http://{host}:4318/v1/traces")))
    }
}

/// Audit trail.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditSettings {
    /// Write audit records (AUDIT_ENABLED).
    pub enabled: bool,
    /// File receiving JSON lines (AUDIT_LOG_FILE); rotated files get a numeric suffix.
    pub log_file: PathBuf,
    /// Size in bytes after which the file is rotated; the hash chain continues in the next file.
    pub max_file_bytes: u64,
    /// Longest time a record waits before its batch is written and fsynced, milliseconds.
    pub flush_interval_ms: u64,
    /// Most records written and fsynced together.
    pub batch_max: usize,
    /// What a state-changing request does when its audit record cannot be taken: `fail_closed`
    /// refuses it (503), `fail_open` serves it and counts the loss. Unset means fail_closed in
    /// production, fail_open elsewhere.
    pub failure_policy: Option<AuditFailurePolicy>,
}

impl Default for AuditSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            log_file: PathBuf::from("/var/log/beryl/audit.log"),
            max_file_bytes: 100 * 1024 * 1024,
            flush_interval_ms: 5,
            batch_max: 1024,
            failure_policy: None,
        }
    }
}

/// Request outcome when auditing fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditFailurePolicy {
    /// Refuse state-changing requests that cannot be audited.
    FailClosed,
    /// Serve them and count the missing records.
    FailOpen,
}

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
    /// Attempts to apply an event whose failure may be transient before it is dead-lettered.
    pub max_attempts: u32,
    /// Wait before the first retry, doubled at each attempt, milliseconds.
    pub retry_backoff_ms: u64,
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
            max_attempts: 5,
            retry_backoff_ms: 100,
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

/// Token verification.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// HS256 signing key (JWT_SECRET_KEY); at least 32 bytes, required in production.
    pub jwt_secret_key: Option<Secret>,
    /// `kid` of the current key (JWT_KEY_ID); tokens carrying a `kid` are matched on it.
    pub jwt_key_id: Option<String>,
    /// The key being rotated out (JWT_SECRET_KEY_PREVIOUS), still accepted until removed.
    pub jwt_secret_key_previous: Option<Secret>,
    /// `kid` of the previous key (JWT_KEY_ID_PREVIOUS).
    pub jwt_key_id_previous: Option<String>,
    /// PEM public key (RSA for RS256 or P-256 for ES256) accepted besides the HS256 keys
    /// (JWT_PUBLIC_KEY_FILE).
    pub public_key_file: Option<PathBuf>,
    /// JWKS file of RS256/ES256 public keys, matched by `kid` (JWT_JWKS_FILE).
    pub jwks_file: Option<PathBuf>,
    /// Required `iss` claim (JWT_ISSUER).
    pub issuer: String,
    /// Required `aud` claim (JWT_AUDIENCE).
    pub audience: String,
    /// Clock skew tolerated on `exp` and `nbf`, seconds.
    pub leeway_secs: u64,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            jwt_secret_key: None,
            jwt_key_id: None,
            jwt_secret_key_previous: None,
            jwt_key_id_previous: None,
            public_key_file: None,
            jwks_file: None,
            issuer: "https://api.beryl-ecosystem.com".into(),
            audience: "beryl-core-api".into(),
            leeway_secs: 30,
        }
    }
}

/// The key shipped in `config/development.yaml` so that the quick start works; refused in
/// staging and production.
pub const DEVELOPMENT_JWT_KEY: &str = "development-only-signing-key-never-use-in-production";

/// Rate limits, per route group, per subject and per client IP.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitSettings {
    /// Apply rate limits.
    pub enabled: bool,
    /// Take the client IP from `X-Forwarded-For` (only behind a trusted proxy such as the ingress).
    pub trust_forwarded_for: bool,
    /// Longest wait for Redis before failing open, milliseconds.
    pub redis_timeout_ms: u64,
    /// Reads under `/api`.
    pub api_read: RateLimitGroup,
    /// Writes under `/api`.
    pub api_write: RateLimitGroup,
    /// `POST /graphql`.
    pub graphql: RateLimitGroup,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            trust_forwarded_for: false,
            redis_timeout_ms: 50,
            api_read: RateLimitGroup { per_subject: 1200, per_ip: 2400, period_secs: 60 },
            api_write: RateLimitGroup { per_subject: 300, per_ip: 600, period_secs: 60 },
            graphql: RateLimitGroup { per_subject: 600, per_ip: 1200, period_secs: 60 },
        }
    }
}

/// Limits of one route group: requests allowed per period (0 = unlimited), with bursts up to the
/// limit.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitGroup {
    /// Requests per period for one authenticated subject.
    pub per_subject: u32,
    /// Requests per period from one client IP.
    pub per_ip: u32,
    /// Period, seconds.
    pub period_secs: u64,
}

/// Cross-origin requests.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct CorsSettings {
    /// Origins allowed to call the API from a browser (CORS_ALLOWED_ORIGINS, comma-separated);
    /// empty allows none.
    pub allowed_origins: Vec<String>,
}

/// PostgreSQL.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSettings {
    /// Connection URL (DATABASE_URL), `postgres://user@host:port/db`; unset means embedded mode.
    pub url: Option<SecretUrl>,
    /// Password (DATABASE_PASSWORD); replaces any password in the URL.
    pub password: Option<Secret>,
    /// Largest number of pooled connections.
    pub max_connections: u32,
    /// Seconds to wait for a connection before giving up.
    pub connect_timeout_secs: u64,
    /// Whether PostgreSQL must be up for the process to be ready.
    pub required: bool,
    /// Apply pending migrations when the service starts (otherwise run `beryl-core-api migrate`).
    pub migrate_on_start: bool,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: None,
            password: None,
            max_connections: 16,
            connect_timeout_secs: 5,
            required: true,
            migrate_on_start: true,
        }
    }
}

/// Redis.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisSettings {
    /// Connection URL (REDIS_URL), `redis://host:port/db`; unset means embedded mode.
    pub url: Option<SecretUrl>,
    /// Largest number of pooled connections.
    pub max_connections: u32,
    /// Whether Redis must be up for the process to be ready (rate limits fail open, so no).
    pub required: bool,
    /// Prefix of every key this service writes, so that several deployments can share a server.
    pub key_prefix: String,
}

impl Default for RedisSettings {
    fn default() -> Self {
        Self { url: None, max_connections: 16, required: false, key_prefix: "beryl:".into() }
    }
}

/// Restart policy and timeouts of the actor runtime.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SupervisionSettings {
    /// First restart delay, milliseconds.
    pub min_backoff_ms: u64,
    /// Longest restart delay, milliseconds.
    pub max_backoff_ms: u64,
    /// Random spread of each delay, as a fraction (0.2 = plus or minus 20 %).
    pub jitter: f64,
    /// Seconds of running without failure after which the delay starts again from the minimum.
    pub reset_after_secs: u64,
    /// Restarts allowed within `restart_window_secs` before the actor is marked failed.
    pub max_restarts: u32,
    /// Window over which restarts are counted, seconds; a failed actor is retried after it.
    pub restart_window_secs: u64,
    /// How long an HTTP handler waits for an actor's answer, milliseconds.
    pub ask_timeout_ms: u64,
    /// Mailbox capacity of each actor.
    pub mailbox_capacity: usize,
    /// How often the watchdog looks for actors whose mailbox closed, milliseconds.
    pub watchdog_interval_ms: u64,
}

impl Default for SupervisionSettings {
    fn default() -> Self {
        Self {
            min_backoff_ms: 100,
            max_backoff_ms: 30_000,
            jitter: 0.2,
            reset_after_secs: 60,
            max_restarts: 5,
            restart_window_secs: 60,
            ask_timeout_ms: 5_000,
            mailbox_capacity: 1024,
            watchdog_interval_ms: 200,
        }
    }
}

/// The fintech domain.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct FintechSettings {
    /// How long an idempotency key and its response are kept, seconds (Stripe keeps 24 h).
    pub idempotency_ttl_secs: u64,
    /// A wallet actor unused this long is stopped, seconds.
    pub wallet_idle_secs: u64,
    /// Most wallet actors alive at once.
    pub max_live_wallets: usize,
    /// Threads of their own the wallet actors are spread over; 0 keeps them on the domain
    /// actor's thread, which saves a thread switch on the way in and on the way out of every
    /// command.
    pub wallet_threads: usize,
}

impl Default for FintechSettings {
    fn default() -> Self {
        Self { idempotency_ttl_secs: 24 * 3600, wallet_idle_secs: 300, max_live_wallets: 10_000, wallet_threads: 0 }
    }
}

/// Dependency probing.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealthSettings {
    /// How often owners probe their dependencies, milliseconds.
    pub probe_interval_ms: u64,
    /// How long one probe may take before the dependency counts as down, milliseconds.
    pub probe_timeout_ms: u64,
    /// Seconds without a watchdog tick after which `/health/live` fails.
    pub live_stall_secs: u64,
}

impl Default for HealthSettings {
    fn default() -> Self {
        Self { probe_interval_ms: 500, probe_timeout_ms: 400, live_stall_secs: 10 }
    }
}

/// Fault injection for resilience tests.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultInjectionSettings {
    /// Mount `POST /internal/faults/{actor}` (FAULT_INJECTION_ENABLED); refused in production.
    pub enabled: bool,
}

/// One thing wrong with the settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Settings key, e.g. `server.port`.
    pub key: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}; hint: {}", self.key, variables_for(&self.key), self.message, self.hint)
    }
}

/// Every problem found while loading or validating settings.
#[derive(Debug, Clone)]
pub struct Problems(pub Vec<Problem>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "invalid configuration ({} problem(s)):", self.0.len())?;
        for problem in &self.0 {
            writeln!(f, "  - {problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

/// The variables that set `key`: its flat name if it has one, and its nested form.
pub fn variables_for(key: &str) -> String {
    let nested = format!("{NESTED_PREFIX}__{}", key.replace('.', "__").to_uppercase());
    match FLAT_VARIABLES.iter().find(|(_, k)| *k == key) {
        Some((flat, _)) => format!("{flat} or {nested}"),
        None => nested,
    }
}

/// Where settings come from; tests pass their own variables instead of the process environment.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// Directory holding `<environment>.yaml`.
    pub config_dir: Option<PathBuf>,
    /// Variables to read; `None` reads the process environment.
    pub vars: Option<Vec<(String, String)>>,
}

impl Sources {
    fn vars(&self) -> Vec<(String, String)> {
        match &self.vars {
            Some(vars) => vars.clone(),
            None => std::env::vars().collect(),
        }
    }
}

impl Settings {
    /// Load from every source and validate; `Err` lists every problem found.
    pub fn load(sources: &Sources) -> Result<Self, Problems> {
        let vars = sources.vars();
        let lookup = |name: &str| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());

        // The environment decides which file is read, so it is resolved first.
        let env_name = lookup("ENVIRONMENT")
            .or_else(|| lookup(&format!("{NESTED_PREFIX}__ENVIRONMENT")))
            .unwrap_or_else(|| Environment::default().as_str().into())
            .to_lowercase();
        let config_dir = sources
            .config_dir
            .clone()
            .or_else(|| lookup("CONFIG_DIR").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("config"));

        let mut problems = Vec::new();
        let file = config_dir.join(format!("{env_name}.yaml"));
        // Defaults are the first layer, so that a partial override of a nested section keeps the
        // defaults of its other keys.
        let defaults = Config::try_from(&Settings::default()).map_err(|e| Problems(vec![problem_from("", &e)]))?;
        let mut builder = Config::builder()
            .add_source(defaults.clone())
            .add_source(File::from(file.as_path()).format(FileFormat::Yaml).required(false));
        let nested: std::collections::HashMap<String, String> =
            vars.iter().filter(|(k, _)| k.starts_with(&format!("{NESTED_PREFIX}__"))).cloned().collect();
        builder = builder.add_source(
            EnvSource::with_prefix(NESTED_PREFIX).prefix_separator("__").separator("__").source(Some(nested)),
        );
        for (var, key) in FLAT_VARIABLES {
            if let Some(value) = lookup(var) {
                // An empty variable means "not set", as Kubernetes renders optional values.
                if value.is_empty() {
                    continue;
                }
                let value: Value = if matches!(*var, "CORS_ALLOWED_ORIGINS" | "KAFKA_INBOUND_TOPICS") {
                    value
                        .split(',')
                        .map(str::trim)
                        .filter(|o| !o.is_empty())
                        .map(String::from)
                        .collect::<Vec<_>>()
                        .into()
                } else {
                    value.into()
                };
                builder = match builder.set_override(*key, value) {
                    Ok(b) => b,
                    Err(e) => return Err(Problems(vec![problem_from(key, &e)])),
                };
            }
        }

        // Deserialize; on a malformed value record it, put the default back and try again, so
        // that every malformed value is reported at once.
        let settings = loop {
            let config = match builder.build_cloned() {
                Ok(c) => c,
                Err(e) => {
                    problems.push(problem_from(&file.display().to_string(), &e));
                    return Err(Problems(problems));
                }
            };
            match config.try_deserialize::<Settings>() {
                Ok(settings) => break settings,
                Err(e) => {
                    let key = error_key(&e);
                    problems.push(problem_from(key.as_deref().unwrap_or("settings"), &e));
                    let replacement =
                        key.as_deref().and_then(|k| defaults.get::<Value>(k).ok().map(|v| (k.to_string(), v)));
                    match replacement {
                        Some((k, v)) if problems.len() < 32 => {
                            builder = builder.set_override(k, v).map_err(|e| Problems(vec![problem_from("", &e)]))?;
                        }
                        _ => return Err(Problems(problems)),
                    }
                }
            }
        };
        problems.extend(settings.validate());
        if problems.is_empty() {
            Ok(settings)
        } else {
            Err(Problems(problems))
        }
    }

    /// Audit failure policy in effect once the environment default is applied.
    pub fn audit_failure_policy(&self) -> AuditFailurePolicy {
        self.audit.failure_policy.unwrap_or(match self.environment {
            Environment::Production => AuditFailurePolicy::FailClosed,
            _ => AuditFailurePolicy::FailOpen,
        })
    }

    /// Log format in effect once the environment default is applied.
    pub fn log_format(&self) -> LogFormat {
        self.log.format.unwrap_or(match self.environment {
            Environment::Staging | Environment::Production => LogFormat::Json,
            Environment::Development | Environment::Test => LogFormat::Pretty,
        })
    }

    /// Whether nothing external is configured, so every store is in-process.
    pub fn is_embedded(&self) -> bool {
        self.database.url.is_none()
            && self.redis.url.is_none()
            && self.event_bus.effective_kind() == EventBusKind::Memory
    }

    /// The effective configuration with secrets redacted, as YAML-like JSON for `config check`.
    pub fn redacted_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

fn error_key(error: &ConfigError) -> Option<String> {
    match error {
        ConfigError::Type { key: Some(key), .. } => Some(key.clone()),
        ConfigError::At { key: Some(key), .. } => Some(key.clone()),
        _ => None,
    }
}

fn problem_from(key: &str, error: &ConfigError) -> Problem {
    let message = match error {
        ConfigError::Type { unexpected, expected, .. } => format!("found {unexpected}, expected {expected}"),
        other => other.to_string(),
    };
    Problem {
        key: key.to_string(),
        message,
        hint: "see the configuration table in README.md for the accepted values".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(vars: &[(&str, &str)]) -> Result<Settings, Problems> {
        Settings::load(&Sources {
            config_dir: Some(PathBuf::from("/nonexistent")),
            vars: Some(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
        })
    }

    #[test]
    fn defaults_are_valid_and_embedded() {
        let settings = load(&[]).unwrap();
        assert!(settings.is_embedded());
        assert_eq!(settings.server.port, 8000);
        assert_eq!(settings.log_format(), LogFormat::Pretty);
    }

    #[test]
    fn seed_variables_are_honoured() {
        let settings = load(&[
            ("ENVIRONMENT", "staging"),
            ("LOG_LEVEL", "INFO"),
            ("METRICS_ENABLED", "false"),
            ("EVENT_BUS", "kafka"),
            ("KAFKA_BOOTSTRAP_SERVERS", "kafka:9092"),
            ("AUDIT_ENABLED", "true"),
            ("AUDIT_LOG_FILE", "/tmp/a.log"),
            ("PORT", "9001"),
            ("BERYL__SUPERVISION__MAX_RESTARTS", "7"),
            ("BERYL__EVENT_BUS__RELAY", "false"),
        ])
        .unwrap();
        assert_eq!(settings.environment, Environment::Staging);
        assert!(!settings.metrics.enabled);
        assert_eq!(settings.event_bus.effective_kind(), EventBusKind::Kafka);
        assert_eq!(settings.server.port, 9001);
        assert_eq!(settings.supervision.max_restarts, 7);
        assert!(!settings.event_bus.relay);
        assert!(Settings::default().event_bus.relay);
        assert_eq!(settings.log_format(), LogFormat::Json);
        assert!(settings.audit.enabled);
    }

    #[test]
    fn every_malformed_value_is_reported() {
        let problems = load(&[("PORT", "eighty"), ("METRICS_ENABLED", "maybe"), ("LOG_LEVEL", "loud")]).unwrap_err();
        let keys: Vec<_> = problems.0.iter().map(|p| p.key.as_str()).collect();
        assert!(keys.contains(&"server.port"), "{problems}");
        assert!(keys.contains(&"metrics.enabled"), "{problems}");
        assert!(keys.contains(&"log.level"), "{problems}");
        assert!(problems.to_string().contains("PORT or BERYL__SERVER__PORT"));
    }

    #[test]
    fn production_refuses_embedded_mode_and_fault_injection() {
        let problems = load(&[("ENVIRONMENT", "production"), ("FAULT_INJECTION_ENABLED", "true")]).unwrap_err();
        let keys: Vec<_> = problems.0.iter().map(|p| p.key.as_str()).collect();
        for key in [
            "database.url",
            "redis.url",
            "auth.jwt_secret_key",
            "fault_injection.enabled",
            "event_bus.kafka_bootstrap_servers",
        ] {
            assert!(keys.contains(&key), "{key} missing from {problems}");
        }
    }

    #[test]
    fn unknown_nested_keys_are_refused() {
        assert!(load(&[("BERYL__SERVER__PROT", "1")]).is_err());
    }

    #[test]
    fn urls_are_redacted() {
        assert_eq!(
            secret::redact_url("postgres://app:hunter2@db:5432/beryl"),
            "postgres://app:[redacted]@db:5432/beryl"
        );
        assert_eq!(secret::redact_url("redis://:pw@cache:6379/0"), "redis://:[redacted]@cache:6379/0");
        assert_eq!(secret::redact_url("postgres://app@db/beryl"), "postgres://app@db/beryl");
        let json =
            serde_json::to_string(&load(&[("JWT_SECRET_KEY", "0123456789abcdef0123456789abcdef")]).unwrap()).unwrap();
        assert!(!json.contains("0123456789abcdef"));
    }
}
