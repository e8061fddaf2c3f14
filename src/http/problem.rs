//! Turns every error response that is not already a problem (actix's own 404, 405, 413, 415 and
//! extractor failures) into `application/problem+json` with a code from the table, and describes
//! the problem body for the OpenAPI document.

use actix_web::{
    body::{EitherBody, MessageBody},
    dev::ServiceResponse,
    http::{header, StatusCode},
    middleware::{ErrorHandlerResponse, ErrorHandlers},
    HttpRequest,
};
use utoipa::{
    openapi::{ObjectBuilder, Type},
    ToSchema,
};

use crate::error::{AppError, ErrorCode};

/// The problem body as the OpenAPI document describes it (schema `Problem`); it is rendered by
/// [`crate::error::Problem`], and the document's tests and fuzzing check the two agree.
#[derive(ToSchema)]
#[schema(
    as = Problem,
    description = "An RFC 9457 problem document. `code` is stable; `field`, `fields` and `missing_scope` appear with the codes they explain."
)]
pub struct ProblemSchema {
    /// URI naming the problem type (`https://beryl-ecosystem.com/problems/<code>`).
    #[schema(rename = "type")]
    pub kind: String,
    /// Short title of the code.
    pub title: String,
    /// The HTTP status.
    #[schema(minimum = 400, maximum = 599)]
    pub status: u16,
    /// Explanation for this occurrence (generic for 5xx).
    pub detail: String,
    /// Stable code clients match on.
    #[schema(schema_with = codes)]
    pub code: String,
    /// The request path, for routing failures.
    #[schema(required = false)]
    pub instance: String,
    /// Correlation id of the request (absent from replayed refusals).
    #[schema(required = false)]
    pub request_id: String,
    /// The request field at fault.
    #[schema(required = false)]
    pub field: String,
    /// The fields that differ from the request an idempotency key was first used for.
    #[schema(required = false)]
    pub fields: Vec<String>,
    /// The scope the token lacks.
    #[schema(required = false)]
    pub missing_scope: String,
}

fn codes() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String).enum_values(Some(ErrorCode::ALL.iter().map(|c| c.as_str())))
}

/// The middleware.
pub fn fallback<B: MessageBody + 'static>() -> ErrorHandlers<B> {
    ErrorHandlers::new().default_handler(render)
}

fn is_structured(res: &ServiceResponse<impl MessageBody>) -> bool {
    res.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|ct| ct.contains("json"))
}

fn render<B: MessageBody + 'static>(res: ServiceResponse<B>) -> actix_web::Result<ErrorHandlerResponse<B>> {
    if is_structured(&res) {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let status = res.status();
    // A 405 keeps actix's `Allow` header: the methods the resource serves.
    let allow = res.headers().get(header::ALLOW).cloned();
    let (req, _) = res.into_parts();
    let problem = problem_for(status, &req);
    let mut response = problem.problem(Some(req.path())).response(None).map_into_right_body::<B>();
    if let Some(allow) = allow {
        response.headers_mut().insert(header::ALLOW, allow);
    }
    let response: actix_web::HttpResponse<EitherBody<B>> = response;
    Ok(ErrorHandlerResponse::Response(ServiceResponse::new(req, response)))
}

fn problem_for(status: StatusCode, req: &HttpRequest) -> AppError {
    let (code, detail) = match status {
        StatusCode::NOT_FOUND => (ErrorCode::NotFound, format!("no resource at {}", req.path())),
        StatusCode::METHOD_NOT_ALLOWED => {
            (ErrorCode::MethodNotAllowed, format!("{} is not allowed on {}", req.method(), req.path()))
        }
        StatusCode::PAYLOAD_TOO_LARGE => {
            (ErrorCode::PayloadTooLarge, "the request body is larger than the configured limit".into())
        }
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            (ErrorCode::UnsupportedMediaType, "this media type is not accepted here".into())
        }
        StatusCode::SERVICE_UNAVAILABLE => {
            return AppError::server(ErrorCode::ServiceUnavailable, "unstructured 503 response")
        }
        s if s.is_server_error() => return AppError::Unexpected(anyhow::anyhow!("unstructured {s} response")),
        _ => (ErrorCode::BadRequest, "the request could not be understood".into()),
    };
    AppError::client(code, detail)
}
