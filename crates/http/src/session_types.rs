//! Session types: what is sold, and how long it lasts.
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use meetpool_app::views::SessionTypeView;
use meetpool_app::SessionTypeInput;
use meetpool_domain::SessionTypeId;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ErrorBody;
use crate::extract::{parse_id, JsonBody};
use crate::{ApiResult, AppState};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_session_types, create_session_type))
        .routes(routes!(get_session_type, update_session_type))
}

/// A session type to create (`name` and `duration` required), or the
/// fields of one to change.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionTypeBody {
    name: Option<String>,
    /// Minutes, 1 to 1440.
    #[schema(minimum = 1, maximum = 1440)]
    duration: Option<i64>,
    #[schema(minimum = 0)]
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

/// Every session type.
#[utoipa::path(get, path = "/api/session-types", tag = "session types", responses(
    (status = 200, description = "Every session type.", body = [SessionTypeView]),
))]
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

#[utoipa::path(post, path = "/api/session-types", tag = "session types",
    request_body = SessionTypeBody,
    responses(
        (status = 201, description = "Created.", body = SessionTypeView),
        (status = 400, description = "Malformed body.", body = ErrorBody),
        (status = 422, description = "`invalid_name`, `invalid_duration` or `invalid_price`.", body = ErrorBody),
    ))]
pub async fn create_session_type(
    State(s): State<AppState>,
    JsonBody(body): JsonBody<SessionTypeBody>,
) -> ApiResult<(StatusCode, Json<SessionTypeView>)> {
    let st = s.app.create_session_type(body.into()).await?;
    Ok((StatusCode::CREATED, Json((&st).into())))
}

#[utoipa::path(get, path = "/api/session-types/{id}", tag = "session types",
    params(("id" = uuid::Uuid, Path, description = "The session type's id.")),
    responses(
        (status = 200, description = "The session type.", body = SessionTypeView),
        (status = 400, description = "`invalid_id`.", body = ErrorBody),
        (status = 404, description = "No such session type.", body = ErrorBody),
    ))]
pub async fn get_session_type(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<SessionTypeView>> {
    let id: SessionTypeId = parse_id(&id, "session type")?;
    Ok(Json((&s.app.session_type(id).await?).into()))
}

/// Changes a session type. Bookings already made keep the times they were
/// sold with.
#[utoipa::path(patch, path = "/api/session-types/{id}", tag = "session types",
    params(("id" = uuid::Uuid, Path, description = "The session type's id.")),
    request_body = SessionTypeBody,
    responses(
        (status = 200, description = "The session type as changed.", body = SessionTypeView),
        (status = 400, description = "Malformed body or `invalid_id`.", body = ErrorBody),
        (status = 404, description = "No such session type.", body = ErrorBody),
        (status = 422, description = "`invalid_name`, `invalid_duration` or `invalid_price`.", body = ErrorBody),
    ))]
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
