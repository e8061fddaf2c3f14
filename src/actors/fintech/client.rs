//! The one way into the fintech domain: REST, GraphQL and the event consumer all call
//! [`FintechClient`], which sends the domain actor its messages, keeps idempotency, counts
//! business operations and answers typed results. Each transport renders them its own way.

use std::{future::Future, time::Duration};

use chrono::Utc;
use uuid::Uuid;

use super::{Execute, FintechDomain, ForgetOwners, GetKept, GetMovements, GetWallet, LedgerFailure};
use crate::{
    actors::runtime::{ActorRef, AskError},
    domain::{
        fintech::{LedgerCommand, LedgerOp, LedgerOutcome, Page, PaymentSettled, Receipt, Wallet, WalletId},
        idempotency::{Claim, IdempotencyError, IdempotencyKey, Replayable},
    },
    error::code::{Coded, ErrorCode},
    telemetry::{self, Metrics},
};

/// Why a fintech call got no answer from the domain.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    /// The idempotency key cannot be used for this request.
    #[error(transparent)]
    Idempotency(#[from] IdempotencyError),
    /// The ledger or a wallet's actor failed.
    #[error(transparent)]
    Ledger(#[from] LedgerFailure),
    /// The domain actor is restarting or did not answer in time.
    #[error(transparent)]
    Ask(#[from] AskError),
}

impl CallError {
    /// The error inside.
    fn inner(&self) -> &dyn Coded {
        match self {
            Self::Idempotency(e) => e,
            Self::Ledger(e) => e,
            Self::Ask(e) => e,
        }
    }
}

impl Coded for CallError {
    fn code(&self) -> ErrorCode {
        self.inner().code()
    }

    fn detail(&self) -> String {
        self.inner().detail()
    }

    fn extensions(&self) -> serde_json::Map<String, serde_json::Value> {
        self.inner().extensions()
    }

    fn headers(&self) -> Vec<(&'static str, String)> {
        self.inner().headers()
    }

    fn retry_after(&self) -> Option<Duration> {
        self.inner().retry_after()
    }
}

/// The fintech domain's client; cheap to clone.
#[derive(Clone)]
pub struct FintechClient {
    domain: ActorRef<FintechDomain>,
    key_ttl: Duration,
    metrics: Metrics,
}

impl FintechClient {
    /// A client of `domain`; idempotency keys are kept for `key_ttl`.
    pub fn new(domain: ActorRef<FintechDomain>, key_ttl: Duration, metrics: Metrics) -> Self {
        Self { domain, key_ttl, metrics }
    }

    /// The domain actor.
    pub fn actor(&self) -> &ActorRef<FintechDomain> {
        &self.domain
    }

    /// Apply `command` for `scope` (the caller's subject) under `key`: the first request with the
    /// key is applied and its receipt kept with it, in the same transaction; the same request
    /// again, over any transport, gets the kept receipt back.
    pub async fn execute(
        &self,
        scope: &str,
        key: &IdempotencyKey,
        command: LedgerCommand,
    ) -> Result<Replayable<Receipt>, CallError> {
        let at = Utc::now();
        let ttl = chrono::Duration::from_std(self.key_ttl).unwrap_or(chrono::Duration::MAX);
        let claim = Claim::new(scope, key, command.operation(), command.request(), at + ttl);
        let name = command.name();
        let op = LedgerOp {
            command,
            transaction_id: Uuid::now_v7(),
            // No look-up first: the command claims its key in its own transaction, and a key
            // already taken comes back as a duplicate, answered from what the key keeps.
            idempotency: Some(claim.clone()),
            once: false,
            request_id: telemetry::current_request_id().map(|r| r.as_str().to_owned()),
            at,
        };
        let result = flatten(self.domain.ask(Execute(op.clone())).await);
        self.count(name, &result);
        match result? {
            LedgerOutcome::DuplicateKey => {
                let kept = self.domain.ask(GetKept { scope: scope.to_owned(), key: key.as_str().to_owned() }).await;
                let kept = flatten(kept)?.ok_or(IdempotencyError::InUse)?;
                Ok(Replayable { value: kept.replay(&claim)?, replayed: true })
            }
            outcome => {
                let receipt = Receipt::of(&op, &outcome).ok_or(IdempotencyError::InUse)?;
                Ok(Replayable { value: receipt, replayed: false })
            }
        }
    }

    /// Credit a settled payment once, however often it is delivered: the ledger transaction is
    /// named by the payment's event id. The command is queued to the wallet's actor before this
    /// returns, so payments queued one after the other are applied in that order.
    pub fn settle_payment(
        &self,
        payment: &PaymentSettled,
        request_id: Option<String>,
    ) -> impl Future<Output = Result<LedgerOutcome, CallError>> + 'static {
        let op = LedgerOp {
            command: LedgerCommand::Deposit {
                wallet: payment.wallet,
                amount: payment.amount,
                reference: payment.reference.clone(),
                currency: Some(payment.currency),
            },
            transaction_id: payment.transaction_id(),
            idempotency: None,
            once: true,
            request_id: request_id.or_else(|| Some(payment.event_id.clone())),
            at: Utc::now(),
        };
        let answer = self.domain.ask_queued(Execute(op));
        let client = self.clone();
        async move {
            let result = flatten(answer.await);
            client.count("deposit", &result);
            result
        }
    }

    /// Apply `command` once, named for good by `transaction_id` (a payout's hold or return): a
    /// second call with the same id changes nothing and answers a duplicate.
    pub async fn apply_once(
        &self,
        command: LedgerCommand,
        transaction_id: Uuid,
        request_id: Option<String>,
    ) -> Result<LedgerOutcome, CallError> {
        let name = command.name();
        let op = LedgerOp {
            command,
            transaction_id,
            idempotency: None,
            once: true,
            request_id: request_id.or_else(|| telemetry::current_request_id().map(|r| r.as_str().to_owned())),
            at: Utc::now(),
        };
        let result = flatten(self.domain.ask(Execute(op)).await);
        self.count(name, &result);
        result
    }

    /// Apply `command` as it stands, with no idempotency key: for the hold commands, which are
    /// idempotent by their hold's id (placing the same hold again changes nothing; posting or
    /// voiding one that is not pending is refused with its state).
    pub async fn apply(&self, command: LedgerCommand, request_id: Option<String>) -> Result<LedgerOutcome, CallError> {
        let name = command.name();
        let op = LedgerOp {
            command,
            transaction_id: Uuid::now_v7(),
            idempotency: None,
            once: false,
            request_id: request_id.or_else(|| telemetry::current_request_id().map(|r| r.as_str().to_owned())),
            at: Utc::now(),
        };
        let result = flatten(self.domain.ask(Execute(op)).await);
        self.count(name, &result);
        result
    }

    /// A wallet, or `None`; `fresh` confirms with the store that the state is current (another
    /// replica may have written), otherwise a live actor answers from its state.
    pub async fn wallet(&self, id: WalletId, fresh: bool) -> Result<Option<Wallet>, CallError> {
        flatten(self.domain.ask(GetWallet { id, fresh }).await)
    }

    /// A page of a wallet's money movements, newest first, before sequence `before`.
    pub async fn movements(&self, wallet: WalletId, before: Option<i64>, limit: usize) -> Result<Page, CallError> {
        flatten(self.domain.ask(GetMovements { wallet, before, limit }).await)
    }

    /// The owner of `wallets` was erased: their live actors drop the state they hold.
    pub async fn forget_owners(&self, wallets: Vec<WalletId>) -> Result<(), CallError> {
        self.domain.ask(ForgetOwners(wallets)).await?.unwrap_or_else(|never| match never {});
        Ok(())
    }

    fn count<T>(&self, operation: &'static str, result: &Result<LedgerOutcome, T>) {
        let status = match result {
            Ok(LedgerOutcome::Applied { .. }) => "applied",
            Ok(LedgerOutcome::Refused(_)) => "refused",
            Ok(LedgerOutcome::DuplicateKey) => "duplicate",
            Ok(LedgerOutcome::ConflictingDuplicate) => "conflicting",
            Err(_) => "failed",
        };
        self.metrics.with(|| {
            metrics::counter!(telemetry::BUSINESS_OPERATIONS_TOTAL, "domain" => "fintech", "operation" => operation, "status" => status)
                .increment(1)
        });
    }
}

fn flatten<T>(answer: Result<Result<T, LedgerFailure>, AskError>) -> Result<T, CallError> {
    Ok(answer??)
}
