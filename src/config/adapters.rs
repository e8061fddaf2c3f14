//! `adapters`: the external APIs (routing, emissions, payments): where they are, their key,
//! timeouts, retries, circuit breaker, bulkhead, rate limit and cache; for payments also the
//! webhook's secrets and tolerance.

use serde::{Deserialize, Serialize};

use super::{Secret, SecretUrl, Section, SettingsProblems, ValidationContext};

/// Every external API adapter.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdaptersSettings {
    /// Routing (OSRM HTTP API): distances and durations between points.
    pub routing: AdapterSettings,
    /// Emissions estimates (Climatiq API): kg CO2e of a distance travelled.
    pub emissions: AdapterSettings,
    /// Payments (Stripe-style API): top-ups, payouts and their signed webhook.
    pub payments: PaymentsSettings,
}

/// The payment provider.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PaymentsSettings {
    /// The provider's API: URL (unset runs the in-process simulator, refused in production), API
    /// key (sent as a bearer token, required in production) and protections. Payments are never
    /// cached and have no fallback.
    pub provider: AdapterSettings,
    /// Secret the provider signs webhooks with; redacted. Required in production and whenever a
    /// provider URL is set; outside production without one, a secret is generated at start for
    /// the simulator.
    pub webhook_secret: Option<Secret>,
    /// Earlier secrets still accepted while a rotation is under way; redacted.
    pub webhook_secrets_previous: Vec<Secret>,
    /// Largest distance between a webhook's signed timestamp and now, seconds; also how long a
    /// delivery's signature is remembered to refuse its replay.
    pub webhook_tolerance_secs: u64,
    /// The simulator reports a collected payment or a paid payout this long after it was
    /// created, milliseconds.
    pub simulator_settle_ms: u64,
    /// Payouts still `pending` this long after they were asked for (the provider did not answer
    /// and the caller did not retry) are resumed, checked this often, seconds.
    pub pending_retry_secs: u64,
}

impl Default for PaymentsSettings {
    fn default() -> Self {
        Self {
            provider: AdapterSettings { cache_ttl_secs: 0, ..AdapterSettings::default() },
            webhook_secret: None,
            webhook_secrets_previous: Vec::new(),
            webhook_tolerance_secs: 300,
            simulator_settle_ms: 1000,
            pending_retry_secs: 60,
        }
    }
}

impl Default for AdaptersSettings {
    fn default() -> Self {
        Self {
            routing: AdapterSettings { cache_ttl_secs: 24 * 3600, ..AdapterSettings::default() },
            emissions: AdapterSettings { cache_ttl_secs: 7 * 24 * 3600, ..AdapterSettings::default() },
            payments: PaymentsSettings::default(),
        }
    }
}

/// One external API.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdapterSettings {
    /// Base URL of the provider (e.g. `https://router.example.com`); unset runs the in-process
    /// simulator of the provider, refused in production. A password in it is redacted when shown.
    pub url: Option<SecretUrl>,
    /// API key sent as a bearer token; redacted when shown.
    pub api_key: Option<Secret>,
    /// Longest time to open a connection, milliseconds.
    pub connect_timeout_ms: u64,
    /// Longest wait for one attempt's answer, milliseconds.
    pub attempt_timeout_ms: u64,
    /// Longest time for a whole call, retries and backoff included, milliseconds; below
    /// `supervision.ask_timeout_ms`.
    pub total_timeout_ms: u64,
    /// Attempts per call, the first included (retries only for idempotent calls).
    pub max_attempts: u32,
    /// Wait before the first retry, doubled at each retry, jittered, milliseconds.
    pub retry_backoff_ms: u64,
    /// Longest wait between two attempts, milliseconds.
    pub retry_backoff_max_ms: u64,
    /// Retries may add at most this share of the calls (0 to 1) over the breaker's window.
    pub retry_budget_ratio: f64,
    /// Retries allowed in the window whatever the number of calls.
    pub retry_budget_floor: u32,
    /// Share of failed calls in the window (0 to 1) at which the circuit opens.
    pub breaker_failure_ratio: f64,
    /// Fewest calls in the window before the circuit may open.
    pub breaker_min_calls: u32,
    /// The breaker's sliding window, seconds.
    pub breaker_window_secs: u64,
    /// How long an open circuit refuses calls before probing, milliseconds.
    pub breaker_open_ms: u64,
    /// Probes let through while half-open; all must succeed to close the circuit.
    pub breaker_half_open_probes: u32,
    /// Calls in flight at most (bulkhead); more are refused at once.
    pub max_concurrency: usize,
    /// The provider's quota, calls per second (0: none).
    pub rate_limit_per_sec: f64,
    /// How long answers stay in the shared Redis cache, seconds (0: no cache).
    pub cache_ttl_secs: u64,
    /// Longest wait for the cache, milliseconds; a slow or absent Redis is a miss.
    pub cache_timeout_ms: u64,
}

impl Default for AdapterSettings {
    fn default() -> Self {
        Self {
            url: None,
            api_key: None,
            connect_timeout_ms: 1000,
            attempt_timeout_ms: 1500,
            total_timeout_ms: 3000,
            max_attempts: 3,
            retry_backoff_ms: 50,
            retry_backoff_max_ms: 1000,
            retry_budget_ratio: 0.1,
            retry_budget_floor: 10,
            breaker_failure_ratio: 0.5,
            breaker_min_calls: 20,
            breaker_window_secs: 30,
            breaker_open_ms: 30_000,
            breaker_half_open_probes: 3,
            max_concurrency: 64,
            rate_limit_per_sec: 0.0,
            cache_ttl_secs: 3600,
            cache_timeout_ms: 50,
        }
    }
}

impl Section for AdaptersSettings {
    fn validate(&self, ctx: &ValidationContext, problems: &mut SettingsProblems) {
        self.routing.check("routing", "ROUTING_URL", ctx, problems);
        self.emissions.check("emissions", "EMISSIONS_URL", ctx, problems);
        if ctx.production() && self.emissions.api_key.is_none() {
            problems.add(
                "adapters.emissions.api_key",
                "the emissions provider needs an API key in production",
                "set EMISSIONS_API_KEY from the beryl-secrets secret",
            );
        }
        self.payments.validate(ctx, problems);
    }
}

impl PaymentsSettings {
    fn validate(&self, ctx: &ValidationContext, problems: &mut SettingsProblems) {
        self.provider.check("payments.provider", "PAYMENTS_URL", ctx, problems);
        if ctx.production() && self.provider.api_key.is_none() {
            problems.add(
                "adapters.payments.provider.api_key",
                "the payment provider needs an API key in production",
                "set PAYMENTS_API_KEY from the beryl-secrets secret",
            );
        }
        let blank = |s: &Secret| s.expose().trim().is_empty();
        if (ctx.production() || self.provider.url.is_some()) && self.webhook_secret.as_ref().is_none_or(blank) {
            problems.add(
                "adapters.payments.webhook_secret",
                "webhooks of a real payment provider cannot be verified without its signing secret",
                "set PAYMENTS_WEBHOOK_SECRET from the beryl-secrets secret",
            );
        }
        if self.webhook_secrets_previous.iter().any(blank) {
            problems.add(
                "adapters.payments.webhook_secrets_previous",
                "a previous webhook secret is empty",
                "list the secrets still in use, comma-separated, or leave PAYMENTS_WEBHOOK_SECRET_PREVIOUS unset",
            );
        }
        if !(1..=3600).contains(&self.webhook_tolerance_secs) {
            problems.add(
                "adapters.payments.webhook_tolerance_secs",
                "must be between 1 and 3600 seconds",
                "300, as the provider recommends",
            );
        }
        if self.pending_retry_secs == 0 {
            problems.add("adapters.payments.pending_retry_secs", "must be above 0", "for example 60");
        }
        if self.simulator_settle_ms > 60_000 {
            problems.add("adapters.payments.simulator_settle_ms", "at most 60000", "for example 1000");
        }
    }
}

impl AdapterSettings {
    fn check(&self, name: &str, variable: &str, ctx: &ValidationContext, problems: &mut SettingsProblems) {
        let key = |field: &str| format!("adapters.{name}.{field}");
        match self.url.as_ref().map(|u| u.expose()) {
            Some(url)
                if !(url.starts_with("http://") || url.starts_with("https://"))
                    || url.len() < 10
                    || reqwest::Url::parse(url).is_err() =>
            {
                problems.add(
                    &key("url"),
                    format!("`{}` is not an http(s) URL", self.url.as_ref().map(|u| u.redacted()).unwrap_or_default()),
                    "for example https://api.example.com",
                )
            }
            None if ctx.production() => problems.add(
                &key("url"),
                "production cannot run on the in-process simulator of the provider",
                &format!("set {variable}"),
            ),
            _ => {}
        }
        if self.connect_timeout_ms == 0
            || self.attempt_timeout_ms == 0
            || self.total_timeout_ms < self.attempt_timeout_ms
        {
            problems.add(
                &key("total_timeout_ms"),
                "timeouts must be above 0 and the total at least one attempt's",
                "for example connect 1000, attempt 1500, total 3000",
            );
        }
        if self.max_attempts == 0 || self.retry_backoff_max_ms < self.retry_backoff_ms {
            problems.add(
                &key("max_attempts"),
                "at least one attempt, and a backoff cap above the first wait",
                "for example 3, 50 and 1000",
            );
        }
        let ratio = |r: f64| (0.0..=1.0).contains(&r);
        if !ratio(self.retry_budget_ratio) || !ratio(self.breaker_failure_ratio) || self.breaker_failure_ratio == 0.0 {
            problems.add(
                &key("breaker_failure_ratio"),
                "ratios are between 0 and 1 (the failure ratio above 0)",
                "for example 0.1 and 0.5",
            );
        }
        if self.breaker_min_calls == 0
            || self.breaker_window_secs == 0
            || self.breaker_open_ms == 0
            || self.breaker_half_open_probes == 0
            || self.max_concurrency == 0
        {
            problems.add(
                &key("breaker_min_calls"),
                "breaker_min_calls, breaker_window_secs, breaker_open_ms, breaker_half_open_probes and max_concurrency must be at least 1",
                "for example 20, 30, 30000, 3 and 64",
            );
        }
        if !(self.rate_limit_per_sec >= 0.0 && self.rate_limit_per_sec.is_finite()) {
            problems.add(&key("rate_limit_per_sec"), "must be 0 (no limit) or a positive rate", "for example 50");
        }
        if self.cache_timeout_ms == 0 {
            problems.add(&key("cache_timeout_ms"), "must be above 0", "for example 50");
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::load::tests::load;

    #[test]
    fn production_requires_the_real_providers_and_the_emissions_key() {
        let problems = load(&[("ENVIRONMENT", "production")]).unwrap_err();
        let keys: Vec<_> = problems.0.iter().map(|p| p.key.as_str()).collect();
        for key in ["adapters.routing.url", "adapters.emissions.url", "adapters.emissions.api_key"] {
            assert!(keys.contains(&key), "{key} missing from {problems}");
        }
        assert!(problems.to_string().contains("ROUTING_URL or BERYL__ADAPTERS__ROUTING__URL"), "{problems}");
    }

    #[test]
    fn variables_set_the_providers_and_keys_are_redacted() {
        let settings = load(&[
            ("ROUTING_URL", "http://osrm:5000"),
            ("EMISSIONS_URL", "https://gateway:hunter2@api.climatiq.io"),
            ("EMISSIONS_API_KEY", "sk-live-0123456789"),
            ("BERYL__ADAPTERS__ROUTING__MAX_ATTEMPTS", "2"),
        ])
        .unwrap();
        assert_eq!(settings.adapters.routing.url.as_ref().map(|u| u.expose()), Some("http://osrm:5000"));
        assert_eq!(settings.adapters.routing.max_attempts, 2);
        assert_eq!(settings.adapters.emissions.api_key.as_ref().map(|k| k.expose()), Some("sk-live-0123456789"));
        let shown = settings.redacted_json().to_string();
        assert!(!shown.contains("sk-live"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("https://gateway:[redacted]@api.climatiq.io"), "{shown}");
    }

    #[test]
    fn payments_need_their_provider_key_and_webhook_secret_in_production() {
        let problems = load(&[("ENVIRONMENT", "production")]).unwrap_err();
        let keys: Vec<_> = problems.0.iter().map(|p| p.key.as_str()).collect();
        for key in
            ["adapters.payments.provider.url", "adapters.payments.provider.api_key", "adapters.payments.webhook_secret"]
        {
            assert!(keys.contains(&key), "{key} missing from {problems}");
        }
        assert!(problems.to_string().contains("PAYMENTS_WEBHOOK_SECRET or BERYL__ADAPTERS__PAYMENTS__WEBHOOK_SECRET"));
        // A real provider outside production needs the secret too: its webhooks could not be verified.
        let problems = load(&[("PAYMENTS_URL", "https://api.stripe.com")]).unwrap_err();
        assert!(problems.0.iter().any(|p| p.key == "adapters.payments.webhook_secret"), "{problems}");
    }

    #[test]
    fn payments_variables_set_the_provider_and_the_rotation_and_stay_redacted() {
        let settings = load(&[
            ("PAYMENTS_URL", "https://api.stripe.com"),
            ("PAYMENTS_API_KEY", "sk_live_0123456789"),
            ("PAYMENTS_WEBHOOK_SECRET", "whsec_new_0123"),
            ("PAYMENTS_WEBHOOK_SECRET_PREVIOUS", "whsec_old_1, whsec_old_2"),
            ("PAYMENTS_WEBHOOK_TOLERANCE", "120"),
            ("BERYL__ADAPTERS__PAYMENTS__PROVIDER__MAX_ATTEMPTS", "2"),
        ])
        .unwrap();
        let p = &settings.adapters.payments;
        assert_eq!(p.provider.url.as_ref().map(|u| u.expose()), Some("https://api.stripe.com"));
        assert_eq!(p.provider.max_attempts, 2);
        assert_eq!(p.webhook_tolerance_secs, 120);
        let previous: Vec<_> = p.webhook_secrets_previous.iter().map(|s| s.expose()).collect();
        assert_eq!(previous, ["whsec_old_1", "whsec_old_2"]);
        let shown = settings.redacted_json().to_string();
        for secret in ["sk_live", "whsec_"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        let problems = load(&[("PAYMENTS_WEBHOOK_TOLERANCE", "0")]).unwrap_err();
        assert!(problems.0.iter().any(|p| p.key == "adapters.payments.webhook_tolerance_secs"), "{problems}");
    }

    #[test]
    fn impossible_protections_are_refused() {
        let problems = load(&[
            ("ROUTING_URL", "ftp://osrm"),
            ("BERYL__ADAPTERS__ROUTING__BREAKER_FAILURE_RATIO", "1.5"),
            ("BERYL__ADAPTERS__EMISSIONS__TOTAL_TIMEOUT_MS", "9000"),
            ("EMISSIONS_URL", "https://api.climatiq io:99999"),
        ])
        .unwrap_err();
        let keys: Vec<_> = problems.0.iter().map(|p| p.key.as_str()).collect();
        assert!(keys.contains(&"adapters.routing.url"), "{problems}");
        assert!(keys.contains(&"adapters.emissions.url"), "an unparseable URL: {problems}");
        assert!(keys.contains(&"adapters.routing.breaker_failure_ratio"), "{problems}");
        assert!(keys.contains(&"adapters.emissions.total_timeout_ms"), "{problems}");
    }
}
