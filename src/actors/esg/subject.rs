//! One entity actor per subject in use (keyed by the subject): it orders the recording of their
//! activities and keeps their running totals and latest score.
//!
//! PostgreSQL holds the subject; each recording locks the subject's row there, so replicas
//! crediting the same subject never lose an activity. What a read found (totals, score and the
//! months of the trend) serves the reads that follow; it is dropped by the subject's next
//! recording here, and read again once older than [`STATE_TTL`], so a change made through another
//! replica is seen within that time.

use std::time::{Duration, Instant};

use super::messages::{Answer, ForgetSubject, GetSubject, Record, SubjectRead};
use crate::{
    actors::runtime::{Ctx, Handle, Managed, Reply},
    adapters::esg::{Credit, EsgStore, Recorded},
};

/// Name of the subjects' entity kind (the `actor` label of their metrics).
pub const KIND: &str = "esg-subject";

/// How long the state read from the store serves reads.
pub const STATE_TTL: Duration = Duration::from_secs(5);

/// The actor of one subject.
pub struct SubjectActor {
    store: EsgStore,
    /// The subject as last read (with their months from the day kept here) or written, and when.
    state: Option<(SubjectRead, chrono::NaiveDate, Instant)>,
}

impl SubjectActor {
    /// An actor over `store`; its state loads on first use.
    pub fn new(store: EsgStore) -> Self {
        Self { store, state: None }
    }
}

impl Managed for SubjectActor {}

impl Handle<Record> for SubjectActor {
    fn handle(&mut self, msg: Record, _: &mut Ctx<Self>) -> Reply<Self, Answer<Recorded>> {
        let store = self.store.clone();
        let fut = async move {
            let as_of = chrono::Utc::now().date_naive();
            let credit = Credit { index: &msg.index, sealed: &msg.sealed, as_of, request_id: msg.request_id.clone() };
            Ok(store.record(&credit, &msg.activity).await?)
        };
        Reply::atomic(fut, |answer: Answer<Recorded>, actor: &mut Self, _| {
            // Whatever happened, the next read goes to the store (a new activity changes a month).
            actor.state = None;
            answer
        })
    }
}

impl Handle<GetSubject> for SubjectActor {
    fn handle(&mut self, msg: GetSubject, _: &mut Ctx<Self>) -> Reply<Self, Answer<SubjectRead>> {
        if let Some((read, since, at)) = &self.state {
            if *since == msg.since && at.elapsed() < STATE_TTL {
                return Reply::Now(Ok(read.clone()));
            }
        }
        let store = self.store.clone();
        let since = msg.since;
        let fut = async move {
            let state = store.subject(&msg.index).await?;
            let months = store.months(&msg.index, msg.since).await?;
            Ok((state, months))
        };
        Reply::atomic(fut, move |answer: Answer<SubjectRead>, actor: &mut Self, _| {
            if let Ok(read) = &answer {
                actor.state = Some((read.clone(), since, Instant::now()));
            }
            answer
        })
    }
}

impl Handle<ForgetSubject> for SubjectActor {
    fn handle(&mut self, _: ForgetSubject, _: &mut Ctx<Self>) -> Reply<Self, Result<(), std::convert::Infallible>> {
        self.state = None;
        Reply::Now(Ok(()))
    }
}
