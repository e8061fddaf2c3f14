//! `spawn_app()`: the real `Application` on port 0 with its own PostgreSQL database, and a
//! child-process harness for the tests that need signals, exit codes or log output.

use std::{
    future::Future,
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use actix_web::web;
use beryl_core_api::{
    auth::KeySet,
    config::{AuthSettings, Settings, Sources},
    http::AppState,
    startup::Application,
};
use tokio_postgres::NoTls;

/// Server for the tests' own databases.
pub fn admin_database_url() -> String {
    std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// Redis for the tests.
pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into())
}

/// Create an empty database for one test; returns its URL.
pub async fn create_database() -> String {
    let admin = admin_database_url();
    let (client, connection) = tokio_postgres::connect(&admin, NoTls).await.expect("connect to PostgreSQL");
    actix_rt::spawn(async move {
        let _ = connection.await;
    });
    let name = format!("beryl_test_{}", uuid::Uuid::new_v4().simple());
    client.batch_execute(&format!("CREATE DATABASE {name}")).await.expect("create test database");
    let base = admin.rsplit_once('/').map(|(b, _)| b.to_string()).expect("database URL");
    format!("{base}/{name}")
}

/// Settings as the tests run them: test environment, loopback, port 0, fault injection on.
pub fn test_settings() -> Settings {
    let mut settings = Settings::load(&Sources {
        config_dir: Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config")),
        vars: Some(vec![("ENVIRONMENT".into(), "test".into())]),
    })
    .expect("test settings");
    settings.server.host = "127.0.0.1".into();
    settings.server.port = 0;
    settings.server.workers = 2;
    settings.database.max_connections = 4;
    settings.fault_injection.enabled = true;
    settings.auth.jwt_secret_key = Some(TEST_JWT_KEY.into());
    settings.redis.key_prefix = format!("beryl:test:{}:", uuid::Uuid::new_v4().simple());
    settings
}

/// The HS256 key test applications verify tokens with.
pub const TEST_JWT_KEY: &str = "test-signing-key-0123456789abcdef0123456789";

/// A token signed with [`TEST_JWT_KEY`], for applications running as a child process.
pub fn test_token(subject: &str, scopes: &[&str]) -> String {
    let settings = AuthSettings { jwt_secret_key: Some(TEST_JWT_KEY.into()), ..Default::default() };
    let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
    KeySet::from_settings(&settings).expect("keys").mint(subject, &scopes, chrono::Duration::minutes(10)).expect("mint")
}

/// A running application.
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub state: web::Data<AppState>,
    pub keys: Arc<KeySet>,
}

impl Drop for TestApp {
    /// Stop the application's actor threads so that their database connections close: tests
    /// share one PostgreSQL server and its connection limit.
    fn drop(&mut self) {
        self.state.supervision.halt();
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.expect("GET")
    }

    pub async fn inject(&self, actor: &str, body: serde_json::Value) -> reqwest::Response {
        let admin = self.token("root", &["admin"]);
        self.post_as(&format!("/internal/faults/{actor}"), &admin, &body).await
    }

    /// A token for `subject` with `scopes`, signed with the app's current key.
    pub fn token(&self, subject: &str, scopes: &[&str]) -> String {
        let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
        self.keys.mint(subject, &scopes, chrono::Duration::minutes(10)).expect("mint")
    }

    /// GET with a bearer token.
    pub async fn get_as(&self, path: &str, token: &str) -> reqwest::Response {
        self.client.get(self.url(path)).bearer_auth(token).send().await.expect("GET")
    }

    /// POST a JSON body with a bearer token.
    pub async fn post_as(&self, path: &str, token: &str, body: &serde_json::Value) -> reqwest::Response {
        self.client.post(self.url(path)).bearer_auth(token).json(body).send().await.expect("POST")
    }

    /// Run a GraphQL document with a bearer token.
    pub async fn graphql(&self, token: &str, query: &str) -> serde_json::Value {
        self.post_as("/graphql", token, &serde_json::json!({ "query": query }))
            .await
            .json()
            .await
            .expect("GraphQL JSON")
    }

    pub async fn ready_status(&self) -> u16 {
        self.get("/health/ready").await.status().as_u16()
    }

    pub async fn metrics(&self) -> String {
        self.get("/metrics").await.text().await.expect("metrics body")
    }

    /// The JSON events the embedded broker holds on `topic`, oldest first.
    pub fn published(&self, topic: &str) -> Vec<serde_json::Value> {
        let records = self.state.actors.broker.records(topic);
        records.iter().map(|r| serde_json::from_slice(r.payload.as_deref().expect("payload")).expect("JSON")).collect()
    }

    pub async fn health(&self) -> serde_json::Value {
        self.get("/health").await.json().await.expect("health JSON")
    }
}

/// The application with real PostgreSQL and Redis.
pub async fn spawn_app() -> TestApp {
    spawn_with(|_| {}).await
}

/// The application with real PostgreSQL and Redis, after `adjust` changes the settings.
pub async fn spawn_with(adjust: impl FnOnce(&mut Settings)) -> TestApp {
    init_test_logs();
    let mut settings = test_settings();
    settings.database.url = Some(create_database().await.as_str().into());
    settings.redis.url = Some(redis_url().as_str().into());
    adjust(&mut settings);
    let app = Application::build(settings).await.expect("build application");
    let address = format!("http://127.0.0.1:{}", app.port());
    let state = app.state();
    let keys = state.guard.keys.clone();
    actix_rt::spawn(app.run_until_stopped(std::future::pending()));
    TestApp { address, client: reqwest::Client::new(), state, keys }
}

/// The service's errors, and with TEST_LOG set everything from info.
fn init_test_logs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // The service's errors always, everything from info with TEST_LOG: captured per test and
        // shown with a failing test's output.
        let filter = if std::env::var("TEST_LOG").is_ok() { "info" } else { "error" };
        let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
    });
}

/// `method` on `path` with `token` and, when given, a JSON body: the status and the JSON answer
/// (`null` when it is not JSON).
pub async fn call(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let mut req = app.client.request(method, app.url(path)).bearer_auth(token);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(serde_json::Value::Null))
}

/// `POST path` with `body` as `token` under the idempotency key `key`: the status and the body.
pub async fn post_keyed(
    app: &TestApp,
    token: &str,
    path: &str,
    body: serde_json::Value,
    key: &str,
) -> (u16, serde_json::Value) {
    let req = app.client.post(app.url(path)).bearer_auth(token).header("Idempotency-Key", key).json(&body);
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(serde_json::Value::Null))
}

/// Poll `check` until it returns `Some`, or panic after `deadline` naming `what`.
pub async fn eventually<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(start.elapsed() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The value of one series in Prometheus text, if present.
pub fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|line| line.strip_prefix(series).and_then(|rest| rest.trim().parse().ok()))
}

/// The service binary as a child process with its stdout collected line by line.
pub struct Process {
    pub child: Child,
    pub lines: Arc<Mutex<Vec<String>>>,
}

impl Process {
    /// Start `beryl-core-api serve` with JSON logs on a free port, verifying tokens with
    /// [`TEST_JWT_KEY`], plus `vars`.
    pub fn serve(vars: &[(&str, &str)]) -> Process {
        let mut command = Command::new(env!("CARGO_BIN_EXE_beryl-core-api"));
        command
            .arg("serve")
            .env_clear()
            .env("ENVIRONMENT", "test")
            .env("CONFIG_DIR", PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config"))
            .env("LOG_FORMAT", "json")
            .env("LOG_LEVEL", "info")
            .env("HOST", "127.0.0.1")
            .env("PORT", "0")
            .env("JWT_SECRET_KEY", TEST_JWT_KEY)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in vars {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("start the service binary");
        let stdout = child.stdout.take().expect("stdout");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                sink.lock().expect("lines").push(line);
            }
        });
        Process { child, lines }
    }

    /// Every log line so far, parsed.
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        self.lines.lock().expect("lines").iter().filter_map(|l| serde_json::from_str(l).ok()).collect()
    }

    /// Wait for the "listening" line and return the base URL.
    pub async fn address(&self) -> String {
        eventually("the service to listen", Duration::from_secs(20), || async {
            self.json_lines()
                .iter()
                .find(|l| l["message"] == "listening")
                .and_then(|l| l["address"].as_str().map(|a| format!("http://{a}")))
        })
        .await
    }

    /// Send a signal.
    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), signal).expect("send signal");
    }

    /// Wait for the process to exit and return its status code.
    pub async fn exit_code(&mut self, deadline: Duration) -> Option<i32> {
        let child = &mut self.child;
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status.code();
            }
            assert!(start.elapsed() < deadline, "the process did not exit in time");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Run the binary to completion with `args` and `vars`; returns (exit code, stdout, stderr).
pub fn run_cli(args: &[&str], vars: &[(&str, &str)]) -> (i32, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_beryl-core-api"));
    command.args(args).env_clear().env("CONFIG_DIR", PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config"));
    for (k, v) in vars {
        command.env(k, v);
    }
    let out = command.output().expect("run the binary");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// An audit record as an auditor holding the keys reads it: its sealed subject and client
/// address opened (`null` once erased).
pub async fn opened_audit_record(app: &TestApp, mut record: serde_json::Value) -> serde_json::Value {
    use beryl_core_api::{
        domain::privacy::{Personal, Place},
        http::guard::{AUDIT_IP, AUDIT_SUBJECT},
    };
    let vault = app.state.actors.privacy.vault();
    for (member, field) in [("subject", AUDIT_SUBJECT), ("client_ip", AUDIT_IP)] {
        if let Some(text) = record[member].as_str().map(str::to_owned) {
            let opened = vault.open_text(&text, Place::new(field, "")).await.expect("a sealed field");
            record[member] = match opened {
                Personal::Value(v) => serde_json::Value::String(v),
                Personal::Erased => serde_json::Value::Null,
            };
        }
    }
    record
}

/// A pool on a database of its own, migrated: what a storage contract's PostgreSQL side runs on.
pub async fn migrated_pool() -> beryl_core_api::adapters::postgres::PgPool {
    use beryl_core_api::adapters::{migrate, postgres};
    let settings = beryl_core_api::config::DatabaseSettings {
        url: Some(create_database().await.as_str().into()),
        ..Default::default()
    };
    let config = postgres::connect_config(&settings).unwrap().unwrap();
    let mut client = postgres::connect(&config).await.unwrap();
    migrate::run(&mut client).await.unwrap();
    postgres::build_pool(&settings).unwrap().unwrap()
}

/// A storage contract: each case, a function taking the store, run against the in-memory store
/// (`memory()`) and against PostgreSQL (`postgres().await`), both defined beside the cases.
macro_rules! contract {
    ($($case:ident),+ $(,)?) => {
        mod in_memory {
            $(#[actix_web::test]
            async fn $case() {
                super::$case(super::memory()).await;
            })+
        }
        mod on_postgres {
            $(#[actix_web::test]
            async fn $case() {
                super::$case(super::postgres().await).await;
            })+
        }
    };
}
pub(crate) use contract;

/// An application auditing into a file of its own.
pub struct Audited {
    /// The application.
    pub app: TestApp,
    /// Holds the audit file's directory for the test's length.
    pub dir: tempfile::TempDir,
    /// The live audit file.
    pub log: std::path::PathBuf,
}

/// An application auditing into a file of its own, in a directory of its own.
pub async fn audited() -> Audited {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    let file = log.clone();
    let app = spawn_with(move |s| {
        s.audit.enabled = true;
        s.audit.log_file = file;
    })
    .await;
    Audited { app, dir, log }
}

/// A broker record of the domain event `kind` (its domain the kind's first part) of id `id`,
/// keyed by `key` at version `seq`, on `topic`, with the `event-type` header consumers route by.
pub fn event_record(
    topic: &str,
    (id, kind, key): (uuid::Uuid, &str, &str),
    seq: i64,
    data: serde_json::Value,
) -> beryl_core_api::adapters::bus::OutRecord {
    let event = beryl_core_api::domain::events::DomainEvent {
        id,
        event_type: kind.into(),
        schema_version: 1,
        domain: kind.split('.').next().unwrap_or_default().into(),
        aggregate_id: key.into(),
        seq,
        request_id: None,
        occurred_at: chrono::Utc::now(),
        data,
    };
    beryl_core_api::adapters::bus::OutRecord {
        topic: topic.into(),
        key: Some(key.as_bytes().to_vec()),
        payload: serde_json::to_vec(&event).unwrap(),
        headers: vec![("event-type".into(), kind.as_bytes().to_vec())],
    }
}
