//! Request parsing that answers in the API's error shape.
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use meetpool_app::AppError;
use serde::de::DeserializeOwned;

use crate::ApiError;

/// A JSON body, parsed whatever the Content-Type says; a malformed one is
/// 400 `malformed_json` with serde's explanation.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError(AppError::malformed("malformed_body", e.body_text())))?;
        serde_json::from_slice(&bytes).map(JsonBody).map_err(|e| {
            ApiError(AppError::malformed(
                "malformed_json",
                format!("the body is not valid JSON for this request: {e}"),
            ))
        })
    }
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
