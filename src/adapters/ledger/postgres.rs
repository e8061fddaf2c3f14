//! The ledger on PostgreSQL.
//!
//! [`PgLedger::commit`] applies a batch of commands in one transaction on a dedicated writer
//! connection, in two round trips whose statements are pipelined: lock and read every wallet the
//! batch touches and find its taken idempotency keys (and the existing transactions of its
//! commands applied once); then, after the ledger's rules were applied to the locked rows in
//! command order (the same code as the in-memory store), write every change set-based (one
//! statement per table) with the outbox row and `COMMIT`. The row locks make the rules hold across
//! replicas; `wallet_journal`'s primary key (wallet, seq) and the balance checks of the schema
//! stand behind them. A key or transaction id taken meanwhile (by another replica) fails its
//! insert and so the batch; a failed batch is retried command by command, so that one bad command
//! cannot fail the others and a taken key is found taken.

use std::{
    collections::{HashMap, HashSet},
    future::Future,
    sync::Arc,
    time::Duration,
};

use chrono::{DateTime, Utc};
use futures::future::{join_all, LocalBoxFuture};
use serde_json::Value;
use tokio::sync::Mutex;
use tokio_postgres::{
    types::{ToSql, Type},
    Client, Row, Statement,
};
use uuid::Uuid;

use super::{
    sealing::{self, entry_row, kept_row, JOURNAL_REFERENCE, OWNER, TRANSACTION_REFERENCE},
    StoreError,
};
use crate::{
    adapters::{
        postgres::{self as pg, PgPool, PostgresError},
        privacy::Vault,
    },
    config::PrivacySettings,
    domain::{
        fintech::{
            Book, Currency, Hold, HoldStatus, LedgerCommand as Command, LedgerOp, LedgerOutcome as Outcome, Movement,
            MovementKind, Page, SealedOwners, Totals, TransactionKind, TransactionRecord, Wallet, WalletId,
            WalletStatus,
        },
        idempotency::{Claim, Kept},
        privacy::{BlindIndex, Personal, SubjectKey},
    },
};

/// The writer's session and statements; every statement reaches its rows through a primary key.
pub mod sql {
    /// Settings of the writer's session. Its statements take arrays whose lengths vary with every
    /// batch: planning them again for each (PostgreSQL's choice for some) costs more than the
    /// batch itself. Every one of them reaches its rows by primary key, but a generic plan made
    /// while the tables were small (or from statistics not yet refreshed) joins the arrays by
    /// hashing a whole-table scan, whose cost then grows with the table: only index lookups here.
    pub const SESSION: &str = "SET plan_cache_mode = force_generic_plan; SET enable_seqscan = off;
                               SET enable_hashjoin = off; SET enable_mergejoin = off";

    /// Lock and read the batch's wallets, in id order (batches of different replicas never deadlock).
    pub const LOCK: &str = "SELECT id, COALESCE(owner_sealed, owner), currency, balance, status, version, created_at
                     FROM wallets WHERE id = ANY($1) ORDER BY id FOR UPDATE";
    /// Which of the batch's idempotency keys are taken, and whether each has expired at $3.
    pub const TAKEN: &str = "SELECT scope, key, expires_at <= $3 FROM idempotency_keys
                     WHERE (scope, key) IN (SELECT * FROM unnest($1::text[], $2::text[]))";
    /// The existing transactions of the batch's commands applied once, to compare with them.
    pub const EXISTING: &str = "SELECT id, kind, debit_account, credit_account, amount, currency, reference
                     FROM ledger_transactions WHERE id = ANY($1)";
    /// Forget the expired keys the batch claims anew (before they are kept again).
    pub const FORGET: &str = "DELETE FROM idempotency_keys
                     WHERE (scope, key) IN (SELECT * FROM unnest($1::text[], $2::text[])) AND expires_at <= $3";
    /// The new state of every wallet the batch changed.
    pub const UPDATE_WALLETS: &str =
        "UPDATE wallets w SET balance = v.balance, status = v.status, version = v.version, updated_at = v.at
                     FROM unnest($1::uuid[], $2::int8[], $3::text[], $4::int8[], $5::timestamptz[])
                          AS v(id, balance, status, version, at)
                     WHERE w.id = v.id";
    /// The wallets the batch opened.
    pub const INSERT_WALLETS: &str =
        "INSERT INTO wallets (id, owner_index, owner_sealed, currency, balance, status, version, created_at, updated_at)
                     SELECT id, owner_index, owner_sealed, currency, balance, status, version, created_at, at
                     FROM unnest($1::uuid[], $2::bytea[], $3::text[], $4::text[], $5::int8[], $6::text[], $7::int8[],
                                 $8::timestamptz[], $9::timestamptz[])
                          AS v(id, owner_index, owner_sealed, currency, balance, status, version, created_at, at)";
    /// One journal entry per change of a wallet.
    pub const JOURNAL: &str = "INSERT INTO wallet_journal
                         (wallet_id, seq, transaction_id, kind, amount, balance_after, counterparty, reference, created_at)
                     SELECT * FROM unnest($1::uuid[], $2::int8[], $3::uuid[], $4::text[], $5::int8[], $6::int8[],
                                          $7::uuid[], $8::text[], $9::timestamptz[])";
    /// The double-entry transactions.
    pub const TRANSACTIONS: &str = "INSERT INTO ledger_transactions
                         (id, kind, debit_account, credit_account, amount, currency, reference, request_id, created_at)
                     SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::int8[], $6::text[],
                                          $7::text[], $8::text[], $9::timestamptz[])";
    /// The idempotency keys with the receipts they keep.
    pub const KEEP: &str = "INSERT INTO idempotency_keys
                         (scope, key, request_hash, request_body, receipt, created_at, expires_at)
                     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[], $5::jsonb[],
                                          $6::timestamptz[], $7::timestamptz[])";
    /// The batch's events, one row.
    pub const OUTBOX: &str = crate::adapters::outbox::sql::INSERT;
    /// The held totals of the batch's wallets (locked by [`LOCK`] before).
    pub const HELD: &str = "SELECT id, held FROM wallets WHERE id = ANY($1)";
    /// The holds the batch's hold commands name.
    pub const HOLDS: &str = "SELECT id, wallet_id, amount, currency, kind, status, posted, expires_at, created_at
                     FROM holds WHERE id = ANY($1) FOR UPDATE";
    /// The new held totals of the wallets the batch changed (after they were inserted or updated).
    pub const UPDATE_HELD: &str = "UPDATE wallets w SET held = v.held
                     FROM unnest($1::uuid[], $2::int8[]) AS v(id, held) WHERE w.id = v.id AND w.held <> v.held";
    /// The holds the batch placed, posted or released.
    pub const UPSERT_HOLDS: &str = "INSERT INTO holds
                         (id, wallet_id, amount, currency, kind, status, posted, expires_at, created_at, updated_at)
                     SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::int8[], $4::text[], $5::text[], $6::text[],
                                          $7::int8[], $8::timestamptz[], $9::timestamptz[], $10::timestamptz[])
                     ON CONFLICT (id) DO UPDATE SET status = excluded.status, posted = excluded.posted,
                                                    updated_at = excluded.updated_at";
    /// Every statement, with its name.
    pub const ALL: [(&str, &str); 14] = [
        ("held", HELD),
        ("holds", HOLDS),
        ("update_held", UPDATE_HELD),
        ("upsert_holds", UPSERT_HOLDS),
        ("lock", LOCK),
        ("taken", TAKEN),
        ("existing", EXISTING),
        ("update_wallets", UPDATE_WALLETS),
        ("insert_wallets", INSERT_WALLETS),
        ("journal", JOURNAL),
        ("transactions", TRANSACTIONS),
        ("forget", FORGET),
        ("keep", KEEP),
        ("outbox", OUTBOX),
    ];
}

struct Statements {
    lock: Statement,
    taken: Statement,
    existing: Statement,
    update_wallets: Statement,
    insert_wallets: Statement,
    journal: Statement,
    transactions: Statement,
    forget: Statement,
    keep: Statement,
    outbox: Statement,
    holds: HoldStatements,
}

/// The statements of holds and held totals.
struct HoldStatements {
    held: Statement,
    read: Statement,
    update_held: Statement,
    upsert: Statement,
}

impl HoldStatements {
    async fn prepare(client: &Client) -> Result<Self, tokio_postgres::Error> {
        use Type as T;
        let ts = T::TIMESTAMPTZ_ARRAY;
        Ok(Self {
            held: client.prepare_typed(sql::HELD, &[T::UUID_ARRAY]).await?,
            read: client.prepare_typed(sql::HOLDS, &[T::UUID_ARRAY]).await?,
            update_held: client.prepare_typed(sql::UPDATE_HELD, &[T::UUID_ARRAY, T::INT8_ARRAY]).await?,
            upsert: client
                .prepare_typed(
                    sql::UPSERT_HOLDS,
                    &[
                        T::UUID_ARRAY,
                        T::UUID_ARRAY,
                        T::INT8_ARRAY,
                        T::TEXT_ARRAY,
                        T::TEXT_ARRAY,
                        T::TEXT_ARRAY,
                        T::INT8_ARRAY,
                        ts.clone(),
                        ts.clone(),
                        ts,
                    ],
                )
                .await?,
        })
    }
}

impl Statements {
    async fn prepare(client: &Client) -> Result<Self, tokio_postgres::Error> {
        use Type as T;
        Ok(Self {
            lock: client.prepare_typed(sql::LOCK, &[T::UUID_ARRAY]).await?,
            taken: client.prepare_typed(sql::TAKEN, &[T::TEXT_ARRAY, T::TEXT_ARRAY, T::TIMESTAMPTZ]).await?,
            existing: client.prepare_typed(sql::EXISTING, &[T::UUID_ARRAY]).await?,
            update_wallets: client
                .prepare_typed(
                    sql::UPDATE_WALLETS,
                    &[T::UUID_ARRAY, T::INT8_ARRAY, T::TEXT_ARRAY, T::INT8_ARRAY, T::TIMESTAMPTZ_ARRAY],
                )
                .await?,
            insert_wallets: client
                .prepare_typed(
                    sql::INSERT_WALLETS,
                    &[
                        T::UUID_ARRAY,
                        T::BYTEA_ARRAY,
                        T::TEXT_ARRAY,
                        T::TEXT_ARRAY,
                        T::INT8_ARRAY,
                        T::TEXT_ARRAY,
                        T::INT8_ARRAY,
                        T::TIMESTAMPTZ_ARRAY,
                        T::TIMESTAMPTZ_ARRAY,
                    ],
                )
                .await?,
            journal: client
                .prepare_typed(
                    sql::JOURNAL,
                    &[
                        T::UUID_ARRAY,
                        T::INT8_ARRAY,
                        T::UUID_ARRAY,
                        T::TEXT_ARRAY,
                        T::INT8_ARRAY,
                        T::INT8_ARRAY,
                        T::UUID_ARRAY,
                        T::TEXT_ARRAY,
                        T::TIMESTAMPTZ_ARRAY,
                    ],
                )
                .await?,
            transactions: client
                .prepare_typed(
                    sql::TRANSACTIONS,
                    &[
                        T::UUID_ARRAY,
                        T::TEXT_ARRAY,
                        T::TEXT_ARRAY,
                        T::TEXT_ARRAY,
                        T::INT8_ARRAY,
                        T::TEXT_ARRAY,
                        T::TEXT_ARRAY,
                        T::TEXT_ARRAY,
                        T::TIMESTAMPTZ_ARRAY,
                    ],
                )
                .await?,
            forget: client.prepare_typed(sql::FORGET, &[T::TEXT_ARRAY, T::TEXT_ARRAY, T::TIMESTAMPTZ]).await?,
            keep: client
                .prepare_typed(
                    sql::KEEP,
                    &[
                        T::TEXT_ARRAY,
                        T::TEXT_ARRAY,
                        T::TEXT_ARRAY,
                        T::JSONB_ARRAY,
                        T::JSONB_ARRAY,
                        T::TIMESTAMPTZ_ARRAY,
                        T::TIMESTAMPTZ_ARRAY,
                    ],
                )
                .await?,
            outbox: client.prepare_typed(sql::OUTBOX, &[T::TIMESTAMPTZ, T::INT4, T::BYTEA]).await?,
            holds: HoldStatements::prepare(client).await?,
        })
    }
}

struct Writer {
    client: Client,
    statements: Statements,
}

/// The PostgreSQL ledger: a pool for reads and one writer connection for batches.
#[derive(Clone)]
pub struct PgLedger {
    pool: PgPool,
    config: Arc<tokio_postgres::Config>,
    writer: Arc<Mutex<Option<Writer>>>,
    timeout: Duration,
    vault: Vault,
}

/// How long a commit or a read may take before it is given up, unless set otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(6);

fn pg_err(e: tokio_postgres::Error) -> StoreError {
    StoreError::Postgres(PostgresError::Query(e))
}

impl PgLedger {
    /// A ledger reading through `pool` and writing on its own connection made from `config`.
    /// Its personal fields are sealed by a vault over the same database with the development
    /// keys until [`PgLedger::with_vault`] gives it the configured one.
    pub fn new(pool: PgPool, config: tokio_postgres::Config) -> Self {
        let vault = Vault::for_pool(Some(pool.clone()), &PrivacySettings::default());
        Self { pool, config: Arc::new(config), writer: Arc::default(), timeout: DEFAULT_TIMEOUT, vault }
    }

    /// The same ledger, sealing its personal fields with `vault`.
    pub fn with_vault(mut self, vault: Vault) -> Self {
        self.vault = vault;
        self
    }

    /// The vault that seals its personal fields.
    pub fn vault(&self) -> &Vault {
        &self.vault
    }

    /// The same ledger, giving up on a commit or a read after `timeout`: a connection that
    /// stopped answering (lost packets, a peer gone without a word) fails the call instead of
    /// hanging it, and the writer's connection is then replaced.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// `call`, or a timeout failure once the ledger's timeout has passed.
    async fn timed<T>(&self, call: impl Future<Output = Result<T, StoreError>>) -> Result<T, StoreError> {
        tokio::time::timeout(self.timeout, call).await.unwrap_or(Err(StoreError::Postgres(PostgresError::Timeout)))
    }

    async fn writer(&self) -> Result<tokio::sync::MutexGuard<'_, Option<Writer>>, StoreError> {
        let mut guard = self.writer.lock().await;
        let usable = guard.as_ref().is_some_and(|w| !w.client.is_closed());
        if !usable {
            let client = pg::connect(&self.config).await?;
            client.batch_execute(sql::SESSION).await.map_err(pg_err)?;
            let statements = Statements::prepare(&client).await.map_err(pg_err)?;
            *guard = Some(Writer { client, statements });
        }
        Ok(guard)
    }

    /// The read pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The writer's connection settings.
    pub fn config(&self) -> &tokio_postgres::Config {
        &self.config
    }

    /// Apply `ops` in one transaction; if that fails, each alone. A commit that does not end
    /// within the ledger's timeout fails every op (which may or may not have been applied) and
    /// drops the writer's connection: the next commit opens a new one.
    pub async fn commit(&self, ops: &[LedgerOp]) -> Vec<Result<Outcome, StoreError>> {
        let timeout = || -> Vec<Result<Outcome, StoreError>> {
            ops.iter().map(|_| Err(StoreError::Postgres(PostgresError::Timeout))).collect()
        };
        let mut guard = match tokio::time::timeout(self.timeout, self.writer()).await {
            Ok(Ok(guard)) => guard,
            Ok(Err(e)) => return ops.iter().map(|_| Err(clone_err(&e))).collect(),
            Err(_) => return timeout(),
        };
        let Some(writer) = guard.as_mut() else {
            return ops.iter().map(|_| Err(StoreError::Unreachable("no writer connection".into()))).collect();
        };
        match tokio::time::timeout(self.timeout, commit_on(writer, &self.vault, ops)).await {
            Ok(results) => results,
            Err(_) => {
                tracing::warn!(ops = ops.len(), "ledger commit timed out; reconnecting the writer");
                *guard = None;
                timeout()
            }
        }
    }

    /// A wallet as stored.
    pub async fn wallet(&self, id: WalletId) -> Result<Option<Wallet>, StoreError> {
        self.timed(self.wallet_now(id)).await
    }

    async fn wallet_now(&self, id: WalletId) -> Result<Option<Wallet>, StoreError> {
        let conn = self.pool.get().await.map_err(|e| StoreError::Postgres(e.into()))?;
        let rows = conn
            .query(
                "SELECT id, COALESCE(owner_sealed, owner), currency, balance, status, version, created_at
                 FROM wallets WHERE id = $1",
                &[&id.0],
            )
            .await
            .map_err(pg_err)?;
        let Some(row) = rows.first() else { return Ok(None) };
        let held = held_of(&conn, &[id.0]).await?.get(&id).copied().unwrap_or(0);
        drop(conn);
        let owner = sealing::open(&self.vault, row.get(1), OWNER, &id.to_string()).await?;
        let mut wallet = wallet_from(row, owner_value(owner))?;
        wallet.held = held;
        Ok(Some(wallet))
    }

    /// A wallet's stored version.
    pub async fn version(&self, id: WalletId) -> Result<Option<i64>, StoreError> {
        self.timed(self.version_now(id)).await
    }

    async fn version_now(&self, id: WalletId) -> Result<Option<i64>, StoreError> {
        let conn = self.pool.get().await.map_err(|e| StoreError::Postgres(e.into()))?;
        let rows = conn.query("SELECT version FROM wallets WHERE id = $1", &[&id.0]).await.map_err(pg_err)?;
        Ok(rows.first().map(|r| r.get(0)))
    }

    /// Money movements, newest first, before `before`.
    pub async fn movements(&self, id: WalletId, before: Option<i64>, limit: usize) -> Result<Page, StoreError> {
        self.timed(self.movements_now(id, before, limit)).await
    }

    async fn movements_now(&self, id: WalletId, before: Option<i64>, limit: usize) -> Result<Page, StoreError> {
        let conn = self.pool.get().await.map_err(|e| StoreError::Postgres(e.into()))?;
        let fetch = (limit + 1) as i64;
        let rows = conn
            .query(
                "SELECT wallet_id, seq, transaction_id, kind, amount, balance_after, counterparty, reference, created_at
                 FROM wallet_journal
                 WHERE wallet_id = $1 AND amount <> 0 AND ($2::bigint IS NULL OR seq < $2)
                 ORDER BY seq DESC LIMIT $3",
                &[&id.0, &before, &fetch],
            )
            .await
            .map_err(pg_err)?;
        drop(conn);
        let mut items = Vec::with_capacity(rows.len());
        for row in &rows {
            let mut movement = movement_from(row)?;
            let opened = sealing::open(
                &self.vault,
                movement.reference.take(),
                JOURNAL_REFERENCE,
                &entry_row(movement.wallet_id, movement.seq),
            )
            .await?;
            movement.erased = opened.is_erased();
            movement.reference = opened.value().cloned().flatten();
            items.push(movement);
        }
        let next_before = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|m| m.seq)
        } else {
            None
        };
        Ok(Page { items, next_before })
    }

    /// What an idempotency key keeps (no result for a key kept before receipts were).
    pub async fn kept(&self, scope: &str, key: &str) -> Result<Option<Kept>, StoreError> {
        self.timed(self.kept_now(scope, key)).await
    }

    async fn kept_now(&self, scope: &str, key: &str) -> Result<Option<Kept>, StoreError> {
        let scope = self.vault.subject_index(scope).hex();
        let conn = self.pool.get().await.map_err(|e| StoreError::Postgres(e.into()))?;
        let rows = conn
            .query(
                "SELECT request_hash, request_body, receipt FROM idempotency_keys WHERE scope = $1 AND key = $2",
                &[&scope, &key],
            )
            .await
            .map_err(pg_err)?;
        drop(conn);
        let Some(r) = rows.first() else { return Ok(None) };
        // Once its subject was erased, a key keeps nothing readable: as if it were not kept.
        let Some(request) = sealing::open_json(&self.vault, r.get(1), &kept_row(&scope, key, "request")).await? else {
            return Ok(None);
        };
        let result = match r.get::<_, Option<Value>>(2) {
            Some(receipt) => sealing::open_json(&self.vault, receipt, &kept_row(&scope, key, "receipt")).await?,
            None => None,
        };
        Ok(Some(Kept { fingerprint: r.get(0), request, result }))
    }

    /// Forget at most `limit` idempotency keys expired at `now`, oldest first.
    pub async fn purge_expired_keys(&self, now: DateTime<Utc>, limit: usize) -> Result<u64, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.timed(async {
            let conn = self.pool.get().await.map_err(|e| StoreError::Postgres(e.into()))?;
            conn.execute(
                "DELETE FROM idempotency_keys WHERE (scope, key) IN
                     (SELECT scope, key FROM idempotency_keys WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2)",
                &[&now, &limit],
            )
            .await
            .map_err(pg_err)
        })
        .await
    }

    /// The wallets of the subject whose blind index is `subject`.
    pub async fn wallets_of(&self, subject: &BlindIndex) -> Result<Vec<WalletId>, StoreError> {
        self.timed(async {
            let conn = self.pool.get().await.map_err(|e| StoreError::Postgres(e.into()))?;
            let rows = conn
                .query("SELECT id FROM wallets WHERE owner_index = $1 ORDER BY id", &[&subject.as_bytes()])
                .await
                .map_err(pg_err)?;
            Ok(rows.iter().map(|r| WalletId(r.get(0))).collect())
        })
        .await
    }

    /// Forget the idempotency keys of the subject whose blind index is `subject`, and unlink
    /// their wallets from them.
    pub async fn erase(&self, subject: &BlindIndex) -> Result<super::Erased, StoreError> {
        self.timed(async {
            let conn = self.pool.get().await.map_err(|e| StoreError::Postgres(e.into()))?;
            let idempotency_keys = conn
                .execute("DELETE FROM idempotency_keys WHERE scope = $1", &[&subject.hex()])
                .await
                .map_err(pg_err)?;
            let wallets = conn
                .execute("UPDATE wallets SET owner_index = NULL WHERE owner_index = $1", &[&subject.as_bytes()])
                .await
                .map_err(pg_err)?;
            Ok(super::Erased { idempotency_keys, wallets })
        })
        .await
    }

    /// Forget at most `limit` idempotency keys created before `cutoff`, oldest first.
    pub async fn forget_keys_kept_since(&self, cutoff: DateTime<Utc>, limit: usize) -> Result<u64, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.timed(async {
            let conn = self.pool.get().await.map_err(|e| StoreError::Postgres(e.into()))?;
            conn.execute(
                "DELETE FROM idempotency_keys WHERE (scope, key) IN
                     (SELECT scope, key FROM idempotency_keys WHERE created_at < $1 ORDER BY created_at LIMIT $2)",
                &[&cutoff, &limit],
            )
            .await
            .map_err(pg_err)
        })
        .await
    }

    /// Conservation totals.
    pub async fn totals(&self) -> Result<Totals, StoreError> {
        self.timed(self.totals_now()).await
    }

    async fn totals_now(&self) -> Result<Totals, StoreError> {
        let conn = self.pool.get().await.map_err(|e| StoreError::Postgres(e.into()))?;
        let row = conn
            .query_one(
                "SELECT (SELECT COALESCE(SUM(balance), 0) FROM wallets)::text,
                        (SELECT COALESCE(SUM(CASE kind WHEN 'deposit' THEN amount WHEN 'withdrawal' THEN -amount ELSE 0 END), 0)
                         FROM ledger_transactions)::text",
                &[],
            )
            .await
            .map_err(pg_err)?;
        let parse = |i: usize| -> Result<i128, StoreError> {
            row.get::<_, String>(i).parse().map_err(|_| StoreError::Corrupt("totals".into()))
        };
        Ok(Totals { balances: parse(0)?, net_external: parse(1)? })
    }
}

/// `ops` in one transaction on `writer`; if that fails, each alone.
async fn commit_on(writer: &mut Writer, vault: &Vault, ops: &[LedgerOp]) -> Vec<Result<Outcome, StoreError>> {
    match batch(writer, vault, ops).await {
        Ok(outcomes) => outcomes.into_iter().map(Ok).collect(),
        Err(e) if ops.len() == 1 => {
            rollback(writer).await;
            vec![Err(e)]
        }
        Err(e) => {
            tracing::warn!(error = %e, ops = ops.len(), "ledger batch failed; applying its commands one by one");
            rollback(writer).await;
            let mut results = Vec::with_capacity(ops.len());
            for op in ops {
                let one = batch(writer, vault, std::slice::from_ref(op)).await;
                if one.is_err() {
                    rollback(writer).await;
                }
                results.push(one.map(|mut v| v.remove(0)));
            }
            results
        }
    }
}

fn clone_err(e: &StoreError) -> StoreError {
    match e {
        StoreError::Corrupt(what) => StoreError::Corrupt(what.clone()),
        other => StoreError::Unreachable(other.to_string()),
    }
}

async fn rollback(writer: &mut Writer) {
    if let Err(e) = writer.client.batch_execute("ROLLBACK").await {
        tracing::warn!(error = %e, "ROLLBACK failed");
    }
}

type RowsFuture<'a> = LocalBoxFuture<'a, Result<Vec<Row>, tokio_postgres::Error>>;

type Params<'a> = Vec<&'a (dyn ToSql + Sync)>;

/// `statement` with `params`, sent when the future is first polled (polling several together
/// pipelines them).
fn run<'a>(client: &'a Client, statement: &'a Statement, params: Params<'a>) -> RowsFuture<'a> {
    Box::pin(async move { client.query(statement, &params).await })
}

/// One transaction for `ops`, in two pipelined round trips. Phase 1: `BEGIN`, lock and read every
/// wallet the batch touches (in id order, so that batches of different replicas never deadlock),
/// and find which of its idempotency keys are taken and which transactions of its commands applied
/// once exist. In between, the ledger's rules are applied to the locked wallets in command order,
/// exactly as the in-memory store applies them. Phase 2:
/// the new wallet states, journal entries, ledger transactions, idempotency keys with their
/// responses and the outbox row, one statement each, and `COMMIT`.
async fn batch(writer: &mut Writer, vault: &Vault, ops: &[LedgerOp]) -> Result<Vec<Outcome>, StoreError> {
    // The keys that seal the batch's personal fields, found before its transaction begins (from
    // the cache, mostly): each caller's, for what their idempotency keys keep, and each new
    // wallet's owner's.
    let mut scope_keys: HashMap<&str, (String, SubjectKey)> = HashMap::new();
    let mut wallet_keys: HashMap<WalletId, Option<SubjectKey>> = HashMap::new();
    for op in ops {
        if let Some(c) = &op.idempotency {
            if !scope_keys.contains_key(c.scope.as_str()) {
                let key = vault.key_of(&c.scope).await?;
                scope_keys.insert(c.scope.as_str(), (vault.subject_index(&c.scope).hex(), key));
            }
        }
        if let Command::Open(w) = &op.command {
            if let Some(owner) = w.owner.value() {
                wallet_keys.insert(w.id, Some(vault.key_of(owner).await?));
            }
        }
    }
    let scope_of = |c: &Claim| scope_keys.get(c.scope.as_str()).map(|(index, _)| index.clone()).unwrap_or_default();
    let client = &writer.client;
    let st = &writer.statements;
    let mut ids: Vec<Uuid> = ops
        .iter()
        .filter(|op| !matches!(op.command, Command::Open(_)))
        .flat_map(|op| op.command.wallets())
        .map(|w| w.0)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let claims: Vec<&Claim> = ops.iter().filter_map(|op| op.idempotency.as_ref()).collect();
    let scope_indexes: Vec<String> = claims.iter().map(|c| scope_of(c)).collect();
    let scopes: Vec<&str> = scope_indexes.iter().map(String::as_str).collect();
    let keys: Vec<&str> = claims.iter().map(|c| c.key.as_str()).collect();
    let once: Vec<Uuid> = ops.iter().filter(|op| op.once).map(|op| op.transaction_id).collect();

    let named_holds = hold_ids(ops);
    let now = Utc::now();
    let mut phase: Vec<RowsFuture<'_>> = vec![
        Box::pin(async move { client.simple_query("BEGIN").await.map(|_| Vec::new()) }),
        run(client, &st.lock, vec![&ids]),
    ];
    if !scopes.is_empty() {
        phase.push(run(client, &st.taken, vec![&scopes, &keys, &now]));
    }
    if !once.is_empty() {
        phase.push(run(client, &st.existing, vec![&once]));
    }
    phase.push(run(client, &st.holds.held, vec![&ids]));
    if !named_holds.is_empty() {
        phase.push(run(client, &st.holds.read, vec![&named_holds]));
    }
    let mut results = join_all(phase).await.into_iter();
    let (begin, locked) = (results.next(), results.next());
    begin.transpose().map_err(pg_err)?;
    let mut book = Book::default();
    let locked = locked.transpose().map_err(pg_err)?.unwrap_or_default();
    for row in &locked {
        let id = WalletId(row.get(0));
        let stored: Option<String> = row.get(1);
        let key = match &stored {
            Some(owner) => sealing::key_of_field(vault, owner).await?,
            None => None,
        };
        let owner = sealing::open(vault, stored, OWNER, &id.to_string()).await?;
        wallet_keys.insert(id, key);
        let wallet = wallet_from(row, owner_value(owner))?;
        book.wallets.insert(wallet.id, wallet);
    }
    // Keys held, and expired keys (which count as new: forgotten before they are kept again).
    let mut taken: HashSet<(String, String)> = HashSet::new();
    let mut expired: HashSet<(String, String)> = HashSet::new();
    if !scopes.is_empty() {
        let rows = results.next().transpose().map_err(pg_err)?.unwrap_or_default();
        for r in &rows {
            if r.get::<_, bool>(2) { &mut expired } else { &mut taken }.insert((r.get(0), r.get(1)));
        }
    }
    let mut transactions: HashMap<Uuid, TransactionRecord> = HashMap::new();
    if !once.is_empty() {
        let rows = results.next().transpose().map_err(pg_err)?.unwrap_or_default();
        for r in &rows {
            let id: Uuid = r.get(0);
            let mut record = transaction_from(r)?;
            let reference =
                sealing::open(vault, record.reference.take(), TRANSACTION_REFERENCE, &id.to_string()).await?;
            record.reference = reference.value().cloned().flatten();
            transactions.insert(id, record);
        }
    }
    for r in &results.next().transpose().map_err(pg_err)?.unwrap_or_default() {
        if let Some(w) = book.wallets.get_mut(&WalletId(r.get(0))) {
            w.held = r.get(1);
        }
    }
    if !named_holds.is_empty() {
        for r in &results.next().transpose().map_err(pg_err)?.unwrap_or_default() {
            let hold = hold_from(r)?;
            book.holds.insert(hold.id, hold);
        }
    }

    // The rules, command after command, on the locked state.
    let existing: HashSet<WalletId> = book.wallets.keys().copied().collect();
    let held_before: HashMap<WalletId, i64> = book.wallets.values().map(|w| (w.id, w.held)).collect();
    let mut outcomes = Vec::with_capacity(ops.len());
    let mut touched: HashMap<WalletId, (Wallet, DateTime<Utc>)> = HashMap::new();
    let mut rows = Rows::default();
    let mut changed_holds: HashMap<Uuid, (Hold, DateTime<Utc>)> = HashMap::new();
    for op in ops {
        if let Some(c) = &op.idempotency {
            if !taken.insert((scope_of(c), c.key.clone())) {
                outcomes.push(Outcome::DuplicateKey);
                continue;
            }
        }
        if op.once {
            if let Some(record) = transactions.get(&op.transaction_id) {
                outcomes.push(if record.recorded_by(&op.command) {
                    Outcome::DuplicateKey
                } else {
                    Outcome::ConflictingDuplicate
                });
                continue;
            }
        }
        let outcome = match book.apply(op) {
            Ok(change) => {
                let currency = change.wallets.first().map(|w| w.currency.code());
                if let Some(record) = currency.and_then(|c| TransactionRecord::of(&op.command, c)) {
                    transactions.insert(op.transaction_id, record);
                }
                for w in &change.wallets {
                    touched.insert(w.id, (w.clone(), op.at));
                }
                rows.add(op, &change.wallets, &change.movements, &wallet_keys)?;
                for h in &change.holds {
                    changed_holds.insert(h.id, (h.clone(), op.at));
                }
                Outcome::Applied { wallets: change.wallets, movements: change.movements, holds: change.holds }
            }
            Err(refusal) => Outcome::Refused(refusal),
        };
        if let Some(c) = &op.idempotency {
            if let Some((scope, key)) = scope_keys.get(c.scope.as_str()) {
                rows.keep(c, scope, key, super::receipt_of(op, &outcome), op.at)?;
            }
        }
        outcomes.push(outcome);
    }
    let (mut updated, mut opened) = (WalletRows::default(), WalletRows::default());
    for (id, (wallet, at)) in &touched {
        if existing.contains(id) {
            updated.push(wallet, *at);
        } else {
            opened.push(wallet, *at);
            let key = wallet_keys.get(id).and_then(Option::as_ref);
            let owner = wallet.owner.value();
            opened.owner_index.push(owner.map(|o| vault.subject_index(o).as_bytes().to_vec()));
            opened.owner_sealed.push(match owner {
                Some(o) => sealing::seal(key, OWNER, &id.to_string(), o)?,
                None => None,
            });
        }
    }
    // Events carry the references as the journal stores them: sealed.
    let sealed_outcomes: Vec<Outcome> = outcomes
        .iter()
        .map(|o| match o {
            Outcome::Applied { wallets, movements, holds } => Outcome::Applied {
                wallets: wallets.clone(),
                holds: holds.clone(),
                movements: movements
                    .iter()
                    .map(|m| Movement {
                        reference: m
                            .reference
                            .as_ref()
                            .and_then(|_| rows.sealed.get(&(m.wallet_id, m.seq)).cloned())
                            .flatten(),
                        ..m.clone()
                    })
                    .collect(),
            },
            other => other.clone(),
        })
        .collect();
    let (events, count) =
        super::encode_events(ops, &sealed_outcomes, &rows.owners).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let count = count as i32;
    let at = ops.last().map(|op| op.at).unwrap_or_else(Utc::now);

    let forget: (Vec<&str>, Vec<&str>) = claims
        .iter()
        .zip(&scope_indexes)
        .filter(|(c, scope)| expired.contains(&((*scope).clone(), c.key.clone())))
        .map(|(c, scope)| (scope.as_str(), c.key.as_str()))
        .unzip();
    // Only the held totals that changed: most batches place, post or void no hold.
    let held: (Vec<Uuid>, Vec<i64>) = touched
        .values()
        .filter(|(w, _)| held_before.get(&w.id).copied().unwrap_or(0) != w.held)
        .map(|(w, _)| (w.id.0, w.held))
        .unzip();
    let h = HoldRows::of(changed_holds.values());
    let (u, o, r) = (&updated, &opened, &rows);
    let mut phase: Vec<RowsFuture<'_>> = Vec::with_capacity(7);
    if !u.ids.is_empty() {
        phase.push(run(client, &st.update_wallets, vec![&u.ids, &u.balances, &u.statuses, &u.versions, &u.at]));
    }
    if !o.ids.is_empty() {
        let params: Params<'_> = vec![
            &o.ids,
            &o.owner_index,
            &o.owner_sealed,
            &o.currencies,
            &o.balances,
            &o.statuses,
            &o.versions,
            &o.created,
            &o.at,
        ];
        phase.push(run(client, &st.insert_wallets, params));
    }
    // Held totals after the wallets they belong to were inserted.
    if !held.0.is_empty() {
        phase.push(run(client, &st.holds.update_held, vec![&held.0, &held.1]));
    }
    if !h.ids.is_empty() {
        let params: Params<'_> = vec![
            &h.ids,
            &h.wallets,
            &h.amounts,
            &h.currencies,
            &h.kinds,
            &h.statuses,
            &h.posted,
            &h.expires,
            &h.created,
            &h.at,
        ];
        phase.push(run(client, &st.holds.upsert, params));
    }
    if !r.j_wallet.is_empty() {
        let params: Params<'_> = vec![
            &r.j_wallet,
            &r.j_seq,
            &r.j_tx,
            &r.j_kind,
            &r.j_amount,
            &r.j_balance,
            &r.j_counterparty,
            &r.j_reference,
            &r.j_at,
        ];
        phase.push(run(client, &st.journal, params));
    }
    if !r.t_id.is_empty() {
        let params: Params<'_> = vec![
            &r.t_id,
            &r.t_kind,
            &r.t_debit,
            &r.t_credit,
            &r.t_amount,
            &r.t_currency,
            &r.t_reference,
            &r.t_request,
            &r.t_at,
        ];
        phase.push(run(client, &st.transactions, params));
    }
    if !forget.0.is_empty() {
        phase.push(run(client, &st.forget, vec![&forget.0, &forget.1, &now]));
    }
    if !r.k_scope.is_empty() {
        let params: Params<'_> = vec![&r.k_scope, &r.k_key, &r.k_hash, &r.k_body, &r.k_receipt, &r.k_at, &r.k_expires];
        phase.push(run(client, &st.keep, params));
    }
    if count > 0 {
        phase.push(run(client, &st.outbox, vec![&at, &count, &events]));
    }
    phase.push(Box::pin(async move { client.simple_query("COMMIT").await.map(|_| Vec::new()) }));
    for result in join_all(phase).await {
        result.map_err(pg_err)?;
    }
    Ok(outcomes)
}

/// Wallet states to write, column by column.
#[derive(Default)]
struct WalletRows {
    ids: Vec<Uuid>,
    owner_index: Vec<Option<Vec<u8>>>,
    owner_sealed: Vec<Option<String>>,
    currencies: Vec<String>,
    balances: Vec<i64>,
    statuses: Vec<&'static str>,
    versions: Vec<i64>,
    created: Vec<DateTime<Utc>>,
    at: Vec<DateTime<Utc>>,
}

impl WalletRows {
    fn push(&mut self, w: &Wallet, at: DateTime<Utc>) {
        self.ids.push(w.id.0);
        self.currencies.push(w.currency.code().to_owned());
        self.balances.push(w.balance);
        self.statuses.push(w.status.as_str());
        self.versions.push(w.version);
        self.created.push(w.created_at);
        self.at.push(at);
    }
}

/// Journal entries, ledger transactions and idempotency keys to insert, column by column.
#[derive(Default)]
struct Rows {
    j_wallet: Vec<Uuid>,
    j_seq: Vec<i64>,
    j_tx: Vec<Option<Uuid>>,
    j_kind: Vec<&'static str>,
    j_amount: Vec<i64>,
    j_balance: Vec<i64>,
    j_counterparty: Vec<Option<Uuid>>,
    j_reference: Vec<Option<String>>,
    j_at: Vec<DateTime<Utc>>,
    t_id: Vec<Uuid>,
    t_kind: Vec<&'static str>,
    t_debit: Vec<String>,
    t_credit: Vec<String>,
    t_amount: Vec<i64>,
    t_currency: Vec<String>,
    t_reference: Vec<Option<String>>,
    t_request: Vec<Option<String>>,
    t_at: Vec<DateTime<Utc>>,
    k_scope: Vec<String>,
    k_key: Vec<String>,
    k_hash: Vec<String>,
    k_body: Vec<Value>,
    k_receipt: Vec<Value>,
    k_at: Vec<DateTime<Utc>>,
    k_expires: Vec<DateTime<Utc>>,
    /// The sealed reference of each journal entry, for the events.
    sealed: HashMap<(WalletId, i64), Option<String>>,
    /// The sealed owner of each wallet whose lifecycle changed, for its events.
    owners: SealedOwners,
}

impl Rows {
    /// The journal entries and the double-entry transaction of an applied command.
    fn add(
        &mut self,
        op: &LedgerOp,
        wallets: &[Wallet],
        movements: &[Movement],
        keys: &HashMap<WalletId, Option<SubjectKey>>,
    ) -> Result<(), StoreError> {
        let key_of = |w: &WalletId| keys.get(w).and_then(Option::as_ref);
        for m in movements {
            self.j_wallet.push(m.wallet_id.0);
            self.j_seq.push(m.seq);
            self.j_tx.push(m.transaction_id);
            self.j_kind.push(m.kind.as_str());
            self.j_amount.push(m.amount);
            self.j_balance.push(m.balance_after);
            self.j_counterparty.push(m.counterparty.map(|c| c.0));
            let sealed = match &m.reference {
                Some(r) => sealing::seal(key_of(&m.wallet_id), JOURNAL_REFERENCE, &entry_row(m.wallet_id, m.seq), r)?,
                None => None,
            };
            self.sealed.insert((m.wallet_id, m.seq), sealed.clone());
            self.j_reference.push(sealed);
            self.j_at.push(m.created_at);
        }
        super::seal_owners(&mut self.owners, wallets, movements, key_of)?;
        let currency = wallets.first().map(|w| w.currency.code());
        let Some(record) = currency.and_then(|c| TransactionRecord::of(&op.command, c)) else { return Ok(()) };
        let reference = match (&record.reference, wallets.first()) {
            (Some(r), Some(w)) => {
                sealing::seal(key_of(&w.id), TRANSACTION_REFERENCE, &op.transaction_id.to_string(), r)?
            }
            _ => None,
        };
        self.t_id.push(op.transaction_id);
        self.t_kind.push(record.kind.as_str());
        self.t_debit.push(record.debit);
        self.t_credit.push(record.credit);
        self.t_amount.push(record.amount);
        self.t_currency.push(record.currency);
        self.t_reference.push(reference);
        self.t_request.push(op.request_id.clone());
        self.t_at.push(op.at);
        Ok(())
    }

    /// An idempotency key with the receipt it keeps.
    fn keep(
        &mut self,
        claim: &Claim,
        scope: &str,
        key: &SubjectKey,
        receipt: Value,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.k_scope.push(scope.to_owned());
        self.k_key.push(claim.key.clone());
        self.k_hash.push(claim.fingerprint.clone());
        self.k_body.push(sealing::seal_json(key, &kept_row(scope, &claim.key, "request"), &claim.request)?);
        self.k_receipt.push(sealing::seal_json(key, &kept_row(scope, &claim.key, "receipt"), &receipt)?);
        self.k_at.push(at);
        self.k_expires.push(claim.expires_at);
        Ok(())
    }
}

/// A stored owner as the domain holds it: never absent unless erased.
fn owner_value(owner: Personal<Option<String>>) -> Personal<String> {
    match owner {
        Personal::Value(Some(o)) => Personal::Value(o),
        _ => Personal::Erased,
    }
}

/// A wallet from its row (id, stored owner, currency, balance, status, version, created_at) and
/// its opened owner.
fn wallet_from(r: &Row, owner: Personal<String>) -> Result<Wallet, StoreError> {
    let currency: String = r.get(2);
    let status: String = r.get(4);
    Ok(Wallet {
        id: WalletId(r.get(0)),
        owner,
        currency: Currency::parse(currency.trim()).map_err(|_| StoreError::Corrupt(format!("currency {currency}")))?,
        balance: r.get(3),
        held: 0,
        status: WalletStatus::parse(&status).ok_or_else(|| StoreError::Corrupt(format!("status {status}")))?,
        version: r.get(5),
        created_at: r.get(6),
    })
}

fn transaction_from(r: &Row) -> Result<TransactionRecord, StoreError> {
    let kind: String = r.get(1);
    let currency: String = r.get(5);
    Ok(TransactionRecord {
        kind: TransactionKind::parse(&kind).ok_or_else(|| StoreError::Corrupt(format!("transaction kind {kind}")))?,
        debit: r.get(2),
        credit: r.get(3),
        amount: r.get(4),
        currency: currency.trim().to_owned(),
        reference: r.get(6),
    })
}

fn movement_from(r: &Row) -> Result<Movement, StoreError> {
    let kind: String = r.get(3);
    Ok(Movement {
        wallet_id: WalletId(r.get(0)),
        seq: r.get(1),
        transaction_id: r.get(2),
        kind: MovementKind::parse(&kind).ok_or_else(|| StoreError::Corrupt(format!("kind {kind}")))?,
        amount: r.get(4),
        balance_after: r.get(5),
        counterparty: r.get::<_, Option<Uuid>>(6).map(WalletId),
        reference: r.get(7),
        erased: false,
        created_at: r.get(8),
    })
}

/// The holds a batch's hold commands name.
fn hold_ids(ops: &[LedgerOp]) -> Vec<Uuid> {
    let mut ids: Vec<Uuid> = ops
        .iter()
        .filter_map(|op| match &op.command {
            Command::PlaceHold { hold, .. } | Command::PostHold { hold, .. } | Command::VoidHold { hold, .. } => {
                Some(*hold)
            }
            _ => None,
        })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// The held totals of `ids`.
async fn held_of(client: &Client, ids: &[Uuid]) -> Result<HashMap<WalletId, i64>, StoreError> {
    let rows = client
        .query_typed("SELECT id, held FROM wallets WHERE id = ANY($1)", &[(&ids, Type::UUID_ARRAY)])
        .await
        .map_err(pg_err)?;
    Ok(rows.iter().map(|r| (WalletId(r.get(0)), r.get(1))).collect())
}

/// Holds to write, column by column.
#[derive(Default)]
struct HoldRows {
    ids: Vec<Uuid>,
    wallets: Vec<Uuid>,
    amounts: Vec<i64>,
    currencies: Vec<String>,
    kinds: Vec<String>,
    statuses: Vec<&'static str>,
    posted: Vec<i64>,
    expires: Vec<DateTime<Utc>>,
    created: Vec<DateTime<Utc>>,
    at: Vec<DateTime<Utc>>,
}

impl HoldRows {
    fn of<'a>(holds: impl Iterator<Item = &'a (Hold, DateTime<Utc>)>) -> Self {
        let mut rows = Self::default();
        for (h, at) in holds {
            rows.ids.push(h.id);
            rows.wallets.push(h.wallet.0);
            rows.amounts.push(h.amount);
            rows.currencies.push(h.currency.code().to_owned());
            rows.kinds.push(h.kind.clone());
            rows.statuses.push(h.status.as_str());
            rows.posted.push(h.posted);
            rows.expires.push(h.expires_at);
            rows.created.push(h.created_at);
            rows.at.push(*at);
        }
        rows
    }
}

/// The columns of [`sql::HOLDS`] as a hold.
fn hold_from(r: &Row) -> Result<Hold, StoreError> {
    let currency: String = r.get(3);
    let status: String = r.get(5);
    Ok(Hold {
        id: r.get(0),
        wallet: WalletId(r.get(1)),
        amount: r.get(2),
        currency: Currency::parse(currency.trim()).map_err(|_| StoreError::Corrupt(format!("currency {currency}")))?,
        kind: r.get(4),
        status: HoldStatus::parse(&status).ok_or_else(|| StoreError::Corrupt(format!("hold status {status}")))?,
        posted: r.get(6),
        expires_at: r.get(7),
        created_at: r.get(8),
    })
}

impl PgLedger {
    /// A hold as stored.
    pub async fn hold(&self, id: Uuid) -> Result<Option<Hold>, StoreError> {
        self.timed(async {
            let conn = self.pool.get().await.map_err(|e| StoreError::Postgres(e.into()))?;
            let rows = conn
                .query(
                    "SELECT id, wallet_id, amount, currency, kind, status, posted, expires_at, created_at
                     FROM holds WHERE id = $1",
                    &[&id],
                )
                .await
                .map_err(pg_err)?;
            rows.first().map(hold_from).transpose()
        })
        .await
    }

    /// The pending holds expired at `now`, at most `limit`, oldest first.
    pub async fn expired_holds(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Hold>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.timed(async {
            let conn = self.pool.get().await.map_err(|e| StoreError::Postgres(e.into()))?;
            let rows = conn
                .query(
                    "SELECT id, wallet_id, amount, currency, kind, status, posted, expires_at, created_at
                     FROM holds WHERE status = 'pending' AND expires_at <= $1 ORDER BY expires_at, id LIMIT $2",
                    &[&now, &limit],
                )
                .await
                .map_err(pg_err)?;
            rows.iter().map(hold_from).collect()
        })
        .await
    }
}
