//! Every error answer of the native API, from one type:
//! `{"error": {"code": "...", "message": "..."}}` with the matching status.
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use meetpool_app::AppError;
use serde::Serialize;
use serde_json::Value;
use tracing::error;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;

use crate::openapi::{each_operation, json_response};
use crate::AppState;

#[derive(Debug)]
pub struct ApiError(pub AppError);

/// The body of every error answer of the native API.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// What went wrong, for programs: `not_found`, `invalid_date`,
    /// `link_busy`, `database_unavailable`...
    pub code: &'static str,
    /// What went wrong, for people.
    pub message: String,
    /// More about a conflict, such as the `conflicting_booking_id` of
    /// `link_busy`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
}

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
        let details = match self.0 {
            AppError::Conflict { details, .. } => details,
            _ => None,
        };
        let error = ErrorDetail {
            code,
            message,
            details,
        };
        (status, Json(ErrorBody { error })).into_response()
    }
}

/// An answer in [`ErrorBody`] for what the HTTP layer itself refuses (a
/// body too large, of the wrong type, too slow), which no use case sees.
pub fn refusal(status: StatusCode, code: &'static str, message: impl Into<String>) -> Response {
    let error = ErrorDetail {
        code,
        message: message.into(),
        details: None,
    };
    (status, Json(ErrorBody { error })).into_response()
}

/// Every route that answers in [`ErrorBody`] can also meet a database that
/// is down or too contended, or a bug: documented once, here, for them all.
pub fn answers_in_error_body(mut routes: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    each_operation(&mut routes, |op| {
        for (status, description) in [
            ("500", "`internal`: an unexpected failure, logged."),
            (
                "503",
                "`database_unavailable`; `busy`: too many concurrent changes to one time slot; or `request_timeout`: the request took longer than the service allows. Try again.",
            ),
        ] {
            op.responses
                .responses
                .entry(status.to_owned())
                .or_insert_with(|| json_response(description, "ErrorBody"));
        }
        if op.request_body.is_some() {
            for (status, description) in [
                (
                    "413",
                    "`payload_too_large`: the body is larger than the service accepts.",
                ),
                (
                    "415",
                    "`unsupported_media_type`: the body is not sent as `application/json`.",
                ),
            ] {
                op.responses
                    .responses
                    .insert(status.to_owned(), json_response(description, "ErrorBody"));
            }
        }
    });
    routes
}
