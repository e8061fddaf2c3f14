//! Fintech's events: the wallet events it publishes (one per journal entry) and the payment
//! notifications it consumes from the payment provider.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::{check_reference, Amount, Currency, FintechError, Movement, Wallet, WalletId};
use crate::{
    domain::events::{DomainEvent, InboundError, SCHEMA_VERSION},
    error::code::Coded,
};

/// Version of the inbound payment notification schema this service understands.
pub const PAYMENT_SCHEMA_VERSION: u64 = 1;

/// The event type of a settled payment.
pub const PAYMENT_SETTLED: &str = "payment.settled";

/// Field under which a lifecycle event (opened, frozen, unfrozen, closed) carries its wallet's
/// owner, sealed under the owner's key; the row is the wallet's id. Other domains open it to
/// know whose wallet changed, and nobody can once the owner is erased.
pub const OWNER_FIELD: &str = "fintech.wallet.owner";

/// The sealed owners of the wallets whose lifecycle a batch changed, by wallet: what their
/// lifecycle events carry under [`OWNER_FIELD`].
pub type SealedOwners = std::collections::HashMap<WalletId, String>;

/// One fintech wallet event, borrowed from the change that produced it: serialized as a
/// [`DomainEvent`] without building its `data` as a JSON value first (the ledger writer encodes
/// every event of a batch on its serial path).
#[derive(Debug, Clone, Copy)]
pub struct WalletEvent<'a> {
    /// The journal entry.
    pub movement: &'a Movement,
    /// Its wallet's currency.
    pub currency: Option<&'a str>,
    /// Request that caused it, if any.
    pub request_id: Option<&'a str>,
    /// A lifecycle entry's wallet owner, sealed ([`OWNER_FIELD`]); none for money movements and
    /// once the owner is erased.
    pub owner: Option<&'a str>,
}

impl<'a> WalletEvent<'a> {
    /// The events a committed fintech change produced: one per journal entry, in wallet order;
    /// the lifecycle entries carry their wallet's sealed owner from `owners`.
    pub fn all(
        wallets: &'a [Wallet],
        movements: &'a [Movement],
        request_id: Option<&'a str>,
        owners: &'a SealedOwners,
    ) -> impl Iterator<Item = WalletEvent<'a>> + 'a {
        movements.iter().map(move |m| WalletEvent {
            movement: m,
            currency: wallets.iter().find(|w| w.id == m.wallet_id).map(|w| w.currency.code()),
            request_id,
            owner: if m.kind.is_lifecycle() { owners.get(&m.wallet_id).map(String::as_str) } else { None },
        })
    }

    /// Serialize it under `id`, as a [`DomainEvent`] reads it back.
    pub fn with_id(self, id: Uuid) -> impl Serialize + 'a {
        WalletEventWire {
            id,
            event_type: EventType(self.movement.kind.as_str()),
            schema_version: SCHEMA_VERSION,
            domain: WALLET_DOMAIN,
            aggregate_id: self.movement.wallet_id,
            seq: self.movement.seq,
            request_id: self.request_id,
            occurred_at: self.movement.created_at,
            data: WalletEventData { movement: self.movement, currency: self.currency, owner: self.owner },
        }
    }

    /// It as an owned [`DomainEvent`] with `id`.
    pub fn to_event(self, id: Uuid) -> DomainEvent {
        let m = self.movement;
        DomainEvent {
            id,
            event_type: EventType(m.kind.as_str()).to_string(),
            schema_version: SCHEMA_VERSION,
            domain: WALLET_DOMAIN.into(),
            aggregate_id: m.wallet_id.to_string(),
            seq: m.seq,
            request_id: self.request_id.map(str::to_owned),
            occurred_at: m.created_at,
            data: serde_json::to_value(WalletEventData { movement: m, currency: self.currency, owner: self.owner })
                .unwrap_or(Value::Null),
        }
    }
}

#[derive(Serialize)]
struct WalletEventWire<'a> {
    id: Uuid,
    #[serde(rename = "type")]
    event_type: EventType,
    schema_version: u32,
    domain: &'static str,
    aggregate_id: WalletId,
    seq: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
    occurred_at: DateTime<Utc>,
    data: WalletEventData<'a>,
}

/// Domain of the wallet events.
const WALLET_DOMAIN: &str = "fintech";

/// `fintech.wallet.<kind>`, serialized without an intermediate string.
struct EventType(&'static str);

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{WALLET_DOMAIN}.wallet.{}", self.0)
    }
}

impl Serialize for EventType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// An event's body: the journal entry, its wallet's currency and, for a lifecycle entry, the
/// owner sealed.
#[derive(Serialize)]
struct WalletEventData<'a> {
    #[serde(flatten)]
    movement: &'a Movement,
    #[serde(skip_serializing_if = "Option::is_none")]
    currency: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    owner: Option<&'a str>,
}

/// A settled payment reported by the external payment provider: money to credit to a wallet.
#[derive(Debug, Clone, PartialEq)]
pub struct PaymentSettled {
    /// The provider's event id: applied once, whatever the number of deliveries.
    pub event_id: String,
    /// Wallet credited.
    pub wallet: WalletId,
    /// Amount in minor units.
    pub amount: Amount,
    /// Currency the provider settled in; must be the wallet's.
    pub currency: Currency,
    /// The provider's payment reference.
    pub reference: String,
}

/// Namespace of the ledger transaction ids derived from inbound event ids.
const INBOUND_TRANSACTION_NAMESPACE: Uuid = Uuid::from_u128(0x6f1d_2c3b_8a4e_4b1f_9d0e_5a7c_3e2b_1f40);

impl From<FintechError> for InboundError {
    fn from(e: FintechError) -> Self {
        InboundError::Refused { reason: e.code().as_str(), detail: e.to_string() }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PaymentWire {
    event_id: String,
    #[serde(rename = "type")]
    event_type: String,
    schema_version: u64,
    wallet_id: String,
    amount: i64,
    currency: String,
    reference: String,
    #[serde(default)]
    #[allow(dead_code)] // accepted for the provider's bookkeeping; the ledger records its own time
    occurred_at: Option<DateTime<Utc>>,
}

impl PaymentSettled {
    /// Decode and check one payment notification.
    pub fn decode(payload: &[u8]) -> Result<Self, InboundError> {
        // A well-formed notification decodes in one pass; anything else is read again as a JSON
        // value to tell an unknown schema version from a malformed document.
        let wire = match serde_json::from_slice::<PaymentWire>(payload) {
            Ok(wire) if wire.schema_version == PAYMENT_SCHEMA_VERSION => wire,
            Ok(wire) => {
                return Err(InboundError::SchemaVersion { got: wire.schema_version, reads: PAYMENT_SCHEMA_VERSION })
            }
            Err(_) => Self::decode_slowly(payload)?,
        };
        if wire.event_type != PAYMENT_SETTLED {
            return Err(InboundError::UnknownType(wire.event_type));
        }
        if wire.event_id.is_empty() || wire.event_id.len() > 128 {
            return Err(InboundError::Malformed("event_id must be 1 to 128 characters".into()));
        }
        Ok(Self {
            event_id: wire.event_id,
            wallet: wire.wallet_id.parse()?,
            amount: Amount::new(wire.amount)?,
            currency: Currency::parse(&wire.currency)?,
            reference: {
                check_reference(&wire.reference)?;
                wire.reference
            },
        })
    }

    /// The schema version first, then the rest: the reason a notification cannot be decoded.
    fn decode_slowly(payload: &[u8]) -> Result<PaymentWire, InboundError> {
        let value: Value = serde_json::from_slice(payload).map_err(|e| InboundError::Malformed(e.to_string()))?;
        let version = value.get("schema_version").and_then(Value::as_u64);
        match version {
            Some(PAYMENT_SCHEMA_VERSION) => {}
            Some(other) => return Err(InboundError::SchemaVersion { got: other, reads: PAYMENT_SCHEMA_VERSION }),
            None => return Err(InboundError::Malformed("missing field `schema_version`".into())),
        }
        PaymentWire::deserialize(&value).map_err(|e| InboundError::Malformed(e.to_string()))
    }

    /// Id of the ledger transaction that applies this payment: derived from the event id (a
    /// name-based UUID), so that every delivery of the event names the same transaction and the
    /// ledger applies it once.
    pub fn transaction_id(&self) -> Uuid {
        Uuid::new_v5(&INBOUND_TRANSACTION_NAMESPACE, format!("payment.settled:{}", self.event_id).as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payment(overrides: Value) -> Vec<u8> {
        let mut v = serde_json::json!({
            "event_id": "evt-1", "type": "payment.settled", "schema_version": 1,
            "wallet_id": "0190f0a0-0000-7000-8000-000000000001", "amount": 1250, "currency": "EUR",
            "reference": "psp-1"
        });
        if let (Value::Object(m), Value::Object(o)) = (&mut v, overrides) {
            m.extend(o);
        }
        serde_json::to_vec(&v).unwrap_or_default()
    }

    #[test]
    fn a_settled_payment_decodes() {
        let p = PaymentSettled::decode(&payment(Value::Null)).map_err(|e| e.to_string());
        let p = p.as_ref().map(|p| (p.event_id.as_str(), p.amount.get(), p.currency.code()));
        assert_eq!(p, Ok(("evt-1", 1250, "EUR")));
    }

    #[test]
    fn every_bad_notification_has_its_reason() {
        let cases = [
            (b"{not json".to_vec(), "malformed"),
            (payment(serde_json::json!({"schema_version": 2})), "schema_version"),
            (payment(serde_json::json!({"schema_version": 2, "payer": "x"})), "schema_version"),
            (payment(serde_json::json!({"schema_version": "1"})), "malformed"),
            (b"{\"type\": \"payment.settled\"}".to_vec(), "malformed"),
            (payment(serde_json::json!({"type": "payment.refunded"})), "unknown_type"),
            (payment(serde_json::json!({"amount": 0})), "invalid_amount"),
            (payment(serde_json::json!({"currency": "XXQ"})), "unknown_currency"),
            (payment(serde_json::json!({"wallet_id": "nope"})), "invalid_wallet_id"),
            (payment(serde_json::json!({"extra": 1})), "malformed"),
        ];
        for (bytes, reason) in cases {
            let got = PaymentSettled::decode(&bytes).map(|_| ()).map_err(|e| e.reason());
            assert_eq!(got, Err(reason), "{}", String::from_utf8_lossy(&bytes));
        }
    }

    #[test]
    fn a_wallet_event_reads_back_as_the_event_it_encodes() {
        let wallet = Wallet::open("alice", Currency::parse("EUR").unwrap()).unwrap();
        let movement = Movement {
            wallet_id: wallet.id,
            seq: 7,
            transaction_id: Some(Uuid::now_v7()),
            kind: crate::domain::fintech::MovementKind::TransferOut,
            amount: -250,
            balance_after: 750,
            counterparty: Some(WalletId(Uuid::now_v7())),
            reference: Some("ref \"quoted\"".into()),
            erased: false,
            created_at: Utc::now(),
        };
        let frozen = Movement {
            seq: 8,
            transaction_id: None,
            kind: crate::domain::fintech::MovementKind::Frozen,
            amount: 0,
            counterparty: None,
            reference: None,
            ..movement.clone()
        };
        let owners = SealedOwners::from([(wallet.id, "pd1.sealed-owner".to_owned())]);
        let wallets = [wallet];
        let movements = [movement, frozen.clone()];
        for request in [Some("req-1"), None] {
            let events: Vec<_> = WalletEvent::all(&wallets, &movements, request, &owners).collect();
            let id = Uuid::now_v7();
            let read: Vec<DomainEvent> = events
                .iter()
                .map(|e| serde_json::from_slice(&serde_json::to_vec(&e.with_id(id)).unwrap()).unwrap())
                .collect();
            assert_eq!(read, events.iter().map(|e| e.to_event(id)).collect::<Vec<_>>());
            assert_eq!(read[0].event_type, "fintech.wallet.transfer_out");
            assert_eq!(read[0].data["currency"], "EUR");
            assert_eq!(read[0].data["amount"], -250);
            // A money movement names no owner; a lifecycle entry carries it sealed.
            assert!(read[0].data.get("owner").is_none());
            assert_eq!(read[1].event_type, "fintech.wallet.frozen");
            assert_eq!(read[1].data["owner"], "pd1.sealed-owner");
        }
        let none = SealedOwners::new();
        let event = WalletEvent::all(&wallets, std::slice::from_ref(&frozen), None, &none).next().unwrap();
        assert!(event.to_event(Uuid::now_v7()).data.get("owner").is_none(), "an erased owner is not carried");
    }

    #[test]
    fn every_delivery_of_an_event_names_the_same_transaction() {
        let decode = |id: &str| PaymentSettled::decode(&payment(serde_json::json!({ "event_id": id }))).unwrap();
        assert_eq!(decode("evt-1").transaction_id(), decode("evt-1").transaction_id());
        assert_ne!(decode("evt-1").transaction_id(), decode("evt-2").transaction_id());
        assert_eq!(decode("evt-1").transaction_id().get_version_num(), 5);
    }
}
