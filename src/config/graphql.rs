//! `graphql`: what `/graphql` exposes and how large an operation may be, after Apollo Router's
//! operation limits (`max_depth`, `max_height`, `max_aliases`, `max_root_fields`) and its parser
//! token limit.

use serde::{Deserialize, Serialize};

use super::{Environment, Section, SettingsProblems, ValidationContext};

/// Deepest selection nesting async-graphql accepts; `max_depth` stays within it.
pub const GRAPHQL_DEPTH_CEILING: usize = 32;

/// GraphQL endpoint.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct GraphqlSettings {
    /// Answer introspection (`__schema`, `__type`). Unset means on outside production, off in
    /// production.
    pub introspection: Option<bool>,
    /// Serve GraphiQL on `GET /graphql` (needs introspection). Unset means on outside production,
    /// off in production.
    pub graphiql: Option<bool>,
    /// Deepest field nesting of an operation; a root field is at depth 1.
    pub max_depth: usize,
    /// Most fields in an operation, counting each distinct response name of a selection set
    /// once and each use of a fragment again.
    pub max_height: usize,
    /// Most aliased fields in an operation.
    pub max_aliases: usize,
    /// Most fields at the root of an operation.
    pub max_root_fields: usize,
    /// Most lexical tokens in a document, counted before it is parsed.
    pub max_tokens: usize,
    /// `dependencies(refresh: true)` probes at most once per this many milliseconds; callers in
    /// between, or waiting on a probe in flight, get that probe's result.
    pub refresh_interval_ms: u64,
}

impl Default for GraphqlSettings {
    fn default() -> Self {
        Self {
            introspection: None,
            graphiql: None,
            max_depth: 16,
            max_height: 300,
            max_aliases: 30,
            max_root_fields: 20,
            max_tokens: 4000,
            refresh_interval_ms: 1000,
        }
    }
}

impl GraphqlSettings {
    /// Whether introspection is answered in `environment`.
    pub fn introspection_enabled(&self, environment: Environment) -> bool {
        self.introspection.unwrap_or(environment != Environment::Production)
    }

    /// Whether GraphiQL is served in `environment`.
    pub fn graphiql_enabled(&self, environment: Environment) -> bool {
        self.graphiql.unwrap_or(environment != Environment::Production)
    }
}

impl Section for GraphqlSettings {
    fn validate(&self, ctx: &ValidationContext, problems: &mut SettingsProblems) {
        if self.max_depth == 0 || self.max_depth > GRAPHQL_DEPTH_CEILING {
            problems.add(
                "graphql.max_depth",
                format!("{} is out of range", self.max_depth),
                "between 1 and 32; 16 leaves room for the introspection query",
            );
        }
        for (key, value) in [
            ("graphql.max_height", self.max_height),
            ("graphql.max_aliases", self.max_aliases),
            ("graphql.max_root_fields", self.max_root_fields),
            ("graphql.max_tokens", self.max_tokens),
        ] {
            if value == 0 {
                problems.add(key, "0 would refuse every operation", "for example 300, 30, 20 and 4000");
            }
        }
        if self.refresh_interval_ms == 0 || self.refresh_interval_ms > 60_000 {
            problems.add(
                "graphql.refresh_interval_ms",
                format!("{} is out of range", self.refresh_interval_ms),
                "between 1 and 60000 milliseconds, for example 1000",
            );
        }
        if self.graphiql_enabled(ctx.environment) && !self.introspection_enabled(ctx.environment) {
            problems.add(
                "graphql.graphiql",
                "GraphiQL needs introspection, which is off",
                "turn graphql.introspection on, or leave graphql.graphiql unset",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(settings: &GraphqlSettings, environment: Environment) -> Vec<String> {
        let mut found = SettingsProblems::default();
        settings.validate(&ValidationContext { environment }, &mut found);
        found.0.into_iter().map(|p| p.key).collect()
    }

    #[test]
    fn production_turns_introspection_and_graphiql_off_unless_asked() {
        let settings = GraphqlSettings::default();
        assert!(!settings.introspection_enabled(Environment::Production));
        assert!(!settings.graphiql_enabled(Environment::Production));
        assert!(settings.introspection_enabled(Environment::Staging));
        let on = GraphqlSettings { introspection: Some(true), ..Default::default() };
        assert!(on.introspection_enabled(Environment::Production));
        assert!(problems(&settings, Environment::Production).is_empty());
    }

    #[test]
    fn limits_out_of_range_and_graphiql_without_introspection_are_refused() {
        let bad = GraphqlSettings {
            max_depth: 33,
            max_aliases: 0,
            refresh_interval_ms: 0,
            introspection: Some(false),
            ..Default::default()
        };
        assert_eq!(
            problems(&bad, Environment::Development),
            ["graphql.max_depth", "graphql.max_aliases", "graphql.refresh_interval_ms", "graphql.graphiql"]
        );
    }
}
