//! The OpenAPI document is true: every operation it describes exists, answers with a documented
//! status, and its body validates against the documented schema.

use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_with};

/// The payments webhook secret of the application the document is checked against.
const WEBHOOK_SECRET: &str = "whsec_openapi_test_0123456789";

/// The schema at `pointer` in `doc`, as a standalone JSON Schema whose `$ref`s still resolve.
fn schema_at(doc: &Value, reference: &str) -> Value {
    json!({ "$ref": reference, "components": doc["components"] })
}

fn resolve<'a>(doc: &'a Value, value: &'a Value) -> &'a Value {
    match value.get("$ref").and_then(Value::as_str) {
        Some(r) => doc.pointer(r.trim_start_matches('#')).unwrap_or(value),
        None => value,
    }
}

#[actix_web::test]
async fn every_documented_operation_answers_as_documented() {
    let app = spawn_with(|s| s.adapters.payments.webhook_secret = Some(WEBHOOK_SECRET.into())).await;
    let doc: Value = app.get("/api/openapi.json").await.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let token = app.token("root", &["admin"]);

    // Fixtures the path parameters point at: a funded wallet and a second one.
    let open = |key: &str| {
        app.client
            .post(app.url("/api/v1/fintech/wallets"))
            .bearer_auth(&token)
            .header("Idempotency-Key", key)
            .json(&json!({"currency": "EUR"}))
            .send()
    };
    let w1: Value = open("oa-open-1").await.unwrap().json().await.unwrap();
    let w2: Value = open("oa-open-2").await.unwrap().json().await.unwrap();
    let (id1, id2) = (w1["id"].as_str().unwrap().to_string(), w2["id"].as_str().unwrap().to_string());
    let funded = app
        .client
        .post(app.url(&format!("/api/v1/fintech/wallets/{id1}/deposits")))
        .bearer_auth(&token)
        .header("Idempotency-Key", "oa-seed")
        .json(&json!({"amount": 10_000, "reference": "seed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(funded.status(), 201);
    // A driver profile for the caller, paid into the first wallet.
    let driver = json!({"mode": "car", "plate": "OA-1", "seats": 4, "wallet": id1});
    let res = app.client.put(app.url("/api/v1/mobility/drivers/me")).bearer_auth(&token).json(&driver).send().await;
    assert_eq!(res.unwrap().status(), 201);

    // A quote for a ride the caller requests, paid from the second wallet (the first is frozen by
    // the status change on the way).
    let funded = app
        .client
        .post(app.url(&format!("/api/v1/fintech/wallets/{id2}/deposits")))
        .bearer_auth(&token)
        .header("Idempotency-Key", "oa-seed-2")
        .json(&json!({"amount": 10_000, "reference": "seed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(funded.status(), 201);
    let quote: Value = app
        .post_as(
            "/api/v1/mobility/quotes",
            &token,
            &json!({"pickup": {"lat": 48.85, "lon": 2.35}, "dropoff": {"lat": 48.87, "lon": 2.30}, "mode": "car", "currency": "EUR"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let mut ride_id = String::new();
    // Actions whose success depends on the ride's state and on who was offered it (the ride
    // tests take a ride through each of them): answered here with a documented problem.
    // The request of oa_friend is accepted before it could be declined.
    let stateful =
        ["acceptRide", "declineRide", "arriveRide", "startRide", "completeRide", "rateRide", "declineFollowRequest"];

    let mut checked = 0;
    let mut social_ready = false;
    // A post to read, edit, react to and comment on, one to delete, and a comment to delete.
    let (mut post_a, mut post_b, mut comment) = (String::new(), String::new(), String::new());
    // A post by another to report, and a report to resolve.
    let (mut post_c, mut report) = (String::new(), String::new());
    for (path, item) in doc["paths"].as_object().unwrap() {
        if path.starts_with("/api/v1/social/") && !social_ready {
            social_ready = true;
            // Made here: the caller's erasure request, checked before, deleted what came first.
            // Social profiles: the caller's (private), one whose request to follow the caller
            // waits and whom the caller follows, and one the caller blocks and mutes.
            let (friend, other) = (app.token("oa-friend", &["social:write"]), app.token("oa-other", &["social:write"]));
            for (token, handle, visibility) in
                [(&token, "oa_root", "private"), (&friend, "oa_friend", "public"), (&other, "oa_other", "public")]
            {
                let body = json!({"handle": handle, "display_name": "OA", "visibility": visibility});
                let res =
                    app.client.put(app.url("/api/v1/social/me/profile")).bearer_auth(token).json(&body).send().await;
                assert_eq!(res.unwrap().status(), 201);
            }
            let res =
                app.client.put(app.url("/api/v1/social/profiles/oa_root/follow")).bearer_auth(&friend).send().await;
            assert_eq!(res.unwrap().status(), 200);
            for id in [&mut post_a, &mut post_b] {
                let made: Value =
                    app.post_as("/api/v1/social/posts", &token, &json!({"text": "OA"})).await.json().await.unwrap();
                *id = made["id"].as_str().unwrap().to_owned();
            }
            let path = format!("/api/v1/social/posts/{post_a}/comments");
            let made: Value = app.post_as(&path, &token, &json!({"text": "OA"})).await.json().await.unwrap();
            comment = made["id"].as_str().unwrap().to_owned();
            let made: Value =
                app.post_as("/api/v1/social/posts", &friend, &json!({"text": "OA"})).await.json().await.unwrap();
            post_c = made["id"].as_str().unwrap().to_owned();
            let path = "/api/v1/social/profiles/oa_root/reports";
            let made: Value = app.post_as(path, &friend, &json!({"reason": "other"})).await.json().await.unwrap();
            report = made["id"].as_str().unwrap().to_owned();
        }
        for (method, op) in item.as_object().unwrap() {
            // The restart goes to an optional actor: restarting a critical one would make the
            // `/health` call that follows it answer 503 until the actor is back.
            let id = if path.starts_with("/api/v1/mobility/rides/") {
                &ride_id
            } else if path.starts_with("/api/v1/social/comments/") {
                &comment
            } else if path.starts_with("/api/v1/social/moderation/reports/") {
                &report
            } else if path.starts_with("/api/v1/social/moderation/posts/") {
                &post_a
            } else if path.starts_with("/api/v1/social/posts/") {
                if op["operationId"] == "reportPost" {
                    &post_c
                } else if op["operationId"] == "deletePost" {
                    &post_b
                } else {
                    &post_a
                }
            } else {
                &id1
            };
            let mut url = path
                .replace("{id}", id)
                .replace("{name}", "idempotency-purger")
                .replace("{action}", "freeze")
                .replace("{subject}", "alice")
                .replace("{period}", &chrono::Utc::now().format("%Y-%m").to_string())
                .replace(
                    "{handle}",
                    if path.ends_with("/block") || path.ends_with("/mute") { "oa_other" } else { "oa_friend" },
                );
            if path.ends_with("/transactions") {
                url.push_str("?limit=10");
            }
            let mut req = match method.as_str() {
                "get" => app.client.get(app.url(&url)),
                "post" => app.client.post(app.url(&url)).header("Idempotency-Key", format!("oa-{checked}")),
                "put" => app.client.put(app.url(&url)),
                "delete" => app.client.delete(app.url(&url)),
                other => panic!("undocumented method handling for {other}"),
            }
            .bearer_auth(&token)
            // An administrator reaching someone else's personal data gives a reason.
            .header("X-Access-Reason", "documented operation check");
            let body = if path == "/api/v1/fintech/transfers" {
                Some(json!({"from": id1, "to": id2, "amount": 10}))
            } else if path == "/api/v1/mobility/drivers/me" && method == "put" {
                Some(driver.clone())
            } else if path == "/api/v1/mobility/rides" && method == "post" {
                Some(json!({"quote": quote["id"], "wallet": id2}))
            } else if path == "/api/v1/esg/activities" {
                // Today: the example's date leaves the accepted year some day.
                Some(json!({"type": "train", "date": chrono::Utc::now().date_naive(), "distance_km": 42.5}))
            } else {
                op.pointer("/requestBody/content/application~1json/example").cloned()
            };
            // The webhook is signed by the provider: an event it does not act on, signed now.
            if path == "/webhooks/payments" {
                let event = serde_json::to_vec(&json!({"id": "evt_oa", "object": "event", "type": "balance.available",
                    "data": {"object": {}}}))
                .unwrap();
                let signature =
                    beryl_core_api::domain::payments::sign(WEBHOOK_SECRET, chrono::Utc::now().timestamp(), &event);
                req = req.header("Stripe-Signature", signature).header("content-type", "application/json").body(event);
            }
            req = match (method.as_str(), body) {
                _ if path == "/webhooks/payments" => req,
                (_, Some(body)) => req.json(&body),
                ("post", None) => req.json(&json!({})),
                _ => req,
            };
            let res = req.send().await.unwrap();
            let status = res.status().as_u16().to_string();
            let content_type = res.headers()["content-type"].to_str().unwrap().to_string();
            let answer: Value = res.json().await.unwrap();
            let documented = op["responses"]
                .get(&status)
                .unwrap_or_else(|| panic!("{method} {path} answered {status}, which is not documented: {answer}"));
            let documented = resolve(&doc, documented);
            let media = if content_type.contains("problem") { "application/problem+json" } else { "application/json" };
            let reference = documented["content"][media]["schema"]["$ref"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path} {status}: no {media} schema documented"));
            let validator = jsonschema::validator_for(&schema_at(&doc, reference)).unwrap();
            let errors: Vec<String> = validator.iter_errors(&answer).map(|e| e.to_string()).collect();
            assert!(errors.is_empty(), "{method} {path} {status} does not match {reference}: {errors:?}\n{answer}");
            let operation = op["operationId"].as_str().unwrap();
            if stateful.contains(&operation) {
                assert!(!status.starts_with('5'), "{method} {path}: {answer}");
            } else {
                assert!(status.starts_with('2'), "{method} {path} should succeed with the fixtures: {answer}");
            }
            if path == "/api/v1/mobility/rides" && method == "post" {
                ride_id = answer["id"].as_str().unwrap().to_owned();
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 76, "every documented operation was called");
}

#[actix_web::test]
async fn every_fintech_route_is_documented() {
    let app = spawn_app().await;
    let doc: Value = app.get("/api/openapi.json").await.json().await.unwrap();
    let token = app.token("root", &["admin"]);
    // A path the document does not describe is not served: the router answers 404 not_found,
    // while documented templates reach their handlers (which answer with domain codes).
    for (path, known) in [
        ("/api/v1/fintech/wallets/00000000-0000-7000-8000-000000000000", true),
        ("/api/v1/fintech/wallets/00000000-0000-7000-8000-000000000000/transactions", true),
        ("/api/v1/fintech/accounts", false),
        ("/api/v1/fintech/wallets/00000000-0000-7000-8000-000000000000/balance/history", false),
    ] {
        let res = app.get_as(path, &token).await;
        let body: Value = res.json().await.unwrap();
        let routed = body["code"] != "not_found";
        assert_eq!(routed, known, "{path}: {body}");
        let template_documented = doc["paths"].as_object().unwrap().keys().any(|t| {
            let (t, p): (Vec<_>, Vec<_>) = (t.split('/').collect(), path.split('/').collect());
            t.len() == p.len() && t.iter().zip(&p).all(|(a, b)| a.starts_with('{') || a == b)
        });
        assert_eq!(template_documented, known, "{path}");
    }
}

/// Validate `value` against the schema at `reference`, naming what does not match.
fn check(doc: &Value, reference: &str, value: &Value) -> Vec<String> {
    let validator = jsonschema::validator_for(&schema_at(doc, reference)).unwrap();
    validator.iter_errors(value).map(|e| e.to_string()).collect()
}

#[actix_web::test]
async fn what_the_document_allows_the_server_accepts() {
    let app = spawn_app().await;
    let doc: Value = app.get("/api/openapi.json").await.json().await.unwrap();
    let token = app.token("root", &["admin"]);
    let post = |path: String, key: String, body: Value| {
        app.client.post(app.url(&path)).bearer_auth(&token).header("Idempotency-Key", key).json(&body).send()
    };

    // Every currency the document lists opens a wallet.
    let currencies = doc["components"]["schemas"]["Currency"]["enum"].as_array().unwrap();
    assert!(currencies.len() > 150, "{currencies:?}");
    let mut wallet = String::new();
    for (n, currency) in currencies.iter().enumerate() {
        let res = post("/api/v1/fintech/wallets".into(), format!("currency-{n}"), json!({"currency": currency}))
            .await
            .unwrap();
        assert_eq!(res.status(), 201, "{currency}");
        let body: Value = res.json().await.unwrap();
        assert!(check(&doc, "#/components/schemas/Wallet", &body).is_empty(), "{body}");
        wallet = body["id"].as_str().unwrap().to_string();
    }

    // An integer written with a zero fraction, a reference of 128 characters that are not ASCII,
    // and a key of 255 printable characters.
    let key: String = (0..255).map(|i| char::from(b'!' + (i % 94) as u8)).collect();
    let reference = "é".repeat(128);
    let res = post(
        format!("/api/v1/fintech/wallets/{wallet}/deposits"),
        key,
        json!({"amount": 1_880_238.0, "reference": reference}),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 201);
    let body: Value = res.json().await.unwrap();
    assert_eq!((body["amount"].as_i64(), body["reference"].as_str()), (Some(1_880_238), Some(reference.as_str())));
    assert!(check(&doc, "#/components/schemas/Transaction", &body).is_empty(), "{body}");

    // Any cursor of the documented form pages, up to the largest page.
    for cursor in ["1", "2", "999999999999999999"] {
        let res = app
            .get_as(&format!("/api/v1/fintech/wallets/{wallet}/transactions?limit=200&cursor={cursor}"), &token)
            .await;
        assert_eq!(res.status(), 200, "{cursor}");
        let body: Value = res.json().await.unwrap();
        assert!(check(&doc, "#/components/schemas/MovementPage", &body).is_empty(), "{body}");
    }
}

/// A request that is refused: the documented path template, the path sent, the body, the bearer
/// token and the code expected.
type Refusal<'a> = (&'a str, String, Option<Value>, Option<&'a str>, &'a str);

#[actix_web::test]
async fn every_refusal_is_a_documented_problem() {
    let app = spawn_app().await;
    let doc: Value = app.get("/api/openapi.json").await.json().await.unwrap();
    let token = app.token("root", &["admin"]);
    let res = app
        .client
        .post(app.url("/api/v1/fintech/wallets"))
        .bearer_auth(&token)
        .header("Idempotency-Key", "refusals-open")
        .json(&json!({"currency": "EUR"}))
        .send()
        .await
        .unwrap();
    let wallet = res.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    let missing = uuid::Uuid::now_v7();
    let deposits = format!("/api/v1/fintech/wallets/{wallet}/deposits");
    let withdrawals = format!("/api/v1/fintech/wallets/{wallet}/withdrawals");

    let cases: Vec<Refusal> = vec![
        ("/api/v1/me", "/api/v1/me".into(), None, None, "token_missing"),
        (
            "/api/v1/fintech/wallets/{id}",
            format!("/api/v1/fintech/wallets/{missing}"),
            None,
            Some(&token),
            "wallet_not_found",
        ),
        (
            "/api/v1/fintech/wallets/{id}",
            "/api/v1/fintech/wallets/{0192f0c1-7a4b-7cc2-9d1e-5f2a3b4c5d6e}".into(),
            None,
            Some(&token),
            "invalid_wallet_id",
        ),
        (
            "/api/v1/fintech/wallets/{id}/transactions",
            format!("/api/v1/fintech/wallets/{wallet}/transactions?cursor=0"),
            None,
            Some(&token),
            "invalid_cursor",
        ),
        (
            "/api/v1/fintech/wallets/{id}/transactions",
            format!("/api/v1/fintech/wallets/{wallet}/transactions?limit=201"),
            None,
            Some(&token),
            "page_too_large",
        ),
        (
            "/api/v1/fintech/wallets/{id}/transactions",
            format!("/api/v1/fintech/wallets/{wallet}/transactions?limit=ten"),
            None,
            Some(&token),
            "bad_request",
        ),
        (
            "/api/v1/fintech/wallets",
            "/api/v1/fintech/wallets".into(),
            Some(json!({"currency": "XYZ"})),
            Some(&token),
            "unknown_currency",
        ),
        (
            "/api/v1/fintech/wallets/{id}/deposits",
            deposits.clone(),
            Some(json!({"amount": 10.5, "reference": "r"})),
            Some(&token),
            "malformed_json",
        ),
        (
            "/api/v1/fintech/wallets/{id}/deposits",
            deposits.clone(),
            Some(json!({"amount": 1, "reference": "a\u{85}"})),
            Some(&token),
            "invalid_reference",
        ),
        (
            "/api/v1/fintech/wallets/{id}/deposits",
            deposits,
            Some(json!({"amount": 1, "reference": "é".repeat(129)})),
            Some(&token),
            "invalid_reference",
        ),
        (
            "/api/v1/fintech/wallets/{id}/withdrawals",
            withdrawals,
            Some(json!({"amount": 1, "reference": "r"})),
            Some(&token),
            "insufficient_funds",
        ),
        (
            "/api/v1/fintech/wallets/{id}/{action}",
            format!("/api/v1/fintech/wallets/{wallet}/archive"),
            None,
            Some(&token),
            "not_found",
        ),
        (
            "/api/v1/system/actors/{name}/restart",
            "/api/v1/system/actors/nobody/restart".into(),
            None,
            Some(&token),
            "actor_not_found",
        ),
    ];
    for (n, (template, path, body, bearer, code)) in cases.into_iter().enumerate() {
        let method = if doc["paths"][template]["get"].is_object() { "get" } else { "post" };
        let mut req = match method {
            "get" => app.client.get(app.url(&path)),
            _ => app.client.post(app.url(&path)).header("Idempotency-Key", format!("refusal-{n}")),
        };
        if let Some(bearer) = bearer {
            req = req.bearer_auth(bearer);
        }
        if let Some(body) = &body {
            req = req.json(body);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16().to_string();
        assert_eq!(res.headers()["content-type"], "application/problem+json", "{path}");
        let problem: Value = res.json().await.unwrap();
        assert_eq!(problem["code"], code, "{path}: {problem}");
        let documented = resolve(&doc, &doc["paths"][template][method]["responses"][&status]);
        let description = documented["description"].as_str().unwrap_or_default();
        assert!(description.contains(&format!("`{code}`")), "{method} {template} {status} does not list {code}");
        let reference = documented["content"]["application/problem+json"]["schema"]["$ref"].as_str().unwrap();
        let errors = check(&doc, reference, &problem);
        assert!(errors.is_empty(), "{path}: {errors:?}\n{problem}");
    }
}

#[actix_web::test]
async fn a_method_the_document_does_not_list_is_refused_naming_those_it_does() {
    let app = spawn_app().await;
    let doc: Value = app.get("/api/openapi.json").await.json().await.unwrap();
    let token = app.token("root", &["admin"]);
    let id = uuid::Uuid::now_v7().to_string();
    for (path, item) in doc["paths"].as_object().unwrap() {
        let url = path.replace("{id}", &id).replace("{name}", "idempotency-purger").replace("{action}", "close");
        let res = app.client.patch(app.url(&url)).bearer_auth(&token).send().await.unwrap();
        assert_eq!(res.status(), 405, "PATCH {path}");
        let allow = res.headers()["allow"].to_str().unwrap().to_lowercase();
        let documented: Vec<&str> = item.as_object().unwrap().keys().map(String::as_str).collect();
        let mut allowed: Vec<&str> = allow.split(", ").collect();
        allowed.sort_unstable();
        assert_eq!(allowed, documented, "{path}");
        let problem: Value = res.json().await.unwrap();
        assert_eq!(problem["code"], "method_not_allowed");
    }
}
