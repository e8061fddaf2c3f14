//! The PostgreSQL store: one transaction per recorded activity, under a lock on the subject's
//! row; the score is recomputed from the stored activities of its window.

use chrono::{DateTime, NaiveDate, Utc};
use tokio_postgres::Row;
use uuid::Uuid;

use std::collections::{BTreeMap, HashMap};

use super::{
    day_total, events_of, month_of, score_of, window_start, Activity, Entry, EsgStoreError, FactorUsed, Month, Origin,
    Recorded, Standing, SubjectState, Totals,
};
use crate::{
    adapters::{outbox, postgres::PgPool},
    domain::{
        esg::{self, ActivityType, DayTotal, DuplicateRule, EsgError, Footprint, Report},
        privacy::BlindIndex,
    },
};

const ACTIVITY_COLUMNS: &str = "id, source, kind, day, distance_m, co2e_g, baseline_g, avoided_g, factor_source, \
                                factor_version, factor_route, recorded_at";

fn u(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn i(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn kind_of(name: &str) -> Result<ActivityType, EsgStoreError> {
    ActivityType::ALL.into_iter().find(|t| t.as_str() == name).ok_or(EsgStoreError::Corrupt("activity type"))
}

fn activity_of(row: &Row) -> Result<Activity, EsgStoreError> {
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

fn state_of(row: &Row) -> Result<SubjectState, EsgStoreError> {
    let score: Option<serde_json::Value> = row.get("score");
    let score = match score {
        Some(v) => Some(serde_json::from_value(v).map_err(|_| EsgStoreError::Corrupt("score"))?),
        None => None,
    };
    Ok(SubjectState {
        totals: Totals {
            activities: u(row.get("activities")),
            distance_m: u(row.get("distance_m")),
            co2e_g: u(row.get("co2e_g")),
            avoided_g: u(row.get("avoided_g")),
        },
        score,
        version: row.get("version"),
        updated_at: row.get("updated_at"),
    })
}

/// What a batch knows of one subject while it records their entries.
struct Pending {
    /// As stored before the batch, then after each entry recorded.
    state: SubjectState,
    /// Their daily totals in the batch's window, the batch's activities added as recorded.
    days: Vec<DayTotal>,
    /// Their reports kept on the days of the batch's reports: (type, day, distance).
    reports: Vec<(ActivityType, NaiveDate, u32)>,
    /// Whether the batch recorded anything for them.
    changed: bool,
}

pub(super) async fn record_batch(pool: &PgPool, entries: &[Entry]) -> Result<Vec<Recorded>, EsgStoreError> {
    if entries.is_empty() {
        return Ok(Vec::new());
    }
    let mut conn = pool.get().await?;
    let tx = conn.transaction().await?;
    // The subjects' rows first, created and locked in blind-index order (every batch takes them
    // in that order, so two replicas' batches never deadlock): every change to one subject is
    // serialised here.
    let mut first_at: BTreeMap<[u8; 32], DateTime<Utc>> = BTreeMap::new();
    for (credit, a) in entries {
        let at = first_at.entry(credit.index.0).or_insert(a.recorded_at);
        *at = (*at).min(a.recorded_at);
    }
    let indexes: Vec<&[u8]> = first_at.keys().map(|k| k.as_slice()).collect();
    let created: Vec<DateTime<Utc>> = first_at.values().copied().collect();
    let ids: Vec<Uuid> = entries.iter().map(|(_, a)| a.id).collect();
    let reports: Vec<&Entry> = entries.iter().filter(|(_, a)| a.origin == Origin::Report).collect();
    let report_who: Vec<&[u8]> = reports.iter().map(|(c, _)| c.index.as_bytes()).collect();
    let report_days: Vec<NaiveDate> = reports.iter().map(|(_, a)| a.report.date).collect();
    let first = entries.iter().map(|(c, _)| window_start(c.as_of)).min().unwrap_or_default();
    let last = entries.iter().map(|(c, _)| c.as_of).max().unwrap_or_default();
    let kept_sql = format!("SELECT {ACTIVITY_COLUMNS} FROM esg_activities WHERE id = ANY($1)");
    // Sent together (one round trip), run in this order: the rows, then what the batch reads
    // under their locks: the ids recorded before, the reports kept on the days of the batch's
    // reports (for the duplicate rule) and the window's daily totals as stored before the batch.
    let (_, rows, kept_rows, report_rows, day_rows) = futures::try_join!(
        async {
            tx.execute(
            "INSERT INTO esg_subjects (subject_index, activities, distance_m, co2e_g, avoided_g, version, updated_at)
             SELECT i, 0, 0, 0, 0, 0, t FROM unnest($1::bytea[], $2::timestamptz[]) AS v(i, t)
             ON CONFLICT (subject_index) DO NOTHING",
            &[&indexes, &created],
        ).await
        },
        async {
            tx.query(
                "SELECT * FROM esg_subjects WHERE subject_index = ANY($1) ORDER BY subject_index FOR UPDATE",
                &[&indexes],
            )
            .await
        },
        async { tx.query(&kept_sql, &[&ids]).await },
        async {
            tx.query(
                "SELECT subject_index, kind, day, distance_m FROM esg_activities
             WHERE source = 'report' AND subject_index = ANY($1) AND day = ANY($2)",
                &[&report_who, &report_days],
            )
            .await
        },
        async {
            tx.query(
            "SELECT subject_index, day, kind, sum(distance_m)::bigint, sum(baseline_g)::bigint, sum(avoided_g)::bigint
             FROM esg_activities WHERE subject_index = ANY($1) AND day BETWEEN $2 AND $3
             GROUP BY subject_index, day, kind",
            &[&indexes, &first, &last],
        ).await
        },
    )?;
    let mut subjects: HashMap<[u8; 32], Pending> = HashMap::with_capacity(rows.len());
    for row in &rows {
        let index = BlindIndex::from_slice(row.get("subject_index")).ok_or(EsgStoreError::Corrupt("subject index"))?;
        let pending = Pending { state: state_of(row)?, days: Vec::new(), reports: Vec::new(), changed: false };
        subjects.insert(index.0, pending);
    }
    let mut kept: HashMap<Uuid, Activity> = HashMap::new();
    for row in &kept_rows {
        let a = activity_of(row)?;
        kept.insert(a.id, a);
    }
    for row in report_rows {
        let index = BlindIndex::from_slice(row.get(0)).ok_or(EsgStoreError::Corrupt("subject index"))?;
        let distance = u32::try_from(row.get::<_, i64>(3)).unwrap_or(u32::MAX);
        if let Some(p) = subjects.get_mut(&index.0) {
            p.reports.push((kind_of(row.get(1))?, row.get(2), distance));
        }
    }
    for row in day_rows {
        let index = BlindIndex::from_slice(row.get(0)).ok_or(EsgStoreError::Corrupt("subject index"))?;
        let day = DayTotal {
            day: row.get(1),
            kind: kind_of(row.get(2))?,
            distance_m: u(row.get(3)),
            baseline_g: u(row.get(4)),
            avoided_g: u(row.get(5)),
        };
        if let Some(p) = subjects.get_mut(&index.0) {
            p.days.push(day);
        }
    }
    // Each entry in its turn, as if recorded alone.
    let mut outcomes = Vec::with_capacity(entries.len());
    let mut recorded: Vec<&Activity> = Vec::new();
    let mut recorded_for: Vec<&[u8]> = Vec::new();
    let mut batch_ids: HashMap<Uuid, usize> = HashMap::new();
    let mut events = Vec::new();
    let mut members_of: Vec<usize> = Vec::new();
    let rule = DuplicateRule::default();
    for (n, (credit, a)) in entries.iter().enumerate() {
        if let Some(before) = kept.get(&a.id) {
            outcomes.push(Recorded::Duplicate(Box::new(before.clone())));
            continue;
        }
        if let Some(&i) = batch_ids.get(&a.id) {
            outcomes.push(Recorded::Duplicate(Box::new(recorded[i].clone())));
            continue;
        }
        let p = subjects.get_mut(&credit.index.0).ok_or(EsgStoreError::Corrupt("subject row"))?;
        if a.origin == Origin::Report {
            let repeats = p.reports.iter().any(|&(kind, date, distance_m)| {
                kind == a.report.kind && esg::duplicate(&a.report, &Report { kind, date, distance_m }, rule)
            });
            if repeats {
                outcomes.push(Recorded::Refused(EsgError::Duplicate));
                continue;
            }
            p.reports.push((a.report.kind, a.report.date, a.report.distance_m));
        }
        p.days.push(day_total(a));
        let mut totals = p.state.totals;
        totals.add(a);
        let state = SubjectState {
            totals,
            score: Some(score_of(&p.days, credit.as_of)),
            version: p.state.version + 1,
            // The latest of its activities' times, whatever order they were recorded in.
            updated_at: a.recorded_at.max(p.state.updated_at),
        };
        let milestones = esg::milestones_passed(p.state.totals.avoided_g, totals.avoided_g);
        events.extend(events_of(credit, &state, &milestones));
        p.state = state.clone();
        p.changed = true;
        batch_ids.insert(a.id, recorded.len());
        recorded.push(a);
        recorded_for.push(credit.index.as_bytes());
        members_of.push(n);
        outcomes.push(Recorded::New { state, milestones, standing: None });
    }
    if recorded.is_empty() {
        // Nothing to write: the transaction rolls back.
        return Ok(outcomes);
    }
    let changed: Vec<(&[u8], &SubjectState)> =
        subjects.iter().filter(|(_, p)| p.changed).map(|(i, p)| (i.as_slice(), &p.state)).collect();
    let at = changed.iter().map(|(_, s)| s.updated_at).max().unwrap_or_else(Utc::now);
    let (bytes, count) = outbox::encode(&events, 512 * events.len()).map_err(|_| EsgStoreError::Corrupt("event"))?;
    let count = i32::try_from(count).unwrap_or(i32::MAX);
    let months: Vec<NaiveDate> = recorded.iter().map(|a| month_of(a.report.date)).collect();
    // Sent together, run in this order: the activities, their months, the subjects, the events,
    // and where each leaderboard member now stands in the months of their activities.
    let (_, _, _, _, rows) = futures::try_join!(
        insert_activities(&tx, &recorded_for, &recorded),
        add_to_months(&tx, &recorded_for, &recorded),
        write_subjects(&tx, &changed),
        async { Ok(tx.execute(outbox::sql::INSERT, &[&at, &count, &bytes]).await?) },
        async {
            let rows = tx
                .query(
                    "SELECT m.subject_index, m.community, x.month, sum(x.avoided_g)::bigint
                     FROM esg_leaderboard_members m JOIN esg_monthly x ON x.subject_index = m.subject_index
                     WHERE m.subject_index = ANY($1) AND x.month = ANY($2)
                     GROUP BY m.subject_index, m.community, x.month",
                    &[&recorded_for, &months],
                )
                .await?;
            Ok::<_, EsgStoreError>(rows)
        },
    )?;
    tx.commit().await?;
    let mut standings: HashMap<([u8; 32], NaiveDate), Standing> = HashMap::new();
    for row in rows {
        let index = BlindIndex::from_slice(row.get(0)).ok_or(EsgStoreError::Corrupt("subject index"))?;
        let month: NaiveDate = row.get(2);
        standings.insert((index.0, month), Standing { community: row.get(1), month, avoided_g: u(row.get(3)) });
    }
    for n in members_of {
        let (credit, a) = &entries[n];
        if let Recorded::New { standing, .. } = &mut outcomes[n] {
            *standing = standings.get(&(credit.index.0, month_of(a.report.date))).cloned();
        }
    }
    Ok(outcomes)
}

/// Insert `activities`, each for the subject beside it.
async fn insert_activities(
    tx: &tokio_postgres::Transaction<'_>,
    who: &[&[u8]],
    activities: &[&Activity],
) -> Result<(), EsgStoreError> {
    let ids: Vec<Uuid> = activities.iter().map(|a| a.id).collect();
    let sources: Vec<&str> = activities.iter().map(|a| a.origin.as_str()).collect();
    let kinds: Vec<&str> = activities.iter().map(|a| a.report.kind.as_str()).collect();
    let days: Vec<NaiveDate> = activities.iter().map(|a| a.report.date).collect();
    let distances: Vec<i64> = activities.iter().map(|a| i64::from(a.report.distance_m)).collect();
    let co2e: Vec<i64> = activities.iter().map(|a| i(a.footprint.co2e_g)).collect();
    let baseline: Vec<i64> = activities.iter().map(|a| i(a.footprint.baseline_g)).collect();
    let avoided: Vec<i64> = activities.iter().map(|a| i(a.footprint.avoided_g)).collect();
    let factor_sources: Vec<&str> = activities.iter().map(|a| a.factor.source.as_str()).collect();
    let factor_versions: Vec<&str> = activities.iter().map(|a| a.factor.version.as_str()).collect();
    let routes: Vec<&str> = activities.iter().map(|a| a.factor.route.as_str()).collect();
    let at: Vec<DateTime<Utc>> = activities.iter().map(|a| a.recorded_at).collect();
    tx.execute(
        &format!(
            "INSERT INTO esg_activities (subject_index, {ACTIVITY_COLUMNS})
             SELECT * FROM unnest($1::bytea[], $2::uuid[], $3::text[], $4::text[], $5::date[], $6::int8[],
                                  $7::int8[], $8::int8[], $9::int8[], $10::text[], $11::text[], $12::text[],
                                  $13::timestamptz[])"
        ),
        &[
            &who,
            &ids,
            &sources,
            &kinds,
            &days,
            &distances,
            &co2e,
            &baseline,
            &avoided,
            &factor_sources,
            &factor_versions,
            &routes,
            &at,
        ],
    )
    .await?;
    Ok(())
}

/// Add `activities` to their subjects' monthly aggregates (one row per subject, month and type).
async fn add_to_months(
    tx: &tokio_postgres::Transaction<'_>,
    who: &[&[u8]],
    activities: &[&Activity],
) -> Result<(), EsgStoreError> {
    // (activities, distance, emitted, avoided) per (subject, month, type).
    type Sums = (i64, i64, i64, i64);
    let mut sums: BTreeMap<(&[u8], NaiveDate, &str), Sums> = BTreeMap::new();
    for (index, a) in who.iter().zip(activities) {
        let m = sums.entry((index, month_of(a.report.date), a.report.kind.as_str())).or_default();
        m.0 += 1;
        m.1 += i64::from(a.report.distance_m);
        m.2 = m.2.saturating_add(i(a.footprint.co2e_g));
        m.3 = m.3.saturating_add(i(a.footprint.avoided_g));
    }
    let indexes: Vec<&[u8]> = sums.keys().map(|k| k.0).collect();
    let months: Vec<NaiveDate> = sums.keys().map(|k| k.1).collect();
    let kinds: Vec<&str> = sums.keys().map(|k| k.2).collect();
    let counts: Vec<i64> = sums.values().map(|v| v.0).collect();
    let distances: Vec<i64> = sums.values().map(|v| v.1).collect();
    let co2e: Vec<i64> = sums.values().map(|v| v.2).collect();
    let avoided: Vec<i64> = sums.values().map(|v| v.3).collect();
    tx.execute(
        "INSERT INTO esg_monthly (subject_index, month, kind, activities, distance_m, co2e_g, avoided_g)
         SELECT * FROM unnest($1::bytea[], $2::date[], $3::text[], $4::int8[], $5::int8[], $6::int8[], $7::int8[])
         ON CONFLICT (subject_index, month, kind) DO UPDATE SET
           activities = esg_monthly.activities + EXCLUDED.activities,
           distance_m = esg_monthly.distance_m + EXCLUDED.distance_m,
           co2e_g = esg_monthly.co2e_g + EXCLUDED.co2e_g,
           avoided_g = esg_monthly.avoided_g + EXCLUDED.avoided_g",
        &[&indexes, &months, &kinds, &counts, &distances, &co2e, &avoided],
    )
    .await?;
    Ok(())
}

/// Write each subject's state to their row (locked by the caller).
async fn write_subjects(
    tx: &tokio_postgres::Transaction<'_>,
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
        scores.push(serde_json::to_value(score).map_err(|_| EsgStoreError::Corrupt("score"))?);
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
async fn window(
    tx: &tokio_postgres::Transaction<'_>,
    index: &[u8],
    as_of: NaiveDate,
) -> Result<Vec<DayTotal>, EsgStoreError> {
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
    let row = conn
        .query_opt("SELECT * FROM esg_subjects WHERE subject_index = $1 AND version > 0", &[&index.as_bytes()])
        .await?;
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

pub(super) async fn erase(pool: &PgPool, index: &BlindIndex) -> Result<u64, EsgStoreError> {
    let mut conn = pool.get().await?;
    let tx = conn.transaction().await?;
    let index = index.as_bytes();
    let n = tx.execute("DELETE FROM esg_activities WHERE subject_index = $1", &[&index]).await?;
    tx.execute("DELETE FROM esg_leaderboard_members WHERE subject_index = $1", &[&index]).await?;
    tx.execute("DELETE FROM esg_monthly WHERE subject_index = $1", &[&index]).await?;
    tx.execute("DELETE FROM esg_subjects WHERE subject_index = $1", &[&index]).await?;
    tx.commit().await?;
    Ok(n)
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
            "SELECT DISTINCT subject_index FROM esg_activities WHERE subject_index > $1 ORDER BY subject_index LIMIT $2",
            &[&after, &limit],
        )
        .await?;
    rows.iter()
        .map(|r| BlindIndex::from_slice(r.get::<_, &[u8]>(0)).ok_or(EsgStoreError::Corrupt("subject index")))
        .collect()
}

pub(super) async fn count_subjects(pool: &PgPool) -> Result<u64, EsgStoreError> {
    let conn = pool.get().await?;
    let row = conn.query_one("SELECT count(DISTINCT subject_index) FROM esg_activities", &[]).await?;
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
    let Some(updated_at) = totals.get::<_, Option<DateTime<Utc>>>(4) else {
        return Ok(false);
    };
    tx.execute(
        "INSERT INTO esg_subjects (subject_index, activities, distance_m, co2e_g, avoided_g, version, updated_at)
         VALUES ($1, 0, 0, 0, 0, 0, $2) ON CONFLICT (subject_index) DO NOTHING",
        &[&index, &updated_at],
    )
    .await?;
    let row = tx.query_one("SELECT * FROM esg_subjects WHERE subject_index = $1 FOR UPDATE", &[&index]).await?;
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
    let state = SubjectState {
        totals: Totals {
            activities: u(totals.get(0)),
            distance_m: u(totals.get(1)),
            co2e_g: u(totals.get(2)),
            avoided_g: u(totals.get(3)),
        },
        score: Some(score_of(&days, as_of)),
        version: totals.get(0),
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
