//! `GET /api/openapi.json`: the OpenAPI 3.1 description of the REST API (open, like the other
//! docs), generated from the code. Each handler's `#[utoipa::path]` gives its path, operation id,
//! parameters and success answers; the request and response types give the schemas; and
//! [`Conventions`] adds what operations share: the bearer scheme and the scope each route needs
//! (from the policy table), the problem answers of the error codes each one can return (grouped
//! by the status the code table gives them), and the headers of idempotent writes.
//! `tests/api/openapi.rs` calls every operation and validates the answers against the schemas;
//! `scripts/schemathesis.sh` fuzzes the running service against the document.

use std::{collections::BTreeMap, sync::LazyLock};

use actix_web::{http::Method, HttpResponse};
use utoipa::{
    openapi::{
        path::{Operation, ParameterIn, PathItem},
        security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme},
        ContentBuilder, HeaderBuilder, ObjectBuilder, Ref, RefOr, Response, ResponseBuilder, Type,
    },
    Modify, OpenApi,
};

use super::{
    admin, esg, fintech, health, me, mobility, payments, privacy, problem::ProblemSchema, social, social_moderation,
    social_posts, system,
};
use crate::{
    auth::policy,
    error::{ErrorCode, PROBLEM_JSON},
};

/// Name of the security scheme.
pub const BEARER: &str = "bearer";

/// The document's generator.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "beryl-core-api",
        description = "REST API of the Beryl core service. Every `/api` operation needs a bearer JWT; scopes are `<domain>:read`, `<domain>:write`, `fintech:settle` (deposits and withdrawals: the payment provider's bridge and back office) and `admin`. Every POST under `/fintech` needs an `Idempotency-Key`. Errors are RFC 9457 problem documents with a stable `code`."
    ),
    servers((url = "https://api.beryl-ecosystem.com")),
    paths(
        health::health,
        health::live,
        health::ready,
        health::startup,
        me::me,
        system::actors,
        system::restart,
        admin::revoke_token,
        fintech::open_wallet,
        fintech::get_wallet,
        fintech::deposit,
        fintech::withdraw,
        fintech::transactions,
        fintech::set_status,
        fintech::transfer,
        fintech::top_up,
        fintech::payout,
        mobility::put_driver,
        mobility::get_driver,
        mobility::set_availability,
        mobility::report_location,
        mobility::request_quote,
        mobility::rides::request_ride,
        mobility::rides::get_ride,
        mobility::rides::list_rides,
        mobility::rides::accept_ride,
        mobility::rides::decline_ride,
        mobility::rides::arrive_ride,
        mobility::rides::start_ride,
        mobility::rides::complete_ride,
        mobility::rides::cancel_ride,
        mobility::rides::rate_ride,
        esg::report_activity,
        esg::get_mine,
        esg::list_mine,
        esg::get_subject,
        esg::set_membership,
        esg::get_membership,
        esg::get_board,
        social::put_mine,
        social::get_mine,
        social::get_profile,
        social::follow,
        social::unfollow,
        social::block,
        social::unblock,
        social::mute,
        social::unmute,
        social::list_followers,
        social::list_following,
        social::list_requests,
        social::list_blocked,
        social::list_muted,
        social::accept_request,
        social::decline_request,
        social_posts::create,
        social_posts::get,
        social_posts::edit,
        social_posts::delete,
        social_posts::react,
        social_posts::unreact,
        social_posts::comment,
        social_posts::list_comments,
        social_posts::delete_comment,
        social_posts::profile_posts,
        social_posts::home,
        social_moderation::report_post,
        social_moderation::report_profile,
        social_moderation::list_reports,
        social_moderation::resolve_report,
        social_moderation::hide_post,
        social_moderation::unhide_post,
        payments::webhook,
        privacy::request_erasure,
        privacy::export_mine,
        privacy::export_subject,
    ),
    components(schemas(ProblemSchema, fintech::CurrencyCode)),
    tags(
        (name = "fintech", description = "Wallets, movements, transfers, top-ups and payouts."),
        (name = "mobility", description = "Drivers, their positions, and quotes for rides."),
        (name = "esg", description = "Activities, their footprint against a petrol car, and the ESG score."),
        (name = "social", description = "Profiles, follows and follow requests, blocks and mutes; posts, reactions, comments and timelines."),
        (name = "payments", description = "The payment provider's signed webhook; no token needed."),
        (name = "privacy", description = "Erasure and export of personal data."),
        (name = "system", description = "Supervision state and operator actions."),
        (name = "admin", description = "Operator actions on authentication (scope `admin`)."),
        (name = "identity", description = "The caller."),
        (name = "health", description = "Probes; no token needed."),
    ),
    modifiers(&Conventions)
)]
pub struct ApiDoc;

static DOCUMENT: LazyLock<utoipa::openapi::OpenApi> = LazyLock::new(ApiDoc::openapi);

/// The document, built once.
pub fn document() -> &'static utoipa::openapi::OpenApi {
    &DOCUMENT
}

/// Serve it.
pub async fn serve() -> HttpResponse {
    HttpResponse::Ok().json(document())
}

/// What every operation can refuse, by kind of operation, besides what its own module lists.
const AUTHENTICATION: &[ErrorCode] = &[
    ErrorCode::TokenMissing,
    ErrorCode::TokenMalformed,
    ErrorCode::TokenUnsigned,
    ErrorCode::TokenAlgorithmNotAllowed,
    ErrorCode::TokenUnknownKey,
    ErrorCode::TokenInvalidSignature,
    ErrorCode::TokenExpired,
    ErrorCode::TokenNotYetValid,
    ErrorCode::TokenWrongIssuer,
    ErrorCode::TokenWrongAudience,
    ErrorCode::TokenInvalidClaims,
    ErrorCode::TokenLifetimeTooLong,
    ErrorCode::TokenRevoked,
];
/// Every guarded operation: rate limits, and the failures of the service itself.
const GUARDED: &[ErrorCode] = &[
    ErrorCode::RateLimited,
    ErrorCode::Internal,
    ErrorCode::ActorUnavailable,
    ErrorCode::ServiceUnavailable,
    ErrorCode::ActorTimeout,
];
/// Operations that change state: the audit trail may refuse them (fail-closed).
const WRITES: &[ErrorCode] = &[ErrorCode::AuditUnavailable];
/// Operations with a JSON body.
const BODY: &[ErrorCode] = &[ErrorCode::MalformedJson, ErrorCode::PayloadTooLarge, ErrorCode::UnsupportedMediaType];
/// Operations with query parameters: a value that does not parse.
const QUERY: &[ErrorCode] = &[ErrorCode::BadRequest];
/// Operations with path parameters: an empty segment, or one holding a `/`, matches no route.
const PATH: &[ErrorCode] = &[ErrorCode::NotFound];
/// Operations taking an `Idempotency-Key`.
const IDEMPOTENT: &[ErrorCode] = &[ErrorCode::IdempotencyKeyMissing, ErrorCode::IdempotencyKeyReused];

/// The codes an operation's own module says it can refuse with, by operation id.
fn refusals(operation_id: &str) -> &'static [ErrorCode] {
    [
        fintech::REFUSALS,
        system::REFUSALS,
        admin::REFUSALS,
        payments::REFUSALS,
        privacy::REFUSALS,
        mobility::REFUSALS,
        esg::REFUSALS,
        social::REFUSALS,
        social_posts::REFUSALS,
        social_moderation::REFUSALS,
    ]
    .into_iter()
    .flatten()
    .find(|(id, _)| *id == operation_id)
    .map(|(_, codes)| *codes)
    .unwrap_or_default()
}

/// Adds to the generated document what its operations share.
pub struct Conventions;

impl Modify for Conventions {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "A JWT signed with one of the service's keys; `iss`, `aud`, `exp`, `nbf`, `iat`, a non-empty `sub`, the maximum lifetime and revocation by `jti` are checked.",
                    ))
                    .build(),
            ),
        );
        for (path, item) in doc.paths.paths.iter_mut() {
            for (method, operation) in operations(item) {
                describe(path, &method, operation);
            }
        }
    }
}

fn operations(item: &mut PathItem) -> Vec<(Method, &mut Operation)> {
    [
        (Method::GET, item.get.as_mut()),
        (Method::PUT, item.put.as_mut()),
        (Method::POST, item.post.as_mut()),
        (Method::DELETE, item.delete.as_mut()),
        (Method::PATCH, item.patch.as_mut()),
    ]
    .into_iter()
    .filter_map(|(method, op)| op.map(|op| (method, op)))
    .collect()
}

/// What a webhook can answer besides its own refusals: it takes no token and is not rate
/// limited, but is audited and reads a body.
const WEBHOOK: &[ErrorCode] = &[
    ErrorCode::Internal,
    ErrorCode::ActorUnavailable,
    ErrorCode::ActorTimeout,
    ErrorCode::AuditUnavailable,
    ErrorCode::PayloadTooLarge,
];

fn describe(path: &str, method: &Method, op: &mut Operation) {
    if path.starts_with("/webhooks/") {
        // Authenticated by the provider's signature, not by a token.
        op.security = Some(Vec::new());
        let codes: Vec<ErrorCode> =
            WEBHOOK.iter().chain(refusals(op.operation_id.as_deref().unwrap_or_default())).copied().collect();
        add_problems(op, codes);
        return;
    }
    if !path.starts_with("/api/") {
        // Probes are open.
        op.security = Some(Vec::new());
        return;
    }
    let scope = policy::required_scope(method, path);
    op.security = Some(vec![SecurityRequirement::new(BEARER, scope.iter().map(|s| s.as_str().to_owned()))]);

    let parameters = op.parameters.as_deref().unwrap_or_default();
    let located = |place: ParameterIn| parameters.iter().any(|p| p.parameter_in == place);
    let idempotent = parameters.iter().any(|p| p.name.eq_ignore_ascii_case(fintech::IDEMPOTENCY_KEY));
    let mut codes: Vec<ErrorCode> = AUTHENTICATION.iter().chain(GUARDED).copied().collect();
    if scope.is_some() {
        codes.push(ErrorCode::ScopeMissing);
    }
    for (applies, shared) in [
        (*method != Method::GET, WRITES),
        (op.request_body.is_some(), BODY),
        (located(ParameterIn::Query), QUERY),
        (located(ParameterIn::Path), PATH),
        (idempotent, IDEMPOTENT),
    ] {
        if applies {
            codes.extend_from_slice(shared);
        }
    }
    codes.extend_from_slice(refusals(op.operation_id.as_deref().unwrap_or_default()));
    add_problems(op, codes);
    if idempotent {
        mark_replays(op);
    }
}

/// The problem answers of `codes`, grouped by status.
fn add_problems(op: &mut Operation, codes: Vec<ErrorCode>) {
    let mut by_status: BTreeMap<u16, Vec<ErrorCode>> = BTreeMap::new();
    for code in codes {
        let listed = by_status.entry(code.status()).or_default();
        if !listed.contains(&code) {
            listed.push(code);
        }
    }
    for (status, codes) in by_status {
        op.responses.responses.entry(status.to_string()).or_insert_with(|| problem_response(status, &codes).into());
    }
}

/// The `Idempotent-Replayed` header on the success answers of an idempotent write.
fn mark_replays(op: &mut Operation) {
    for (status, response) in op.responses.responses.iter_mut() {
        if let (true, RefOr::T(response)) = (status.starts_with('2'), response) {
            response.headers.insert(
                "Idempotent-Replayed".into(),
                HeaderBuilder::new()
                    .schema(ObjectBuilder::new().schema_type(Type::String).enum_values(Some(["true"])))
                    .description(Some("Present on the replay of an answer kept under the `Idempotency-Key`."))
                    .build(),
            );
        }
    }
}

/// A problem answer listing the codes it can carry.
fn problem_response(status: u16, codes: &[ErrorCode]) -> Response {
    let listed: Vec<String> = codes.iter().map(|c| format!("`{}` ({})", c.as_str(), c.title())).collect();
    let mut response = ResponseBuilder::new()
        .description(format!("A problem: {}.", listed.join(", ")))
        .content(PROBLEM_JSON, ContentBuilder::new().schema(Some(Ref::from_schema_name("Problem"))).build());
    let header = |description: &str| {
        HeaderBuilder::new()
            .schema(ObjectBuilder::new().schema_type(Type::String))
            .description(Some(description))
            .build()
    };
    match status {
        401 => response = response.header("WWW-Authenticate", header("The bearer challenge (RFC 6750).")),
        429 => {
            for (name, what) in [
                ("Retry-After", "Seconds until a request would be accepted."),
                ("RateLimit-Limit", "Requests allowed per period."),
                ("RateLimit-Remaining", "Requests left in the period."),
                ("RateLimit-Reset", "Seconds until the limit resets."),
                ("RateLimit-Policy", "The limit and its period."),
            ] {
                response = response.header(name, header(what));
            }
        }
        503 => response = response.header("Retry-After", header("Seconds to wait before retrying.")),
        _ => {}
    }
    response.build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_idempotency_key_is_documented_as_the_server_checks_it() {
        use crate::domain::idempotency::KEY_MAX;
        let doc = serde_json::to_value(document()).unwrap();
        let key = &doc["paths"]["/api/v1/fintech/transfers"]["post"]["parameters"][0];
        assert_eq!(key["name"], "Idempotency-Key");
        assert_eq!(key["required"], true);
        assert_eq!(key["schema"]["pattern"], format!(r"^[\x21-\x7E]{{1,{KEY_MAX}}}$"));
        assert_eq!(key["schema"]["maxLength"], KEY_MAX);
    }

    #[test]
    fn the_access_reason_header_is_documented_as_the_server_checks_it() {
        use crate::http::privacy::REASON_MAX;
        let doc = serde_json::to_value(document()).unwrap();
        for (path, method) in [
            ("/api/v1/fintech/wallets/{id}", "get"),
            ("/api/v1/fintech/wallets/{id}/transactions", "get"),
            ("/api/v1/privacy/subjects/{subject}/export", "get"),
        ] {
            let parameters = doc["paths"][path][method]["parameters"].as_array().unwrap();
            let reason = parameters.iter().find(|p| p["name"] == "X-Access-Reason").unwrap();
            assert_eq!(reason["in"], "header");
            assert_eq!(reason["schema"]["maxLength"], REASON_MAX, "{path}");
            assert_eq!(reason["schema"]["pattern"], format!(r"^[^\u0000-\u001F\u007F-\u009F]{{1,{REASON_MAX}}}$"));
        }
    }

    #[test]
    fn every_module_refusal_names_a_documented_operation() {
        let doc = serde_json::to_value(document()).unwrap();
        let ids: Vec<&str> = doc["paths"]
            .as_object()
            .unwrap()
            .values()
            .flat_map(|item| item.as_object().unwrap().values())
            .filter_map(|op| op["operationId"].as_str())
            .collect();
        for (id, _) in fintech::REFUSALS
            .iter()
            .chain(system::REFUSALS)
            .chain(admin::REFUSALS)
            .chain(payments::REFUSALS)
            .chain(mobility::REFUSALS)
            .chain(esg::REFUSALS)
            .chain(social::REFUSALS)
            .chain(social_posts::REFUSALS)
            .chain(social_moderation::REFUSALS)
        {
            assert!(ids.contains(id), "{id} is not an operation of the document");
        }
    }

    #[test]
    fn every_refusal_is_documented_under_its_status() {
        let doc = serde_json::to_value(document()).unwrap();
        for (id, codes) in fintech::REFUSALS
            .iter()
            .chain(system::REFUSALS)
            .chain(admin::REFUSALS)
            .chain(payments::REFUSALS)
            .chain(mobility::REFUSALS)
            .chain(esg::REFUSALS)
            .chain(social::REFUSALS)
            .chain(social_posts::REFUSALS)
            .chain(social_moderation::REFUSALS)
        {
            let op = doc["paths"]
                .as_object()
                .unwrap()
                .values()
                .flat_map(|item| item.as_object().unwrap().values())
                .find(|op| op["operationId"] == *id)
                .unwrap();
            for code in *codes {
                let status = code.status().to_string();
                let description = op["responses"][&status]["description"].as_str().unwrap_or_default();
                assert!(description.contains(&format!("`{}`", code.as_str())), "{id} {status}: {description}");
            }
        }
    }

    #[test]
    fn probes_are_open_and_the_api_needs_the_policy_scope() {
        let doc = serde_json::to_value(document()).unwrap();
        assert_eq!(doc["paths"]["/health"]["get"]["security"], serde_json::json!([]));
        assert_eq!(doc["paths"]["/api/v1/me"]["get"]["security"], serde_json::json!([{ "bearer": [] }]));
        assert_eq!(
            doc["paths"]["/api/v1/fintech/transfers"]["post"]["security"],
            serde_json::json!([{ "bearer": ["fintech:write"] }])
        );
        assert_eq!(
            doc["paths"]["/api/v1/fintech/wallets/{id}/deposits"]["post"]["security"],
            serde_json::json!([{ "bearer": ["fintech:settle"] }])
        );
        assert_eq!(
            doc["paths"]["/api/v1/admin/tokens/revocations"]["post"]["security"],
            serde_json::json!([{ "bearer": ["admin"] }])
        );
    }
}
