//! The ledger storage contract, run against PostgreSQL (its own database, migrated) and against
//! the in-memory store: both must give the same answers to the same commands.

use beryl_core_api::{
    adapters::{
        ledger::{LedgerStore, MemLedger, PgLedger},
        migrate,
        outbox::{MemOutbox, OutboxSource},
        postgres,
        privacy::Vault,
    },
    config::{DatabaseSettings, PrivacySettings},
    domain::{
        fintech::{
            Amount, Currency, FintechError, HoldStatus, LedgerCommand as Command, LedgerOp, LedgerOutcome as Outcome,
            MovementKind, Receipt, Wallet, WalletId, WalletStatus, OWNER_FIELD,
        },
        idempotency::Claim,
        privacy::{Personal, Place},
    },
};
use std::sync::Arc;

use chrono::{Duration, Utc};
use serde_json::json;
use uuid::Uuid;

use crate::helpers::create_database;

/// A database of its own, migrated: its settings and a connection to it.
async fn migrated_database() -> (DatabaseSettings, tokio_postgres::Config, tokio_postgres::Client) {
    let settings =
        DatabaseSettings { url: Some(create_database().await.as_str().into()), ..DatabaseSettings::default() };
    let config = postgres::connect_config(&settings).unwrap().unwrap();
    let mut client = postgres::connect(&config).await.unwrap();
    migrate::run(&mut client).await.unwrap();
    (settings, config, client)
}

async fn postgres_store() -> (LedgerStore, OutboxSource) {
    let (settings, config, _) = migrated_database().await;
    let pool = postgres::build_pool(&settings).unwrap().unwrap();
    (LedgerStore::Postgres(PgLedger::new(pool, config.clone())), OutboxSource::Postgres(Arc::new(config)))
}

fn op(command: Command) -> LedgerOp {
    LedgerOp {
        command,
        transaction_id: Uuid::now_v7(),
        idempotency: None,
        once: false,
        request_id: Some("req-1".into()),
        at: Utc::now(),
    }
}

fn keyed(command: Command, key: &str) -> LedgerOp {
    LedgerOp {
        idempotency: Some(Claim {
            scope: "alice".into(),
            key: key.into(),
            fingerprint: format!("hash-{key}"),
            request: json!({"key": key}),
            expires_at: Utc::now() + Duration::hours(1),
        }),
        ..op(command)
    }
}

fn amount(n: i64) -> Amount {
    Amount::new(n).unwrap()
}

async fn one(store: &LedgerStore, op: LedgerOp) -> Outcome {
    store.commit(&[op]).await.remove(0).unwrap()
}

async fn open(store: &LedgerStore, owner: &str, currency: &str) -> WalletId {
    let wallet = Wallet::open(owner, Currency::parse(currency).unwrap()).unwrap();
    let id = wallet.id;
    assert!(matches!(one(store, op(Command::Open(Box::new(wallet)))).await, Outcome::Applied { .. }));
    id
}

async fn balance(store: &LedgerStore, id: WalletId) -> (i64, i64) {
    let w = store.wallet(id).await.unwrap().unwrap();
    (w.balance, w.version)
}

async fn refused(store: &LedgerStore, command: Command) -> FintechError {
    match one(store, op(command)).await {
        Outcome::Refused(e) => e,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

async fn contract(store: LedgerStore, outbox: OutboxSource, vault: Vault) {
    let a = open(&store, "alice", "EUR").await;
    let b = open(&store, "bob", "EUR").await;
    let y = open(&store, "yuki", "JPY").await;
    assert_eq!(balance(&store, a).await, (0, 1));

    // Movements, applied in order within one batch.
    let batch = [
        op(Command::Deposit { wallet: a, amount: amount(10_000), reference: "psp-1".into(), currency: None }),
        op(Command::Transfer { from: a, to: b, amount: amount(2_500), currency: None }),
        op(Command::Withdraw { wallet: b, amount: amount(500), reference: "bank-7".into() }),
    ];
    let outcomes = store.commit(&batch).await;
    assert!(outcomes.iter().all(|o| matches!(o, Ok(Outcome::Applied { .. }))), "{outcomes:?}");
    match &outcomes[1] {
        Ok(Outcome::Applied { wallets, movements, .. }) => {
            assert_eq!((wallets[0].id, wallets[0].balance), (a, 7_500));
            assert_eq!((wallets[1].id, wallets[1].balance), (b, 2_500));
            assert_eq!(movements[0].kind, MovementKind::TransferOut);
            assert_eq!(movements[0].amount, -2_500);
            assert_eq!(movements[1].counterparty, Some(a));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(balance(&store, a).await, (7_500, 3));
    assert_eq!(balance(&store, b).await, (2_000, 3));
    assert_eq!(store.version(a).await.unwrap(), Some(3));

    // Every refusal leaves everything as it was.
    let missing = WalletId::generate();
    assert_eq!(
        refused(&store, Command::Transfer { from: a, to: b, amount: amount(7_501), currency: None }).await,
        FintechError::InsufficientFunds(a)
    );
    assert_eq!(
        refused(&store, Command::Transfer { from: missing, to: b, amount: amount(1), currency: None }).await,
        FintechError::WalletNotFound(missing)
    );
    assert_eq!(
        refused(&store, Command::Transfer { from: a, to: missing, amount: amount(1), currency: None }).await,
        FintechError::WalletNotFound(missing)
    );
    assert_eq!(
        refused(&store, Command::Transfer { from: a, to: y, amount: amount(1), currency: None }).await,
        FintechError::CurrencyMismatch(Currency::parse("EUR").unwrap(), Currency::parse("JPY").unwrap())
    );
    assert_eq!(
        refused(&store, Command::Withdraw { wallet: b, amount: amount(2_001), reference: "x".into() }).await,
        FintechError::InsufficientFunds(b)
    );
    // A currency the caller names (a transfer's expected one, a payment's) must be the wallet's.
    let (eur, jpy) = (Currency::parse("EUR").unwrap(), Currency::parse("JPY").unwrap());
    assert_eq!(
        refused(&store, Command::Transfer { from: a, to: b, amount: amount(1), currency: Some(jpy) }).await,
        FintechError::CurrencyMismatch(jpy, eur)
    );
    let paid_in_yen = Command::Deposit { wallet: a, amount: amount(1), reference: "psp".into(), currency: Some(jpy) };
    assert_eq!(refused(&store, paid_in_yen).await, FintechError::CurrencyMismatch(jpy, eur));
    assert_eq!(
        refused(&store, Command::Transfer { from: a, to: a, amount: amount(1), currency: None }).await,
        FintechError::SameWallet
    );
    assert_eq!(
        refused(&store, Command::SetStatus { wallet: a, status: WalletStatus::Closed }).await,
        FintechError::BalanceNotZero(a)
    );
    assert_eq!(
        refused(&store, Command::SetStatus { wallet: a, status: WalletStatus::Active }).await,
        FintechError::InvalidTransition(a, WalletStatus::Active, WalletStatus::Active)
    );
    assert_eq!(balance(&store, a).await, (7_500, 3));
    assert_eq!(balance(&store, b).await, (2_000, 3));

    // Frozen wallets refuse movements both ways until unfrozen.
    assert!(matches!(
        one(&store, op(Command::SetStatus { wallet: b, status: WalletStatus::Frozen })).await,
        Outcome::Applied { .. }
    ));
    assert_eq!(
        refused(&store, Command::Transfer { from: a, to: b, amount: amount(1), currency: None }).await,
        FintechError::WalletFrozen(b)
    );
    assert_eq!(
        refused(&store, Command::Transfer { from: b, to: a, amount: amount(1), currency: None }).await,
        FintechError::WalletFrozen(b)
    );
    assert_eq!(
        refused(&store, Command::Deposit { wallet: b, amount: amount(1), reference: "x".into(), currency: None }).await,
        FintechError::WalletFrozen(b)
    );
    assert!(matches!(
        one(&store, op(Command::SetStatus { wallet: b, status: WalletStatus::Active })).await,
        Outcome::Applied { .. }
    ));

    // A wallet closes once empty, and closed is final.
    assert!(matches!(
        one(&store, op(Command::Withdraw { wallet: b, amount: amount(2_000), reference: "out".into() })).await,
        Outcome::Applied { .. }
    ));
    assert!(matches!(
        one(&store, op(Command::SetStatus { wallet: b, status: WalletStatus::Closed })).await,
        Outcome::Applied { .. }
    ));
    assert_eq!(
        refused(&store, Command::Transfer { from: a, to: b, amount: amount(1), currency: None }).await,
        FintechError::WalletClosed(b)
    );

    // Idempotency: the first command with a key is kept with its response; another command with
    // the same key changes nothing.
    let first =
        keyed(Command::Deposit { wallet: a, amount: amount(100), reference: "psp-2".into(), currency: None }, "k-1");
    assert!(matches!(one(&store, first.clone()).await, Outcome::Applied { .. }));
    let again =
        keyed(Command::Deposit { wallet: a, amount: amount(100), reference: "psp-2".into(), currency: None }, "k-1");
    assert_eq!(one(&store, again).await, Outcome::DuplicateKey);
    assert_eq!(balance(&store, a).await.0, 7_600);
    let kept = store.kept("alice", "k-1").await.unwrap().unwrap();
    let receipt: Receipt = serde_json::from_value(kept.result.clone().unwrap()).unwrap();
    match receipt {
        Receipt::Moved(t) => assert_eq!((t.id, t.amount, t.balance_after), (first.transaction_id, 100, 7_600)),
        other => panic!("a deposit's receipt is a movement: {other:?}"),
    }
    assert_eq!(kept.fingerprint, "hash-k-1");
    assert!(store.kept("bob", "k-1").await.unwrap().is_none(), "keys are scoped to their owner");
    // A refusal is kept too, so that a retry answers the same.
    let broke = keyed(Command::Withdraw { wallet: a, amount: amount(1_000_000), reference: "x".into() }, "k-2");
    assert!(matches!(one(&store, broke).await, Outcome::Refused(FintechError::InsufficientFunds(_))));
    let kept = store.kept("alice", "k-2").await.unwrap().unwrap();
    let receipt: Receipt = serde_json::from_value(kept.result.unwrap()).unwrap();
    assert!(matches!(receipt, Receipt::Refused(FintechError::InsufficientFunds(_))), "{receipt:?}");

    // One batch carrying the same key twice (a retry racing its original): applied once.
    let twice =
        keyed(Command::Deposit { wallet: a, amount: amount(5), reference: "psp-3".into(), currency: None }, "k-3");
    let both = store.commit(&[twice.clone(), twice]).await;
    let outcomes: Vec<bool> = both.iter().map(|r| matches!(r, Ok(Outcome::Applied { .. }))).collect();
    assert_eq!(outcomes, vec![true, false]);
    assert!(matches!(both[1], Ok(Outcome::DuplicateKey)));
    assert!(matches!(
        one(&store, keyed(Command::Withdraw { wallet: a, amount: amount(5), reference: "back".into() }, "k-4")).await,
        Outcome::Applied { .. }
    ));

    // The outbox holds one event per journal entry, each wallet's in order.
    let mut outbox = outbox.open();
    let batches = outbox.fetch(1_000).await.unwrap();
    let events: Vec<_> = batches.iter().flat_map(|b| b.events.iter()).collect();
    let seqs: Vec<i64> = events.iter().filter(|e| e.aggregate_id == a.to_string()).map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=balance(&store, a).await.1).collect::<Vec<_>>());
    assert!(events.iter().any(|e| e.event_type == "fintech.wallet.transfer_in" && e.aggregate_id == b.to_string()));
    assert!(batches.windows(2).all(|w| w[0].id < w[1].id));
    // A lifecycle event carries its wallet's owner sealed for the wallet; a movement of money
    // names nobody.
    for e in events.iter().filter(|e| e.aggregate_id == a.to_string()) {
        let owner = e.data.get("owner").and_then(|o| o.as_str());
        if e.event_type == "fintech.wallet.opened" {
            let row = a.to_string();
            let opened = vault.open_text(owner.unwrap(), Place::new(OWNER_FIELD, &row)).await.unwrap();
            assert_eq!(opened, Personal::Value("alice".to_owned()));
            let elsewhere = vault.open_text(owner.unwrap(), Place::new(OWNER_FIELD, &b.to_string())).await;
            assert!(elsewhere.is_err(), "bound to its wallet");
        } else {
            assert_eq!(owner, None, "{}", e.event_type);
        }
    }
    outbox.delete(&batches.iter().map(|b| b.id).collect::<Vec<_>>()).await.unwrap();
    assert_eq!(outbox.lag().await.unwrap().events, 0);

    // History: money movements only, newest first, paged.
    let page = store.movements(a, None, 2).await.unwrap();
    let seqs: Vec<_> = page.items.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, vec![6, 5]);
    let rest = store.movements(a, page.next_before, 10).await.unwrap();
    assert_eq!(rest.items.len(), 3);
    assert_eq!(rest.items.last().map(|m| m.kind), Some(MovementKind::Deposit));
    assert_eq!(rest.next_before, None);

    // Conservation: balances equal deposits minus withdrawals.
    let totals = store.totals().await.unwrap();
    assert_eq!(totals.balances, totals.net_external);
    assert_eq!(totals.balances, 7_600);

    // Expired keys are forgotten in batches of the size asked for.
    let later = Utc::now() + Duration::hours(2);
    assert_eq!(store.purge_expired_keys(later, 3).await.unwrap(), 3);
    assert_eq!(store.purge_expired_keys(later, 3).await.unwrap(), 1);
    assert_eq!(store.purge_expired_keys(later, 3).await.unwrap(), 0);
    assert!(store.kept("alice", "k-1").await.unwrap().is_none());

    // An expired key counts as new, purged or not: the command is applied again and the key
    // keeps its new receipt.
    let expired = |key: &str, reference: &str| {
        let mut op =
            keyed(Command::Deposit { wallet: a, amount: amount(5), reference: reference.into(), currency: None }, key);
        if let Some(claim) = op.idempotency.as_mut() {
            claim.expires_at = Utc::now() - Duration::seconds(1);
        }
        op
    };
    assert!(matches!(one(&store, expired("k-old", "psp-old-1")).await, Outcome::Applied { .. }));
    assert!(matches!(one(&store, expired("k-old", "psp-old-2")).await, Outcome::Applied { .. }));
    let fresh = keyed(
        Command::Deposit { wallet: a, amount: amount(5), reference: "psp-old-3".into(), currency: None },
        "k-old",
    );
    assert!(matches!(one(&store, fresh.clone()).await, Outcome::Applied { .. }));
    assert_eq!(one(&store, fresh).await, Outcome::DuplicateKey, "a live key is still held");
    assert_eq!(store.purge_expired_keys(Utc::now(), 10).await.unwrap(), 0, "the key was kept again, live");
    assert_eq!(balance(&store, a).await.0, 7_615);

    // A command named by its transaction id (an inbound event's) is applied once: the same id
    // again, in the same batch or a later one, is a duplicate and changes nothing.
    let once = |id: Uuid, command| LedgerOp { transaction_id: id, once: true, ..op(command) };
    let event = Uuid::new_v4();
    let pay =
        once(event, Command::Deposit { wallet: a, amount: amount(40), reference: "psp-9".into(), currency: None });
    let both = store.commit(&[pay.clone(), pay.clone()]).await;
    assert!(matches!(both[0], Ok(Outcome::Applied { .. })), "{both:?}");
    assert!(matches!(both[1], Ok(Outcome::DuplicateKey)), "{both:?}");
    assert_eq!(one(&store, pay.clone()).await, Outcome::DuplicateKey);
    // The same id with other content is a conflicting duplicate, in a later batch or the same one.
    for other in [
        Command::Deposit { wallet: a, amount: amount(41), reference: "psp-9".into(), currency: None },
        Command::Deposit { wallet: a, amount: amount(40), reference: "psp-99".into(), currency: None },
        Command::Deposit { wallet: b, amount: amount(40), reference: "psp-9".into(), currency: None },
    ] {
        assert_eq!(one(&store, once(event, other)).await, Outcome::ConflictingDuplicate);
    }
    let fresh = Uuid::new_v4();
    let first =
        once(fresh, Command::Deposit { wallet: a, amount: amount(1), reference: "psp-11".into(), currency: None });
    let second =
        once(fresh, Command::Deposit { wallet: a, amount: amount(2), reference: "psp-11".into(), currency: None });
    let both = store.commit(&[first, second]).await;
    assert!(matches!(both[0], Ok(Outcome::Applied { .. })), "{both:?}");
    assert!(matches!(both[1], Ok(Outcome::ConflictingDuplicate)), "{both:?}");
    assert_eq!(balance(&store, a).await.0, 7_656);
    // A refusal leaves no record: the same id is checked again when it comes back.
    let event = Uuid::new_v4();
    let to_closed =
        once(event, Command::Deposit { wallet: b, amount: amount(60), reference: "psp-10".into(), currency: None });
    assert_eq!(one(&store, to_closed).await, Outcome::Refused(FintechError::WalletClosed(b)));
    let to_open =
        once(event, Command::Deposit { wallet: a, amount: amount(60), reference: "psp-10".into(), currency: None });
    assert!(matches!(one(&store, to_open).await, Outcome::Applied { .. }));
    let totals = store.totals().await.unwrap();
    assert_eq!((totals.balances, totals.net_external), (7_716, 7_716));
}

#[actix_web::test]
async fn the_contract_holds_in_memory() {
    let outbox = MemOutbox::new();
    let vault = Vault::for_pool(None, &PrivacySettings::default());
    let store = LedgerStore::Memory(MemLedger::new(outbox.clone()).with_vault(vault.clone()));
    contract(store, OutboxSource::Memory(outbox), vault).await;
}

#[actix_web::test]
async fn the_contract_holds_on_postgres() {
    let (store, outbox) = postgres_store().await;
    let vault = match &store {
        LedgerStore::Postgres(pg) => pg.vault().clone(),
        LedgerStore::Memory(_) => unreachable!(),
    };
    contract(store, outbox, vault).await;
}

#[actix_web::test]
async fn concurrent_batches_on_postgres_conserve_money_and_never_go_negative() {
    let (store, _) = postgres_store().await;
    let mut wallets = Vec::new();
    for i in 0..10 {
        let id = open(&store, &format!("user-{i}"), "EUR").await;
        one(
            &store,
            op(Command::Deposit { wallet: id, amount: amount(1_000), reference: format!("seed-{i}"), currency: None }),
        )
        .await;
        wallets.push(id);
    }
    // Two writers (as two replicas would have), each committing batches of crossing transfers.
    let writer = |seed: u64| {
        let store = match &store {
            LedgerStore::Postgres(pg) => LedgerStore::Postgres(PgLedger::new(pg_pool(pg), pg_config(pg))),
            other => other.clone(),
        };
        let wallets = wallets.clone();
        async move {
            let mut applied = 0;
            for round in 0..20u64 {
                let batch: Vec<_> = (0..10u64)
                    .map(|i| {
                        let k = (seed * 31 + round * 7 + i * 3) as usize;
                        let (from, to) = (wallets[k % 10], wallets[(k / 10 + 1 + k) % 10]);
                        let to = if to == from { wallets[(k + 1) % 10] } else { to };
                        op(Command::Transfer { from, to, amount: amount(((k % 7) as i64 + 1) * 37), currency: None })
                    })
                    .collect();
                for o in store.commit(&batch).await {
                    if matches!(o.unwrap(), Outcome::Applied { .. }) {
                        applied += 1;
                    }
                }
            }
            applied
        }
    };
    let (x, y) = futures::join!(writer(1), writer(2));
    assert!(x + y > 0);
    let totals = store.totals().await.unwrap();
    assert_eq!(totals.balances, 10_000);
    assert_eq!(totals.net_external, 10_000);
    for id in wallets {
        let w = store.wallet(id).await.unwrap().unwrap();
        assert!(w.balance >= 0);
        let history = store.movements(id, None, 1000).await.unwrap();
        let replayed: i64 = history.items.iter().map(|m| m.amount).sum();
        assert_eq!(replayed, w.balance, "the journal replays to the balance");
    }
}

fn pg_pool(pg: &PgLedger) -> beryl_core_api::adapters::postgres::PgPool {
    pg.pool().clone()
}

fn pg_config(pg: &PgLedger) -> tokio_postgres::Config {
    pg.config().clone()
}

/// The writer's statements keep reaching their rows through primary keys on a database whose
/// statistics say every table is empty, the worst case for a generic plan: no whole-table scan
/// (whose cost would grow with the table) and no hash join over one.
#[actix_web::test]
async fn writer_statements_use_index_lookups_on_an_empty_database() {
    use beryl_core_api::adapters::ledger::postgres::sql;

    let (_, _, client) = migrated_database().await;
    client.batch_execute("ANALYZE").await.unwrap();
    client.batch_execute(sql::SESSION).await.unwrap();
    for (name, text) in sql::ALL {
        let params = (1..=12).filter(|n| text.contains(&format!("${n}"))).count();
        client.batch_execute(&format!("PREPARE {name} AS {text}")).await.unwrap();
        let nulls = vec!["NULL"; params].join(", ");
        let rows = client.simple_query(&format!("EXPLAIN EXECUTE {name}({nulls})")).await.unwrap();
        let plan: Vec<String> = rows
            .iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
                _ => None,
            })
            .collect();
        let plan = plan.join("\n");
        assert!(!plan.is_empty(), "{name}: no plan");
        for node in ["Seq Scan", "Hash Join", "Merge Join"] {
            assert!(!plan.contains(node), "{name} plans a {node}:\n{plan}");
        }
    }
}

#[actix_web::test]
async fn the_schema_refuses_journal_entries_of_unknown_wallets_and_keeps_every_wallet() {
    let (_, _, client) = migrated_database().await;
    let wallet = uuid::Uuid::now_v7();
    client
        .execute(
            "INSERT INTO wallets (id, owner, currency, balance, status, version, created_at, updated_at)
             VALUES ($1, 'alice', 'EUR', 0, 'active', 1, now(), now())",
            &[&wallet],
        )
        .await
        .unwrap();
    let entries = "INSERT INTO wallet_journal (wallet_id, seq, kind, amount, balance_after, created_at)
                   SELECT id, seq, 'opened', 0, 0, now() FROM unnest($1::uuid[], $2::int8[]) AS v(id, seq)";
    let state = |r: Result<u64, tokio_postgres::Error>| r.map_err(|e| e.code().map(|c| c.code().to_owned()));
    assert_eq!(state(client.execute(entries, &[&vec![wallet], &vec![1_i64]]).await), Ok(1));
    // One unknown wallet among known ones refuses the whole statement.
    let unknown = uuid::Uuid::now_v7();
    let refused = client.execute(entries, &[&vec![wallet, unknown], &vec![2_i64, 1]]).await;
    assert_eq!(state(refused), Err(Some("23503".into())));
    let count = client.query_one("SELECT count(*) FROM wallet_journal", &[]).await.unwrap().get::<_, i64>(0);
    assert_eq!(count, 1);
    // A wallet is closed, never deleted, and keeps its id.
    let deleted = client.execute("DELETE FROM wallets WHERE id = $1", &[&wallet]).await;
    assert_eq!(state(deleted), Err(Some("23001".into())));
    // No wallet holds more than its balance once a transaction commits; in between it may.
    client.execute("UPDATE wallets SET balance = 100, held = 100 WHERE id = $1", &[&wallet]).await.unwrap();
    let commit = |sql: &'static str| {
        let client = &client;
        async move {
            client.batch_execute("BEGIN").await.unwrap();
            client.execute(sql, &[&wallet]).await.unwrap();
            client.execute("UPDATE wallets SET held = held - 40 WHERE id = $1", &[&wallet]).await.unwrap();
            state(client.execute("COMMIT", &[]).await)
        }
    };
    assert_eq!(commit("UPDATE wallets SET balance = balance - 40 WHERE id = $1").await, Ok(0), "a post");
    assert_eq!(commit("UPDATE wallets SET balance = balance - 50 WHERE id = $1").await, Err(Some("23514".into())));
    let row = client.query_one("SELECT balance, held FROM wallets WHERE id = $1", &[&wallet]).await.unwrap();
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1)), (60, 60), "the failed transaction changed nothing");
    let moved = client.execute("UPDATE wallets SET id = $2 WHERE id = $1", &[&wallet, &unknown]).await;
    assert_eq!(state(moved), Err(Some("23001".into())));
    let closed = client.execute("UPDATE wallets SET status = 'closed' WHERE id = $1", &[&wallet]).await;
    assert_eq!(state(closed), Ok(1));
}

fn place(hold: Uuid, wallet: WalletId, n: i64, expires_in: Duration) -> Command {
    Command::PlaceHold { hold, wallet, amount: amount(n), kind: "payout".into(), expires_at: Utc::now() + expires_in }
}

fn post(hold: Uuid, wallet: WalletId, n: i64, to: Option<WalletId>) -> Command {
    Command::PostHold { hold, wallet, amount: amount(n), to, reference: format!("po-{hold}") }
}

/// (balance, held, available) as stored.
async fn funds(store: &LedgerStore, id: WalletId) -> (i64, i64, i64) {
    let w = store.wallet(id).await.unwrap().unwrap();
    (w.balance, w.held, w.available())
}

/// Place, post, void and expiry of holds, the same on either store.
async fn hold_contract(store: LedgerStore) {
    let (a, b) = (open(&store, "alice", "EUR").await, open(&store, "bob", "EUR").await);
    one(&store, op(Command::Deposit { wallet: a, amount: amount(1_000), reference: "psp-h".into(), currency: None }))
        .await;
    let before = store.totals().await.unwrap();

    // Placed: no money moves, less is available, and the same hold again changes nothing.
    let h1 = Uuid::now_v7();
    assert!(matches!(one(&store, op(place(h1, a, 600, Duration::hours(1)))).await, Outcome::Applied { .. }));
    assert_eq!(funds(&store, a).await, (1_000, 600, 400));
    assert_eq!(store.totals().await.unwrap(), before, "a hold moves no money");
    match one(&store, op(place(h1, a, 600, Duration::hours(1)))).await {
        Outcome::Applied { movements, holds, .. } => {
            assert!(movements.is_empty());
            assert_eq!((holds[0].id, holds[0].status), (h1, HoldStatus::Pending));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(funds(&store, a).await, (1_000, 600, 400));
    assert_eq!(refused(&store, place(h1, a, 601, Duration::hours(1))).await, FintechError::HoldConflict(h1));
    // Every rule that checks funds checks what is available.
    assert_eq!(
        refused(&store, Command::Withdraw { wallet: a, amount: amount(401), reference: "x".into() }).await,
        FintechError::InsufficientFunds(a)
    );
    assert_eq!(
        refused(&store, Command::Transfer { from: a, to: b, amount: amount(401), currency: None }).await,
        FintechError::InsufficientFunds(a)
    );
    assert_eq!(
        refused(&store, place(Uuid::now_v7(), a, 401, Duration::hours(1))).await,
        FintechError::InsufficientFunds(a)
    );
    assert_eq!(
        refused(&store, Command::SetStatus { wallet: a, status: WalletStatus::Closed }).await,
        FintechError::HoldsPending(a)
    );

    // Posted for less than held: exactly that leaves, the rest is released.
    assert_eq!(refused(&store, post(h1, a, 601, None)).await, FintechError::HoldAmountExceeded);
    let posting = op(post(h1, a, 450, None));
    let posted = one(&store, posting.clone()).await;
    match Receipt::of(&posting, &posted) {
        Some(Receipt::Moved(t)) => assert_eq!((t.amount, t.balance_after, t.from, t.to), (450, 550, Some(a), None)),
        other => panic!("{other:?}"),
    }
    assert_eq!(funds(&store, a).await, (550, 0, 550));
    let after = store.totals().await.unwrap();
    assert_eq!((after.balances, after.net_external), (before.balances - 450, before.net_external - 450));
    assert_eq!(refused(&store, post(h1, a, 1, None)).await, FintechError::HoldNotPending(h1, HoldStatus::Posted));
    let stored = store.hold(h1).await.unwrap().unwrap();
    assert_eq!((stored.status, stored.posted, stored.amount), (HoldStatus::Posted, 450, 600));

    // Posted to another wallet: a transfer.
    let h2 = Uuid::now_v7();
    one(&store, op(place(h2, a, 100, Duration::hours(1)))).await;
    assert!(matches!(one(&store, op(post(h2, a, 100, Some(b)))).await, Outcome::Applied { .. }));
    assert_eq!((funds(&store, a).await, funds(&store, b).await), ((450, 0, 450), (100, 0, 100)));

    // Voided: released, nothing moves; then refused with its state.
    let h3 = Uuid::now_v7();
    one(&store, op(place(h3, a, 200, Duration::hours(1)))).await;
    assert_eq!(refused(&store, Command::VoidHold { hold: h3, wallet: b }).await, FintechError::HoldNotFound(h3));
    assert!(matches!(one(&store, op(Command::VoidHold { hold: h3, wallet: a })).await, Outcome::Applied { .. }));
    assert_eq!(funds(&store, a).await, (450, 0, 450));
    assert_eq!(refused(&store, post(h3, a, 200, None)).await, FintechError::HoldNotPending(h3, HoldStatus::Voided));
    assert_eq!(
        refused(&store, Command::VoidHold { hold: h3, wallet: a }).await,
        FintechError::HoldNotPending(h3, HoldStatus::Voided)
    );

    // Expired: listed for the sweeper, not postable, released as expired.
    let h4 = Uuid::now_v7();
    one(&store, op(place(h4, a, 300, Duration::milliseconds(-1)))).await;
    assert_eq!(funds(&store, a).await, (450, 300, 150), "held until released");
    let expired: Vec<Uuid> = store.expired_holds(Utc::now(), 10).await.unwrap().iter().map(|h| h.id).collect();
    assert_eq!(expired, vec![h4]);
    assert_eq!(refused(&store, post(h4, a, 300, None)).await, FintechError::HoldNotPending(h4, HoldStatus::Expired));
    one(&store, op(Command::VoidHold { hold: h4, wallet: a })).await;
    assert_eq!(store.hold(h4).await.unwrap().unwrap().status, HoldStatus::Expired);
    assert!(store.expired_holds(Utc::now(), 10).await.unwrap().is_empty());
    assert_eq!(funds(&store, a).await, (450, 0, 450));

    // The journal: hold entries move nothing and are not money movements; it replays to the balance.
    let page = store.movements(a, None, 100).await.unwrap();
    assert_eq!(page.items.iter().map(|m| m.amount).sum::<i64>(), 450);
    assert!(page.items.iter().all(|m| m.amount != 0));
    let totals = store.totals().await.unwrap();
    assert_eq!(totals.balances, totals.net_external, "conserved with holds in the mix");
}

#[actix_web::test]
async fn holds_keep_the_contract_in_memory() {
    hold_contract(LedgerStore::Memory(MemLedger::new(MemOutbox::new()))).await;
}

#[actix_web::test]
async fn holds_keep_the_contract_on_postgres() {
    let (store, _) = postgres_store().await;
    hold_contract(store).await;
}

/// Two holds racing for the last available money, from two writers (as two replicas would
/// have): exactly one is placed.
#[actix_web::test]
async fn two_holds_racing_for_the_last_funds_on_postgres_one_wins() {
    let (store, _) = postgres_store().await;
    let wallet = open(&store, "alice", "EUR").await;
    one(&store, op(Command::Deposit { wallet, amount: amount(100), reference: "seed".into(), currency: None })).await;
    one(&store, op(place(Uuid::now_v7(), wallet, 30, Duration::hours(1)))).await;
    let other = match &store {
        LedgerStore::Postgres(pg) => LedgerStore::Postgres(PgLedger::new(pg_pool(pg), pg_config(pg))),
        other => other.clone(),
    };
    for round in 0..5 {
        let (x, y) = futures::join!(
            one(&store, op(place(Uuid::now_v7(), wallet, 70, Duration::hours(1)))),
            one(&other, op(place(Uuid::now_v7(), wallet, 70, Duration::hours(1))))
        );
        let won: Vec<bool> = [&x, &y].iter().map(|o| matches!(o, Outcome::Applied { .. })).collect();
        assert_eq!(won.iter().filter(|w| **w).count(), 1, "round {round}: {x:?} {y:?}");
        let lost = if won[0] { &y } else { &x };
        assert_eq!(lost, &Outcome::Refused(FintechError::InsufficientFunds(wallet)));
        assert_eq!(funds(&store, wallet).await, (100, 100, 0));
        // Release the winner for the next round.
        let hold = match if won[0] { &x } else { &y } {
            Outcome::Applied { holds, .. } => holds[0].id,
            other => panic!("{other:?}"),
        };
        one(&store, op(Command::VoidHold { hold, wallet })).await;
    }
}

/// The conservation check with holds in the mix: two writers (as two replicas would have) commit
/// batches of transfers, holds placed, posted (out of the ledger or to another wallet) and
/// voided, crossing each other. Money is conserved, no balance is negative, no wallet holds more
/// than its balance, each wallet's held total is the sum of its pending holds, and the journal
/// replays to each balance.
#[actix_web::test]
async fn concurrent_batches_with_holds_on_postgres_conserve_money() {
    let (store, _) = postgres_store().await;
    let mut wallets = Vec::new();
    for i in 0..8 {
        let id = open(&store, &format!("user-{i}"), "EUR").await;
        one(
            &store,
            op(Command::Deposit { wallet: id, amount: amount(1_000), reference: format!("s-{i}"), currency: None }),
        )
        .await;
        wallets.push(id);
    }
    let writer = |seed: u64| {
        let store = match &store {
            LedgerStore::Postgres(pg) => LedgerStore::Postgres(PgLedger::new(pg_pool(pg), pg_config(pg))),
            other => other.clone(),
        };
        let wallets = wallets.clone();
        async move {
            let mut placed: Vec<(Uuid, WalletId)> = Vec::new();
            for round in 0..15u64 {
                let mut batch = Vec::new();
                for i in 0..8u64 {
                    let k = (seed * 131 + round * 17 + i * 7) as usize;
                    let (from, to) = (wallets[k % 8], wallets[(k / 8 + 1 + k) % 8]);
                    let to = if to == from { wallets[(k + 1) % 8] } else { to };
                    let n = ((k % 5) as i64 + 1) * 41;
                    batch.push(match (seed + round + i) % 4 {
                        0 => op(Command::Transfer { from, to, amount: amount(n), currency: None }),
                        1 => {
                            let hold = Uuid::now_v7();
                            placed.push((hold, from));
                            op(place(hold, from, n, Duration::hours(1)))
                        }
                        2 => match placed.pop() {
                            Some((hold, wallet)) => {
                                op(post(hold, wallet, 1, (k % 2 == 0).then_some(to).filter(|t| *t != wallet)))
                            }
                            None => op(Command::Transfer { from, to, amount: amount(n), currency: None }),
                        },
                        _ => match placed.pop() {
                            Some((hold, wallet)) => op(Command::VoidHold { hold, wallet }),
                            None => op(place(Uuid::now_v7(), from, n, Duration::hours(1))),
                        },
                    });
                }
                for o in store.commit(&batch).await {
                    o.unwrap();
                }
            }
        }
    };
    futures::join!(writer(1), writer(2));
    let totals = store.totals().await.unwrap();
    assert_eq!((totals.balances, totals.net_external), (totals.net_external, totals.net_external));
    let client = postgres_client(&store).await;
    for status in ["posted", "voided", "pending"] {
        let n: i64 = client.query_one("SELECT count(*) FROM holds WHERE status = $1", &[&status]).await.unwrap().get(0);
        assert!(n > 0, "no hold ended {status}: the mix did not happen");
    }
    for id in wallets {
        let w = store.wallet(id).await.unwrap().unwrap();
        assert!(w.balance >= 0 && w.held >= 0 && w.held <= w.balance, "{w:?}");
        let pending: i64 = client
            .query_one(
                "SELECT COALESCE(SUM(amount), 0)::int8 FROM holds WHERE wallet_id = $1 AND status = 'pending'",
                &[&id.0],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(w.held, pending, "held is the sum of the pending holds");
        let history = store.movements(id, None, 1000).await.unwrap();
        assert_eq!(
            history.items.iter().map(|m| m.amount).sum::<i64>(),
            w.balance,
            "the journal replays to the balance"
        );
    }
}

async fn postgres_client(store: &LedgerStore) -> tokio_postgres::Client {
    match store {
        LedgerStore::Postgres(pg) => postgres::connect(&pg_config(pg)).await.unwrap(),
        LedgerStore::Memory(_) => unreachable!("a PostgreSQL store"),
    }
}
