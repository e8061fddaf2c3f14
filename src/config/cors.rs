//! `cors`: origins allowed to call the API from a browser.

use serde::{Deserialize, Serialize};

use super::{Section, SettingsProblems, ValidationContext};

/// Cross-origin requests.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct CorsSettings {
    /// Origins allowed to call the API from a browser (CORS_ALLOWED_ORIGINS, comma-separated);
    /// empty allows none.
    pub allowed_origins: Vec<String>,
}

impl Section for CorsSettings {
    fn validate(&self, _: &ValidationContext, problems: &mut SettingsProblems) {
        for origin in &self.allowed_origins {
            if origin == "*" || !(origin.starts_with("https://") || origin.starts_with("http://")) {
                problems.add(
                    "cors.allowed_origins",
                    format!("`{origin}` is not an exact origin"),
                    "list exact origins such as https://app.beryl-ecosystem.com; wildcards are refused",
                );
            }
        }
    }
}
