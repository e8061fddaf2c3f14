//! The adapter actors' protocol.

use std::convert::Infallible;

use actix::Message;

use crate::{
    adapters::{
        emissions::{Estimate, EstimateRequest},
        external::{AdapterError, CircuitState},
        payments::{IntentRequest, PayoutAnswer},
        routing::{PlannedRoute, Route},
    },
    domain::payments::{Payout, TopUp},
};

/// Get the route through the planned request's points (routing adapter).
#[derive(Debug, Clone)]
pub struct GetRoute(pub PlannedRoute);

impl Message for GetRoute {
    type Result = Result<Route, AdapterError>;
}

/// Estimate the emissions of a distance travelled (emissions adapter).
#[derive(Debug, Clone)]
pub struct GetEmissionsEstimate(pub EstimateRequest);

impl Message for GetEmissionsEstimate {
    type Result = Result<Estimate, AdapterError>;
}

/// Estimate the emissions of several distances at once (emissions adapter), asked together:
/// one message and one answer, the provider's calls made concurrently; all of them, or the
/// first failure.
#[derive(Debug, Clone)]
pub struct GetEmissionsEstimates(pub Vec<EstimateRequest>);

impl Message for GetEmissionsEstimates {
    type Result = Result<Vec<Estimate>, AdapterError>;
}

/// Create a payment intent with the provider (payments adapter).
#[derive(Debug, Clone)]
pub struct CreateIntent(pub IntentRequest);

impl Message for CreateIntent {
    type Result = Result<TopUp, AdapterError>;
}

/// Create the provider's payout of a held payout, under the payout's id as idempotency key
/// (payments adapter).
#[derive(Debug, Clone)]
pub struct CreatePayout(pub Payout);

impl Message for CreatePayout {
    type Result = Result<PayoutAnswer, AdapterError>;
}

/// Report the circuit's state to the registry as an optional dependency, and return it.
#[derive(Debug, Clone, Copy)]
pub struct ReportCircuit;

impl Message for ReportCircuit {
    type Result = Result<CircuitState, Infallible>;
}
