#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark harness, not service code
//! Start to ready and idle resident size of the service binary itself, embedded mode (no
//! database, Redis or broker configured): `beryl-core-api serve` started `--runs` times, each
//! timed from the spawn to the first 200 of `GET /health/ready`, then left idle `--settle`
//! seconds, nothing asked of it, before its `/proc/<pid>/status` is read. The figures are the
//! process's own, not a benchmark harness's around it.
//!
//! `cargo bench --bench startup -- [--runs N] [--settle SECONDS] [--bin PATH]`; `--bin` measures
//! another build of the binary instead of this one's (the release profile's): the one the image
//! ships (`cargo build --profile dist`, then `--bin target/dist/beryl-core-api`), or one copied
//! aside from an earlier commit.

use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

fn arg(name: &str) -> Option<u64> {
    let argv: Vec<String> = std::env::args().collect();
    argv.iter().position(|a| a == name).and_then(|i| argv.get(i + 1)).and_then(|v| v.parse().ok())
}

/// A loopback port nothing listens on now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// Whether `GET /health/ready` answers 200.
fn ready(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let request = format!("GET /health/ready HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 200")
}

/// The `kB` figures of `/proc/<pid>/status` named in `keys`, and its thread count.
fn status(pid: u32, keys: &[&str]) -> (Vec<u64>, u64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let field = |key: &str| -> u64 {
        let line = text.lines().find(|l| l.starts_with(&format!("{key}:"))).expect("field");
        line.split_whitespace().nth(1).expect("value").parse().expect("number")
    };
    (keys.iter().map(|k| field(k)).collect(), field("Threads"))
}

struct Run {
    ready_ms: f64,
    rss_kib: u64,
    anon_kib: u64,
    file_kib: u64,
    threads: u64,
}

fn run(bin: &str, settle: Duration) -> Run {
    let port = free_port();
    let mut command = Command::new(bin);
    command.arg("serve").env("PORT", port.to_string()).env("HOST", "127.0.0.1").env("ENVIRONMENT", "development");
    for var in ["DATABASE_URL", "REDIS_URL", "KAFKA_BOOTSTRAP_SERVERS", "EVENT_BUS", "TRACING_ENABLED", "AUDIT_ENABLED"]
    {
        command.env_remove(var);
    }
    command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    let started = Instant::now();
    let mut child = command.spawn().expect("spawn the service");
    while !ready(port) {
        assert!(child.try_wait().expect("wait").is_none(), "the service exited before it was ready");
        assert!(started.elapsed() < Duration::from_secs(30), "not ready within 30 s");
        std::thread::sleep(Duration::from_micros(500));
    }
    let ready_ms = started.elapsed().as_secs_f64() * 1000.0;
    std::thread::sleep(settle);
    let (kib, threads) = status(child.id(), &["VmRSS", "RssAnon", "RssFile"]);
    child.kill().expect("kill");
    child.wait().expect("reap");
    Run { ready_ms, rss_kib: kib[0], anon_kib: kib[1], file_kib: kib[2], threads }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let runs = arg("--runs").unwrap_or(5).max(1);
    let settle = Duration::from_secs(arg("--settle").unwrap_or(3));
    let argv: Vec<String> = std::env::args().collect();
    let bin = argv
        .iter()
        .position(|a| a == "--bin")
        .and_then(|i| argv.get(i + 1).cloned())
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_beryl-core-api").to_string());
    let mib = |kib: u64| kib as f64 / 1024.0;
    println!("`{bin} serve`, embedded mode, {runs} processes one after the other, each idle {settle:?}");
    println!();
    println!("| run | start to ready | VmRSS | anonymous | file-backed | threads |");
    println!("|---|---|---|---|---|---|");
    let all: Vec<Run> = (0..runs).map(|_| run(&bin, settle)).collect();
    for (i, r) in all.iter().enumerate() {
        println!(
            "| {} | {:.1} ms | {:.1} MiB | {:.1} MiB | {:.1} MiB | {} |",
            i + 1,
            r.ready_ms,
            mib(r.rss_kib),
            mib(r.anon_kib),
            mib(r.file_kib),
            r.threads
        );
    }
    println!();
    println!("start to ready, median : {:.1} ms", median(all.iter().map(|r| r.ready_ms).collect()));
    println!("idle RSS, median       : {:.1} MiB", median(all.iter().map(|r| mib(r.rss_kib)).collect()));
}
