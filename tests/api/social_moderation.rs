//! Moderation against real PostgreSQL and Redis: users report posts and profiles once while the
//! report is open, administrators read the queue (with a reason, audited), hide a post (it leaves
//! every reader but its author, its reports close as actioned) and show it again, and resolve
//! reports; the same over GraphQL with the same codes.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{call, eventually, sample, spawn_with, TestApp};

const SCOPES: &[&str] = &["social:read", "social:write"];

async fn user(app: &TestApp, handle: &str) -> String {
    let token = app.token(&format!("sub-{handle}"), SCOPES);
    let body = json!({"handle": handle, "display_name": handle.to_uppercase(), "visibility": "public"});
    let (status, answer) = call(app, reqwest::Method::PUT, "/api/v1/social/me/profile", &token, Some(body)).await;
    assert_eq!(status, 201, "{answer}");
    token
}

async fn post(app: &TestApp, token: &str, path: &str, body: Value) -> (u16, Value) {
    call(app, reqwest::Method::POST, path, token, Some(body)).await
}

async fn get(app: &TestApp, token: &str, path: &str) -> (u16, Value) {
    call(app, reqwest::Method::GET, path, token, None).await
}

/// The moderation queue in `status`, read by an administrator with a reason.
async fn queue(app: &TestApp, admin: &str, status: &str) -> (u16, Value) {
    let res = app
        .client
        .get(app.url(&format!("/api/v1/social/moderation/reports?status={status}")))
        .bearer_auth(admin)
        .header("X-Access-Reason", "weekly moderation round")
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

fn code(body: &Value) -> &str {
    body["code"].as_str().unwrap_or_default()
}

fn texts(page: &Value) -> Vec<String> {
    page["items"].as_array().unwrap().iter().map(|p| p["text"].as_str().unwrap().to_owned()).collect()
}

#[actix_web::test]
async fn reports_reach_the_queue_and_a_hidden_post_is_its_authors_alone() {
    let crate::helpers::Audited { app, dir: _dir, log: live } = crate::helpers::audited().await;
    let (spammer, reader, other) = (user(&app, "spammer").await, user(&app, "reader").await, user(&app, "other").await);
    let admin = app.token("moderator", &["admin"]);
    assert_eq!(call(&app, reqwest::Method::PUT, "/api/v1/social/profiles/spammer/follow", &reader, None).await.0, 200);
    let (_, made) = post(&app, &spammer, "/api/v1/social/posts", json!({"text": "Buy now!!!"})).await;
    let id = made["id"].as_str().unwrap().to_owned();
    assert_eq!(post(&app, &spammer, "/api/v1/social/posts", json!({"text": "A real post"})).await.0, 201);
    let private =
        post(&app, &spammer, "/api/v1/social/posts", json!({"text": "mine", "visibility": "private"})).await.1;

    // Reports: of a post the reporter sees, once while open; not of their own; not of a post
    // they do not see; a reason from the list.
    let reports = format!("/api/v1/social/posts/{id}/reports");
    let (status, filed) = post(&app, &reader, &reports, json!({"reason": "spam"})).await;
    assert_eq!(status, 201, "{filed}");
    assert_eq!((filed["status"].as_str(), filed["reason"].as_str()), (Some("open"), Some("spam")));
    let (status, again) = post(&app, &reader, &reports, json!({"reason": "hate"})).await;
    assert_eq!((status, code(&again)), (409, "already_reported"), "{again}");
    assert_eq!(again["report"], filed["id"]);
    assert_eq!(post(&app, &other, &reports, json!({"reason": "spam"})).await.0, 201);
    let (status, own) = post(&app, &spammer, &reports, json!({"reason": "spam"})).await;
    assert_eq!((status, code(&own)), (422, "own_content"));
    let hidden_from_them = format!("/api/v1/social/posts/{}/reports", private["id"].as_str().unwrap());
    let (status, unseen) = post(&app, &reader, &hidden_from_them, json!({"reason": "spam"})).await;
    assert_eq!((status, code(&unseen)), (404, "post_not_found"));
    let (status, bad) = post(&app, &reader, &reports, json!({"reason": "boring"})).await;
    assert_eq!((status, code(&bad)), (400, "malformed_json"));
    let (status, profile) =
        post(&app, &reader, "/api/v1/social/profiles/spammer/reports", json!({"reason": "harassment"})).await;
    assert_eq!(status, 201, "{profile}");
    let (status, mine) =
        post(&app, &reader, "/api/v1/social/profiles/reader/reports", json!({"reason": "other"})).await;
    assert_eq!((status, code(&mine)), (422, "own_content"));

    // The queue is the administrators', with a reason; oldest first, the post's text opened.
    let (status, denied) = get(&app, &reader, "/api/v1/social/moderation/reports").await;
    assert_eq!((status, code(&denied)), (403, "scope_missing"));
    let (status, unreasoned) = get(&app, &admin, "/api/v1/social/moderation/reports").await;
    assert_eq!((status, code(&unreasoned)), (403, "reason_required"));
    let (status, open) = queue(&app, &admin, "open").await;
    assert_eq!(status, 200, "{open}");
    let items = open["items"].as_array().unwrap();
    let seen: Vec<(&str, &str, Option<&str>)> = items
        .iter()
        .map(|r| (r["reporter"]["handle"].as_str().unwrap(), r["reason"].as_str().unwrap(), r["post"]["text"].as_str()))
        .collect();
    assert_eq!(
        seen,
        [("reader", "spam", Some("Buy now!!!")), ("other", "spam", Some("Buy now!!!")), ("reader", "harassment", None)]
    );
    assert!(items.iter().all(|r| r["profile"]["handle"] == "spammer"));

    // Hidden: its reports close as actioned; followers and strangers lose it everywhere; its
    // author still sees it, marked.
    let hide = format!("/api/v1/social/moderation/posts/{id}/hide");
    let (status, denied) = post(&app, &reader, &hide, json!({"reason": "spam"})).await;
    assert_eq!((status, code(&denied)), (403, "scope_missing"));
    let (status, moderated) = post(&app, &admin, &hide, json!({"reason": "spam"})).await;
    assert_eq!(status, 200, "{moderated}");
    assert_eq!((moderated["changed"].as_bool(), moderated["reports_closed"].as_u64()), (Some(true), Some(2)));
    assert_eq!(moderated["hidden"]["reason"], "spam");
    let (_, again) = post(&app, &admin, &hide, json!({"reason": "hate"})).await;
    assert_eq!((again["changed"].as_bool(), again["hidden"]["reason"].as_str()), (Some(false), Some("spam")));
    let (status, gone) = get(&app, &reader, &format!("/api/v1/social/posts/{id}")).await;
    assert_eq!((status, code(&gone)), (404, "post_not_found"));
    assert_eq!(texts(&get(&app, &reader, "/api/v1/social/timeline").await.1), ["A real post"]);
    assert_eq!(texts(&get(&app, &other, "/api/v1/social/profiles/spammer/posts").await.1), ["A real post"]);
    let (status, comment) =
        post(&app, &reader, &format!("/api/v1/social/posts/{id}/comments"), json!({"text": "hm"})).await;
    assert_eq!((status, code(&comment)), (404, "post_not_found"));
    let (_, theirs) = get(&app, &spammer, &format!("/api/v1/social/posts/{id}")).await;
    assert_eq!(theirs["hidden"]["reason"], "spam", "{theirs}");
    assert_eq!(texts(&get(&app, &spammer, "/api/v1/social/timeline").await.1), ["mine", "A real post", "Buy now!!!"]);
    assert_eq!(texts(&get(&app, &spammer, "/api/v1/social/profiles/spammer/posts").await.1).len(), 3);
    let (status, closed) = queue(&app, &admin, "actioned").await;
    assert_eq!((status, closed["items"].as_array().unwrap().len()), (200, 2), "{closed}");
    assert_eq!(closed["items"][0]["post"]["hidden"]["reason"], "spam");
    let (_, open) = queue(&app, &admin, "open").await;
    assert_eq!(open["items"].as_array().unwrap().len(), 1);
    // A closed report does not stop a new one.
    assert_eq!(post(&app, &reader, &reports, json!({"reason": "spam"})).await.0, 404, "hidden from the reader");

    // Shown again: back in every timeline, where it was.
    let (status, shown) = post(&app, &admin, &format!("/api/v1/social/moderation/posts/{id}/unhide"), json!({})).await;
    assert_eq!((status, shown["changed"].as_bool(), shown["hidden"].is_null()), (200, Some(true), true), "{shown}");
    assert_eq!(texts(&get(&app, &reader, "/api/v1/social/timeline").await.1), ["A real post", "Buy now!!!"]);
    assert_eq!(post(&app, &reader, &reports, json!({"reason": "spam"})).await.0, 201, "open again after closing");

    // Resolving: once.
    let report = open["items"][0]["id"].as_str().unwrap().to_owned();
    let resolve = format!("/api/v1/social/moderation/reports/{report}/resolve");
    let (status, resolved) = post(&app, &admin, &resolve, json!({"resolution": "dismissed"})).await;
    assert_eq!((status, resolved["status"].as_str()), (200, Some("dismissed")), "{resolved}");
    assert!(resolved["resolved_at"].is_string());
    let (status, twice) = post(&app, &admin, &resolve, json!({"resolution": "actioned"})).await;
    assert_eq!((status, code(&twice), twice["status"].as_str()), (409, "report_closed", Some("dismissed")));
    let unknown = "/api/v1/social/moderation/reports/0193b1d2-7f3a-7c1e-9a4b-2f6d8e0c1a2b/resolve";
    let (status, missing) = post(&app, &admin, unknown, json!({"resolution": "actioned"})).await;
    assert_eq!((status, code(&missing)), (404, "report_not_found"));

    // Each subject's export holds the reports they filed, and the mark on their hidden posts.
    let export = |subject: &str| {
        let token = app.token(subject, &["privacy:read"]);
        let app = &app;
        async move {
            let export: Value = app.get_as("/api/v1/privacy/export", &token).await.json().await.unwrap();
            export["domains"]["social"].clone()
        }
    };
    let part = export("sub-reader").await;
    let filed = part["reports"].clone();
    assert!(filed.is_array(), "{part}");
    let reasons: Vec<(&str, &str)> = filed
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["reason"].as_str().unwrap(), r["status"].as_str().unwrap()))
        .collect();
    assert_eq!(reasons, [("spam", "actioned"), ("harassment", "dismissed"), ("spam", "open")], "{filed}");
    post(&app, &admin, &hide, json!({"reason": "violence"})).await;
    let theirs = export("sub-spammer").await;
    let marks: Vec<&Value> = theirs["posts"].as_array().unwrap().iter().map(|p| &p["hidden"]).collect();
    assert_eq!(marks.iter().filter(|m| m["reason"] == "violence").count(), 1, "{theirs}");
    assert_eq!(theirs["reports"], json!([]));

    // Counted, published, and audited with who did it and why.
    let metrics = app.metrics().await;
    for (series, n) in [
        (r#"beryl_social_reports_total{target="post"}"#, 3.0),
        (r#"beryl_social_reports_total{target="profile"}"#, 1.0),
        (r#"beryl_social_moderation_actions_total{action="hidden"}"#, 2.0),
        (r#"beryl_social_moderation_actions_total{action="unhidden"}"#, 1.0),
        (r#"beryl_social_moderation_actions_total{action="dismissed"}"#, 1.0),
        (r#"beryl_social_moderation_actions_total{action="actioned"}"#, 0.0),
    ] {
        assert_eq!(sample(&metrics, series), Some(n), "{series}");
    }
    let events = eventually("moderation events", Duration::from_secs(10), || async {
        let events = app.published("beryl.social.events");
        let of_post: Vec<String> = events
            .iter()
            .filter(|e| e["aggregate_id"] == id.as_str())
            .map(|e| e["type"].as_str().unwrap().to_owned())
            .collect();
        (of_post.len() >= 4).then_some(of_post)
    })
    .await;
    assert_eq!(events, ["social.post.created", "social.post.hidden", "social.post.unhidden", "social.post.hidden"]);
    let records = crate::graphql::audit_records(&app, &live).await;
    let by_moderator: Vec<(&str, Option<&str>)> = records
        .iter()
        .filter(|r| r["subject"] == "moderator" && r["status"] == 200)
        .map(|r| (r["action"].as_str().unwrap(), r["reason"].as_str()))
        .collect();
    assert!(
        by_moderator.contains(&("GET /api/v1/social/moderation/reports", Some("weekly moderation round"))),
        "{by_moderator:?}"
    );
    assert!(by_moderator.contains(&("POST /api/v1/social/moderation/posts/{id}/hide", None)), "{by_moderator:?}");
    let filed_by_reader = records
        .iter()
        .filter(|r| r["subject"] == "sub-reader" && r["action"] == "POST /api/v1/social/posts/{id}/reports")
        .count();
    assert!(filed_by_reader >= 2, "{records:?}");
}

#[actix_web::test]
async fn graphql_offers_the_same_with_the_same_codes() {
    let app = spawn_with(|_| {}).await;
    let (ann, bob) = (user(&app, "ann").await, user(&app, "bob").await);
    let admin = app.token("moderator", &["admin"]);
    let (_, made) = post(&app, &ann, "/api/v1/social/posts", json!({"text": "spam spam"})).await;
    let id = made["id"].as_str().unwrap().to_owned();

    let report = format!(r#"mutation {{ reportPost(id: "{id}", reason: SPAM) {{ id status reason }} }}"#);
    let filed = app.graphql(&bob, &report).await;
    assert_eq!(filed["data"]["reportPost"]["status"], "OPEN", "{filed}");
    let again = app.graphql(&bob, &report).await;
    assert_eq!(again["errors"][0]["extensions"]["code"], "already_reported", "{again}");
    let own = app.graphql(&ann, &report).await;
    assert_eq!(own["errors"][0]["extensions"]["code"], "own_content", "{own}");
    let profile = app.graphql(&bob, r#"mutation { reportProfile(handle: "ann", reason: OTHER) { status } }"#).await;
    assert_eq!(profile["data"]["reportProfile"]["status"], "OPEN", "{profile}");

    let read =
        r#"{ moderationReports(reason: "review") { items { reason reporter { handle } post { text } } nextCursor } }"#;
    let denied = app.graphql(&bob, read).await;
    assert_eq!(denied["errors"][0]["extensions"]["code"], "scope_missing", "{denied}");
    let unreasoned = app.graphql(&admin, "{ moderationReports { items { reason } } }").await;
    assert_eq!(unreasoned["errors"][0]["extensions"]["code"], "reason_required", "{unreasoned}");
    let page = app.graphql(&admin, read).await;
    assert_eq!(
        page["data"]["moderationReports"]["items"],
        json!([
            {"reason": "SPAM", "reporter": {"handle": "bob"}, "post": {"text": "spam spam"}},
            {"reason": "OTHER", "reporter": {"handle": "bob"}, "post": null}
        ]),
        "{page}"
    );
    let tampered = app.graphql(&admin, r#"{ moderationReports(reason: "r", after: "1_x.y") { nextCursor } }"#).await;
    assert_eq!(tampered["errors"][0]["extensions"]["code"], "invalid_cursor", "{tampered}");

    let hide =
        format!(r#"mutation {{ hidePost(id: "{id}", reason: SPAM) {{ changed reportsClosed hidden {{ reason }} }} }}"#);
    let denied = app.graphql(&bob, &hide).await;
    assert_eq!(denied["errors"][0]["extensions"]["code"], "scope_missing", "{denied}");
    let hidden = app.graphql(&admin, &hide).await;
    assert_eq!(hidden["data"]["hidePost"], json!({"changed": true, "reportsClosed": 1, "hidden": {"reason": "SPAM"}}));
    let seen = app.graphql(&bob, &format!(r#"{{ post(id: "{id}") {{ text }} }}"#)).await;
    assert_eq!(seen["errors"][0]["extensions"]["code"], "post_not_found", "{seen}");
    let theirs = app.graphql(&ann, &format!(r#"{{ post(id: "{id}") {{ hidden {{ reason }} }} }}"#)).await;
    assert_eq!(theirs["data"]["post"]["hidden"]["reason"], "SPAM", "{theirs}");
    let shown = app
        .graphql(&admin, &format!(r#"mutation {{ unhidePost(id: "{id}") {{ changed hidden {{ reason }} }} }}"#))
        .await;
    assert_eq!(shown["data"]["unhidePost"], json!({"changed": true, "hidden": null}), "{shown}");

    let open = app.graphql(&admin, r#"{ moderationReports(reason: "r") { items { id } } }"#).await;
    let report = open["data"]["moderationReports"]["items"][0]["id"].as_str().unwrap().to_owned();
    let resolve = format!(r#"mutation {{ resolveReport(id: "{report}", resolution: DISMISSED) {{ status }} }}"#);
    assert_eq!(app.graphql(&admin, &resolve).await["data"]["resolveReport"]["status"], "DISMISSED");
    let twice = app.graphql(&admin, &resolve).await;
    assert_eq!(twice["errors"][0]["extensions"]["code"], "report_closed", "{twice}");
}
