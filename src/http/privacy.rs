//! `/api/v1/privacy`: erasure of a subject's personal data (by the subject, or by an
//! administrator for a subject, with a reason), and the export of everything held about the
//! caller, or (administrators, with a reason, audited) about another subject.

use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{guard::RequestFacts, json::Json, state::AppState};
use crate::{
    auth::Principal,
    domain::privacy::{ErasureRecord, Requester},
    error::{AppError, ErrorCode},
};

/// Header carrying the reason an administrator gives for reaching another subject's data.
pub const ACCESS_REASON: &str = "x-access-reason";

/// Longest reason, in characters.
pub const REASON_MAX: usize = 500;

/// Longest subject id, in characters.
pub const SUBJECT_MAX: usize = 255;

/// What each operation here can refuse besides what every operation can (see
/// [`super::openapi`]).
pub const REFUSALS: &[(&str, &[ErrorCode])] = &[
    (
        "requestErasure",
        &[ErrorCode::InvalidParameter, ErrorCode::NotOwner, ErrorCode::ReasonRequired, ErrorCode::PrivacyUnavailable],
    ),
    ("exportMyData", &[ErrorCode::PrivacyUnavailable]),
    (
        "exportSubjectData",
        &[
            ErrorCode::InvalidParameter,
            ErrorCode::NotOwner,
            ErrorCode::ReasonRequired,
            ErrorCode::PrivacyUnavailable,
            ErrorCode::AuditUnavailable,
        ],
    ),
];

/// Mount the routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/privacy/erasure-requests").route(web::post().to(request_erasure)))
        .service(web::resource("/privacy/export").route(web::get().to(export_mine)))
        .service(web::resource("/privacy/subjects/{subject}/export").route(web::get().to(export_subject)));
}

/// An erasure to carry out.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(as = ErasureRequest)]
#[serde(deny_unknown_fields)]
pub struct ErasureRequest {
    /// Whose data to erase; the caller when absent. Another subject needs `admin` and a reason.
    #[schema(min_length = 1, max_length = 255, pattern = r"^[^\u0000-\u001F\u007F-\u009F]{1,255}$", example = "alice")]
    pub subject: Option<String>,
    /// Why (required when an administrator erases another subject's data); audited.
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]{1,500}$",
        example = "request received by post, case 2026-118"
    )]
    pub reason: Option<String>,
}

/// The signed completion record of an erasure.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ErasureRecord)]
pub struct ErasureBody {
    /// Identity of the erasure.
    pub id: uuid::Uuid,
    /// The subject's blind index (hex): the record names no plaintext.
    pub subject: String,
    /// `subject` (for themself) or `admin` (with `reason`).
    #[schema(value_type = Object)]
    pub requested_by: serde_json::Value,
    /// Id of the subject key deleted (`null` if the subject had none).
    pub key_id: Option<String>,
    /// What each domain removed or made unreadable, by `<domain>.<kind>`.
    #[schema(value_type = Object)]
    pub removed: serde_json::Value,
    /// Completion time.
    pub completed_at: chrono::DateTime<chrono::Utc>,
    /// Id of the master key whose derived key signed it.
    pub signed_with: String,
    /// Hex HMAC-SHA256 of the record without its signature.
    pub signature: String,
}

impl From<ErasureRecord> for ErasureBody {
    fn from(r: ErasureRecord) -> Self {
        Self {
            id: r.id,
            subject: r.subject,
            requested_by: serde_json::to_value(&r.requested_by).unwrap_or_default(),
            key_id: r.key_id,
            removed: serde_json::to_value(&r.removed).unwrap_or_default(),
            completed_at: r.completed_at,
            signed_with: r.signed_with,
            signature: r.signature,
        }
    }
}

/// Everything held about a subject.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = PersonalDataExport)]
pub struct ExportBody {
    /// The subject.
    pub subject: String,
    /// When the archive was made.
    pub generated_at: chrono::DateTime<chrono::Utc>,
    /// One member per domain holding personal data (`fintech`: wallets with every movement;
    /// `privacy`: the subject's erasure records).
    #[schema(value_type = Object)]
    pub domains: serde_json::Value,
}

/// The subject of an administrator's read.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct SubjectPath {
    /// The subject's id (a token's `sub`): 1 to 255 characters, none of them a control character.
    #[param(min_length = 1, max_length = 255, pattern = r"^[^\u0000-\u001F\u007F-\u009F]{1,255}$")]
    pub subject: String,
}

/// `subject` checked: 1 to 255 printable characters (400 `invalid_parameter` naming `field`).
pub fn checked_subject(subject: &str, field: &'static str) -> Result<(), AppError> {
    let n = subject.chars().count();
    if n == 0 || n > SUBJECT_MAX || subject.chars().any(char::is_control) {
        return Err(AppError::client(
            ErrorCode::InvalidParameter,
            format!("the subject must be 1 to {SUBJECT_MAX} printable characters"),
        )
        .with("field", field));
    }
    Ok(())
}

/// The reason given, required from an administrator reaching someone else's data: 403
/// `reason_required` without one, 400 `invalid_parameter` for a malformed one.
pub fn required_reason(given: Option<String>) -> Result<String, AppError> {
    match given.map(|r| r.trim().to_owned()).filter(|r| !r.is_empty()) {
        Some(r) => check_reason(Some(&r)).map(|()| r),
        None => Err(AppError::client(
            ErrorCode::ReasonRequired,
            "reaching another subject's personal data needs a reason (X-Access-Reason header or `reason` field)",
        )
        .with("field", "reason")),
    }
}

/// A reason, where one is given: 1 to [`REASON_MAX`] printable characters.
fn check_reason(given: Option<&str>) -> Result<(), AppError> {
    match given {
        Some(r) if r.is_empty() || r.chars().count() > REASON_MAX || r.chars().any(char::is_control) => {
            Err(AppError::client(
                ErrorCode::InvalidParameter,
                format!("the reason must be 1 to {REASON_MAX} printable characters"),
            )
            .with("field", "reason"))
        }
        _ => Ok(()),
    }
}

/// The reason an administrator gives for reaching another subject's personal data (`given`: a
/// body's field, or the header from [`given_reason`]), once audited; refused without one.
pub async fn audited_reason(
    state: &AppState,
    req: &HttpRequest,
    principal: &Principal,
    given: Option<String>,
) -> Result<String, AppError> {
    let reason = required_reason(given)?;
    let Some(mut facts) = req.extensions().get::<RequestFacts>().cloned() else { return Ok(reason) };
    if facts.sealing.is_none() {
        // A read: the guard left the keys to be found when a record is made.
        facts.sealing = state.guard.audit_sealing(Some(principal.subject.as_str())).await;
    }
    let event = facts.event(Some(principal.subject.as_str()), 200, crate::domain::audit::OUTCOME_SUCCESS);
    state.guard.settle_read_of_another(event, reason.clone()).await?;
    Ok(reason)
}

/// Whether `principal` may read `subject`'s personal data: themself, or an administrator with a
/// reason in `X-Access-Reason`, which is audited before anything is read.
pub async fn may_read_personal_data_of(
    state: &AppState,
    req: &HttpRequest,
    principal: &Principal,
    subject: &str,
) -> Result<(), AppError> {
    checked_subject(subject, "subject")?;
    let given = given_reason(req)?;
    if subject != principal.subject {
        principal.require_owner(subject)?;
        audited_reason(state, req, principal, given).await?;
    }
    Ok(())
}

/// Erase a subject's personal data: their key is deleted (every copy of their sealed fields,
/// in tables, backups, events and audit files, becomes unreadable), what can be removed is
/// removed, the ledger is kept with its personal fields unreadable. Answers the signed
/// completion record, which is also kept.
#[utoipa::path(
    post,
    path = "/api/v1/privacy/erasure-requests",
    operation_id = "requestErasure",
    tag = "privacy",
    request_body(content = ErasureRequest, example = json!({})),
    responses((status = 201, description = "The erasure is complete.", body = ErasureBody))
)]
#[tracing::instrument(skip_all)]
pub async fn request_erasure(
    state: web::Data<AppState>,
    req: HttpRequest,
    principal: Principal,
    body: Json<ErasureRequest>,
) -> Result<HttpResponse, AppError> {
    let ErasureRequest { subject, reason } = body.into_inner();
    let subject = subject.unwrap_or_else(|| principal.subject.clone());
    checked_subject(&subject, "subject")?;
    check_reason(reason.as_deref())?;
    let requested_by = if subject == principal.subject {
        Requester::Subject
    } else {
        principal.require_owner(&subject)?;
        let given = match reason {
            Some(reason) => Some(reason),
            None => given_reason(&req)?,
        };
        Requester::Admin { reason: audited_reason(&state, &req, &principal, given).await? }
    };
    let record = state.actors.privacy.erase(&subject, requested_by).await.map_err(AppError::from)?;
    Ok(HttpResponse::Created().json(ErasureBody::from(record)))
}

/// The reason in the request's `X-Access-Reason` header, checked wherever the header is sent,
/// also when no reason is needed: an empty, overlong or unprintable one is 400
/// `invalid_parameter`, as the document says.
pub fn given_reason(req: &HttpRequest) -> Result<Option<String>, AppError> {
    let Some(value) = req.headers().get(ACCESS_REASON) else { return Ok(None) };
    let reason = header_text(value.as_bytes());
    check_reason(Some(&reason))?;
    Ok(Some(reason))
}

/// A header's value as text: UTF-8, so that a reason may be written in any language, and
/// otherwise ISO-8859-1, the historical charset of HTTP header fields.
pub fn header_text(value: &[u8]) -> String {
    match std::str::from_utf8(value) {
        Ok(text) => text.to_owned(),
        Err(_) => value.iter().map(|&b| char::from(b)).collect(),
    }
}

/// Everything the service holds about the caller, across every domain, as JSON.
#[utoipa::path(
    get,
    path = "/api/v1/privacy/export",
    operation_id = "exportMyData",
    tag = "privacy",
    responses((status = 200, description = "The archive.", body = ExportBody))
)]
#[tracing::instrument(skip_all)]
pub async fn export_mine(state: web::Data<AppState>, principal: Principal) -> Result<HttpResponse, AppError> {
    let archive = state.actors.privacy.export(&principal.subject).await.map_err(AppError::from)?;
    Ok(HttpResponse::Ok().json(archive))
}

/// Everything the service holds about another subject (`admin`, with a reason in
/// `X-Access-Reason`; audited).
#[utoipa::path(
    get,
    path = "/api/v1/privacy/subjects/{subject}/export",
    operation_id = "exportSubjectData",
    tag = "privacy",
    params(SubjectPath, ("X-Access-Reason" = Option<String>, Header, description = "Why the data is read (required unless the subject is the caller); audited.", min_length = 1, max_length = 500, pattern = r"^[^\u0000-\u001F\u007F-\u009F]{1,500}$")),
    responses((status = 200, description = "The archive.", body = ExportBody))
)]
#[tracing::instrument(skip_all)]
pub async fn export_subject(
    state: web::Data<AppState>,
    req: HttpRequest,
    principal: Principal,
    path: web::Path<SubjectPath>,
) -> Result<HttpResponse, AppError> {
    let subject = path.into_inner().subject;
    may_read_personal_data_of(&state, &req, &principal, &subject).await?;
    let archive = state.actors.privacy.export(&subject).await.map_err(AppError::from)?;
    Ok(HttpResponse::Ok().json(archive))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_is_read_as_utf8_and_otherwise_as_latin1() {
        assert_eq!(header_text("enquête n°4".as_bytes()), "enquête n°4");
        assert_eq!(header_text(b"enqu\xeate"), "enquête");
        assert!(check_reason(Some(&header_text(b"bell\x85"))).is_err(), "C1 controls are refused in either charset");
    }
}
