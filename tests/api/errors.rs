//! Every error is problem+json with a stable code.

use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_with};

async fn problem(res: reqwest::Response) -> (u16, Value) {
    let status = res.status().as_u16();
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    assert!(res.headers().get("x-request-id").is_some());
    (status, res.json().await.unwrap())
}

#[actix_web::test]
async fn unknown_routes_wrong_methods_bad_bodies_are_problems() {
    let app = spawn_with(|s| s.server.max_body_bytes = 2048).await;

    let (status, body) = problem(app.get("/nope").await).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));

    let (status, body) = problem(app.client.delete(app.url("/health")).send().await.unwrap()).await;
    assert_eq!((status, body["code"].as_str()), (405, Some("method_not_allowed")));

    let url = app.url("/internal/faults/adapter-pool");
    let admin = app.token("root", &["admin"]);
    let res = app
        .client
        .post(&url)
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body(r#"{"kind": "delay", "millis": "soon"}"#)
        .send()
        .await
        .unwrap();
    let (status, body) = problem(res).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("malformed_json")));
    assert_eq!(body["field"], "millis");
    assert!(body["detail"].as_str().unwrap().contains("millis"));

    let res = app
        .client
        .post(&url)
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body(r#"{"kind": "explode"}"#)
        .send()
        .await
        .unwrap();
    let (status, body) = problem(res).await;
    assert_eq!((status, body["field"].as_str()), (400, Some("kind")));

    let res = app
        .client
        .post(&url)
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(problem(res).await.0, 400);

    let big = json!({"kind": "panic", "padding": "x".repeat(4096)});
    let (status, body) = problem(app.client.post(&url).bearer_auth(&admin).json(&big).send().await.unwrap()).await;
    assert_eq!((status, body["code"].as_str()), (413, Some("payload_too_large")));

    let res = app
        .client
        .post(&url)
        .bearer_auth(&admin)
        .header("content-type", "text/plain")
        .body("panic")
        .send()
        .await
        .unwrap();
    let (status, body) = problem(res).await;
    assert_eq!((status, body["code"].as_str()), (415, Some("unsupported_media_type")));

    let (status, body) = problem(app.inject("nobody", json!({"kind": "panic"})).await).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("actor_not_found")));
}

#[actix_web::test]
async fn fault_injection_is_absent_unless_enabled() {
    let app = spawn_with(|s| s.fault_injection.enabled = false).await;
    let (status, _) = problem(app.inject("adapter-pool", json!({"kind": "panic"})).await).await;
    assert_eq!(status, 404);
}

#[actix_web::test]
async fn fault_injection_even_when_enabled_needs_an_admin_token() {
    let app = spawn_app().await;
    let url = app.url("/internal/faults/adapter-pool");
    let fault = json!({"kind": "panic"});
    let (status, body) = problem(app.client.post(&url).json(&fault).send().await.unwrap()).await;
    assert_eq!((status, body["code"].as_str()), (401, Some("token_missing")));
    let operator = app.token("ops", &["system:read", "system:write"]);
    let (status, body) = problem(app.post_as("/internal/faults/adapter-pool", &operator, &fault).await).await;
    assert_eq!(
        (status, body["code"].as_str(), body["missing_scope"].as_str()),
        (403, Some("scope_missing"), Some("admin"))
    );
    let health = app.health().await;
    assert_eq!(health["actors"][0]["restarts"], 0, "no refused fault reached the actor: {health}");
    assert_eq!(app.inject("adapter-pool", fault).await.status(), 503, "an admin's fault reaches it");
}

#[actix_web::test]
async fn request_ids_round_trip() {
    let app = spawn_app().await;
    let res = app.client.get(app.url("/health")).header("X-Request-ID", "req-42").send().await.unwrap();
    assert_eq!(res.headers()["x-request-id"], "req-42");
    let res = app.client.get(app.url("/health")).header("X-Correlation-ID", "corr-7").send().await.unwrap();
    assert_eq!(res.headers()["x-request-id"], "corr-7");
    let res = app.client.get(app.url("/nope")).header("X-Request-ID", "bad id with spaces").send().await.unwrap();
    let generated = res.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_ne!(generated, "bad id with spaces");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["request_id"], generated.as_str());
}
