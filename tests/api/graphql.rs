//! GraphQL shares the actors and the error codes, and the protection REST has: body limit,
//! operation limits, rate limits per mutation, audit records and the fail-closed policy.

use std::{path::Path, time::Duration};

use beryl_core_api::{
    actors::{audit::Flush, runtime::ActorState},
    config::AuditFailurePolicy,
};
use serde_json::{json, Value};

use crate::helpers::{create_database, eventually, spawn_app, spawn_with, TestApp};

async fn query(app: &TestApp, q: &str) -> Value {
    app.graphql(&app.token("operator", &["system:read"]), q).await
}

#[actix_web::test]
async fn supervision_state_and_fresh_probes_over_graphql() {
    let app = spawn_app().await;
    let body = query(&app, "{ version actors { name kind critical state restarts } }").await;
    assert_eq!(body["data"]["actors"][0]["name"], "adapter-pool");
    assert_eq!(body["data"]["version"], env!("CARGO_PKG_VERSION"));
    let body = query(&app, "{ dependencies(refresh: true) { name status owner } }").await;
    let deps = body["data"]["dependencies"].as_array().unwrap();
    assert!(deps.iter().any(|d| d["name"] == "postgres" && d["status"] == "up"), "{body}");
}

#[actix_web::test]
async fn actor_errors_carry_the_same_code_as_rest() {
    let app = spawn_with(|s| {
        s.supervision.min_backoff_ms = 10;
        s.supervision.max_backoff_ms = 20;
        s.supervision.max_restarts = 1;
        s.supervision.restart_window_secs = 600;
    })
    .await;
    for _ in 0..2 {
        eventually("ready", Duration::from_secs(10), || async { (app.ready_status().await == 200).then_some(()) })
            .await;
        app.inject("adapter-pool", json!({"kind": "panic"})).await;
    }
    let body = query(&app, "{ dependencies(refresh: true) { name } }").await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "actor_unavailable", "{body}");
    assert!(!body.to_string().contains("injected"));
}

#[actix_web::test]
async fn graphiql_is_served_outside_production() {
    let app = spawn_app().await;
    let res = app.get("/graphql").await;
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().to_lowercase().contains("graphiql"));
}

#[actix_web::test]
async fn graphql_needs_a_token_and_fields_check_their_scope() {
    let app = spawn_app().await;
    let res = app.client.post(app.url("/graphql")).json(&json!({"query": "{ version }"})).send().await.unwrap();
    assert_eq!(res.status(), 401);
    let body = app.graphql(&app.token("someone", &["fintech:read"]), "{ version actors { name } }").await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "scope_missing", "{body}");
}

static KEYS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn key() -> String {
    format!("gql-{}-{}", std::process::id(), KEYS.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
}

/// Alice may read, write and settle her own wallets.
fn alice(app: &TestApp) -> String {
    app.token("alice", &["fintech:read", "fintech:write", "fintech:settle"])
}

async fn rest_post(app: &TestApp, token: &str, path: &str, body: Value) -> Value {
    let res =
        app.client.post(app.url(path)).bearer_auth(token).header("Idempotency-Key", key()).json(&body).send().await;
    let res = res.unwrap();
    assert_eq!(res.status(), 201, "{path}");
    res.json().await.unwrap()
}

/// Two EUR wallets of alice's, the first holding `funds`.
async fn two_wallets(app: &TestApp, funds: i64) -> (String, String) {
    let token = alice(app);
    let mut ids = Vec::new();
    for _ in 0..2 {
        let body = rest_post(app, &token, "/api/v1/fintech/wallets", json!({"currency": "EUR"})).await;
        ids.push(body["id"].as_str().unwrap().to_string());
    }
    let path = format!("/api/v1/fintech/wallets/{}/deposits", ids[0]);
    rest_post(app, &token, &path, json!({"amount": funds, "reference": "psp-gql"})).await;
    (ids[0].clone(), ids[1].clone())
}

async fn balance(app: &TestApp, wallet: &str) -> i64 {
    let res = app.get_as(&format!("/api/v1/fintech/wallets/{wallet}"), &alice(app)).await;
    res.json::<Value>().await.unwrap()["balance"].as_i64().unwrap()
}

/// A mutation of `n` aliased transfers of 1 from `a` to `b`, each under its own key.
fn aliased_transfers(a: &str, b: &str, n: usize) -> String {
    let fields: String = (0..n)
        .map(|i| {
            format!(
                r#" t{i}: transfer(input: {{from: "{a}", to: "{b}", amount: 1, idempotencyKey: "{k}"}}) {{ id }}"#,
                k = key()
            )
        })
        .collect();
    format!("mutation {{{fields} }}")
}

#[actix_web::test]
async fn a_graphql_body_over_the_limit_is_refused_with_413_before_it_is_read() {
    let app = spawn_with(|s| s.server.max_body_bytes = 4096).await;
    let big = format!("{{ version {} }}", "__typename ".repeat(1000));
    let res = app.post_as("/graphql", &app.token("operator", &["system:read"]), &json!({ "query": big })).await;
    assert_eq!(res.status(), 413);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    assert_eq!(res.json::<Value>().await.unwrap()["code"], "payload_too_large");
    // A body within the limit is still served, and only JSON is.
    let body = query(&app, "{ version }").await;
    assert_eq!(body["data"]["version"], env!("CARGO_PKG_VERSION"), "{body}");
    let res = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(app.token("operator", &["system:read"]))
        .header("content-type", "text/plain")
        .body("{ version }")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 415);
}

#[actix_web::test]
async fn an_operation_over_a_limit_is_refused_whole_and_writes_nothing() {
    let app = spawn_app().await;
    let (a, b) = two_wallets(&app, 1_000).await;
    let token = alice(&app);
    // Default limits: 30 aliases, 20 root fields, depth 16, 4000 tokens.
    let body = app.graphql(&token, &aliased_transfers(&a, &b, 31)).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "operation_limit_exceeded", "{body}");
    assert_eq!(body["errors"][0]["extensions"]["limit"], "max_aliases");
    assert_eq!(body["errors"].as_array().unwrap().len(), 1);
    assert!(body["data"].is_null(), "{body}");
    assert_eq!(balance(&app, &a).await, 1_000, "no transfer ran");

    let refused = |body: &Value| body["errors"][0]["extensions"]["limit"].as_str().map(str::to_string);
    let roots: String = (0..21).map(|i| format!(" v{i}: version")).collect();
    let body = query(&app, &format!("{{{roots} }}")).await;
    assert_eq!(refused(&body).as_deref(), Some("max_root_fields"), "{body}");
    let deep = format!("{{ actors {} }}", "{ name ".repeat(16) + &"}".repeat(16));
    let body = query(&app, &deep).await;
    assert_eq!(refused(&body).as_deref(), Some("max_depth"), "{body}");
    let long = format!("{{ version {} }}", "__typename ".repeat(4000));
    let body = query(&app, &long).await;
    assert_eq!(refused(&body).as_deref(), Some("max_tokens"), "{body}");
    // Within every limit, the same shapes run.
    let body = app.graphql(&token, &aliased_transfers(&a, &b, 3)).await;
    assert!(body["errors"].is_null(), "{body}");
    assert_eq!(balance(&app, &a).await, 997);
}

#[actix_web::test]
async fn each_mutation_is_charged_against_api_write_like_a_rest_write() {
    let app = spawn_with(|s| s.rate_limit.api_write.per_subject = 4).await;
    // Opening and funding the wallets are three REST writes: one write is left.
    let (a, b) = two_wallets(&app, 1_000).await;
    let body = app.graphql(&alice(&app), &aliased_transfers(&a, &b, 3)).await;
    assert!(body["data"]["t0"]["id"].is_string(), "{body}");
    let codes: Vec<&str> =
        body["errors"].as_array().unwrap().iter().filter_map(|e| e["extensions"]["code"].as_str()).collect();
    assert_eq!(codes, ["rate_limited", "rate_limited"], "{body}");
    assert_eq!(balance(&app, &a).await, 999, "one transfer, the others refused before running");
}

#[actix_web::test]
async fn fresh_probes_are_shared_by_every_alias_and_every_caller_within_the_interval() {
    let app = spawn_with(|s| {
        // Only the probe at start-up runs on its own during the test.
        s.health.probe_interval_ms = 600_000;
        s.graphql.refresh_interval_ms = 60_000;
    })
    .await;
    let handled = || async {
        let body = query(&app, "{ actors { name messagesHandled } }").await;
        let pool = body["data"]["actors"].as_array().unwrap().iter().find(|a| a["name"] == "adapter-pool").cloned();
        pool.unwrap()["messagesHandled"].as_u64().unwrap()
    };
    eventually("the start-up probe", Duration::from_secs(10), || async { (handled().await == 1).then_some(()) }).await;
    let refreshes: String = (0..10).map(|i| format!(" d{i}: dependencies(refresh: true) {{ name status }}")).collect();
    let body = query(&app, &format!("{{{refreshes} }}")).await;
    assert_eq!(body["data"]["d9"][0]["name"], "postgres", "{body}");
    let again = query(&app, "{ dependencies(refresh: true) { name } }").await;
    assert!(again["errors"].is_null(), "{again}");
    assert_eq!(handled().await, 2, "eleven refreshes, one probe");
}

#[actix_web::test]
async fn production_answers_no_introspection_and_serves_no_graphiql_unless_turned_on() {
    let production = |introspection: Option<bool>| {
        move |s: &mut beryl_core_api::config::Settings| {
            s.environment = beryl_core_api::config::Environment::Production;
            s.fault_injection.enabled = false;
            s.graphql.introspection = introspection;
        }
    };
    let app = spawn_with(production(None)).await;
    let body = query(&app, "{ __schema { queryType { name } } }").await;
    assert!(body["data"].is_null() || body["data"]["__schema"].is_null(), "{body}");
    assert!(!body.to_string().contains("queryType\":{"), "{body}");
    assert_ne!(app.get("/graphql").await.status(), 200, "no GraphiQL");
    assert_eq!(query(&app, "{ version }").await["data"]["version"], env!("CARGO_PKG_VERSION"));

    let app = spawn_with(production(Some(true))).await;
    let body = query(&app, "{ __schema { queryType { name } } }").await;
    assert_eq!(body["data"]["__schema"]["queryType"]["name"], "Query", "{body}");
}

/// Every audit record written so far, once the writer has made them durable.
pub(crate) async fn audit_records(app: &TestApp, live: &Path) -> Vec<Value> {
    let writer = app.state.actors.audit.clone().expect("auditing is on").writer;
    eventually("the audit writer to run", Duration::from_secs(10), || async {
        (writer.entry().state() == ActorState::Running).then_some(())
    })
    .await;
    writer.ask(Flush).await.expect("the writer answers").expect("the records are durable");
    let mut records = Vec::new();
    for line in std::fs::read_to_string(live).unwrap().lines() {
        records.push(crate::helpers::opened_audit_record(app, serde_json::from_str(line).unwrap()).await);
    }
    records
}

#[actix_web::test]
async fn graphql_writes_and_denials_are_audited_like_rest_ones_with_the_client_ip() {
    let crate::helpers::Audited { app, dir: _dir, log: live } = crate::helpers::audited().await;
    let (a, b) = two_wallets(&app, 1_000).await;
    let transfer = |k: &str| {
        format!(
            r#"mutation {{ transfer(input: {{from: "{a}", to: "{b}", amount: 5, idempotencyKey: "{k}"}}) {{ id }} }}"#
        )
    };
    let done = app.graphql(&alice(&app), &transfer(&key())).await;
    assert!(done["errors"].is_null(), "{done}");
    let bob = app.token("bob", &["fintech:read", "fintech:write"]);
    let not_owner = app.graphql(&bob, &transfer(&key())).await;
    assert_eq!(not_owner["errors"][0]["extensions"]["code"], "not_owner", "{not_owner}");
    let carol = app.token("carol", &["fintech:read"]);
    let no_scope = app.graphql(&carol, &transfer(&key())).await;
    assert_eq!(no_scope["errors"][0]["extensions"]["code"], "scope_missing", "{no_scope}");
    let dave = app.token("dave", &["fintech:read"]);
    let no_read_scope = app.graphql(&dave, "{ actors { name } }").await;
    assert_eq!(no_read_scope["errors"][0]["extensions"]["code"], "scope_missing", "{no_read_scope}");

    let records = audit_records(&app, &live).await;
    let graphql: Vec<_> =
        records.iter().filter(|r| r["action"].as_str().is_some_and(|a| a.starts_with("graphql"))).collect();
    let seen: Vec<(&str, &str, &str, u64)> = graphql
        .iter()
        .map(|r| {
            (
                r["subject"].as_str().unwrap(),
                r["action"].as_str().unwrap(),
                r["outcome"].as_str().unwrap(),
                r["status"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("alice", "graphql transfer", "success", 201),
            ("bob", "graphql transfer", "denied", 403),
            ("carol", "graphql transfer", "denied", 403),
            ("dave", "graphql actors", "denied", 403),
        ]
    );
    for record in graphql {
        assert_eq!(record["client_ip"], "127.0.0.1", "{record}");
        assert!(record["request_id"].is_string(), "{record}");
    }
    assert_eq!(graphql_resource(&records, "alice"), format!("/api/v1/fintech/wallets/{a}"));
}

fn graphql_resource(records: &[Value], subject: &str) -> String {
    let record = records.iter().find(|r| r["subject"] == subject && r["action"] == "graphql transfer");
    record.unwrap()["resource"].as_str().unwrap().to_string()
}

#[actix_web::test]
async fn fail_closed_refuses_a_graphql_transfer_the_audit_writer_cannot_record() {
    let database = create_database().await;
    let url = database.clone();
    let open = spawn_with(move |s| s.database.url = Some(url.as_str().into())).await;
    let (a, b) = two_wallets(&open, 1_000).await;

    // Another instance on the same ledger whose audit log cannot be written.
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("volume");
    std::fs::write(&blocker, "not a directory").unwrap();
    let live = blocker.join("audit.log");
    let closed = spawn_with(move |s| {
        s.database.url = Some(database.as_str().into());
        s.database.migrate_on_start = false;
        s.audit.enabled = true;
        s.audit.log_file = live;
        s.audit.failure_policy = Some(AuditFailurePolicy::FailClosed);
    })
    .await;
    eventually("the audit log to be reported down", Duration::from_secs(10), || async {
        let health = closed.health().await;
        let deps = health["dependencies"].as_array().cloned().unwrap_or_default();
        deps.iter().any(|d| d["name"] == "audit-log" && d["status"] == "down").then_some(())
    })
    .await;

    let mutation = format!(
        r#"mutation {{ transfer(input: {{from: "{a}", to: "{b}", amount: 5, idempotencyKey: "{k}"}}) {{ id }} }}"#,
        k = key()
    );
    let body = closed.graphql(&alice(&closed), &mutation).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "audit_unavailable", "{body}");
    assert!(body["data"].is_null(), "{body}");
    // REST refuses the same write the same way.
    let res = closed
        .client
        .post(closed.url("/api/v1/fintech/transfers"))
        .bearer_auth(alice(&closed))
        .header("Idempotency-Key", key())
        .json(&json!({"from": a, "to": b, "amount": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    assert_eq!(balance(&open, &a).await, 1_000, "nothing moved");
}
