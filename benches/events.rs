#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark harness, not service code
//! The event bus against its own baselines, on one broker, in one run:
//! - inbound: payment notifications consumed, applied to the ledger through the wallet actors and
//!   committed by a worker, against a bare rdkafka consumer reading the same topic;
//! - outbox: a backlog of committed ledger events published by the relay, against a bare rdkafka
//!   producer sending as many records of the same size.
//!
//! `cargo bench --bench events -- [--events N] [--seconds N]` (defaults 5000 and 5)
//! Starts its own broker (tansu from `scripts/kafka.sh`) unless BENCH_KAFKA names one;
//! BENCH_DATABASE_URL names the PostgreSQL server (default postgres://postgres@127.0.0.1:5432/postgres).

use std::{
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use beryl_core_api::{
    config::{EventBusKind, Role, Settings},
    http::AppState,
    startup::Application,
};
use rdkafka::{
    admin::{AdminClient, AdminOptions, NewTopic, TopicReplication},
    client::DefaultClientContext,
    config::ClientConfig,
    consumer::{Consumer, StreamConsumer},
    producer::{FutureProducer, FutureRecord},
    Message, Offset, TopicPartitionList,
};
use serde_json::{json, Value};
use tokio_postgres::NoTls;

#[path = "support/settings.rs"]
mod bench_settings;
#[path = "support/load.rs"]
mod load;
#[path = "support/ledger_setup.rs"]
mod setup;

const WALLETS: usize = 50;
const PARTITIONS: i32 = 6;

struct Broker {
    address: String,
    child: Option<Child>,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn broker() -> Broker {
    if let Ok(address) = std::env::var("BENCH_KAFKA") {
        return Broker { address, child: None, _dir: None };
    }
    let out = Command::new("scripts/kafka.sh").arg("bin").output().expect("scripts/kafka.sh bin");
    let bin = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let listener = format!("tcp://127.0.0.1:{port}");
    let child = Command::new(bin)
        .args(["broker", "--listener-url", &listener, "--advertised-listener-url", &listener])
        .args(["--storage-engine", "sqlite://tansu.db"])
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start tansu");
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(start.elapsed() < Duration::from_secs(20), "broker did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Broker { address: format!("127.0.0.1:{port}"), child: Some(child), _dir: Some(dir) }
}

/// Start an application in its own actix system thread; returns its port and state.
fn start_app(adjust: impl FnOnce(&mut Settings) + Send + 'static) -> (u16, actix_web::web::Data<AppState>) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_rt::System::new().block_on(async move {
            let mut settings = bench_settings::bench_settings();
            settings.database.max_connections = 16;
            settings.rate_limit.enabled = false;
            adjust(&mut settings);
            let app = Application::build(settings).await.expect("application");
            tx.send((app.port(), app.state())).expect("report");
            app.run_until_stopped(std::future::pending()).await.expect("run");
        });
    });
    rx.recv().expect("started")
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
    s.event_bus.fetch_wait_max_ms = 10;
}

fn arg(name: &str, default: u64) -> u64 {
    let argv: Vec<String> = std::env::args().collect();
    argv.iter().position(|a| a == name).and_then(|i| argv.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn payment(n: usize, wallet: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "event_id": format!("bench-{n}"), "type": "payment.settled", "schema_version": 1,
        "wallet_id": wallet, "amount": 1 + (n % 500) as i64, "currency": "EUR", "reference": format!("psp-{n}")
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

/// A bare group consumer reading `count` records from the start of `topic` and committing at
/// the end; returns records/s.
async fn bare_consume(brokers: &str, topic: &str, group: &str, count: usize) -> f64 {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", "10")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let mut last = TopicPartitionList::new();
    let first = consumer.recv().await.unwrap().detach();
    let start = Instant::now();
    let mut ends = std::collections::BTreeMap::new();
    ends.insert(first.partition(), first.offset());
    for _ in 1..count {
        let m = consumer.recv().await.unwrap();
        ends.insert(m.partition(), m.offset());
    }
    for (p, o) in ends {
        last.add_partition_offset(topic, p, Offset::Offset(o + 1)).unwrap();
    }
    consumer.commit(&last, rdkafka::consumer::CommitMode::Sync).unwrap();
    count as f64 / start.elapsed().as_secs_f64()
}

/// Poll `count_sql` on `db` until it reaches `n`, at most `deadline`; returns the count.
async fn applied_at_least(db: &tokio_postgres::Client, count_sql: &str, n: usize, deadline: Duration) -> usize {
    let waiting = Instant::now();
    loop {
        let applied = db.query_one(count_sql, &[]).await.unwrap().get::<_, i64>(0) as usize;
        if applied >= n {
            return applied;
        }
        assert!(waiting.elapsed() < deadline, "the worker applied {applied} of {n} payments in {deadline:?}");
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
    let events = arg("--events", 5_000) as usize;
    let seconds = arg("--seconds", 5);
    let _ = tracing_subscriber::fmt().with_max_level(tracing::Level::WARN).with_writer(std::io::sink).try_init();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let broker = broker();
    let brokers = broker.address.clone();
    let database = runtime.block_on(setup::create_database());
    let ns = format!("bench{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let (inbound, events_topic) = (format!("{ns}.payments"), format!("{ns}.fintech.events"));
    runtime.block_on(async {
        let admin: AdminClient<DefaultClientContext> =
            ClientConfig::new().set("bootstrap.servers", &brokers).create().unwrap();
        let topics = [inbound.clone(), format!("{inbound}.dlq"), events_topic.clone(), format!("{ns}.bare")];
        let new: Vec<NewTopic<'_>> =
            topics.iter().map(|t| NewTopic::new(t, PARTITIONS, TopicReplication::Fixed(1))).collect();
        admin.create_topics(&new, &AdminOptions::new()).await.unwrap();
    });

    // The API alone: wallets, then transfers whose events wait in the outbox (no relay runs).
    let (db, b, n) = (database.clone(), brokers.clone(), ns.clone());
    let (api_port, api) = start_app(move |s| {
        s.database.migrate_on_start = true;
        kafka_settings(s, &db, &b, &n, Role::Api, false)
    });
    let token = api
        .guard
        .keys
        .mint("bench", &["fintech:read".into(), "fintech:write".into()], chrono::Duration::hours(1))
        .unwrap();
    let base = format!("http://127.0.0.1:{api_port}");
    let wallets = runtime.block_on(setup::open_funded_wallets(&base, &token, WALLETS, 1_000_000_000_000));
    let w = Arc::new(wallets.clone());
    let t = token.clone();
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
    load::run_rounds(api_port, &[transfer], &load::Args { seconds, rounds: 1, connections: 64 });
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
    let (db, b, n) = (database.clone(), brokers.clone(), ns.clone());
    start_app(move |s| kafka_settings(s, &db, &b, &n, Role::Worker, false));
    runtime.block_on(async {
        while scalar(&database, "SELECT count(*) FROM outbox").await > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let relay_publish = backlog as f64 / started.elapsed().as_secs_f64();
    eprintln!("relay: {relay_publish:.0} events/s");

    // Inbound, on a broker of its own (a fresh one: tansu's fetches slow down as its SQLite
    // store grows, which would favour whichever side reads first): notifications produced once,
    // read by a bare consumer, then applied by a worker.
    let inbound_broker = self::broker();
    let brokers = inbound_broker.address.clone();
    runtime.block_on(async {
        let admin: AdminClient<DefaultClientContext> =
            ClientConfig::new().set("bootstrap.servers", &brokers).create().unwrap();
        let topics = [inbound.clone(), format!("{inbound}.dlq"), events_topic.clone()];
        let new: Vec<NewTopic<'_>> =
            topics.iter().map(|t| NewTopic::new(t, PARTITIONS, TopicReplication::Fixed(1))).collect();
        admin.create_topics(&new, &AdminOptions::new()).await.unwrap();
    });
    let notifications: Vec<(String, Vec<u8>)> = (0..events)
        .map(|i| {
            let wallet = wallets[i % WALLETS].clone();
            let body = payment(i, &wallet);
            (wallet, body)
        })
        .collect();
    eprintln!("producing {events} payment notifications");
    runtime.block_on(bare_produce(&brokers, &inbound, &notifications));
    eprintln!("bare consumer");
    let bare_consume_rate = runtime.block_on(bare_consume(&brokers, &inbound, &format!("{ns}.bare-group"), events));
    eprintln!("bare consumer: {bare_consume_rate:.0} records/s");
    eprintln!("worker: consume, apply, commit");
    let (db, b, n) = (database.clone(), brokers.clone(), ns.clone());
    start_app(move |s| kafka_settings(s, &db, &b, &n, Role::Worker, true));
    let applied_sql = "SELECT count(*) FROM ledger_transactions WHERE kind = 'deposit' AND reference LIKE 'psp-%'";
    // As for the bare consumer, the clock starts with the first message (here: the first payment
    // in the ledger), not with joining the group, and stops when the last offset is committed.
    // The ledger is watched on one connection; the broker is asked for the group's offsets only
    // once every payment is in (a client made for each question, as a long-lived one answers late).
    let (started, before) = runtime.block_on(async {
        let (db, connection) = tokio_postgres::connect(&database, NoTls).await.unwrap();
        tokio::spawn(connection);
        let before = applied_at_least(&db, applied_sql, 1, Duration::from_secs(120)).await;
        let started = Instant::now();
        applied_at_least(&db, applied_sql, events, Duration::from_secs(600)).await;
        (started, before)
    });
    let group = format!("{ns}.workers");
    while committed(&brokers, &inbound, &group) < events as i64 {
        assert!(started.elapsed() < Duration::from_secs(600), "the worker did not commit");
        std::thread::sleep(Duration::from_millis(20));
    }
    let worker_rate = (events - before) as f64 / started.elapsed().as_secs_f64();
    let applied = runtime.block_on(scalar(&database, applied_sql));

    println!("{:<44} {:>12}", "", "per second");
    println!("{:<44} {:>12.0}", "worker: consumed + applied + committed", worker_rate);
    println!("{:<44} {:>12.0}", "bare rdkafka consumer, same topic", bare_consume_rate);
    println!("{:<44} {:>12.0}", "outbox relay: published + acknowledged", relay_publish);
    println!("{:<44} {:>12.0}", "bare rdkafka producer, same size and keys", bare_publish);
    println!();
    println!("worker / bare consumer : {:.2}  (target >= 0.50)", worker_rate / bare_consume_rate);
    println!("relay / bare producer  : {:.2}", relay_publish / bare_publish);
    println!("payments applied       : {applied} of {events} (each once)");
    println!("outbox events published: {backlog} ({event_size} bytes each)");
}

async fn scalar_json(database: &str, sql: &str) -> Value {
    let (db, connection) = tokio_postgres::connect(database, NoTls).await.unwrap();
    tokio::spawn(connection);
    db.query_one(sql, &[]).await.unwrap().get(0)
}
