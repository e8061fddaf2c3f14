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
    /// How often expired idempotency keys are purged, seconds.
    pub idempotency_purge_interval_secs: u64,
    /// Most expired idempotency keys deleted by one statement of the purge.
    pub idempotency_purge_batch: usize,
    /// How often the pending holds whose time has passed are released, seconds.
    pub hold_sweep_interval_secs: u64,
    /// Most commands waiting for the ledger writer; beyond it a command is refused at once with
    /// 503 `overloaded` (and `Retry-After`) instead of queueing while the database is slow.
    pub writer_queue_max: usize,
}

impl Default for FintechSettings {
    fn default() -> Self {
        Self {
            idempotency_ttl_secs: 24 * 3600,
            wallet_idle_secs: 300,
            max_live_wallets: 10_000,
            wallet_threads: 0,
            idempotency_purge_interval_secs: 60,
            idempotency_purge_batch: 1_000,
            writer_queue_max: 8_192,
            hold_sweep_interval_secs: 30,
        }
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
        if self.idempotency_purge_interval_secs == 0 || self.idempotency_purge_batch == 0 {
            problems.add(
                "fintech.idempotency_purge_interval_secs",
                "the purge of expired idempotency keys needs an interval and a batch of at least 1",
                "for example 60 (seconds) and 1000 (keys)",
            );
        }
        if self.hold_sweep_interval_secs == 0 {
            problems.add(
                "fintech.hold_sweep_interval_secs",
                "the release of expired holds needs an interval of at least 1 s",
                "for example 30",
            );
        }
        if self.writer_queue_max == 0 {
            problems.add(
                "fintech.writer_queue_max",
                "the ledger writer's queue must hold at least one command",
                "for example 8192 (a few full batches of 512)",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Environment;

    fn problems(settings: &FintechSettings) -> Vec<String> {
        let mut found = SettingsProblems::default();
        settings.validate(&ValidationContext { environment: Environment::Test }, &mut found);
        found.0.into_iter().map(|p| p.key).collect()
    }

    #[test]
    fn the_purge_and_the_writer_queue_need_room() {
        assert!(problems(&FintechSettings::default()).is_empty());
        let purge = FintechSettings { idempotency_purge_batch: 0, ..FintechSettings::default() };
        assert_eq!(problems(&purge), vec!["fintech.idempotency_purge_interval_secs"]);
        let queue = FintechSettings { writer_queue_max: 0, ..FintechSettings::default() };
        assert_eq!(problems(&queue), vec!["fintech.writer_queue_max"]);
    }
}
