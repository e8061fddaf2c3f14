//! Loading: built-in defaults, then `config/<environment>.yaml`, then `BERYL__SECTION__KEY`
//! variables, then the flat variable names the infrastructure document uses (`LOG_LEVEL`, ...).

use std::path::PathBuf;

use config::{Config, ConfigError, Environment as EnvSource, File, FileFormat, Value};

use super::{Environment, KafkaProperties, Settings, SettingsProblem, SettingsProblems, KAFKA_PROPERTY_PREFIX};

/// Flat variable names documented by the infrastructure document (and a few more), with the
/// settings key each one sets. They win over `BERYL__*` and the configuration file.
pub const FLAT_VARIABLES: &[(&str, &str)] = &[
    ("ENVIRONMENT", "environment"),
    ("LOG_LEVEL", "log.level"),
    ("LOG_FORMAT", "log.format"),
    ("METRICS_ENABLED", "metrics.enabled"),
    ("TRACING_ENABLED", "tracing.enabled"),
    ("JAEGER_HOST", "tracing.jaeger_host"),
    ("OTEL_EXPORTER_OTLP_ENDPOINT", "tracing.otlp_endpoint"),
    ("AUDIT_ENABLED", "audit.enabled"),
    ("AUDIT_LOG_FILE", "audit.log_file"),
    ("AUDIT_HMAC_KEY", "audit.hmac_key"),
    ("AUDIT_HMAC_KEY_PREVIOUS", "audit.hmac_key_previous"),
    ("EVENT_BUS", "event_bus.kind"),
    ("KAFKA_BOOTSTRAP_SERVERS", "event_bus.kafka_bootstrap_servers"),
    ("KAFKA_INBOUND_TOPICS", "event_bus.inbound_topics"),
    ("KAFKA_CONSUMER_GROUP", "event_bus.consumer_group"),
    ("JWT_SECRET_KEY", "auth.jwt_secret_key"),
    ("JWT_KEY_ID", "auth.jwt_key_id"),
    ("JWT_SECRET_KEY_PREVIOUS", "auth.jwt_secret_key_previous"),
    ("JWT_SECRET_KEY_PREVIOUS_UNTIL", "auth.jwt_secret_key_previous_until"),
    ("JWT_KEY_ID_PREVIOUS", "auth.jwt_key_id_previous"),
    ("JWT_PUBLIC_KEY_FILE", "auth.public_key_file"),
    ("JWT_JWKS_FILE", "auth.jwks_file"),
    ("JWT_ISSUER", "auth.issuer"),
    ("JWT_AUDIENCE", "auth.audience"),
    ("CORS_ALLOWED_ORIGINS", "cors.allowed_origins"),
    ("DATABASE_URL", "database.url"),
    ("DATABASE_PASSWORD", "database.password"),
    ("REDIS_URL", "redis.url"),
    ("HOST", "server.host"),
    ("PORT", "server.port"),
    ("SERVICE_ROLE", "server.role"),
    ("SHUTDOWN_GRACE_PERIOD", "server.shutdown_grace_period_secs"),
    ("SHUTDOWN_DRAIN_DELAY", "server.shutdown_drain_delay_secs"),
    ("FAULT_INJECTION_ENABLED", "fault_injection.enabled"),
    ("TRUSTED_PROXIES", "rate_limit.trusted_proxies"),
    ("ROUTING_URL", "adapters.routing.url"),
    ("ROUTING_API_KEY", "adapters.routing.api_key"),
    ("EMISSIONS_URL", "adapters.emissions.url"),
    ("EMISSIONS_API_KEY", "adapters.emissions.api_key"),
    ("PAYMENTS_URL", "adapters.payments.provider.url"),
    ("PAYMENTS_API_KEY", "adapters.payments.provider.api_key"),
    ("PAYMENTS_WEBHOOK_SECRET", "adapters.payments.webhook_secret"),
    ("PAYMENTS_WEBHOOK_SECRET_PREVIOUS", "adapters.payments.webhook_secrets_previous"),
    ("PAYMENTS_WEBHOOK_TOLERANCE", "adapters.payments.webhook_tolerance_secs"),
    ("PRIVACY_MASTER_KEY", "privacy.master_key"),
    ("PRIVACY_MASTER_KEY_PREVIOUS", "privacy.master_key_previous"),
    ("PRIVACY_BLIND_INDEX_KEY", "privacy.blind_index_key"),
];

/// Prefix of the nested form: `BERYL__SUPERVISION__MAX_RESTARTS=5`.
pub const NESTED_PREFIX: &str = "BERYL";

/// The variables that set `key`: its flat name if it has one, and its nested form.
pub fn variables_for(key: &str) -> String {
    let nested = format!("{NESTED_PREFIX}__{}", key.replace('.', "__").to_uppercase());
    match FLAT_VARIABLES.iter().find(|(_, k)| *k == key) {
        Some((flat, _)) => format!("{flat} or {nested}"),
        None => nested,
    }
}

/// Where settings come from; tests pass their own variables instead of the process environment.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// Directory holding `<environment>.yaml`.
    pub config_dir: Option<PathBuf>,
    /// Variables to read; `None` reads the process environment.
    pub vars: Option<Vec<(String, String)>>,
}

impl Sources {
    fn vars(&self) -> Vec<(String, String)> {
        match &self.vars {
            Some(vars) => vars.clone(),
            None => std::env::vars().collect(),
        }
    }
}

impl Settings {
    /// Load from every source and validate; `Err` lists every problem found.
    pub fn load(sources: &Sources) -> Result<Self, SettingsProblems> {
        let vars = sources.vars();
        let lookup = |name: &str| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());

        // The environment decides which file is read, so it is resolved first.
        let env_name = lookup("ENVIRONMENT")
            .or_else(|| lookup(&format!("{NESTED_PREFIX}__ENVIRONMENT")))
            .unwrap_or_else(|| Environment::default().as_str().into())
            .to_lowercase();
        let config_dir = sources
            .config_dir
            .clone()
            .or_else(|| lookup("CONFIG_DIR").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("config"));

        let mut problems = Vec::new();
        let file = config_dir.join(format!("{env_name}.yaml"));
        // Defaults are the first layer, so that a partial override of a nested section keeps the
        // defaults of its other keys.
        let defaults =
            Config::try_from(&Settings::default()).map_err(|e| SettingsProblems(vec![problem_from("", &e)]))?;
        let mut builder = Config::builder()
            .add_source(defaults.clone())
            .add_source(File::from(file.as_path()).format(FileFormat::Yaml).required(false));
        let nested: std::collections::HashMap<String, String> =
            vars.iter().filter(|(k, _)| k.starts_with(&format!("{NESTED_PREFIX}__"))).cloned().collect();
        builder = builder.add_source(
            EnvSource::with_prefix(NESTED_PREFIX).prefix_separator("__").separator("__").source(Some(nested)),
        );
        for (var, key) in FLAT_VARIABLES {
            if let Some(value) = lookup(var) {
                // An empty variable means "not set", as Kubernetes renders optional values.
                if value.is_empty() {
                    continue;
                }
                let value: Value = if matches!(
                    *var,
                    "CORS_ALLOWED_ORIGINS"
                        | "KAFKA_INBOUND_TOPICS"
                        | "TRUSTED_PROXIES"
                        | "PAYMENTS_WEBHOOK_SECRET_PREVIOUS"
                ) {
                    value
                        .split(',')
                        .map(str::trim)
                        .filter(|o| !o.is_empty())
                        .map(String::from)
                        .collect::<Vec<_>>()
                        .into()
                } else {
                    value.into()
                };
                builder = match builder.set_override(*key, value) {
                    Ok(b) => b,
                    Err(e) => return Err(SettingsProblems(vec![problem_from(key, &e)])),
                };
            }
        }

        // Deserialize; on a malformed value record it, put the default back and try again, so
        // that every malformed value is reported at once.
        let mut settings = loop {
            let config = match builder.build_cloned() {
                Ok(c) => c,
                Err(e) => {
                    problems.push(problem_from(&file.display().to_string(), &e));
                    return Err(SettingsProblems(problems));
                }
            };
            match config.try_deserialize::<Settings>() {
                Ok(settings) => break settings,
                Err(e) => {
                    let key = error_key(&e);
                    problems.push(problem_from(key.as_deref().unwrap_or("settings"), &e));
                    let replacement =
                        key.as_deref().and_then(|k| defaults.get::<Value>(k).ok().map(|v| (k.to_string(), v)));
                    match replacement {
                        Some((k, v)) if problems.len() < 32 => {
                            builder =
                                builder.set_override(k, v).map_err(|e| SettingsProblems(vec![problem_from("", &e)]))?;
                        }
                        _ => return Err(SettingsProblems(problems)),
                    }
                }
            }
        };
        // One variable per librdkafka property (names with dots cannot be variable names).
        for (var, value) in &vars {
            let Some(suffix) = var.strip_prefix(KAFKA_PROPERTY_PREFIX) else { continue };
            if value.is_empty() {
                continue;
            }
            match KafkaProperties::name_from_variable(suffix) {
                Some(name) => settings.event_bus.kafka_properties.insert(name, value.clone()),
                None => problems.push(SettingsProblem {
                    key: var.clone(),
                    message: "names no librdkafka property".into(),
                    hint: "KAFKA_PROPERTY_ then the property in capitals, `_` for `.` and `__` for `_` \
                           (KAFKA_PROPERTY_SASL_PASSWORD sets sasl.password)"
                        .into(),
                }),
            }
        }
        problems.extend(settings.validate());
        if problems.is_empty() {
            Ok(settings)
        } else {
            Err(SettingsProblems(problems))
        }
    }
}

fn error_key(error: &ConfigError) -> Option<String> {
    match error {
        ConfigError::Type { key: Some(key), .. } => Some(key.clone()),
        ConfigError::At { key: Some(key), .. } => Some(key.clone()),
        _ => None,
    }
}

fn problem_from(key: &str, error: &ConfigError) -> SettingsProblem {
    let message = match error {
        ConfigError::Type { unexpected, expected, .. } => format!("found {unexpected}, expected {expected}"),
        other => other.to_string(),
    };
    SettingsProblem {
        key: key.to_string(),
        message,
        hint: "see the configuration table in README.md for the accepted values".into(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config::{EventBusKind, LogFormat};

    /// Settings from `vars` alone (no configuration file), as other sections' tests load them.
    pub(crate) fn load(vars: &[(&str, &str)]) -> Result<Settings, SettingsProblems> {
        Settings::load(&Sources {
            config_dir: Some(PathBuf::from("/nonexistent")),
            vars: Some(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
        })
    }

    #[test]
    fn defaults_are_valid_and_embedded() {
        let settings = load(&[]).unwrap();
        assert!(settings.is_embedded());
        assert_eq!(settings.server.port, 8000);
        assert_eq!(settings.log_format(), LogFormat::Pretty);
    }

    #[test]
    fn seed_variables_are_honoured() {
        let settings = load(&[
            ("ENVIRONMENT", "staging"),
            ("LOG_LEVEL", "INFO"),
            ("METRICS_ENABLED", "false"),
            ("EVENT_BUS", "kafka"),
            ("KAFKA_BOOTSTRAP_SERVERS", "kafka:9092"),
            ("AUDIT_ENABLED", "true"),
            ("AUDIT_LOG_FILE", "/tmp/a.log"),
            ("PORT", "9001"),
            ("BERYL__SUPERVISION__MAX_RESTARTS", "7"),
            ("BERYL__EVENT_BUS__RELAY", "false"),
        ])
        .unwrap();
        assert_eq!(settings.environment, Environment::Staging);
        assert!(!settings.metrics.enabled);
        assert_eq!(settings.event_bus.effective_kind(), EventBusKind::Kafka);
        assert_eq!(settings.server.port, 9001);
        assert_eq!(settings.supervision.max_restarts, 7);
        assert!(!settings.event_bus.relay);
        assert!(Settings::default().event_bus.relay);
        assert_eq!(settings.log_format(), LogFormat::Json);
        assert!(settings.audit.enabled);
    }

    #[test]
    fn every_malformed_value_is_reported() {
        let problems = load(&[("PORT", "eighty"), ("METRICS_ENABLED", "maybe"), ("LOG_LEVEL", "loud")]).unwrap_err();
        let keys: Vec<_> = problems.0.iter().map(|p| p.key.as_str()).collect();
        assert!(keys.contains(&"server.port"), "{problems}");
        assert!(keys.contains(&"metrics.enabled"), "{problems}");
        assert!(keys.contains(&"log.level"), "{problems}");
        assert!(problems.to_string().contains("PORT or BERYL__SERVER__PORT"));
    }

    #[test]
    fn production_refuses_embedded_mode_and_fault_injection() {
        let problems = load(&[("ENVIRONMENT", "production"), ("FAULT_INJECTION_ENABLED", "true")]).unwrap_err();
        let keys: Vec<_> = problems.0.iter().map(|p| p.key.as_str()).collect();
        for key in [
            "database.url",
            "redis.url",
            "auth.jwt_secret_key",
            "fault_injection.enabled",
            "event_bus.kafka_bootstrap_servers",
        ] {
            assert!(keys.contains(&key), "{key} missing from {problems}");
        }
    }

    #[test]
    fn production_refuses_the_development_key_as_the_previous_key_and_a_previous_key_without_an_end() {
        let problems = load(&[
            ("ENVIRONMENT", "production"),
            ("JWT_SECRET_KEY_PREVIOUS", crate::config::DEVELOPMENT_JWT_KEY),
            ("JWT_SECRET_KEY_PREVIOUS_UNTIL", "2030-01-01T00:00:00Z"),
        ])
        .unwrap_err();
        assert!(problems.0.iter().any(|p| p.key == "auth.jwt_secret_key_previous"), "{problems}");
        let problems =
            load(&[("ENVIRONMENT", "staging"), ("JWT_SECRET_KEY_PREVIOUS", "0123456789abcdef0123456789abcdef")])
                .unwrap_err();
        assert!(problems.0.iter().any(|p| p.key == "auth.jwt_secret_key_previous_until"), "{problems}");
    }

    #[test]
    fn new_flat_variables_are_read() {
        let settings = load(&[
            ("JWT_SECRET_KEY_PREVIOUS", "0123456789abcdef0123456789abcdef"),
            ("JWT_SECRET_KEY_PREVIOUS_UNTIL", "2030-01-31T12:00:00Z"),
            ("TRUSTED_PROXIES", "10.0.0.0/8, 192.168.0.0/16"),
            ("SHUTDOWN_DRAIN_DELAY", "7"),
        ])
        .unwrap();
        assert_eq!(
            settings.auth.jwt_secret_key_previous_until.map(|t| t.to_rfc3339()).as_deref(),
            Some("2030-01-31T12:00:00+00:00")
        );
        assert_eq!(settings.rate_limit.trusted_proxies.len(), 2);
        assert_eq!(settings.server.shutdown_drain_delay_secs, 7);
        let problems = load(&[("TRUSTED_PROXIES", "10.0.0.0/33")]).unwrap_err();
        assert!(problems.0.iter().any(|p| p.key.contains("rate_limit.trusted_proxies")), "{problems}");
    }

    #[test]
    fn kafka_property_variables_set_librdkafka_properties() {
        let settings = load(&[
            ("KAFKA_PROPERTY_SECURITY_PROTOCOL", "SASL_SSL"),
            ("KAFKA_PROPERTY_SASL_MECHANISMS", "SCRAM-SHA-512"),
            ("KAFKA_PROPERTY_SASL_USERNAME", "beryl-core-api"),
            ("KAFKA_PROPERTY_SASL_PASSWORD", "scram-pw"),
            ("KAFKA_PROPERTY_LINGER_MS", ""),
        ])
        .unwrap();
        let properties = &settings.event_bus.kafka_properties;
        assert_eq!(properties.get("security.protocol"), Some("SASL_SSL"));
        assert_eq!(properties.get("sasl.password"), Some("scram-pw"));
        assert_eq!(properties.get("linger.ms"), None);
        let problems = load(&[("KAFKA_PROPERTY_SASL-PASSWORD", "x")]).unwrap_err();
        assert_eq!(problems.0[0].key, "KAFKA_PROPERTY_SASL-PASSWORD", "{problems}");
    }

    #[test]
    fn unknown_nested_keys_are_refused() {
        assert!(load(&[("BERYL__SERVER__PROT", "1")]).is_err());
    }

    #[test]
    fn secrets_are_redacted_when_shown() {
        let json =
            serde_json::to_string(&load(&[("JWT_SECRET_KEY", "0123456789abcdef0123456789abcdef")]).unwrap()).unwrap();
        assert!(!json.contains("0123456789abcdef"));
    }
}
