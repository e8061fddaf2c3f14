#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark harness, not service code
//! Driver position reports per second through the service (HTTP, guard, the driver's entity
//! actor, its rate gate, Redis' geo index), against a bare Redis `GEOADD` loop with the same
//! number of clients, in alternating rounds of the same run. A third figure bounds what any HTTP
//! service can reach here: a bare actix-web handler (no token, no actor, no log line) that parses
//! the same body and sends the `GEOADD` on one shared connection, loaded by the same generator.
//!
//! Reports go to the drivers in turn (`BENCH_DRIVERS`, 24000 by default): at the rates reached
//! here each driver reports a little less than once a second, as a driver's app does, which the
//! rate gate admits; a report refused as too frequent counts as an error and is printed.
//!
//! `cargo bench --bench mobility_location -- [--seconds N] [--rounds N] [--connections N]`
//! (Redis at `BENCH_REDIS_URL`, default `redis://127.0.0.1:6379/0`).

use std::{
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use beryl_core_api::{auth::KeySet, startup::Application};
use futures::StreamExt;
use serde_json::{json, Value};

#[path = "support/settings.rs"]
mod bench_settings;
#[path = "support/load.rs"]
mod load;
#[path = "support/logs.rs"]
mod logs;

fn redis_url() -> String {
    std::env::var("BENCH_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into())
}

/// `clients` clients, each on a connection of its own, sending `GEOADD` and waiting for each
/// answer, for `seconds`: adds per second.
async fn bare_geoadd(clients: usize, seconds: u64, prefix: &str) -> (f64, u64) {
    let client = redis::Client::open(redis_url()).unwrap();
    let mut conns = Vec::with_capacity(clients);
    for _ in 0..clients {
        conns.push(client.get_multiplexed_async_connection().await.unwrap());
    }
    let stop = Arc::new(AtomicBool::new(false));
    let (done, errors) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (c, mut conn) in conns.into_iter().enumerate() {
        let (stop, done, errors) = (stop.clone(), done.clone(), errors.clone());
        let key = format!("{prefix}bare:geo");
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let lat = 48.80 + (n % 1000) as f64 / 10_000.0;
                let added: redis::RedisResult<i64> = redis::cmd("GEOADD")
                    .arg(&key)
                    .arg(2.35)
                    .arg(lat)
                    .arg(format!("d-{c}-{}", n % 250))
                    .query_async(&mut conn)
                    .await;
                if added.is_ok() { &done } else { &errors }.fetch_add(1, Ordering::Relaxed);
                n += 1;
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    (done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64(), errors.load(Ordering::Relaxed))
}

/// `count` drivers, each with a wallet, a profile and available: their tokens.
async fn drivers(port: u16, keys: &KeySet, count: usize) -> Vec<String> {
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}/api/v1");
    let tokens: Vec<String> = (0..count)
        .map(|i| {
            let scopes = ["mobility:write".to_owned(), "fintech:write".to_owned()];
            keys.mint(&format!("bench-driver-{i}"), &scopes, chrono::Duration::hours(2)).unwrap()
        })
        .collect();
    let made = futures::stream::iter(tokens.iter().enumerate())
        .map(|(i, token)| {
            let (client, base) = (client.clone(), base.clone());
            async move {
                let wallet: Value = client
                    .post(format!("{base}/fintech/wallets"))
                    .bearer_auth(token)
                    .header("Idempotency-Key", format!("bench-wallet-{i}"))
                    .json(&json!({"currency": "EUR"}))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                let profile = json!({"mode": "car", "plate": format!("B-{i}"), "seats": 4, "wallet": wallet["id"]});
                let put = client.put(format!("{base}/mobility/drivers/me")).bearer_auth(token).json(&profile).send();
                assert_eq!(put.await.unwrap().status(), 201);
                let available = json!({"availability": "available"});
                let put =
                    client.put(format!("{base}/mobility/drivers/me/availability")).bearer_auth(token).json(&available);
                assert_eq!(put.send().await.unwrap().status(), 200);
            }
        })
        .buffer_unordered(64)
        .count()
        .await;
    assert_eq!(made, count);
    tokens
}

#[derive(serde::Deserialize)]
struct Position {
    lat: f64,
    lon: f64,
}

/// The bare handler: the body parsed, one `GEOADD`, an empty JSON answer.
async fn bare_report(
    conn: actix_web::web::Data<redis::aio::MultiplexedConnection>,
    key: actix_web::web::Data<String>,
    body: actix_web::web::Json<Position>,
) -> actix_web::HttpResponse {
    let mut conn = conn.get_ref().clone();
    let added: redis::RedisResult<i64> =
        redis::cmd("GEOADD").arg(key.as_str()).arg(body.lon).arg(body.lat).arg("driver").query_async(&mut conn).await;
    match added {
        Ok(_) => actix_web::HttpResponse::Ok().json(json!({"dispatchable": true})),
        Err(_) => actix_web::HttpResponse::ServiceUnavailable().finish(),
    }
}

/// Start the bare handler on a port of its own, two workers as the service has.
async fn bare_server(prefix: &str) -> u16 {
    let conn = redis::Client::open(redis_url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let (conn, key) = (actix_web::web::Data::new(conn), actix_web::web::Data::new(format!("{prefix}bare-http:geo")));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = actix_web::HttpServer::new(move || {
        actix_web::App::new()
            .app_data(conn.clone())
            .app_data(key.clone())
            .route("/api/v1/mobility/drivers/me/location", actix_web::web::post().to(bare_report))
    })
    .workers(2)
    .listen(listener)
    .unwrap()
    .run();
    actix_rt::spawn(server);
    port
}

fn main() {
    let args = load::Args::parse();
    let _logs = logs::production_logs();
    let count: usize = std::env::var("BENCH_DRIVERS").ok().and_then(|v| v.parse().ok()).unwrap_or(24_000);
    let prefix = format!("beryl:bench:{}:", uuid::Uuid::new_v4().simple());
    let (tx, rx) = std::sync::mpsc::channel();
    let (app_prefix, app_prefix_bare) = (prefix.clone(), prefix.clone());
    std::thread::spawn(move || {
        actix_rt::System::new().block_on(async move {
            let mut settings = bench_settings::bench_settings();
            settings.redis.url = Some(redis_url().as_str().into());
            settings.redis.key_prefix = app_prefix;
            settings.rate_limit.enabled = false;
            settings.server.workers = 2;
            let app = Application::build(settings).await.expect("application");
            let keys = app.state().guard.keys.clone();
            let bare_port = bare_server(&app_prefix_bare).await;
            tx.send((app.port(), bare_port, keys)).expect("report");
            app.run_until_stopped(std::future::pending()).await.expect("server");
        });
    });
    let (port, bare_port, keys) = rx.recv().expect("started");
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let started = Instant::now();
    let tokens = Arc::new(runtime.block_on(drivers(port, &keys, count)));
    eprintln!("{count} drivers online in {:.1}s", started.elapsed().as_secs_f64());

    // Reports go to the drivers in turn across rounds, so that each driver reports about every
    // `drivers / rate` seconds, as a driver's app does.
    let next = Arc::new(AtomicU64::new(0));
    let make: load::MakeRequest = {
        let tokens = tokens.clone();
        Arc::new(move |_: usize, n: u64| {
            let i = next.fetch_add(1, Ordering::Relaxed) as usize % tokens.len();
            let body = format!(r#"{{"lat":{:.5},"lon":2.35,"speed":8.0}}"#, 48.80 + (n % 1000) as f64 / 10_000.0);
            let auth = format!("Bearer {}", tokens[i]);
            load::Target::raw(
                "POST",
                "/api/v1/mobility/drivers/me/location",
                &[("Authorization", auth), ("Content-Type", "application/json".into())],
                &body,
            )
        })
    };
    let target = load::Target::dynamic("location report (HTTP)", make);
    let one = load::Args { rounds: 1, ..args.clone() };
    let (mut service, mut bare, mut http) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..args.rounds {
        let r = load::run_rounds(port, std::slice::from_ref(&target), &one).remove(0);
        let (rps, errors) = runtime.block_on(bare_geoadd(args.connections, args.seconds, &prefix));
        let h = load::run_rounds(bare_port, std::slice::from_ref(&target), &one).remove(0);
        eprintln!(
            "round {}: service {:.0}/s ({} errors), bare GEOADD {:.0}/s ({} errors), bare HTTP handler {:.0}/s ({} errors)",
            round + 1,
            r.rps,
            r.errors,
            rps,
            errors,
            h.rps,
            h.errors
        );
        service.push(r);
        bare.push(rps);
        http.push(h);
    }
    let mean = |rs: &[load::RouteResult]| rs.iter().map(|r| r.rps).sum::<f64>() / rs.len() as f64;
    let (s_rps, h_rps) = (mean(&service), mean(&http));
    let b_rps: f64 = bare.iter().sum::<f64>() / bare.len() as f64;
    let errors: u64 = service.iter().chain(&http).map(|r| r.errors).sum();
    let p99 = |rs: &[load::RouteResult]| rs.iter().map(|r| r.p99_us).max().unwrap_or(0);
    println!("{:<40} {:>10} {:>9}", "", "per s", "p99 us");
    println!("{:<40} {:>10.0} {:>9}", "location report, HTTP -> geo index", s_rps, p99(&service));
    println!("{:<40} {:>10.0} {:>9}", "bare GEOADD loop", b_rps, "");
    println!("{:<40} {:>10.0} {:>9}", "bare HTTP handler -> GEOADD", h_rps, p99(&http));
    println!("errors (non-2xx or refused): {errors}");
    println!(
        "ratio service / bare GEOADD: {:.2} (each round: {})",
        s_rps / b_rps,
        service.iter().zip(&bare).map(|(s, b)| format!("{:.2}", s.rps / b)).collect::<Vec<_>>().join(", ")
    );
    println!("ratio bare HTTP handler / bare GEOADD: {:.2}", h_rps / b_rps);
    println!("ratio service / bare HTTP handler: {:.2}", s_rps / h_rps);
}
