//! The outbox as the relay sees it. On PostgreSQL one relay among all replicas publishes: the
//! one holding a session advisory lock on its own connection; if that process dies its
//! connection closes, the lock is released and another replica's relay takes over.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio_postgres::Client;

use super::{
    ledger::{MemLedger, OutboxBatch, OutboxLag, StoreError},
    postgres::{self as pg, PostgresError},
};
use crate::domain::events::DomainEvent;

/// Key of the advisory lock the publishing relay holds.
const RELAY_LOCK: i64 = 0x0bee_7101_0000_0002;

fn pg_err(e: tokio_postgres::Error) -> StoreError {
    StoreError::Postgres(PostgresError::Query(e))
}

/// The relay's end of the outbox.
pub enum Outbox {
    /// PostgreSQL: a dedicated connection, leader while it holds the lock.
    Postgres {
        /// Connection settings.
        config: Arc<tokio_postgres::Config>,
        /// The connection, while open.
        client: Option<Client>,
        /// Whether this connection holds the relay lock.
        leader: bool,
    },
    /// The in-memory ledger's outbox (one process: always the leader).
    Memory(MemLedger),
}

/// The relay's connection, opened (again) when needed; a new connection leads only once it has
/// taken the lock.
async fn connected<'a>(
    config: &tokio_postgres::Config,
    client: &'a mut Option<Client>,
    leader: &mut bool,
) -> Result<&'a Client, StoreError> {
    if client.as_ref().is_none_or(Client::is_closed) {
        *leader = false;
        *client = Some(pg::connect(config).await?);
    }
    client.as_ref().ok_or_else(|| StoreError::Unreachable("no outbox connection".into()))
}

impl Outbox {
    /// Whether this relay may publish, taking the lead if nobody holds it.
    pub async fn lead(&mut self) -> Result<bool, StoreError> {
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

    async fn client(&mut self) -> Result<&Client, StoreError> {
        match self {
            Self::Postgres { config, client, leader } => connected(config, client, leader).await,
            Self::Memory(_) => Err(StoreError::Unreachable("the in-memory outbox has no connection".into())),
        }
    }

    /// The oldest `limit` batches, in outbox order.
    pub async fn fetch(&mut self, limit: usize) -> Result<Vec<OutboxBatch>, StoreError> {
        if let Self::Memory(m) = self {
            return Ok(m.outbox_fetch(limit));
        }
        let rows = self
            .client()
            .await?
            .query("SELECT id, created_at, events FROM outbox ORDER BY id LIMIT $1", &[&(limit as i64)])
            .await
            .map_err(pg_err)?;
        rows.iter()
            .map(|r| {
                let events: Vec<DomainEvent> = serde_json::from_slice(r.get::<_, &[u8]>(2))
                    .map_err(|e| StoreError::Corrupt(format!("outbox row: {e}")))?;
                Ok(OutboxBatch { id: r.get(0), created_at: r.get::<_, DateTime<Utc>>(1), events })
            })
            .collect()
    }

    /// Delete published batches.
    pub async fn delete(&mut self, ids: &[i64]) -> Result<(), StoreError> {
        if let Self::Memory(m) = self {
            m.outbox_delete(ids);
            return Ok(());
        }
        self.client().await?.execute("DELETE FROM outbox WHERE id = ANY($1)", &[&ids]).await.map_err(pg_err)?;
        Ok(())
    }

    /// How far behind the outbox is.
    pub async fn lag(&mut self) -> Result<OutboxLag, StoreError> {
        if let Self::Memory(m) = self {
            return Ok(m.outbox_lag());
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
