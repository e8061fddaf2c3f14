//! Authentication and authorization over real HTTP: every bad token has its own code, rotation
//! keeps tokens valid until the previous key is removed, scopes are enforced in one place.

use std::path::PathBuf;

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use chrono::Utc;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_with, TestApp, TEST_JWT_KEY};

fn fixture(name: &str) -> PathBuf {
    // Test-only RSA key pair, generated for these tests.
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn claims(exp_offset: i64, nbf_offset: i64, iss: &str, aud: &str) -> Value {
    let now = Utc::now().timestamp();
    json!({"sub": "mallory", "exp": now + exp_offset, "nbf": now + nbf_offset, "iss": iss, "aud": aud, "scope": "admin"})
}

fn hs256(key: &[u8], claims: &Value, kid: Option<&str>) -> String {
    let header = Header { kid: kid.map(str::to_string), ..Header::new(Algorithm::HS256) };
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(key)).unwrap()
}

fn rs256(claims: &Value) -> String {
    let pem = std::fs::read(fixture("jwt-rs256-private.pem")).unwrap();
    jsonwebtoken::encode(&Header::new(Algorithm::RS256), claims, &EncodingKey::from_rsa_pem(&pem).unwrap()).unwrap()
}

const ISS: &str = "https://api.beryl-ecosystem.com";
const AUD: &str = "beryl-core-api";

async fn refused(app: &TestApp, authorization: Option<String>) -> (String, String) {
    let mut req = app.client.get(app.url("/api/v1/me"));
    if let Some(value) = authorization {
        req = req.header("Authorization", value);
    }
    let res = req.send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let challenge = res.headers()["www-authenticate"].to_str().unwrap().to_string();
    assert!(challenge.starts_with("Bearer realm=\"beryl-core-api\""), "{challenge}");
    let body: Value = res.json().await.unwrap();
    assert!(!body.to_string().contains(TEST_JWT_KEY));
    (body["code"].as_str().unwrap().to_string(), challenge)
}

#[actix_web::test]
async fn every_kind_of_bad_token_gets_its_own_401_code() {
    let app = spawn_with(|s| s.auth.jwt_key_id = Some("k2".into())).await;
    let key = TEST_JWT_KEY.as_bytes();
    let good = claims(600, -10, ISS, AUD);
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(good.to_string())
    );
    let cases: Vec<(&str, Option<String>)> = vec![
        ("token_missing", None),
        ("token_malformed", Some("Basic bWFsbG9yeTpwdw==".into())),
        ("token_malformed", Some("Bearer not-a-jwt".into())),
        ("token_unsigned", Some(format!("Bearer {none}"))),
        ("token_algorithm_not_allowed", Some(format!("Bearer {}", rs256(&good)))),
        ("token_unknown_key", Some(format!("Bearer {}", hs256(key, &good, Some("k1"))))),
        (
            "token_invalid_signature",
            Some(format!("Bearer {}", hs256(b"another-key-another-key-another-key!!", &good, Some("k2")))),
        ),
        ("token_expired", Some(format!("Bearer {}", hs256(key, &claims(-3600, -7200, ISS, AUD), Some("k2"))))),
        ("token_not_yet_valid", Some(format!("Bearer {}", hs256(key, &claims(7200, 3600, ISS, AUD), Some("k2"))))),
        (
            "token_wrong_issuer",
            Some(format!("Bearer {}", hs256(key, &claims(600, -10, "https://evil.example", AUD), Some("k2")))),
        ),
        (
            "token_wrong_audience",
            Some(format!("Bearer {}", hs256(key, &claims(600, -10, ISS, "another-api"), Some("k2")))),
        ),
    ];
    let mut codes = Vec::new();
    for (expected, header) in cases {
        let (code, challenge) = refused(&app, header).await;
        assert_eq!(code, expected);
        if expected != "token_missing" {
            assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
        }
        codes.push(code);
    }
    // The same claims, correctly signed with the current key and kid, are accepted.
    let res = app.get_as("/api/v1/me", &hs256(key, &good, Some("k2"))).await;
    assert_eq!(res.status(), 200);
    let me: Value = res.json().await.unwrap();
    assert_eq!(me["subject"], "mallory");
}

#[actix_web::test]
async fn hs256_signed_with_the_rsa_public_key_is_refused_and_rs256_is_accepted() {
    let app = spawn_with(|s| {
        s.auth.jwt_secret_key = None;
        s.auth.public_key_file = Some(fixture("jwt-rs256-public.pem"));
    })
    .await;
    let good = claims(600, -10, ISS, AUD);
    // Algorithm confusion: the public key (known to everyone) used as an HMAC secret.
    let public_pem = std::fs::read(fixture("jwt-rs256-public.pem")).unwrap();
    let forged = hs256(&public_pem, &good, None);
    let (code, _) = refused(&app, Some(format!("Bearer {forged}"))).await;
    assert_eq!(code, "token_algorithm_not_allowed");
    assert_eq!(app.get_as("/api/v1/me", &rs256(&good)).await.status(), 200);
}

#[actix_web::test]
async fn rotation_keeps_old_tokens_valid_until_the_previous_key_is_removed() {
    const NEW_KEY: &str = "rotated-signing-key-9876543210fedcba9876543210";
    let before = spawn_app().await;
    let token = before.token("alice", &[]);
    assert_eq!(before.get_as("/api/v1/me", &token).await.status(), 200);

    // `kubectl patch secret` rotation: the new key becomes current, the old one previous.
    let during = spawn_with(|s| {
        s.auth.jwt_secret_key = Some(NEW_KEY.into());
        s.auth.jwt_secret_key_previous = Some(TEST_JWT_KEY.into());
    })
    .await;
    assert_eq!(during.get_as("/api/v1/me", &token).await.status(), 200);
    assert_eq!(during.get_as("/api/v1/me", &during.token("alice", &[])).await.status(), 200);

    let after = spawn_with(|s| s.auth.jwt_secret_key = Some(NEW_KEY.into())).await;
    let (code, _) = refused(&after, Some(format!("Bearer {token}"))).await;
    assert_eq!(code, "token_invalid_signature");
}

#[actix_web::test]
async fn a_missing_scope_is_403_naming_it() {
    let app = spawn_app().await;
    let res = app.get_as("/api/v1/system/actors", &app.token("bob", &["fintech:read"])).await;
    assert_eq!(res.status(), 403);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["code"], "scope_missing");
    assert_eq!(body["missing_scope"], "system:read");
    assert!(body["detail"].as_str().unwrap().contains("system:read"));

    let res = app.get_as("/api/v1/system/actors", &app.token("carol", &["system:read"])).await;
    assert_eq!(res.status(), 200);
    let res = app.get_as("/api/v1/system/actors", &app.token("root", &["admin"])).await;
    assert_eq!(res.status(), 200);
    let res = app
        .post_as("/api/v1/system/actors/adapter-pool/restart", &app.token("carol", &["system:read"]), &json!({}))
        .await;
    assert_eq!(res.status(), 403);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["missing_scope"], "system:write");
}

#[actix_web::test]
async fn an_operator_restart_rebuilds_the_actor() {
    let app = spawn_app().await;
    let token = app.token("ops", &["system:write", "system:read"]);
    let res = app.post_as("/api/v1/system/actors/adapter-pool/restart", &token, &json!({})).await;
    assert_eq!(res.status(), 202);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["restarts"], 1);
    crate::helpers::eventually("running again", std::time::Duration::from_secs(10), || async {
        (app.ready_status().await == 200).then_some(())
    })
    .await;
    let res = app.post_as("/api/v1/system/actors/nobody/restart", &token, &json!({})).await;
    assert_eq!(res.status(), 404);
}

#[actix_web::test]
async fn responses_carry_security_headers_and_cors_is_strict() {
    let app = spawn_with(|s| s.cors.allowed_origins = vec!["https://app.beryl-ecosystem.com".into()]).await;
    let res = app.get("/health").await;
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    assert!(res.headers().get("server").is_none());
    let preflight = |origin: &'static str| {
        app.client
            .request(reqwest::Method::OPTIONS, app.url("/api/v1/me"))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "GET")
            .send()
    };
    let allowed = preflight("https://app.beryl-ecosystem.com").await.unwrap();
    assert_eq!(allowed.headers()["access-control-allow-origin"], "https://app.beryl-ecosystem.com");
    let denied = preflight("https://evil.example").await.unwrap();
    assert!(denied.headers().get("access-control-allow-origin").is_none());
}
