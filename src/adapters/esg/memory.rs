//! The embedded store: the same rules as PostgreSQL's, under one lock.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use super::{
    day_total, events_of, month_of, score_of, window_start, Activity, Credit, Erased, Month, Noted, Origin,
    Participation, Recorded, Signal, Standing, SubjectState, WalletRecord,
};
use crate::{
    adapters::outbox::MemOutbox,
    domain::{
        esg::{self, ActivityType, DayTotal, DuplicateRule, EsgError},
        privacy::BlindIndex,
    },
};

#[derive(Default)]
struct Subject {
    state: Option<SubjectState>,
    activities: Vec<Activity>,
    took_part: Vec<Participation>,
    wallets: Vec<WalletRecord>,
    months: BTreeMap<(NaiveDate, ActivityType), Month>,
}

impl Subject {
    /// Whether anything was recorded for them.
    fn recorded(&self) -> bool {
        !self.activities.is_empty() || !self.took_part.is_empty() || !self.wallets.is_empty()
    }

    /// How many source events were recorded for them: their version.
    fn recorded_count(&self) -> usize {
        self.activities.len() + self.took_part.len() + self.wallets.len()
    }

    /// Their score on `as_of` from what they recorded.
    fn score(&self, as_of: NaiveDate) -> esg::Score {
        let took: Vec<NaiveDate> = self.took_part.iter().map(|p| p.day).collect();
        let changes: Vec<esg::WalletChange> = self.wallets.iter().map(|w| w.change).collect();
        score_of(&window_days(&self.activities, as_of), &took, esg::good_standing(&changes), as_of)
    }
}

/// The embedded store's contents.
#[derive(Default)]
pub struct Memory {
    subjects: HashMap<BlindIndex, Subject>,
    /// Who each activity id was recorded for.
    ids: HashMap<Uuid, BlindIndex>,
    /// The participations recorded, by id.
    participations: HashMap<Uuid, BlindIndex>,
    /// The wallet changes recorded, by wallet and sequence number.
    wallet_changes: HashMap<(Uuid, i64), BlindIndex>,
    /// Leaderboard members and their community.
    members: HashMap<BlindIndex, Option<String>>,
}

impl Memory {
    pub(super) fn record(&mut self, credit: &Credit, activity: &Activity, outbox: &MemOutbox) -> Recorded {
        if let Some(owner) = self.ids.get(&activity.id) {
            let kept = self.subjects.get(owner).and_then(|s| s.activities.iter().find(|a| a.id == activity.id));
            if let Some(kept) = kept {
                return Recorded::Duplicate(Box::new(kept.clone()));
            }
        }
        let subject = self.subjects.entry(credit.index).or_default();
        if activity.origin == Origin::Report
            && subject.activities.iter().any(|kept| {
                kept.origin == Origin::Report
                    && esg::duplicate(&activity.report, &kept.report, DuplicateRule::default())
            })
        {
            return Recorded::Refused(EsgError::Duplicate);
        }
        let before = subject.state.as_ref().map(|s| s.totals).unwrap_or_default();
        let mut totals = before;
        totals.add(activity);
        subject.activities.push(activity.clone());
        add_to_month(&mut subject.months, activity);
        let state = SubjectState {
            totals,
            score: Some(subject.score(credit.as_of)),
            version: subject.state.as_ref().map_or(0, |s| s.version) + 1,
            updated_at: subject.state.as_ref().map_or(activity.recorded_at, |s| s.updated_at.max(activity.recorded_at)),
        };
        let milestones = esg::milestones_passed(before.avoided_g, totals.avoided_g);
        outbox.append(state.updated_at, events_of(credit, activity.id, &state, &milestones));
        subject.state = Some(state.clone());
        self.ids.insert(activity.id, credit.index);
        let month = month_of(activity.report.date);
        let standing = self.members.get(&credit.index).map(|community| Standing {
            community: community.clone(),
            month,
            avoided_g: subject.months.values().filter(|m| m.month == month).map(|m| m.avoided_g).sum(),
        });
        Recorded::New { state, milestones, standing }
    }

    pub(super) fn note(&mut self, credit: &Credit, signal: &Signal, outbox: &MemOutbox) -> Noted {
        let subject = match signal {
            Signal::TookPart(p) => {
                if self.participations.insert(p.id, credit.index).is_some() {
                    return Noted::Duplicate;
                }
                let subject = self.subjects.entry(credit.index).or_default();
                subject.took_part.push(p.clone());
                subject
            }
            Signal::Wallet(w) => {
                if self.wallet_changes.insert((w.change.wallet, w.change.seq), credit.index).is_some() {
                    return Noted::Duplicate;
                }
                let subject = self.subjects.entry(credit.index).or_default();
                subject.wallets.push(w.clone());
                subject
            }
        };
        let at = signal.recorded_at();
        let state = SubjectState {
            totals: subject.state.as_ref().map(|s| s.totals).unwrap_or_default(),
            score: Some(subject.score(credit.as_of)),
            version: subject.state.as_ref().map_or(0, |s| s.version) + 1,
            updated_at: subject.state.as_ref().map_or(at, |s| s.updated_at.max(at)),
        };
        outbox.append(state.updated_at, events_of(credit, signal.id(), &state, &[]));
        subject.state = Some(state.clone());
        Noted::New(state)
    }

    pub(super) fn wallet_changes(&self, index: &BlindIndex) -> Vec<WalletRecord> {
        let mut all = self.subjects.get(index).map(|s| s.wallets.clone()).unwrap_or_default();
        all.sort_by_key(|w| (w.change.wallet, w.change.seq));
        all
    }

    pub(super) fn participations(&self, index: &BlindIndex) -> Vec<Participation> {
        let mut all = self.subjects.get(index).map(|s| s.took_part.clone()).unwrap_or_default();
        all.sort_by_key(|p| (p.day, p.id));
        all
    }

    pub(super) fn subjects_after(&self, after: Option<&BlindIndex>, limit: usize) -> Vec<BlindIndex> {
        let mut all: Vec<BlindIndex> = self
            .subjects
            .iter()
            .filter(|(i, s)| s.recorded() && after.is_none_or(|a| i.as_bytes() > a.as_bytes()))
            .map(|(i, _)| *i)
            .collect();
        all.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        all.truncate(limit);
        all
    }

    pub(super) fn count_subjects(&self) -> u64 {
        self.subjects.values().filter(|s| s.recorded()).count() as u64
    }

    /// Months, totals and score recomputed from the subject's activities and participations.
    pub(super) fn rebuild(&mut self, index: &BlindIndex, as_of: NaiveDate) -> bool {
        let Some(subject) = self.subjects.get_mut(index) else { return false };
        let times = subject
            .activities
            .iter()
            .map(|a| a.recorded_at)
            .chain(subject.took_part.iter().map(|p| p.recorded_at))
            .chain(subject.wallets.iter().map(|w| w.recorded_at));
        let Some(updated_at) = times.max() else { return false };
        let mut totals = super::Totals::default();
        let mut months: BTreeMap<(NaiveDate, ActivityType), Month> = BTreeMap::new();
        for a in &subject.activities {
            totals.add(a);
            add_to_month(&mut months, a);
        }
        let state = SubjectState {
            totals,
            score: Some(subject.score(as_of)),
            version: subject.recorded_count() as i64,
            updated_at,
        };
        let changed = subject.state.as_ref() != Some(&state) || subject.months != months;
        subject.state = Some(state);
        subject.months = months;
        changed
    }

    pub(super) fn subject(&self, index: &BlindIndex) -> Option<SubjectState> {
        self.subjects.get(index).and_then(|s| s.state.clone())
    }

    pub(super) fn activity(&self, index: &BlindIndex, id: Uuid) -> Option<Activity> {
        self.subjects.get(index)?.activities.iter().find(|a| a.id == id).cloned()
    }

    pub(super) fn activities(
        &self,
        index: &BlindIndex,
        before: Option<(DateTime<Utc>, Uuid)>,
        limit: usize,
    ) -> Vec<Activity> {
        let Some(subject) = self.subjects.get(index) else { return Vec::new() };
        let mut all: Vec<&Activity> =
            subject.activities.iter().filter(|a| before.is_none_or(|b| (a.recorded_at, a.id) < b)).collect();
        all.sort_by_key(|a| std::cmp::Reverse((a.recorded_at, a.id)));
        all.into_iter().take(limit).cloned().collect()
    }

    pub(super) fn months(&self, index: &BlindIndex, since: NaiveDate) -> Vec<Month> {
        let Some(subject) = self.subjects.get(index) else { return Vec::new() };
        subject.months.values().filter(|m| m.month >= since).cloned().collect()
    }

    pub(super) fn join(&mut self, index: &BlindIndex, community: Option<&str>) -> Option<Option<String>> {
        self.members.insert(*index, community.map(str::to_owned))
    }

    pub(super) fn leave(&mut self, index: &BlindIndex) -> Option<Option<String>> {
        self.members.remove(index)
    }

    pub(super) fn member(&self, index: &BlindIndex) -> Option<Option<String>> {
        self.members.get(index).cloned()
    }

    pub(super) fn standings(&self, month: NaiveDate, community: Option<&str>) -> Vec<(BlindIndex, u64)> {
        self.members
            .iter()
            .filter(|(_, c)| community.is_none() || c.as_deref() == community)
            .filter_map(|(index, _)| {
                let subject = self.subjects.get(index)?;
                let months: Vec<&Month> = subject.months.values().filter(|m| m.month == month).collect();
                (!months.is_empty()).then(|| (*index, months.iter().map(|m| m.avoided_g).sum()))
            })
            .collect()
    }

    pub(super) fn erase(&mut self, index: &BlindIndex) -> Erased {
        self.members.remove(index);
        let Some(subject) = self.subjects.remove(index) else { return Erased::default() };
        for a in &subject.activities {
            self.ids.remove(&a.id);
        }
        for p in &subject.took_part {
            self.participations.remove(&p.id);
        }
        for w in &subject.wallets {
            self.wallet_changes.remove(&(w.change.wallet, w.change.seq));
        }
        Erased {
            activities: subject.activities.len() as u64,
            participations: subject.took_part.len() as u64,
            wallet_changes: subject.wallets.len() as u64,
        }
    }
}

/// The daily totals of `activities` in the window ending on `as_of`.
fn window_days(activities: &[Activity], as_of: NaiveDate) -> Vec<DayTotal> {
    let first = window_start(as_of);
    activities.iter().filter(|a| a.report.date >= first && a.report.date <= as_of).map(day_total).collect()
}

/// Count `a` in its month's aggregate.
fn add_to_month(months: &mut BTreeMap<(NaiveDate, ActivityType), Month>, a: &Activity) {
    let key = (month_of(a.report.date), a.report.kind);
    let m = months.entry(key).or_insert(Month {
        month: key.0,
        kind: key.1,
        activities: 0,
        distance_m: 0,
        co2e_g: 0,
        avoided_g: 0,
    });
    m.activities += 1;
    m.distance_m += u64::from(a.report.distance_m);
    m.co2e_g += a.footprint.co2e_g;
    m.avoided_g += a.footprint.avoided_g;
}
