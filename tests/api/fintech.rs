//! The fintech API over real HTTP with real PostgreSQL: wallets, movements, idempotency, refusals
//! that change nothing, and reads that are never stale across instances.

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{json, Value};

use std::time::Duration;

use crate::helpers::{create_database, eventually, sample, spawn_app, spawn_with, TestApp};

static KEYS: AtomicU64 = AtomicU64::new(0);

/// What is sent, where, and the status, code and field of the refusal.
type Case<'a> = (&'a str, &'a str, Value, u16, &'a str, Option<&'a str>);

fn key() -> String {
    format!("key-{}-{}", std::process::id(), KEYS.fetch_add(1, Ordering::Relaxed))
}

async fn post(
    app: &TestApp,
    token: &str,
    path: &str,
    body: Value,
    key: &str,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let res = app
        .client
        .post(app.url(path))
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let (status, headers) = (res.status().as_u16(), res.headers().clone());
    (status, res.json().await.unwrap_or(Value::Null), headers)
}

async fn get(app: &TestApp, token: &str, path: &str) -> (u16, Value) {
    let res = app.get_as(path, token).await;
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn open(app: &TestApp, token: &str, currency: &str) -> String {
    let (status, body, _) = post(app, token, "/api/v1/fintech/wallets", json!({"currency": currency}), &key()).await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().unwrap().to_string()
}

/// Money in as the payment provider's bridge settles it.
async fn deposit(app: &TestApp, wallet: &str, amount: i64) {
    let path = format!("/api/v1/fintech/wallets/{wallet}/deposits");
    let token = settler(app);
    let (status, body, _) = post(app, &token, &path, json!({"amount": amount, "reference": "psp-test"}), &key()).await;
    assert_eq!(status, 201, "{body}");
}

async fn wallet(app: &TestApp, token: &str, id: &str) -> Value {
    let (status, body) = get(app, token, &format!("/api/v1/fintech/wallets/{id}")).await;
    assert_eq!(status, 200, "{body}");
    body
}

fn alice(app: &TestApp) -> String {
    app.token("alice", &["fintech:read", "fintech:write"])
}

/// The payment provider's bridge: a service account that settles deposits and withdrawals.
fn settler(app: &TestApp) -> String {
    app.token("psp-bridge", &["fintech:settle"])
}

#[actix_web::test]
async fn wallets_deposits_transfers_and_history() {
    let app = spawn_app().await;
    let token = alice(&app);
    let (a, b) = (open(&app, &token, "EUR").await, open(&app, &token, "EUR").await);
    deposit(&app, &a, 10_000).await;
    let (status, body, _) = post(
        &app,
        &token,
        "/api/v1/fintech/transfers",
        json!({"from": a, "to": b, "amount": 2_500, "currency": "EUR"}),
        &key(),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["kind"], "transfer");
    assert_eq!(body["balance_after"], 7_500);
    assert_eq!(wallet(&app, &token, &a).await["balance"], 7_500);
    assert_eq!(wallet(&app, &token, &b).await["balance"], 2_500);
    let path = format!("/api/v1/fintech/wallets/{a}/withdrawals");
    let (status, _, _) = post(&app, &settler(&app), &path, json!({"amount": 500, "reference": "bank-1"}), &key()).await;
    assert_eq!(status, 201);

    let (status, page) = get(&app, &token, &format!("/api/v1/fintech/wallets/{a}/transactions?limit=2")).await;
    assert_eq!(status, 200);
    let kinds: Vec<_> =
        page["items"].as_array().unwrap().iter().map(|m| m["kind"].as_str().unwrap().to_string()).collect();
    assert_eq!(kinds, vec!["withdrawal", "transfer_out"]);
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, rest) = get(&app, &token, &format!("/api/v1/fintech/wallets/{a}/transactions?cursor={cursor}")).await;
    assert_eq!(rest["items"][0]["kind"], "deposit");
    assert!(rest["next_cursor"].is_null());

    let metrics = app.metrics().await;
    assert!(metrics
        .contains("beryl_business_operations_total{domain=\"fintech\",operation=\"transfer\",status=\"applied\"} 1"));
}

#[actix_web::test]
async fn idempotent_retries_replay_the_original_even_after_a_restart() {
    let database = create_database().await;
    let db = database.clone();
    let app = spawn_with(move |s| s.database.url = Some(db.as_str().into())).await;
    let token = alice(&app);
    let (a, b) = (open(&app, &token, "EUR").await, open(&app, &token, "EUR").await);
    deposit(&app, &a, 1_000).await;
    let k = key();
    let body = json!({"from": a, "to": b, "amount": 100});
    let (s1, first, _) = post(&app, &token, "/api/v1/fintech/transfers", body.clone(), &k).await;
    let (s2, second, headers) = post(&app, &token, "/api/v1/fintech/transfers", body.clone(), &k).await;
    assert_eq!((s1, &first), (s2, &second));
    assert_eq!(headers["idempotent-replayed"], "true");
    assert_eq!(wallet(&app, &token, &a).await["balance"], 900, "applied once");

    // A new instance on the same database (as after a crash) answers the same.
    let db = database.clone();
    let restarted = spawn_with(move |s| s.database.url = Some(db.as_str().into())).await;
    let token2 = alice(&restarted);
    let (s3, third, _) = post(&restarted, &token2, "/api/v1/fintech/transfers", body, &k).await;
    assert_eq!((s3, &third), (s1, &first));

    let (status, conflict, _) =
        post(&restarted, &token2, "/api/v1/fintech/transfers", json!({"from": a, "to": b, "amount": 101}), &k).await;
    assert_eq!(status, 409);
    assert_eq!(conflict["code"], "idempotency_key_reused");
    assert_eq!(conflict["fields"], json!(["amount"]));
    assert_eq!(wallet(&restarted, &token2, &a).await["balance"], 900);

    // Refusals are kept too: a retry of a refused transfer is refused the same way.
    let k = key();
    let big = json!({"from": a, "to": b, "amount": 5_000});
    let (s4, refused, _) = post(&restarted, &token2, "/api/v1/fintech/transfers", big.clone(), &k).await;
    assert_eq!((s4, refused["code"].as_str()), (422, Some("insufficient_funds")));
    deposit(&restarted, &a, 10_000).await;
    let (s5, again, _) = post(&restarted, &token2, "/api/v1/fintech/transfers", big, &k).await;
    assert_eq!((s5, again), (s4, refused));
}

#[actix_web::test]
async fn every_bad_input_is_refused_with_its_code_and_changes_nothing() {
    let app = spawn_app().await;
    let token = alice(&app);
    let (a, b) = (open(&app, &token, "EUR").await, open(&app, &token, "EUR").await);
    let y = open(&app, &token, "JPY").await;
    deposit(&app, &a, 1_000).await;
    let before = (wallet(&app, &token, &a).await, wallet(&app, &token, &b).await);
    let missing = uuid::Uuid::now_v7().to_string();
    let frozen = open(&app, &token, "EUR").await;
    let admin = app.token("compliance", &["admin"]);
    let (status, _, _) =
        post(&app, &admin, &format!("/api/v1/fintech/wallets/{frozen}/freeze"), json!({}), &key()).await;
    assert_eq!(status, 200);

    let transfers = "/api/v1/fintech/transfers";
    let deposits = format!("/api/v1/fintech/wallets/{a}/deposits");
    let cases: Vec<Case> = vec![
        (
            "unknown currency",
            "/api/v1/fintech/wallets",
            json!({"currency": "XYZ"}),
            400,
            "unknown_currency",
            Some("currency"),
        ),
        ("zero amount", transfers, json!({"from": a, "to": b, "amount": 0}), 400, "invalid_amount", Some("amount")),
        (
            "negative amount",
            transfers,
            json!({"from": a, "to": b, "amount": -5}),
            400,
            "invalid_amount",
            Some("amount"),
        ),
        (
            "amount above the maximum",
            transfers,
            json!({"from": a, "to": b, "amount": 1_000_000_000_000_001i64}),
            400,
            "amount_too_large",
            Some("amount"),
        ),
        (
            "amount overflowing 64 bits",
            transfers,
            json!({"from": a, "to": b, "amount": 1e20}),
            400,
            "malformed_json",
            Some("amount"),
        ),
        (
            "fractional amount",
            transfers,
            json!({"from": a, "to": b, "amount": 10.5}),
            400,
            "malformed_json",
            Some("amount"),
        ),
        ("same wallet", transfers, json!({"from": a, "to": a, "amount": 1}), 400, "same_wallet", Some("to")),
        (
            "malformed id",
            transfers,
            json!({"from": "not-an-id", "to": b, "amount": 1}),
            400,
            "invalid_wallet_id",
            Some("from"),
        ),
        (
            "unknown destination",
            transfers,
            json!({"from": a, "to": missing, "amount": 1}),
            404,
            "wallet_not_found",
            None,
        ),
        ("unknown source", transfers, json!({"from": missing, "to": b, "amount": 1}), 404, "wallet_not_found", None),
        (
            "insufficient funds",
            transfers,
            json!({"from": a, "to": b, "amount": 1_001}),
            422,
            "insufficient_funds",
            None,
        ),
        ("currency mismatch", transfers, json!({"from": a, "to": y, "amount": 1}), 422, "currency_mismatch", None),
        ("frozen destination", transfers, json!({"from": a, "to": frozen, "amount": 1}), 409, "wallet_frozen", None),
        (
            "missing reference",
            &deposits,
            json!({"amount": 1, "reference": ""}),
            400,
            "invalid_reference",
            Some("reference"),
        ),
    ];
    for (what, path, body, status, code, field) in cases {
        let token = if path == deposits { settler(&app) } else { token.clone() };
        let (got, problem, _) = post(&app, &token, path, body, &key()).await;
        assert_eq!((got, problem["code"].as_str()), (status, Some(code)), "{what}: {problem}");
        if let Some(field) = field {
            assert_eq!(problem["field"], field, "{what}: {problem}");
        }
    }
    let res = app
        .client
        .post(app.url(transfers))
        .bearer_auth(&token)
        .json(&json!({"from": a, "to": b, "amount": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(res.json::<Value>().await.unwrap()["code"], "idempotency_key_missing");
    let (status, body) = get(&app, &token, &format!("/api/v1/fintech/wallets/{a}/transactions?limit=1000")).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("page_too_large")));
    let (status, body) = get(&app, &token, &format!("/api/v1/fintech/wallets/{a}/transactions?cursor=bogus")).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("invalid_cursor")));
    let (status, body) = get(&app, &token, "/api/v1/fintech/wallets/not-a-uuid").await;
    assert_eq!((status, body["code"].as_str()), (400, Some("invalid_wallet_id")));
    let (status, body) = get(&app, &token, &format!("/api/v1/fintech/wallets/{missing}")).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("wallet_not_found")));

    assert_eq!((wallet(&app, &token, &a).await, wallet(&app, &token, &b).await), before, "nothing changed");
}

#[actix_web::test]
async fn owners_only_see_their_own_wallets() {
    let app = spawn_app().await;
    let a = open(&app, &alice(&app), "EUR").await;
    let bob = app.token("bob", &["fintech:read", "fintech:write"]);
    let (status, body) = get(&app, &bob, &format!("/api/v1/fintech/wallets/{a}")).await;
    assert_eq!((status, body["code"].as_str()), (403, Some("not_owner")));
    let (status, _, _) =
        post(&app, &bob, "/api/v1/fintech/wallets", json!({"currency": "EUR", "owner": "alice"}), &key()).await;
    assert_eq!(status, 403);
    let (status, body) =
        get(&app, &app.token("reader", &["mobility:read"]), &format!("/api/v1/fintech/wallets/{a}")).await;
    assert_eq!((status, body["missing_scope"].as_str()), (403, Some("fintech:read")));
}

#[actix_web::test]
async fn only_the_settle_scope_moves_money_in_or_out_of_the_ledger() {
    let app = spawn_app().await;
    let token = alice(&app);
    let a = open(&app, &token, "EUR").await;
    // A user holding fintech:write cannot credit (or debit) a wallet from outside, not even
    // their own.
    for movement in ["deposits", "withdrawals"] {
        let path = format!("/api/v1/fintech/wallets/{a}/{movement}");
        let body = json!({"amount": 1_000_000_000_000_000i64, "reference": "psp-forged"});
        let (status, problem, _) = post(&app, &token, &path, body, &key()).await;
        assert_eq!((status, problem["code"].as_str()), (403, Some("scope_missing")), "{movement}: {problem}");
        assert_eq!(problem["missing_scope"], "fintech:settle");
    }
    assert_eq!(wallet(&app, &token, &a).await["balance"], 0, "no money was created");
    // The provider's bridge settles for any owner's wallet; the owner sees the money.
    let bridge = settler(&app);
    let path = format!("/api/v1/fintech/wallets/{a}/deposits");
    let (status, body, _) = post(&app, &bridge, &path, json!({"amount": 700, "reference": "psp-77"}), &key()).await;
    assert_eq!(status, 201, "{body}");
    let path = format!("/api/v1/fintech/wallets/{a}/withdrawals");
    let (status, body, _) = post(&app, &bridge, &path, json!({"amount": 200, "reference": "bank-77"}), &key()).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(wallet(&app, &token, &a).await["balance"], 500);
    // The bridge holds no other fintech right: it reads no wallet and moves no money between them.
    let (status, _) = get(&app, &bridge, &format!("/api/v1/fintech/wallets/{a}")).await;
    assert_eq!(status, 403);
}

#[actix_web::test]
async fn a_read_on_one_instance_right_after_a_write_on_another_shows_the_write() {
    let database = create_database().await;
    let (d1, d2) = (database.clone(), database.clone());
    let one = spawn_with(move |s| s.database.url = Some(d1.as_str().into())).await;
    let two = spawn_with(move |s| s.database.url = Some(d2.as_str().into())).await;
    let (t1, t2) = (alice(&one), alice(&two));
    let a = open(&one, &t1, "EUR").await;
    // Instance two's wallet actor is live with the empty wallet...
    assert_eq!(wallet(&two, &t2, &a).await["balance"], 0);
    for n in 1..=5 {
        deposit(&one, &a, 100).await;
        // ...and still shows every write made through instance one at once.
        assert_eq!(wallet(&two, &t2, &a).await["balance"], 100 * n);
    }
}

/// The GraphQL transfer of `amount` from `a` to `b` under `key`.
fn transfer_mutation(a: &str, b: &str, amount: i64, key: &str) -> String {
    format!(
        r#"mutation {{ transfer(input: {{from: "{a}", to: "{b}", amount: {amount}, idempotencyKey: "{key}"}}) {{ id amount balanceAfter replayed }} }}"#
    )
}

#[actix_web::test]
async fn graphql_shares_the_ledger_its_idempotency_and_its_error_codes() {
    let app = spawn_app().await;
    let token = alice(&app);
    let (a, b) = (open(&app, &token, "EUR").await, open(&app, &token, "EUR").await);
    deposit(&app, &a, 1_000).await;
    let mutation = |amount: i64, key: &str| transfer_mutation(&a, &b, amount, key);
    let first = app.graphql(&token, &mutation(300, "gql-1")).await;
    assert_eq!(first["data"]["transfer"]["balanceAfter"], 700, "{first}");
    assert_eq!(first["data"]["transfer"]["replayed"], false);
    let again = app.graphql(&token, &mutation(300, "gql-1")).await;
    assert_eq!(again["data"]["transfer"]["id"], first["data"]["transfer"]["id"]);
    assert_eq!(again["data"]["transfer"]["replayed"], true);
    let refused = app.graphql(&token, &mutation(5_000, "gql-2")).await;
    assert_eq!(refused["errors"][0]["extensions"]["code"], "insufficient_funds", "{refused}");
    let query = format!(
        r#"{{ wallet(id: "{a}") {{ balance currency }} transactions(wallet: "{a}", first: 1) {{ items {{ kind amount }} nextBefore }} }}"#
    );
    let read = app.graphql(&token, &query).await;
    assert_eq!(read["data"]["wallet"]["balance"], 700, "{read}");
    assert_eq!(read["data"]["transactions"]["items"][0]["kind"], "transfer_out");
    assert!(read["data"]["transactions"]["nextBefore"].is_number());
    // The same key works across REST and GraphQL: it means one transfer.
    let bob = app.token("bob", &["fintech:read"]);
    let denied = app.graphql(&bob, &query).await;
    assert_eq!(denied["errors"][0]["extensions"]["code"], "not_owner", "{denied}");
    let unauthorized = app.graphql(&app.token("carol", &["fintech:read"]), &mutation(1, "gql-3")).await;
    assert_eq!(unauthorized["errors"][0]["extensions"]["code"], "scope_missing");
}

#[actix_web::test]
async fn one_key_means_one_transfer_over_rest_and_graphql_in_either_order() {
    let app = spawn_app().await;
    let token = alice(&app);
    let (a, b) = (open(&app, &token, "EUR").await, open(&app, &token, "EUR").await);
    deposit(&app, &a, 1_000).await;
    let mutation = |amount: i64, key: &str| transfer_mutation(&a, &b, amount, key);
    let transfers = "/api/v1/fintech/transfers";

    // REST first, then GraphQL with the same key: the GraphQL answer replays the REST transfer.
    let k = key();
    let (status, rest, _) = post(&app, &token, transfers, json!({"from": a, "to": b, "amount": 100}), &k).await;
    assert_eq!(status, 201, "{rest}");
    let again = app.graphql(&token, &mutation(100, &k)).await;
    assert_eq!(again["data"]["transfer"]["id"], rest["id"], "{again}");
    assert_eq!(again["data"]["transfer"]["replayed"], true);
    assert_eq!(again["data"]["transfer"]["balanceAfter"], 900);

    // GraphQL first, then REST: the REST answer is the GraphQL transfer, marked as a replay.
    let k = key();
    let first = app.graphql(&token, &mutation(50, &k)).await;
    assert_eq!(first["data"]["transfer"]["replayed"], false, "{first}");
    let (status, replay, headers) = post(&app, &token, transfers, json!({"from": a, "to": b, "amount": 50}), &k).await;
    assert_eq!(status, 201, "{replay}");
    assert_eq!(headers["idempotent-replayed"], "true");
    assert_eq!(replay["id"], first["data"]["transfer"]["id"]);
    assert_eq!(replay["balance_after"], 850);
    assert_eq!(wallet(&app, &token, &a).await["balance"], 850, "two transfers, each applied once");

    // The same key for another amount is refused over either transport, naming the field.
    let conflict = app.graphql(&token, &mutation(51, &k)).await;
    assert_eq!(conflict["errors"][0]["extensions"]["code"], "idempotency_key_reused", "{conflict}");
    let (status, problem, _) = post(&app, &token, transfers, json!({"from": a, "to": b, "amount": 51}), &k).await;
    assert_eq!((status, problem["code"].as_str()), (409, Some("idempotency_key_reused")));
    assert_eq!(problem["fields"], json!(["amount"]));
    assert_eq!(wallet(&app, &token, &a).await["balance"], 850);
}

#[actix_web::test]
async fn a_panicking_wallet_restarts_alone_while_the_others_keep_serving() {
    let app = spawn_with(|s| {
        s.supervision.min_backoff_ms = 200;
        s.supervision.jitter = 0.0;
    })
    .await;
    let token = alice(&app);
    let victim = open(&app, &token, "EUR").await;
    deposit(&app, &victim, 1_000).await;
    let mut others = Vec::new();
    for _ in 0..6 {
        let w = open(&app, &token, "EUR").await;
        deposit(&app, &w, 10_000).await;
        others.push(w);
    }

    // Six streams of transfers between the other wallets, and the victim's actor panicking
    // while they run.
    let streams = (0..others.len()).map(|i| {
        let (from, to, app, token) = (&others[i], &others[(i + 1) % others.len()], &app, &token);
        async move {
            let mut statuses = Vec::new();
            for _ in 0..25 {
                let body = json!({"from": from, "to": to, "amount": 1});
                statuses.push(post(app, token, "/api/v1/fintech/transfers", body, &key()).await.0);
            }
            statuses
        }
    });
    let fault = json!({"kind": "panic", "entity": victim});
    let (statuses, injected) = futures::join!(futures::future::join_all(streams), app.inject("wallet", fault));
    assert_eq!(injected.status(), 503, "the asker of a panicking wallet sees it unavailable");
    let statuses: Vec<u16> = statuses.into_iter().flatten().collect();
    assert!(statuses.iter().all(|s| *s == 201), "every other wallet kept serving: {statuses:?}");

    // The panic is counted under the wallets' kind; only that wallet restarted.
    let metrics = app.metrics().await;
    assert_eq!(sample(&metrics, r#"beryl_actor_failures_total{actor="wallet",reason="panic"}"#), Some(1.0));
    assert_eq!(sample(&metrics, r#"beryl_actor_restarts_total{actor="wallet"}"#), Some(1.0));
    assert_eq!(sample(&metrics, r#"beryl_actor_restarts_total{actor="fintech"}"#), Some(0.0));
    assert!(!metrics.contains(&victim), "no metric is labelled with an id");
    assert_eq!(app.ready_status().await, 200, "the process stays ready");

    // After its backoff the wallet serves again, its money intact.
    eventually("the wallet serves again", Duration::from_secs(10), || async {
        let body = json!({"amount": 1, "reference": "after-restart"});
        let (status, _, _) =
            post(&app, &settler(&app), &format!("/api/v1/fintech/wallets/{victim}/deposits"), body, &key()).await;
        (status == 201).then_some(())
    })
    .await;
    assert_eq!(wallet(&app, &token, &victim).await["balance"], 1_001);
    let mut total = 0;
    for w in &others {
        total += wallet(&app, &token, w).await["balance"].as_i64().unwrap();
    }
    assert_eq!(total, 60_000, "transfers between the others moved money without creating or losing any");
}

/// The application's own database, outside it.
async fn database(app: &TestApp) -> tokio_postgres::Client {
    let url = app.state.settings.database.url.as_ref().unwrap().expose().to_string();
    let (db, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    actix_rt::spawn(connection);
    db
}

#[actix_web::test]
async fn an_expired_idempotency_key_counts_as_new_and_the_purger_forgets_it() {
    let app = spawn_with(|s| s.fintech.idempotency_purge_interval_secs = 1).await;
    let token = alice(&app);
    let settle = settler(&app);
    let a = open(&app, &token, "EUR").await;
    let path = format!("/api/v1/fintech/wallets/{a}/deposits");
    let k = key();
    let (s1, first, _) = post(&app, &settle, &path, json!({"amount": 100, "reference": "psp-1"}), &k).await;
    assert_eq!(s1, 201, "{first}");
    // While the key lives, another request under it is refused.
    let (s2, reused, _) = post(&app, &settle, &path, json!({"amount": 250, "reference": "psp-2"}), &k).await;
    assert_eq!((s2, reused["code"].as_str()), (409, Some("idempotency_key_reused")));

    // Once it has expired (its time moved back, as if a day had passed), the same key is new,
    // purged or not.
    let db = database(&app).await;
    let expire = "UPDATE idempotency_keys SET expires_at = now() - interval '1 second' WHERE key = $1";
    assert_eq!(db.execute(expire, &[&k]).await.unwrap(), 1);
    let (s3, second, headers) = post(&app, &settle, &path, json!({"amount": 250, "reference": "psp-2"}), &k).await;
    assert_eq!(s3, 201, "{second}");
    assert!(headers.get("idempotent-replayed").is_none_or(|v| v != "true"));
    assert_ne!(second["id"], first["id"]);
    assert_eq!(wallet(&app, &token, &a).await["balance"], 350);
    // The key now keeps the new request: a retry replays it.
    let (s4, replay, headers) = post(&app, &settle, &path, json!({"amount": 250, "reference": "psp-2"}), &k).await;
    assert_eq!((s4, &replay), (201, &second));
    assert_eq!(headers["idempotent-replayed"], "true");

    // The purger forgets expired keys by itself, and only those.
    let count = "SELECT count(*) FROM idempotency_keys WHERE key = $1";
    let expired_before: i64 = db.query_one("SELECT count(*) FROM idempotency_keys", &[]).await.unwrap().get(0);
    assert!(expired_before >= 2, "the wallet's opening and the deposit");
    assert_eq!(db.execute(expire, &[&k]).await.unwrap(), 1);
    eventually("the expired key purged", Duration::from_secs(10), || async {
        let left: i64 = db.query_one(count, &[&k]).await.unwrap().get(0);
        (left == 0).then_some(())
    })
    .await;
    let live: i64 = db.query_one("SELECT count(*) FROM idempotency_keys", &[]).await.unwrap().get(0);
    assert_eq!(live, expired_before - 1, "live keys stay");
    let purged = sample(&app.metrics().await, "beryl_idempotency_keys_purged_total").unwrap_or_default();
    assert!(purged >= 1.0, "purged {purged}");
    let health = app.health().await;
    let actors = health["actors"].as_array().cloned().unwrap_or_default();
    assert!(actors.iter().any(|a| a["name"] == "idempotency-purger"), "{health}");
}

/// A hold lowers what is available over REST and GraphQL while the balance stays, refuses a
/// withdrawal of more than is available and the closing of its wallet, and once its time has
/// passed the sweeper releases it through the wallet's actor.
#[actix_web::test]
async fn a_hold_shows_as_held_and_the_sweeper_releases_it_once_expired() {
    use beryl_core_api::domain::fintech::{Amount, FintechError, HoldStatus, LedgerCommand, LedgerOutcome, WalletId};

    let app = spawn_with(|s| s.fintech.hold_sweep_interval_secs = 1).await;
    let token = alice(&app);
    let id = open(&app, &token, "EUR").await;
    deposit(&app, &id, 1_000).await;
    let wallet_id: WalletId = id.parse().unwrap();
    let hold = uuid::Uuid::now_v7();
    let place = LedgerCommand::PlaceHold {
        hold,
        wallet: wallet_id,
        amount: Amount::new(700).unwrap(),
        kind: "ride".into(),
        expires_at: chrono::Utc::now() + chrono::Duration::seconds(2),
    };
    let placed = app.state.actors.fintech.apply(place, None).await.unwrap();
    assert!(matches!(placed, LedgerOutcome::Applied { .. }), "{placed:?}");
    let w = wallet(&app, &token, &id).await;
    assert_eq!(
        (w["balance"].as_i64(), w["held"].as_i64(), w["available"].as_i64()),
        (Some(1_000), Some(700), Some(300))
    );
    let query = format!(r#"{{ wallet(id: "{id}") {{ balance held available }} }}"#);
    let answer = app.graphql(&token, &query).await;
    assert_eq!(answer["data"]["wallet"], json!({"balance": 1000, "held": 700, "available": 300}), "{answer}");

    let path = format!("/api/v1/fintech/wallets/{id}/withdrawals");
    let (status, body, _) =
        post(&app, &settler(&app), &path, json!({"amount": 301, "reference": "bank-1"}), &key()).await;
    assert_eq!((status, body["code"].as_str()), (422, Some("insufficient_funds")), "{body}");
    let (status, body, _) = post(&app, &token, &format!("/api/v1/fintech/wallets/{id}/close"), json!({}), &key()).await;
    assert_eq!((status, body["code"].as_str()), (409, Some("holds_pending")), "{body}");

    eventually("the expired hold to be released", Duration::from_secs(15), || async {
        let w = wallet(&app, &token, &id).await;
        (w["available"].as_i64() == Some(1_000)).then_some(())
    })
    .await;
    let w = wallet(&app, &token, &id).await;
    assert_eq!((w["balance"].as_i64(), w["held"].as_i64()), (Some(1_000), Some(0)));
    let post_it = LedgerCommand::PostHold {
        hold,
        wallet: wallet_id,
        amount: Amount::new(700).unwrap(),
        to: None,
        reference: "ride-1".into(),
    };
    let late = app.state.actors.fintech.apply(post_it, None).await.unwrap();
    assert_eq!(late, LedgerOutcome::Refused(FintechError::HoldNotPending(hold, HoldStatus::Expired)));
    let metrics = app.metrics().await;
    assert_eq!(sample(&metrics, "beryl_holds_expired_total"), Some(1.0));
}
