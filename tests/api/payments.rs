//! Payments against a real local HTTP server standing in for the provider (wiremock), with real
//! PostgreSQL: top-ups send their idempotency key and answer the client secret, the signed
//! webhook credits the wallet exactly once, bad deliveries are refused and audited, both secrets
//! of a rotation verify, payouts hold their money until paid or give it back when failed, an
//! unreachable provider is 503 + Retry-After, and the in-process simulator settles a top-up
//! through the service's own webhook.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use beryl_core_api::{
    actors::payments::provider_key,
    adapters::bus::OutRecord,
    config::{EventBusKind, Settings},
    domain::{
        fintech::{Amount, Currency, LedgerOutcome, PaymentSettled, WalletId},
        idempotency::IdempotencyKey,
        payments::sign,
    },
};
use serde_json::{json, Value};
use wiremock::{
    matchers::{bearer_token, body_string_contains, header, method, path},
    Mock, MockServer, ResponseTemplate,
};

use crate::helpers::{eventually, sample, spawn_with, TestApp};

const SECRET: &str = "whsec_test_current_0123456789";
const OLD_SECRET: &str = "whsec_test_previous_0123456789";
const API_KEY: &str = "sk_test_0123456789";

static KEYS: AtomicU64 = AtomicU64::new(0);

fn key() -> String {
    format!("pay-{}-{}", std::process::id(), KEYS.fetch_add(1, Ordering::Relaxed))
}

/// The provider at `url`, quick to give up, with the webhook secrets of a rotation.
fn provider(s: &mut Settings, url: &str) {
    let p = &mut s.adapters.payments;
    p.provider.url = Some(url.into());
    p.provider.api_key = Some(API_KEY.into());
    p.provider.connect_timeout_ms = 300;
    p.provider.attempt_timeout_ms = 300;
    p.provider.total_timeout_ms = 1000;
    p.provider.retry_backoff_ms = 5;
    p.provider.retry_backoff_max_ms = 20;
    p.provider.breaker_min_calls = 5;
    p.provider.breaker_open_ms = 60_000;
    p.webhook_secret = Some(SECRET.into());
    p.webhook_secrets_previous = vec![OLD_SECRET.into()];
}

async fn post(app: &TestApp, token: &str, path: &str, body: Value, key: &str) -> (u16, Value, Option<String>) {
    let res = app
        .client
        .post(app.url(path))
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let retry_after = res.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
    (status, res.json().await.unwrap_or(Value::Null), retry_after)
}

fn alice(app: &TestApp) -> String {
    app.token("alice", &["fintech:read", "fintech:write"])
}

async fn open(app: &TestApp) -> String {
    let (status, body, _) = post(app, &alice(app), "/api/v1/fintech/wallets", json!({"currency": "EUR"}), &key()).await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

async fn fund(app: &TestApp, wallet: &str, amount: i64) {
    let settler = app.token("psp-bridge", &["fintech:settle"]);
    let path = format!("/api/v1/fintech/wallets/{wallet}/deposits");
    let (status, body, _) = post(app, &settler, &path, json!({"amount": amount, "reference": "seed"}), &key()).await;
    assert_eq!(status, 201, "{body}");
}

async fn balance(app: &TestApp, wallet: &str) -> i64 {
    let res = app.get_as(&format!("/api/v1/fintech/wallets/{wallet}"), &alice(app)).await;
    res.json::<Value>().await.unwrap()["balance"].as_i64().unwrap()
}

/// (balance, available) of a wallet: a payout's hold leaves the balance and lowers what is
/// available until the provider reports on it.
async fn funds(app: &TestApp, wallet: &str) -> (i64, i64) {
    let res = app.get_as(&format!("/api/v1/fintech/wallets/{wallet}"), &alice(app)).await;
    let body = res.json::<Value>().await.unwrap();
    assert_eq!(body["held"].as_i64().unwrap(), body["balance"].as_i64().unwrap() - body["available"].as_i64().unwrap());
    (body["balance"].as_i64().unwrap(), body["available"].as_i64().unwrap())
}

/// Deliver `event` signed at `at` with `secret`; (status, body).
async fn deliver_signed(app: &TestApp, event: &Value, secret: &str, at: i64) -> (u16, Value) {
    let body = serde_json::to_vec(event).unwrap();
    deliver(app, &body, Some(sign(secret, at, &body))).await
}

async fn deliver(app: &TestApp, body: &[u8], signature: Option<String>) -> (u16, Value) {
    let mut req = app.client.post(app.url("/webhooks/payments")).header("content-type", "application/json");
    if let Some(signature) = signature {
        req = req.header("Stripe-Signature", signature);
    }
    let res = req.body(body.to_vec()).send().await.unwrap();
    (res.status().as_u16(), res.json().await.unwrap_or(Value::Null))
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn intent_succeeded(event_id: &str, intent: &str, amount: i64, currency: &str, wallet: &str) -> Value {
    json!({
        "id": event_id, "object": "event", "type": "payment_intent.succeeded", "created": now(),
        "data": {"object": {"id": intent, "object": "payment_intent", "amount": amount, "currency": currency,
            "status": "succeeded", "metadata": {"wallet_id": wallet}}}
    })
}

fn payout_event(event_id: &str, kind: &str, payout: &str, ours: &str) -> Value {
    json!({
        "id": event_id, "object": "event", "type": kind, "created": now(),
        "data": {"object": {"id": payout, "object": "payout", "failure_code": "account_closed",
            "metadata": {"payout_id": ours}}}
    })
}

/// A provider answering every intent `pi_test_1` for 1250 EUR.
async fn intents_provider() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .and(bearer_token(API_KEY))
        .and(body_string_contains("amount=1250"))
        .and(body_string_contains("currency=eur"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "pi_test_1", "object": "payment_intent", "amount": 1250, "currency": "eur",
            "client_secret": "pi_test_1_secret_abc", "status": "requires_payment_method"
        })))
        .mount(&server)
        .await;
    server
}

/// Sum of balances and net money in: equal whenever the ledger is right.
async fn conserved(app: &TestApp) {
    let url = app.state.settings.database.url.as_ref().unwrap().expose().to_owned();
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    actix_rt::spawn(async move {
        let _ = connection.await;
    });
    let row = client
        .query_one(
            "SELECT (SELECT COALESCE(SUM(balance), 0) FROM wallets)::text,
                    (SELECT COALESCE(SUM(CASE kind WHEN 'deposit' THEN amount WHEN 'withdrawal' THEN -amount ELSE 0 END), 0)
                     FROM ledger_transactions)::text",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), row.get::<_, String>(1), "balances against net money in");
}

#[actix_web::test]
async fn a_top_up_sends_its_key_and_the_webhook_credits_the_wallet_exactly_once() {
    let server = intents_provider().await;
    let app = spawn_with(|s| provider(s, &server.uri())).await;
    let wallet = open(&app).await;
    let k = key();
    let path = format!("/api/v1/fintech/wallets/{wallet}/top-ups");
    let (status, body, _) = post(&app, &alice(&app), &path, json!({"amount": 1250}), &k).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["client_secret"], "pi_test_1_secret_abc");
    assert_eq!(
        (body["intent_id"].as_str(), body["amount"].as_i64(), body["currency"].as_str()),
        (Some("pi_test_1"), Some(1250), Some("EUR"))
    );
    let sent = server.received_requests().await.unwrap();
    // The caller's key, prefixed by a digest of the caller's blind index (never of their id).
    let sent_key = sent[0].headers.get("idempotency-key").unwrap().to_str().unwrap().to_string();
    let (prefix, rest) = sent_key.split_once('-').unwrap();
    assert_eq!(rest, k);
    assert!(prefix.len() == 16 && prefix.chars().all(|c| c.is_ascii_hexdigit()), "{sent_key}");
    assert_ne!(sent_key, provider_key("alice", &IdempotencyKey::parse(&k).unwrap()));
    let form = String::from_utf8_lossy(&sent[0].body).to_string();
    assert!(form.contains(&format!("metadata%5Bwallet_id%5D={wallet}")), "{form}");

    let event = intent_succeeded("evt_topup_1", "pi_test_1", 1250, "eur", &wallet);
    let signed_at = now();
    let (status, body) = deliver_signed(&app, &event, SECRET, signed_at).await;
    assert_eq!((status, body["outcome"].as_str()), (200, Some("applied")), "{body}");
    assert_eq!(balance(&app, &wallet).await, 1250);

    // The provider delivers the same event again, signed anew (at another second, however long
    // the first took): taken, nothing changes.
    let (status, body) = deliver_signed(&app, &event, SECRET, signed_at - 1).await;
    assert_eq!((status, body["outcome"].as_str()), (200, Some("duplicate")), "{body}");
    // The same event id through the Kafka path's application: nothing changes either.
    let again = PaymentSettled {
        event_id: "evt_topup_1".into(),
        wallet: wallet.parse::<WalletId>().unwrap(),
        amount: Amount::new(1250).unwrap(),
        currency: Currency::parse("EUR").unwrap(),
        reference: "pi_test_1".into(),
    };
    let outcome = app.state.actors.fintech.settle_payment(&again, None).await.unwrap();
    assert_eq!(outcome, LedgerOutcome::DuplicateKey);
    assert_eq!(balance(&app, &wallet).await, 1250);

    // An event about the same intent that says another amount is refused.
    let wrong = intent_succeeded("evt_topup_2", "pi_test_1", 9999, "eur", &wallet);
    let (status, body) = deliver_signed(&app, &wrong, SECRET, now()).await;
    assert_eq!((status, body["code"].as_str()), (422, Some("webhook_mismatch")), "{body}");
    assert_eq!(balance(&app, &wallet).await, 1250);
    conserved(&app).await;

    // Her export lists the top-up, without its client secret.
    let archive: Value =
        app.get_as("/api/v1/privacy/export", &app.token("alice", &["privacy:read"])).await.json().await.unwrap();
    let top_ups = &archive["domains"]["payments"]["top_ups"];
    assert_eq!(top_ups.as_array().map(Vec::len), Some(1), "{archive}");
    assert_eq!(
        (top_ups[0]["intent_id"].as_str(), top_ups[0]["wallet_id"].as_str(), top_ups[0]["amount"].as_i64()),
        (Some("pi_test_1"), Some(wallet.as_str()), Some(1250))
    );
    assert!(!archive.to_string().contains("pi_test_1_secret_abc"), "{archive}");
}

#[actix_web::test]
async fn bad_deliveries_are_refused_with_their_codes_and_audited() {
    let server = MockServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    let (file, uri) = (log.clone(), server.uri());
    let app = spawn_with(move |s| {
        provider(s, &uri);
        s.audit.enabled = true;
        s.audit.log_file = file;
        s.audit.denial_window_secs = 0;
    })
    .await;
    let event = json!({"id": "evt_other_1", "object": "event", "type": "customer.created", "created": now(),
        "data": {"object": {"id": "cus_1"}}});
    let body = serde_json::to_vec(&event).unwrap();
    let good = sign(SECRET, now(), &body);
    let cases: Vec<(Option<String>, &str)> = vec![
        (None, "webhook_unsigned"),
        (Some("t=1,v0=abc".into()), "webhook_unsigned"),
        (Some(sign("whsec_someone_else", now(), &body)), "webhook_signature_invalid"),
        (Some(sign(SECRET, now() - 301, &body)), "webhook_timestamp_stale"),
    ];
    for (signature, code) in cases {
        let (status, answer) = deliver(&app, &body, signature.clone()).await;
        assert_eq!((status, answer["code"].as_str()), (400, Some(code)), "{signature:?}: {answer}");
    }
    // A verified event of a type not handled is taken (the provider would retry it for days).
    let (status, answer) = deliver(&app, &body, Some(good.clone())).await;
    assert_eq!((status, answer["outcome"].as_str()), (200, Some("ignored")), "{answer}");
    // The very same signed delivery again is a replay.
    let (status, answer) = deliver(&app, &body, Some(good)).await;
    assert_eq!((status, answer["code"].as_str()), (400, Some("webhook_replayed")), "{answer}");

    let metrics = app.metrics().await;
    for (outcome, count) in
        [("unsigned", 2.0), ("bad_signature", 1.0), ("stale", 1.0), ("replayed", 1.0), ("ignored", 1.0)]
    {
        let series = format!("beryl_payments_webhooks_total{{outcome=\"{outcome}\"}}");
        assert_eq!(sample(&metrics, &series), Some(count), "{series}");
    }
    let denied = eventually("five audited denials", Duration::from_secs(10), || async {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let n = text.lines().filter(|l| l.contains("/webhooks/payments") && l.contains("\"denied\"")).count();
        (n >= 5).then_some(n)
    })
    .await;
    assert_eq!(denied, 5);
}

#[actix_web::test]
async fn during_a_rotation_the_old_and_the_new_secret_both_verify() {
    let server = MockServer::start().await;
    let app = spawn_with(|s| provider(s, &server.uri())).await;
    for (i, secret) in [SECRET, OLD_SECRET].into_iter().enumerate() {
        let event = json!({"id": format!("evt_rot_{i}"), "object": "event", "type": "balance.available",
            "created": now(), "data": {"object": {}}});
        let (status, body) = deliver_signed(&app, &event, secret, now()).await;
        assert_eq!(status, 200, "{secret}: {body}");
    }
    let event = json!({"id": "evt_rot_x", "type": "balance.available", "data": {"object": {}}});
    let (status, _) = deliver_signed(&app, &event, "whsec_retired", now()).await;
    assert_eq!(status, 400);

    // Signed, but not an event this service can read: refused, and nothing to retry for.
    let (status, body) = deliver_signed(&app, &json!({"id": "evt_bad", "type": "payout.paid"}), SECRET, now()).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("webhook_malformed")), "{body}");
    // A collected intent this service did not create is acknowledged and changes nothing.
    let stranger = intent_succeeded("evt_stranger", "pi_not_ours", 100, "eur", "0190f0a0-0000-7000-8000-000000000001");
    let (status, body) = deliver_signed(&app, &stranger, SECRET, now()).await;
    assert_eq!((status, body["outcome"].as_str()), (200, Some("ignored")), "{body}");
}

/// A provider creating every payout as `po_<n>`.
async fn payouts_provider(server: &MockServer, id: &str) {
    Mock::given(method("POST"))
        .and(path("/v1/payouts"))
        .and(bearer_token(API_KEY))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"id": id, "object": "payout", "status": "pending"})),
        )
        .mount(server)
        .await;
}

#[actix_web::test]
async fn a_payout_holds_its_money_until_paid_and_a_failed_one_gives_it_back() {
    let server = MockServer::start().await;
    payouts_provider(&server, "po_test_1").await;
    let app = spawn_with(|s| provider(s, &server.uri())).await;
    let wallet = open(&app).await;
    fund(&app, &wallet, 1000).await;
    let path = format!("/api/v1/fintech/wallets/{wallet}/payouts");

    let k = key();
    let (status, paid, _) = post(&app, &alice(&app), &path, json!({"amount": 300, "destination": "ba_123"}), &k).await;
    assert_eq!((status, paid["status"].as_str()), (201, Some("in_transit")), "{paid}");
    assert_eq!(funds(&app, &wallet).await, (1000, 700), "held at once: the balance stays, less is available");
    let sent = server.received_requests().await.unwrap();
    assert_eq!(sent[0].headers.get("idempotency-key").unwrap().to_str().unwrap(), paid["id"].as_str().unwrap());
    let ours = paid["id"].as_str().unwrap();
    let (status, body) =
        deliver_signed(&app, &payout_event("evt_po_1", "payout.paid", "po_test_1", ours), SECRET, now()).await;
    assert_eq!((status, body["outcome"].as_str()), (200, Some("applied")), "{body}");
    assert_eq!(funds(&app, &wallet).await, (700, 700), "paid: the hold is posted, the money is out");
    // The same request again answers the same payout and pays nothing more.
    let (status, again, _) = post(&app, &alice(&app), &path, json!({"amount": 300, "destination": "ba_123"}), &k).await;
    assert_eq!((status, again["id"].clone(), again["status"].as_str()), (201, paid["id"].clone(), Some("paid")));
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
    assert_eq!(balance(&app, &wallet).await, 700);

    server.reset().await;
    payouts_provider(&server, "po_test_2").await;
    let (status, failing, _) =
        post(&app, &alice(&app), &path, json!({"amount": 200, "destination": "ba_456"}), &key()).await;
    assert_eq!(status, 201, "{failing}");
    assert_eq!(funds(&app, &wallet).await, (700, 500));
    let ours = failing["id"].as_str().unwrap();
    let failed = payout_event("evt_po_2", "payout.failed", "po_test_2", ours);
    let (status, body) = deliver_signed(&app, &failed, SECRET, now()).await;
    assert_eq!((status, body["outcome"].as_str()), (200, Some("applied")), "{body}");
    assert_eq!(funds(&app, &wallet).await, (700, 700), "failed: the hold is released");
    let (status, body) = deliver_signed(&app, &failed, SECRET, now() - 2).await;
    assert_eq!((status, body["outcome"].as_str()), (200, Some("duplicate")), "{body}");
    assert_eq!(funds(&app, &wallet).await, (700, 700), "released once");

    // More than the wallet holds: refused, nothing held, nothing sent; the same key answers the
    // same refusal again.
    let broke = key();
    for _ in 0..2 {
        let (status, body, _) =
            post(&app, &alice(&app), &path, json!({"amount": 5000, "destination": "ba_456"}), &broke).await;
        assert_eq!((status, body["code"].as_str()), (422, Some("insufficient_funds")), "{body}");
    }
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
    assert_eq!(funds(&app, &wallet).await, (700, 700));
    conserved(&app).await;
    // Her export lists her payouts as they stand, oldest first.
    let archive: Value =
        app.get_as("/api/v1/privacy/export", &app.token("alice", &["privacy:read"])).await.json().await.unwrap();
    let listed: Vec<(Value, Value, Value, Value)> = archive["domains"]["payments"]["payouts"]
        .as_array()
        .unwrap_or_else(|| panic!("payouts in the export: {archive}"))
        .iter()
        .map(|p| (p["id"].clone(), p["status"].clone(), p["amount"].clone(), p["destination"].clone()))
        .collect();
    assert_eq!(
        listed[..2],
        [
            (paid["id"].clone(), json!("paid"), json!(300), json!("ba_123")),
            (failing["id"].clone(), json!("failed"), json!(200), json!("ba_456")),
        ],
        "{archive}"
    );
    let metrics = app.metrics().await;
    assert_eq!(sample(&metrics, "beryl_payments_payouts_total{status=\"paid\"}"), Some(1.0));
    assert_eq!(sample(&metrics, "beryl_payments_payouts_total{status=\"failed\"}"), Some(2.0));
}

#[actix_web::test]
async fn an_unconfirmed_payout_stays_held_and_its_retry_uses_the_same_key() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/payouts"))
        .respond_with(
            ResponseTemplate::new(200).set_delay(Duration::from_secs(3)).set_body_json(json!({"id": "po_slow"})),
        )
        .mount(&server)
        .await;
    let app = spawn_with(|s| provider(s, &server.uri())).await;
    let wallet = open(&app).await;
    fund(&app, &wallet, 1000).await;
    let path = format!("/api/v1/fintech/wallets/{wallet}/payouts");
    let k = key();
    let (status, body, retry_after) =
        post(&app, &alice(&app), &path, json!({"amount": 400, "destination": "ba_789"}), &k).await;
    assert_eq!((status, body["code"].as_str()), (503, Some("service_unavailable")), "{body}");
    assert!(retry_after.is_some());
    assert_eq!(funds(&app, &wallet).await, (1000, 600), "held while the provider has not answered");

    server.reset().await;
    payouts_provider(&server, "po_after_retry").await;
    let (status, body, _) = post(&app, &alice(&app), &path, json!({"amount": 400, "destination": "ba_789"}), &k).await;
    assert_eq!((status, body["status"].as_str()), (201, Some("in_transit")), "{body}");
    assert_eq!(funds(&app, &wallet).await, (1000, 600), "held once");
    let sent = server.received_requests().await.unwrap();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].headers.get("idempotency-key").unwrap().to_str().unwrap(), body["id"].as_str().unwrap());
    conserved(&app).await;
}

#[actix_web::test]
async fn an_unreachable_provider_is_503_with_retry_after_and_no_fallback() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .and(header("authorization", format!("Bearer {API_KEY}").as_str()))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    let app = spawn_with(|s| provider(s, &server.uri())).await;
    let wallet = open(&app).await;
    let path = format!("/api/v1/fintech/wallets/{wallet}/top-ups");
    for _ in 0..6 {
        let (status, body, retry_after) = post(&app, &alice(&app), &path, json!({"amount": 1250}), &key()).await;
        assert_eq!((status, body["code"].as_str()), (503, Some("service_unavailable")), "{body}");
        assert!(retry_after.is_some());
    }
    let metrics = app.metrics().await;
    let open_circuit =
        "beryl_adapter_calls_total{adapter=\"payments\",operation=\"create_intent\",outcome=\"rejected_open_circuit\"}";
    assert!(sample(&metrics, open_circuit).unwrap_or(0.0) >= 1.0, "the burst opens the circuit");
    let calls = server.received_requests().await.unwrap().len();
    assert!(calls <= 5 + 10, "retries stay within the budget: {calls}");

    // Slow answers time out the same way.
    let slow = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(3)))
        .mount(&slow)
        .await;
    let app = spawn_with(|s| provider(s, &slow.uri())).await;
    let wallet = open(&app).await;
    let path = format!("/api/v1/fintech/wallets/{wallet}/top-ups");
    let (status, body, retry_after) = post(&app, &alice(&app), &path, json!({"amount": 1250}), &key()).await;
    assert_eq!((status, body["code"].as_str()), (503, Some("service_unavailable")), "{body}");
    assert!(retry_after.is_some());
    assert_eq!(balance(&app, &wallet).await, 0);
}

#[actix_web::test]
async fn without_a_provider_url_the_simulator_settles_through_the_webhook() {
    let app = spawn_with(|s| s.adapters.payments.simulator_settle_ms = 50).await;
    let wallet = open(&app).await;
    let path = format!("/api/v1/fintech/wallets/{wallet}/top-ups");
    let k = key();
    let (status, body, _) = post(&app, &alice(&app), &path, json!({"amount": 4200}), &k).await;
    assert_eq!(status, 201, "{body}");
    let intent = body["intent_id"].as_str().unwrap();
    // The same request again gets the same intent; the same key for another amount is refused.
    let (status, again, _) = post(&app, &alice(&app), &path, json!({"amount": 4200}), &k).await;
    assert_eq!((status, again["intent_id"].as_str()), (201, Some(intent)), "{again}");
    let (status, other, _) = post(&app, &alice(&app), &path, json!({"amount": 4201}), &k).await;
    assert_eq!(
        (status, other["code"].as_str(), other["fields"].clone()),
        (409, Some("idempotency_key_reused"), json!(["amount"]))
    );
    assert!(
        intent.starts_with("pi_") && body["client_secret"].as_str().unwrap().starts_with(&format!("{intent}_secret_"))
    );
    eventually("the simulated payment to be credited", Duration::from_secs(10), || async {
        (balance(&app, &wallet).await == 4200).then_some(())
    })
    .await;
    let metrics = app.metrics().await;
    assert_eq!(
        sample(&metrics, "beryl_payments_webhooks_total{outcome=\"applied\"}"),
        Some(1.0),
        "through the webhook"
    );

    // A payout to a failing test account comes back.
    let path = format!("/api/v1/fintech/wallets/{wallet}/payouts");
    let (status, body, _) =
        post(&app, &alice(&app), &path, json!({"amount": 1000, "destination": "ba_fail_closed"}), &key()).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(funds(&app, &wallet).await, (4200, 3200));
    eventually("the failed payout's hold to be released", Duration::from_secs(10), || async {
        (funds(&app, &wallet).await == (4200, 4200)).then_some(())
    })
    .await;
}

#[actix_web::test]
async fn a_payout_left_pending_is_resumed_under_the_same_key_without_its_caller() {
    let server = MockServer::start().await;
    Mock::given(method("POST")).and(path("/v1/payouts")).respond_with(ResponseTemplate::new(503)).mount(&server).await;
    let app = spawn_with(|s| {
        provider(s, &server.uri());
        s.adapters.payments.pending_retry_secs = 1;
    })
    .await;
    let wallet = open(&app).await;
    fund(&app, &wallet, 1000).await;
    let path = format!("/api/v1/fintech/wallets/{wallet}/payouts");
    let k = key();
    let (status, body, _) = post(&app, &alice(&app), &path, json!({"amount": 250, "destination": "ba_777"}), &k).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(funds(&app, &wallet).await, (1000, 750));

    // The provider is back; the caller never retries.
    server.reset().await;
    payouts_provider(&server, "po_resumed").await;
    let sent = eventually("the reconciler to create the payout", Duration::from_secs(20), || async {
        let sent = server.received_requests().await.unwrap();
        (!sent.is_empty()).then_some(sent)
    })
    .await;
    let idempotency = sent[0].headers.get("idempotency-key").unwrap().to_str().unwrap().to_owned();
    // The caller's late retry finds the same payout, confirmed, and holds nothing more.
    let body = eventually("the payout to be confirmed", Duration::from_secs(10), || async {
        let (status, body, _) =
            post(&app, &alice(&app), &path, json!({"amount": 250, "destination": "ba_777"}), &k).await;
        (status == 201).then_some(body)
    })
    .await;
    assert_eq!((body["id"].as_str(), body["provider_id"].as_str()), (Some(idempotency.as_str()), Some("po_resumed")));
    assert_eq!(funds(&app, &wallet).await, (1000, 750));
    assert!(sent.iter().all(|r| r.headers.get("idempotency-key").unwrap().to_str().unwrap() == idempotency));
    conserved(&app).await;
}

#[actix_web::test]
async fn graphql_top_ups_and_payouts_share_the_rest_path_and_its_codes() {
    let app = spawn_with(|s| s.adapters.payments.simulator_settle_ms = 50).await;
    let wallet = open(&app).await;
    let token = alice(&app);
    let top_up = format!(
        r#"mutation {{ topUp(wallet: "{wallet}", amount: 900, idempotencyKey: "{}") {{ intentId clientSecret amount currency status }} }}"#,
        key()
    );
    let answer = app.graphql(&token, &top_up).await;
    let t = &answer["data"]["topUp"];
    assert!(t["clientSecret"].as_str().unwrap().starts_with(t["intentId"].as_str().unwrap()), "{answer}");
    assert_eq!((t["amount"].as_i64(), t["currency"].as_str()), (Some(900), Some("EUR")));
    eventually("the top-up to be credited", Duration::from_secs(10), || async {
        (balance(&app, &wallet).await == 900).then_some(())
    })
    .await;

    let payout = |amount: i64| {
        format!(
            r#"mutation {{ payout(wallet: "{wallet}", amount: {amount}, destination: "ba_gql", idempotencyKey: "{}") {{ id status }} }}"#,
            key()
        )
    };
    let answer = app.graphql(&token, &payout(5000)).await;
    assert_eq!(answer["errors"][0]["extensions"]["code"], "insufficient_funds", "{answer}");
    let answer = app.graphql(&token, &payout(400)).await;
    assert_eq!(answer["data"]["payout"]["status"], "in_transit", "{answer}");
    assert_eq!(funds(&app, &wallet).await, (900, 500));
    let bob = app.token("bob", &["fintech:read", "fintech:write"]);
    let answer = app.graphql(&bob, &payout(10)).await;
    assert_eq!(answer["errors"][0]["extensions"]["code"], "not_owner", "{answer}");
}

#[actix_web::test]
async fn embedded_the_webhook_and_the_event_bus_apply_one_provider_event_once() {
    let app = spawn_with(|s| {
        s.database.url = None;
        s.redis.url = None;
        s.event_bus.kind = Some(EventBusKind::Memory);
        s.event_bus.commit_interval_ms = 50;
        s.adapters.payments.webhook_secret = Some(SECRET.into());
        // The simulator's own report comes long after this test; its deliveries are the test's.
        s.adapters.payments.simulator_settle_ms = 60_000;
    })
    .await;
    let wallet = open(&app).await;
    let path = format!("/api/v1/fintech/wallets/{wallet}/top-ups");
    let (status, body, _) = post(&app, &alice(&app), &path, json!({"amount": 3100}), &key()).await;
    assert_eq!(status, 201, "{body}");
    let intent = body["intent_id"].as_str().unwrap().to_owned();

    let event = intent_succeeded("evt_both_paths", &intent, 3100, "eur", &wallet);
    let (status, body) = deliver_signed(&app, &event, SECRET, now()).await;
    assert_eq!((status, body["outcome"].as_str()), (200, Some("applied")), "{body}");
    // The same provider event as the payment bridge publishes it on the inbound topic.
    app.state.actors.broker.append(OutRecord {
        topic: "beryl.fintech.payments".into(),
        key: Some(wallet.as_bytes().to_vec()),
        payload: serde_json::to_vec(&json!({
            "event_id": "evt_both_paths", "type": "payment.settled", "schema_version": 1,
            "wallet_id": wallet, "amount": 3100, "currency": "EUR", "reference": intent
        }))
        .unwrap(),
        headers: vec![],
    });
    let duplicate =
        "beryl_events_applied_total{topic=\"beryl.fintech.payments\",actor=\"fintech\",result=\"duplicate\"}";
    eventually("the bus delivery to be taken as a duplicate", Duration::from_secs(10), || async {
        (sample(&app.metrics().await, duplicate) == Some(1.0)).then_some(())
    })
    .await;
    assert_eq!(balance(&app, &wallet).await, 3100, "credited once");
}

#[actix_web::test]
async fn a_payout_the_provider_refuses_releases_its_hold_and_its_key_answers_the_same_refusal() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/payouts"))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_json(json!({"error": {"type": "invalid_request_error"}, "code": "account_closed"})),
        )
        .mount(&server)
        .await;
    let app = spawn_with(|s| provider(s, &server.uri())).await;
    let wallet = open(&app).await;
    fund(&app, &wallet, 1000).await;
    let path = format!("/api/v1/fintech/wallets/{wallet}/payouts");
    let k = key();
    let mut answers = Vec::new();
    for _ in 0..2 {
        let (status, body, _) =
            post(&app, &alice(&app), &path, json!({"amount": 300, "destination": "ba_closed"}), &k).await;
        answers.push((status, body["code"].clone(), body["reason"].clone()));
    }
    assert_eq!(answers[0].0, 422, "{answers:?}");
    assert_eq!(answers[0].1, "payment_refused");
    assert_eq!(answers[0], answers[1], "the replay answers the same refusal");
    assert_eq!(server.received_requests().await.unwrap().len(), 1, "asked once");
    assert_eq!(funds(&app, &wallet).await, (1000, 1000), "the hold is released");
    conserved(&app).await;
}

/// Payouts made before holds existed withdrew their money at once under the payout's hold id and
/// have no hold: a failure reported for one gives the money back (once), a payment takes nothing
/// more.
#[actix_web::test]
async fn a_payout_made_before_holds_existed_settles_without_a_hold() {
    use beryl_core_api::domain::{
        fintech::{Amount, LedgerCommand, LedgerOutcome, WalletId},
        payments::{Payout, PayoutStatus},
    };

    let server = MockServer::start().await;
    let app = spawn_with(|s| provider(s, &server.uri())).await;
    let wallet = open(&app).await;
    fund(&app, &wallet, 1000).await;
    let url = app.state.settings.database.url.as_ref().unwrap().expose().to_owned();
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    actix_rt::spawn(async move {
        let _ = connection.await;
    });
    let wallet_id: WalletId = wallet.parse().unwrap();
    let mut legacy = Vec::new();
    for (n, provider_id) in [(1, "po_old_1"), (2, "po_old_2")] {
        let p = Payout {
            id: uuid::Uuid::now_v7(),
            wallet: wallet_id,
            amount: 100 * n,
            currency: beryl_core_api::domain::fintech::Currency::parse("EUR").unwrap(),
            destination: "ba_old".into(),
            provider_id: Some(provider_id.into()),
            status: PayoutStatus::InTransit,
            failure: None,
        };
        client
            .execute(
                "INSERT INTO payouts (id, scope, key, wallet_id, amount, currency, destination, provider_id, status,
                                      created_at, updated_at)
                 VALUES ($1, 'alice', $2, $3, $4, 'EUR', 'ba_old', $5, 'in_transit', now(), now())",
                &[&p.id, &format!("old-{n}"), &wallet_id.0, &p.amount, &provider_id],
            )
            .await
            .unwrap();
        // The old hold: a withdrawal under the payout's hold id.
        let out = LedgerCommand::Withdraw {
            wallet: wallet_id,
            amount: Amount::new(p.amount).unwrap(),
            reference: p.reference(),
        };
        let applied = app.state.actors.fintech.apply_once(out, p.hold_transaction(), None).await.unwrap();
        assert!(matches!(applied, LedgerOutcome::Applied { .. }), "{applied:?}");
        legacy.push(p);
    }
    assert_eq!(funds(&app, &wallet).await, (700, 700));

    let paid = payout_event("evt_old_1", "payout.paid", "po_old_1", &legacy[0].id.to_string());
    let (status, body) = deliver_signed(&app, &paid, SECRET, now()).await;
    assert_eq!((status, body["outcome"].as_str()), (200, Some("applied")), "{body}");
    assert_eq!(funds(&app, &wallet).await, (700, 700), "paid: nothing more leaves");
    let failed = payout_event("evt_old_2", "payout.failed", "po_old_2", &legacy[1].id.to_string());
    let (status, body) = deliver_signed(&app, &failed, SECRET, now()).await;
    assert_eq!((status, body["outcome"].as_str()), (200, Some("applied")), "{body}");
    assert_eq!(funds(&app, &wallet).await, (900, 900), "failed: the money comes back");
    conserved(&app).await;
}
