//! Recording a batch of activities in one transaction: the subjects' rows locked, what the batch
//! needs read in one round trip, each activity taken in its turn as if recorded alone, and what
//! changed written in one more.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use super::{activity_of, i, kind_of, u, unscored_state_of, write_subjects, ACTIVITY_COLUMNS, UNSCORED_COLUMNS};
use crate::{
    adapters::{
        esg::{
            day_total, events_of, month_of, score_of, window_start, Activity, Credit, Entry, EsgStoreError, Noted,
            Origin, Recorded, Signal, Standing, SubjectState,
        },
        outbox,
        postgres::{PgPool, PgTransaction},
    },
    domain::{
        esg::{self, ActivityType, DayTotal, DuplicateRule, EsgError, Report},
        privacy::BlindIndex,
    },
};

/// What a batch knows of one subject while it records their entries.
struct Pending {
    /// As stored before the batch, then after each entry recorded.
    state: SubjectState,
    /// Their daily totals in the batch's window, the batch's activities added as recorded.
    days: Vec<DayTotal>,
    /// The days they took part in the community, in the batch's window.
    took_part: Vec<NaiveDate>,
    /// Whether their wallets are in good standing (none known: `None`).
    good_standing: Option<bool>,
    /// Their reports kept on the days of the batch's reports: (type, day, distance).
    reports: Vec<(ActivityType, NaiveDate, u32)>,
    /// Whether the batch recorded anything for them.
    changed: bool,
}

pub(in crate::adapters::esg) async fn record_batch(
    pool: &PgPool,
    entries: &[Entry],
) -> Result<Vec<Recorded>, EsgStoreError> {
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
    let lock_sql = format!(
        "SELECT {UNSCORED_COLUMNS} FROM esg_subjects WHERE subject_index = ANY($1) ORDER BY subject_index FOR UPDATE"
    );
    let kept_sql = format!("SELECT {ACTIVITY_COLUMNS} FROM esg_activities WHERE id = ANY($1)");
    // The rows first, on their own: a statement is prepared before it runs, and a statement
    // sent with it could run before it.
    tx.execute(
        "INSERT INTO esg_subjects (subject_index, activities, distance_m, co2e_g, avoided_g, version, updated_at)
         SELECT i, 0, 0, 0, 0, 0, t FROM unnest($1::bytea[], $2::timestamptz[]) AS v(i, t)
         ON CONFLICT (subject_index) DO NOTHING",
        &[&indexes, &created],
    )
    .await?;
    let rows = tx.query(&lock_sql, &[&indexes]).await?;
    // Then, sent together (one round trip), what the batch reads under their locks: the ids
    // recorded before, the reports kept on the days of the batch's reports (for the duplicate
    // rule) and the window's daily totals as stored before the batch. None of them writes, so
    // their order does not matter.
    let (kept_rows, report_rows, day_rows, part_rows, standing) = futures::try_join!(
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
        async { participation_days(&tx, &indexes, (first, last)).await },
        async { good_standing(&tx, &indexes).await },
    )?;
    let mut subjects: HashMap<[u8; 32], Pending> = HashMap::with_capacity(rows.len());
    for row in &rows {
        let index = BlindIndex::from_slice(row.get("subject_index")).ok_or(EsgStoreError::Corrupt("subject index"))?;
        let pending = Pending {
            state: unscored_state_of(row),
            days: Vec::new(),
            took_part: Vec::new(),
            good_standing: standing.get(&index.0).copied(),
            reports: Vec::new(),
            changed: false,
        };
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
    for (index, day) in part_rows {
        if let Some(p) = subjects.get_mut(&index.0) {
            p.took_part.push(day);
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
            score: Some(score_of(&p.days, &p.took_part, p.good_standing, credit.as_of)),
            version: p.state.version + 1,
            // The latest of its activities' times, whatever order they were recorded in.
            updated_at: a.recorded_at.max(p.state.updated_at),
        };
        let milestones = esg::milestones_passed(p.state.totals.avoided_g, totals.avoided_g);
        events.extend(events_of(credit, a.id, &state, &milestones));
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
    // Sent together: the activities, their months, the subjects and the events (each writes
    // rows of its own, so their order does not matter)...
    futures::try_join!(
        insert_activities(&tx, &recorded_for, &recorded),
        add_to_months(&tx, &recorded_for, &recorded),
        write_subjects(&tx, &changed),
        async { Ok(tx.execute(outbox::sql::INSERT, &[&at, &count, &bytes]).await?) },
    )?;
    // ...then, once the months are written, where each leaderboard member now stands in the
    // months of their activities.
    let rows = tx
        .query(
            "SELECT m.subject_index, m.community, x.month, sum(x.avoided_g)::bigint
             FROM esg_leaderboard_members m JOIN esg_monthly x ON x.subject_index = m.subject_index
             WHERE m.subject_index = ANY($1) AND x.month = ANY($2)
             GROUP BY m.subject_index, m.community, x.month",
            &[&recorded_for, &months],
        )
        .await?;
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
    tx: &PgTransaction<'_>,
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
async fn add_to_months(tx: &PgTransaction<'_>, who: &[&[u8]], activities: &[&Activity]) -> Result<(), EsgStoreError> {
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

/// The days the subjects of `indexes` took part in the community between `first` and `last`
/// (one per day and subject), and each one's latest day before `first`: the score counts the
/// days in its window, and the one before says that they took part, if not lately.
pub(in crate::adapters::esg) async fn participation_days(
    tx: &PgTransaction<'_>,
    indexes: &[&[u8]],
    (first, last): (NaiveDate, NaiveDate),
) -> Result<Vec<(BlindIndex, NaiveDate)>, tokio_postgres::Error> {
    let rows = tx
        .query(
            "SELECT subject_index, day FROM esg_participation
             WHERE subject_index = ANY($1) AND day BETWEEN $2 AND $3
             UNION SELECT subject_index, max(day) FROM esg_participation
             WHERE subject_index = ANY($1) AND day < $2 GROUP BY subject_index",
            &[&indexes, &first, &last],
        )
        .await?;
    Ok(rows.iter().filter_map(|r| Some((BlindIndex::from_slice(r.get(0))?, r.get(1)))).collect())
}

/// Whether the wallets of each subject of `indexes` are in good standing, for those with any
/// wallet known: each wallet as its latest change left it, none of them frozen.
pub(in crate::adapters::esg) async fn good_standing(
    tx: &PgTransaction<'_>,
    indexes: &[&[u8]],
) -> Result<HashMap<[u8; 32], bool>, tokio_postgres::Error> {
    let rows = tx
        .query(
            "SELECT subject_index, bool_and(kind <> 'frozen') FROM (
               SELECT DISTINCT ON (wallet) subject_index, kind FROM esg_wallet_changes
               WHERE subject_index = ANY($1) ORDER BY wallet, seq DESC) latest
             GROUP BY subject_index",
            &[&indexes],
        )
        .await?;
    Ok(rows.iter().filter_map(|r| Some((BlindIndex::from_slice(r.get(0))?.0, r.get(1)))).collect())
}

/// Record `signal` for `credit`'s subject: their row created and locked as recording an activity
/// does, the signal inserted once, and their score recomputed and its event queued.
pub(in crate::adapters::esg) async fn note(
    pool: &PgPool,
    credit: &Credit,
    signal: &Signal,
) -> Result<Noted, EsgStoreError> {
    let mut conn = pool.get().await?;
    let tx = conn.transaction().await?;
    let index = credit.index.as_bytes();
    let recorded_at = signal.recorded_at();
    tx.execute(
        "INSERT INTO esg_subjects (subject_index, activities, distance_m, co2e_g, avoided_g, version, updated_at)
         VALUES ($1, 0, 0, 0, 0, 0, $2) ON CONFLICT (subject_index) DO NOTHING",
        &[&index, &recorded_at],
    )
    .await?;
    let lock_sql = format!("SELECT {UNSCORED_COLUMNS} FROM esg_subjects WHERE subject_index = $1 FOR UPDATE");
    let before = unscored_state_of(&tx.query_one(&lock_sql, &[&index]).await?);
    let inserted = match signal {
        Signal::TookPart(p) => {
            tx.execute(
                "INSERT INTO esg_participation (id, subject_index, kind, day, recorded_at) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (id) DO NOTHING",
                &[&p.id, &index, &p.kind.as_str(), &p.day, &p.recorded_at],
            )
            .await?
        }
        Signal::Wallet(w) => {
            tx.execute(
                "INSERT INTO esg_wallet_changes (wallet, seq, id, subject_index, kind, at, recorded_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (wallet, seq) DO NOTHING",
                &[&w.change.wallet, &w.change.seq, &w.id, &index, &w.change.kind.as_str(), &w.at, &w.recorded_at],
            )
            .await?
        }
    };
    if inserted == 0 {
        // Nothing to write: the transaction rolls back (with the row it may have created).
        return Ok(Noted::Duplicate);
    }
    // Read under the lock, sent together.
    let window = (window_start(credit.as_of), credit.as_of);
    let (days, took_part, standing) = futures::try_join!(
        super::window(&tx, index, credit.as_of),
        async {
            Ok(participation_days(&tx, &[index], window).await?.into_iter().map(|(_, day)| day).collect::<Vec<_>>())
        },
        async { Ok(good_standing(&tx, &[index]).await?.into_values().next()) },
    )?;
    let state = SubjectState {
        totals: before.totals,
        score: Some(score_of(&days, &took_part, standing, credit.as_of)),
        version: before.version + 1,
        updated_at: recorded_at.max(before.updated_at),
    };
    let events = events_of(credit, signal.id(), &state, &[]);
    let (bytes, count) = outbox::encode(&events, 512 * events.len()).map_err(|_| EsgStoreError::Corrupt("event"))?;
    let count = i32::try_from(count).unwrap_or(i32::MAX);
    let changed = [(index, &state)];
    futures::try_join!(write_subjects(&tx, &changed), async {
        Ok(tx.execute(outbox::sql::INSERT, &[&state.updated_at, &count, &bytes]).await?)
    },)?;
    tx.commit().await?;
    Ok(Noted::New(state))
}
