//! The previous system's assign route, answering exactly as it did, so its
//! clients keep working by changing only the base URL. Its answers are
//! camelCase and carry `success`, unlike the native API's.
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use meetpool_app::{AppError, AssignOutcome};
use meetpool_domain::LinkId;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::attempts::{retry_after, Attempts, Client};
use crate::error::describe;
use crate::extract::is_too_large;
use crate::{AdminToken, AppState};

const NO_LINKS: &str = "No available meeting links at this time. Please contact support.";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(assign_meeting_link))
}

/// A boolean that is always `B`, and documented as such: the seed's
/// clients branch on `success` and `requiresManualAssignment`.
#[derive(Clone, Copy, Debug)]
pub struct Always<const B: bool>;

impl<const B: bool> Serialize for Always<B> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bool(B)
    }
}

impl<const B: bool> PartialSchema for Always<B> {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Boolean)
            .enum_values(Some([B]))
            .into()
    }
}

impl<const B: bool> ToSchema for Always<B> {}

#[derive(Deserialize, ToSchema)]
pub struct AssignRequest {
    #[serde(rename = "bookingId")]
    #[schema(format = Uuid)]
    booking_id: String,
}

/// The booking holds a link, given now or before.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AssignSuccess {
    #[schema(inline)]
    success: Always<true>,
    #[schema(value_type = String, required = true)]
    meeting_link: Option<String>,
    #[schema(value_type = uuid::Uuid, required = true)]
    meeting_link_id: Option<LinkId>,
    /// Where participants join: leads to the meeting link inside the join
    /// window, and keeps working if the booking moves to another link.
    join_url: String,
}

/// No link is free for the booking's time.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AssignNoLinks {
    #[schema(inline)]
    success: Always<false>,
    #[schema(example = "No available meeting links at this time. Please contact support.")]
    error: &'static str,
    #[schema(inline)]
    requires_manual_assignment: Always<true>,
}

#[derive(Serialize, ToSchema)]
pub struct AssignFailure {
    #[schema(inline)]
    success: Always<false>,
    /// What went wrong, for people.
    error: String,
}

/// An answer in the previous system's shape: `{"success": false, "error": message}`.
pub(crate) fn failure(status: StatusCode, message: &str) -> Response {
    let body = AssignFailure {
        success: Always,
        error: message.to_owned(),
    };
    (status, Json(body)).into_response()
}

/// Gives a paid booking a link (the previous system's edge function).
/// Idempotent: a booking that has a link gets the same answer again. The
/// `apikey` header that Supabase clients add is ignored.
#[utoipa::path(post, path = "/functions/v1/assign-meeting-link", tag = "previous system",
    request_body = AssignRequest,
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The booking holds this link.", body = AssignSuccess),
        (status = 400, description = "The body is not JSON, or `bookingId` is missing or not a UUID.", body = AssignFailure),
        (status = 401, description = "No admin token, or not the right one.", body = AssignFailure),
        (status = 404, description = "`Booking not found`.", body = AssignFailure),
        (status = 409, description = "No link is free for the booking's time: it waits in the queue.", body = AssignNoLinks),
        (status = 413, description = "The body is larger than the service accepts.", body = AssignFailure),
        (status = 422, description = "The booking is not paid.", body = AssignFailure),
        (status = 429, description = "Too many wrong admin tokens from this client address; `Retry-After` says when to try again.", body = AssignFailure),
        (status = 500, description = "An internal error.", body = AssignFailure),
        (status = 503, description = "The database is unavailable or too busy; try again.", body = AssignFailure),
    ))]
pub async fn assign_meeting_link(
    State(s): State<AppState>,
    Extension(admin): Extension<Arc<AdminToken>>,
    Extension(attempts): Extension<Arc<Attempts>>,
    client: Client,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let presented = headers.contains_key(header::AUTHORIZATION);
    if let Some(left) = attempts.blocked(client).filter(|_| presented) {
        let mut refused = failure(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many wrong service keys from this address: try again later",
        );
        refused
            .headers_mut()
            .insert(header::RETRY_AFTER, retry_after(left));
        return refused;
    }
    if !admin.accepts(&headers) {
        if presented {
            attempts.failed(client);
        }
        return failure(
            StatusCode::UNAUTHORIZED,
            "Unauthorized: a valid service key is required",
        );
    }
    let body = match body {
        Ok(body) => body,
        Err(e) if is_too_large(&e) => {
            return failure(StatusCode::PAYLOAD_TOO_LARGE, "Request body is too large")
        }
        Err(_) => return failure(StatusCode::BAD_REQUEST, "Request body could not be read"),
    };
    let Ok(value) = serde_json::from_slice::<Value>(&body) else {
        return failure(
            StatusCode::BAD_REQUEST,
            "Request body must be JSON: {\"bookingId\": \"<uuid>\"}",
        );
    };
    // Only an object: serde would also read a struct from an array.
    let request = match value {
        Value::Object(_) => AssignRequest::deserialize(&value).ok(),
        _ => None,
    };
    let Some(AssignRequest { booking_id: raw }) = request else {
        return failure(StatusCode::BAD_REQUEST, "bookingId is required");
    };
    let Ok(id) = raw.parse() else {
        return failure(StatusCode::BAD_REQUEST, "bookingId must be a UUID");
    };
    match s.app.assign(id).await {
        Ok(AssignOutcome::Assigned { booking, .. }) => Json(AssignSuccess {
            success: Always,
            join_url: s.app.join_url(&booking),
            meeting_link: booking.meeting_link,
            meeting_link_id: booking.meeting_link_id,
        })
        .into_response(),
        Ok(AssignOutcome::Exhausted { .. }) => (
            StatusCode::CONFLICT,
            Json(AssignNoLinks {
                success: Always,
                error: NO_LINKS,
                requires_manual_assignment: Always,
            }),
        )
            .into_response(),
        Err(AppError::NotFound(_)) => failure(StatusCode::NOT_FOUND, "Booking not found"),
        Err(AppError::Invalid { message, .. }) => {
            failure(StatusCode::UNPROCESSABLE_ENTITY, &message)
        }
        Err(e) => {
            let (status, _, message) = describe(&e);
            failure(status, &message)
        }
    }
}
