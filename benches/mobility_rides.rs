#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark harness, not service code
//! Rides through the whole service, on PostgreSQL and Redis, with 1,000 drivers online around
//! the pickup (`BENCH_DRIVERS`), each reporting its position every 10 s. Two measurements, each
//! against a baseline from the same run:
//!
//! - **Dispatch latency.** One ride at a time: the time from the answer to the rider's request to
//!   the offer's row in PostgreSQL (one query for every waiting ride every half millisecond),
//!   against the least a dispatch
//!   can cost: a bare `GEOSEARCH` over the same 1,000 positions followed by one committed
//!   `INSERT`, one after the other.
//! - **Ride lifecycle throughput.** `--connections` riders at once, each running quote → request
//!   → accept → arrive → start → complete (the driver takes the ride once it is offered): rides
//!   completed per second, against the rate at which bare PostgreSQL commits single-row writes at
//!   the same concurrency (pgbench), divided by the commits one ride makes in the service
//!   (counted from transaction ids in the same run). Alternating rounds.
//!
//! `cargo bench --bench mobility_rides -- [--seconds N] [--rounds N] [--connections N]`
//! (PostgreSQL at `BENCH_DATABASE_URL`, Redis at `BENCH_REDIS_URL`; `BENCH_DISPATCHES`, 200 by
//! default, rides for the latency).

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use beryl_core_api::startup::Application;
use futures::StreamExt;
use rand::{rngs::StdRng, Rng, SeedableRng};
use serde_json::{json, Value};
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

const PICKUP: (f64, f64) = (48.8566, 2.3522);
const DROPOFF: (f64, f64) = (48.8738, 2.2950);

fn redis_url() -> String {
    std::env::var("BENCH_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into())
}

fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A place within about 1.5 km of the pickup, the same for the same `n`.
fn near_pickup(n: u64) -> (f64, f64) {
    let mut rng = StdRng::seed_from_u64(n);
    (PICKUP.0 + rng.random_range(-0.013..0.013), PICKUP.1 + rng.random_range(-0.02..0.02))
}

#[derive(Clone)]
struct Api {
    client: reqwest::Client,
    base: String,
    keys: Arc<beryl_core_api::auth::KeySet>,
}

impl Api {
    fn token(&self, subject: &str) -> String {
        let scopes: Vec<String> =
            ["mobility:read", "mobility:write", "fintech:read", "fintech:write"].map(String::from).into();
        self.keys.mint(subject, &scopes, chrono::Duration::hours(2)).unwrap()
    }

    async fn send(&self, method: reqwest::Method, path: &str, token: &str, body: &Value) -> (u16, Value) {
        let res = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token)
            .header("Idempotency-Key", uuid::Uuid::now_v7().to_string())
            .json(body)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, token: &str, body: &Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, token, body).await
    }

    async fn put(&self, path: &str, token: &str, body: &Value) -> (u16, Value) {
        self.send(reqwest::Method::PUT, path, token, body).await
    }

    /// A EUR wallet of the token's subject holding `amount`.
    async fn wallet(&self, token: &str, bank: &str, amount: i64) -> String {
        let (status, opened) = self.post("/api/v1/fintech/wallets", token, &json!({"currency": "EUR"})).await;
        assert_eq!(status, 201, "{opened}");
        let id = opened["id"].as_str().unwrap().to_owned();
        if amount > 0 {
            let path = format!("/api/v1/fintech/wallets/{id}/deposits");
            let (status, body) = self.post(&path, bank, &json!({"amount": amount, "reference": "seed"})).await;
            assert_eq!(status, 201, "{body}");
        }
        id
    }
}

/// `count` drivers online near the pickup: driver id → token.
async fn drivers(api: &Api, count: usize) -> HashMap<uuid::Uuid, String> {
    futures::stream::iter(0..count)
        .map(|i| async move {
            let token = api.token(&format!("bench-driver-{i}"));
            let wallet = api.wallet(&token, "", 0).await;
            let profile = json!({"mode": "car", "plate": format!("B-{i}"), "seats": 4, "wallet": wallet});
            let (status, driver) = api.put("/api/v1/mobility/drivers/me", &token, &profile).await;
            assert_eq!(status, 201, "{driver}");
            let available = json!({"availability": "available"});
            assert_eq!(api.put("/api/v1/mobility/drivers/me/availability", &token, &available).await.0, 200);
            report(api, &token, i as u64).await;
            (driver["id"].as_str().unwrap().parse().unwrap(), token)
        })
        .buffer_unordered(32)
        .collect()
        .await
}

async fn report(api: &Api, token: &str, n: u64) {
    let (lat, lon) = near_pickup(n);
    let (status, body) =
        api.post("/api/v1/mobility/drivers/me/location", token, &json!({"lat": lat, "lon": lon})).await;
    // A driver on a ride is indexed as such; too frequent cannot happen at one report in 10 s.
    assert_eq!(status, 200, "{body}");
}

/// Every driver reports its position every 10 s, so that none goes stale during the run.
fn keep_reporting(api: Api, drivers: Arc<Vec<String>>) {
    tokio::spawn(async move {
        loop {
            let started = Instant::now();
            futures::stream::iter(drivers.iter().enumerate())
                .for_each_concurrent(8, |(i, token)| {
                    let api = api.clone();
                    async move { report(&api, token, i as u64).await }
                })
                .await;
            tokio::time::sleep(Duration::from_secs(10).saturating_sub(started.elapsed())).await;
        }
    });
}

/// Who was offered which ride: one task reads the pending offers of every ride waited for, every
/// `poll`, so that many riders waiting at once cost one query per poll.
#[derive(Clone)]
struct Offers {
    waiting: Arc<std::sync::Mutex<HashMap<uuid::Uuid, tokio::sync::oneshot::Sender<uuid::Uuid>>>>,
}

impl Offers {
    fn watch(database: String, poll: Duration) -> Self {
        let offers = Offers { waiting: Arc::default() };
        let waiting = offers.waiting.clone();
        tokio::spawn(async move {
            let (db, connection) = tokio_postgres::connect(&database, NoTls).await.unwrap();
            tokio::spawn(connection);
            let pending = db
                .prepare("SELECT ride_id, driver_id FROM mobility_offers WHERE answer IS NULL AND ride_id = ANY($1)")
                .await
                .unwrap();
            loop {
                let rides: Vec<uuid::Uuid> = waiting.lock().unwrap().keys().copied().collect();
                if !rides.is_empty() {
                    for row in db.query(&pending, &[&rides]).await.unwrap() {
                        if let Some(tell) = waiting.lock().unwrap().remove(&row.get::<_, uuid::Uuid>(0)) {
                            let _ = tell.send(row.get(1));
                        }
                    }
                }
                tokio::time::sleep(poll).await;
            }
        });
        offers
    }

    /// The driver offered `ride`, once the offer's row exists.
    async fn of(&self, ride: uuid::Uuid) -> uuid::Uuid {
        let (tell, told) = tokio::sync::oneshot::channel();
        self.waiting.lock().unwrap().insert(ride, tell);
        tokio::time::timeout(Duration::from_secs(30), told).await.expect("an offer within 30 s").unwrap()
    }
}

/// What a ride's steps took, as the rider and the driver see them.
const STEPS: [&str; 7] = ["quote", "request", "dispatch (answer -> offer)", "accept", "arrive", "start", "complete"];

/// One ride from quote to completion; how long each of its steps took.
async fn ride(
    api: &Api,
    offers: &Offers,
    drivers: &HashMap<uuid::Uuid, String>,
    rider: &(String, String),
) -> [Duration; 7] {
    let mut took = [Duration::ZERO; 7];
    let mut at = Instant::now();
    let mut lap = |step: usize| {
        let now = Instant::now();
        took[step] = now - at;
        at = now;
    };
    let quote = json!({
        "pickup": {"lat": PICKUP.0, "lon": PICKUP.1},
        "dropoff": {"lat": DROPOFF.0, "lon": DROPOFF.1},
        "mode": "car",
        "currency": "EUR",
    });
    let (status, quote) = api.post("/api/v1/mobility/quotes", &rider.0, &quote).await;
    assert_eq!(status, 201, "{quote}");
    lap(0);
    let request = json!({"quote": quote["id"], "wallet": rider.1});
    let (status, requested) = api.post("/api/v1/mobility/rides", &rider.0, &request).await;
    assert_eq!(status, 201, "{requested}");
    lap(1);
    let id: uuid::Uuid = requested["id"].as_str().unwrap().parse().unwrap();
    let driver = offers.of(id).await;
    lap(2);
    let token = &drivers[&driver];
    for (step, action) in [(3, "accept"), (4, "arrive"), (5, "start")] {
        let (status, body) = api.post(&format!("/api/v1/mobility/rides/{id}/{action}"), token, &json!({})).await;
        assert_eq!(status, 200, "{action}: {body}");
        lap(step);
    }
    let driven = json!({"distance_m": quote["distance_m"], "duration_s": quote["duration_s"]});
    let (status, done) = api.post(&format!("/api/v1/mobility/rides/{id}/complete"), token, &driven).await;
    assert_eq!((status, done["payment"].as_str()), (200, Some("captured")), "{done}");
    lap(6);
    took
}

/// Rides completed by `riders` riders at once for `seconds`, and what each one's steps took.
async fn rides_for(
    api: &Api,
    offers: &Offers,
    drivers: &Arc<HashMap<uuid::Uuid, String>>,
    riders: &[(String, String)],
    seconds: u64,
) -> (u64, Duration, Vec<[Duration; 7]>) {
    let until = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let tasks: Vec<_> = riders
        .iter()
        .cloned()
        .map(|rider| {
            let (api, drivers, offers) = (api.clone(), drivers.clone(), offers.clone());
            tokio::spawn(async move {
                let mut rides = Vec::new();
                while Instant::now() < until {
                    rides.push(ride(&api, &offers, &drivers, &rider).await);
                }
                rides
            })
        })
        .collect();
    let mut rides = Vec::new();
    for t in tasks {
        rides.extend(t.await.unwrap());
    }
    (rides.len() as u64, started.elapsed(), rides)
}

/// The cluster's next transaction id: write transactions between two reads are their difference
/// less one (the first read's own).
async fn xid(db: &tokio_postgres::Client) -> i64 {
    db.query_one("SELECT txid_current()", &[]).await.unwrap().get(0)
}

/// pgbench committing one single-row upsert per transaction: (commits/s, p99 µs).
fn pgbench_commits(database: &str, seconds: u64, clients: usize) -> (f64, u64) {
    let script = "\\set id random(1, 1000000000)\n\
         INSERT INTO bench_commits (id, body) VALUES (:id, '{\"state\": \"requested\", \"mode\": \"car\"}') \
         ON CONFLICT (id) DO UPDATE SET body = excluded.body;\n";
    pgbench::run(database, script, seconds, clients)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted.get(((sorted.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or_default()
}

/// The least a dispatch costs, `count` times in a row: a `GEOSEARCH` of the nearest `candidates`
/// within `radius` over `positions`, then one committed `INSERT`.
async fn bare_dispatch(
    db: &tokio_postgres::Client,
    positions: &[(f64, f64)],
    radius: u32,
    candidates: usize,
    count: usize,
) -> Vec<Duration> {
    let client = redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let key = format!("beryl:bench:{}:geo", uuid::Uuid::new_v4().simple());
    let mut add = redis::cmd("GEOADD");
    add.arg(&key);
    for (i, (lat, lon)) in positions.iter().enumerate() {
        add.arg(*lon).arg(*lat).arg(format!("driver-{i}"));
    }
    let _: i64 = add.query_async(&mut conn).await.unwrap();
    let insert = db.prepare("INSERT INTO bench_offers (ride_id, driver) VALUES ($1, $2)").await.unwrap();
    let mut waits = Vec::with_capacity(count);
    for _ in 0..count {
        let started = Instant::now();
        let near: Vec<(String, f64)> = redis::cmd("GEOSEARCH")
            .arg(&key)
            .arg("FROMLONLAT")
            .arg(PICKUP.1)
            .arg(PICKUP.0)
            .arg("BYRADIUS")
            .arg(radius)
            .arg("m")
            .arg("ASC")
            .arg("COUNT")
            .arg(candidates)
            .arg("WITHDIST")
            .query_async(&mut conn)
            .await
            .unwrap();
        let driver = &near.first().expect("a driver near").0;
        db.execute(&insert, &[&uuid::Uuid::now_v7(), driver]).await.unwrap();
        waits.push(started.elapsed());
    }
    let _: i64 = redis::cmd("DEL").arg(&key).query_async(&mut conn).await.unwrap();
    waits.sort_unstable();
    waits
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    let args = load::Args::parse();
    let _logs = logs::production_logs();
    let count = env_count("BENCH_DRIVERS", 1_000);
    let dispatches = env_count("BENCH_DISPATCHES", 200);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let database = runtime.block_on(setup::create_database());
    let prefix = format!("beryl:bench:{}:", uuid::Uuid::new_v4().simple());

    let (tx, rx) = std::sync::mpsc::channel();
    let (db_url, app_prefix) = (database.clone(), prefix.clone());
    std::thread::spawn(move || {
        actix_rt::System::new().block_on(async move {
            let mut settings = bench_settings::bench_settings();
            settings.database.url = Some(db_url.as_str().into());
            settings.database.max_connections = 16;
            settings.redis.url = Some(redis_url().as_str().into());
            settings.redis.key_prefix = app_prefix;
            settings.rate_limit.enabled = false;
            settings.server.workers = 2;
            let app = Application::build(settings).await.expect("application");
            let state = app.state();
            let policy =
                (state.settings.mobility.dispatch_radii_m.clone(), state.settings.mobility.dispatch_candidates);
            tx.send((app.port(), state.guard.keys.clone(), policy)).expect("report");
            app.run_until_stopped(std::future::pending()).await.expect("server");
        });
    });
    let (port, keys, (radii, candidates)) = rx.recv().expect("started");
    let api = Api { client: reqwest::Client::new(), base: format!("http://127.0.0.1:{port}"), keys };

    let started = Instant::now();
    let drivers = Arc::new(runtime.block_on(drivers(&api, count)));
    eprintln!("{count} drivers online in {:.1}s", started.elapsed().as_secs_f64());
    let tokens: Arc<Vec<String>> = Arc::new(drivers.values().cloned().collect());
    let bank = api.keys.mint("bench-bank", &["fintech:settle".into()], chrono::Duration::hours(2)).unwrap();
    let riders: Vec<(String, String)> = runtime.block_on(async {
        futures::stream::iter(0..args.connections)
            .map(|i| {
                let (api, bank) = (api.clone(), bank.clone());
                async move {
                    let token = api.token(&format!("bench-rider-{i}"));
                    let wallet = api.wallet(&token, &bank, 1_000_000_000).await;
                    (token, wallet)
                }
            })
            .buffer_unordered(16)
            .collect()
            .await
    });
    let (db, connection) = runtime.block_on(tokio_postgres::connect(&database, NoTls)).expect("connect");
    runtime.spawn(connection);
    runtime.block_on(async {
        db.batch_execute(
            "CREATE TABLE bench_commits (id bigint PRIMARY KEY, body jsonb NOT NULL);
             CREATE TABLE bench_offers (ride_id uuid PRIMARY KEY, driver text NOT NULL);",
        )
        .await
        .expect("baseline tables");
    });
    let offers = {
        let _guard = runtime.enter();
        keep_reporting(api.clone(), tokens);
        Offers::watch(database.clone(), Duration::from_micros(500))
    };

    // Dispatch latency: one ride at a time, then the bare search and insert as many times.
    let mut waits: Vec<Duration> = runtime.block_on(async {
        let mut waits = Vec::with_capacity(dispatches);
        for _ in 0..dispatches {
            waits.push(ride(&api, &offers, &drivers, &riders[0]).await[2]);
        }
        waits
    });
    waits.sort_unstable();
    let positions: Vec<(f64, f64)> = (0..count as u64).map(near_pickup).collect();
    let radius = radii.first().copied().unwrap_or(1_000);
    let bare = runtime.block_on(bare_dispatch(&db, &positions, radius, candidates, dispatches));

    println!("{count} drivers online, dispatch radius {radius} m, {candidates} candidates");
    println!();
    println!("{:<46} {:>9} {:>9}", "dispatch: request answered -> offer written", "p50 ms", "p99 ms");
    println!(
        "{:<46} {:>9.2} {:>9.2}",
        "service, one ride at a time",
        ms(percentile(&waits, 0.5)),
        ms(percentile(&waits, 0.99))
    );
    println!(
        "{:<46} {:>9.2} {:>9.2}",
        "bare GEOSEARCH + one INSERT",
        ms(percentile(&bare, 0.5)),
        ms(percentile(&bare, 0.99))
    );
    println!(
        "dispatch p99, service / bare: {:.1} (one ride at a time)",
        percentile(&waits, 0.99).as_secs_f64() / percentile(&bare, 0.99).as_secs_f64().max(1e-9)
    );

    // Lifecycle throughput: alternating rounds of the service and of pgbench.
    let (mut service, mut commits) = (Vec::new(), Vec::new());
    let (mut rides_done, mut xids, mut loaded) = (0u64, 0i64, Vec::new());
    for round in 0..args.rounds {
        let before = runtime.block_on(xid(&db));
        let (done, elapsed, seen) = runtime.block_on(rides_for(&api, &offers, &drivers, &riders, args.seconds));
        let after = runtime.block_on(xid(&db));
        let rate = done as f64 / elapsed.as_secs_f64();
        let (tps, p99) = pgbench_commits(&database, args.seconds, args.connections);
        eprintln!(
            "round {}: {done} rides ({rate:.1}/s), {} write transactions; pgbench {tps:.0} commits/s (p99 {p99} us)",
            round + 1,
            after - before - 1
        );
        rides_done += done;
        xids += after - before - 1;
        loaded.extend(seen);
        service.push(rate);
        commits.push(tps);
    }
    let per_ride = xids as f64 / rides_done.max(1) as f64;
    let rate = service.iter().sum::<f64>() / service.len() as f64;
    let tps = commits.iter().sum::<f64>() / commits.len() as f64;
    let bare_rides = tps / per_ride;

    println!();
    println!("{:<46} {:>9} {:>9}", format!("each step, {} riders at once", args.connections), "p50 ms", "p99 ms");
    for (i, step) in STEPS.iter().enumerate() {
        let mut took: Vec<Duration> = loaded.iter().map(|t: &[Duration; 7]| t[i]).collect();
        took.sort_unstable();
        println!("{:<46} {:>9.2} {:>9.2}", step, ms(percentile(&took, 0.5)), ms(percentile(&took, 0.99)));
    }
    println!();
    println!("{:<46} {:>9}", "ride lifecycle", "per s");
    println!("{:<46} {:>9.1}", format!("service rides completed ({} riders)", args.connections), rate);
    println!("{:<46} {:>9.0}", format!("pgbench single-row commits ({} clients)", args.connections), tps);
    println!("{:<46} {:>9.1}", "write transactions per ride in the service", per_ride);
    println!("{:<46} {:>9.1}", "rides those bare commits allow", bare_rides);
    println!(
        "ratio service / bare: {:.2} (each round: {})",
        rate / bare_rides,
        service.iter().zip(&commits).map(|(s, c)| format!("{:.2}", s / (c / per_ride))).collect::<Vec<_>>().join(", ")
    );
}
