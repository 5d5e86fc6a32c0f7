//! Probes and counters for the platform that runs the service: public, no
//! token.
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    status: &'static str,
}

#[derive(Serialize, ToSchema)]
pub struct Ready {
    #[schema(example = "ready")]
    status: &'static str,
    /// sqlite or postgres.
    database: &'static str,
}

#[derive(Serialize, ToSchema)]
pub struct Unready {
    #[schema(example = "unavailable")]
    status: &'static str,
    /// What an operator must do, when it is something they must do (an
    /// adopted platform's table gone, the shared settings changed under
    /// this replica); an outage's cause goes to the log only.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, description = "Up.", body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// The database answers and is migrated.
#[utoipa::path(get, path = "/readyz", tag = "health", responses(
    (status = 200, description = "Ready to serve.", body = Ready),
    (status = 503, description = "The database is unreachable or not migrated, an adopted platform's table is gone, or the shared settings changed under this replica (`reason` says what to do).", body = Unready),
))]
pub async fn readyz(State(s): State<AppState>) -> impl IntoResponse {
    match s.app.ready().await {
        Ok(()) => Json(Ready {
            status: "ready",
            database: s.app.backend().as_str(),
        })
        .into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Unready {
                status: "unavailable",
                reason: match e {
                    meetpool_app::AppError::NotConfigured(why) => Some(why),
                    _ => None,
                },
            }),
        )
            .into_response(),
    }
}

/// Prometheus counters since the process started (assignments, releases,
/// pool exhaustion, notifications, alerts; a transaction counts once it
/// commits), the pool's gauges read now, and request latency by route.
#[utoipa::path(get, path = "/metrics", tag = "health", responses(
    (status = 200, description = "Prometheus' text format.", body = String,
     content_type = "text/plain; version=0.0.4"),
))]
pub async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.app.metrics() + &s.app.gauges().await + &s.http_metrics.render(),
    )
}
