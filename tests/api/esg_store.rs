//! One contract for both ESG stores, PostgreSQL and the embedded one: the same activities give the
//! same subject, months and events in any order and however often they are recorded; a report
//! repeating one kept is refused; erasure removes everything.

use beryl_core_api::{
    adapters::{
        esg::{
            Activity, Credit, Entry, Erased, EsgStore, FactorUsed, Noted, Origin, Participation, Recorded, Signal,
            Standing, WalletRecord,
        },
        outbox::MemOutbox,
    },
    domain::{
        esg::{method::Part, ActivityType, EsgError, Footprint, Report, Took, WalletChange},
        fintech::MovementKind,
        privacy::BlindIndex,
    },
};
use chrono::{DateTime, Days, NaiveDate, SubsecRound, Utc};
use uuid::Uuid;

use crate::helpers::{contract, migrated_pool};

fn memory() -> EsgStore {
    EsgStore::memory(MemOutbox::new())
}

async fn postgres() -> EsgStore {
    EsgStore::Postgres(migrated_pool().await)
}

contract!(
    the_same_activities_give_the_same_projections_in_any_order,
    a_repeated_report_is_refused_and_a_repeated_id_changes_nothing,
    erasure_removes_everything,
    a_rebuild_reproduces_what_recording_built,
    a_members_standing_comes_with_each_recording,
    a_batch_records_what_its_entries_would_one_by_one,
    a_participation_counts_once_is_rebuilt_and_erased,
    a_wallet_stands_as_its_latest_change_once_each_and_is_rebuilt_and_erased,
);

fn index(n: u8) -> BlindIndex {
    BlindIndex::from_slice(&[n; 32]).unwrap()
}

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

fn activity(origin: Origin, kind: ActivityType, days_ago: u64, m: u32, avoided: u64, at: DateTime<Utc>) -> Activity {
    Activity {
        id: Uuid::now_v7(),
        origin,
        report: Report { kind, date: today() - Days::new(days_ago), distance_m: m },
        footprint: Footprint { co2e_g: u64::from(m) / 50, baseline_g: u64::from(m) * 176 / 1000, avoided_g: avoided },
        factor: FactorUsed { source: "table".into(), version: "v1".into(), route: "simulator".into() },
        // Whole microseconds, as PostgreSQL keeps them.
        recorded_at: at.trunc_subsecs(6),
    }
}

/// Rebuilding each of `subjects` finds what recording built: it reports no change, and their
/// state and months are as they were.
async fn rebuild_changes_nothing(store: &EsgStore, subjects: &[BlindIndex]) {
    let since = today() - Days::new(400);
    for who in subjects {
        let (state, months) = (store.subject(who).await.unwrap(), store.months(who, since).await.unwrap());
        assert!(!store.rebuild(who, today()).await.unwrap(), "nothing to change");
        assert_eq!(store.subject(who).await.unwrap(), state);
        assert_eq!(store.months(who, since).await.unwrap(), months);
    }
}

fn credit(who: &BlindIndex) -> Credit {
    Credit { index: *who, sealed: "sealed".into(), as_of: today(), request_id: None }
}

async fn record(store: &EsgStore, who: &BlindIndex, a: &Activity) -> Recorded {
    store.record(&credit(who), a).await.unwrap()
}

async fn the_same_activities_give_the_same_projections_in_any_order(store: EsgStore) {
    let t = Utc::now();
    let all = vec![
        activity(Origin::Ride, ActivityType::RideBike, 0, 6_000, 1_056, t),
        activity(Origin::Report, ActivityType::Train, 3, 40_000, 5_400, t),
        activity(Origin::Ride, ActivityType::RideCar, 40, 12_000, 0, t),
        activity(Origin::Report, ActivityType::Walk, 100, 3_000, 528, t),
        activity(Origin::Report, ActivityType::Bus, 3, 9_000, 700, t),
    ];
    let (a, b) = (index(1), index(2));
    for x in &all {
        assert!(matches!(record(&store, &a, x).await, Recorded::New { .. }));
    }
    // The same activities for another subject, in reverse, each twice (other ids: theirs).
    for x in all.iter().rev() {
        let mine = Activity { id: Uuid::new_v5(&x.id, b"b"), ..x.clone() };
        assert!(matches!(record(&store, &b, &mine).await, Recorded::New { .. }));
        assert!(matches!(record(&store, &b, &mine).await, Recorded::Duplicate(_)));
    }
    let (sa, sb) = (store.subject(&a).await.unwrap().unwrap(), store.subject(&b).await.unwrap().unwrap());
    assert_eq!((sa.totals, sa.version), (sb.totals, sb.version));
    assert_eq!(sa.totals.activities, 5);
    assert_eq!(sa.totals.avoided_g, 1_056 + 5_400 + 528 + 700);
    assert_eq!(sa.score, sb.score, "the score does not depend on the order");
    // The walk 100 days ago is outside the 90-day window; the rest is in it.
    let env = &sa.score.as_ref().unwrap().components[0];
    assert_eq!(env.inputs["distance_m"], 6_000 + 40_000 + 12_000 + 9_000);
    let since = today() - Days::new(400);
    let (ma, mb) = (store.months(&a, since).await.unwrap(), store.months(&b, since).await.unwrap());
    assert_eq!(ma, mb);
    assert_eq!(ma.iter().map(|m| m.activities).sum::<u64>(), 5);
    let page = store.activities(&a, None, 3).await.unwrap();
    let rest = store.activities(&a, page.last().map(|x| (x.recorded_at, x.id)), 10).await.unwrap();
    assert_eq!((page.len(), rest.len()), (3, 2));
    let mut read: Vec<Activity> = page.into_iter().chain(rest).collect();
    read.sort_by_key(|x| x.id);
    assert_eq!(read, all, "every activity reads back as recorded");
    assert_eq!(store.activity(&a, all[0].id).await.unwrap(), Some(all[0].clone()));
    assert_eq!(store.activity(&b, all[0].id).await.unwrap(), None, "not another subject's");
    assert_eq!(store.subject(&index(3)).await.unwrap(), None);
}

async fn a_repeated_report_is_refused_and_a_repeated_id_changes_nothing(store: EsgStore) {
    let who = index(4);
    let first = activity(Origin::Report, ActivityType::Train, 1, 10_000, 1_350, Utc::now());
    assert!(matches!(record(&store, &who, &first).await, Recorded::New { .. }));
    // About the same distance, same type and day: the same trip told twice.
    let again = Activity { id: Uuid::now_v7(), report: Report { distance_m: 10_080, ..first.report }, ..first.clone() };
    assert_eq!(record(&store, &who, &again).await, Recorded::Refused(EsgError::Duplicate));
    // A ride of the same kind that day is not a report: it counts.
    let ride = Activity { id: Uuid::now_v7(), origin: Origin::Ride, ..again.clone() };
    assert!(matches!(record(&store, &who, &ride).await, Recorded::New { .. }));
    // The first id again, whatever it now says, changes nothing and gives back what was kept.
    let replay = Activity { report: Report { distance_m: 99_000, ..first.report }, ..first.clone() };
    assert_eq!(record(&store, &who, &replay).await, Recorded::Duplicate(Box::new(first.clone())));
    let state = store.subject(&who).await.unwrap().unwrap();
    assert_eq!((state.totals.activities, state.version), (2, 2));
}

async fn erasure_removes_everything(store: EsgStore) {
    let (who, other) = (index(5), index(6));
    for days in [0, 1, 2] {
        let a = activity(Origin::Report, ActivityType::Bike, days, 5_000, 880, Utc::now());
        record(&store, &who, &a).await;
    }
    let kept = activity(Origin::Report, ActivityType::Bike, 0, 5_000, 880, Utc::now());
    record(&store, &other, &kept).await;
    assert_eq!(store.erase(&who).await.unwrap(), Erased { activities: 3, ..Erased::default() });
    assert_eq!(store.subject(&who).await.unwrap(), None);
    assert!(store.activities(&who, None, 10).await.unwrap().is_empty());
    assert!(store.months(&who, today() - Days::new(400)).await.unwrap().is_empty());
    assert_eq!(store.erase(&who).await.unwrap(), Erased::default());
    assert_eq!(store.subject(&other).await.unwrap().unwrap().totals.activities, 1, "another's stays");
}

async fn a_rebuild_reproduces_what_recording_built(store: EsgStore) {
    let t = Utc::now();
    for (n, days) in [(7u8, 0u64), (7, 5), (8, 1), (7, 120)] {
        let a = activity(Origin::Report, ActivityType::Tram, days, 4_000 + u32::from(n), 500, t - Days::new(days));
        record(&store, &index(n), &a).await;
    }
    assert_eq!(store.count_subjects().await.unwrap(), 2);
    let first = store.subjects_after(None, 1).await.unwrap();
    let rest = store.subjects_after(first.last(), 10).await.unwrap();
    assert_eq!((first.len(), rest.len()), (1, 1));
    rebuild_changes_nothing(&store, &[index(7), index(8)]).await;
    assert!(!store.rebuild(&index(9), today()).await.unwrap(), "no activities, nothing to rebuild");
    assert_eq!(store.subject(&index(9)).await.unwrap(), None);
}

async fn a_members_standing_comes_with_each_recording(store: EsgStore) {
    let (member, other) = (index(10), index(11));
    store.join(&member, Some("lyon")).await.unwrap();
    let standing = |r: Recorded| match r {
        Recorded::New { standing, .. } => standing,
        other => panic!("not recorded: {other:?}"),
    };
    let month = beryl_core_api::adapters::esg::month_of(today());
    let first = activity(Origin::Report, ActivityType::Bike, 0, 5_000, 880, Utc::now());
    let second = activity(Origin::Ride, ActivityType::RideBike, 0, 2_000, 352, Utc::now());
    let expected = |g| Some(Standing { community: Some("lyon".into()), month, avoided_g: g });
    assert_eq!(standing(record(&store, &member, &first).await), expected(880));
    assert_eq!(standing(record(&store, &member, &second).await), expected(1_232), "the month so far");
    let theirs = activity(Origin::Report, ActivityType::Bike, 0, 5_000, 880, Utc::now());
    assert_eq!(standing(record(&store, &other, &theirs).await), None, "not a member");
}

async fn a_batch_records_what_its_entries_would_one_by_one(store: EsgStore) {
    let t = Utc::now();
    let bike = activity(Origin::Ride, ActivityType::RideBike, 0, 6_000, 1_056, t);
    let train = activity(Origin::Report, ActivityType::Train, 1, 10_000, 1_350, t);
    let told_twice =
        Activity { id: Uuid::now_v7(), report: Report { distance_m: 10_080, ..train.report }, ..train.clone() };
    let entries = |p: BlindIndex, q: BlindIndex, ids: &dyn Fn(Uuid) -> Uuid| -> Vec<Entry> {
        let mine = |a: &Activity| Activity { id: ids(a.id), ..a.clone() };
        vec![
            (credit(&p), mine(&bike)),
            (credit(&q), mine(&train)),
            (credit(&p), mine(&activity(Origin::Report, ActivityType::Train, 3, 40_000, 5_400, t))),
            // The same id twice in one batch: recorded once.
            (credit(&p), mine(&bike)),
            // A report repeating one recorded earlier in the batch: refused.
            (credit(&q), mine(&told_twice)),
            (credit(&q), mine(&activity(Origin::Ride, ActivityType::RideCar, 40, 12_000, 0, t))),
            (credit(&p), mine(&activity(Origin::Report, ActivityType::Walk, 100, 3_000, 528, t))),
        ]
    };
    let (p, q, p1, q1) = (index(20), index(21), index(22), index(23));
    let batch = entries(p, q, &|id| id);
    let together = store.record_batch(&batch).await.unwrap();
    let alone_entries = entries(p1, q1, &|id| Uuid::new_v5(&id, b"alone"));
    let mut alone = Vec::new();
    for (c, a) in &alone_entries {
        alone.push(store.record(c, a).await.unwrap());
    }
    assert_eq!(together.len(), batch.len());
    for (n, (x, y)) in together.iter().zip(&alone).enumerate() {
        match (x, y) {
            (
                Recorded::New { state: s, milestones: m, standing: None },
                Recorded::New { state: s1, milestones: m1, standing: None },
            ) => {
                assert_eq!((s, m), (s1, m1), "entry {n}");
            }
            (Recorded::Duplicate(a), Recorded::Duplicate(b)) => assert_eq!(a.report, b.report, "entry {n}"),
            (Recorded::Refused(a), Recorded::Refused(b)) => assert_eq!(a, b, "entry {n}"),
            other => panic!("entry {n}: together {:?}, alone {:?}", other.0, other.1),
        }
    }
    assert!(matches!(together[3], Recorded::Duplicate(_)));
    assert_eq!(together[4], Recorded::Refused(EsgError::Duplicate));
    assert!(matches!(&together[0], Recorded::New { milestones, .. } if milestones == &[1]));
    let since = today() - Days::new(400);
    for (x, y) in [(p, p1), (q, q1)] {
        assert_eq!(store.subject(&x).await.unwrap(), store.subject(&y).await.unwrap());
        assert_eq!(store.months(&x, since).await.unwrap(), store.months(&y, since).await.unwrap());
    }
    let p_state = store.subject(&p).await.unwrap().unwrap();
    assert_eq!((p_state.totals.activities, p_state.version), (3, 3));
    // A later batch holding an id recorded before changes nothing.
    let again = store.record_batch(&batch[..1]).await.unwrap();
    assert_eq!(again, vec![Recorded::Duplicate(Box::new(bike.clone()))]);
    assert_eq!(store.subject(&p).await.unwrap().unwrap(), p_state);
}

fn took(kind: Took, days_ago: u64) -> Participation {
    let recorded_at = Utc::now().trunc_subsecs(6);
    Participation { id: Uuid::now_v7(), kind, day: today() - Days::new(days_ago), recorded_at }
}

async fn participate(store: &EsgStore, who: &BlindIndex, p: &Participation) -> Noted {
    store.note(&credit(who), &Signal::TookPart(p.clone())).await.unwrap()
}

/// (version, the value of `part`) of what noting a signal made.
fn version_and(n: &Noted, part: Part) -> (i64, Option<u8>) {
    match n {
        Noted::New(state) => (state.version, state.score.as_ref().and_then(|s| s.value(part))),
        Noted::Duplicate => panic!("not recorded"),
    }
}

fn social(n: &Noted) -> (i64, Option<u8>) {
    version_and(n, Part::Social)
}

async fn a_participation_counts_once_is_rebuilt_and_erased(store: EsgStore) {
    let (who, only) = (index(20), index(21));
    let post = took(Took::Post, 0);
    // One day of the twelve that earn the full component: ⌊100 / 12⌋.
    assert_eq!(social(&participate(&store, &who, &post).await), (1, Some(8)));
    assert_eq!(participate(&store, &who, &post).await, Noted::Duplicate);
    assert_eq!(social(&participate(&store, &who, &took(Took::Comment, 0)).await), (2, Some(8)), "the same day");
    assert_eq!(social(&participate(&store, &who, &took(Took::Post, 3)).await), (3, Some(16)));
    let state = store.subject(&who).await.unwrap().unwrap();
    assert_eq!((state.totals.activities, state.score.unwrap().value(Part::Environmental)), (0, Some(0)));
    // Recording an activity keeps the social component; a day out of the window adds nothing.
    let bike = activity(Origin::Report, ActivityType::Bike, 0, 5_000, 880, Utc::now());
    match record(&store, &who, &bike).await {
        Recorded::New { state, .. } => {
            assert_eq!((state.version, state.score.unwrap().value(Part::Social)), (4, Some(16)));
        }
        other => panic!("not recorded: {other:?}"),
    }
    assert_eq!(social(&participate(&store, &who, &took(Took::Post, 200)).await), (5, Some(16)));
    participate(&store, &only, &took(Took::Comment, 1)).await;
    assert_eq!(store.count_subjects().await.unwrap(), 2, "a subject known only by participation counts");
    let kept = store.participations(&who).await.unwrap();
    assert_eq!(kept.len(), 4);
    assert!(kept.windows(2).all(|w| w[0].day <= w[1].day), "oldest day first");
    // A rebuild finds what recording built.
    rebuild_changes_nothing(&store, &[who, only]).await;
    assert_eq!(store.erase(&who).await.unwrap(), Erased { activities: 1, participations: 4, wallet_changes: 0 });
    assert!(store.participations(&who).await.unwrap().is_empty());
    assert_eq!(store.subject(&who).await.unwrap(), None);
    assert_eq!(store.count_subjects().await.unwrap(), 1);
    // Someone who took part, but not within the window: known, worth 0 now.
    assert_eq!(social(&participate(&store, &index(22), &took(Took::Comment, 120)).await), (1, Some(0)));
}

fn changed(wallet: Uuid, seq: i64, kind: MovementKind) -> Signal {
    let at = Utc::now().trunc_subsecs(6);
    Signal::Wallet(WalletRecord { id: Uuid::now_v7(), change: WalletChange { wallet, seq, kind }, at, recorded_at: at })
}

fn governance(n: &Noted) -> (i64, Option<u8>) {
    version_and(n, Part::Governance)
}

async fn a_wallet_stands_as_its_latest_change_once_each_and_is_rebuilt_and_erased(store: EsgStore) {
    let (who, late) = (index(30), index(31));
    let (a, b, c) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let note = |who: BlindIndex, s: Signal| {
        let store = store.clone();
        async move { store.note(&credit(&who), &s).await.unwrap() }
    };
    assert_eq!(governance(&note(who, changed(a, 1, MovementKind::Opened)).await), (1, Some(100)));
    // The same change again, under another event id: nothing.
    assert_eq!(note(who, changed(a, 1, MovementKind::Opened)).await, Noted::Duplicate);
    assert_eq!(governance(&note(who, changed(a, 7, MovementKind::Frozen)).await), (2, Some(0)));
    assert_eq!(governance(&note(who, changed(b, 1, MovementKind::Opened)).await), (3, Some(0)), "one frozen is enough");
    // An unfreeze that arrives before the freeze it follows: the freeze, older, changes nothing.
    assert_eq!(governance(&note(late, changed(c, 9, MovementKind::Unfrozen)).await), (1, Some(100)));
    assert_eq!(governance(&note(late, changed(c, 8, MovementKind::Frozen)).await), (2, Some(100)));
    // An activity keeps the component; 100 km by bike with governance 0: (60·100 + 20·0) / 80 = 75.
    let bike = activity(Origin::Report, ActivityType::Bike, 0, 100_000, 17_600, Utc::now());
    match record(&store, &who, &bike).await {
        Recorded::New { state, .. } => {
            let score = state.score.unwrap();
            assert_eq!((state.version, score.value(Part::Governance), score.total), (4, Some(0), 75));
        }
        other => panic!("not recorded: {other:?}"),
    }
    assert_eq!(governance(&note(who, changed(a, 12, MovementKind::Unfrozen)).await), (5, Some(100)));
    let kept = store.wallet_changes(&who).await.unwrap();
    let seqs: Vec<(Uuid, i64)> = kept.iter().map(|w| (w.change.wallet, w.change.seq)).collect();
    let mut sorted = seqs.clone();
    sorted.sort();
    assert_eq!((seqs.len(), seqs == sorted), (4, true), "by wallet and sequence");
    assert_eq!(store.count_subjects().await.unwrap(), 2, "a subject known only by a wallet counts");
    rebuild_changes_nothing(&store, &[who, late]).await;
    assert_eq!(store.erase(&who).await.unwrap(), Erased { activities: 1, participations: 0, wallet_changes: 4 });
    assert!(store.wallet_changes(&who).await.unwrap().is_empty());
    // Erased, the same changes could be recorded again (for no one: the owner no longer opens).
    assert_eq!(governance(&note(who, changed(b, 1, MovementKind::Opened)).await), (1, Some(100)));
}
