//! The audit writer's protocol.

use actix::Message;

use crate::domain::audit::{AuditError, AuditEvent};

/// Queue a record for the audit log. Answered as soon as it is queued, not when it is durable;
/// `Err(BacklogFull)` when too many records already wait and this one was dropped. On a request
/// path, use [`AuditSink::record`](super::AuditSink::record) instead, which never blocks and
/// counts what it drops.
#[derive(Debug, Clone)]
pub struct Append(pub AuditEvent);

impl Message for Append {
    type Result = Result<(), AuditError>;
}

/// Write and fsync every record queued before this message. Answered once they are durable, or
/// with `Err(Unavailable)` when the log cannot be written now (the records stay queued and the
/// writer keeps retrying).
#[derive(Debug, Clone, Copy)]
pub struct Flush;

impl Message for Flush {
    type Result = Result<FlushReport, AuditError>;
}

/// What a [`Flush`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlushReport {
    /// Records this flush wrote and fsynced (0 when nothing was waiting).
    pub records_written: u64,
    /// Seq of the last durable record: the head of the chain (0 for an empty log).
    pub last_seq: u64,
}

/// The writer's own timer: write what is queued now, because the flush interval has passed since
/// the first queued record or a retry is due. Only the writer sends it.
#[derive(Debug, Clone, Copy)]
pub struct WriteQueued;

impl Message for WriteQueued {
    type Result = Result<(), AuditError>;
}

/// Records were pushed onto the writer's queue by an [`super::AuditSink`]: write them now if a
/// batch is full, otherwise within the flush interval.
#[derive(Debug, Clone, Copy)]
pub struct Queued;

impl Message for Queued {
    type Result = Result<(), AuditError>;
}

/// A caller waits until queued records are durable ([`super::AuditSink::durable`]): write what
/// is queued now instead of at the end of the flush interval. Records queued while that write
/// runs go out together in the next one. At most one is waiting in the mailbox at a time.
#[derive(Debug, Clone, Copy)]
pub struct Awaited;

impl Message for Awaited {
    type Result = Result<(), AuditError>;
}

/// The housekeeping actor's tick: close due denial windows, measure the volume, and record the
/// chain head when it is due. `Err` when the head could not be recorded.
#[derive(Debug, Clone, Copy)]
pub struct Housekeep;

impl Message for Housekeep {
    type Result = Result<(), crate::adapters::postgres::PostgresError>;
}
