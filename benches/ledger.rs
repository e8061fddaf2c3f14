#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark harness, not service code
//! Transfers per second through the whole service (HTTP, token, wallet actors, group-committed
//! ledger on PostgreSQL, idempotency key kept with each movement) against pgbench running the
//! same transfer transaction (two conditional UPDATEs and one INSERT) at the same concurrency on
//! the same PostgreSQL, in the same run. Also GET wallet against a bare actix-web handler.
//!
//! `cargo bench --bench ledger -- [--seconds N] [--rounds N] [--connections N]`
//! BENCH_DATABASE_URL names the server (default postgres://postgres@127.0.0.1:5432/postgres).

use std::{
    net::TcpListener,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
};

use actix_web::{web, App, HttpResponse, HttpServer};
use beryl_core_api::startup::Application;
use rand::{rngs::StdRng, Rng, SeedableRng};
use serde_json::json;
use tokio_postgres::NoTls;

#[path = "support/settings.rs"]
mod bench_settings;
#[path = "support/load.rs"]
mod load;
#[path = "support/logs.rs"]
mod logs;
#[path = "support/pgbench.rs"]
mod pgbench;
#[path = "support/ledger_setup.rs"]
mod setup;

const WALLETS: usize = 50;

/// pgbench running the transfer transaction; returns (transactions/s, p99 in µs).
fn pgbench(database: &str, seconds: u64, clients: usize) -> (f64, u64) {
    // Rows are updated in id order, as the service locks them, so that concurrent transfers
    // between the same two wallets wait for each other instead of deadlocking.
    let script = "\\set from random(1, 50)\n\\set to 1 + (:from + random(0, 48)) % 50\n\\set amount random(1, 500)\n\
         \\set lo least(:from, :to)\n\\set hi greatest(:from, :to)\nBEGIN;\n\
         UPDATE bench_wallets SET balance = balance + CASE WHEN id = :from THEN -(:amount::bigint) ELSE :amount::bigint END, version = version + 1 \
         WHERE id = :lo AND (id <> :from OR balance >= :amount);\n\
         UPDATE bench_wallets SET balance = balance + CASE WHEN id = :from THEN -(:amount::bigint) ELSE :amount::bigint END, version = version + 1 \
         WHERE id = :hi AND (id <> :from OR balance >= :amount);\n\
         INSERT INTO bench_journal (wallet_id, amount, created_at) VALUES (:from, :amount, now());\n\
         END;\n";
    pgbench::run(database, script, seconds, clients)
}

async fn bare() -> HttpResponse {
    HttpResponse::Ok().json(json!({"id": "00000000-0000-0000-0000-000000000000", "balance": 0}))
}

fn main() {
    let args = load::Args::parse();
    let _logs = logs::production_logs();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let database = runtime.block_on(setup::create_database());

    let (tx, rx) = std::sync::mpsc::channel();
    let db = database.clone();
    std::thread::spawn(move || {
        actix_rt::System::new().block_on(async move {
            let mut settings = bench_settings::bench_settings();
            settings.database.url = Some(db.as_str().into());
            settings.database.max_connections = 16;
            settings.rate_limit.enabled = false;
            let app = Application::build(settings).await.expect("application");
            let state = app.state();
            let token = state
                .guard
                .keys
                .mint(
                    "bench",
                    &["fintech:read".into(), "fintech:write".into(), "fintech:settle".into()],
                    chrono::Duration::hours(1),
                )
                .expect("token");
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
            let bare_port = listener.local_addr().expect("addr").port();
            let bare_server = HttpServer::new(|| App::new().route("/wallet", web::get().to(bare)))
                .workers(2)
                .listen(listener)
                .expect("listen")
                .run();
            tx.send((app.port(), bare_port, token)).expect("report");
            actix_rt::spawn(bare_server);
            app.run_until_stopped(std::future::pending()).await.expect("run");
        });
    });
    let (port, bare_port, token) = rx.recv().expect("started");

    // 50 wallets with plenty of money, opened through the API.
    let base = format!("http://127.0.0.1:{port}");
    let wallets = runtime.block_on(setup::open_funded_wallets(&base, &token, WALLETS, 1_000_000_000_000));
    runtime.block_on(async {
        let (db, connection) = tokio_postgres::connect(&database, NoTls).await.expect("connect");
        tokio::spawn(connection);
        db.batch_execute(
            "CREATE TABLE bench_wallets (id int PRIMARY KEY, balance bigint NOT NULL CHECK (balance >= 0), version bigint NOT NULL);
             INSERT INTO bench_wallets SELECT g, 1000000000000, 1 FROM generate_series(1, 50) g;
             CREATE TABLE bench_journal (id bigserial PRIMARY KEY, wallet_id int NOT NULL, amount bigint NOT NULL, created_at timestamptz NOT NULL);",
        )
        .await
        .expect("pgbench tables");
    });

    let wallets = Arc::new(wallets);
    let (w, t) = (wallets.clone(), token.clone());
    // Every request is a new transfer under a key of its own: the load generator restarts its
    // request numbers for the warm-up and for every round, so keys made from them would repeat
    // and be answered from the kept responses instead of moving money.
    let sent = Arc::new(AtomicU64::new(0));
    let requests = sent.clone();
    let transfer = load::Target::dynamic(
        "service transfers",
        Arc::new(move |_, _| {
            let n = sent.fetch_add(1, Ordering::Relaxed);
            let mut rng = StdRng::seed_from_u64(n);
            let from = rng.random_range(0..WALLETS);
            let to = (from + rng.random_range(1..WALLETS)) % WALLETS;
            let body = json!({"from": w[from], "to": w[to], "amount": rng.random_range(1..=500)}).to_string();
            let headers = [
                ("Authorization", format!("Bearer {t}")),
                ("Content-Type", "application/json".into()),
                ("Idempotency-Key", format!("bench-transfer-{n}")),
            ];
            load::Target::raw("POST", "/api/v1/fintech/transfers", &headers, &body)
        }),
    );
    let (w, t) = (wallets.clone(), token.clone());
    let read = load::Target::dynamic(
        "GET wallet",
        Arc::new(move |conn, n| {
            let id = &w[(conn + n as usize) % WALLETS];
            load::Target::raw(
                "GET",
                &format!("/api/v1/fintech/wallets/{id}"),
                &[("Authorization", format!("Bearer {t}"))],
                "",
            )
        }),
    );

    let mut service = Vec::new();
    let mut bench = Vec::new();
    for round in 0..args.rounds {
        let r = load::run_rounds(port, std::slice::from_ref(&transfer), &load::Args { rounds: 1, ..args.clone() });
        eprintln!("round {} pgbench", round + 1);
        bench.push(pgbench(&database, args.seconds, args.connections));
        service.push(r.into_iter().next().expect("result"));
    }
    let reads = load::run_rounds(port, &[read], &args);
    let bare_reads = load::run_rounds(bare_port, &[load::Target::get("bare handler", "/wallet")], &args);

    let service_rps = service.iter().map(|r| r.rps).sum::<f64>() / service.len() as f64;
    let service_p99 = service.iter().map(|r| r.p99_us).max().unwrap_or(0);
    let errors: u64 = service.iter().map(|r| r.errors).sum();
    let bench_tps = bench.iter().map(|b| b.0).sum::<f64>() / bench.len() as f64;
    let bench_p99 = bench.iter().map(|b| b.1).max().unwrap_or(0);
    println!("{:<34} {:>11} {:>10}", "", "per second", "p99 us");
    println!("{:<34} {:>11.0} {:>10}", "service transfers (HTTP, 64 conns)", service_rps, service_p99);
    println!("{:<34} {:>11.0} {:>10}", "pgbench same transaction (64 cl.)", bench_tps, bench_p99);
    println!("{:<34} {:>11.0} {:>10}", "GET wallet", reads[0].rps, reads[0].p99_us);
    println!("{:<34} {:>11.0} {:>10}", "bare actix-web handler", bare_reads[0].rps, bare_reads[0].p99_us);
    println!();
    println!("service transfers / pgbench : {:.2}  (target >= 2.0, p99 < 50 ms)", service_rps / bench_tps);
    println!("GET wallet / bare handler   : {:.2}", reads[0].rps / bare_reads[0].rps);
    println!("transfer errors (non-2xx)   : {errors}");
    let recorded: i64 = runtime.block_on(async {
        let (db, connection) = tokio_postgres::connect(&database, NoTls).await.expect("connect");
        tokio::spawn(connection);
        let row = db.query_one("SELECT count(*) FROM ledger_transactions WHERE kind = 'transfer'", &[]).await;
        row.expect("count").get(0)
    });
    println!("transfers in the ledger     : {recorded} of {} requests sent", requests.load(Ordering::Relaxed));
}
