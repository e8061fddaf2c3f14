#![allow(dead_code)] // shared by several benchmarks, each using a part
//! What the ledger benchmarks set up alike: a fresh database on the benchmark's PostgreSQL and
//! funded wallets opened through the API.

use serde_json::{json, Value};
use tokio_postgres::NoTls;

/// The PostgreSQL server (BENCH_DATABASE_URL, default the local one).
pub fn admin_url() -> String {
    std::env::var("BENCH_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A new empty database; returns its URL.
pub async fn create_database() -> String {
    let admin = admin_url();
    let (client, connection) = tokio_postgres::connect(&admin, NoTls).await.expect("connect");
    tokio::spawn(connection);
    let name = format!("beryl_bench_{}", uuid::Uuid::new_v4().simple());
    client.batch_execute(&format!("CREATE DATABASE {name}")).await.expect("create database");
    format!("{}/{name}", admin.rsplit_once('/').expect("url").0)
}

/// Open `count` EUR wallets through the API at `base` and deposit `funds` into each; their ids.
pub async fn open_funded_wallets(base: &str, token: &str, count: usize, funds: i64) -> Vec<String> {
    let client = reqwest::Client::new();
    let mut ids = Vec::new();
    for i in 0..count {
        let post = |path: String, key: String, body: Value| {
            client.post(format!("{base}{path}")).bearer_auth(token).header("Idempotency-Key", key).json(&body).send()
        };
        let opened: Value = post("/api/v1/fintech/wallets".into(), format!("open-{i}"), json!({"currency": "EUR"}))
            .await
            .expect("open")
            .json()
            .await
            .expect("json");
        let id = opened["id"].as_str().expect("id").to_string();
        let path = format!("/api/v1/fintech/wallets/{id}/deposits");
        let seeded =
            post(path, format!("seed-{i}"), json!({"amount": funds, "reference": "seed"})).await.expect("seed");
        assert_eq!(seeded.status(), 201);
        ids.push(id);
    }
    ids
}
