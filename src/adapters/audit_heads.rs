//! Audit chain heads in PostgreSQL (`audit_chain_heads`): where each audit log had got to, kept
//! away from the audit volume so that a log cut short or rewritten on that volume is detected.

use chrono::{DateTime, Utc};
use tokio_postgres::Client;

use super::postgres::{PgPool, PostgresError};
use crate::domain::audit::ChainHead;

/// A head as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedHead {
    /// Seq and hash of the log's last durable record when it was recorded.
    pub head: ChainHead,
    /// When.
    pub recorded_at: DateTime<Utc>,
}

const UPSERT: &str = "INSERT INTO audit_chain_heads (log, seq, hash, recorded_at) VALUES ($1, $2, $3, now())
     ON CONFLICT (log) DO UPDATE SET seq = EXCLUDED.seq, hash = EXCLUDED.hash, recorded_at = EXCLUDED.recorded_at
     WHERE audit_chain_heads.seq <= EXCLUDED.seq";

/// Record `head` as the head of `log`; a head never moves back.
pub async fn record(pool: &PgPool, log: &str, head: &ChainHead) -> Result<(), PostgresError> {
    let conn = pool.get().await?;
    let seq = i64::try_from(head.seq).unwrap_or(i64::MAX);
    conn.execute(UPSERT, &[&log, &seq, &head.hash]).await?;
    Ok(())
}

/// The recorded head of `log`, if any.
pub async fn recorded(client: &Client, log: &str) -> Result<Option<RecordedHead>, PostgresError> {
    let row = client.query_opt("SELECT seq, hash, recorded_at FROM audit_chain_heads WHERE log = $1", &[&log]).await?;
    Ok(row.map(|row| RecordedHead {
        head: ChainHead { seq: u64::try_from(row.get::<_, i64>(0)).unwrap_or(0), hash: row.get(1) },
        recorded_at: row.get(2),
    }))
}
