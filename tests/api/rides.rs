//! Rides end to end against the real PostgreSQL and Redis: request from a quote (the fare held on
//! the rider's wallet), dispatch to the nearest driver, the ride's states, the payment captured
//! and paid out (or released), cancellations, refusals, and two instances racing to assign.

use std::time::Duration;

use beryl_core_api::{actors::mobility::saga::platform_wallet_id, domain::fintech::Currency};
use serde_json::{json, Value};

use crate::helpers::{eventually, sample, spawn_app, spawn_with, TestApp};

fn key() -> String {
    uuid::Uuid::now_v7().to_string()
}

const PICKUP: (f64, f64) = (48.8566, 2.3522);
const DROPOFF: (f64, f64) = (48.8738, 2.2950);

async fn post(app: &TestApp, path: &str, token: &str, body: &Value) -> reqwest::Response {
    post_keyed(app, path, token, &key(), body).await
}

async fn post_keyed(app: &TestApp, path: &str, token: &str, key: &str, body: &Value) -> reqwest::Response {
    app.client.post(app.url(path)).bearer_auth(token).header("Idempotency-Key", key).json(body).send().await.unwrap()
}

async fn put(app: &TestApp, path: &str, token: &str, body: &Value) -> reqwest::Response {
    app.client.put(app.url(path)).bearer_auth(token).json(body).send().await.unwrap()
}

/// A wallet of `subject` in EUR holding `amount`.
async fn funded_wallet(app: &TestApp, token: &str, amount: i64) -> String {
    let res = post(app, "/api/v1/fintech/wallets", token, &json!({"currency": "EUR"})).await;
    assert_eq!(res.status(), 201);
    let id = res.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    if amount > 0 {
        let bank = app.token("bank", &["fintech:settle"]);
        let body = json!({"amount": amount, "reference": "seed"});
        let res = post(app, &format!("/api/v1/fintech/wallets/{id}/deposits"), &bank, &body).await;
        assert_eq!(res.status(), 201);
    }
    id
}

async fn wallet(app: &TestApp, id: &str) -> Value {
    let admin = app.token("root", &["admin"]);
    let res = app
        .client
        .get(app.url(&format!("/api/v1/fintech/wallets/{id}")))
        .bearer_auth(admin)
        .header("X-Access-Reason", "ride test")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

fn rider_token(app: &TestApp, subject: &str) -> String {
    app.token(subject, &["mobility:read", "mobility:write", "fintech:read", "fintech:write"])
}

/// A driver online at `at`, paid into a wallet of their own; their token and wallet.
async fn driver_at(app: &TestApp, subject: &str, at: (f64, f64)) -> (String, String) {
    let token = rider_token(app, subject);
    let wallet = funded_wallet(app, &token, 0).await;
    let body = json!({"mode": "car", "plate": "DR-1", "seats": 4, "wallet": wallet});
    assert_eq!(put(app, "/api/v1/mobility/drivers/me", &token, &body).await.status(), 201);
    let res = put(app, "/api/v1/mobility/drivers/me/availability", &token, &json!({"availability": "available"})).await;
    assert_eq!(res.status(), 200);
    let res = app.post_as("/api/v1/mobility/drivers/me/location", &token, &json!({"lat": at.0, "lon": at.1})).await;
    assert_eq!(res.status(), 200);
    (token, wallet)
}

async fn quote(app: &TestApp, token: &str) -> Value {
    let body = json!({"pickup": {"lat": PICKUP.0, "lon": PICKUP.1}, "dropoff": {"lat": DROPOFF.0, "lon": DROPOFF.1}, "mode": "car", "currency": "EUR"});
    let res = app.post_as("/api/v1/mobility/quotes", token, &body).await;
    assert_eq!(res.status(), 201);
    res.json().await.unwrap()
}

async fn request(app: &TestApp, token: &str, quote: &str, wallet: &str) -> reqwest::Response {
    post(app, "/api/v1/mobility/rides", token, &json!({"quote": quote, "wallet": wallet})).await
}

/// The ride offered to the driver of `token`, once dispatch offered one.
async fn offered(app: &TestApp, token: &str) -> String {
    eventually("a ride offered to the driver", Duration::from_secs(15), || async {
        let page: Value = app.get_as("/api/v1/mobility/rides?role=driver", token).await.json().await.unwrap();
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["state"] == "requested")
            .map(|r| r["id"].as_str().unwrap().to_owned())
    })
    .await
}

async fn act(app: &TestApp, token: &str, ride: &str, action: &str, body: Value) -> reqwest::Response {
    post(app, &format!("/api/v1/mobility/rides/{ride}/{action}"), token, &body).await
}

async fn problem(res: reqwest::Response, status: u16, code: &str) -> Value {
    let got = res.status();
    let body: Value = res.json().await.unwrap();
    assert_eq!((got.as_u16(), body["code"].as_str()), (status, Some(code)), "{body}");
    body
}

#[actix_rt::test]
async fn a_full_ride_is_paid_from_the_riders_hold_to_the_driver_and_the_platform() {
    let app = spawn_app().await;
    let (driver, driver_wallet) = driver_at(&app, "dan", (48.8570, 2.3530)).await;
    let rider = rider_token(&app, "rose");
    let rider_wallet = funded_wallet(&app, &rider, 10_000).await;
    let quote = quote(&app, &rider).await;
    let fare = quote["fare"].as_i64().unwrap();

    let res = request(&app, &rider, quote["id"].as_str().unwrap(), &rider_wallet).await;
    assert_eq!(res.status(), 201);
    let ride: Value = res.json().await.unwrap();
    let id = ride["id"].as_str().unwrap().to_owned();
    assert_eq!((ride["state"].as_str(), ride["payment"].as_str()), (Some("requested"), Some("held")));
    // The most the ride can cost is held: the quote plus the tolerance (20 %).
    let held = wallet(&app, &rider_wallet).await;
    assert_eq!((held["balance"].as_i64(), held["held"].as_i64()), (Some(10_000), Some(fare * 120 / 100)), "{held}");

    assert_eq!(offered(&app, &driver).await, id);
    let res = act(&app, &driver, &id, "start", json!({})).await;
    let body = problem(res, 409, "ride_state_conflict").await;
    assert_eq!(body["state"], "requested");
    let accepted: Value = act(&app, &driver, &id, "accept", json!({})).await.json().await.unwrap();
    assert_eq!(accepted["state"], "driver_assigned", "{accepted}");
    let me: Value = app.get_as("/api/v1/mobility/drivers/me", &driver).await.json().await.unwrap();
    assert_eq!((me["availability"].as_str(), me["ride"].as_str()), (Some("on_ride"), Some(id.as_str())));
    for action in ["arrive", "start"] {
        assert_eq!(act(&app, &driver, &id, action, json!({})).await.status(), 200, "{action}");
    }
    let driven = json!({"distance_m": quote["distance_m"], "duration_s": quote["duration_s"]});
    let (complete, complete_key) = (format!("/api/v1/mobility/rides/{id}/complete"), key());
    let completed = post_keyed(&app, &complete, &driver, &complete_key, &driven).await;
    assert_eq!(completed.status(), 200);
    let completed: Value = completed.json().await.unwrap();
    assert_eq!((completed["state"].as_str(), completed["payment"].as_str()), (Some("completed"), Some("captured")));
    assert_eq!(completed["fare"].as_i64(), Some(fare), "the route as quoted costs the quote");
    let commission = completed["commission"].as_i64().unwrap();
    assert_eq!(commission, (fare * 2_000 + 5_000) / 10_000);
    let states: Vec<&str> =
        completed["timeline"].as_array().unwrap().iter().map(|t| t["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["requested", "driver_assigned", "driver_arriving", "in_progress", "completed"]);

    // The same completion again replays; nothing moves twice.
    let again = post_keyed(&app, &complete, &driver, &complete_key, &driven).await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.headers()["idempotent-replayed"], "true");

    let paid = wallet(&app, &rider_wallet).await;
    assert_eq!((paid["balance"].as_i64(), paid["held"].as_i64()), (Some(10_000 - fare), Some(0)), "{paid}");
    assert_eq!(wallet(&app, &driver_wallet).await["balance"].as_i64(), Some(fare - commission));
    let platform = platform_wallet_id("platform:mobility", Currency::parse("EUR").unwrap());
    assert_eq!(wallet(&app, &platform.to_string()).await["balance"].as_i64(), Some(commission));
    let me: Value = app.get_as("/api/v1/mobility/drivers/me", &driver).await.json().await.unwrap();
    assert_eq!(me["availability"], "available");

    // Each rates the other once.
    assert_eq!(act(&app, &rider, &id, "rate", json!({"score": 5})).await.status(), 200);
    problem(act(&app, &rider, &id, "rate", json!({"score": 4})).await, 409, "already_rated").await;
    assert_eq!(act(&app, &driver, &id, "rate", json!({"score": 4})).await.status(), 200);
    let me: Value = app.get_as("/api/v1/mobility/drivers/me", &driver).await.json().await.unwrap();
    assert_eq!((me["rating"].as_f64(), me["ratings"].as_i64()), (Some(5.0), Some(1)));

    // A stranger sees nothing of it; the events tell the story without a coordinate.
    let stranger = rider_token(&app, "sam");
    problem(app.get_as(&format!("/api/v1/mobility/rides/{id}"), &stranger).await, 404, "ride_not_found").await;
    let events = eventually("the ride's events", Duration::from_secs(10), || async {
        let events: Vec<Value> =
            app.published("beryl.mobility.events").into_iter().filter(|e| e["aggregate_id"] == id.as_str()).collect();
        (events.len() >= 4).then_some(events)
    })
    .await;
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        ["mobility.ride.requested", "mobility.ride.assigned", "mobility.ride.started", "mobility.ride.completed"]
    );
    let done = &events[3]["data"];
    assert_eq!((done["fare"].as_i64(), done["mode"].as_str()), (Some(fare), Some("car")), "{done}");
    assert!(done["distance_m"].as_u64().unwrap() > 0 && done["co2e_g"].as_u64().unwrap() > 0, "{done}");
    assert!(done["rider"].as_str().unwrap().starts_with("pd1."), "the rider is sealed: {done}");
    assert!(!events.iter().any(|e| e.to_string().contains("48.85")), "no coordinate is published");

    // The wait for a driver is measured in buckets up to minutes; no payment step is left due.
    let metrics = app.metrics().await;
    assert!(metrics.contains("beryl_mobility_dispatch_seconds_bucket{mode=\"car\",le=\"300\"} 1"), "{metrics}");
    let steps =
        |outcome: &str| sample(&metrics, &format!("beryl_mobility_dispatch_steps_total{{outcome=\"{outcome}\"}}"));
    assert_eq!((steps("offered"), steps("failed")), (Some(1.0), Some(0.0)), "one offer, no failure");
    let _ = eventually("the payments-due gauges", Duration::from_secs(20), || async {
        let metrics = app.metrics().await;
        (metrics.contains("beryl_mobility_payments_due 0")
            && metrics.contains("beryl_mobility_payments_due_age_seconds 0"))
        .then_some(())
    })
    .await;
}

#[actix_rt::test]
async fn cancellations_release_the_hold_or_charge_the_fee_and_a_driver_who_gives_up_is_replaced() {
    let app = spawn_with(|s| s.mobility.cancellation_grace_secs = 0).await;
    let (first, first_wallet) = driver_at(&app, "dina", (48.8567, 2.3523)).await;
    let rider = rider_token(&app, "ruth");
    let rider_wallet = funded_wallet(&app, &rider, 20_000).await;

    // Before any driver took it: free, and the hold goes.
    let q = quote(&app, &rider).await;
    let ride: Value = request(&app, &rider, q["id"].as_str().unwrap(), &rider_wallet).await.json().await.unwrap();
    let id = ride["id"].as_str().unwrap().to_owned();
    assert_eq!(offered(&app, &first).await, id);
    let cancelled: Value =
        act(&app, &rider, &id, "cancel", json!({"reason": "changed my mind"})).await.json().await.unwrap();
    assert_eq!((cancelled["state"].as_str(), cancelled["payment"].as_str()), (Some("cancelled"), Some("released")));
    assert_eq!(cancelled["cancellation"]["fee"], 0);
    assert_eq!(wallet(&app, &rider_wallet).await["held"], 0);
    problem(act(&app, &first, &id, "accept", json!({})).await, 409, "ride_state_conflict").await;

    // A driver who accepted then gives up: the ride goes to the next driver.
    let (second, _) = driver_at(&app, "dora", (48.8600, 2.3600)).await;
    let q = quote(&app, &rider).await;
    let ride: Value = request(&app, &rider, q["id"].as_str().unwrap(), &rider_wallet).await.json().await.unwrap();
    let id = ride["id"].as_str().unwrap().to_owned();
    assert_eq!(offered(&app, &first).await, id, "the nearest driver first");
    assert_eq!(act(&app, &first, &id, "accept", json!({})).await.status(), 200);
    let back: Value = act(&app, &first, &id, "cancel", json!({})).await.json().await.unwrap();
    assert_eq!(back["state"], "requested", "{back}");
    assert_eq!(back["timeline"].as_array().unwrap().last().unwrap()["note"], "driver_cancelled");
    assert_eq!(offered(&app, &second).await, id, "the next driver is offered the ride");
    assert_eq!(act(&app, &second, &id, "accept", json!({})).await.status(), 200);

    // After the grace period with a driver on the way: the fee is charged, the rest released.
    let fee_paid: Value = act(&app, &rider, &id, "cancel", json!({})).await.json().await.unwrap();
    let fee = fee_paid["cancellation"]["fee"].as_i64().unwrap();
    assert_eq!(fee, 500.min(q["fare"].as_i64().unwrap()), "{fee_paid}");
    assert_eq!(fee_paid["payment"], "captured");
    let w = wallet(&app, &rider_wallet).await;
    assert_eq!((w["balance"].as_i64(), w["held"].as_i64()), (Some(20_000 - fee), Some(0)), "{w}");
    assert_eq!(wallet(&app, &first_wallet).await["balance"], 0, "the driver who gave up earns nothing");
}

#[actix_rt::test]
async fn a_ride_nobody_takes_expires_and_its_hold_is_released() {
    let app = spawn_with(|s| {
        s.mobility.offer_timeout_secs = 1;
        s.mobility.dispatch_window_secs = 3;
    })
    .await;
    let (driver, _) = driver_at(&app, "dale", (48.8567, 2.3523)).await;
    let rider = rider_token(&app, "rick");
    let rider_wallet = funded_wallet(&app, &rider, 5_000).await;
    let q = quote(&app, &rider).await;
    let ride: Value = request(&app, &rider, q["id"].as_str().unwrap(), &rider_wallet).await.json().await.unwrap();
    let id = ride["id"].as_str().unwrap().to_owned();
    assert_eq!(offered(&app, &driver).await, id);
    assert_eq!(act(&app, &driver, &id, "decline", json!({})).await.status(), 200);
    let expired = eventually("the ride expires", Duration::from_secs(15), || async {
        let ride: Value = app.get_as(&format!("/api/v1/mobility/rides/{id}"), &rider).await.json().await.unwrap();
        (ride["state"] == "expired" && ride["payment"] == "released").then_some(ride)
    })
    .await;
    assert_eq!(expired["timeline"].as_array().unwrap().last().unwrap()["by"], "system");
    assert_eq!(wallet(&app, &rider_wallet).await["held"], 0);
    problem(act(&app, &driver, &id, "accept", json!({})).await, 409, "ride_state_conflict").await;
}

#[actix_rt::test]
async fn bad_ride_requests_are_refused_with_their_code_and_hold_nothing() {
    let app = spawn_app().await;
    let rider = rider_token(&app, "rhea");
    let rider_wallet = funded_wallet(&app, &rider, 100_000).await;
    let poor = funded_wallet(&app, &rider, 0).await;
    let q = quote(&app, &rider).await;
    let qid = q["id"].as_str().unwrap().to_owned();

    let other = rider_token(&app, "otto");
    let their_quote = quote(&app, &other).await;
    problem(request(&app, &rider, their_quote["id"].as_str().unwrap(), &rider_wallet).await, 404, "quote_not_found")
        .await;
    problem(request(&app, &rider, &qid, &poor).await, 422, "insufficient_funds").await;
    let usd = {
        let res = post(&app, "/api/v1/fintech/wallets", &rider, &json!({"currency": "USD"})).await;
        res.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned()
    };
    problem(request(&app, &rider, &qid, &usd).await, 422, "currency_mismatch").await;
    assert_eq!(wallet(&app, &rider_wallet).await["held"], 0);

    let first: Value = request(&app, &rider, &qid, &rider_wallet).await.json().await.unwrap();
    let q2 = quote(&app, &rider).await;
    problem(request(&app, &rider, q2["id"].as_str().unwrap(), &rider_wallet).await, 409, "ride_already_open").await;
    let cap = q["fare"].as_i64().unwrap() * 120 / 100;
    assert_eq!(wallet(&app, &rider_wallet).await["held"], cap, "one hold, the open ride's");
    let id = first["id"].as_str().unwrap();
    assert_eq!(act(&app, &rider, id, "cancel", json!({})).await.status(), 200);
    problem(request(&app, &rider, &qid, &rider_wallet).await, 409, "quote_used").await;
    problem(act(&app, &rider, id, "cancel", json!({})).await, 409, "ride_state_conflict").await;

    let url = app.state.settings.database.url.as_ref().unwrap().expose().to_owned();
    let (db, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    actix_rt::spawn(connection);
    let q3 = quote(&app, &rider).await;
    db.execute(
        "UPDATE mobility_quotes SET expires_at = now() - interval '1 second' WHERE id = $1",
        &[&uuid::Uuid::parse_str(q3["id"].as_str().unwrap()).unwrap()],
    )
    .await
    .unwrap();
    problem(request(&app, &rider, q3["id"].as_str().unwrap(), &rider_wallet).await, 422, "quote_expired").await;
    assert_eq!(wallet(&app, &rider_wallet).await["held"], 0);
    let rides: i64 = db.query_one("SELECT count(*) FROM mobility_rides", &[]).await.unwrap().get(0);
    assert_eq!(rides, 1, "refused requests keep nothing");

    problem(app.get_as("/api/v1/mobility/rides?cursor=bogus", &rider).await, 400, "invalid_cursor").await;
    problem(app.get_as("/api/v1/mobility/rides?limit=101", &rider).await, 400, "page_too_large").await;
    problem(app.get_as("/api/v1/mobility/rides/not-a-uuid", &rider).await, 400, "invalid_parameter").await;
    let page: Value = app.get_as("/api/v1/mobility/rides?limit=1", &rider).await.json().await.unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
}

#[actix_rt::test]
async fn two_instances_racing_to_assign_never_give_a_ride_two_drivers_or_a_driver_two_rides() {
    let a = spawn_app().await;
    let (db_url, prefix) = (a.state.settings.database.url.clone().unwrap(), a.state.settings.redis.key_prefix.clone());
    let b = spawn_with(move |s| {
        s.database.url = Some(db_url);
        s.redis.key_prefix = prefix;
    })
    .await;
    let mut drivers = Vec::new();
    for i in 0..4 {
        let app = if i % 2 == 0 { &a } else { &b };
        drivers.push(driver_at(app, &format!("driver-{i}"), (48.8566 + f64::from(i) * 0.0005, 2.3522)).await.0);
    }
    let mut rides = Vec::new();
    for i in 0..4 {
        let app = if i % 2 == 0 { &b } else { &a };
        let rider = rider_token(app, &format!("rider-{i}"));
        let w = funded_wallet(app, &rider, 10_000).await;
        let q = quote(app, &rider).await;
        let ride: Value = request(app, &rider, q["id"].as_str().unwrap(), &w).await.json().await.unwrap();
        rides.push(ride["id"].as_str().unwrap().to_owned());
    }
    // Every driver accepts whatever they are offered, through both instances at once.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut taken = 0;
    while taken < rides.len() && std::time::Instant::now() < deadline {
        for token in &drivers {
            let page: Value = a.get_as("/api/v1/mobility/rides?role=driver", token).await.json().await.unwrap();
            for ride in page["items"].as_array().unwrap().iter().filter(|r| r["state"] == "requested") {
                let id = ride["id"].as_str().unwrap();
                // Both answers are kept or refused by the rules; what counts is checked in the
                // database below.
                let _ =
                    futures::join!(act(&a, token, id, "accept", json!({})), act(&b, token, id, "accept", json!({})));
            }
        }
        let url = a.state.settings.database.url.as_ref().unwrap().expose().to_owned();
        let (db, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
        actix_rt::spawn(connection);
        taken = db
            .query_one("SELECT count(*) FROM mobility_rides WHERE state = 'driver_assigned'", &[])
            .await
            .unwrap()
            .get::<_, i64>(0) as usize;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(taken, rides.len(), "every ride found a driver");
    let url = a.state.settings.database.url.as_ref().unwrap().expose().to_owned();
    let (db, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    actix_rt::spawn(connection);
    let distinct: i64 = db
        .query_one("SELECT count(DISTINCT driver_id) FROM mobility_rides WHERE state = 'driver_assigned'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(distinct as usize, rides.len(), "no driver holds two rides");
    let holders: i64 =
        db.query_one("SELECT count(*) FROM mobility_drivers WHERE ride_id IS NOT NULL", &[]).await.unwrap().get(0);
    assert_eq!(holders as usize, rides.len(), "each assigned ride is held by exactly one driver");
    let mismatched: i64 = db
        .query_one(
            "SELECT count(*) FROM mobility_rides r JOIN mobility_drivers d ON d.id = r.driver_id
             WHERE r.state = 'driver_assigned' AND d.ride_id IS DISTINCT FROM r.id",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(mismatched, 0, "the ride and its driver name each other");
}

#[actix_rt::test]
async fn graphql_requests_reads_and_acts_on_rides_with_the_same_codes() {
    let app = spawn_app().await;
    let (driver, _) = driver_at(&app, "gus", (48.8567, 2.3523)).await;
    let rider = rider_token(&app, "gail");
    let w = funded_wallet(&app, &rider, 10_000).await;
    let q = quote(&app, &rider).await;
    let mutation = format!(
        "mutation {{ requestRide(quote: \"{}\", wallet: \"{w}\", idempotencyKey: \"gq-1\") {{ id state payment quotedFare }} }}",
        q["id"].as_str().unwrap()
    );
    let answer = app.graphql(&rider, &mutation).await;
    let ride = &answer["data"]["requestRide"];
    assert_eq!((ride["state"].as_str(), ride["payment"].as_str()), (Some("requested"), Some("held")), "{answer}");
    let id = ride["id"].as_str().unwrap().to_owned();
    // The same key and request replays the ride; the key for another request is refused.
    let again = app.graphql(&rider, &mutation).await;
    assert_eq!(again["data"]["requestRide"]["id"], id.as_str(), "{again}");
    assert_eq!(offered(&app, &driver).await, id);
    let start =
        format!("mutation {{ rideAction(ride: \"{id}\", action: START, idempotencyKey: \"gq-2\") {{ state }} }}");
    let answer = app.graphql(&driver, &start).await;
    assert_eq!(answer["errors"][0]["extensions"]["code"], "ride_state_conflict", "{answer}");
    let accept = format!(
        "mutation {{ rideAction(ride: \"{id}\", action: ACCEPT, idempotencyKey: \"gq-3\") {{ state driver }} }}"
    );
    let answer = app.graphql(&driver, &accept).await;
    assert_eq!(answer["data"]["rideAction"]["state"], "driver_assigned", "{answer}");
    let read =
        format!("{{ ride(id: \"{id}\") {{ state timeline {{ state by }} }} rides {{ items {{ id }} nextCursor }} }}");
    let answer = app.graphql(&rider, &read).await;
    assert_eq!(answer["data"]["ride"]["timeline"].as_array().unwrap().len(), 2, "{answer}");
    assert_eq!(answer["data"]["rides"]["items"][0]["id"], id.as_str());
    assert_eq!(answer["data"]["rides"]["nextCursor"], serde_json::Value::Null, "one ride, one page");
    for (args, code) in [("first: 0", "page_too_large"), ("after: \"1_x.y\"", "invalid_cursor")] {
        let answer = app.graphql(&rider, &format!("{{ rides({args}) {{ nextCursor }} }}")).await;
        assert_eq!(answer["errors"][0]["extensions"]["code"], code, "{answer}");
    }
    let stranger = rider_token(&app, "gwen");
    let answer = app.graphql(&stranger, &read).await;
    assert_eq!(answer["errors"][0]["extensions"]["code"], "ride_not_found", "{answer}");
    let cancel = format!(
        "mutation {{ rideAction(ride: \"{id}\", action: CANCEL, idempotencyKey: \"gq-4\") {{ state payment }} }}"
    );
    let answer = app.graphql(&rider, &cancel).await;
    assert_eq!(answer["data"]["rideAction"]["state"], "cancelled", "{answer}");
}

#[actix_rt::test]
async fn a_payout_cut_off_after_the_capture_is_finished_by_the_next_instance() {
    let a = spawn_app().await;
    let (driver, driver_wallet) = driver_at(&a, "dirk", (48.8567, 2.3523)).await;
    let rider = rider_token(&a, "rena");
    let rider_wallet = funded_wallet(&a, &rider, 10_000).await;
    let q = quote(&a, &rider).await;
    let fare = q["fare"].as_i64().unwrap();
    let ride: Value = request(&a, &rider, q["id"].as_str().unwrap(), &rider_wallet).await.json().await.unwrap();
    let id = ride["id"].as_str().unwrap().to_owned();
    assert_eq!(offered(&a, &driver).await, id);
    for action in ["accept", "arrive", "start"] {
        assert_eq!(act(&a, &driver, &id, action, json!({})).await.status(), 200, "{action}");
    }
    // The driver's wallet refuses money for now: the fare is captured, the payout is not made.
    let admin = a.token("root", &["admin"]);
    let path = format!("/api/v1/fintech/wallets/{driver_wallet}/freeze");
    assert_eq!(post(&a, &path, &admin, &json!({})).await.status(), 200);
    let driven = json!({"distance_m": q["distance_m"], "duration_s": q["duration_s"]});
    let done: Value = act(&a, &driver, &id, "complete", driven).await.json().await.unwrap();
    assert_eq!((done["state"].as_str(), done["payment"].as_str()), (Some("completed"), Some("held")), "{done}");
    let captured = wallet(&a, &rider_wallet).await;
    assert_eq!((captured["balance"].as_i64(), captured["held"].as_i64()), (Some(10_000 - fare), Some(0)));
    assert_eq!(wallet(&a, &driver_wallet).await["balance"], 0);

    // The instance stops there; another, on the same database, finds the step due and ends it.
    let (db_url, prefix) = (a.state.settings.database.url.clone().unwrap(), a.state.settings.redis.key_prefix.clone());
    drop(a);
    let b = spawn_with(move |s| {
        s.database.url = Some(db_url);
        s.redis.key_prefix = prefix;
    })
    .await;
    let admin = b.token("root", &["admin"]);
    let path = format!("/api/v1/fintech/wallets/{driver_wallet}/unfreeze");
    assert_eq!(post(&b, &path, &admin, &json!({})).await.status(), 200);
    let paid = eventually("the payout finished by the next instance", Duration::from_secs(30), || async {
        let ride: Value = b.get_as(&format!("/api/v1/mobility/rides/{id}"), &rider).await.json().await.unwrap();
        (ride["payment"] == "captured").then_some(ride)
    })
    .await;
    let commission = paid["commission"].as_i64().unwrap();
    assert_eq!(wallet(&b, &driver_wallet).await["balance"].as_i64(), Some(fare - commission));
    let platform = platform_wallet_id("platform:mobility", Currency::parse("EUR").unwrap());
    assert_eq!(wallet(&b, &platform.to_string()).await["balance"].as_i64(), Some(commission));
    let rider_now = wallet(&b, &rider_wallet).await;
    assert_eq!((rider_now["balance"].as_i64(), rider_now["held"].as_i64()), (Some(10_000 - fare), Some(0)));
}

/// What the ledger holds in all: every balance, every held amount, and the money that came in.
async fn ledger_totals(db: &tokio_postgres::Client) -> (i64, i64, i64) {
    let row = db
        .query_one(
            "SELECT (SELECT coalesce(sum(balance), 0)::bigint FROM wallets),
                    (SELECT coalesce(sum(held), 0)::bigint FROM wallets),
                    (SELECT coalesce(sum(CASE WHEN debit_account LIKE 'external:%' THEN amount ELSE -amount END), 0)::bigint
                       FROM ledger_transactions
                      WHERE debit_account LIKE 'external:%' OR credit_account LIKE 'external:%')",
            &[],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1), row.get(2))
}

#[actix_rt::test]
async fn many_rides_on_two_instances_with_cancellations_and_give_ups_conserve_money() {
    // One client polls for every driver and rider: the per-address limits would refuse it.
    let a = spawn_with(|s| {
        s.mobility.cancellation_grace_secs = 0;
        s.rate_limit.enabled = false;
    })
    .await;
    let (db_url, prefix) = (a.state.settings.database.url.clone().unwrap(), a.state.settings.redis.key_prefix.clone());
    let b = spawn_with(move |s| {
        s.database.url = Some(db_url);
        s.redis.key_prefix = prefix;
        s.mobility.cancellation_grace_secs = 0;
        s.rate_limit.enabled = false;
    })
    .await;
    let apps = [&a, &b];
    let mut drivers = Vec::new();
    for i in 0..6 {
        drivers.push(driver_at(apps[i % 2], &format!("j-driver-{i}"), (48.8566 + i as f64 * 0.0003, 2.3522)).await.0);
    }
    let riders: Vec<(String, String)> = futures::future::join_all((0..12).map(|i| async move {
        let app = apps[i % 2];
        let token = rider_token(app, &format!("j-rider-{i}"));
        let wallet = funded_wallet(app, &token, 20_000).await;
        (token, wallet)
    }))
    .await;
    // Riders request at once through alternating instances; a third of them call it off at once.
    let rides: Vec<String> =
        futures::future::join_all(riders.iter().enumerate().map(|(i, (token, wallet))| async move {
            let app = apps[(i + 1) % 2];
            let q = quote(app, token).await;
            let ride: Value = request(app, token, q["id"].as_str().unwrap(), wallet).await.json().await.unwrap();
            let id = ride["id"].as_str().unwrap().to_owned();
            if i % 3 == 0 {
                let _ = act(app, token, &id, "cancel", json!({})).await;
            }
            id
        }))
        .await;
    // Drivers take what they are offered through either instance; every other take is given
    // back once, then rides are driven to the end or called off by their riders midway.
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    let mut given_up = std::collections::HashSet::new();
    let url = a.state.settings.database.url.as_ref().unwrap().expose().to_owned();
    let (db, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    actix_rt::spawn(connection);
    loop {
        let open: i64 = db
            .query_one(
                "SELECT count(*) FROM mobility_rides WHERE state NOT IN ('completed', 'cancelled', 'expired')",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if open == 0 || std::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        for (d, token) in drivers.iter().enumerate() {
            let app = apps[d % 2];
            // Drivers' apps report where they are (a report beyond one a second is refused).
            let here = json!({"lat": 48.8566 + d as f64 * 0.0003, "lon": 2.3522});
            let _ = app.post_as("/api/v1/mobility/drivers/me/location", token, &here).await;
            let page: Value = app.get_as("/api/v1/mobility/rides?role=driver", token).await.json().await.unwrap();
            for ride in page["items"].as_array().unwrap_or_else(|| panic!("{page}")) {
                let id = ride["id"].as_str().unwrap().to_owned();
                let other = apps[(d + 1) % 2];
                match ride["state"].as_str().unwrap() {
                    "requested" => {
                        let _ = futures::join!(
                            act(app, token, &id, "accept", json!({})),
                            act(other, token, &id, "accept", json!({}))
                        );
                    }
                    "driver_assigned"
                        if given_up.insert(id.clone()) && rides.iter().position(|r| *r == id).unwrap() % 2 == 0 =>
                    {
                        let _ = act(other, token, &id, "cancel", json!({})).await;
                    }
                    "driver_assigned" => {
                        let _ = act(app, token, &id, "arrive", json!({})).await;
                    }
                    "driver_arriving" => {
                        let rider = rides.iter().position(|r| *r == id).unwrap();
                        if rider % 5 == 1 {
                            let _ = act(other, &riders[rider].0, &id, "cancel", json!({})).await;
                        } else {
                            let _ = act(other, token, &id, "start", json!({})).await;
                        }
                    }
                    "in_progress" => {
                        let driven = json!({"distance_m": 7_000 + 100 * d, "duration_s": 900});
                        let _ = act(app, token, &id, "complete", driven).await;
                    }
                    _ => {}
                }
            }
        }
    }
    // Every payment step ends, on one instance or the other.
    eventually("every ride paid or released", Duration::from_secs(40), || async {
        let due: i64 = db
            .query_one("SELECT count(*) FROM mobility_rides WHERE saga_open OR state NOT IN ('completed', 'cancelled', 'expired')", &[])
            .await
            .unwrap()
            .get(0);
        (due == 0).then_some(())
    })
    .await;
    let (balances, held, net_in) = ledger_totals(&db).await;
    assert_eq!(balances, net_in, "money is neither made nor lost");
    assert_eq!(held, 0, "no fare stays held");
    assert_eq!(net_in, 12 * 20_000);
    let (captured, completed): (i64, i64) = {
        let row = db
            .query_one(
                "SELECT coalesce(sum(CASE WHEN state = 'completed' THEN (body->>'fare')::bigint
                                          ELSE (body->'cancellation'->>'fee')::bigint END), 0)::bigint,
                        count(*) FILTER (WHERE state = 'completed')
                   FROM mobility_rides WHERE payment = 'captured'",
                &[],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1))
    };
    assert!(completed > 0, "some rides were driven to the end");
    let riders_paid: i64 = db
        .query_one(
            "SELECT (12 * 20000 - sum(balance))::bigint FROM wallets WHERE owner_index IS NOT NULL AND id = ANY($1)",
            &[&riders.iter().map(|(_, w)| uuid::Uuid::parse_str(w).unwrap()).collect::<Vec<_>>()],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(riders_paid, captured, "riders paid exactly the fares and fees captured");
    let others: i64 = balances - (12 * 20_000 - captured);
    assert_eq!(others, captured, "drivers and the platform received exactly that");
}

#[actix_rt::test]
async fn a_driver_not_heard_from_for_thirty_seconds_is_not_offered_rides() {
    let app = spawn_app().await;
    let (near, near_wallet) = driver_at(&app, "nell", (48.8567, 2.3523)).await;
    let (far, _) = driver_at(&app, "fay", (48.8600, 2.3600)).await;
    // The nearest driver's last report is 31 s old.
    let me: Value = app.get_as("/api/v1/mobility/drivers/me", &near).await.json().await.unwrap();
    let url = app.state.settings.redis.url.as_ref().unwrap().expose().to_owned();
    let mut redis = redis::Client::open(url).unwrap().get_multiplexed_async_connection().await.unwrap();
    let stale = chrono::Utc::now().timestamp_millis() - 31_000;
    let seen = format!("{}mobility:seen", app.state.settings.redis.key_prefix);
    let _: i64 = redis::cmd("ZADD")
        .arg(&seen)
        .arg("XX")
        .arg("CH")
        .arg(stale)
        .arg(me["id"].as_str().unwrap())
        .query_async(&mut redis)
        .await
        .unwrap();
    let rider = rider_token(&app, "sid");
    let w = funded_wallet(&app, &rider, 10_000).await;
    let q = quote(&app, &rider).await;
    let ride: Value = request(&app, &rider, q["id"].as_str().unwrap(), &w).await.json().await.unwrap();
    assert_eq!(offered(&app, &far).await, ride["id"].as_str().unwrap(), "the fresh driver, farther away");
    let page: Value = app.get_as("/api/v1/mobility/rides?role=driver", &near).await.json().await.unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 0, "nothing offered to the silent driver: {page}");
    assert_eq!(wallet(&app, &near_wallet).await["balance"], 0);
}
