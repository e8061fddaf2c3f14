//! The OpenAPI document is true: every operation it describes exists, answers with a documented
//! status, and its body validates against the documented schema.

use serde_json::{json, Value};

use crate::helpers::spawn_app;

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
    let app = spawn_app().await;
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
    let w1: Value = open("oa-1").await.unwrap().json().await.unwrap();
    let w2: Value = open("oa-2").await.unwrap().json().await.unwrap();
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

    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let mut url = path.replace("{id}", &id1).replace("{name}", "adapter-pool").replace("{action}", "freeze");
            if path.ends_with("/transactions") {
                url.push_str("?limit=10");
            }
            let mut req = match method.as_str() {
                "get" => app.client.get(app.url(&url)),
                "post" => app.client.post(app.url(&url)).header("Idempotency-Key", format!("oa-{checked}")),
                other => panic!("undocumented method handling for {other}"),
            }
            .bearer_auth(&token);
            let body = if path == "/api/v1/fintech/transfers" {
                Some(json!({"from": id1, "to": id2, "amount": 10}))
            } else {
                op.pointer("/requestBody/content/application~1json/example").cloned()
            };
            req = match (method.as_str(), body) {
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
            assert!(status.starts_with('2'), "{method} {path} should succeed with the fixtures: {answer}");
            checked += 1;
        }
    }
    assert_eq!(checked, 10, "every documented operation was called");
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
