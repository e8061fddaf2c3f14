//! PostgreSQL outages, played with a proxy between the application and the shared server: lost
//! traffic and cut connections under load lose no acknowledged write, the writer answers
//! `ledger_unavailable` or `overloaded` instead of hanging and writes again within seconds of
//! the database answering, and a payment waits the outage out with its partition paused instead
//! of going to the dead-letter topic.

use std::{
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use beryl_core_api::{
    adapters::bus::OutRecord,
    config::{EventBusKind, Settings},
};
use serde_json::{json, Value};

use crate::{
    helpers::{admin_database_url, eventually, sample, spawn_with, TestApp},
    proxy::{upstream_of, PgProxy},
};

static KEYS: AtomicU64 = AtomicU64::new(0);

fn key() -> String {
    format!("out-{}-{}", std::process::id(), KEYS.fetch_add(1, Ordering::Relaxed))
}

/// The application with its database reached through `proxy`, and short timeouts.
pub async fn spawn_through(proxy: &PgProxy, adjust: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_with(|s| {
        let url = s.database.url.as_ref().unwrap().expose().to_string();
        s.database.url = Some(proxy.route(&url).as_str().into());
        s.database.statement_timeout_ms = 1_000;
        s.rate_limit.enabled = false;
        adjust(s);
    })
    .await
}

/// The application's database, reached directly.
async fn direct(app: &TestApp, proxy: &PgProxy) -> tokio_postgres::Client {
    let url = proxy.unroute(app.state.settings.database.url.as_ref().unwrap().expose());
    let (db, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    actix_rt::spawn(connection);
    db
}

async fn open_wallet(app: &TestApp, token: &str) -> String {
    let res = app
        .client
        .post(app.url("/api/v1/fintech/wallets"))
        .bearer_auth(token)
        .header("Idempotency-Key", key())
        .json(&json!({"currency": "EUR"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    res.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned()
}

/// What the load saw.
#[derive(Default)]
struct Tally {
    /// Transaction ids of the deposits acknowledged (201).
    acked: Vec<String>,
    /// Refusals: the code, whether `Retry-After` came with it, and the idempotency key.
    refused: Vec<(String, bool, String)>,
}

/// One client depositing 1 unit after another until `stop`, each under a new key.
async fn deposits(app: Arc<TestApp>, token: String, wallet: String, stop: Arc<AtomicBool>, tally: Arc<Mutex<Tally>>) {
    let path = format!("/api/v1/fintech/wallets/{wallet}/deposits");
    while !stop.load(Ordering::Relaxed) {
        let k = key();
        let sent = app
            .client
            .post(app.url(&path))
            .bearer_auth(&token)
            .header("Idempotency-Key", &k)
            .json(&json!({"amount": 1, "reference": "load"}))
            .timeout(Duration::from_secs(30))
            .send()
            .await;
        let Ok(res) = sent else { continue };
        let (status, retry_after) = (res.status().as_u16(), res.headers().contains_key("retry-after"));
        let body: Value = res.json().await.unwrap_or(Value::Null);
        if status == 201 {
            tally.lock().unwrap().acked.push(body["id"].as_str().unwrap().to_owned());
        } else {
            let code = body["code"].as_str().unwrap_or("none").to_owned();
            tally.lock().unwrap().refused.push((code, retry_after, k));
            // A refused client comes back a little later rather than spinning.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[actix_web::test]
async fn writes_survive_lost_traffic_and_cut_connections_and_resume_within_ten_seconds() {
    let proxy = PgProxy::start(&upstream_of(&admin_database_url())).await;
    let app = Arc::new(spawn_through(&proxy, |s| s.fintech.writer_queue_max = 4).await);
    let token = app.token("alice", &["fintech:read", "fintech:write", "fintech:settle"]);
    let mut wallets = Vec::new();
    for _ in 0..4 {
        wallets.push(open_wallet(&app, &token).await);
    }
    let (stop, tally) = (Arc::new(AtomicBool::new(false)), Arc::new(Mutex::new(Tally::default())));
    let clients: Vec<_> = (0..16)
        .map(|i| {
            let (app, token, wallet) = (app.clone(), token.clone(), wallets[i % wallets.len()].clone());
            actix_rt::spawn(deposits(app, token, wallet, stop.clone(), tally.clone()))
        })
        .collect();
    let acked = || tally.lock().unwrap().acked.len();
    eventually("writes under load", Duration::from_secs(10), || async { (acked() >= 50).then_some(()) }).await;

    // Packets lost: the writer neither hangs nor lets its queue grow; callers get 503s.
    proxy.lose_traffic();
    let seen = tally.lock().unwrap().refused.len();
    eventually("503 ledger_unavailable and overloaded, with Retry-After", Duration::from_secs(20), || async {
        let t = tally.lock().unwrap();
        let during = &t.refused[seen..];
        let saw = |code: &str| during.iter().any(|(c, retry, _)| c == code && *retry);
        (saw("ledger_unavailable") && saw("overloaded")).then_some(())
    })
    .await;

    // Traffic back: writes succeed again within 10 s.
    proxy.restore();
    let (restored, before) = (Instant::now(), acked());
    eventually("writes after the traffic came back", Duration::from_secs(10), || async {
        (acked() > before + 10).then_some(())
    })
    .await;
    let after_loss = restored.elapsed();

    // Every connection cut: the same.
    proxy.cut();
    let (cut, before) = (Instant::now(), acked());
    eventually("writes after the connections were cut", Duration::from_secs(10), || async {
        (acked() > before + 10).then_some(())
    })
    .await;
    let after_cut = cut.elapsed();
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.unwrap();
    }
    eprintln!("writes again {after_loss:?} after the traffic came back, {after_cut:?} after the cut");

    // Nothing acknowledged is lost, money is conserved, and nothing refused as overloaded was
    // applied.
    let t = std::mem::take(&mut *tally.lock().unwrap());
    let db = direct(&app, &proxy).await;
    let ids: Vec<uuid::Uuid> = t.acked.iter().map(|id| id.parse().unwrap()).collect();
    let found: i64 =
        db.query_one("SELECT count(*) FROM ledger_transactions WHERE id = ANY($1)", &[&ids]).await.unwrap().get(0);
    assert_eq!(found as usize, ids.len(), "every acknowledged deposit is in the ledger");
    let row = db
        .query_one(
            "SELECT (SELECT COALESCE(SUM(balance), 0) FROM wallets)::int8,
                    (SELECT COALESCE(SUM(amount), 0) FROM ledger_transactions WHERE kind = 'deposit')::int8,
                    (SELECT count(*) FROM wallet_journal WHERE kind = 'deposit')",
            &[],
        )
        .await
        .unwrap();
    let (balances, deposited, journal): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
    assert_eq!(balances, deposited, "balances equal what was deposited");
    assert_eq!(journal, deposited, "one journal entry per deposit");
    assert!(deposited >= ids.len() as i64);
    let overloaded: Vec<&str> =
        t.refused.iter().filter(|(code, _, _)| code == "overloaded").map(|(_, _, k)| k.as_str()).collect();
    let kept: i64 =
        db.query_one("SELECT count(*) FROM idempotency_keys WHERE key = ANY($1)", &[&overloaded]).await.unwrap().get(0);
    assert_eq!(kept, 0, "an overloaded refusal applied nothing");
    let m = app.metrics().await;
    assert!(sample(&m, "beryl_ledger_overloaded_total").unwrap_or_default() >= 1.0);
}

#[actix_web::test]
async fn a_payment_waits_out_an_outage_with_its_partition_paused_and_is_never_dead_lettered() {
    let proxy = PgProxy::start(&upstream_of(&admin_database_url())).await;
    let app = spawn_through(&proxy, |s| {
        s.event_bus.kind = Some(EventBusKind::Memory);
        s.event_bus.relay = false;
        s.event_bus.commit_interval_ms = 50;
        s.event_bus.retry_backoff_ms = 50;
        s.event_bus.retry_backoff_max_ms = 200;
    })
    .await;
    let token = app.token("alice", &["fintech:read", "fintech:write", "fintech:settle"]);
    let wallet = open_wallet(&app, &token).await;
    let (broker, topic, group) = (app.state.actors.broker.clone(), "beryl.fintech.payments", "beryl-core-api");
    let deliver = |event: &str, amount: i64| {
        let payload = json!({
            "event_id": event, "type": "payment.settled", "schema_version": 1,
            "wallet_id": wallet, "amount": amount, "currency": "EUR", "reference": format!("psp-{event}")
        });
        broker.append(OutRecord {
            topic: topic.into(),
            key: Some(wallet.as_bytes().to_vec()),
            payload: serde_json::to_vec(&payload).unwrap(),
            headers: vec![],
        })
    };
    let applied = "beryl_events_applied_total{topic=\"beryl.fintech.payments\",actor=\"fintech\",result=\"applied\"}";
    let failed = "beryl_events_failed_total{topic=\"beryl.fintech.payments\",reason=\"ledger_unavailable\"}";
    let paused = "beryl_events_paused_partitions";
    let first = deliver("evt-before", 500);
    eventually("the first payment applied and committed", Duration::from_secs(10), || async {
        let done = sample(&app.metrics().await, applied) == Some(1.0)
            && broker.committed(group, topic, first.partition) == first.offset + 1;
        done.then_some(())
    })
    .await;

    proxy.lose_traffic();
    let second = deliver("evt-during-1", 200);
    let third = deliver("evt-during-2", 300);
    assert_eq!(second.partition, first.partition);
    eventually("the payment retried with its partition paused", Duration::from_secs(20), || async {
        let m = app.metrics().await;
        (sample(&m, failed).unwrap_or_default() >= 2.0 && sample(&m, paused) == Some(1.0)).then_some(())
    })
    .await;
    assert_eq!(broker.committed(group, topic, first.partition), second.offset, "nothing unapplied is committed");
    proxy.cut();
    proxy.restore();

    eventually("both payments applied once the ledger answers", Duration::from_secs(10), || async {
        let m = app.metrics().await;
        let done = sample(&m, applied) == Some(3.0)
            && sample(&m, paused) == Some(0.0)
            && broker.committed(group, topic, first.partition) == third.offset + 1;
        done.then_some(())
    })
    .await;
    assert!(broker.records("beryl.fintech.payments.dlq").is_empty(), "a transient failure is never dead-lettered");
    let balance = app.get_as(&format!("/api/v1/fintech/wallets/{wallet}"), &token).await.json::<Value>().await.unwrap();
    assert_eq!(balance["balance"], 1_000);
}
