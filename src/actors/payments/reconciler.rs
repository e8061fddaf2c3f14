//! The payout reconciler: a supervised actor that resumes the payouts left `pending` (the
//! provider did not answer their creation, and the caller did not retry), as a retry of their
//! request would: the hold is applied once, and the provider is asked again under the payout's
//! id as idempotency key, so it answers the payout it made, if it made one, and never makes a
//! second. No payout waits for its caller to come back to get its answer.

use std::time::Duration;

use actix::Message;
use chrono::Utc;

use super::{Payments, PaymentsError};
use crate::actors::runtime::{every, Ctx, Handle, Managed, Reply};

/// Registered name of the reconciler.
pub const NAME: &str = "payouts-reconciler";

/// Most payouts resumed in one round.
const ROUND: usize = 50;

/// Resume the payouts pending for longer than the reconciler's age; answers how many reached
/// the provider.
#[derive(Debug, Clone, Copy)]
pub struct ResumePending;

impl Message for ResumePending {
    type Result = Result<usize, PaymentsError>;
}

/// Resumes, every `every`, the payouts pending for longer than `every`.
pub struct PayoutReconciler {
    payments: Payments,
    every: Duration,
}

impl PayoutReconciler {
    /// A reconciler of `payments`' payouts.
    pub fn new(payments: Payments, every: Duration) -> Self {
        Self { payments, every }
    }
}

impl Managed for PayoutReconciler {
    fn started(&mut self, ctx: &mut Ctx<Self>) {
        every(ctx, self.every, || ResumePending);
    }
}

impl Handle<ResumePending> for PayoutReconciler {
    fn handle(&mut self, _: ResumePending, _: &mut Ctx<Self>) -> Reply<Self, Result<usize, PaymentsError>> {
        let payments = self.payments.clone();
        let age = chrono::Duration::from_std(self.every).unwrap_or(chrono::Duration::MAX);
        let round = async move {
            let resumed = payments.resume_pending(Utc::now() - age, ROUND).await?;
            if resumed > 0 {
                tracing::info!(resumed, "pending payouts resumed");
            }
            Ok(resumed)
        };
        // One round at a time: a slow provider's round is not overlapped by the next tick's.
        Reply::atomic(round, |result, _, _| result)
    }
}
