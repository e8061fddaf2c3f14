//! `database`: PostgreSQL connection and pool.

use serde::{Deserialize, Serialize};

use super::{Secret, SecretUrl, Section, SettingsProblems, ValidationContext};

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
    /// Prepared statements each pooled connection keeps, by text, so that a statement is parsed
    /// and planned once per connection rather than on every use; 0 prepares every statement
    /// afresh (for a connection pooler that does not keep prepared statements between
    /// transactions).
    pub statement_cache: usize,
    /// Seconds to wait for a connection before giving up.
    pub connect_timeout_secs: u64,
    /// Whether PostgreSQL must be up for the process to be ready.
    pub required: bool,
    /// Apply pending migrations when the service starts (otherwise run `beryl-core-api migrate`).
    pub migrate_on_start: bool,
    /// Longest a statement may run, milliseconds (PostgreSQL `statement_timeout`, set on every
    /// connection; migrations lift it). The ledger writer also gives up on a commit after this
    /// long plus a second, drops its connection and opens a new one, so that a connection whose
    /// packets are lost cannot hang it.
    pub statement_timeout_ms: u64,
    /// Idle seconds before TCP keepalive probes start on a connection.
    pub keepalive_idle_secs: u64,
    /// Longest data sent may stay unacknowledged before the kernel closes the connection,
    /// milliseconds (TCP_USER_TIMEOUT; Linux).
    pub tcp_user_timeout_ms: u64,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: None,
            password: None,
            max_connections: 16,
            statement_cache: 256,
            connect_timeout_secs: 5,
            required: true,
            migrate_on_start: true,
            statement_timeout_ms: 5_000,
            keepalive_idle_secs: 10,
            tcp_user_timeout_ms: 10_000,
        }
    }
}

impl Section for DatabaseSettings {
    fn validate(&self, ctx: &ValidationContext, problems: &mut SettingsProblems) {
        if let Some(url) = &self.url {
            if !(url.expose().starts_with("postgres://") || url.expose().starts_with("postgresql://")) {
                problems.add(
                    "database.url",
                    format!("`{}` is not a PostgreSQL URL", url.redacted()),
                    "use postgres://user@host:5432/database",
                );
            } else if url.expose().parse::<tokio_postgres::Config>().is_err() {
                problems.add(
                    "database.url",
                    format!("`{}` cannot be parsed", url.redacted()),
                    "use postgres://user@host:5432/database",
                );
            }
        } else if ctx.production() {
            problems.add(
                "database.url",
                "production cannot run on the embedded in-memory store",
                "set DATABASE_URL (and DATABASE_PASSWORD from the secret)",
            );
        }
        if self.statement_timeout_ms == 0 || self.keepalive_idle_secs == 0 || self.tcp_user_timeout_ms == 0 {
            problems.add(
                "database.statement_timeout_ms",
                "statement_timeout_ms, keepalive_idle_secs and tcp_user_timeout_ms must be at least 1 (0 would wait forever)",
                "for example 5000, 10 and 10000",
            );
        }
        if self.max_connections == 0 {
            problems.add(
                "database.max_connections",
                "a pool needs at least one connection",
                "use a number from 1 to a few dozen",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Environment;

    #[test]
    fn no_timeout_may_be_zero() {
        for settings in [
            DatabaseSettings { statement_timeout_ms: 0, ..DatabaseSettings::default() },
            DatabaseSettings { keepalive_idle_secs: 0, ..DatabaseSettings::default() },
            DatabaseSettings { tcp_user_timeout_ms: 0, ..DatabaseSettings::default() },
        ] {
            let mut found = SettingsProblems::default();
            settings.validate(&ValidationContext { environment: Environment::Test }, &mut found);
            let keys: Vec<String> = found.0.into_iter().map(|p| p.key).collect();
            assert_eq!(keys, vec!["database.statement_timeout_ms"]);
        }
    }
}
