//! The table of error codes (code, HTTP status, title) and [`Coded`], the trait every error that
//! reaches a client implements beside its type. Nothing here knows about a web server or GraphQL,
//! so that domains, adapters and actors name it without naming anything above them.

use std::{fmt, time::Duration};

use serde::Serialize;
use serde_json::{Map, Value};

macro_rules! error_codes {
    ($( $(#[$doc:meta])* $variant:ident => ($code:literal, $status:literal, $title:literal), )*) => {
        /// Stable error codes: the `code` of a problem body and `extensions.code` in GraphQL.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
        pub enum ErrorCode { $( $(#[$doc])* $variant, )* }

        impl ErrorCode {
            /// Every code, in table order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The stable string clients match on.
            pub const fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$variant => $code,)* }
            }

            /// The HTTP status that goes with it.
            pub const fn status(self) -> u16 {
                match self { $(ErrorCode::$variant => $status,)* }
            }

            /// Short human title.
            pub const fn title(self) -> &'static str {
                match self { $(ErrorCode::$variant => $title,)* }
            }
        }
    };
}

error_codes! {
    /// The request is malformed in a way no more specific code covers.
    BadRequest => ("bad_request", 400, "Bad request"),
    /// The body is not valid JSON or does not match the expected shape.
    MalformedJson => ("malformed_json", 400, "Malformed JSON body"),
    /// A path or query parameter is malformed.
    InvalidParameter => ("invalid_parameter", 400, "Invalid parameter"),
    /// No bearer token was sent.
    TokenMissing => ("token_missing", 401, "Authentication required"),
    /// The Authorization header or the token is not a well-formed JWT.
    TokenMalformed => ("token_malformed", 401, "Malformed token"),
    /// The token is unsigned (`alg: none`).
    TokenUnsigned => ("token_unsigned", 401, "Unsigned token"),
    /// The token's algorithm is not accepted (e.g. HS256 where only RS256 keys are configured).
    TokenAlgorithmNotAllowed => ("token_algorithm_not_allowed", 401, "Token algorithm not accepted"),
    /// The token's `kid` names no configured key.
    TokenUnknownKey => ("token_unknown_key", 401, "Unknown token key"),
    /// No configured key verifies the token's signature.
    TokenInvalidSignature => ("token_invalid_signature", 401, "Invalid token signature"),
    /// The token has expired.
    TokenExpired => ("token_expired", 401, "Token expired"),
    /// The token is not valid yet (`nbf`).
    TokenNotYetValid => ("token_not_yet_valid", 401, "Token not yet valid"),
    /// The token was issued by someone else.
    TokenWrongIssuer => ("token_wrong_issuer", 401, "Wrong token issuer"),
    /// The token is meant for another audience.
    TokenWrongAudience => ("token_wrong_audience", 401, "Wrong token audience"),
    /// A required claim is missing or malformed.
    TokenInvalidClaims => ("token_invalid_claims", 401, "Invalid token claims"),
    /// The token lives longer than `auth.max_token_lifetime_secs`.
    TokenLifetimeTooLong => ("token_lifetime_too_long", 401, "Token lifetime too long"),
    /// The token's `jti` was revoked.
    TokenRevoked => ("token_revoked", 401, "Token revoked"),
    /// The token lacks a scope the operation needs; `missing_scope` names it.
    ScopeMissing => ("scope_missing", 403, "Missing scope"),
    /// The resource belongs to another user.
    NotOwner => ("not_owner", 403, "Forbidden"),
    /// Not an ISO 4217 currency code.
    UnknownCurrency => ("unknown_currency", 400, "Unknown currency"),
    /// Zero, negative or non-integer amount.
    InvalidAmount => ("invalid_amount", 400, "Invalid amount"),
    /// Amount above the largest accepted, or a balance would overflow.
    AmountTooLarge => ("amount_too_large", 400, "Amount too large"),
    /// Source and destination are the same wallet.
    SameWallet => ("same_wallet", 400, "Same wallet"),
    /// A wallet id is not a UUID.
    InvalidWalletId => ("invalid_wallet_id", 400, "Invalid wallet id"),
    /// External reference or owner missing or malformed.
    InvalidReference => ("invalid_reference", 400, "Invalid reference"),
    /// POST without an `Idempotency-Key` header, or a malformed one.
    IdempotencyKeyMissing => ("idempotency_key_missing", 400, "Idempotency key required"),
    /// An administrator's read of another subject's personal data, or erasure for them, without a
    /// reason (`X-Access-Reason` header or `reason` field).
    ReasonRequired => ("reason_required", 403, "Reason required"),
    /// A page larger than allowed was asked for.
    PageTooLarge => ("page_too_large", 400, "Page too large"),
    /// The pagination cursor is not one this listing issued to the caller (altered, or carried
    /// to another listing or caller).
    InvalidCursor => ("invalid_cursor", 400, "Invalid cursor"),
    /// Nothing follows a genuine cursor any more (the items after it were deleted or hidden).
    PageBeyondEnd => ("page_beyond_end", 404, "Page beyond the end"),
    /// A GraphQL operation is deeper, taller or larger than allowed; `limit` names the limit.
    OperationLimitExceeded => ("operation_limit_exceeded", 400, "Operation limit exceeded"),
    /// A payments webhook without a usable `Stripe-Signature` header.
    WebhookUnsigned => ("webhook_unsigned", 400, "Unsigned webhook"),
    /// No signature of a payments webhook matches a webhook secret in use.
    WebhookSignatureInvalid => ("webhook_signature_invalid", 400, "Invalid webhook signature"),
    /// A payments webhook signed too long ago (or ahead), beyond the tolerance window.
    WebhookTimestampStale => ("webhook_timestamp_stale", 400, "Stale webhook"),
    /// The very same signed payments webhook was already received.
    WebhookReplayed => ("webhook_replayed", 400, "Replayed webhook"),
    /// A signed payments webhook whose event cannot be read.
    WebhookMalformed => ("webhook_malformed", 400, "Malformed webhook event"),
    /// A hold's kind is not a short lower-case name.
    InvalidHoldKind => ("invalid_hold_kind", 400, "Invalid hold kind"),
    /// No such wallet.
    WalletNotFound => ("wallet_not_found", 404, "Wallet not found"),
    /// No such hold on that wallet.
    HoldNotFound => ("hold_not_found", 404, "Hold not found"),
    /// No route matches the path.
    NotFound => ("not_found", 404, "Not found"),
    /// No actor has that name.
    ActorNotFound => ("actor_not_found", 404, "Actor not found"),
    /// The route exists but not for this method.
    MethodNotAllowed => ("method_not_allowed", 405, "Method not allowed"),
    /// The wallet is frozen.
    WalletFrozen => ("wallet_frozen", 409, "Wallet frozen"),
    /// The wallet is closed.
    WalletClosed => ("wallet_closed", 409, "Wallet closed"),
    /// Only an empty wallet closes.
    BalanceNotZero => ("balance_not_zero", 409, "Balance not zero"),
    /// The status change makes no sense from the current status.
    InvalidTransition => ("invalid_transition", 409, "Invalid status change"),
    /// A wallet with pending holds cannot close.
    HoldsPending => ("holds_pending", 409, "Holds pending"),
    /// The hold was posted already.
    HoldPosted => ("hold_posted", 409, "Hold already posted"),
    /// The hold was voided already.
    HoldVoided => ("hold_voided", 409, "Hold already voided"),
    /// The hold expired (and its money was released).
    HoldExpired => ("hold_expired", 409, "Hold expired"),
    /// Another hold (wallet, amount or kind) was placed under that id.
    HoldConflict => ("hold_conflict", 409, "Hold id used for another hold"),
    /// The idempotency key was used for a different request; `fields` names what differs.
    IdempotencyKeyReused => ("idempotency_key_reused", 409, "Idempotency key reused"),
    /// The body is larger than the configured limit.
    PayloadTooLarge => ("payload_too_large", 413, "Payload too large"),
    /// The body's media type is not accepted.
    UnsupportedMediaType => ("unsupported_media_type", 415, "Unsupported media type"),
    /// The debit would make the balance negative.
    InsufficientFunds => ("insufficient_funds", 422, "Insufficient funds"),
    /// A hold is posted for more than it holds.
    HoldAmountExceeded => ("hold_amount_exceeded", 422, "Hold amount exceeded"),
    /// The wallets hold different currencies.
    CurrencyMismatch => ("currency_mismatch", 422, "Currency mismatch"),
    /// A signed payments webhook reports something else than was asked (wallet, amount,
    /// currency of the intent).
    WebhookMismatch => ("webhook_mismatch", 422, "Webhook does not match the payment"),
    /// The payment provider refused the request on its merits; `reason` gives its code.
    PaymentRefused => ("payment_refused", 422, "Payment refused by the provider"),
    /// A latitude outside ±90 or a longitude outside ±180, or not a number; `field` names it.
    InvalidCoordinates => ("invalid_coordinates", 400, "Invalid coordinates"),
    /// Not a mode of transport rides are offered in.
    UnknownMode => ("unknown_mode", 400, "Unknown mode"),
    /// No such quote (or it is someone else's).
    QuoteNotFound => ("quote_not_found", 404, "Quote not found"),
    /// No such ride (or the caller takes no part in it).
    RideNotFound => ("ride_not_found", 404, "Ride not found"),
    /// The caller has no driver profile.
    DriverNotFound => ("driver_not_found", 404, "Driver not found"),
    /// The quote was already used for a ride.
    QuoteUsed => ("quote_used", 409, "Quote already used"),
    /// The rider already has a ride that is not final.
    RideAlreadyOpen => ("ride_already_open", 409, "Ride already open"),
    /// The action makes no sense in the ride's current state; `state` and `action` name them.
    RideStateConflict => ("ride_state_conflict", 409, "Ride state conflict"),
    /// The driver is offline.
    DriverOffline => ("driver_offline", 409, "Driver offline"),
    /// The driver is on a ride.
    DriverBusy => ("driver_busy", 409, "Driver busy"),
    /// The ride is not currently offered to this driver.
    RideNotOffered => ("ride_not_offered", 409, "Ride not offered"),
    /// This party already rated the ride.
    AlreadyRated => ("already_rated", 409, "Already rated"),
    /// Pickup and dropoff are the same place.
    SamePickupDropoff => ("same_pickup_dropoff", 422, "Same pickup and dropoff"),
    /// Rides are not offered in the currency of the rider's wallet.
    UnsupportedCurrency => ("unsupported_currency", 422, "Unsupported currency"),
    /// The quote has expired.
    QuoteExpired => ("quote_expired", 422, "Quote expired"),
    /// A vehicle declares more passenger seats than its mode holds.
    TooManySeats => ("too_many_seats", 422, "Too many seats"),
    /// The routing provider finds no route between pickup and dropoff.
    NoRoute => ("no_route", 422, "No route"),
    /// Not an activity type a user may report; `type` names it.
    UnknownActivityType => ("unknown_activity_type", 400, "Unknown activity type"),
    /// An activity's distance is not above 0 and at most 2000 km.
    InvalidDistance => ("invalid_distance", 422, "Invalid distance"),
    /// An activity's date is in the future or more than a year back; `earliest` and `latest` say
    /// which dates are accepted.
    DateOutOfRange => ("date_out_of_range", 422, "Date out of range"),
    /// An activity of the same type, date and about the same distance was already reported.
    DuplicateActivity => ("duplicate_activity", 422, "Duplicate activity"),
    /// Not a handle: 3 to 30 of a-z, A-Z, 0-9 and _.
    InvalidHandle => ("invalid_handle", 400, "Invalid handle"),
    /// A text field is blank, too long, or holds a control or bidirectional formatting character.
    InvalidText => ("invalid_text", 400, "Invalid text"),
    /// An address that is not an https URL.
    InvalidUrl => ("invalid_url", 400, "Invalid URL"),
    /// Following, blocking or muting one's own profile.
    OwnProfile => ("own_profile", 422, "Own profile"),
    /// Reporting one's own profile or post.
    OwnContent => ("own_content", 422, "Own content"),
    /// The caller's report of this post or profile is still open; `report` names it.
    AlreadyReported => ("already_reported", 409, "Already reported"),
    /// No moderation report of this id.
    ReportNotFound => ("report_not_found", 404, "Report not found"),
    /// The report was resolved already; `status` says how.
    ReportClosed => ("report_closed", 409, "Report closed"),
    /// A block stands between the caller and the profile.
    Blocked => ("blocked", 403, "Blocked"),
    /// The profile shares this with its followers only.
    NotVisible => ("not_visible", 403, "Not visible"),
    /// No profile has this handle, or the caller may not see it.
    ProfileNotFound => ("profile_not_found", 404, "Profile not found"),
    /// No request to follow the caller from this profile.
    FollowRequestNotFound => ("follow_request_not_found", 404, "Follow request not found"),
    /// No post or comment of this id, or the caller may not see it.
    PostNotFound => ("post_not_found", 404, "Post not found"),
    /// The caller reacted to this post already.
    AlreadyReacted => ("already_reacted", 409, "Already reacted"),
    /// A post's link names nothing a post can link to, or nothing of the caller's.
    InvalidLink => ("invalid_link", 422, "Invalid link"),
    /// The post is older than its 15-minute edit window.
    EditWindowClosed => ("edit_window_closed", 422, "Edit window closed"),
    /// A reply to a reply: comments are threaded one level deep.
    ThreadTooDeep => ("thread_too_deep", 422, "Thread too deep"),
    /// Another profile has this handle, whatever its case.
    HandleTaken => ("handle_taken", 409, "Handle taken"),
    /// The caller has no social profile yet.
    ProfileRequired => ("profile_required", 409, "Profile required"),
    /// A driver reports their position faster than allowed; `Retry-After` says when to try again.
    LocationRateLimited => ("location_rate_limited", 429, "Location reports too frequent"),
    /// Too many requests; `Retry-After` says when to try again.
    RateLimited => ("rate_limited", 429, "Too many requests"),
    /// An unexpected failure; details are in the logs under the request id.
    Internal => ("internal_error", 500, "Internal server error"),
    /// The actor that owns the resource is restarting or failed.
    ActorUnavailable => ("actor_unavailable", 503, "Service unavailable"),
    /// The service is shutting down or not ready.
    ServiceUnavailable => ("service_unavailable", 503, "Service unavailable"),
    /// The ledger store cannot be reached; retry with the same idempotency key.
    LedgerUnavailable => ("ledger_unavailable", 503, "Service unavailable"),
    /// Too many commands are waiting for the ledger (the database is slow or unreachable);
    /// `Retry-After` says when to try again.
    Overloaded => ("overloaded", 503, "Service unavailable"),
    /// The store of personal-data keys cannot be reached; retry later.
    PrivacyUnavailable => ("privacy_unavailable", 503, "Service unavailable"),
    /// A state-changing request could not be audited and the policy is fail-closed.
    AuditUnavailable => ("audit_unavailable", 503, "Service unavailable"),
    /// The actor that owns the resource did not answer in time.
    ActorTimeout => ("actor_timeout", 504, "Gateway timeout"),
}

impl ErrorCode {
    /// Whether the service is at fault (5xx) rather than the request (4xx).
    pub const fn is_server_error(self) -> bool {
        self.status() >= 500
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error a client may receive, implemented beside the error's type: the error names its code,
/// and the table gives the status and the title that go with it.
///
/// A client error (4xx) shows its [`detail`](Coded::detail), [`extensions`](Coded::extensions) and
/// [`headers`](Coded::headers). A server error (5xx) shows nothing of itself: its body says what
/// its code means and carries the request id, its cause is logged, and only
/// [`retry_after`](Coded::retry_after) reaches the client.
pub trait Coded: std::error::Error {
    /// Its code in the table.
    fn code(&self) -> ErrorCode;

    /// The explanation a client error shows (`detail`); the error's own text by default.
    fn detail(&self) -> String {
        self.to_string()
    }

    /// Members a client error adds to its problem body (e.g. the field at fault).
    fn extensions(&self) -> Map<String, Value> {
        Map::new()
    }

    /// Response headers a client error adds (e.g. `WWW-Authenticate`).
    fn headers(&self) -> Vec<(&'static str, String)> {
        Vec::new()
    }

    /// For a server error the client may retry: when (`Retry-After`).
    fn retry_after(&self) -> Option<Duration> {
        None
    }
}

/// The [`Coded`] impl of a failure enum that wraps the errors of the layers below it: each
/// variant renders as the error it wraps (`$type::inner`, `Some` for a coded one); a variant
/// wrapping nothing coded (a race lost again and again...) is 503 `service_unavailable`, retried
/// after a second.
macro_rules! coded_by_inner {
    ($type:ty) => {
        impl $crate::error::code::Coded for $type {
            fn code(&self) -> $crate::error::code::ErrorCode {
                self.inner().map_or($crate::error::code::ErrorCode::ServiceUnavailable, |e| e.code())
            }

            fn detail(&self) -> String {
                self.inner().map_or_else(|| self.to_string(), |e| e.detail())
            }

            fn extensions(&self) -> serde_json::Map<String, serde_json::Value> {
                self.inner().map(|e| e.extensions()).unwrap_or_default()
            }

            fn headers(&self) -> Vec<(&'static str, String)> {
                self.inner().map(|e| e.headers()).unwrap_or_default()
            }

            fn retry_after(&self) -> Option<std::time::Duration> {
                match self.inner() {
                    Some(e) => e.retry_after(),
                    None => Some(std::time::Duration::from_secs(1)),
                }
            }
        }
    };
}
pub(crate) use coded_by_inner;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_statuses_valid() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            assert!(seen.insert(code.as_str()), "duplicate {code}");
            assert!((400..600).contains(&code.status()), "{code}: {}", code.status());
            assert_eq!(code.is_server_error(), code.status() >= 500, "{code}");
        }
    }
}
