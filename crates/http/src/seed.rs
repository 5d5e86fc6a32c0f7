//! The previous system's routes, answering exactly as it did, so its
//! clients keep working by changing only the base URL.
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use meetpool_app::{AppError, AssignOutcome};
use meetpool_domain::{BookingId, PaymentStatus};
use serde_json::{json, Value};

use crate::error::describe;
use crate::AppState;

const NO_LINKS: &str = "No available meeting links at this time. Please contact support.";

fn failure(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "success": false, "error": message }))).into_response()
}

/// `POST /functions/v1/assign-meeting-link` `{"bookingId": "<uuid>"}`.
pub async fn assign_meeting_link(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !s.admin.accepts(&headers) {
        return failure(
            StatusCode::UNAUTHORIZED,
            "Unauthorized: a valid service key is required",
        );
    }
    let Ok(value) = serde_json::from_slice::<Value>(&body) else {
        return failure(
            StatusCode::BAD_REQUEST,
            "Request body must be JSON: {\"bookingId\": \"<uuid>\"}",
        );
    };
    let Some(raw) = value.get("bookingId").and_then(Value::as_str) else {
        return failure(StatusCode::BAD_REQUEST, "bookingId is required");
    };
    let Ok(id) = raw.parse::<BookingId>() else {
        return failure(StatusCode::BAD_REQUEST, "bookingId must be a UUID");
    };
    match s.app.assign(id).await {
        Ok(AssignOutcome::Assigned { booking, .. }) => Json(json!({
            "success": true,
            "meetingLink": booking.meeting_link,
            "meetingLinkId": booking.meeting_link_id,
        }))
        .into_response(),
        Ok(AssignOutcome::Exhausted { .. }) => (
            StatusCode::CONFLICT,
            Json(json!({ "success": false, "error": NO_LINKS, "requiresManualAssignment": true })),
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

/// `POST /functions/v1/midtrans-webhook` and `POST /webhooks/midtrans`.
/// The signature is the authentication; the answer is never a redirect.
pub async fn midtrans_webhook(State(s): State<AppState>, body: Bytes) -> Response {
    match s.app.handle_notification(&body).await {
        Ok(outcome) => {
            let b = &outcome.booking;
            Json(json!({
                "success": true,
                "bookingId": b.id,
                "paymentStatus": b.payment_status.as_str(),
                "meetingLink": b.meeting_link,
                "requiresManualAssignment": b.payment_status == PaymentStatus::Paid && b.meeting_link_id.is_none(),
                "duplicate": outcome.duplicate,
            }))
            .into_response()
        }
        Err(e) => {
            let (status, code, message) = describe(&e);
            (
                status,
                Json(json!({ "success": false, "error": { "code": code, "message": message } })),
            )
                .into_response()
        }
    }
}
