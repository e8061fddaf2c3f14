#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark harness, not service code
//! The event bus against its own baselines, on one broker, in one run:
//! - inbound: payment notifications consumed, applied to the ledger through the wallet actors and
//!   committed by a worker, against a bare rdkafka consumer reading the same topic (the median of
//!   three reads; the worker runs no relay: the deposits' events stay in the outbox; publication
//!   is measured below);
//! - outbox: a backlog of committed ledger events published by the relay, against a bare rdkafka
//!   producer sending as many records of the same size.
//!
//! `cargo bench --bench events -- [--events N] [--seconds N]` (defaults 50000 and 5)
//! Starts its own broker (tansu from `scripts/kafka.sh`) unless BENCH_KAFKA names one;
//! BENCH_DATABASE_URL names the PostgreSQL server (default postgres://postgres@127.0.0.1:5432/postgres).
//!
//! Each service (the API filling the outbox, the relay, the worker) runs in a process of its own,
//! started for its phase and killed at its end, so that nothing of an earlier phase runs during a
//! later one; the CPU time each process and PostgreSQL used during a measurement is printed.

use std::{
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use beryl_core_api::{
    config::{EventBusKind, Role, Settings},
    startup::Application,
};
use rdkafka::{
    admin::{AdminClient, AdminOptions, NewTopic, TopicReplication},
    client::DefaultClientContext,
    config::ClientConfig,
    consumer::Consumer,
    producer::{FutureProducer, FutureRecord},
    TopicPartitionList,
};
use serde_json::{json, Value};
use tokio_postgres::NoTls;

#[path = "support/settings.rs"]
mod bench_settings;
#[path = "support/cpu.rs"]
mod cpu;
#[path = "support/broker.rs"]
mod kafka;
#[path = "support/load.rs"]
mod load;
#[path = "support/ledger_setup.rs"]
mod setup;

const WALLETS: usize = 50;
const PARTITIONS: i32 = 6;
/// Every payment notification credits this much, so that the money credited counts the payments.
const PAYMENT: i64 = 7;

/// The service of one phase, in a process of its own (this benchmark started again with
/// BENCH_EVENTS_CHILD set); killed when dropped.
struct Service {
    child: Child,
    port: u16,
    token: String,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a service process is started with.
struct Phase<'a> {
    role: &'a str,
    database: &'a str,
    brokers: &'a str,
    ns: &'a str,
    inbound: bool,
    migrate: bool,
}

fn service(phase: &Phase<'_>) -> Service {
    use std::io::BufRead;
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env("BENCH_EVENTS_CHILD", phase.role)
        .env("BENCH_EVENTS_DATABASE", phase.database)
        .env("BENCH_EVENTS_BROKERS", phase.brokers)
        .env("BENCH_EVENTS_NS", phase.ns)
        .env("BENCH_EVENTS_INBOUND", if phase.inbound { "1" } else { "0" })
        .env("BENCH_EVENTS_MIGRATE", if phase.migrate { "1" } else { "0" })
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the service process");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let mut words = line.split_whitespace();
    assert_eq!(words.next(), Some("ready"), "the service process did not start: {line:?}");
    let port = words.next().unwrap().parse().unwrap();
    let token = words.next().unwrap_or_default().to_string();
    Service { child, port, token }
}

/// The service process: builds the application as its phase says, reports its port (and for the
/// API a token) on stdout, and serves until killed.
fn serve(role: &str) {
    let var = |name: &str| std::env::var(name).unwrap();
    let (database, brokers, ns) = (var("BENCH_EVENTS_DATABASE"), var("BENCH_EVENTS_BROKERS"), var("BENCH_EVENTS_NS"));
    let (inbound, migrate) = (var("BENCH_EVENTS_INBOUND") == "1", var("BENCH_EVENTS_MIGRATE") == "1");
    let role = match role {
        "api" => Role::Api,
        _ => Role::Worker,
    };
    actix_rt::System::new().block_on(async move {
        let mut settings = bench_settings::bench_settings();
        settings.database.max_connections = 16;
        settings.rate_limit.enabled = false;
        settings.database.migrate_on_start = migrate;
        kafka_settings(&mut settings, &database, &brokers, &ns, role, inbound);
        // The inbound worker leaves the deposits' own events in the outbox (written in the same
        // transaction as each deposit); their publication is what the relay phase measures.
        settings.event_bus.relay = !inbound;
        let app = Application::build(settings).await.expect("application");
        let scopes = ["fintech:read".to_string(), "fintech:write".to_string(), "fintech:settle".to_string()];
        let token = app.state().guard.keys.mint("bench", &scopes, chrono::Duration::hours(1)).unwrap();
        println!("ready {} {token}", app.port());
        app.run_until_stopped(std::future::pending()).await.expect("run");
    });
}

/// CPU used by the service, the broker and PostgreSQL between two readings.
struct Cpu {
    service: f64,
    broker: f64,
    postgres: f64,
}

impl Cpu {
    fn read(service: &Service, broker: &kafka::Broker) -> Self {
        Self {
            service: cpu::seconds(service.child.id()),
            broker: broker.pid().map(cpu::seconds).unwrap_or(0.0),
            postgres: cpu::seconds_of("postgres"),
        }
    }

    /// Share of one core each used per second of `elapsed` since `before`.
    fn since(&self, before: &Self, elapsed: f64) -> String {
        let share = |a: f64, b: f64| (a - b) / elapsed;
        format!(
            "service {:.2}, broker {:.2}, postgres {:.2} cores",
            share(self.service, before.service),
            share(self.broker, before.broker),
            share(self.postgres, before.postgres)
        )
    }
}

fn kafka_settings(s: &mut Settings, database: &str, brokers: &str, ns: &str, role: Role, inbound: bool) {
    s.database.url = Some(database.into());
    s.server.role = role;
    s.event_bus.kind = Some(EventBusKind::Kafka);
    s.event_bus.kafka_bootstrap_servers = Some(brokers.into());
    s.event_bus.events_topic = format!("{ns}.{{domain}}.events");
    s.event_bus.inbound_topics = if inbound { vec![format!("{ns}.payments")] } else { vec![] };
    s.event_bus.consumer_group = format!("{ns}.workers");
    s.event_bus.create_topic_partitions = PARTITIONS;
    // `event_bus.fetch_wait_max_ms` stays at the service's default (100 ms). Once the consumer has
    // fetched the whole backlog it keeps asking for more while the worker applies it, and the
    // dev broker answers such a waiting fetch by querying every partition once per wait period:
    // at 10 ms that would cost it a third of a core.
}

fn arg(name: &str, default: u64) -> u64 {
    let argv: Vec<String> = std::env::args().collect();
    argv.iter().position(|a| a == name).and_then(|i| argv.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn payment(n: usize, wallet: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "event_id": format!("bench-{n}"), "type": "payment.settled", "schema_version": 1,
        "wallet_id": wallet, "amount": PAYMENT, "currency": "EUR", "reference": format!("psp-{n}")
    }))
    .unwrap()
}

/// Produce `records` with a bare producer configured as the relay's (acks=all, idempotent);
/// returns records/s.
async fn bare_produce(brokers: &str, topic: &str, records: &[(String, Vec<u8>)]) -> f64 {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", "2")
        .set("message.timeout.ms", "0")
        .create()
        .unwrap();
    let start = Instant::now();
    let mut waits = Vec::with_capacity(records.len());
    for (key, payload) in records {
        loop {
            match producer.send_result(FutureRecord::to(topic).key(key).payload(payload)) {
                Ok(delivery) => {
                    waits.push(delivery);
                    break;
                }
                Err((_, _)) => tokio::time::sleep(Duration::from_millis(2)).await,
            }
        }
    }
    for w in futures::future::join_all(waits).await {
        w.unwrap().unwrap();
    }
    records.len() as f64 / start.elapsed().as_secs_f64()
}

/// Poll `sql` (one number) on `db` until it reaches `n`, at most `deadline`; returns it.
async fn balance_at_least(db: &tokio_postgres::Client, sql: &str, n: i64, deadline: Duration) -> i64 {
    let waiting = Instant::now();
    loop {
        let value = db.query_one(sql, &[]).await.unwrap().get::<_, i64>(0);
        if value >= n {
            return value;
        }
        assert!(waiting.elapsed() < deadline, "the worker credited {value} of {n} in {deadline:?}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Sum of the offsets `group` committed on `topic`.
fn committed(brokers: &str, topic: &str, group: &str) -> i64 {
    let consumer: rdkafka::consumer::BaseConsumer =
        ClientConfig::new().set("bootstrap.servers", brokers).set("group.id", group).create().unwrap();
    let mut list = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        list.add_partition(topic, p);
    }
    consumer
        .committed_offsets(list, Duration::from_secs(5))
        .map(|l| l.elements().iter().filter_map(|e| e.offset().to_raw()).filter(|o| *o > 0).sum())
        .unwrap_or(0)
}

async fn scalar(database: &str, sql: &str) -> i64 {
    let (db, connection) = tokio_postgres::connect(database, NoTls).await.unwrap();
    tokio::spawn(connection);
    db.query_one(sql, &[]).await.unwrap().get(0)
}

fn main() {
    if let Ok(role) = std::env::var("BENCH_EVENTS_CHILD") {
        return serve(&role);
    }
    let events = arg("--events", 50_000) as usize;
    let seconds = arg("--seconds", 5);
    let _ = tracing_subscriber::fmt().with_max_level(tracing::Level::WARN).with_writer(std::io::sink).try_init();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let broker = kafka::broker();
    let brokers = broker.address.clone();
    let database = runtime.block_on(setup::create_database());
    let ns = format!("bench{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let (inbound, events_topic) = (format!("{ns}.payments"), format!("{ns}.fintech.events"));
    runtime.block_on(create_topics(&brokers, &[events_topic.clone(), format!("{ns}.bare")]));

    // The API alone: wallets, then transfers whose events wait in the outbox (no relay runs).
    let phase =
        |role, brokers, inbound, migrate| Phase { role, database: &database, brokers, ns: &ns, inbound, migrate };
    let api = service(&phase("api", &brokers, false, true));
    let base = format!("http://127.0.0.1:{}", api.port);
    let wallets = runtime.block_on(setup::open_funded_wallets(&base, &api.token, WALLETS, 1_000_000_000_000));
    let w = Arc::new(wallets.clone());
    let t = api.token.clone();
    // A key of its own for every request (the load generator restarts its numbering after the
    // warm-up, and a repeated key would be answered from the kept response).
    let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let transfer = load::Target::dynamic(
        "transfers",
        Arc::new(move |conn, _| {
            let n = sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let from = (conn * 7 + n as usize) % WALLETS;
            let to = (from + 1 + (n as usize % (WALLETS - 1))) % WALLETS;
            let body = json!({"from": w[from], "to": w[to], "amount": 1 + n % 500}).to_string();
            let headers = [
                ("Authorization", format!("Bearer {t}")),
                ("Content-Type", "application/json".into()),
                ("Idempotency-Key", format!("bench-transfer-{n}")),
            ];
            load::Target::raw("POST", "/api/v1/fintech/transfers", &headers, &body)
        }),
    );
    eprintln!("filling the outbox for {seconds} s");
    load::run_rounds(api.port, &[transfer], &load::Args { seconds, rounds: 1, connections: 64 });
    drop(api);
    let backlog =
        runtime.block_on(scalar(&database, "SELECT COALESCE(SUM(event_count), 0)::int8 FROM outbox")) as usize;
    let sample: Value = runtime.block_on(async {
        scalar_json(&database, "SELECT convert_from(events, 'UTF8')::jsonb->0 FROM outbox LIMIT 1").await
    });
    let event_size = serde_json::to_vec(&sample).unwrap().len();

    // Baseline producer: as many records of the same size, keyed over the same wallets.
    let records: Vec<(String, Vec<u8>)> =
        (0..backlog).map(|i| (wallets[i % WALLETS].clone(), vec![b'x'; event_size])).collect();
    eprintln!("bare producer: {backlog} records of {event_size} bytes");
    let bare_publish = runtime.block_on(bare_produce(&brokers, &format!("{ns}.bare"), &records));
    eprintln!("bare producer: {bare_publish:.0} records/s");

    // The relay drains the backlog (a worker that consumes nothing).
    eprintln!("relay: publishing {backlog} events");
    let started = Instant::now();
    let relay = service(&phase("worker", &brokers, false, false));
    let cpu_before = Cpu::read(&relay, &broker);
    runtime.block_on(async {
        let (db, connection) = tokio_postgres::connect(&database, NoTls).await.unwrap();
        tokio::spawn(connection);
        while db.query_one("SELECT EXISTS (SELECT 1 FROM outbox)", &[]).await.unwrap().get::<_, bool>(0) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    let relay_seconds = started.elapsed().as_secs_f64();
    let relay_cpu = Cpu::read(&relay, &broker).since(&cpu_before, relay_seconds);
    drop(relay);
    let relay_publish = backlog as f64 / relay_seconds;
    eprintln!("relay: {relay_publish:.0} events/s");

    // Inbound, on a broker of its own (a fresh one: tansu's fetches slow down as its SQLite
    // store grows, which would favour whichever side reads first): notifications produced once,
    // read by a bare consumer, then applied by a worker.
    let inbound_broker = kafka::broker();
    let brokers = inbound_broker.address.clone();
    runtime.block_on(create_topics(&brokers, &[inbound.clone(), format!("{inbound}.dlq"), events_topic.clone()]));
    let notifications: Vec<(String, Vec<u8>)> = (0..events)
        .map(|i| {
            let wallet = wallets[i % WALLETS].clone();
            let body = payment(i, &wallet);
            (wallet, body)
        })
        .collect();
    let credited = PAYMENT * events as i64;
    eprintln!("producing {events} payment notifications");
    runtime.block_on(bare_produce(&brokers, &inbound, &notifications));
    // The bare consumer reads the topic three times (a group of its own each time): a read of
    // 50,000 records lasts about a second here and its rate swings from run to run, so the
    // baseline is the median.
    let mut bare_runs: Vec<f64> = (0..3)
        .map(|i| {
            let rate =
                runtime.block_on(kafka::bare_consume(&brokers, &inbound, &format!("{ns}.bare-group-{i}"), events));
            eprintln!("bare consumer, read {}: {rate:.0} records/s", i + 1);
            rate
        })
        .collect();
    bare_runs.sort_by(f64::total_cmp);
    let bare_consume_rate = bare_runs[1];

    eprintln!("worker: consume, apply, commit");
    // As for the bare consumer, the clock starts with the first message (here: the first payment
    // in the ledger), not with joining the group, and stops when the last offset is committed.
    // Payments are seen in the sum of the wallets' balances (transfers leave it as it is), one
    // cheap query on one connection; the broker is asked for the group's offsets only once every
    // payment is in (a client made for each question, as a long-lived one answers late).
    let (db, connection) = runtime.block_on(tokio_postgres::connect(&database, NoTls)).unwrap();
    runtime.spawn(connection);
    let total = "SELECT COALESCE(SUM(balance), 0)::int8 FROM wallets";
    let funds = runtime.block_on(db.query_one(total, &[])).unwrap().get::<_, i64>(0);
    // References are sealed under their owners' keys: payments are told from the deposits made
    // before this phase by their count.
    let deposits = "SELECT count(*) FROM ledger_transactions WHERE kind = 'deposit'";
    let deposits_before = runtime.block_on(scalar(&database, deposits));
    let worker = service(&phase("worker", &brokers, true, false));
    let (started, cpu_before, first) = runtime.block_on(async {
        let first = balance_at_least(&db, total, funds + 1, Duration::from_secs(120)).await;
        (Instant::now(), Cpu::read(&worker, &inbound_broker), first)
    });
    runtime.block_on(balance_at_least(&db, total, funds + credited, Duration::from_secs(600)));
    let applied_seconds = started.elapsed().as_secs_f64();
    let group = format!("{ns}.workers");
    while committed(&brokers, &inbound, &group) < events as i64 {
        assert!(started.elapsed() < Duration::from_secs(600), "the worker did not commit");
        std::thread::sleep(Duration::from_millis(10));
    }
    let worker_seconds = started.elapsed().as_secs_f64();
    let worker_cpu = Cpu::read(&worker, &inbound_broker).since(&cpu_before, worker_seconds);
    let batch = runtime.block_on(mean_batch(worker.port));
    drop(worker);
    let before = ((first - funds) / PAYMENT) as usize;
    let worker_rate = (events - before) as f64 / worker_seconds;
    let applied_rate = (events - before) as f64 / applied_seconds;
    let applied = runtime.block_on(scalar(&database, deposits)) - deposits_before;
    let balance_after = runtime.block_on(db.query_one(total, &[])).unwrap().get::<_, i64>(0);

    println!("{:<44} {:>12}", "", "per second");
    println!("{:<44} {:>12.0}", "worker: consumed + applied + committed", worker_rate);
    println!("{:<44} {:>12.0}", "  (consumed + applied, before the last commit)", applied_rate);
    println!("{:<44} {:>12.0}", "bare rdkafka consumer, same topic (median)", bare_consume_rate);
    println!("{:<44} {:>12.0}", "outbox relay: published + acknowledged", relay_publish);
    println!("{:<44} {:>12.0}", "bare rdkafka producer, same size and keys", bare_publish);
    println!();
    println!("worker / bare consumer : {:.2}  (target >= 0.50)", worker_rate / bare_consume_rate);
    println!("relay / bare producer  : {:.2}", relay_publish / bare_publish);
    println!(
        "bare consumer reads     : {:.0}, {:.0}, {:.0} per second (worker / fastest: {:.2})",
        bare_runs[0],
        bare_runs[1],
        bare_runs[2],
        worker_rate / bare_runs[2]
    );
    println!("payments applied       : {applied} of {events} (each once: {})", balance_after == funds + credited);
    println!("outbox events published: {backlog} ({event_size} bytes each)");
    println!("CPU while the worker ran: {worker_cpu}; mean ledger batch {batch:.0} commands");
    println!("CPU while the relay ran : {relay_cpu}");
}

/// Mean size of the ledger writer's batches, from the service's metrics.
async fn mean_batch(port: u16) -> f64 {
    let text = reqwest::get(format!("http://127.0.0.1:{port}/metrics")).await.unwrap().text().await.unwrap();
    let value = |name: &str| text.lines().find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok()).unwrap_or(0.0);
    value("beryl_ledger_batch_size_sum") / value("beryl_ledger_batch_size_count").max(1.0)
}

async fn create_topics(brokers: &str, topics: &[String]) {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", brokers).create().unwrap();
    let new: Vec<NewTopic<'_>> =
        topics.iter().map(|t| NewTopic::new(t, PARTITIONS, TopicReplication::Fixed(1))).collect();
    admin.create_topics(&new, &AdminOptions::new()).await.unwrap();
}

async fn scalar_json(database: &str, sql: &str) -> Value {
    let (db, connection) = tokio_postgres::connect(database, NoTls).await.unwrap();
    tokio::spawn(connection);
    db.query_one(sql, &[]).await.unwrap().get(0)
}
