//! The native JSON API.
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use jiff::Timestamp;
use meetpool_app::views::{BookingView, EventView, LinkView, PoolStatusView, SessionTypeView};
use meetpool_app::{AppError, BookingInput, LinkInput, SessionTypeInput};
use meetpool_domain::time::parse_date;
use meetpool_domain::{BookingId, LinkId, PaymentStatus, SessionTypeId};
use meetpool_store::BookingFilter;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::extract::{parse_id, JsonBody, QueryParams};
use crate::{ApiError, AppState};

type ApiResult<T> = Result<T, ApiError>;

pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

pub async fn readyz(State(s): State<AppState>) -> impl IntoResponse {
    match s.app.store().ready().await {
        Ok(()) => (
            StatusCode::OK,
            Json(json!({ "status": "ready", "database": s.app.store().backend().as_str() })),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "unavailable" })),
            )
        }
    }
}

pub async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.app.metrics(),
    )
}

pub async fn not_found() -> ApiError {
    ApiError(AppError::NotFound("route"))
}

// Session types

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionTypeBody {
    name: Option<String>,
    duration: Option<i64>,
    price: Option<i64>,
}

impl From<SessionTypeBody> for SessionTypeInput {
    fn from(b: SessionTypeBody) -> Self {
        Self {
            name: b.name,
            duration: b.duration,
            price: b.price,
        }
    }
}

pub async fn list_session_types(
    State(s): State<AppState>,
) -> ApiResult<Json<Vec<SessionTypeView>>> {
    Ok(Json(
        s.app
            .session_types()
            .await?
            .iter()
            .map(Into::into)
            .collect(),
    ))
}

pub async fn create_session_type(
    State(s): State<AppState>,
    JsonBody(body): JsonBody<SessionTypeBody>,
) -> ApiResult<(StatusCode, Json<SessionTypeView>)> {
    let st = s.app.create_session_type(body.into()).await?;
    Ok((StatusCode::CREATED, Json((&st).into())))
}

pub async fn get_session_type(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<SessionTypeView>> {
    let id: SessionTypeId = parse_id(&id, "session type")?;
    Ok(Json((&s.app.session_type(id).await?).into()))
}

pub async fn update_session_type(
    State(s): State<AppState>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<SessionTypeBody>,
) -> ApiResult<Json<SessionTypeView>> {
    let id: SessionTypeId = parse_id(&id, "session type")?;
    Ok(Json(
        (&s.app.update_session_type(id, body.into()).await?).into(),
    ))
}

// Links

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkBody {
    meeting_link: Option<String>,
    #[serde(default, with = "double_option")]
    notes: Option<Option<String>>,
    is_available: Option<bool>,
}

/// Tells a field that is absent (leave it) from one that is `null` (clear it).
mod double_option {
    use serde::{Deserialize, Deserializer};
    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<String>>, D::Error> {
        Option::<String>::deserialize(d).map(Some)
    }
}

impl From<LinkBody> for LinkInput {
    fn from(b: LinkBody) -> Self {
        Self {
            meeting_link: b.meeting_link,
            notes: b.notes,
            is_available: b.is_available,
        }
    }
}

pub async fn list_links(State(s): State<AppState>) -> ApiResult<Json<Vec<LinkView>>> {
    Ok(Json(s.app.links().await?.iter().map(Into::into).collect()))
}

pub async fn create_link(
    State(s): State<AppState>,
    JsonBody(body): JsonBody<LinkBody>,
) -> ApiResult<(StatusCode, Json<LinkView>)> {
    let link = s.app.add_link(body.into()).await?;
    Ok((StatusCode::CREATED, Json((&link).into())))
}

pub async fn get_link(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<LinkView>> {
    let id: LinkId = parse_id(&id, "link")?;
    Ok(Json((&s.app.link(id).await?).into()))
}

pub async fn update_link(
    State(s): State<AppState>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<LinkBody>,
) -> ApiResult<Json<LinkView>> {
    let id: LinkId = parse_id(&id, "link")?;
    Ok(Json((&s.app.update_link(id, body.into()).await?).into()))
}

pub async fn delete_link(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id: LinkId = parse_id(&id, "link")?;
    s.app.delete_link(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// Bookings

#[derive(Deserialize)]
pub struct BookingBody {
    order_id: String,
    user_id: String,
    expert_id: String,
    session_type_id: String,
    booking_date: String,
    booking_time: String,
    #[serde(default)]
    price: i64,
    payment_status: Option<String>,
    status: Option<String>,
}

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
        })
        .await?;
    Ok((StatusCode::CREATED, Json(s.app.booking_view(&booking))))
}

pub async fn get_booking(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<BookingView>> {
    let id: BookingId = parse_id(&id, "booking")?;
    Ok(Json(s.app.booking_view(&s.app.booking(id).await?)))
}

#[derive(Deserialize)]
pub struct BookingQuery {
    payment_status: Option<String>,
    unassigned: Option<bool>,
    date: Option<String>,
    limit: Option<u32>,
}

pub async fn list_bookings(
    State(s): State<AppState>,
    QueryParams(q): QueryParams<BookingQuery>,
) -> ApiResult<Json<Vec<BookingView>>> {
    let filter = BookingFilter {
        payment_status: q
            .payment_status
            .as_deref()
            .map(str::parse::<PaymentStatus>)
            .transpose()
            .map_err(|e| AppError::invalid("invalid_payment_status", e))?,
        unassigned: q.unassigned.unwrap_or(false),
        starts_within: q
            .date
            .as_deref()
            .map(|d| parse_date(d).map_err(|e| AppError::invalid("invalid_date", e)))
            .transpose()?
            .map(|d| s.app.local_day(d))
            .transpose()?,
        limit: q.limit.unwrap_or(100).clamp(1, 1000),
    };
    let bookings = s.app.bookings(&filter).await?;
    Ok(Json(
        bookings.iter().map(|b| s.app.booking_view(b)).collect(),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BookingPatch {
    payment_status: String,
}

pub async fn update_booking(
    State(s): State<AppState>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<BookingPatch>,
) -> ApiResult<Json<BookingView>> {
    let id: BookingId = parse_id(&id, "booking")?;
    let wanted: PaymentStatus = body
        .payment_status
        .parse()
        .map_err(|e| AppError::invalid("invalid_payment_status", e))?;
    let outcome = s.app.set_payment_status(id, wanted).await?;
    Ok(Json(s.app.booking_view(&outcome.booking)))
}

pub async fn booking_events(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<EventView>>> {
    let id: BookingId = parse_id(&id, "booking")?;
    Ok(Json(
        s.app.events(id).await?.iter().map(Into::into).collect(),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssignBody {
    meeting_link_id: String,
}

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

pub async fn release_link(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<BookingView>> {
    let id: BookingId = parse_id(&id, "booking")?;
    Ok(Json(s.app.booking_view(&s.app.release_manually(id).await?)))
}

pub async fn pool_status(State(s): State<AppState>) -> ApiResult<Json<PoolStatusView>> {
    let status = s
        .app
        .store()
        .pool_status(Timestamp::now())
        .await
        .map_err(AppError::from)?;
    Ok(Json((&status).into()))
}

#[derive(Deserialize)]
pub struct LimitQuery {
    limit: Option<u32>,
}

pub async fn recent_assignments(
    State(s): State<AppState>,
    QueryParams(q): QueryParams<LimitQuery>,
) -> ApiResult<Json<Vec<BookingView>>> {
    let limit = q.limit.unwrap_or(10).clamp(1, 500);
    let bookings = s
        .app
        .store()
        .recent_assignments(limit)
        .await
        .map_err(AppError::from)?;
    Ok(Json(
        bookings.iter().map(|b| s.app.booking_view(b)).collect(),
    ))
}
