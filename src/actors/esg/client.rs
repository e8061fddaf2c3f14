//! The one way into the ESG domain: REST, GraphQL and the event consumer call [`EsgClient`],
//! which checks and prices activities (through the emissions adapter, whose shipped factors
//! stand in when the provider fails), sends the domain actor its messages, counts business
//! operations and answers typed results.

use std::{collections::HashMap, sync::Arc};

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use super::{Answer, EsgDomain, EsgFailure, EsgWriter, ForgetSubject, GetSubject, Note, Record};
use crate::{
    actors::{adapters::EmissionsClient, runtime::ActorRef},
    adapters::{
        emissions::{self, EstimateRequest},
        esg::{
            Activity, Boards, Credit, EsgStore, FactorUsed, Month, Noted, Origin, Participation, Recorded, Signal,
            SubjectState, WalletRecord,
        },
        external::{AdapterError, Source},
        privacy::Vault,
    },
    config::EsgSettings,
    domain::{
        esg::{ActivityType, Footprint, Report, RideCompleted, TookPart, WalletChanged, DISTANCE_MAX_M},
        fintech::OWNER_FIELD,
        idempotency::{IdempotencyError, IdempotencyKey},
        privacy::{BlindIndex, Personal, Place},
        social::events::PARTICIPANT_FIELD,
    },
    telemetry::{self, Metrics},
};

/// Namespace of the ids of reports sent with an idempotency key.
const NAMESPACE: Uuid = Uuid::from_u128(0x6b2f_41c3_9e0a_4d5b_8c7e_3f1a_2b9d_e5c4);

/// The `source` label of the participations counted.
const PARTICIPATION: &str = "participation";
/// The `source` label of the wallet changes counted.
const WALLET: &str = "wallet";

/// Where the sealed subject of ESG's events is kept.
pub const SUBJECT_FIELD: &str = "esg.subject";

/// Which emission factor prices each type, and the car they are compared with.
#[derive(Debug, Clone)]
pub struct Pricing {
    activities: HashMap<ActivityType, String>,
    baseline: String,
}

impl Pricing {
    /// The pricing `settings` set (validated: every type that emits has a factor).
    pub fn from_settings(settings: &EsgSettings) -> Self {
        let activities = ActivityType::ALL
            .into_iter()
            .filter_map(|t| settings.emissions_activities.get(t.as_str()).map(|a| (t, a.clone())))
            .collect();
        Self { activities, baseline: settings.baseline_activity.clone() }
    }
}

/// A report, as recorded.
#[derive(Debug, Clone)]
pub struct Reported {
    /// The activity, priced.
    pub activity: Activity,
    /// The subject after it (`None` for a replay read before the state).
    pub state: Option<SubjectState>,
    /// Whether it was recorded before under the same idempotency key (nothing changed).
    pub replayed: bool,
}

/// What crediting a completed ride did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credited {
    /// Recorded.
    Recorded,
    /// Recorded before: nothing changed.
    Duplicate,
    /// Nothing to credit: the rider was erased, or the ride covered no distance.
    Ignored,
}

/// A subject's overview: totals, latest score, monthly aggregates.
#[derive(Debug, Clone)]
pub struct Overview {
    /// Totals and latest score, if anything was recorded.
    pub state: Option<SubjectState>,
    /// Monthly aggregates of the last twelve months, oldest first.
    pub months: Vec<Month>,
}

/// The ESG domain's client; cheap to clone.
#[derive(Clone)]
pub struct EsgClient {
    domain: ActorRef<EsgDomain>,
    writer: ActorRef<EsgWriter>,
    emissions: EmissionsClient,
    vault: Vault,
    pricing: Arc<Pricing>,
    meters: Arc<Meters>,
    pub(super) store: EsgStore,
    pub(super) boards: Boards,
}

/// The client's metric handles, registered once: a lookup by name and labels for each activity
/// would cost more than the increment.
struct Meters {
    lag: metrics::Gauge,
    score: metrics::Histogram,
    emitted: metrics::Counter,
    avoided: metrics::Counter,
    /// Activities priced, by the route of their factor ([`Source`] in order).
    factors: [metrics::Counter; 4],
    /// Activities of a type that emits nothing in use (no factor asked).
    unpriced: metrics::Counter,
    /// Activities and signals counted, by source and result.
    activities: HashMap<(&'static str, &'static str), metrics::Counter>,
}

/// The (source, result) pairs activities and signals are counted by.
const COUNTED: [(&str, &str); 12] = [
    ("report", "recorded"),
    ("report", "duplicate"),
    ("report", "refused"),
    ("ride", "recorded"),
    ("ride", "duplicate"),
    ("ride", "ignored"),
    (PARTICIPATION, "recorded"),
    (PARTICIPATION, "duplicate"),
    (PARTICIPATION, "ignored"),
    (WALLET, "recorded"),
    (WALLET, "duplicate"),
    (WALLET, "ignored"),
];

impl Meters {
    fn new(metrics: &Metrics) -> Self {
        metrics.with(|| {
            let factor = |route: &'static str| metrics::counter!(telemetry::ESG_FACTORS_TOTAL, "route" => route);
            let activities = COUNTED
                .into_iter()
                .map(|(source, result)| {
                    let counter =
                        metrics::counter!(telemetry::ESG_ACTIVITIES_TOTAL, "source" => source, "result" => result);
                    ((source, result), counter)
                })
                .collect();
            Self {
                lag: metrics::gauge!(telemetry::ESG_PROJECTION_LAG_SECONDS),
                score: metrics::histogram!(telemetry::ESG_SCORE),
                emitted: metrics::counter!(telemetry::ESG_CO2E_GRAMS_TOTAL, "flow" => "emitted"),
                avoided: metrics::counter!(telemetry::ESG_CO2E_GRAMS_TOTAL, "flow" => "avoided"),
                factors: [Source::Provider, Source::Cache, Source::Simulator, Source::Fallback]
                    .map(|source| factor(route_name(source))),
                unpriced: factor("none"),
                activities,
            }
        })
    }

    fn factor(&self, source: Source) -> &metrics::Counter {
        let i = match source {
            Source::Provider => 0,
            Source::Cache => 1,
            Source::Simulator => 2,
            Source::Fallback => 3,
        };
        &self.factors[i]
    }

    fn count(&self, source: &'static str, result: &'static str) {
        // Every pair this client counts is in `COUNTED`.
        if let Some(counter) = self.activities.get(&(source, result)) {
            counter.increment(1);
        }
    }
}

fn route_name(source: Source) -> &'static str {
    match source {
        Source::Provider => "provider",
        Source::Cache => "cache",
        Source::Simulator => "simulator",
        Source::Fallback => "fallback",
    }
}

impl EsgClient {
    /// A client of `domain` recording through `writer`, pricing through `emissions`, naming
    /// subjects through `vault`, ranking leaderboard members on `boards` from what `store` holds.
    pub fn new(
        (domain, writer): (ActorRef<EsgDomain>, ActorRef<EsgWriter>),
        emissions: EmissionsClient,
        vault: Vault,
        pricing: Pricing,
        metrics: Metrics,
        (store, boards): (EsgStore, Boards),
    ) -> Self {
        let meters = Arc::new(Meters::new(&metrics));
        Self { domain, writer, emissions, vault, pricing: Arc::new(pricing), meters, store, boards }
    }

    /// The domain actor.
    pub fn actor(&self) -> &ActorRef<EsgDomain> {
        &self.domain
    }

    /// The blind index of `subject`.
    pub fn index(&self, subject: &str) -> BlindIndex {
        self.vault.subject_index(subject)
    }

    /// The footprint of `report` and the factor it was priced with: the type's factor and the
    /// petrol car's, from the emissions adapter, asked together in one message.
    async fn price(&self, report: &Report) -> Answer<(Footprint, FactorUsed)> {
        let distance_km = f64::from(report.distance_m) / 1000.0;
        let mut asked = vec![EstimateRequest { activity_id: self.pricing.baseline.clone(), distance_km }];
        let with_factor = match self.pricing.activities.get(&report.kind) {
            Some(activity) if !report.kind.zero_in_use() => {
                asked.push(EstimateRequest { activity_id: activity.clone(), distance_km });
                true
            }
            _ => false,
        };
        let estimates = self.emissions.estimate_all(asked).await?;
        let (baseline, priced) = match (estimates.as_slice(), with_factor) {
            ([baseline], false) => (baseline, None),
            ([baseline, estimate], true) => (baseline, Some(estimate)),
            _ => {
                let asked = 1 + usize::from(with_factor);
                let reason = format!("{} estimates answered for the {asked} asked", estimates.len());
                return Err(AdapterError::Failed { adapter: emissions::NAME, reason }.into());
            }
        };
        let (kg_per_km, factor) = match priced {
            Some(e) => {
                self.meters.factor(e.provenance.source).increment(1);
                let route = route_name(e.provenance.source).to_owned();
                let (source, version) = (e.factor_source.clone(), e.factor_version.clone());
                (e.factor_kg_per_km, FactorUsed { source, version, route })
            }
            None => {
                self.meters.unpriced.increment(1);
                let version = crate::domain::esg::METHOD_VERSION.into();
                (0.0, FactorUsed { source: "no emissions in use".into(), version, route: "none".into() })
            }
        };
        Ok((Footprint::of(report.kind, report.distance_m, kg_per_km, baseline.factor_kg_per_km), factor))
    }

    async fn record(
        &self,
        subject: &str,
        index: BlindIndex,
        activity: Activity,
        request_id: Option<String>,
    ) -> Answer<Recorded> {
        let row = activity.id.to_string();
        let place = Place::new(SUBJECT_FIELD, &row);
        let sealed = self.vault.seal(subject, place, subject).await?.to_text();
        let credit = Credit { index, sealed, as_of: Utc::now().date_naive(), request_id };
        let recorded = self.writer.ask(Record((credit, activity))).await??;
        if let Recorded::New { state, standing, .. } = &recorded {
            // What the subject's actor read before is stale now; told before the caller is
            // answered, so that their next read sees what they recorded.
            self.domain.tell(ForgetSubject { subject: subject.to_owned() });
            if let Some(score) = &state.score {
                self.meters.score.record(f64::from(score.total));
            }
            if let Some(standing) = standing {
                self.rank(&index, standing).await;
            }
        }
        Ok(recorded)
    }

    fn count(&self, origin: Origin, result: &'static str, activity: Option<&Activity>) {
        self.meters.count(origin.as_str(), result);
        if let Some(a) = activity {
            self.meters.emitted.increment(a.footprint.co2e_g);
            self.meters.avoided.increment(a.footprint.avoided_g);
        }
    }

    /// Record `subject`'s own report of `distance_km` by `kind` on `date`. With `key`, a retry
    /// replays the report recorded first (the same key for another report is refused).
    pub async fn report(
        &self,
        subject: &str,
        kind: &str,
        date: NaiveDate,
        distance_km: f64,
        key: Option<IdempotencyKey>,
        request_id: Option<String>,
    ) -> Answer<Reported> {
        let result = async {
            let kind = ActivityType::reportable(kind)?;
            let report = Report::new(kind, date, distance_km, Utc::now().date_naive())?;
            let index = self.index(subject);
            let id = match &key {
                Some(key) => {
                    Uuid::new_v5(&NAMESPACE, format!("esg-report:{}:{}", index.hex(), key.as_str()).as_bytes())
                }
                None => Uuid::now_v7(),
            };
            let (footprint, factor) = self.price(&report).await?;
            let activity = Activity { id, origin: Origin::Report, report, footprint, factor, recorded_at: Utc::now() };
            match self.record(subject, index, activity.clone(), request_id).await? {
                Recorded::New { state, .. } => Ok(Reported { activity, state: Some(state), replayed: false }),
                Recorded::Duplicate(kept) if kept.report == activity.report && kept.origin == Origin::Report => {
                    Ok(Reported { activity: *kept, state: None, replayed: true })
                }
                Recorded::Duplicate(kept) => {
                    let mut fields = Vec::new();
                    if kept.report.kind != activity.report.kind {
                        fields.push("type".to_owned());
                    }
                    if kept.report.date != activity.report.date {
                        fields.push("date".to_owned());
                    }
                    if kept.report.distance_m != activity.report.distance_m {
                        fields.push("distance_km".to_owned());
                    }
                    Err(IdempotencyError::Reused(fields).into())
                }
                Recorded::Refused(rule) => Err(EsgFailure::Rule(rule)),
            }
        }
        .await;
        match &result {
            Ok(r) if r.replayed => self.count(Origin::Report, "duplicate", None),
            Ok(r) => self.count(Origin::Report, "recorded", Some(&r.activity)),
            Err(EsgFailure::Rule(_) | EsgFailure::Idempotency(_)) => self.count(Origin::Report, "refused", None),
            Err(_) => {}
        }
        result
    }

    /// Credit a completed ride to its rider.
    pub async fn credit_ride(&self, ride: &RideCompleted, request_id: Option<String>) -> Answer<Credited> {
        let lag = (Utc::now() - ride.completed_at).num_milliseconds().max(0) as f64 / 1000.0;
        self.meters.lag.set(lag);
        let subject = if ride.rider_sealed.is_empty() || ride.distance_m == 0 {
            None
        } else {
            let row = ride.ride.to_string();
            let place = Place::new("mobility.ride.rider", &row);
            match self.vault.open_text(&ride.rider_sealed, place).await? {
                Personal::Value(subject) => Some(subject),
                Personal::Erased => None,
            }
        };
        let Some(subject) = subject else {
            self.count(Origin::Ride, "ignored", None);
            return Ok(Credited::Ignored);
        };
        let distance_m = u32::try_from(ride.distance_m).unwrap_or(u32::MAX).min(DISTANCE_MAX_M);
        let report = Report { kind: ride.kind(), date: ride.completed_at.date_naive(), distance_m };
        let (footprint, factor) = self.price(&report).await?;
        let activity =
            Activity { id: ride.event_id, origin: Origin::Ride, report, footprint, factor, recorded_at: Utc::now() };
        let index = self.index(&subject);
        let credited = match self.record(&subject, index, activity.clone(), request_id).await? {
            Recorded::New { .. } => {
                self.count(Origin::Ride, "recorded", Some(&activity));
                Credited::Recorded
            }
            Recorded::Duplicate(_) | Recorded::Refused(_) => {
                self.count(Origin::Ride, "duplicate", None);
                Credited::Duplicate
            }
        };
        Ok(credited)
    }

    /// Count a post or a comment for its author: their score's social component is recomputed.
    /// Once per event, however many times it is delivered; nothing for a post the service made
    /// itself (it names no participant) or an author since erased.
    pub async fn participate(&self, took: &TookPart, request_id: Option<String>) -> Answer<Credited> {
        let row = took.row.to_string();
        let Some(subject) = self.open_subject(&took.participant_sealed, Place::new(PARTICIPANT_FIELD, &row)).await?
        else {
            self.count_signal(PARTICIPATION, "ignored");
            return Ok(Credited::Ignored);
        };
        let p =
            Participation { id: took.event_id, kind: took.kind, day: took.at.date_naive(), recorded_at: Utc::now() };
        self.note(subject, Signal::TookPart(p), PARTICIPATION, request_id).await
    }

    /// Count a change of a wallet's lifecycle (opened, frozen, unfrozen, closed) for its owner:
    /// their score's governance component is recomputed. Once per wallet and change, however
    /// many times it is delivered; nothing once the owner is erased (the event names nobody, or
    /// what it names no longer opens).
    pub async fn wallet_changed(&self, changed: &WalletChanged, request_id: Option<String>) -> Answer<Credited> {
        let row = changed.change.wallet.to_string();
        let Some(subject) = self.open_subject(&changed.owner_sealed, Place::new(OWNER_FIELD, &row)).await? else {
            self.count_signal(WALLET, "ignored");
            return Ok(Credited::Ignored);
        };
        let w = WalletRecord { id: changed.event_id, change: changed.change, at: changed.at, recorded_at: Utc::now() };
        self.note(subject, Signal::Wallet(w), WALLET, request_id).await
    }

    /// The subject another domain sealed at `place`: `None` when nothing was sealed or its key is
    /// erased.
    async fn open_subject(&self, sealed: &str, place: Place<'_>) -> Answer<Option<String>> {
        if sealed.is_empty() {
            return Ok(None);
        }
        Ok(match self.vault.open_text(sealed, place).await? {
            Personal::Value(subject) => Some(subject),
            Personal::Erased => None,
        })
    }

    /// Record `signal` for `subject` through the writer; `source` labels the count.
    async fn note(
        &self,
        subject: String,
        signal: Signal,
        source: &'static str,
        request_id: Option<String>,
    ) -> Answer<Credited> {
        let index = self.index(&subject);
        let now = Utc::now();
        let row = signal.id().to_string();
        let sealed = self.vault.seal(&subject, Place::new(SUBJECT_FIELD, &row), &subject).await?.to_text();
        let credit = Credit { index, sealed, as_of: now.date_naive(), request_id };
        match self.writer.ask(Note(credit, signal)).await?? {
            Noted::New(state) => {
                self.domain.tell(ForgetSubject { subject });
                if let Some(score) = &state.score {
                    self.meters.score.record(f64::from(score.total));
                }
                self.count_signal(source, "recorded");
                Ok(Credited::Recorded)
            }
            Noted::Duplicate => {
                self.count_signal(source, "duplicate");
                Ok(Credited::Duplicate)
            }
        }
    }

    /// Count one signal from `source` with `result`.
    fn count_signal(&self, source: &'static str, result: &'static str) {
        self.meters.count(source, result);
    }

    /// `subject`'s totals, latest score and the monthly aggregates of the last twelve months.
    pub async fn overview(&self, subject: &str) -> Answer<Overview> {
        let index = self.index(subject);
        let today = Utc::now().date_naive();
        let since = crate::adapters::esg::month_of(today - chrono::Months::new(11));
        let (state, months) = self.domain.ask(GetSubject { subject: subject.to_owned(), index, since }).await??;
        Ok(Overview { state, months })
    }

    /// `subject`'s activities, latest recorded first, after `before`, at most `limit`.
    pub async fn activities(
        &self,
        subject: &str,
        before: Option<(DateTime<Utc>, Uuid)>,
        limit: usize,
    ) -> Answer<Vec<Activity>> {
        let index = self.index(subject);
        self.domain.ask(super::ListActivities { index, before, limit }).await?
    }

    /// Drop what the subject's live actor keeps.
    pub async fn forget(&self, subject: &str) -> Answer<()> {
        let _ = self.domain.ask(ForgetSubject { subject: subject.to_owned() }).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_settings_know_the_types_that_emit_and_their_defaults_are_shipped() {
        let emitting: Vec<&str> = ActivityType::ALL.iter().filter(|t| !t.zero_in_use()).map(|t| t.as_str()).collect();
        assert_eq!(emitting, crate::config::ESG_EMITTING_TYPES);
        let settings = EsgSettings::default();
        for id in settings.emissions_activities.values().chain([&settings.baseline_activity]) {
            assert!(crate::adapters::emissions::factors::shipped(id).is_some(), "{id} has no shipped factor");
        }
        let pricing = Pricing::from_settings(&settings);
        assert_eq!(pricing.activities.len(), emitting.len());
    }
}
