//! `/api/v1/fintech`: wallets, deposits, withdrawals, transfers and their history. Every POST
//! needs an `Idempotency-Key`: the first request's receipt is kept with the movement, in the
//! same transaction, and replayed for a retry of the same request, over REST or GraphQL; the
//! same key with another request is a 409 naming the fields that differ.

mod requests;
mod responses;

use actix_web::{
    dev::Payload,
    http::{header, StatusCode},
    web, FromRequest, HttpRequest, HttpResponse,
};
use futures::future::{ready, Ready};
use serde::Serialize;

pub use self::{requests::*, responses::*};
use super::{json::Json, state::AppState};
use crate::{
    auth::Principal,
    domain::{
        audit::MoneyMovement,
        fintech::{check_reference, Amount, Currency, FintechError, LedgerCommand, Receipt, Wallet, WalletId},
        idempotency::{IdempotencyKey, Replayable},
    },
    error::{AppError, ErrorCode, PROBLEM_JSON},
};

/// Header carrying the client's idempotency key.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// What each operation here can refuse besides what every operation can (see
/// [`super::openapi`]).
pub const REFUSALS: &[(&str, &[ErrorCode])] = {
    use ErrorCode::*;
    &[
        ("openWallet", &[UnknownCurrency, InvalidReference, NotOwner, LedgerUnavailable, Overloaded]),
        (
            "getWallet",
            &[InvalidWalletId, NotOwner, ReasonRequired, WalletNotFound, LedgerUnavailable, AuditUnavailable],
        ),
        (
            "deposit",
            &[
                InvalidWalletId,
                InvalidAmount,
                AmountTooLarge,
                InvalidReference,
                WalletNotFound,
                WalletFrozen,
                WalletClosed,
                LedgerUnavailable,
                Overloaded,
            ],
        ),
        (
            "withdraw",
            &[
                InvalidWalletId,
                InvalidAmount,
                AmountTooLarge,
                InvalidReference,
                WalletNotFound,
                WalletFrozen,
                WalletClosed,
                InsufficientFunds,
                LedgerUnavailable,
                Overloaded,
            ],
        ),
        (
            "transfer",
            &[
                InvalidWalletId,
                InvalidAmount,
                AmountTooLarge,
                UnknownCurrency,
                SameWallet,
                NotOwner,
                WalletNotFound,
                WalletFrozen,
                WalletClosed,
                InsufficientFunds,
                CurrencyMismatch,
                LedgerUnavailable,
                Overloaded,
            ],
        ),
        (
            "setWalletStatus",
            &[
                InvalidWalletId,
                ScopeMissing,
                NotOwner,
                WalletNotFound,
                BalanceNotZero,
                InvalidTransition,
                LedgerUnavailable,
                Overloaded,
            ],
        ),
        (
            "topUp",
            &[
                InvalidWalletId,
                InvalidAmount,
                AmountTooLarge,
                NotOwner,
                WalletNotFound,
                WalletFrozen,
                WalletClosed,
                PaymentRefused,
                ServiceUnavailable,
                LedgerUnavailable,
            ],
        ),
        (
            "payout",
            &[
                InvalidWalletId,
                InvalidAmount,
                AmountTooLarge,
                InvalidReference,
                NotOwner,
                WalletNotFound,
                WalletFrozen,
                WalletClosed,
                InsufficientFunds,
                IdempotencyKeyReused,
                PaymentRefused,
                ServiceUnavailable,
                LedgerUnavailable,
                Overloaded,
            ],
        ),
        (
            "listTransactions",
            &[
                InvalidWalletId,
                PageTooLarge,
                InvalidCursor,
                NotOwner,
                ReasonRequired,
                WalletNotFound,
                LedgerUnavailable,
                AuditUnavailable,
            ],
        ),
    ]
};

/// Mount the routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/fintech/wallets").route(web::post().to(open_wallet)))
        .service(web::resource("/fintech/wallets/{id}").route(web::get().to(get_wallet)))
        .service(web::resource("/fintech/wallets/{id}/deposits").route(web::post().to(deposit)))
        .service(web::resource("/fintech/wallets/{id}/withdrawals").route(web::post().to(withdraw)))
        .service(web::resource("/fintech/wallets/{id}/transactions").route(web::get().to(transactions)))
        .service(web::resource("/fintech/wallets/{id}/top-ups").route(web::post().to(top_up)))
        .service(web::resource("/fintech/wallets/{id}/payouts").route(web::post().to(payout)))
        .service(web::resource("/fintech/wallets/{id}/{action}").route(web::post().to(set_status)))
        .service(web::resource("/fintech/transfers").route(web::post().to(transfer)));
}

fn json_bytes<T: Serialize>(body: &T) -> Vec<u8> {
    serde_json::to_vec(body).unwrap_or_default()
}

/// The HTTP answer of a receipt: a pure function of it, so that a replay is byte for byte the
/// original. A refusal is kept too, and carries no request id (it answers every retry).
fn respond(answer: Replayable<Receipt>) -> HttpResponse {
    let (status, content_type, body) = match &answer.value {
        Receipt::Opened(w) => (StatusCode::CREATED, "application/json", json_bytes(&WalletBody::from(w))),
        Receipt::StatusChanged(w) => (StatusCode::OK, "application/json", json_bytes(&WalletBody::from(w))),
        Receipt::Moved(t) => (StatusCode::CREATED, "application/json", json_bytes(&TransactionBody::from(t))),
        // Holds are placed and released by other domains (payouts), not over this API.
        Receipt::Held(h) => (StatusCode::OK, "application/json", json_bytes(h)),
        Receipt::Refused(e) => {
            let err = AppError::from(e.clone());
            let mut problem = err.problem(None);
            problem.request_id = None;
            (err.status(), PROBLEM_JSON, json_bytes(&problem))
        }
    };
    let mut res = HttpResponse::build(status).content_type(content_type).body(body);
    // What moved, for the audit record.
    if let Receipt::Moved(t) = &answer.value {
        res.extensions_mut().insert(MoneyMovement::from(t));
    }
    if answer.replayed {
        res.headers_mut()
            .insert(header::HeaderName::from_static("idempotent-replayed"), header::HeaderValue::from_static("true"));
    }
    res
}

/// A wallet id as the document describes it: a hyphenated UUID (the other spellings `Uuid`
/// reads, simple, braced or URN, are not `format: uuid`).
fn wallet_id(raw: &str, field: &str) -> Result<WalletId, AppError> {
    let parsed = match raw.len() {
        36 => raw.parse::<WalletId>(),
        _ => Err(FintechError::InvalidWalletId(raw.chars().take(64).collect())),
    };
    parsed.map_err(|e| AppError::from(e).with("field", field))
}

fn amount_of(value: i64) -> Result<Amount, AppError> {
    Amount::new(value).map_err(AppError::from)
}

impl FromRequest for IdempotencyKeyHeader {
    type Error = AppError;
    type Future = Ready<Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let raw = req.headers().get(IDEMPOTENCY_KEY).and_then(|v| v.to_str().ok()).unwrap_or_default();
        ready(IdempotencyKey::parse(raw).map(Self).map_err(AppError::from))
    }
}

/// Apply `command` for the caller under the request's idempotency key and answer its receipt.
async fn execute(
    state: &AppState,
    principal: &Principal,
    key: IdempotencyKeyHeader,
    command: LedgerCommand,
) -> Result<HttpResponse, AppError> {
    Ok(respond(state.actors.fintech.execute(&principal.subject, &key.0, command).await?))
}

/// Open a wallet in one currency; the owner defaults to the caller (others need admin).
#[utoipa::path(
    post,
    path = "/api/v1/fintech/wallets",
    operation_id = "openWallet",
    tag = "fintech",
    params(IdempotencyKeyHeader),
    request_body(content = OpenWallet, example = json!({"currency": "EUR"})),
    responses((status = 201, description = "The new wallet.", body = WalletBody))
)]
pub async fn open_wallet(
    state: web::Data<AppState>,
    principal: Principal,
    key: IdempotencyKeyHeader,
    body: Json<OpenWallet>,
) -> Result<HttpResponse, AppError> {
    let parsed = body.into_inner();
    let owner = parsed.owner.unwrap_or_else(|| principal.subject.clone());
    principal.require_owner(&owner)?;
    let currency = Currency::parse(&parsed.currency)?;
    let wallet = Wallet::open(&owner, currency)?;
    execute(&state, &principal, key, LedgerCommand::Open(Box::new(wallet))).await
}

/// The wallet, checked to belong to the caller; `fresh` confirms the state is current (a read),
/// otherwise the actor's state serves (the owner never changes, and the command itself is
/// checked against the stored wallet when it commits).
async fn owned_wallet(state: &AppState, principal: &Principal, id: WalletId, fresh: bool) -> Result<Wallet, AppError> {
    let wallet = existing_wallet(state, id, fresh).await?;
    principal.require_owner_of(wallet.owner.value().map(String::as_str))?;
    Ok(wallet)
}

/// The wallet, whoever owns it.
async fn existing_wallet(state: &AppState, id: WalletId, fresh: bool) -> Result<Wallet, AppError> {
    state.actors.fintech.wallet(id, fresh).await?.ok_or_else(|| AppError::from(FintechError::WalletNotFound(id)))
}

/// A wallet with its balance, current even right after a write through another replica.
#[utoipa::path(
    get,
    path = "/api/v1/fintech/wallets/{id}",
    operation_id = "getWallet",
    tag = "fintech",
    params(WalletPath, ("X-Access-Reason" = Option<String>, Header, description = "Why an administrator reads a wallet of someone else (required then); audited.", min_length = 1, max_length = 500, pattern = r"^[^\u0000-\u001F\u007F-\u009F]{1,500}$")),
    responses((status = 200, description = "The wallet.", body = WalletBody))
)]
pub async fn get_wallet(
    state: web::Data<AppState>,
    req: HttpRequest,
    principal: Principal,
    path: web::Path<WalletPath>,
) -> Result<HttpResponse, AppError> {
    let reason = super::privacy::given_reason(&req)?;
    let wallet = owned_wallet(&state, &principal, wallet_id(&path.id, "id")?, true).await?;
    read_by_another(&state, &req, &principal, &wallet, reason).await?;
    Ok(HttpResponse::Ok().json(WalletBody::from(&wallet)))
}

/// An administrator reading a wallet that is not theirs reads someone's personal data: a reason
/// is required and audited first.
async fn read_by_another(
    state: &AppState,
    req: &HttpRequest,
    principal: &Principal,
    wallet: &Wallet,
    reason: Option<String>,
) -> Result<(), AppError> {
    if wallet.owned_by(&principal.subject) {
        return Ok(());
    }
    super::privacy::audited_reason(state, req, principal, reason).await.map(|_| ())
}

async fn external(
    state: web::Data<AppState>,
    principal: Principal,
    key: IdempotencyKeyHeader,
    path: web::Path<WalletPath>,
    body: Json<ExternalMovement>,
    deposit: bool,
) -> Result<HttpResponse, AppError> {
    let ExternalMovement { amount, reference } = body.into_inner();
    let wallet = wallet_id(&path.id, "id")?;
    let amount = amount_of(amount)?;
    check_reference(&reference)?;
    // The guard let only `fintech:settle` through: the provider's bridge and back office settle
    // for any wallet's owner.
    existing_wallet(&state, wallet, false).await?;
    let command = if deposit {
        LedgerCommand::Deposit { wallet, amount, reference, currency: None }
    } else {
        LedgerCommand::Withdraw { wallet, amount, reference }
    };
    execute(&state, &principal, key, command).await
}

/// Money in from outside the ledger, as the payment provider settled it (scope `fintech:settle`:
/// the provider's bridge and back-office accounts, for any wallet).
#[utoipa::path(
    post,
    path = "/api/v1/fintech/wallets/{id}/deposits",
    operation_id = "deposit",
    tag = "fintech",
    params(WalletPath, IdempotencyKeyHeader),
    request_body(content = ExternalMovement, example = json!({"amount": 5000, "reference": "psp-0001"})),
    responses((status = 201, description = "The transaction.", body = TransactionBody))
)]
pub async fn deposit(
    state: web::Data<AppState>,
    principal: Principal,
    key: IdempotencyKeyHeader,
    path: web::Path<WalletPath>,
    body: Json<ExternalMovement>,
) -> Result<HttpResponse, AppError> {
    external(state, principal, key, path, body, true).await
}

/// Money out of the ledger, as the payment provider pays it out (scope `fintech:settle`).
#[utoipa::path(
    post,
    path = "/api/v1/fintech/wallets/{id}/withdrawals",
    operation_id = "withdraw",
    tag = "fintech",
    params(WalletPath, IdempotencyKeyHeader),
    request_body(content = ExternalMovement, example = json!({"amount": 100, "reference": "bank-0001"})),
    responses((status = 201, description = "The transaction.", body = TransactionBody))
)]
pub async fn withdraw(
    state: web::Data<AppState>,
    principal: Principal,
    key: IdempotencyKeyHeader,
    path: web::Path<WalletPath>,
    body: Json<ExternalMovement>,
) -> Result<HttpResponse, AppError> {
    external(state, principal, key, path, body, false).await
}

/// Move money between two wallets of the same currency: both movements or neither.
#[utoipa::path(
    post,
    path = "/api/v1/fintech/transfers",
    operation_id = "transfer",
    tag = "fintech",
    params(IdempotencyKeyHeader),
    request_body(
        content = Transfer,
        example = json!({
            "from": "0192f0c1-7a4b-7cc2-9d1e-5f2a3b4c5d6e",
            "to": "0192f0c1-7a4b-7cc2-9d1e-5f2a3b4c5d6f",
            "amount": 250,
            "currency": "EUR"
        })
    ),
    responses((status = 201, description = "The transaction.", body = TransactionBody))
)]
pub async fn transfer(
    state: web::Data<AppState>,
    principal: Principal,
    key: IdempotencyKeyHeader,
    body: Json<Transfer>,
) -> Result<HttpResponse, AppError> {
    let parsed = body.into_inner();
    let from = wallet_id(&parsed.from, "from")?;
    let to = wallet_id(&parsed.to, "to")?;
    let amount = amount_of(parsed.amount)?;
    let currency = parsed.currency.as_deref().map(Currency::parse).transpose()?;
    owned_wallet(&state, &principal, from, false).await?;
    execute(&state, &principal, key, LedgerCommand::Transfer { from, to, amount, currency }).await
}

/// Freeze or unfreeze (admin), or close (owner or admin; only an empty wallet closes).
#[utoipa::path(
    post,
    path = "/api/v1/fintech/wallets/{id}/{action}",
    operation_id = "setWalletStatus",
    tag = "fintech",
    params(StatusPath, IdempotencyKeyHeader),
    responses((status = 200, description = "The wallet after the change.", body = WalletBody))
)]
pub async fn set_status(
    state: web::Data<AppState>,
    principal: Principal,
    key: IdempotencyKeyHeader,
    path: web::Path<StatusPath>,
) -> Result<HttpResponse, AppError> {
    let StatusPath { id, action } = path.into_inner();
    let wallet = wallet_id(&id, "id")?;
    // Freezing is a compliance action; owners may only close their own wallet.
    if action != WalletAction::Close {
        principal.require(crate::auth::policy::ADMIN)?;
    }
    owned_wallet(&state, &principal, wallet, false).await?;
    execute(&state, &principal, key, LedgerCommand::SetStatus { wallet, status: action.into() }).await
}

/// Money movements of a wallet, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/fintech/wallets/{id}/transactions",
    operation_id = "listTransactions",
    tag = "fintech",
    params(WalletPath, PageQuery, ("X-Access-Reason" = Option<String>, Header, description = "Why an administrator reads a wallet of someone else (required then); audited.", min_length = 1, max_length = 500, pattern = r"^[^\u0000-\u001F\u007F-\u009F]{1,500}$")),
    responses((status = 200, description = "A page.", body = MovementPageBody))
)]
pub async fn transactions(
    state: web::Data<AppState>,
    req: HttpRequest,
    principal: Principal,
    path: web::Path<WalletPath>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, AppError> {
    let wallet = wallet_id(&path.id, "id")?;
    let reason = super::privacy::given_reason(&req)?;
    let limit = query.limit.unwrap_or(PAGE_DEFAULT);
    if limit == 0 || limit > PAGE_MAX {
        return Err(AppError::client(ErrorCode::PageTooLarge, format!("limit must be between 1 and {PAGE_MAX}"))
            .with("field", "limit"));
    }
    let before = match query.cursor.as_deref() {
        None => None,
        Some(cursor) => Some(decode_cursor(cursor).ok_or_else(|| {
            AppError::client(ErrorCode::InvalidCursor, "the cursor is not one this service issued")
                .with("field", "cursor")
        })?),
    };
    let owned = owned_wallet(&state, &principal, wallet, false).await?;
    read_by_another(&state, &req, &principal, &owned, reason).await?;
    let page = state.actors.fintech.movements(wallet, before, limit).await?;
    Ok(HttpResponse::Ok().json(MovementPageBody {
        items: page.items.iter().map(MovementBody::from).collect(),
        next_cursor: page.next_before.map(encode_cursor),
    }))
}

/// Pay money into one of the caller's wallets with the payment provider: creates the provider's
/// payment intent (the `Idempotency-Key` goes with it, so a retry gets the same intent) and
/// answers its client secret. The wallet is credited once the provider reports the payment
/// collected, by its signed webhook. When the provider cannot be reached the answer is 503 with
/// `Retry-After`: there is no fallback.
#[utoipa::path(
    post,
    path = "/api/v1/fintech/wallets/{id}/top-ups",
    operation_id = "topUp",
    tag = "fintech",
    params(WalletPath, IdempotencyKeyHeader),
    request_body(content = TopUpRequest, example = json!({"amount": 5000})),
    responses((status = 201, description = "The payment intent to confirm.", body = TopUpBody))
)]
pub async fn top_up(
    state: web::Data<AppState>,
    principal: Principal,
    key: IdempotencyKeyHeader,
    path: web::Path<WalletPath>,
    body: Json<TopUpRequest>,
) -> Result<HttpResponse, AppError> {
    let wallet = wallet_id(&path.id, "id")?;
    let amount = amount_of(body.into_inner().amount)?;
    let wallet = owned_wallet(&state, &principal, wallet, false).await?;
    let top_up = state.actors.payments.top_up(&principal.subject, &key.0, &wallet, amount).await?;
    Ok(HttpResponse::Created().json(TopUpBody::from(&top_up)))
}

/// Send money of one of the caller's wallets to a bank account at the payment provider. The
/// money is held at once; it stays out when the provider reports the payout paid and comes back
/// when it reports it failed. When the provider does not confirm the payout (503 with
/// `Retry-After`) it stays `pending` with its money held: retry with the same `Idempotency-Key`,
/// which never pays twice.
#[utoipa::path(
    post,
    path = "/api/v1/fintech/wallets/{id}/payouts",
    operation_id = "payout",
    tag = "fintech",
    params(WalletPath, IdempotencyKeyHeader),
    request_body(content = PayoutRequest, example = json!({"amount": 2500, "destination": "ba_1NXWPU2eZvKYlo2C"})),
    responses((status = 201, description = "The payout.", body = PayoutBody))
)]
pub async fn payout(
    state: web::Data<AppState>,
    principal: Principal,
    key: IdempotencyKeyHeader,
    path: web::Path<WalletPath>,
    body: Json<PayoutRequest>,
) -> Result<HttpResponse, AppError> {
    let PayoutRequest { amount, destination } = body.into_inner();
    let wallet = wallet_id(&path.id, "id")?;
    let amount = amount_of(amount)?;
    crate::domain::payments::check_destination(&destination)
        .map_err(|e| AppError::from(e).with("field", "destination"))?;
    let wallet = owned_wallet(&state, &principal, wallet, false).await?;
    let payout = state.actors.payments.payout(&principal.subject, &key.0, &wallet, amount, &destination).await?;
    let mut res = HttpResponse::Created().json(PayoutBody::from(&payout));
    // What it moves, for the audit record.
    if let Some(money) = MoneyMovement::of_payout(&payout) {
        res.extensions_mut().insert(money);
    }
    Ok(res)
}
