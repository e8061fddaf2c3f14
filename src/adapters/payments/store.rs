//! Where payments are kept: PostgreSQL, or process memory in the embedded mode. Top-ups (the
//! intents asked for), the signatures of webhook deliveries within the window, and payouts.

use std::{collections::HashMap, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use tokio_postgres::{types::Type, Row};
use uuid::Uuid;

use crate::{
    adapters::postgres::{PgPool, PostgresError},
    domain::{
        fintech::{Currency, WalletId},
        payments::{Payout, PayoutStatus, TopUp},
    },
    error::code::{Coded, ErrorCode},
};

/// The store failed; nothing can be said about the payment yet.
#[derive(Debug, thiserror::Error)]
#[error("the payments store is unavailable: {0}")]
pub struct StoreError(String);

impl From<PostgresError> for StoreError {
    fn from(e: PostgresError) -> Self {
        Self(e.kind().into())
    }
}

impl From<bb8::RunError<tokio_postgres::Error>> for StoreError {
    fn from(e: bb8::RunError<tokio_postgres::Error>) -> Self {
        PostgresError::from(e).into()
    }
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        PostgresError::from(e).into()
    }
}

impl Coded for StoreError {
    fn code(&self) -> ErrorCode {
        ErrorCode::LedgerUnavailable
    }

    fn retry_after(&self) -> Option<Duration> {
        Some(Duration::from_secs(1))
    }
}

/// The embedded store's contents.
#[derive(Default)]
pub struct Memory {
    intents: HashMap<String, (TopUp, DateTime<Utc>)>,
    deliveries: HashMap<String, DateTime<Utc>>,
    payouts: HashMap<Uuid, (String, String, Payout)>,
    payouts_created: HashMap<Uuid, DateTime<Utc>>,
}

/// Either store, chosen at start-up.
#[derive(Clone)]
pub enum PaymentsStore {
    /// PostgreSQL.
    Postgres(PgPool),
    /// Process memory: nothing survives the process.
    Memory(Arc<Mutex<Memory>>),
}

/// Something kept, with when it was asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kept<T> {
    /// What was kept.
    pub item: T,
    /// When it was asked for.
    pub created_at: DateTime<Utc>,
}

/// What a payout request found under its idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claimed {
    /// The payout was recorded now.
    New(Payout),
    /// A payout was already recorded under the key: this one.
    Existing(Payout),
}

impl PaymentsStore {
    /// A store in process memory.
    pub fn memory() -> Self {
        Self::Memory(Arc::default())
    }

    /// Keep a top-up (once: a retried request that got the same intent keeps nothing new).
    pub async fn put_top_up(&self, t: &TopUp, at: DateTime<Utc>) -> Result<(), StoreError> {
        match self {
            Self::Memory(m) => {
                m.lock().intents.entry(t.intent.clone()).or_insert_with(|| (t.clone(), at));
                Ok(())
            }
            Self::Postgres(pool) => {
                let conn = pool.get().await?;
                conn.execute(
                    "INSERT INTO payment_intents (id, wallet_id, amount, currency, client_secret, status, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING",
                    &[&t.intent, &t.wallet.0, &t.amount, &t.currency.code(), &t.client_secret, &t.status, &at],
                )
                .await?;
                Ok(())
            }
        }
    }

    /// The top-up of intent `id`, if this service asked for it.
    pub async fn top_up(&self, id: &str) -> Result<Option<TopUp>, StoreError> {
        match self {
            Self::Memory(m) => Ok(m.lock().intents.get(id).map(|(t, _)| t.clone())),
            Self::Postgres(pool) => {
                let conn = pool.get().await?;
                let rows = conn
                    .query_typed(
                        &format!("SELECT {TOP_UP_COLUMNS} FROM payment_intents WHERE id = $1"),
                        &[(&id, Type::TEXT)],
                    )
                    .await?;
                rows.first().map(top_up_from).transpose()
            }
        }
    }

    /// The top-ups asked for `wallets`, oldest first.
    pub async fn top_ups_of(&self, wallets: &[WalletId]) -> Result<Vec<Kept<TopUp>>, StoreError> {
        let mut found = match self {
            Self::Memory(m) => m
                .lock()
                .intents
                .values()
                .filter(|(t, _)| wallets.contains(&t.wallet))
                .map(|(t, at)| Kept { item: t.clone(), created_at: *at })
                .collect(),
            Self::Postgres(pool) => {
                let conn = pool.get().await?;
                let ids: Vec<Uuid> = wallets.iter().map(|w| w.0).collect();
                let rows = conn
                    .query_typed(
                        &format!("SELECT {TOP_UP_COLUMNS}, created_at FROM payment_intents WHERE wallet_id = ANY($1)"),
                        &[(&ids, Type::UUID_ARRAY)],
                    )
                    .await?;
                rows.iter().map(|r| Ok(Kept { item: top_up_from(r)?, created_at: r.try_get(6)? })).collect::<Result<
                    Vec<_>,
                    StoreError,
                >>(
                )?
            }
        };
        found.sort_by(|a: &Kept<TopUp>, b| (a.created_at, &a.item.intent).cmp(&(b.created_at, &b.item.intent)));
        Ok(found)
    }

    /// The payouts from `wallets`, oldest first.
    pub async fn payouts_of(&self, wallets: &[WalletId]) -> Result<Vec<Kept<Payout>>, StoreError> {
        let mut found =
            match self {
                Self::Memory(m) => {
                    let m = m.lock();
                    m.payouts
                        .values()
                        .filter(|(_, _, p)| wallets.contains(&p.wallet))
                        .filter_map(|(_, _, p)| {
                            m.payouts_created.get(&p.id).map(|at| Kept { item: p.clone(), created_at: *at })
                        })
                        .collect()
                }
                Self::Postgres(pool) => {
                    let conn = pool.get().await?;
                    let ids: Vec<Uuid> = wallets.iter().map(|w| w.0).collect();
                    let rows = conn
                        .query_typed(
                            &format!("SELECT {PAYOUT_COLUMNS}, created_at FROM payouts WHERE wallet_id = ANY($1)"),
                            &[(&ids, Type::UUID_ARRAY)],
                        )
                        .await?;
                    rows.iter()
                        .map(|r| Ok(Kept { item: payout_from(r)?, created_at: r.try_get(8)? }))
                        .collect::<Result<Vec<_>, StoreError>>()?
                }
            };
        found.sort_by_key(|kept: &Kept<Payout>| (kept.created_at, kept.item.id));
        Ok(found)
    }

    /// Remember a delivery's signature at `at`, forgetting those received before `forget_before`;
    /// false when it was already there (a replay).
    pub async fn remember_delivery(
        &self,
        signature: &str,
        at: DateTime<Utc>,
        forget_before: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        match self {
            Self::Memory(m) => {
                let mut m = m.lock();
                m.deliveries.retain(|_, seen| *seen >= forget_before);
                Ok(m.deliveries.insert(signature.to_owned(), at).is_none())
            }
            Self::Postgres(pool) => {
                let conn = pool.get().await?;
                conn.execute("DELETE FROM payment_webhook_deliveries WHERE received_at < $1", &[&forget_before])
                    .await?;
                let inserted = conn
                    .execute(
                        "INSERT INTO payment_webhook_deliveries (signature, received_at) VALUES ($1, $2)
                         ON CONFLICT (signature) DO NOTHING",
                        &[&signature, &at],
                    )
                    .await?;
                Ok(inserted == 1)
            }
        }
    }

    /// Forget a delivery's signature (its processing failed on this side): the same delivery
    /// may be taken again.
    pub async fn forget_delivery(&self, signature: &str) -> Result<(), StoreError> {
        match self {
            Self::Memory(m) => {
                m.lock().deliveries.remove(signature);
                Ok(())
            }
            Self::Postgres(pool) => {
                let conn = pool.get().await?;
                conn.execute("DELETE FROM payment_webhook_deliveries WHERE signature = $1", &[&signature]).await?;
                Ok(())
            }
        }
    }

    /// Record `payout` under the caller's `(scope, key)`, or find the one already recorded there.
    pub async fn claim_payout(&self, scope: &str, key: &str, payout: &Payout) -> Result<Claimed, StoreError> {
        match self {
            Self::Memory(m) => {
                let mut m = m.lock();
                if let Some((_, _, found)) = m.payouts.values().find(|(s, k, _)| s == scope && k == key) {
                    return Ok(Claimed::Existing(found.clone()));
                }
                m.payouts.insert(payout.id, (scope.to_owned(), key.to_owned(), payout.clone()));
                m.payouts_created.insert(payout.id, Utc::now());
                Ok(Claimed::New(payout.clone()))
            }
            Self::Postgres(pool) => {
                let conn = pool.get().await?;
                let now = Utc::now();
                let inserted = conn
                    .execute(
                        "INSERT INTO payouts (id, scope, key, wallet_id, amount, currency, destination, status,
                                              created_at, updated_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) ON CONFLICT (scope, key) DO NOTHING",
                        &[
                            &payout.id,
                            &scope,
                            &key,
                            &payout.wallet.0,
                            &payout.amount,
                            &payout.currency.code(),
                            &payout.destination,
                            &payout.status.as_str(),
                            &now,
                        ],
                    )
                    .await?;
                if inserted == 1 {
                    return Ok(Claimed::New(payout.clone()));
                }
                let rows = conn
                    .query_typed(
                        &format!("SELECT {PAYOUT_COLUMNS} FROM payouts WHERE scope = $1 AND key = $2"),
                        &[(&scope, Type::TEXT), (&key, Type::TEXT)],
                    )
                    .await?;
                let row = rows.first().ok_or_else(|| StoreError("payout vanished".into()))?;
                Ok(Claimed::Existing(payout_from(row)?))
            }
        }
    }

    /// The payout `id`.
    pub async fn payout(&self, id: Uuid) -> Result<Option<Payout>, StoreError> {
        match self {
            Self::Memory(m) => Ok(m.lock().payouts.get(&id).map(|(_, _, p)| p.clone())),
            Self::Postgres(pool) => {
                let conn = pool.get().await?;
                let rows = conn
                    .query_typed(&format!("SELECT {PAYOUT_COLUMNS} FROM payouts WHERE id = $1"), &[(&id, Type::UUID)])
                    .await?;
                rows.first().map(payout_from).transpose()
            }
        }
    }

    /// At most `limit` payouts still `pending`, created before `before`, oldest first.
    pub async fn pending_payouts(&self, before: DateTime<Utc>, limit: usize) -> Result<Vec<Payout>, StoreError> {
        match self {
            Self::Memory(m) => {
                let m = m.lock();
                let mut found: Vec<(DateTime<Utc>, Payout)> = m
                    .payouts
                    .values()
                    .filter(|(_, _, p)| p.status == PayoutStatus::Pending)
                    .filter_map(|(_, _, p)| m.payouts_created.get(&p.id).map(|at| (*at, p.clone())))
                    .filter(|(at, _)| *at < before)
                    .collect();
                found.sort_by_key(|(at, _)| *at);
                Ok(found.into_iter().take(limit).map(|(_, p)| p).collect())
            }
            Self::Postgres(pool) => {
                let conn = pool.get().await?;
                let limit = i64::try_from(limit).unwrap_or(i64::MAX);
                let rows = conn
                    .query(
                        &format!(
                            "SELECT {PAYOUT_COLUMNS} FROM payouts WHERE status = 'pending' AND created_at < $1
                             ORDER BY created_at LIMIT $2"
                        ),
                        &[&before, &limit],
                    )
                    .await?;
                rows.iter().map(payout_from).collect()
            }
        }
    }

    /// The payout the provider knows as `provider_id`.
    pub async fn payout_by_provider(&self, provider_id: &str) -> Result<Option<Payout>, StoreError> {
        match self {
            Self::Memory(m) => Ok(m
                .lock()
                .payouts
                .values()
                .find(|(_, _, p)| p.provider_id.as_deref() == Some(provider_id))
                .map(|(_, _, p)| p.clone())),
            Self::Postgres(pool) => {
                let conn = pool.get().await?;
                let rows = conn
                    .query_typed(
                        &format!("SELECT {PAYOUT_COLUMNS} FROM payouts WHERE provider_id = $1"),
                        &[(&provider_id, Type::TEXT)],
                    )
                    .await?;
                rows.first().map(payout_from).transpose()
            }
        }
    }

    /// Record where `payout` stands now, unless its stored status may not become the new one
    /// ([`PayoutStatus::may_become`]): then nothing changes and the answer is false.
    pub async fn update_payout(&self, payout: &Payout) -> Result<bool, StoreError> {
        match self {
            Self::Memory(m) => {
                let mut m = m.lock();
                match m.payouts.get_mut(&payout.id) {
                    Some((_, _, p)) if p.status.may_become(payout.status) => {
                        *p = payout.clone();
                        Ok(true)
                    }
                    _ => Ok(false),
                }
            }
            Self::Postgres(pool) => {
                let conn = pool.get().await?;
                let from: Vec<&str> =
                    PayoutStatus::ALL.iter().filter(|s| s.may_become(payout.status)).map(|s| s.as_str()).collect();
                let updated = conn
                    .execute(
                        "UPDATE payouts SET provider_id = $2, status = $3, failure = $4, updated_at = $5
                         WHERE id = $1 AND status = ANY($6)",
                        &[
                            &payout.id,
                            &payout.provider_id,
                            &payout.status.as_str(),
                            &payout.failure,
                            &Utc::now(),
                            &from,
                        ],
                    )
                    .await?;
                Ok(updated == 1)
            }
        }
    }
}

const TOP_UP_COLUMNS: &str = "id, wallet_id, amount, currency, client_secret, status";
const PAYOUT_COLUMNS: &str = "id, wallet_id, amount, currency, destination, provider_id, status, failure";

fn corrupt(what: &str) -> StoreError {
    StoreError(format!("corrupt {what}"))
}

fn top_up_from(r: &Row) -> Result<TopUp, StoreError> {
    Ok(TopUp {
        intent: r.try_get(0)?,
        wallet: WalletId(r.try_get(1)?),
        amount: r.try_get(2)?,
        currency: Currency::parse(r.try_get::<_, &str>(3)?).map_err(|_| corrupt("intent currency"))?,
        client_secret: r.try_get(4)?,
        status: r.try_get(5)?,
    })
}

fn payout_from(r: &Row) -> Result<Payout, StoreError> {
    Ok(Payout {
        id: r.try_get(0)?,
        wallet: WalletId(r.try_get(1)?),
        amount: r.try_get(2)?,
        currency: Currency::parse(r.try_get::<_, &str>(3)?).map_err(|_| corrupt("payout currency"))?,
        destination: r.try_get(4)?,
        provider_id: r.try_get(5)?,
        status: PayoutStatus::parse(r.try_get(6)?).ok_or_else(|| corrupt("payout status"))?,
        failure: r.try_get(7)?,
    })
}
