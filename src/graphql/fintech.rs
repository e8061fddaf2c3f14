//! Fintech over GraphQL: wallets and their transactions, and transfers, through the same actor
//! messages, idempotency and error codes (`extensions.code`) as the REST API.

use actix_web::web;
use async_graphql::{Context, ErrorExtensions, InputObject, Object, Result, SimpleObject, ID};
use chrono::{DateTime, Utc};

use super::caller::Caller;
use crate::{
    auth::Principal,
    domain::{
        audit::MoneyMovement,
        fintech::{Amount, FintechError, LedgerCommand, Receipt, WalletId, PAGE_MAX},
        idempotency::{IdempotencyError, IdempotencyKey},
    },
    error::{AppError, ErrorCode},
    http::state::AppState,
};

/// A wallet.
#[derive(SimpleObject)]
pub struct Wallet {
    /// Id.
    pub id: ID,
    /// Owner (subject); `null` once erased.
    pub owner: Option<String>,
    /// Whether the owner's personal data was erased.
    pub erased: bool,
    /// ISO 4217 code.
    pub currency: String,
    /// Balance in minor units.
    pub balance: i64,
    /// Minor units set aside by pending holds: part of the balance, not available.
    pub held: i64,
    /// What may be spent, withdrawn or held: the balance minus the held amount.
    pub available: i64,
    /// active, frozen or closed.
    pub status: String,
    /// Changes applied so far.
    pub version: i64,
    /// Opening time.
    pub created_at: DateTime<Utc>,
}

/// A money movement of a wallet.
#[derive(SimpleObject)]
pub struct Movement {
    /// Position in the wallet's journal.
    pub seq: i64,
    /// Ledger transaction.
    pub transaction_id: Option<ID>,
    /// deposit, withdrawal, transfer_in or transfer_out.
    pub kind: String,
    /// Signed minor units.
    pub amount: i64,
    /// Balance after it.
    pub balance_after: i64,
    /// The other wallet of a transfer.
    pub counterparty: Option<ID>,
    /// External reference; `null` once erased.
    pub reference: Option<String>,
    /// Whether the reference was erased.
    pub erased: bool,
    /// Commit time.
    pub created_at: DateTime<Utc>,
}

/// A page of movements, newest first.
#[derive(SimpleObject)]
pub struct MovementPage {
    /// Movements.
    pub items: Vec<Movement>,
    /// Pass as `before` for the next page.
    pub next_before: Option<i64>,
}

/// A completed transfer.
#[derive(SimpleObject)]
pub struct Transfer {
    /// Ledger transaction id.
    pub id: ID,
    /// Wallet debited.
    pub from: ID,
    /// Wallet credited.
    pub to: ID,
    /// Minor units.
    pub amount: i64,
    /// ISO 4217 code.
    pub currency: Option<String>,
    /// The source wallet's balance after the transfer.
    pub balance_after: Option<i64>,
    /// Whether this answer replays an earlier request with the same key.
    pub replayed: bool,
}

/// Input of `transfer`.
#[derive(InputObject)]
pub struct TransferInput {
    /// Wallet debited (the caller's).
    pub from: ID,
    /// Wallet credited.
    pub to: ID,
    /// Minor units.
    pub amount: i64,
    /// The same idempotency key as a REST `Idempotency-Key`.
    pub idempotency_key: String,
}

/// The application and the caller of a query field that reads a wallet, once it passed its
/// protection.
async fn reader<'a>(ctx: &'a Context<'_>, field: &str) -> Result<(&'a web::Data<AppState>, &'a Caller)> {
    let caller = Caller::of(ctx)?;
    caller.read(field, "fintech:read").await.map_err(|e| e.extend())?;
    Ok((ctx.data::<web::Data<AppState>>()?, caller))
}

fn wallet_id(id: &ID, field: &str) -> Result<WalletId, AppError> {
    id.parse::<WalletId>().map_err(|e| AppError::from(e).with("field", field))
}

async fn owned(
    state: &AppState,
    principal: &Principal,
    id: WalletId,
) -> Result<crate::domain::fintech::Wallet, AppError> {
    let wallet =
        state.actors.fintech.wallet(id, true).await?.ok_or_else(|| AppError::from(FintechError::WalletNotFound(id)))?;
    principal.require_owner_of(wallet.owner.value().map(String::as_str))?;
    Ok(wallet)
}

/// A wallet the caller may read: their own, or, for an administrator, someone else's once the
/// reason they give is on record.
async fn readable(
    state: &AppState,
    caller: &Caller,
    field: &str,
    id: WalletId,
    reason: Option<String>,
) -> Result<crate::domain::fintech::Wallet, AppError> {
    let wallet = owned(state, &caller.principal, id).await?;
    if !wallet.owned_by(&caller.principal.subject) {
        caller.read_of_another(field, format!("/api/v1/fintech/wallets/{id}"), reason).await?;
    }
    Ok(wallet)
}

/// Fintech queries.
#[derive(Default)]
pub struct FintechQuery;

#[Object]
impl FintechQuery {
    /// A wallet of the caller (scope `fintech:read`). An administrator reading someone else's
    /// gives a `reason` (or the `X-Access-Reason` header), which is audited.
    async fn wallet(&self, ctx: &Context<'_>, id: ID, reason: Option<String>) -> Result<Wallet> {
        let (state, caller) = reader(ctx, "wallet").await?;
        let id = wallet_id(&id, "id").map_err(|e| e.extend())?;
        let w = readable(state, caller, "wallet", id, reason).await.map_err(|e| e.extend())?;
        Ok(Wallet {
            id: ID(w.id.to_string()),
            erased: w.owner.is_erased(),
            owner: w.owner.value().cloned(),
            currency: w.currency.code().into(),
            balance: w.balance,
            held: w.held,
            available: w.available(),
            status: w.status.as_str().into(),
            version: w.version,
            created_at: w.created_at,
        })
    }

    /// A wallet's money movements, newest first (scope `fintech:read`). An administrator reading
    /// someone else's gives a `reason` (or the `X-Access-Reason` header), which is audited.
    async fn transactions(
        &self,
        ctx: &Context<'_>,
        wallet: ID,
        first: Option<i32>,
        before: Option<i64>,
        reason: Option<String>,
    ) -> Result<MovementPage> {
        let (state, caller) = reader(ctx, "transactions").await?;
        let id = wallet_id(&wallet, "wallet").map_err(|e| e.extend())?;
        let limit = first.unwrap_or(50);
        if limit <= 0 || limit as usize > PAGE_MAX {
            return Err(
                AppError::client(ErrorCode::PageTooLarge, format!("first must be between 1 and {PAGE_MAX}")).extend()
            );
        }
        readable(state, caller, "transactions", id, reason).await.map_err(|e| e.extend())?;
        let page =
            state.actors.fintech.movements(id, before, limit as usize).await.map_err(|e| AppError::from(e).extend())?;
        Ok(MovementPage {
            items: page
                .items
                .into_iter()
                .map(|m| Movement {
                    seq: m.seq,
                    transaction_id: m.transaction_id.map(|t| ID(t.to_string())),
                    kind: m.kind.as_str().into(),
                    amount: m.amount,
                    balance_after: m.balance_after,
                    counterparty: m.counterparty.map(|c| ID(c.to_string())),
                    reference: m.reference,
                    erased: m.erased,
                    created_at: m.created_at,
                })
                .collect(),
            next_before: page.next_before,
        })
    }
}

/// A top-up to confirm with the payment provider.
#[derive(SimpleObject)]
pub struct TopUp {
    /// The provider's payment intent id.
    pub intent_id: String,
    /// The secret the client confirms the payment with.
    pub client_secret: String,
    /// Wallet credited once the payment is collected.
    pub wallet: ID,
    /// Minor units.
    pub amount: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// The intent's status at the provider.
    pub status: String,
}

/// A payout to a bank account.
#[derive(SimpleObject)]
pub struct Payout {
    /// Id.
    pub id: ID,
    /// Wallet debited.
    pub wallet: ID,
    /// Minor units.
    pub amount: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// The provider's bank account or card id.
    pub destination: String,
    /// pending, in_transit, paid or failed.
    pub status: String,
    /// The provider's payout id, once confirmed.
    pub provider_id: Option<String>,
    /// Why it failed, when it did.
    pub failure: Option<String>,
}

/// Fintech mutations.
#[derive(Default)]
pub struct FintechMutation;

#[Object]
impl FintechMutation {
    /// Move money between two wallets of one currency (scope `fintech:write`); idempotent under
    /// `idempotencyKey`, shared with the REST API.
    async fn transfer(&self, ctx: &Context<'_>, input: TransferInput) -> Result<Transfer> {
        let caller = Caller::of(ctx)?;
        let state = ctx.data::<web::Data<AppState>>()?;
        let resource = format!("/api/v1/fintech/wallets/{}", input.from.as_str());
        let run = async {
            let from = wallet_id(&input.from, "from")?;
            let to = wallet_id(&input.to, "to")?;
            let amount = Amount::new(input.amount)?;
            let key = IdempotencyKey::parse(&input.idempotency_key)?;
            owned(state, &caller.principal, from).await?;
            let command = LedgerCommand::Transfer { from, to, amount, currency: None };
            let answer = state.actors.fintech.execute(&caller.principal.subject, &key, command).await?;
            match answer.value {
                Receipt::Moved(t) => Ok((t, answer.replayed)),
                Receipt::Refused(e) => Err(AppError::from(e)),
                // The key was first used for another kind of command over REST.
                Receipt::Opened(_) | Receipt::StatusChanged(_) | Receipt::Held(_) => {
                    Err(AppError::from(IdempotencyError::Reused(vec!["operation".into()])))
                }
            }
        };
        let (transaction, replayed) = caller
            .write("transfer", resource, "fintech:write", 201, |(t, _)| Some(MoneyMovement::from(t)), run)
            .await
            .map_err(|e| e.extend())?;
        Ok(Transfer {
            id: ID(transaction.id.to_string()),
            from: input.from,
            to: input.to,
            amount: transaction.amount,
            currency: Some(transaction.currency.code().to_string()),
            balance_after: Some(transaction.balance_after),
            replayed,
        })
    }

    /// Pay money into one of the caller's wallets with the payment provider (scope
    /// `fintech:write`): answers the provider's payment intent; the wallet is credited when the
    /// provider reports it collected. Idempotent under `idempotencyKey`, which goes to the
    /// provider.
    async fn top_up(&self, ctx: &Context<'_>, wallet: ID, amount: i64, idempotency_key: String) -> Result<TopUp> {
        let caller = Caller::of(ctx)?;
        let state = ctx.data::<web::Data<AppState>>()?;
        let resource = format!("/api/v1/fintech/wallets/{}", wallet.as_str());
        let run = async {
            let id = wallet_id(&wallet, "wallet")?;
            let amount = Amount::new(amount)?;
            let key = IdempotencyKey::parse(&idempotency_key)?;
            let found = owned(state, &caller.principal, id).await?;
            Ok::<_, AppError>(state.actors.payments.top_up(&caller.principal.subject, &key, &found, amount).await?)
        };
        let t = caller.write("topUp", resource, "fintech:write", 201, |_| None, run).await.map_err(|e| e.extend())?;
        Ok(TopUp {
            intent_id: t.intent,
            client_secret: t.client_secret,
            wallet: ID(t.wallet.to_string()),
            amount: t.amount,
            currency: t.currency.code().to_string(),
            status: t.status,
        })
    }

    /// Send money of one of the caller's wallets to a bank account at the payment provider
    /// (scope `fintech:write`): held at once, back in the wallet if the payout fails. Idempotent
    /// under `idempotencyKey` (shared with the REST API): a retry never pays twice.
    async fn payout(
        &self,
        ctx: &Context<'_>,
        wallet: ID,
        amount: i64,
        destination: String,
        idempotency_key: String,
    ) -> Result<Payout> {
        let caller = Caller::of(ctx)?;
        let state = ctx.data::<web::Data<AppState>>()?;
        let resource = format!("/api/v1/fintech/wallets/{}", wallet.as_str());
        let run = async {
            let id = wallet_id(&wallet, "wallet")?;
            let amount = Amount::new(amount)?;
            let key = IdempotencyKey::parse(&idempotency_key)?;
            let found = owned(state, &caller.principal, id).await?;
            let payout =
                state.actors.payments.payout(&caller.principal.subject, &key, &found, amount, &destination).await?;
            Ok::<_, AppError>(payout)
        };
        let p = caller
            .write("payout", resource, "fintech:write", 201, MoneyMovement::of_payout, run)
            .await
            .map_err(|e| e.extend())?;
        Ok(Payout {
            id: ID(p.id.to_string()),
            wallet: ID(p.wallet.to_string()),
            amount: p.amount,
            currency: p.currency.code().to_string(),
            destination: p.destination,
            status: p.status.as_str().into(),
            provider_id: p.provider_id,
            failure: p.failure,
        })
    }
}
