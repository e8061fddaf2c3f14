//! The clients domains call: the only way to reach an adapter.

use std::time::Duration;

use super::{AdapterActor, CreateIntent, CreatePayout, GetEmissionsEstimate, GetEmissionsEstimates, GetRoute};
use crate::{
    actors::runtime::{ActorRef, AskError},
    adapters::{
        emissions::{self, EmissionsAdapter, Estimate, EstimateRequest},
        external::AdapterError,
        payments::{self, IntentRequest, PaymentsAdapter, PayoutAnswer},
        routing::{self, Route, RoutePlanner, RouteRequest, RoutingAdapter},
    },
    domain::payments::{Payout, TopUp},
    error::code::Coded,
};

/// Routes through the routing adapter's actor. The request is checked and planned (key, URL)
/// on the caller's thread; the actor's thread makes the call.
#[derive(Clone)]
pub struct RoutingClient {
    actor: ActorRef<AdapterActor<RoutingAdapter>>,
    planner: RoutePlanner,
}

impl RoutingClient {
    pub(super) fn new(actor: ActorRef<AdapterActor<RoutingAdapter>>, planner: RoutePlanner) -> Self {
        Self { actor, planner }
    }

    /// The route through `request`'s points, with its provenance.
    pub async fn route(&self, request: RouteRequest) -> Result<Route, AdapterError> {
        let planned = self.planner.plan(request)?;
        self.actor.ask(GetRoute(planned)).await.map_err(|e| unavailable(routing::NAME, &e))?
    }
}

/// Estimates through the emissions adapter's actor.
#[derive(Clone)]
pub struct EmissionsClient {
    actor: ActorRef<AdapterActor<EmissionsAdapter>>,
}

impl EmissionsClient {
    pub(super) fn new(actor: ActorRef<AdapterActor<EmissionsAdapter>>) -> Self {
        Self { actor }
    }

    /// The emissions of `request`'s distance, with their provenance.
    pub async fn estimate(&self, request: EstimateRequest) -> Result<Estimate, AdapterError> {
        self.actor.ask(GetEmissionsEstimate(request)).await.map_err(|e| unavailable(emissions::NAME, &e))?
    }

    /// The emissions of each of `requests`' distances, in their order, asked in one message;
    /// the first failure otherwise.
    pub async fn estimate_all(&self, requests: Vec<EstimateRequest>) -> Result<Vec<Estimate>, AdapterError> {
        self.actor.ask(GetEmissionsEstimates(requests)).await.map_err(|e| unavailable(emissions::NAME, &e))?
    }
}

/// Intents and payouts through the payments adapter's actor.
#[derive(Clone)]
pub struct PaymentsClient {
    actor: ActorRef<AdapterActor<PaymentsAdapter>>,
}

impl PaymentsClient {
    pub(super) fn new(actor: ActorRef<AdapterActor<PaymentsAdapter>>) -> Self {
        Self { actor }
    }

    /// Create a payment intent with the provider.
    pub async fn create_intent(&self, request: IntentRequest) -> Result<TopUp, AdapterError> {
        self.actor.ask(CreateIntent(request)).await.map_err(|e| unavailable(payments::NAME, &e))?
    }

    /// Create the provider's payout of `payout`.
    pub async fn create_payout(&self, payout: Payout) -> Result<PayoutAnswer, AdapterError> {
        self.actor.ask(CreatePayout(payout)).await.map_err(|e| unavailable(payments::NAME, &e))?
    }
}

fn unavailable(adapter: &'static str, error: &AskError) -> AdapterError {
    AdapterError::Unavailable { adapter, retry_after: error.retry_after().unwrap_or(Duration::from_secs(1)) }
}
