//! Rate limits on real Redis: shared by instances, per subject and per IP, failing open.

use std::{
    process::{Child, Command, Stdio},
    time::Duration,
};

use serde_json::Value;

use crate::helpers::{eventually, redis_url, sample, spawn_with};

#[actix_web::test]
async fn the_limit_is_shared_by_two_instances_and_answers_429_with_retry_after() {
    let prefix = format!("beryl:test:{}:", uuid::Uuid::new_v4().simple());
    let limited = |s: &mut beryl_core_api::config::Settings| {
        s.redis.key_prefix = prefix.clone();
        s.rate_limit.api_read.per_subject = 5;
        s.rate_limit.api_read.period_secs = 60;
    };
    let one = spawn_with(limited).await;
    let two = spawn_with(limited).await;
    let token = one.token("dave", &[]);
    for app in [&one, &one, &two, &one, &two] {
        let res = app.get_as("/api/v1/me", &token).await;
        assert_eq!(res.status(), 200);
        assert!(res.headers().get("ratelimit-remaining").is_some());
    }
    let res = two.get_as("/api/v1/me", &token).await;
    assert_eq!(res.status(), 429);
    let retry: u64 = res.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=12).contains(&retry), "one request every 12 s: {retry}");
    assert_eq!(res.headers()["ratelimit-remaining"], "0");
    assert_eq!(res.headers()["ratelimit-policy"], "5;w=60");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["code"], "rate_limited");
    // Another subject has its own budget.
    assert_eq!(one.get_as("/api/v1/me", &one.token("erin", &[])).await.status(), 200);
    let metrics = one.metrics().await + &two.metrics().await;
    assert!(metrics.contains("beryl_ratelimit_limited_total{group=\"api_read\",by=\"subject\"} 1"));
}

#[actix_web::test]
async fn the_client_ip_is_limited_before_authentication() {
    let app = spawn_with(|s| s.rate_limit.api_read.per_ip = 3).await;
    for _ in 0..3 {
        assert_eq!(app.get("/api/v1/me").await.status(), 401);
    }
    let res = app.get("/api/v1/me").await;
    assert_eq!(res.status(), 429);
    assert!(res.text().await.unwrap().contains("client IP"));
}

/// `GET /api/v1/me` without a token, from `X-Forwarded-For: forwarded`: the status only.
async fn anonymous_from(app: &crate::helpers::TestApp, forwarded: &str) -> u16 {
    let res = app.client.get(app.url("/api/v1/me")).header("x-forwarded-for", forwarded).send().await.unwrap();
    res.status().as_u16()
}

#[actix_web::test]
async fn behind_a_trusted_proxy_the_client_is_the_right_most_untrusted_forwarded_address() {
    // The test client connects from loopback: here that is the ingress.
    let app = spawn_with(|s| {
        s.rate_limit.api_read.per_ip = 2;
        s.rate_limit.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap(), "10.0.0.0/8".parse().unwrap()];
    })
    .await;
    // A client writing its own first hop does not get a fresh budget: what the proxies appended
    // (its real address, then an inner proxy's) is what counts.
    for spoofed in ["192.0.2.1", "192.0.2.2"] {
        assert_eq!(anonymous_from(&app, &format!("{spoofed}, 198.51.100.7, 10.1.2.3")).await, 401);
    }
    assert_eq!(anonymous_from(&app, "192.0.2.3, 198.51.100.7, 10.1.2.3").await, 429);
    // Another client behind the same proxies has its own budget.
    assert_eq!(anonymous_from(&app, "198.51.100.8").await, 401);
}

#[actix_web::test]
async fn x_forwarded_for_from_an_untrusted_peer_is_ignored() {
    let app = spawn_with(|s| {
        s.rate_limit.api_read.per_ip = 2;
        s.rate_limit.trusted_proxies = vec!["10.0.0.0/8".parse().unwrap()];
    })
    .await;
    // Loopback is no trusted proxy: every request counts against it, whatever the header says.
    assert_eq!(anonymous_from(&app, "198.51.100.1").await, 401);
    assert_eq!(anonymous_from(&app, "198.51.100.2").await, 401);
    assert_eq!(anonymous_from(&app, "198.51.100.3").await, 429);
}

#[actix_web::test]
async fn embedded_mode_limits_in_process() {
    let app = spawn_with(|s| {
        s.redis.url = None;
        s.database.url = None;
        s.rate_limit.api_write.per_subject = 2;
    })
    .await;
    let token = app.token("frank", &["system:write"]);
    let empty = serde_json::json!({});
    let restart = || app.post_as("/api/v1/system/actors/adapter-pool/restart", &token, &empty);
    assert_eq!(restart().await.status(), 202);
    assert_eq!(restart().await.status(), 202);
    assert_eq!(restart().await.status(), 429);
}

/// The `jti` of `token`, as `GET /api/v1/me` shows it.
async fn token_id(app: &crate::helpers::TestApp, token: &str) -> String {
    let me: Value = app.get_as("/api/v1/me", token).await.json().await.unwrap();
    me["token_id"].as_str().unwrap().to_string()
}

/// A Redis server of this test's own, so that stopping it disturbs no other test.
struct OwnRedis {
    child: Child,
    url: String,
}

impl OwnRedis {
    fn start() -> OwnRedis {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server on PATH");
        OwnRedis { child, url: format!("redis://127.0.0.1:{port}/0") }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[actix_web::test]
async fn with_redis_stopped_requests_still_succeed_and_health_says_degraded() {
    let _ = redis_url();
    let mut redis = OwnRedis::start();
    let url = redis.url.clone();
    let app = spawn_with(move |s| {
        s.redis.url = Some(url.as_str().into());
        s.rate_limit.api_read.per_subject = 1000;
    })
    .await;
    eventually("redis up", Duration::from_secs(10), || async {
        let h = app.health().await;
        h["dependencies"].as_array()?.iter().any(|d| d["name"] == "redis" && d["status"] == "up").then_some(())
    })
    .await;
    let token = app.token("grace", &[]);
    let res = app.get_as("/api/v1/me", &token).await;
    assert_eq!(res.status(), 200);
    assert!(res.headers().get("ratelimit-remaining").is_some(), "decided by Redis");
    let admin = app.token("root", &["admin"]);
    let revoked = app.token("heidi", &[]);
    let revoke = |jti: String| {
        let (app, admin) = (&app, &admin);
        async move {
            let body = serde_json::json!({"jti": jti, "exp": chrono::Utc::now().timestamp() + 600});
            app.post_as("/api/v1/admin/tokens/revocations", admin, &body).await
        }
    };
    assert_eq!(revoke(token_id(&app, &revoked).await).await.status(), 201);

    redis.child.kill().unwrap();
    redis.child.wait().unwrap();
    for _ in 0..5 {
        assert_eq!(app.get_as("/api/v1/me", &token).await.status(), 200);
    }
    // Revocations fail open like the limits: the list known keeps being enforced, a new one
    // cannot be recorded.
    let still = app.get_as("/api/v1/me", &revoked).await;
    assert_eq!(still.status(), 401);
    assert_eq!(still.json::<Value>().await.unwrap()["code"], "token_revoked");
    let res = revoke(token_id(&app, &token).await).await;
    assert_eq!(res.status(), 503);
    assert_eq!(res.json::<Value>().await.unwrap()["code"], "service_unavailable");
    eventually("the revocation list read failing", Duration::from_secs(10), || async {
        sample(&app.metrics().await, "beryl_auth_revocation_sync_failures_total").filter(|n| *n >= 1.0)
    })
    .await;
    assert_eq!(app.get_as("/api/v1/me", &revoked).await.status(), 401, "still refused after failed reads");
    let health = eventually("redis reported down", Duration::from_secs(10), || async {
        let h = app.health().await;
        h["dependencies"].as_array()?.iter().any(|d| d["name"] == "redis" && d["status"] == "down").then_some(h)
    })
    .await;
    assert_eq!(health["status"], "degraded");
    assert_eq!(app.ready_status().await, 200);
    assert_eq!(app.get_as("/api/v1/me", &token).await.status(), 200);
    let metrics = app.metrics().await;
    let failed_open: f64 = ["store_error", "store_down"]
        .iter()
        .filter_map(|r| sample(&metrics, &format!("beryl_ratelimit_fail_open_total{{reason=\"{r}\"}}")))
        .sum();
    assert!(failed_open >= 1.0, "{metrics}");
}
