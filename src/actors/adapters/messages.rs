//! The adapter actors' protocol.

use std::convert::Infallible;

use actix::Message;

use crate::adapters::{
    emissions::{Estimate, EstimateRequest},
    external::{AdapterError, CircuitState},
    routing::{Route, RouteRequest},
};

/// Get the route through the request's points (routing adapter).
#[derive(Debug, Clone)]
pub struct GetRoute(pub RouteRequest);

impl Message for GetRoute {
    type Result = Result<Route, AdapterError>;
}

/// Estimate the emissions of a distance travelled (emissions adapter).
#[derive(Debug, Clone)]
pub struct GetEmissionsEstimate(pub EstimateRequest);

impl Message for GetEmissionsEstimate {
    type Result = Result<Estimate, AdapterError>;
}

/// Report the circuit's state to the registry as an optional dependency, and return it.
#[derive(Debug, Clone, Copy)]
pub struct ReportCircuit;

impl Message for ReportCircuit {
    type Result = Result<CircuitState, Infallible>;
}
