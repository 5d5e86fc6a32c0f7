//! An adopted platform's rows that meetpool could not take in.
use axum::extract::State;
use axum::Json;
use meetpool_app::views::ProblemView;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::{ApiResult, AppState};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(problems))
}

#[utoipa::path(get, path = "/api/platform/problems", tag = "platform", responses(
    (status = 200, description = "On a database adopted in place: the platform's bookings meetpool could not take in (no link until fixed), oldest first, each with its reason and how to fix it; fixing the row adopts it and takes it off the list. Empty elsewhere.", body = [ProblemView]),
))]
pub async fn problems(State(s): State<AppState>) -> ApiResult<Json<Vec<ProblemView>>> {
    let problems = s.app.platform_problems().await?;
    Ok(Json(problems.iter().map(ProblemView::from).collect()))
}
