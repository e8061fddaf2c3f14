//! actix-web routes. Handlers hold no state of their own: they read the supervision registry or
//! ask actors through [`ask::ask`].

pub mod admin;
pub mod ask;
pub mod audit;
pub mod esg;
pub mod faults;
pub mod fintech;
pub mod guard;
pub mod health;
pub mod json;
pub mod me;
pub mod metrics;
pub mod mobility;
pub mod openapi;
pub mod paging;
pub mod payments;
pub mod privacy;
pub mod problem;
pub mod request_context;
pub mod social;
pub mod social_moderation;
pub mod social_posts;
pub mod state;
pub mod system;

use actix_web::{middleware::from_fn, web};

pub use state::AppState;

use crate::{
    config::Settings,
    error::{AppError, ErrorCode},
};

/// Mount the routes this process's role serves (GraphQL apart: `graphql::routes`).
pub fn routes(settings: &Settings) -> impl FnOnce(&mut web::ServiceConfig) {
    let metrics_enabled = settings.metrics.enabled;
    let faults = settings.fault_injection.enabled;
    let role = settings.server.role;
    move |cfg| {
        cfg.service(web::resource("/health").route(web::get().to(health::health)))
            .service(web::resource("/health/live").route(web::get().to(health::live)))
            .service(web::resource("/health/ready").route(web::get().to(health::ready)))
            .service(web::resource("/health/startup").route(web::get().to(health::startup)));
        if metrics_enabled {
            cfg.service(web::resource("/metrics").route(web::get().to(metrics::metrics)));
        }
        if faults {
            // Behind the guard: the policy table names no scope for it, so it needs `admin`.
            cfg.service(
                web::resource("/internal/faults/{actor}")
                    .wrap(from_fn(guard::protect))
                    .route(web::post().to(faults::inject)),
            );
        }
        if role.serves_rest() {
            cfg.service(web::resource("/api/openapi.json").route(web::get().to(openapi::serve)));
            // No token: the provider signs each delivery.
            cfg.service(web::resource(payments::WEBHOOK_ROUTE).route(web::post().to(payments::webhook)));
            cfg.service(
                web::scope("/api/v1")
                    .wrap(from_fn(guard::protect))
                    .service(web::resource("/me").route(web::get().to(me::me)))
                    .configure(fintech::routes)
                    .configure(mobility::routes)
                    .configure(esg::routes)
                    .configure(social::routes)
                    .configure(social_posts::routes)
                    .configure(social_moderation::routes)
                    .configure(privacy::routes)
                    .service(web::resource("/system/actors").route(web::get().to(system::actors)))
                    .service(web::resource("/system/actors/{name}/restart").route(web::post().to(system::restart)))
                    .service(web::resource("/admin/tokens/revocations").route(web::post().to(admin::revoke_token))),
            );
        }
    }
}

/// Answer for paths no route matches.
pub async fn not_found(req: actix_web::HttpRequest) -> Result<actix_web::HttpResponse, AppError> {
    Err(AppError::client(ErrorCode::NotFound, format!("no resource at {}", req.path())))
}
