//! Payments: payment intents (top-ups) and payouts with a Stripe-style provider
//! (`POST /v1/payment_intents`, `POST /v1/payouts`, form-encoded, bearer key), or with the
//! in-process simulator outside production. Every creation carries an `Idempotency-Key`, so the
//! provider answers a retried call with what it created the first time, and the calls may be
//! retried. There is no cache and no fallback: when the provider cannot be reached the caller
//! gets the adapter's error (503 with `Retry-After`).

pub mod simulator;
pub mod store;

use serde::Deserialize;

pub use simulator::Simulator;
pub use store::{PaymentsStore, StoreError};

use crate::{
    adapters::external::{http::send_json, AdapterError, Guard},
    config::Secret,
    domain::{
        fintech::{Currency, WalletId},
        payments::{Payout, TopUp, META_PAYOUT, META_WALLET},
    },
};

/// Adapter name: the `adapter` label, the actor's and the dependency's name.
pub const NAME: &str = "payments";
/// Creating a payment intent.
pub const CREATE_INTENT: &str = "create_intent";
/// Creating a payout.
pub const CREATE_PAYOUT: &str = "create_payout";

/// A payment intent to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntentRequest {
    /// Wallet to credit once collected (sent as metadata).
    pub wallet: WalletId,
    /// Minor units.
    pub amount: i64,
    /// The wallet's currency.
    pub currency: Currency,
    /// Sent as the provider's `Idempotency-Key`.
    pub idempotency_key: String,
}

/// What the provider answered for an intent.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct IntentAnswer {
    /// `pi_...`.
    pub id: String,
    /// The secret the client confirms the payment with.
    pub client_secret: String,
    /// Minor units.
    pub amount: i64,
    /// Currency, lower case as the provider writes it.
    pub currency: String,
    /// `requires_payment_method`, ...
    pub status: String,
}

/// What the provider answered for a payout.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PayoutAnswer {
    /// `po_...`.
    pub id: String,
    /// `pending`, `in_transit`, `paid`, `failed`, `canceled`.
    pub status: String,
}

impl IntentAnswer {
    /// The top-up it makes for the wallet asked about, with the amount and currency the
    /// provider answered (an intent created earlier under the same idempotency key answers its
    /// own: the caller compares).
    pub fn top_up(self, asked: &IntentRequest) -> Result<TopUp, AdapterError> {
        let currency = Currency::parse(&self.currency.to_ascii_uppercase())
            .map_err(|_| AdapterError::Failed { adapter: NAME, reason: "malformed answer".into() })?;
        Ok(TopUp {
            intent: self.id,
            wallet: asked.wallet,
            amount: self.amount,
            currency,
            client_secret: self.client_secret,
            status: self.status,
        })
    }
}

/// Who answers: the provider's API or the simulator.
pub enum Backend {
    /// A Stripe-style API at `base`.
    Provider {
        /// The adapter's client (its connection pool).
        client: reqwest::Client,
        /// Base URL, without a trailing slash.
        base: String,
        /// Secret API key, sent as a bearer token.
        api_key: Option<Secret>,
    },
    /// The in-process simulator.
    Simulator(Simulator),
}

/// The payments adapter: protections and backend.
pub struct PaymentsAdapter {
    guard: Guard,
    backend: Backend,
}

impl PaymentsAdapter {
    /// An adapter answering from `backend`.
    pub fn new(guard: Guard, backend: Backend) -> Self {
        Self { guard, backend }
    }

    /// Its protections (circuit state for health).
    pub fn guard(&self) -> &Guard {
        &self.guard
    }

    /// Whether it answers from the simulator.
    pub fn simulated(&self) -> bool {
        matches!(self.backend, Backend::Simulator(_))
    }

    /// Create a payment intent for `request` (retried under its idempotency key).
    pub async fn create_intent(&self, request: &IntentRequest) -> Result<TopUp, AdapterError> {
        let answer = match &self.backend {
            Backend::Simulator(sim) => {
                self.guard.call(CREATE_INTENT, true, || async { Ok(sim.create_intent(request)) }).await?
            }
            Backend::Provider { client, base, api_key } => {
                let url = format!("{base}/v1/payment_intents");
                let form = [
                    ("amount".to_owned(), request.amount.to_string()),
                    ("currency".to_owned(), request.currency.code().to_ascii_lowercase()),
                    (format!("metadata[{META_WALLET}]"), request.wallet.to_string()),
                ];
                self.guard
                    .call(CREATE_INTENT, true, || {
                        let mut call =
                            client.post(&url).header("Idempotency-Key", &request.idempotency_key).form(&form);
                        if let Some(key) = api_key {
                            call = call.bearer_auth(key.expose());
                        }
                        send_json::<IntentAnswer>(call)
                    })
                    .await?
            }
        };
        answer.top_up(request)
    }

    /// Create the provider's payout of `payout`, under its id as the idempotency key: a retry
    /// after a lost answer gets the same payout, never a second one.
    pub async fn create_payout(&self, payout: &Payout) -> Result<PayoutAnswer, AdapterError> {
        match &self.backend {
            Backend::Simulator(sim) => {
                self.guard.call(CREATE_PAYOUT, true, || async { Ok(sim.create_payout(payout)) }).await
            }
            Backend::Provider { client, base, api_key } => {
                let url = format!("{base}/v1/payouts");
                let form = [
                    ("amount".to_owned(), payout.amount.to_string()),
                    ("currency".to_owned(), payout.currency.code().to_ascii_lowercase()),
                    ("destination".to_owned(), payout.destination.clone()),
                    (format!("metadata[{META_PAYOUT}]"), payout.id.to_string()),
                    (format!("metadata[{META_WALLET}]"), payout.wallet.to_string()),
                ];
                let key = payout.id.to_string();
                self.guard
                    .call(CREATE_PAYOUT, true, || {
                        let mut call = client.post(&url).header("Idempotency-Key", &key).form(&form);
                        if let Some(key) = api_key {
                            call = call.bearer_auth(key.expose());
                        }
                        send_json::<PayoutAnswer>(call)
                    })
                    .await
            }
        }
    }
}
