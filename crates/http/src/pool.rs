//! The pool at a glance, and its latest assignments.
use axum::extract::State;
use axum::Json;
use meetpool_app::views::{BookingView, PoolStatusView};
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
