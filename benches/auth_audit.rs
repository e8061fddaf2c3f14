#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark harness, not service code
//! Throughput of one state-changing route served twice by the same process with the production
//! state and request middleware: once behind the guard (JWT verification, rate limits, scope
//! check) and the audit layer (hash-chained, fsynced audit records), once without either.
//!
//! `cargo bench --bench auth_audit -- [--seconds N] [--rounds N] [--connections N]`
//! Set BENCH_REDIS_URL (e.g. redis://127.0.0.1:6379) to take rate-limit decisions in Redis, and
//! BENCH_AUDIT=production to audit as production does (HMAC-sealed records, fail_closed: a write
//! is answered once its record is fsynced).

use std::net::TcpListener;

use actix_web::{middleware::from_fn, web, App, HttpResponse, HttpServer};
use beryl_core_api::{
    http::{audit::audit_layer, guard::protect, request_context::request_context, AppState},
    startup::Application,
};

#[path = "support/settings.rs"]
mod bench_settings;
#[path = "support/load.rs"]
mod load;
#[path = "support/logs.rs"]
mod logs;

async fn record() -> HttpResponse {
    HttpResponse::Created().json(serde_json::json!({ "recorded": true }))
}

fn main() {
    let args = load::Args::parse();
    let _logs = logs::production_logs();
    let audit_dir = tempfile::tempdir().expect("temp dir");
    let audit_file = audit_dir.path().join("audit.log");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_rt::System::new().block_on(async move {
            let mut settings = bench_settings::bench_settings();
            settings.audit.enabled = true;
            settings.audit.log_file = audit_file;
            settings.rate_limit.api_write.per_subject = u32::MAX;
            settings.rate_limit.api_write.per_ip = u32::MAX;
            // As production runs it: records sealed with an HMAC key, and a write answered only
            // once its record is durable.
            if std::env::var("BENCH_AUDIT").as_deref() == Ok("production") {
                settings.audit.failure_policy = Some(beryl_core_api::config::AuditFailurePolicy::FailClosed);
                settings.audit.hmac_key = Some("bench-audit-key-0123456789abcdef0123456789".into());
            }
            if let Ok(url) = std::env::var("BENCH_REDIS_URL") {
                settings.redis.url = Some(url.as_str().into());
            }
            let app = Application::build(settings).await.expect("application");
            let state: web::Data<AppState> = app.state();
            let token =
                state.guard.keys.mint("bench", &["system:write".into()], chrono::Duration::hours(1)).expect("token");
            let metrics = state.metrics.clone();
            let guard = state.guard.clone();
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
            let port = listener.local_addr().expect("addr").port();
            let server = HttpServer::new(move || {
                App::new()
                    .app_data(state.clone())
                    .app_data(guard.clone())
                    .app_data(metrics.clone())
                    .service(web::scope("/open").route("/records", web::post().to(record)))
                    .service(
                        web::scope("/api/v1/system/guarded")
                            .wrap(from_fn(protect))
                            .route("/records", web::post().to(record)),
                    )
                    .service(
                        web::scope("/audited").wrap(from_fn(audit_layer)).route("/records", web::post().to(record)),
                    )
                    .service(
                        web::scope("/api/v1/system")
                            .wrap(from_fn(protect))
                            .wrap(from_fn(audit_layer))
                            .route("/records", web::post().to(record)),
                    )
                    .wrap(from_fn(request_context))
            })
            .workers(2)
            .listen(listener)
            .expect("listen")
            .run();
            tx.send((port, token)).expect("report");
            server.await.expect("server");
            drop(app);
        });
    });
    let (port, token) = rx.recv().expect("server started");
    let open = load::Target {
        name: "without auth and audit",
        method: "POST",
        path: "/open/records".into(),
        headers: vec![],
        make: None,
    };
    let guarded = load::Target {
        name: "authenticated + audited",
        method: "POST",
        path: "/api/v1/system/records".into(),
        headers: vec![("Authorization".into(), format!("Bearer {token}"))],
        make: None,
    };
    let auth = vec![("Authorization".to_string(), format!("Bearer {token}"))];
    let guard_only = load::Target {
        name: "authenticated only",
        method: "POST",
        path: "/api/v1/system/guarded/records".into(),
        headers: auth.clone(),
        make: None,
    };
    let audit_only = load::Target {
        name: "audited only",
        method: "POST",
        path: "/audited/records".into(),
        headers: vec![],
        make: None,
    };
    let results = load::run_rounds(port, &[open, guarded, guard_only, audit_only], &args);
    load::print_table(&results, "without auth and audit");
    println!();
    println!("authenticated + audited / without : {:.2}  (target >= 0.80)", results[1].rps / results[0].rps);
    let written = std::fs::read_to_string(audit_dir.path().join("audit.log")).map(|s| s.lines().count()).unwrap_or(0);
    println!("audit records in the live file: {written}");
}
