//! Payments through an outside provider (Stripe's public API is the reference): top-ups are
//! payment intents the provider collects and then reports by a signed webhook; payouts send a
//! wallet's money to a bank account, held in the ledger from the request until the provider
//! reports the payout paid (the hold stays out) or failed (the hold comes back).
//!
//! Here: the webhook's signature scheme, the provider's events as this service reads them, and
//! the rules that turn an event into a ledger change: a settled payment must be the one that
//! was asked for (wallet, amount, currency), and each payout's hold and return are named
//! ledger transactions, applied once.

mod signature;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

pub use signature::{sign, verify, SignatureError, Verified, SIGNATURE_HEADER};

use super::fintech::{Amount, Currency, FintechError, PaymentSettled, WalletId};
use crate::error::code::{Coded, ErrorCode};

/// Event type of a collected payment intent.
pub const INTENT_SUCCEEDED: &str = "payment_intent.succeeded";
/// Event type of a payout that reached the bank account.
pub const PAYOUT_PAID: &str = "payout.paid";
/// Event type of a payout the bank refused.
pub const PAYOUT_FAILED: &str = "payout.failed";
/// Event type of a payout cancelled before it was paid.
pub const PAYOUT_CANCELED: &str = "payout.canceled";

/// Metadata key naming the wallet of an intent.
pub const META_WALLET: &str = "wallet_id";
/// Metadata key naming this service's id of a payout.
pub const META_PAYOUT: &str = "payout_id";

/// Namespace of the ledger transaction ids of payouts.
const PAYOUT_NAMESPACE: Uuid = Uuid::from_u128(0x2b8e_51d4_7c3a_4f6e_a1d9_0e4b_6c2f_8a13);

/// Why a webhook's event cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// The body is not an event this service can read.
    #[error("the event cannot be read: {0}")]
    Malformed(String),
    /// The event does not match what this service asked the provider for.
    #[error("the event does not match what was asked: {0}")]
    Mismatch(String),
}

impl EventError {
    /// Bounded label: the `outcome` of the webhook deliveries counter.
    pub fn outcome(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "malformed",
            Self::Mismatch(_) => "mismatch",
        }
    }
}

impl Coded for EventError {
    fn code(&self) -> ErrorCode {
        match self {
            Self::Malformed(_) => ErrorCode::WebhookMalformed,
            Self::Mismatch(_) => ErrorCode::WebhookMismatch,
        }
    }
}

/// A provider event as this service reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderEvent {
    /// The provider's event id (`evt_...`): names the event across redeliveries.
    pub id: String,
    /// What happened.
    pub kind: EventKind,
}

/// What an event reports.
#[derive(Debug, Clone, PartialEq)]
pub enum EventKind {
    /// A payment intent was collected.
    IntentSucceeded {
        /// Intent id (`pi_...`).
        intent: String,
        /// Amount collected, minor units.
        amount: i64,
        /// Currency, upper case.
        currency: String,
        /// The wallet named in the intent's metadata.
        wallet: Option<String>,
    },
    /// A payout reached the bank account.
    PayoutPaid {
        /// The provider's payout id (`po_...`).
        payout: String,
        /// This service's payout id, from the payout's metadata.
        ours: Option<String>,
    },
    /// A payout failed or was cancelled: its money comes back.
    PayoutFailed {
        /// The provider's payout id.
        payout: String,
        /// This service's payout id, from the payout's metadata.
        ours: Option<String>,
        /// The provider's failure code, when it gives one.
        reason: Option<String>,
    },
    /// An event type this service does not act on.
    Other(String),
}

#[derive(Deserialize)]
struct EventWire {
    id: String,
    #[serde(rename = "type")]
    event_type: String,
    data: DataWire,
}

#[derive(Deserialize)]
struct DataWire {
    object: Value,
}

#[derive(Deserialize)]
struct IntentWire {
    id: String,
    amount: i64,
    currency: String,
    #[serde(default)]
    metadata: serde_json::Map<String, Value>,
}

#[derive(Deserialize)]
struct PayoutWire {
    id: String,
    #[serde(default)]
    failure_code: Option<String>,
    #[serde(default)]
    metadata: serde_json::Map<String, Value>,
}

impl ProviderEvent {
    /// Read a webhook's body.
    pub fn decode(body: &[u8]) -> Result<Self, EventError> {
        let malformed = |e: serde_json::Error| EventError::Malformed(e.to_string().chars().take(160).collect());
        let wire: EventWire = serde_json::from_slice(body).map_err(malformed)?;
        if wire.id.is_empty() || wire.id.len() > 128 {
            return Err(EventError::Malformed("the event id must be 1 to 128 characters".into()));
        }
        let kind = match wire.event_type.as_str() {
            INTENT_SUCCEEDED => {
                let intent: IntentWire = serde_json::from_value(wire.data.object).map_err(malformed)?;
                EventKind::IntentSucceeded {
                    intent: intent.id,
                    amount: intent.amount,
                    currency: intent.currency.to_ascii_uppercase(),
                    wallet: intent.metadata.get(META_WALLET).and_then(Value::as_str).map(str::to_owned),
                }
            }
            PAYOUT_PAID | PAYOUT_FAILED | PAYOUT_CANCELED => {
                let payout: PayoutWire = serde_json::from_value(wire.data.object).map_err(malformed)?;
                let ours = payout.metadata.get(META_PAYOUT).and_then(Value::as_str).map(str::to_owned);
                if wire.event_type == PAYOUT_PAID {
                    EventKind::PayoutPaid { payout: payout.id, ours }
                } else {
                    let reason = payout.failure_code.or_else(|| Some(wire.event_type.replace("payout.", "")));
                    EventKind::PayoutFailed { payout: payout.id, ours, reason }
                }
            }
            other => EventKind::Other(other.chars().take(64).collect()),
        };
        Ok(Self { id: wire.id, kind })
    }
}

/// A top-up: a payment intent created with the provider for a wallet, kept so that the webhook
/// settling it is checked against what was asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopUp {
    /// The provider's intent id (`pi_...`).
    pub intent: String,
    /// Wallet to credit.
    pub wallet: WalletId,
    /// Minor units asked for.
    pub amount: i64,
    /// Currency asked for (the wallet's).
    pub currency: Currency,
    /// The secret the client confirms the payment with.
    pub client_secret: String,
    /// The intent's status as the provider answered it (`requires_payment_method`, ...).
    pub status: String,
}

impl TopUp {
    /// The fields in which `other`, a top-up answered under the same idempotency key, differs
    /// from this one: the key was used for another request when any does.
    pub fn differs_from(&self, other: &TopUp) -> Vec<String> {
        let mut fields = Vec::new();
        if self.wallet != other.wallet {
            fields.push("wallet".to_owned());
        }
        if self.amount != other.amount {
            fields.push("amount".to_owned());
        }
        if self.currency != other.currency {
            fields.push("currency".to_owned());
        }
        fields
    }

    /// The ledger credit a collected intent makes: the provider's event id names it, so that it
    /// is applied once however often the event is delivered, and by whichever path.
    pub fn settlement(&self, event_id: &str, kind: &EventKind) -> Result<PaymentSettled, EventError> {
        let EventKind::IntentSucceeded { intent, amount, currency, wallet } = kind else {
            return Err(EventError::Mismatch("not a collected payment".into()));
        };
        let wallet_matches = wallet.as_deref().is_none_or(|w| w == self.wallet.to_string());
        if *intent != self.intent || *amount != self.amount || currency != self.currency.code() || !wallet_matches {
            return Err(EventError::Mismatch(format!(
                "intent {intent}: {amount} {currency} for wallet {} reported, {} {} for wallet {} asked",
                wallet.as_deref().unwrap_or("-"),
                self.amount,
                self.currency,
                self.wallet
            )));
        }
        let amount = Amount::new(*amount).map_err(|e| EventError::Mismatch(e.to_string()))?;
        Ok(PaymentSettled {
            event_id: event_id.to_owned(),
            wallet: self.wallet,
            amount,
            currency: self.currency,
            reference: self.intent.clone(),
        })
    }
}

/// Where a payout stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PayoutStatus {
    /// The money is held; the provider has not (yet) acknowledged the payout.
    Pending,
    /// The provider accepted the payout; the money is on its way.
    InTransit,
    /// The bank account received it.
    Paid,
    /// The payout failed or was cancelled; the money is back in the wallet.
    Failed,
}

impl PayoutStatus {
    /// Lower-case name, as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::InTransit => "in_transit",
            Self::Paid => "paid",
            Self::Failed => "failed",
        }
    }

    /// Every status.
    pub const ALL: [Self; 4] = [Self::Pending, Self::InTransit, Self::Paid, Self::Failed];

    /// The status named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// Whether nothing will change it any more: a failed payout has its money back. A paid one
    /// may still fail later (the bank returns it), as the provider documents.
    pub fn is_final(self) -> bool {
        self == Self::Failed
    }

    /// Whether a payout may go from this status to `next`: never back (a late answer of the
    /// provider does not undo what its webhook already said), never out of `failed`.
    pub fn may_become(self, next: Self) -> bool {
        match self {
            Self::Pending => true,
            Self::InTransit => next != Self::Pending,
            Self::Paid => next == Self::Failed,
            Self::Failed => false,
        }
    }
}

/// A payout of a wallet's money to a bank account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payout {
    /// This service's id; also the provider's `Idempotency-Key` for creating it.
    pub id: Uuid,
    /// Wallet debited.
    pub wallet: WalletId,
    /// Minor units.
    pub amount: i64,
    /// The wallet's currency.
    pub currency: Currency,
    /// The provider's bank account (or card) id.
    pub destination: String,
    /// The provider's payout id, once it acknowledged it.
    pub provider_id: Option<String>,
    /// Where it stands.
    pub status: PayoutStatus,
    /// The provider's reason when it failed.
    pub failure: Option<String>,
}

impl Payout {
    /// Id of the ledger hold that sets the money aside: named by the payout, so that a retried
    /// request holds it once. (Payouts made before holds existed withdrew their money at once
    /// under this id.)
    pub fn hold_transaction(&self) -> Uuid {
        Uuid::new_v5(&PAYOUT_NAMESPACE, format!("payout.hold:{}", self.id).as_bytes())
    }

    /// Id of the ledger deposit that returns the money of a failed payout: named by the payout,
    /// so that the money comes back once however often the failure is reported.
    pub fn return_transaction(&self) -> Uuid {
        Uuid::new_v5(&PAYOUT_NAMESPACE, format!("payout.return:{}", self.id).as_bytes())
    }

    /// Id of the ledger withdrawal that posts the hold once the provider paid: named by the
    /// payout, so that the money leaves once however often the payment is reported.
    pub fn withdrawal_transaction(&self) -> Uuid {
        Uuid::new_v5(&PAYOUT_NAMESPACE, format!("payout.withdrawal:{}", self.id).as_bytes())
    }

    /// The ledger reference of its hold and return.
    pub fn reference(&self) -> String {
        format!("payout:{}", self.id)
    }
}

/// Check a destination: a provider bank account (`ba_...`) or card (`card_...`) id.
pub fn check_destination(destination: &str) -> Result<(), FintechError> {
    let body = destination.strip_prefix("ba_").or_else(|| destination.strip_prefix("card_"));
    match body {
        Some(b) if (1..=64).contains(&b.len()) && b.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_') => Ok(()),
        _ => Err(FintechError::InvalidReference),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: &str, object: Value) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "id": "evt_1", "object": "event", "type": kind, "created": 1, "data": {"object": object}
        }))
        .unwrap()
    }

    fn top_up() -> TopUp {
        TopUp {
            intent: "pi_1".into(),
            wallet: WalletId(Uuid::now_v7()),
            amount: 1250,
            currency: Currency::parse("EUR").unwrap(),
            client_secret: "pi_1_secret_x".into(),
            status: "requires_payment_method".into(),
        }
    }

    #[test]
    fn a_collected_intent_settles_what_was_asked_under_the_event_id() {
        let t = top_up();
        let body = event(
            INTENT_SUCCEEDED,
            serde_json::json!({"id": "pi_1", "amount": 1250, "currency": "eur",
                "metadata": {"wallet_id": t.wallet.to_string()}}),
        );
        let e = ProviderEvent::decode(&body).unwrap();
        let settled = t.settlement(&e.id, &e.kind).unwrap();
        assert_eq!((settled.event_id.as_str(), settled.amount.get(), settled.wallet), ("evt_1", 1250, t.wallet));
        assert_eq!(settled.reference, "pi_1");
    }

    #[test]
    fn an_intent_reported_otherwise_than_asked_is_a_mismatch() {
        let t = top_up();
        for object in [
            serde_json::json!({"id": "pi_1", "amount": 1251, "currency": "eur"}),
            serde_json::json!({"id": "pi_1", "amount": 1250, "currency": "usd"}),
            serde_json::json!({"id": "pi_2", "amount": 1250, "currency": "eur"}),
            serde_json::json!({"id": "pi_1", "amount": 1250, "currency": "eur", "metadata": {"wallet_id": "other"}}),
        ] {
            let e = ProviderEvent::decode(&event(INTENT_SUCCEEDED, object.clone())).unwrap();
            assert_eq!(t.settlement(&e.id, &e.kind).map_err(|e| e.outcome()), Err("mismatch"), "{object}");
        }
    }

    #[test]
    fn a_top_up_answered_under_a_reused_key_names_what_differs() {
        let t = top_up();
        assert!(t.differs_from(&t.clone()).is_empty());
        let other = TopUp { amount: 1, wallet: WalletId(Uuid::now_v7()), ..t.clone() };
        assert_eq!(t.differs_from(&other), ["wallet", "amount"]);
    }

    #[test]
    fn payouts_and_other_events_decode() {
        let paid = ProviderEvent::decode(&event(PAYOUT_PAID, serde_json::json!({"id": "po_1"}))).unwrap();
        assert_eq!(paid.kind, EventKind::PayoutPaid { payout: "po_1".into(), ours: None });
        let failed = ProviderEvent::decode(&event(
            PAYOUT_FAILED,
            serde_json::json!({"id": "po_1", "failure_code": "account_closed", "metadata": {"payout_id": "p-1"}}),
        ))
        .unwrap();
        let expected = EventKind::PayoutFailed {
            payout: "po_1".into(),
            ours: Some("p-1".into()),
            reason: Some("account_closed".into()),
        };
        assert_eq!(failed.kind, expected);
        let other = ProviderEvent::decode(&event("customer.created", serde_json::json!({"id": "cus_1"}))).unwrap();
        assert_eq!(other.kind, EventKind::Other("customer.created".into()));
        assert!(ProviderEvent::decode(b"{\"id\": \"evt\"}").is_err());
        assert!(ProviderEvent::decode(&event(PAYOUT_PAID, serde_json::json!({}))).is_err());
    }

    #[test]
    fn each_payout_names_its_own_hold_and_return() {
        let p = Payout {
            id: Uuid::now_v7(),
            wallet: WalletId(Uuid::now_v7()),
            amount: 10,
            currency: Currency::parse("EUR").unwrap(),
            destination: "ba_1".into(),
            provider_id: None,
            status: PayoutStatus::Pending,
            failure: None,
        };
        let q = Payout { id: Uuid::now_v7(), ..p.clone() };
        assert_ne!(p.hold_transaction(), p.return_transaction());
        assert_eq!(p.hold_transaction(), p.clone().hold_transaction());
        assert_ne!(p.hold_transaction(), q.hold_transaction());
        assert_ne!(p.withdrawal_transaction(), p.hold_transaction());
        assert_ne!(p.withdrawal_transaction(), p.return_transaction());
        use PayoutStatus::*;
        assert!(Pending.may_become(Paid) && InTransit.may_become(Paid) && Paid.may_become(Failed));
        assert!(!Paid.may_become(InTransit) && !Failed.may_become(Paid) && !InTransit.may_become(Pending));
        assert!(check_destination("ba_1Abc").is_ok());
        for bad in ["", "ba_", "acct_1", "ba_1;drop", &format!("ba_{}", "1".repeat(65))] {
            assert!(check_destination(bad).is_err(), "{bad}");
        }
    }
}
