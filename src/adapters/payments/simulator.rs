//! The in-process simulator of the payment provider, used outside production when no provider
//! URL is set. It answers intents and payouts as the provider would (ids, client secrets, the
//! same intent again for the same idempotency key), and reports them settled a moment later
//! through the service's own webhook, over HTTP, signed with the configured webhook secret, so
//! that a simulated top-up travels the path a real one does. A payout to a destination starting
//! with `ba_fail` fails, as the provider's test bank accounts do.

use std::{
    collections::HashMap,
    sync::{Arc, OnceLock},
    time::Duration,
};

use parking_lot::Mutex;
use rand::{distr::Alphanumeric, Rng};
use serde_json::json;

use super::{IntentAnswer, IntentRequest, PayoutAnswer};
use crate::{
    config::Secret,
    domain::payments::{sign, Payout, INTENT_SUCCEEDED, META_PAYOUT, META_WALLET, PAYOUT_FAILED, PAYOUT_PAID},
};

/// Destinations starting with this fail, like the provider's test bank accounts.
pub const FAILING_DESTINATION: &str = "ba_fail";

/// Attempts to deliver one event.
const DELIVERY_ATTEMPTS: u32 = 5;

/// The simulator; cheap to share.
pub struct Simulator {
    secret: Secret,
    webhook: Arc<OnceLock<String>>,
    settle_after: Duration,
    client: reqwest::Client,
    intents: Mutex<HashMap<String, IntentAnswer>>,
    payouts: Mutex<HashMap<String, PayoutAnswer>>,
}

fn random_id(prefix: &str) -> String {
    let tail: String = rand::rng().sample_iter(&Alphanumeric).take(24).map(char::from).collect();
    format!("{prefix}_{tail}")
}

impl Simulator {
    /// A simulator signing with `secret` and delivering to the URL `webhook` will hold (set once
    /// the service listens), `settle_after` after each creation.
    pub fn new(
        secret: Secret,
        webhook: Arc<OnceLock<String>>,
        settle_after: Duration,
        client: reqwest::Client,
    ) -> Self {
        Self {
            secret,
            webhook,
            settle_after,
            client,
            intents: Mutex::new(HashMap::new()),
            payouts: Mutex::new(HashMap::new()),
        }
    }

    /// Create (or, for a known idempotency key, answer again) an intent; it is collected and
    /// reported after the settle delay.
    pub fn create_intent(&self, request: &IntentRequest) -> IntentAnswer {
        let mut intents = self.intents.lock();
        if let Some(known) = intents.get(&request.idempotency_key) {
            return known.clone();
        }
        let id = random_id("pi");
        let answer = IntentAnswer {
            client_secret: format!("{id}_secret_{}", random_id("sim").trim_start_matches("sim_")),
            id,
            amount: request.amount,
            currency: request.currency.code().to_ascii_lowercase(),
            status: "requires_payment_method".into(),
        };
        intents.insert(request.idempotency_key.clone(), answer.clone());
        let event = json!({
            "id": random_id("evt"),
            "object": "event",
            "type": INTENT_SUCCEEDED,
            "created": chrono::Utc::now().timestamp(),
            "data": {"object": {
                "id": answer.id, "object": "payment_intent", "amount": answer.amount,
                "amount_received": answer.amount, "currency": answer.currency, "status": "succeeded",
                "metadata": {META_WALLET: request.wallet.to_string()}
            }}
        });
        self.report(event);
        answer
    }

    /// Create (or answer again) the payout; it is reported paid, or failed for a failing
    /// destination, after the settle delay.
    pub fn create_payout(&self, payout: &Payout) -> PayoutAnswer {
        let key = payout.id.to_string();
        let mut payouts = self.payouts.lock();
        if let Some(known) = payouts.get(&key) {
            return known.clone();
        }
        let answer = PayoutAnswer { id: random_id("po"), status: "pending".into() };
        payouts.insert(key, answer.clone());
        let fails = payout.destination.starts_with(FAILING_DESTINATION);
        let mut object = json!({
            "id": answer.id, "object": "payout", "amount": payout.amount,
            "currency": payout.currency.code().to_ascii_lowercase(), "destination": payout.destination,
            "status": if fails { "failed" } else { "paid" },
            "metadata": {META_PAYOUT: payout.id.to_string()}
        });
        if fails {
            object["failure_code"] = json!("account_closed");
        }
        self.report(json!({
            "id": random_id("evt"),
            "object": "event",
            "type": if fails { PAYOUT_FAILED } else { PAYOUT_PAID },
            "created": chrono::Utc::now().timestamp(),
            "data": {"object": object}
        }));
        answer
    }

    /// Deliver `event` to the webhook after the settle delay, signed anew at each attempt as the
    /// provider does, retrying with backoff until it is answered 2xx.
    fn report(&self, event: serde_json::Value) {
        let (client, secret, webhook, delay) =
            (self.client.clone(), self.secret.clone(), self.webhook.clone(), self.settle_after);
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let Some(url) = webhook.get() else {
                tracing::warn!("payments simulator: the service's webhook address is not known; event not delivered");
                return;
            };
            let body = serde_json::to_vec(&event).unwrap_or_default();
            let mut backoff = Duration::from_millis(200);
            for attempt in 1..=DELIVERY_ATTEMPTS {
                let signature = sign(secret.expose(), chrono::Utc::now().timestamp(), &body);
                let sent = client
                    .post(url)
                    .header("content-type", "application/json")
                    .header("stripe-signature", signature)
                    .body(body.clone())
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status().is_success() => return,
                    Ok(r) => {
                        tracing::warn!(attempt, status = r.status().as_u16(), "payments simulator: webhook refused")
                    }
                    Err(e) => tracing::warn!(attempt, error = %e, "payments simulator: webhook unreachable"),
                }
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
        });
    }
}
