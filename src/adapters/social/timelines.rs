//! Home timelines cached in Redis: one sorted set per reader (score: a post's time in
//! microseconds, member: its id), shared by every replica, capped in length, with a marker
//! member (score 0) that tells a timeline built empty from one Redis lost. PostgreSQL is the
//! source of truth: a timeline that is missing is rebuilt from it, and every entry is checked
//! against it when read, so a cached entry can only be late, never wrong. In the embedded mode
//! the same timelines live in process memory.

use std::{
    collections::{BTreeSet, HashMap},
    sync::Arc,
    time::Duration,
};

use parking_lot::Mutex;
use uuid::Uuid;

use super::SocialStoreError;
use crate::adapters::redis::RedisConnection;

/// The member marking a timeline as built.
const BUILT: &str = "built";

/// Add a post to each timeline given that exists, and trim it to its length (the marker, at
/// rank 0, stays): KEYS the timelines, ARGV the score, the post's id and the length.
const PUSH: &str = r"
for _, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 1 then
    redis.call('ZADD', key, ARGV[1], ARGV[2])
    redis.call('ZREMRANGEBYRANK', key, 1, -(tonumber(ARGV[3]) + 2))
  end
end
return #KEYS
";

/// Keys per call of the push script.
const PUSH_CHUNK: usize = 500;

/// An entry: the post's time (microseconds since the epoch) and id.
pub type Entry = (i64, Uuid);

/// Where the timelines are; cheap to clone.
#[derive(Clone)]
pub enum Timelines {
    /// Redis.
    Redis {
        /// The connection.
        connection: RedisConnection,
        /// Key prefix (`<redis.key_prefix>social:tl:`).
        prefix: Arc<str>,
        /// Most a call may take.
        timeout: Duration,
        /// Entries kept per timeline.
        length: usize,
        /// How long a timeline lives after it was built.
        ttl: Duration,
    },
    /// Process memory: per reader, its entries.
    Memory(Arc<Mutex<HashMap<Uuid, BTreeSet<Entry>>>>, usize),
}

fn unavailable(what: &str) -> SocialStoreError {
    SocialStoreError::Unavailable(format!("timelines: {what}"))
}

impl Timelines {
    /// Timelines in process memory, `length` entries each.
    pub fn memory(length: usize) -> Self {
        Self::Memory(Arc::default(), length)
    }

    /// Entries kept per timeline.
    pub fn length(&self) -> usize {
        match self {
            Self::Redis { length, .. } | Self::Memory(_, length) => *length,
        }
    }

    fn key(prefix: &str, reader: Uuid) -> String {
        format!("{prefix}{reader}")
    }

    async fn run<T: redis::FromRedisValue>(
        connection: &RedisConnection,
        timeout: Duration,
        pipe: redis::Pipeline,
    ) -> Result<T, SocialStoreError> {
        let call = async {
            let mut conn = connection.get().await.map_err(|e| unavailable(e.kind()))?;
            pipe.query_async::<T>(&mut conn).await.map_err(|_| unavailable("redis command failed"))
        };
        tokio::time::timeout(timeout, call).await.map_err(|_| unavailable("redis timeout"))?
    }

    /// Add the post `entry` to the timelines of `readers` that exist (a missing one is rebuilt,
    /// with it, when read): how many timelines were asked.
    pub async fn push(&self, readers: &[Uuid], entry: Entry) -> Result<usize, SocialStoreError> {
        match self {
            Self::Memory(m, length) => {
                let mut m = m.lock();
                for reader in readers {
                    if let Some(timeline) = m.get_mut(reader) {
                        timeline.insert(entry);
                        while timeline.len() > *length {
                            timeline.pop_first();
                        }
                    }
                }
                Ok(readers.len())
            }
            Self::Redis { connection, prefix, timeout, length, .. } => {
                let script = redis::Script::new(PUSH);
                for chunk in readers.chunks(PUSH_CHUNK) {
                    let mut call = script.prepare_invoke();
                    for reader in chunk {
                        call.key(Self::key(prefix, *reader));
                    }
                    call.arg(entry.0).arg(entry.1.to_string()).arg(*length);
                    let run = async {
                        let mut conn = connection.get().await.map_err(|e| unavailable(e.kind()))?;
                        call.invoke_async::<i64>(&mut conn).await.map_err(|_| unavailable("push failed"))
                    };
                    tokio::time::timeout(*timeout, run).await.map_err(|_| unavailable("redis timeout"))??;
                }
                Ok(readers.len())
            }
        }
    }

    /// Up to `limit` entries of `reader`'s timeline before `before`, newest first, and whether the
    /// timeline is at its full length (older posts may have been trimmed from it); `None` when the
    /// timeline is missing (never built, expired, or lost with Redis).
    pub async fn read(
        &self,
        reader: Uuid,
        before: Option<Entry>,
        limit: usize,
    ) -> Result<Option<(Vec<Entry>, bool)>, SocialStoreError> {
        match self {
            Self::Memory(m, length) => Ok(m.lock().get(&reader).map(|t| {
                let entries = t.iter().rev().filter(|e| before.is_none_or(|b| **e < b)).take(limit).copied().collect();
                (entries, t.len() >= *length)
            })),
            Self::Redis { connection, prefix, timeout, length, .. } => {
                let key = Self::key(prefix, reader);
                // Entries at the cursor's own time are read too and those not before it dropped,
                // since members of one score are ordered by id, as the cursor is.
                let max = before.map_or_else(|| "+inf".to_owned(), |b| b.0.to_string());
                let extra = 8;
                let mut pipe = redis::pipe();
                pipe.zcard(&key)
                    .cmd("ZREVRANGEBYSCORE")
                    .arg(&key)
                    .arg(&max)
                    .arg(1)
                    .arg("WITHSCORES")
                    .arg("LIMIT")
                    .arg(0)
                    .arg(limit + extra);
                // A timeline that exists holds at least its marker.
                let (card, found): (usize, Vec<(String, i64)>) = Self::run(connection, *timeout, pipe).await?;
                if card == 0 {
                    return Ok(None);
                }
                let mut entries: Vec<Entry> = found
                    .into_iter()
                    .filter_map(|(member, score)| Uuid::parse_str(&member).ok().map(|id| (score, id)))
                    .filter(|e| before.is_none_or(|b| *e < b))
                    .collect();
                entries.sort_by(|a, b| b.cmp(a));
                entries.truncate(limit);
                Ok(Some((entries, card > *length)))
            }
        }
    }

    /// Replace `reader`'s timeline with `entries` (marked built, even when empty).
    pub async fn rebuild(&self, reader: Uuid, entries: &[Entry]) -> Result<(), SocialStoreError> {
        match self {
            Self::Memory(m, length) => {
                let mut timeline: BTreeSet<Entry> = entries.iter().copied().collect();
                while timeline.len() > *length {
                    timeline.pop_first();
                }
                m.lock().insert(reader, timeline);
                Ok(())
            }
            Self::Redis { connection, prefix, timeout, length, ttl } => {
                let key = Self::key(prefix, reader);
                let mut pipe = redis::pipe();
                pipe.atomic().del(&key).zadd(&key, BUILT, 0);
                for (score, id) in entries.iter().take(*length) {
                    pipe.zadd(&key, id.to_string(), *score);
                }
                pipe.expire(&key, i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX));
                Self::run::<()>(connection, *timeout, pipe).await
            }
        }
    }

    /// Drop `readers`' timelines (their follows or mutes changed): rebuilt when next read.
    pub async fn forget(&self, readers: &[Uuid]) -> Result<(), SocialStoreError> {
        match self {
            Self::Memory(m, _) => {
                let mut m = m.lock();
                for reader in readers {
                    m.remove(reader);
                }
                Ok(())
            }
            Self::Redis { connection, prefix, timeout, .. } => {
                let mut pipe = redis::pipe();
                for reader in readers {
                    pipe.del(Self::key(prefix, *reader));
                }
                Self::run::<()>(connection, *timeout, pipe).await
            }
        }
    }
}
