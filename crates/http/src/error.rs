//! Every error answer of the native API, from one type:
//! `{"error": {"code": "...", "message": "..."}}` with the matching status.
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use meetpool_app::AppError;
use serde_json::json;
use tracing::error;

#[derive(Debug)]
pub struct ApiError(pub AppError);

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        Self(e)
    }
}

/// The status, machine code and human message of an error. Internal
/// details are logged here and never shown.
pub fn describe(e: &AppError) -> (StatusCode, &'static str, String) {
    match e {
        AppError::Malformed { code, message } => (StatusCode::BAD_REQUEST, code, message.clone()),
        AppError::Invalid { code, message } => {
            (StatusCode::UNPROCESSABLE_ENTITY, code, message.clone())
        }
        AppError::NotFound(what) => (
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        ),
        AppError::Conflict { code, message, .. } => (StatusCode::CONFLICT, code, message.clone()),
        AppError::Unauthorized { code, message } => {
            (StatusCode::UNAUTHORIZED, code, message.clone())
        }
        AppError::NotConfigured(message) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not_configured",
            message.clone(),
        ),
        AppError::Gateway(message) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "payment_gateway_unavailable",
            message.clone(),
        ),
        AppError::Unavailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            "database_unavailable",
            "the database is unavailable; try again shortly".into(),
        ),
        AppError::Busy => (
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "too many concurrent changes to the same time slot; try again".into(),
        ),
        AppError::Internal(detail) => {
            error!(detail = %detail, "internal error");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error".into(),
            )
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message) = describe(&self.0);
        let mut body = json!({ "error": { "code": code, "message": message } });
        if let AppError::Conflict {
            details: Some(d), ..
        } = &self.0
        {
            body["error"]["details"] = d.clone();
        }
        (status, Json(body)).into_response()
    }
}
