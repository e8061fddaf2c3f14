//! Routing: distance and duration between points, from an OSRM HTTP API
//! (`GET /route/v1/{profile}/{lon,lat;lon,lat...}`), or from the in-process simulator outside
//! production. Routes are cached in Redis; when the provider fails the answer is a great-circle
//! estimate marked `estimated`.

pub mod model;

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::{
    adapters::external::{http::send_json, AdapterCache, AdapterError, AttemptError, Guard, Provenance, Source},
    config::Secret,
};

/// Adapter name: the `adapter` label, the actor's and the dependency's name.
pub const NAME: &str = "routing";
/// The only operation.
pub const OPERATION: &str = "route";
/// Most points in one request (OSRM's default `max-locations-viaroute` is far above; this keeps
/// URLs short).
pub const MAX_POINTS: usize = 25;

/// A point on Earth, WGS 84 degrees.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// Latitude, -90 to 90.
    pub lat: f64,
    /// Longitude, -180 to 180.
    pub lon: f64,
}

/// How the trip is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// By car.
    Driving,
    /// By bicycle.
    Cycling,
    /// On foot.
    Walking,
}

impl Profile {
    /// The OSRM profile name.
    pub fn as_osrm(self) -> &'static str {
        match self {
            Self::Driving => "driving",
            Self::Cycling => "cycling",
            Self::Walking => "foot",
        }
    }
}

/// A route request: the points in travel order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteRequest {
    /// How the trip is made.
    pub profile: Profile,
    /// 2 to [`MAX_POINTS`] points.
    pub points: Vec<Point>,
}

impl RouteRequest {
    fn check(&self) -> Result<(), String> {
        if !(2..=MAX_POINTS).contains(&self.points.len()) {
            return Err(format!("a route needs 2 to {MAX_POINTS} points"));
        }
        let valid = |p: &Point| {
            p.lat.is_finite()
                && p.lon.is_finite()
                && (-90.0..=90.0).contains(&p.lat)
                && (-180.0..=180.0).contains(&p.lon)
        };
        if !self.points.iter().all(valid) {
            return Err("a point is outside WGS 84 coordinates".into());
        }
        Ok(())
    }

    /// The OSRM coordinates path segment, `lon,lat;lon,lat`, 6 decimals (about 0.1 m).
    fn coordinates(&self) -> String {
        let mut out = String::with_capacity(self.points.len() * 24);
        for (i, p) in self.points.iter().enumerate() {
            if i > 0 {
                out.push(';');
            }
            let _ = write!(out, "{:.6},{:.6}", p.lon, p.lat);
        }
        out
    }
}

/// A route request made ready for the provider on the caller's side of the adapter: checked,
/// with its cache key and its URL written and parsed once, so that the adapter's own thread
/// spends its time on the call itself.
#[derive(Debug, Clone)]
pub struct PlannedRoute {
    request: RouteRequest,
    /// Cache key and URL; `None` when the simulator answers.
    call: Option<(String, reqwest::Url)>,
}

/// Makes [`PlannedRoute`]s for one adapter: knows where its provider is.
#[derive(Debug, Clone)]
pub struct RoutePlanner {
    base: Option<String>,
}

impl RoutePlanner {
    /// The request checked (refused when it is not a route OSRM can answer), with its key and URL.
    pub fn plan(&self, request: RouteRequest) -> Result<PlannedRoute, AdapterError> {
        request.check().map_err(|reason| AdapterError::Refused { adapter: NAME, reason })?;
        let Some(base) = &self.base else { return Ok(PlannedRoute { request, call: None }) };
        let (profile, coordinates) = (request.profile.as_osrm(), request.coordinates());
        // The query is part of the URL written once, rather than serialised again per attempt.
        let url = format!("{base}/route/v1/{profile}/{coordinates}?overview=false&alternatives=false");
        let url = reqwest::Url::parse(&url)
            .map_err(|e| AdapterError::Refused { adapter: NAME, reason: format!("no URL for this route: {e}") })?;
        Ok(PlannedRoute { request, call: Some((format!("{profile}:{coordinates}"), url)) })
    }
}

/// A route's figures and where they came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Route {
    /// Length, metres.
    pub distance_m: f64,
    /// Travel time, seconds.
    pub duration_s: f64,
    /// Whether the figures are an estimate rather than a routed answer.
    pub estimated: bool,
    /// Where they came from.
    pub provenance: Provenance,
}

/// What the cache keeps of a routed answer.
#[derive(Debug, Serialize, Deserialize)]
struct Cached {
    distance_m: f64,
    duration_s: f64,
}

#[derive(Debug, Deserialize)]
struct OsrmAnswer {
    code: String,
    #[serde(default)]
    routes: Vec<OsrmRoute>,
}

#[derive(Debug, Deserialize)]
struct OsrmRoute {
    distance: f64,
    duration: f64,
}

/// Who answers: the OSRM API or the simulator.
pub enum Backend {
    /// An OSRM HTTP API at `base`.
    Osrm {
        /// The adapter's client (its connection pool).
        client: reqwest::Client,
        /// Base URL, without a trailing slash.
        base: String,
        /// Bearer token for gateways in front of OSRM.
        api_key: Option<Secret>,
    },
    /// The in-process simulator (great-circle model).
    Simulator,
}

/// The routing adapter: protections, backend and cache.
pub struct RoutingAdapter {
    guard: Guard,
    backend: Backend,
    cache: AdapterCache,
}

impl RoutingAdapter {
    /// An adapter answering from `backend`.
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

    /// Where its requests go, for the callers to plan them.
    pub fn planner(&self) -> RoutePlanner {
        match &self.backend {
            Backend::Osrm { base, .. } => RoutePlanner { base: Some(base.clone()) },
            Backend::Simulator => RoutePlanner { base: None },
        }
    }

    /// The route through `planned`'s points: from the cache, the provider, or (when the provider
    /// fails) the great-circle estimate.
    pub async fn route(&self, planned: &PlannedRoute) -> Result<Route, AdapterError> {
        let request = &planned.request;
        let (client, api_key, (key, url)) = match (&self.backend, &planned.call) {
            (Backend::Osrm { client, api_key, .. }, Some(call)) => (client, api_key, call),
            _ => {
                let (distance_m, duration_s) = self
                    .guard
                    .call(OPERATION, true, || async { Ok(model::estimate(request.profile, &request.points)) })
                    .await?;
                return Ok(estimate(distance_m, duration_s, Source::Simulator));
            }
        };
        if let Some(hit) = self.cache.get::<Cached>(key).await {
            return Ok(routed(hit, Source::Cache));
        }
        let answer = self
            .guard
            .call(OPERATION, true, || {
                let mut call = client.get(url.clone());
                if let Some(key) = api_key {
                    call = call.bearer_auth(key.expose());
                }
                async move {
                    let answer: OsrmAnswer = send_json(call).await?;
                    match (answer.code.as_str(), answer.routes.first()) {
                        ("Ok", Some(r)) if r.distance.is_finite() && r.duration.is_finite() => {
                            Ok(Cached { distance_m: r.distance, duration_s: r.duration })
                        }
                        ("Ok", _) => Err(AttemptError::Malformed("no usable route in an Ok answer".into())),
                        (code, _) => Err(AttemptError::Refused(code.chars().take(40).collect())),
                    }
                }
            })
            .await;
        match answer {
            Ok(found) => {
                self.cache.put(key, &found).await;
                Ok(routed(found, Source::Provider))
            }
            Err(error) if error.allows_fallback() => {
                self.guard.count_fallback(OPERATION);
                tracing::warn!(adapter = NAME, error = %error, "routing provider failed: answering a great-circle estimate");
                let (distance_m, duration_s) = model::estimate(request.profile, &request.points);
                Ok(estimate(distance_m, duration_s, Source::Fallback))
            }
            Err(error) => Err(error),
        }
    }
}

fn routed(found: Cached, source: Source) -> Route {
    Route {
        distance_m: found.distance_m,
        duration_s: found.duration_s,
        estimated: false,
        provenance: Provenance { source, producer: "osrm".into(), estimated: false },
    }
}

fn estimate(distance_m: f64, duration_s: f64, source: Source) -> Route {
    Route {
        distance_m,
        duration_s,
        estimated: true,
        provenance: Provenance { source, producer: model::MODEL.into(), estimated: true },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paris() -> RouteRequest {
        RouteRequest {
            profile: Profile::Walking,
            points: vec![Point { lat: 48.8566, lon: 2.3522 }, Point { lat: 48.8606, lon: 2.3376 }],
        }
    }

    #[test]
    fn a_planned_route_carries_its_cache_key_and_the_providers_url() {
        let planner = RoutePlanner { base: Some("http://osrm.internal:5000/base".into()) };
        let (key, url) = planner.plan(paris()).unwrap().call.unwrap();
        assert_eq!(key, "foot:2.352200,48.856600;2.337600,48.860600");
        assert_eq!(
            url.as_str(),
            "http://osrm.internal:5000/base/route/v1/foot/2.352200,48.856600;2.337600,48.860600?overview=false&alternatives=false"
        );
        assert!(RoutePlanner { base: None }.plan(paris()).unwrap().call.is_none(), "the simulator needs no URL");
    }

    #[test]
    fn a_route_that_is_not_one_is_refused_before_the_adapter() {
        let planner = RoutePlanner { base: Some("http://osrm.internal:5000".into()) };
        for points in
            [vec![Point { lat: 1.0, lon: 1.0 }], vec![Point { lat: 91.0, lon: 0.0 }, Point { lat: 0.0, lon: 0.0 }]]
        {
            let refused = planner.plan(RouteRequest { profile: Profile::Driving, points }).unwrap_err();
            assert!(matches!(refused, AdapterError::Refused { adapter: NAME, .. }), "{refused:?}");
        }
    }
}
