//! The outbound event log: what was sent to `MEETPOOL_EVENTS_URL`, what is
//! still to go, what failed for good, and retrying it.
use axum::extract::{Path, State};
use axum::Json;
use meetpool_app::DeliveryView;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ErrorBody;
use crate::extract::QueryParams;
use crate::{ApiResult, AppState};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(deliveries))
        .routes(routes!(retry_delivery))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveriesQuery {
    /// pending, failed or delivered (all when absent).
    status: Option<String>,
    /// Only this booking's events.
    #[param(format = Uuid)]
    booking_id: Option<String>,
    /// At most this many, newest first (0 to 1000; 100 when absent).
    limit: Option<u32>,
}

#[utoipa::path(get, path = "/api/events/deliveries", tag = "events",
    params(DeliveriesQuery),
    responses(
        (status = 200, description = "Outbound events and how their delivery stands, newest first.", body = [DeliveryView]),
        (status = 400, description = "`malformed_query`.", body = ErrorBody),
        (status = 422, description = "`invalid_status`, `invalid_booking_id`, `invalid_limit`.", body = ErrorBody),
    ))]
pub async fn deliveries(
    State(s): State<AppState>,
    QueryParams(q): QueryParams<DeliveriesQuery>,
) -> ApiResult<Json<Vec<DeliveryView>>> {
    Ok(Json(
        s.app
            .deliveries(q.status.as_deref(), q.booking_id.as_deref(), q.limit)
            .await?,
    ))
}

#[utoipa::path(post, path = "/api/events/deliveries/{id}/retry", tag = "events",
    params(("id" = String, Path, description = "The event's id (its `webhook-id`).")),
    responses(
        (status = 200, description = "Due now; an event that had failed for good starts a fresh retry schedule.", body = DeliveryView),
        (status = 404, description = "No such event.", body = ErrorBody),
        (status = 409, description = "`already_delivered`.", body = ErrorBody),
    ))]
pub async fn retry_delivery(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<DeliveryView>> {
    Ok(Json(s.app.retry_delivery(&id).await?))
}
