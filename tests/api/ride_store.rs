//! The ride storage contract, run against PostgreSQL (a database of its own per case, migrated)
//! and against the in-memory store: both must give the same answers to the same writes.

use beryl_core_api::{
    adapters::{
        mobility::{DriverRow, Inserted, KeyRow, Offer, RideRow, RideWrite, Rows, Written},
        outbox::MemOutbox,
    },
    domain::{events::DomainEvent, privacy::BlindIndex},
};
use chrono::{DateTime, Duration, SubsecRound, Utc};
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{contract, migrated_pool};

fn memory() -> Rows {
    Rows::memory(MemOutbox::new())
}

async fn postgres() -> Rows {
    Rows::Postgres(migrated_pool().await)
}

// Every case, once on each store.
contract!(
    a_ride_reads_back_as_written,
    a_quote_pays_for_one_ride,
    a_rider_has_one_open_ride,
    a_kept_key_answers_again_and_writes_nothing,
    a_stale_write_changes_nothing,
    two_rides_cannot_take_one_driver,
    one_pending_offer_per_ride_and_per_driver,
    only_an_available_driver_is_offered_a_ride,
    a_write_closes_only_a_pending_offer,
    rides_page_newest_first,
    rides_to_resume_and_to_dispatch_come_oldest_first,
    erasure_and_retention_forget_the_personal_fields,
    rides_are_counted_by_state_and_mode,
    the_outbox_gets_the_events_of_what_was_written,
);

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_750_000_000 + secs, 0).unwrap()
}

fn index(n: u8) -> BlindIndex {
    BlindIndex([n; 32])
}

/// A new ride of rider `n`, requested at `at(secs)`.
fn ride(n: u8, secs: i64) -> RideRow {
    RideRow {
        id: Uuid::now_v7(),
        rider_index: index(n),
        rider_sealed: Some(format!("sealed-rider-{n}")),
        points_sealed: Some(format!("sealed-points-{n}-{secs}")),
        quote_id: Uuid::now_v7(),
        driver_id: None,
        state: "requested".into(),
        mode: "car".into(),
        payment: "held".into(),
        saga_open: false,
        body: json!({"fare": {"amount": 1250, "currency": "EUR"}, "stops": [1, 2], "note": "café"}),
        version: 1,
        requested_at: at(secs),
        updated_at: at(secs),
    }
}

/// `r` as first stored in `state`.
fn stored_as(r: RideRow, state: &str) -> RideRow {
    RideRow { state: state.into(), ..r }
}

/// The next version of `r`, changed by `change`.
fn next(r: &RideRow, change: impl FnOnce(&mut RideRow)) -> RideRow {
    let mut n = RideRow { version: r.version + 1, updated_at: r.updated_at + Duration::seconds(1), ..r.clone() };
    change(&mut n);
    n
}

fn assigned(r: &RideRow, driver: Uuid) -> RideRow {
    next(r, |n| {
        n.state = "driver_assigned".into();
        n.driver_id = Some(driver);
    })
}

fn state(r: &RideRow, state: &str) -> RideRow {
    next(r, |n| n.state = state.into())
}

fn driver(owner: u8) -> DriverRow {
    DriverRow {
        id: Uuid::now_v7(),
        owner_index: Some(BlindIndex([owner; 32])),
        owner_sealed: Some(format!("sealed-owner-{owner}")),
        mode: "car".into(),
        plate_sealed: Some("sealed-plate".into()),
        seats: 4,
        wallet_id: Uuid::now_v7(),
        availability: "available".into(),
        ride_id: None,
        rating_sum: 0,
        rating_count: 0,
        version: 1,
        created_at: at(0),
        updated_at: at(0),
    }
}

/// The next version of driver `d`, holding `ride` (or free).
fn holding(d: &DriverRow, ride: Option<Uuid>) -> DriverRow {
    DriverRow {
        version: d.version + 1,
        availability: if ride.is_some() { "on_ride" } else { "available" }.into(),
        ride_id: ride,
        updated_at: d.updated_at + Duration::seconds(1),
        ..d.clone()
    }
}

fn event(r: &RideRow, what: &str) -> DomainEvent {
    DomainEvent {
        id: Uuid::now_v7(),
        event_type: format!("mobility.ride.{what}"),
        schema_version: 1,
        domain: "mobility".into(),
        aggregate_id: r.id.to_string(),
        seq: r.version,
        request_id: Some("req-1".into()),
        occurred_at: r.updated_at,
        data: json!({"state": r.state}),
    }
}

fn key(scope: u8, key: &str, r: &RideRow) -> KeyRow {
    KeyRow {
        scope: index(scope),
        key: key.into(),
        fingerprint: format!("fingerprint-{key}"),
        ride_id: r.id,
        version: r.version,
        expires_at: (Utc::now() + Duration::hours(1)).trunc_subsecs(6),
    }
}

fn offer(ride: &RideRow, driver: Uuid, secs: i64) -> Offer {
    Offer { ride_id: ride.id, driver_id: driver, offered_at: at(secs), expires_at: at(secs + 15), answer: None }
}

fn write<'a>(r: &'a RideRow, events: &'a [DomainEvent]) -> RideWrite<'a> {
    RideWrite { ride: r, driver: None, offer_answer: None, key: None, events }
}

async fn insert(rows: &Rows, r: &RideRow) {
    assert_eq!(rows.insert_ride(r, None, &[]).await.unwrap(), Inserted::Inserted, "{r:?}");
}

/// The id of a new available driver of owner `n`.
async fn available(rows: &Rows, n: u8) -> Uuid {
    let d = driver(n);
    assert!(rows.insert_driver(&d).await.unwrap());
    d.id
}

async fn driver_row(rows: &Rows, id: Uuid) -> DriverRow {
    rows.drivers(&[id]).await.unwrap().remove(0)
}

/// Every batch in the outbox, oldest first.
async fn outbox(rows: &Rows) -> Vec<Vec<DomainEvent>> {
    match rows {
        Rows::Memory(_, out) => out.fetch(usize::MAX).into_iter().map(|b| b.events).collect(),
        Rows::Postgres(pool) => {
            let conn = pool.get().await.unwrap();
            let batches = conn.query("SELECT events FROM outbox ORDER BY id", &[]).await.unwrap();
            batches.iter().map(|b| serde_json::from_slice(b.get::<_, &[u8]>(0)).unwrap()).collect()
        }
    }
}

async fn a_ride_reads_back_as_written(rows: Rows) {
    let r = ride(1, 0);
    let events = [event(&r, "requested")];
    assert_eq!(rows.insert_ride(&r, None, &events).await.unwrap(), Inserted::Inserted);
    assert_eq!(rows.ride(r.id).await.unwrap(), Some(r.clone()));
    assert_eq!(rows.ride(Uuid::now_v7()).await.unwrap(), None);

    // A write sets every column.
    let d = Uuid::now_v7();
    let changed = next(&r, |n| {
        n.rider_sealed = None;
        n.points_sealed = None;
        n.driver_id = Some(d);
        n.state = "cancelled".into();
        n.mode = "bike".into();
        n.payment = "released".into();
        n.saga_open = true;
        n.body = json!({"cancelled_by": "rider", "fee": null});
        n.requested_at = at(-5);
    });
    assert_eq!(rows.write_ride(write(&changed, &[])).await.unwrap(), Written::Written);
    assert_eq!(rows.ride(r.id).await.unwrap(), Some(changed));

    // Time is kept to the microsecond.
    let fine = RideRow { requested_at: at(1) + Duration::nanoseconds(1_234_567), ..ride(2, 0) };
    insert(&rows, &fine).await;
    let kept = rows.ride(fine.id).await.unwrap().unwrap();
    assert_eq!(kept.requested_at, at(1) + Duration::microseconds(1_234));
}

async fn a_quote_pays_for_one_ride(rows: Rows) {
    let first = ride(1, 0);
    insert(&rows, &first).await;

    let other_rider = RideRow { quote_id: first.quote_id, ..ride(2, 1) };
    assert_eq!(rows.insert_ride(&other_rider, None, &[]).await.unwrap(), Inserted::QuoteUsed);
    assert_eq!(rows.ride(other_rider.id).await.unwrap(), None);

    // The rider's open ride would refuse it too: the quote is what is said.
    let same_rider = RideRow { quote_id: first.quote_id, ..ride(1, 2) };
    assert_eq!(rows.insert_ride(&same_rider, None, &[]).await.unwrap(), Inserted::QuoteUsed);

    // The same ride inserted again.
    let done = stored_as(first.clone(), "completed");
    assert_eq!(rows.insert_ride(&done, None, &[]).await.unwrap(), Inserted::QuoteUsed);
    assert_eq!(rows.ride(first.id).await.unwrap(), Some(first));
}

async fn a_rider_has_one_open_ride(rows: Rows) {
    let first = ride(1, 0);
    insert(&rows, &first).await;
    let second = ride(1, 10);
    assert_eq!(rows.insert_ride(&second, None, &[]).await.unwrap(), Inserted::RideOpen);
    assert_eq!(rows.ride(second.id).await.unwrap(), None);
    insert(&rows, &ride(2, 10)).await;

    // Open in every open state.
    let mut current = first.clone();
    for s in ["driver_assigned", "driver_arriving", "in_progress"] {
        current = state(&current, s);
        assert_eq!(rows.write_ride(write(&current, &[])).await.unwrap(), Written::Written);
        assert_eq!(rows.insert_ride(&second, None, &[]).await.unwrap(), Inserted::RideOpen, "{s}");
    }

    let completed = state(&current, "completed");
    assert_eq!(rows.write_ride(write(&completed, &[])).await.unwrap(), Written::Written);
    insert(&rows, &second).await;
    assert_eq!(rows.insert_ride(&ride(1, 20), None, &[]).await.unwrap(), Inserted::RideOpen);

    // A closed ride cannot be opened again beside the open one.
    let reopened = state(&completed, "requested");
    assert_eq!(rows.write_ride(write(&reopened, &[])).await.unwrap(), Written::Stale);
    assert_eq!(rows.ride(first.id).await.unwrap(), Some(completed));
}

async fn a_kept_key_answers_again_and_writes_nothing(rows: Rows) {
    let r = ride(1, 0);
    let k = key(1, "k-1", &r);
    let events = [event(&r, "requested")];
    assert_eq!(rows.insert_ride(&r, Some(&k), &events).await.unwrap(), Inserted::Inserted);
    assert_eq!(rows.key(&index(1), "k-1").await.unwrap(), Some(k.clone()));
    assert_eq!(rows.key(&index(2), "k-1").await.unwrap(), None);

    // The same key, sent with another ride.
    let other = ride(2, 5);
    let reused = KeyRow { ride_id: other.id, fingerprint: "another".into(), ..k.clone() };
    let answer = rows.insert_ride(&other, Some(&reused), &[event(&other, "requested")]).await.unwrap();
    assert_eq!(answer, Inserted::KeyTaken(k.clone()));
    assert_eq!(rows.ride(other.id).await.unwrap(), None);

    // And with a change.
    let changed = state(&r, "cancelled");
    let taken = RideWrite { key: Some(&reused), ..write(&changed, &events) };
    assert_eq!(rows.write_ride(taken).await.unwrap(), Written::KeyTaken(k.clone()));
    assert_eq!(rows.ride(r.id).await.unwrap(), Some(r.clone()));
    assert_eq!(rows.key(&index(1), "k-1").await.unwrap(), Some(k.clone()));
    assert_eq!(outbox(&rows).await.len(), 1, "nothing was written");

    // A new key is kept with its change, and not with a stale one.
    let k2 = key(1, "k-2", &changed);
    assert_eq!(rows.write_ride(RideWrite { key: Some(&k2), ..write(&changed, &[]) }).await.unwrap(), Written::Written);
    assert_eq!(rows.key(&index(1), "k-2").await.unwrap(), Some(k2));
    let k3 = key(1, "k-3", &changed);
    assert_eq!(rows.write_ride(RideWrite { key: Some(&k3), ..write(&changed, &[]) }).await.unwrap(), Written::Stale);
    assert_eq!(rows.key(&index(1), "k-3").await.unwrap(), None);

    // An expired key is absent: claimed again, and purged.
    let lapsed = KeyRow { key: "k-old".into(), expires_at: (Utc::now() - Duration::hours(1)).trunc_subsecs(6), ..k };
    let r3 = ride(3, 0);
    assert_eq!(rows.insert_ride(&r3, Some(&lapsed), &[]).await.unwrap(), Inserted::Inserted);
    assert_eq!(rows.key(&index(1), "k-old").await.unwrap(), None);
    let r4 = ride(4, 0);
    let anew = key(1, "k-old", &r4);
    assert_eq!(rows.insert_ride(&r4, Some(&anew), &[]).await.unwrap(), Inserted::Inserted);
    assert_eq!(rows.key(&index(1), "k-old").await.unwrap(), Some(anew));
    let gone = KeyRow { key: "k-gone".into(), ..lapsed };
    let r6 = ride(6, 0);
    assert_eq!(rows.insert_ride(&r6, Some(&gone), &[]).await.unwrap(), Inserted::Inserted);
    assert_eq!(rows.purge_keys(Utc::now(), 10).await.unwrap(), 1);
    assert_eq!(rows.purge_keys(Utc::now(), 10).await.unwrap(), 0);
    assert_eq!(rows.purge_keys(Utc::now() + Duration::hours(2), 2).await.unwrap(), 2, "at most a batch");
    assert_eq!(rows.purge_keys(Utc::now() + Duration::hours(2), 2).await.unwrap(), 1);
    assert_eq!(rows.key(&index(1), "k-1").await.unwrap(), None);
}

async fn a_stale_write_changes_nothing(rows: Rows) {
    let r = ride(1, 0);
    insert(&rows, &r).await;
    let v2 = next(&r, |n| n.body = json!({"v": 2}));
    assert_eq!(rows.write_ride(write(&v2, &[event(&v2, "changed")])).await.unwrap(), Written::Written);

    // Made from version 1, it comes second.
    let late = state(&r, "cancelled");
    assert_eq!(rows.write_ride(write(&late, &[event(&late, "cancelled")])).await.unwrap(), Written::Stale);
    // A version ahead of the stored one.
    let ahead = state(&state(&v2, "cancelled"), "expired");
    assert_eq!(rows.write_ride(write(&ahead, &[])).await.unwrap(), Written::Stale);
    // A ride never inserted.
    let unknown = state(&ride(2, 0), "cancelled");
    assert_eq!(rows.write_ride(write(&unknown, &[])).await.unwrap(), Written::Stale);
    assert_eq!(rows.ride(unknown.id).await.unwrap(), None);

    // The ride is fresh, the driver is not.
    let d = driver(1);
    assert!(rows.insert_driver(&d).await.unwrap());
    let v3 = assigned(&v2, d.id);
    let stale_driver = holding(&holding(&d, None), Some(r.id));
    let w = RideWrite { driver: Some(&stale_driver), ..write(&v3, &[]) };
    assert_eq!(rows.write_ride(w).await.unwrap(), Written::Stale);
    assert_eq!(rows.ride(r.id).await.unwrap(), Some(v2));
    assert_eq!(driver_row(&rows, d.id).await, d);
    assert_eq!(outbox(&rows).await.len(), 1);
}

async fn two_rides_cannot_take_one_driver(rows: Rows) {
    let (d, d2) = (driver(1), driver(2));
    assert!(rows.insert_driver(&d).await.unwrap());
    assert!(rows.insert_driver(&d2).await.unwrap());
    let (a, b) = (ride(1, 0), ride(2, 1));
    insert(&rows, &a).await;
    insert(&rows, &b).await;

    let a2 = assigned(&a, d.id);
    let d_a = holding(&d, Some(a.id));
    assert_eq!(rows.write_ride(RideWrite { driver: Some(&d_a), ..write(&a2, &[]) }).await.unwrap(), Written::Written);
    assert_eq!(rows.ride(a.id).await.unwrap(), Some(a2.clone()));
    assert_eq!(driver_row(&rows, d.id).await, d_a);

    // B decided from the same state of the driver: it comes second.
    let b2 = assigned(&b, d.id);
    let d_b = holding(&d, Some(b.id));
    assert_eq!(rows.write_ride(RideWrite { driver: Some(&d_b), ..write(&b2, &[]) }).await.unwrap(), Written::Stale);
    // From the driver's latest state, A still holds the driver.
    let d_b = holding(&d_a, Some(b.id));
    assert_eq!(rows.write_ride(RideWrite { driver: Some(&d_b), ..write(&b2, &[]) }).await.unwrap(), Written::Stale);
    assert_eq!(rows.write_ride(write(&b2, &[])).await.unwrap(), Written::Stale);
    // Another driver cannot take A, which the first one holds.
    let a_other = next(&a2, |n| n.driver_id = Some(d2.id));
    let d2_a = holding(&d2, Some(a.id));
    let w = RideWrite { driver: Some(&d2_a), ..write(&a_other, &[]) };
    assert_eq!(rows.write_ride(w).await.unwrap(), Written::Stale);
    assert_eq!(rows.ride(a.id).await.unwrap(), Some(a2.clone()));
    assert_eq!(rows.ride(b.id).await.unwrap(), Some(b.clone()));
    assert_eq!(driver_row(&rows, d.id).await, d_a);
    assert_eq!(driver_row(&rows, d2.id).await, d2);

    // Once A is over and the driver free, B takes them.
    let a3 = state(&a2, "completed");
    let d_free = holding(&d_a, None);
    assert_eq!(
        rows.write_ride(RideWrite { driver: Some(&d_free), ..write(&a3, &[]) }).await.unwrap(),
        Written::Written
    );
    let d_b = holding(&d_free, Some(b.id));
    assert_eq!(rows.write_ride(RideWrite { driver: Some(&d_b), ..write(&b2, &[]) }).await.unwrap(), Written::Written);
    assert_eq!(driver_row(&rows, d.id).await, d_b);
    assert_eq!(rows.ride(b.id).await.unwrap(), Some(b2));
}

async fn one_pending_offer_per_ride_and_per_driver(rows: Rows) {
    let (a, b) = (ride(1, 0), ride(2, 1));
    insert(&rows, &a).await;
    insert(&rows, &b).await;
    let (d1, d2) = (available(&rows, 1).await, available(&rows, 2).await);

    let a1 = offer(&a, d1, 2);
    assert!(rows.offer(&a1).await.unwrap());
    assert!(!rows.offer(&offer(&a, d2, 3)).await.unwrap(), "the ride has a pending offer");
    assert!(!rows.offer(&offer(&b, d1, 3)).await.unwrap(), "the driver has a pending offer");
    assert_eq!(rows.pending_offer_of_ride(a.id).await.unwrap(), Some(a1.clone()));
    assert_eq!(rows.pending_offer_of_driver(d1).await.unwrap(), Some(a1));
    assert_eq!(rows.pending_offer_of_ride(b.id).await.unwrap(), None);
    assert_eq!(rows.pending_offer_of_driver(d2).await.unwrap(), None);
    assert_eq!(rows.drivers_with_pending_offers(&[d1, d2, Uuid::now_v7()]).await.unwrap(), [d1]);
    assert!(rows.offered(a.id, d1).await.unwrap());
    assert!(!rows.offered(a.id, d2).await.unwrap());
    assert!(!rows.offered(b.id, d1).await.unwrap());

    assert!(rows.answer_offer(a.id, d1, "declined").await.unwrap());
    assert!(!rows.answer_offer(a.id, d1, "accepted").await.unwrap(), "answered once");
    assert!(!rows.answer_offer(b.id, d2, "accepted").await.unwrap(), "never offered");
    assert_eq!(rows.pending_offer_of_ride(a.id).await.unwrap(), None);
    assert_eq!(rows.pending_offer_of_driver(d1).await.unwrap(), None);
    assert!(rows.drivers_with_pending_offers(&[d1, d2]).await.unwrap().is_empty());
    assert!(rows.offered(a.id, d1).await.unwrap());
    assert!(!rows.offer(&offer(&a, d1, 4)).await.unwrap(), "offered before");

    // The answer freed both.
    let a2 = offer(&a, d2, 5);
    let b1 = offer(&b, d1, 5);
    assert!(rows.offer(&a2).await.unwrap());
    assert!(rows.offer(&b1).await.unwrap());
    assert_eq!(rows.pending_offer_of_ride(a.id).await.unwrap(), Some(a2));
    assert_eq!(rows.pending_offer_of_driver(d1).await.unwrap(), Some(b1));
}

async fn only_an_available_driver_is_offered_a_ride(rows: Rows) {
    let (a, b) = (ride(1, 0), ride(2, 1));
    insert(&rows, &a).await;
    insert(&rows, &b).await;
    let (d, unknown) = (driver(1), Uuid::now_v7());
    assert!(rows.insert_driver(&d).await.unwrap());

    // The driver took ride A (no offer pending any more): B is not offered to them.
    let a2 = assigned(&a, d.id);
    let d_a = holding(&d, Some(a.id));
    assert_eq!(rows.write_ride(RideWrite { driver: Some(&d_a), ..write(&a2, &[]) }).await.unwrap(), Written::Written);
    assert!(!rows.offer(&offer(&b, d.id, 2)).await.unwrap(), "on a ride");
    assert!(!rows.offer(&offer(&b, unknown, 2)).await.unwrap(), "no such driver");
    assert_eq!(rows.pending_offer_of_ride(b.id).await.unwrap(), None);
    assert!(!rows.offered(b.id, d.id).await.unwrap());

    // Free again, they are.
    let d_free = holding(&d_a, None);
    let a3 = state(&a2, "completed");
    assert_eq!(
        rows.write_ride(RideWrite { driver: Some(&d_free), ..write(&a3, &[]) }).await.unwrap(),
        Written::Written
    );
    assert!(rows.offer(&offer(&b, d.id, 3)).await.unwrap());
}

async fn a_write_closes_only_a_pending_offer(rows: Rows) {
    let (a, b) = (ride(1, 0), ride(2, 1));
    insert(&rows, &a).await;
    insert(&rows, &b).await;
    let (d, d2, d3) = (available(&rows, 1).await, available(&rows, 2).await, available(&rows, 3).await);
    assert!(rows.offer(&offer(&a, d, 2)).await.unwrap());
    assert!(rows.offer(&offer(&b, d2, 2)).await.unwrap());
    let a2 = next(&a, |n| n.body = json!({"declined_by": d.to_string()}));

    // Another ride's offer, and an offer never made.
    for other in [d2, Uuid::now_v7()] {
        let w = RideWrite { offer_answer: Some((other, "accepted")), ..write(&a2, &[]) };
        assert_eq!(rows.write_ride(w).await.unwrap(), Written::Stale);
    }
    assert_eq!(rows.pending_offer_of_ride(b.id).await.unwrap(), Some(offer(&b, d2, 2)));
    assert_eq!(rows.ride(a.id).await.unwrap(), Some(a.clone()));

    let w = RideWrite { offer_answer: Some((d, "declined")), ..write(&a2, &[]) };
    assert_eq!(rows.write_ride(w).await.unwrap(), Written::Written);
    assert_eq!(rows.pending_offer_of_ride(a.id).await.unwrap(), None);
    assert_eq!(rows.pending_offer_of_driver(d).await.unwrap(), None);
    assert!(rows.offered(a.id, d).await.unwrap());
    assert!(!rows.answer_offer(a.id, d, "accepted").await.unwrap(), "closed by the write");

    // Already answered: by this kind of write, or on its own.
    let a3 = next(&a2, |n| n.body = json!({"v": 3}));
    let w = RideWrite { offer_answer: Some((d, "declined")), ..write(&a3, &[]) };
    assert_eq!(rows.write_ride(w).await.unwrap(), Written::Stale);
    assert!(rows.offer(&offer(&a, d3, 3)).await.unwrap());
    assert!(rows.answer_offer(a.id, d3, "timed_out").await.unwrap());
    let w = RideWrite { offer_answer: Some((d3, "accepted")), ..write(&a3, &[]) };
    assert_eq!(rows.write_ride(w).await.unwrap(), Written::Stale);
    assert_eq!(rows.ride(a.id).await.unwrap(), Some(a2));
}

enum Whose {
    Rider(BlindIndex),
    Driver(Uuid),
}

/// Every page of `whose` rides, `limit` at a time, each from the last one's cursor.
async fn pages(rows: &Rows, whose: &Whose, limit: usize) -> Vec<Vec<RideRow>> {
    let (mut found, mut before) = (Vec::new(), None);
    loop {
        let page = match whose {
            Whose::Rider(r) => rows.rides_of_rider(r, before, limit).await.unwrap(),
            Whose::Driver(d) => rows.rides_of_driver(*d, before, limit).await.unwrap(),
        };
        let Some(last) = page.last() else { return found };
        assert!(page.len() <= limit);
        assert!(found.len() < 100, "the cursor does not move on");
        before = Some((last.requested_at, last.id));
        found.push(page);
    }
}

fn newest_first(mut rides: Vec<RideRow>) -> Vec<RideRow> {
    rides.sort_by_key(|r| std::cmp::Reverse((r.requested_at, r.id)));
    rides
}

async fn rides_page_newest_first(rows: Rows) {
    // Rider 1: four rides over, two of them requested at the same instant, and one open.
    let mut theirs: Vec<RideRow> = [0, 10, 20, 20].into_iter().map(|s| stored_as(ride(1, s), "completed")).collect();
    theirs.push(ride(1, 40));
    for r in &theirs {
        insert(&rows, r).await;
    }
    insert(&rows, &ride(2, 25)).await;
    let theirs = newest_first(theirs);
    let walked = pages(&rows, &Whose::Rider(index(1)), 2).await;
    assert_eq!(walked.iter().map(Vec::len).collect::<Vec<_>>(), [2, 2, 1]);
    assert_eq!(walked.concat(), theirs);
    assert_eq!(pages(&rows, &Whose::Rider(index(1)), 10).await, std::slice::from_ref(&theirs));
    let last = &theirs[4];
    assert!(rows.rides_of_rider(&index(1), Some((last.requested_at, last.id)), 10).await.unwrap().is_empty());
    assert!(rows.rides_of_rider(&index(9), None, 10).await.unwrap().is_empty());

    // A driver's: those they drove and those they were offered, whatever the answer, once each.
    let (d, other) = (available(&rows, 1).await, available(&rows, 2).await);
    let drove = RideRow { driver_id: Some(d), ..stored_as(ride(3, 5), "completed") };
    let drove_offered = RideRow { driver_id: Some(d), ..stored_as(ride(4, 15), "completed") };
    let declined = RideRow { driver_id: Some(other), ..stored_as(ride(5, 35), "completed") };
    let pending = ride(6, 45);
    let not_theirs = RideRow { driver_id: Some(other), ..stored_as(ride(7, 50), "completed") };
    for r in [&drove, &drove_offered, &declined, &pending, &not_theirs] {
        insert(&rows, r).await;
    }
    assert!(rows.offer(&offer(&drove_offered, d, 15)).await.unwrap());
    assert!(rows.answer_offer(drove_offered.id, d, "accepted").await.unwrap());
    assert!(rows.offer(&offer(&declined, d, 35)).await.unwrap());
    assert!(rows.answer_offer(declined.id, d, "declined").await.unwrap());
    assert!(rows.offer(&offer(&not_theirs, other, 50)).await.unwrap());
    assert!(rows.offer(&offer(&pending, d, 45)).await.unwrap());
    let expected = vec![pending, declined, drove_offered, drove];
    for limit in [1, 3, 10] {
        assert_eq!(pages(&rows, &Whose::Driver(d), limit).await.concat(), expected, "{limit} at a time");
    }
    assert_eq!(pages(&rows, &Whose::Driver(d), 3).await.len(), 2);
    assert!(rows.rides_of_driver(Uuid::now_v7(), None, 10).await.unwrap().is_empty());
}

async fn rides_to_resume_and_to_dispatch_come_oldest_first(rows: Rows) {
    assert_eq!(rows.payments_due().await.unwrap(), (0, None));
    let r1 = RideRow { saga_open: true, updated_at: at(50), ..ride(1, 0) };
    let r2 = RideRow { saga_open: true, updated_at: at(20), ..ride(2, 10) };
    let r3 = ride(3, 20);
    let r4 = RideRow { saga_open: true, updated_at: at(30), ..stored_as(ride(4, 5), "completed") };
    for r in [&r1, &r2, &r3, &r4] {
        insert(&rows, r).await;
    }
    assert_eq!(rows.rides_to_resume(10).await.unwrap(), [r2.clone(), r4.clone(), r1.clone()]);
    assert_eq!(rows.rides_to_resume(2).await.unwrap(), [r2.clone(), r4.clone()]);
    assert_eq!(rows.payments_due().await.unwrap(), (3, Some(at(20))));
    assert_eq!(rows.requested_rides(10).await.unwrap(), [r1.clone(), r2.clone(), r3.clone()]);
    assert_eq!(rows.requested_rides(1).await.unwrap(), std::slice::from_ref(&r1));

    // Once assigned a ride is no longer waiting; once its saga is closed it is not resumed.
    let r1 = assigned(&r1, Uuid::now_v7());
    assert_eq!(rows.write_ride(write(&r1, &[])).await.unwrap(), Written::Written);
    let r2 = next(&r2, |n| n.saga_open = false);
    assert_eq!(rows.write_ride(write(&r2, &[])).await.unwrap(), Written::Written);
    assert_eq!(rows.requested_rides(10).await.unwrap(), [r2, r3]);
    assert_eq!(rows.rides_to_resume(10).await.unwrap(), [r4, r1]);
    assert_eq!(rows.payments_due().await.unwrap(), (2, Some(at(30))));
}

async fn erasure_and_retention_forget_the_personal_fields(rows: Rows) {
    let a = stored_as(ride(1, 0), "completed");
    let b = ride(1, 10);
    let c = stored_as(ride(2, 5), "completed");
    for r in [&a, &b, &c] {
        insert(&rows, r).await;
    }
    assert_eq!(rows.erase_rides(&index(1)).await.unwrap(), 2);
    for r in [&a, &b] {
        let erased = RideRow { rider_sealed: None, points_sealed: None, ..r.clone() };
        assert_eq!(rows.ride(r.id).await.unwrap(), Some(erased));
    }
    assert_eq!(rows.ride(c.id).await.unwrap(), Some(c.clone()));
    assert_eq!(rows.erase_rides(&index(9)).await.unwrap(), 0);

    // Retention: past the cutoff and over, oldest first, a batch at a time.
    let old_done = stored_as(ride(3, 0), "completed");
    let old_cancelled = stored_as(ride(4, 10), "cancelled");
    let old_open = RideRow { driver_id: Some(Uuid::now_v7()), ..stored_as(ride(5, 20), "in_progress") };
    let old_bare = RideRow { points_sealed: None, ..stored_as(ride(6, 1), "expired") };
    let recent_done = stored_as(ride(7, 200), "completed");
    for r in [&old_done, &old_cancelled, &old_open, &old_bare, &recent_done] {
        insert(&rows, r).await;
    }
    let cutoff = at(100);
    assert_eq!(rows.expire_points(cutoff, 2).await.unwrap(), 2);
    let points = |r: Option<RideRow>| r.unwrap().points_sealed;
    assert_eq!(points(rows.ride(old_done.id).await.unwrap()), None);
    assert_eq!(points(rows.ride(c.id).await.unwrap()), None);
    assert_eq!(points(rows.ride(old_cancelled.id).await.unwrap()), old_cancelled.points_sealed);
    assert_eq!(rows.expire_points(cutoff, 2).await.unwrap(), 1);
    assert_eq!(rows.expire_points(cutoff, 2).await.unwrap(), 0);
    assert_eq!(points(rows.ride(old_cancelled.id).await.unwrap()), None);
    assert_eq!(rows.ride(old_open.id).await.unwrap(), Some(old_open), "an open ride keeps its points");
    assert_eq!(rows.ride(recent_done.id).await.unwrap(), Some(recent_done));
    assert_eq!(rows.ride(c.id).await.unwrap().unwrap().rider_sealed, c.rider_sealed, "the rider stays");
}

async fn rides_are_counted_by_state_and_mode(rows: Rows) {
    assert!(rows.ride_counts().await.unwrap().is_empty());
    let bike = RideRow { mode: "bike".into(), ..ride(2, 0) };
    for r in [
        ride(1, 0),
        bike,
        stored_as(ride(3, 0), "completed"),
        stored_as(ride(4, 0), "completed"),
        stored_as(ride(5, 0), "driver_arriving"),
        stored_as(ride(6, 0), "cancelled"),
    ] {
        insert(&rows, &r).await;
    }
    let counts = rows.ride_counts().await.unwrap();
    let expected = [
        ("cancelled", "car", 1),
        ("completed", "car", 2),
        ("driver_arriving", "car", 1),
        ("requested", "bike", 1),
        ("requested", "car", 1),
    ];
    let expected: Vec<(String, String, i64)> =
        expected.iter().map(|(s, m, n)| ((*s).to_owned(), (*m).to_owned(), *n)).collect();
    assert_eq!(counts, expected);
}

async fn the_outbox_gets_the_events_of_what_was_written(rows: Rows) {
    let r = ride(1, 0);
    let requested = vec![event(&r, "requested")];
    assert_eq!(rows.insert_ride(&r, None, &requested).await.unwrap(), Inserted::Inserted);
    assert_eq!(outbox(&rows).await, std::slice::from_ref(&requested));

    // One batch for all the events of a change.
    let r2 = state(&r, "cancelled");
    let cancelled = vec![event(&r2, "cancelled"), event(&r2, "payment_released")];
    assert_eq!(rows.write_ride(write(&r2, &cancelled)).await.unwrap(), Written::Written);
    assert_eq!(outbox(&rows).await, [requested.clone(), cancelled.clone()]);

    // None for a change not written, and no batch for a change without events.
    let late = state(&r, "expired");
    assert_eq!(rows.write_ride(write(&late, &[event(&late, "expired")])).await.unwrap(), Written::Stale);
    let used = RideRow { quote_id: r.quote_id, ..ride(2, 0) };
    assert_eq!(rows.insert_ride(&used, None, &[event(&used, "requested")]).await.unwrap(), Inserted::QuoteUsed);
    let open = ride(3, 0);
    insert(&rows, &open).await;
    let again = ride(3, 1);
    assert_eq!(rows.insert_ride(&again, None, &[event(&again, "requested")]).await.unwrap(), Inserted::RideOpen);
    let r3 = next(&r2, |n| n.body = json!({"v": 3}));
    assert_eq!(rows.write_ride(write(&r3, &[])).await.unwrap(), Written::Written);
    assert_eq!(outbox(&rows).await, [requested, cancelled]);
}
