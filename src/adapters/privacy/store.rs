//! Where subject keys are kept, wrapped: PostgreSQL (`privacy_subject_keys`) or process memory
//! (embedded mode), with the same answers.

use std::{collections::HashMap, sync::Arc};

use chrono::{DateTime, Utc};
use parking_lot::Mutex;

use crate::{
    adapters::postgres::{PgPool, PostgresError},
    domain::privacy::{BlindIndex, ErasureRecord},
};

/// A subject key as stored: wrapped under the master key it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    /// The key's id.
    pub key_id: String,
    /// Its subject's blind index.
    pub subject: BlindIndex,
    /// Id of the master key that wrapped it.
    pub master_key_id: String,
    /// Nonce and ciphertext of the key.
    pub wrapped: Vec<u8>,
}

/// Either store of subject keys.
#[derive(Clone)]
pub enum KeyStore {
    /// PostgreSQL.
    Postgres(PgPool),
    /// Process memory.
    Memory(Arc<Mutex<MemKeys>>),
}

/// Subject keys and erasure records in memory.
#[derive(Debug, Default)]
pub struct MemKeys {
    by_id: HashMap<String, StoredKey>,
    by_subject: HashMap<BlindIndex, String>,
    erasures: Vec<ErasureRecord>,
}

fn row_key(row: &tokio_postgres::Row) -> Option<StoredKey> {
    Some(StoredKey {
        key_id: row.get(0),
        subject: BlindIndex::from_slice(row.get::<_, &[u8]>(1))?,
        master_key_id: row.get(2),
        wrapped: row.get(3),
    })
}

const COLUMNS: &str = "key_id, subject_index, master_key_id, wrapped";

impl KeyStore {
    /// A store in memory.
    pub fn memory() -> Self {
        Self::Memory(Arc::default())
    }

    /// The key of `subject`, if it has one.
    pub async fn by_subject(&self, subject: &BlindIndex) -> Result<Option<StoredKey>, PostgresError> {
        match self {
            Self::Postgres(pool) => {
                let conn = pool.get().await?;
                let sql = format!("SELECT {COLUMNS} FROM privacy_subject_keys WHERE subject_index = $1");
                let row = conn.query_opt(&sql, &[&subject.as_bytes()]).await?;
                Ok(row.as_ref().and_then(row_key))
            }
            Self::Memory(m) => {
                let m = m.lock();
                Ok(m.by_subject.get(subject).and_then(|id| m.by_id.get(id)).cloned())
            }
        }
    }

    /// The key `key_id`, if it exists (it does not once its subject was erased).
    pub async fn by_id(&self, key_id: &str) -> Result<Option<StoredKey>, PostgresError> {
        match self {
            Self::Postgres(pool) => {
                let conn = pool.get().await?;
                let sql = format!("SELECT {COLUMNS} FROM privacy_subject_keys WHERE key_id = $1");
                let row = conn.query_opt(&sql, &[&key_id]).await?;
                Ok(row.as_ref().and_then(row_key))
            }
            Self::Memory(m) => Ok(m.lock().by_id.get(key_id).cloned()),
        }
    }

    /// Keep `key` unless its subject has one already; returns the subject's key either way.
    pub async fn insert(&self, key: StoredKey, at: DateTime<Utc>) -> Result<StoredKey, PostgresError> {
        match self {
            Self::Postgres(pool) => {
                let conn = pool.get().await?;
                conn.execute(
                    "INSERT INTO privacy_subject_keys (key_id, subject_index, master_key_id, wrapped, created_at)
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (subject_index) DO NOTHING",
                    &[&key.key_id, &key.subject.as_bytes(), &key.master_key_id, &key.wrapped, &at],
                )
                .await?;
                let sql = format!("SELECT {COLUMNS} FROM privacy_subject_keys WHERE subject_index = $1");
                let row = conn.query_opt(&sql, &[&key.subject.as_bytes()]).await?;
                // Erased between the two statements: the key just made is as good as any.
                Ok(row.as_ref().and_then(row_key).unwrap_or(key))
            }
            Self::Memory(m) => {
                let mut m = m.lock();
                if let Some(existing) = m.by_subject.get(&key.subject).and_then(|id| m.by_id.get(id)) {
                    return Ok(existing.clone());
                }
                m.by_subject.insert(key.subject, key.key_id.clone());
                m.by_id.insert(key.key_id.clone(), key.clone());
                Ok(key)
            }
        }
    }

    /// Delete the key of `subject`; returns its id, if it had one.
    pub async fn delete(&self, subject: &BlindIndex) -> Result<Option<String>, PostgresError> {
        match self {
            Self::Postgres(pool) => {
                let conn = pool.get().await?;
                let row = conn
                    .query_opt(
                        "DELETE FROM privacy_subject_keys WHERE subject_index = $1 RETURNING key_id",
                        &[&subject.as_bytes()],
                    )
                    .await?;
                Ok(row.map(|r| r.get(0)))
            }
            Self::Memory(m) => {
                let mut m = m.lock();
                let id = m.by_subject.remove(subject);
                if let Some(id) = &id {
                    m.by_id.remove(id);
                }
                Ok(id)
            }
        }
    }

    /// Delete the keys kept under any of `indexes`; returns how many there were.
    pub async fn delete_many(&self, indexes: &[BlindIndex]) -> Result<u64, PostgresError> {
        match self {
            Self::Postgres(pool) => {
                let conn = pool.get().await?;
                let bytes: Vec<&[u8]> = indexes.iter().map(BlindIndex::as_bytes).collect();
                Ok(conn.execute("DELETE FROM privacy_subject_keys WHERE subject_index = ANY($1)", &[&bytes]).await?)
            }
            Self::Memory(m) => {
                let mut m = m.lock();
                let mut n = 0;
                for index in indexes {
                    if let Some(id) = m.by_subject.remove(index) {
                        m.by_id.remove(&id);
                        n += 1;
                    }
                }
                Ok(n)
            }
        }
    }

    /// At most `limit` keys wrapped under another master key than `current`.
    pub async fn wrapped_under_other(&self, current: &str, limit: usize) -> Result<Vec<StoredKey>, PostgresError> {
        match self {
            Self::Postgres(pool) => {
                let conn = pool.get().await?;
                let sql = format!(
                    "SELECT {COLUMNS} FROM privacy_subject_keys WHERE master_key_id <> $1 ORDER BY key_id LIMIT $2"
                );
                let rows = conn.query(&sql, &[&current, &(limit as i64)]).await?;
                Ok(rows.iter().filter_map(row_key).collect())
            }
            Self::Memory(m) => {
                let m = m.lock();
                Ok(m.by_id.values().filter(|k| k.master_key_id != current).take(limit).cloned().collect())
            }
        }
    }

    /// Replace the wrapping of `key` (still wrapped under `was`); false if it changed meanwhile.
    pub async fn rewrap(&self, key: &StoredKey, was: &str) -> Result<bool, PostgresError> {
        match self {
            Self::Postgres(pool) => {
                let conn = pool.get().await?;
                let n = conn
                    .execute(
                        "UPDATE privacy_subject_keys SET master_key_id = $2, wrapped = $3
                         WHERE key_id = $1 AND master_key_id = $4",
                        &[&key.key_id, &key.master_key_id, &key.wrapped, &was],
                    )
                    .await?;
                Ok(n == 1)
            }
            Self::Memory(m) => {
                let mut m = m.lock();
                match m.by_id.get_mut(&key.key_id) {
                    Some(stored) if stored.master_key_id == was => {
                        *stored = key.clone();
                        Ok(true)
                    }
                    _ => Ok(false),
                }
            }
        }
    }

    /// Keep the completion record of an erasure.
    pub async fn keep_erasure(&self, subject: &BlindIndex, record: &ErasureRecord) -> Result<(), PostgresError> {
        match self {
            Self::Postgres(pool) => {
                let conn = pool.get().await?;
                let json = serde_json::to_value(record).unwrap_or(serde_json::Value::Null);
                conn.execute(
                    "INSERT INTO privacy_erasures (id, subject_index, record, completed_at) VALUES ($1, $2, $3, $4)",
                    &[&record.id, &subject.as_bytes(), &json, &record.completed_at],
                )
                .await?;
                Ok(())
            }
            Self::Memory(m) => {
                m.lock().erasures.push(record.clone());
                Ok(())
            }
        }
    }

    /// The completion records of the erasures of `subject`, oldest first.
    pub async fn erasures(&self, subject: &BlindIndex) -> Result<Vec<ErasureRecord>, PostgresError> {
        match self {
            Self::Postgres(pool) => {
                let conn = pool.get().await?;
                let rows = conn
                    .query(
                        "SELECT record FROM privacy_erasures WHERE subject_index = $1 ORDER BY completed_at, id",
                        &[&subject.as_bytes()],
                    )
                    .await?;
                Ok(rows.iter().filter_map(|r| serde_json::from_value(r.get(0)).ok()).collect())
            }
            Self::Memory(m) => {
                let hex = subject.hex();
                Ok(m.lock().erasures.iter().filter(|r| r.subject == hex).cloned().collect())
            }
        }
    }
}
