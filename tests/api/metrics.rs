//! `/metrics` from supervision state.

use std::time::Duration;

use beryl_core_api::actors::runtime::ActorKind;

use crate::helpers::{eventually, sample, spawn_app, spawn_with};

#[actix_web::test]
async fn every_registered_actor_has_its_series() {
    let app = spawn_app().await;
    // Every actor handles at least one message (latency series exist once something was
    // measured; mailbox depth, restarts and state exist from the start).
    for actor in app.state.registry.actors() {
        // A kind of entity actor is reached through one of its entities.
        let mut fault = serde_json::json!({"kind": "delay", "millis": 0});
        if actor.kind == ActorKind::Entity {
            fault["entity"] = uuid::Uuid::now_v7().to_string().into();
        }
        eventually("the actor to run", Duration::from_secs(10), || async {
            (app.inject(&actor.name, fault.clone()).await.status() == 200).then_some(())
        })
        .await;
    }
    eventually("messages handled", Duration::from_secs(10), || async {
        let h = app.health().await;
        h["actors"].as_array()?.iter().all(|a| a["messages_handled"].as_u64().unwrap_or(0) > 0).then_some(())
    })
    .await;
    let metrics = app.metrics().await;
    for actor in app.state.registry.actors() {
        let name = &actor.name;
        for series in [
            format!("beryl_actor_mailbox_depth{{actor=\"{name}\"}}"),
            format!("beryl_actor_restarts_total{{actor=\"{name}\"}}"),
            format!("beryl_actor_state{{actor=\"{name}\",state=\"running\"}}"),
        ] {
            assert!(sample(&metrics, &series).is_some(), "missing {series}");
        }
        for family in [
            "beryl_actor_mailbox_seconds_bucket",
            "beryl_actor_processing_seconds_bucket",
            "beryl_actor_messages_total",
        ] {
            assert!(
                metrics.lines().any(|l| l.starts_with(family) && l.contains(&format!("actor=\"{name}\""))),
                "missing {family} for {name}"
            );
        }
    }
    for family in [
        "# TYPE beryl_actor_processing_seconds histogram",
        "# TYPE beryl_actor_mailbox_seconds histogram",
        "# HELP beryl_actor_mailbox_depth",
        "beryl_process_resident_memory_bytes",
        "beryl_process_cpu_seconds_total",
        "beryl_build_info{",
    ] {
        assert!(metrics.contains(family), "missing {family}");
    }
}

#[actix_web::test]
async fn http_metrics_are_labelled_by_route_template_never_raw_paths() {
    let app = spawn_app().await;
    app.client
        .post(app.url("/internal/faults/some-unknown-actor"))
        .bearer_auth(app.token("root", &["admin"]))
        .json(&serde_json::json!({"kind": "fatal"}))
        .send()
        .await
        .unwrap();
    app.get("/definitely/not/a/route/12345").await;
    let metrics = app.metrics().await;
    assert!(metrics.contains("route=\"/internal/faults/{actor}\",status=\"404\""), "{metrics}");
    assert!(metrics.contains("route=\"unmatched\",status=\"404\""));
    assert!(!metrics.contains("some-unknown-actor"));
    assert!(!metrics.contains("12345"));
    assert!(metrics
        .contains("beryl_http_request_duration_seconds_bucket{method=\"POST\",route=\"/internal/faults/{actor}\""));
}

#[actix_web::test]
async fn metrics_can_be_turned_off() {
    let app = spawn_with(|s| s.metrics.enabled = false).await;
    assert_eq!(app.get("/metrics").await.status(), 404);
}
