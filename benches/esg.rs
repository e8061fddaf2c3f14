#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark harness, not service code
//! ESG against its own baselines, in one run:
//! - completed rides (`mobility.ride.completed`, the rider sealed as mobility seals it) applied
//!   to the ESG projections by the event consumer, against a bare rdkafka consumer reading the
//!   same topic (the median of three reads). Both rates run from the first record handled to the
//!   last, so that neither counts the time to join the group;
//! - `GET /api/v1/esg/me` through the service (token, guard, domain actor, the subject's actor),
//!   against a bare actix-web handler answering a body of the same size, in alternating rounds.
//!
//! `cargo bench --bench esg -- [--events N] [--seconds N] [--rounds N] [--connections N]`
//! (defaults 20000, 3, 3, 64). Starts its own broker (tansu from `scripts/kafka.sh`) unless
//! BENCH_KAFKA names one; BENCH_DATABASE_URL names the PostgreSQL server.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use beryl_core_api::{
    adapters::{migrate, postgres, privacy::Vault},
    config::{DatabaseSettings, EventBusKind, Role},
    domain::{events::DomainEvent, privacy::Place},
    startup::Application,
};
use rdkafka::{
    admin::{AdminClient, AdminOptions, NewTopic, TopicReplication},
    client::DefaultClientContext,
    config::ClientConfig,
    producer::{FutureProducer, FutureRecord},
};
use serde_json::json;
use tokio_postgres::NoTls;
use uuid::Uuid;

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

const PARTITIONS: i32 = 6;
/// Riders the rides are spread over.
const RIDERS: usize = 2_000;

fn arg(name: &str, default: u64) -> u64 {
    let argv: Vec<String> = std::env::args().collect();
    argv.iter().position(|a| a == name).and_then(|i| argv.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn rider(i: usize) -> String {
    format!("bench-rider-{}", i % RIDERS)
}

/// `count` completed rides, the riders sealed with the service's keys: (key, payload).
async fn rides(database: &str, count: usize) -> Vec<(String, Vec<u8>)> {
    let settings = bench_settings::bench_settings();
    let db = DatabaseSettings { url: Some(database.into()), ..DatabaseSettings::default() };
    let pool = postgres::build_pool(&db).unwrap();
    let vault = Vault::for_pool(pool, &settings.privacy);
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let (ride, who) = (Uuid::now_v7(), rider(i));
        let row = ride.to_string();
        let sealed = vault.seal(&who, Place::new("mobility.ride.rider", &row), &who).await.unwrap().to_text();
        let mode = ["bike", "car", "scooter", "ev_car"][i % 4];
        let event = DomainEvent {
            id: Uuid::now_v7(),
            event_type: "mobility.ride.completed".into(),
            schema_version: 1,
            domain: "mobility".into(),
            aggregate_id: row.clone(),
            seq: 6,
            request_id: None,
            occurred_at: chrono::Utc::now(),
            data: json!({"ride": ride, "rider": sealed, "state": "completed", "mode": mode, "currency": "EUR",
                "quoted_fare": 1500, "fare": 1400, "distance_m": 1_000 + (i % 9_000) as u64, "duration_s": 600}),
        };
        out.push((row, serde_json::to_vec(&event).unwrap()));
    }
    out
}

async fn produce(brokers: &str, topic: &str, records: &[(String, Vec<u8>)]) {
    let producer: FutureProducer =
        ClientConfig::new().set("bootstrap.servers", brokers).set("linger.ms", "5").create().unwrap();
    let mut waits = Vec::with_capacity(records.len());
    for (key, payload) in records {
        loop {
            match producer.send_result(FutureRecord::to(topic).key(key).payload(payload)) {
                Ok(delivery) => {
                    waits.push(delivery);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(2)).await,
            }
        }
    }
    for w in futures::future::join_all(waits).await {
        w.unwrap().unwrap();
    }
}

/// Poll until every ride is credited; then the rate from the first activity recorded to the
/// last.
async fn applied_rate(database: &str, count: usize, deadline: Duration) -> f64 {
    let (db, connection) = tokio_postgres::connect(database, NoTls).await.unwrap();
    tokio::spawn(connection);
    let started = Instant::now();
    loop {
        let n: i64 = db.query_one("SELECT count(*) FROM esg_activities", &[]).await.unwrap().get(0);
        if n as usize >= count {
            break;
        }
        assert!(started.elapsed() < deadline, "{n} of {count} rides credited in {deadline:?}");
        // Seldom: each count reads the whole table, which PostgreSQL pays for on the cores the
        // service is measured on (the rate itself comes from the recorded times).
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let row = db
        .query_one("SELECT extract(epoch FROM max(recorded_at) - min(recorded_at))::float8 FROM esg_activities", &[])
        .await
        .unwrap();
    (count - 1) as f64 / row.get::<_, f64>(0)
}

fn main() {
    let events = arg("--events", 20_000) as usize;
    let args = load::Args::parse();
    let _ = tracing_subscriber::fmt().with_max_level(tracing::Level::WARN).with_writer(std::io::sink).try_init();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let broker = kafka::broker();
    let brokers = broker.address.clone();
    let database = runtime.block_on(setup::create_database());
    let ns = format!("bench{}", &Uuid::new_v4().simple().to_string()[..8]);
    let topic = format!("{ns}.mobility.events");
    runtime.block_on(async {
        let admin: AdminClient<DefaultClientContext> =
            ClientConfig::new().set("bootstrap.servers", &brokers).create().unwrap();
        let new = [NewTopic::new(&topic, PARTITIONS, TopicReplication::Fixed(1))];
        admin.create_topics(&new, &AdminOptions::new()).await.unwrap();
        let db = DatabaseSettings { url: Some(database.as_str().into()), ..DatabaseSettings::default() };
        let config = postgres::connect_config(&db).unwrap().unwrap();
        migrate::run(&mut postgres::connect(&config).await.unwrap()).await.unwrap();
    });
    let made = Instant::now();
    let records = runtime.block_on(rides(&database, events));
    runtime.block_on(produce(&brokers, &topic, &records));
    eprintln!("{events} completed rides sealed and produced in {:.1}s", made.elapsed().as_secs_f64());

    let before_bare = cpu::Reading::now(cpu::own_seconds(), broker.pid());
    let mut bare: Vec<f64> = (0..3)
        .map(|i| runtime.block_on(kafka::bare_consume(&brokers, &topic, &format!("{ns}.bare{i}"), events)))
        .collect();
    let bare_used = cpu::Reading::now(cpu::own_seconds(), broker.pid()).since(&before_bare, 3 * events);
    bare.sort_by(f64::total_cmp);
    eprintln!("bare consumer: {:.0}, {:.0}, {:.0} records/s", bare[0], bare[1], bare[2]);

    // The service: the event consumer on the topic, the relay off (ESG's own events stay in the
    // outbox), HTTP on two workers.
    let before_service = cpu::Reading::now(cpu::own_seconds(), broker.pid());
    let (tx, rx) = std::sync::mpsc::channel();
    let (app_db, app_brokers, app_ns, app_topic) = (database.clone(), brokers.clone(), ns.clone(), topic.clone());
    std::thread::spawn(move || {
        actix_rt::System::new().block_on(async move {
            let mut s = bench_settings::bench_settings();
            s.database.url = Some(app_db.as_str().into());
            s.database.max_connections = 16;
            s.rate_limit.enabled = false;
            s.server.role = Role::All;
            s.server.workers = 2;
            s.event_bus.kind = Some(EventBusKind::Kafka);
            s.event_bus.kafka_bootstrap_servers = Some(app_brokers.as_str().into());
            s.event_bus.events_topic = format!("{app_ns}.{{domain}}.events");
            s.event_bus.inbound_topics = vec![app_topic];
            s.event_bus.consumer_group = format!("{app_ns}.workers");
            s.event_bus.relay = false;
            let app = Application::build(s).await.expect("application");
            tx.send((app.port(), app.state().guard.keys.clone())).unwrap();
            app.run_until_stopped(std::future::pending()).await.expect("run");
        });
    });
    let (port, keys) = rx.recv().unwrap();
    let service = runtime.block_on(applied_rate(&database, events, Duration::from_secs(1800)));
    let service_used = cpu::Reading::now(cpu::own_seconds(), broker.pid()).since(&before_service, events);
    let median = bare[1];
    println!("{:<52} {:>10}", "", "per s");
    println!("{:<52} {:>10.0}", "completed rides applied to ESG projections", service);
    println!("{:<52} {:>10.0}", "bare rdkafka consumer, same topic (median of 3)", median);
    println!("ratio ESG projections / bare consumer: {:.3}", service / median);
    // What each record cost the machine, by party: the process (the service with every domain,
    // or the bare consumer), the broker and PostgreSQL; and the rate the cores would allow at the
    // service's cost if nothing waited, against the bare consumer's measured rate.
    println!(
        "{:<38} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "CPU us per record", "process", "broker", "postgres", "total", "busy"
    );
    println!("{:<38} {}", "bare rdkafka consumer (3 reads)", bare_used.line());
    println!("{:<38} {}", "service, applying to the projections", service_used.line());
    println!(
        "rate the {} cores allow at the service's cost: {:.0}/s, {:.3} of the bare consumer",
        cpu::cores(),
        service_used.ceiling(),
        service_used.ceiling() / median
    );

    // GET /esg/me for the riders in turn, against the bare handler.
    let tokens: Arc<Vec<String>> = Arc::new(
        (0..RIDERS)
            .map(|i| keys.mint(&rider(i), &["esg:read".to_string()], chrono::Duration::hours(1)).unwrap())
            .collect(),
    );
    let sample = runtime.block_on(async {
        let res = reqwest::Client::new()
            .get(format!("http://127.0.0.1:{port}/api/v1/esg/me"))
            .bearer_auth(&tokens[0])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        res.text().await.unwrap()
    });
    let bare_port = load::bare_json_server("/api/v1/esg/me", sample.clone());
    let make: load::MakeRequest = {
        let tokens = tokens.clone();
        Arc::new(move |c: usize, n: u64| {
            let token = &tokens[(c * 7919 + n as usize) % tokens.len()];
            load::Target::raw("GET", "/api/v1/esg/me", &[("Authorization", format!("Bearer {token}"))], "")
        })
    };
    let target = load::Target::dynamic("GET /esg/me", make);
    let (svc, bare_http) = load::versus_bare(port, bare_port, &target, &args);
    let (mean, p99) = (load::mean_rps, load::max_p99);
    let errors: u64 = svc.iter().map(|r| r.errors).sum();
    println!("{:<52} {:>10} {:>9}", "", "per s", "p99 us");
    println!("{:<52} {:>10.0} {:>9}", "GET /esg/me through the service", mean(&svc), p99(&svc));
    println!("{:<52} {:>10.0} {:>9}", "bare handler, same body", mean(&bare_http), p99(&bare_http));
    println!("errors (non-2xx): {errors}; body {} bytes", sample.len());
    println!("ratio service / bare handler: {:.2}", mean(&svc) / mean(&bare_http));
    drop(broker);
}
