//! Rate limiting with the generic cell rate algorithm (GCRA): `limit` requests per `period`, with
//! bursts up to `limit`. The state per key is one timestamp (the theoretical arrival time), kept
//! in Redis (shared by every instance, updated atomically by a script that uses Redis' clock) or
//! in process memory in embedded mode. Redis trouble fails open.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use parking_lot::Mutex;

use crate::adapters::redis::RedisConnection;

/// Requests allowed per period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Requests per period (and largest burst).
    pub limit: u32,
    /// Period.
    pub period: Duration,
}

/// The answer for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request may proceed.
    pub allowed: bool,
    /// The quota's limit.
    pub limit: u32,
    /// Requests still allowed right now.
    pub remaining: u32,
    /// Time until the quota is fully available again.
    pub reset: Duration,
    /// For a refused request, when to retry.
    pub retry_after: Duration,
}

/// GCRA step: given the stored theoretical arrival time (ms), decide and return the new one.
pub fn gcra(now_ms: f64, tat_ms: Option<f64>, quota: Quota) -> (Decision, Option<f64>) {
    let period = quota.period.as_millis() as f64;
    let interval = period / f64::from(quota.limit.max(1));
    let tat = tat_ms.unwrap_or(now_ms).max(now_ms);
    let new_tat = tat + interval;
    let allow_at = new_tat - period;
    if now_ms < allow_at {
        let decision = Decision {
            allowed: false,
            limit: quota.limit,
            remaining: 0,
            reset: Duration::from_millis((tat - now_ms).ceil() as u64),
            retry_after: Duration::from_millis((allow_at - now_ms).ceil() as u64),
        };
        return (decision, None);
    }
    let remaining = ((period - (new_tat - now_ms)) / interval).floor().max(0.0) as u32;
    let decision = Decision {
        allowed: true,
        limit: quota.limit,
        remaining,
        reset: Duration::from_millis((new_tat - now_ms).ceil() as u64),
        retry_after: Duration::ZERO,
    };
    (decision, Some(new_tat))
}

/// The same step as [`gcra`] for every key of KEYS (ARGV holds limit and period in ms per key),
/// run atomically inside Redis with Redis' own clock so that every instance shares one limit.
/// All or nothing: a request refused by one key consumes none of the others. Returns, per key,
/// {allowed, remaining, reset_ms, retry_ms}.
const GCRA_SCRIPT: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out, writes, all = {}, {}, true
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[2 * i - 1])
  local period = tonumber(ARGV[2 * i])
  local interval = period / limit
  local tat = tonumber(redis.call('GET', key) or now)
  if tat < now then tat = now end
  local new_tat = tat + interval
  local allow_at = new_tat - period
  if now < allow_at then
    all = false
    out[i] = {0, 0, math.ceil(tat - now), math.ceil(allow_at - now)}
  else
    out[i] = {1, math.floor((period - (new_tat - now)) / interval), math.ceil(new_tat - now), 0}
    writes[#writes + 1] = {key, new_tat, math.ceil(new_tat - now)}
  end
end
if all then
  for _, w in ipairs(writes) do redis.call('SET', w[1], tostring(w[2]), 'PX', w[3]) end
end
return out
"#;

/// Why a shared limit could not be consulted.
#[derive(Debug, thiserror::Error)]
pub enum LimiterError {
    /// Redis did not answer in time or failed.
    #[error("rate limit store unavailable")]
    Unavailable,
}

/// Where limiter state lives.
#[derive(Clone)]
pub enum Limiter {
    /// Shared by every instance.
    Redis(Arc<RedisLimiter>),
    /// This process only (embedded mode).
    Memory(Arc<Mutex<MemoryState>>),
}

/// Limiter state in Redis, reached over the service's one multiplexed Redis connection, the one
/// the adapter pool probes.
pub struct RedisLimiter {
    connection: RedisConnection,
    prefix: String,
    timeout: Duration,
    script: redis::Script,
}

/// In-process limiter state.
#[derive(Default)]
pub struct MemoryState {
    tats: HashMap<String, f64>,
    checks: u64,
}

impl Limiter {
    /// A limiter on the Redis server behind `connection`.
    pub fn redis(connection: RedisConnection, prefix: &str, timeout: Duration) -> Self {
        Self::Redis(Arc::new(RedisLimiter {
            connection,
            prefix: prefix.into(),
            timeout,
            script: redis::Script::new(GCRA_SCRIPT),
        }))
    }

    /// An in-process limiter.
    pub fn memory() -> Self {
        Self::Memory(Arc::default())
    }

    /// Count one request against every `(key, quota)` at once: all allowed, or none consumed.
    pub async fn check(&self, checks: &[(String, Quota)]) -> Result<Vec<Decision>, LimiterError> {
        match self {
            Self::Redis(r) => {
                tokio::time::timeout(r.timeout, r.check(checks)).await.map_err(|_| LimiterError::Unavailable)?
            }
            Self::Memory(state) => {
                let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs_f64() * 1000.0;
                let mut state = state.lock();
                state.checks += 1;
                if state.checks % 4096 == 0 {
                    state.tats.retain(|_, tat| *tat > now);
                }
                let steps: Vec<_> =
                    checks.iter().map(|(key, quota)| gcra(now, state.tats.get(key).copied(), *quota)).collect();
                if steps.iter().all(|(d, _)| d.allowed) {
                    for ((key, _), (_, tat)) in checks.iter().zip(&steps) {
                        if let Some(tat) = tat {
                            state.tats.insert(key.clone(), *tat);
                        }
                    }
                }
                Ok(steps.into_iter().map(|(d, _)| d).collect())
            }
        }
    }
}

impl RedisLimiter {
    async fn check(&self, checks: &[(String, Quota)]) -> Result<Vec<Decision>, LimiterError> {
        let mut conn = self.connection.get().await.map_err(|_| LimiterError::Unavailable)?;
        let mut invocation = self.script.prepare_invoke();
        for (key, quota) in checks {
            invocation.key(format!("{}rl:{key}", self.prefix)).arg(quota.limit).arg(quota.period.as_millis() as u64);
        }
        let answers: Vec<(i64, i64, i64, i64)> =
            invocation.invoke_async(&mut conn).await.map_err(|_| LimiterError::Unavailable)?;
        Ok(checks
            .iter()
            .zip(answers)
            .map(|((_, quota), (allowed, remaining, reset, retry))| Decision {
                allowed: allowed == 1,
                limit: quota.limit,
                remaining: remaining.max(0) as u32,
                reset: Duration::from_millis(reset.max(0) as u64),
                retry_after: Duration::from_millis(retry.max(0) as u64),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const Q: Quota = Quota { limit: 5, period: Duration::from_secs(60) };

    fn run(times: &[f64]) -> Vec<Decision> {
        let mut tat = None;
        times
            .iter()
            .map(|&now| {
                let (d, new) = gcra(now, tat, Q);
                if new.is_some() {
                    tat = new;
                }
                d
            })
            .collect()
    }

    #[test]
    fn a_burst_up_to_the_limit_passes_then_requests_are_refused() {
        let d = run(&[0.0; 7]);
        assert!(d[..5].iter().all(|d| d.allowed));
        assert_eq!(d.iter().map(|d| d.remaining).take(5).collect::<Vec<_>>(), vec![4, 3, 2, 1, 0]);
        assert!(!d[5].allowed && !d[6].allowed);
        assert_eq!(d[5].retry_after, Duration::from_secs(12));
    }

    #[test]
    fn capacity_returns_at_the_emission_rate() {
        let d = run(&[0.0, 0.0, 0.0, 0.0, 0.0, 11_999.0, 12_000.0]);
        assert!(!d[5].allowed);
        assert!(d[6].allowed);
    }
}
