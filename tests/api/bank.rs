//! Jepsen-style bank tests: two service processes on one database, 64 concurrent clients moving
//! money at random among 50 wallets, retries with the same idempotency keys mixed in, and an
//! instance killed with SIGKILL in the middle. Afterwards money is conserved, no balance is
//! negative, no key was applied twice and every acknowledged transfer is in the history.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::Duration,
};

use nix::sys::signal::Signal;
use parking_lot::Mutex;
use rand::{rngs::StdRng, Rng, SeedableRng};
use serde_json::{json, Value};
use tokio_postgres::NoTls;

use crate::helpers::{create_database, redis_url, Process, TEST_JWT_KEY};

const WALLETS: usize = 50;
const CLIENTS: usize = 64;
const SEED_BALANCE: i64 = 10_000;

/// An instance on `database`; `wallet_threads` places its wallet actors (0: on the domain
/// actor's thread), so that the two instances of a test run both placements.
fn serve(database: &str, wallet_threads: &str) -> Process {
    Process::serve(&[
        ("BERYL__FINTECH__WALLET_THREADS", wallet_threads),
        ("DATABASE_URL", database),
        ("REDIS_URL", &redis_url()),
        ("JWT_SECRET_KEY", TEST_JWT_KEY),
        ("LOG_LEVEL", "info,beryl_core_api::http::request_context=warn"),
        ("BERYL__RATE_LIMIT__ENABLED", "false"),
        ("BERYL__REDIS__KEY_PREFIX", &format!("beryl:test:{}:", uuid::Uuid::new_v4().simple())),
    ])
}

fn token() -> String {
    let settings =
        beryl_core_api::config::AuthSettings { jwt_secret_key: Some(TEST_JWT_KEY.into()), ..Default::default() };
    let keys = beryl_core_api::auth::KeySet::from_settings(&settings).unwrap();
    keys.mint(
        "bank",
        &["fintech:read".into(), "fintech:write".into(), "fintech:settle".into()],
        chrono::Duration::hours(1),
    )
    .unwrap()
}

struct Bank {
    client: reqwest::Client,
    token: String,
    wallets: Vec<String>,
}

impl Bank {
    async fn post(&self, base: &str, path: &str, key: &str, body: &Value) -> Result<(u16, Value), reqwest::Error> {
        let res = self
            .client
            .post(format!("{base}{path}"))
            .bearer_auth(&self.token)
            .header("Idempotency-Key", key)
            .json(body)
            .timeout(Duration::from_secs(30))
            .send()
            .await?;
        let status = res.status().as_u16();
        Ok((status, res.json().await.unwrap_or(Value::Null)))
    }

    async fn setup(base: &str) -> Bank {
        let bank = Bank { client: reqwest::Client::new(), token: token(), wallets: Vec::new() };
        let mut wallets = Vec::new();
        for i in 0..WALLETS {
            let (status, body) = bank
                .post(base, "/api/v1/fintech/wallets", &format!("open-{i}"), &json!({"currency": "EUR"}))
                .await
                .unwrap();
            assert_eq!(status, 201, "{body}");
            let id = body["id"].as_str().unwrap().to_string();
            let path = format!("/api/v1/fintech/wallets/{id}/deposits");
            let (status, _) = bank
                .post(
                    base,
                    &path,
                    &format!("seed-{i}"),
                    &json!({"amount": SEED_BALANCE, "reference": format!("seed-{i}")}),
                )
                .await
                .unwrap();
            assert_eq!(status, 201);
            wallets.push(id);
        }
        Bank { wallets, ..bank }
    }
}

/// What the clients saw: acknowledged transfers by key, with their transaction id.
#[derive(Default)]
struct Seen {
    acked: HashMap<String, String>,
    refused: usize,
    replays: usize,
}

/// Run `total` transfers from `CLIENTS` clients over the instances `bases` returns at each
/// request; a request whose instance is gone is retried on another with the same key.
async fn load(bank: Arc<Bank>, bases: Arc<Mutex<Vec<String>>>, total: usize, seen: Arc<Mutex<Seen>>) {
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let (bank, bases, seen) = (bank.clone(), bases.clone(), seen.clone());
            actix_rt::spawn(async move {
                let mut rng = StdRng::seed_from_u64(client as u64);
                for n in 0..total / CLIENTS {
                    let from = rng.random_range(0..WALLETS);
                    let to = (from + rng.random_range(1..WALLETS)) % WALLETS;
                    let key = format!("t-{client}-{n}");
                    let body = json!({"from": bank.wallets[from], "to": bank.wallets[to], "amount": rng.random_range(1..=500i64)});
                    let mut attempt = 0;
                    let answer = loop {
                        let base = { let b = bases.lock(); b[(client + attempt) % b.len()].clone() };
                        match bank.post(&base, "/api/v1/fintech/transfers", &key, &body).await {
                            Ok((status, body)) if status < 500 => break (status, body),
                            _ => {
                                attempt += 1;
                                assert!(attempt < 200, "no instance answered {key}");
                                tokio::time::sleep(Duration::from_millis(50)).await;
                            }
                        }
                    };
                    // One request in ten is sent again with the same key: it must answer the same.
                    if rng.random_range(0..10u8) == 0 {
                        let base = { let b = bases.lock(); b[client % b.len()].clone() };
                        if let Ok(again) = bank.post(&base, "/api/v1/fintech/transfers", &key, &body).await {
                            if again.0 < 500 {
                                assert_eq!(again, answer, "a retry of {key} answered differently");
                                seen.lock().replays += 1;
                            }
                        }
                    }
                    let mut seen = seen.lock();
                    match answer.0 {
                        201 => {
                            seen.acked.insert(key, answer.1["id"].as_str().unwrap().to_string());
                        }
                        422 => seen.refused += 1,
                        other => panic!("unexpected {other}: {}", answer.1),
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
}

/// The database's view after the run, checked against what the clients saw.
async fn verify(database: &str, seen: &Seen) {
    let (db, connection) = tokio_postgres::connect(database, NoTls).await.unwrap();
    actix_rt::spawn(async move {
        let _ = connection.await;
    });
    let total: i64 = db.query_one("SELECT SUM(balance)::bigint FROM wallets", &[]).await.unwrap().get(0);
    assert_eq!(total, WALLETS as i64 * SEED_BALANCE, "money is conserved");
    let negative: i64 = db.query_one("SELECT COUNT(*) FROM wallets WHERE balance < 0", &[]).await.unwrap().get(0);
    assert_eq!(negative, 0);
    let applied: HashSet<String> = db
        .query("SELECT id::text FROM ledger_transactions WHERE kind = 'transfer'", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    for (key, id) in &seen.acked {
        assert!(applied.contains(id), "acknowledged transfer {key} ({id}) is missing from the history");
    }
    // What a key keeps is sealed under its caller's key (the development keys here): opened.
    let vault = {
        use beryl_core_api::{adapters::postgres::build_pool, config::DatabaseSettings};
        let settings = DatabaseSettings { url: Some(database.into()), ..DatabaseSettings::default() };
        beryl_core_api::adapters::privacy::Vault::for_pool(build_pool(&settings).unwrap(), &Default::default())
    };
    let mut keys = 0;
    for row in db.query("SELECT scope, key, receipt FROM idempotency_keys WHERE key LIKE 't-%'", &[]).await.unwrap() {
        let (scope, key): (String, String) = (row.get(0), row.get(1));
        let row_id = beryl_core_api::adapters::ledger::sealing::kept_row(&scope, &key, "receipt");
        let receipt = beryl_core_api::adapters::ledger::sealing::open_json(&vault, row.get(2), &row_id).await.unwrap();
        if receipt.is_some_and(|r| r["receipt"] == "moved") {
            keys += 1;
        }
    }
    assert_eq!(keys, applied.len(), "each applied transfer has exactly one key, and no key was applied twice");
    // Every wallet's journal replays to its balance, sequence numbers without gaps.
    let rows = db
        .query(
            "SELECT w.balance, COALESCE(SUM(j.amount), 0)::bigint, w.version, COUNT(j.seq), MAX(j.seq)
             FROM wallets w JOIN wallet_journal j ON j.wallet_id = w.id GROUP BY w.id, w.balance, w.version",
            &[],
        )
        .await
        .unwrap();
    for r in rows {
        let (balance, replayed, version, entries, last): (i64, i64, i64, i64, i64) =
            (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
        assert_eq!(balance, replayed);
        assert_eq!((entries, last), (version, version));
    }
}

#[actix_web::test]
async fn two_instances_ten_thousand_transfers_conserve_money() {
    let database = create_database().await;
    let (one, two) = (serve(&database, "0"), serve(&database, "2"));
    let bases = vec![one.address().await, two.address().await];
    let bank = Arc::new(Bank::setup(&bases[0]).await);
    let seen = Arc::new(Mutex::new(Seen::default()));
    load(bank, Arc::new(Mutex::new(bases)), 10_048, seen.clone()).await;
    let seen = std::mem::take(&mut *seen.lock());
    assert!(seen.acked.len() > 5_000, "most transfers went through: {}", seen.acked.len());
    assert!(seen.replays > 500);
    verify(&database, &seen).await;
}

#[actix_web::test]
async fn an_instance_killed_mid_load_loses_no_acknowledged_transfer() {
    let database = create_database().await;
    let one = serve(&database, "0");
    let mut two = serve(&database, "2");
    let bases = Arc::new(Mutex::new(vec![one.address().await, two.address().await]));
    let first = bases.lock()[0].clone();
    let bank = Arc::new(Bank::setup(&first).await);
    let seen = Arc::new(Mutex::new(Seen::default()));
    let run = actix_rt::spawn(load(bank.clone(), bases.clone(), 4_096, seen.clone()));
    crate::helpers::eventually("load to be under way", Duration::from_secs(60), || async {
        (seen.lock().acked.len() > 500).then_some(())
    })
    .await;
    two.signal(Signal::SIGKILL);
    two.exit_code(Duration::from_secs(10)).await;
    // Clients of the dead instance retry on the live one with the same keys; then it comes back.
    let restarted = serve(&database, "2");
    let address = restarted.address().await;
    bases.lock()[1] = address;
    run.await.unwrap();
    let seen = std::mem::take(&mut *seen.lock());
    verify(&database, &seen).await;
    drop(restarted);
}
