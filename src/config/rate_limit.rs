//! `rate_limit`: limits per route group, per subject and per client IP.

use std::{fmt, net::IpAddr, str::FromStr};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{Section, SettingsProblems, ValidationContext};

/// Rate limits, per route group, per subject and per client IP.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitSettings {
    /// Apply rate limits.
    pub enabled: bool,
    /// Networks of the proxies in front of the service, as CIDRs (TRUSTED_PROXIES,
    /// comma-separated). `X-Forwarded-For` is read only from a peer in one of them, and the
    /// client is its right-most address that is not; empty (the default): the header is ignored.
    pub trusted_proxies: Vec<IpNetwork>,
    /// Longest wait for Redis before failing open, milliseconds.
    pub redis_timeout_ms: u64,
    /// Reads under `/api`.
    pub api_read: RateLimitGroup,
    /// Writes under `/api`.
    pub api_write: RateLimitGroup,
    /// `POST /graphql`.
    pub graphql: RateLimitGroup,
    /// Follows and follow requests one subject makes (REST and GraphQL), on top of `api_write`.
    pub social_follow: RateLimitGroup,
    /// Posts and comments one subject writes (REST and GraphQL), on top of `api_write`.
    pub social_post: RateLimitGroup,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            trusted_proxies: Vec::new(),
            redis_timeout_ms: 50,
            api_read: RateLimitGroup { per_subject: 1200, per_ip: 2400, period_secs: 60 },
            api_write: RateLimitGroup { per_subject: 300, per_ip: 600, period_secs: 60 },
            graphql: RateLimitGroup { per_subject: 600, per_ip: 1200, period_secs: 60 },
            social_follow: RateLimitGroup { per_subject: 200, per_ip: 0, period_secs: 3600 },
            social_post: RateLimitGroup { per_subject: 100, per_ip: 0, period_secs: 3600 },
        }
    }
}

/// Limits of one route group: requests allowed per period (0 = unlimited), with bursts up to the
/// limit.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitGroup {
    /// Requests per period for one authenticated subject.
    pub per_subject: u32,
    /// Requests per period from one client IP.
    pub per_ip: u32,
    /// Period, seconds.
    pub period_secs: u64,
}

/// A network in CIDR notation (`10.0.0.0/8`, `fd00::/8`); a bare address is a network of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNetwork {
    address: IpAddr,
    prefix: u8,
}

impl IpNetwork {
    /// Whether `ip` is in the network (an IPv4-mapped IPv6 address counts as its IPv4 address).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.address, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for IpNetwork {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || format!("`{text}` is not a network in CIDR notation (e.g. 10.0.0.0/8)");
        let (address, prefix) = match text.trim().split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text.trim(), None),
        };
        let address: IpAddr = address.parse().map_err(|_| invalid())?;
        let max = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(invalid)?,
        };
        Ok(Self { address, prefix })
    }
}

impl fmt::Display for IpNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix)
    }
}

impl Serialize for IpNetwork {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for IpNetwork {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?.parse().map_err(serde::de::Error::custom)
    }
}

impl Section for RateLimitSettings {
    fn validate(&self, _: &ValidationContext, problems: &mut SettingsProblems) {
        for (name, group) in [
            ("api_read", self.api_read),
            ("api_write", self.api_write),
            ("graphql", self.graphql),
            ("social_follow", self.social_follow),
            ("social_post", self.social_post),
        ] {
            if group.period_secs == 0 {
                problems.add(
                    &format!("rate_limit.{name}.period_secs"),
                    "the period must be at least 1 second",
                    "for example 60",
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_parse_and_contain_their_addresses() {
        let net: IpNetwork = "10.0.0.0/8".parse().unwrap();
        assert!(net.contains("10.200.3.4".parse().unwrap()));
        assert!(!net.contains("11.0.0.1".parse().unwrap()));
        assert!(net.contains("::ffff:10.1.2.3".parse().unwrap()), "IPv4-mapped IPv6 counts as IPv4");
        let one: IpNetwork = "192.0.2.7".parse().unwrap();
        assert!(one.contains("192.0.2.7".parse().unwrap()) && !one.contains("192.0.2.8".parse().unwrap()));
        let all: IpNetwork = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("203.0.113.1".parse().unwrap()));
        let v6: IpNetwork = "fd00::/8".parse().unwrap();
        assert!(v6.contains("fd12::1".parse().unwrap()) && !v6.contains("fe80::1".parse().unwrap()));
        for bad in ["10.0.0.0/33", "10.0.0/8", "proxy", "::/129", ""] {
            assert!(bad.parse::<IpNetwork>().is_err(), "{bad}");
        }
    }
}
