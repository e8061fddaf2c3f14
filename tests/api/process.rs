//! The binary itself: configuration errors, secrets redaction, logs, signals.

use std::time::Duration;

use nix::sys::signal::Signal;
use serde_json::json;

use crate::helpers::{run_cli, test_token, Process};

#[test]
fn invalid_settings_exit_non_zero_and_name_every_problem() {
    let (code, _, stderr) =
        run_cli(&["serve"], &[("PORT", "eighty"), ("LOG_LEVEL", "chatty"), ("BERYL__SUPERVISION__JITTER", "2")]);
    assert_eq!(code, 2, "{stderr}");
    for needle in
        ["server.port", "PORT or BERYL__SERVER__PORT", "log.level", "LOG_LEVEL", "supervision.jitter", "hint:"]
    {
        assert!(stderr.contains(needle), "missing {needle} in {stderr}");
    }
}

#[test]
fn production_without_infrastructure_is_refused_before_binding() {
    let (code, _, stderr) = run_cli(&["serve"], &[("ENVIRONMENT", "production"), ("PORT", "1")]);
    assert_eq!(code, 2);
    assert!(stderr.contains("DATABASE_URL") && stderr.contains("JWT_SECRET_KEY"), "{stderr}");
}

#[test]
fn config_check_prints_the_effective_configuration_with_secrets_redacted() {
    let vars = [
        ("JWT_SECRET_KEY", "s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t"),
        ("DATABASE_URL", "postgres://app:hunter2@db.internal:5432/beryl"),
        ("DATABASE_PASSWORD", "correct-horse"),
        ("REDIS_URL", "redis://:redispw@cache:6379/0"),
        ("METRICS_ENABLED", "false"),
    ];
    let (code, stdout, stderr) = run_cli(&["config", "check"], &vars);
    assert_eq!(code, 0, "{stderr}");
    for secret in ["s3cr3t", "hunter2", "correct-horse", "redispw"] {
        assert!(!stdout.contains(secret), "{secret} leaked: {stdout}");
    }
    let config: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(config["database"]["url"], "postgres://app:[redacted]@db.internal:5432/beryl");
    assert_eq!(config["auth"]["jwt_secret_key"], "[redacted]");
    assert_eq!(config["metrics"]["enabled"], false);
}

#[test]
fn config_check_redacts_kafka_credentials_from_the_file_and_the_variables() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("test.yaml"),
        "event_bus:\n  kafka_properties:\n    security.protocol: SASL_SSL\n    sasl.mechanisms: SCRAM-SHA-512\n    \
         sasl.username: beryl-core-api\n    sasl.password: file-scram-pw\n    ssl.key.password: file-key-pw\n",
    )
    .unwrap();
    let config_dir = dir.path().to_string_lossy().to_string();
    let vars = [
        ("ENVIRONMENT", "test"),
        ("CONFIG_DIR", config_dir.as_str()),
        ("KAFKA_PROPERTY_SASL_OAUTHBEARER_CLIENT_SECRET", "env-oidc-secret"),
        ("KAFKA_PROPERTY_LINGER_MS", "5"),
    ];
    let (code, stdout, stderr) = run_cli(&["config", "check"], &vars);
    assert_eq!(code, 0, "{stderr}");
    for secret in ["file-scram-pw", "file-key-pw", "env-oidc-secret"] {
        assert!(!stdout.contains(secret), "{secret} leaked: {stdout}");
    }
    let config: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let properties = &config["event_bus"]["kafka_properties"];
    assert_eq!(properties["sasl.password"], "[redacted]", "{properties}");
    assert_eq!(properties["ssl.key.password"], "[redacted]", "{properties}");
    assert_eq!(properties["sasl.oauthbearer.client.secret"], "[redacted]", "{properties}");
    assert_eq!(properties["security.protocol"], "SASL_SSL");
    assert_eq!(properties["sasl.username"], "beryl-core-api");
    assert_eq!(properties["linger.ms"], "5");
}

/// The environment the image gives the binary (the `ENV` of the Dockerfile's last stage).
fn image_environment() -> Vec<(String, String)> {
    let dockerfile = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Dockerfile")).unwrap();
    let last_stage = dockerfile.rsplit_once("\nFROM ").map(|(_, stage)| stage).unwrap();
    let mut vars = Vec::new();
    let mut in_env = false;
    for line in last_stage.lines().map(str::trim) {
        let words = match line.strip_prefix("ENV ") {
            Some(rest) => rest,
            None if in_env => line,
            None => continue,
        };
        in_env = words.ends_with('\\');
        for word in words.trim_end_matches('\\').split_whitespace() {
            let (k, v) = word.split_once('=').unwrap();
            vars.push((k.to_string(), v.trim_matches('"').to_string()));
        }
    }
    vars
}

#[test]
fn the_image_runs_in_production_mode_unless_told_otherwise() {
    let image = image_environment();
    assert!(image.iter().any(|(k, _)| k == "CONFIG_DIR"), "{image:?}");
    // The image's configuration directory is the repository's config/, which run_cli points at.
    let vars: Vec<(&str, &str)> =
        image.iter().filter(|(k, _)| k != "CONFIG_DIR").map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let (code, stdout, stderr) = run_cli(&["config", "check"], &vars);
    // Production's rules: no public development key, no in-memory stores (development would
    // accept both and exit 0).
    assert_eq!(code, 2, "the image's defaults were accepted: {stdout}");
    for needle in ["auth.jwt_secret_key", "database.url", "redis.url"] {
        assert!(stderr.contains(needle), "missing {needle} in {stderr}");
    }
}

#[test]
fn version_is_printed() {
    let (code, stdout, _) = run_cli(&["--version"], &[]);
    assert_eq!(code, 0);
    assert!(stdout.contains(env!("CARGO_PKG_VERSION")));
}

#[actix_web::test]
async fn the_request_id_is_on_every_log_line_of_its_request_even_inside_actors() {
    let process = Process::serve(&[("FAULT_INJECTION_ENABLED", "true")]);
    let address = process.address().await;
    let client = reqwest::Client::new();
    let res = client
        .post(format!("{address}/internal/faults/adapter-pool"))
        .bearer_auth(test_token("root", &["admin"]))
        .header("X-Request-ID", "trace-me-7f3a")
        .json(&json!({"kind": "panic"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "trace-me-7f3a");
    let lines = crate::helpers::eventually("the access log line", Duration::from_secs(10), || async {
        let lines: Vec<_> =
            process.json_lines().into_iter().filter(|l| l.to_string().contains("trace-me-7f3a")).collect();
        lines.iter().any(|l| l["message"] == "request completed").then_some(lines)
    })
    .await;
    let messages: Vec<_> = lines.iter().map(|l| l["message"].as_str().unwrap_or_default().to_string()).collect();
    // The panic happened on the actor's thread, inside the actor's span, still carrying the id.
    let panic =
        lines.iter().find(|l| l["message"] == "panic").unwrap_or_else(|| panic!("no panic line in {messages:?}"));
    let spans = panic["spans"].as_array().unwrap();
    assert!(spans.iter().any(|s| s["name"] == "actor.handle" && s["request_id"] == "trace-me-7f3a"), "{panic}");
    assert!(messages.contains(&"injecting fault".to_string()), "{messages:?}");
    // Lines logged while handling the request all carry it.
    for line in process
        .json_lines()
        .iter()
        .filter(|l| l["spans"].as_array().is_some_and(|s| s.iter().any(|s| s["name"] == "http.request")))
    {
        let spans = line["spans"].as_array().unwrap();
        let http = spans.iter().find(|s| s["name"] == "http.request").unwrap();
        assert!(http["request_id"].as_str().is_some_and(|id| !id.is_empty()), "{line}");
    }
}

#[actix_web::test]
async fn sigterm_lets_in_flight_requests_finish_and_exits_zero() {
    let mut process = Process::serve(&[("FAULT_INJECTION_ENABLED", "true"), ("SHUTDOWN_GRACE_PERIOD", "20")]);
    let address = process.address().await;
    let client = reqwest::Client::new();
    // Three slow requests queue on one actor: about 2.4 s of work in flight.
    let in_flight: Vec<_> = (0..3)
        .map(|_| {
            let client = client.clone();
            let url = format!("{address}/internal/faults/adapter-pool");
            actix_rt::spawn(async move {
                client
                    .post(url)
                    .bearer_auth(test_token("root", &["admin"]))
                    .json(&json!({"kind": "delay", "millis": 800}))
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
            })
        })
        .collect();
    crate::helpers::eventually("requests to be in flight", Duration::from_secs(10), || async {
        let h: serde_json::Value = client.get(format!("{address}/health")).send().await.ok()?.json().await.ok()?;
        (h["actors"][0]["mailbox_depth"].as_i64()? >= 1).then_some(())
    })
    .await;
    process.signal(Signal::SIGTERM);
    for request in in_flight {
        assert_eq!(request.await.unwrap().expect("in-flight request completed"), 200);
    }
    assert_eq!(process.exit_code(Duration::from_secs(20)).await, Some(0));
    let messages: Vec<_> =
        process.json_lines().iter().map(|l| l["message"].as_str().unwrap_or_default().to_string()).collect();
    assert!(messages.contains(&"shutdown complete".to_string()), "{messages:?}");
    // New connections are refused once shutdown began.
    assert!(client.get(format!("{address}/health")).send().await.is_err());
}

#[actix_web::test]
async fn after_sigterm_requests_are_answered_during_the_drain_delay_then_the_process_exits() {
    let mut process = Process::serve(&[("SHUTDOWN_DRAIN_DELAY", "6"), ("SHUTDOWN_GRACE_PERIOD", "5")]);
    let address = process.address().await;
    let client = reqwest::Client::new();
    let token = test_token("dana", &[]);
    assert_eq!(client.get(format!("{address}/health/ready")).send().await.unwrap().status(), 200);
    process.signal(Signal::SIGTERM);
    // Readiness turns to 503 so that the endpoints drop the pod, while the listener still takes
    // new connections and serves them: a request routed here meanwhile is answered.
    crate::helpers::eventually("readiness to answer 503", Duration::from_secs(5), || async {
        let res = reqwest::Client::new().get(format!("{address}/health/ready")).send().await.ok()?;
        (res.status() == 503).then_some(())
    })
    .await;
    let fresh = reqwest::Client::new();
    let me = fresh.get(format!("{address}/api/v1/me")).bearer_auth(&token).send().await.expect("still accepting");
    assert_eq!(me.status(), 200);
    assert_eq!(process.exit_code(Duration::from_secs(30)).await, Some(0));
    let messages: Vec<_> =
        process.json_lines().iter().map(|l| l["message"].as_str().unwrap_or_default().to_string()).collect();
    assert!(messages.iter().any(|m| m.starts_with("drain delay over")), "{messages:?}");
    assert!(client.get(format!("{address}/health")).send().await.is_err(), "closed after the drain");
}
