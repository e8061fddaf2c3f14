//! GraphQL shares the actors and the error codes.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{eventually, spawn_app, spawn_with};

async fn query(app: &crate::helpers::TestApp, q: &str) -> Value {
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
