//! Health endpoints derived from supervision state and dependency reports.

use std::time::Duration;

use crate::helpers::{eventually, spawn_app, spawn_with};

#[actix_web::test]
async fn health_lists_actors_and_dependencies() {
    let app = spawn_app().await;
    let health = eventually("dependencies probed", Duration::from_secs(10), || async {
        let h = app.health().await;
        (h["dependencies"].as_array().map(|d| d.len()) == Some(2)).then_some(h)
    })
    .await;
    assert_eq!(health["status"], "ok");
    assert_eq!(health["mode"], "external");
    let actors = health["actors"].as_array().unwrap();
    assert!(actors.iter().any(|a| a["name"] == "adapter-pool" && a["critical"] == true && a["state"] == "running"));
    let names: Vec<_> =
        health["dependencies"].as_array().unwrap().iter().map(|d| d["name"].as_str().unwrap().to_string()).collect();
    assert_eq!(names, vec!["postgres", "redis"]);
    assert_eq!(app.get("/health/live").await.status(), 200);
    assert_eq!(app.get("/health/startup").await.status(), 200);
    assert_eq!(app.get("/health/ready").await.status(), 200);
}

#[actix_web::test]
async fn a_required_dependency_down_fails_readiness_but_not_liveness() {
    let app = spawn_with(|s| {
        // Nothing listens on port 1.
        s.database.url = Some("postgres://postgres@127.0.0.1:1/none".into());
        s.database.connect_timeout_secs = 1;
        // With migrations at start the process would refuse to start; here it runs, not ready.
        s.database.migrate_on_start = false;
    })
    .await;
    let body: serde_json::Value = eventually("postgres reported down", Duration::from_secs(10), || async {
        let res = app.get("/health/ready").await;
        if res.status() != 503 {
            return None;
        }
        let body: serde_json::Value = res.json().await.ok()?;
        body["reasons"].as_array()?.iter().any(|r| r == "dependency postgres is down").then_some(body)
    })
    .await;
    assert_eq!(body["status"], "not_ready");
    assert_eq!(app.get("/health/live").await.status(), 200);
    let health = app.health().await;
    assert_eq!(health["status"], "down");
    let pg = health["dependencies"].as_array().unwrap().iter().find(|d| d["name"] == "postgres").unwrap().clone();
    assert_eq!(pg["owner"], "adapter-pool");
    assert!(!pg.to_string().contains("password"));
}

#[actix_web::test]
async fn an_optional_dependency_down_degrades_without_failing_readiness() {
    let app = spawn_with(|s| {
        s.redis.url = Some("redis://127.0.0.1:1/0".into());
    })
    .await;
    let health = eventually("redis reported down", Duration::from_secs(10), || async {
        let h = app.health().await;
        h["dependencies"].as_array()?.iter().any(|d| d["name"] == "redis" && d["status"] == "down").then_some(h)
    })
    .await;
    assert_eq!(health["status"], "degraded");
    assert_eq!(app.ready_status().await, 200);
}

#[actix_web::test]
async fn embedded_mode_needs_no_infrastructure() {
    let app = spawn_with(|s| {
        s.database.url = None;
        s.redis.url = None;
    })
    .await;
    let health = app.health().await;
    assert_eq!(health["mode"], "embedded");
    assert_eq!(health["dependencies"].as_array().unwrap().len(), 0);
    eventually("ready", Duration::from_secs(10), || async { (app.ready_status().await == 200).then_some(()) }).await;
}
