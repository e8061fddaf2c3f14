//! The event bus against a real broker and real PostgreSQL: every committed change published
//! once and in order per wallet (also across a broker outage), inbound payment notifications
//! applied once (also across a crash between apply and commit), poison messages dead-lettered,
//! and two workers sharing the partitions. The embedded bus gives the same publication.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use beryl_core_api::{
    adapters::bus::{MemoryBroker, OutRecord},
    config::{EventBusKind, Role, Settings},
};
use serde_json::{json, Value};

use crate::{
    helpers::{eventually, sample, spawn_with, Process, TestApp, TEST_JWT_KEY},
    kafka::{self, PrivateBroker, Read},
};

static KEYS: AtomicU64 = AtomicU64::new(0);

fn key() -> String {
    format!("ev-{}-{}", std::process::id(), KEYS.fetch_add(1, Ordering::Relaxed))
}

/// Point the application at `brokers`, with topics and group of its own under `ns`.
pub(crate) fn on_kafka(s: &mut Settings, brokers: &str, ns: &str) {
    s.event_bus.kind = Some(EventBusKind::Kafka);
    s.event_bus.kafka_bootstrap_servers = Some(brokers.into());
    s.event_bus.events_topic = format!("{ns}.{{domain}}.events");
    s.event_bus.inbound_topics = vec![format!("{ns}.payments")];
    s.event_bus.consumer_group = format!("{ns}.workers");
    s.event_bus.fetch_wait_max_ms = 10;
    s.event_bus.relay_poll_ms = 20;
    s.event_bus.commit_interval_ms = 100;
    s.event_bus.retry_backoff_ms = 20;
    s.health.probe_interval_ms = 200;
    s.health.probe_timeout_ms = 500;
    s.rate_limit.enabled = false;
}

fn kafka_vars(brokers: &str, ns: &str) -> Vec<(String, String)> {
    vec![
        ("EVENT_BUS".into(), "kafka".into()),
        ("KAFKA_BOOTSTRAP_SERVERS".into(), brokers.into()),
        ("BERYL__EVENT_BUS__EVENTS_TOPIC".into(), format!("{ns}.{{domain}}.events")),
        ("KAFKA_INBOUND_TOPICS".into(), format!("{ns}.payments")),
        ("KAFKA_CONSUMER_GROUP".into(), format!("{ns}.workers")),
        ("BERYL__EVENT_BUS__FETCH_WAIT_MAX_MS".into(), "10".into()),
        ("BERYL__EVENT_BUS__COMMIT_INTERVAL_MS".into(), "100".into()),
        ("BERYL__EVENT_BUS__SESSION_TIMEOUT_MS".into(), "6000".into()),
        ("JWT_SECRET_KEY".into(), TEST_JWT_KEY.into()),
    ]
}

async fn post(app: &TestApp, token: &str, path: &str, body: Value) -> (u16, Value, String) {
    let res = app
        .client
        .post(app.url(path))
        .bearer_auth(token)
        .header("Idempotency-Key", key())
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let request_id = res.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    (status, res.json().await.unwrap_or(Value::Null), request_id)
}

async fn open_funded(app: &TestApp, token: &str, n: usize, funds: i64) -> Vec<String> {
    let mut ids = Vec::new();
    for _ in 0..n {
        let (status, body, _) = post(app, token, "/api/v1/fintech/wallets", json!({"currency": "EUR"})).await;
        assert_eq!(status, 201, "{body}");
        let id = body["id"].as_str().unwrap().to_string();
        if funds > 0 {
            let path = format!("/api/v1/fintech/wallets/{id}/deposits");
            let (status, body, _) = post(app, token, &path, json!({"amount": funds, "reference": "seed"})).await;
            assert_eq!(status, 201, "{body}");
        }
        ids.push(id);
    }
    ids
}

async fn version_and_balance(app: &TestApp, token: &str, id: &str) -> (i64, i64) {
    let body: Value = app.get_as(&format!("/api/v1/fintech/wallets/{id}"), token).await.json().await.unwrap();
    (body["version"].as_i64().unwrap(), body["balance"].as_i64().unwrap())
}

/// Transfers among `wallets` from `clients` concurrent clients, each pausing `pause` between
/// two, until `stop` or `count`; returns each acknowledged transfer's (transaction id, request
/// id).
fn transfer_load(
    app: Arc<TestApp>,
    token: String,
    wallets: Vec<String>,
    clients: usize,
    count: Option<usize>,
    pause: Option<Duration>,
    stop: Arc<AtomicBool>,
) -> Vec<actix_rt::task::JoinHandle<Vec<(String, String)>>> {
    (0..clients)
        .map(|c| {
            let (app, token, wallets, stop) = (app.clone(), token.clone(), wallets.clone(), stop.clone());
            actix_rt::spawn(async move {
                let mut acked = Vec::new();
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) && count.is_none_or(|max| n < max) {
                    let from = (c + n) % wallets.len();
                    let to = (from + 1 + n % (wallets.len() - 1)) % wallets.len();
                    let body = json!({"from": wallets[from], "to": wallets[to], "amount": 1 + (n % 7) as i64});
                    let (status, body, request_id) = post(&app, &token, "/api/v1/fintech/transfers", body).await;
                    assert_eq!(status, 201, "transfer refused: {body}");
                    acked.push((body["id"].as_str().unwrap().to_string(), request_id));
                    n += 1;
                    if let Some(pause) = pause {
                        tokio::time::sleep(pause).await;
                    }
                }
                acked
            })
        })
        .collect()
}

/// Every wallet's events in topic order: each wallet's seqs must be exactly 1..=version, each
/// acknowledged transfer must appear once on each side with its request id.
fn check_published(records: &[Read], versions: &HashMap<String, i64>, acked: &[(String, String)]) {
    let mut by_wallet: BTreeMap<&str, Vec<(i32, i64, i64)>> = BTreeMap::new();
    for r in records {
        by_wallet.entry(r.key.as_str()).or_default().push((r.partition, r.offset, r.value["seq"].as_i64().unwrap()));
        assert_eq!(r.value["aggregate_id"].as_str(), Some(r.key.as_str()), "keyed by aggregate");
        assert!(r.header("event-id").is_some() && r.header("event-type").is_some());
        assert_eq!(r.header("schema-version"), Some("1"));
    }
    for (wallet, version) in versions {
        let events = by_wallet.get(wallet.as_str()).cloned().unwrap_or_default();
        assert!(events.iter().all(|e| e.0 == events[0].0), "one wallet, one partition");
        let mut in_topic_order = events.clone();
        in_topic_order.sort_by_key(|e| e.1);
        let seqs: Vec<i64> = in_topic_order.iter().map(|e| e.2).collect();
        assert_eq!(seqs, (1..=*version).collect::<Vec<_>>(), "wallet {wallet}: every event once, in order");
    }
    assert_eq!(records.len(), versions.values().sum::<i64>() as usize, "nothing else was published");
    let mut out: HashMap<&str, Vec<&Read>> = HashMap::new();
    let mut inn: HashMap<&str, usize> = HashMap::new();
    for r in records {
        if let Some(tx) = r.value["data"]["transaction_id"].as_str() {
            match r.value["type"].as_str() {
                Some("fintech.wallet.transfer_out") => out.entry(tx).or_default().push(r),
                Some("fintech.wallet.transfer_in") => *inn.entry(tx).or_default() += 1,
                _ => {}
            }
        }
    }
    for (tx, request_id) in acked {
        let sent = out.get(tx.as_str()).map(Vec::as_slice).unwrap_or_default();
        assert_eq!(sent.len(), 1, "transfer {tx} published once (debit side)");
        assert_eq!(inn.get(tx.as_str()), Some(&1), "transfer {tx} published once (credit side)");
        assert_eq!(sent[0].header("request-id"), Some(request_id.as_str()), "request id carried");
    }
}

#[actix_web::test]
async fn every_transfer_is_published_once_in_wallet_order_with_its_request_id() {
    let (brokers, ns) = (kafka::broker(), kafka::unique("publish"));
    let app = Arc::new(spawn_with(|s| on_kafka(s, &brokers, &ns)).await);
    let token = app.token("alice", &["fintech:read", "fintech:write", "fintech:settle"]);
    let wallets = open_funded(&app, &token, 6, 100_000).await;
    let stop = Arc::new(AtomicBool::new(false));
    let mut acked = Vec::new();
    for task in transfer_load(app.clone(), token.clone(), wallets.clone(), 8, Some(40), None, stop) {
        acked.extend(task.await.unwrap());
    }
    assert_eq!(acked.len(), 320);
    let mut versions = HashMap::new();
    for w in &wallets {
        versions.insert(w.clone(), version_and_balance(&app, &token, w).await.0);
    }
    let want = versions.values().sum::<i64>() as usize;
    let topic = format!("{ns}.fintech.events");
    let b = brokers.clone();
    let records = tokio::task::spawn_blocking(move || kafka::read_topic(&b, &topic, want, Duration::from_secs(60)))
        .await
        .unwrap();
    check_published(&records, &versions, &acked);
    let metrics = app.metrics().await;
    let published = sample(&metrics, &format!("beryl_events_published_total{{topic=\"{ns}.fintech.events\"}}"));
    assert_eq!(published, Some(want as f64));
    let lag = eventually("the outbox to drain", Duration::from_secs(10), || async {
        let m = app.metrics().await;
        sample(&m, "beryl_outbox_lag_events").filter(|v| *v == 0.0)
    })
    .await;
    assert_eq!(lag, 0.0);
}

#[actix_web::test]
async fn a_broker_outage_delays_events_but_loses_and_reorders_none() {
    let mut broker = PrivateBroker::start();
    let (brokers, ns) = (broker.address(), kafka::unique("outage"));
    let app = Arc::new(spawn_with(|s| on_kafka(s, &brokers, &ns)).await);
    let token = app.token("alice", &["fintech:read", "fintech:write", "fintech:settle"]);
    let wallets = open_funded(&app, &token, 8, 1_000_000).await;
    let stop = Arc::new(AtomicBool::new(false));
    // A steady write load, light enough that reading the whole topic back stays quick.
    let pause = Some(Duration::from_millis(20));
    let load = transfer_load(app.clone(), token.clone(), wallets.clone(), 2, None, pause, stop.clone());

    tokio::time::sleep(Duration::from_secs(2)).await;
    broker.stop();
    let before_outage = transfers_applied(&app).await;
    let degraded = eventually("health to report the broker down", Duration::from_secs(15), || async {
        let h = app.health().await;
        (h["status"] == "degraded").then_some(h)
    })
    .await;
    let kafka = degraded["dependencies"].as_array().unwrap().iter().find(|d| d["name"] == "kafka").cloned();
    assert_eq!(kafka.map(|k| (k["status"].clone(), k["required"].clone())), Some((json!("down"), json!(false))));
    assert_eq!(app.ready_status().await, 200, "a broker outage does not stop traffic");
    tokio::time::sleep(Duration::from_secs(30)).await;
    let backlog = sample(&app.metrics().await, "beryl_outbox_lag_events").unwrap_or(0.0);
    assert!(backlog > 0.0, "writes went on during the outage and wait in the outbox");

    let during_outage = transfers_applied(&app).await - before_outage;
    assert!(during_outage > 0.0, "the API kept accepting writes while the broker was down");
    broker.resume();
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    let mut acked = Vec::new();
    for task in load {
        acked.extend(task.await.unwrap());
    }
    let mut versions = HashMap::new();
    for w in &wallets {
        versions.insert(w.clone(), version_and_balance(&app, &token, w).await.0);
    }
    let want = versions.values().sum::<i64>() as usize;
    let (b, topic) = (brokers.clone(), format!("{ns}.fintech.events"));
    let records = tokio::task::spawn_blocking(move || kafka::read_topic(&b, &topic, want, Duration::from_secs(120)))
        .await
        .unwrap();
    check_published(&records, &versions, &acked);
    eventually("health to be ok again", Duration::from_secs(15), || async {
        (app.health().await["status"] == "ok").then_some(())
    })
    .await;
}

/// Transfers the application has applied so far, from its business metrics.
async fn transfers_applied(app: &TestApp) -> f64 {
    app.metrics()
        .await
        .lines()
        .filter(|l| l.starts_with("beryl_business_operations_total{"))
        .filter(|l| l.contains("operation=\"transfer\"") && l.contains("status=\"applied\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn payment(event_id: &str, wallet: &str, amount: i64) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "event_id": event_id, "type": "payment.settled", "schema_version": 1,
        "wallet_id": wallet, "amount": amount, "currency": "EUR", "reference": format!("psp-{event_id}")
    }))
    .unwrap()
}

#[actix_web::test]
async fn a_payment_notification_credits_once_however_often_it_arrives() {
    let (brokers, ns) = (kafka::broker(), kafka::unique("pay"));
    let app = spawn_with(|s| on_kafka(s, &brokers, &ns)).await;
    let token = app.token("alice", &["fintech:read", "fintech:write", "fintech:settle"]);
    let wallet = open_funded(&app, &token, 1, 0).await.remove(0);
    let topic = format!("{ns}.payments");
    kafka::create_topics(&brokers, &[&topic], 3).await;
    let producer = kafka::producer(&brokers);
    kafka::produce(&producer, &topic, &wallet, &payment("evt-1", &wallet, 2_500)).await;
    kafka::produce(&producer, &topic, &wallet, &payment("evt-1", &wallet, 2_500)).await;
    kafka::produce(&producer, &topic, &wallet, &payment("evt-2", &wallet, 500)).await;
    let series =
        |result: &str| format!("beryl_events_applied_total{{topic=\"{topic}\",actor=\"fintech\",result=\"{result}\"}}");
    eventually("three deliveries handled", Duration::from_secs(30), || async {
        let m = app.metrics().await;
        (sample(&m, &series("applied")) == Some(2.0) && sample(&m, &series("duplicate")) == Some(1.0)).then_some(())
    })
    .await;
    assert_eq!(version_and_balance(&app, &token, &wallet).await.1, 3_000);
    let history: Value =
        app.get_as(&format!("/api/v1/fintech/wallets/{wallet}/transactions"), &token).await.json().await.unwrap();
    let refs: Vec<&str> = history["items"].as_array().unwrap().iter().filter_map(|m| m["reference"].as_str()).collect();
    assert_eq!(refs, vec!["psp-evt-2", "psp-evt-1"]);
}

#[actix_web::test]
async fn a_worker_killed_between_apply_and_commit_does_not_credit_twice() {
    let (brokers, ns) = (kafka::broker(), kafka::unique("crash"));
    // The API process creates the wallet; the worker processes apply the payment.
    let app = spawn_with(|s| {
        on_kafka(s, &brokers, &ns);
        s.server.role = Role::Api;
    })
    .await;
    let token = app.token("alice", &["fintech:read", "fintech:write", "fintech:settle"]);
    let wallet = open_funded(&app, &token, 1, 0).await.remove(0);
    let database = app.state.settings.database.url.as_ref().unwrap().expose().to_string();
    let topic = format!("{ns}.payments");
    kafka::create_topics(&brokers, &[&topic, &format!("{topic}.dlq")], 2).await;
    let mut vars = kafka_vars(&brokers, &ns);
    vars.push(("DATABASE_URL".into(), database));
    vars.push(("SERVICE_ROLE".into(), "worker".into()));
    let vars_ref = |extra: &[(&'static str, &'static str)]| {
        let mut v: Vec<(String, String)> = vars.clone();
        v.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        v
    };
    // First worker: applies, but would commit only after ten minutes.
    let slow = vars_ref(&[("BERYL__EVENT_BUS__COMMIT_INTERVAL_MS", "600000")]);
    let slow: Vec<(&str, &str)> = slow.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut first = Process::serve(&slow);
    first.address().await;
    kafka::produce(&kafka::producer(&brokers), &topic, &wallet, &payment("evt-crash", &wallet, 4_200)).await;
    eventually("the payment to be applied", Duration::from_secs(30), || async {
        (version_and_balance(&app, &token, &wallet).await.1 == 4_200).then_some(())
    })
    .await;
    first.signal(nix::sys::signal::Signal::SIGKILL);
    first.exit_code(Duration::from_secs(10)).await;

    // Second worker: gets the uncommitted message again and recognises it.
    let normal = vars_ref(&[]);
    let normal: Vec<(&str, &str)> = normal.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut second = Process::serve(&normal);
    let address = second.address().await;
    let series = format!("beryl_events_applied_total{{topic=\"{topic}\",actor=\"fintech\",result=\"duplicate\"}}");
    eventually("the re-delivery to be recognised", Duration::from_secs(60), || async {
        let m = reqwest::get(format!("{address}/metrics")).await.ok()?.text().await.ok()?;
        (sample(&m, &series) == Some(1.0)).then_some(())
    })
    .await;
    assert_eq!(version_and_balance(&app, &token, &wallet).await.1, 4_200, "credited once");
    second.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(second.exit_code(Duration::from_secs(30)).await, Some(0));
    let left =
        second.json_lines().iter().any(|l| l["message"] == "event consumer committed its offsets and left the group");
    assert!(left, "SIGTERM commits and leaves the group");
}

#[actix_web::test]
async fn poison_messages_go_to_the_dead_letter_topic_and_the_partition_moves_on() {
    let (brokers, ns) = (kafka::broker(), kafka::unique("poison"));
    // One partition: the good message queues behind the poison ones.
    let app = spawn_with(|s| {
        on_kafka(s, &brokers, &ns);
        s.event_bus.create_topic_partitions = 1;
    })
    .await;
    let token = app.token("alice", &["fintech:read", "fintech:write", "fintech:settle"]);
    let wallet = open_funded(&app, &token, 1, 0).await.remove(0);
    let topic = format!("{ns}.payments");
    kafka::create_topics(&brokers, &[&topic], 1).await;
    let producer = kafka::producer(&brokers);
    let unknown = uuid::Uuid::now_v7().to_string();
    let mut wrong_version: Value = serde_json::from_slice(&payment("evt-v2", &wallet, 100)).unwrap();
    wrong_version["schema_version"] = json!(2);
    kafka::produce(&producer, &topic, "k", b"{not json").await;
    kafka::produce(&producer, &topic, "k", &payment("evt-ghost", &unknown, 100)).await;
    kafka::produce(&producer, &topic, "k", &serde_json::to_vec(&wrong_version).unwrap()).await;
    kafka::produce(&producer, &topic, "k", &payment("evt-good", &wallet, 700)).await;
    eventually("the good payment behind the poison to be applied", Duration::from_secs(30), || async {
        (version_and_balance(&app, &token, &wallet).await.1 == 700).then_some(())
    })
    .await;
    let (b, dlq) = (brokers.clone(), format!("{topic}.dlq"));
    let letters =
        tokio::task::spawn_blocking(move || kafka::read_topic(&b, &dlq, 3, Duration::from_secs(30))).await.unwrap();
    let mut reasons: Vec<(String, String, String)> = letters
        .iter()
        .map(|l| {
            assert_eq!(l.header("dlq-original-topic"), Some(topic.as_str()));
            assert_eq!(l.header("dlq-original-partition"), Some("0"));
            assert!(l.header("dlq-error").is_some_and(|e| !e.is_empty()));
            assert_eq!(l.header("request-id"), Some("test-producer"), "original headers kept");
            (
                l.header("dlq-original-offset").unwrap().to_string(),
                l.header("dlq-reason").unwrap().to_string(),
                l.key.clone(),
            )
        })
        .collect();
    reasons.sort();
    assert_eq!(
        reasons,
        vec![
            ("0".into(), "malformed".into(), "k".into()),
            ("1".into(), "wallet_not_found".into(), "k".into()),
            ("2".into(), "schema_version".into(), "k".into()),
        ]
    );
    let m = app.metrics().await;
    for reason in ["malformed", "wallet_not_found", "schema_version"] {
        let series = format!("beryl_events_dead_lettered_total{{topic=\"{topic}\",reason=\"{reason}\"}}");
        assert_eq!(sample(&m, &series), Some(1.0), "{series}");
    }
}

#[actix_web::test]
async fn two_workers_share_the_partitions_and_one_takes_over_from_the_other() {
    let (brokers, ns) = (kafka::broker(), kafka::unique("group"));
    let app = spawn_with(|s| {
        on_kafka(s, &brokers, &ns);
        s.server.role = Role::Api;
    })
    .await;
    let token = app.token("alice", &["fintech:read", "fintech:write", "fintech:settle"]);
    let wallets = open_funded(&app, &token, 12, 0).await;
    let topic = format!("{ns}.payments");
    kafka::create_topics(&brokers, &[&topic, &format!("{topic}.dlq")], 6).await;
    let database = app.state.settings.database.url.as_ref().unwrap().expose().to_string();
    let mut vars = kafka_vars(&brokers, &ns);
    vars.push(("DATABASE_URL".into(), database));
    vars.push(("SERVICE_ROLE".into(), "worker".into()));
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut one = Process::serve(&vars);
    let mut two = Process::serve(&vars);
    let (a1, a2) = (one.address().await, two.address().await);
    let consumed = |address: String| async move {
        let m = reqwest::get(format!("{address}/metrics")).await.ok()?.text().await.ok()?;
        Some(
            m.lines()
                .filter(|l| l.starts_with("beryl_events_consumed_total{"))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum::<f64>(),
        )
    };

    // Wait until the group settled with three partitions each.
    let last_assignment = |p: &Process| {
        p.json_lines()
            .iter()
            .rev()
            .find(|l| l["message"] == "partitions assigned")
            .and_then(|l| l["partitions"].as_str().map(|s| s.matches('/').count()))
    };
    eventually("the two workers to split the partitions", Duration::from_secs(60), || async {
        (last_assignment(&one) == Some(3) && last_assignment(&two) == Some(3)).then_some(())
    })
    .await;

    let producer = kafka::producer(&brokers);
    let mut expected: HashMap<String, i64> = HashMap::new();
    let mut n = 0;
    let mut send = |count: usize| {
        let mut batch = Vec::new();
        for _ in 0..count {
            let wallet = wallets[n % wallets.len()].clone();
            let amount = 1 + (n % 13) as i64;
            *expected.entry(wallet.clone()).or_default() += amount;
            batch.push((wallet.clone(), payment(&format!("evt-{n}"), &wallet, amount)));
            n += 1;
        }
        batch
    };
    for (wallet, body) in send(300) {
        kafka::produce(&producer, &topic, &wallet, &body).await;
    }
    // Both members got partitions and applied messages.
    eventually("both workers to consume", Duration::from_secs(60), || async {
        let (c1, c2) = (consumed(a1.clone()).await?, consumed(a2.clone()).await?);
        (c1 > 0.0 && c2 > 0.0 && c1 + c2 >= 300.0).then_some(())
    })
    .await;
    one.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(one.exit_code(Duration::from_secs(30)).await, Some(0));
    for (wallet, body) in send(300) {
        kafka::produce(&producer, &topic, &wallet, &body).await;
    }
    for wallet in &wallets {
        let want = expected[wallet];
        eventually("every payment applied once", Duration::from_secs(60), || async {
            (version_and_balance(&app, &token, wallet).await.1 == want).then_some(())
        })
        .await;
    }
    // Nothing applied twice: one deposit per event, and the balances are exact.
    let mut deposits = 0;
    for wallet in &wallets {
        let (version, _) = version_and_balance(&app, &token, wallet).await;
        deposits += version - 1;
    }
    assert_eq!(deposits, 600);
    two.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(two.exit_code(Duration::from_secs(30)).await, Some(0));
}

/// An instance on the in-process bus (its relay on or off), polling and committing often, with no
/// rate limit.
async fn spawn_embedded(relay: bool) -> TestApp {
    spawn_with(|s| {
        s.event_bus.kind = Some(EventBusKind::Memory);
        s.event_bus.relay = relay;
        s.event_bus.relay_poll_ms = 10;
        s.event_bus.commit_interval_ms = 50;
        s.rate_limit.enabled = false;
    })
    .await
}

/// A payment notification on the in-process inbound topic, keyed by its wallet.
fn deliver(broker: &MemoryBroker, event_id: &str, wallet: &str, amount: i64) {
    broker.append(OutRecord {
        topic: "beryl.fintech.payments".into(),
        key: Some(wallet.as_bytes().to_vec()),
        payload: payment(event_id, wallet, amount),
        headers: vec![],
    });
}

#[actix_web::test]
async fn the_embedded_bus_publishes_and_applies_without_a_broker() {
    let app = spawn_embedded(true).await;
    let token = app.token("alice", &["fintech:read", "fintech:write", "fintech:settle"]);
    let wallets = open_funded(&app, &token, 3, 10_000).await;
    let stop = Arc::new(AtomicBool::new(false));
    let app = Arc::new(app);
    let mut acked = Vec::new();
    for task in transfer_load(app.clone(), token.clone(), wallets.clone(), 4, Some(10), None, stop) {
        acked.extend(task.await.unwrap());
    }
    let mut versions = HashMap::new();
    for w in &wallets {
        versions.insert(w.clone(), version_and_balance(&app, &token, w).await.0);
    }
    let want = versions.values().sum::<i64>() as usize;
    let broker = app.state.actors.broker.clone();
    let records = eventually("every event on the in-process topic", Duration::from_secs(10), || async {
        let records = broker.records("beryl.fintech.events");
        (records.len() >= want).then_some(records)
    })
    .await;
    let reads: Vec<Read> = records
        .iter()
        .map(|r| Read {
            partition: r.partition,
            offset: r.offset,
            key: String::from_utf8_lossy(r.key.as_deref().unwrap_or_default()).into_owned(),
            value: serde_json::from_slice(r.payload.as_deref().unwrap_or_default()).unwrap(),
            headers: r.headers.iter().map(|(k, v)| (k.clone(), String::from_utf8_lossy(v).into_owned())).collect(),
        })
        .collect();
    check_published(&reads, &versions, &acked);

    // An inbound payment through the in-process topic, twice: credited once.
    let before = version_and_balance(&app, &token, &wallets[0]).await.1;
    for _ in 0..2 {
        deliver(&broker, "evt-mem", &wallets[0], 1_000);
    }
    let series = "beryl_events_applied_total{topic=\"beryl.fintech.payments\",actor=\"fintech\",result=\"duplicate\"}";
    eventually("both deliveries handled", Duration::from_secs(10), || async {
        (sample(&app.metrics().await, series) == Some(1.0)).then_some(())
    })
    .await;
    assert_eq!(version_and_balance(&app, &token, &wallets[0]).await.1, before + 1_000);
}

#[actix_web::test]
async fn a_worker_without_the_relay_applies_payments_and_leaves_their_events_in_the_outbox() {
    let app = spawn_embedded(false).await;
    let token = app.token("alice", &["fintech:read", "fintech:write", "fintech:settle"]);
    let wallet = open_funded(&app, &token, 1, 0).await.remove(0);
    let broker = app.state.actors.broker.clone();
    deliver(&broker, "evt-no-relay", &wallet, 700);
    let series = "beryl_events_applied_total{topic=\"beryl.fintech.payments\",actor=\"fintech\",result=\"applied\"}";
    eventually("the payment applied", Duration::from_secs(10), || async {
        (sample(&app.metrics().await, series) == Some(1.0)).then_some(())
    })
    .await;
    assert_eq!(version_and_balance(&app, &token, &wallet).await.1, 700);
    // Nothing published, no relay supervised: the wallet's opening and the deposit wait in the
    // outbox for a process that runs the relay.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(broker.records("beryl.fintech.events").is_empty());
    let health = app.health().await;
    let actors = health["actors"].as_array().cloned().unwrap_or_default();
    assert!(actors.iter().any(|a| a["name"] == "event-consumer"), "{health}");
    assert!(!actors.iter().any(|a| a["name"] == "outbox-relay"), "{health}");
    let database = app.state.settings.database.url.as_ref().unwrap().expose().to_string();
    let (db, connection) = tokio_postgres::connect(&database, tokio_postgres::NoTls).await.unwrap();
    actix_rt::spawn(connection);
    let waiting: i64 =
        db.query_one("SELECT COALESCE(SUM(event_count), 0)::int8 FROM outbox", &[]).await.unwrap().get(0);
    assert_eq!(waiting, 2, "the opening and the deposit");
}

#[actix_web::test]
async fn a_payment_id_applied_before_with_other_content_is_dead_lettered_as_a_conflicting_duplicate() {
    let app = spawn_embedded(false).await;
    let token = app.token("alice", &["fintech:read", "fintech:write"]);
    let wallet = open_funded(&app, &token, 1, 0).await.remove(0);
    let broker = app.state.actors.broker.clone();
    deliver(&broker, "evt-twice", &wallet, 1_000);
    deliver(&broker, "evt-twice", &wallet, 1_000);
    let other = broker.append(OutRecord {
        topic: "beryl.fintech.payments".into(),
        key: Some(wallet.as_bytes().to_vec()),
        payload: payment("evt-twice", &wallet, 9_000),
        headers: vec![],
    });
    let series = |result: &str| {
        format!("beryl_events_applied_total{{topic=\"beryl.fintech.payments\",actor=\"fintech\",result=\"{result}\"}}")
    };
    let conflicting =
        "beryl_events_dead_lettered_total{topic=\"beryl.fintech.payments\",reason=\"conflicting_duplicate\"}";
    eventually("the three deliveries handled", Duration::from_secs(10), || async {
        let m = app.metrics().await;
        let done = sample(&m, &series("applied")) == Some(1.0)
            && sample(&m, &series("duplicate")) == Some(1.0)
            && sample(&m, conflicting) == Some(1.0);
        done.then_some(())
    })
    .await;
    assert_eq!(version_and_balance(&app, &token, &wallet).await.1, 1_000, "credited once, with the first content");
    let letters = broker.records("beryl.fintech.payments.dlq");
    assert_eq!(letters.len(), 1);
    let letter = &letters[0];
    assert_eq!(letter.header("dlq-reason"), Some("conflicting_duplicate"));
    assert_eq!(letter.header("dlq-original-offset"), Some(other.offset.to_string().as_str()));
    assert_eq!(letter.payload.as_deref(), Some(payment("evt-twice", &wallet, 9_000).as_slice()));
}

#[actix_web::test]
async fn on_kafka_a_payment_waits_out_a_database_outage_with_its_partition_paused() {
    use crate::{
        helpers::admin_database_url,
        outage::spawn_through,
        proxy::{upstream_of, PgProxy},
    };

    let (brokers, ns) = (kafka::broker(), kafka::unique("blip"));
    let proxy = PgProxy::start(&upstream_of(&admin_database_url())).await;
    let app = spawn_through(&proxy, |s| {
        on_kafka(s, &brokers, &ns);
        s.event_bus.create_topic_partitions = 1;
        s.event_bus.retry_backoff_max_ms = 200;
    })
    .await;
    let token = app.token("alice", &["fintech:read", "fintech:write"]);
    let wallet = open_funded(&app, &token, 1, 0).await.remove(0);
    let topic = format!("{ns}.payments");
    kafka::create_topics(&brokers, &[&topic], 1).await;
    let producer = kafka::producer(&brokers);
    let applied = format!("beryl_events_applied_total{{topic=\"{topic}\",actor=\"fintech\",result=\"applied\"}}");
    let failed = format!("beryl_events_failed_total{{topic=\"{topic}\",reason=\"ledger_unavailable\"}}");
    let paused = "beryl_events_paused_partitions";
    kafka::produce(&producer, &topic, &wallet, &payment("evt-before", &wallet, 500)).await;
    eventually("the first payment applied", Duration::from_secs(30), || async {
        (sample(&app.metrics().await, &applied) == Some(1.0)).then_some(())
    })
    .await;

    proxy.lose_traffic();
    kafka::produce(&producer, &topic, &wallet, &payment("evt-during-1", &wallet, 200)).await;
    kafka::produce(&producer, &topic, &wallet, &payment("evt-during-2", &wallet, 300)).await;
    eventually("the payment retried with its partition paused", Duration::from_secs(30), || async {
        let m = app.metrics().await;
        (sample(&m, &failed).unwrap_or_default() >= 2.0 && sample(&m, paused) == Some(1.0)).then_some(())
    })
    .await;
    proxy.cut();
    proxy.restore();
    eventually("both payments applied once the ledger answers", Duration::from_secs(15), || async {
        let m = app.metrics().await;
        (sample(&m, &applied) == Some(3.0) && sample(&m, paused) == Some(0.0)).then_some(())
    })
    .await;
    assert_eq!(version_and_balance(&app, &token, &wallet).await.1, 1_000);
    let (b, dlq) = (brokers.clone(), format!("{topic}.dlq"));
    let letters =
        tokio::task::spawn_blocking(move || kafka::read_topic(&b, &dlq, 0, Duration::from_secs(5))).await.unwrap();
    assert!(letters.is_empty(), "a transient failure is never dead-lettered: {letters:?}");
}

#[actix_web::test]
async fn dlq_replay_publishes_the_chosen_dead_letters_to_their_topic_again_and_audits_each() {
    let (brokers, ns) = (kafka::broker(), kafka::unique("replay"));
    let app = spawn_with(|s| {
        on_kafka(s, &brokers, &ns);
        s.event_bus.create_topic_partitions = 1;
    })
    .await;
    let token = app.token("alice", &["fintech:read", "fintech:write"]);
    let admin = app.token("compliance", &["admin"]);
    let wallet = open_funded(&app, &token, 1, 0).await.remove(0);
    let (status, body, _) = post(&app, &admin, &format!("/api/v1/fintech/wallets/{wallet}/freeze"), json!({})).await;
    assert_eq!(status, 200, "{body}");
    let topic = format!("{ns}.payments");
    let dlq = format!("{topic}.dlq");
    kafka::create_topics(&brokers, &[&topic], 1).await;
    let producer = kafka::producer(&brokers);
    kafka::produce(&producer, &topic, &wallet, b"{not json").await;
    kafka::produce(&producer, &topic, &wallet, &payment("evt-frozen", &wallet, 400)).await;
    let letters = |reason: &str| format!("beryl_events_dead_lettered_total{{topic=\"{topic}\",reason=\"{reason}\"}}");
    eventually("both messages dead-lettered", Duration::from_secs(30), || async {
        let m = app.metrics().await;
        (sample(&m, &letters("malformed")) == Some(1.0) && sample(&m, &letters("wallet_frozen")) == Some(1.0))
            .then_some(())
    })
    .await;

    // The cause fixed (the wallet unfrozen), the operator replays what it refused, and only that.
    let (status, body, _) = post(&app, &admin, &format!("/api/v1/fintech/wallets/{wallet}/unfreeze"), json!({})).await;
    assert_eq!(status, 200, "{body}");
    let dir = tempfile::tempdir().unwrap();
    let audit_file = dir.path().join("pod-a.log");
    let mut vars = kafka_vars(&brokers, &ns);
    vars.push(("AUDIT_ENABLED".into(), "true".into()));
    vars.push(("AUDIT_LOG_FILE".into(), audit_file.to_str().unwrap().into()));
    let cli = |args: Vec<String>, vars: Vec<(String, String)>| async move {
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            crate::helpers::run_cli(&args, &vars)
        })
        .await
        .unwrap()
    };
    let args = |extra: &[&str]| {
        let mut a: Vec<String> = ["dlq", "replay", "--topic", &dlq].iter().map(|s| s.to_string()).collect();
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let (code, _, stderr) = cli(args(&["--operator", "sre-alice"]), vars.clone()).await;
    assert_eq!(code, 2, "nothing chosen: {stderr}");
    let (code, stdout, stderr) =
        cli(args(&["--reason", "wallet_frozen", "--operator", "sre-alice", "--dry-run"]), vars.clone()).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("2 dead letters, 1 chosen") && stdout.contains("would replay 0:1"), "{stdout}");
    assert_eq!(version_and_balance(&app, &token, &wallet).await.1, 0, "a dry run publishes nothing");
    let (code, stdout, stderr) =
        cli(args(&["--reason", "wallet_frozen", "--operator", "sre-alice"]), vars.clone()).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains(&format!("replayed {dlq}/0/1 -> {topic}/0/2")), "{stdout}");
    eventually("the replayed payment applied", Duration::from_secs(30), || async {
        (version_and_balance(&app, &token, &wallet).await.1 == 400).then_some(())
    })
    .await;
    let (b, t) = (brokers.clone(), topic.clone());
    let inbound =
        tokio::task::spawn_blocking(move || kafka::read_topic(&b, &t, 3, Duration::from_secs(30))).await.unwrap();
    assert_eq!(inbound.len(), 3, "the malformed message was not replayed");
    let replayed = &inbound[2];
    assert_eq!(replayed.header("replayed-from"), Some(format!("{dlq}/0/1").as_str()));
    assert_eq!(replayed.header("request-id"), Some("test-producer"), "original headers kept");
    assert!(replayed.header("dlq-reason").is_none());
    assert_eq!(replayed.key, wallet);

    // The audit log next to the service's file records who replayed what, in a chain that verifies.
    let audited = dir.path().join("pod-a-cli.log");
    let text = std::fs::read_to_string(&audited).unwrap();
    let records: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(records.len(), 1, "{text}");
    assert_eq!(records[0]["subject"], "sre-alice");
    assert_eq!(records[0]["action"], "dlq replay");
    assert_eq!(records[0]["resource"], format!("{dlq}/0/1"));
    assert_eq!(records[0]["outcome"], "success");
    let (code, stdout, _) = cli(vec!["audit".into(), "verify".into(), audited.to_str().unwrap().into()], vec![]).await;
    assert_eq!(code, 0, "{stdout}");
}
