//! Social posts against real PostgreSQL and Redis: text sealed and checked, edits within their
//! window, links checked against the rides and milestones they name, reactions once per user,
//! comments one level deep, counts kept through deletions and erasure, who sees a post as a
//! table, the profile and home timelines, the same over GraphQL, and the per-user post limit.

use serde_json::{json, Value};

use crate::helpers::{call, sample, spawn_app, spawn_with, TestApp};

const SCOPES: &[&str] = &["social:read", "social:write"];

async fn user(app: &TestApp, handle: &str, visibility: &str) -> String {
    let token = app.token(&format!("sub-{handle}"), SCOPES);
    let body = json!({"handle": handle, "display_name": handle.to_uppercase(), "visibility": visibility});
    let (status, answer) = call(app, reqwest::Method::PUT, "/api/v1/social/me/profile", &token, Some(body)).await;
    assert_eq!(status, 201, "{answer}");
    token
}

async fn post(app: &TestApp, token: &str, body: Value) -> (u16, Value) {
    call(app, reqwest::Method::POST, "/api/v1/social/posts", token, Some(body)).await
}

async fn made(app: &TestApp, token: &str, text: &str, visibility: &str) -> String {
    let (status, body) = post(app, token, json!({"text": text, "visibility": visibility})).await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

async fn get(app: &TestApp, token: &str, path: &str) -> (u16, Value) {
    call(app, reqwest::Method::GET, path, token, None).await
}

fn code(body: &Value) -> &str {
    body["code"].as_str().unwrap_or_default()
}

fn texts(page: &Value) -> Vec<String> {
    page["items"].as_array().unwrap().iter().map(|p| p["text"].as_str().unwrap().to_owned()).collect()
}

#[actix_web::test]
async fn a_post_is_sealed_checked_and_edited_only_within_its_window() {
    let app = spawn_app().await;
    let ada = user(&app, "ada", "public").await;
    let (status, body) = post(&app, &ada, json!({"text": "Cycled to work ✨\nsecond line"})).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        (body["text"].as_str(), body["visibility"].as_str()),
        (Some("Cycled to work ✨\nsecond line"), Some("public"))
    );
    assert_eq!(body["author"]["handle"], "ada");
    let id = body["id"].as_str().unwrap().to_owned();

    let url = app.state.settings.database.url.as_ref().unwrap().expose().to_string();
    let (db, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    actix_rt::spawn(connection);
    let stored: String = db.query_one("SELECT body FROM social_posts", &[]).await.unwrap().get(0);
    assert!(!stored.contains("Cycled to work"), "the text is sealed: {stored}");

    // Refusals record nothing.
    let cases = [
        (json!({"text": "é".repeat(501)}), 400, "invalid_text"),
        (json!({"text": " \n "}), 400, "invalid_text"),
        (json!({"text": "a\u{202E}b"}), 400, "invalid_text"),
        (json!({"text": "x", "link": {"kind": "esg_milestone", "ref": "avoided_7_kg"}}), 422, "invalid_link"),
        (json!({"text": "x", "link": {"kind": "esg_milestone", "ref": "avoided_10_kg"}}), 422, "invalid_link"),
        (json!({"text": "x", "link": {"kind": "ride", "ref": uuid::Uuid::now_v7().to_string()}}), 422, "invalid_link"),
        (json!({"text": "x", "visibility": "everyone"}), 400, "malformed_json"),
    ];
    for (body, status, expected) in cases {
        let (got, answer) = post(&app, &ada, body.clone()).await;
        assert_eq!((got, code(&answer)), (status, expected), "{body}: {answer}");
    }
    let (_, page) = get(&app, &ada, "/api/v1/social/profiles/ada/posts").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1, "{page}");
    let nobody = app.token("nobody", SCOPES);
    let (status, body) = post(&app, &nobody, json!({"text": "hello"})).await;
    assert_eq!((status, code(&body)), (409, "profile_required"));

    // Edits: the author's, within 15 minutes.
    let path = format!("/api/v1/social/posts/{id}");
    let (status, body) = call(&app, reqwest::Method::PUT, &path, &ada, Some(json!({"text": "Cycled 12 km"}))).await;
    assert_eq!((status, body["text"].clone()), (200, json!("Cycled 12 km")), "{body}");
    assert!(body["edited_at"].is_string());
    let bob = user(&app, "bob", "public").await;
    let (status, body) = call(&app, reqwest::Method::PUT, &path, &bob, Some(json!({"text": "mine now"}))).await;
    assert_eq!((status, code(&body)), (403, "not_owner"));
    db.execute("UPDATE social_posts SET created_at = created_at - interval '16 minutes'", &[]).await.unwrap();
    let (status, body) = call(&app, reqwest::Method::PUT, &path, &ada, Some(json!({"text": "too late"}))).await;
    assert_eq!((status, code(&body)), (422, "edit_window_closed"), "{body}");
    assert!(body["closed_at"].is_string());
    let (_, body) = get(&app, &bob, &path).await;
    assert_eq!(body["text"], "Cycled 12 km");
    let (status, body) = get(&app, &bob, "/api/v1/social/posts/not-a-uuid").await;
    assert_eq!((status, code(&body)), (400, "invalid_parameter"));

    // Deleting: the author's only.
    let (status, _) = call(&app, reqwest::Method::DELETE, &path, &bob, None).await;
    assert_eq!(status, 403);
    let (status, body) = call(&app, reqwest::Method::DELETE, &path, &ada, None).await;
    assert_eq!((status, body["deleted"].clone()), (200, json!(true)));
    let (status, body) = get(&app, &ada, &path).await;
    assert_eq!((status, code(&body)), (404, "post_not_found"));
    let metrics = app.metrics().await;
    for (action, n) in [("created", 1.0), ("edited", 1.0), ("deleted", 1.0)] {
        assert_eq!(sample(&metrics, &format!(r#"beryl_social_posts_total{{action="{action}"}}"#)), Some(n), "{action}");
    }
}

#[actix_web::test]
async fn reactions_come_once_per_user_and_comments_one_level_deep_with_their_counts() {
    let app = spawn_app().await;
    let (ann, ben, cid) =
        (user(&app, "ann", "public").await, user(&app, "ben", "public").await, user(&app, "cid", "public").await);
    let id = made(&app, &ann, "First ride on the new line", "public").await;
    let reactions = format!("/api/v1/social/posts/{id}/reactions");
    let (status, body) = call(&app, reqwest::Method::POST, &reactions, &ben, Some(json!({"kind": "celebrate"}))).await;
    assert_eq!(
        (status, body["reactions"].clone(), body["my_reaction"].clone()),
        (201, json!({"celebrate": 1}), json!("celebrate"))
    );
    let (status, body) = call(&app, reqwest::Method::POST, &reactions, &ben, Some(json!({"kind": "like"}))).await;
    assert_eq!((status, code(&body)), (409, "already_reacted"));
    let (_, body) = call(&app, reqwest::Method::POST, &reactions, &cid, Some(json!({"kind": "like"}))).await;
    assert_eq!(body["reactions"], json!({"celebrate": 1, "like": 1}));
    let (_, body) = call(&app, reqwest::Method::DELETE, &reactions, &ben, None).await;
    assert_eq!(body, json!({"removed": "celebrate"}));
    let (_, body) = call(&app, reqwest::Method::DELETE, &reactions, &ben, None).await;
    assert_eq!(body, json!({"removed": null}));

    let comments = format!("/api/v1/social/posts/{id}/comments");
    let (status, top) = call(&app, reqwest::Method::POST, &comments, &ben, Some(json!({"text": "Nice!"}))).await;
    assert_eq!(status, 201, "{top}");
    let top_id = top["id"].as_str().unwrap().to_owned();
    let (status, reply) =
        call(&app, reqwest::Method::POST, &comments, &cid, Some(json!({"text": "Agreed", "parent": top_id}))).await;
    assert_eq!((status, reply["parent"].clone()), (201, json!(top_id)));
    let deeper = json!({"text": "Too deep", "parent": reply["id"]});
    let (status, body) = call(&app, reqwest::Method::POST, &comments, &ann, Some(deeper)).await;
    assert_eq!((status, code(&body)), (422, "thread_too_deep"));
    let (_, other) = call(&app, reqwest::Method::POST, &comments, &cid, Some(json!({"text": "Me too"}))).await;
    let (_, page) = get(&app, &ann, &comments).await;
    assert_eq!(texts(&page), ["Nice!", "Agreed", "Me too"], "oldest first");
    let (_, seen) = get(&app, &cid, &format!("/api/v1/social/posts/{id}")).await;
    assert_eq!(
        (seen["comments"].as_u64(), seen["reactions"].clone(), seen["my_reaction"].clone()),
        (Some(3), json!({"like": 1}), json!("like"))
    );

    // A comment goes with its replies; the post's author may delete others' comments, a third
    // party may not.
    let (status, body) =
        call(&app, reqwest::Method::DELETE, &format!("/api/v1/social/comments/{top_id}"), &cid, None).await;
    assert_eq!((status, code(&body)), (403, "not_owner"));
    let (status, _) =
        call(&app, reqwest::Method::DELETE, &format!("/api/v1/social/comments/{top_id}"), &ann, None).await;
    assert_eq!(status, 200);
    let (_, page) = get(&app, &ann, &comments).await;
    assert_eq!(texts(&page), ["Me too"]);
    let (_, seen) = get(&app, &ann, &format!("/api/v1/social/posts/{id}")).await;
    assert_eq!(seen["comments"], 1);

    // Erasing cid takes their reaction and comment off the counts.
    let privacy = app.token("sub-cid", &["privacy:read", "privacy:write"]);
    assert_eq!(app.post_as("/api/v1/privacy/erasure-requests", &privacy, &json!({})).await.status(), 201);
    let (_, seen) = get(&app, &ann, &format!("/api/v1/social/posts/{id}")).await;
    assert_eq!((seen["comments"].as_u64(), seen["reactions"].clone()), (Some(0), json!({})), "{seen}");
    let (status, _) = call(
        &app,
        reqwest::Method::DELETE,
        &format!("/api/v1/social/comments/{}", other["id"].as_str().unwrap()),
        &ann,
        None,
    )
    .await;
    assert_eq!(status, 404, "the erased profile's comment is gone");
}

/// A kind of viewer, and whether they see a public, a followers-only and a private post.
type Row = (&'static str, [bool; 3]);

/// Every kind of viewer against every post visibility, on profiles of every visibility: the
/// post read by id and the author's posts listed.
#[actix_web::test]
async fn who_sees_a_post_is_a_table_of_viewers_posts_and_profiles() {
    let app = spawn_app().await;
    let visibilities = ["public", "followers", "private"];
    // (profile visibility) → viewer kind → [public post, followers post, private post] seen.
    let expected: [(&str, [Row; 5]); 3] = [
        (
            "public",
            [
                ("author", [true; 3]),
                ("stranger", [true, false, false]),
                ("follower", [true, true, false]),
                ("blocked", [false; 3]),
                ("no_profile", [true, false, false]),
            ],
        ),
        (
            "followers",
            [
                ("author", [true; 3]),
                ("stranger", [false; 3]),
                ("follower", [true, true, false]),
                ("blocked", [false; 3]),
                ("no_profile", [false; 3]),
            ],
        ),
        (
            "private",
            [
                ("author", [true; 3]),
                ("stranger", [false; 3]),
                ("follower", [true, true, false]),
                ("blocked", [false; 3]),
                ("no_profile", [false; 3]),
            ],
        ),
    ];
    for (i, (profile_visibility, rows)) in expected.iter().enumerate() {
        let author_handle = format!("author_{i}");
        let author = user(&app, &author_handle, "public").await;
        let viewers = [
            ("author", author.clone()),
            ("stranger", user(&app, &format!("stranger_{i}"), "public").await),
            ("follower", user(&app, &format!("follower_{i}"), "public").await),
            ("blocked", user(&app, &format!("blocked_{i}"), "public").await),
            ("no_profile", app.token(&format!("none-{i}"), SCOPES)),
        ];
        let token = |kind: &str| viewers.iter().find(|(k, _)| *k == kind).unwrap().1.clone();
        let follow = format!("/api/v1/social/profiles/{author_handle}/follow");
        assert_eq!(call(&app, reqwest::Method::PUT, &follow, &token("follower"), None).await.0, 200);
        let block = format!("/api/v1/social/profiles/blocked_{i}/block");
        assert_eq!(call(&app, reqwest::Method::PUT, &block, &author, None).await.0, 200);
        let body = json!({"handle": author_handle, "display_name": "A", "visibility": profile_visibility});
        assert_eq!(call(&app, reqwest::Method::PUT, "/api/v1/social/me/profile", &author, Some(body)).await.0, 200);
        let mut ids = Vec::new();
        for v in visibilities {
            ids.push(made(&app, &author, &format!("{v} post"), v).await);
        }
        for (kind, seen) in rows {
            let token = token(kind);
            for (id, (v, sees)) in ids.iter().zip(visibilities.iter().zip(seen)) {
                let (status, body) = get(&app, &token, &format!("/api/v1/social/posts/{id}")).await;
                assert_eq!(
                    status,
                    if *sees { 200 } else { 404 },
                    "{kind}: {v} post on a {profile_visibility} profile: {body}"
                );
            }
            let (status, page) = get(&app, &token, &format!("/api/v1/social/profiles/{author_handle}/posts")).await;
            let listed: Vec<String> = if status == 200 { texts(&page) } else { Vec::new() };
            let wanted: Vec<String> =
                visibilities.iter().zip(seen).rev().filter(|(_, s)| **s).map(|(v, _)| format!("{v} post")).collect();
            assert_eq!(listed, wanted, "{kind} listing a {profile_visibility} profile's posts ({status})");
        }
    }
}

#[actix_web::test]
async fn the_home_timeline_holds_followed_posts_newest_first_without_muted_or_blocked_ones() {
    let app = spawn_app().await;
    let (me, a, b, c) = (
        user(&app, "me_home", "public").await,
        user(&app, "fol_a", "followers").await,
        user(&app, "fol_b", "public").await,
        user(&app, "fol_c", "public").await,
    );
    for handle in ["fol_a", "fol_b"] {
        assert_eq!(
            call(&app, reqwest::Method::PUT, &format!("/api/v1/social/profiles/{handle}/follow"), &me, None).await.0,
            200
        );
    }
    made(&app, &a, "a1 followers", "followers").await;
    made(&app, &c, "c1 not followed", "public").await;
    made(&app, &b, "b1", "public").await;
    made(&app, &me, "mine, private", "private").await;
    made(&app, &a, "a2 private", "private").await;
    made(&app, &a, "a3", "public").await;
    let (_, page) = get(&app, &me, "/api/v1/social/timeline").await;
    assert_eq!(texts(&page), ["a3", "mine, private", "b1", "a1 followers"]);
    // Paged by cursor.
    let (_, first) = get(&app, &me, "/api/v1/social/timeline?limit=3").await;
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    let (_, rest) = get(&app, &me, &format!("/api/v1/social/timeline?limit=3&cursor={cursor}")).await;
    assert_eq!((texts(&first).len(), texts(&rest)), (3, vec!["a1 followers".to_owned()]));
    // Muting hides; a block ends the follow.
    assert_eq!(call(&app, reqwest::Method::PUT, "/api/v1/social/profiles/fol_b/mute", &me, None).await.0, 200);
    assert_eq!(call(&app, reqwest::Method::PUT, "/api/v1/social/profiles/me_home/block", &a, None).await.0, 200);
    let (_, page) = get(&app, &me, "/api/v1/social/timeline").await;
    assert_eq!(texts(&page), ["mine, private"]);
    let (status, body) = get(&app, &app.token("nobody", SCOPES), "/api/v1/social/timeline").await;
    assert_eq!((status, code(&body)), (409, "profile_required"));
    let metrics = app.metrics().await;
    assert_eq!(sample(&metrics, r#"beryl_social_timeline_reads_total{timeline="home"}"#), Some(4.0));
}

#[actix_web::test]
async fn graphql_posts_react_comment_and_read_the_timeline() {
    let app = spawn_app().await;
    let (gia, hal) = (user(&app, "gia", "public").await, user(&app, "hal", "public").await);
    assert_eq!(call(&app, reqwest::Method::PUT, "/api/v1/social/profiles/gia/follow", &hal, None).await.0, 200);
    let made = app.graphql(&gia, r#"mutation { createPost(input: {text: "Hello", visibility: FOLLOWERS}) { id text visibility author { handle } } }"#).await;
    let post = &made["data"]["createPost"];
    assert_eq!((post["text"].as_str(), post["author"]["handle"].as_str()), (Some("Hello"), Some("gia")), "{made}");
    let id = post["id"].as_str().unwrap();
    let reacted = app
        .graphql(
            &hal,
            &format!(r#"mutation {{ react(id: "{id}", kind: SUPPORT) {{ reactions {{ kind count }} myReaction }} }}"#),
        )
        .await;
    assert_eq!(
        reacted["data"]["react"],
        json!({"reactions": [{"kind": "support", "count": 1}], "myReaction": "support"}),
        "{reacted}"
    );
    let twice = app.graphql(&hal, &format!(r#"mutation {{ react(id: "{id}", kind: LIKE) {{ myReaction }} }}"#)).await;
    assert_eq!(twice["errors"][0]["extensions"]["code"], "already_reacted", "{twice}");
    let commented = app
        .graphql(&hal, &format!(r#"mutation {{ comment(post: "{id}", text: "Hi") {{ text author {{ handle }} }} }}"#))
        .await;
    assert_eq!(commented["data"]["comment"], json!({"text": "Hi", "author": {"handle": "hal"}}), "{commented}");
    let home = app.graphql(&hal, "{ homeTimeline { items { text comments } nextCursor } }").await;
    assert_eq!(
        home["data"]["homeTimeline"],
        json!({"items": [{"text": "Hello", "comments": 1}], "nextCursor": null}),
        "{home}"
    );
    let long = app
        .graphql(&gia, &format!(r#"mutation {{ createPost(input: {{text: "{}"}}) {{ id }} }}"#, "x".repeat(501)))
        .await;
    assert_eq!(long["errors"][0]["extensions"]["code"], "invalid_text", "{long}");
}

#[actix_web::test]
async fn posting_is_limited_per_user() {
    let app = spawn_with(|s| s.rate_limit.social_post.per_subject = 2).await;
    let ivy = user(&app, "ivy_p", "public").await;
    let id = made(&app, &ivy, "one", "public").await;
    let (status, _) = call(
        &app,
        reqwest::Method::POST,
        &format!("/api/v1/social/posts/{id}/comments"),
        &ivy,
        Some(json!({"text": "two"})),
    )
    .await;
    assert_eq!(status, 201);
    let (status, body) = post(&app, &ivy, json!({"text": "three"})).await;
    assert_eq!((status, code(&body)), (429, "rate_limited"));
    let (_, page) = get(&app, &ivy, "/api/v1/social/profiles/ivy_p/posts").await;
    assert_eq!(texts(&page), ["one"], "the refused post was not made");
}

/// Every page of `token`'s home timeline, through the service, three posts at a time.
async fn whole_timeline(app: &TestApp, token: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut path = "/api/v1/social/timeline?limit=3".to_owned();
    loop {
        let (status, page) = get(app, token, &path).await;
        assert_eq!(status, 200, "{page}");
        ids.extend(page["items"].as_array().unwrap().iter().map(|p| p["id"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/api/v1/social/timeline?limit=3&cursor={c}"),
            None => return ids,
        }
    }
}

/// The same timeline read straight from PostgreSQL, the source of truth.
async fn from_postgres(
    store: &beryl_core_api::adapters::social::SocialStore,
    app: &TestApp,
    token: &str,
) -> Vec<String> {
    let (_, me) = get(app, token, "/api/v1/social/me/profile").await;
    let id = uuid::Uuid::parse_str(me["id"].as_str().unwrap()).unwrap();
    store.home((id, false), None, 100).await.unwrap().iter().map(|p| p.id.to_string()).collect()
}

async fn flush_timelines(app: &TestApp) -> usize {
    let redis = redis::Client::open(crate::helpers::redis_url()).unwrap();
    let mut conn = redis.get_multiplexed_async_connection().await.unwrap();
    let pattern = format!("{}social:tl:*", app.state.settings.redis.key_prefix);
    let keys: Vec<String> = redis::cmd("KEYS").arg(&pattern).query_async(&mut conn).await.unwrap();
    if !keys.is_empty() {
        let _: () = redis::cmd("DEL").arg(&keys).query_async(&mut conn).await.unwrap();
    }
    keys.len()
}

/// Fan-out on write for authors with few followers, merge on read for those with many (above
/// `social.fanout_max_followers`, here 2): every reader's timeline, cached in Redis, equals the
/// one PostgreSQL gives, before and after follows, mutes and deletions change it, and after
/// Redis lost every timeline.
#[actix_web::test]
async fn cached_timelines_agree_with_postgres_and_redis_is_only_a_cache() {
    let app = spawn_with(|s| s.social.fanout_max_followers = 2).await;
    let settings = app.state.settings.database.clone();
    let store = beryl_core_api::adapters::social::SocialStore::Postgres(
        beryl_core_api::adapters::postgres::build_pool(&settings).unwrap().unwrap(),
    );
    let handles = ["star", "sam", "sue", "sid", "sol"];
    let mut tokens = Vec::new();
    for h in handles {
        tokens.push(user(&app, h, "public").await);
    }
    let follow = |i: usize, h: &str| {
        let (app, token, path) = (&app, tokens[i].clone(), format!("/api/v1/social/profiles/{h}/follow"));
        async move { call(app, reqwest::Method::PUT, &path, &token, None).await }
    };
    // Everyone follows star (4 followers: merged on read); sam and sue follow each other (1
    // follower each: fanned out); sid follows sam.
    for i in 1..5 {
        assert_eq!(follow(i, "star").await.0, 200);
    }
    assert_eq!(follow(1, "sue").await.0, 200);
    assert_eq!(follow(2, "sam").await.0, 200);
    assert_eq!(follow(3, "sam").await.0, 200);
    // The timelines are read once, so that they are cached before the posts fan out.
    for t in &tokens {
        whole_timeline(&app, t).await;
    }
    let mut posted = Vec::new();
    for round in 0..4 {
        for (i, visibility) in
            [(0, "public"), (1, "followers"), (2, "public"), (0, "followers"), (3, "private"), (1, "public")]
        {
            posted.push(made(&app, &tokens[i], &format!("{} {round}", handles[i]), visibility).await);
        }
    }
    for (t, h) in tokens.iter().zip(handles) {
        let cached = whole_timeline(&app, t).await;
        assert_eq!(cached, from_postgres(&store, &app, t).await, "{h}");
        assert!(!cached.is_empty() || h == "sol", "{h}");
    }
    // Changes after the fan-out: an unfollow, a mute, a deletion, a new follow.
    assert_eq!(
        call(&app, reqwest::Method::DELETE, "/api/v1/social/profiles/sue/follow", &tokens[1], None).await.0,
        200
    );
    assert_eq!(call(&app, reqwest::Method::PUT, "/api/v1/social/profiles/star/mute", &tokens[2], None).await.0, 200);
    assert_eq!(
        call(&app, reqwest::Method::DELETE, &format!("/api/v1/social/posts/{}", posted[2]), &tokens[2], None).await.0,
        200
    );
    assert_eq!(follow(4, "sam").await.0, 200);
    for (t, h) in tokens.iter().zip(handles) {
        assert_eq!(whole_timeline(&app, t).await, from_postgres(&store, &app, t).await, "{h} after changes");
    }
    // Redis loses every timeline: each is rebuilt from PostgreSQL on its next read.
    assert!(flush_timelines(&app).await >= 4);
    let before = sample(&app.metrics().await, r#"beryl_social_timeline_cache_total{result="miss"}"#).unwrap_or(0.0);
    for (t, h) in tokens.iter().zip(handles) {
        assert_eq!(whole_timeline(&app, t).await, from_postgres(&store, &app, t).await, "{h} after the flush");
    }
    let metrics = app.metrics().await;
    let after = sample(&metrics, r#"beryl_social_timeline_cache_total{result="miss"}"#).unwrap();
    assert_eq!(after - before, 5.0, "one rebuild per reader");
    assert!(sample(&metrics, r#"beryl_social_timeline_cache_total{result="hit"}"#).unwrap() > 0.0);
    assert!(metrics.contains("beryl_social_fanout_size_count"), "fan-out sizes are recorded");
}
