//! The pool at a glance, and its latest assignments.
use axum::extract::State;
use axum::Json;
use meetpool_app::views::{BookingView, PoolStatusView};
use meetpool_app::{Availability, DayCapacity};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ErrorBody;
use crate::extract::QueryParams;
use crate::{ApiResult, AppState};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(pool_status))
        .routes(routes!(recent_assignments))
        .routes(routes!(availability))
        .routes(routes!(capacity))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AvailabilityQuery {
    /// The platform's local day, `YYYY-MM-DD` (years 2000 to 2199; 422 `invalid_date` outside).
    date: String,
    /// The session type to be booked (its duration and the buffer make the window).
    session_type_id: String,
}

#[utoipa::path(get, path = "/api/availability", tag = "pool",
    params(AvailabilityQuery),
    responses(
        (status = 200, description = "For each start on the `MEETPOOL_SLOT_MINUTES` grid of the day (times the clocks skip left out): how many more bookings of the type the pool can take then.", body = [Availability]),
        (status = 400, description = "`malformed_query`.", body = ErrorBody),
        (status = 422, description = "`invalid_date`, `invalid_session_type_id`, `unknown_session_type`.", body = ErrorBody),
    ))]
pub async fn availability(
    State(s): State<AppState>,
    QueryParams(q): QueryParams<AvailabilityQuery>,
) -> ApiResult<Json<Vec<Availability>>> {
    Ok(Json(s.app.availability(&q.date, &q.session_type_id).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CapacityQuery {
    /// The first local day, `YYYY-MM-DD` (years 2000 to 2199).
    from: String,
    /// The last local day (at most 366 days after `from`; years 2000 to 2199).
    to: String,
}

#[utoipa::path(get, path = "/api/capacity", tag = "pool",
    params(CapacityQuery),
    responses(
        (status = 200, description = "Per day: the peak of paid sessions at one instant, the enabled links, the headroom, the unassigned paid bookings, and a warning where the peak reaches the pool's size.", body = [DayCapacity]),
        (status = 400, description = "`malformed_query`.", body = ErrorBody),
        (status = 422, description = "`invalid_date`, `invalid_range`.", body = ErrorBody),
    ))]
pub async fn capacity(
    State(s): State<AppState>,
    QueryParams(q): QueryParams<CapacityQuery>,
) -> ApiResult<Json<Vec<DayCapacity>>> {
    Ok(Json(s.app.capacity(Some(&q.from), Some(&q.to)).await?))
}

#[utoipa::path(get, path = "/api/pool/status", tag = "pool", responses(
    (status = 200, description = "Links, links in use now, and the queue's length.", body = PoolStatusView),
))]
pub async fn pool_status(State(s): State<AppState>) -> ApiResult<Json<PoolStatusView>> {
    Ok(Json((&s.app.pool_status().await?).into()))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LimitQuery {
    /// At most this many (0 to 500; 10 when absent; more is 422
    /// `invalid_limit`).
    #[param(minimum = 0, maximum = 500)]
    limit: Option<u32>,
}

#[utoipa::path(get, path = "/api/assignments/recent", tag = "pool",
    params(LimitQuery),
    responses(
        (status = 200, description = "The most recently assigned bookings, latest first.", body = [BookingView]),
        (status = 400, description = "`malformed_query`.", body = ErrorBody),
        (status = 422, description = "`invalid_limit`: above the maximum.", body = ErrorBody),
    ))]
pub async fn recent_assignments(
    State(s): State<AppState>,
    QueryParams(q): QueryParams<LimitQuery>,
) -> ApiResult<Json<Vec<BookingView>>> {
    let bookings = s.app.recent_assignments(q.limit).await?;
    Ok(Json(
        bookings.iter().map(|b| s.app.booking_view(b)).collect(),
    ))
}
