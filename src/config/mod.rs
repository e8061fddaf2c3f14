//! Settings: built-in defaults, then `config/<environment>.yaml`, then `BERYL__SECTION__KEY`
//! variables, then the flat variable names the infrastructure document uses (`LOG_LEVEL`, ...).
//!
//! [`Settings::load`] never stops at the first problem: every malformed value and every rule that
//! [`Settings::validate`] finds broken is collected, each with the variable that sets it and a hint.
//!
//! Each section is a file holding its types, defaults and rules (a [`Section`]); a new section is
//! one file, one field of [`Settings`] and one line of [`Settings::validate`].

mod adapters;
mod audit;
mod auth;
mod cors;
mod database;
mod esg;
mod event_bus;
mod fault_injection;
mod fintech;
mod graphql;
mod health;
mod load;
mod log;
mod metrics;
mod mobility;
mod privacy;
mod rate_limit;
mod redis;
mod secret;
mod server;
mod social;
mod supervision;
mod tracing;
mod validate;

use serde::{Deserialize, Serialize};

pub use adapters::{AdapterSettings, AdaptersSettings, PaymentsSettings};
pub use audit::{AuditFailurePolicy, AuditSettings};
pub use auth::{AuthSettings, DEVELOPMENT_JWT_KEY};
pub use cors::CorsSettings;
pub use database::DatabaseSettings;
pub use esg::{EsgSettings, EMITTING_TYPES as ESG_EMITTING_TYPES};
pub use event_bus::{EventBusKind, EventBusSettings, KafkaProperties, KAFKA_PROPERTY_PREFIX};
pub use fault_injection::FaultInjectionSettings;
pub use fintech::FintechSettings;
pub use graphql::{GraphqlSettings, GRAPHQL_DEPTH_CEILING};
pub use health::HealthSettings;
pub use load::{variables_for, Sources, FLAT_VARIABLES, NESTED_PREFIX};
pub use log::{LogFormat, LogSettings};
pub use metrics::MetricsSettings;
pub use mobility::{MobilitySettings, TariffSettings, MODES as MOBILITY_MODES};
pub use privacy::{PrivacySettings, DEVELOPMENT_BLIND_INDEX_KEY, DEVELOPMENT_MASTER_KEY};
pub use rate_limit::{IpNetwork, RateLimitGroup, RateLimitSettings};
pub use redis::RedisSettings;
pub use secret::{Secret, SecretUrl};
pub use server::ServerSettings;
pub use social::SocialSettings;
pub use supervision::SupervisionSettings;
pub use tracing::TracingSettings;
pub use validate::{Section, SettingsProblem, SettingsProblems, ValidationContext};

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
    /// GraphQL: introspection, GraphiQL and operation limits.
    pub graphql: GraphqlSettings,
    /// External APIs (routing, emissions, payments).
    pub adapters: AdaptersSettings,
    /// Personal data: keys, key cache and retention.
    pub privacy: PrivacySettings,
    /// Drivers, quotes, rides, dispatch and fares.
    pub mobility: MobilitySettings,
    /// ESG: how activities are priced, and the subjects' actors.
    pub esg: EsgSettings,
    /// Social: the cached home timelines.
    pub social: SocialSettings,
}

/// Where the process runs; changes defaults (log format) and what validation allows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
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
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
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

impl Settings {
    /// Every rule the loaded settings break, each with a hint.
    pub fn validate(&self) -> Vec<SettingsProblem> {
        let ctx = ValidationContext { environment: self.environment };
        let sections: &[&dyn Section] = &[
            &self.server,
            &self.log,
            &self.metrics,
            &self.tracing,
            &self.audit,
            &self.event_bus,
            &self.auth,
            &self.rate_limit,
            &self.cors,
            &self.database,
            &self.redis,
            &self.supervision,
            &self.fintech,
            &self.health,
            &self.fault_injection,
            &self.graphql,
            &self.adapters,
            &self.privacy,
            &self.mobility,
            &self.esg,
            &self.social,
        ];
        let mut problems = SettingsProblems::default();
        for section in sections {
            section.validate(&ctx, &mut problems);
        }
        validate::across_sections(self, &mut problems);
        problems.0
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
