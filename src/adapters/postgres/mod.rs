//! PostgreSQL through bb8-postgres.

use std::time::{Duration, Instant};

use tokio_postgres::NoTls;

use crate::config::DatabaseSettings;

mod cached;

pub use cached::{Manager, Params, PgConnection, PgTransaction, Statements};

/// A pool of PostgreSQL connections.
pub type PgPool = bb8::Pool<Manager>;

/// What can go wrong talking to PostgreSQL.
#[derive(Debug, thiserror::Error)]
pub enum PostgresError {
    /// The URL does not parse.
    #[error("invalid PostgreSQL URL")]
    InvalidUrl(#[source] tokio_postgres::Error),
    /// No connection could be had from the pool.
    #[error("no PostgreSQL connection available")]
    Pool(#[from] bb8::RunError<tokio_postgres::Error>),
    /// A statement failed.
    #[error("PostgreSQL statement failed")]
    Query(#[from] tokio_postgres::Error),
    /// The server did not answer in time.
    #[error("PostgreSQL did not answer in time")]
    Timeout,
}

impl PostgresError {
    /// A short, secret-free description for health reports.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::InvalidUrl(_) => "invalid url",
            Self::Pool(bb8::RunError::TimedOut) => "connect timeout",
            Self::Pool(bb8::RunError::User(_)) => "connection failed",
            Self::Query(_) => "query failed",
            Self::Timeout => "timeout",
        }
    }
}

/// Connection settings for `settings`; `None` in embedded mode.
pub fn connect_config(settings: &DatabaseSettings) -> Result<Option<tokio_postgres::Config>, PostgresError> {
    let Some(url) = &settings.url else { return Ok(None) };
    let mut config: tokio_postgres::Config = url.expose().parse().map_err(PostgresError::InvalidUrl)?;
    if let Some(password) = &settings.password {
        config.password(password.expose());
    }
    config.application_name("beryl-core-api");
    config.connect_timeout(Duration::from_secs(settings.connect_timeout_secs));
    // A dead peer or lost packets end the connection instead of hanging it: keepalive probes
    // when idle, a bound on unacknowledged data when not, and a bound on every statement.
    config.keepalives(true);
    config.keepalives_idle(Duration::from_secs(settings.keepalive_idle_secs));
    config.tcp_user_timeout(Duration::from_millis(settings.tcp_user_timeout_ms));
    let timeout = format!("-c statement_timeout={}", settings.statement_timeout_ms);
    let options = match config.get_options() {
        Some(given) if !given.trim().is_empty() => format!("{given} {timeout}"),
        _ => timeout,
    };
    config.options(options);
    Ok(Some(config))
}

/// Open one connection outside any pool (migrations, the ledger's group-commit writer); its
/// connection task runs on the current runtime.
pub async fn connect(config: &tokio_postgres::Config) -> Result<tokio_postgres::Client, PostgresError> {
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "PostgreSQL connection closed");
        }
    });
    Ok(client)
}

/// Build a pool for `settings`; `None` in embedded mode. Connections are opened on demand, so
/// building succeeds while the server is down.
pub fn build_pool(settings: &DatabaseSettings) -> Result<Option<PgPool>, PostgresError> {
    let Some(config) = connect_config(settings)? else { return Ok(None) };
    let manager = Manager::new(config, settings.statement_cache);
    Ok(Some(
        bb8::Pool::builder()
            .max_size(settings.max_connections)
            .connection_timeout(Duration::from_secs(settings.connect_timeout_secs))
            .build_unchecked(manager),
    ))
}

/// Run `SELECT 1` within `timeout`; returns how long it took.
pub async fn ping(pool: &PgPool, timeout: Duration) -> Result<Duration, PostgresError> {
    let started = Instant::now();
    let probe = async {
        let conn = pool.get().await?;
        conn.simple_query("SELECT 1").await?;
        Ok::<_, PostgresError>(())
    };
    tokio::time::timeout(timeout, probe).await.map_err(|_| PostgresError::Timeout)??;
    Ok(started.elapsed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_connection_is_bounded_in_time_and_keeps_the_options_of_the_url() {
        let settings = DatabaseSettings {
            url: Some("postgres://beryl@db:5432/beryl?options=-c%20search_path%3Dledger".into()),
            statement_timeout_ms: 1_500,
            keepalive_idle_secs: 7,
            tcp_user_timeout_ms: 9_000,
            ..DatabaseSettings::default()
        };
        let config = connect_config(&settings).unwrap().unwrap();
        assert_eq!(config.get_options(), Some("-c search_path=ledger -c statement_timeout=1500"));
        assert!(config.get_keepalives());
        assert_eq!(config.get_keepalives_idle(), Duration::from_secs(7));
        assert_eq!(config.get_tcp_user_timeout(), Some(&Duration::from_millis(9_000)));
    }
}
