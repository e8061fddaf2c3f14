//! Social against real PostgreSQL and Redis: profiles with sealed personal fields and handles
//! unique whatever their case; follows, requests, blocks and mutes with their counts; who sees
//! what, as a table; every refusal changing nothing; the same over GraphQL; events; export and
//! erasure; the per-user follow limit.

use serde_json::{json, Value};

use crate::helpers::{call, sample, spawn_app, spawn_with, TestApp};

const SCOPES: &[&str] = &["social:read", "social:write"];

async fn put_profile(app: &TestApp, token: &str, body: Value) -> (u16, Value) {
    call(app, reqwest::Method::PUT, "/api/v1/social/me/profile", token, Some(body)).await
}

async fn get(app: &TestApp, token: &str, path: &str) -> (u16, Value) {
    call(app, reqwest::Method::GET, path, token, None).await
}

async fn put(app: &TestApp, token: &str, path: &str) -> (u16, Value) {
    call(app, reqwest::Method::PUT, path, token, None).await
}

async fn delete(app: &TestApp, token: &str, path: &str) -> (u16, Value) {
    call(app, reqwest::Method::DELETE, path, token, None).await
}

/// A user with a profile of `visibility`: their token.
async fn user(app: &TestApp, handle: &str, visibility: &str) -> String {
    let token = app.token(&format!("sub-{handle}"), SCOPES);
    let (status, body) = put_profile(
        app,
        &token,
        json!({"handle": handle, "display_name": handle.to_uppercase(), "visibility": visibility}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    token
}

async fn profile(app: &TestApp, token: &str, handle: &str) -> Value {
    let (status, body) = get(app, token, &format!("/api/v1/social/profiles/{handle}")).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn handles(app: &TestApp, token: &str, path: &str) -> Vec<String> {
    let (status, body) = get(app, token, path).await;
    assert_eq!(status, 200, "{path}: {body}");
    body["items"].as_array().unwrap().iter().map(|e| e["profile"]["handle"].as_str().unwrap().to_owned()).collect()
}

fn code(body: &Value) -> &str {
    body["code"].as_str().unwrap_or_default()
}

#[actix_web::test]
async fn a_profile_is_written_with_sealed_fields_and_every_refusal_changes_nothing() {
    let app = spawn_app().await;
    let ada = app.token("ada", SCOPES);
    // Nothing before the profile is made.
    let (status, body) = get(&app, &ada, "/api/v1/social/me/profile").await;
    assert_eq!((status, code(&body)), (409, "profile_required"));
    let (status, body) = put_profile(
        &app,
        &ada,
        json!({"handle": "Ada_L", "display_name": "Ada L. ✨", "bio": "Line one\nline two",
               "avatar_url": "https://images.example/ada.png", "visibility": "public"}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["handle"], "Ada_L");
    assert_eq!(body["display_name"], "Ada L. ✨");
    assert_eq!((body["followers"].as_u64(), body["relation"].clone()), (Some(0), Value::Null));

    // The personal fields are sealed in PostgreSQL: the row holds no plaintext.
    let url = app.state.settings.database.url.as_ref().unwrap().expose().to_string();
    let (db, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    actix_rt::spawn(connection);
    let row = db.query_one("SELECT handle, display_name, bio, avatar_url FROM social_profiles", &[]).await.unwrap();
    for i in 0..4 {
        let stored: String = row.get(i);
        let plain = ["Ada_L", "ada_l", "Ada L.", "Line one", "images.example"];
        assert!(!plain.iter().any(|p| stored.contains(p)), "column {i} holds plaintext: {stored}");
    }
    drop(db);

    // Refusals, each with its code and field; the profile is unchanged after all of them.
    let bob = app.token("bob", SCOPES);
    let cases = [
        (&ada, json!({"handle": "ad", "display_name": "A", "visibility": "public"}), 400, "invalid_handle", "handle"),
        (
            &ada,
            json!({"handle": "ada-l", "display_name": "A", "visibility": "public"}),
            400,
            "invalid_handle",
            "handle",
        ),
        (
            &ada,
            json!({"handle": "ada_l", "display_name": "A\u{202E}gpj", "visibility": "public"}),
            400,
            "invalid_text",
            "display_name",
        ),
        (
            &ada,
            json!({"handle": "ada_l", "display_name": "  ", "visibility": "public"}),
            400,
            "invalid_text",
            "display_name",
        ),
        (
            &ada,
            json!({"handle": "ada_l", "display_name": "A".repeat(51), "visibility": "public"}),
            400,
            "invalid_text",
            "display_name",
        ),
        (
            &ada,
            json!({"handle": "ada_l", "display_name": "A", "bio": "x\u{0007}", "visibility": "public"}),
            400,
            "invalid_text",
            "bio",
        ),
        (
            &ada,
            json!({"handle": "ada_l", "display_name": "A", "avatar_url": "http://images.example/a.png", "visibility": "public"}),
            400,
            "invalid_url",
            "avatar_url",
        ),
        (
            &bob,
            json!({"handle": "ADA_L", "display_name": "Bob", "visibility": "public"}),
            409,
            "handle_taken",
            "handle",
        ),
    ];
    for (token, body, status, expected, field) in cases {
        let (got, answer) = put_profile(&app, token, body.clone()).await;
        assert_eq!((got, code(&answer), answer["field"].as_str()), (status, expected, Some(field)), "{body}: {answer}");
    }
    let (status, body) =
        put_profile(&app, &ada, json!({"handle": "ada", "display_name": "A", "visibility": "sometimes"})).await;
    assert_eq!((status, code(&body)), (400, "malformed_json"));
    let (_, mine) = get(&app, &ada, "/api/v1/social/me/profile").await;
    assert_eq!((mine["handle"].as_str(), mine["display_name"].as_str()), (Some("Ada_L"), Some("Ada L. ✨")));
    assert_eq!(mine["bio"], "Line one\nline two");
    let (status, _) = get(&app, &bob, "/api/v1/social/me/profile").await;
    assert_eq!(status, 409, "the refused profile was not made");

    // Rewriting: the handle may change case, or change; the old one is free again.
    let (status, body) =
        put_profile(&app, &ada, json!({"handle": "ada_lovelace", "display_name": "Ada", "visibility": "private"}))
            .await;
    assert_eq!(
        (status, body["bio"].clone(), body["visibility"].clone()),
        (200, Value::Null, json!("private")),
        "{body}"
    );
    let (status, _) =
        put_profile(&app, &bob, json!({"handle": "ada_l", "display_name": "Bob", "visibility": "public"})).await;
    assert_eq!(status, 201);
    // Found by handle in any case.
    assert_eq!(profile(&app, &bob, "ADA_LOVELACE").await["display_name"], "Ada");
    let (status, body) = get(&app, &bob, "/api/v1/social/profiles/nobody_here").await;
    assert_eq!((status, code(&body)), (404, "profile_not_found"));
    let (status, body) = get(&app, &bob, "/api/v1/social/profiles/no%20body").await;
    assert_eq!((status, code(&body)), (400, "invalid_handle"));

    let metrics = app.metrics().await;
    assert_eq!(sample(&metrics, r#"beryl_social_profiles_written_total{result="created"}"#), Some(2.0));
    assert_eq!(sample(&metrics, r#"beryl_social_profiles_written_total{result="updated"}"#), Some(1.0));
}

#[actix_web::test]
async fn follows_requests_blocks_and_mutes_keep_their_counts_and_publish_events() {
    let app = spawn_app().await;
    let (ann, ben, cid) =
        (user(&app, "ann", "public").await, user(&app, "ben", "private").await, user(&app, "cid", "followers").await);

    // Following a public or followers-only profile is immediate; again changes nothing.
    for target in ["ann", "cid"] {
        let (status, body) = put(&app, &ben, &format!("/api/v1/social/profiles/{target}/follow")).await;
        assert_eq!((status, body), (200, json!({"following": "active", "changed": true})));
    }
    let (_, again) = put(&app, &ben, "/api/v1/social/profiles/ANN/follow").await;
    assert_eq!(again, json!({"following": "active", "changed": false}));
    assert_eq!(profile(&app, &cid, "ann").await["followers"], 1);
    assert_eq!(profile(&app, &cid, "ben").await["following"], 2);
    let seen = profile(&app, &ben, "ann").await;
    assert_eq!(
        seen["relation"],
        json!({"following": "active", "followed_by": null, "blocking": false, "muting": false})
    );

    // Following a private profile is a request, answered by its owner.
    let (_, asked) = put(&app, &ann, "/api/v1/social/profiles/ben/follow").await;
    assert_eq!(asked, json!({"following": "pending", "changed": true}));
    let (_, asked) = put(&app, &cid, "/api/v1/social/profiles/ben/follow").await;
    assert_eq!(asked["following"], "pending");
    assert_eq!(profile(&app, &ann, "ben").await["followers"], 0, "a request is not a follow");
    assert_eq!(handles(&app, &ben, "/api/v1/social/me/follow-requests").await, ["cid", "ann"]);
    let (status, _) =
        call(&app, reqwest::Method::POST, "/api/v1/social/me/follow-requests/ann/accept", &ben, None).await;
    assert_eq!(status, 200);
    let (status, _) =
        call(&app, reqwest::Method::POST, "/api/v1/social/me/follow-requests/cid/decline", &ben, None).await;
    assert_eq!(status, 200);
    let (status, body) =
        call(&app, reqwest::Method::POST, "/api/v1/social/me/follow-requests/cid/accept", &ben, None).await;
    assert_eq!((status, code(&body)), (404, "follow_request_not_found"), "a declined request is gone");
    assert!(handles(&app, &ben, "/api/v1/social/me/follow-requests").await.is_empty());
    assert_eq!(handles(&app, &ben, "/api/v1/social/profiles/ben/followers").await, ["ann"]);
    assert_eq!(profile(&app, &ann, "ben").await["followers"], 1);

    // Refusals: oneself, across a block, before having a profile, an unknown profile.
    let (status, body) = put(&app, &ann, "/api/v1/social/profiles/ann/follow").await;
    assert_eq!((status, code(&body)), (422, "own_profile"));
    let nobody = app.token("nobody", SCOPES);
    let (status, body) = put(&app, &nobody, "/api/v1/social/profiles/ann/follow").await;
    assert_eq!((status, code(&body)), (409, "profile_required"));
    let (status, body) = put(&app, &ann, "/api/v1/social/profiles/zed_unknown/follow").await;
    assert_eq!((status, code(&body)), (404, "profile_not_found"));

    // A block ends the follows both ways, hides each from the other and refuses new follows.
    let (status, body) = put(&app, &ann, "/api/v1/social/profiles/ben/block").await;
    assert_eq!((status, body), (200, json!({"on": true, "changed": true})));
    assert_eq!(profile(&app, &cid, "ann").await["followers"], 0);
    assert_eq!(profile(&app, &cid, "ben").await["followers"], 0);
    for (token, other) in [(&ann, "ben"), (&ben, "ann")] {
        let (status, body) = get(&app, token, &format!("/api/v1/social/profiles/{other}")).await;
        assert_eq!((status, code(&body)), (404, "profile_not_found"), "{other}");
        let (status, body) = put(&app, token, &format!("/api/v1/social/profiles/{other}/follow")).await;
        assert_eq!((status, code(&body)), (403, "blocked"), "{other}");
    }
    assert_eq!(handles(&app, &ann, "/api/v1/social/me/blocks").await, ["ben"]);
    let (_, body) = delete(&app, &ann, "/api/v1/social/profiles/ben/block").await;
    assert_eq!(body, json!({"on": false, "changed": true}));
    let (_, body) = put(&app, &ben, "/api/v1/social/profiles/ann/follow").await;
    assert_eq!(body["following"], "active", "following works again once the block is lifted");

    // Unfollowing, muting.
    let (_, body) = delete(&app, &ben, "/api/v1/social/profiles/cid/follow").await;
    assert_eq!(body, json!({"following": null, "changed": true}));
    let (_, body) = delete(&app, &ben, "/api/v1/social/profiles/cid/follow").await;
    assert_eq!(body["changed"], false);
    assert_eq!(profile(&app, &ann, "cid").await["followers"], 0);
    let (_, body) = put(&app, &ann, "/api/v1/social/profiles/cid/mute").await;
    assert_eq!(body, json!({"on": true, "changed": true}));
    assert_eq!(profile(&app, &ann, "cid").await["relation"]["muting"], true);
    assert_eq!(handles(&app, &ann, "/api/v1/social/me/mutes").await, ["cid"]);
    let (status, body) = put(&app, &ann, "/api/v1/social/profiles/ann/mute").await;
    assert_eq!((status, code(&body)), (422, "own_profile"));

    // The events, keyed by the profile whose version they carry, in order, naming profiles by id.
    let ann_id = profile(&app, &cid, "ann").await["id"].as_str().unwrap().to_owned();
    let events = crate::helpers::eventually("social events", std::time::Duration::from_secs(10), || async {
        let events = app.published("beryl.social.events");
        (events.iter().filter(|e| e["aggregate_id"] == ann_id.as_str()).count() >= 6).then_some(events)
    })
    .await;
    let of_ann: Vec<(&str, i64)> = events
        .iter()
        .filter(|e| e["aggregate_id"] == ann_id.as_str())
        .map(|e| (e["type"].as_str().unwrap(), e["seq"].as_i64().unwrap()))
        .collect();
    let kinds: Vec<&str> = of_ann.iter().map(|(k, _)| *k).collect();
    assert_eq!(
        kinds,
        [
            "social.profile.created",
            "social.follow.created",
            "social.follow.removed",
            "social.block.created",
            "social.block.removed",
            "social.follow.created"
        ],
        "{events:?}"
    );
    let seqs: Vec<i64> = of_ann.iter().map(|(_, s)| *s).collect();
    assert_eq!(seqs, (1..=6).collect::<Vec<_>>(), "consecutive versions");
    for e in &events {
        let text = e.to_string();
        assert!(!text.contains("\"ann\"") && !text.contains("ANN"), "events name profiles by id only: {text}");
    }
    let metrics = app.metrics().await;
    for (change, n) in [
        ("followed", 3.0),
        ("requested", 2.0),
        ("accepted", 1.0),
        ("declined", 1.0),
        ("blocked", 1.0),
        ("unblocked", 1.0),
        ("unfollowed", 1.0),
        ("muted", 1.0),
    ] {
        let series = format!(r#"beryl_social_graph_changes_total{{change="{change}"}}"#);
        assert_eq!(sample(&metrics, &series), Some(n), "{series}");
    }
}

/// Every kind of viewer against every visibility: who sees a profile's followers (and who is
/// not shown the profile at all).
#[actix_web::test]
async fn who_sees_a_profiles_network_is_a_table_of_viewers_and_visibilities() {
    let app = spawn_app().await;
    let visibilities = ["public", "followers", "private"];
    // One owner per visibility, and one viewer of each kind per owner.
    let mut rows = Vec::new();
    for (i, visibility) in visibilities.iter().enumerate() {
        let owner_handle = format!("owner_{i}");
        let owner = user(&app, &owner_handle, "public").await;
        let viewers = [
            ("owner", owner.clone()),
            ("stranger", user(&app, &format!("stranger_{i}"), "public").await),
            ("follower", user(&app, &format!("follower_{i}"), "public").await),
            ("requester", user(&app, &format!("requester_{i}"), "public").await),
            ("followed_by_owner", user(&app, &format!("followed_{i}"), "public").await),
            ("blocked_by_owner", user(&app, &format!("blockd_{i}"), "public").await),
            ("blocking_owner", user(&app, &format!("blocking_{i}"), "public").await),
            ("no_profile", app.token(&format!("none-{i}"), SCOPES)),
        ];
        // The edges are set up while the profile is public (follows are immediate); it turns
        // private for the requester's follow to be a request.
        let by = |kind: &str| viewers.iter().find(|(k, _)| *k == kind).unwrap().1.clone();
        assert_eq!(put(&app, &by("follower"), &format!("/api/v1/social/profiles/{owner_handle}/follow")).await.0, 200);
        assert_eq!(
            put(&app, &by("blocked_by_owner"), &format!("/api/v1/social/profiles/{owner_handle}/follow")).await.0,
            200
        );
        assert_eq!(put(&app, &owner, &format!("/api/v1/social/profiles/followed_{i}/follow")).await.0, 200);
        let (status, _) =
            put_profile(&app, &owner, json!({"handle": owner_handle, "display_name": "O", "visibility": "private"}))
                .await;
        assert_eq!(status, 200);
        let (_, asked) = put(&app, &by("requester"), &format!("/api/v1/social/profiles/{owner_handle}/follow")).await;
        assert_eq!(asked["following"], "pending");
        assert_eq!(put(&app, &owner, &format!("/api/v1/social/profiles/blockd_{i}/block")).await.0, 200);
        assert_eq!(
            put(&app, &by("blocking_owner"), &format!("/api/v1/social/profiles/{owner_handle}/block")).await.0,
            200
        );
        if *visibility != "private" {
            // Turning the profile public or followers-only accepts the waiting request.
            let body = json!({"handle": owner_handle, "display_name": "O", "visibility": visibility});
            assert_eq!(put_profile(&app, &owner, body).await.0, 200);
        }
        rows.push((owner_handle, *visibility, viewers));
    }
    // (profile shown, followers shown) per viewer kind, for public / followers / private.
    let expected: &[(&str, [(u16, u16); 3])] = &[
        ("owner", [(200, 200), (200, 200), (200, 200)]),
        ("stranger", [(200, 200), (200, 403), (200, 403)]),
        ("follower", [(200, 200), (200, 200), (200, 200)]),
        // Turning a private profile public or followers-only accepted the waiting request.
        ("requester", [(200, 200), (200, 200), (200, 403)]),
        ("followed_by_owner", [(200, 200), (200, 403), (200, 403)]),
        ("blocked_by_owner", [(404, 404), (404, 404), (404, 404)]),
        ("blocking_owner", [(404, 404), (404, 404), (404, 404)]),
        ("no_profile", [(200, 200), (200, 403), (200, 403)]),
    ];
    for (owner_handle, visibility, viewers) in &rows {
        let column = visibilities.iter().position(|v| v == visibility).unwrap();
        for (kind, token) in viewers {
            let (profile_status, followers_status) =
                expected.iter().find(|(k, _)| k == kind).map(|(_, row)| row[column]).unwrap();
            let (got, body) = get(&app, token, &format!("/api/v1/social/profiles/{owner_handle}")).await;
            assert_eq!(got, profile_status, "{kind} viewing a {visibility} profile: {body}");
            let (got, body) = get(&app, token, &format!("/api/v1/social/profiles/{owner_handle}/followers")).await;
            assert_eq!(got, followers_status, "{kind} listing a {visibility} profile's followers: {body}");
            if got == 403 {
                assert_eq!(code(&body), "not_visible");
            }
            let (got, _) = get(&app, token, &format!("/api/v1/social/profiles/{owner_handle}/following")).await;
            assert_eq!(got, followers_status, "{kind} listing whom a {visibility} profile follows");
        }
    }
}

#[actix_web::test]
async fn lists_page_by_cursor_and_refuse_bad_pages() {
    let app = spawn_app().await;
    let star = user(&app, "star", "public").await;
    let mut fans = Vec::new();
    for i in 0..5 {
        let fan = user(&app, &format!("fan_{i}"), "public").await;
        assert_eq!(put(&app, &fan, "/api/v1/social/profiles/star/follow").await.0, 200);
        fans.push(fan);
    }
    let mut seen = Vec::new();
    let mut path = "/api/v1/social/profiles/star/followers?limit=2".to_owned();
    loop {
        let (status, page) = get(&app, &star, &path).await;
        assert_eq!(status, 200, "{page}");
        seen.extend(
            page["items"].as_array().unwrap().iter().map(|e| e["profile"]["handle"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/api/v1/social/profiles/star/followers?limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, ["fan_4", "fan_3", "fan_2", "fan_1", "fan_0"], "latest first, each once");
    let (status, body) = get(&app, &star, "/api/v1/social/profiles/star/followers?limit=101").await;
    assert_eq!((status, code(&body)), (400, "page_too_large"));
    let (status, body) = get(&app, &star, "/api/v1/social/profiles/star/followers?cursor=nope").await;
    assert_eq!((status, code(&body)), (400, "invalid_cursor"));

    // A cursor pages only the listing and the caller it was issued for, exactly as issued.
    let (_, first) = get(&app, &star, "/api/v1/social/profiles/star/followers?limit=4").await;
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    let (time, rest) = cursor.split_once('_').unwrap();
    let earlier = format!("{}_{rest}", time.parse::<i64>().unwrap() - 1);
    let mut flipped = cursor.clone().into_bytes();
    let last = flipped.len() - 2;
    flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    for (who, path) in [
        (&star, format!("/api/v1/social/profiles/star/followers?cursor={earlier}")),
        (&star, format!("/api/v1/social/profiles/star/followers?cursor={flipped}")),
        (&fans[0], format!("/api/v1/social/profiles/star/followers?cursor={cursor}")),
        (&star, format!("/api/v1/social/profiles/fan_0/followers?cursor={cursor}")),
        (&star, format!("/api/v1/social/me/blocks?cursor={cursor}")),
    ] {
        let (status, body) = get(&app, who, &path).await;
        assert_eq!((status, code(&body)), (400, "invalid_cursor"), "{path}: {body}");
        assert_eq!(body["field"], "cursor");
    }
    let (status, page) = get(&app, &star, &format!("/api/v1/social/profiles/star/followers?cursor={cursor}")).await;
    assert_eq!((status, page["items"].as_array().unwrap().len()), (200, 1), "{page}");

    // When what followed the cursor is gone, the page is beyond the end.
    assert_eq!(call(&app, reqwest::Method::DELETE, "/api/v1/social/profiles/star/follow", &fans[0], None).await.0, 200);
    let (status, body) = get(&app, &star, &format!("/api/v1/social/profiles/star/followers?cursor={cursor}")).await;
    assert_eq!((status, code(&body)), (404, "page_beyond_end"), "{body}");
    let (status, page) = get(&app, &star, "/api/v1/social/profiles/star/followers").await;
    assert_eq!((status, page["items"].as_array().unwrap().len()), (200, 4));
}

#[actix_web::test]
async fn graphql_offers_the_same_with_the_same_codes() {
    let app = spawn_app().await;
    let (eve, _fay) = (app.token("eve", SCOPES), user(&app, "fay", "private").await);
    let made = app
        .graphql(&eve, r#"mutation { putMyProfile(input: {handle: "eve_g", displayName: "Eve", visibility: PUBLIC}) { created profile { handle displayName followers } } }"#)
        .await;
    assert_eq!(
        made["data"]["putMyProfile"],
        json!({"created": true, "profile": {"handle": "eve_g", "displayName": "Eve", "followers": 0}}),
        "{made}"
    );
    let asked = app.graphql(&eve, r#"mutation { follow(handle: "fay") { following changed } }"#).await;
    assert_eq!(asked["data"]["follow"], json!({"following": "pending", "changed": true}), "{asked}");
    let own = app.graphql(&eve, r#"mutation { follow(handle: "eve_g") { following } }"#).await;
    assert_eq!(own["errors"][0]["extensions"]["code"], "own_profile", "{own}");
    let bad = app
        .graphql(
            &eve,
            r#"mutation { putMyProfile(input: {handle: "e", displayName: "Eve", visibility: PUBLIC}) { created } }"#,
        )
        .await;
    assert_eq!(bad["errors"][0]["extensions"]["code"], "invalid_handle", "{bad}");
    let fay = app.token("sub-fay", SCOPES);
    let requests = app.graphql(&fay, r#"{ followRequests { items { profile { handle } } nextCursor } }"#).await;
    assert_eq!(requests["data"]["followRequests"]["items"], json!([{"profile": {"handle": "eve_g"}}]), "{requests}");
    let accepted =
        app.graphql(&fay, r#"mutation { acceptFollowRequest(handle: "EVE_G") { follower accepted } }"#).await;
    assert_eq!(accepted["data"]["acceptFollowRequest"]["accepted"], true, "{accepted}");
    let seen = app.graphql(&eve, r#"{ socialProfile(handle: "fay") { followers relation { following } } }"#).await;
    assert_eq!(seen["data"]["socialProfile"], json!({"followers": 1, "relation": {"following": "active"}}), "{seen}");
    let reader = app.token("reader", &["social:read"]);
    let denied = app.graphql(&reader, r#"mutation { block(handle: "fay") { on } }"#).await;
    assert_eq!(denied["errors"][0]["extensions"]["code"], "scope_missing", "{denied}");
}

#[actix_web::test]
async fn the_export_holds_the_profile_and_erasure_removes_it_with_its_edges() {
    let app = spawn_app().await;
    let gus = user(&app, "gus", "public").await;
    let hal = user(&app, "hal", "public").await;
    assert_eq!(put(&app, &gus, "/api/v1/social/profiles/hal/follow").await.0, 200);
    assert_eq!(put(&app, &hal, "/api/v1/social/profiles/gus/follow").await.0, 200);
    // What gus writes and gives: a post, a comment and a reaction on hal's post.
    let mine = app.post_as("/api/v1/social/posts", &gus, &json!({"text": "gus writes", "visibility": "private"})).await;
    assert_eq!(mine.status(), 201);
    let theirs: Value =
        app.post_as("/api/v1/social/posts", &hal, &json!({"text": "hal writes"})).await.json().await.unwrap();
    let on = theirs["id"].as_str().unwrap();
    let res = app.post_as(&format!("/api/v1/social/posts/{on}/comments"), &gus, &json!({"text": "gus comments"})).await;
    assert_eq!(res.status(), 201);
    let res = app.post_as(&format!("/api/v1/social/posts/{on}/reactions"), &gus, &json!({"kind": "love"})).await;
    assert_eq!(res.status(), 201);
    let privacy = app.token("sub-gus", &["privacy:read", "privacy:write"]);
    let export: Value = app.get_as("/api/v1/privacy/export", &privacy).await.json().await.unwrap();
    let part = &export["domains"]["social"];
    assert_eq!(part["profile"]["display_name"], "GUS", "{export}");
    assert_eq!(part["following"][0]["handle"], "hal");
    assert_eq!(part["followers"][0]["handle"], "hal");
    assert_eq!(part["posts"][0]["text"], "gus writes", "{part}");
    assert_eq!(
        (part["comments"][0]["text"].as_str(), part["comments"][0]["post"].as_str()),
        (Some("gus comments"), Some(on))
    );
    assert_eq!(
        (part["reactions"][0]["kind"].as_str(), part["reactions"][0]["post"].as_str()),
        (Some("love"), Some(on))
    );
    let res = app.post_as("/api/v1/privacy/erasure-requests", &privacy, &json!({})).await;
    assert_eq!(res.status(), 201);
    let record: Value = res.json().await.unwrap();
    assert_eq!(record["removed"]["social.profiles"], 1, "{record}");
    let (status, _) = get(&app, &hal, "/api/v1/social/profiles/gus").await;
    assert_eq!(status, 404);
    let left = profile(&app, &hal, "hal").await;
    assert_eq!((left["followers"].as_u64(), left["following"].as_u64()), (Some(0), Some(0)), "{left}");
    let (_, post) = get(&app, &hal, &format!("/api/v1/social/posts/{on}")).await;
    assert_eq!((post["comments"].as_u64(), post["reactions"].clone()), (Some(0), json!({})), "{post}");
    // The handle is free again.
    let other = app.token("new-gus", SCOPES);
    assert_eq!(
        put_profile(&app, &other, json!({"handle": "gus", "display_name": "G", "visibility": "public"})).await.0,
        201
    );
}

#[actix_web::test]
async fn following_is_limited_per_user() {
    let app = spawn_with(|s| {
        s.rate_limit.social_follow.per_subject = 2;
        s.rate_limit.social_follow.period_secs = 3600;
    })
    .await;
    let ivy = user(&app, "ivy", "public").await;
    for handle in ["jo_a", "jo_b", "jo_c"] {
        user(&app, handle, "public").await;
    }
    assert_eq!(put(&app, &ivy, "/api/v1/social/profiles/jo_a/follow").await.0, 200);
    assert_eq!(put(&app, &ivy, "/api/v1/social/profiles/jo_b/follow").await.0, 200);
    let res = app.client.put(app.url("/api/v1/social/profiles/jo_c/follow")).bearer_auth(&ivy).send().await.unwrap();
    assert_eq!(res.status(), 429);
    assert!(res.headers().get("retry-after").is_some());
    let body: Value = res.json().await.unwrap();
    assert_eq!(code(&body), "rate_limited");
    let jo_c = app.token("sub-jo_c", SCOPES);
    assert_eq!(profile(&app, &jo_c, "jo_c").await["followers"], 0, "the refused follow changed nothing");
}

/// Many users following and unfollowing one profile at once, through the store's locks: the
/// count always equals the followers listed.
#[actix_web::test]
async fn concurrent_follows_keep_the_count_equal_to_the_followers() {
    let app = spawn_app().await;
    let idol = user(&app, "idol", "public").await;
    let mut fans = Vec::new();
    for i in 0..24 {
        fans.push(user(&app, &format!("f_{i}"), "public").await);
    }
    let follows = fans.iter().enumerate().map(|(i, token)| {
        let app = &app;
        async move {
            assert_eq!(put(app, token, "/api/v1/social/profiles/idol/follow").await.0, 200);
            if i % 3 == 0 {
                assert_eq!(delete(app, token, "/api/v1/social/profiles/idol/follow").await.0, 200);
            }
            assert_eq!(put(app, token, "/api/v1/social/profiles/idol/follow").await.0, 200);
            if i % 4 == 0 {
                assert_eq!(delete(app, token, "/api/v1/social/profiles/idol/follow").await.0, 200);
            }
        }
    });
    futures::future::join_all(follows).await;
    let listed = handles(&app, &idol, "/api/v1/social/profiles/idol/followers?limit=100").await;
    assert_eq!(listed.len(), 24 - 6);
    assert_eq!(profile(&app, &idol, "idol").await["followers"], 18);
}
