//! The clients domains call: the only way to reach an adapter.

use std::time::Duration;

use super::{AdapterActor, GetEmissionsEstimate, GetRoute};
use crate::{
    actors::runtime::{ActorRef, AskError},
    adapters::{
        emissions::{self, EmissionsAdapter, Estimate, EstimateRequest},
        external::AdapterError,
        routing::{self, Route, RouteRequest, RoutingAdapter},
    },
    error::code::Coded,
};

/// Routes through the routing adapter's actor.
#[derive(Clone)]
pub struct RoutingClient {
    actor: ActorRef<AdapterActor<RoutingAdapter>>,
}

impl RoutingClient {
    pub(super) fn new(actor: ActorRef<AdapterActor<RoutingAdapter>>) -> Self {
        Self { actor }
    }

    /// The route through `request`'s points, with its provenance.
    pub async fn route(&self, request: RouteRequest) -> Result<Route, AdapterError> {
        self.actor.ask(GetRoute(request)).await.map_err(|e| unavailable(routing::NAME, &e))?
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
}

fn unavailable(adapter: &'static str, error: &AskError) -> AdapterError {
    AdapterError::Unavailable { adapter, retry_after: error.retry_after().unwrap_or(Duration::from_secs(1)) }
}
