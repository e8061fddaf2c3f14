//! The PostgreSQL store. Each change to the graph locks both profiles' rows in id order, reads
//! their relation in the same transaction, and writes the edge, the counts, the versions and the
//! outbox row together.

use chrono::{DateTime, Utc};
use tokio_postgres::{error::SqlState, Row};
use uuid::Uuid;

use super::{Act, Edge, Profile, SealedDraft, Side, SocialStoreError, Written};
use crate::{
    adapters::{
        outbox,
        postgres::{PgPool, PgTransaction},
    },
    domain::{
        events::DomainEvent,
        privacy::BlindIndex,
        social::{
            events::{self, Ended},
            graph, Change, FollowState, Relation, Sharing, SocialError, Visibility,
        },
    },
};

pub(super) const COLUMNS: &str =
    "id, owner_index, handle, handle_index, display_name, bio, avatar_url, visibility, share_rides, \
                       share_milestones, followers, following, version, created_at, updated_at";

pub(super) fn u(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

pub(super) fn profile_of(row: &Row) -> Result<Profile, SocialStoreError> {
    Ok(Profile {
        id: row.get("id"),
        owner: BlindIndex::from_slice(row.get::<_, &[u8]>("owner_index")).ok_or(SocialStoreError::Corrupt("owner"))?,
        handle: row.get("handle"),
        handle_index: BlindIndex::from_slice(row.get::<_, &[u8]>("handle_index"))
            .ok_or(SocialStoreError::Corrupt("handle index"))?,
        display_name: row.get("display_name"),
        bio: row.get("bio"),
        avatar_url: row.get("avatar_url"),
        visibility: Visibility::parse(row.get("visibility")).ok_or(SocialStoreError::Corrupt("visibility"))?,
        sharing: Sharing { rides: row.get("share_rides"), milestones: row.get("share_milestones") },
        followers: u(row.get("followers")),
        following: u(row.get("following")),
        version: row.get("version"),
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
    })
}

pub(super) async fn queue(
    tx: &PgTransaction<'_>,
    at: DateTime<Utc>,
    events: &[DomainEvent],
) -> Result<(), SocialStoreError> {
    if events.is_empty() {
        return Ok(());
    }
    let (bytes, count) = outbox::encode(events, 320 * events.len()).map_err(|_| SocialStoreError::Corrupt("event"))?;
    let count = i32::try_from(count).unwrap_or(i32::MAX);
    tx.execute(outbox::sql::INSERT, &[&at, &count, &bytes]).await?;
    Ok(())
}

/// The next version of `id`, taken.
async fn bump(tx: &PgTransaction<'_>, id: Uuid) -> Result<i64, SocialStoreError> {
    let row = tx
        .query_opt("UPDATE social_profiles SET version = version + 1 WHERE id = $1 RETURNING version", &[&id])
        .await?;
    row.map(|r| r.get(0)).ok_or(SocialStoreError::Gone)
}

/// Count a follow of `follower` to `followee` made (`by` 1) or ended (-1).
async fn count(tx: &PgTransaction<'_>, follower: Uuid, followee: Uuid, by: i64) -> Result<(), SocialStoreError> {
    tx.execute("UPDATE social_profiles SET followers = followers + $2 WHERE id = $1", &[&followee, &by]).await?;
    tx.execute("UPDATE social_profiles SET following = following + $2 WHERE id = $1", &[&follower, &by]).await?;
    Ok(())
}

/// Lock both profiles' rows, in id order: the visibility of `b`. Gone when either is.
async fn lock_pair(tx: &PgTransaction<'_>, a: Uuid, b: Uuid) -> Result<Visibility, SocialStoreError> {
    let rows = tx
        .query("SELECT id, visibility FROM social_profiles WHERE id = ANY($1) ORDER BY id FOR UPDATE", &[&vec![a, b]])
        .await?;
    if rows.len() != 2 && a != b {
        return Err(SocialStoreError::Gone);
    }
    let row = rows.iter().find(|r| r.get::<_, Uuid>(0) == b).ok_or(SocialStoreError::Gone)?;
    Visibility::parse(row.get(1)).ok_or(SocialStoreError::Corrupt("visibility"))
}

const RELATION: &str = "SELECT \
    (SELECT state FROM social_follows WHERE follower = $1 AND followee = $2), \
    (SELECT state FROM social_follows WHERE follower = $2 AND followee = $1), \
    EXISTS (SELECT 1 FROM social_blocks WHERE blocker = $1 AND blocked = $2), \
    EXISTS (SELECT 1 FROM social_blocks WHERE blocker = $2 AND blocked = $1), \
    EXISTS (SELECT 1 FROM social_mutes WHERE muter = $1 AND muted = $2)";

fn relation_of(row: &Row, own: bool) -> Relation {
    let state = |i: usize| row.get::<_, Option<&str>>(i).and_then(FollowState::parse);
    Relation {
        own,
        following: state(0),
        followed_by: state(1),
        blocking: row.get(2),
        blocked_by: row.get(3),
        muting: row.get(4),
    }
}

pub(super) async fn relation(pool: &PgPool, viewer: Uuid, target: Uuid) -> Result<Relation, SocialStoreError> {
    let conn = pool.get().await?;
    let row = conn.query_one(RELATION, &[&viewer, &target]).await?;
    Ok(relation_of(&row, viewer == target))
}

pub(super) async fn by_owner(pool: &PgPool, owner: &BlindIndex) -> Result<Option<Profile>, SocialStoreError> {
    let conn = pool.get().await?;
    let sql = format!("SELECT {COLUMNS} FROM social_profiles WHERE owner_index = $1");
    // Typed: one round trip, with no statement described first (every read of a timeline or a
    // post starts with the reader's profile).
    let rows = conn.query(&sql, &[&owner.as_bytes()]).await?;
    rows.first().map(profile_of).transpose()
}

pub(super) async fn by_handle(pool: &PgPool, index: &BlindIndex) -> Result<Option<Profile>, SocialStoreError> {
    let conn = pool.get().await?;
    let sql = format!("SELECT {COLUMNS} FROM social_profiles WHERE handle_index = $1");
    conn.query_opt(&sql, &[&index.as_bytes()]).await?.as_ref().map(profile_of).transpose()
}

fn taken(e: &tokio_postgres::Error, draft: &SealedDraft) -> Option<SocialStoreError> {
    let db = e.as_db_error()?;
    (*db.code() == SqlState::UNIQUE_VIOLATION && db.constraint() == Some("social_profiles_handle_index_key"))
        .then(|| SocialError::HandleTaken(draft.handle.as_str().to_owned()).into())
}

pub(super) async fn put_profile(
    pool: &PgPool,
    owner: &BlindIndex,
    draft: &SealedDraft,
    act: &Act,
) -> Result<Written, SocialStoreError> {
    let mut conn = pool.get().await?;
    let owner_bytes = owner.as_bytes();
    let key = draft.handle_index.as_bytes();
    let visibility = draft.visibility.as_str();
    // Twice at most: a first write of the same owner racing this one makes the second an update.
    for _ in 0..2 {
        let tx = conn.transaction().await?;
        let existing = tx
            .query_opt("SELECT id, visibility FROM social_profiles WHERE owner_index = $1 FOR UPDATE", &[&owner_bytes])
            .await?;
        let mut events = Vec::new();
        let mut accepted = Vec::new();
        let written = match &existing {
            Some(row) => {
                let id: Uuid = row.get(0);
                let was_private = row.get::<_, &str>(1) == Visibility::Private.as_str();
                let sql = format!(
                    "UPDATE social_profiles SET handle = $2, handle_index = $3, display_name = $4, bio = $5, \
                     avatar_url = $6, visibility = $7, updated_at = $8, share_rides = $9, share_milestones = $10, \
                     version = version + 1 WHERE id = $1 RETURNING {COLUMNS}"
                );
                let params: [&(dyn tokio_postgres::types::ToSql + Sync); 10] = [
                    &id,
                    &draft.handle_sealed,
                    &key,
                    &draft.display_name,
                    &draft.bio,
                    &draft.avatar_url,
                    &visibility,
                    &act.at,
                    &draft.sharing.rides,
                    &draft.sharing.milestones,
                ];
                let row = match tx.query_one(&sql, &params).await {
                    Ok(row) => row,
                    Err(e) => return Err(taken(&e, draft).unwrap_or_else(|| e.into())),
                };
                let profile = profile_of(&row)?;
                events.push(events::profile_written(
                    id,
                    draft.visibility,
                    false,
                    profile.version,
                    act.request_id.clone(),
                    act.at,
                ));
                if was_private && draft.visibility != Visibility::Private {
                    let (followers, followed) = accept_all(&tx, id, act).await?;
                    accepted = followers;
                    events.extend(followed);
                }
                Some((profile.id, false))
            }
            None => {
                let sql = format!(
                    "INSERT INTO social_profiles (id, owner_index, handle, handle_index, display_name, bio, avatar_url, \
                     visibility, version, created_at, updated_at, share_rides, share_milestones) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1, $9, $9, $10, $11) \
                     ON CONFLICT (owner_index) DO NOTHING RETURNING {COLUMNS}"
                );
                let id = Uuid::now_v7();
                let params: [&(dyn tokio_postgres::types::ToSql + Sync); 11] = [
                    &id,
                    &owner_bytes,
                    &draft.handle_sealed,
                    &key,
                    &draft.display_name,
                    &draft.bio,
                    &draft.avatar_url,
                    &visibility,
                    &act.at,
                    &draft.sharing.rides,
                    &draft.sharing.milestones,
                ];
                match tx.query_opt(&sql, &params).await {
                    Ok(Some(_)) => {
                        events.push(events::profile_written(
                            id,
                            draft.visibility,
                            true,
                            1,
                            act.request_id.clone(),
                            act.at,
                        ));
                        Some((id, true))
                    }
                    Ok(None) => None,
                    Err(e) => return Err(taken(&e, draft).unwrap_or_else(|| e.into())),
                }
            }
        };
        let Some((id, created)) = written else {
            tx.rollback().await?;
            continue;
        };
        queue(&tx, act.at, &events).await?;
        let sql = format!("SELECT {COLUMNS} FROM social_profiles WHERE id = $1");
        let profile = profile_of(&tx.query_one(&sql, &[&id]).await?)?;
        tx.commit().await?;
        return Ok(Written { profile, created, accepted });
    }
    Err(SocialStoreError::Unavailable("the profile changed twice while being written".into()))
}

/// Accept every request waiting on `owner` (locked): their events.
async fn accept_all(
    tx: &PgTransaction<'_>,
    owner: Uuid,
    act: &Act,
) -> Result<(Vec<Uuid>, Vec<DomainEvent>), SocialStoreError> {
    // The followers' rows, in id order, before their counts change.
    tx.query(
        "SELECT id FROM social_profiles WHERE id IN \
         (SELECT follower FROM social_follows WHERE followee = $1 AND state = 'pending') ORDER BY id FOR UPDATE",
        &[&owner],
    )
    .await?;
    let rows = tx
        .query(
            "UPDATE social_follows SET state = 'active', since = $2 WHERE followee = $1 AND state = 'pending' \
             RETURNING follower",
            &[&owner, &act.at],
        )
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    let mut accepted = Vec::with_capacity(rows.len());
    for row in rows {
        let follower: Uuid = row.get(0);
        accepted.push(follower);
        count(tx, follower, owner, 1).await?;
        let seq = bump(tx, owner).await?;
        out.push(events::followed(follower, owner, FollowState::Active, seq, act.request_id.clone(), act.at));
    }
    Ok((accepted, out))
}

pub(super) async fn follow(
    pool: &PgPool,
    follower: Uuid,
    followee: Uuid,
    act: &Act,
) -> Result<Change<FollowState>, SocialStoreError> {
    let mut conn = pool.get().await?;
    let tx = conn.transaction().await?;
    let visibility = lock_pair(&tx, follower, followee).await?;
    let relation = relation_of(&tx.query_one(RELATION, &[&follower, &followee]).await?, follower == followee);
    let change = graph::follow(visibility, &relation)?;
    if let Change::New(state) = change {
        tx.execute(
            "INSERT INTO social_follows (follower, followee, state, since) VALUES ($1, $2, $3, $4)",
            &[&follower, &followee, &state.as_str(), &act.at],
        )
        .await?;
        if state == FollowState::Active {
            count(&tx, follower, followee, 1).await?;
        }
        let seq = bump(&tx, followee).await?;
        queue(&tx, act.at, &[events::followed(follower, followee, state, seq, act.request_id.clone(), act.at)]).await?;
    }
    tx.commit().await?;
    Ok(change)
}

/// End the follow of `follower` to `followee`, if any: its event.
async fn end(
    tx: &PgTransaction<'_>,
    (follower, followee): (Uuid, Uuid),
    why: Ended,
    act: &Act,
) -> Result<Option<(FollowState, DomainEvent)>, SocialStoreError> {
    let row = tx
        .query_opt(
            "DELETE FROM social_follows WHERE follower = $1 AND followee = $2 RETURNING state",
            &[&follower, &followee],
        )
        .await?;
    let Some(row) = row else { return Ok(None) };
    let state = FollowState::parse(row.get(0)).ok_or(SocialStoreError::Corrupt("follow state"))?;
    if state == FollowState::Active {
        count(tx, follower, followee, -1).await?;
    }
    let seq = bump(tx, followee).await?;
    Ok(Some((state, events::unfollowed((follower, followee), state, why, seq, act.request_id.clone(), act.at))))
}

pub(super) async fn unfollow(
    pool: &PgPool,
    follower: Uuid,
    followee: Uuid,
    act: &Act,
) -> Result<Option<FollowState>, SocialStoreError> {
    let mut conn = pool.get().await?;
    let tx = conn.transaction().await?;
    lock_pair(&tx, follower, followee).await?;
    let ended = end(&tx, (follower, followee), Ended::Unfollowed, act).await?;
    if let Some((_, event)) = &ended {
        queue(&tx, act.at, std::slice::from_ref(event)).await?;
    }
    tx.commit().await?;
    Ok(ended.map(|(state, _)| state))
}

pub(super) async fn answer(
    pool: &PgPool,
    owner: Uuid,
    requester: Uuid,
    accept: bool,
    act: &Act,
) -> Result<bool, SocialStoreError> {
    let mut conn = pool.get().await?;
    let tx = conn.transaction().await?;
    lock_pair(&tx, owner, requester).await?;
    let event = if accept {
        let n = tx
            .execute(
                "UPDATE social_follows SET state = 'active', since = $3 \
                 WHERE follower = $1 AND followee = $2 AND state = 'pending'",
                &[&requester, &owner, &act.at],
            )
            .await?;
        if n == 0 {
            return Ok(false);
        }
        count(&tx, requester, owner, 1).await?;
        let seq = bump(&tx, owner).await?;
        events::followed(requester, owner, FollowState::Active, seq, act.request_id.clone(), act.at)
    } else {
        let pending = tx
            .query_opt(
                "SELECT 1 FROM social_follows WHERE follower = $1 AND followee = $2 AND state = 'pending'",
                &[&requester, &owner],
            )
            .await?;
        if pending.is_none() {
            return Ok(false);
        }
        match end(&tx, (requester, owner), Ended::Declined, act).await? {
            Some((_, event)) => event,
            None => return Ok(false),
        }
    };
    queue(&tx, act.at, &[event]).await?;
    tx.commit().await?;
    Ok(true)
}

pub(super) async fn block(
    pool: &PgPool,
    blocker: Uuid,
    blocked: Uuid,
    on: bool,
    act: &Act,
) -> Result<bool, SocialStoreError> {
    let mut conn = pool.get().await?;
    let tx = conn.transaction().await?;
    lock_pair(&tx, blocker, blocked).await?;
    graph::not_own(&Relation { own: blocker == blocked, ..Relation::default() })?;
    let mut out = Vec::new();
    if on {
        let n = tx
            .execute(
                "INSERT INTO social_blocks (blocker, blocked, since) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                &[&blocker, &blocked, &act.at],
            )
            .await?;
        if n == 0 {
            return Ok(false);
        }
        for pair in [(blocker, blocked), (blocked, blocker)] {
            if let Some((_, event)) = end(&tx, pair, Ended::Blocked, act).await? {
                out.push(event);
            }
        }
    } else {
        let n =
            tx.execute("DELETE FROM social_blocks WHERE blocker = $1 AND blocked = $2", &[&blocker, &blocked]).await?;
        if n == 0 {
            return Ok(false);
        }
    }
    let seq = bump(&tx, blocker).await?;
    out.push(events::block((blocker, blocked), on, seq, act.request_id.clone(), act.at));
    queue(&tx, act.at, &out).await?;
    tx.commit().await?;
    Ok(true)
}

pub(super) async fn mute(
    pool: &PgPool,
    muter: Uuid,
    muted: Uuid,
    on: bool,
    at: DateTime<Utc>,
) -> Result<bool, SocialStoreError> {
    graph::not_own(&Relation { own: muter == muted, ..Relation::default() })?;
    let conn = pool.get().await?;
    let n = if on {
        let sql = "INSERT INTO social_mutes (muter, muted, since) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING";
        match conn.execute(sql, &[&muter, &muted, &at]).await {
            Ok(n) => n,
            Err(e) if e.code() == Some(&SqlState::FOREIGN_KEY_VIOLATION) => return Err(SocialStoreError::Gone),
            Err(e) => return Err(e.into()),
        }
    } else {
        conn.execute("DELETE FROM social_mutes WHERE muter = $1 AND muted = $2", &[&muter, &muted]).await?
    };
    Ok(n == 1)
}

pub(super) async fn edges(
    pool: &PgPool,
    profile: Uuid,
    side: Side,
    (before, limit): (Option<(DateTime<Utc>, Uuid)>, usize),
    viewer: Option<Uuid>,
) -> Result<Vec<Edge>, SocialStoreError> {
    // The edge table, the column naming the listed profile, the one naming the other end, and
    // the state the edges are in.
    let (table, mine, other, state) = match side {
        Side::Followers => ("social_follows", "followee", "follower", Some("active")),
        Side::Following => ("social_follows", "follower", "followee", Some("active")),
        Side::Requests => ("social_follows", "followee", "follower", Some("pending")),
        Side::Blocked => ("social_blocks", "blocker", "blocked", None),
        Side::Muted => ("social_mutes", "muter", "muted", None),
    };
    let state = state.map(|s| format!("AND e.state = '{s}'")).unwrap_or_default();
    let columns = COLUMNS.split(", ").map(|c| format!("p.{c}")).collect::<Vec<_>>().join(", ");
    let sql = format!(
        "SELECT {columns}, e.since FROM {table} e JOIN social_profiles p ON p.id = e.{other} \
         WHERE e.{mine} = $1 {state} AND ($2::timestamptz IS NULL OR (e.since, e.{other}) < ($2, $3)) \
         AND ($5::uuid IS NULL OR NOT EXISTS (SELECT 1 FROM social_blocks b \
              WHERE (b.blocker = $5 AND b.blocked = p.id) OR (b.blocker = p.id AND b.blocked = $5))) \
         ORDER BY e.since DESC, e.{other} DESC LIMIT $4"
    );
    let (at, last) = (before.map(|b| b.0), before.map_or(Uuid::nil(), |b| b.1));
    let limit = i64::try_from(limit).unwrap_or(100);
    let conn = pool.get().await?;
    let rows = conn.query(&sql, &[&profile, &at, &last, &limit, &viewer]).await?;
    rows.iter().map(|r| Ok(Edge { profile: profile_of(r)?, since: r.get("since") })).collect()
}

pub(super) async fn erase(
    pool: &PgPool,
    owner: &BlindIndex,
    at: DateTime<Utc>,
) -> Result<Option<Profile>, SocialStoreError> {
    let mut conn = pool.get().await?;
    let tx = conn.transaction().await?;
    let sql = format!("SELECT {COLUMNS} FROM social_profiles WHERE owner_index = $1");
    let Some(row) = tx.query_opt(&sql, &[&owner.as_bytes()]).await? else {
        return Ok(None);
    };
    let profile = profile_of(&row)?;
    // The profile and those whose counts change, locked in id order as every change does.
    tx.query(
        "SELECT id FROM social_profiles WHERE id = $1 OR id IN (SELECT followee FROM social_follows WHERE follower = $1) \
         OR id IN (SELECT follower FROM social_follows WHERE followee = $1) ORDER BY id FOR UPDATE",
        &[&profile.id],
    )
    .await?;
    tx.execute(
        "UPDATE social_profiles p SET followers = p.followers - 1 FROM social_follows f \
         WHERE f.follower = $1 AND f.state = 'active' AND p.id = f.followee",
        &[&profile.id],
    )
    .await?;
    tx.execute(
        "UPDATE social_profiles p SET following = p.following - 1 FROM social_follows f \
         WHERE f.followee = $1 AND f.state = 'active' AND p.id = f.follower",
        &[&profile.id],
    )
    .await?;
    // Others' posts lose this profile's reactions and comments, and the replies to its comments.
    tx.execute(
        "UPDATE social_posts p SET reactions = jsonb_set(p.reactions, ARRAY[r.kind], \
         to_jsonb((p.reactions->>r.kind)::bigint - 1)) FROM social_reactions r \
         WHERE r.reactor = $1 AND p.id = r.post AND p.author <> $1",
        &[&profile.id],
    )
    .await?;
    tx.execute(
        "WITH gone AS (SELECT id, post FROM social_comments WHERE author = $1 \
           UNION SELECT c.id, c.post FROM social_comments c JOIN social_comments t ON c.parent = t.id \
           WHERE t.author = $1), \
         n AS (SELECT post, count(*) AS k FROM gone GROUP BY post) \
         UPDATE social_posts p SET comments = p.comments - n.k FROM n WHERE p.id = n.post AND p.author <> $1",
        &[&profile.id],
    )
    .await?;
    tx.execute("DELETE FROM social_profiles WHERE id = $1", &[&profile.id]).await?;
    queue(&tx, at, &[events::profile_deleted(profile.id, profile.version + 1, at)]).await?;
    tx.commit().await?;
    Ok(Some(profile))
}
