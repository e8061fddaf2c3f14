//! Redis through bb8-redis.

use std::time::{Duration, Instant};

use bb8_redis::RedisConnectionManager;

use crate::config::RedisSettings;

/// A pool of Redis connections.
pub type RedisPool = bb8::Pool<RedisConnectionManager>;

/// What can go wrong talking to Redis.
#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    /// The URL does not parse.
    #[error("invalid Redis URL")]
    InvalidUrl(#[source] redis::RedisError),
    /// No connection could be had from the pool.
    #[error("no Redis connection available")]
    Pool(#[from] bb8::RunError<redis::RedisError>),
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
            Self::Pool(bb8::RunError::TimedOut) => "connect timeout",
            Self::Pool(bb8::RunError::User(_)) => "connection failed",
            Self::Command(_) => "command failed",
            Self::Timeout => "timeout",
        }
    }
}

/// Build a pool for `settings`; `None` in embedded mode. Connections are opened on demand.
pub fn build_pool(settings: &RedisSettings, connect_timeout: Duration) -> Result<Option<RedisPool>, RedisError> {
    let Some(url) = &settings.url else { return Ok(None) };
    let manager = RedisConnectionManager::new(url.expose()).map_err(RedisError::InvalidUrl)?;
    Ok(Some(
        bb8::Pool::builder()
            .max_size(settings.max_connections)
            .connection_timeout(connect_timeout)
            .build_unchecked(manager),
    ))
}

/// Send `PING` within `timeout`; returns how long it took.
pub async fn ping(pool: &RedisPool, timeout: Duration) -> Result<Duration, RedisError> {
    let started = Instant::now();
    let probe = async {
        let mut conn = pool.get().await?;
        redis::cmd("PING").query_async::<String>(&mut *conn).await?;
        Ok::<_, RedisError>(())
    };
    tokio::time::timeout(timeout, probe).await.map_err(|_| RedisError::Timeout)??;
    Ok(started.elapsed())
}
