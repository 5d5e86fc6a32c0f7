//! meetpool's HTTP API: the routes the previous system's clients call, the
//! Midtrans webhook, and the native JSON API for platforms and operators.
#![forbid(unsafe_code)]

mod api;
mod auth;
mod error;
mod extract;
mod seed;

use std::future::Future;
use std::sync::Arc;

use axum::routing::{get, post, put};
use axum::Router;
use meetpool_app::App;
use secrecy::SecretString;
use tokio::net::TcpListener;

pub use auth::AdminToken;
pub use error::ApiError;

#[derive(Clone)]
pub struct AppState {
    pub app: App,
    pub admin: Arc<AdminToken>,
}

/// Every route of the service.
pub fn router(app: App, admin_token: SecretString) -> Router {
    let state = AppState {
        app,
        admin: Arc::new(AdminToken::new(admin_token)),
    };
    let admin = Router::new()
        .route(
            "/api/session-types",
            get(api::list_session_types).post(api::create_session_type),
        )
        .route(
            "/api/session-types/{id}",
            get(api::get_session_type).patch(api::update_session_type),
        )
        .route("/api/links", get(api::list_links).post(api::create_link))
        .route(
            "/api/links/{id}",
            get(api::get_link)
                .patch(api::update_link)
                .delete(api::delete_link),
        )
        .route(
            "/api/bookings",
            get(api::list_bookings).post(api::create_booking),
        )
        .route(
            "/api/bookings/{id}",
            get(api::get_booking).patch(api::update_booking),
        )
        .route("/api/bookings/{id}/events", get(api::booking_events))
        .route(
            "/api/bookings/{id}/meeting-link",
            put(api::assign_link).delete(api::release_link),
        )
        .route("/api/pool/status", get(api::pool_status))
        .route("/api/assignments/recent", get(api::recent_assignments))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_admin,
        ));
    Router::new()
        .merge(admin)
        .route(
            "/functions/v1/assign-meeting-link",
            post(seed::assign_meeting_link),
        )
        .route(
            "/functions/v1/midtrans-webhook",
            post(seed::midtrans_webhook),
        )
        .route("/webhooks/midtrans", post(seed::midtrans_webhook))
        .route("/healthz", get(api::healthz))
        .route("/readyz", get(api::readyz))
        .route("/metrics", get(api::metrics))
        .fallback(api::not_found)
        .with_state(state)
}

/// Serves `router` on `listener` until `shutdown` completes, then finishes
/// the requests in flight.
pub async fn launch(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}
