//! The ledger on PostgreSQL.
//!
//! [`PgLedger::commit`] applies a batch of commands in one transaction on a dedicated writer
//! connection, sending every statement without waiting for the previous answer (pipelining):
//! `BEGIN`, one statement locking every wallet the batch touches in id order (so that batches of
//! different replicas never deadlock), one statement per command; then, once their outcomes are
//! known, one statement inserting every idempotency key with its response, one outbox row with
//! the batch's events, and `COMMIT`. Each command statement checks that its idempotency key is
//! free, re-checks its rules against the locked rows, and applies all of its changes or none. A
//! key taken meanwhile (by another replica, or twice in one batch) fails the key insert and so the
//! batch; if the batch fails as a whole, each command is retried alone, so that one bad command
//! cannot fail the others and a taken key is found taken.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::future::{join_all, LocalBoxFuture};
use serde_json::Value;
use tokio::sync::Mutex;
use tokio_postgres::{
    types::{ToSql, Type},
    Client, Row, Statement,
};
use uuid::Uuid;

use super::{Command, KeptResponse, LedgerOp, Outcome, Page, Render, StoreError, Totals};
use crate::{
    adapters::postgres::{self as pg, PgPool, PostgresError},
    domain::fintech::{
        status_entry_kind, Currency, FintechError, Movement, MovementKind, Wallet, WalletId, WalletStatus,
    },
};

/// Largest balance a wallet may reach (10^18 minor units), checked as `amount_too_large`.
const MAX_BALANCE: i64 = 1_000_000_000_000_000_000;

/// Whether the idempotency key ($1 scope, $2 key) is free; `keyed.ok` is false when a committed
/// request holds it. The key is inserted with its response at the end of the batch (phase 2), so
/// a key taken meanwhile by another replica fails the batch, whose commands are then retried one
/// by one and find it taken.
const CLAIM: &str = "
keyed AS (SELECT ($2::text IS NULL
                  OR NOT EXISTS (SELECT 1 FROM idempotency_keys WHERE scope = $1 AND key = $2)) AS ok)";

const RETURN: &str = "
SELECT (SELECT v FROM verdict) AS verdict, u.id, u.owner, u.currency, u.balance, u.status, u.version, u.created_at,
       (SELECT currency FROM a) AS currency_a, (SELECT currency FROM b) AS currency_b, (SELECT status FROM a) AS status_a
FROM (SELECT 1) AS one LEFT JOIN upd u ON true
ORDER BY u.id = $7 DESC";

fn transfer_sql() -> String {
    format!(
        "WITH {CLAIM},
a AS (SELECT * FROM wallets WHERE id = $7),
b AS (SELECT * FROM wallets WHERE id = $8),
verdict AS (SELECT CASE
    WHEN NOT (SELECT ok FROM keyed) THEN 'duplicate_key'
    WHEN NOT EXISTS (SELECT 1 FROM a) THEN 'a_not_found'
    WHEN NOT EXISTS (SELECT 1 FROM b) THEN 'b_not_found'
    WHEN (SELECT currency FROM a) <> (SELECT currency FROM b) THEN 'currency_mismatch'
    WHEN (SELECT status FROM a) = 'frozen' THEN 'a_frozen'
    WHEN (SELECT status FROM a) = 'closed' THEN 'a_closed'
    WHEN (SELECT balance FROM a) < $9 THEN 'insufficient_funds'
    WHEN (SELECT status FROM b) = 'frozen' THEN 'b_frozen'
    WHEN (SELECT status FROM b) = 'closed' THEN 'b_closed'
    WHEN (SELECT balance FROM b) > {MAX_BALANCE} - $9 THEN 'amount_too_large'
    ELSE 'ok' END AS v),
upd AS (
    UPDATE wallets w SET balance = w.balance + d.delta, version = w.version + 1, updated_at = $5
    FROM (VALUES ($7::uuid, -$9::bigint), ($8::uuid, $9::bigint)) AS d(id, delta)
    WHERE w.id = d.id AND (SELECT v FROM verdict) = 'ok'
    RETURNING w.*),
journal AS (
    INSERT INTO wallet_journal (wallet_id, seq, transaction_id, kind, amount, balance_after, counterparty, created_at)
    SELECT u.id, u.version, $10,
           CASE WHEN u.id = $7 THEN 'transfer_out' ELSE 'transfer_in' END,
           CASE WHEN u.id = $7 THEN -$9 ELSE $9 END,
           u.balance,
           CASE WHEN u.id = $7 THEN $8 ELSE $7 END,
           $5
    FROM upd u RETURNING 1),
tx AS (
    INSERT INTO ledger_transactions (id, kind, debit_account, credit_account, amount, currency, request_id, created_at)
    SELECT $10, 'transfer', $7::text, $8::text, $9, u.currency, $11, $5 FROM upd u WHERE u.id = $7 RETURNING 1)
{RETURN}"
    )
}

/// Deposit ($9 > 0) or withdrawal ($9 < 0) of |$9| on wallet $7 with reference $8.
fn external_sql() -> String {
    format!(
        "WITH {CLAIM},
a AS (SELECT * FROM wallets WHERE id = $7),
b AS (SELECT * FROM wallets WHERE false),
verdict AS (SELECT CASE
    WHEN NOT (SELECT ok FROM keyed) THEN 'duplicate_key'
    WHEN NOT EXISTS (SELECT 1 FROM a) THEN 'a_not_found'
    WHEN (SELECT status FROM a) = 'frozen' THEN 'a_frozen'
    WHEN (SELECT status FROM a) = 'closed' THEN 'a_closed'
    WHEN (SELECT balance FROM a) + $9 < 0 THEN 'insufficient_funds'
    WHEN (SELECT balance FROM a) > {MAX_BALANCE} - $9 THEN 'amount_too_large'
    ELSE 'ok' END AS v),
upd AS (
    UPDATE wallets w SET balance = w.balance + $9, version = w.version + 1, updated_at = $5
    WHERE w.id = $7 AND (SELECT v FROM verdict) = 'ok'
    RETURNING w.*),
journal AS (
    INSERT INTO wallet_journal (wallet_id, seq, transaction_id, kind, amount, balance_after, reference, created_at)
    SELECT u.id, u.version, $10, CASE WHEN $9 > 0 THEN 'deposit' ELSE 'withdrawal' END, $9, u.balance, $8, $5
    FROM upd u RETURNING 1),
tx AS (
    INSERT INTO ledger_transactions (id, kind, debit_account, credit_account, amount, currency, reference, request_id, created_at)
    SELECT $10,
           CASE WHEN $9 > 0 THEN 'deposit' ELSE 'withdrawal' END,
           CASE WHEN $9 > 0 THEN 'external:' || u.currency ELSE u.id::text END,
           CASE WHEN $9 > 0 THEN u.id::text ELSE 'external:' || u.currency END,
           abs($9), u.currency, $8, $11, $5
    FROM upd u RETURNING 1)
{RETURN}"
    )
}

/// Status change of wallet $7 to $8.
fn status_sql() -> String {
    format!(
        "WITH {CLAIM},
a AS (SELECT * FROM wallets WHERE id = $7),
b AS (SELECT * FROM wallets WHERE false),
verdict AS (SELECT CASE
    WHEN NOT (SELECT ok FROM keyed) THEN 'duplicate_key'
    WHEN NOT EXISTS (SELECT 1 FROM a) THEN 'a_not_found'
    WHEN (SELECT status FROM a) = 'active' AND $8 = 'frozen' THEN 'ok'
    WHEN (SELECT status FROM a) = 'frozen' AND $8 = 'active' THEN 'ok'
    WHEN (SELECT status FROM a) <> 'closed' AND $8 = 'closed' AND (SELECT balance FROM a) = 0 THEN 'ok'
    WHEN (SELECT status FROM a) <> 'closed' AND $8 = 'closed' THEN 'balance_not_zero'
    ELSE 'invalid_transition' END AS v),
upd AS (
    UPDATE wallets w SET status = $8, version = w.version + 1, updated_at = $5
    WHERE w.id = $7 AND (SELECT v FROM verdict) = 'ok'
    RETURNING w.*),
journal AS (
    INSERT INTO wallet_journal (wallet_id, seq, kind, amount, balance_after, created_at)
    SELECT u.id, u.version, $9, 0, u.balance, $5 FROM upd u RETURNING 1)
{RETURN}"
    )
}

/// New wallet $7 owned by $8 in currency $9.
fn open_sql() -> String {
    format!(
        "WITH {CLAIM},
a AS (SELECT * FROM wallets WHERE false),
b AS (SELECT * FROM wallets WHERE false),
verdict AS (SELECT CASE WHEN NOT (SELECT ok FROM keyed) THEN 'duplicate_key' ELSE 'ok' END AS v),
upd AS (
    INSERT INTO wallets (id, owner, currency, balance, status, version, created_at, updated_at)
    SELECT $7, $8, $9, 0, 'active', 1, $5, $5 WHERE (SELECT v FROM verdict) = 'ok'
    RETURNING *),
journal AS (
    INSERT INTO wallet_journal (wallet_id, seq, kind, amount, balance_after, created_at)
    SELECT u.id, 1, 'opened', 0, 0, $5 FROM upd u RETURNING 1)
{RETURN}"
    )
}

const CLAIM_TYPES: [Type; 6] = [Type::TEXT, Type::TEXT, Type::TEXT, Type::JSONB, Type::TIMESTAMPTZ, Type::TIMESTAMPTZ];

struct Statements {
    lock: Statement,
    transfer: Statement,
    external: Statement,
    status: Statement,
    open: Statement,
    keep: Statement,
    outbox: Statement,
}

impl Statements {
    async fn prepare(client: &Client) -> Result<Self, tokio_postgres::Error> {
        let with = |extra: &[Type]| [CLAIM_TYPES.as_slice(), extra].concat();
        Ok(Self {
            lock: client
                .prepare_typed("SELECT 1 FROM wallets WHERE id = ANY($1) ORDER BY id FOR UPDATE", &[Type::UUID_ARRAY])
                .await?,
            transfer: client
                .prepare_typed(&transfer_sql(), &with(&[Type::UUID, Type::UUID, Type::INT8, Type::UUID, Type::TEXT]))
                .await?,
            external: client
                .prepare_typed(&external_sql(), &with(&[Type::UUID, Type::TEXT, Type::INT8, Type::UUID, Type::TEXT]))
                .await?,
            status: client.prepare_typed(&status_sql(), &with(&[Type::UUID, Type::TEXT, Type::TEXT])).await?,
            open: client.prepare_typed(&open_sql(), &with(&[Type::UUID, Type::TEXT, Type::BPCHAR])).await?,
            keep: client
                .prepare_typed(
                    "INSERT INTO idempotency_keys
                         (scope, key, request_hash, request_body, status, response, created_at, expires_at)
                     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[], $5::int2[], $6::jsonb[],
                                          $7::timestamptz[], $8::timestamptz[])",
                    &[
                        Type::TEXT_ARRAY,
                        Type::TEXT_ARRAY,
                        Type::TEXT_ARRAY,
                        Type::JSONB_ARRAY,
                        Type::INT2_ARRAY,
                        Type::JSONB_ARRAY,
                        Type::TIMESTAMPTZ_ARRAY,
                        Type::TIMESTAMPTZ_ARRAY,
                    ],
                )
                .await?,
            outbox: client
                .prepare_typed(
                    "INSERT INTO outbox (created_at, event_count, events) VALUES ($1, $2, $3)",
                    &[Type::TIMESTAMPTZ, Type::INT4, Type::BYTEA],
                )
                .await?,
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
}

fn pg_err(e: tokio_postgres::Error) -> StoreError {
    StoreError::Postgres(PostgresError::Query(e))
}

impl PgLedger {
    /// A ledger reading through `pool` and writing on its own connection made from `config`.
    pub fn new(pool: PgPool, config: tokio_postgres::Config) -> Self {
        Self { pool, config: Arc::new(config), writer: Arc::default() }
    }

    async fn writer(&self) -> Result<tokio::sync::MutexGuard<'_, Option<Writer>>, StoreError> {
        let mut guard = self.writer.lock().await;
        let usable = guard.as_ref().is_some_and(|w| !w.client.is_closed());
        if !usable {
            let client = pg::connect(&self.config).await?;
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

    /// Apply `ops` in one transaction; if that fails, each alone.
    pub async fn commit(&self, ops: &[LedgerOp], render: Render) -> Vec<Result<Outcome, StoreError>> {
        let mut guard = match self.writer().await {
            Ok(guard) => guard,
            Err(e) => return ops.iter().map(|_| Err(clone_err(&e))).collect(),
        };
        let Some(writer) = guard.as_mut() else {
            return ops.iter().map(|_| Err(StoreError::Corrupt("no writer connection".into()))).collect();
        };
        match batch(writer, ops, render).await {
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
                    let one = batch(writer, std::slice::from_ref(op), render).await;
                    if one.is_err() {
                        rollback(writer).await;
                    }
                    results.push(one.map(|mut v| v.remove(0)));
                }
                results
            }
        }
    }

    /// A wallet as stored.
    pub async fn wallet(&self, id: WalletId) -> Result<Option<Wallet>, StoreError> {
        let conn = self.pool.get().await.map_err(|e| StoreError::Postgres(e.into()))?;
        let rows = conn
            .query_typed(
                "SELECT id, owner, currency, balance, status, version, created_at FROM wallets WHERE id = $1",
                &[(&id.0, Type::UUID)],
            )
            .await
            .map_err(pg_err)?;
        rows.first().map(|r| wallet_from(r, 0)).transpose()
    }

    /// A wallet's stored version.
    pub async fn version(&self, id: WalletId) -> Result<Option<i64>, StoreError> {
        let conn = self.pool.get().await.map_err(|e| StoreError::Postgres(e.into()))?;
        let rows = conn
            .query_typed("SELECT version FROM wallets WHERE id = $1", &[(&id.0, Type::UUID)])
            .await
            .map_err(pg_err)?;
        Ok(rows.first().map(|r| r.get(0)))
    }

    /// Money movements, newest first, before `before`.
    pub async fn movements(&self, id: WalletId, before: Option<i64>, limit: usize) -> Result<Page, StoreError> {
        let conn = self.pool.get().await.map_err(|e| StoreError::Postgres(e.into()))?;
        let fetch = (limit + 1) as i64;
        let rows = conn
            .query_typed(
                "SELECT wallet_id, seq, transaction_id, kind, amount, balance_after, counterparty, reference, created_at
                 FROM wallet_journal
                 WHERE wallet_id = $1 AND amount <> 0 AND ($2::bigint IS NULL OR seq < $2)
                 ORDER BY seq DESC LIMIT $3",
                &[(&id.0, Type::UUID), (&before, Type::INT8), (&fetch, Type::INT8)],
            )
            .await
            .map_err(pg_err)?;
        let mut items = rows.iter().map(movement_from).collect::<Result<Vec<_>, _>>()?;
        let next_before = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|m| m.seq)
        } else {
            None
        };
        Ok(Page { items, next_before })
    }

    /// The response kept for an idempotency key.
    pub async fn kept_response(&self, scope: &str, key: &str) -> Result<Option<KeptResponse>, StoreError> {
        let conn = self.pool.get().await.map_err(|e| StoreError::Postgres(e.into()))?;
        let rows = conn
            .query_typed(
                "SELECT request_hash, request_body, status, response FROM idempotency_keys
                 WHERE scope = $1 AND key = $2 AND status <> 0",
                &[(&scope, Type::TEXT), (&key, Type::TEXT)],
            )
            .await
            .map_err(pg_err)?;
        Ok(rows.first().map(|r| KeptResponse {
            request_hash: r.get(0),
            request_body: r.get(1),
            response: super::StoredResponse { status: r.get::<_, i16>(2) as u16, body: r.get(3) },
        }))
    }

    /// Forget expired idempotency keys.
    pub async fn purge_expired_keys(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let conn = self.pool.get().await.map_err(|e| StoreError::Postgres(e.into()))?;
        conn.execute("DELETE FROM idempotency_keys WHERE expires_at < $1", &[&now]).await.map_err(pg_err)
    }

    /// Conservation totals.
    pub async fn totals(&self) -> Result<Totals, StoreError> {
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

fn clone_err(e: &StoreError) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

async fn rollback(writer: &mut Writer) {
    if let Err(e) = writer.client.batch_execute("ROLLBACK").await {
        tracing::warn!(error = %e, "ROLLBACK failed");
    }
}

type RowsFuture<'a> = LocalBoxFuture<'a, Result<Vec<Row>, tokio_postgres::Error>>;

/// One transaction for `ops`, every statement pipelined.
async fn batch(writer: &mut Writer, ops: &[LedgerOp], render: Render) -> Result<Vec<Outcome>, StoreError> {
    let client = &writer.client;
    let st = &writer.statements;
    let mut locked: Vec<Uuid> = ops
        .iter()
        .filter(|op| !matches!(op.command, Command::Open(_)))
        .flat_map(|op| op.command.wallets())
        .map(|w| w.0)
        .collect();
    locked.sort_unstable();
    locked.dedup();

    let params: Vec<Params> = ops.iter().map(Params::of).collect();
    let mut phase: Vec<RowsFuture<'_>> = Vec::with_capacity(ops.len() + 2);
    phase.push(Box::pin(async move { client.simple_query("BEGIN").await.map(|_| Vec::new()) }));
    let locked_ref = &locked;
    phase.push(Box::pin(async move { client.query(&st.lock, &[locked_ref]).await }));
    for (op, p) in ops.iter().zip(&params) {
        let statement = match op.command {
            Command::Transfer { .. } => &st.transfer,
            Command::Deposit { .. } | Command::Withdraw { .. } => &st.external,
            Command::SetStatus { .. } => &st.status,
            Command::Open(_) => &st.open,
        };
        phase.push(Box::pin(async move { client.query(statement, &p.refs()).await }));
    }
    let mut results = join_all(phase).await.into_iter();
    for setup in results.by_ref().take(2) {
        setup.map_err(pg_err)?;
    }
    let mut outcomes = Vec::with_capacity(ops.len());
    for (op, rows) in ops.iter().zip(results) {
        outcomes.push(outcome(op, &rows.map_err(pg_err)?)?);
    }

    // Phase 2, one round trip: the idempotency keys with their responses in one statement, the
    // batch's events in one outbox row, COMMIT.
    let mut keys = KeptRows::default();
    for (op, o) in ops.iter().zip(&outcomes) {
        if let (Some(c), false) = (&op.idempotency, matches!(o, Outcome::DuplicateKey)) {
            let r = render(op, o);
            keys.scopes.push(c.scope.as_str());
            keys.keys.push(c.key.as_str());
            keys.hashes.push(c.request_hash.as_str());
            keys.bodies.push(&c.request_body);
            keys.statuses.push(r.status as i16);
            keys.responses.push(r.body);
            keys.created.push(op.at);
            keys.expires.push(c.expires_at);
        }
    }
    let events = super::events_of(ops, &outcomes);
    let count = events.len() as i32;
    let events = serde_json::to_vec(&events).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let at = ops.last().map(|op| op.at).unwrap_or_else(Utc::now);
    let mut phase: Vec<RowsFuture<'_>> = Vec::with_capacity(3);
    if !keys.scopes.is_empty() {
        let k = &keys;
        phase.push(Box::pin(async move {
            client
                .query(
                    &st.keep,
                    &[&k.scopes, &k.keys, &k.hashes, &k.bodies, &k.statuses, &k.responses, &k.created, &k.expires],
                )
                .await
        }));
    }
    if count > 0 {
        let (at, count, events) = (&at, &count, &events);
        phase.push(Box::pin(async move { client.query(&st.outbox, &[at, count, events]).await }));
    }
    phase.push(Box::pin(async move { client.simple_query("COMMIT").await.map(|_| Vec::new()) }));
    for result in join_all(phase).await {
        result.map_err(pg_err)?;
    }
    Ok(outcomes)
}

/// The idempotency keys a batch keeps, column by column.
#[derive(Default)]
struct KeptRows<'a> {
    scopes: Vec<&'a str>,
    keys: Vec<&'a str>,
    hashes: Vec<&'a str>,
    bodies: Vec<&'a Value>,
    statuses: Vec<i16>,
    responses: Vec<Value>,
    created: Vec<DateTime<Utc>>,
    expires: Vec<DateTime<Utc>>,
}

/// Which parameter list a command statement takes after the claim.
enum Shape {
    /// a, b, amount, transaction, request id.
    Transfer,
    /// a, reference, signed amount, transaction, request id.
    External,
    /// a, text, extra (status: target and journal kind; open: owner and currency).
    Lifecycle,
}

/// Owned parameters of one command statement.
struct Params {
    shape: Shape,
    scope: Option<String>,
    key: Option<String>,
    hash: Option<String>,
    body: Option<Value>,
    at: DateTime<Utc>,
    expires: Option<DateTime<Utc>>,
    a: Uuid,
    b: Option<Uuid>,
    text: Option<String>,
    amount: i64,
    tx: Uuid,
    request_id: Option<String>,
    extra: Option<String>,
}

impl Params {
    fn of(op: &LedgerOp) -> Self {
        let c = op.idempotency.as_ref();
        let mut p = Params {
            shape: Shape::External,
            scope: c.map(|c| c.scope.clone()),
            key: c.map(|c| c.key.clone()),
            hash: c.map(|c| c.request_hash.clone()),
            body: c.map(|c| c.request_body.clone()),
            at: op.at,
            expires: c.map(|c| c.expires_at),
            a: Uuid::nil(),
            b: None,
            text: None,
            amount: 0,
            tx: op.transaction_id,
            request_id: op.request_id.clone(),
            extra: None,
        };
        match &op.command {
            Command::Transfer { from, to, amount } => {
                p.shape = Shape::Transfer;
                (p.a, p.b, p.amount) = (from.0, Some(to.0), amount.get());
            }
            Command::Deposit { wallet, amount, reference } => {
                (p.a, p.text, p.amount) = (wallet.0, Some(reference.clone()), amount.get());
            }
            Command::Withdraw { wallet, amount, reference } => {
                (p.a, p.text, p.amount) = (wallet.0, Some(reference.clone()), -amount.get());
            }
            Command::SetStatus { wallet, status } => {
                p.shape = Shape::Lifecycle;
                p.a = wallet.0;
                p.text = Some(status.as_str().into());
                // The journal kind is decided in Rust from the target; the statement checks the
                // transition against the locked row.
                p.extra = Some(
                    match status {
                        WalletStatus::Closed => MovementKind::Closed,
                        WalletStatus::Frozen => MovementKind::Frozen,
                        WalletStatus::Active => MovementKind::Unfrozen,
                    }
                    .as_str()
                    .into(),
                );
            }
            Command::Open(w) => {
                p.shape = Shape::Lifecycle;
                p.a = w.id.0;
                p.text = Some(w.owner.clone());
                p.extra = Some(w.currency.code().into());
            }
        }
        p
    }

    fn refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        let mut v: Vec<&(dyn ToSql + Sync)> =
            vec![&self.scope, &self.key, &self.hash, &self.body, &self.at, &self.expires, &self.a];
        match self.shape {
            Shape::Transfer => {
                v.extend::<[&(dyn ToSql + Sync); 4]>([&self.b, &self.amount, &self.tx, &self.request_id])
            }
            Shape::External => {
                v.extend::<[&(dyn ToSql + Sync); 4]>([&self.text, &self.amount, &self.tx, &self.request_id])
            }
            Shape::Lifecycle => v.extend::<[&(dyn ToSql + Sync); 2]>([&self.text, &self.extra]),
        }
        v
    }
}

fn wallet_from(r: &Row, at: usize) -> Result<Wallet, StoreError> {
    let currency: String = r.get(at + 2);
    let status: String = r.get(at + 4);
    Ok(Wallet {
        id: WalletId(r.get(at)),
        owner: r.get(at + 1),
        currency: Currency::parse(currency.trim()).map_err(|_| StoreError::Corrupt(format!("currency {currency}")))?,
        balance: r.get(at + 3),
        status: WalletStatus::parse(&status).ok_or_else(|| StoreError::Corrupt(format!("status {status}")))?,
        version: r.get(at + 5),
        created_at: r.get(at + 6),
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
        created_at: r.get(8),
    })
}

/// Turn a command statement's rows into its outcome.
fn outcome(op: &LedgerOp, rows: &[Row]) -> Result<Outcome, StoreError> {
    let first = rows.first().ok_or_else(|| StoreError::Corrupt("no verdict row".into()))?;
    let verdict: String = first.get("verdict");
    let ids = op.command.wallets();
    let (a, b) = (ids[0], ids.get(1).copied().unwrap_or(ids[0]));
    let currency = |col: &str| -> Result<Currency, StoreError> {
        let c: Option<String> = first.get(col);
        Currency::parse(c.as_deref().unwrap_or_default().trim()).map_err(|_| StoreError::Corrupt("currency".into()))
    };
    let refusal = match verdict.as_str() {
        "ok" => None,
        "duplicate_key" => return Ok(Outcome::DuplicateKey),
        "a_not_found" => Some(FintechError::WalletNotFound(a)),
        "b_not_found" => Some(FintechError::WalletNotFound(b)),
        "a_frozen" => Some(FintechError::WalletFrozen(a)),
        "a_closed" => Some(FintechError::WalletClosed(a)),
        "b_frozen" => Some(FintechError::WalletFrozen(b)),
        "b_closed" => Some(FintechError::WalletClosed(b)),
        "insufficient_funds" => Some(FintechError::InsufficientFunds(a)),
        "amount_too_large" => Some(FintechError::AmountTooLarge),
        "currency_mismatch" => Some(FintechError::CurrencyMismatch(currency("currency_a")?, currency("currency_b")?)),
        "balance_not_zero" => Some(FintechError::BalanceNotZero(a)),
        "invalid_transition" => {
            let from: Option<String> = first.get("status_a");
            let from = from.as_deref().and_then(WalletStatus::parse).unwrap_or(WalletStatus::Closed);
            let to = match op.command {
                Command::SetStatus { status, .. } => status,
                _ => from,
            };
            Some(FintechError::InvalidTransition(a, from, to))
        }
        other => return Err(StoreError::Corrupt(format!("verdict {other}"))),
    };
    if let Some(refusal) = refusal {
        return Ok(Outcome::Refused(refusal));
    }
    let wallets = rows.iter().map(|r| wallet_from(r, 1)).collect::<Result<Vec<_>, _>>()?;
    let movements = movements_of(op, &wallets);
    Ok(Outcome::Applied { wallets, movements })
}

/// The journal entries a command appended, rebuilt from the wallets it returned.
pub(super) fn movements_of(op: &LedgerOp, wallets: &[Wallet]) -> Vec<Movement> {
    let entry = |w: &Wallet, kind, amount, counterparty, reference: Option<&String>| Movement {
        wallet_id: w.id,
        seq: w.version,
        transaction_id: (amount != 0).then_some(op.transaction_id),
        kind,
        amount,
        balance_after: w.balance,
        counterparty,
        reference: reference.cloned(),
        created_at: op.at,
    };
    match (&op.command, wallets) {
        (Command::Transfer { amount, .. }, [src, dst]) => vec![
            entry(src, MovementKind::TransferOut, -amount.get(), Some(dst.id), None),
            entry(dst, MovementKind::TransferIn, amount.get(), Some(src.id), None),
        ],
        (Command::Deposit { amount, reference, .. }, [w]) => {
            vec![entry(w, MovementKind::Deposit, amount.get(), None, Some(reference))]
        }
        (Command::Withdraw { amount, reference, .. }, [w]) => {
            vec![entry(w, MovementKind::Withdrawal, -amount.get(), None, Some(reference))]
        }
        (Command::SetStatus { status, .. }, [w]) => {
            let from = if *status == WalletStatus::Active { WalletStatus::Frozen } else { WalletStatus::Active };
            vec![entry(w, status_entry_kind(from, *status), 0, None, None)]
        }
        (Command::Open(_), [w]) => vec![entry(w, MovementKind::Opened, 0, None, None)],
        _ => Vec::new(),
    }
}
