//! Bookings: creation, listing, payment changes by hand, manual assignment
//! and the audit trail.
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use meetpool_app::views::{BookingView, EventView};
use meetpool_app::{AppError, BookingInput, BookingQuery, RescheduleInput};
use meetpool_domain::{BookingId, LinkId, PaymentStatus};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ErrorBody;
use crate::extract::{parse_id, JsonBody, QueryParams};
use crate::{ApiResult, AppState};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_bookings, create_booking))
        .routes(routes!(get_booking, update_booking))
        .routes(routes!(booking_events))
        .routes(routes!(assign_link, release_link))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BookingBody {
    /// Unique.
    order_id: String,
    user_id: String,
    expert_id: String,
    #[schema(format = Uuid)]
    session_type_id: String,
    /// `YYYY-MM-DD` in the platform's time zone, in the years 2000 to 2199.
    #[schema(format = Date)]
    booking_date: String,
    /// `HH:MM` in the platform's time zone.
    #[schema(example = "14:00")]
    booking_time: String,
    #[serde(default)]
    #[schema(minimum = 0)]
    price: i64,
    /// `pending` when absent; `paid` for a booking imported already paid,
    /// which is assigned at once.
    payment_status: Option<String>,
    /// `confirmed` for a paid booking and `pending` otherwise when absent.
    status: Option<String>,
    /// Reserve a link for this unpaid booking for `MEETPOOL_HOLD_MINUTES`
    /// (paying turns the hold into the assignment), or create nothing and
    /// answer 409 `slot_unavailable`.
    #[serde(default)]
    hold: bool,
}

/// Creates a booking; a paid one gets a link at once, or waits in the
/// queue when none is free.
#[utoipa::path(post, path = "/api/bookings", tag = "bookings",
    request_body = BookingBody,
    responses(
        (status = 201, description = "Created.", body = BookingView),
        (status = 400, description = "Malformed body.", body = ErrorBody),
        (status = 409, description = "`duplicate_order_id`; `slot_unavailable`: a hold was asked and no link can be reserved (nothing is created).", body = ErrorBody),
        (status = 422, description = "A value it cannot take, such as `invalid_slot` (a local time the clocks skip), `unknown_session_type`, `invalid_hold` (a hold for a booking that is not pending) or `starts_in_the_past` (a hold or an unpaid booking whose session has already begun; history is created paid, cancelled or refunded).", body = ErrorBody),
    ))]
pub async fn create_booking(
    State(s): State<AppState>,
    JsonBody(b): JsonBody<BookingBody>,
) -> ApiResult<(StatusCode, Json<BookingView>)> {
    let booking = s
        .app
        .create_booking(BookingInput {
            order_id: b.order_id,
            user_id: b.user_id,
            expert_id: b.expert_id,
            session_type_id: b.session_type_id,
            booking_date: b.booking_date,
            booking_time: b.booking_time,
            price: b.price,
            payment_status: b.payment_status,
            status: b.status,
            hold: b.hold,
        })
        .await?;
    Ok((StatusCode::CREATED, Json(s.app.booking_view(&booking))))
}

#[utoipa::path(get, path = "/api/bookings/{id}", tag = "bookings",
    params(("id" = uuid::Uuid, Path, description = "The booking's id.")),
    responses(
        (status = 200, description = "The booking.", body = BookingView),
        (status = 400, description = "`invalid_id`.", body = ErrorBody),
        (status = 404, description = "No such booking.", body = ErrorBody),
    ))]
pub async fn get_booking(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<BookingView>> {
    let id: BookingId = parse_id(&id, "booking")?;
    Ok(Json(s.app.booking_view(&s.app.booking(id).await?)))
}

/// One page of the bookings asked for, by start, then id. When more
/// follow, the `Link` header names the next page (`rel="next"`): the same
/// query with `after` set to this page's cursor. Follow it until there is
/// none to list everything, however many there are.
#[utoipa::path(get, path = "/api/bookings", tag = "bookings",
    params(BookingQuery),
    responses(
        (status = 200, description = "The bookings asked for.", body = [BookingView],
            headers(("link" = String, description = "`</api/bookings?...&after=CURSOR>; rel=\"next\"` when more bookings follow this page; absent on the last."))),
        (status = 400, description = "`malformed_query`, an unknown parameter (`offset`, say) included.", body = ErrorBody),
        (status = 422, description = "`invalid_payment_status`, `invalid_date`, `invalid_limit` or `invalid_cursor`.", body = ErrorBody),
    ))]
pub async fn list_bookings(
    State(s): State<AppState>,
    RawQuery(raw): RawQuery,
    QueryParams(q): QueryParams<BookingQuery>,
) -> ApiResult<Response> {
    let page = s.app.list_bookings(&q).await?;
    let views: Vec<BookingView> = page
        .bookings
        .iter()
        .map(|b| s.app.booking_view(b))
        .collect();
    let mut response = Json(views).into_response();
    if let Some(next) = page.next {
        let mut query: Vec<(String, String)> =
            serde_urlencoded::from_str(raw.as_deref().unwrap_or_default()).unwrap_or_default();
        query.retain(|(k, _)| k != "after");
        query.push(("after".to_owned(), next));
        let query = serde_urlencoded::to_string(&query).unwrap_or_default();
        if let Ok(link) = HeaderValue::from_str(&format!("</api/bookings?{query}>; rel=\"next\"")) {
            response.headers_mut().insert(header::LINK, link);
        }
    }
    Ok(response)
}

/// A payment change, or a move of the session: one or the other.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BookingPatch {
    /// pending, paid, failed, cancelled, expired or refunded.
    #[schema(example = "paid")]
    payment_status: Option<String>,
    /// The session's new local date (`YYYY-MM-DD`, years 2000 to 2199).
    #[schema(example = "2027-12-02")]
    booking_date: Option<String>,
    /// The session's new local start (`HH:MM`).
    #[schema(example = "15:00")]
    booking_time: Option<String>,
    /// Another session type (its duration makes the new window).
    #[schema(value_type = Option<uuid::Uuid>)]
    session_type_id: Option<String>,
    /// With a move: `true` lets the session move to a time that has
    /// already begun (an operator correcting history); without it such a
    /// move is 422 `starts_in_the_past`.
    #[serde(default)]
    allow_past: bool,
}

/// A payment change from another gateway or an operator: the same
/// forward-only state machine as Midtrans', with assignment on paid and
/// release on leaving paid. Or a reschedule: the booking keeps its link
/// when it is free at the new time, takes another or waits in the queue
/// otherwise, and the time it leaves goes to waiting bookings.
#[utoipa::path(patch, path = "/api/bookings/{id}", tag = "bookings",
    params(("id" = uuid::Uuid, Path, description = "The booking's id.")),
    request_body = BookingPatch,
    responses(
        (status = 200, description = "The booking as it is now.", body = BookingView),
        (status = 400, description = "Malformed body or `invalid_id`.", body = ErrorBody),
        (status = 404, description = "No such booking.", body = ErrorBody),
        (status = 409, description = "`invalid_transition`: the state machine does not go back.", body = ErrorBody),
        (status = 422, description = "`invalid_payment_status`, `invalid_slot` (also a time the clocks skip), `unknown_session_type`, `one_change_at_a_time`, `nothing_to_change`, `starts_in_the_past` (a move to a time already begun without `allow_past`).", body = ErrorBody),
    ))]
pub async fn update_booking(
    State(s): State<AppState>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<BookingPatch>,
) -> ApiResult<Json<BookingView>> {
    let id: BookingId = parse_id(&id, "booking")?;
    let moves = body.booking_date.is_some()
        || body.booking_time.is_some()
        || body.session_type_id.is_some();
    let booking = match (body.payment_status, moves) {
        (Some(_), true) => {
            return Err(AppError::invalid(
                "one_change_at_a_time",
                "change the payment status and the schedule in separate requests",
            )
            .into())
        }
        (Some(status), false) => {
            let wanted: PaymentStatus = status
                .parse()
                .map_err(|e| AppError::invalid("invalid_payment_status", e))?;
            s.app.set_payment_status(id, wanted).await?.booking
        }
        (None, true) => {
            let input = RescheduleInput {
                booking_date: body.booking_date,
                booking_time: body.booking_time,
                session_type_id: body.session_type_id,
                allow_past: body.allow_past,
            };
            s.app.reschedule(id, input).await?
        }
        (None, false) => {
            return Err(AppError::invalid(
                "nothing_to_change",
                "give payment_status, or booking_date, booking_time or session_type_id",
            )
            .into())
        }
    };
    Ok(Json(s.app.booking_view(&booking)))
}

/// The audit trail: creation, payments (with each notification's raw body),
/// assignments, releases, manual actions, pool exhaustion, ignored
/// notifications.
#[utoipa::path(get, path = "/api/bookings/{id}/events", tag = "bookings",
    params(("id" = uuid::Uuid, Path, description = "The booking's id.")),
    responses(
        (status = 200, description = "The booking's events, oldest first.", body = [EventView]),
        (status = 400, description = "`invalid_id`.", body = ErrorBody),
        (status = 404, description = "No such booking.", body = ErrorBody),
    ))]
pub async fn booking_events(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<EventView>>> {
    let id: BookingId = parse_id(&id, "booking")?;
    Ok(Json(
        s.app.events(id).await?.iter().map(Into::into).collect(),
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignBody {
    #[schema(format = Uuid)]
    meeting_link_id: String,
}

/// An operator gives a paid booking a specific link. Never forced.
#[utoipa::path(put, path = "/api/bookings/{id}/meeting-link", tag = "bookings",
    params(("id" = uuid::Uuid, Path, description = "The booking's id.")),
    request_body = AssignBody,
    responses(
        (status = 200, description = "The booking, holding the link.", body = BookingView),
        (status = 400, description = "Malformed body or `invalid_id`.", body = ErrorBody),
        (status = 404, description = "No such booking or link.", body = ErrorBody),
        (status = 409, description = "`link_busy`: another booking holds the link at an overlapping time; `details.conflicting_booking_id` names it.", body = ErrorBody),
        (status = 422, description = "`not_paid`: only paid bookings hold links.", body = ErrorBody),
    ))]
pub async fn assign_link(
    State(s): State<AppState>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<AssignBody>,
) -> ApiResult<Json<BookingView>> {
    let id: BookingId = parse_id(&id, "booking")?;
    let link: LinkId = parse_id(&body.meeting_link_id, "meeting link")?;
    Ok(Json(
        s.app.booking_view(&s.app.assign_manually(id, link).await?),
    ))
}

/// Takes a booking's link away; a paid booking joins the queue.
#[utoipa::path(delete, path = "/api/bookings/{id}/meeting-link", tag = "bookings",
    params(("id" = uuid::Uuid, Path, description = "The booking's id.")),
    responses(
        (status = 200, description = "The booking, without a link.", body = BookingView),
        (status = 400, description = "`invalid_id`.", body = ErrorBody),
        (status = 404, description = "No such booking.", body = ErrorBody),
    ))]
pub async fn release_link(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<BookingView>> {
    let id: BookingId = parse_id(&id, "booking")?;
    Ok(Json(s.app.booking_view(&s.app.release_manually(id).await?)))
}
