#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark harness, not service code
//! Memory per live entity: the resident size of the service (embedded mode) idle, and after N
//! wallets were opened through the API, each leaving its wallet actor alive. Each figure comes
//! from a fresh process (this binary started again with `--child`). A second process opens the
//! same wallets with at most 100 wallet actors alive, so that the difference between the two is
//! what the live actors themselves hold (actor, mailbox, cached wallet, registry), apart from
//! the stored wallets, idempotency keys and journal that both keep.
//!
//! `cargo bench --bench memory -- [--wallets N]`

use std::{process::Command, sync::Arc, time::Duration};

use beryl_core_api::startup::Application;
use serde_json::json;

#[path = "support/settings.rs"]
mod bench_settings;

/// Requests in flight while opening wallets.
const CONCURRENCY: usize = 32;

/// Resident set size of this process, in KiB (`VmRSS` of /proc/self/status).
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("status");
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS");
    line.split_whitespace().nth(1).expect("size").parse().expect("kB")
}

fn arg(name: &str) -> Option<usize> {
    let argv: Vec<String> = std::env::args().collect();
    argv.iter().position(|a| a == name).and_then(|i| argv.get(i + 1)).and_then(|v| v.parse().ok())
}

/// In a process of its own: start the service, measure, open `wallets`, measure; prints
/// `idle_kib after_kib`.
fn child(max_live: usize, wallets: usize) {
    actix_rt::System::new().block_on(async move {
        let mut settings = bench_settings::bench_settings();
        assert!(settings.is_embedded(), "the memory benchmark measures the embedded mode");
        settings.rate_limit.enabled = false;
        settings.fintech.max_live_wallets = max_live;
        settings.fintech.wallet_idle_secs = 3600;
        let app = Application::build(settings).await.expect("application");
        let state = app.state();
        let token = state
            .guard
            .keys
            .mint("bench", &["fintech:read".into(), "fintech:write".into()], chrono::Duration::hours(1))
            .expect("token");
        let base = format!("http://127.0.0.1:{}", app.port());
        actix_rt::spawn(app.run_until_stopped(std::future::pending()));
        let client = reqwest::Client::new();
        // Warm up: connections, pools and the first wallet actor, then settle.
        open(&client, &base, &token, 0..CONCURRENCY).await;
        actix_rt::time::sleep(Duration::from_secs(2)).await;
        let idle = rss_kib();
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(CONCURRENCY));
        let workers: Vec<_> = (0..CONCURRENCY)
            .map(|_| {
                let (client, base, token, next) = (client.clone(), base.clone(), token.clone(), next.clone());
                actix_rt::spawn(async move {
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if i >= wallets + CONCURRENCY {
                            break;
                        }
                        open(&client, &base, &token, i..i + 1).await;
                    }
                })
            })
            .collect();
        for worker in workers {
            worker.await.expect("worker");
        }
        actix_rt::time::sleep(Duration::from_secs(2)).await;
        let after = rss_kib();
        println!("{idle} {after}");
    });
}

async fn open(client: &reqwest::Client, base: &str, token: &str, keys: std::ops::Range<usize>) {
    for i in keys {
        let res = client
            .post(format!("{base}/api/v1/fintech/wallets"))
            .bearer_auth(token)
            .header("Idempotency-Key", format!("open-{i}"))
            .json(&json!({"currency": "EUR"}))
            .send()
            .await
            .expect("open");
        assert_eq!(res.status(), 201, "{:?}", res.text().await);
    }
}

fn measure(max_live: usize, wallets: usize) -> (u64, u64) {
    let out = Command::new(std::env::current_exe().expect("exe"))
        .args(["--child", &max_live.to_string(), "--wallets", &wallets.to_string()])
        .output()
        .expect("child");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "child failed: {text}\n{}", String::from_utf8_lossy(&out.stderr));
    let figures: Vec<u64> =
        text.lines().last().expect("figures").split_whitespace().map(|f| f.parse().expect("number")).collect();
    (figures[0], figures[1])
}

fn main() {
    let wallets = arg("--wallets").unwrap_or(20_000);
    if let Some(max_live) = arg("--child") {
        return child(max_live, wallets);
    }
    let (idle, live_after) = measure(wallets * 2, wallets);
    let (capped_idle, capped_after) = measure(100, wallets);
    let mib = |kib: u64| kib as f64 / 1024.0;
    println!("{wallets} wallets opened through the API, embedded mode (VmRSS of each process)");
    println!();
    println!("| process | idle RSS | RSS after | per wallet |");
    println!("|---|---|---|---|");
    for (name, idle, after) in
        [("every wallet actor alive", idle, live_after), ("at most 100 wallet actors alive", capped_idle, capped_after)]
    {
        let per = after.saturating_sub(idle) as f64 * 1024.0 / wallets as f64;
        println!("| {name} | {:.1} MiB | {:.1} MiB | {per:.0} B |", mib(idle), mib(after));
    }
    let actors = live_after.saturating_sub(idle) as f64 - capped_after.saturating_sub(capped_idle) as f64;
    println!();
    println!(
        "memory per live wallet (RSS growth / wallets)          : {:.2} KB",
        live_after.saturating_sub(idle) as f64 * 1.024 / wallets as f64
    );
    println!("of which the live wallet actor (difference of the two) : {:.2} KB", actors * 1.024 / wallets as f64);
    println!("idle RSS, embedded                                      : {:.1} MiB", mib(idle));
}
