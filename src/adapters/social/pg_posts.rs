//! Posts, reactions and comments on PostgreSQL. A change to a post locks its row (`FOR UPDATE`),
//! so its counts move with the rows they count; the post's events go to the outbox in the same
//! transaction.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::json;
use tokio_postgres::{error::SqlState, Row};
use uuid::Uuid;

use super::{
    postgres::{profile_of, queue, u, COLUMNS},
    Act, Comment, Contributions, Hidden, HomeRelations, Post, PostDraft, Profile, SocialStoreError,
};
use crate::{
    adapters::postgres::{PgPool, PgTransaction},
    domain::social::{events, moderation::Reason, post, Link, Reaction, SocialError, Visibility},
};

pub(super) const POST_COLUMNS: &str = "id, author, body, link_kind, link_ref, visibility, reactions, comments, \
                                       fanned_out, version, created_at, edited_at, hidden_at, hidden_reason";
const COMMENT_COLUMNS: &str = "id, post, parent, author, body, created_at";

pub(super) fn post_of(row: &Row) -> Result<Post, SocialStoreError> {
    let link = match (row.get::<_, Option<&str>>("link_kind"), row.get::<_, Option<&str>>("link_ref")) {
        (Some(kind), Some(reference)) => {
            Some(Link::parse(kind, reference).map_err(|_| SocialStoreError::Corrupt("post link"))?)
        }
        _ => None,
    };
    let counts: serde_json::Value = row.get("reactions");
    let mut reactions = BTreeMap::new();
    if let Some(map) = counts.as_object() {
        for (kind, n) in map {
            let kind = Reaction::parse(kind).ok_or(SocialStoreError::Corrupt("reaction"))?;
            let n = n.as_u64().ok_or(SocialStoreError::Corrupt("reaction count"))?;
            if n > 0 {
                reactions.insert(kind, n);
            }
        }
    }
    Ok(Post {
        id: row.get("id"),
        author: row.get("author"),
        body: row.get("body"),
        link,
        visibility: Visibility::parse(row.get("visibility")).ok_or(SocialStoreError::Corrupt("visibility"))?,
        reactions,
        comments: u(row.get("comments")),
        fanned_out: row.get("fanned_out"),
        version: row.get("version"),
        created_at: row.get("created_at"),
        edited_at: row.get("edited_at"),
        hidden: match (row.get::<_, Option<DateTime<Utc>>>("hidden_at"), row.get::<_, Option<&str>>("hidden_reason")) {
            (Some(at), Some(reason)) => {
                Some(Hidden { at, reason: Reason::parse(reason).ok_or(SocialStoreError::Corrupt("hidden reason"))? })
            }
            _ => None,
        },
    })
}

fn comment_of(row: &Row) -> Comment {
    Comment {
        id: row.get("id"),
        post: row.get("post"),
        parent: row.get("parent"),
        author: row.get("author"),
        body: row.get("body"),
        created_at: row.get("created_at"),
    }
}

pub(super) async fn by_id(pool: &PgPool, id: Uuid) -> Result<Option<Profile>, SocialStoreError> {
    let conn = pool.get().await?;
    let sql = format!("SELECT {COLUMNS} FROM social_profiles WHERE id = $1");
    conn.query(&sql, &[&id]).await?.first().map(profile_of).transpose()
}

pub(super) async fn by_ids(pool: &PgPool, ids: &[Uuid]) -> Result<Vec<Profile>, SocialStoreError> {
    let conn = pool.get().await?;
    let sql = format!("SELECT {COLUMNS} FROM social_profiles WHERE id = ANY($1)");
    conn.query(&sql, &[&ids]).await?.iter().map(profile_of).collect()
}

pub(super) async fn create_post(
    pool: &PgPool,
    author: Uuid,
    draft: &PostDraft,
    act: &Act,
) -> Result<Post, SocialStoreError> {
    let mut conn = pool.get().await?;
    let tx = conn.transaction().await?;
    let post = insert_post(&tx, author, draft, act).await?;
    tx.commit().await?;
    Ok(post)
}

pub(super) async fn create_activity_post(
    pool: &PgPool,
    author: Uuid,
    source: Uuid,
    draft: &PostDraft,
    act: &Act,
) -> Result<Option<Post>, SocialStoreError> {
    let mut conn = pool.get().await?;
    let tx = conn.transaction().await?;
    let sql = "INSERT INTO social_activity_sources (event_id, author, post, created_at) VALUES ($1, $2, $3, $4) \
               ON CONFLICT (event_id) DO NOTHING";
    match tx.execute(sql, &[&source, &author, &draft.id, &act.at]).await {
        Ok(0) => return Ok(None),
        Ok(_) => {}
        Err(e) if e.code() == Some(&SqlState::FOREIGN_KEY_VIOLATION) => return Err(SocialStoreError::Gone),
        Err(e) => return Err(e.into()),
    }
    let post = insert_post(&tx, author, draft, act).await?;
    tx.commit().await?;
    Ok(Some(post))
}

/// Insert the post `draft` by `author` and queue its event.
async fn insert_post(
    tx: &PgTransaction<'_>,
    author: Uuid,
    draft: &PostDraft,
    act: &Act,
) -> Result<Post, SocialStoreError> {
    let id = draft.id;
    let (kind, reference) = (draft.link.as_ref().map(Link::kind), draft.link.as_ref().map(Link::reference));
    let sql = format!(
        "INSERT INTO social_posts (id, author, body, link_kind, link_ref, visibility, version, created_at, fanned_out) \
         SELECT $1, $2, $3, $4, $5, $6, 1, $7, p.followers <= $8 FROM social_profiles p WHERE p.id = $2 \
         RETURNING {POST_COLUMNS}"
    );
    let most = i64::try_from(draft.fanout_max_followers).unwrap_or(i64::MAX);
    let row = match tx
        .query_opt(&sql, &[&id, &author, &draft.body, &kind, &reference, &draft.visibility.as_str(), &act.at, &most])
        .await
    {
        Ok(Some(row)) => row,
        Ok(None) => return Err(SocialStoreError::Gone),
        Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
            return Err(SocialStoreError::Corrupt("post id used twice"))
        }
        Err(e) => return Err(e.into()),
    };
    let post = post_of(&row)?;
    let data = events::post_data((author, draft.participant.as_deref()), draft.visibility, draft.link.as_ref());
    queue(tx, act.at, &[events::on_post(events::POST_CREATED, id, data, 1, act.request_id.clone(), act.at)]).await?;
    Ok(post)
}

pub(super) async fn post(pool: &PgPool, id: Uuid) -> Result<Option<Post>, SocialStoreError> {
    let conn = pool.get().await?;
    let sql = format!("SELECT {POST_COLUMNS} FROM social_posts WHERE id = $1");
    conn.query_opt(&sql, &[&id]).await?.as_ref().map(post_of).transpose()
}

/// Lock the post `id`: it, or not found.
pub(super) async fn locked(tx: &PgTransaction<'_>, id: Uuid) -> Result<Post, SocialStoreError> {
    let sql = format!("SELECT {POST_COLUMNS} FROM social_posts WHERE id = $1 FOR UPDATE");
    let row = tx.query_opt(&sql, &[&id]).await?.ok_or(SocialError::PostNotFound(id))?;
    post_of(&row)
}

/// Bump the post's version and apply `set` (an SQL assignment list, or empty): the post after.
async fn bump(tx: &PgTransaction<'_>, id: Uuid, set: &str) -> Result<Post, SocialStoreError> {
    let sql = format!("UPDATE social_posts SET version = version + 1{set} WHERE id = $1 RETURNING {POST_COLUMNS}");
    post_of(&tx.query_one(&sql, &[&id]).await?)
}

pub(super) async fn edit_post(
    pool: &PgPool,
    author: Uuid,
    id: Uuid,
    body: &str,
    act: &Act,
) -> Result<Post, SocialStoreError> {
    let mut conn = pool.get().await?;
    let tx = conn.transaction().await?;
    let current = locked(&tx, id).await?;
    if current.author != author {
        return Err(SocialError::NotAuthor.into());
    }
    post::may_edit(current.created_at, act.at)?;
    let sql = format!(
        "UPDATE social_posts SET body = $2, edited_at = $3, version = version + 1 WHERE id = $1 RETURNING {POST_COLUMNS}"
    );
    let edited = post_of(&tx.query_one(&sql, &[&id, &body, &act.at]).await?)?;
    let event =
        events::on_post(events::POST_UPDATED, id, Default::default(), edited.version, act.request_id.clone(), act.at);
    queue(&tx, act.at, &[event]).await?;
    tx.commit().await?;
    Ok(edited)
}

pub(super) async fn delete_post(pool: &PgPool, author: Uuid, id: Uuid, act: &Act) -> Result<(), SocialStoreError> {
    let mut conn = pool.get().await?;
    let tx = conn.transaction().await?;
    let current = locked(&tx, id).await?;
    if current.author != author {
        return Err(SocialError::NotAuthor.into());
    }
    tx.execute("DELETE FROM social_posts WHERE id = $1", &[&id]).await?;
    let data = serde_json::Map::from_iter([("author".to_owned(), json!(author))]);
    let event = events::on_post(events::POST_DELETED, id, data, current.version + 1, act.request_id.clone(), act.at);
    queue(&tx, act.at, &[event]).await?;
    tx.commit().await?;
    Ok(())
}

/// `by` added to (1) or removed from (-1) the count of `kind` reactions.
fn reaction_set(by: i64) -> String {
    format!(", reactions = jsonb_set(reactions, ARRAY[$2::text], to_jsonb(COALESCE((reactions->>$2::text)::bigint, 0) + {by}))")
}

pub(super) async fn react(
    pool: &PgPool,
    post: Uuid,
    reactor: Uuid,
    kind: Reaction,
    act: &Act,
) -> Result<Post, SocialStoreError> {
    let mut conn = pool.get().await?;
    let tx = conn.transaction().await?;
    locked(&tx, post).await?;
    let inserted = tx
        .execute(
            "INSERT INTO social_reactions (post, reactor, kind, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            &[&post, &reactor, &kind.as_str(), &act.at],
        )
        .await;
    match inserted {
        Ok(0) => return Err(SocialError::AlreadyReacted.into()),
        Ok(_) => {}
        Err(e) if e.code() == Some(&SqlState::FOREIGN_KEY_VIOLATION) => return Err(SocialStoreError::Gone),
        Err(e) => return Err(e.into()),
    }
    let sql = format!(
        "UPDATE social_posts SET version = version + 1{} WHERE id = $1 RETURNING {POST_COLUMNS}",
        reaction_set(1)
    );
    let after = post_of(&tx.query_one(&sql, &[&post, &kind.as_str()]).await?)?;
    let data =
        serde_json::Map::from_iter([("reactor".to_owned(), json!(reactor)), ("kind".to_owned(), json!(kind.as_str()))]);
    let event = events::on_post(events::REACTION_CREATED, post, data, after.version, act.request_id.clone(), act.at);
    queue(&tx, act.at, &[event]).await?;
    tx.commit().await?;
    Ok(after)
}

pub(super) async fn unreact(
    pool: &PgPool,
    post: Uuid,
    reactor: Uuid,
    act: &Act,
) -> Result<(Post, Option<Reaction>), SocialStoreError> {
    let mut conn = pool.get().await?;
    let tx = conn.transaction().await?;
    let current = locked(&tx, post).await?;
    let removed = tx
        .query_opt("DELETE FROM social_reactions WHERE post = $1 AND reactor = $2 RETURNING kind", &[&post, &reactor])
        .await?;
    let Some(row) = removed else {
        return Ok((current, None));
    };
    let kind = Reaction::parse(row.get(0)).ok_or(SocialStoreError::Corrupt("reaction"))?;
    let sql = format!(
        "UPDATE social_posts SET version = version + 1{} WHERE id = $1 RETURNING {POST_COLUMNS}",
        reaction_set(-1)
    );
    let after = post_of(&tx.query_one(&sql, &[&post, &kind.as_str()]).await?)?;
    let data =
        serde_json::Map::from_iter([("reactor".to_owned(), json!(reactor)), ("kind".to_owned(), json!(kind.as_str()))]);
    let event = events::on_post(events::REACTION_REMOVED, post, data, after.version, act.request_id.clone(), act.at);
    queue(&tx, act.at, &[event]).await?;
    tx.commit().await?;
    Ok((after, Some(kind)))
}

pub(super) async fn reactions_of(
    pool: &PgPool,
    reactor: Uuid,
    posts: &[Uuid],
) -> Result<BTreeMap<Uuid, Reaction>, SocialStoreError> {
    let conn = pool.get().await?;
    let rows = conn
        .query("SELECT post, kind FROM social_reactions WHERE reactor = $1 AND post = ANY($2)", &[&reactor, &posts])
        .await?;
    rows.iter()
        .map(|r| Ok((r.get(0), Reaction::parse(r.get(1)).ok_or(SocialStoreError::Corrupt("reaction"))?)))
        .collect()
}

pub(super) async fn comment(
    pool: &PgPool,
    (post, parent): (Uuid, Option<Uuid>),
    (id, author): (Uuid, Uuid),
    (body, participant): (&str, &str),
    act: &Act,
) -> Result<Comment, SocialStoreError> {
    let mut conn = pool.get().await?;
    let tx = conn.transaction().await?;
    locked(&tx, post).await?;
    if let Some(parent) = parent {
        let row = tx.query_opt("SELECT post, parent FROM social_comments WHERE id = $1", &[&parent]).await?;
        let row = row.ok_or(SocialError::PostNotFound(parent))?;
        if row.get::<_, Uuid>(0) != post {
            return Err(SocialError::PostNotFound(parent).into());
        }
        if row.get::<_, Option<Uuid>>(1).is_some() {
            return Err(SocialError::ThreadTooDeep.into());
        }
    }
    let sql = format!(
        "INSERT INTO social_comments (id, post, parent, author, body, created_at) VALUES ($1, $2, $3, $4, $5, $6) \
         RETURNING {COMMENT_COLUMNS}"
    );
    let row = match tx.query_one(&sql, &[&id, &post, &parent, &author, &body, &act.at]).await {
        Ok(row) => row,
        Err(e) if e.code() == Some(&SqlState::FOREIGN_KEY_VIOLATION) => return Err(SocialStoreError::Gone),
        Err(e) => return Err(e.into()),
    };
    let after = bump(&tx, post, ", comments = comments + 1").await?;
    let mut data = serde_json::Map::from_iter([
        ("comment".to_owned(), json!(id)),
        ("author".to_owned(), json!(author)),
        ("participant".to_owned(), json!(participant)),
    ]);
    if let Some(parent) = parent {
        data.insert("parent".into(), json!(parent));
    }
    let event = events::on_post(events::COMMENT_CREATED, post, data, after.version, act.request_id.clone(), act.at);
    queue(&tx, act.at, &[event]).await?;
    tx.commit().await?;
    Ok(comment_of(&row))
}

pub(super) async fn comment_by_id(pool: &PgPool, id: Uuid) -> Result<Option<Comment>, SocialStoreError> {
    let conn = pool.get().await?;
    let sql = format!("SELECT {COMMENT_COLUMNS} FROM social_comments WHERE id = $1");
    Ok(conn.query_opt(&sql, &[&id]).await?.as_ref().map(comment_of))
}

pub(super) async fn delete_comment(pool: &PgPool, id: Uuid, act: &Act) -> Result<(), SocialStoreError> {
    let mut conn = pool.get().await?;
    let tx = conn.transaction().await?;
    let row = tx.query_opt("SELECT post FROM social_comments WHERE id = $1", &[&id]).await?;
    let post: Uuid = row.ok_or(SocialError::PostNotFound(id))?.get(0);
    locked(&tx, post).await?;
    // The comment and its replies.
    let gone = tx.execute("DELETE FROM social_comments WHERE id = $1 OR parent = $1", &[&id]).await?;
    if gone == 0 {
        return Err(SocialError::PostNotFound(id).into());
    }
    let by = i64::try_from(gone).unwrap_or(i64::MAX);
    let sql = format!("UPDATE social_posts SET version = version + 1, comments = comments - $2 WHERE id = $1 RETURNING {POST_COLUMNS}");
    let after = post_of(&tx.query_one(&sql, &[&post, &by]).await?)?;
    let data = serde_json::Map::from_iter([("comment".to_owned(), json!(id)), ("removed".to_owned(), json!(gone))]);
    let event = events::on_post(events::COMMENT_DELETED, post, data, after.version, act.request_id.clone(), act.at);
    queue(&tx, act.at, &[event]).await?;
    tx.commit().await?;
    Ok(())
}

pub(super) async fn comments(
    pool: &PgPool,
    post: Uuid,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: usize,
) -> Result<Vec<Comment>, SocialStoreError> {
    let conn = pool.get().await?;
    let sql = format!(
        "SELECT {COMMENT_COLUMNS} FROM social_comments WHERE post = $1 \
         AND ($2::timestamptz IS NULL OR (created_at, id) > ($2, $3)) ORDER BY created_at, id LIMIT $4"
    );
    let (at, last) = (after.map(|a| a.0), after.map_or(Uuid::nil(), |a| a.1));
    let limit = i64::try_from(limit).unwrap_or(100);
    Ok(conn.query(&sql, &[&post, &at, &last, &limit]).await?.iter().map(comment_of).collect())
}

pub(super) async fn posts_by(
    pool: &PgPool,
    (author, shown, with_hidden): (Uuid, &[Visibility], bool),
    before: Option<(DateTime<Utc>, Uuid)>,
    limit: usize,
) -> Result<Vec<Post>, SocialStoreError> {
    let conn = pool.get().await?;
    let shown: Vec<&str> = shown.iter().map(|v| v.as_str()).collect();
    let sql = format!(
        "SELECT {POST_COLUMNS} FROM social_posts WHERE author = $1 AND visibility = ANY($2) \
         AND ($6 OR hidden_at IS NULL) \
         AND ($3::timestamptz IS NULL OR (created_at, id) < ($3, $4)) ORDER BY created_at DESC, id DESC LIMIT $5"
    );
    let (at, last) = (before.map(|b| b.0), before.map_or(Uuid::nil(), |b| b.1));
    let limit = i64::try_from(limit).unwrap_or(100);
    conn.query(&sql, &[&author, &shown, &at, &last, &limit, &with_hidden]).await?.iter().map(post_of).collect()
}

pub(super) async fn home(
    pool: &PgPool,
    (viewer, with_hidden): (Uuid, bool),
    before: Option<(DateTime<Utc>, Uuid)>,
    limit: usize,
) -> Result<Vec<Post>, SocialStoreError> {
    let conn = pool.get().await?;
    let sql = format!(
        "SELECT {POST_COLUMNS} FROM social_posts WHERE \
         (author = $1 OR (visibility <> 'private' AND ($5 OR hidden_at IS NULL) AND author IN \
            (SELECT followee FROM social_follows WHERE follower = $1 AND state = 'active'))) \
         AND author NOT IN (SELECT muted FROM social_mutes WHERE muter = $1) \
         AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3)) ORDER BY created_at DESC, id DESC LIMIT $4"
    );
    let (at, last) = (before.map(|b| b.0), before.map_or(Uuid::nil(), |b| b.1));
    let limit = i64::try_from(limit).unwrap_or(100);
    conn.query(&sql, &[&viewer, &at, &last, &limit, &with_hidden]).await?.iter().map(post_of).collect()
}

pub(super) async fn contributions(pool: &PgPool, author: Uuid) -> Result<Contributions, SocialStoreError> {
    let conn = pool.get().await?;
    let sql = format!("SELECT {COMMENT_COLUMNS} FROM social_comments WHERE author = $1 ORDER BY created_at, id");
    let comments = conn.query(&sql, &[&author]).await?.iter().map(comment_of).collect();
    let rows = conn
        .query(
            "SELECT post, kind, created_at FROM social_reactions WHERE reactor = $1 ORDER BY created_at, post",
            &[&author],
        )
        .await?;
    let reactions = rows
        .iter()
        .map(|r| Ok((r.get(0), Reaction::parse(r.get(1)).ok_or(SocialStoreError::Corrupt("reaction"))?, r.get(2))))
        .collect::<Result<_, SocialStoreError>>()?;
    Ok((comments, reactions))
}

pub(super) async fn follower_ids(pool: &PgPool, author: Uuid) -> Result<Vec<Uuid>, SocialStoreError> {
    let conn = pool.get().await?;
    let rows =
        conn.query("SELECT follower FROM social_follows WHERE followee = $1 AND state = 'active'", &[&author]).await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

pub(super) async fn posts_by_ids(pool: &PgPool, ids: &[Uuid]) -> Result<Vec<Post>, SocialStoreError> {
    let conn = pool.get().await?;
    let sql = format!("SELECT {POST_COLUMNS} FROM social_posts WHERE id = ANY($1)");
    conn.query(&sql, &[&ids]).await?.iter().map(post_of).collect()
}

pub(super) async fn home_relations(pool: &PgPool, viewer: Uuid) -> Result<HomeRelations, SocialStoreError> {
    let conn = pool.get().await?;
    // Both in one statement: followed profiles with their counts of followers, then the muted.
    let rows = conn
        .query(
            "SELECT p.id, p.followers, false FROM social_follows f JOIN social_profiles p ON p.id = f.followee \
             WHERE f.follower = $1 AND f.state = 'active' \
             UNION ALL SELECT muted, 0, true FROM social_mutes WHERE muter = $1",
            &[&viewer],
        )
        .await?;
    let mut relations = HomeRelations::default();
    for r in &rows {
        if r.get::<_, bool>(2) {
            relations.muted.insert(r.get(0));
        } else {
            relations.followed.insert(r.get(0), u(r.get(1)));
        }
    }
    Ok(relations)
}

pub(super) async fn unfanned_posts(
    pool: &PgPool,
    authors: &[Uuid],
    before: Option<(DateTime<Utc>, Uuid)>,
    limit: usize,
) -> Result<Vec<Post>, SocialStoreError> {
    let conn = pool.get().await?;
    let sql = format!(
        "SELECT {POST_COLUMNS} FROM social_posts WHERE author = ANY($1) AND NOT fanned_out AND visibility <> 'private' AND hidden_at IS NULL \
         AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3)) ORDER BY created_at DESC, id DESC LIMIT $4"
    );
    let (at, last) = (before.map(|b| b.0), before.map_or(Uuid::nil(), |b| b.1));
    let limit = i64::try_from(limit).unwrap_or(100);
    conn.query(&sql, &[&authors, &at, &last, &limit]).await?.iter().map(post_of).collect()
}
