#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark harness, not service code
//! Requests/s and p99 of three routes served by one actix-web server in the same run:
//! a bare handler, a round-trip to a plain actix actor, and a round-trip to an actor under the
//! supervision runtime (envelope, timing, metrics, span). Two more lines add the production
//! request middleware (request id, span, RED metrics, one JSON access-log line per request) in
//! front of the bare handler (the middleware's own cost) and of the supervised actor. Logs are
//! set up as in production (JSON lines with the span list, written by the log writer's thread)
//! and go to /dev/null.
//!
//! `cargo bench --bench actor_roundtrip -- [--seconds N] [--rounds N] [--connections N]`

use std::{convert::Infallible, net::TcpListener, sync::Arc};

use actix::{Actor, Arbiter, Context, Handler, Message};
use actix_web::{middleware::from_fn, web, App, HttpResponse, HttpServer};
use beryl_core_api::{
    actors::runtime::{ActorKind, ActorRef, ActorSpec, Ctx, Handle, Managed, Registry, Reply, Supervision},
    config::SupervisionSettings,
    http::{ask::ask, request_context::request_context},
    telemetry::Metrics,
};

#[path = "support/load.rs"]
mod load;
#[path = "support/logs.rs"]
mod logs;

struct Ping;
impl Message for Ping {
    type Result = Result<u64, Infallible>;
}

struct PlainActor(u64);
impl Actor for PlainActor {
    type Context = Context<Self>;
}
impl Handler<Ping> for PlainActor {
    type Result = Result<u64, Infallible>;
    fn handle(&mut self, _: Ping, _: &mut Context<Self>) -> Self::Result {
        self.0 += 1;
        Ok(self.0)
    }
}

struct SupervisedActor(u64);
impl Managed for SupervisedActor {}
impl Handle<Ping> for SupervisedActor {
    fn handle(&mut self, _: Ping, _: &mut Ctx<Self>) -> Reply<Self, Result<u64, Infallible>> {
        self.0 += 1;
        Reply::Now(Ok(self.0))
    }
}

struct Targets {
    plain: actix::Addr<PlainActor>,
    supervised: ActorRef<SupervisedActor>,
}

async fn bare_route() -> HttpResponse {
    HttpResponse::Ok().body("1")
}

async fn plain_route(t: web::Data<Targets>) -> HttpResponse {
    match t.plain.send(Ping).await {
        Ok(Ok(n)) => HttpResponse::Ok().body(n.to_string()),
        _ => HttpResponse::ServiceUnavailable().finish(),
    }
}

async fn supervised_route(t: web::Data<Targets>) -> Result<HttpResponse, beryl_core_api::error::AppError> {
    let n = ask(&t.supervised, Ping).await?;
    Ok(HttpResponse::Ok().body(n.to_string()))
}

fn start_server(capacity: usize) -> (u16, Arc<Registry>) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let system = actix_rt::System::new();
        system.block_on(async move {
            let metrics = Metrics::new().expect("metrics");
            let registry = Arc::new(Registry::default());
            let settings = SupervisionSettings { mailbox_capacity: capacity, ..SupervisionSettings::default() };
            let supervision = Supervision::new(registry.clone(), settings, metrics.clone());
            let supervised = supervision
                .spawn(ActorSpec::new("bench", ActorKind::Domain, true), || SupervisedActor(0))
                .expect("spawn");
            let plain = PlainActor::start_in_arbiter(&Arbiter::new().handle(), move |ctx| {
                ctx.set_mailbox_capacity(capacity);
                PlainActor(0)
            });
            let targets = web::Data::new(Targets { plain, supervised });
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
            let port = listener.local_addr().expect("addr").port();
            let server = HttpServer::new(move || {
                App::new()
                    .app_data(targets.clone())
                    .app_data(metrics.clone())
                    .route("/bare", web::get().to(bare_route))
                    .route("/plain", web::get().to(plain_route))
                    .route("/supervised", web::get().to(supervised_route))
                    .service(
                        web::scope("/full")
                            .wrap(from_fn(request_context))
                            .route("/bare", web::get().to(bare_route))
                            .route("/supervised", web::get().to(supervised_route)),
                    )
            })
            .workers(2)
            .listen(listener)
            .expect("listen")
            .run();
            tx.send((port, registry)).expect("report port");
            server.await.expect("server");
        });
    });
    rx.recv().expect("server started")
}

fn main() {
    let args = load::Args::parse();
    let _logs = logs::production_logs();
    let (port, registry) = start_server(1024);
    let routes = [
        load::Target::get("bare handler", "/bare"),
        load::Target::get("plain actix actor", "/plain"),
        load::Target::get("supervised actor", "/supervised"),
        load::Target::get("middleware + bare handler", "/full/bare"),
        load::Target::get("supervised + middleware", "/full/supervised"),
    ];
    let results = load::run_rounds(port, &routes, &args);
    load::print_table(&results, "bare handler");
    let rate = |name: &str| results.iter().find(|r| r.name == name).map(|r| r.rps).unwrap_or(0.0);
    println!();
    println!("plain actix / bare           : {:.2}", rate("plain actix actor") / rate("bare handler"));
    println!(
        "supervised  / plain actix    : {:.2}  (target >= 0.90)",
        rate("supervised actor") / rate("plain actix actor")
    );
    println!("middleware + bare / bare     : {:.2}", rate("middleware + bare handler") / rate("bare handler"));
    println!(
        "supervised+middleware / bare : {:.2}  (target >= 0.80)",
        rate("supervised + middleware") / rate("bare handler")
    );
    let handled: u64 = registry.actors().iter().map(|a| a.handled()).sum();
    println!("messages handled by supervised actors: {handled}");
}
