//! What the sections' rules share: the problem they report, the facts from outside a section they
//! may depend on, and the few rules that need two sections.

use std::fmt;

use super::{variables_for, Environment, EventBusKind, Role, Settings};

/// One thing wrong with the settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsProblem {
    /// Settings key, e.g. `server.port`.
    pub key: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: String,
}

impl fmt::Display for SettingsProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}; hint: {}", self.key, variables_for(&self.key), self.message, self.hint)
    }
}

/// Every problem found while loading or validating settings.
#[derive(Debug, Clone, Default)]
pub struct SettingsProblems(pub Vec<SettingsProblem>);

impl SettingsProblems {
    /// Records that the value at `key` breaks a rule: what is wrong, and how to fix it.
    pub fn add(&mut self, key: &str, message: impl Into<String>, hint: &str) {
        self.0.push(SettingsProblem { key: key.into(), message: message.into(), hint: hint.into() });
    }
}

impl fmt::Display for SettingsProblems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "invalid configuration ({} problem(s)):", self.0.len())?;
        for problem in &self.0 {
            writeln!(f, "  - {problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SettingsProblems {}

/// Facts from outside a section that its rules depend on.
#[derive(Debug, Clone, Copy)]
pub struct ValidationContext {
    /// Deployment environment the settings are for.
    pub environment: Environment,
}

impl ValidationContext {
    /// Whether the settings are for production, where secrets and real infrastructure are required.
    pub fn production(&self) -> bool {
        self.environment == Environment::Production
    }
}

/// A section of the settings, which checks its own values.
pub trait Section {
    /// Adds to `problems` every rule of this section that its values break, each with a hint.
    fn validate(&self, ctx: &ValidationContext, problems: &mut SettingsProblems);
}

/// The rules that involve more than one section.
pub(super) fn across_sections(settings: &Settings, problems: &mut SettingsProblems) {
    for (name, adapter) in [
        ("routing", &settings.adapters.routing),
        ("emissions", &settings.adapters.emissions),
        ("payments.provider", &settings.adapters.payments.provider),
    ] {
        if adapter.total_timeout_ms >= settings.supervision.ask_timeout_ms {
            problems.add(
                &format!("adapters.{name}.total_timeout_ms"),
                "a call must end before its ask to the adapter's actor times out",
                "keep it below supervision.ask_timeout_ms",
            );
        }
    }
    if settings.event_bus.effective_kind() == EventBusKind::Memory && settings.server.role != Role::All {
        problems.add(
            "event_bus.kind",
            format!(
                "the in-process bus needs the API and the worker in one process, not role {}",
                settings.server.role.as_str()
            ),
            "run SERVICE_ROLE=all, or set KAFKA_BOOTSTRAP_SERVERS for separate api and worker deployments",
        );
    }
}
