//! GraphQL at `/graphql` (async-graphql): one file per domain, merged here. A request passes the
//! guard (token, rate limit per request), the body limit and the operation limits before
//! anything runs; each field then passes the protection REST gives the same work
//! ([`caller::Caller`]). Introspection and GraphiQL are off in production unless turned on.

pub mod caller;
pub mod esg;
pub mod fintech;
pub mod limits;
pub mod mobility;
pub mod social;
pub mod social_moderation;
pub mod social_posts;
pub mod system;

use std::time::Duration;

use actix_web::{middleware::from_fn, web, HttpMessage, HttpRequest, HttpResponse};
use async_graphql::{http::GraphiQLSource, EmptySubscription, ErrorExtensions, MergedObject, Schema, ServerError};
use async_graphql_actix_web::GraphQLResponse;

use self::{caller::Caller, limits::OperationLimits, system::FreshProbes};
use crate::{
    auth::Principal,
    config::Settings,
    error::AppError,
    http::{
        guard,
        guard::RequestFacts,
        json::Json,
        privacy::{header_text, ACCESS_REASON},
        state::AppState,
    },
};

/// Every query root.
#[derive(MergedObject, Default)]
pub struct Query(
    system::SystemQuery,
    fintech::FintechQuery,
    mobility::MobilityQuery,
    mobility::RideQuery,
    esg::EsgQuery,
    social::SocialQuery,
    social_posts::SocialPostQuery,
    social_moderation::SocialModerationQuery,
);

/// Every mutation root.
#[derive(MergedObject, Default)]
pub struct Mutation(
    fintech::FintechMutation,
    mobility::MobilityMutation,
    mobility::RideMutation,
    esg::EsgMutation,
    social::SocialMutation,
    social_posts::SocialPostMutation,
    social_moderation::SocialModerationMutation,
);

/// The schema.
pub type BerylSchema = Schema<Query, Mutation, EmptySubscription>;

/// Build the schema; resolvers reach the application through `web::Data<AppState>` in its data.
pub fn schema(state: web::Data<AppState>) -> BerylSchema {
    let settings = &state.settings.graphql;
    let probes = FreshProbes::new(Duration::from_millis(settings.refresh_interval_ms));
    let introspection = settings.introspection_enabled(state.settings.environment);
    let mut builder = Schema::build(Query::default(), Mutation::default(), EmptySubscription).data(probes);
    if !introspection {
        builder = builder.disable_introspection();
    }
    builder.data(state).finish()
}

/// The schema with the limits every operation is checked against first.
struct Endpoint {
    schema: BerylSchema,
    limits: OperationLimits,
}

/// Run one operation: refused whole when over a limit, otherwise run with the caller in its data.
async fn execute(
    endpoint: web::Data<Endpoint>,
    state: web::Data<AppState>,
    req: HttpRequest,
    principal: Principal,
    body: Json<async_graphql::Request>,
) -> Result<GraphQLResponse, AppError> {
    let mut request = body.into_inner();
    if let Err(exceeded) = endpoint.limits.check(&mut request) {
        let (limit, max) = (exceeded.limit, exceeded.max);
        let err = AppError::from(exceeded).extend().extend_with(|_, e| {
            e.set("limit", limit);
            e.set("max", max);
        });
        let mut refused = ServerError::new(err.message, None);
        refused.extensions = err.extensions;
        return Ok(async_graphql::Response::from_errors(vec![refused]).into());
    }
    let facts = req
        .extensions()
        .get::<RequestFacts>()
        .cloned()
        .ok_or_else(|| AppError::Unexpected(anyhow::anyhow!("the guard left no request facts")))?;
    let access_reason = req.headers().get(ACCESS_REASON).map(|v| header_text(v.as_bytes()));
    let caller = Caller::new(principal, facts, state.guard.clone(), access_reason);
    Ok(endpoint.schema.execute(request.data(caller)).await.into())
}

async fn graphiql() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(GraphiQLSource::build().endpoint("/graphql").finish())
}

/// Mount `/graphql` when this process's role serves it: POST behind the guard (token, rate
/// limits), GET serving the open GraphiQL page when enabled (not in production by default).
pub fn routes(settings: &Settings, schema: BerylSchema) -> impl FnOnce(&mut web::ServiceConfig) {
    let serves = settings.server.role.serves_graphql();
    let graphiql_enabled = settings.graphql.graphiql_enabled(settings.environment);
    let endpoint = web::Data::new(Endpoint { schema, limits: OperationLimits::from(&settings.graphql) });
    move |cfg| {
        if !serves {
            return;
        }
        let post = web::post().to(execute).wrap(from_fn(guard::protect));
        let mut resource = web::resource("/graphql").app_data(endpoint).route(post);
        if graphiql_enabled {
            resource = resource.route(web::get().to(graphiql));
        }
        cfg.service(resource);
    }
}
