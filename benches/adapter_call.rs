#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark harness, not service code
//! Calls per second to a local OSRM stand-in at 64 concurrent calls, in the same run: through the
//! routing adapter's actor (ask, bulkhead, breaker, retry budget, timeouts, metrics, span) and
//! from a bare reqwest client with the same settings, both decoding the same JSON. Rounds
//! alternate between the two so that machine noise is shared; the ratio is adapter / bare.
//!
//! `cargo bench --bench adapter_call -- [--seconds N] [--rounds N] [--connections N]`

use std::{
    net::TcpListener,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use actix_web::{web, App, HttpResponse, HttpServer};
use beryl_core_api::{
    actors::{
        adapters,
        runtime::{Registry, Supervision},
    },
    adapters::{
        external::build_client,
        routing::{Point, Profile, RouteRequest},
    },
    config::Settings,
    telemetry::Metrics,
};

#[path = "support/load.rs"]
mod load;
#[path = "support/logs.rs"]
mod logs;

const ANSWER: &str = r#"{"code":"Ok","routes":[{"distance":4590.5,"duration":600.2,"weight":600.2,"weight_name":"routability","legs":[]}],"waypoints":[]}"#;

/// The provider stand-in: one actix-web worker on its own thread.
fn start_provider() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        actix_rt::System::new().block_on(async move {
            HttpServer::new(|| {
                App::new().default_service(web::to(|| async {
                    HttpResponse::Ok().content_type("application/json").body(ANSWER)
                }))
            })
            .workers(1)
            .listen(listener)
            .unwrap()
            .run()
            .await
            .unwrap()
        })
    });
    port
}

fn request() -> RouteRequest {
    RouteRequest {
        profile: Profile::Driving,
        points: vec![Point { lat: 48.8566, lon: 2.3522 }, Point { lat: 48.8606, lon: 2.3376 }],
    }
}

/// `concurrency` loops calling `call` for `seconds`; returns (calls/s, errors, p99 µs).
async fn measure<F, Fut>(concurrency: usize, seconds: u64, call: F) -> (f64, u64, u64)
where
    F: Fn() -> Fut + Clone + 'static,
    Fut: std::future::Future<Output = bool> + 'static,
{
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (stop, errors, call) = (stop.clone(), errors.clone(), call.clone());
        tasks.push(actix_rt::spawn(async move {
            let mut latencies = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let at = Instant::now();
                if !call().await {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
                latencies.push(at.elapsed().as_micros() as u64);
            }
            latencies
        }));
    }
    actix_rt::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_unstable();
    let p99 = all.get(all.len() * 99 / 100).copied().unwrap_or(0);
    (all.len() as f64 / elapsed, errors.load(Ordering::Relaxed), p99)
}

fn main() {
    let args = load::Args::parse();
    // Production telemetry: the `adapter.call` span is made for every call.
    let _logs = logs::production_logs();
    let port = start_provider();
    let base = format!("http://127.0.0.1:{port}");
    actix_rt::System::new().block_on(async move {
        let mut settings = Settings::default();
        let routing = &mut settings.adapters.routing;
        routing.url = Some(base.as_str().into());
        routing.max_concurrency = args.connections * 2;
        let metrics = Metrics::new().unwrap();
        let supervision =
            Supervision::new(Arc::new(Registry::default()), settings.supervision.clone(), metrics.clone());
        // No Redis: every call reaches the provider.
        let client =
            adapters::spawn(&supervision, &settings, None, &metrics, "unused".into(), Arc::default()).unwrap().routing;
        let bare = build_client(Duration::from_secs(1), args.connections * 2).unwrap();
        let url = format!(
            "{base}/route/v1/driving/{}",
            request().points.iter().map(|p| format!("{:.6},{:.6}", p.lon, p.lat)).collect::<Vec<_>>().join(";")
        );
        // Warm both pools.
        let _ = measure(args.connections, 1, {
            let client = client.clone();
            move || {
                let client = client.clone();
                async move { client.route(request()).await.is_ok() }
            }
        })
        .await;

        let (mut adapter_runs, mut bare_runs) = (Vec::new(), Vec::new());
        for round in 0..args.rounds {
            let adapter_call = {
                let client = client.clone();
                move || {
                    let client = client.clone();
                    async move {
                        client
                            .route(request())
                            .await
                            .is_ok_and(|r| r.provenance.source == beryl_core_api::adapters::external::Source::Provider)
                    }
                }
            };
            let bare_call = {
                let (bare, url) = (bare.clone(), url.clone());
                move || {
                    let (bare, url) = (bare.clone(), url.clone());
                    async move {
                        let Ok(response) = bare
                            .get(&url)
                            .query(&[("overview", "false"), ("alternatives", "false")])
                            .timeout(Duration::from_millis(1500))
                            .send()
                            .await
                        else {
                            return false;
                        };
                        match response.bytes().await {
                            Ok(body) => serde_json::from_slice::<serde_json::Value>(&body).is_ok(),
                            Err(_) => false,
                        }
                    }
                }
            };
            // Alternate which goes first.
            if round % 2 == 0 {
                adapter_runs.push(measure(args.connections, args.seconds, adapter_call).await);
                bare_runs.push(measure(args.connections, args.seconds, bare_call).await);
            } else {
                bare_runs.push(measure(args.connections, args.seconds, bare_call).await);
                adapter_runs.push(measure(args.connections, args.seconds, adapter_call).await);
            }
        }
        let total = |runs: &[(f64, u64, u64)]| runs.iter().map(|r| r.0).sum::<f64>() / runs.len() as f64;
        let errors = |runs: &[(f64, u64, u64)]| runs.iter().map(|r| r.1).sum::<u64>();
        let p99 = |runs: &[(f64, u64, u64)]| runs.iter().map(|r| r.2).max().unwrap_or(0);
        let (a, b) = (total(&adapter_runs), total(&bare_runs));
        println!(
            "{} concurrent calls, {} rounds of {} s, provider stand-in on one thread",
            args.connections, args.rounds, args.seconds
        );
        println!("{:<28} {:>10} {:>10} {:>8}", "", "calls/s", "p99 µs", "errors");
        println!("{:<28} {:>10.0} {:>10} {:>8}", "bare reqwest", b, p99(&bare_runs), errors(&bare_runs));
        println!(
            "{:<28} {:>10.0} {:>10} {:>8}",
            "routing adapter (actor)",
            a,
            p99(&adapter_runs),
            errors(&adapter_runs)
        );
        println!("ratio adapter / bare: {:.3}", a / b);
        supervision.halt();
    });
}
