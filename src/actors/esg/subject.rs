//! One entity actor per subject being read (keyed by the subject): it keeps their running totals,
//! latest score and the months of their trend as last read.
//!
//! PostgreSQL holds the subject; the ESG writer records their activities. What a read found
//! serves the reads that follow; it is dropped once the writer has recorded an activity of the
//! subject here (the client tells the actor before it answers), and read again once older than
//! [`STATE_TTL`], so a change made through another replica is seen within that time.

use std::time::{Duration, Instant};

use super::messages::{Answer, ForgetSubject, GetSubject, SubjectRead};
use crate::{
    actors::runtime::{Ctx, Handle, Managed, Reply},
    adapters::esg::EsgStore,
};

/// Name of the subjects' entity kind (the `actor` label of their metrics).
pub const KIND: &str = "esg-subject";

/// How long the state read from the store serves reads.
pub const STATE_TTL: Duration = Duration::from_secs(5);

/// The actor of one subject.
pub struct SubjectActor {
    store: EsgStore,
    /// The subject as last read (with their months from the day kept here), and when.
    state: Option<(SubjectRead, chrono::NaiveDate, Instant)>,
}

impl SubjectActor {
    /// An actor over `store`; its state loads on first use.
    pub fn new(store: EsgStore) -> Self {
        Self { store, state: None }
    }
}

impl Managed for SubjectActor {}

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
