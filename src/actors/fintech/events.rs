//! What fintech takes from the event bus and gives to it: it consumes the payment provider's
//! `payment.settled` notifications, each credited once through the [`FintechClient`], and
//! publishes its wallet events through the outbox.

use futures::future::BoxFuture;

use super::{CallError, FintechClient, LedgerFailure, NAME};
use crate::{
    actors::events::{Applied, Attempt, EventHandler, EventRoutes},
    adapters::bus::InRecord,
    domain::{
        events::InboundError,
        fintech::{LedgerOutcome, PaymentSettled, PAYMENT_SETTLED},
    },
};

/// Register fintech's events.
pub fn register(routes: &mut EventRoutes, client: &FintechClient) {
    routes.consume(PAYMENT_SETTLED, NAME, PaymentsSettled { client: client.clone() });
    routes.publish(NAME);
}

/// Credits settled payments.
struct PaymentsSettled {
    client: FintechClient,
}

impl EventHandler for PaymentsSettled {
    fn prepare(&self, record: &InRecord) -> Result<Attempt, InboundError> {
        let payment = PaymentSettled::decode(record.payload.as_deref().unwrap_or_default())?;
        let request_id = record.header("request-id").map(str::to_owned);
        let client = self.client.clone();
        Ok(Box::new(move || -> BoxFuture<'static, Result<Applied, &'static str>> {
            let answer = client.settle_payment(&payment, request_id.clone());
            let event_id = payment.event_id.clone();
            Box::pin(async move {
                match answer.await {
                    Ok(LedgerOutcome::Applied { .. }) => Ok(Applied::Applied),
                    Ok(LedgerOutcome::DuplicateKey) => Ok(Applied::Duplicate),
                    Ok(LedgerOutcome::ConflictingDuplicate) => {
                        Ok(Applied::Refused(InboundError::ConflictingDuplicate(event_id)))
                    }
                    Ok(LedgerOutcome::Refused(e)) => Ok(Applied::Refused(e.into())),
                    Err(CallError::Ledger(LedgerFailure::Store)) => Err("ledger_unavailable"),
                    Err(CallError::Ledger(LedgerFailure::Overloaded)) => Err("ledger_overloaded"),
                    Err(_) => Err("actor_unavailable"),
                }
            })
        }))
    }
}
