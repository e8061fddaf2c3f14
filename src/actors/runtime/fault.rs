//! Fault injection: every managed actor understands [`InjectFault`], so resilience tests can make
//! any of them panic, fail, lose its thread or slow down. Only reachable over HTTP when the
//! configuration enables it (never in production).

use std::{convert::Infallible, time::Duration};

use super::host::{Ctx, Handle, Managed, Reply};
use actix::Message;

/// The fault to inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// The handler panics.
    Panic,
    /// The handler returns a future (a `Later` answer) that panics.
    PanicLater,
    /// The handler reports an unrecoverable error.
    Fatal,
    /// The actor's thread stops, closing its mailbox.
    KillThread,
    /// The handler holds the actor for `millis` milliseconds, then succeeds.
    Delay {
        /// How long to hold the actor.
        millis: u64,
    },
}

/// Inject a fault into the receiving actor.
#[derive(Debug, Clone, Copy)]
pub struct InjectFault(pub FaultKind);

impl Message for InjectFault {
    type Result = Result<(), Infallible>;
}

impl<A: Managed> Handle<InjectFault> for A {
    fn handle(&mut self, msg: InjectFault, _ctx: &mut Ctx<Self>) -> Reply<Self, Result<(), Infallible>> {
        match msg.0 {
            FaultKind::Panic => panic!("injected fault"),
            FaultKind::PanicLater => Reply::later(async {
                tokio::task::yield_now().await;
                panic!("injected fault in an answer")
            }),
            FaultKind::Fatal => Reply::Fatal("injected fatal error".into()),
            FaultKind::KillThread => {
                actix_rt::Arbiter::current().stop();
                Reply::Now(Ok(()))
            }
            FaultKind::Delay { millis } => {
                Reply::atomic(tokio::time::sleep(Duration::from_millis(millis)), |(), _, _| Ok(()))
            }
        }
    }
}
