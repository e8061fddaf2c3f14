//! `fintech`: wallets, transfers and idempotency.

use serde::{Deserialize, Serialize};

use super::{Section, SettingsProblems, ValidationContext};

/// The fintech domain.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct FintechSettings {
    /// How long an idempotency key and its response are kept, seconds (Stripe keeps 24 h).
    pub idempotency_ttl_secs: u64,
    /// A wallet actor unused this long is stopped, seconds.
    pub wallet_idle_secs: u64,
    /// Most wallet actors alive at once.
    pub max_live_wallets: usize,
    /// Threads of their own the wallet actors are spread over; 0 keeps them on the domain
    /// actor's thread, which saves a thread switch on the way in and on the way out of every
    /// command.
    pub wallet_threads: usize,
}

impl Default for FintechSettings {
    fn default() -> Self {
        Self { idempotency_ttl_secs: 24 * 3600, wallet_idle_secs: 300, max_live_wallets: 10_000, wallet_threads: 0 }
    }
}

impl Section for FintechSettings {
    fn validate(&self, _: &ValidationContext, problems: &mut SettingsProblems) {
        if self.idempotency_ttl_secs < 60 || self.max_live_wallets == 0 {
            problems.add(
                "fintech.idempotency_ttl_secs",
                "keys must live at least 60 s, and wallet actors need room",
                "for example 86400 and 10000",
            );
        }
    }
}
