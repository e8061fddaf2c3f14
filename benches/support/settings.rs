//! The settings every benchmark starts the service with: the repository's configuration, the
//! loopback interface, a free port and a signing key for the tokens the benchmark mints.

use beryl_core_api::config::{Settings, Sources};

/// Signs the benchmarks' tokens.
pub const BENCH_JWT_KEY: &str = "bench-signing-key-0123456789abcdef0123456789";

/// Settings for a service under benchmark; each benchmark adds what it measures.
pub fn bench_settings() -> Settings {
    let mut settings =
        Settings::load(&Sources { config_dir: Some("config".into()), vars: Some(vec![]) }).expect("settings");
    settings.server.host = "127.0.0.1".into();
    settings.server.port = 0;
    settings.auth.jwt_secret_key = Some(BENCH_JWT_KEY.into());
    settings
}
