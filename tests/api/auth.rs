//! Authentication and authorization over real HTTP: every bad token has its own code, rotation
//! keeps tokens valid until the previous key is removed, scopes are enforced in one place.

use std::{path::PathBuf, time::Duration};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use chrono::Utc;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use crate::helpers::{eventually, redis_url, sample, spawn_app, spawn_with, TestApp, TEST_JWT_KEY};

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

fn es256(claims: &Value, kid: Option<&str>) -> String {
    let pem = std::fs::read(fixture("jwt-es256-private.pem")).unwrap();
    let header = Header { kid: kid.map(str::to_string), ..Header::new(Algorithm::ES256) };
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_ec_pem(&pem).unwrap()).unwrap()
}

/// The code of the 401 `token` gets, or `ok` for a 200.
async fn outcome(app: &TestApp, token: &str) -> String {
    let res = app.get_as("/api/v1/me", token).await;
    let status = res.status().as_u16();
    let body: Value = res.json().await.unwrap();
    match status {
        200 => "ok".into(),
        401 => body["code"].as_str().unwrap().to_string(),
        other => panic!("{other}: {body}"),
    }
}

#[actix_web::test]
async fn subject_audience_list_and_lifetime_are_checked() {
    let app = spawn_with(|s| s.auth.max_token_lifetime_secs = 3600).await;
    let key = TEST_JWT_KEY.as_bytes();
    let now = Utc::now().timestamp();
    let token = |sub: &str, aud: Value, iat: Option<i64>, exp: i64| {
        let mut claims = json!({"sub": sub, "exp": exp, "iss": ISS, "aud": aud});
        if let Some(iat) = iat {
            claims["iat"] = iat.into();
        }
        hs256(key, &claims, None)
    };
    let cases = [
        ("empty subject", token("", json!(AUD), Some(now), now + 60), "token_invalid_claims"),
        ("audience list naming us", token("ivan", json!(["another-api", AUD]), Some(now), now + 60), "ok"),
        (
            "audience list without us",
            token("ivan", json!(["another-api"]), Some(now), now + 60),
            "token_wrong_audience",
        ),
        ("lives two hours", token("ivan", json!(AUD), Some(now - 60), now + 7140), "token_lifetime_too_long"),
        ("no iat, expires in two hours", token("ivan", json!(AUD), None, now + 7200), "token_lifetime_too_long"),
        ("issued in the future", token("ivan", json!(AUD), Some(now + 600), now + 900), "token_not_yet_valid"),
        ("within the lifetime", token("ivan", json!(AUD), Some(now), now + 3600), "ok"),
    ];
    for (what, token, expected) in cases {
        assert_eq!(outcome(&app, &token).await, expected, "{what}");
    }
}

#[actix_web::test]
async fn the_previous_key_is_accepted_only_until_its_configured_end() {
    const NEW_KEY: &str = "rotated-signing-key-9876543210fedcba9876543210";
    let before = spawn_app().await;
    let token = before.token("judy", &[]);
    let rotated = |until: chrono::DateTime<Utc>| {
        spawn_with(move |s| {
            s.auth.jwt_secret_key = Some(NEW_KEY.into());
            s.auth.jwt_secret_key_previous = Some(TEST_JWT_KEY.into());
            s.auth.jwt_secret_key_previous_until = Some(until);
        })
    };
    let during = rotated(Utc::now() + chrono::Duration::hours(1)).await;
    assert_eq!(outcome(&during, &token).await, "ok");
    let after = rotated(Utc::now() - chrono::Duration::seconds(1)).await;
    assert_eq!(outcome(&after, &token).await, "token_invalid_signature");
    assert_eq!(outcome(&after, &after.token("judy", &[])).await, "ok", "the current key still verifies");
}

#[actix_web::test]
async fn a_replaced_public_key_file_is_read_again() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("jwt-public.pem");
    std::fs::copy(fixture("jwt-rs256-public.pem"), &file).unwrap();
    let path = file.clone();
    let app = spawn_with(move |s| {
        s.auth.jwt_secret_key = None;
        s.auth.public_key_file = Some(path);
        s.auth.refresh_interval_ms = 200;
    })
    .await;
    let good = claims(600, -10, ISS, AUD);
    let (rsa, ec) = (rs256(&good), es256(&good, None));
    assert_eq!(outcome(&app, &rsa).await, "ok");
    assert_eq!(outcome(&app, &ec).await, "token_algorithm_not_allowed");
    // The key is rotated where it is mounted: written aside, then moved over the old one.
    let staged = dir.path().join("staged.pem");
    std::fs::copy(fixture("jwt-es256-public.pem"), &staged).unwrap();
    std::fs::rename(&staged, &file).unwrap();
    eventually("the new key to verify", Duration::from_secs(10), || async {
        (outcome(&app, &ec).await == "ok").then_some(())
    })
    .await;
    assert_eq!(outcome(&app, &rsa).await, "token_algorithm_not_allowed", "the old key no longer verifies");
}

#[actix_web::test]
async fn a_changed_jwks_file_is_read_again() {
    // The EC public key's coordinates: the last 64 bytes of its DER encoding.
    let pem = std::fs::read_to_string(fixture("jwt-es256-public.pem")).unwrap();
    let der: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD.decode(der).unwrap();
    let (x, y) = der[der.len() - 64..].split_at(32);
    let jwks = |kid: &str| {
        json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig",
            "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y)}]})
        .to_string()
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("jwks.json");
    std::fs::write(&file, jwks("2024-a")).unwrap();
    let path = file.clone();
    let app = spawn_with(move |s| {
        s.auth.jwks_file = Some(path);
        s.auth.refresh_interval_ms = 200;
    })
    .await;
    let good = claims(600, -10, ISS, AUD);
    let (old, new) = (es256(&good, Some("2024-a")), es256(&good, Some("2024-b")));
    assert_eq!(outcome(&app, &old).await, "ok");
    assert_eq!(outcome(&app, &new).await, "token_unknown_key");
    std::fs::write(&file, jwks("2024-b")).unwrap();
    eventually("the new key id to verify", Duration::from_secs(10), || async {
        (outcome(&app, &new).await == "ok").then_some(())
    })
    .await;
    assert_eq!(outcome(&app, &old).await, "token_unknown_key", "the key id that left the file is refused");
}

#[actix_web::test]
async fn a_revoked_token_is_refused_on_every_replica_until_it_expires() {
    let prefix = format!("beryl:test:{}:", uuid::Uuid::new_v4().simple());
    let shared = |s: &mut beryl_core_api::config::Settings| {
        s.redis.key_prefix = prefix.clone();
        s.auth.refresh_interval_ms = 200;
    };
    let (one, two) = (spawn_with(shared).await, spawn_with(shared).await);
    let (stolen, other) = (one.token("kim", &["fintech:read"]), one.token("kim", &["fintech:read"]));
    let me: Value = one.get_as("/api/v1/me", &stolen).await.json().await.unwrap();
    assert_eq!(two.get_as("/api/v1/me", &stolen).await.status(), 200);
    let (jti, exp) = (
        me["token_id"].as_str().unwrap().to_string(),
        chrono::DateTime::parse_from_rfc3339(me["expires_at"].as_str().unwrap()).unwrap().timestamp(),
    );
    let body = json!({"jti": jti, "exp": exp});
    let path = "/api/v1/admin/tokens/revocations";

    // Only an administrator revokes.
    let res = one.post_as(path, &one.token("kim", &["fintech:read", "fintech:write"]), &body).await;
    assert_eq!(res.status(), 403);
    let res = one.post_as(path, &one.token("root", &["admin"]), &body).await;
    assert_eq!(res.status(), 201);
    let answer: Value = res.json().await.unwrap();
    assert_eq!(answer["jti"], jti.as_str());
    let until = chrono::DateTime::parse_from_rfc3339(answer["refused_until"].as_str().unwrap()).unwrap().timestamp();
    assert!(until >= exp, "refused at least until the token expires: {answer}");

    // Refused at once where it was revoked, and on the other replica once it has read the list,
    // though both had verified (and cached) the token before.
    assert_eq!(outcome(&one, &stolen).await, "token_revoked");
    eventually("the other replica to refuse it", Duration::from_secs(10), || async {
        (outcome(&two, &stolen).await == "token_revoked").then_some(())
    })
    .await;
    assert_eq!(outcome(&two, &other).await, "ok", "the subject's other tokens still work");
    let metrics = two.metrics().await;
    assert!(sample(&metrics, r#"beryl_auth_failures_total{code="token_revoked"}"#).is_some_and(|n| n >= 1.0));

    // The shared entry expires with the token.
    let client = redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let ttl: i64 = redis::cmd("TTL").arg(format!("{prefix}revoked-tokens")).query_async(&mut conn).await.unwrap();
    let left = until - Utc::now().timestamp();
    assert!(ttl > 0 && ttl <= left + 2, "the list expires with its last token: ttl {ttl}, token {left}");

    // A malformed revocation is a problem naming the field.
    let res = one.post_as(path, &one.token("root", &["admin"]), &json!({"jti": "", "exp": exp})).await;
    assert_eq!(res.status(), 400);
    let problem: Value = res.json().await.unwrap();
    assert_eq!((problem["code"].as_str(), problem["field"].as_str()), (Some("invalid_parameter"), Some("jti")));
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
