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
        if self.max_connections == 0 {
            problems.add(
                "database.max_connections",
                "a pool needs at least one connection",
                "use a number from 1 to a few dozen",
            );
        }
    }
}
