//! One contract for both social stores, PostgreSQL and the embedded one: the graph's rules
//! applied under the stores' locks, the counts and versions they keep, handles unique whatever
//! their case, listings paged latest first without blocked profiles, and erasure.

use beryl_core_api::{
    adapters::{
        outbox::MemOutbox,
        social::{Act, PostDraft, Profile, SealedDraft, Side, SocialStore, SocialStoreError},
    },
    domain::{
        privacy::BlindIndex,
        social::{Change, FollowState, Handle, Reaction, Sharing, SocialError, Visibility},
    },
};
use chrono::{Duration, SubsecRound, Utc};

use crate::helpers::{contract, migrated_pool};

fn memory() -> SocialStore {
    SocialStore::memory(MemOutbox::new())
}

async fn postgres() -> SocialStore {
    SocialStore::Postgres(migrated_pool().await)
}

contract!(
    follows_requests_and_blocks_keep_their_counts_and_versions,
    a_handle_is_unique_whatever_its_case_and_freed_when_changed_or_erased,
    listings_page_latest_first_without_profiles_blocked_with_the_viewer,
    posts_keep_their_counts_through_reactions_comments_and_erasure,
    activity_posts_are_made_once_per_event_and_what_a_profile_shares_reads_back,
    reports_open_once_and_a_hidden_post_leaves_every_listing_but_its_authors,
);

fn index(n: u8) -> BlindIndex {
    BlindIndex::from_slice(&[n; 32]).unwrap()
}

fn draft(handle: &str, visibility: Visibility) -> SealedDraft {
    let handle = Handle::parse(handle).unwrap();
    SealedDraft {
        handle_sealed: format!("sealed:{}", handle.as_str()),
        // The stores take the index as given: the lower case stands in for the vault's.
        handle_index: {
            let mut bytes = [0u8; 32];
            for (b, c) in bytes.iter_mut().zip(handle.key().bytes()) {
                *b = c;
            }
            BlindIndex(bytes)
        },
        handle,
        display_name: "sealed-name".into(),
        bio: String::new(),
        avatar_url: String::new(),
        visibility,
        sharing: Sharing::default(),
    }
}

fn act(seconds: i64) -> Act {
    Act { request_id: None, at: (Utc::now() + Duration::seconds(seconds)).trunc_subsecs(6) }
}

async fn make(store: &SocialStore, n: u8, handle: &str, visibility: Visibility) -> Profile {
    let written = store.put_profile(&index(n), &draft(handle, visibility), &act(0)).await.unwrap();
    assert!(written.created);
    written.profile
}

async fn read(store: &SocialStore, n: u8) -> Profile {
    store.by_owner(&index(n)).await.unwrap().unwrap()
}

async fn follows_requests_and_blocks_keep_their_counts_and_versions(store: SocialStore) {
    let a = make(&store, 1, "ann", Visibility::Public).await;
    let b = make(&store, 2, "ben", Visibility::Private).await;
    let c = make(&store, 3, "cid", Visibility::Followers).await;
    assert_eq!(store.follow(b.id, a.id, &act(1)).await.unwrap(), Change::New(FollowState::Active));
    assert_eq!(store.follow(b.id, a.id, &act(2)).await.unwrap(), Change::Unchanged(FollowState::Active));
    assert_eq!(store.follow(c.id, a.id, &act(3)).await.unwrap(), Change::New(FollowState::Active));
    assert_eq!(store.follow(a.id, b.id, &act(4)).await.unwrap(), Change::New(FollowState::Pending));
    assert!(matches!(store.follow(a.id, a.id, &act(5)).await, Err(SocialStoreError::Rule(SocialError::OwnProfile))));
    let (ra, rb) = (read(&store, 1).await, read(&store, 2).await);
    assert_eq!((ra.followers, ra.following, ra.version), (2, 0, 3));
    assert_eq!((rb.followers, rb.following, rb.version), (0, 1, 2), "a request counts nothing");
    assert!(store.answer(b.id, a.id, true, &act(6)).await.unwrap());
    assert!(!store.answer(b.id, a.id, true, &act(7)).await.unwrap(), "answered already");
    assert_eq!((read(&store, 2).await.followers, read(&store, 1).await.following), (1, 1));

    // A block ends both follows between a and b, and refuses new ones both ways.
    assert!(store.block(a.id, b.id, true, &act(8)).await.unwrap());
    assert!(!store.block(a.id, b.id, true, &act(9)).await.unwrap());
    let (ra, rb) = (read(&store, 1).await, read(&store, 2).await);
    assert_eq!((ra.followers, ra.following, rb.followers, rb.following), (1, 0, 0, 0));
    assert_eq!(ra.version, 5, "the removal of b's follow and the block are a's events");
    let relation = store.relation(b.id, a.id).await.unwrap();
    assert!(relation.blocked_by && !relation.blocking && relation.following.is_none());
    for (x, y) in [(a.id, b.id), (b.id, a.id)] {
        assert!(matches!(store.follow(x, y, &act(10)).await, Err(SocialStoreError::Rule(SocialError::Blocked))));
    }
    assert!(store.block(a.id, b.id, false, &act(11)).await.unwrap());
    assert_eq!(store.follow(b.id, a.id, &act(12)).await.unwrap(), Change::New(FollowState::Active));

    // A private profile made public accepts the requests waiting on it.
    assert_eq!(store.follow(c.id, b.id, &act(13)).await.unwrap(), Change::New(FollowState::Pending));
    let written = store.put_profile(&index(2), &draft("ben", Visibility::Public), &act(14)).await.unwrap();
    assert_eq!((written.created, written.accepted.clone(), written.profile.followers), (false, vec![c.id], 1));
    assert_eq!(store.relation(c.id, b.id).await.unwrap().following, Some(FollowState::Active));

    // Mutes: private, no count.
    assert!(store.mute(a.id, c.id, true, act(15).at).await.unwrap());
    assert!(!store.mute(a.id, c.id, true, act(16).at).await.unwrap());
    assert!(store.relation(a.id, c.id).await.unwrap().muting);
    assert!(matches!(
        store.mute(a.id, a.id, true, act(17).at).await,
        Err(SocialStoreError::Rule(SocialError::OwnProfile))
    ));

    // Unfollowing.
    assert_eq!(store.unfollow(c.id, a.id, &act(18)).await.unwrap(), Some(FollowState::Active));
    assert_eq!(store.unfollow(c.id, a.id, &act(19)).await.unwrap(), None);
    assert_eq!(read(&store, 1).await.followers, 1);
}

async fn a_handle_is_unique_whatever_its_case_and_freed_when_changed_or_erased(store: SocialStore) {
    make(&store, 1, "Ada_L", Visibility::Public).await;
    let taken = store.put_profile(&index(2), &draft("ADA_l", Visibility::Public), &act(1)).await;
    assert!(matches!(taken, Err(SocialStoreError::Rule(SocialError::HandleTaken(h))) if h == "ADA_l"));
    assert!(store.by_owner(&index(2)).await.unwrap().is_none(), "nothing was made");
    // Its owner may change its case, or change it; the old one is free then.
    let written = store.put_profile(&index(1), &draft("ADA_L", Visibility::Public), &act(2)).await.unwrap();
    assert_eq!((written.created, written.profile.handle.as_str()), (false, "sealed:ADA_L"));
    store.put_profile(&index(1), &draft("ada_new", Visibility::Public), &act(3)).await.unwrap();
    let b = store.put_profile(&index(2), &draft("ada_l", Visibility::Public), &act(4)).await.unwrap();
    assert!(b.created);
    let found = store.by_handle(&draft("ADA_L", Visibility::Public).handle_index).await.unwrap().unwrap();
    assert_eq!(found.id, b.profile.id);
    // Erasure removes the profile, its edges and frees its handle.
    let a = read(&store, 1).await;
    assert_eq!(store.follow(a.id, b.profile.id, &act(5)).await.unwrap(), Change::New(FollowState::Active));
    let erased = store.erase(&index(1), act(6).at).await.unwrap().unwrap();
    assert_eq!(erased.id, a.id);
    assert!(store.erase(&index(1), act(7).at).await.unwrap().is_none());
    assert!(store.by_handle(&draft("ada_new", Visibility::Public).handle_index).await.unwrap().is_none());
    assert_eq!(read(&store, 2).await.followers, 0, "the count made right");
    let page = store.edges(b.profile.id, Side::Followers, (None, 10), None).await.unwrap();
    assert!(page.is_empty());
    make(&store, 3, "ada_new", Visibility::Public).await;
}

async fn listings_page_latest_first_without_profiles_blocked_with_the_viewer(store: SocialStore) {
    let star = make(&store, 1, "star", Visibility::Public).await;
    let mut fans = Vec::new();
    for i in 0..5u8 {
        let fan = make(&store, 10 + i, &format!("fan_{i}"), Visibility::Public).await;
        assert_eq!(
            store.follow(fan.id, star.id, &act(i64::from(i) + 1)).await.unwrap(),
            Change::New(FollowState::Active)
        );
        fans.push(fan);
    }
    let viewer = make(&store, 2, "viewer", Visibility::Public).await;
    assert!(store.block(fans[3].id, viewer.id, true, &act(10)).await.unwrap());
    assert!(store.block(viewer.id, fans[1].id, true, &act(11)).await.unwrap());
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = store.edges(star.id, Side::Followers, (before, 2), Some(viewer.id)).await.unwrap();
        before = page.last().map(|e| (e.since, e.profile.id));
        seen.extend(page.iter().map(|e| e.profile.handle.clone()));
        if page.len() < 2 {
            break;
        }
    }
    assert_eq!(seen, ["sealed:fan_4", "sealed:fan_2", "sealed:fan_0"]);
    let all = store.edges(star.id, Side::Followers, (None, 10), None).await.unwrap();
    assert_eq!(all.len(), 5);
    let blocked = store.edges(viewer.id, Side::Blocked, (None, 10), None).await.unwrap();
    assert_eq!(blocked.iter().map(|e| e.profile.id).collect::<Vec<_>>(), [fans[1].id]);
}

async fn posts_keep_their_counts_through_reactions_comments_and_erasure(store: SocialStore) {
    let a = make(&store, 1, "ann", Visibility::Public).await;
    let b = make(&store, 2, "ben", Visibility::Public).await;
    let c = make(&store, 3, "cid", Visibility::Public).await;
    assert_eq!(store.follow(b.id, a.id, &act(1)).await.unwrap(), Change::New(FollowState::Active));
    let draft = |n: u128, visibility| PostDraft {
        id: uuid::Uuid::from_u128(n),
        body: format!("sealed-{n}"),
        link: None,
        participant: Some(format!("participant-{n}")),
        visibility,
        fanout_max_followers: 10,
    };
    let p1 = store.create_post(a.id, &draft(1, Visibility::Public), &act(2)).await.unwrap();
    store.create_post(a.id, &draft(2, Visibility::Private), &act(3)).await.unwrap();
    store.create_post(c.id, &draft(3, Visibility::Public), &act(4)).await.unwrap();
    store.create_post(b.id, &draft(4, Visibility::Followers), &act(5)).await.unwrap();
    assert!(store.create_post(a.id, &draft(1, Visibility::Public), &act(6)).await.is_err(), "an id is used once");

    store.react(p1.id, b.id, Reaction::Love, &act(7)).await.unwrap();
    assert!(matches!(
        store.react(p1.id, b.id, Reaction::Like, &act(8)).await,
        Err(SocialStoreError::Rule(SocialError::AlreadyReacted))
    ));
    let after = store.react(p1.id, c.id, Reaction::Love, &act(9)).await.unwrap();
    assert_eq!(after.reactions.get(&Reaction::Love), Some(&2));
    let top = store.comment((p1.id, None), (uuid::Uuid::from_u128(10), b.id), ("s", "p"), &act(10)).await.unwrap();
    let reply =
        store.comment((p1.id, Some(top.id)), (uuid::Uuid::from_u128(11), c.id), ("s", "p"), &act(11)).await.unwrap();
    assert!(matches!(
        store.comment((p1.id, Some(reply.id)), (uuid::Uuid::from_u128(12), a.id), ("s", "p"), &act(12)).await,
        Err(SocialStoreError::Rule(SocialError::ThreadTooDeep))
    ));
    store.comment((p1.id, None), (uuid::Uuid::from_u128(13), c.id), ("s", "p"), &act(13)).await.unwrap();
    let read = store.post(p1.id).await.unwrap().unwrap();
    assert_eq!((read.comments, read.version), (3, 6), "created, two reactions, three comments");
    let listed: Vec<u128> = store.comments(p1.id, None, 10).await.unwrap().iter().map(|c| c.id.as_u128()).collect();
    assert_eq!(listed, [10, 11, 13], "oldest first");

    // The home timelines, and a profile's posts of some visibilities, newest first.
    let ids =
        |posts: Vec<beryl_core_api::adapters::social::Post>| posts.iter().map(|p| p.id.as_u128()).collect::<Vec<_>>();
    assert_eq!(
        ids(store.home((b.id, false), None, 10).await.unwrap()),
        [4, 1],
        "b follows a: a's public post, and b's own"
    );
    assert_eq!(ids(store.home((a.id, false), None, 10).await.unwrap()), [2, 1]);
    let shown = store.posts_by((a.id, &[Visibility::Public, Visibility::Followers], false), None, 10).await.unwrap();
    assert_eq!(shown.iter().map(|p| p.id.as_u128()).collect::<Vec<_>>(), [1]);

    // Erasing c takes its reaction, its reply and its comment off a's post; its own post goes.
    store.erase(&index(3), act(14).at).await.unwrap();
    let read = store.post(p1.id).await.unwrap().unwrap();
    assert_eq!((read.comments, read.reactions.get(&Reaction::Love).copied()), (1, Some(1)), "{read:?}");
    assert!(store.post(uuid::Uuid::from_u128(3)).await.unwrap().is_none());
    // Deleting a comment takes its replies.
    let r2 =
        store.comment((p1.id, Some(top.id)), (uuid::Uuid::from_u128(15), a.id), ("s", "p"), &act(15)).await.unwrap();
    assert_eq!(store.post(p1.id).await.unwrap().unwrap().comments, 2);
    store.delete_comment(top.id, &act(16)).await.unwrap();
    assert_eq!(store.post(p1.id).await.unwrap().unwrap().comments, 0);
    assert!(store.comment_by_id(r2.id).await.unwrap().is_none());
    // Only the author edits or deletes.
    assert!(matches!(
        store.delete_post(b.id, p1.id, &act(17)).await,
        Err(SocialStoreError::Rule(SocialError::NotAuthor))
    ));
    store.delete_post(a.id, p1.id, &act(18)).await.unwrap();
    assert!(store.post(p1.id).await.unwrap().is_none());
}

async fn activity_posts_are_made_once_per_event_and_what_a_profile_shares_reads_back(store: SocialStore) {
    let a = make(&store, 1, "ann", Visibility::Public).await;
    assert_eq!(a.sharing, Sharing::default(), "nothing is shared by default");
    let sharing = Sharing { rides: true, milestones: false };
    let rewritten = SealedDraft { sharing, ..draft("ann", Visibility::Public) };
    let written = store.put_profile(&index(1), &rewritten, &act(1)).await.unwrap();
    assert_eq!(written.profile.sharing, sharing);
    assert_eq!(read(&store, 1).await.sharing, sharing);

    let (event, other) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    let draft = |id: uuid::Uuid| PostDraft {
        id,
        body: "sealed".into(),
        link: Some(beryl_core_api::domain::social::Link::Ride(event)),
        participant: None,
        visibility: Visibility::Followers,
        fanout_max_followers: 10,
    };
    let first = uuid::Uuid::now_v7();
    let made = store.create_activity_post(a.id, event, &draft(first), &act(2)).await.unwrap();
    assert_eq!(made.map(|p| p.id), Some(first));
    let again = store.create_activity_post(a.id, event, &draft(uuid::Uuid::now_v7()), &act(3)).await.unwrap();
    assert_eq!(again, None, "an event is made into a post once");
    store.delete_post(a.id, first, &act(4)).await.unwrap();
    let after = store.create_activity_post(a.id, event, &draft(uuid::Uuid::now_v7()), &act(5)).await.unwrap();
    assert_eq!(after, None, "a deleted activity post does not come back");
    assert!(store.create_activity_post(a.id, other, &draft(uuid::Uuid::now_v7()), &act(6)).await.unwrap().is_some());
    assert!(matches!(
        store
            .create_activity_post(uuid::Uuid::now_v7(), uuid::Uuid::now_v7(), &draft(uuid::Uuid::now_v7()), &act(7))
            .await,
        Err(SocialStoreError::Gone)
    ));
}

async fn reports_open_once_and_a_hidden_post_leaves_every_listing_but_its_authors(store: SocialStore) {
    use beryl_core_api::{
        adapters::social::Report,
        domain::social::moderation::{Reason, Resolution, Status},
    };
    let a = make(&store, 1, "ann", Visibility::Public).await;
    let b = make(&store, 2, "ben", Visibility::Public).await;
    let c = make(&store, 3, "cid", Visibility::Public).await;
    assert_eq!(store.follow(b.id, a.id, &act(1)).await.unwrap(), Change::New(FollowState::Active));
    let draft = |n: u128| PostDraft {
        id: uuid::Uuid::from_u128(n),
        body: format!("sealed-{n}"),
        link: None,
        participant: None,
        visibility: Visibility::Public,
        // Post 2 is by an author above the fan-out threshold: the merge on read reads it.
        fanout_max_followers: if n == 2 { 0 } else { 10 },
    };
    let p1 = store.create_post(a.id, &draft(1), &act(2)).await.unwrap();
    let p2 = store.create_post(a.id, &draft(2), &act(3)).await.unwrap();
    let report = |n: u128, reporter, target_post: Option<uuid::Uuid>, at: i64| Report {
        id: uuid::Uuid::from_u128(100 + n),
        reporter,
        target_profile: a.id,
        target_post,
        reason: Reason::Spam,
        status: Status::Dismissed,
        created_at: act(at).at,
        resolved_at: None,
    };
    let filed = store.report(&report(1, b.id, Some(p1.id), 4)).await.unwrap();
    assert_eq!((filed.status, filed.resolved_at), (Status::Open, None), "a report opens, whatever it says");
    assert!(matches!(
        store.report(&report(2, b.id, Some(p1.id), 5)).await,
        Err(SocialStoreError::Rule(SocialError::AlreadyReported(id))) if id == filed.id
    ));
    store.report(&report(3, c.id, Some(p1.id), 6)).await.unwrap();
    store.report(&report(4, b.id, None, 7)).await.unwrap();
    store.report(&report(5, b.id, Some(p2.id), 8)).await.unwrap();
    assert!(matches!(store.report(&report(6, b.id, Some(uuid::Uuid::now_v7()), 9)).await, Err(SocialStoreError::Gone)));
    let ids = |reports: Vec<Report>| reports.iter().map(|r| r.id.as_u128() - 100).collect::<Vec<_>>();
    assert_eq!(ids(store.reports(Status::Open, None, 10).await.unwrap()), [1, 3, 4, 5], "oldest first");
    let after = Some((filed.created_at, filed.id));
    assert_eq!(ids(store.reports(Status::Open, after, 2).await.unwrap()), [3, 4]);

    // Hiding closes the post's open reports only, once; the author alone lists it.
    let hidden = store.moderate_post(p1.id, Some(Reason::Spam), &act(10)).await.unwrap();
    assert_eq!((hidden.changed, hidden.reports_closed, hidden.post.version), (true, 2, p1.version + 1));
    assert_eq!(hidden.post.hidden.map(|h| h.reason), Some(Reason::Spam));
    let again = store.moderate_post(p1.id, Some(Reason::Hate), &act(11)).await.unwrap();
    assert_eq!(
        (again.changed, again.reports_closed, again.post.hidden.map(|h| h.reason)),
        (false, 0, Some(Reason::Spam))
    );
    assert_eq!(ids(store.reports(Status::Open, None, 10).await.unwrap()), [4, 5]);
    assert_eq!(ids(store.reports(Status::Actioned, None, 10).await.unwrap()), [1, 3]);
    store.moderate_post(p2.id, Some(Reason::Other), &act(12)).await.unwrap();
    assert_eq!(ids(store.reports(Status::Open, None, 10).await.unwrap()), [4]);
    assert_eq!(ids(store.reports(Status::Actioned, None, 10).await.unwrap()), [1, 3, 5]);
    let posts =
        |found: Vec<beryl_core_api::adapters::social::Post>| found.iter().map(|p| p.id.as_u128()).collect::<Vec<_>>();
    assert_eq!(posts(store.home((b.id, false), None, 10).await.unwrap()), Vec::<u128>::new(), "hidden from a follower");
    assert_eq!(posts(store.home((b.id, true), None, 10).await.unwrap()), [2, 1], "kept for the cached entries");
    assert_eq!(posts(store.home((a.id, false), None, 10).await.unwrap()), [2, 1], "not from the author");
    let public = [Visibility::Public];
    assert_eq!(posts(store.posts_by((a.id, &public, false), None, 10).await.unwrap()), Vec::<u128>::new());
    assert_eq!(posts(store.posts_by((a.id, &public, true), None, 10).await.unwrap()), [2, 1]);
    assert_eq!(posts(store.unfanned_posts(&[a.id], None, 10).await.unwrap()), Vec::<u128>::new());
    let shown = store.moderate_post(p2.id, None, &act(13)).await.unwrap();
    assert_eq!((shown.changed, shown.post.hidden), (true, None));
    assert_eq!(posts(store.unfanned_posts(&[a.id], None, 10).await.unwrap()), [2]);
    assert_eq!(posts(store.home((b.id, false), None, 10).await.unwrap()), [2]);
    assert!(!store.moderate_post(p2.id, None, &act(14)).await.unwrap().changed);

    // Resolving: an open report, once.
    let report4 = uuid::Uuid::from_u128(104);
    let resolved = store.resolve_report(report4, Resolution::Dismissed, act(15).at).await.unwrap();
    assert_eq!(resolved.status, Status::Dismissed);
    assert!(resolved.resolved_at.is_some());
    assert!(matches!(
        store.resolve_report(report4, Resolution::Actioned, act(16).at).await,
        Err(SocialStoreError::Rule(SocialError::ReportClosed { status: Status::Dismissed, .. }))
    ));
    assert!(matches!(
        store.resolve_report(uuid::Uuid::now_v7(), Resolution::Actioned, act(16).at).await,
        Err(SocialStoreError::Rule(SocialError::ReportNotFound(_)))
    ));
    // A closed report leaves room for a new one; a deleted post and an erased profile take
    // their reports with them.
    store.report(&report(7, b.id, Some(p1.id), 17)).await.unwrap();
    assert_eq!(ids(store.reports(Status::Open, None, 10).await.unwrap()), [7]);
    store.delete_post(a.id, p1.id, &act(18)).await.unwrap();
    assert!(store.reports(Status::Open, None, 10).await.unwrap().is_empty());
    assert_eq!(ids(store.reports(Status::Actioned, None, 10).await.unwrap()), [5]);
    store.erase(&index(2), act(19).at).await.unwrap();
    assert!(store.reports(Status::Actioned, None, 10).await.unwrap().is_empty());
    assert!(store.reports(Status::Dismissed, None, 10).await.unwrap().is_empty());
}
