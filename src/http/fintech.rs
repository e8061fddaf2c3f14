//! `/api/v1/fintech`: wallets, deposits, withdrawals, transfers and their history. Every POST
//! needs an `Idempotency-Key`: the first response to a key is kept with the movement, in the same
//! transaction, and replayed for a retry with the same body; the same key with another body is a
//! 409 naming the fields that differ.

use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{ask::ask, json::Json, AppState};
use crate::{
    actors::fintech::{Execute, GetKeptResponse, GetMovements, GetWallet},
    adapters::ledger::{Command, IdempotencyClaim, KeptResponse, LedgerOp, Outcome, StoredResponse},
    auth::Principal,
    domain::fintech::{check_reference, Amount, Currency, FintechError, Movement, Wallet, WalletId, WalletStatus},
    error::{AppError, ErrorCode},
    telemetry,
};

/// Header carrying the client's idempotency key.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Largest page of transactions.
pub const PAGE_MAX: usize = 200;

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

/// The response kept for an operation (and returned the first time): pure, so that a replay is
/// byte for byte the original.
pub fn render(op: &LedgerOp, outcome: &Outcome) -> StoredResponse {
    match outcome {
        Outcome::Applied { wallets, movements } => {
            let transaction = |kind, from: Option<WalletId>, to: Option<WalletId>, amount: &Amount| {
                let first = movements.first();
                StoredResponse {
                    status: 201,
                    body: json!({
                        "id": op.transaction_id,
                        "kind": kind,
                        "from": from,
                        "to": to,
                        "amount": amount.get(),
                        "currency": wallets.first().map(|w| w.currency.code().to_string()),
                        "reference": first.and_then(|m| m.reference.clone()),
                        "status": "completed",
                        // The caller's own wallet after the movement (the credited side of a
                        // transfer belongs to someone else).
                        "balance_after": first.map(|m| m.balance_after),
                        "created_at": op.at,
                    }),
                }
            };
            let wallet = || wallets.first().map(wallet_json).unwrap_or(Value::Null);
            match &op.command {
                Command::Open(_) => StoredResponse { status: 201, body: wallet() },
                Command::SetStatus { .. } => StoredResponse { status: 200, body: wallet() },
                Command::Deposit { wallet, amount, .. } => transaction("deposit", None, Some(*wallet), amount),
                Command::Withdraw { wallet, amount, .. } => transaction("withdrawal", Some(*wallet), None, amount),
                Command::Transfer { from, to, amount } => transaction("transfer", Some(*from), Some(*to), amount),
            }
        }
        Outcome::Refused(e) => {
            let err = AppError::from(e.clone());
            let mut problem = serde_json::to_value(err.problem(None)).unwrap_or(Value::Null);
            if let Some(obj) = problem.as_object_mut() {
                obj.remove("request_id");
            }
            StoredResponse { status: err.code().status().as_u16(), body: problem }
        }
        Outcome::DuplicateKey => StoredResponse { status: 409, body: Value::Null },
    }
}

fn wallet_json(w: &Wallet) -> Value {
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

fn wallet_id(raw: &str) -> Result<WalletId, AppError> {
    raw.parse::<WalletId>().map_err(|e| AppError::from(e).with("field", "id"))
}

fn amount_of(value: i64) -> Result<Amount, AppError> {
    Amount::new(value).map_err(|e| AppError::from(e).with("field", "amount"))
}

/// The idempotency key of a POST: 1 to 255 printable ASCII characters.
fn idempotency_key(req: &HttpRequest) -> Result<String, AppError> {
    let key = req.headers().get(IDEMPOTENCY_KEY).and_then(|v| v.to_str().ok()).map(str::trim).unwrap_or_default();
    if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(AppError::client(
            ErrorCode::IdempotencyKeyMissing,
            "every POST needs an Idempotency-Key header of 1 to 255 printable characters",
        ));
    }
    Ok(key.to_string())
}

/// A request as the idempotency check sees it: the key, and what the key must always mean.
pub struct Keyed {
    key: String,
    hash: String,
    body: Value,
}

impl Keyed {
    fn new(req: &HttpRequest, body: Value) -> Result<Self, AppError> {
        let key = idempotency_key(req)?;
        let target =
            format!("{} {} {}", req.method(), req.match_pattern().unwrap_or_default(), req.match_info().as_str());
        Ok(Self::of(key, &target, body))
    }

    /// A key for `target` (operation and path) and `body`.
    pub fn of(key: String, target: &str, body: Value) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(target.as_bytes());
        hasher.update(b" ");
        hasher.update(serde_json::to_vec(&body).unwrap_or_default());
        Self { key, hash: hex::encode(hasher.finalize()), body }
    }
}

/// What a command answered: the response kept under its key, and whether it is a replay.
pub struct Answer {
    /// Status and body.
    pub response: StoredResponse,
    /// Whether an earlier request with the same key produced it.
    pub replayed: bool,
}

impl Answer {
    fn http(&self) -> HttpResponse {
        let mut res = respond(&self.response);
        if self.replayed {
            res.headers_mut().insert(
                actix_web::http::header::HeaderName::from_static("idempotent-replayed"),
                actix_web::http::header::HeaderValue::from_static("true"),
            );
        }
        res
    }
}

fn replay(kept: KeptResponse, keyed: &Keyed) -> Result<Answer, AppError> {
    if kept.request_hash != keyed.hash {
        let differing = differing_fields(&kept.request_body, &keyed.body);
        return Err(AppError::client(
            ErrorCode::IdempotencyKeyReused,
            format!("this Idempotency-Key was used for a different request (differs in: {})", differing.join(", ")),
        )
        .with("fields", differing));
    }
    Ok(Answer { response: kept.response, replayed: true })
}

/// Top-level fields whose values differ between two request bodies (the path counts as `path`).
fn differing_fields(before: &Value, after: &Value) -> Vec<String> {
    let empty = Map::new();
    let (a, b) = (before.as_object().unwrap_or(&empty), after.as_object().unwrap_or(&empty));
    let mut fields: Vec<String> = a.keys().chain(b.keys()).filter(|k| a.get(*k) != b.get(*k)).cloned().collect();
    fields.sort();
    fields.dedup();
    if fields.is_empty() {
        fields.push("path".into());
    }
    fields
}

fn respond(stored: &StoredResponse) -> HttpResponse {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let content_type = if status.is_success() { "application/json" } else { crate::error::PROBLEM_JSON };
    HttpResponse::build(status).content_type(content_type).body(serde_json::to_vec(&stored.body).unwrap_or_default())
}

/// Run `command` under the request's idempotency key: replay a kept response, or execute and
/// answer with the response kept alongside the movement.
async fn execute(
    state: &AppState,
    principal: &Principal,
    keyed: Keyed,
    command: Command,
) -> Result<HttpResponse, AppError> {
    run(state, principal, keyed, command).await.map(|answer| answer.http())
}

/// Run `command` under `keyed`: replay the kept response, or apply it through the wallet actors
/// and answer with the response kept alongside the movement. REST and GraphQL both come here.
pub async fn run(state: &AppState, principal: &Principal, keyed: Keyed, command: Command) -> Result<Answer, AppError> {
    let fintech = &state.actors.fintech;
    // No look-up first: the command claims its key in the same transaction, and a key already
    // taken comes back as `DuplicateKey`, answered below from what was kept.
    let lookup = GetKeptResponse { scope: principal.subject.clone(), key: keyed.key.clone() };
    let name = command.name();
    let op = LedgerOp {
        command,
        transaction_id: Uuid::now_v7(),
        idempotency: Some(IdempotencyClaim {
            scope: principal.subject.clone(),
            key: keyed.key.clone(),
            request_hash: keyed.hash.clone(),
            request_body: keyed.body.clone(),
            expires_at: Utc::now() + chrono::Duration::seconds(state.settings.fintech.idempotency_ttl_secs as i64),
        }),
        once: false,
        request_id: telemetry::current_request_id().map(|r| r.as_str().to_string()),
        at: Utc::now(),
    };
    let result = ask(fintech, Execute(op.clone())).await;
    let status = match &result {
        Ok(Outcome::Applied { .. }) => "applied",
        Ok(Outcome::Refused(_)) => "refused",
        Ok(Outcome::DuplicateKey) => "duplicate",
        Err(_) => "failed",
    };
    state.metrics.with(|| {
        metrics::counter!(telemetry::BUSINESS_OPERATIONS_TOTAL, "domain" => "fintech", "operation" => name, "status" => status)
            .increment(1)
    });
    match result? {
        // A concurrent request with the same key won; answer as it did.
        Outcome::DuplicateKey => match ask(fintech, lookup).await? {
            Some(kept) => replay(kept, &keyed),
            None => Err(AppError::client(ErrorCode::IdempotencyKeyReused, "this Idempotency-Key is in use; retry")),
        },
        outcome => Ok(Answer { response: render(&op, &outcome), replayed: false }),
    }
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
    body: Json<Value>,
) -> Result<HttpResponse, AppError> {
    let body = body.into_inner();
    let parsed: OpenWallet = super::json::from_value(&body)?;
    let owner = parsed.owner.clone().unwrap_or_else(|| principal.subject.clone());
    principal.require_owner(&owner)?;
    let currency = Currency::parse(&parsed.currency).map_err(|e| AppError::from(e).with("field", "currency"))?;
    let wallet = Wallet::open(&owner, currency).map_err(|e| AppError::from(e).with("field", "owner"))?;
    let keyed = Keyed::new(&req, body)?;
    execute(&state, &principal, keyed, Command::Open(Box::new(wallet))).await
}

/// The wallet, answered from its actor once it is known to be current.
async fn load_owned(state: &AppState, principal: &Principal, id: WalletId) -> Result<Wallet, AppError> {
    owned_wallet(state, principal, id, true).await
}

/// The wallet, checked to belong to the caller; `fresh` confirms the state is current (a read),
/// otherwise the actor's state serves (the owner never changes, and the command itself is
/// checked against the stored wallet when it commits).
async fn owned_wallet(state: &AppState, principal: &Principal, id: WalletId, fresh: bool) -> Result<Wallet, AppError> {
    let wallet = ask(&state.actors.fintech, GetWallet { id, fresh })
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
    let wallet = load_owned(&state, &principal, wallet_id(&id)?).await?;
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
    body: Json<Value>,
    deposit: bool,
) -> Result<HttpResponse, AppError> {
    let body = body.into_inner();
    let parsed: ExternalMovement = super::json::from_value(&body)?;
    let wallet = wallet_id(&id)?;
    let amount = amount_of(parsed.amount)?;
    check_reference(&parsed.reference).map_err(|e| AppError::from(e).with("field", "reference"))?;
    owned_wallet(&state, &principal, wallet, false).await?;
    let keyed = Keyed::new(&req, body)?;
    let command = if deposit {
        Command::Deposit { wallet, amount, reference: parsed.reference }
    } else {
        Command::Withdraw { wallet, amount, reference: parsed.reference }
    };
    execute(&state, &principal, keyed, command).await
}

async fn deposit(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    id: web::Path<String>,
    body: Json<Value>,
) -> Result<HttpResponse, AppError> {
    external(state, principal, req, id, body, true).await
}

async fn withdraw(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    id: web::Path<String>,
    body: Json<Value>,
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
    body: Json<Value>,
) -> Result<HttpResponse, AppError> {
    let body = body.into_inner();
    let parsed: Transfer = super::json::from_value(&body)?;
    let from = parsed.from.parse::<WalletId>().map_err(|e| AppError::from(e).with("field", "from"))?;
    let to = parsed.to.parse::<WalletId>().map_err(|e| AppError::from(e).with("field", "to"))?;
    let amount = amount_of(parsed.amount)?;
    if from == to {
        return Err(AppError::from(FintechError::SameWallet).with("field", "to"));
    }
    let expected = match &parsed.currency {
        Some(c) => Some(Currency::parse(c).map_err(|e| AppError::from(e).with("field", "currency"))?),
        None => None,
    };
    let source = owned_wallet(&state, &principal, from, false).await?;
    if let Some(expected) = expected {
        if expected != source.currency {
            return Err(
                AppError::from(FintechError::CurrencyMismatch(expected, source.currency)).with("field", "currency")
            );
        }
    }
    let keyed = Keyed::new(&req, body)?;
    execute(&state, &principal, keyed, Command::Transfer { from, to, amount }).await
}

async fn set_status(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AppError> {
    let (id, action) = path.into_inner();
    let wallet = wallet_id(&id)?;
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
    let keyed = Keyed::new(&req, json!({}))?;
    execute(&state, &principal, keyed, Command::SetStatus { wallet, status }).await
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
    let wallet = wallet_id(&id)?;
    let limit = query.limit.unwrap_or(50);
    if limit == 0 || limit > PAGE_MAX {
        return Err(AppError::client(ErrorCode::PageTooLarge, format!("limit must be between 1 and {PAGE_MAX}"))
            .with("field", "limit"));
    }
    let before = query.cursor.as_deref().map(decode_cursor).transpose()?;
    owned_wallet(&state, &principal, wallet, false).await?;
    let page = ask(&state.actors.fintech, GetMovements { wallet, before, limit }).await?;
    let next = page.next_before.map(|seq| URL_SAFE_NO_PAD.encode(format!("before:{seq}")));
    Ok(HttpResponse::Ok().json(json!({
        "items": page.items.iter().map(movement_json).collect::<Vec<_>>(),
        "next_cursor": next,
    })))
}
