//! ESG's storage: activities, monthly aggregates and each subject's totals and score, in
//! PostgreSQL (or process memory in the embedded mode). A subject is named by their blind index
//! only. Recording an activity, recomputing the score and queueing the events that follow happen
//! in one transaction, under a lock on the subject's row, so replicas crediting the same subject
//! never lose one another's activities.

pub mod boards;
mod memory;
mod postgres;

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, NaiveDate, Utc};
use parking_lot::Mutex;
use serde::Serialize;
use uuid::Uuid;

pub use boards::{Boards, Place};
pub use memory::Memory;

use super::{
    outbox::MemOutbox,
    postgres::{PgPool, PostgresError},
};
use crate::{
    domain::{
        esg::{self, ActivityType, DayTotal, EsgError, Footprint, Report, Score, Signals, Took, WalletChange},
        events::DomainEvent,
        privacy::BlindIndex,
    },
    error::code::{Coded, ErrorCode},
};

/// The store failed; nothing was recorded.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EsgStoreError {
    /// PostgreSQL did not answer, or refused.
    #[error("the ESG store is unavailable: {0}")]
    Unavailable(String),
    /// A stored value does not read back.
    #[error("a stored {0} does not read back")]
    Corrupt(&'static str),
}

impl From<PostgresError> for EsgStoreError {
    fn from(e: PostgresError) -> Self {
        Self::Unavailable(e.kind().into())
    }
}

impl From<bb8::RunError<tokio_postgres::Error>> for EsgStoreError {
    fn from(e: bb8::RunError<tokio_postgres::Error>) -> Self {
        PostgresError::from(e).into()
    }
}

impl From<tokio_postgres::Error> for EsgStoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        tracing::warn!(error = ?e, "ESG store statement failed");
        PostgresError::from(e).into()
    }
}

impl Coded for EsgStoreError {
    fn code(&self) -> ErrorCode {
        match self {
            Self::Unavailable(_) => ErrorCode::ServiceUnavailable,
            Self::Corrupt(_) => ErrorCode::Internal,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        matches!(self, Self::Unavailable(_)).then_some(Duration::from_secs(1))
    }
}

/// Where an activity came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// A completed ride's event.
    Ride,
    /// The subject's own report.
    Report,
}

impl Origin {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ride => "ride",
            Self::Report => "report",
        }
    }

    fn parse(s: &str) -> Result<Self, EsgStoreError> {
        match s {
            "ride" => Ok(Self::Ride),
            "report" => Ok(Self::Report),
            _ => Err(EsgStoreError::Corrupt("activity source")),
        }
    }
}

/// The emission factor an activity was priced with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FactorUsed {
    /// Who published it.
    pub source: String,
    /// Which release of it.
    pub version: String,
    /// Who answered: `provider`, `cache`, `simulator`, `fallback` (the shipped table, the
    /// provider having failed), or `none` (a type that emits nothing in use).
    pub route: String,
}

/// An activity, priced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Activity {
    /// The source event's id, or the report's.
    pub id: Uuid,
    /// Ride or report.
    pub origin: Origin,
    /// What was done, when, how far.
    pub report: Report,
    /// Its footprint.
    pub footprint: Footprint,
    /// The factor it was priced with.
    pub factor: FactorUsed,
    /// When it was recorded.
    pub recorded_at: DateTime<Utc>,
}

/// A subject's running totals over every activity recorded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// Activities.
    pub activities: u64,
    /// Distance, metres.
    pub distance_m: u64,
    /// Emitted, grams CO2e.
    pub co2e_g: u64,
    /// Avoided against a petrol car, grams CO2e.
    pub avoided_g: u64,
}

impl Totals {
    fn add(&mut self, a: &Activity) {
        self.activities += 1;
        self.distance_m = self.distance_m.saturating_add(u64::from(a.report.distance_m));
        self.co2e_g = self.co2e_g.saturating_add(a.footprint.co2e_g);
        self.avoided_g = self.avoided_g.saturating_add(a.footprint.avoided_g);
    }
}

/// A subject as stored: totals, latest score, version.
#[derive(Debug, Clone, PartialEq)]
pub struct SubjectState {
    /// Running totals.
    pub totals: Totals,
    /// The latest score (none before the first activity).
    pub score: Option<Score>,
    /// Changes so far.
    pub version: i64,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// One month of one type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Month {
    /// First day of the month.
    pub month: NaiveDate,
    /// The type.
    pub kind: ActivityType,
    /// Activities.
    pub activities: u64,
    /// Distance, metres.
    pub distance_m: u64,
    /// Emitted, grams.
    pub co2e_g: u64,
    /// Avoided, grams.
    pub avoided_g: u64,
}

/// A leaderboard member's standing in the month of an activity just recorded, read in the
/// recording's transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    /// Their community, if any.
    pub community: Option<String>,
    /// The first day of the activity's month.
    pub month: NaiveDate,
    /// Grams they avoided in that month, this activity included.
    pub avoided_g: u64,
}

/// What recording an activity did.
#[derive(Debug, Clone, PartialEq)]
pub enum Recorded {
    /// Recorded: the subject's new state, and the milestones (kg avoided) it passed.
    New {
        /// The subject after it.
        state: SubjectState,
        /// Milestones passed.
        milestones: Vec<u64>,
        /// Where the subject now stands on the leaderboards, when they are a member.
        standing: Option<Standing>,
    },
    /// An activity of this id was recorded before: nothing changed. It is given back.
    Duplicate(Box<Activity>),
    /// Refused by a rule (a duplicate report): nothing recorded.
    Refused(EsgError),
}

/// Who an activity is for, and how their events name them.
#[derive(Debug, Clone)]
pub struct Credit {
    /// Their blind index.
    pub index: BlindIndex,
    /// Their subject, sealed under their key, as events carry it.
    pub sealed: String,
    /// The day the score is computed for.
    pub as_of: NaiveDate,
    /// The request that caused it.
    pub request_id: Option<String>,
}

/// One activity to record, and for whom.
pub type Entry = (Credit, Activity);

/// The events of one recorded change.
fn events_of(credit: &Credit, activity: Uuid, state: &SubjectState, milestones: &[u64]) -> Vec<DomainEvent> {
    let key = credit.index.hex();
    let mut events = Vec::new();
    let at = state.updated_at;
    if let Some(score) = &state.score {
        let (avoided, co2e) = (state.totals.avoided_g, state.totals.co2e_g);
        events.push(esg::events::score_updated(
            &key,
            (&credit.sealed, activity),
            score,
            avoided,
            co2e,
            state.version,
            credit.request_id.clone(),
            at,
        ));
    }
    for kg in milestones {
        events.push(esg::events::milestone_reached(
            &key,
            (&credit.sealed, activity),
            *kg,
            state.version,
            credit.request_id.clone(),
            at,
        ));
    }
    events
}

/// The score on `as_of` of the daily totals `days`, the days of community participation
/// `took_part` (both in any order) and the standing of the subject's wallets.
fn score_of(days: &[DayTotal], took_part: &[NaiveDate], good_standing: Option<bool>, as_of: NaiveDate) -> Score {
    esg::score(days, as_of, &Signals::from_participation(took_part, as_of).with_standing(good_standing))
}

/// One participation in the community, from the social domain's event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Participation {
    /// The source event's id: recorded once however many times it is delivered.
    pub id: Uuid,
    /// Post or comment.
    pub kind: Took,
    /// The day it happened (UTC).
    pub day: NaiveDate,
    /// When it was recorded.
    pub recorded_at: DateTime<Utc>,
}

/// A change of one of the subject's wallets' lifecycle, from fintech's event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WalletRecord {
    /// The source event's id (the wallet and the change's sequence number name it for good: a
    /// change is recorded once however many times, and under whatever id, it is delivered).
    pub id: Uuid,
    /// The wallet, the change's place in its journal, and what it did.
    #[serde(flatten)]
    pub change: WalletChange,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// When it was recorded.
    pub recorded_at: DateTime<Utc>,
}

/// What the score reads beyond activities, one source event each: a participation in the
/// community, or a change of a wallet's lifecycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    /// A post or a comment the subject wrote.
    TookPart(Participation),
    /// A change of one of their wallets.
    Wallet(WalletRecord),
}

impl Signal {
    /// Its source event's id.
    pub fn id(&self) -> Uuid {
        match self {
            Self::TookPart(p) => p.id,
            Self::Wallet(w) => w.id,
        }
    }

    /// When it was recorded.
    pub fn recorded_at(&self) -> DateTime<Utc> {
        match self {
            Self::TookPart(p) => p.recorded_at,
            Self::Wallet(w) => w.recorded_at,
        }
    }
}

/// What recording a signal did.
#[derive(Debug, Clone, PartialEq)]
pub enum Noted {
    /// Recorded: the subject's new state.
    New(SubjectState),
    /// The same participation, or the same change of the same wallet, was recorded before:
    /// nothing changed.
    Duplicate,
}

/// What erasing a subject deleted, by kind of source event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Erased {
    /// Activities reported or credited from rides.
    pub activities: u64,
    /// Posts and comments counted.
    pub participations: u64,
    /// Wallet lifecycle changes counted.
    pub wallet_changes: u64,
}

/// Either store, chosen at start-up.
#[derive(Clone)]
pub enum EsgStore {
    /// PostgreSQL.
    Postgres(PgPool),
    /// Process memory: nothing survives the process. Events go to the in-process outbox.
    Memory(Arc<Mutex<Memory>>, MemOutbox),
}

/// A page of activities: at most this many.
pub const PAGE_MAX: usize = 100;

impl EsgStore {
    /// A store in process memory, writing its events to `outbox`.
    pub fn memory(outbox: MemOutbox) -> Self {
        Self::Memory(Arc::default(), outbox)
    }

    /// Record `activity` for `credit`'s subject, recompute their score and queue the events,
    /// all or nothing. A report repeating one kept (same type and day, about the same distance)
    /// is refused; an id recorded before changes nothing.
    pub async fn record(&self, credit: &Credit, activity: &Activity) -> Result<Recorded, EsgStoreError> {
        let mut recorded = self.record_batch(&[(credit.clone(), activity.clone())]).await?;
        recorded.pop().ok_or(EsgStoreError::Corrupt("recording"))
    }

    /// Record `entries` in one transaction, all or nothing, as if each had been recorded alone
    /// in their order: what each did, in the same order. One subject's entries see one another
    /// (totals, score, duplicates), and each recorded one queues its own events.
    pub async fn record_batch(&self, entries: &[Entry]) -> Result<Vec<Recorded>, EsgStoreError> {
        match self {
            Self::Postgres(pool) => postgres::record_batch(pool, entries).await,
            Self::Memory(memory, outbox) => {
                let mut memory = memory.lock();
                Ok(entries.iter().map(|(credit, activity)| memory.record(credit, activity, outbox)).collect())
            }
        }
    }

    /// Record `signal` for `credit`'s subject (they took part in the community, or one of their
    /// wallets changed), recompute their score and queue its event, all or nothing; a signal
    /// recorded before changes nothing.
    pub async fn note(&self, credit: &Credit, signal: &Signal) -> Result<Noted, EsgStoreError> {
        match self {
            Self::Postgres(pool) => postgres::note(pool, credit, signal).await,
            Self::Memory(memory, outbox) => Ok(memory.lock().note(credit, signal, outbox)),
        }
    }

    /// Every change of the subject's wallets recorded for the subject of `index`, by wallet and
    /// sequence.
    pub async fn wallet_changes(&self, index: &BlindIndex) -> Result<Vec<WalletRecord>, EsgStoreError> {
        match self {
            Self::Postgres(pool) => postgres::wallet_changes(pool, index).await,
            Self::Memory(memory, _) => Ok(memory.lock().wallet_changes(index)),
        }
    }

    /// Every participation recorded for the subject of `index`, oldest day first.
    pub async fn participations(&self, index: &BlindIndex) -> Result<Vec<Participation>, EsgStoreError> {
        match self {
            Self::Postgres(pool) => postgres::participations(pool, index).await,
            Self::Memory(memory, _) => Ok(memory.lock().participations(index)),
        }
    }

    /// The subject of `index`, if anything was recorded for them.
    pub async fn subject(&self, index: &BlindIndex) -> Result<Option<SubjectState>, EsgStoreError> {
        match self {
            Self::Postgres(pool) => postgres::subject(pool, index).await,
            Self::Memory(memory, _) => Ok(memory.lock().subject(index)),
        }
    }

    /// The activity `id` of the subject of `index`.
    pub async fn activity(&self, index: &BlindIndex, id: Uuid) -> Result<Option<Activity>, EsgStoreError> {
        match self {
            Self::Postgres(pool) => postgres::activity(pool, index, id).await,
            Self::Memory(memory, _) => Ok(memory.lock().activity(index, id)),
        }
    }

    /// The subject's activities, latest recorded first, after `before` (the last of the
    /// previous page), at most `limit`.
    pub async fn activities(
        &self,
        index: &BlindIndex,
        before: Option<(DateTime<Utc>, Uuid)>,
        limit: usize,
    ) -> Result<Vec<Activity>, EsgStoreError> {
        let limit = limit.min(PAGE_MAX);
        match self {
            Self::Postgres(pool) => postgres::activities(pool, index, before, limit).await,
            Self::Memory(memory, _) => Ok(memory.lock().activities(index, before, limit)),
        }
    }

    /// The subject's monthly aggregates from `since` (a first of month) on, oldest first.
    pub async fn months(&self, index: &BlindIndex, since: NaiveDate) -> Result<Vec<Month>, EsgStoreError> {
        match self {
            Self::Postgres(pool) => postgres::months(pool, index, since).await,
            Self::Memory(memory, _) => Ok(memory.lock().months(index, since)),
        }
    }

    /// The subjects with anything recorded (activities, participations, wallet changes), in
    /// blind-index order after `after`, at most `limit`.
    pub async fn subjects_after(
        &self,
        after: Option<&BlindIndex>,
        limit: usize,
    ) -> Result<Vec<BlindIndex>, EsgStoreError> {
        match self {
            Self::Postgres(pool) => postgres::subjects_after(pool, after, limit).await,
            Self::Memory(memory, _) => Ok(memory.lock().subjects_after(after, limit)),
        }
    }

    /// How many subjects have anything recorded.
    pub async fn count_subjects(&self) -> Result<u64, EsgStoreError> {
        match self {
            Self::Postgres(pool) => postgres::count_subjects(pool).await,
            Self::Memory(memory, _) => Ok(memory.lock().count_subjects()),
        }
    }

    /// Recompute the subject's monthly aggregates, totals and score (as of `as_of`, by the
    /// current method) from everything recorded for them, under the lock that recording takes;
    /// whether anything differed. Publishes nothing.
    pub async fn rebuild(&self, index: &BlindIndex, as_of: NaiveDate) -> Result<bool, EsgStoreError> {
        match self {
            Self::Postgres(pool) => postgres::rebuild(pool, index, as_of).await,
            Self::Memory(memory, _) => Ok(memory.lock().rebuild(index, as_of)),
        }
    }

    /// Make the subject of `index` a leaderboard member, in `community` if one is given; what
    /// they were before (`None`: not a member; `Some(community)`).
    pub async fn join(
        &self,
        index: &BlindIndex,
        community: Option<&str>,
    ) -> Result<Option<Option<String>>, EsgStoreError> {
        match self {
            Self::Postgres(pool) => postgres::join(pool, index, community, Utc::now()).await,
            Self::Memory(memory, _) => Ok(memory.lock().join(index, community)),
        }
    }

    /// Take the subject of `index` off the leaderboards; what they were before.
    pub async fn leave(&self, index: &BlindIndex) -> Result<Option<Option<String>>, EsgStoreError> {
        match self {
            Self::Postgres(pool) => postgres::leave(pool, index).await,
            Self::Memory(memory, _) => Ok(memory.lock().leave(index)),
        }
    }

    /// Whether the subject of `index` is a member (`Some`), and of which community.
    pub async fn member(&self, index: &BlindIndex) -> Result<Option<Option<String>>, EsgStoreError> {
        match self {
            Self::Postgres(pool) => postgres::member(pool, index).await,
            Self::Memory(memory, _) => Ok(memory.lock().member(index)),
        }
    }

    /// The members (of `community`, or all) with activity in `month`, and the grams each avoided
    /// in it: a ranking as PostgreSQL has it.
    pub async fn standings(
        &self,
        month: NaiveDate,
        community: Option<&str>,
    ) -> Result<Vec<(BlindIndex, u64)>, EsgStoreError> {
        match self {
            Self::Postgres(pool) => postgres::standings(pool, month, community).await,
            Self::Memory(memory, _) => Ok(memory.lock().standings(month, community)),
        }
    }

    /// Delete everything kept about the subject of `index` (activities, participations, wallet
    /// changes, totals, membership): how many of each source event went.
    pub async fn erase(&self, index: &BlindIndex) -> Result<Erased, EsgStoreError> {
        match self {
            Self::Postgres(pool) => postgres::erase(pool, index).await,
            Self::Memory(memory, _) => Ok(memory.lock().erase(index)),
        }
    }
}

/// The first day of `day`'s month.
pub fn month_of(day: NaiveDate) -> NaiveDate {
    day - chrono::Days::new(u64::from(chrono::Datelike::day0(&day)))
}

/// `a`'s contribution to its day's totals.
fn day_total(a: &Activity) -> DayTotal {
    DayTotal {
        day: a.report.date,
        kind: a.report.kind,
        distance_m: u64::from(a.report.distance_m),
        baseline_g: a.footprint.baseline_g,
        avoided_g: a.footprint.avoided_g,
    }
}

/// The first day of the score window ending on `as_of`.
fn window_start(as_of: NaiveDate) -> NaiveDate {
    as_of - chrono::Days::new(u64::from(esg::WINDOW_DAYS - 1))
}
