//! What the fintech routes answer: the response bodies rendered from the domain's receipts and
//! reads, each with the schema the OpenAPI document publishes.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::{
    openapi::{ObjectBuilder, Schema},
    ToSchema,
};
use uuid::Uuid;

use super::requests::{cursor, nullable_uuid, string, string_or_null, CurrencyCode};
use crate::domain::{
    fintech::{Currency, Movement, MovementKind, Transaction, TransactionKind, Wallet, WalletStatus},
    payments::{Payout, PayoutStatus, TopUp},
};

/// A wallet as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Wallet)]
#[serde(deny_unknown_fields)]
pub struct WalletBody {
    /// Identity.
    pub id: Uuid,
    /// Subject that owns it; `null` once the owner's personal data was erased.
    #[schema(schema_with = owner_or_null, required = true)]
    pub owner: Option<String>,
    /// Whether the owner's personal data was erased (`owner` is then `null`).
    pub erased: bool,
    /// Its only currency.
    #[schema(value_type = CurrencyCode)]
    pub currency: Currency,
    /// Balance in minor units; never negative.
    #[schema(minimum = 0)]
    pub balance: i64,
    /// Minor units set aside by pending holds (a payout waiting for the provider): part of the
    /// balance, not available.
    #[schema(minimum = 0)]
    pub held: i64,
    /// What may be spent, withdrawn or held: the balance minus the held amount.
    #[schema(minimum = 0)]
    pub available: i64,
    /// Lifecycle.
    pub status: WalletState,
    /// Changes applied so far, opening included.
    #[schema(minimum = 1)]
    pub version: i64,
    /// Opening time.
    pub created_at: DateTime<Utc>,
}

impl From<&Wallet> for WalletBody {
    fn from(w: &Wallet) -> Self {
        Self {
            id: w.id.0,
            owner: w.owner.value().cloned(),
            erased: w.owner.is_erased(),
            currency: w.currency,
            balance: w.balance,
            held: w.held,
            available: w.available(),
            status: w.status.into(),
            version: w.version,
            created_at: w.created_at,
        }
    }
}

fn owner_or_null() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(string_or_null())
        .description(Some("Subject that owns it; `null` once the owner's personal data was erased."))
}

fn external_reference() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(string_or_null())
        .description(Some("External reference of a deposit or withdrawal (`null` for a transfer)."))
}

/// Lifecycle of a wallet.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum WalletState {
    /// Accepts every movement.
    Active,
    /// Accepts no movement until unfrozen.
    Frozen,
    /// Final.
    Closed,
}

impl From<WalletStatus> for WalletState {
    fn from(s: WalletStatus) -> Self {
        match s {
            WalletStatus::Active => Self::Active,
            WalletStatus::Frozen => Self::Frozen,
            WalletStatus::Closed => Self::Closed,
        }
    }
}

/// A completed money movement.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Transaction)]
#[serde(deny_unknown_fields)]
pub struct TransactionBody {
    /// Ledger transaction id.
    pub id: Uuid,
    /// Kind.
    pub kind: TransactionKindName,
    /// Wallet debited (`null` for a deposit).
    #[schema(schema_with = debited, required = true)]
    pub from: Option<Uuid>,
    /// Wallet credited (`null` for a withdrawal).
    #[schema(schema_with = credited, required = true)]
    pub to: Option<Uuid>,
    /// Minor units.
    #[schema(minimum = 1)]
    pub amount: i64,
    /// Currency of the wallets.
    #[schema(value_type = CurrencyCode)]
    pub currency: Currency,
    /// External reference of a deposit or withdrawal (`null` for a transfer).
    #[schema(schema_with = external_reference, required = true)]
    pub reference: Option<String>,
    /// Always `completed`: a movement is applied entirely or not at all.
    pub status: TransactionStatus,
    /// The caller's own wallet after the movement, in minor units.
    #[schema(minimum = 0)]
    pub balance_after: i64,
    /// Commit time.
    pub created_at: DateTime<Utc>,
}

fn debited() -> Schema {
    nullable_uuid("Wallet debited (`null` for a deposit).")
}

fn credited() -> Schema {
    nullable_uuid("Wallet credited (`null` for a withdrawal).")
}

impl From<&Transaction> for TransactionBody {
    fn from(t: &Transaction) -> Self {
        Self {
            id: t.id,
            kind: t.kind.into(),
            from: t.from.map(|w| w.0),
            to: t.to.map(|w| w.0),
            amount: t.amount,
            currency: t.currency,
            reference: t.reference.clone(),
            status: TransactionStatus::Completed,
            balance_after: t.balance_after,
            created_at: t.created_at,
        }
    }
}

/// What kind of money movement a transaction is.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[schema(as = TransactionKind)]
#[serde(rename_all = "snake_case")]
pub enum TransactionKindName {
    /// Money in from outside.
    Deposit,
    /// Money out to outside.
    Withdrawal,
    /// Money between two wallets.
    Transfer,
}

impl From<TransactionKind> for TransactionKindName {
    fn from(k: TransactionKind) -> Self {
        match k {
            TransactionKind::Deposit => Self::Deposit,
            TransactionKind::Withdrawal => Self::Withdrawal,
            TransactionKind::Transfer => Self::Transfer,
        }
    }
}

/// State of a transaction.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TransactionStatus {
    /// Applied.
    Completed,
}

/// One money movement of a wallet.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Movement)]
#[serde(deny_unknown_fields)]
pub struct MovementBody {
    /// Version of the wallet this movement produced.
    #[schema(minimum = 1)]
    pub seq: i64,
    /// Ledger transaction both legs belong to.
    #[schema(schema_with = transaction_id, required = true)]
    pub transaction_id: Option<Uuid>,
    /// Kind.
    #[schema(schema_with = money_kind)]
    pub kind: MovementKind,
    /// Signed change in minor units (negative for debits).
    pub amount: i64,
    /// Balance after the change.
    #[schema(minimum = 0)]
    pub balance_after: i64,
    /// The other wallet of a transfer.
    #[schema(schema_with = counterparty, required = true)]
    pub counterparty: Option<Uuid>,
    /// External reference of a deposit or withdrawal.
    #[schema(schema_with = external_reference, required = true)]
    pub reference: Option<String>,
    /// Whether the reference was erased with its subject's personal data (`reference` is then
    /// `null`).
    pub erased: bool,
    /// When it was committed.
    pub created_at: DateTime<Utc>,
}

fn transaction_id() -> Schema {
    nullable_uuid("Ledger transaction both legs belong to.")
}

fn counterparty() -> Schema {
    nullable_uuid("The other wallet of a transfer (`null` otherwise).")
}

/// The kinds of journal entry a listing shows: money movements (lifecycle entries move no
/// money and are not listed).
fn money_kind() -> ObjectBuilder {
    let kinds = [MovementKind::Deposit, MovementKind::Withdrawal, MovementKind::TransferIn, MovementKind::TransferOut];
    string()
        .enum_values(Some(kinds.map(MovementKind::as_str)))
        .description(Some("`transfer_out` and `withdrawal` debit the wallet; `transfer_in` and `deposit` credit it."))
}

impl From<&Movement> for MovementBody {
    fn from(m: &Movement) -> Self {
        Self {
            seq: m.seq,
            transaction_id: m.transaction_id,
            kind: m.kind,
            amount: m.amount,
            balance_after: m.balance_after,
            counterparty: m.counterparty.map(|w| w.0),
            reference: m.reference.clone(),
            erased: m.erased,
            created_at: m.created_at,
        }
    }
}

/// A page of movements, newest first.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = MovementPage)]
#[serde(deny_unknown_fields)]
pub struct MovementPageBody {
    /// Movements, newest first.
    pub items: Vec<MovementBody>,
    /// Pass as `cursor` for the next page; `null` on the last one.
    #[schema(schema_with = next_cursor, required = true)]
    pub next_cursor: Option<String>,
}

fn next_cursor() -> Schema {
    cursor()
        .schema_type(string_or_null())
        .description(Some("`cursor` of the next page; `null` on the last one."))
        .into()
}

/// A top-up: the provider's payment intent, which the client confirms with its secret. The wallet
/// is credited once the provider reports the payment collected.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = TopUp)]
#[serde(deny_unknown_fields)]
pub struct TopUpBody {
    /// The provider's payment intent id.
    pub intent_id: String,
    /// The secret the client confirms the payment with (never logged).
    pub client_secret: String,
    /// Wallet to credit.
    pub wallet_id: Uuid,
    /// Minor units.
    #[schema(minimum = 1)]
    pub amount: i64,
    /// The wallet's currency.
    #[schema(value_type = CurrencyCode)]
    pub currency: Currency,
    /// The intent's status at the provider (`requires_payment_method`, ...).
    pub status: String,
}

impl From<&TopUp> for TopUpBody {
    fn from(t: &TopUp) -> Self {
        Self {
            intent_id: t.intent.clone(),
            client_secret: t.client_secret.clone(),
            wallet_id: t.wallet.0,
            amount: t.amount,
            currency: t.currency,
            status: t.status.clone(),
        }
    }
}

/// Where a payout stands: `pending` (money held, the provider has not confirmed it yet),
/// `in_transit`, `paid`, or `failed` (money back in the wallet).
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PayoutState {
    /// Money held; not confirmed by the provider yet.
    Pending,
    /// On its way to the bank account.
    InTransit,
    /// Received by the bank account.
    Paid,
    /// Failed or cancelled; the money is back in the wallet.
    Failed,
}

impl From<PayoutStatus> for PayoutState {
    fn from(s: PayoutStatus) -> Self {
        match s {
            PayoutStatus::Pending => Self::Pending,
            PayoutStatus::InTransit => Self::InTransit,
            PayoutStatus::Paid => Self::Paid,
            PayoutStatus::Failed => Self::Failed,
        }
    }
}

/// A payout as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Payout)]
#[serde(deny_unknown_fields)]
pub struct PayoutBody {
    /// Identity.
    pub id: Uuid,
    /// Wallet debited.
    pub wallet_id: Uuid,
    /// Minor units.
    #[schema(minimum = 1)]
    pub amount: i64,
    /// The wallet's currency.
    #[schema(value_type = CurrencyCode)]
    pub currency: Currency,
    /// The provider's bank account or card id.
    pub destination: String,
    /// Where it stands.
    pub status: PayoutState,
    /// The provider's payout id, once it confirmed the payout.
    #[schema(schema_with = nullable_text, required = true)]
    pub provider_id: Option<String>,
    /// Why it failed, when it did.
    #[schema(schema_with = nullable_text, required = true)]
    pub failure: Option<String>,
}

fn nullable_text() -> Schema {
    ObjectBuilder::new().schema_type(string_or_null()).into()
}

impl From<&Payout> for PayoutBody {
    fn from(p: &Payout) -> Self {
        Self {
            id: p.id,
            wallet_id: p.wallet.0,
            amount: p.amount,
            currency: p.currency,
            destination: p.destination.clone(),
            status: p.status.into(),
            provider_id: p.provider_id.clone(),
            failure: p.failure.clone(),
        }
    }
}
