//! The supervision runtime seen from outside: panics, fatal errors and dead threads become
//! restarts with backoff; readiness and metrics follow.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{eventually, sample, spawn_app, spawn_with, TestApp};

const POOL: &str = "adapter-pool";

/// An instance whose actors restart 400 ms after a failure (no jitter), once it is ready.
async fn ready_with_backoff_of_400_ms() -> TestApp {
    let app = spawn_with(|s| {
        s.supervision.min_backoff_ms = 400;
        s.supervision.jitter = 0.0;
    })
    .await;
    eventually("ready", Duration::from_secs(10), || async { (app.ready_status().await == 200).then_some(()) }).await;
    app
}

/// The pool becomes ready again after its backoff, and the metrics count one panic of
/// `InjectFault`, one failure and one restart.
async fn back_after_one_panic(app: &TestApp) {
    eventually("ready again after backoff", Duration::from_secs(10), || async {
        (app.ready_status().await == 200).then_some(())
    })
    .await;
    let metrics = app.metrics().await;
    assert_eq!(sample(&metrics, &format!("beryl_actor_restarts_total{{actor=\"{POOL}\"}}")), Some(1.0));
    assert_eq!(
        sample(&metrics, &format!("beryl_actor_failures_total{{actor=\"{POOL}\",reason=\"panic\"}}")),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &metrics,
            &format!("beryl_actor_messages_total{{actor=\"{POOL}\",message=\"InjectFault\",outcome=\"panic\"}}")
        ),
        Some(1.0)
    );
}

#[actix_web::test]
async fn a_panicking_critical_actor_is_restarted_with_backoff_and_readiness_follows() {
    let app = ready_with_backoff_of_400_ms().await;

    let res = app.inject(POOL, json!({"kind": "panic"})).await;
    assert_eq!(res.status(), 503, "the asker of a panicking actor sees it unavailable");
    assert!(res.headers().get("retry-after").is_some());
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["code"], "actor_unavailable");
    assert!(!body["detail"].as_str().unwrap().contains("injected"), "no internal text in a 5xx body");

    // Readiness reads the supervision state directly: the very next probe is 503.
    assert_eq!(app.ready_status().await, 503);
    let health = app.health().await;
    assert_eq!(health["actors"][0]["state"], "restarting");
    assert_eq!(health["actors"][0]["last_failure"]["reason"], "panic");

    back_after_one_panic(&app).await;

    // The process is alive and the restarted actor answers again.
    let res = app.inject(POOL, json!({"kind": "delay", "millis": 1})).await;
    assert_eq!(res.status(), 200);
}

#[actix_web::test]
async fn a_panic_in_an_answer_fails_the_actor_like_a_panic_in_its_handler() {
    let app = ready_with_backoff_of_400_ms().await;

    let res = app.inject(POOL, json!({"kind": "panic_later"})).await;
    assert_eq!(res.status(), 503, "the asker of a panicking answer sees the actor unavailable");
    eventually("the actor fails", Duration::from_secs(5), || async {
        let health = app.health().await;
        (health["actors"][0]["last_failure"]["reason"] == "panic").then_some(())
    })
    .await;
    back_after_one_panic(&app).await;
    assert_eq!(app.inject(POOL, json!({"kind": "delay", "millis": 1})).await.status(), 200);
}

#[actix_web::test]
async fn the_backoff_grows_between_consecutive_failures() {
    let app = spawn_with(|s| {
        s.supervision.min_backoff_ms = 200;
        s.supervision.jitter = 0.0;
        s.supervision.max_restarts = 10;
    })
    .await;
    let mut outages = Vec::new();
    for _ in 0..3 {
        eventually("ready", Duration::from_secs(10), || async { (app.ready_status().await == 200).then_some(()) })
            .await;
        let started = std::time::Instant::now();
        assert_eq!(app.inject(POOL, json!({"kind": "fatal"})).await.status(), 503);
        eventually("ready after fatal", Duration::from_secs(10), || async {
            (app.ready_status().await == 200).then_some(())
        })
        .await;
        outages.push(started.elapsed());
    }
    // 200 ms, 400 ms, 800 ms: each outage lasts at least its backoff, and they grow.
    assert!(outages[0] >= Duration::from_millis(200), "{outages:?}");
    assert!(outages[1] >= Duration::from_millis(400), "{outages:?}");
    assert!(outages[2] >= Duration::from_millis(800), "{outages:?}");
    assert_eq!(app.health().await["actors"][0]["last_failure"]["reason"], "fatal");
}

#[actix_web::test]
async fn too_many_restarts_mark_the_actor_failed_and_the_process_stays_up() {
    let app = spawn_with(|s| {
        s.supervision.min_backoff_ms = 10;
        s.supervision.max_backoff_ms = 20;
        s.supervision.max_restarts = 2;
        s.supervision.restart_window_secs = 600;
    })
    .await;
    for attempt in 0..3 {
        eventually("actor accepts", Duration::from_secs(10), || async {
            (app.ready_status().await == 200).then_some(())
        })
        .await;
        assert_eq!(app.inject(POOL, json!({"kind": "panic"})).await.status(), 503, "attempt {attempt}");
    }
    let health = app.health().await;
    assert_eq!(health["actors"][0]["state"], "failed");
    assert_eq!(health["status"], "down");
    assert_eq!(app.ready_status().await, 503);
    // A failed actor refuses messages at once instead of letting callers wait.
    let res = app.inject(POOL, json!({"kind": "delay", "millis": 1})).await;
    assert_eq!(res.status(), 503);
    let metrics = app.metrics().await;
    assert_eq!(sample(&metrics, &format!("beryl_actor_state{{actor=\"{POOL}\",state=\"failed\"}}")), Some(1.0));
    assert_eq!(
        sample(&metrics, &format!("beryl_actor_up{{actor=\"{POOL}\",kind=\"adapter\",critical=\"true\"}}")),
        Some(0.0)
    );
    // Liveness is about the actor system, not one actor.
    assert_eq!(app.get("/health/live").await.status(), 200);
}

#[actix_web::test]
async fn an_actor_whose_thread_died_is_noticed_and_started_again() {
    let app = spawn_app().await;
    eventually("ready", Duration::from_secs(10), || async { (app.ready_status().await == 200).then_some(()) }).await;
    assert_eq!(app.inject(POOL, json!({"kind": "kill_thread"})).await.status(), 200);
    let health = eventually("the dead mailbox to be noticed", Duration::from_secs(10), || async {
        let h = app.health().await;
        (h["actors"][0]["last_failure"]["reason"] == "mailbox_closed").then_some(h)
    })
    .await;
    assert_eq!(health["actors"][0]["restarts"], 1);
    eventually("ready on a new thread", Duration::from_secs(10), || async {
        (app.ready_status().await == 200).then_some(())
    })
    .await;
    assert_eq!(app.inject(POOL, json!({"kind": "delay", "millis": 1})).await.status(), 200);
    let metrics = app.metrics().await;
    assert_eq!(
        sample(&metrics, &format!("beryl_actor_failures_total{{actor=\"{POOL}\",reason=\"mailbox_closed\"}}")),
        Some(1.0)
    );
}

#[actix_web::test]
async fn a_slow_actor_shows_mailbox_depth_and_time_in_mailbox() {
    let app = spawn_app().await;
    eventually("ready", Duration::from_secs(10), || async { (app.ready_status().await == 200).then_some(()) }).await;
    let slow: Vec<_> = (0..4).map(|_| app.inject(POOL, json!({"kind": "delay", "millis": 300}))).collect();
    let watcher = async {
        eventually("a queue to form", Duration::from_secs(5), || async {
            let depth = app.health().await["actors"][0]["mailbox_depth"].as_i64().unwrap_or(0);
            (depth >= 2).then_some(depth)
        })
        .await
    };
    let (responses, depth) = futures::join!(futures::future::join_all(slow), watcher);
    assert!(depth >= 2);
    assert!(responses.iter().all(|r| r.status() == 200));
    let metrics = app.metrics().await;
    let waited =
        sample(&metrics, &format!("beryl_actor_mailbox_seconds_sum{{actor=\"{POOL}\",message=\"InjectFault\"}}"))
            .unwrap();
    assert!(waited >= 0.3, "the queued messages waited behind the slow ones: {waited}");
    assert_eq!(app.health().await["actors"][0]["mailbox_depth"], 0);
}
