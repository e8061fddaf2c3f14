#![allow(dead_code)] // shared by several benchmarks, each using a part
//! A small closed-loop HTTP/1.1 load generator: N keep-alive connections, each sending the next
//! request when the previous answer arrived; throughput and latency percentiles per route.
//! Routes are measured in alternating rounds so that machine noise spreads over all of them.

use std::time::{Duration, Instant};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

#[derive(Clone)]
pub struct Args {
    pub seconds: u64,
    pub rounds: usize,
    pub connections: usize,
}

impl Args {
    pub fn parse() -> Self {
        let mut args = Args { seconds: 3, rounds: 3, connections: 64 };
        let argv: Vec<String> = std::env::args().collect();
        let mut i = 1;
        while i < argv.len() {
            let value = argv.get(i + 1).and_then(|v| v.parse::<u64>().ok());
            match (argv[i].as_str(), value) {
                ("--seconds", Some(v)) => args.seconds = v,
                ("--rounds", Some(v)) => args.rounds = v as usize,
                ("--connections", Some(v)) => args.connections = v as usize,
                _ => {
                    i += 1;
                    continue;
                }
            }
            i += 2;
        }
        args
    }
}

pub struct RouteResult {
    pub name: &'static str,
    pub rps: f64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub errors: u64,
}

struct Sample {
    requests: u64,
    errors: u64,
    latencies: Vec<u32>,
    elapsed: Duration,
}

/// Builds the n-th request of connection c, for targets whose requests differ.
pub type MakeRequest = std::sync::Arc<dyn Fn(usize, u64) -> Vec<u8> + Send + Sync>;

/// One route to load: a name, and the request line and headers sent for it.
#[derive(Clone)]
pub struct Target {
    pub name: &'static str,
    pub method: &'static str,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub make: Option<MakeRequest>,
}

impl Target {
    pub fn get(name: &'static str, path: &str) -> Self {
        Target { name, method: "GET", path: path.into(), headers: Vec::new(), make: None }
    }

    /// A target whose every request is built by `make(connection, n)`.
    pub fn dynamic(name: &'static str, make: MakeRequest) -> Self {
        Target { name, method: "GET", path: String::new(), headers: Vec::new(), make: Some(make) }
    }

    /// Raw HTTP/1.1 bytes of a request.
    pub fn raw(method: &str, path: &str, headers: &[(&str, String)], body: &str) -> Vec<u8> {
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\n", body.len());
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        head.push_str(body);
        head.into_bytes()
    }

    fn request(&self) -> Vec<u8> {
        let mut head = format!("{} {} HTTP/1.1\r\nHost: 127.0.0.1\r\n", self.method, self.path);
        for (k, v) in &self.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        if self.method != "GET" {
            head.push_str("Content-Length: 0\r\n");
        }
        head.push_str("\r\n");
        head.into_bytes()
    }
}

async fn connection(
    port: u16,
    request: Vec<u8>,
    make: Option<(MakeRequest, usize)>,
    until: Instant,
) -> (u64, u64, Vec<u32>) {
    let mut latencies = Vec::with_capacity(64 * 1024);
    let (mut ok, mut errors) = (0u64, 0u64);
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)).await else { return (0, 1, latencies) };
    let _ = stream.set_nodelay(true);
    let mut buf = vec![0u8; 8192];
    let mut n = 0u64;
    while Instant::now() < until {
        let built;
        let request = match &make {
            Some((make, conn)) => {
                built = make(*conn, n);
                &built
            }
            None => &request,
        };
        n += 1;
        let start = Instant::now();
        if stream.write_all(request).await.is_err() {
            errors += 1;
            break;
        }
        let mut filled = 0;
        let complete = loop {
            // Answers larger than the buffer grow it.
            if filled == buf.len() {
                buf.resize(buf.len() * 2, 0);
            }
            let Ok(n) = stream.read(&mut buf[filled..]).await else { break false };
            if n == 0 {
                break false;
            }
            filled += n;
            if let Some(end) = find(&buf[..filled], b"\r\n\r\n") {
                let head = std::str::from_utf8(&buf[..end]).unwrap_or("");
                let length = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                    })
                    .unwrap_or(0);
                if filled >= end + 4 + length {
                    break head.starts_with("HTTP/1.1 2");
                }
            }
        };
        if complete {
            ok += 1;
            latencies.push(start.elapsed().as_micros().min(u32::MAX as u128) as u32);
        } else {
            errors += 1;
            break;
        }
    }
    (ok, errors, latencies)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn measure(port: u16, target: &Target, args: &Args, seconds: u64) -> Sample {
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("client runtime");
    runtime.block_on(async {
        let start = Instant::now();
        let until = start + Duration::from_secs(seconds);
        let tasks: Vec<_> = (0..args.connections)
            .map(|c| {
                let make = target.make.clone().map(|m| (m, c));
                tokio::spawn(connection(port, target.request(), make, until))
            })
            .collect();
        let mut sample = Sample { requests: 0, errors: 0, latencies: Vec::new(), elapsed: Duration::ZERO };
        for t in tasks {
            if let Ok((ok, errors, lat)) = t.await {
                sample.requests += ok;
                sample.errors += errors;
                sample.latencies.extend(lat);
            }
        }
        sample.elapsed = start.elapsed();
        sample
    })
}

fn percentile(sorted: &[u32], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx] as u64
}

/// Warm every route up, then measure each for `rounds` alternating rounds; per route the
/// rounds are pooled (total requests over total time; latencies merged).
pub fn run_rounds(port: u16, routes: &[Target], args: &Args) -> Vec<RouteResult> {
    for target in routes {
        measure(port, target, args, 1);
    }
    let mut pooled: Vec<Sample> = routes
        .iter()
        .map(|_| Sample { requests: 0, errors: 0, latencies: Vec::new(), elapsed: Duration::ZERO })
        .collect();
    for round in 0..args.rounds {
        for (i, target) in routes.iter().enumerate() {
            let s = measure(port, target, args, args.seconds);
            eprintln!(
                "round {} {:<26} {:>9.0} req/s",
                round + 1,
                target.name,
                s.requests as f64 / s.elapsed.as_secs_f64()
            );
            let p = &mut pooled[i];
            p.requests += s.requests;
            p.errors += s.errors;
            p.elapsed += s.elapsed;
            p.latencies.extend(s.latencies);
        }
    }
    routes
        .iter()
        .zip(pooled)
        .map(|(target, mut s)| {
            s.latencies.sort_unstable();
            RouteResult {
                name: target.name,
                rps: s.requests as f64 / s.elapsed.as_secs_f64(),
                p50_us: percentile(&s.latencies, 0.50),
                p99_us: percentile(&s.latencies, 0.99),
                errors: s.errors,
            }
        })
        .collect()
}

pub fn print_table(results: &[RouteResult], baseline: &str) {
    let base = results.iter().find(|r| r.name == baseline).map(|r| r.rps).unwrap_or(1.0);
    println!("{:<26} {:>11} {:>9} {:>9} {:>7} {:>8}", "route", "req/s", "p50 us", "p99 us", "errors", "vs base");
    for r in results {
        println!(
            "{:<26} {:>11.0} {:>9} {:>9} {:>7} {:>8.2}",
            r.name,
            r.rps,
            r.p50_us,
            r.p99_us,
            r.errors,
            r.rps / base
        );
    }
}

async fn fixed_json(body: actix_web::web::Data<String>) -> actix_web::HttpResponse {
    actix_web::HttpResponse::Ok().content_type("application/json").body(body.get_ref().clone())
}

/// A bare actix-web server, on a thread of its own with two workers, answering `GET path` with
/// the JSON `body` and doing nothing else: the baseline a route through the service is compared
/// with. Its port.
pub fn bare_json_server(path: &'static str, body: String) -> u16 {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_rt::System::new().block_on(async move {
            let body = actix_web::web::Data::new(body);
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            tx.send(listener.local_addr().unwrap().port()).unwrap();
            actix_web::HttpServer::new(move || {
                actix_web::App::new().app_data(body.clone()).route(path, actix_web::web::get().to(fixed_json))
            })
            .workers(2)
            .listen(listener)
            .unwrap()
            .run()
            .await
            .unwrap();
        });
    });
    rx.recv().unwrap()
}

/// `target` through the service on `port` and through the bare handler on `bare_port`, in
/// alternating rounds of `args.seconds`: each side's results, one per round.
pub fn versus_bare(port: u16, bare_port: u16, target: &Target, args: &Args) -> (Vec<RouteResult>, Vec<RouteResult>) {
    let one = Args { rounds: 1, ..args.clone() };
    let (mut service, mut bare) = (Vec::new(), Vec::new());
    for round in 0..args.rounds {
        let r = run_rounds(port, std::slice::from_ref(target), &one).remove(0);
        let b = run_rounds(bare_port, std::slice::from_ref(target), &one).remove(0);
        eprintln!("round {}: service {:.0}/s ({} errors), bare handler {:.0}/s", round + 1, r.rps, r.errors, b.rps);
        service.push(r);
        bare.push(b);
    }
    (service, bare)
}

/// The mean rate of rounds.
pub fn mean_rps(rounds: &[RouteResult]) -> f64 {
    rounds.iter().map(|r| r.rps).sum::<f64>() / rounds.len().max(1) as f64
}

/// The highest p99 of rounds, µs.
pub fn max_p99(rounds: &[RouteResult]) -> u64 {
    rounds.iter().map(|r| r.p99_us).max().unwrap_or(0)
}
