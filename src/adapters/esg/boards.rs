//! The leaderboards' rankings: one Redis sorted set per month, overall and per community (score:
//! grams avoided that month, member: the subject's blind index in hex), shared by every replica;
//! or process memory in the embedded mode. PostgreSQL is the source of truth: a ranking Redis
//! lost is rebuilt from it on the next read.

use std::{collections::HashMap, sync::Arc, time::Duration};

use parking_lot::Mutex;

use super::EsgStoreError;
use crate::{adapters::redis::RedisConnection, domain::esg::leaderboard::Period};

/// Where the rankings are; cheap to clone.
#[derive(Clone)]
pub enum Boards {
    /// Redis, under `prefix`.
    Redis {
        /// The connection.
        connection: RedisConnection,
        /// Key prefix (`<redis.key_prefix>esg:lb:`).
        prefix: Arc<str>,
        /// Most a command may take.
        timeout: Duration,
    },
    /// Process memory: per key, member → grams.
    Memory(Arc<Mutex<HashMap<String, HashMap<String, u64>>>>),
}

/// One place on a board.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    /// 1 for the most avoided.
    pub rank: u64,
    /// The member's blind index, hex.
    pub member: String,
    /// Grams avoided in the month.
    pub avoided_g: u64,
}

fn unavailable(what: &str) -> EsgStoreError {
    EsgStoreError::Unavailable(format!("leaderboards: {what}"))
}

impl Boards {
    /// Rankings in process memory.
    pub fn memory() -> Self {
        Self::Memory(Arc::default())
    }

    /// The key of `period`'s board, overall or of `community`.
    pub fn key(&self, period: Period, community: Option<&str>) -> String {
        let prefix = match self {
            Self::Redis { prefix, .. } => prefix.as_ref(),
            Self::Memory(_) => "",
        };
        match community {
            Some(c) => format!("{prefix}{}:c:{c}", period.label()),
            None => format!("{prefix}{}:all", period.label()),
        }
    }

    async fn run<T: redis::FromRedisValue>(
        connection: &RedisConnection,
        timeout: Duration,
        pipe: redis::Pipeline,
    ) -> Result<T, EsgStoreError> {
        let call = async {
            let mut conn = connection.get().await.map_err(|e| unavailable(e.kind()))?;
            pipe.query_async::<T>(&mut conn).await.map_err(|_| unavailable("redis command failed"))
        };
        tokio::time::timeout(timeout, call).await.map_err(|_| unavailable("redis timeout"))?
    }

    /// Set `member`'s grams on each of `keys`.
    pub async fn set(&self, keys: &[String], member: &str, avoided_g: u64) -> Result<(), EsgStoreError> {
        match self {
            Self::Memory(m) => {
                let mut m = m.lock();
                for key in keys {
                    m.entry(key.clone()).or_default().insert(member.to_owned(), avoided_g);
                }
                Ok(())
            }
            Self::Redis { connection, timeout, .. } => {
                let mut pipe = redis::pipe();
                for key in keys {
                    pipe.cmd("ZADD").arg(key).arg(avoided_g).arg(member).ignore();
                }
                Self::run::<()>(connection, *timeout, pipe).await
            }
        }
    }

    /// Forget the rankings of `keys` (they are rebuilt from PostgreSQL when next read).
    pub async fn drop_keys(&self, keys: &[String]) -> Result<(), EsgStoreError> {
        if keys.is_empty() {
            return Ok(());
        }
        match self {
            Self::Memory(m) => {
                let mut m = m.lock();
                for key in keys {
                    m.remove(key);
                }
                Ok(())
            }
            Self::Redis { connection, timeout, .. } => {
                let mut pipe = redis::pipe();
                pipe.cmd("DEL").arg(keys).ignore();
                Self::run::<()>(connection, *timeout, pipe).await
            }
        }
    }

    /// Replace the ranking of `key` with `entries` (member hex, grams); an empty ranking is kept
    /// as an empty marker so that it is not rebuilt at every read.
    pub async fn fill(&self, key: &str, entries: &[(String, u64)]) -> Result<(), EsgStoreError> {
        match self {
            Self::Memory(m) => {
                m.lock().insert(key.to_owned(), entries.iter().cloned().collect());
                Ok(())
            }
            Self::Redis { connection, timeout, .. } => {
                let mut pipe = redis::pipe();
                pipe.atomic();
                pipe.cmd("DEL").arg(key).ignore();
                for chunk in entries.chunks(500) {
                    let mut zadd = redis::cmd("ZADD");
                    zadd.arg(key);
                    for (member, grams) in chunk {
                        zadd.arg(*grams).arg(member);
                    }
                    pipe.add_command(zadd).ignore();
                }
                // The marker: ranks below every member, never shown.
                pipe.cmd("ZADD").arg(key).arg(-1).arg(BUILT).ignore();
                Self::run::<()>(connection, *timeout, pipe).await
            }
        }
    }

    /// The top `limit` of `key`, and `member`'s place if ranked; `None` when the ranking is not
    /// there (never built, or lost).
    pub async fn read(
        &self,
        key: &str,
        limit: usize,
        member: Option<&str>,
    ) -> Result<Option<(Vec<Place>, Option<Place>)>, EsgStoreError> {
        match self {
            Self::Memory(m) => {
                let m = m.lock();
                let Some(board) = m.get(key) else { return Ok(None) };
                let mut all: Vec<(&String, &u64)> = board.iter().collect();
                all.sort_by(|a, b| b.1.cmp(a.1).then_with(|| b.0.cmp(a.0)));
                let places: Vec<Place> = all
                    .iter()
                    .enumerate()
                    .map(|(i, (m, g))| Place { rank: i as u64 + 1, member: (*m).clone(), avoided_g: **g })
                    .collect();
                let mine = member.and_then(|me| places.iter().find(|p| p.member == me).cloned());
                Ok(Some((places.into_iter().take(limit).collect(), mine)))
            }
            Self::Redis { connection, timeout, .. } => {
                let mut pipe = redis::pipe();
                pipe.cmd("EXISTS").arg(key);
                // Highest first; ties by member, descending, as ZREVRANGE orders them.
                pipe.cmd("ZREVRANGE").arg(key).arg(0).arg(limit as i64).arg("WITHSCORES");
                pipe.cmd("ZREVRANK").arg(key).arg(member.unwrap_or(BUILT));
                pipe.cmd("ZSCORE").arg(key).arg(member.unwrap_or(BUILT));
                let (exists, top, rank, score): RedisRead = Self::run(connection, *timeout, pipe).await?;
                if exists == 0 {
                    return Ok(None);
                }
                let places: Vec<Place> = top
                    .into_iter()
                    .filter(|(m, _)| m != BUILT)
                    .take(limit)
                    .enumerate()
                    .map(|(i, (member, g))| Place { rank: i as u64 + 1, member, avoided_g: g.max(0.0) as u64 })
                    .collect();
                let mine = match (member, rank, score) {
                    (Some(me), Some(rank), Some(g)) if me != BUILT => {
                        Some(Place { rank: rank + 1, member: me.to_owned(), avoided_g: g.max(0.0) as u64 })
                    }
                    _ => None,
                };
                Ok(Some((places, mine)))
            }
        }
    }
}

/// What a read of a board gets from Redis: whether the key exists, the top members with their
/// grams, and the rank and grams of the member asked about.
type RedisRead = (i64, Vec<(String, f64)>, Option<u64>, Option<f64>);

/// The marker member of a built ranking.
const BUILT: &str = "~built";
