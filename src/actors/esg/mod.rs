//! ESG actors. The supervised domain actor `esg` owns the subjects' entity actors (one
//! [`SubjectActor`] per subject being read, keyed by the subject), which keep what was read of
//! their subject. The supervised `esg-writer` records activities, many subjects' in one
//! transaction, in the order they reach it, and each participation in the community in one
//! transaction of its own. Activities are priced by the [`EsgClient`] before
//! they reach the writer, so that no call to the emissions adapter holds a batch.

pub mod client;
pub mod events;
pub mod leaderboards;
pub mod messages;
pub mod privacy;
pub mod subject;
pub mod writer;

use std::time::Duration;

pub use client::{EsgClient, Pricing};
pub use messages::{Answer, EsgFailure, ForgetSubject, GetSubject, ListActivities, Note, Record, SubjectRead};
pub use subject::SubjectActor;
pub use writer::EsgWriter;

use crate::{
    actors::runtime::{
        Ctx, Entities, EntityFaultError, EntityKind, EntityPolicy, Handle, InjectEntityFault, Managed, Reply,
    },
    adapters::esg::{Activity, EsgStore},
};

/// Registered name of the ESG domain actor.
pub const NAME: &str = "esg";

/// The ESG domain actor.
pub struct EsgDomain {
    store: EsgStore,
    policy: EntityPolicy,
    kind: EntityKind,
    subjects: Option<Entities<String, SubjectActor>>,
}

impl EsgDomain {
    /// A domain actor over `store`, keeping its subjects' actors as `policy` says.
    pub fn new(store: EsgStore, policy: EntityPolicy, kind: EntityKind) -> Self {
        Self { store, policy, kind, subjects: None }
    }

    fn subjects(&mut self) -> &mut Entities<String, SubjectActor> {
        let store = self.store.clone();
        let (kind, policy) = (self.kind.clone(), self.policy.clone());
        self.subjects
            .get_or_insert_with(|| Entities::new(kind, policy, move |_: &String| SubjectActor::new(store.clone())))
    }
}

impl Managed for EsgDomain {
    fn started(&mut self, ctx: &mut Ctx<Self>) {
        // ESG's series are registered, at 0, by the client (`client::Meters`) when it is built.
        let every = (self.policy.idle / 4).max(Duration::from_secs(1));
        actix::AsyncContext::run_interval(ctx, every, |host, _| {
            if let Some(subjects) = host.actor().subjects.as_mut() {
                subjects.passivate();
            }
        });
    }

    fn drained(&mut self, _: &mut Ctx<Self>) {
        if let Some(subjects) = self.subjects.as_mut() {
            subjects.clear();
        }
    }
}

impl Handle<GetSubject> for EsgDomain {
    fn handle(&mut self, msg: GetSubject, _: &mut Ctx<Self>) -> Reply<Self, Answer<SubjectRead>> {
        let answer = self.subjects().get(&msg.subject).ask_queued(msg);
        Reply::later(async move { answer.await? })
    }
}

impl Handle<ForgetSubject> for EsgDomain {
    fn handle(&mut self, msg: ForgetSubject, _: &mut Ctx<Self>) -> Reply<Self, Result<(), std::convert::Infallible>> {
        if let Some(subjects) = self.subjects.as_ref() {
            let subject = msg.subject.clone();
            subjects.tell_live(&subject, msg);
        }
        Reply::Now(Ok(()))
    }
}

impl Handle<InjectEntityFault> for EsgDomain {
    fn handle(&mut self, msg: InjectEntityFault, _: &mut Ctx<Self>) -> Reply<Self, Result<(), EntityFaultError>> {
        Reply::Later(self.subjects().inject(msg))
    }
}

impl Handle<ListActivities> for EsgDomain {
    fn handle(&mut self, msg: ListActivities, _: &mut Ctx<Self>) -> Reply<Self, Answer<Vec<Activity>>> {
        let store = self.store.clone();
        Reply::later(async move { Ok(store.activities(&msg.index, msg.before, msg.limit).await?) })
    }
}
