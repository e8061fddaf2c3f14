//! The shared cache of an adapter's answers, in Redis with a TTL so that every replica uses what
//! one of them fetched. Every lookup is bounded by a short timeout and every failure is a miss:
//! without Redis an adapter still answers, asking the provider each time.

use std::time::Duration;

use metrics::Counter;
use serde::{de::DeserializeOwned, Serialize};

use crate::{adapters::redis::RedisConnection, telemetry, telemetry::Metrics};

/// One adapter's cache; `None` connection (embedded mode) caches nothing.
#[derive(Clone)]
pub struct AdapterCache {
    redis: Option<RedisConnection>,
    prefix: String,
    ttl: Duration,
    timeout: Duration,
    hit: Counter,
    miss: Counter,
    error: Counter,
}

impl AdapterCache {
    /// Keys are `<key_prefix>adapter:<adapter>:<key>`, kept for `ttl`; each Redis command may take
    /// `timeout`.
    pub fn new(
        redis: Option<RedisConnection>,
        key_prefix: &str,
        adapter: &'static str,
        ttl: Duration,
        timeout: Duration,
        metrics: &Metrics,
    ) -> Self {
        let counter = |r: &'static str| metrics::counter!(telemetry::ADAPTER_CACHE_LOOKUPS_TOTAL, "adapter" => adapter, "result" => r);
        let (hit, miss, error) = metrics.with(|| (counter("hit"), counter("miss"), counter("error")));
        let redis = redis.filter(|_| !ttl.is_zero());
        Self { redis, prefix: format!("{key_prefix}adapter:{adapter}:"), ttl, timeout, hit, miss, error }
    }

    /// The cached answer under `key`, if any (a Redis failure is a miss).
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        let redis = self.redis.as_ref()?;
        let key = format!("{}{key}", self.prefix);
        let lookup = async {
            let mut conn = redis.get().await.ok()?;
            redis::cmd("GET").arg(&key).query_async::<Option<Vec<u8>>>(&mut conn).await.ok()
        };
        match tokio::time::timeout(self.timeout, lookup).await {
            Ok(Some(Some(bytes))) => match serde_json::from_slice(&bytes) {
                Ok(value) => {
                    self.hit.increment(1);
                    Some(value)
                }
                Err(_) => {
                    self.error.increment(1);
                    None
                }
            },
            Ok(Some(None)) => {
                self.miss.increment(1);
                None
            }
            Ok(None) | Err(_) => {
                self.error.increment(1);
                None
            }
        }
    }

    /// Keep `value` under `key` for the TTL; a failure is only counted.
    pub async fn put<T: Serialize>(&self, key: &str, value: &T) {
        let Some(redis) = &self.redis else { return };
        let Ok(bytes) = serde_json::to_vec(value) else { return };
        let key = format!("{}{key}", self.prefix);
        let store = async {
            let mut conn = redis.get().await.ok()?;
            redis::cmd("SET")
                .arg(&key)
                .arg(bytes)
                .arg("PX")
                .arg(self.ttl.as_millis() as u64)
                .query_async::<()>(&mut conn)
                .await
                .ok()
        };
        if !matches!(tokio::time::timeout(self.timeout, store).await, Ok(Some(()))) {
            self.error.increment(1);
        }
    }
}
