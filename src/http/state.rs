//! What every handler can reach: built once at start-up, shared by all workers.

use std::{sync::Arc, time::Duration};

use actix_web::web;

use super::{guard::Guard, paging::Cursors};
use crate::{
    actors::{
        runtime::{Registry, Supervision},
        Actors,
    },
    config::Settings,
    telemetry::Metrics,
};

/// The application state handlers take as `web::Data<AppState>`.
pub struct AppState {
    /// Effective settings.
    pub settings: Arc<Settings>,
    /// Supervision state.
    pub registry: Arc<Registry>,
    /// The supervisor.
    pub supervision: Arc<Supervision>,
    /// This instance's metrics.
    pub metrics: Metrics,
    /// Handles of the long-lived actors.
    pub actors: Actors,
    /// Watchdog silence after which the process counts as wedged.
    pub live_stall: Duration,
    /// Authentication, authorization, rate limits and audit; also app data of its own, which the
    /// guard's middleware reads.
    pub guard: web::Data<Guard>,
    /// Signs and reads the cursors of the time-ordered listings.
    pub cursors: Cursors,
}
