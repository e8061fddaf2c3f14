//! Logs, spans and metrics: subscriber set-up, the OTLP exporter, and every metric name the
//! service exports, each described once.

mod json;
mod writer;

use std::{collections::HashMap, sync::Arc};

use anyhow::Context as _;
use metrics::{describe_counter, describe_gauge, describe_histogram, Counter, Gauge, Histogram, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Subscriber;
use tracing_subscriber::{layer::SubscriberExt, registry::LookupSpan, util::SubscriberInitExt, EnvFilter, Layer};

pub use json::{JsonLines, JsonSpanFields};
pub use writer::{LogWriter, LogWriterGuard};

use crate::config::{LogFormat, Settings};

/// Messages handled by an actor, by message type and outcome (ok, error, panic, fatal, rejected).
pub const ACTOR_MESSAGES_TOTAL: &str = "beryl_actor_messages_total";
/// Time an actor spent handling one message, until its answer was ready.
pub const ACTOR_PROCESSING_SECONDS: &str = "beryl_actor_processing_seconds";
/// Time a message waited in an actor's mailbox before handling started.
pub const ACTOR_MAILBOX_SECONDS: &str = "beryl_actor_mailbox_seconds";
/// Messages waiting in an actor's mailbox.
pub const ACTOR_MAILBOX_DEPTH: &str = "beryl_actor_mailbox_depth";
/// Restarts of an actor since the process started.
pub const ACTOR_RESTARTS_TOTAL: &str = "beryl_actor_restarts_total";
/// Failures of an actor by reason (panic, fatal, mailbox_closed).
pub const ACTOR_FAILURES_TOTAL: &str = "beryl_actor_failures_total";
/// 1 while an actor is running, 0 otherwise.
pub const ACTOR_UP: &str = "beryl_actor_up";
/// 1 for the state an actor is in (starting, running, restarting, failed, stopped), 0 for the others.
pub const ACTOR_STATE: &str = "beryl_actor_state";
/// Messages sent without waiting for an answer that could not be delivered.
pub const ACTOR_DROPPED_TOTAL: &str = "beryl_actor_dropped_messages_total";
/// 1 while the process is ready for traffic.
pub const HEALTH_READY: &str = "beryl_health_ready";
/// 1 while the actor system is live.
pub const HEALTH_LIVE: &str = "beryl_health_live";
/// 1 while a dependency is reported up by the actor that owns it.
pub const DEPENDENCY_UP: &str = "beryl_dependency_up";
/// HTTP requests answered, by method, route template and status.
pub const HTTP_REQUESTS_TOTAL: &str = "beryl_http_requests_total";
/// HTTP request duration, by method, route template and status.
pub const HTTP_REQUEST_DURATION_SECONDS: &str = "beryl_http_request_duration_seconds";
/// HTTP requests being handled.
pub const HTTP_REQUESTS_IN_FLIGHT: &str = "beryl_http_requests_in_flight";
/// Always 1; labels carry the version, environment and role.
pub const BUILD_INFO: &str = "beryl_build_info";
/// Requests refused for a missing or invalid token, by error code.
pub const AUTH_FAILURES_TOTAL: &str = "beryl_auth_failures_total";
/// Times this replica could not read the shared list of revoked tokens (it keeps the last one).
pub const AUTH_REVOCATION_SYNC_FAILURES_TOTAL: &str = "beryl_auth_revocation_sync_failures_total";
/// Requests refused by a rate limit, by route group and what was limited (subject or ip).
pub const RATELIMIT_LIMITED_TOTAL: &str = "beryl_ratelimit_limited_total";
/// Requests let through without a rate-limit decision because the shared store was unavailable.
pub const RATELIMIT_FAIL_OPEN_TOTAL: &str = "beryl_ratelimit_fail_open_total";
/// State-changing requests refused because they could not be audited (fail-closed policy).
pub const AUDIT_REFUSED_TOTAL: &str = "beryl_audit_refused_requests_total";
/// Audit records written to the audit log and fsynced.
pub const AUDIT_RECORDS_WRITTEN_TOTAL: &str = "beryl_audit_records_written_total";
/// Failed audit log operations, by stage (open, recover, write, sync, rotate); each is retried.
pub const AUDIT_WRITE_FAILURES_TOTAL: &str = "beryl_audit_write_failures_total";
/// Audit records per write and fsync.
pub const AUDIT_BATCH_SIZE: &str = "beryl_audit_batch_size";
/// Time to write and fsync one batch of audit records.
pub const AUDIT_FLUSH_SECONDS: &str = "beryl_audit_flush_seconds";
/// Audit records lost before reaching the log, by reason (mailbox, backlog, encoding, shutdown).
pub const AUDIT_DROPPED_TOTAL: &str = "beryl_audit_dropped_total";
/// Seq of the last audit record written and fsynced: the chain head, to compare with `audit verify`.
pub const AUDIT_LAST_SEQ: &str = "beryl_audit_last_seq";
/// Free bytes on the audit log's volume (for unprivileged writers).
pub const AUDIT_VOLUME_FREE_BYTES: &str = "beryl_audit_volume_free_bytes";
/// Size in bytes of the audit log's volume.
pub const AUDIT_VOLUME_SIZE_BYTES: &str = "beryl_audit_volume_size_bytes";
/// Rotated audit files removed after their retention.
pub const AUDIT_FILES_REMOVED_TOTAL: &str = "beryl_audit_files_removed_total";
/// Denied requests counted into an aggregated audit record instead of a record of their own.
pub const AUDIT_DENIALS_AGGREGATED_TOTAL: &str = "beryl_audit_denials_aggregated_total";
/// Failures to record the audit chain head in PostgreSQL.
pub const AUDIT_HEAD_FAILURES_TOTAL: &str = "beryl_audit_head_record_failures_total";
/// Committed changes answered 503 because their audit record was not durable in time (fail_closed).
pub const AUDIT_UNCONFIRMED_TOTAL: &str = "beryl_audit_unconfirmed_total";
/// Business operations by domain, operation and status (applied, refused, failed).
pub const BUSINESS_OPERATIONS_TOTAL: &str = "beryl_business_operations_total";
/// Sum of all wallet balances minus money that entered and left the ledger; 0 unless money was
/// created or lost.
pub const LEDGER_CONSERVATION_GAP: &str = "beryl_ledger_conservation_gap_minor_units";
/// Commands committed together by the ledger writer.
pub const LEDGER_BATCH_SIZE: &str = "beryl_ledger_batch_size";
/// Commands the ledger writer refused because its queue was full.
pub const LEDGER_OVERLOADED_TOTAL: &str = "beryl_ledger_overloaded_total";
/// Expired idempotency keys forgotten by the purger.
pub const IDEMPOTENCY_KEYS_PURGED_TOTAL: &str = "beryl_idempotency_keys_purged_total";
/// Erasures of a data subject's personal data completed.
pub const PRIVACY_ERASURES_TOTAL: &str = "beryl_privacy_erasures_total";
/// Personal data removed by retention, by category.
pub const PRIVACY_RETENTION_REMOVED_TOTAL: &str = "beryl_privacy_retention_removed_total";
/// Rounds of the retention actor, by outcome (`ok`, `failed`).
pub const PRIVACY_RETENTION_ROUNDS_TOTAL: &str = "beryl_privacy_retention_rounds_total";
/// Reads of another subject's personal data by an administrator, with a reason given.
pub const PRIVACY_ADMIN_READS_TOTAL: &str = "beryl_privacy_admin_reads_total";
/// Pending holds released by the sweeper because their time had passed.
pub const HOLDS_EXPIRED_TOTAL: &str = "beryl_holds_expired_total";
/// Ride quotes given, by mode and where the route came from.
pub const MOBILITY_QUOTES_TOTAL: &str = "beryl_mobility_quotes_total";
/// Drivers by mode and availability, as stored (every replica reports the same figures).
pub const MOBILITY_DRIVERS: &str = "beryl_mobility_drivers";
/// Rides by state and mode, as stored (every replica reports the same figures).
pub const MOBILITY_RIDES: &str = "beryl_mobility_rides";
/// Time from a ride's request to a driver's acceptance, by mode.
pub const MOBILITY_DISPATCH_SECONDS: &str = "beryl_mobility_dispatch_seconds";
/// Dispatch steps, by outcome (done, offered, waiting, nobody, failed).
pub const MOBILITY_DISPATCH_STEPS_TOTAL: &str = "beryl_mobility_dispatch_steps_total";
/// Rides that expired without a driver, by mode.
pub const MOBILITY_RIDES_EXPIRED_TOTAL: &str = "beryl_mobility_rides_expired_total";
/// Fares and cancellation fees captured, minor units, by currency.
pub const MOBILITY_FARES_TOTAL: &str = "beryl_mobility_fares_minor_units_total";
/// Rides over whose payment step (capture, payout or release) is still due, as stored.
pub const MOBILITY_PAYMENTS_DUE: &str = "beryl_mobility_payments_due";
/// Age of the oldest ride payment step still due, seconds (0 when none is).
pub const MOBILITY_PAYMENTS_DUE_AGE: &str = "beryl_mobility_payments_due_age_seconds";
/// ESG activities, by source (ride, report) and result (recorded, duplicate, refused, ignored).
pub const ESG_ACTIVITIES_TOTAL: &str = "beryl_esg_activities_total";
/// Grams of CO2e of the activities recorded, by flow (emitted, avoided).
pub const ESG_CO2E_GRAMS_TOTAL: &str = "beryl_esg_co2e_grams_total";
/// Activities priced, by who answered for the emission factor (provider, cache, simulator,
/// fallback, none).
pub const ESG_FACTORS_TOTAL: &str = "beryl_esg_factors_total";
/// Activities recorded together by the ESG writer.
pub const ESG_BATCH_SIZE: &str = "beryl_esg_batch_size";
/// Scores computed (0 to 100).
pub const ESG_SCORE: &str = "beryl_esg_score";
/// How far behind the ride stream the ESG projections are: the age of the last completed ride
/// credited, seconds.
pub const ESG_PROJECTION_LAG_SECONDS: &str = "beryl_esg_projection_lag_seconds";
/// Driver position reports, by outcome.
pub const MOBILITY_LOCATION_REPORTS_TOTAL: &str = "beryl_mobility_location_reports_total";
/// Social profiles written, by result (created, updated).
pub const SOCIAL_PROFILES_WRITTEN_TOTAL: &str = "beryl_social_profiles_written_total";
/// Changes to the social graph, by change (followed, requested, unfollowed, accepted, declined,
/// blocked, unblocked, muted, unmuted).
pub const SOCIAL_GRAPH_CHANGES_TOTAL: &str = "beryl_social_graph_changes_total";
/// Posts, reactions and comments, by action (created, edited, deleted, reacted, unreacted,
/// commented, comment_deleted).
pub const SOCIAL_POSTS_TOTAL: &str = "beryl_social_posts_total";
/// Timelines a post was written into when it was made (its author's followers and the author).
pub const SOCIAL_FANOUT_SIZE: &str = "beryl_social_fanout_size";
/// Home timeline reads by what the cache gave: hit, miss (rebuilt from PostgreSQL) or error
/// (read from PostgreSQL).
pub const SOCIAL_TIMELINE_CACHE_TOTAL: &str = "beryl_social_timeline_cache_total";
/// Timeline pages read, by timeline (home, profile).
pub const SOCIAL_TIMELINE_READS_TOTAL: &str = "beryl_social_timeline_reads_total";
/// Activities consumed from other domains' events, by kind (ride, milestone) and result (made
/// into a post, duplicate: made before, not_shared: the user has no profile or does not share
/// that kind).
pub const SOCIAL_ACTIVITY_POSTS_TOTAL: &str = "beryl_social_activity_posts_total";
/// Reports filed by users, by target (post, profile).
pub const SOCIAL_REPORTS_TOTAL: &str = "beryl_social_reports_total";
/// Moderation actions by administrators, by action (hidden, unhidden, actioned, dismissed).
pub const SOCIAL_MODERATION_ACTIONS_TOTAL: &str = "beryl_social_moderation_actions_total";
/// Events published to the broker and acknowledged, by topic.
pub const EVENTS_PUBLISHED_TOTAL: &str = "beryl_events_published_total";
/// Inbound events received, by topic and partition.
pub const EVENTS_CONSUMED_TOTAL: &str = "beryl_events_consumed_total";
/// Inbound events applied, by topic, actor and result (applied, duplicate).
pub const EVENTS_APPLIED_TOTAL: &str = "beryl_events_applied_total";
/// Failed attempts to apply an inbound event (each one retried) or publish an event, by topic and
/// reason.
pub const EVENTS_FAILED_TOTAL: &str = "beryl_events_failed_total";
/// Inbound partitions paused while one of their events waits for a transient failure to pass.
pub const EVENTS_PAUSED_PARTITIONS: &str = "beryl_events_paused_partitions";
/// Inbound events sent to the dead-letter topic, by topic and reason.
pub const EVENTS_DEAD_LETTERED_TOTAL: &str = "beryl_events_dead_lettered_total";
/// Messages between the consumer group's position and the end of a partition (librdkafka).
pub const EVENTS_CONSUMER_LAG: &str = "beryl_events_consumer_lag_messages";
/// Age of the message the consumer last received on a partition, while it has a lag.
pub const EVENTS_CONSUMER_LAG_SECONDS: &str = "beryl_events_consumer_lag_seconds";
/// Events stored in the outbox and not yet acknowledged by the broker.
pub const OUTBOX_LAG_EVENTS: &str = "beryl_outbox_lag_events";
/// Age of the oldest event not yet published.
pub const OUTBOX_LAG_SECONDS: &str = "beryl_outbox_lag_seconds";
/// Calls to an external API, by adapter, operation and outcome (ok, error, timeout,
/// rejected_open_circuit, rejected_bulkhead, fallback).
pub const ADAPTER_CALLS_TOTAL: &str = "beryl_adapter_calls_total";
/// Time of one call to an external API, retries included, by adapter and operation.
pub const ADAPTER_CALL_DURATION_SECONDS: &str = "beryl_adapter_call_duration_seconds";
/// State of an adapter's circuit breaker: 0 closed, 1 half-open, 2 open.
pub const ADAPTER_CIRCUIT_STATE: &str = "beryl_adapter_circuit_state";
/// Retries of calls to an external API, by adapter and operation.
pub const ADAPTER_RETRIES_TOTAL: &str = "beryl_adapter_retries_total";
/// Lookups in an adapter's shared cache, by adapter and result (hit, miss, error).
pub const ADAPTER_CACHE_LOOKUPS_TOTAL: &str = "beryl_adapter_cache_lookups_total";
/// Payments webhook deliveries, by outcome (applied, duplicate, ignored, unsigned,
/// bad_signature, stale, replayed, malformed, mismatch, failed).
pub const PAYMENTS_WEBHOOKS_TOTAL: &str = "beryl_payments_webhooks_total";
/// Payouts reaching a status (pending: not confirmed by the provider yet, in_transit, paid,
/// failed).
pub const PAYMENTS_PAYOUTS_TOTAL: &str = "beryl_payments_payouts_total";
/// Prefix of the process collector's metrics (CPU seconds, resident memory, threads, fds).
pub const PROCESS_PREFIX: &str = "beryl_";

const LATENCY_BUCKETS: &[f64] = &[
    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
    0.5, 1.0, 2.0, 5.0, 10.0,
];

/// Buckets of ESG scores: tens from 10 to 100.
const SCORE_BUCKETS: &[f64] = &[10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 100.0];

/// Buckets of the fan-out's size: timelines a post is written into.
const FANOUT_BUCKETS: &[f64] = &[1.0, 10.0, 100.0, 1_000.0, 5_000.0, 10_000.0, 50_000.0, 100_000.0];

/// Waiting for a driver takes seconds to minutes: an offer may time out (15 s by default) and go
/// to the next driver several times within the dispatch window.
const DISPATCH_BUCKETS: &[f64] =
    &[0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 180.0, 300.0];

/// Describe every metric once, with its unit.
pub fn describe_metrics() {
    describe_counter!(EVENTS_PUBLISHED_TOTAL, Unit::Count, "Events published and acknowledged, by topic.");
    describe_counter!(EVENTS_CONSUMED_TOTAL, Unit::Count, "Inbound events received, by topic and partition.");
    describe_counter!(EVENTS_APPLIED_TOTAL, Unit::Count, "Inbound events applied, by topic, actor and result.");
    describe_counter!(EVENTS_FAILED_TOTAL, Unit::Count, "Failed event applications or publications, by reason.");
    describe_counter!(EVENTS_DEAD_LETTERED_TOTAL, Unit::Count, "Inbound events sent to the dead-letter topic.");
    describe_gauge!(EVENTS_PAUSED_PARTITIONS, Unit::Count, "Inbound partitions paused until the ledger answers again.");
    describe_gauge!(EVENTS_CONSUMER_LAG, Unit::Count, "Messages the consumer group is behind, by partition.");
    describe_gauge!(EVENTS_CONSUMER_LAG_SECONDS, Unit::Seconds, "Age of the last message received while behind.");
    describe_gauge!(OUTBOX_LAG_EVENTS, Unit::Count, "Events committed and not yet acknowledged by the broker.");
    describe_gauge!(OUTBOX_LAG_SECONDS, Unit::Seconds, "Age of the oldest event not yet published.");
    describe_counter!(ACTOR_MESSAGES_TOTAL, Unit::Count, "Messages handled by an actor, by message type and outcome.");
    describe_histogram!(ACTOR_PROCESSING_SECONDS, Unit::Seconds, "Time an actor spent handling one message.");
    describe_histogram!(ACTOR_MAILBOX_SECONDS, Unit::Seconds, "Time a message waited in an actor's mailbox.");
    describe_gauge!(ACTOR_MAILBOX_DEPTH, Unit::Count, "Messages waiting in an actor's mailbox.");
    describe_counter!(ACTOR_RESTARTS_TOTAL, Unit::Count, "Restarts of an actor since the process started.");
    describe_counter!(ACTOR_FAILURES_TOTAL, Unit::Count, "Failures of an actor by reason.");
    describe_gauge!(ACTOR_UP, "1 while the actor is running.");
    describe_gauge!(ACTOR_STATE, "1 for the supervision state the actor is in.");
    describe_counter!(ACTOR_DROPPED_TOTAL, Unit::Count, "Fire-and-forget messages that could not be delivered.");
    describe_gauge!(HEALTH_READY, "1 while the process is ready for traffic.");
    describe_gauge!(HEALTH_LIVE, "1 while the actor system is live.");
    describe_gauge!(DEPENDENCY_UP, "1 while the dependency is reported up by its owning actor.");
    describe_counter!(HTTP_REQUESTS_TOTAL, Unit::Count, "HTTP requests answered.");
    describe_histogram!(HTTP_REQUEST_DURATION_SECONDS, Unit::Seconds, "HTTP request duration.");
    describe_gauge!(HTTP_REQUESTS_IN_FLIGHT, Unit::Count, "HTTP requests being handled.");
    describe_gauge!(BUILD_INFO, "Always 1; labels carry version, environment and role.");
    describe_counter!(BUSINESS_OPERATIONS_TOTAL, Unit::Count, "Business operations by domain, operation and status.");
    describe_gauge!(
        LEDGER_CONSERVATION_GAP,
        "Sum of wallet balances minus net external flows; 0 when money is conserved."
    );
    describe_histogram!(LEDGER_BATCH_SIZE, Unit::Count, "Commands committed in one ledger transaction.");
    describe_counter!(
        LEDGER_OVERLOADED_TOTAL,
        Unit::Count,
        "Commands refused because the ledger writer's queue was full."
    );
    describe_counter!(IDEMPOTENCY_KEYS_PURGED_TOTAL, Unit::Count, "Expired idempotency keys forgotten by the purger.");
    describe_counter!(PRIVACY_ERASURES_TOTAL, Unit::Count, "Erasures of a data subject's personal data completed.");
    describe_counter!(PRIVACY_RETENTION_REMOVED_TOTAL, Unit::Count, "Personal data removed by retention, by category.");
    describe_counter!(
        PRIVACY_RETENTION_ROUNDS_TOTAL,
        Unit::Count,
        "Rounds of the personal-data retention actor, by outcome (ok, failed)."
    );
    describe_counter!(
        PRIVACY_ADMIN_READS_TOTAL,
        Unit::Count,
        "Reads of another subject's personal data by an administrator, with a reason given."
    );
    describe_counter!(
        HOLDS_EXPIRED_TOTAL,
        Unit::Count,
        "Pending holds released by the sweeper because their time had passed."
    );
    describe_counter!(MOBILITY_QUOTES_TOTAL, Unit::Count, "Ride quotes given, by mode and route source.");
    describe_gauge!(MOBILITY_RIDES, Unit::Count, "Rides by state and mode, as stored.");
    describe_histogram!(
        MOBILITY_DISPATCH_SECONDS,
        Unit::Seconds,
        "Time from a ride's request to a driver's acceptance, by mode."
    );
    describe_counter!(MOBILITY_RIDES_EXPIRED_TOTAL, Unit::Count, "Rides that expired without a driver, by mode.");
    describe_counter!(
        MOBILITY_DISPATCH_STEPS_TOTAL,
        Unit::Count,
        "Dispatch steps, by outcome (done, offered, waiting, nobody, failed)."
    );
    describe_counter!(
        MOBILITY_FARES_TOTAL,
        Unit::Count,
        "Fares and cancellation fees captured, minor units, by currency."
    );
    describe_gauge!(MOBILITY_DRIVERS, Unit::Count, "Drivers by mode and availability, as stored.");
    describe_gauge!(MOBILITY_PAYMENTS_DUE, Unit::Count, "Rides over whose payment step is still due, as stored.");
    describe_gauge!(
        MOBILITY_PAYMENTS_DUE_AGE,
        Unit::Seconds,
        "Age of the oldest ride payment step still due (0 when none is)."
    );
    describe_counter!(
        MOBILITY_LOCATION_REPORTS_TOTAL,
        Unit::Count,
        "Driver position reports, by outcome (indexed, on_ride, offline, too_frequent, failed)."
    );
    describe_counter!(
        ESG_ACTIVITIES_TOTAL,
        Unit::Count,
        "ESG activities, by source (ride, report) and result (recorded, duplicate, refused, ignored)."
    );
    describe_counter!(
        ESG_CO2E_GRAMS_TOTAL,
        Unit::Count,
        "Grams of CO2e of the activities recorded, by flow (emitted, avoided)."
    );
    describe_counter!(
        ESG_FACTORS_TOTAL,
        Unit::Count,
        "Activities priced, by who answered for the emission factor (provider, cache, simulator, fallback, none)."
    );
    describe_histogram!(ESG_SCORE, Unit::Count, "ESG scores computed (0 to 100).");
    describe_histogram!(ESG_BATCH_SIZE, Unit::Count, "Activities recorded in one ESG transaction.");
    describe_gauge!(
        ESG_PROJECTION_LAG_SECONDS,
        Unit::Seconds,
        "Age of the last completed ride credited to an ESG projection."
    );
    describe_counter!(
        SOCIAL_POSTS_TOTAL,
        Unit::Count,
        "Posts, reactions and comments (created, edited, deleted, reacted, unreacted, commented, comment_deleted)."
    );
    describe_histogram!(SOCIAL_FANOUT_SIZE, Unit::Count, "Timelines a post was written into when it was made.");
    describe_counter!(
        SOCIAL_TIMELINE_CACHE_TOTAL,
        Unit::Count,
        "Home timeline reads by what the cache gave (hit, miss: rebuilt, error: read from PostgreSQL)."
    );
    describe_counter!(SOCIAL_TIMELINE_READS_TOTAL, Unit::Count, "Timeline pages read, by timeline (home, profile).");
    describe_counter!(
        SOCIAL_ACTIVITY_POSTS_TOTAL,
        Unit::Count,
        "Activities consumed from other domains' events, by kind and result (made, duplicate, not_shared)."
    );
    describe_counter!(SOCIAL_REPORTS_TOTAL, Unit::Count, "Reports filed by users, by target (post, profile).");
    describe_counter!(
        SOCIAL_MODERATION_ACTIONS_TOTAL,
        Unit::Count,
        "Moderation actions by administrators, by action (hidden, unhidden, actioned, dismissed)."
    );
    describe_counter!(SOCIAL_PROFILES_WRITTEN_TOTAL, Unit::Count, "Social profiles written, by result.");
    describe_counter!(
        SOCIAL_GRAPH_CHANGES_TOTAL,
        Unit::Count,
        "Changes to the social graph (followed, requested, unfollowed, accepted, declined, blocked, unblocked, muted, unmuted)."
    );
    describe_counter!(AUTH_FAILURES_TOTAL, Unit::Count, "Requests refused for a missing or invalid token.");
    describe_counter!(
        AUTH_REVOCATION_SYNC_FAILURES_TOTAL,
        Unit::Count,
        "Times the shared list of revoked tokens could not be read (the last one known is kept)."
    );
    describe_counter!(RATELIMIT_LIMITED_TOTAL, Unit::Count, "Requests refused by a rate limit.");
    describe_counter!(
        RATELIMIT_FAIL_OPEN_TOTAL,
        Unit::Count,
        "Requests let through because the rate-limit store was unavailable."
    );
    describe_counter!(
        AUDIT_REFUSED_TOTAL,
        Unit::Count,
        "State-changing requests refused because they could not be audited."
    );
    describe_counter!(AUDIT_RECORDS_WRITTEN_TOTAL, Unit::Count, "Audit records written to the audit log and fsynced.");
    describe_counter!(
        AUDIT_WRITE_FAILURES_TOTAL,
        Unit::Count,
        "Failed audit log operations, by stage; each is retried."
    );
    describe_histogram!(AUDIT_BATCH_SIZE, Unit::Count, "Audit records per write and fsync.");
    describe_histogram!(AUDIT_FLUSH_SECONDS, Unit::Seconds, "Time to write and fsync one batch of audit records.");
    describe_counter!(AUDIT_DROPPED_TOTAL, Unit::Count, "Audit records lost before reaching the log, by reason.");
    describe_gauge!(AUDIT_LAST_SEQ, "Seq of the last audit record written and fsynced.");
    describe_gauge!(AUDIT_VOLUME_FREE_BYTES, Unit::Bytes, "Free bytes on the audit log's volume.");
    describe_gauge!(AUDIT_VOLUME_SIZE_BYTES, Unit::Bytes, "Size in bytes of the audit log's volume.");
    describe_counter!(AUDIT_FILES_REMOVED_TOTAL, Unit::Count, "Rotated audit files removed after their retention.");
    describe_counter!(
        AUDIT_DENIALS_AGGREGATED_TOTAL,
        Unit::Count,
        "Denied requests counted into an aggregated audit record."
    );
    describe_counter!(AUDIT_HEAD_FAILURES_TOTAL, Unit::Count, "Failures to record the audit chain head in PostgreSQL.");
    describe_counter!(
        AUDIT_UNCONFIRMED_TOTAL,
        Unit::Count,
        "Committed changes answered 503 because their audit record was not durable in time."
    );
    describe_counter!(ADAPTER_CALLS_TOTAL, Unit::Count, "Calls to an external API, by adapter, operation and outcome.");
    describe_histogram!(ADAPTER_CALL_DURATION_SECONDS, Unit::Seconds, "Time of one call to an external API.");
    describe_gauge!(ADAPTER_CIRCUIT_STATE, "Circuit breaker state: 0 closed, 1 half-open, 2 open.");
    describe_counter!(ADAPTER_RETRIES_TOTAL, Unit::Count, "Retries of calls to an external API.");
    describe_counter!(ADAPTER_CACHE_LOOKUPS_TOTAL, Unit::Count, "Lookups in an adapter's shared cache, by result.");
    describe_counter!(PAYMENTS_WEBHOOKS_TOTAL, Unit::Count, "Payments webhook deliveries, by outcome.");
    describe_counter!(PAYMENTS_PAYOUTS_TOTAL, Unit::Count, "Payouts reaching a status, by status.");
}

/// The metrics of one `Application`: its own Prometheus recorder, so that several instances in
/// one process (tests start many) never mix their series.
#[derive(Clone)]
pub struct Metrics {
    recorder: Arc<PrometheusRecorder>,
    handle: PrometheusHandle,
    process: Arc<metrics_process::Collector>,
    http: Arc<HttpMetrics>,
}

/// The handles of the HTTP RED metrics, each series looked up once and kept: a request then
/// costs a map lookup by route template and a few atomic updates.
pub struct HttpMetrics {
    in_flight: Gauge,
    recorder: Arc<PrometheusRecorder>,
    /// By route template: the series of each method and status seen on it.
    series: parking_lot::RwLock<HashMap<String, Vec<HttpSeries>>>,
}

struct HttpSeries {
    method: &'static str,
    status: u16,
    requests: Counter,
    duration: Histogram,
}

impl HttpMetrics {
    /// One more request being handled.
    pub fn started(&self) {
        self.in_flight.increment(1.0);
    }

    /// A request answered: counted and timed under its method, route template and status.
    pub fn finished(&self, method: &'static str, route: &str, status: u16, seconds: f64) {
        self.in_flight.decrement(1.0);
        let record = |s: &HttpSeries| {
            s.requests.increment(1);
            s.duration.record(seconds);
        };
        if let Some(series) = self.series.read().get(route) {
            if let Some(s) = series.iter().find(|s| s.method == method && s.status == status) {
                return record(s);
            }
        }
        let mut all = self.series.write();
        let series = all.entry(route.to_owned()).or_default();
        if let Some(s) = series.iter().find(|s| s.method == method && s.status == status) {
            return record(s);
        }
        let labels = [("method", method.to_owned()), ("route", route.to_owned()), ("status", status.to_string())];
        let s = metrics::with_local_recorder(self.recorder.as_ref(), || HttpSeries {
            method,
            status,
            requests: metrics::counter!(HTTP_REQUESTS_TOTAL, &labels),
            duration: metrics::histogram!(HTTP_REQUEST_DURATION_SECONDS, &labels),
        });
        record(&s);
        series.push(s);
    }
}

impl Metrics {
    /// A recorder with histogram buckets for every `_seconds` metric and every metric described.
    pub fn new() -> anyhow::Result<Self> {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
            .context("histogram buckets")?
            // A full name is matched before a suffix.
            .set_buckets_for_metric(Matcher::Full(MOBILITY_DISPATCH_SECONDS.into()), DISPATCH_BUCKETS)
            .context("dispatch buckets")?
            .set_buckets_for_metric(Matcher::Full(ESG_SCORE.into()), SCORE_BUCKETS)
            .context("score buckets")?
            .set_buckets_for_metric(Matcher::Full(SOCIAL_FANOUT_SIZE.into()), FANOUT_BUCKETS)
            .context("fan-out buckets")?
            .build_recorder();
        let handle = recorder.handle();
        let process = metrics_process::Collector::new(PROCESS_PREFIX);
        let recorder = Arc::new(recorder);
        let http = Arc::new(HttpMetrics {
            in_flight: metrics::with_local_recorder(recorder.as_ref(), || metrics::gauge!(HTTP_REQUESTS_IN_FLIGHT)),
            recorder: recorder.clone(),
            series: Default::default(),
        });
        let metrics = Self { recorder, handle, process: Arc::new(process), http };
        metrics.with(|| {
            describe_metrics();
            metrics.process.describe();
        });
        Ok(metrics)
    }

    /// Run `f` with this instance's recorder behind the `metrics` macros.
    pub fn with<R>(&self, f: impl FnOnce() -> R) -> R {
        metrics::with_local_recorder(self.recorder.as_ref(), f)
    }

    /// The HTTP RED metrics.
    pub fn http(&self) -> Arc<HttpMetrics> {
        self.http.clone()
    }

    /// Prometheus text exposition, with fresh process figures.
    pub fn render(&self) -> String {
        self.with(|| self.process.collect());
        self.handle.render()
    }
}

/// Keeps the span exporter and the log writer alive; dropping it flushes pending spans, then
/// writes out the pending log lines.
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
    _logs: LogWriterGuard,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            let _ = provider.shutdown();
        }
    }
}

/// The log layer: JSON lines (see [`JsonLines`]) or readable lines, written through `writer`.
pub fn log_layer<S>(format: LogFormat, writer: LogWriter) -> Box<dyn Layer<S> + Send + Sync>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    match format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .fmt_fields(JsonSpanFields)
            .event_format(JsonLines)
            .with_writer(writer)
            .boxed(),
        LogFormat::Pretty => tracing_subscriber::fmt::layer().with_target(false).with_writer(writer).boxed(),
    }
}

/// Install the global subscriber: JSON or readable lines on stdout (written by a thread of
/// their own), level from LOG_LEVEL, and an OpenTelemetry layer exporting over OTLP/HTTP when
/// tracing is enabled.
pub fn init(settings: &Settings) -> anyhow::Result<TelemetryGuard> {
    let filter = EnvFilter::try_new(settings.log.level.to_lowercase()).context("log level")?;
    let (writer, logs) = LogWriter::spawn(std::io::stdout()).context("start the log writer")?;
    let fmt_layer = log_layer(settings.log_format(), writer);
    let (otel_layer, provider) = match settings.tracing.endpoint().filter(|_| settings.tracing.enabled) {
        Some(endpoint) => {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_endpoint(endpoint)
                .build()
                .context("OTLP span exporter")?;
            let provider = SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_sampler(opentelemetry_sdk::trace::Sampler::ParentBased(Box::new(
                    opentelemetry_sdk::trace::Sampler::TraceIdRatioBased(settings.tracing.sample_ratio),
                )))
                .with_resource(
                    opentelemetry_sdk::Resource::builder()
                        .with_service_name("beryl-core-api")
                        .with_attribute(opentelemetry::KeyValue::new(
                            "deployment.environment",
                            settings.environment.as_str(),
                        ))
                        .with_attribute(opentelemetry::KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
                        .build(),
                )
                .build();
            let tracer = provider.tracer("beryl-core-api");
            (Some(tracing_opentelemetry::layer().with_tracer(tracer)), Some(provider))
        }
        None => (None, None),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(fmt_layer)
        .with(otel_layer)
        .try_init()
        .context("install the tracing subscriber")?;
    install_panic_hook();
    Ok(TelemetryGuard { provider, _logs: logs })
}

/// Panics are reported as one structured log line instead of raw stderr text; the supervision
/// runtime turns them into restarts.
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let payload = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "non-string panic payload".into());
        let location = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
        let thread = std::thread::current().name().unwrap_or("unnamed").to_string();
        tracing::error!(panic = %payload, location = %location, thread = %thread, "panic");
    }));
}

/// Correlation id of one request: taken from `X-Request-ID` (or `X-Correlation-ID`) or generated,
/// echoed in the response, present on every log line, actor message, event and audit record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(Arc<str>);

impl RequestId {
    /// Longest id accepted from a client.
    pub const MAX_LEN: usize = 128;

    /// A new random id (UUID v7, time-ordered).
    pub fn generate() -> Self {
        Self(Arc::from(&*uuid::Uuid::now_v7().hyphenated().encode_lower(&mut uuid::Uuid::encode_buffer())))
    }

    /// Accept a client's id if it is short and printable; otherwise `None`.
    pub fn parse(value: &str) -> Option<Self> {
        let ok = !value.is_empty() && value.len() <= Self::MAX_LEN && value.bytes().all(|b| b.is_ascii_graphic());
        ok.then(|| Self(Arc::from(value)))
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

tokio::task_local! {
    /// The request id of the request (or actor message) being handled on this task.
    pub static REQUEST_ID: RequestId;
}

/// The request id in scope, if any.
pub fn current_request_id() -> Option<RequestId> {
    REQUEST_ID.try_with(|id| id.clone()).ok()
}
