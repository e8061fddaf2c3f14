//! Where the available drivers are: Redis' geo index, shared by every replica (one sorted set per
//! mode, `GEOADD` / `GEOSEARCH`), with the time each driver was last heard from in a sorted set
//! beside it; or process memory in the embedded mode. Only available drivers are in the index.

use std::{collections::HashMap, sync::Arc, time::Duration};

use parking_lot::Mutex;

use super::StoreError;
use crate::{
    adapters::redis::RedisConnection,
    domain::mobility::{DriverId, Mode, Point},
};

/// A driver found near a point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Nearby {
    /// The driver.
    pub driver: DriverId,
    /// Metres from the point searched around.
    pub distance_m: f64,
    /// When the driver was last heard from, milliseconds since the epoch (0 if unknown).
    pub seen_ms: i64,
}

/// The embedded index: per mode, each driver's position and when it was reported.
type MemIndex = HashMap<Mode, HashMap<DriverId, (Point, i64)>>;

/// Either index, chosen at start-up; cheap to clone.
#[derive(Clone)]
pub enum GeoIndex {
    /// Redis, under `prefix`.
    Redis {
        /// The connection.
        connection: RedisConnection,
        /// Key prefix (`<redis.key_prefix>mobility:`).
        prefix: Arc<str>,
        /// Most a command may take.
        timeout: Duration,
    },
    /// Process memory.
    Memory(Arc<Mutex<MemIndex>>),
}

impl GeoIndex {
    /// An index in process memory.
    pub fn memory() -> Self {
        Self::Memory(Arc::default())
    }

    fn keys(prefix: &str, mode: Mode) -> (String, String) {
        (format!("{prefix}geo:{}", mode.as_str()), format!("{prefix}seen"))
    }

    async fn run<T: redis::FromRedisValue>(
        connection: &RedisConnection,
        timeout: Duration,
        pipe: redis::Pipeline,
    ) -> Result<T, StoreError> {
        let call = async {
            let mut conn = connection.get().await.map_err(|e| StoreError::Unavailable(e.kind().into()))?;
            pipe.query_async::<T>(&mut conn).await.map_err(|_| StoreError::Unavailable("redis command failed".into()))
        };
        tokio::time::timeout(timeout, call).await.map_err(|_| StoreError::Unavailable("redis timeout".into()))?
    }

    /// Put `driver` of `mode` at `point`, heard from at `now_ms`.
    pub async fn put(&self, mode: Mode, driver: DriverId, point: Point, now_ms: i64) -> Result<(), StoreError> {
        match self {
            Self::Memory(m) => {
                let mut m = m.lock();
                for (other, drivers) in m.iter_mut() {
                    if *other != mode {
                        drivers.remove(&driver);
                    }
                }
                m.entry(mode).or_default().insert(driver, (point, now_ms));
                Ok(())
            }
            Self::Redis { connection, prefix, timeout } => {
                let (geo, seen) = Self::keys(prefix, mode);
                let member = driver.to_string();
                let mut pipe = redis::pipe();
                pipe.cmd("GEOADD").arg(&geo).arg(point.lon).arg(point.lat).arg(&member).ignore();
                pipe.cmd("ZADD").arg(&seen).arg(now_ms).arg(&member).ignore();
                Self::run::<()>(connection, *timeout, pipe).await
            }
        }
    }

    /// Take `driver` out of the index of every mode.
    pub async fn remove(&self, driver: DriverId) -> Result<(), StoreError> {
        match self {
            Self::Memory(m) => {
                for drivers in m.lock().values_mut() {
                    drivers.remove(&driver);
                }
                Ok(())
            }
            Self::Redis { connection, prefix, timeout } => {
                let member = driver.to_string();
                let mut pipe = redis::pipe();
                for mode in Mode::ALL {
                    pipe.cmd("ZREM").arg(Self::keys(prefix, mode).0).arg(&member).ignore();
                }
                pipe.cmd("ZREM").arg(format!("{prefix}seen")).arg(&member).ignore();
                Self::run::<()>(connection, *timeout, pipe).await
            }
        }
    }

    /// The drivers of `mode` within `radius_m` of `point`, nearest first, at most `count`.
    pub async fn near(&self, mode: Mode, point: Point, radius_m: u32, count: usize) -> Result<Vec<Nearby>, StoreError> {
        match self {
            Self::Memory(m) => {
                let m = m.lock();
                let mut found: Vec<Nearby> = m
                    .get(&mode)
                    .into_iter()
                    .flatten()
                    .map(|(driver, (at, seen))| Nearby {
                        driver: *driver,
                        distance_m: at.distance_m(point),
                        seen_ms: *seen,
                    })
                    .filter(|n| n.distance_m <= f64::from(radius_m))
                    .collect();
                found.sort_by(|a, b| a.distance_m.total_cmp(&b.distance_m).then(a.driver.cmp(&b.driver)));
                found.truncate(count);
                Ok(found)
            }
            Self::Redis { connection, prefix, timeout } => {
                let (geo, seen) = Self::keys(prefix, mode);
                let mut pipe = redis::pipe();
                pipe.cmd("GEOSEARCH")
                    .arg(&geo)
                    .arg("FROMLONLAT")
                    .arg(point.lon)
                    .arg(point.lat)
                    .arg("BYRADIUS")
                    .arg(radius_m)
                    .arg("m")
                    .arg("ASC")
                    .arg("COUNT")
                    .arg(count)
                    .arg("WITHDIST");
                let (hits,): (Vec<(String, f64)>,) = Self::run(connection, *timeout, pipe).await?;
                if hits.is_empty() {
                    return Ok(Vec::new());
                }
                let mut pipe = redis::pipe();
                let scores = pipe.cmd("ZMSCORE").arg(&seen);
                for (member, _) in &hits {
                    scores.arg(member);
                }
                let (seen,): (Vec<Option<f64>>,) = Self::run(connection, *timeout, pipe).await?;
                Ok(hits
                    .into_iter()
                    .zip(seen)
                    .filter_map(|((member, distance_m), seen)| {
                        let driver = DriverId::parse(&member)?;
                        Some(Nearby { driver, distance_m, seen_ms: seen.map_or(0, |s| s as i64) })
                    })
                    .collect())
            }
        }
    }
}
