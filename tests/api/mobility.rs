//! Mobility against the real PostgreSQL and Redis: drivers, their availability and positions in
//! Redis' geo index, quotes priced by the tariff from the routing adapter's route, the refusals,
//! the personal data and the events.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{eventually, spawn_app, TestApp};

fn key() -> String {
    uuid::Uuid::now_v7().to_string()
}

async fn open_wallet(app: &TestApp, token: &str, currency: &str) -> String {
    let res = app
        .client
        .post(app.url("/api/v1/fintech/wallets"))
        .bearer_auth(token)
        .header("Idempotency-Key", key())
        .json(&json!({ "currency": currency }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    res.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned()
}

async fn put(app: &TestApp, path: &str, token: &str, body: &Value) -> reqwest::Response {
    app.client.put(app.url(path)).bearer_auth(token).json(body).send().await.unwrap()
}

async fn redis(app: &TestApp) -> (redis::aio::MultiplexedConnection, String) {
    let url = app.state.settings.redis.url.as_ref().unwrap().expose().to_owned();
    let conn = redis::Client::open(url).unwrap().get_multiplexed_async_connection().await.unwrap();
    (conn, format!("{}mobility:", app.state.settings.redis.key_prefix))
}

async fn database(app: &TestApp) -> tokio_postgres::Client {
    let url = app.state.settings.database.url.as_ref().unwrap().expose().to_owned();
    let (db, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    actix_rt::spawn(connection);
    db
}

/// Where the geo index has `driver` among the drivers of `mode`, if it has them.
async fn indexed(app: &TestApp, mode: &str, driver: &str) -> Option<(f64, f64)> {
    let (mut conn, prefix) = redis(app).await;
    let found: Vec<Option<(f64, f64)>> =
        redis::cmd("GEOPOS").arg(format!("{prefix}geo:{mode}")).arg(driver).query_async(&mut conn).await.unwrap();
    found.into_iter().next().flatten()
}

async fn problem(res: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(res.status(), status);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["code"], code, "{body}");
    body
}

/// A driver of `mode` with a wallet, online.
async fn online_driver(app: &TestApp, subject: &str, mode: &str) -> (String, String) {
    let token = app.token(subject, &["mobility:read", "mobility:write", "fintech:write"]);
    let wallet = open_wallet(app, &token, "EUR").await;
    let body = json!({"mode": mode, "plate": "ab-123-cd", "seats": 1, "wallet": wallet});
    let res = put(app, "/api/v1/mobility/drivers/me", &token, &body).await;
    assert_eq!(res.status(), 201);
    let driver: Value = res.json().await.unwrap();
    let res = put(app, "/api/v1/mobility/drivers/me/availability", &token, &json!({"availability": "available"})).await;
    assert_eq!(res.status(), 200);
    (token, driver["id"].as_str().unwrap().to_owned())
}

#[actix_rt::test]
async fn a_driver_goes_online_reports_positions_into_the_geo_index_and_leaves_it_offline() {
    let app = spawn_app().await;
    let token = app.token("dora", &["mobility:read", "mobility:write", "fintech:write"]);
    let wallet = open_wallet(&app, &token, "EUR").await;

    let res = app.get_as("/api/v1/mobility/drivers/me", &token).await;
    problem(res, 404, "driver_not_found").await;

    let body = json!({"mode": "car", "plate": "ab-123-cd", "seats": 4, "wallet": wallet});
    let res = put(&app, "/api/v1/mobility/drivers/me", &token, &body).await;
    assert_eq!(res.status(), 201);
    let driver: Value = res.json().await.unwrap();
    assert_eq!(driver["plate"], "AB-123-CD");
    assert_eq!(driver["availability"], "offline");
    let id = driver["id"].as_str().unwrap().to_owned();
    // The same profile again changes nothing; another plate changes it.
    let res = put(&app, "/api/v1/mobility/drivers/me", &token, &body).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["version"], 1);

    // Offline: a position is refused, and nothing is indexed.
    let here = json!({"lat": 48.8566, "lon": 2.3522, "heading": 90.0, "speed": 8.0});
    let res = app.post_as("/api/v1/mobility/drivers/me/location", &token, &here).await;
    problem(res, 409, "driver_offline").await;
    assert_eq!(indexed(&app, "car", &id).await, None);

    let res =
        put(&app, "/api/v1/mobility/drivers/me/availability", &token, &json!({"availability": "available"})).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["availability"], "available");
    let res = app.post_as("/api/v1/mobility/drivers/me/location", &token, &here).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["dispatchable"], true);
    let (lon, lat) = indexed(&app, "car", &id).await.expect("indexed");
    assert!((lat - 48.8566).abs() < 1e-4 && (lon - 2.3522).abs() < 1e-4, "{lat} {lon}");

    // Faster than one a second on average: 429, and the index keeps the last accepted position.
    let mut refused = None;
    for i in 0..4 {
        let there = json!({"lat": 48.86 + f64::from(i) / 1000.0, "lon": 2.35});
        let res = app.post_as("/api/v1/mobility/drivers/me/location", &token, &there).await;
        if res.status() == 429 {
            refused = Some((i, res));
            break;
        }
    }
    let (i, res) = refused.expect("a report beyond the rate is refused");
    assert!(res.headers().contains_key("retry-after"));
    problem(res, 429, "location_rate_limited").await;
    let (_, lat) = indexed(&app, "car", &id).await.unwrap();
    assert!((lat - (48.86 + f64::from(i - 1) / 1000.0)).abs() < 1e-4, "the refused report moved nothing: {lat}");

    // Offline again: out of the index; the change is an event in the outbox.
    let res = put(&app, "/api/v1/mobility/drivers/me/availability", &token, &json!({"availability": "offline"})).await;
    assert_eq!(res.status(), 200);
    assert_eq!(indexed(&app, "car", &id).await, None);
    let events = eventually("both status changes on the broker", Duration::from_secs(10), || async {
        let events: Vec<Value> = app
            .published("beryl.mobility.events")
            .into_iter()
            .filter(|e| e["type"] == "mobility.driver.status_changed")
            .collect();
        (events.len() == 2).then_some(events)
    })
    .await;
    let db = database(&app).await;
    assert_eq!(
        (events[0]["data"]["from"].as_str(), events[0]["data"]["to"].as_str()),
        (Some("offline"), Some("available"))
    );
    assert_eq!(
        (events[1]["data"]["from"].as_str(), events[1]["data"]["to"].as_str()),
        (Some("available"), Some("offline"))
    );
    assert_eq!(events[1]["aggregate_id"], id.as_str());
    assert_eq!(events[1]["domain"], "mobility");

    // The plate is sealed in PostgreSQL.
    let row = db.query_one("SELECT plate_sealed FROM mobility_drivers", &[]).await.unwrap();
    let sealed: String = row.get(0);
    assert!(sealed.starts_with("pd1.") && !sealed.contains("AB-123"), "{sealed}");
}

#[actix_rt::test]
async fn bad_driver_and_position_input_is_refused_with_its_code_and_changes_nothing() {
    let app = spawn_app().await;
    let token = app.token("dora", &["mobility:read", "mobility:write", "fintech:write"]);
    let wallet = open_wallet(&app, &token, "EUR").await;
    let other = open_wallet(&app, &app.token("eve", &["fintech:write"]), "EUR").await;
    let profile = |mode: &str, plate: &str, seats: i64, wallet: &str| json!({"mode": mode, "plate": plate, "seats": seats, "wallet": wallet});
    let cases = [
        (profile("hovercraft", "AB1", 1, &wallet), 400, "unknown_mode"),
        (profile("car", "AB_1", 1, &wallet), 400, "invalid_parameter"),
        (profile("car", &"A".repeat(17), 1, &wallet), 400, "invalid_parameter"),
        (profile("bike", "AB1", 2, &wallet), 422, "too_many_seats"),
        (profile("car", "AB1", 0, &wallet), 400, "invalid_parameter"),
        (profile("car", "AB1", 1, &uuid::Uuid::now_v7().to_string()), 404, "wallet_not_found"),
        (profile("car", "AB1", 1, &other), 404, "wallet_not_found"),
    ];
    for (body, status, code) in cases {
        let res = put(&app, "/api/v1/mobility/drivers/me", &token, &body).await;
        problem(res, status, code).await;
    }
    problem(app.get_as("/api/v1/mobility/drivers/me", &token).await, 404, "driver_not_found").await;

    let (driver, _) = online_driver(&app, "fred", "car").await;
    let positions = [
        (json!({"lat": 91.0, "lon": 2.0}), 400, "invalid_coordinates", "location.lat"),
        (json!({"lat": 48.0, "lon": -180.5}), 400, "invalid_coordinates", "location.lon"),
        (json!({"lat": 48.0, "lon": 2.0, "heading": 360.0}), 400, "invalid_parameter", "heading"),
        (json!({"lat": 48.0, "lon": 2.0, "speed": -1.0}), 400, "invalid_parameter", "speed"),
        (json!({"lat": "NaN", "lon": 2.0}), 400, "malformed_json", "lat"),
    ];
    for (body, status, code, field) in positions {
        let res = app.post_as("/api/v1/mobility/drivers/me/location", &driver, &body).await;
        let body = problem(res, status, code).await;
        assert_eq!(body["field"], field, "{body}");
    }
    let res = put(&app, "/api/v1/mobility/drivers/me/availability", &driver, &json!({"availability": "on_ride"})).await;
    problem(res, 409, "driver_busy").await;
}

/// The fare of the default tariff (EUR car: base 250, 110 per km, 25 per minute, at least 600),
/// rounded half up.
fn car_fare(distance_m: f64, duration_s: f64) -> i64 {
    let exact = 250.0 + 110.0 * distance_m / 1000.0 + 25.0 * duration_s / 60.0;
    ((exact + 0.5).floor() as i64).max(600)
}

#[actix_rt::test]
async fn a_quote_prices_the_route_by_the_tariff_keeps_its_coordinates_sealed_and_bad_trips_are_refused() {
    let app = spawn_app().await;
    let token = app.token("rita", &["mobility:read", "mobility:write"]);
    let trip = |mode: &str, currency: &str| json!({"pickup": {"lat": 48.8566, "lon": 2.3522}, "dropoff": {"lat": 48.8738, "lon": 2.2950}, "mode": mode, "currency": currency});
    let res = app.post_as("/api/v1/mobility/quotes", &token, &trip("car", "EUR")).await;
    assert_eq!(res.status(), 201);
    let quote: Value = res.json().await.unwrap();
    let (distance, duration) = (quote["distance_m"].as_f64().unwrap(), quote["duration_s"].as_f64().unwrap());
    // 4.6 km as the crow flies, longer by road.
    assert!((4_500.0..8_000.0).contains(&distance), "{quote}");
    assert_eq!(quote["fare"].as_i64().unwrap(), car_fare(distance, duration), "{quote}");
    assert_eq!(quote["currency"], "EUR");
    assert_eq!(quote["route"]["source"], "simulator");
    // A petrol car from the shipped factors: 0.176 kg per km.
    let co2e = quote["co2e_g"].as_f64().unwrap();
    assert!((co2e - 0.176 * distance).abs() <= 1.0, "{quote}");
    let expires = chrono::DateTime::parse_from_rfc3339(quote["expires_at"].as_str().unwrap()).unwrap();
    let created = chrono::DateTime::parse_from_rfc3339(quote["created_at"].as_str().unwrap()).unwrap();
    assert_eq!((expires - created).num_seconds(), 300);

    let bike: Value = app.post_as("/api/v1/mobility/quotes", &token, &trip("bike", "EUR")).await.json().await.unwrap();
    assert_eq!(bike["co2e_g"], 0);
    assert!(bike["duration_s"].as_f64().unwrap() > duration, "cycling is slower: {bike}");

    let db = database(&app).await;
    let rows = db.query("SELECT pickup_sealed, dropoff_sealed FROM mobility_quotes", &[]).await.unwrap();
    assert_eq!(rows.len(), 2);
    for row in rows {
        for i in 0..2 {
            let sealed: String = row.get(i);
            assert!(sealed.starts_with("pd1.") && !sealed.contains("48.8"), "{sealed}");
        }
    }

    let same = json!({"pickup": {"lat": 48.8566, "lon": 2.3522}, "dropoff": {"lat": 48.85661, "lon": 2.35221}, "mode": "car", "currency": "EUR"});
    let far = json!({"pickup": {"lat": 90.5, "lon": 2.3522}, "dropoff": {"lat": 48.8738, "lon": 2.2950}, "mode": "car", "currency": "EUR"});
    let cases = [
        (trip("car", "JPY"), 422, "unsupported_currency", Some("currency")),
        (trip("car", "XYZ"), 400, "unknown_currency", Some("currency")),
        (trip("zeppelin", "EUR"), 400, "unknown_mode", Some("mode")),
        (same, 422, "same_pickup_dropoff", Some("dropoff")),
        (far, 400, "invalid_coordinates", Some("pickup.lat")),
    ];
    for (body, status, code, field) in cases {
        let res = app.post_as("/api/v1/mobility/quotes", &token, &body).await;
        let body = problem(res, status, code).await;
        if let Some(field) = field {
            assert_eq!(body["field"], field, "{body}");
        }
    }
    let count: i64 = db.query_one("SELECT count(*) FROM mobility_quotes", &[]).await.unwrap().get(0);
    assert_eq!(count, 2, "refused trips keep nothing");
}

#[actix_rt::test]
async fn graphql_offers_the_driver_and_quotes_with_the_same_codes() {
    let app = spawn_app().await;
    let (token, id) = online_driver(&app, "gina", "scooter").await;
    let answer = app.graphql(&token, "{ driver { id mode plate availability } }").await;
    assert_eq!(answer["data"]["driver"]["id"], id.as_str(), "{answer}");
    assert_eq!(answer["data"]["driver"]["mode"], "scooter");
    let answer = app.graphql(&token, "mutation { reportDriverLocation(location: {lat: 45.0, lon: 5.0}) }").await;
    assert_eq!(answer["data"]["reportDriverLocation"], true, "{answer}");
    assert!(indexed(&app, "scooter", &id).await.is_some());
    let answer = app.graphql(&token, "mutation { setDriverAvailability(available: false) { availability } }").await;
    assert_eq!(answer["data"]["setDriverAvailability"]["availability"], "offline", "{answer}");
    let answer = app.graphql(&token, "mutation { reportDriverLocation(location: {lat: 45.0, lon: 5.0}) }").await;
    assert_eq!(answer["errors"][0]["extensions"]["code"], "driver_offline", "{answer}");

    let quote = "mutation { requestQuote(input: {pickup: {lat: 45.0, lon: 5.0}, dropoff: {lat: 45.05, lon: 5.05}, mode: EV_CAR, currency: \"EUR\"}) { id fare currency routeSource } }";
    let answer = app.graphql(&token, quote).await;
    assert!(answer["data"]["requestQuote"]["fare"].as_i64().unwrap() >= 600, "{answer}");
    let same = "mutation { requestQuote(input: {pickup: {lat: 45.0, lon: 5.0}, dropoff: {lat: 45.0, lon: 5.0}, mode: CAR, currency: \"EUR\"}) { id } }";
    let answer = app.graphql(&token, same).await;
    assert_eq!(answer["errors"][0]["extensions"]["code"], "same_pickup_dropoff", "{answer}");
    let reader = app.token("gina", &["mobility:read"]);
    let answer = app.graphql(&reader, quote).await;
    assert_eq!(answer["errors"][0]["extensions"]["code"], "scope_missing", "{answer}");
}

#[actix_rt::test]
async fn a_drivers_and_riders_data_is_exported_then_erased_out_of_the_index() {
    let app = spawn_app().await;
    let (token, id) = online_driver(&app, "hana", "bike").await;
    let here = json!({"lat": 51.5, "lon": -0.12});
    assert_eq!(app.post_as("/api/v1/mobility/drivers/me/location", &token, &here).await.status(), 200);
    let trip = json!({"pickup": {"lat": 51.5, "lon": -0.12}, "dropoff": {"lat": 51.52, "lon": -0.1}, "mode": "car", "currency": "GBP"});
    assert_eq!(app.post_as("/api/v1/mobility/quotes", &token, &trip).await.status(), 201);

    let privacy = app.token("hana", &["privacy:read", "privacy:write"]);
    let export: Value = app.get_as("/api/v1/privacy/export", &privacy).await.json().await.unwrap();
    let mobility = &export["domains"]["mobility"];
    assert_eq!(mobility["driver"]["id"], id.as_str(), "{export}");
    assert_eq!(mobility["driver"]["plate"], "AB-123-CD");
    assert_eq!(mobility["quotes"][0]["pickup"]["lat"], 51.5, "{export}");

    let res = app.post_as("/api/v1/privacy/erasure-requests", &privacy, &json!({})).await;
    assert!(res.status().is_success(), "{}", res.text().await.unwrap());
    assert_eq!(indexed(&app, "bike", &id).await, None);
    let db = database(&app).await;
    let row = db.query_one("SELECT owner_index, plate_sealed, availability FROM mobility_drivers", &[]).await.unwrap();
    assert!(row.get::<_, Option<Vec<u8>>>(0).is_none() && row.get::<_, Option<String>>(1).is_none());
    assert_eq!(row.get::<_, String>(2), "offline");
    let quotes: i64 = db.query_one("SELECT count(*) FROM mobility_quotes", &[]).await.unwrap().get(0);
    assert_eq!(quotes, 0);
    let res = app.get_as("/api/v1/mobility/drivers/me", &token).await;
    problem(res, 404, "driver_not_found").await;
    let _ = eventually("the drivers gauge", Duration::from_secs(20), || async {
        let metrics = app.metrics().await;
        metrics.contains("beryl_mobility_drivers{").then_some(())
    })
    .await;
}

#[actix_rt::test]
async fn position_reports_leave_no_audit_record_and_the_drivers_other_writes_do() {
    let crate::helpers::Audited { app, dir: _dir, log } = crate::helpers::audited().await;
    let (token, _) = online_driver(&app, "ona", "car").await;
    let here = json!({"lat": 48.8566, "lon": 2.3522, "heading": 90.0, "speed": 8.0});
    let res = app.post_as("/api/v1/mobility/drivers/me/location", &token, &here).await;
    assert_eq!(res.status(), 200);
    let records = crate::graphql::audit_records(&app, &log).await;
    let actions: Vec<&str> = records.iter().filter_map(|r| r["action"].as_str()).collect();
    assert!(actions.contains(&"PUT /api/v1/mobility/drivers/me/availability"), "{actions:?}");
    assert!(actions.iter().all(|a| !a.contains("/location")), "{actions:?}");
}
