//! Emissions estimates: kg CO2e of a distance travelled, from the Climatiq API
//! (`POST /data/v1/estimate` with an emission factor's activity id and a distance), or from the
//! shipped factor table (the simulator outside production, and the fallback when the provider
//! fails). The provider's factors (kg per km) are cached in Redis, so an estimate for an activity
//! already seen needs no call.

pub mod factors;

use serde::{Deserialize, Serialize};

use crate::{
    adapters::external::{http::send_json, AdapterCache, AdapterError, AttemptError, Guard, Provenance, Source},
    config::Secret,
};

/// Adapter name: the `adapter` label, the actor's and the dependency's name.
pub const NAME: &str = "emissions";
/// The only operation.
pub const OPERATION: &str = "estimate";
/// The Climatiq data version asked for: the latest release compatible with 21.
pub const DATA_VERSION: &str = "^21";

/// An estimate request: an activity and a distance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EstimateRequest {
    /// The emission factor's activity id (e.g. an average petrol car).
    pub activity_id: String,
    /// Distance travelled, kilometres.
    pub distance_km: f64,
}

/// An estimate and where it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// The activity.
    pub activity_id: String,
    /// Distance, kilometres.
    pub distance_km: f64,
    /// Emissions, kg CO2e.
    pub co2e_kg: f64,
    /// The factor applied, kg per km.
    pub factor_kg_per_km: f64,
    /// Where the factor comes from (the provider's source and year, or the shipped table).
    pub factor_source: String,
    /// Which release of the factor: the provider's factor id (or the data version asked for),
    /// or the shipped table's name.
    pub factor_version: String,
    /// Where the estimate came from.
    pub provenance: Provenance,
}

/// What the cache keeps of a provider's factor.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Factor {
    kg_per_km: f64,
    source: String,
    #[serde(default)]
    version: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ClimatiqAnswer {
    co2e: f64,
    co2e_unit: String,
    #[serde(default)]
    emission_factor: Option<ClimatiqFactor>,
}

#[derive(Debug, Deserialize)]
struct ClimatiqFactor {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    year: Option<serde_json::Value>,
}

/// Who answers: the Climatiq API or the simulator.
pub enum Backend {
    /// A Climatiq API at `base`.
    Climatiq {
        /// The adapter's client (its connection pool).
        client: reqwest::Client,
        /// Base URL, without a trailing slash.
        base: String,
        /// Bearer API key.
        api_key: Option<Secret>,
    },
    /// The in-process simulator (the shipped factor table).
    Simulator,
}

/// The emissions adapter: protections, backend, cache and the shipped table.
pub struct EmissionsAdapter {
    guard: Guard,
    backend: Backend,
    cache: AdapterCache,
}

impl EmissionsAdapter {
    /// An adapter answering from `backend`, falling back on the shipped table.
    pub fn new(guard: Guard, backend: Backend, cache: AdapterCache) -> Self {
        Self { guard, backend, cache }
    }

    /// Its protections (circuit state for health).
    pub fn guard(&self) -> &Guard {
        &self.guard
    }

    /// Whether it answers from the simulator.
    pub fn simulated(&self) -> bool {
        matches!(self.backend, Backend::Simulator)
    }

    /// The estimate for `request`: from a cached factor, the provider, or (when the provider
    /// fails) the shipped table.
    pub async fn estimate(&self, request: &EstimateRequest) -> Result<Estimate, AdapterError> {
        let refused = |reason: &str| AdapterError::Refused { adapter: NAME, reason: reason.into() };
        if !(request.distance_km.is_finite() && request.distance_km >= 0.0) {
            return Err(refused("the distance must be a finite number of kilometres, 0 or more"));
        }
        if request.activity_id.is_empty() || request.activity_id.len() > 200 {
            return Err(refused("the activity id must be 1 to 200 characters"));
        }
        let (client, base, api_key) = match &self.backend {
            Backend::Simulator => {
                let factor = self
                    .guard
                    .call(OPERATION, true, || async {
                        factors::shipped(&request.activity_id)
                            .ok_or_else(|| AttemptError::Refused("unknown activity id".into()))
                    })
                    .await?;
                return Ok(table_estimate(request, factor, Source::Simulator));
            }
            Backend::Climatiq { client, base, api_key } => (client, base, api_key),
        };
        if let Some(factor) = self.cache.get::<Factor>(&request.activity_id).await {
            return Ok(from_provider(request, request.distance_km * factor.kg_per_km, factor, Source::Cache));
        }
        let url = format!("{base}/data/v1/estimate");
        let body = serde_json::json!({
            "emission_factor": { "activity_id": request.activity_id, "data_version": DATA_VERSION },
            "parameters": { "distance": request.distance_km, "distance_unit": "km" },
        });
        let answer = self
            .guard
            .call(OPERATION, true, || {
                let mut call = client.post(&url).json(&body);
                if let Some(key) = api_key {
                    call = call.bearer_auth(key.expose());
                }
                async move {
                    let answer: ClimatiqAnswer = send_json(call).await?;
                    let kg = match answer.co2e_unit.as_str() {
                        "kg" => answer.co2e,
                        "t" => answer.co2e * 1000.0,
                        "g" => answer.co2e / 1000.0,
                        other => return Err(AttemptError::Malformed(format!("unknown unit {other}"))),
                    };
                    if !(kg.is_finite() && kg >= 0.0) {
                        return Err(AttemptError::Malformed("co2e is not a non-negative number".into()));
                    }
                    let factor =
                        answer.emission_factor.unwrap_or(ClimatiqFactor { id: None, source: None, year: None });
                    let version = factor.id.filter(|id| !id.is_empty() && id.len() <= 200);
                    let source = match (factor.source, factor.year) {
                        (Some(s), Some(serde_json::Value::Number(y))) => format!("{s} {y}"),
                        (Some(s), Some(serde_json::Value::String(y))) => format!("{s} {y}"),
                        (Some(s), _) => s,
                        (None, _) => "climatiq".into(),
                    };
                    Ok((kg, source, version))
                }
            })
            .await;
        match answer {
            Ok((kg, source, version)) => {
                let kg_per_km = if request.distance_km > 0.0 { kg / request.distance_km } else { 0.0 };
                let factor = Factor { kg_per_km, source, version };
                if request.distance_km > 0.0 {
                    self.cache.put(&request.activity_id, &factor).await;
                }
                Ok(from_provider(request, kg, factor, Source::Provider))
            }
            Err(error) if error.allows_fallback() => match factors::shipped(&request.activity_id) {
                Some(found) => {
                    self.guard.count_fallback(OPERATION);
                    tracing::warn!(adapter = NAME, error = %error, table = found.0.name, "emissions provider failed: answering from the shipped factors");
                    Ok(table_estimate(request, found, Source::Fallback))
                }
                None => Err(error),
            },
            Err(error) => Err(error),
        }
    }
}

fn table_estimate(
    request: &EstimateRequest,
    (table, factor): (&'static factors::FactorTable, f64),
    source: Source,
) -> Estimate {
    Estimate {
        activity_id: request.activity_id.clone(),
        distance_km: request.distance_km,
        co2e_kg: request.distance_km * factor,
        factor_kg_per_km: factor,
        factor_source: format!("{} ({}; {})", table.source, table.edition, table.unit),
        factor_version: table.name.into(),
        provenance: Provenance { source, producer: table.name.into(), estimated: true },
    }
}

fn from_provider(request: &EstimateRequest, kg: f64, factor: Factor, source: Source) -> Estimate {
    Estimate {
        activity_id: request.activity_id.clone(),
        distance_km: request.distance_km,
        co2e_kg: kg,
        factor_kg_per_km: factor.kg_per_km,
        factor_source: factor.source,
        factor_version: factor.version.unwrap_or_else(|| format!("climatiq data {DATA_VERSION}")),
        provenance: Provenance { source, producer: "climatiq".into(), estimated: false },
    }
}
