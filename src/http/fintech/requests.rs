//! What the fintech routes read: request bodies and path, query and header parameters. Each type
//! carries the schema the OpenAPI document publishes, built from the same constants the server
//! checks against, so that whatever the document allows the server accepts, and the other way
//! round.

use std::borrow::Cow;

use serde::Deserialize;
use utoipa::{
    openapi::{
        schema::{KnownFormat, SchemaFormat, SchemaType},
        ObjectBuilder, RefOr, Schema, Type,
    },
    IntoParams, PartialSchema, ToSchema,
};

use crate::{
    domain::{
        fintech::{Currency, WalletStatus, MAX_AMOUNT, TEXT_MAX},
        idempotency::IdempotencyKey,
    },
    http::json,
};

pub use crate::domain::fintech::PAGE_MAX;
/// Page size when the query names none.
pub const PAGE_DEFAULT: usize = 50;

/// Owners and external references: 1 to [`TEXT_MAX`] characters, none of them a control
/// character (Unicode `Cc`), as [`crate::domain::fintech::check_reference`] checks.
pub fn text_pattern() -> String {
    format!(r"^[^\u0000-\u001F\u007F-\u009F]{{1,{TEXT_MAX}}}$")
}

/// Cursors: the sequence number a page starts below, in decimal, as [`decode_cursor`] reads it.
pub const CURSOR_PATTERN: &str = r"^[1-9][0-9]{0,17}$";

/// The cursor of the page that starts below `seq`.
pub fn encode_cursor(seq: i64) -> String {
    seq.to_string()
}

/// The sequence number a cursor names, when it matches [`CURSOR_PATTERN`].
pub fn decode_cursor(cursor: &str) -> Option<i64> {
    let digits = cursor.as_bytes();
    let well_formed =
        matches!(digits.first(), Some(b'1'..=b'9')) && digits.len() <= 18 && digits.iter().all(u8::is_ascii_digit);
    well_formed.then(|| cursor.parse().ok()).flatten()
}

pub(super) fn string_or_null() -> SchemaType {
    SchemaType::from_iter([Type::String, Type::Null])
}

pub(super) fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

fn text(what: &str, more: &str) -> ObjectBuilder {
    string()
        .min_length(Some(1))
        .max_length(Some(TEXT_MAX))
        .pattern(Some(text_pattern()))
        .description(Some(format!("{what}: 1 to {TEXT_MAX} characters, none of them a control character.{more}")))
}

fn reference() -> ObjectBuilder {
    text("The payment provider's or bank's reference", "")
}

fn owner() -> Schema {
    let more = " Defaults to the caller (`null` is the same as absent); only `admin` opens wallets for others.";
    text("Subject owning the wallet", more).schema_type(string_or_null()).into()
}

fn amount() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
        .minimum(Some(1))
        .maximum(Some(MAX_AMOUNT))
        .description(Some(format!(
            "Minor units of the currency (cents for EUR), 1 to {MAX_AMOUNT}. A number with a zero fraction (`250.0`) is the same integer."
        )))
        .into()
}

fn uuid(description: &str) -> ObjectBuilder {
    string().format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid))).description(Some(description))
}

pub(super) fn nullable_uuid(description: &str) -> Schema {
    uuid(description).schema_type(string_or_null()).into()
}

/// An ISO 4217 code the ledger knows: the schema `Currency`, whose `enum` is
/// [`Currency::codes`].
pub struct CurrencyCode;

impl PartialSchema for CurrencyCode {
    fn schema() -> RefOr<Schema> {
        string()
            .pattern(Some("^[A-Z]{3}$"))
            .enum_values(Some(Currency::codes()))
            .description(Some("An active ISO 4217 currency code."))
            .into()
    }
}

impl ToSchema for CurrencyCode {
    fn name() -> Cow<'static, str> {
        "Currency".into()
    }
}

/// A wallet to open.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenWallet {
    /// ISO 4217 code.
    #[schema(value_type = CurrencyCode)]
    pub currency: String,
    /// Owner; defaults to the caller (only `admin` may open wallets for others).
    #[schema(schema_with = owner)]
    pub owner: Option<String>,
}

/// Money entering (deposit) or leaving (withdrawal) the ledger through one wallet.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExternalMovement {
    /// Minor units.
    #[serde(deserialize_with = "json::integer")]
    #[schema(schema_with = amount)]
    pub amount: i64,
    /// The payment provider's or bank's reference.
    #[schema(schema_with = reference)]
    pub reference: String,
}

/// Money between two wallets of the same currency.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = TransferRequest)]
#[serde(deny_unknown_fields)]
pub struct Transfer {
    /// Wallet debited (the caller's).
    #[schema(schema_with = from_wallet)]
    pub from: String,
    /// Wallet credited.
    #[schema(schema_with = to_wallet)]
    pub to: String,
    /// Minor units.
    #[serde(deserialize_with = "json::integer")]
    #[schema(schema_with = amount)]
    pub amount: i64,
    /// Expected currency of both wallets, checked when given (`null` is the same as absent).
    #[schema(value_type = Option<CurrencyCode>)]
    pub currency: Option<String>,
}

/// A top-up: money the caller pays with the payment provider into one of their wallets.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TopUpRequest {
    /// Minor units of the wallet's currency.
    #[serde(deserialize_with = "json::integer")]
    #[schema(schema_with = amount)]
    pub amount: i64,
}

/// A payout: money of one of the caller's wallets sent to a bank account at the provider.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PayoutRequest {
    /// Minor units of the wallet's currency.
    #[serde(deserialize_with = "json::integer")]
    #[schema(schema_with = amount)]
    pub amount: i64,
    /// The provider's bank account (`ba_...`) or card (`card_...`) id.
    #[schema(schema_with = destination)]
    pub destination: String,
}

/// Destinations, as [`crate::domain::payments::check_destination`] checks them.
pub const DESTINATION_PATTERN: &str = "^(ba|card)_[A-Za-z0-9_]{1,64}$";

fn destination() -> ObjectBuilder {
    string()
        .pattern(Some(DESTINATION_PATTERN))
        .description(Some("The provider's bank account (`ba_...`) or card (`card_...`) id."))
}

fn from_wallet() -> ObjectBuilder {
    uuid("Wallet debited (the caller's).")
}

fn to_wallet() -> ObjectBuilder {
    uuid("Wallet credited.")
}

/// Path of the routes under `/fintech/wallets/{id}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct WalletPath {
    /// Wallet id (a UUID, hyphenated).
    #[param(value_type = Uuid)]
    pub id: String,
}

/// Path of `POST /fintech/wallets/{id}/{action}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct StatusPath {
    /// Wallet id (a UUID, hyphenated).
    #[param(value_type = Uuid)]
    pub id: String,
    /// The status change.
    #[param(inline, example = "freeze")]
    pub action: WalletAction,
}

/// A status change: `freeze` and `unfreeze` (compliance, `admin`), `close` (owner or `admin`;
/// only an empty wallet closes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum WalletAction {
    /// Refuse every movement until unfrozen.
    Freeze,
    /// Accept movements again.
    Unfreeze,
    /// Close for good.
    Close,
}

impl From<WalletAction> for WalletStatus {
    fn from(a: WalletAction) -> Self {
        match a {
            WalletAction::Freeze => WalletStatus::Frozen,
            WalletAction::Unfreeze => WalletStatus::Active,
            WalletAction::Close => WalletStatus::Closed,
        }
    }
}

/// Query of the transactions listing.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Page size, 1 to 200 (default 50).
    #[param(schema_with = page_limit)]
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    #[param(schema_with = cursor)]
    pub cursor: Option<String>,
}

fn page_limit() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(1))
        .maximum(Some(PAGE_MAX))
        .default(Some(PAGE_DEFAULT.into()))
        .description(Some("Page size."))
        .into()
}

pub(super) fn cursor() -> ObjectBuilder {
    string().pattern(Some(CURSOR_PATTERN)).description(Some("`next_cursor` of the previous page."))
}

/// The `Idempotency-Key` header of every POST under `/fintech`, an extractor checked before
/// anything else about the request (the pattern is [`IdempotencyKey::parse`]'s rule).
#[derive(Debug, IntoParams)]
#[into_params(names("Idempotency-Key"), parameter_in = Header)]
pub struct IdempotencyKeyHeader(
    /// 1 to 255 printable ASCII characters. A retry with the same key and body replays the first
    /// answer (with `Idempotent-Replayed: true`), even after a restart; the same key with
    /// another body is 409 `idempotency_key_reused`.
    #[param(value_type = String, min_length = 1, max_length = 255, pattern = r"^[\x21-\x7E]{1,255}$")]
    pub IdempotencyKey,
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{fintech::check_reference, idempotency::KEY_MAX};

    #[test]
    fn cursors_round_trip_and_nothing_else_decodes() {
        for seq in [1, 9, 10, 123_456, 999_999_999_999_999_999] {
            assert_eq!(decode_cursor(&encode_cursor(seq)), Some(seq));
        }
        for bad in ["", "0", "01", "-1", "+1", " 1", "1 ", "1e3", "bogus", "1000000000000000000", "١"] {
            assert_eq!(decode_cursor(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_published_patterns_are_the_rules_the_server_applies() {
        // The same strings, checked both ways: a pattern by hand-written equivalents of its
        // classes, the server by the domain's own checks.
        let text_ok = |s: &str| {
            let n = s.chars().count();
            (1..=TEXT_MAX).contains(&n) && s.chars().all(|c| !matches!(c, '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}'))
        };
        for s in ["psp-1", "é", "a\u{a0}b", "", "a\nb", "\u{85}", &"x".repeat(128), &"x".repeat(129), &"é".repeat(128)]
        {
            assert_eq!(check_reference(s).is_ok(), text_ok(s), "{s:?}");
        }
        let key_ok = |s: &str| (1..=KEY_MAX).contains(&s.len()) && s.bytes().all(|b| (0x21..=0x7e).contains(&b));
        for s in ["k", "key-1", "a b", "", "é", &"k".repeat(255), &"k".repeat(256)] {
            assert_eq!(IdempotencyKey::parse(s).is_ok(), key_ok(s), "{s:?}");
        }
        assert_eq!(text_pattern(), r"^[^\u0000-\u001F\u007F-\u009F]{1,128}$");
    }
}
