//! `/api/v1/fintech`: wallets, deposits, withdrawals, transfers and their history. Every POST
//! needs an `Idempotency-Key`: the first request's receipt is kept with the movement, in the
//! same transaction, and replayed for a retry of the same request, over REST or GraphQL; the
//! same key with another request is a 409 naming the fields that differ.

use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{json::Json, state::AppState};
use crate::{
    auth::Principal,
    domain::{
        fintech::{
            check_reference, Amount, Currency, FintechError, LedgerCommand, Movement, Receipt, Transaction, Wallet,
            WalletId, WalletStatus, PAGE_MAX,
        },
        idempotency::{IdempotencyKey, Replayable},
    },
    error::{AppError, ErrorCode},
};

/// Header carrying the client's idempotency key.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// Mount the routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/fintech/wallets").route(web::post().to(open_wallet)))
        .service(web::resource("/fintech/wallets/{id}").route(web::get().to(get_wallet)))
        .service(web::resource("/fintech/wallets/{id}/deposits").route(web::post().to(deposit)))
        .service(web::resource("/fintech/wallets/{id}/withdrawals").route(web::post().to(withdraw)))
        .service(web::resource("/fintech/wallets/{id}/transactions").route(web::get().to(transactions)))
        .service(web::resource("/fintech/wallets/{id}/{action}").route(web::post().to(set_status)))
        .service(web::resource("/fintech/transfers").route(web::post().to(transfer)));
}

/// A wallet as the API shows it.
pub fn wallet_json(w: &Wallet) -> Value {
    json!({
        "id": w.id,
        "owner": w.owner,
        "currency": w.currency.code(),
        "balance": w.balance,
        "status": w.status,
        "version": w.version,
        "created_at": w.created_at,
    })
}

fn transaction_json(t: &Transaction) -> Value {
    json!({
        "id": t.id,
        "kind": t.kind.as_str(),
        "from": t.from,
        "to": t.to,
        "amount": t.amount,
        "currency": t.currency.code(),
        "reference": t.reference,
        "status": "completed",
        "balance_after": t.balance_after,
        "created_at": t.created_at,
    })
}

fn movement_json(m: &Movement) -> Value {
    json!({
        "seq": m.seq,
        "transaction_id": m.transaction_id,
        "kind": m.kind,
        "amount": m.amount,
        "balance_after": m.balance_after,
        "counterparty": m.counterparty,
        "reference": m.reference,
        "created_at": m.created_at,
    })
}

/// The HTTP answer of a receipt: a pure function of it, so that a replay is byte for byte the
/// original. A refusal is kept too, and carries no request id (it answers every retry).
fn respond(answer: Replayable<Receipt>) -> HttpResponse {
    let (status, content_type, body) = match &answer.value {
        Receipt::Opened(w) => (StatusCode::CREATED, "application/json", wallet_json(w)),
        Receipt::StatusChanged(w) => (StatusCode::OK, "application/json", wallet_json(w)),
        Receipt::Moved(t) => (StatusCode::CREATED, "application/json", transaction_json(t)),
        Receipt::Refused(e) => {
            let err = AppError::from(e.clone());
            let mut problem = serde_json::to_value(err.problem(None)).unwrap_or(Value::Null);
            if let Some(obj) = problem.as_object_mut() {
                obj.remove("request_id");
            }
            (err.status(), crate::error::PROBLEM_JSON, problem)
        }
    };
    let mut res = HttpResponse::build(status).content_type(content_type).body(body.to_string());
    if answer.replayed {
        res.headers_mut().insert(
            actix_web::http::header::HeaderName::from_static("idempotent-replayed"),
            actix_web::http::header::HeaderValue::from_static("true"),
        );
    }
    res
}

fn wallet_id(raw: &str, field: &str) -> Result<WalletId, AppError> {
    raw.parse::<WalletId>().map_err(|e| AppError::from(e).with("field", field))
}

fn amount_of(value: i64) -> Result<Amount, AppError> {
    Amount::new(value).map_err(AppError::from)
}

/// The idempotency key of a POST.
fn idempotency_key(req: &HttpRequest) -> Result<IdempotencyKey, AppError> {
    let raw = req.headers().get(IDEMPOTENCY_KEY).and_then(|v| v.to_str().ok()).unwrap_or_default();
    Ok(IdempotencyKey::parse(raw)?)
}

/// Apply `command` for the caller under the request's idempotency key and answer its receipt.
async fn execute(
    state: &AppState,
    principal: &Principal,
    req: &HttpRequest,
    command: LedgerCommand,
) -> Result<HttpResponse, AppError> {
    let key = idempotency_key(req)?;
    Ok(respond(state.actors.fintech.execute(&principal.subject, &key, command).await?))
}

/// Body of `POST /fintech/wallets`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenWallet {
    /// ISO 4217 code.
    pub currency: String,
    /// Owner; defaults to the caller (only `admin` may open wallets for others).
    pub owner: Option<String>,
}

async fn open_wallet(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    body: Json<OpenWallet>,
) -> Result<HttpResponse, AppError> {
    let parsed = body.into_inner();
    let owner = parsed.owner.unwrap_or_else(|| principal.subject.clone());
    principal.require_owner(&owner)?;
    let currency = Currency::parse(&parsed.currency)?;
    let wallet = Wallet::open(&owner, currency)?;
    execute(&state, &principal, &req, LedgerCommand::Open(Box::new(wallet))).await
}

/// The wallet, checked to belong to the caller; `fresh` confirms the state is current (a read),
/// otherwise the actor's state serves (the owner never changes, and the command itself is
/// checked against the stored wallet when it commits).
async fn owned_wallet(state: &AppState, principal: &Principal, id: WalletId, fresh: bool) -> Result<Wallet, AppError> {
    let wallet = state
        .actors
        .fintech
        .wallet(id, fresh)
        .await?
        .ok_or_else(|| AppError::from(FintechError::WalletNotFound(id)))?;
    principal.require_owner(&wallet.owner)?;
    Ok(wallet)
}

async fn get_wallet(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let wallet = owned_wallet(&state, &principal, wallet_id(&id, "id")?, true).await?;
    Ok(HttpResponse::Ok().json(wallet_json(&wallet)))
}

/// Body of deposits and withdrawals.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExternalMovement {
    /// Minor units.
    pub amount: i64,
    /// The payment provider's or bank's reference.
    pub reference: String,
}

async fn external(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    id: web::Path<String>,
    body: Json<ExternalMovement>,
    deposit: bool,
) -> Result<HttpResponse, AppError> {
    let ExternalMovement { amount, reference } = body.into_inner();
    let wallet = wallet_id(&id, "id")?;
    let amount = amount_of(amount)?;
    check_reference(&reference)?;
    owned_wallet(&state, &principal, wallet, false).await?;
    let command = if deposit {
        LedgerCommand::Deposit { wallet, amount, reference, currency: None }
    } else {
        LedgerCommand::Withdraw { wallet, amount, reference }
    };
    execute(&state, &principal, &req, command).await
}

async fn deposit(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    id: web::Path<String>,
    body: Json<ExternalMovement>,
) -> Result<HttpResponse, AppError> {
    external(state, principal, req, id, body, true).await
}

async fn withdraw(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    id: web::Path<String>,
    body: Json<ExternalMovement>,
) -> Result<HttpResponse, AppError> {
    external(state, principal, req, id, body, false).await
}

/// Body of `POST /fintech/transfers`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transfer {
    /// Wallet debited (the caller's).
    pub from: String,
    /// Wallet credited.
    pub to: String,
    /// Minor units.
    pub amount: i64,
    /// Expected currency of both wallets, checked when given.
    pub currency: Option<String>,
}

async fn transfer(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    body: Json<Transfer>,
) -> Result<HttpResponse, AppError> {
    let parsed = body.into_inner();
    let from = wallet_id(&parsed.from, "from")?;
    let to = wallet_id(&parsed.to, "to")?;
    let amount = amount_of(parsed.amount)?;
    let currency = parsed.currency.as_deref().map(Currency::parse).transpose()?;
    owned_wallet(&state, &principal, from, false).await?;
    execute(&state, &principal, &req, LedgerCommand::Transfer { from, to, amount, currency }).await
}

async fn set_status(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AppError> {
    let (id, action) = path.into_inner();
    let wallet = wallet_id(&id, "id")?;
    let status = match action.as_str() {
        "freeze" => WalletStatus::Frozen,
        "unfreeze" => WalletStatus::Active,
        "close" => WalletStatus::Closed,
        _ => return Err(AppError::client(ErrorCode::NotFound, format!("no action `{action}` on wallets"))),
    };
    // Freezing is a compliance action; owners may only close their own wallet.
    if status != WalletStatus::Closed {
        principal.require(crate::auth::policy::ADMIN)?;
    }
    owned_wallet(&state, &principal, wallet, false).await?;
    execute(&state, &principal, &req, LedgerCommand::SetStatus { wallet, status }).await
}

/// Query of the transactions listing.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// Page size, 1 to 200 (default 50).
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

fn decode_cursor(cursor: &str) -> Result<i64, AppError> {
    let bad = || {
        AppError::client(ErrorCode::InvalidCursor, "the cursor is not one this service issued").with("field", "cursor")
    };
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    text.strip_prefix("before:").and_then(|n| n.parse::<i64>().ok()).filter(|n| *n > 0).ok_or_else(bad)
}

async fn transactions(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<String>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, AppError> {
    let wallet = wallet_id(&id, "id")?;
    let limit = query.limit.unwrap_or(50);
    if limit == 0 || limit > PAGE_MAX {
        return Err(AppError::client(ErrorCode::PageTooLarge, format!("limit must be between 1 and {PAGE_MAX}"))
            .with("field", "limit"));
    }
    let before = query.cursor.as_deref().map(decode_cursor).transpose()?;
    owned_wallet(&state, &principal, wallet, false).await?;
    let page = state.actors.fintech.movements(wallet, before, limit).await?;
    let next = page.next_before.map(|seq| URL_SAFE_NO_PAD.encode(format!("before:{seq}")));
    Ok(HttpResponse::Ok().json(json!({
        "items": page.items.iter().map(movement_json).collect::<Vec<_>>(),
        "next_cursor": next,
    })))
}
