//! The PostgreSQL store: activities recorded in batches ([`record`]), one transaction each,
//! under locks on the subjects' rows; reads, rebuilds, leaderboard membership and erasure.

mod record;

pub(super) use record::{note, record_batch};

use chrono::{DateTime, NaiveDate, Utc};
use tokio_postgres::Row;
use uuid::Uuid;

use super::{
    score_of, window_start, Activity, Erased, EsgStoreError, FactorUsed, Month, Origin, Participation, SubjectState,
    Totals, WalletRecord,
};
use crate::{
    adapters::postgres::{PgPool, PgTransaction},
    domain::{
        esg::{ActivityType, DayTotal, Footprint, Report, Took, WalletChange},
        fintech::MovementKind,
        privacy::BlindIndex,
    },
};

pub(super) const ACTIVITY_COLUMNS: &str = "id, source, kind, day, distance_m, co2e_g, baseline_g, avoided_g, \
                                           factor_source, factor_version, factor_route, recorded_at";

pub(super) fn u(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

pub(super) fn i(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(super) fn kind_of(name: &str) -> Result<ActivityType, EsgStoreError> {
    ActivityType::ALL.into_iter().find(|t| t.as_str() == name).ok_or(EsgStoreError::Corrupt("activity type"))
}

pub(super) fn activity_of(row: &Row) -> Result<Activity, EsgStoreError> {
    let distance: i64 = row.get("distance_m");
    Ok(Activity {
        id: row.get("id"),
        origin: Origin::parse(row.get("source"))?,
        report: Report {
            kind: kind_of(row.get("kind"))?,
            date: row.get("day"),
            distance_m: u32::try_from(distance).map_err(|_| EsgStoreError::Corrupt("distance"))?,
        },
        footprint: Footprint {
            co2e_g: u(row.get("co2e_g")),
            baseline_g: u(row.get("baseline_g")),
            avoided_g: u(row.get("avoided_g")),
        },
        factor: FactorUsed {
            source: row.get("factor_source"),
            version: row.get("factor_version"),
            route: row.get("factor_route"),
        },
        recorded_at: row.get("recorded_at"),
    })
}

pub(super) fn state_of(row: &Row) -> Result<SubjectState, EsgStoreError> {
    let score: Option<serde_json::Value> = row.get("score");
    let score = match score {
        Some(v) => Some(serde_json::from_value(v).map_err(|_| EsgStoreError::Corrupt("score"))?),
        None => None,
    };
    Ok(SubjectState { score, ..unscored_state_of(row) })
}

/// A subject's row read without its score (recording recomputes it): [`UNSCORED_COLUMNS`].
pub(super) fn unscored_state_of(row: &Row) -> SubjectState {
    SubjectState {
        totals: Totals {
            activities: u(row.get("activities")),
            distance_m: u(row.get("distance_m")),
            co2e_g: u(row.get("co2e_g")),
            avoided_g: u(row.get("avoided_g")),
        },
        score: None,
        version: row.get("version"),
        updated_at: row.get("updated_at"),
    }
}

/// The columns of a subject's row but its score.
pub(super) const UNSCORED_COLUMNS: &str =
    "subject_index, activities, distance_m, co2e_g, avoided_g, version, updated_at";

/// A subject's row with its score: [`state_of`].
const SUBJECT_COLUMNS: &str = "subject_index, activities, distance_m, co2e_g, avoided_g, version, updated_at, score";

/// Write each subject's state to their row (locked by the caller).
pub(super) async fn write_subjects(
    tx: &PgTransaction<'_>,
    states: &[(&[u8], &SubjectState)],
) -> Result<(), EsgStoreError> {
    let mut indexes: Vec<&[u8]> = Vec::with_capacity(states.len());
    let (mut activities, mut distances, mut co2e, mut avoided) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut methods, mut as_of, mut totals, mut scores) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut versions, mut updated) = (Vec::new(), Vec::new());
    for (index, state) in states {
        let score = state.score.as_ref().ok_or(EsgStoreError::Corrupt("score"))?;
        let t = &state.totals;
        indexes.push(index);
        activities.push(i(t.activities));
        distances.push(i(t.distance_m));
        co2e.push(i(t.co2e_g));
        avoided.push(i(t.avoided_g));
        methods.push(score.method_version.clone());
        as_of.push(score.as_of);
        totals.push(i16::from(score.total));
        scores.push(tokio_postgres::types::Json(score));
        versions.push(state.version);
        updated.push(state.updated_at);
    }
    tx.execute(
        "UPDATE esg_subjects s SET activities = v.activities, distance_m = v.distance_m, co2e_g = v.co2e_g,
           avoided_g = v.avoided_g, method_version = v.method_version, as_of = v.as_of, total = v.total,
           score = v.score, version = v.version, updated_at = v.updated_at
         FROM unnest($1::bytea[], $2::int8[], $3::int8[], $4::int8[], $5::int8[], $6::text[], $7::date[],
                     $8::int2[], $9::jsonb[], $10::int8[], $11::timestamptz[])
           AS v(subject_index, activities, distance_m, co2e_g, avoided_g, method_version, as_of, total, score,
                version, updated_at)
         WHERE s.subject_index = v.subject_index",
        &[&indexes, &activities, &distances, &co2e, &avoided, &methods, &as_of, &totals, &scores, &versions, &updated],
    )
    .await?;
    Ok(())
}
/// The subject's daily totals per type over the window ending on `as_of`.
async fn window(tx: &PgTransaction<'_>, index: &[u8], as_of: NaiveDate) -> Result<Vec<DayTotal>, EsgStoreError> {
    let rows = tx
        .query(
            "SELECT day, kind, sum(distance_m)::bigint, sum(baseline_g)::bigint, sum(avoided_g)::bigint
             FROM esg_activities WHERE subject_index = $1 AND day BETWEEN $2 AND $3 GROUP BY day, kind",
            &[&index, &window_start(as_of), &as_of],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(DayTotal {
                day: r.get(0),
                kind: kind_of(r.get(1))?,
                distance_m: u(r.get(2)),
                baseline_g: u(r.get(3)),
                avoided_g: u(r.get(4)),
            })
        })
        .collect()
}

pub(super) async fn subject(pool: &PgPool, index: &BlindIndex) -> Result<Option<SubjectState>, EsgStoreError> {
    let conn = pool.get().await?;
    let sql = format!("SELECT {SUBJECT_COLUMNS} FROM esg_subjects WHERE subject_index = $1 AND version > 0");
    let row = conn.query_opt(&sql, &[&index.as_bytes()]).await?;
    row.as_ref().map(state_of).transpose()
}

pub(super) async fn activity(pool: &PgPool, index: &BlindIndex, id: Uuid) -> Result<Option<Activity>, EsgStoreError> {
    let conn = pool.get().await?;
    let sql = format!("SELECT {ACTIVITY_COLUMNS} FROM esg_activities WHERE id = $1 AND subject_index = $2");
    let row = conn.query_opt(&sql, &[&id, &index.as_bytes()]).await?;
    row.as_ref().map(activity_of).transpose()
}

pub(super) async fn activities(
    pool: &PgPool,
    index: &BlindIndex,
    before: Option<(DateTime<Utc>, Uuid)>,
    limit: usize,
) -> Result<Vec<Activity>, EsgStoreError> {
    let conn = pool.get().await?;
    let limit = i64::try_from(limit).unwrap_or(100);
    let rows = match before {
        None => {
            let sql = format!(
                "SELECT {ACTIVITY_COLUMNS} FROM esg_activities WHERE subject_index = $1
                 ORDER BY recorded_at DESC, id DESC LIMIT $2"
            );
            conn.query(&sql, &[&index.as_bytes(), &limit]).await?
        }
        Some((at, id)) => {
            let sql = format!(
                "SELECT {ACTIVITY_COLUMNS} FROM esg_activities WHERE subject_index = $1 AND (recorded_at, id) < ($2, $3)
                 ORDER BY recorded_at DESC, id DESC LIMIT $4"
            );
            conn.query(&sql, &[&index.as_bytes(), &at, &id, &limit]).await?
        }
    };
    rows.iter().map(activity_of).collect()
}

pub(super) async fn months(pool: &PgPool, index: &BlindIndex, since: NaiveDate) -> Result<Vec<Month>, EsgStoreError> {
    let conn = pool.get().await?;
    let rows = conn
        .query(
            "SELECT month, kind, activities, distance_m, co2e_g, avoided_g FROM esg_monthly
             WHERE subject_index = $1 AND month >= $2 ORDER BY month, kind",
            &[&index.as_bytes(), &since],
        )
        .await?;
    let mut months = rows
        .iter()
        .map(|r| {
            Ok(Month {
                month: r.get(0),
                kind: kind_of(r.get(1))?,
                activities: u(r.get(2)),
                distance_m: u(r.get(3)),
                co2e_g: u(r.get(4)),
                avoided_g: u(r.get(5)),
            })
        })
        .collect::<Result<Vec<_>, EsgStoreError>>()?;
    // The same order as the embedded store: by month, then by type's declaration order.
    months.sort_by_key(|m| (m.month, m.kind));
    Ok(months)
}

pub(super) async fn participations(pool: &PgPool, index: &BlindIndex) -> Result<Vec<Participation>, EsgStoreError> {
    let conn = pool.get().await?;
    let rows = conn
        .query(
            "SELECT id, kind, day, recorded_at FROM esg_participation WHERE subject_index = $1 ORDER BY day, id",
            &[&index.as_bytes()],
        )
        .await?;
    rows.iter()
        .map(|r| {
            let kind = Took::parse(r.get(1)).ok_or(EsgStoreError::Corrupt("participation kind"))?;
            Ok(Participation { id: r.get(0), kind, day: r.get(2), recorded_at: r.get(3) })
        })
        .collect()
}

pub(super) async fn wallet_changes(pool: &PgPool, index: &BlindIndex) -> Result<Vec<WalletRecord>, EsgStoreError> {
    let conn = pool.get().await?;
    let rows = conn
        .query(
            "SELECT id, wallet, seq, kind, at, recorded_at FROM esg_wallet_changes WHERE subject_index = $1
             ORDER BY wallet, seq",
            &[&index.as_bytes()],
        )
        .await?;
    rows.iter()
        .map(|r| {
            let kind = MovementKind::parse(r.get(3))
                .filter(|k| k.is_lifecycle())
                .ok_or(EsgStoreError::Corrupt("wallet change kind"))?;
            let change = WalletChange { wallet: r.get(1), seq: r.get(2), kind };
            Ok(WalletRecord { id: r.get(0), change, at: r.get(4), recorded_at: r.get(5) })
        })
        .collect()
}

pub(super) async fn erase(pool: &PgPool, index: &BlindIndex) -> Result<Erased, EsgStoreError> {
    let mut conn = pool.get().await?;
    let tx = conn.transaction().await?;
    let index = index.as_bytes();
    let erased = Erased {
        activities: tx.execute("DELETE FROM esg_activities WHERE subject_index = $1", &[&index]).await?,
        participations: tx.execute("DELETE FROM esg_participation WHERE subject_index = $1", &[&index]).await?,
        wallet_changes: tx.execute("DELETE FROM esg_wallet_changes WHERE subject_index = $1", &[&index]).await?,
    };
    tx.execute("DELETE FROM esg_leaderboard_members WHERE subject_index = $1", &[&index]).await?;
    tx.execute("DELETE FROM esg_monthly WHERE subject_index = $1", &[&index]).await?;
    tx.execute("DELETE FROM esg_subjects WHERE subject_index = $1", &[&index]).await?;
    tx.commit().await?;
    Ok(erased)
}

pub(super) async fn subjects_after(
    pool: &PgPool,
    after: Option<&BlindIndex>,
    limit: usize,
) -> Result<Vec<BlindIndex>, EsgStoreError> {
    let conn = pool.get().await?;
    let after: Vec<u8> = after.map(|i| i.as_bytes().to_vec()).unwrap_or_default();
    let limit = i64::try_from(limit).unwrap_or(1000);
    let rows = conn
        .query(
            "SELECT subject_index FROM esg_activities WHERE subject_index > $1
             UNION SELECT subject_index FROM esg_participation WHERE subject_index > $1
             UNION SELECT subject_index FROM esg_wallet_changes WHERE subject_index > $1
             ORDER BY subject_index LIMIT $2",
            &[&after, &limit],
        )
        .await?;
    rows.iter()
        .map(|r| BlindIndex::from_slice(r.get::<_, &[u8]>(0)).ok_or(EsgStoreError::Corrupt("subject index")))
        .collect()
}

pub(super) async fn count_subjects(pool: &PgPool) -> Result<u64, EsgStoreError> {
    let conn = pool.get().await?;
    let row = conn
        .query_one(
            "SELECT count(*) FROM (SELECT subject_index FROM esg_activities
                                   UNION SELECT subject_index FROM esg_participation
                                   UNION SELECT subject_index FROM esg_wallet_changes) s",
            &[],
        )
        .await?;
    Ok(u(row.get(0)))
}

pub(super) async fn rebuild(pool: &PgPool, index: &BlindIndex, as_of: NaiveDate) -> Result<bool, EsgStoreError> {
    let index = index.as_bytes();
    let mut conn = pool.get().await?;
    let tx = conn.transaction().await?;
    let totals = tx
        .query_one(
            "SELECT count(*), coalesce(sum(distance_m), 0)::bigint, coalesce(sum(co2e_g), 0)::bigint,
                    coalesce(sum(avoided_g), 0)::bigint, max(recorded_at)
             FROM esg_activities WHERE subject_index = $1",
            &[&index],
        )
        .await?;
    let took = tx
        .query_one("SELECT count(*), max(recorded_at) FROM esg_participation WHERE subject_index = $1", &[&index])
        .await?;
    let wallets = tx
        .query_one("SELECT count(*), max(recorded_at) FROM esg_wallet_changes WHERE subject_index = $1", &[&index])
        .await?;
    // Each activity, participation and wallet change recorded made one version.
    let versions = totals.get::<_, i64>(0) + took.get::<_, i64>(0) + wallets.get::<_, i64>(0);
    let last = [
        totals.get::<_, Option<DateTime<Utc>>>(4),
        took.get::<_, Option<DateTime<Utc>>>(1),
        wallets.get::<_, Option<DateTime<Utc>>>(1),
    ];
    let Some(updated_at) = last.into_iter().flatten().max() else {
        return Ok(false);
    };
    tx.execute(
        "INSERT INTO esg_subjects (subject_index, activities, distance_m, co2e_g, avoided_g, version, updated_at)
         VALUES ($1, 0, 0, 0, 0, 0, $2) ON CONFLICT (subject_index) DO NOTHING",
        &[&index, &updated_at],
    )
    .await?;
    let sql = format!("SELECT {SUBJECT_COLUMNS} FROM esg_subjects WHERE subject_index = $1 FOR UPDATE");
    let row = tx.query_one(&sql, &[&index]).await?;
    let before = state_of(&row)?;
    let months_before = tx
        .query("SELECT month, kind, activities, distance_m, co2e_g, avoided_g FROM esg_monthly WHERE subject_index = $1 ORDER BY month, kind", &[&index])
        .await?;
    tx.execute("DELETE FROM esg_monthly WHERE subject_index = $1", &[&index]).await?;
    tx.execute(
        "INSERT INTO esg_monthly (subject_index, month, kind, activities, distance_m, co2e_g, avoided_g)
         SELECT subject_index, date_trunc('month', day)::date, kind, count(*), sum(distance_m), sum(co2e_g), sum(avoided_g)
         FROM esg_activities WHERE subject_index = $1 GROUP BY subject_index, date_trunc('month', day)::date, kind",
        &[&index],
    )
    .await?;
    let months_after = tx
        .query("SELECT month, kind, activities, distance_m, co2e_g, avoided_g FROM esg_monthly WHERE subject_index = $1 ORDER BY month, kind", &[&index])
        .await?;
    let days = window(&tx, index, as_of).await?;
    let took_part: Vec<NaiveDate> = record::participation_days(&tx, &[index], (window_start(as_of), as_of))
        .await?
        .into_iter()
        .map(|(_, day)| day)
        .collect();
    let standing = record::good_standing(&tx, &[index]).await?.into_values().next();
    let state = SubjectState {
        totals: Totals {
            activities: u(totals.get(0)),
            distance_m: u(totals.get(1)),
            co2e_g: u(totals.get(2)),
            avoided_g: u(totals.get(3)),
        },
        score: Some(score_of(&days, &took_part, standing, as_of)),
        version: versions,
        updated_at,
    };
    write_subjects(&tx, &[(index, &state)]).await?;
    tx.commit().await?;
    let same_months = months_before.len() == months_after.len()
        && months_before.iter().zip(&months_after).all(|(a, b)| {
            (0..6).all(|c| match c {
                0 => a.get::<_, NaiveDate>(0) == b.get::<_, NaiveDate>(0),
                1 => a.get::<_, &str>(1) == b.get::<_, &str>(1),
                c => a.get::<_, i64>(c) == b.get::<_, i64>(c),
            })
        });
    Ok(before != state || !same_months)
}

pub(super) async fn join(
    pool: &PgPool,
    index: &BlindIndex,
    community: Option<&str>,
    at: DateTime<Utc>,
) -> Result<Option<Option<String>>, EsgStoreError> {
    let mut conn = pool.get().await?;
    let tx = conn.transaction().await?;
    let before = tx
        .query_opt(
            "SELECT community FROM esg_leaderboard_members WHERE subject_index = $1 FOR UPDATE",
            &[&index.as_bytes()],
        )
        .await?
        .map(|r| r.get::<_, Option<String>>(0));
    tx.execute(
        "INSERT INTO esg_leaderboard_members (subject_index, community, joined_at) VALUES ($1, $2, $3)
         ON CONFLICT (subject_index) DO UPDATE SET community = EXCLUDED.community",
        &[&index.as_bytes(), &community, &at],
    )
    .await?;
    tx.commit().await?;
    Ok(before)
}

pub(super) async fn leave(pool: &PgPool, index: &BlindIndex) -> Result<Option<Option<String>>, EsgStoreError> {
    let conn = pool.get().await?;
    let row = conn
        .query_opt(
            "DELETE FROM esg_leaderboard_members WHERE subject_index = $1 RETURNING community",
            &[&index.as_bytes()],
        )
        .await?;
    Ok(row.map(|r| r.get::<_, Option<String>>(0)))
}

pub(super) async fn member(pool: &PgPool, index: &BlindIndex) -> Result<Option<Option<String>>, EsgStoreError> {
    let conn = pool.get().await?;
    let row = conn
        .query_opt("SELECT community FROM esg_leaderboard_members WHERE subject_index = $1", &[&index.as_bytes()])
        .await?;
    Ok(row.map(|r| r.get::<_, Option<String>>(0)))
}

pub(super) async fn standings(
    pool: &PgPool,
    month: NaiveDate,
    community: Option<&str>,
) -> Result<Vec<(BlindIndex, u64)>, EsgStoreError> {
    let conn = pool.get().await?;
    let rows = conn
        .query(
            "SELECT m.subject_index, sum(x.avoided_g)::bigint FROM esg_leaderboard_members m
             JOIN esg_monthly x ON x.subject_index = m.subject_index AND x.month = $1
             WHERE $2::text IS NULL OR m.community = $2
             GROUP BY m.subject_index",
            &[&month, &community],
        )
        .await?;
    rows.iter()
        .map(|r| {
            let index = BlindIndex::from_slice(r.get::<_, &[u8]>(0)).ok_or(EsgStoreError::Corrupt("subject index"))?;
            Ok((index, u(r.get(1))))
        })
        .collect()
}
