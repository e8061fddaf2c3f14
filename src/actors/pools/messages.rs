//! The adapter pool's protocol.

use std::convert::Infallible;

use actix::Message;

use crate::actors::runtime::Dependency;

/// Probe every dependency now, report each to the registry and return what was found.
#[derive(Debug, Clone, Copy)]
pub struct ProbeDependencies;

impl Message for ProbeDependencies {
    type Result = Result<Vec<Dependency>, Infallible>;
}
