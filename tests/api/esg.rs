//! ESG against real PostgreSQL, Redis and the embedded broker: reports priced and scored,
//! refusals that record nothing, idempotent retries; completed rides credited once whatever the
//! order and however often they are delivered; the shipped factors standing in for a failed
//! emissions provider; one subject never reading another's data; erasure.

use std::time::Duration;

use beryl_core_api::{
    adapters::bus::{InRecord, OutRecord},
    domain::privacy::Place,
};
use chrono::Utc;
use serde_json::{json, Value};
use uuid::Uuid;
use wiremock::{matchers::method, Mock, MockServer, ResponseTemplate};

use crate::{
    events::on_kafka,
    helpers::{call, eventually, post_keyed, sample, spawn_app, spawn_with, TestApp},
    kafka,
};

const TOPIC: &str = "beryl.mobility.events";

fn today() -> String {
    Utc::now().date_naive().to_string()
}

async fn report(app: &TestApp, token: &str, body: Value, key: Option<&str>) -> (u16, Value) {
    let mut post = app.client.post(app.url("/api/v1/esg/activities")).bearer_auth(token).json(&body);
    if let Some(key) = key {
        post = post.header("Idempotency-Key", key);
    }
    let res = post.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn overview(app: &TestApp, token: &str) -> Value {
    let res = app.get_as("/api/v1/esg/me", token).await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

async fn activities(app: &TestApp, token: &str) -> Vec<Value> {
    let res = app.get_as("/api/v1/esg/me/activities?limit=100", token).await;
    assert_eq!(res.status(), 200);
    let page: Value = res.json().await.unwrap();
    page["items"].as_array().unwrap().clone()
}

#[actix_web::test]
async fn a_report_is_priced_and_scored_and_every_refusal_records_nothing() {
    let app = spawn_app().await;
    let token = app.token("ada", &["esg:read", "esg:write"]);
    let (status, body) =
        report(&app, &token, json!({"type": "train", "date": today(), "distance_km": 42.5}), None).await;
    assert_eq!(status, 201, "{body}");
    let a = &body["activity"];
    // The shipped factors: 0.041 kg/km by train against 0.176 for a petrol car.
    assert_eq!((a["type"].as_str(), a["source"].as_str()), (Some("train"), Some("report")));
    assert_eq!(
        (a["co2e_kg"].as_f64(), a["baseline_kg"].as_f64(), a["avoided_kg"].as_f64()),
        (Some(1.743), Some(7.48), Some(5.737))
    );
    assert_eq!(a["factor_route"], "simulator");
    assert_eq!(a["factor_version"], "uk-ghg-conversion-factors-2018-passenger");
    // ⌊100 × 5737 × 42500 / (7480 × 100000)⌋ = 32: most of a car's emissions avoided, over less
    // than the 100 km of full credit.
    assert_eq!(body["score"]["total"], 32);
    assert_eq!(body["score"]["method_version"], "esg-score/3");

    let refusals = [
        (json!({"type": "ride_car", "date": today(), "distance_km": 5.0}), 400, "unknown_activity_type"),
        (json!({"type": "hovercraft", "date": today(), "distance_km": 5.0}), 400, "unknown_activity_type"),
        (json!({"type": "bike", "date": today(), "distance_km": 0.0}), 422, "invalid_distance"),
        (json!({"type": "bike", "date": today(), "distance_km": -3.0}), 422, "invalid_distance"),
        (json!({"type": "bike", "date": today(), "distance_km": 2000.5}), 422, "invalid_distance"),
        (json!({"type": "bike", "date": "2099-01-01", "distance_km": 5.0}), 422, "date_out_of_range"),
        (json!({"type": "bike", "date": "2001-01-01", "distance_km": 5.0}), 422, "date_out_of_range"),
        (json!({"type": "train", "date": today(), "distance_km": 43.0}), 422, "duplicate_activity"),
        (json!({"type": "bike", "date": "yesterday", "distance_km": 5.0}), 400, "malformed_json"),
        (json!({"type": "bike", "date": today(), "distance_km": 5.0, "extra": 1}), 400, "malformed_json"),
    ];
    for (body, status, code) in refusals {
        let (got, problem) = report(&app, &token, body.clone(), None).await;
        assert_eq!((got, problem["code"].as_str()), (status, Some(code)), "{body} → {problem}");
    }
    let (_, future) =
        report(&app, &token, json!({"type": "bike", "date": "2099-01-01", "distance_km": 5.0}), None).await;
    assert_eq!(future["latest"], today());
    let all = activities(&app, &token).await;
    assert_eq!(all.len(), 1, "refusals recorded nothing: {all:?}");
    let me = overview(&app, &token).await;
    assert_eq!((me["totals"]["activities"].as_u64(), me["score"]["total"].as_u64()), (Some(1), Some(32)));
    assert_eq!(me["trend"].as_array().unwrap().len(), 1);

    // A retry with the same key answers the first report; the key for another report is refused.
    let bike = json!({"type": "bike", "date": today(), "distance_km": 12.0});
    let (first, once) = report(&app, &token, bike.clone(), Some("commute-1")).await;
    let (again, twice) = report(&app, &token, bike, Some("commute-1")).await;
    assert_eq!((first, again), (201, 200));
    assert_eq!(once["activity"]["id"], twice["activity"]["id"]);
    let other = json!({"type": "bike", "date": today(), "distance_km": 30.0});
    let (status, problem) = report(&app, &token, other, Some("commute-1")).await;
    assert_eq!((status, problem["code"].as_str()), (409, Some("idempotency_key_reused")), "{problem}");
    assert_eq!(activities(&app, &token).await.len(), 2);

    let metrics = app.metrics().await;
    let series = |result: &str| format!("beryl_esg_activities_total{{source=\"report\",result=\"{result}\"}}");
    assert_eq!(sample(&metrics, &series("recorded")), Some(2.0));
    assert_eq!(sample(&metrics, &series("duplicate")), Some(1.0));
    assert_eq!(sample(&metrics, "beryl_esg_score_count"), Some(2.0));
    assert_eq!(sample(&metrics, "beryl_esg_co2e_grams_total{flow=\"avoided\"}"), Some(5737.0 + 2112.0));
}

/// A completed ride of `rider` as mobility publishes it: the rider sealed under their key.
async fn completed(app: &TestApp, rider: &str, mode: &str, distance_m: u64, event: Uuid) -> OutRecord {
    let ride = Uuid::now_v7();
    let row = ride.to_string();
    let sealed = app.state.guard.vault.seal(rider, Place::new("mobility.ride.rider", &row), rider).await.unwrap();
    let data = json!({
        "ride": ride, "rider": sealed.to_text(), "state": "completed", "mode": mode, "currency": "EUR",
        "quoted_fare": 1200, "fare": 1100, "distance_m": distance_m, "duration_s": 900,
    });
    event_record(event, "mobility.ride.completed", &row, data)
}

fn event_record(id: Uuid, kind: &str, key: &str, data: Value) -> OutRecord {
    crate::helpers::event_record(TOPIC, (id, kind, key), 7, data)
}

#[actix_web::test]
async fn completed_rides_are_credited_once_whatever_their_order_and_redelivery() {
    let app = spawn_app().await;
    let rides = [("bike", 6_000u64), ("car", 14_000), ("scooter", 3_500), ("ev_car", 21_000), ("bike", 2_200)];
    let ids: Vec<Uuid> = rides.iter().map(|_| Uuid::now_v7()).collect();
    // Ann's rides in order, each once; Bob's the same rides in reverse, each delivered twice.
    for ((mode, m), id) in rides.iter().zip(&ids) {
        app.state.actors.broker.append(completed(&app, "ann", mode, *m, *id).await);
    }
    for ((mode, m), id) in rides.iter().zip(&ids).rev() {
        // Bob's events are other events (other ids), delivered twice each.
        let id = Uuid::new_v5(id, b"bob");
        let record = completed(&app, "bob", mode, *m, id).await;
        app.state.actors.broker.append(record.clone());
        app.state.actors.broker.append(record);
    }
    // A rider field that does not open is dead-lettered, and holds nothing up.
    let mut forged = completed(&app, "ann", "car", 5_000, Uuid::now_v7()).await;
    let mut event: Value = serde_json::from_slice(&forged.payload).unwrap();
    event["data"]["rider"] = json!("not-a-sealed-field");
    forged.payload = serde_json::to_vec(&event).unwrap();
    app.state.actors.broker.append(forged);
    // Mobility's other events are not ESG's: acknowledged, neither credited nor dead-lettered.
    let started =
        json!({"ride": Uuid::now_v7(), "state": "in_progress", "mode": "car", "currency": "EUR", "quoted_fare": 1});
    app.state.actors.broker.append(event_record(Uuid::now_v7(), "mobility.ride.started", "x", started));

    let (ann, bob) = (app.token("ann", &["esg:read"]), app.token("bob", &["esg:read"]));
    let seen = eventually("every ride credited", Duration::from_secs(20), || async {
        let (a, b) = (overview(&app, &ann).await, overview(&app, &bob).await);
        (a["totals"]["activities"] == 5 && b["totals"]["activities"] == 5).then_some((a, b))
    })
    .await;
    let (a, b) = seen;
    assert_eq!(a["totals"], b["totals"], "the same rides give the same totals");
    assert_eq!(a["score"], b["score"], "and the same score");
    assert_eq!(a["trend"], b["trend"]);
    // 6 + 2.2 km by bike taxi emit nothing; 3.5 km by scooter at 0.004 kg/km; the car rides emit
    // and avoid nothing.
    let ann_activities = activities(&app, &ann).await;
    assert_eq!(ann_activities.len(), 5);
    let bike: Vec<&Value> = ann_activities.iter().filter(|a| a["type"] == "ride_bike").collect();
    assert!(bike.iter().all(|a| a["co2e_kg"] == 0.0 && a["factor_route"] == "none"));
    let metrics = app.metrics().await;
    assert_eq!(sample(&metrics, "beryl_esg_activities_total{source=\"ride\",result=\"recorded\"}"), Some(10.0));
    assert_eq!(sample(&metrics, "beryl_esg_activities_total{source=\"ride\",result=\"duplicate\"}"), Some(5.0));
    let ignored = "beryl_events_applied_total{topic=\"beryl.mobility.events\",actor=\"none\",result=\"ignored\"}";
    eventually("the other event acknowledged as ignored", Duration::from_secs(10), || async {
        (sample(&app.metrics().await, ignored) == Some(1.0)).then_some(())
    })
    .await;
    dead_lettered_once(&app, "beryl.mobility.events.dlq", "rider_unreadable").await;
    // Each subject's score is published, naming them only sealed, keyed by their blind index.
    let updates = score_updates(&app, 10).await;
    assert_eq!(updates.len(), 10);
    assert!(updates
        .iter()
        .all(|e| e["data"]["subject"].as_str().is_some_and(|s| !s.contains("ann") && !s.contains("bob"))));
}

#[actix_web::test]
async fn milestones_are_reached_once_and_published() {
    let app = spawn_app().await;
    let token = app.token("cy", &["esg:read", "esg:write"]);
    // 90 km by train avoid 90 × (0.176 − 0.041) = 12.15 kg: past 1 kg and 10 kg at once.
    let (status, body) =
        report(&app, &token, json!({"type": "train", "date": today(), "distance_km": 90.0}), None).await;
    assert_eq!(status, 201, "{body}");
    let yesterday = (Utc::now().date_naive() - chrono::Days::new(1)).to_string();
    let (status, _) = report(&app, &token, json!({"type": "train", "date": yesterday, "distance_km": 9.0}), None).await;
    assert_eq!(status, 201);
    let milestones = eventually("the milestones published", Duration::from_secs(10), || async {
        let found: Vec<Value> = app
            .published("beryl.esg.events")
            .into_iter()
            .filter(|e| e["type"] == "esg.milestone.reached")
            .map(|e| e["data"]["milestone"].clone())
            .collect();
        (found.len() >= 2).then_some(found)
    })
    .await;
    assert_eq!(milestones, vec![json!("avoided_1_kg"), json!("avoided_10_kg")]);
}

#[actix_web::test]
async fn when_the_emissions_provider_is_down_the_shipped_factors_price_and_say_so() {
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(503)).mount(&server).await;
    let url = server.uri();
    let app = spawn_with(move |s| {
        let e = &mut s.adapters.emissions;
        e.url = Some(url.as_str().into());
        e.attempt_timeout_ms = 300;
        e.total_timeout_ms = 1000;
        e.retry_backoff_ms = 5;
        e.retry_backoff_max_ms = 20;
    })
    .await;
    let token = app.token("dee", &["esg:read", "esg:write"]);
    let (status, body) = report(&app, &token, json!({"type": "bus", "date": today(), "distance_km": 10.0}), None).await;
    assert_eq!(status, 201, "{body}");
    let a = &body["activity"];
    assert_eq!(a["factor_route"], "fallback");
    assert_eq!(a["factor_version"], "uk-ghg-conversion-factors-2018-passenger");
    assert!(a["factor_source"].as_str().unwrap().contains("2018"), "{a}");
    assert_eq!((a["co2e_kg"].as_f64(), a["avoided_kg"].as_f64()), (Some(1.03), Some(0.73)));
    let stored = activities(&app, &token).await;
    assert_eq!(stored[0]["factor_route"], "fallback", "the stored activity says so too");
    assert_eq!(sample(&app.metrics().await, "beryl_esg_factors_total{route=\"fallback\"}"), Some(1.0));
}

#[actix_web::test]
async fn one_subject_never_reads_anothers_data_and_erasure_removes_it() {
    let app = spawn_app().await;
    let (eve, mal) = (app.token("eve", &["esg:read", "esg:write"]), app.token("mal", &["esg:read", "esg:write"]));
    let (status, _) = report(&app, &eve, json!({"type": "walk", "date": today(), "distance_km": 4.0}), None).await;
    assert_eq!(status, 201);
    assert!(activities(&app, &mal).await.is_empty());
    let theirs = overview(&app, &mal).await;
    assert_eq!((theirs["score"].clone(), theirs["totals"]["activities"].as_u64()), (Value::Null, Some(0)));
    // Another subject's overview is an administrator's, with a reason.
    let res = app.get_as("/api/v1/esg/subjects/eve", &mal).await;
    assert_eq!(res.status(), 403);
    let admin = app.token("root", &["admin"]);
    let res = app.get_as("/api/v1/esg/subjects/eve", &admin).await;
    let problem: Value = res.json().await.unwrap();
    assert_eq!(problem["code"], "reason_required");
    let res = app
        .client
        .get(app.url("/api/v1/esg/subjects/eve"))
        .bearer_auth(&admin)
        .header("X-Access-Reason", "support case 7")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let read: Value = res.json().await.unwrap();
    assert_eq!(read["totals"]["activities"], 1);
    // The export holds ESG's part; erasure removes it.
    let privacy = app.token("eve", &["privacy:write", "privacy:read", "esg:read"]);
    let export: Value = app.get_as("/api/v1/privacy/export", &privacy).await.json().await.unwrap();
    assert_eq!(export["domains"]["esg"]["activities"].as_array().map(Vec::len), Some(1), "{export}");
    let res = app.post_as("/api/v1/privacy/erasure-requests", &privacy, &json!({})).await;
    assert_eq!(res.status(), 201);
    let record: Value = res.json().await.unwrap();
    assert_eq!(record["removed"]["esg.activities"], 1, "{record}");
    assert!(activities(&app, &eve).await.is_empty());
    assert_eq!(overview(&app, &eve).await["totals"]["activities"], 0);
}

/// `who` with a public social profile: a token for social and ESG.
async fn social_user(app: &TestApp, who: &str) -> String {
    let token = app.token(who, &["social:read", "social:write", "esg:read", "esg:write"]);
    let body = json!({"handle": format!("{who}_esg"), "display_name": who, "visibility": "public"});
    let (status, answer) = call(app, reqwest::Method::PUT, "/api/v1/social/me/profile", &token, Some(body)).await;
    assert_eq!(status, 201, "{answer}");
    token
}

/// `token`'s user writes a post and comments on it: the post's id.
async fn post_and_comment(app: &TestApp, token: &str) -> String {
    let body = json!({"text": "Cycled to work today", "visibility": "public"});
    let (status, post) = call(app, reqwest::Method::POST, "/api/v1/social/posts", token, Some(body)).await;
    assert_eq!(status, 201, "{post}");
    let id = post["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/social/posts/{id}/comments");
    let (status, comment) = call(app, reqwest::Method::POST, &path, token, Some(json!({"text": "And back"}))).await;
    assert_eq!(status, 201, "{comment}");
    id
}

/// The value of the score's component `part`.
fn component(me: &Value, part: &str) -> Value {
    let found = me["score"]["components"].as_array().and_then(|c| c.iter().find(|c| c["part"] == part));
    found.map(|c| c["value"].clone()).unwrap_or(Value::Null)
}

/// How many of ESG's inputs from `source` ended with `result`.
async fn counted(app: &TestApp, source: &str, result: &str) -> f64 {
    let series = format!("beryl_esg_activities_total{{source=\"{source}\",result=\"{result}\"}}");
    sample(&app.metrics().await, &series).unwrap_or(0.0)
}

async fn participations(app: &TestApp, result: &str) -> f64 {
    counted(app, "participation", result).await
}

/// The `esg.score.updated` events published, once the relay has published at least `n` (it
/// publishes after the change commits, on its own schedule).
async fn score_updates(app: &TestApp, n: usize) -> Vec<Value> {
    eventually("the score updates published", Duration::from_secs(10), || async {
        let updates: Vec<Value> =
            app.published("beryl.esg.events").into_iter().filter(|e| e["type"] == "esg.score.updated").collect();
        (updates.len() >= n).then_some(updates)
    })
    .await
}

/// Wait for one dead letter on `dlq`, and check it is the only one and says `reason`.
async fn dead_lettered_once(app: &TestApp, dlq: &str, reason: &str) {
    let letters = eventually("the event dead-lettered", Duration::from_secs(10), || async {
        let letters = app.state.actors.broker.records(dlq);
        (!letters.is_empty()).then_some(letters)
    })
    .await;
    assert_eq!(letters.len(), 1);
    assert!(letters[0].headers.iter().any(|(k, v)| k == "dlq-reason" && v == reason.as_bytes()));
}

/// Deliver `records` again, as a producer's retry would.
fn redeliver(app: &TestApp, records: &[InRecord]) {
    for r in records {
        let again = OutRecord {
            topic: r.topic.clone(),
            key: r.key.clone(),
            payload: r.payload.clone().unwrap(),
            headers: r.headers.clone(),
        };
        app.state.actors.broker.append(again);
    }
}

#[actix_web::test]
async fn posts_and_comments_make_the_social_component_once_per_event() {
    let app = spawn_app().await;
    let lea = social_user(&app, "lea").await;
    post_and_comment(&app, &lea).await;
    eventually("the post and the comment counted", Duration::from_secs(20), || async {
        (participations(&app, "recorded").await == 2.0).then_some(())
    })
    .await;
    let me = overview(&app, &lea).await;
    // One day of participation of the twelve that earn it all, ⌊100 / 12⌋ = 8, and no travel
    // (environmental 0): (0·60 + 8·20) / 80 = 2.
    assert_eq!(me["score"]["method_version"], "esg-score/3");
    assert_eq!((component(&me, "environmental"), component(&me, "social")), (json!(0), json!(8)), "{me}");
    assert_eq!((me["score"]["total"].as_u64(), me["totals"]["activities"].as_u64()), (Some(2), Some(0)));
    assert_eq!(component(&me, "governance"), Value::Null);
    // Delivered again: nothing changes.
    let created: Vec<_> = app
        .state
        .actors
        .broker
        .records("beryl.social.events")
        .into_iter()
        .filter(|r| {
            let v: Value = serde_json::from_slice(r.payload.as_deref().unwrap()).unwrap();
            v["type"] == "social.post.created" || v["type"] == "social.comment.created"
        })
        .collect();
    assert_eq!(created.len(), 2);
    redeliver(&app, &created);
    eventually("the redeliveries seen", Duration::from_secs(20), || async {
        (participations(&app, "duplicate").await == 2.0).then_some(())
    })
    .await;
    assert_eq!(participations(&app, "recorded").await, 2.0);
    let updates = score_updates(&app, 2).await.len();
    assert_eq!(updates, 2, "one score update per participation, none for a redelivery");
    // With 100 km by bike the environmental component is full: (100·60 + 8·20) / 80 = 77.
    let (status, _) = report(&app, &lea, json!({"type": "bike", "date": today(), "distance_km": 100.0}), None).await;
    assert_eq!(status, 201);
    let me = overview(&app, &lea).await;
    assert_eq!((me["score"]["total"].as_u64(), component(&me, "social")), (Some(77), json!(8)), "{me}");
    // The export holds the participations; erasure removes them.
    let privacy = app.token("lea", &["privacy:write", "privacy:read", "esg:read"]);
    let export: Value = app.get_as("/api/v1/privacy/export", &privacy).await.json().await.unwrap();
    let took = export["domains"]["esg"]["participations"].as_array().cloned().unwrap_or_default();
    assert_eq!(took.iter().map(|p| p["kind"].as_str().unwrap()).collect::<Vec<_>>(), ["post", "comment"], "{export}");
    let res = app.post_as("/api/v1/privacy/erasure-requests", &privacy, &json!({})).await;
    assert_eq!(res.status(), 201);
    let record: Value = res.json().await.unwrap();
    assert_eq!(record["removed"]["esg.participations"], 2, "{record}");
    assert_eq!(overview(&app, &lea).await["score"], Value::Null);
}

async fn wallet_changes(app: &TestApp, result: &str) -> f64 {
    counted(app, "wallet", result).await
}

/// `POST path` as `token` with a fresh idempotency key: the status and the body.
async fn post_once(app: &TestApp, token: &str, path: &str, body: Value) -> (u16, Value) {
    post_keyed(app, token, path, body, &Uuid::now_v7().to_string()).await
}

#[actix_web::test]
async fn a_wallets_standing_makes_the_governance_component_once_per_change() {
    let app = spawn_app().await;
    let gus = app.token("gus", &["fintech:read", "fintech:write", "esg:read"]);
    let compliance = app.token("compliance", &["admin"]);
    let (status, wallet) = post_once(&app, &gus, "/api/v1/fintech/wallets", json!({"currency": "EUR"})).await;
    assert_eq!(status, 201, "{wallet}");
    let id = wallet["id"].as_str().unwrap().to_owned();
    let recorded = |n: f64| {
        let app = &app;
        async move { (wallet_changes(app, "recorded").await == n).then_some(()) }
    };
    eventually("the opening counted", Duration::from_secs(20), || recorded(1.0)).await;
    // A wallet in good standing and no travel: (0·60 + 100·20) / 80 = 25.
    let me = overview(&app, &gus).await;
    assert_eq!(me["score"]["method_version"], "esg-score/3");
    assert_eq!((component(&me, "governance"), component(&me, "environmental")), (json!(100), json!(0)), "{me}");
    assert_eq!((me["score"]["total"].as_u64(), component(&me, "social")), (Some(25), Value::Null));
    // Frozen by compliance: governance 0 until unfrozen.
    let (status, _) = post_once(&app, &compliance, &format!("/api/v1/fintech/wallets/{id}/freeze"), json!({})).await;
    assert_eq!(status, 200);
    eventually("the freeze counted", Duration::from_secs(20), || recorded(2.0)).await;
    let me = overview(&app, &gus).await;
    assert_eq!((component(&me, "governance"), me["score"]["total"].as_u64()), (json!(0), Some(0)), "{me}");
    let (status, _) = post_once(&app, &compliance, &format!("/api/v1/fintech/wallets/{id}/unfreeze"), json!({})).await;
    assert_eq!(status, 200);
    eventually("the unfreeze counted", Duration::from_secs(20), || recorded(3.0)).await;
    assert_eq!(component(&overview(&app, &gus).await, "governance"), json!(100));
    // The lifecycle events carry the owner sealed, never in the clear; delivered again they
    // change nothing.
    let lifecycle: Vec<_> = app
        .state
        .actors
        .broker
        .records("beryl.fintech.events")
        .into_iter()
        .filter(|r| {
            let v: Value = serde_json::from_slice(r.payload.as_deref().unwrap()).unwrap();
            v["aggregate_id"] == id.as_str()
        })
        .collect();
    assert_eq!(lifecycle.len(), 3);
    for r in &lifecycle {
        let v: Value = serde_json::from_slice(r.payload.as_deref().unwrap()).unwrap();
        let owner = v["data"]["owner"].as_str().unwrap();
        assert!(owner.starts_with("pd1.") && !owner.contains("gus"), "{v}");
    }
    redeliver(&app, &lifecycle);
    eventually("the redeliveries seen", Duration::from_secs(20), || async {
        (wallet_changes(&app, "duplicate").await == 3.0).then_some(())
    })
    .await;
    assert_eq!(wallet_changes(&app, "recorded").await, 3.0);
    // A freeze whose owner is not sealed by fintech never opens: dead-lettered, counted for no
    // one. A movement of money on the topic is not ESG's: acknowledged, unread.
    let topic = "beryl.fintech.events";
    let forged = json!({"kind": "frozen", "amount": 0, "owner": "gus"});
    let forged = crate::helpers::event_record(topic, (Uuid::now_v7(), "fintech.wallet.frozen", &id), 40, forged);
    app.state.actors.broker.append(forged);
    let deposit = json!({"kind": "deposit", "amount": 500});
    let deposit = crate::helpers::event_record(topic, (Uuid::now_v7(), "fintech.wallet.deposit", &id), 41, deposit);
    app.state.actors.broker.append(deposit);
    dead_lettered_once(&app, "beryl.fintech.events.dlq", "owner_unreadable").await;
    let ignored = "beryl_events_applied_total{topic=\"beryl.fintech.events\",actor=\"none\",result=\"ignored\"}";
    eventually("the deposit acknowledged as ignored", Duration::from_secs(10), || async {
        (sample(&app.metrics().await, ignored) == Some(1.0)).then_some(())
    })
    .await;
    assert_eq!(component(&overview(&app, &gus).await, "governance"), json!(100));
    let updates = score_updates(&app, 3).await.len();
    assert_eq!(updates, 3, "one score update per change, none for a redelivery");
    // The export lists the changes; erasure removes them.
    let privacy = app.token("gus", &["privacy:write", "privacy:read", "esg:read"]);
    let export: Value = app.get_as("/api/v1/privacy/export", &privacy).await.json().await.unwrap();
    let changes = export["domains"]["esg"]["wallet_changes"].as_array().cloned().unwrap_or_default();
    let kinds: Vec<&str> = changes.iter().map(|c| c["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["opened", "frozen", "unfrozen"], "{export}");
    let res = app.post_as("/api/v1/privacy/erasure-requests", &privacy, &json!({})).await;
    assert_eq!(res.status(), 201);
    let record: Value = res.json().await.unwrap();
    assert_eq!(record["removed"]["esg.wallet_changes"], 3, "{record}");
    assert_eq!(overview(&app, &gus).await["score"], Value::Null);
}

#[actix_web::test]
async fn rides_flow_into_scores_through_a_real_broker() {
    let (brokers, ns) = (kafka::broker(), kafka::unique("esg"));
    let topic = format!("{ns}.mobility.events");
    let inbound = topic.clone();
    let app = spawn_with(|s| {
        on_kafka(s, &brokers, &ns);
        s.event_bus.inbound_topics.push(inbound);
        s.event_bus.inbound_topics.push(format!("{ns}.social.events"));
    })
    .await;
    kafka::create_topics(&brokers, &[&topic], 3).await;
    let producer = kafka::producer(&brokers);
    let rides = [("bike", 8_000u64), ("car", 12_000), ("bike", 4_000)];
    for (i, (mode, m)) in rides.iter().enumerate() {
        let record = completed(&app, "fay", mode, *m, Uuid::now_v7()).await;
        let key = String::from_utf8(record.key.clone().unwrap()).unwrap();
        kafka::produce(&producer, &topic, &key, &record.payload).await;
        if i == 0 {
            // Delivered again, as after a producer's retry.
            kafka::produce(&producer, &topic, &key, &record.payload).await;
        }
    }
    let token = app.token("fay", &["esg:read"]);
    let me = eventually("the rides credited", Duration::from_secs(30), || async {
        let me = overview(&app, &token).await;
        (me["totals"]["activities"] == 3).then_some(me)
    })
    .await;
    // 12 of 24 km by bike taxi: half of a car's emissions avoided, over 24 of the 100 km of full
    // credit: ⌊100 × 2112 × 24000 / (4224 × 100000)⌋ = 12.
    assert_eq!((me["totals"]["distance_km"].as_f64(), me["score"]["total"].as_u64()), (Some(24.0), Some(12)));
    let published = kafka::read_topic(&brokers, &format!("{ns}.esg.events"), 3, Duration::from_secs(30));
    let updates: Vec<&kafka::Read> = published.iter().filter(|r| r.value["type"] == "esg.score.updated").collect();
    assert_eq!(updates.len(), 3, "one score update per ride credited, none for the redelivery");
    assert_eq!(updates.last().unwrap().value["data"]["total"], 12);
    // Her post and comment go through the broker too, and make the social component:
    // (12·60 + 8·20) / 80 = 11.
    let social = social_user(&app, "fay").await;
    post_and_comment(&app, &social).await;
    let me = eventually("the participation counted", Duration::from_secs(30), || async {
        let me = overview(&app, &token).await;
        (component(&me, "social") == json!(8)).then_some(me)
    })
    .await;
    assert_eq!((me["score"]["total"].as_u64(), me["totals"]["activities"].as_u64()), (Some(11), Some(3)));
}

#[actix_web::test]
async fn graphql_reports_and_reads_as_rest_does() {
    let app = spawn_app().await;
    let token = app.token("gus", &["esg:read", "esg:write"]);
    let mutation = format!(
        r#"mutation {{ reportActivity(input: {{type: BUS, date: "{}", distanceKm: 10}}, idempotencyKey: "g-1") {{
             replayed activity {{ id type co2eKg avoidedKg factorRoute }} }} }}"#,
        today()
    );
    let first = app.graphql(&token, &mutation).await;
    let again = app.graphql(&token, &mutation).await;
    let recorded = &first["data"]["reportActivity"];
    assert_eq!(recorded["activity"]["type"], "bus", "{first}");
    assert_eq!((recorded["activity"]["co2eKg"].as_f64(), recorded["replayed"].as_bool()), (Some(1.03), Some(false)));
    assert_eq!(again["data"]["reportActivity"]["replayed"], true);
    assert_eq!(again["data"]["reportActivity"]["activity"]["id"], recorded["activity"]["id"]);

    let refused = app
        .graphql(
            &token,
            r#"mutation { reportActivity(input: {type: BIKE, date: "2001-01-01", distanceKm: 3}) { replayed } }"#,
        )
        .await;
    assert_eq!(refused["errors"][0]["extensions"]["code"], "date_out_of_range", "{refused}");

    let read = app
        .graphql(&token, "{ esg { score { total methodVersion components { part value } } totals { activities } trend { month } } esgActivities(first: 10) { items { type } nextCursor } }")
        .await;
    let esg = &read["data"]["esg"];
    let rest = overview(&app, &token).await;
    assert_eq!(esg["score"]["total"], rest["score"]["total"], "{read}");
    assert_eq!(esg["totals"]["activities"], 1);
    assert_eq!(read["data"]["esgActivities"]["items"].as_array().map(Vec::len), Some(1));

    // Another subject's overview: an administrator's, with a reason.
    let other = app.token("hal", &["esg:read"]);
    let denied = app.graphql(&other, r#"{ esg(subject: "gus") { totals { activities } } }"#).await;
    assert_eq!(denied["errors"][0]["extensions"]["code"], "not_owner", "{denied}");
    let admin = app.token("root", &["admin"]);
    let no_reason = app.graphql(&admin, r#"{ esg(subject: "gus") { totals { activities } } }"#).await;
    assert_eq!(no_reason["errors"][0]["extensions"]["code"], "reason_required");
    let read =
        app.graphql(&admin, r#"{ esg(subject: "gus", reason: "support case 9") { totals { activities } } }"#).await;
    assert_eq!(read["data"]["esg"]["totals"]["activities"], 1, "{read}");
}

/// Both projections, as text, in a fixed order.
async fn projections(db: &tokio_postgres::Client) -> (String, String) {
    let read = |sql: &'static str| async move {
        let row = db.query_one(sql, &[]).await.unwrap();
        row.get::<_, Option<String>>(0).unwrap_or_default()
    };
    let months =
        read("SELECT string_agg(row_to_json(m)::text, E'\\n' ORDER BY subject_index, month, kind) FROM esg_monthly m")
            .await;
    let subjects =
        read("SELECT string_agg(row_to_json(s)::text, E'\\n' ORDER BY subject_index) FROM esg_subjects s").await;
    (months, subjects)
}

#[actix_web::test]
async fn a_rebuild_gives_byte_identical_projections_while_the_service_serves() {
    let app = spawn_app().await;
    let yesterday = (Utc::now().date_naive() - chrono::Days::new(1)).to_string();
    for (who, n) in [("ida", 1), ("jo", 2), ("kim", 3)] {
        let token = app.token(who, &["esg:read", "esg:write"]);
        for i in 0..n {
            let (kind, date) = (["bike", "train", "bus"][i], if i == 1 { yesterday.clone() } else { today() });
            let body = json!({"type": kind, "date": date, "distance_km": 7.5 * (i + 1) as f64});
            assert_eq!(report(&app, &token, body, None).await.0, 201);
        }
        app.state.actors.broker.append(completed(&app, who, "car", 9_000, Uuid::now_v7()).await);
    }
    // Jo also took part in the community, and Lu only did.
    for who in ["jo", "lu"] {
        let token = social_user(&app, who).await;
        post_and_comment(&app, &token).await;
    }
    let kim = app.token("kim", &["esg:read"]);
    eventually("the rides and participations credited", Duration::from_secs(20), || async {
        let rides = overview(&app, &kim).await["totals"]["activities"] == 4;
        (rides && participations(&app, "recorded").await == 4.0).then_some(())
    })
    .await;
    let url = app.state.settings.database.url.as_ref().unwrap().expose().to_string();
    let (db, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    actix_rt::spawn(connection);
    let built = projections(&db).await;
    assert_eq!(built.1.lines().count(), 4);
    // Damage both projections, then rebuild them from the activities.
    db.batch_execute("DELETE FROM esg_monthly WHERE kind = 'bike'; UPDATE esg_subjects SET total = 0, score = NULL, activities = 1, version = 9")
        .await
        .unwrap();
    assert_ne!(projections(&db).await, built);
    let (code, stdout, stderr) =
        crate::helpers::run_cli(&["esg", "rebuild", "--batch", "2"], &[("DATABASE_URL", &url)]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("esg rebuild: 4 subjects"), "{stdout}");
    assert!(
        stdout.contains("esg rebuild: 2 of 4 subjects") && stdout.contains("4 of 4 subjects (4 changed)"),
        "{stdout}"
    );
    assert_eq!(projections(&db).await, built, "the rebuilt projections are the ones built event by event");
    let (code, stdout, _) = crate::helpers::run_cli(&["esg", "rebuild"], &[("DATABASE_URL", &url)]);
    assert_eq!(code, 0);
    assert!(stdout.contains("4 subjects rebuilt, 0 of them changed"), "{stdout}");
    // The service kept serving, and reads the rebuilt state once its cache expires.
    assert_eq!(overview(&app, &kim).await["totals"]["activities"], 4);
}

async fn board(app: &TestApp, token: &str, query: &str) -> Value {
    let month = Utc::now().format("%Y-%m");
    let res = app.get_as(&format!("/api/v1/esg/leaderboards/{month}{query}"), token).await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

fn ranking(board: &Value) -> Vec<(u64, f64, bool)> {
    board["places"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["rank"].as_u64().unwrap(), p["avoided_kg"].as_f64().unwrap(), p["you"].as_bool().unwrap()))
        .collect()
}

#[actix_web::test]
async fn leaderboards_rank_only_members_and_are_rebuilt_when_redis_loses_them() {
    let app = spawn_app().await;
    let tokens: Vec<String> = ["lea", "max", "ned"].iter().map(|w| app.token(w, &["esg:read", "esg:write"])).collect();
    let join = |token: &String, body: Value| {
        let req = app.client.put(app.url("/api/v1/esg/me/leaderboard")).bearer_auth(token).json(&body).send();
        async move {
            let res = req.await.unwrap();
            (res.status().as_u16(), res.json::<Value>().await.unwrap())
        }
    };
    let (status, lea) = join(&tokens[0], json!({"opt_in": true, "community": "paris-11"})).await;
    assert_eq!((status, lea["opt_in"].as_bool(), lea["community"].as_str()), (200, Some(true), Some("paris-11")));
    assert!(lea["member"].as_str().unwrap().starts_with("member-"));
    assert_eq!(join(&tokens[1], json!({"opt_in": true})).await.0, 200);
    let (status, problem) = join(&tokens[2], json!({"opt_in": true, "community": "Paris!"})).await;
    assert_eq!((status, problem["code"].as_str()), (400, Some("invalid_parameter")));
    // Lea avoids 10 km of bike, Max 20 km, Ned (not a member) 50 km.
    for (token, km) in tokens.iter().zip([10.0, 20.0, 50.0]) {
        let (status, _) = report(&app, token, json!({"type": "bike", "date": today(), "distance_km": km}), None).await;
        assert_eq!(status, 201);
    }
    let all = board(&app, &tokens[0], "").await;
    assert_eq!(ranking(&all), vec![(1, 3.52, false), (2, 1.76, true)], "{all}");
    assert_eq!(all["me"]["rank"], 2);
    let paris = board(&app, &tokens[1], "?community=paris-11").await;
    assert_eq!(ranking(&paris), vec![(1, 1.76, false)]);
    assert_eq!(paris["me"], Value::Null, "Max is not in that community");
    assert_eq!(board(&app, &tokens[2], "").await["me"], Value::Null, "Ned is not ranked");

    // Redis loses every board: the next read rebuilds them from PostgreSQL.
    let redis = redis::Client::open(crate::helpers::redis_url()).unwrap();
    let mut conn = redis.get_multiplexed_async_connection().await.unwrap();
    let pattern = format!("{}esg:lb:*", app.state.settings.redis.key_prefix);
    let keys: Vec<String> = redis::cmd("KEYS").arg(&pattern).query_async(&mut conn).await.unwrap();
    assert_eq!(keys.len(), 2, "{keys:?}");
    let _: () = redis::cmd("DEL").arg(&keys).query_async(&mut conn).await.unwrap();
    assert_eq!(board(&app, &tokens[0], "").await, all);
    // Leaving takes Max off the board; Lea's next activity moves her up.
    assert_eq!(join(&tokens[1], json!({"opt_in": false})).await.0, 200);
    let (status, _) =
        report(&app, &tokens[0], json!({"type": "train", "date": today(), "distance_km": 30.0}), None).await;
    assert_eq!(status, 201);
    let after = board(&app, &tokens[1], "").await;
    // 1.76 kg by bike and 30 × (0.176 − 0.041) = 4.05 kg by train.
    assert_eq!(ranking(&after), vec![(1, 5.81, false)], "{after}");
    let res = app.get_as("/api/v1/esg/leaderboards/1999-01", &tokens[0]).await;
    assert_eq!(res.status(), 422);
    let res = app.get_as("/api/v1/esg/leaderboards/1999-1", &tokens[0]).await;
    assert_eq!(res.status(), 400);
    // The same board over GraphQL.
    let month = Utc::now().format("%Y-%m");
    let gql = app
        .graphql(
            &tokens[0],
            &format!(r#"{{ esgLeaderboard(period: "{month}") {{ places {{ rank avoidedKg you }} me {{ rank }} }} }}"#),
        )
        .await;
    assert_eq!(gql["data"]["esgLeaderboard"]["places"], json!([{"rank": 1, "avoidedKg": 5.81, "you": true}]), "{gql}");
    let left = app.graphql(&tokens[2], "mutation { setLeaderboardMembership(optIn: false) { optIn member } }").await;
    assert_eq!(left["data"]["setLeaderboardMembership"]["optIn"], false, "{left}");
    // Erasing Lea takes her off every board at once.
    let privacy = app.token("lea", &["privacy:write"]);
    assert_eq!(app.post_as("/api/v1/privacy/erasure-requests", &privacy, &json!({})).await.status(), 201);
    assert_eq!(ranking(&board(&app, &tokens[1], "").await), vec![]);
    assert_eq!(ranking(&board(&app, &tokens[1], "?community=paris-11").await), vec![]);
}
