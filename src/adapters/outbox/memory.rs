//! The outbox in process memory, for the embedded mode: the in-memory stores append to it under
//! their own lock, so a change and its events are kept together; nothing survives the process.

use std::{collections::VecDeque, sync::Arc};

use chrono::{DateTime, Utc};
use parking_lot::Mutex;

use super::{OutboxBatch, OutboxLag};
use crate::domain::events::DomainEvent;

#[derive(Default)]
struct Batches {
    queue: VecDeque<OutboxBatch>,
    next: i64,
}

/// The in-memory outbox; clones share it.
#[derive(Clone, Default)]
pub struct MemOutbox {
    batches: Arc<Mutex<Batches>>,
}

impl MemOutbox {
    /// An empty outbox.
    pub fn new() -> Self {
        Self::default()
    }

    /// Keep one committed batch's events (nothing if there are none).
    pub fn append(&self, created_at: DateTime<Utc>, events: Vec<DomainEvent>) {
        if events.is_empty() {
            return;
        }
        let mut batches = self.batches.lock();
        batches.next += 1;
        let id = batches.next;
        batches.queue.push_back(OutboxBatch { id, created_at, events });
    }

    /// The oldest `limit` batches.
    pub fn fetch(&self, limit: usize) -> Vec<OutboxBatch> {
        self.fetch_after(0, limit)
    }

    /// The oldest `limit` batches after batch `after`.
    pub fn fetch_after(&self, after: i64, limit: usize) -> Vec<OutboxBatch> {
        self.batches.lock().queue.iter().filter(|b| b.id > after).take(limit).cloned().collect()
    }

    /// Forget published batches.
    pub fn delete(&self, ids: &[i64]) {
        self.batches.lock().queue.retain(|b| !ids.contains(&b.id));
    }

    /// How far the outbox is behind.
    pub fn lag(&self) -> OutboxLag {
        let batches = self.batches.lock();
        OutboxLag {
            events: batches.queue.iter().map(|b| b.events.len() as u64).sum(),
            oldest: batches.queue.front().map(|b| b.created_at),
        }
    }
}
