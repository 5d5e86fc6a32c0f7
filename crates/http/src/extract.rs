//! Request parsing that answers in the API's error shape.
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use meetpool_app::AppError;
use serde::de::DeserializeOwned;

use crate::error::refusal;
use crate::ApiError;

/// A JSON body: 415 `unsupported_media_type` unless the Content-Type says
/// JSON, 413 `payload_too_large` past the body limit, 400 `malformed_json`
/// with serde's explanation when it does not parse.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(refusal(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "the body must be JSON, sent with Content-Type: application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                return too_large();
            }
            ApiError(AppError::malformed("malformed_body", e.body_text())).into_response()
        })?;
        serde_json::from_slice(&bytes).map(JsonBody).map_err(|e| {
            ApiError(AppError::malformed(
                "malformed_json",
                format!("the body is not valid JSON for this request: {e}"),
            ))
            .into_response()
        })
    }
}

/// `application/json`, with parameters or not, or a `+json` type.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    kind.eq_ignore_ascii_case("application")
        && (subtype.eq_ignore_ascii_case("json")
            || subtype.len() > 5 && subtype[subtype.len() - 5..].eq_ignore_ascii_case("+json"))
}

/// 413 `payload_too_large` in the native API's shape.
pub fn too_large() -> Response {
    refusal(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "the body is larger than this service accepts",
    )
}

/// Whether a raw body was refused for its size rather than lost.
pub fn is_too_large(e: &BytesRejection) -> bool {
    e.status() == StatusCode::PAYLOAD_TOO_LARGE
}

/// A query string; a malformed one is 400 `malformed_query`.
pub struct QueryParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let q = parts.uri.query().unwrap_or("");
        serde_urlencoded_like(q)
            .map(QueryParams)
            .map_err(|e| ApiError(AppError::malformed("malformed_query", e)))
    }
}

fn serde_urlencoded_like<T: DeserializeOwned>(q: &str) -> Result<T, String> {
    axum::extract::Query::<T>::try_from_uri(
        &format!("/?{q}")
            .parse()
            .map_err(|_| "bad query".to_owned())?,
    )
    .map(|axum::extract::Query(v)| v)
    .map_err(|e| e.body_text())
}

/// Parses an id from the path; a malformed one is 400 `invalid_id`.
pub fn parse_id<T: std::str::FromStr>(raw: &str, what: &str) -> Result<T, ApiError> {
    raw.parse().map_err(|_| {
        ApiError(AppError::malformed(
            "invalid_id",
            format!("{what} id must be a UUID (got {raw:?})"),
        ))
    })
}
