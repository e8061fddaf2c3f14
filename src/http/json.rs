//! A JSON body extractor whose errors name the offending field and come back as problem+json.

use std::ops::Deref;

use actix_web::{dev::Payload, http::header, web, FromRequest, HttpRequest};
use futures::future::LocalBoxFuture;
use serde::de::DeserializeOwned;

use crate::error::{AppError, ErrorCode};

/// A JSON request body of type `T`.
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<T> Deref for Json<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> Json<T> {
    /// The body.
    pub fn into_inner(self) -> T {
        self.0
    }
}

/// Parse `bytes` as `T`, naming the field at fault on error.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(bytes)).map_err(malformed)
}

/// Read an already parsed body as `T`, naming the field at fault on error (handlers that keep
/// the raw body for idempotency parse once into a `Value`, then into their type).
pub fn from_value<T: DeserializeOwned>(body: &serde_json::Value) -> Result<T, AppError> {
    serde_path_to_error::deserialize(body).map_err(malformed)
}

fn malformed(e: serde_path_to_error::Error<serde_json::Error>) -> AppError {
    let field = e.path().to_string();
    let inner = e.into_inner();
    if field == "." || field.is_empty() {
        AppError::client(ErrorCode::MalformedJson, format!("the body is not valid JSON for this request: {inner}"))
    } else {
        AppError::client(ErrorCode::MalformedJson, format!("field `{field}`: {inner}")).with("field", field)
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<mime::Mime>().ok())
            .is_some_and(|m| m.subtype() == mime::JSON || m.suffix() == Some(mime::JSON));
        let bytes = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            if !json {
                return Err(
                    AppError::client(ErrorCode::UnsupportedMediaType, "send the body as application/json").into()
                );
            }
            let bytes = bytes.await?;
            Ok(Json(parse(&bytes)?))
        })
    }
}
