//! Activity posts against real PostgreSQL and Redis, with the embedded broker and with a real
//! one: a completed ride and an ESG milestone become posts by users whose profiles share them,
//! once per event however often it is delivered (a deleted one does not come back), seen by
//! their followers; users who do not share them, or have no profile, get nothing.

use std::time::Duration;

use beryl_core_api::{adapters::bus::OutRecord, domain::privacy::Place};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::{
    events::on_kafka,
    helpers::{call, eventually, spawn_app, spawn_with, TestApp},
    kafka,
};

const SCOPES: &[&str] = &["social:read", "social:write"];

/// A profile for the subject `sub-<handle>`, sharing what `sharing` says: its token.
async fn user(app: &TestApp, handle: &str, sharing: Option<Value>) -> String {
    let token = app.token(&format!("sub-{handle}"), SCOPES);
    let mut body = json!({"handle": handle, "display_name": handle, "visibility": "public"});
    if let Some(sharing) = sharing {
        body["sharing"] = sharing;
    }
    let (status, answer) = call(app, reqwest::Method::PUT, "/api/v1/social/me/profile", &token, Some(body)).await;
    assert_eq!(status, 201, "{answer}");
    token
}

/// The posts of `handle` as `token` reads them: (text, link kind).
async fn posts_of(app: &TestApp, token: &str, handle: &str) -> Vec<(String, String)> {
    let (status, page) =
        call(app, reqwest::Method::GET, &format!("/api/v1/social/profiles/{handle}/posts"), token, None).await;
    assert_eq!(status, 200, "{page}");
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["text"].as_str().unwrap().to_owned(), p["link"]["kind"].as_str().unwrap_or_default().to_owned()))
        .collect()
}

fn record(id: Uuid, kind: &str, topic: &str, key: &str, data: Value) -> OutRecord {
    crate::helpers::event_record(topic, (id, kind, key), 3, data)
}

/// `mobility.ride.completed` of a ride `rider` took, on `topic`.
async fn ride(app: &TestApp, topic: &str, rider: &str, mode: &str, distance_m: u64) -> OutRecord {
    let ride = Uuid::now_v7();
    let row = ride.to_string();
    let sealed = app.state.guard.vault.seal(rider, Place::new("mobility.ride.rider", &row), rider).await.unwrap();
    let data = json!({
        "ride": ride, "rider": sealed.to_text(), "state": "completed", "mode": mode, "currency": "EUR",
        "quoted_fare": 1200, "fare": 1100, "distance_m": distance_m, "duration_s": 900,
    });
    record(Uuid::now_v7(), "mobility.ride.completed", topic, &row, data)
}

/// `esg.milestone.reached` of `subject` reaching `kg` avoided.
async fn milestone(app: &TestApp, subject: &str, kg: u64) -> OutRecord {
    let activity = Uuid::now_v7();
    let row = activity.to_string();
    let sealed = app.state.guard.vault.seal(subject, Place::new("esg.subject", &row), subject).await.unwrap();
    let data = json!({"subject": sealed.to_text(), "activity": activity, "milestone": format!("avoided_{kg}_kg"), "avoided_kg": kg});
    record(Uuid::now_v7(), "esg.milestone.reached", "beryl.esg.events", "k", data)
}

#[actix_web::test]
async fn activities_become_posts_once_per_event_for_the_users_who_share_them() {
    let app = spawn_app().await;
    let gus = user(&app, "gus_rides", Some(json!({"rides": true, "milestones": true}))).await;
    let hal = user(&app, "hal_quiet", None).await;
    let ivy = user(&app, "ivy_reads", Some(json!({"milestones": true}))).await;
    let (status, body) = call(&app, reqwest::Method::PUT, "/api/v1/social/profiles/gus_rides/follow", &ivy, None).await;
    assert_eq!((status, &body["following"]), (200, &json!("active")), "{body}");
    let (_, me) = call(&app, reqwest::Method::GET, "/api/v1/social/me/profile", &gus, None).await;
    assert_eq!(me["sharing"], json!({"rides": true, "milestones": true}), "{me}");
    let (_, other) = call(&app, reqwest::Method::GET, "/api/v1/social/profiles/gus_rides", &ivy, None).await;
    assert!(other.get("sharing").is_none(), "only the owner sees what they share: {other}");

    let broker = &app.state.actors.broker;
    // Gus's ride delivered twice, a ride of Hal (who shares nothing), one of Ivy (who shares
    // milestones only) and one of someone without a profile.
    let gus_ride = ride(&app, "beryl.mobility.events", "sub-gus_rides", "ev_car", 12_345).await;
    broker.append(gus_ride.clone());
    broker.append(gus_ride.clone());
    broker.append(ride(&app, "beryl.mobility.events", "sub-hal_quiet", "bike", 3_000).await);
    broker.append(ride(&app, "beryl.mobility.events", "sub-ivy_reads", "car", 3_000).await);
    broker.append(ride(&app, "beryl.mobility.events", "sub-nobody", "bike", 3_000).await);
    let gus_milestone = milestone(&app, "sub-gus_rides", 10).await;
    broker.append(gus_milestone.clone());
    broker.append(gus_milestone);
    broker.append(milestone(&app, "sub-hal_quiet", 10).await);

    let wanted = [
        ("Completed a 12.3 km ride by electric car.".to_owned(), "ride".to_owned()),
        ("Reached a milestone: 10 kg of CO2e avoided.".to_owned(), "esg_milestone".to_owned()),
    ];
    let posts = eventually("gus's activities posted", Duration::from_secs(20), || async {
        let posts = posts_of(&app, &gus, "gus_rides").await;
        (posts.len() >= 2).then_some(posts)
    })
    .await;
    let mut sorted = posts.clone();
    sorted.sort();
    assert_eq!(sorted, wanted, "one post per event, however often delivered");
    // Ivy follows Gus and sees them (followers-only posts) on her home timeline.
    let (_, home) = call(&app, reqwest::Method::GET, "/api/v1/social/timeline", &ivy, None).await;
    assert_eq!(home["items"].as_array().unwrap().len(), 2, "{home}");
    assert!(posts_of(&app, &hal, "hal_quiet").await.is_empty(), "Hal shares nothing");
    assert!(posts_of(&app, &ivy, "ivy_reads").await.is_empty(), "Ivy shares milestones, not rides");

    // Gus deletes his ride post; the same event delivered again does not bring it back.
    let (_, page) = call(&app, reqwest::Method::GET, "/api/v1/social/profiles/gus_rides/posts", &gus, None).await;
    let ride_post = page["items"].as_array().unwrap().iter().find(|p| p["link"]["kind"] == "ride").unwrap().clone();
    let path = format!("/api/v1/social/posts/{}", ride_post["id"].as_str().unwrap());
    let (status, deleted) = call(&app, reqwest::Method::DELETE, &path, &gus, None).await;
    assert_eq!((status, &deleted["deleted"]), (200, &json!(true)), "{deleted}");
    broker.append(gus_ride);
    let metrics = eventually("the redelivery counted", Duration::from_secs(20), || async {
        let text = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
        let line = text
            .lines()
            .find(|l| {
                l.starts_with("beryl_social_activity_posts_total{")
                    && l.contains(r#"result="duplicate""#)
                    && l.contains(r#"kind="ride""#)
            })
            .map(str::to_owned)?;
        (line.ends_with(" 2")).then_some(text)
    })
    .await;
    assert!(metrics.lines().any(|l| l.starts_with("beryl_social_activity_posts_total{")
        && l.contains(r#"kind="ride""#)
        && l.contains(r#"result="not_shared""#)
        && l.ends_with(" 3")));
    assert_eq!(posts_of(&app, &gus, "gus_rides").await.len(), 1, "the deleted post stays deleted");
}

#[actix_web::test]
async fn a_ride_through_a_real_broker_becomes_a_ride_post_and_the_milestone_esg_reaches_with_it() {
    let (brokers, ns) = (kafka::broker(), kafka::unique("social"));
    let (mobility, esg) = (format!("{ns}.mobility.events"), format!("{ns}.esg.events"));
    let inbound = vec![mobility.clone(), esg.clone()];
    let app = spawn_with(|s| {
        on_kafka(s, &brokers, &ns);
        s.event_bus.inbound_topics = inbound;
    })
    .await;
    kafka::create_topics(&brokers, &[&mobility, &esg], 3).await;
    let gus = user(&app, "gus_kafka", Some(json!({"rides": true, "milestones": true}))).await;
    // 20 km by bike taxi avoids more than a kilogram against a car: ESG credits the ride and
    // publishes the milestone, which comes back through the broker as a post.
    let completed = ride(&app, &mobility, "sub-gus_kafka", "bike", 20_000).await;
    let key = String::from_utf8(completed.key.clone().unwrap()).unwrap();
    let producer = kafka::producer(&brokers);
    kafka::produce(&producer, &mobility, &key, &completed.payload).await;
    kafka::produce(&producer, &mobility, &key, &completed.payload).await;
    let posts = eventually("the ride and its milestone posted", Duration::from_secs(40), || async {
        let posts = posts_of(&app, &gus, "gus_kafka").await;
        (posts.len() >= 2).then_some(posts)
    })
    .await;
    let mut posts = posts;
    posts.sort_by(|a, b| a.1.cmp(&b.1));
    let kinds: Vec<&str> = posts.iter().map(|(_, kind)| kind.as_str()).collect();
    assert_eq!(kinds, ["esg_milestone", "ride"], "{posts:?}");
    assert_eq!(posts[0].0, "Reached a milestone: 1 kg of CO2e avoided.");
    assert_eq!(posts[1].0, "Completed a 20.0 km ride by bike.");
    let published = kafka::read_topic(&brokers, &format!("{ns}.social.events"), 2, Duration::from_secs(30));
    let created: Vec<&kafka::Read> = published.iter().filter(|r| r.value["type"] == "social.post.created").collect();
    assert_eq!(created.len(), 2, "one post per event, none for the redelivery");
}
