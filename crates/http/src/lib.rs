//! meetpool's HTTP API: the routes the previous system's clients call, the
//! Midtrans webhook, and the native JSON API for platforms and operators.
//! One module per resource, each with the routes it serves and their
//! OpenAPI description; handlers call the application only.
#![forbid(unsafe_code)]

mod auth;
mod bookings;
mod error;
mod extract;
mod health;
mod join;
mod links;
mod midtrans;
mod openapi;
mod pool;
mod seed;
mod session_types;

use std::future::Future;
use std::sync::Arc;

use axum::body::Bytes;
use axum::http::Method;
use axum::{Extension, Router};
use meetpool_app::App;
use secrecy::SecretString;
use tokio::net::TcpListener;
use utoipa_axum::router::OpenApiRouter;

pub use auth::AdminToken;
pub use error::ApiError;

type ApiResult<T> = Result<T, ApiError>;

#[derive(Clone)]
struct AppState {
    app: App,
    /// The OpenAPI document, serialized.
    openapi: Bytes,
}

/// Every route, with its description.
fn api() -> OpenApiRouter<AppState> {
    let native = OpenApiRouter::new()
        .merge(session_types::router())
        .merge(links::router())
        .merge(bookings::router())
        .merge(pool::router());
    OpenApiRouter::with_openapi(openapi::base())
        .merge(auth::admin_only(error::answers_in_error_body(native)))
        .merge(seed::router())
        .merge(midtrans::router())
        .merge(health::router())
        .merge(join::router())
        .merge(openapi::router())
}

/// Every route of the service.
pub fn router(app: App, admin_token: SecretString) -> Router {
    let (routes, api) = api().split_for_parts();
    let state = AppState {
        app,
        openapi: openapi::to_bytes(&api),
    };
    routes
        .fallback(error::not_found)
        .with_state(state)
        .layer(Extension(Arc::new(AdminToken::new(admin_token))))
}

/// The OpenAPI document that `GET /openapi.json` serves.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api().into_openapi()
}

/// Each (method, path template) the router serves, read from the router
/// itself.
pub fn routes() -> Vec<(Method, String)> {
    openapi::routes_of(&openapi())
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
