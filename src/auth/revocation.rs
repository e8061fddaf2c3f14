//! Revoking one token by its `jti`. The deny list lives in Redis, shared by every replica: one
//! sorted set whose members are the revoked ids, scored by the time until which each must be
//! refused (its token's `exp` plus the leeway, at most the longest lifetime a token may have from
//! now). Entries whose time has passed are dropped at each revocation, and the set itself expires
//! with its last entry. Each replica keeps a copy in memory, read again every
//! `auth.refresh_interval_ms`, so that checking a token costs a hash lookup, never a round trip.
//!
//! When Redis cannot be reached, the rate limiter's choice applies: requests keep being served.
//! A replica keeps refusing every token it knew to be revoked, a revocation cannot be recorded
//! (the admin route answers 503, nothing is half-done) and the copy catches up once Redis is
//! back. In embedded mode (no Redis) the list is this process's own.

use std::{collections::HashMap, time::Duration};

use chrono::{DateTime, Utc};
use parking_lot::RwLock;

use crate::adapters::redis::RedisConnection;

/// Add one id (ARGV[1]) refused until ARGV[2] (seconds), keep the later time if it is already
/// there, drop entries whose time has passed (by Redis' clock) and let the set expire with its
/// last entry.
const REVOKE_SCRIPT: &str = r#"
local now = tonumber(redis.call('TIME')[1])
local refuse_until = tonumber(ARGV[2])
local old = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not old or tonumber(old) < refuse_until then
  redis.call('ZADD', KEYS[1], refuse_until, ARGV[1])
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. now)
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if last[2] then
  redis.call('EXPIREAT', KEYS[1], math.ceil(tonumber(last[2])) + 1)
end
return 1
"#;

/// Why the shared deny list could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum RevocationError {
    /// Redis did not answer in time or failed.
    #[error("the revocation store is unavailable")]
    Unavailable,
}

/// Where the deny list is shared.
enum Store {
    Redis { connection: RedisConnection, key: String, timeout: Duration, script: redis::Script },
    Memory,
}

/// The revoked token ids this replica knows of, and where they are shared.
pub struct Revocations {
    known: RwLock<HashMap<String, i64>>,
    store: Store,
}

impl Revocations {
    /// A deny list shared through the Redis server behind `connection`.
    pub fn redis(connection: RedisConnection, prefix: &str, timeout: Duration) -> Self {
        Self {
            known: RwLock::default(),
            store: Store::Redis {
                connection,
                key: format!("{prefix}revoked-tokens"),
                timeout,
                script: redis::Script::new(REVOKE_SCRIPT),
            },
        }
    }

    /// A deny list of this process only (embedded mode).
    pub fn memory() -> Self {
        Self { known: RwLock::default(), store: Store::Memory }
    }

    /// Whether the token `jti` is revoked: the hot path, a lookup in memory.
    pub fn is_revoked(&self, jti: &str) -> bool {
        self.known.read().get(jti).is_some_and(|until| *until >= Utc::now().timestamp())
    }

    /// Refuse the token `jti` until `until`, on every replica. Recorded here at once, and on
    /// the other replicas at their next refresh.
    pub async fn revoke(&self, jti: &str, until: DateTime<Utc>) -> Result<(), RevocationError> {
        let until = until.timestamp();
        if let Store::Redis { connection, key, timeout, script } = &self.store {
            let invoke = async {
                let mut conn = connection.get().await.map_err(|_| RevocationError::Unavailable)?;
                script
                    .key(key)
                    .arg(jti)
                    .arg(until)
                    .invoke_async::<i64>(&mut conn)
                    .await
                    .map_err(|_| RevocationError::Unavailable)
            };
            tokio::time::timeout(*timeout, invoke).await.map_err(|_| RevocationError::Unavailable)??;
        }
        let mut known = self.known.write();
        let entry = known.entry(jti.to_owned()).or_insert(until);
        *entry = (*entry).max(until);
        Ok(())
    }

    /// Replace this replica's copy with the shared list (dropping what has passed); the number of
    /// ids now known. In embedded mode only drops what has passed.
    pub async fn refresh(&self) -> Result<usize, RevocationError> {
        let now = Utc::now().timestamp();
        let Store::Redis { connection, key, timeout, .. } = &self.store else {
            let mut known = self.known.write();
            known.retain(|_, until| *until >= now);
            return Ok(known.len());
        };
        let read = async {
            let mut conn = connection.get().await.map_err(|_| RevocationError::Unavailable)?;
            redis::cmd("ZRANGEBYSCORE")
                .arg(key)
                .arg(now)
                .arg("+inf")
                .arg("WITHSCORES")
                .query_async::<Vec<(String, i64)>>(&mut conn)
                .await
                .map_err(|_| RevocationError::Unavailable)
        };
        let entries = tokio::time::timeout(*timeout, read).await.map_err(|_| RevocationError::Unavailable)??;
        let fresh: HashMap<String, i64> = entries.into_iter().collect();
        let count = fresh.len();
        *self.known.write() = fresh;
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_rt::test]
    async fn a_revoked_id_is_refused_until_its_time_in_memory() {
        let list = Revocations::memory();
        assert!(!list.is_revoked("t-1"));
        list.revoke("t-1", Utc::now() + chrono::Duration::minutes(5)).await.unwrap();
        list.revoke("t-2", Utc::now() - chrono::Duration::seconds(5)).await.unwrap();
        assert!(list.is_revoked("t-1"));
        assert!(!list.is_revoked("t-2"), "its token has expired: nothing left to refuse");
        assert_eq!(list.refresh().await.unwrap(), 1, "passed entries are dropped");
    }
}
