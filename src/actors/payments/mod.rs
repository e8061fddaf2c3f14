//! The payments domain's client: top-ups, payouts and the provider's webhook. REST and GraphQL
//! call it; it sequences the payments adapter (the provider, through its supervised actor), the
//! payments store and the fintech ledger.
//!
//! A payout never pays twice and never loses money, whatever fails in between:
//! 1. the payout is recorded `pending` under the caller's idempotency key (its id is derived
//!    from nothing the client controls and becomes the provider's `Idempotency-Key`);
//! 2. its money is held: a ledger hold named by the payout (placing it again changes nothing),
//!    which leaves the balance as it is and lowers what is available at once;
//! 3. the provider's payout is created under the payout's id. When the provider does not answer
//!    (timeout, 5xx, open circuit) the payout may or may not exist there: it stays `pending`
//!    with its money held and the caller gets 503 + `Retry-After`; the retry with the same
//!    `Idempotency-Key` finds the same payout, holds nothing more and asks the provider again
//!    under the same key, which answers the payout it created, if it did;
//! 4. the provider's webhook settles it: `payout.paid` posts the hold to `external:<currency>` (a
//!    withdrawal named by the payout, applied once), `payout.failed` or `payout.canceled` voids
//!    it. A payout reported failed after it was paid (the bank sent the money back), or one
//!    made before holds existed (its money was withdrawn at once), gets its money back by a
//!    ledger deposit named by the payout, applied once.
//!
//! A payout refused by the ledger (not enough available money, a frozen wallet) is recorded
//! failed with `ledger.<code>` as its failure, and its key answers the same refusal again.

use std::sync::Arc;

use chrono::Utc;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{adapters::PaymentsClient, fintech::FintechClient};
use crate::{
    adapters::privacy::Vault,
    adapters::{
        external::AdapterError,
        payments::{store::Claimed, IntentRequest, PaymentsStore, StoreError},
    },
    config::Secret,
    domain::{
        fintech::{Amount, FintechError, HoldStatus, LedgerCommand, LedgerOutcome, Wallet, WalletId},
        idempotency::{IdempotencyError, IdempotencyKey},
        payments::{
            check_destination, verify, EventError, EventKind, Payout, PayoutStatus, ProviderEvent, SignatureError,
            TopUp,
        },
    },
    error::code::Coded,
    telemetry::{self, Metrics},
};

mod error;
pub mod privacy;
pub mod reconciler;

pub use error::PaymentsError;
pub use reconciler::PayoutReconciler;

/// What a verified webhook delivery did; the `outcome` label of the deliveries counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivered {
    /// The event changed the ledger or a payout.
    Applied,
    /// The event was applied before (a redelivery): nothing changed.
    Duplicate,
    /// An event type this service does not act on, or about an intent or payout it did not
    /// create: acknowledged so that the provider stops sending it.
    Ignored,
}

impl Delivered {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Duplicate => "duplicate",
            Self::Ignored => "ignored",
        }
    }
}

/// The webhook's secrets and window.
#[derive(Clone)]
pub struct WebhookKeys {
    /// Secrets accepted: the current one first, then those of a rotation under way.
    pub secrets: Arc<Vec<Secret>>,
    /// Tolerance window, seconds.
    pub tolerance_secs: i64,
}

/// The payments client; cheap to clone.
#[derive(Clone)]
pub struct Payments {
    provider: PaymentsClient,
    store: PaymentsStore,
    fintech: FintechClient,
    keys: WebhookKeys,
    metrics: Metrics,
    vault: Vault,
}

impl Payments {
    /// A client reaching the provider through `provider`.
    pub fn new(
        provider: PaymentsClient,
        store: PaymentsStore,
        fintech: FintechClient,
        keys: WebhookKeys,
        metrics: Metrics,
        vault: Vault,
    ) -> Self {
        // The series exist from the start (at zero), so that dashboards and alerts see them
        // before the first delivery or payout.
        metrics.with(|| {
            for d in [Delivered::Applied, Delivered::Duplicate, Delivered::Ignored] {
                metrics::counter!(telemetry::PAYMENTS_WEBHOOKS_TOTAL, "outcome" => d.as_str()).absolute(0);
            }
            for s in [PayoutStatus::Pending, PayoutStatus::InTransit, PayoutStatus::Paid, PayoutStatus::Failed] {
                metrics::counter!(telemetry::PAYMENTS_PAYOUTS_TOTAL, "status" => s.as_str()).absolute(0);
            }
        });
        Self { provider, store, fintech, keys, metrics, vault }
    }

    /// Create a payment intent crediting `wallet` with `amount` once collected. The caller's
    /// idempotency key goes to the provider (prefixed by a digest of the caller's subject, so
    /// that two callers' keys never meet): a retry gets the same intent.
    pub async fn top_up(
        &self,
        scope: &str,
        key: &IdempotencyKey,
        wallet: &Wallet,
        amount: Amount,
    ) -> Result<TopUp, PaymentsError> {
        wallet.check_credit(amount)?;
        let scope = self.vault.subject_index(scope).hex();
        let request = IntentRequest {
            wallet: wallet.id,
            amount: amount.get(),
            currency: wallet.currency,
            idempotency_key: provider_key(&scope, key),
        };
        let asked = TopUp {
            intent: String::new(),
            wallet: wallet.id,
            amount: amount.get(),
            currency: wallet.currency,
            client_secret: String::new(),
            status: String::new(),
        };
        let answered = self.provider.create_intent(request).await?;
        self.store.put_top_up(&answered, Utc::now()).await?;
        // The intent kept first is the one its webhook is checked against: a key reused for
        // another wallet, amount or currency is refused, whatever the provider answered.
        let kept = self.store.top_up(&answered.intent).await?.unwrap_or_else(|| answered.clone());
        let differs = [asked.differs_from(&answered), asked.differs_from(&kept)].concat();
        if !differs.is_empty() {
            let mut fields: Vec<String> = differs;
            fields.sort();
            fields.dedup();
            return Err(IdempotencyError::Reused(fields).into());
        }
        Ok(answered)
    }

    /// Pay `amount` of `wallet` out to the provider's bank account `destination` (see the
    /// module's documentation for how it is kept safe).
    pub async fn payout(
        &self,
        scope: &str,
        key: &IdempotencyKey,
        wallet: &Wallet,
        amount: Amount,
        destination: &str,
    ) -> Result<Payout, PaymentsError> {
        check_destination(destination)?;
        // The caller is kept by their blind index, never by their id (personal data).
        let scope = self.vault.subject_index(scope).hex();
        let asked = Payout {
            id: Uuid::now_v7(),
            wallet: wallet.id,
            amount: amount.get(),
            currency: wallet.currency,
            destination: destination.to_owned(),
            provider_id: None,
            status: PayoutStatus::Pending,
            failure: None,
        };
        let payout = match self.store.claim_payout(&scope, key.as_str(), &asked).await? {
            Claimed::New(p) => p,
            Claimed::Existing(p) => {
                let mut differs = Vec::new();
                if p.wallet != asked.wallet {
                    differs.push("wallet".to_owned());
                }
                if p.amount != asked.amount {
                    differs.push("amount".to_owned());
                }
                if p.destination != asked.destination {
                    differs.push("destination".to_owned());
                }
                if !differs.is_empty() {
                    return Err(IdempotencyError::Reused(differs).into());
                }
                if let Some(refusal) = kept_refusal(&p) {
                    return Err(refusal);
                }
                if p.status != PayoutStatus::Pending {
                    return Ok(p);
                }
                p
            }
        };
        self.advance(payout).await
    }

    /// Resume the payouts left `pending` (their provider call got no answer and the caller did
    /// not retry) created before `before`, at most `limit` of them, exactly as a retry of their
    /// request would; answers how many reached the provider.
    pub async fn resume_pending(&self, before: chrono::DateTime<Utc>, limit: usize) -> Result<usize, PaymentsError> {
        let mut resumed = 0;
        for payout in self.store.pending_payouts(before, limit).await? {
            let id = payout.id;
            match self.advance(payout).await {
                Ok(_) => resumed += 1,
                Err(e) => tracing::warn!(payout = %id, error = %e, "pending payout not resumed; tried again later"),
            }
        }
        Ok(resumed)
    }

    /// Hold a pending payout's money (once), then create it at the provider under its id.
    async fn advance(&self, mut payout: Payout) -> Result<Payout, PaymentsError> {
        let amount = Amount::new(payout.amount)?;
        let hold = LedgerCommand::PlaceHold {
            hold: payout.hold_transaction(),
            wallet: payout.wallet,
            amount,
            kind: PAYOUT_HOLD_KIND.into(),
            expires_at: Utc::now() + PAYOUT_HOLD_TTL,
        };
        match self.fintech.apply(hold, None).await? {
            LedgerOutcome::Applied { .. } => {}
            LedgerOutcome::Refused(e) => {
                payout.status = PayoutStatus::Failed;
                payout.failure = Some(format!("{LEDGER_FAILURE}{}", e.code().as_str()));
                self.store.update_payout(&payout).await?;
                self.count_payout(PayoutStatus::Failed);
                return Err(e.into());
            }
            LedgerOutcome::DuplicateKey | LedgerOutcome::ConflictingDuplicate => {
                return Err(PaymentsError::Unexpected("a payout's hold was answered as a duplicate".into()))
            }
        }
        match self.provider.create_payout(payout.clone()).await {
            Ok(answer) => {
                payout.provider_id = Some(answer.id);
                payout.status = match answer.status.as_str() {
                    "paid" => PayoutStatus::Paid,
                    _ => PayoutStatus::InTransit,
                };
                // A webhook may have settled it already: what the store says then stands.
                if !self.store.update_payout(&payout).await? {
                    return self
                        .store
                        .payout(payout.id)
                        .await?
                        .ok_or(PaymentsError::Unexpected("payout vanished".into()));
                }
                self.count_payout(payout.status);
                Ok(payout)
            }
            Err(AdapterError::Refused { reason, .. }) => {
                // Refused on its merits: no payout exists at the provider; the money comes back.
                self.give_back(&mut payout, reason.clone()).await?;
                Err(PaymentsError::Refused(reason))
            }
            Err(e) => {
                tracing::warn!(payout = %payout.id, error = %e, "payout not confirmed by the provider: kept pending with its money held");
                self.count_payout(PayoutStatus::Pending);
                Err(e.into())
            }
        }
    }

    /// Release a payout's hold (or, when its money already left, return it once) and record it
    /// failed.
    async fn give_back(&self, payout: &mut Payout, reason: String) -> Result<(), PaymentsError> {
        let void = LedgerCommand::VoidHold { hold: payout.hold_transaction(), wallet: payout.wallet };
        match self.fintech.apply(void, None).await? {
            LedgerOutcome::Applied { .. }
            | LedgerOutcome::Refused(FintechError::HoldNotPending(_, HoldStatus::Voided | HoldStatus::Expired)) => {}
            // Posted (paid, then sent back by the bank) or withdrawn before holds existed.
            LedgerOutcome::Refused(FintechError::HoldNotPending(_, HoldStatus::Posted))
            | LedgerOutcome::Refused(FintechError::HoldNotFound(_)) => self.deposit_back(payout).await?,
            LedgerOutcome::Refused(e) => return Err(e.into()),
            LedgerOutcome::DuplicateKey | LedgerOutcome::ConflictingDuplicate => {
                return Err(PaymentsError::Unexpected("a payout's release was answered as a duplicate".into()))
            }
        }
        payout.status = PayoutStatus::Failed;
        payout.failure = Some(reason);
        if self.store.update_payout(payout).await? {
            self.count_payout(PayoutStatus::Failed);
        }
        Ok(())
    }

    /// Post a paid payout's hold: its money leaves for `external:<currency>`, once.
    async fn take_out(&self, payout: &Payout) -> Result<(), PaymentsError> {
        let amount = Amount::new(payout.amount)?;
        let post = LedgerCommand::PostHold {
            hold: payout.hold_transaction(),
            wallet: payout.wallet,
            amount,
            to: None,
            reference: payout.reference(),
        };
        match self.fintech.apply_once(post, payout.withdrawal_transaction(), None).await? {
            LedgerOutcome::Applied { .. }
            | LedgerOutcome::DuplicateKey
            | LedgerOutcome::Refused(FintechError::HoldNotPending(_, HoldStatus::Posted))
            // Withdrawn at once, before holds existed.
            | LedgerOutcome::Refused(FintechError::HoldNotFound(_)) => Ok(()),
            LedgerOutcome::Refused(FintechError::HoldNotPending(_, HoldStatus::Expired)) => {
                // Paid after its hold expired: release it, then take the money out as such.
                let void = LedgerCommand::VoidHold { hold: payout.hold_transaction(), wallet: payout.wallet };
                self.fintech.apply(void, None).await?;
                let out = LedgerCommand::Withdraw { wallet: payout.wallet, amount, reference: payout.reference() };
                match self.fintech.apply_once(out, payout.withdrawal_transaction(), None).await? {
                    LedgerOutcome::Applied { .. } | LedgerOutcome::DuplicateKey => Ok(()),
                    LedgerOutcome::Refused(e) => Err(e.into()),
                    LedgerOutcome::ConflictingDuplicate => {
                        Err(PaymentsError::Unexpected("a payout's withdrawal names another transaction".into()))
                    }
                }
            }
            LedgerOutcome::Refused(e) => Err(e.into()),
            LedgerOutcome::ConflictingDuplicate => {
                Err(PaymentsError::Unexpected("a payout's withdrawal names another transaction".into()))
            }
        }
    }

    /// Return a payout's money to its wallet by a deposit named by the payout (once).
    async fn deposit_back(&self, payout: &Payout) -> Result<(), PaymentsError> {
        let back = LedgerCommand::Deposit {
            wallet: payout.wallet,
            amount: Amount::new(payout.amount)?,
            reference: payout.reference(),
            currency: Some(payout.currency),
        };
        match self.fintech.apply_once(back, payout.return_transaction(), None).await? {
            LedgerOutcome::Applied { .. } | LedgerOutcome::DuplicateKey => {}
            LedgerOutcome::Refused(e) => return Err(e.into()),
            LedgerOutcome::ConflictingDuplicate => {
                return Err(PaymentsError::Unexpected("a payout's return names another transaction".into()))
            }
        }
        Ok(())
    }

    /// Take one webhook delivery: its signature, then whether it was seen, then its event.
    pub async fn webhook(&self, signature: Option<&str>, body: &[u8]) -> Result<Delivered, PaymentsError> {
        let result = self.deliver(signature, body).await;
        let outcome = match &result {
            Ok(d) => d.as_str(),
            Err(PaymentsError::Signature(e)) => e.outcome(),
            Err(PaymentsError::Event(e)) => e.outcome(),
            Err(_) => "failed",
        };
        self.metrics.with(|| metrics::counter!(telemetry::PAYMENTS_WEBHOOKS_TOTAL, "outcome" => outcome).increment(1));
        result
    }

    async fn deliver(&self, signature: Option<&str>, body: &[u8]) -> Result<Delivered, PaymentsError> {
        let now = Utc::now();
        let secrets: Vec<&str> = self.keys.secrets.iter().map(Secret::expose).collect();
        let verified = verify(signature, body, &secrets, now.timestamp(), self.keys.tolerance_secs)?;
        // Remembered for twice the window: a delivery signed at the window's far edge stays
        // known until it is stale.
        let forget_before = now - chrono::Duration::seconds(2 * self.keys.tolerance_secs);
        let key = format!("{}:{}", verified.timestamp, verified.signature);
        if !self.store.remember_delivery(&key, now, forget_before).await? {
            return Err(SignatureError::Replayed.into());
        }
        let result = self.apply(body).await;
        if let Err(e) = &result {
            if e.code().is_server_error() {
                // Not the sender's fault: the very same delivery may come again and be taken.
                if let Err(e) = self.store.forget_delivery(&key).await {
                    tracing::warn!(error = %e, "a failed webhook delivery could not be forgotten");
                }
            }
        }
        result
    }

    /// Apply a verified delivery's event.
    async fn apply(&self, body: &[u8]) -> Result<Delivered, PaymentsError> {
        let event = ProviderEvent::decode(body)?;
        match &event.kind {
            EventKind::IntentSucceeded { intent, .. } => {
                let Some(top_up) = self.store.top_up(intent).await? else {
                    tracing::warn!(event = %event.id, intent = %intent, "collected payment for an intent this service did not create");
                    return Ok(Delivered::Ignored);
                };
                let settled = top_up.settlement(&event.id, &event.kind)?;
                match self.fintech.settle_payment(&settled, None).await? {
                    LedgerOutcome::Applied { .. } => Ok(Delivered::Applied),
                    LedgerOutcome::DuplicateKey => Ok(Delivered::Duplicate),
                    LedgerOutcome::Refused(e) => Err(e.into()),
                    LedgerOutcome::ConflictingDuplicate => {
                        Err(EventError::Mismatch(format!("event {} was applied as another payment", event.id)).into())
                    }
                }
            }
            EventKind::PayoutPaid { payout, ours } | EventKind::PayoutFailed { payout, ours, .. } => {
                let found = match ours.as_deref().and_then(|id| id.parse::<Uuid>().ok()) {
                    Some(id) => self.store.payout(id).await?,
                    None => self.store.payout_by_provider(payout).await?,
                };
                let Some(mut found) = found else {
                    tracing::warn!(event = %event.id, payout = %payout, "event about a payout this service did not create");
                    return Ok(Delivered::Ignored);
                };
                if found.provider_id.as_deref().is_some_and(|p| p != payout) {
                    return Err(EventError::Mismatch(format!("payout {} is {payout} here", found.id)).into());
                }
                found.provider_id = Some(payout.clone());
                match &event.kind {
                    EventKind::PayoutFailed { reason, .. } => {
                        if found.status == PayoutStatus::Failed {
                            return Ok(Delivered::Duplicate);
                        }
                        self.give_back(&mut found, reason.clone().unwrap_or_else(|| "failed".into())).await?;
                        Ok(Delivered::Applied)
                    }
                    _ => {
                        if found.status.is_final() || found.status == PayoutStatus::Paid {
                            return Ok(Delivered::Duplicate);
                        }
                        self.take_out(&found).await?;
                        found.status = PayoutStatus::Paid;
                        if self.store.update_payout(&found).await? {
                            self.count_payout(PayoutStatus::Paid);
                        }
                        Ok(Delivered::Applied)
                    }
                }
            }
            EventKind::Other(kind) => {
                tracing::info!(event = %event.id, kind = %kind, "payments webhook: event type not handled, acknowledged");
                Ok(Delivered::Ignored)
            }
        }
    }

    fn count_payout(&self, status: PayoutStatus) {
        self.metrics
            .with(|| metrics::counter!(telemetry::PAYMENTS_PAYOUTS_TOTAL, "status" => status.as_str()).increment(1));
    }
}

/// The kind of a payout's hold.
const PAYOUT_HOLD_KIND: &str = "payout";

/// How long a payout's hold lasts if the provider never reports on it (a bank payout takes days,
/// not weeks); the provider's late word is still applied (see [`Payments::take_out`]).
const PAYOUT_HOLD_TTL: chrono::Duration = chrono::Duration::days(30);

/// Prefix of a payout's failure when the ledger refused it (the provider's own reasons have none).
const LEDGER_FAILURE: &str = "ledger.";

/// The ledger's refusal a failed payout's key answers again, if the ledger refused it.
fn kept_refusal(p: &Payout) -> Option<PaymentsError> {
    if p.status != PayoutStatus::Failed {
        return None;
    }
    let failure = p.failure.as_deref()?;
    match failure.strip_prefix(LEDGER_FAILURE) {
        Some(code) => Some(ledger_refusal(code, p.wallet).map_or_else(
            || PaymentsError::Unexpected(format!("payout refused by the ledger as {code}")),
            PaymentsError::from,
        )),
        // Refused by the provider when it was created: no payout exists there.
        None if p.provider_id.is_none() => Some(PaymentsError::Refused(failure.to_owned())),
        None => None,
    }
}

/// The ledger refusal of a payout's hold named `code`.
fn ledger_refusal(code: &str, wallet: WalletId) -> Option<FintechError> {
    [
        FintechError::InsufficientFunds(wallet),
        FintechError::WalletFrozen(wallet),
        FintechError::WalletClosed(wallet),
        FintechError::WalletNotFound(wallet),
    ]
    .into_iter()
    .find(|e| e.code().as_str() == code)
}

/// The provider's idempotency key for a caller's key: a short digest of the caller's subject,
/// then the key.
pub fn provider_key(scope: &str, key: &IdempotencyKey) -> String {
    let digest = Sha256::digest(scope.as_bytes());
    format!("{}-{}", hex::encode(&digest[..8]), key.as_str())
}

impl From<StoreError> for PaymentsError {
    fn from(e: StoreError) -> Self {
        Self::Store(e.to_string())
    }
}

impl From<FintechError> for PaymentsError {
    fn from(e: FintechError) -> Self {
        Self::Fintech(e)
    }
}
