//! A JSON body extractor whose errors name the offending field and come back as problem+json,
//! and the integer reading the OpenAPI document promises.

use std::{fmt, ops::Deref};

use actix_web::{dev::Payload, http::header, web, FromRequest, HttpRequest};
use futures::future::LocalBoxFuture;
use serde::de::{self, DeserializeOwned, Deserializer, Unexpected, Visitor};

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

/// Parse `bytes` as `T`, naming the field at fault on error. Every request body is a JSON
/// object: an array is refused even where its items would fill the fields in order (serde
/// accepts that form for a struct, the documented API does not).
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return Err(AppError::client(ErrorCode::MalformedJson, "the body must be a JSON object, not an array"));
    }
    serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(bytes)).map_err(malformed)
}

/// Read a JSON number as an `i64` the way JSON Schema's `integer` does: `1880238` and
/// `1880238.0` are the same integer, while `10.5`, a value outside `i64` and anything that is not
/// a number are refused (then the field is `malformed_json`). For `#[serde(deserialize_with)]`.
pub fn integer<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    deserializer.deserialize_i64(Integer)
}

struct Integer;

/// 2^63: the first float above `i64::MAX`, exactly representable.
const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;

impl Visitor<'_> for Integer {
    type Value = i64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an integer")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
        Ok(v)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
        i64::try_from(v).map_err(|_| E::invalid_value(Unexpected::Unsigned(v), &self))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<i64, E> {
        if v.fract() == 0.0 && (-TWO_POW_63..TWO_POW_63).contains(&v) {
            // Exact: a whole float in range converts without rounding.
            Ok(v as i64)
        } else {
            Err(E::invalid_value(Unexpected::Float(v), &self))
        }
    }
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

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    struct Body {
        #[serde(deserialize_with = "integer")]
        amount: i64,
    }

    fn amount(json: &str) -> Result<i64, String> {
        parse::<Body>(json.as_bytes()).map(|b| b.amount).map_err(|e| e.to_string())
    }

    #[test]
    fn whole_numbers_are_integers_however_they_are_written() {
        assert_eq!(amount(r#"{"amount": 1880238}"#), Ok(1_880_238));
        assert_eq!(amount(r#"{"amount": 1880238.0}"#), Ok(1_880_238));
        assert_eq!(amount(r#"{"amount": 1e3}"#), Ok(1_000));
        assert_eq!(amount(r#"{"amount": -5.0}"#), Ok(-5));
        assert_eq!(amount(r#"{"amount": 9223372036854775807}"#), Ok(i64::MAX));
        assert_eq!(amount(r#"{"amount": -9223372036854775808}"#), Ok(i64::MIN));
    }

    #[test]
    fn fractions_and_values_outside_i64_are_refused() {
        for bad in ["10.5", "1e20", "9223372036854775808", "9.3e18", "-9.3e18", "0.1", "\"5\"", "true", "null"] {
            assert!(amount(&format!(r#"{{"amount": {bad}}}"#)).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_refusal_names_the_field() {
        let err = parse::<Body>(br#"{"amount": 10.5}"#).map(|b| b.amount).unwrap_err();
        assert_eq!(err.code(), ErrorCode::MalformedJson);
        assert_eq!(err.problem(None).extensions["field"], "amount");
    }

    #[test]
    fn an_array_is_not_a_body_even_when_its_items_would_fill_the_fields() {
        assert_eq!(parse::<Body>(b"[7]").map(|b| b.amount).unwrap_err().code(), ErrorCode::MalformedJson);
        assert_eq!(parse::<Body>(b" \n [7]").map(|b| b.amount).unwrap_err().code(), ErrorCode::MalformedJson);
        assert_eq!(amount(r#"{"amount": 7}"#), Ok(7));
    }
}
