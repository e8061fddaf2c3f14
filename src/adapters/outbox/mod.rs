//! The transactional outbox, shared by every domain: a store that changes an aggregate writes
//! the events of the change into the outbox in the same transaction ([`sql::INSERT`] with
//! [`encode`] on PostgreSQL, [`MemOutbox::append`] in memory), and the relay publishes them.
//!
//! On PostgreSQL one relay among all replicas publishes: the one holding a session advisory lock
//! on its own connection; if that process dies its connection closes, the lock is released and
//! another replica's relay takes over.

mod memory;

pub use memory::MemOutbox;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::postgres::{self as pg, PgConnection, PostgresError};
use crate::domain::events::DomainEvent;

/// What the writers of the outbox execute in their own transaction.
pub mod sql {
    /// One committed batch's events, one row: (commit time, number of events, [`super::encode`]d
    /// events).
    pub const INSERT: &str = "INSERT INTO outbox (created_at, event_count, events) VALUES ($1, $2, $3)";
}

/// One committed batch's events, waiting in the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxBatch {
    /// Outbox position: increasing, and in commit order for every aggregate.
    pub id: i64,
    /// When the batch committed.
    pub created_at: DateTime<Utc>,
    /// Its events, in commit order.
    pub events: Vec<DomainEvent>,
}

/// How far the outbox is behind.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct OutboxLag {
    /// Events not yet published.
    pub events: u64,
    /// Commit time of the oldest one.
    pub oldest: Option<DateTime<Utc>>,
}

/// Why the outbox could not be read or changed.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// PostgreSQL failed.
    #[error(transparent)]
    Postgres(#[from] PostgresError),
    /// No connection to the outbox (it is being re-established).
    #[error("the outbox cannot be reached: {0}")]
    Unreachable(String),
    /// A stored row could not be read back.
    #[error("corrupt outbox row: {0}")]
    Corrupt(String),
}

/// A batch's events as the outbox stores them (a JSON array of [`DomainEvent`]s, each written by
/// its domain's own serializer), and how many there are.
pub fn encode<E: Serialize>(
    events: impl IntoIterator<Item = E>,
    capacity: usize,
) -> Result<(Vec<u8>, usize), serde_json::Error> {
    use serde::ser::{SerializeSeq, Serializer};
    let mut bytes = Vec::with_capacity(capacity);
    let mut count = 0;
    let mut ser = serde_json::Serializer::new(&mut bytes);
    let mut seq = ser.serialize_seq(None)?;
    for event in events {
        seq.serialize_element(&event)?;
        count += 1;
    }
    seq.end()?;
    Ok((bytes, count))
}

/// Key of the advisory lock the publishing relay holds.
const RELAY_LOCK: i64 = 0x0bee_7101_0000_0002;

/// Statements the relay's connection keeps prepared (it runs four).
const RELAY_STATEMENTS: usize = 8;

fn pg_err(e: tokio_postgres::Error) -> OutboxError {
    OutboxError::Postgres(PostgresError::Query(e))
}

/// The relay's end of the outbox.
pub enum Outbox {
    /// PostgreSQL: a dedicated connection, leader while it holds the lock.
    Postgres {
        /// Connection settings.
        config: Arc<tokio_postgres::Config>,
        /// The connection, while open.
        client: Option<Box<PgConnection>>,
        /// Whether this connection holds the relay lock.
        leader: bool,
    },
    /// The outbox in process memory (one process: always the leader).
    Memory(MemOutbox),
}

/// Where the outbox lives: what relays open their ends of it from.
#[derive(Clone)]
pub enum OutboxSource {
    /// The `outbox` table of this PostgreSQL database.
    Postgres(Arc<tokio_postgres::Config>),
    /// The outbox in process memory.
    Memory(MemOutbox),
}

impl OutboxSource {
    /// A new end of the outbox (a connection of its own on PostgreSQL, opened when first used).
    pub fn open(&self) -> Outbox {
        match self {
            Self::Postgres(config) => Outbox::postgres(config.clone()),
            Self::Memory(m) => Outbox::Memory(m.clone()),
        }
    }
}

/// The relay's connection, opened (again) when needed; a new connection leads only once it has
/// taken the lock.
async fn connected<'a>(
    config: &tokio_postgres::Config,
    client: &'a mut Option<Box<PgConnection>>,
    leader: &mut bool,
) -> Result<&'a PgConnection, OutboxError> {
    if client.as_ref().is_none_or(|c| c.is_closed()) {
        *leader = false;
        *client = Some(Box::new(PgConnection::new(pg::connect(config).await?, RELAY_STATEMENTS)));
    }
    client.as_deref().ok_or_else(|| OutboxError::Unreachable("no outbox connection".into()))
}

impl Outbox {
    /// The outbox on PostgreSQL, read on a connection of its own made from `config`.
    pub fn postgres(config: Arc<tokio_postgres::Config>) -> Self {
        Self::Postgres { config, client: None, leader: false }
    }

    /// Whether this relay may publish, taking the lead if nobody holds it.
    pub async fn lead(&mut self) -> Result<bool, OutboxError> {
        let Self::Postgres { config, client, leader } = self else { return Ok(true) };
        let c = connected(config, client, leader).await?;
        if !*leader {
            *leader = c.query_one("SELECT pg_try_advisory_lock($1)", &[&RELAY_LOCK]).await.map_err(pg_err)?.get(0);
            if *leader {
                tracing::info!("this replica's outbox relay now publishes");
            }
        }
        Ok(*leader)
    }

    async fn client(&mut self) -> Result<&PgConnection, OutboxError> {
        match self {
            Self::Postgres { config, client, leader } => connected(config, client, leader).await,
            Self::Memory(_) => Err(OutboxError::Unreachable("the in-memory outbox has no connection".into())),
        }
    }

    /// The oldest `limit` batches, in outbox order.
    pub async fn fetch(&mut self, limit: usize) -> Result<Vec<OutboxBatch>, OutboxError> {
        self.fetch_after(0, limit).await
    }

    /// The oldest `limit` batches after batch `after` (ids start at 1), in outbox order: the
    /// next round while earlier ones are still being published.
    pub async fn fetch_after(&mut self, after: i64, limit: usize) -> Result<Vec<OutboxBatch>, OutboxError> {
        if let Self::Memory(m) = self {
            return Ok(m.fetch_after(after, limit));
        }
        let rows = self
            .client()
            .await?
            .query(
                "SELECT id, created_at, events FROM outbox WHERE id > $1 ORDER BY id LIMIT $2",
                &[&after, &(limit as i64)],
            )
            .await
            .map_err(pg_err)?;
        rows.iter()
            .map(|r| {
                let events: Vec<DomainEvent> = serde_json::from_slice(r.get::<_, &[u8]>(2))
                    .map_err(|e| OutboxError::Corrupt(format!("outbox row: {e}")))?;
                Ok(OutboxBatch { id: r.get(0), created_at: r.get::<_, DateTime<Utc>>(1), events })
            })
            .collect()
    }

    /// Delete published batches.
    pub async fn delete(&mut self, ids: &[i64]) -> Result<(), OutboxError> {
        if let Self::Memory(m) = self {
            m.delete(ids);
            return Ok(());
        }
        self.client().await?.execute("DELETE FROM outbox WHERE id = ANY($1)", &[&ids]).await.map_err(pg_err)?;
        Ok(())
    }

    /// How far behind the outbox is.
    pub async fn lag(&mut self) -> Result<OutboxLag, OutboxError> {
        if let Self::Memory(m) = self {
            return Ok(m.lag());
        }
        let row = self
            .client()
            .await?
            .query_one("SELECT COALESCE(SUM(event_count), 0)::int8, MIN(created_at) FROM outbox", &[])
            .await
            .map_err(pg_err)?;
        Ok(OutboxLag { events: row.get::<_, i64>(0) as u64, oldest: row.get(1) })
    }
}
