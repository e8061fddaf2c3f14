//! The external API adapters (routing, emissions) against real local HTTP servers standing in for
//! the providers: answers and their provenance, the shared cache, slow answers, 5xx bursts
//! (retries within the budget, an open circuit, recovery through half-open), connection resets,
//! malformed JSON, the bulkhead, Redis down, and the in-process simulators.

use std::{
    io::Read,
    net::TcpListener,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use beryl_core_api::{
    adapters::{
        emissions::EstimateRequest,
        external::{AdapterError, Source},
        routing::{Point, Profile, RouteRequest},
    },
    config::{AdapterSettings, Settings},
};
use serde_json::json;
use wiremock::{
    matchers::{bearer_token, body_partial_json, method, path, path_regex},
    Mock, MockServer, ResponseTemplate,
};

use crate::helpers::{eventually, sample, spawn_app, spawn_with, TestApp};

const PETROL: &str =
    "passenger_vehicle-vehicle_type_car-fuel_source_petrol-engine_size_na-vehicle_age_na-vehicle_weight_na";

/// Short timeouts and a small breaker so that behaviour shows quickly.
fn provider(settings: &mut AdapterSettings, url: &str) {
    settings.url = Some(url.into());
    settings.connect_timeout_ms = 300;
    settings.attempt_timeout_ms = 300;
    settings.total_timeout_ms = 1000;
    settings.retry_backoff_ms = 5;
    settings.retry_backoff_max_ms = 20;
    settings.breaker_min_calls = 5;
    settings.breaker_open_ms = 300;
    settings.breaker_half_open_probes = 2;
}

fn paris_london() -> RouteRequest {
    RouteRequest {
        profile: Profile::Driving,
        points: vec![Point { lat: 48.8566, lon: 2.3522 }, Point { lat: 51.5074, lon: -0.1278 }],
    }
}

fn petrol(km: f64) -> EstimateRequest {
    EstimateRequest { activity_id: PETROL.into(), distance_km: km }
}

fn osrm_ok(distance: f64, duration: f64) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "code": "Ok",
        "routes": [{ "distance": distance, "duration": duration, "weight": duration, "weight_name": "routability", "legs": [] }],
        "waypoints": [],
    }))
}

fn climatiq_ok(co2e: f64) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "co2e": co2e,
        "co2e_unit": "kg",
        "co2e_calculation_method": "ar5",
        "emission_factor": { "activity_id": PETROL, "source": "BEIS", "year": 2021, "region": "GB" },
    }))
}

async fn calls(app: &TestApp, adapter: &str, operation: &str, outcome: &str) -> f64 {
    let series =
        format!("beryl_adapter_calls_total{{adapter=\"{adapter}\",operation=\"{operation}\",outcome=\"{outcome}\"}}");
    sample(&app.metrics().await, &series).unwrap_or(0.0)
}

async fn requests(server: &MockServer) -> usize {
    server.received_requests().await.map_or(0, |r| r.len())
}

async fn with_routing(server: &MockServer, adjust: impl FnOnce(&mut Settings)) -> TestApp {
    let url = server.uri();
    spawn_with(move |s| {
        provider(&mut s.adapters.routing, &url);
        adjust(s);
    })
    .await
}

#[actix_web::test]
async fn routes_come_from_the_provider_then_from_the_shared_cache() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/route/v1/driving/2.352200,48.856600;-0.127800,51.507400"))
        .respond_with(osrm_ok(459_000.0, 17_000.0))
        .expect(1)
        .mount(&server)
        .await;
    let app = with_routing(&server, |_| {}).await;

    let first = app.state.actors.routing.route(paris_london()).await.unwrap();
    assert_eq!((first.distance_m, first.duration_s), (459_000.0, 17_000.0));
    assert_eq!(first.provenance.source, Source::Provider);
    assert_eq!(first.provenance.producer, "osrm");
    assert!(!first.estimated);

    let second = app.state.actors.routing.route(paris_london()).await.unwrap();
    assert_eq!((second.distance_m, second.duration_s), (459_000.0, 17_000.0));
    assert_eq!(second.provenance.source, Source::Cache);
    assert_eq!(calls(&app, "routing", "route", "ok").await, 1.0);
    let metrics = app.metrics().await;
    assert_eq!(sample(&metrics, "beryl_adapter_cache_lookups_total{adapter=\"routing\",result=\"hit\"}"), Some(1.0));
    assert!(metrics.contains("beryl_adapter_call_duration_seconds_bucket{adapter=\"routing\",operation=\"route\""));
    // A route another replica fetched is shared through Redis: a second application with the
    // same key prefix asks nobody.
    let prefix = app.state.settings.redis.key_prefix.clone();
    let other = with_routing(&server, move |s| s.redis.key_prefix = prefix).await;
    let shared = other.state.actors.routing.route(paris_london()).await.unwrap();
    assert_eq!(shared.provenance.source, Source::Cache);
    server.verify().await;
}

#[actix_web::test]
async fn a_slow_provider_times_out_and_the_answer_is_an_estimate_marked_as_such() {
    let server = MockServer::start().await;
    Mock::given(method("GET")).respond_with(osrm_ok(1.0, 1.0).set_delay(Duration::from_secs(10))).mount(&server).await;
    let app = with_routing(&server, |s| s.adapters.routing.max_attempts = 1).await;

    let route = app.state.actors.routing.route(paris_london()).await.unwrap();
    assert!(route.estimated);
    assert_eq!(route.provenance.source, Source::Fallback);
    assert_eq!(route.provenance.producer, "great-circle");
    // The great-circle distance is about 344 km; the estimate lengthens it for the roads.
    assert!(route.distance_m > 344_000.0 && route.distance_m < 500_000.0, "{}", route.distance_m);
    assert_eq!(calls(&app, "routing", "route", "timeout").await, 1.0);
    assert_eq!(calls(&app, "routing", "route", "fallback").await, 1.0);
    assert_eq!(calls(&app, "routing", "route", "ok").await, 0.0);
}

#[actix_web::test]
async fn a_5xx_burst_is_retried_within_the_budget_then_opens_the_circuit_which_recovers_through_half_open() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/data/v1/estimate"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    let url = server.uri();
    let app = spawn_with(move |s| {
        let e = &mut s.adapters.emissions;
        provider(e, &url);
        e.api_key = Some("test-key".into());
        e.max_attempts = 3;
        e.retry_budget_ratio = 0.1;
        e.retry_budget_floor = 1;
        e.breaker_min_calls = 10;
        e.breaker_failure_ratio = 0.5;
        // Every answer must reach the provider for the half-open probes to count.
        e.cache_ttl_secs = 0;
    })
    .await;
    let client = app.state.actors.emissions.clone();

    // Twelve calls while the provider fails: each is answered from the shipped factors.
    for _ in 0..12 {
        let estimate = client.estimate(petrol(100.0)).await.unwrap();
        assert_eq!(estimate.provenance.source, Source::Fallback);
        assert!(estimate.provenance.estimated);
        assert!((estimate.co2e_kg - 17.6).abs() < 1e-9, "{}", estimate.co2e_kg);
        assert!(estimate.factor_source.contains("UK Government GHG Conversion Factors"), "{}", estimate.factor_source);
    }
    let metrics = app.metrics().await;
    let retries =
        sample(&metrics, "beryl_adapter_retries_total{adapter=\"emissions\",operation=\"estimate\"}").unwrap_or(0.0);
    let reached = calls(&app, "emissions", "estimate", "error").await;
    let refused = calls(&app, "emissions", "estimate", "rejected_open_circuit").await;
    // The circuit opened after ten failed calls; the last two never reached the provider.
    assert_eq!((reached, refused), (10.0, 2.0));
    // Every call wanted two retries; the budget allowed one plus a tenth of the calls.
    assert!((1.0..=2.0).contains(&retries), "{retries} retries for 10 calls");
    assert_eq!(requests(&server).await as f64, reached + retries);
    assert_eq!(calls(&app, "emissions", "estimate", "fallback").await, 12.0);

    // The open circuit shows in /health as an optional dependency: degraded, still ready.
    let health = eventually("the open circuit in /health", Duration::from_secs(10), || async {
        let h = app.health().await;
        h["dependencies"].as_array()?.iter().any(|d| d["name"] == "emissions" && d["status"] == "down").then_some(h)
    })
    .await;
    let dependency = health["dependencies"].as_array().unwrap().iter().find(|d| d["name"] == "emissions").unwrap();
    assert_eq!(dependency["required"], false);
    assert_eq!(dependency["owner"], "emissions-adapter");
    assert!(dependency["detail"].as_str().unwrap().starts_with("circuit "), "{dependency}");
    assert_eq!(health["status"], "degraded");
    assert_eq!(app.ready_status().await, 200);
    assert!(sample(&app.metrics().await, "beryl_adapter_circuit_state{adapter=\"emissions\"}").unwrap() > 0.0);

    // The provider recovers: after the pause, probes go through and close the circuit.
    server.reset().await;
    Mock::given(method("POST"))
        .and(path("/data/v1/estimate"))
        .and(bearer_token("test-key"))
        .respond_with(climatiq_ok(17.0))
        .mount(&server)
        .await;
    eventually("the circuit closed again", Duration::from_secs(10), || async {
        let estimate = client.estimate(petrol(100.0)).await.ok()?;
        let closed = sample(&app.metrics().await, "beryl_adapter_circuit_state{adapter=\"emissions\"}") == Some(0.0);
        (estimate.provenance.source == Source::Provider && closed).then_some(())
    })
    .await;
    eventually("/health ok again", Duration::from_secs(10), || async {
        let h = app.health().await;
        (h["status"] == "ok").then_some(())
    })
    .await;
}

/// A server that takes each connection, reads one byte of the request and closes with the rest
/// unread, so that the kernel resets the connection; counts the connections.
fn resetting_server() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().map_while(Result::ok) {
            count.fetch_add(1, Ordering::SeqCst);
            let _ = stream.read(&mut [0u8; 1]);
            drop(stream);
        }
    });
    (format!("http://{address}"), accepted)
}

#[actix_web::test]
async fn connection_resets_are_retried_then_answered_by_the_fallback() {
    let (url, accepted) = resetting_server();
    let app = spawn_with(move |s| provider(&mut s.adapters.routing, &url)).await;

    let route = app.state.actors.routing.route(paris_london()).await.unwrap();
    assert_eq!(route.provenance.source, Source::Fallback);
    assert!(route.estimated);
    assert_eq!(calls(&app, "routing", "route", "error").await, 1.0);
    let retries = sample(&app.metrics().await, "beryl_adapter_retries_total{adapter=\"routing\",operation=\"route\"}");
    assert_eq!(retries, Some(2.0), "an idempotent call is retried up to max_attempts");
    assert_eq!(accepted.load(Ordering::SeqCst), 3);
}

#[actix_web::test]
async fn malformed_json_is_a_failure_that_is_not_retried() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_string("{\"code\": \"Ok\", \"routes\": [{\"dist"))
        .mount(&server)
        .await;
    let app = with_routing(&server, |_| {}).await;

    let route = app.state.actors.routing.route(paris_london()).await.unwrap();
    assert_eq!(route.provenance.source, Source::Fallback);
    assert_eq!(requests(&server).await, 1);
    assert_eq!(calls(&app, "routing", "route", "error").await, 1.0);
}

#[actix_web::test]
async fn a_refusal_on_the_merits_has_no_fallback_and_does_not_open_the_circuit() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(400).set_body_json(json!({"code": "NoRoute", "message": "Impossible route"})),
        )
        .mount(&server)
        .await;
    let app = with_routing(&server, |_| {}).await;

    for _ in 0..8 {
        let error = app.state.actors.routing.route(paris_london()).await.unwrap_err();
        assert!(matches!(&error, AdapterError::Refused { reason, .. } if reason.contains("NoRoute")), "{error:?}");
    }
    assert_eq!(requests(&server).await, 8, "refusals are not retried");
    assert_eq!(calls(&app, "routing", "route", "rejected_open_circuit").await, 0.0);
    assert_eq!(calls(&app, "routing", "route", "fallback").await, 0.0);
}

#[actix_web::test]
async fn a_full_bulkhead_refuses_at_once() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(osrm_ok(1000.0, 100.0).set_delay(Duration::from_millis(800)))
        .mount(&server)
        .await;
    let app = with_routing(&server, |s| {
        let r = &mut s.adapters.routing;
        r.max_concurrency = 1;
        r.attempt_timeout_ms = 3000;
        r.total_timeout_ms = 4000;
    })
    .await;
    let client = app.state.actors.routing.clone();
    let slow = actix_rt::spawn(async move { client.route(paris_london()).await });
    eventually("the first call to reach the provider", Duration::from_secs(5), || async {
        (requests(&server).await == 1).then_some(())
    })
    .await;

    let refused = app.state.actors.routing.route(paris_london()).await.unwrap();
    assert_eq!(refused.provenance.source, Source::Fallback);
    assert_eq!(calls(&app, "routing", "route", "rejected_bulkhead").await, 1.0);
    let first = slow.await.unwrap().unwrap();
    assert_eq!(first.provenance.source, Source::Provider);
    assert_eq!(requests(&server).await, 1);
}

#[actix_web::test]
async fn without_redis_the_adapter_asks_the_provider_every_time() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/data/v1/estimate"))
        .and(body_partial_json(json!({
            "emission_factor": { "activity_id": PETROL },
            "parameters": { "distance": 12.5, "distance_unit": "km" },
        })))
        .respond_with(climatiq_ok(2.2))
        .expect(2)
        .mount(&server)
        .await;
    let url = server.uri();
    let app = spawn_with(move |s| {
        provider(&mut s.adapters.emissions, &url);
        // Nothing listens on port 1.
        s.redis.url = Some("redis://127.0.0.1:1/0".into());
    })
    .await;

    for _ in 0..2 {
        let estimate = app.state.actors.emissions.estimate(petrol(12.5)).await.unwrap();
        assert_eq!(estimate.provenance.source, Source::Provider);
        assert_eq!(estimate.co2e_kg, 2.2);
        assert_eq!(estimate.factor_source, "BEIS 2021");
    }
    let metrics = app.metrics().await;
    assert!(
        sample(&metrics, "beryl_adapter_cache_lookups_total{adapter=\"emissions\",result=\"error\"}").unwrap() >= 2.0
    );
    server.verify().await;
}

#[actix_web::test]
async fn a_cached_factor_serves_estimates_for_any_distance() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path_regex("^/data/v1/estimate$"))
        .respond_with(climatiq_ok(2.0))
        .expect(1)
        .mount(&server)
        .await;
    let url = server.uri();
    let app = spawn_with(move |s| provider(&mut s.adapters.emissions, &url)).await;

    let first = app.state.actors.emissions.estimate(petrol(10.0)).await.unwrap();
    assert_eq!((first.co2e_kg, first.factor_kg_per_km), (2.0, 0.2));
    let second = app.state.actors.emissions.estimate(petrol(25.0)).await.unwrap();
    assert_eq!(second.provenance.source, Source::Cache);
    assert!((second.co2e_kg - 5.0).abs() < 1e-9, "{}", second.co2e_kg);
    assert_eq!(second.factor_source, "BEIS 2021");
    server.verify().await;
}

#[actix_web::test]
async fn without_a_provider_url_the_simulators_answer_honestly() {
    let app = spawn_app().await;
    // Every series the dashboards and alerts read exists before the first call.
    let metrics = app.metrics().await;
    for series in [
        "beryl_adapter_calls_total{adapter=\"emissions\",operation=\"estimate\",outcome=\"timeout\"}",
        "beryl_adapter_calls_total{adapter=\"routing\",operation=\"route\",outcome=\"rejected_open_circuit\"}",
        "beryl_adapter_retries_total{adapter=\"routing\",operation=\"route\"}",
        "beryl_adapter_call_duration_seconds_count{adapter=\"emissions\",operation=\"estimate\"}",
        "beryl_adapter_circuit_state{adapter=\"routing\"}",
        "beryl_adapter_cache_lookups_total{adapter=\"routing\",result=\"hit\"}",
    ] {
        assert_eq!(sample(&metrics, series), Some(0.0), "{series}");
    }

    let route = app.state.actors.routing.route(paris_london()).await.unwrap();
    assert_eq!(route.provenance.source, Source::Simulator);
    assert!(route.estimated);
    let walk =
        app.state.actors.routing.route(RouteRequest { profile: Profile::Walking, ..paris_london() }).await.unwrap();
    assert!(walk.duration_s > route.duration_s * 4.0, "walking takes longer than driving");

    let estimate = app.state.actors.emissions.estimate(petrol(100.0)).await.unwrap();
    assert_eq!(estimate.provenance.source, Source::Simulator);
    assert!((estimate.co2e_kg - 17.6).abs() < 1e-9);
    assert!(estimate.factor_source.contains("2018"), "{}", estimate.factor_source);
    let unknown = EstimateRequest { activity_id: "rocket-to-the-moon".into(), distance_km: 1.0 };
    assert!(matches!(app.state.actors.emissions.estimate(unknown).await, Err(AdapterError::Refused { .. })));
    let bad = RouteRequest { profile: Profile::Driving, points: vec![Point { lat: 91.0, lon: 0.0 }] };
    assert!(matches!(app.state.actors.routing.route(bad).await, Err(AdapterError::Refused { .. })));

    assert_eq!(calls(&app, "routing", "route", "ok").await, 2.0);
    let health = app.health().await;
    let actors = health["actors"].as_array().unwrap();
    for name in ["routing-adapter", "emissions-adapter"] {
        assert!(actors.iter().any(|a| a["name"] == name && a["kind"] == "adapter" && a["critical"] == false));
    }
    assert!(!health["dependencies"].as_array().unwrap().iter().any(|d| d["name"] == "routing"));
}
