#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark harness, not service code
//! Social timelines against their own baselines, in one run:
//! - fan-out: a post by an author with `--followers` followers (10,000 by default, all with a
//!   cached home timeline), from the request to the moment it is in every follower's timeline
//!   (checked in Redis after the answer, which comes once the fan-out is done), against a bare
//!   Redis pipeline adding one member to as many sorted sets;
//! - `GET /api/v1/social/timeline` through the service (token, guard, domain actor, the cached
//!   timeline, the posts read back from PostgreSQL and opened), against a bare actix-web handler
//!   answering a body of the same size, in alternating rounds, rate and p99.
//!
//! `cargo bench --bench social -- [--followers N] [--posts N] [--seconds N] [--rounds N]
//! [--connections N]` (defaults 10000, 5, 3, 3, 64). BENCH_DATABASE_URL names the PostgreSQL
//! server, BENCH_REDIS_URL the Redis server (default redis://127.0.0.1:6379).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use beryl_core_api::{
    adapters::{migrate, postgres},
    config::DatabaseSettings,
    startup::Application,
};
use futures::StreamExt;
use serde_json::{json, Value};
use uuid::Uuid;

#[path = "support/settings.rs"]
mod bench_settings;
#[path = "support/load.rs"]
mod load;
#[path = "support/ledger_setup.rs"]
mod setup;

fn arg(name: &str, default: u64) -> u64 {
    let argv: Vec<String> = std::env::args().collect();
    argv.iter().position(|a| a == name).and_then(|i| argv.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn redis_url() -> String {
    std::env::var("BENCH_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// Send `requests` (method, path, token, body) 64 at a time; panics on an answer not 2xx.
async fn send_all(base: &str, requests: Vec<(reqwest::Method, String, String, Option<Value>)>) {
    let client = reqwest::Client::new();
    futures::stream::iter(requests)
        .map(|(method, path, token, body)| {
            let client = client.clone();
            let url = format!("{base}{path}");
            async move {
                let mut req = client.request(method, &url).bearer_auth(&token);
                if let Some(body) = body {
                    req = req.json(&body);
                }
                let res = req.send().await.unwrap();
                assert!(res.status().is_success(), "{url}: {}", res.status());
            }
        })
        .buffer_unordered(64)
        .collect::<Vec<()>>()
        .await;
}

/// Whether every key holds `member`.
async fn everywhere(conn: &mut redis::aio::MultiplexedConnection, keys: &[String], member: &str) -> bool {
    for chunk in keys.chunks(1000) {
        let mut pipe = redis::pipe();
        for key in chunk {
            pipe.zscore(key, member);
        }
        let scores: Vec<Option<f64>> = pipe.query_async(conn).await.unwrap();
        if scores.iter().any(Option::is_none) {
            return false;
        }
    }
    true
}

/// A bare Redis pipeline adding one member to each of `keys`: the time it takes.
async fn bare_fanout(conn: &mut redis::aio::MultiplexedConnection, keys: &[String]) -> Duration {
    let started = Instant::now();
    let member = Uuid::now_v7().to_string();
    for chunk in keys.chunks(500) {
        let mut pipe = redis::pipe();
        for key in chunk {
            pipe.zadd(key, &member, 1).ignore();
        }
        let _: () = pipe.query_async(conn).await.unwrap();
    }
    started.elapsed()
}

fn main() {
    let followers = arg("--followers", 10_000) as usize;
    let posts = arg("--posts", 5) as usize;
    let args = load::Args::parse();
    let _ = tracing_subscriber::fmt().with_max_level(tracing::Level::WARN).with_writer(std::io::sink).try_init();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let database = runtime.block_on(setup::create_database());
    runtime.block_on(async {
        let db = DatabaseSettings { url: Some(database.as_str().into()), ..DatabaseSettings::default() };
        let config = postgres::connect_config(&db).unwrap().unwrap();
        migrate::run(&mut postgres::connect(&config).await.unwrap()).await.unwrap();
    });
    let prefix = format!("bench{}:", &Uuid::new_v4().simple().to_string()[..8]);
    let (tx, rx) = std::sync::mpsc::channel();
    let (app_db, app_prefix) = (database.clone(), prefix.clone());
    std::thread::spawn(move || {
        actix_rt::System::new().block_on(async move {
            let mut s = bench_settings::bench_settings();
            s.database.url = Some(app_db.as_str().into());
            s.database.max_connections = 16;
            s.redis.url = Some(redis_url().as_str().into());
            s.redis.key_prefix = app_prefix;
            s.rate_limit.enabled = false;
            s.server.workers = 2;
            let app = Application::build(s).await.expect("application");
            tx.send((app.port(), app.state().guard.keys.clone())).unwrap();
            app.run_until_stopped(std::future::pending()).await.expect("run");
        });
    });
    let (port, keys) = rx.recv().unwrap();
    let base = format!("http://127.0.0.1:{port}/api/v1/social");
    let scopes = ["social:read".to_string(), "social:write".to_string()];
    let token = |who: &str| keys.mint(who, &scopes, chrono::Duration::hours(2)).unwrap();
    let star = token("bench-star");
    let readers: Arc<Vec<String>> = Arc::new((0..followers).map(|i| token(&format!("bench-reader-{i}"))).collect());
    let authors: Vec<String> = (0..20).map(|i| token(&format!("bench-author-{i}"))).collect();

    // Profiles, follows (every reader follows the star and two of the 20 authors), and posts.
    let made = Instant::now();
    runtime.block_on(async {
        let mut requests = vec![(reqwest::Method::PUT, "/me/profile".to_owned(), star.clone(), Some(json!({"handle": "star", "display_name": "Star", "visibility": "public"})))];
        for (i, t) in authors.iter().enumerate() {
            requests.push((reqwest::Method::PUT, "/me/profile".into(), t.clone(), Some(json!({"handle": format!("author_{i}"), "display_name": format!("Author {i}"), "visibility": "public"}))));
        }
        for (i, t) in readers.iter().enumerate() {
            requests.push((reqwest::Method::PUT, "/me/profile".into(), t.clone(), Some(json!({"handle": format!("reader_{i}"), "display_name": format!("Reader {i}"), "visibility": "public"}))));
        }
        send_all(&base, requests).await;
        let mut follows = Vec::new();
        for (i, t) in readers.iter().enumerate() {
            for target in ["star".to_owned(), format!("author_{}", i % 20), format!("author_{}", (i * 7 + 3) % 20)] {
                follows.push((reqwest::Method::PUT, format!("/profiles/{target}/follow"), t.clone(), None));
            }
        }
        send_all(&base, follows).await;
        let mut writes = Vec::new();
        for round in 0..10 {
            for (i, t) in authors.iter().enumerate() {
                writes.push((reqwest::Method::POST, "/posts".to_owned(), t.clone(), Some(json!({"text": format!("author {i}, post {round}: cycled to work today")}))));
            }
        }
        send_all(&base, writes).await;
        // Every reader's timeline read once: cached, so that the star's posts fan out to it.
        let reads = readers.iter().map(|t| (reqwest::Method::GET, "/timeline".to_owned(), t.clone(), None)).collect();
        send_all(&base, reads).await;
    });
    eprintln!(
        "{followers} readers, their follows, 200 posts and {followers} cached timelines in {:.1}s",
        made.elapsed().as_secs_f64()
    );

    // Fan-out: the star posts; the post must then be in every reader's timeline.
    let redis = redis::Client::open(redis_url()).unwrap();
    let (fanout, bare) = runtime.block_on(async {
        let mut conn = redis.get_multiplexed_async_connection().await.unwrap();
        let client = reqwest::Client::new();
        let mut keys = Vec::with_capacity(followers);
        for (i, t) in readers.iter().enumerate() {
            // The key of each reader's timeline: its profile id, read once.
            if i % 2_000 == 0 {
                eprintln!("reading profile ids: {i}");
            }
            let profile: Value =
                client.get(format!("{base}/me/profile")).bearer_auth(t).send().await.unwrap().json().await.unwrap();
            keys.push(format!("{prefix}social:tl:{}", profile["id"].as_str().unwrap()));
        }
        let mut fanout = Vec::new();
        let mut bare = Vec::new();
        for n in 0..posts {
            let started = Instant::now();
            let res = client
                .post(format!("{base}/posts"))
                .bearer_auth(&star)
                .json(&json!({"text": format!("star post {n}")}))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 201);
            let post: Value = res.json().await.unwrap();
            let id = post["id"].as_str().unwrap().to_owned();
            while !everywhere(&mut conn, &keys, &id).await {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            fanout.push(started.elapsed());
            bare.push(bare_fanout(&mut conn, &keys).await);
        }
        (fanout, bare)
    });
    let ms = |d: &Duration| d.as_secs_f64() * 1000.0;
    let median = |v: &[Duration]| {
        let mut v = v.to_vec();
        v.sort();
        v[v.len() / 2]
    };
    println!("{:<60} {:>10}", "", "ms");
    for (i, (f, b)) in fanout.iter().zip(&bare).enumerate() {
        println!(
            "post {}: in every one of {followers} timelines after {:.1} ms; bare pipeline {:.1} ms",
            i + 1,
            ms(f),
            ms(b)
        );
    }
    println!(
        "{:<60} {:>10.1}",
        format!("post by an author with {followers} followers, until in every timeline (median)"),
        ms(&median(&fanout))
    );
    println!("{:<60} {:>10.1}", "bare Redis pipeline, one ZADD per timeline (median)", ms(&median(&bare)));
    println!("ratio bare pipeline / service fan-out: {:.2}", ms(&median(&bare)) / ms(&median(&fanout)));

    // GET /social/timeline for the readers in turn, against the bare handler.
    let sample = runtime.block_on(async {
        let res = reqwest::Client::new().get(format!("{base}/timeline")).bearer_auth(&readers[0]).send().await.unwrap();
        assert_eq!(res.status(), 200);
        res.text().await.unwrap()
    });
    let bare_port = load::bare_json_server("/api/v1/social/timeline", sample.clone());
    let make: load::MakeRequest = {
        let readers = readers.clone();
        Arc::new(move |c: usize, n: u64| {
            let token = &readers[(c * 7919 + n as usize) % readers.len()];
            load::Target::raw("GET", "/api/v1/social/timeline", &[("Authorization", format!("Bearer {token}"))], "")
        })
    };
    let target = load::Target::dynamic("GET /social/timeline", make);
    let (svc, bare_http) = load::versus_bare(port, bare_port, &target, &args);
    let (mean, p99) = (load::mean_rps, load::max_p99);
    let errors: u64 = svc.iter().map(|r| r.errors).sum();
    println!("{:<60} {:>10} {:>9}", "", "per s", "p99 us");
    println!(
        "{:<60} {:>10.0} {:>9}",
        "GET /social/timeline through the service (20 posts a page)",
        mean(&svc),
        p99(&svc)
    );
    println!("{:<60} {:>10.0} {:>9}", "bare handler, same body", mean(&bare_http), p99(&bare_http));
    println!("errors (non-2xx): {errors}; body {} bytes", sample.len());
    println!("ratio service / bare handler: {:.2}", mean(&svc) / mean(&bare_http));
}
