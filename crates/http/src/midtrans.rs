//! The Midtrans payment notification, at its own path and at the previous
//! system's. The signature is the authentication; the answer is never a
//! redirect, and is camelCase as the previous system's was.
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use meetpool_domain::{BookingId, PaymentStatus};
use serde::Serialize;
use utoipa::{IntoResponses, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::describe;
use crate::extract::is_too_large;
use crate::seed::Always;
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(Schemas::openapi()).routes(routes!(webhook))
}

/// The webhook at the previous system's address.
pub fn previous_system() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(previous_webhook))
}

/// The fields of a Midtrans HTTP notification that meetpool reads; it
/// ignores the others. Only documented here: the domain parses the body
/// itself, leniently, so that what Midtrans adds later never breaks it.
#[derive(ToSchema)]
#[expect(dead_code, reason = "describes a body that the domain parses")]
pub struct MidtransNotification {
    order_id: String,
    #[schema(example = "200")]
    status_code: String,
    #[schema(example = "100000.00")]
    gross_amount: String,
    /// SHA-512 (hex) of `order_id + status_code + gross_amount + server key`.
    signature_key: String,
    #[schema(example = "settlement")]
    transaction_status: String,
    transaction_id: Option<String>,
    #[schema(example = "accept")]
    fraud_status: Option<String>,
    payment_type: Option<String>,
}

/// The notification is applied, now or before.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NotificationApplied {
    #[schema(inline)]
    success: Always<true>,
    #[schema(value_type = uuid::Uuid)]
    booking_id: BookingId,
    /// pending, paid, failed, cancelled, expired or refunded.
    #[schema(example = "paid")]
    payment_status: &'static str,
    /// The link the booking holds; null while it has none.
    #[schema(required = true)]
    meeting_link: Option<String>,
    /// Paid, but no link was free: the booking waits in the queue.
    requires_manual_assignment: bool,
    /// The same notification was applied before: nothing changed.
    duplicate: bool,
    /// Where participants join (see the booking's `join_url`).
    join_url: String,
}

#[derive(Serialize, ToSchema)]
pub struct NotificationRefused {
    #[schema(inline)]
    success: Always<false>,
    error: NotificationError,
}

#[derive(Serialize, ToSchema)]
pub struct NotificationError {
    /// `malformed_notification`, `invalid_signature`,
    /// `unverifiable_status`, `not_found`, `not_configured`,
    /// `database_unavailable`, `payment_gateway_unavailable`...
    code: &'static str,
    message: String,
}

/// [`Answers`] names these schemas without registering them.
#[derive(OpenApi)]
#[openapi(components(schemas(NotificationApplied, NotificationRefused)))]
struct Schemas;

/// The answers of both addresses.
#[derive(IntoResponses)]
#[expect(dead_code, reason = "describes the answers that `apply` builds")]
enum Answers {
    /// Applied, now or before.
    #[response(status = 200)]
    Applied(NotificationApplied),
    /// `malformed_notification`.
    #[response(status = 400)]
    Malformed(NotificationRefused),
    /// `invalid_signature`, or `unverifiable_status`: a status that does not
    /// go with its `status_code`. Nothing changed.
    #[response(status = 401)]
    Refused(NotificationRefused),
    /// No booking has this `order_id`.
    #[response(status = 404)]
    UnknownOrder(NotificationRefused),
    /// `payload_too_large`: no notification is that large.
    #[response(status = 413)]
    TooLarge(NotificationRefused),
    /// An internal error.
    #[response(status = 500)]
    Internal(NotificationRefused),
    /// No server key is configured, or the database or Midtrans' status API
    /// is unavailable: Midtrans retries.
    #[response(status = 503)]
    Unavailable(NotificationRefused),
}

/// Applies a Midtrans notification and the link assignment or release it
/// causes, in one transaction. Set `https://YOUR-HOST/webhooks/midtrans` as
/// the notification URL.
#[utoipa::path(post, path = "/webhooks/midtrans", tag = "midtrans",
    request_body = MidtransNotification,
    responses(Answers))]
pub async fn webhook(State(s): State<AppState>, body: Result<Bytes, BytesRejection>) -> Response {
    apply(&s, body).await
}

/// The previous system's address of [`webhook`], answering the same.
#[utoipa::path(post, path = "/functions/v1/midtrans-webhook", tag = "previous system",
    request_body = MidtransNotification,
    responses(Answers))]
pub async fn previous_webhook(
    State(s): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    apply(&s, body).await
}

async fn apply(s: &AppState, body: Result<Bytes, BytesRejection>) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(e) if is_too_large(&e) => {
            return refused(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "the notification is larger than this service accepts".into(),
            )
        }
        Err(e) => {
            return refused(
                StatusCode::BAD_REQUEST,
                "malformed_notification",
                e.body_text(),
            )
        }
    };
    match s.app.handle_notification(&body).await {
        Ok(outcome) => {
            let b = outcome.booking;
            Json(NotificationApplied {
                success: Always,
                join_url: s.app.join_url(&b),
                booking_id: b.id,
                payment_status: b.payment_status.as_str(),
                requires_manual_assignment: b.payment_status == PaymentStatus::Paid
                    && b.meeting_link_id.is_none(),
                meeting_link: b.meeting_link,
                duplicate: outcome.duplicate,
            })
            .into_response()
        }
        Err(e) => {
            let (status, code, message) = describe(&e);
            refused(status, code, message)
        }
    }
}

/// A notification's refusal: `{"success": false, "error": {"code", "message"}}`.
pub(crate) fn refused(status: StatusCode, code: &'static str, message: String) -> Response {
    let body = NotificationRefused {
        success: Always,
        error: NotificationError { code, message },
    };
    (status, Json(body)).into_response()
}
