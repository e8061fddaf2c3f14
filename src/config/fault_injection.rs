//! `fault_injection`: the switch resilience tests use to make actors fail.

use serde::{Deserialize, Serialize};

use super::{Section, SettingsProblems, ValidationContext};

/// Fault injection for resilience tests.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultInjectionSettings {
    /// Mount `POST /internal/faults/{actor}` (FAULT_INJECTION_ENABLED), behind the guard with an
    /// `admin` token; refused in production.
    pub enabled: bool,
}

impl Section for FaultInjectionSettings {
    fn validate(&self, ctx: &ValidationContext, problems: &mut SettingsProblems) {
        if self.enabled && ctx.production() {
            problems.add(
                "fault_injection.enabled",
                "fault injection is refused in production",
                "unset FAULT_INJECTION_ENABLED",
            );
        }
    }
}
