//! Denials without a token cost nothing to send, so each one cannot be a record of its own: the
//! denials of one client for one action within a window become one record carrying their
//! `count` (the first denial's time, path and request id stand for the rest).

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};

use super::AuditEvent;

/// What denials are grouped by: the client, the action (method and route template) and the
/// status.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DenialKey {
    /// Client address; `None` for the overflow group once too many clients are open.
    pub client_ip: Option<String>,
    /// Method and route template.
    pub action: String,
    /// HTTP status.
    pub status: u16,
}

#[derive(Debug)]
struct Pending {
    first: AuditEvent,
    count: u64,
    closes: DateTime<Utc>,
}

/// Denials waiting for their window to close.
#[derive(Debug)]
pub struct DenialAggregator {
    window: Duration,
    max_groups: usize,
    open: HashMap<DenialKey, Pending>,
    next_close: Option<DateTime<Utc>>,
}

impl DenialAggregator {
    /// Windows of `window`; at most `max_groups` clients open at once, beyond which denials are
    /// counted in one group per action without a client address. A zero window aggregates
    /// nothing.
    pub fn new(window: std::time::Duration, max_groups: usize) -> Self {
        Self {
            window: Duration::from_std(window).unwrap_or(Duration::MAX),
            max_groups: max_groups.max(1),
            open: HashMap::new(),
            next_close: None,
        }
    }

    /// Count `event`, a denial; returns it back when there is no window to hold it in.
    pub fn add(&mut self, event: AuditEvent) -> Option<AuditEvent> {
        if self.window.is_zero() {
            return Some(event);
        }
        let mut key =
            DenialKey { client_ip: event.client_ip.clone(), action: event.action.clone(), status: event.status };
        if !self.open.contains_key(&key) && self.open.len() >= self.max_groups {
            key.client_ip = None;
        }
        let closes = event.time.checked_add_signed(self.window).unwrap_or(DateTime::<Utc>::MAX_UTC);
        let overflow = key.client_ip.is_none();
        let pending = self.open.entry(key).or_insert_with(|| {
            let mut first = event;
            if overflow {
                first.client_ip = None;
            }
            Pending { first, count: 0, closes }
        });
        pending.count += 1;
        self.next_close = Some(self.next_close.map_or(closes, |n| n.min(closes)));
        None
    }

    /// Whether some window closes at or before `now`.
    pub fn is_due(&self, now: DateTime<Utc>) -> bool {
        self.next_close.is_some_and(|n| n <= now)
    }

    /// The records of the windows closed at `now`.
    pub fn due(&mut self, now: DateTime<Utc>) -> Vec<AuditEvent> {
        if !self.is_due(now) {
            return Vec::new();
        }
        let closed: Vec<DenialKey> =
            self.open.iter().filter(|(_, p)| p.closes <= now).map(|(k, _)| k.clone()).collect();
        let records = closed.into_iter().filter_map(|k| self.open.remove(&k)).map(Self::record).collect();
        self.next_close = self.open.values().map(|p| p.closes).min();
        records
    }

    /// The records of every open window, closed now (at shutdown).
    pub fn drain(&mut self) -> Vec<AuditEvent> {
        self.next_close = None;
        self.open.drain().map(|(_, p)| Self::record(p)).collect()
    }

    /// Denials held.
    pub fn held(&self) -> u64 {
        self.open.values().map(|p| p.count).sum()
    }

    fn record(p: Pending) -> AuditEvent {
        let mut event = p.first;
        event.count = (p.count > 1).then_some(p.count);
        event
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::audit::OUTCOME_DENIED;
    use chrono::TimeZone;

    fn denial(ip: &str, second: i64) -> AuditEvent {
        AuditEvent {
            time: Utc.timestamp_opt(1_700_000_000 + second, 0).single().expect("time"),
            subject: None,
            action: "GET /api/v1/system/actors".into(),
            resource: "/api/v1/system/actors".into(),
            outcome: OUTCOME_DENIED.into(),
            status: 401,
            request_id: Some(format!("req-{second}")),
            client_ip: Some(ip.into()),
            count: None,
            money: None,
            reason: None,
            subject_index: None,
        }
    }

    fn at(second: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + second, 0).single().expect("time")
    }

    #[test]
    fn denials_of_one_client_in_a_window_become_one_record_with_their_count() {
        let mut agg = DenialAggregator::new(std::time::Duration::from_secs(10), 100);
        for s in 0..7 {
            assert_eq!(agg.add(denial("203.0.113.1", s)), None);
        }
        agg.add(denial("203.0.113.2", 3));
        assert!(agg.due(at(9)).is_empty(), "the first window is still open");
        let records = agg.due(at(10));
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].count, Some(7));
        assert_eq!(records[0].request_id.as_deref(), Some("req-0"), "the first denial stands for the rest");
        assert_eq!(records[0].client_ip.as_deref(), Some("203.0.113.1"));
        let single = agg.due(at(13));
        assert_eq!((single.len(), single[0].count), (1, None), "a single denial carries no count");
        assert!(agg.due(at(100)).is_empty());
        assert_eq!(agg.held(), 0);
    }

    #[test]
    fn too_many_clients_share_one_group_without_an_address() {
        let mut agg = DenialAggregator::new(std::time::Duration::from_secs(10), 2);
        for i in 0..50 {
            agg.add(denial(&format!("198.51.100.{i}"), 1));
        }
        let mut records = agg.drain();
        records.sort_by_key(|r| r.count);
        assert_eq!(records.len(), 3, "{records:?}");
        assert_eq!(records[2].count, Some(48));
        assert_eq!(records[2].client_ip, None);
    }

    #[test]
    fn a_zero_window_aggregates_nothing() {
        let mut agg = DenialAggregator::new(std::time::Duration::ZERO, 10);
        assert!(agg.add(denial("203.0.113.1", 0)).is_some());
    }
}
