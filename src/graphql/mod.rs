//! GraphQL at `/graphql` (async-graphql): one file per domain, merged here. GraphiQL is served
//! on GET outside production.

pub mod fintech;
pub mod system;

use actix_web::{middleware::from_fn, web, HttpResponse};
use async_graphql::{http::GraphiQLSource, EmptySubscription, MergedObject, Schema};
use async_graphql_actix_web::{GraphQLRequest, GraphQLResponse};

use crate::{
    auth::Principal,
    config::{Environment, Settings},
    http::{guard, state::AppState},
};

/// Every query root.
#[derive(MergedObject, Default)]
pub struct Query(system::SystemQuery, fintech::FintechQuery);

/// Every mutation root.
#[derive(MergedObject, Default)]
pub struct Mutation(fintech::FintechMutation);

/// The schema.
pub type BerylSchema = Schema<Query, Mutation, EmptySubscription>;

/// Build the schema; resolvers reach the application through `web::Data<AppState>` in its data.
pub fn schema(state: web::Data<AppState>) -> BerylSchema {
    Schema::build(Query::default(), Mutation::default(), EmptySubscription)
        .data(state)
        .limit_depth(16)
        .limit_complexity(512)
        .finish()
}

/// Resolvers find the caller in the request data and check scopes per field.
async fn execute(schema: web::Data<BerylSchema>, principal: Principal, request: GraphQLRequest) -> GraphQLResponse {
    schema.execute(request.into_inner().data(principal)).await.into()
}

async fn graphiql() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(GraphiQLSource::build().endpoint("/graphql").finish())
}

/// Mount `/graphql` when this process's role serves it: POST behind the guard (token, rate
/// limits), GET serving the open GraphiQL page outside production.
pub fn routes(settings: &Settings, schema: BerylSchema) -> impl FnOnce(&mut web::ServiceConfig) {
    let serves = settings.server.role.serves_graphql();
    let graphiql_enabled = settings.environment != Environment::Production;
    move |cfg| {
        if !serves {
            return;
        }
        let post = web::post().to(execute).wrap(from_fn(guard::protect));
        let mut resource = web::resource("/graphql").app_data(web::Data::new(schema)).route(post);
        if graphiql_enabled {
            resource = resource.route(web::get().to(graphiql));
        }
        cfg.service(resource);
    }
}
