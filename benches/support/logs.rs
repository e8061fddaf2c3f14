//! Logging as the service does it in production (JSON lines at INFO through the log writer
//! thread), written to `/dev/null`, so that spans and log lines cost what they cost there.

use beryl_core_api::{
    config::LogFormat,
    telemetry::{self, LogWriter, LogWriterGuard},
};
use tracing_subscriber::{filter::LevelFilter, layer::SubscriberExt, util::SubscriberInitExt};

/// Install the production log layer as the global subscriber; keep the guard for the run.
pub fn production_logs() -> LogWriterGuard {
    let null = std::fs::OpenOptions::new().write(true).open("/dev/null").expect("/dev/null");
    let (writer, guard) = LogWriter::spawn(null).expect("log writer");
    tracing_subscriber::registry()
        .with(LevelFilter::INFO)
        .with(telemetry::log_layer(LogFormat::Json, writer))
        .try_init()
        .expect("subscriber");
    guard
}
