//! The pool of meeting links.
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use meetpool_app::views::LinkView;
use meetpool_app::LinkInput;
use meetpool_domain::LinkId;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ErrorBody;
use crate::extract::{parse_id, JsonBody, QueryParams};
use crate::{ApiResult, AppState};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_links, create_link))
        .routes(routes!(get_link, update_link, delete_link))
        .routes(routes!(link_provider_actions))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ActionsQuery {
    /// At most this many, newest first (100 when absent, at most 1000).
    limit: Option<u32>,
}

/// What meetpool asked the link's meeting provider to do to its room
/// (checks, ends of sessions' conferences, its creation, attendance), and
/// what became of each: the link's trail at the provider. Empty for a
/// link of no configured provider.
#[utoipa::path(get, path = "/api/links/{id}/provider-actions", tag = "links",
    params(("id" = uuid::Uuid, Path, description = "The link's id."), ActionsQuery),
    responses(
        (status = 200, description = "The actions, newest first.", body = [meetpool_app::views::ProviderActionView]),
        (status = 400, description = "`invalid_id`.", body = ErrorBody),
        (status = 404, description = "No such link.", body = ErrorBody),
        (status = 422, description = "`invalid_limit`.", body = ErrorBody),
    ))]
pub async fn link_provider_actions(
    State(s): State<AppState>,
    Path(id): Path<String>,
    QueryParams(q): QueryParams<ActionsQuery>,
) -> ApiResult<Json<Vec<meetpool_app::views::ProviderActionView>>> {
    let id: LinkId = parse_id(&id, "link")?;
    Ok(Json(s.app.link_provider_actions(id, q.limit).await?))
}

/// A link to add (`meeting_link` required), or the fields of one to change.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkBody {
    /// An absolute https URL naming a host, without credentials, written
    /// with the characters RFC 3986 allows (spaces, control characters,
    /// backslashes, `|`, `^`, a stray `%` refused); one per meeting room,
    /// whatever its spelling (a Meet code with or without dashes, a Zoom
    /// meeting number with or without its passcode or host prefix). Stored
    /// in its canonical spelling.
    #[schema(example = "https://meet.google.com/abc-defg-hij")]
    meeting_link: Option<String>,
    /// `null` clears the notes; absent leaves them.
    #[serde(default, with = "double_option")]
    #[schema(value_type = Option<String>)]
    notes: Option<Option<String>>,
    /// `false` stops giving the link out: its sessions that have not started
    /// move to other links, or to the queue.
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

/// Every link, enabled or not.
#[utoipa::path(get, path = "/api/links", tag = "links", responses(
    (status = 200, description = "Every link of the pool.", body = [LinkView]),
))]
pub async fn list_links(State(s): State<AppState>) -> ApiResult<Json<Vec<LinkView>>> {
    Ok(Json(s.app.links().await?.iter().map(Into::into).collect()))
}

/// Adds a link; an enabled one goes at once to the bookings waiting for one.
#[utoipa::path(post, path = "/api/links", tag = "links",
    request_body = LinkBody,
    responses(
        (status = 201, description = "Added.", body = LinkView),
        (status = 400, description = "Malformed body.", body = ErrorBody),
        (status = 409, description = "`duplicate_link`: its meeting room is already in the pool.", body = ErrorBody),
        (status = 422, description = "`invalid_meeting_link`.", body = ErrorBody),
    ))]
pub async fn create_link(
    State(s): State<AppState>,
    JsonBody(body): JsonBody<LinkBody>,
) -> ApiResult<(StatusCode, Json<LinkView>)> {
    let link = s.app.add_link(body.into()).await?;
    Ok((StatusCode::CREATED, Json((&link).into())))
}

#[utoipa::path(get, path = "/api/links/{id}", tag = "links",
    params(("id" = uuid::Uuid, Path, description = "The link's id.")),
    responses(
        (status = 200, description = "The link.", body = LinkView),
        (status = 400, description = "`invalid_id`.", body = ErrorBody),
        (status = 404, description = "No such link.", body = ErrorBody),
    ))]
pub async fn get_link(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<LinkView>> {
    let id: LinkId = parse_id(&id, "link")?;
    Ok(Json((&s.app.link(id).await?).into()))
}

/// Changes a link. Disabling it moves its sessions that have not started
/// to other links (or to the queue); enabling it offers it to the waiting
/// bookings.
#[utoipa::path(patch, path = "/api/links/{id}", tag = "links",
    params(("id" = uuid::Uuid, Path, description = "The link's id.")),
    request_body = LinkBody,
    responses(
        (status = 200, description = "The link as changed.", body = LinkView),
        (status = 400, description = "Malformed body or `invalid_id`.", body = ErrorBody),
        (status = 404, description = "No such link.", body = ErrorBody),
        (status = 409, description = "`duplicate_link`: its meeting room is already enabled in the pool.", body = ErrorBody),
        (status = 422, description = "`invalid_meeting_link`.", body = ErrorBody),
    ))]
pub async fn update_link(
    State(s): State<AppState>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<LinkBody>,
) -> ApiResult<Json<LinkView>> {
    let id: LinkId = parse_id(&id, "link")?;
    Ok(Json((&s.app.update_link(id, body.into()).await?).into()))
}

/// Deletes a link no booking references (disable one that bookings do).
#[utoipa::path(delete, path = "/api/links/{id}", tag = "links",
    params(("id" = uuid::Uuid, Path, description = "The link's id.")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 400, description = "`invalid_id`.", body = ErrorBody),
        (status = 404, description = "No such link.", body = ErrorBody),
        (status = 409, description = "`link_in_use`: bookings reference it.", body = ErrorBody),
    ))]
pub async fn delete_link(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id: LinkId = parse_id(&id, "link")?;
    s.app.delete_link(id).await?;
    Ok(StatusCode::NO_CONTENT)
}
