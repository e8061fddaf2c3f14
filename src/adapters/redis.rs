//! Redis over one multiplexed connection (redis' `ConnectionManager`): every concurrent command
//! is pipelined on it, a round trip per command rather than a pooled connection per command, and
//! it reconnects by itself.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use redis::aio::ConnectionManager;

use crate::config::RedisSettings;

/// The Redis connection, opened on first use; cheap to clone, every clone shares it.
#[derive(Clone)]
pub struct RedisConnection {
    inner: Arc<Inner>,
}

struct Inner {
    client: redis::Client,
    connection: tokio::sync::OnceCell<ConnectionManager>,
}

/// What can go wrong talking to Redis.
#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    /// The URL does not parse.
    #[error("invalid Redis URL")]
    InvalidUrl(#[source] redis::RedisError),
    /// No connection could be opened.
    #[error("no Redis connection could be opened")]
    Connect(#[source] redis::RedisError),
    /// A command failed.
    #[error("Redis command failed")]
    Command(#[from] redis::RedisError),
    /// The server did not answer in time.
    #[error("Redis did not answer in time")]
    Timeout,
}

impl RedisError {
    /// A short, secret-free description for health reports.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::InvalidUrl(_) => "invalid url",
            Self::Connect(_) => "connection failed",
            Self::Command(_) => "command failed",
            Self::Timeout => "timeout",
        }
    }
}

impl RedisConnection {
    /// The connection for `settings`; `None` in embedded mode. Nothing is opened yet, so this
    /// succeeds while the server is down.
    pub fn from_settings(settings: &RedisSettings) -> Result<Option<Self>, RedisError> {
        let Some(url) = &settings.url else { return Ok(None) };
        let client = redis::Client::open(url.expose()).map_err(RedisError::InvalidUrl)?;
        Ok(Some(Self { inner: Arc::new(Inner { client, connection: tokio::sync::OnceCell::new() }) }))
    }

    /// A handle on the connection, opened first if it never was; once open, it reconnects by
    /// itself.
    pub async fn get(&self) -> Result<ConnectionManager, RedisError> {
        let connection = self
            .inner
            .connection
            .get_or_try_init(|| ConnectionManager::new(self.inner.client.clone()))
            .await
            .map_err(RedisError::Connect)?;
        Ok(connection.clone())
    }
}

/// Send `PING` within `timeout`; returns how long it took.
pub async fn ping(connection: &RedisConnection, timeout: Duration) -> Result<Duration, RedisError> {
    let started = Instant::now();
    let probe = async {
        let mut conn = connection.get().await?;
        redis::cmd("PING").query_async::<String>(&mut conn).await?;
        Ok::<_, RedisError>(())
    };
    tokio::time::timeout(timeout, probe).await.map_err(|_| RedisError::Timeout)??;
    Ok(started.elapsed())
}
