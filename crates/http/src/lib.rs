//! meetpool's HTTP API: the routes the previous system's clients call, the
//! Midtrans webhook, and the native JSON API for platforms and operators.
//! One module per resource, each with the routes it serves and their
//! OpenAPI description; handlers call the application only.
#![forbid(unsafe_code)]

mod attempts;
mod auth;
mod bookings;
mod cors;
mod dashboard;
mod error;
mod events;
mod extract;
mod health;
mod join;
mod links;
mod metrics;
mod midtrans;
mod openapi;
mod platform;
mod pool;
mod requests;
mod seed;
mod serve;
mod session_types;
mod settings;

use std::future::Future;
use std::sync::Arc;

use axum::body::Bytes;
use axum::http::Method;
use axum::{Extension, Router};
use meetpool_app::App;
use secrecy::SecretString;
use tokio::net::TcpListener;
use tower_http::cors::CorsLayer;
use utoipa_axum::router::OpenApiRouter;

pub use auth::AdminToken;
pub use error::ApiError;
pub use serve::launch_with;
pub use settings::HttpSettings;

type ApiResult<T> = Result<T, ApiError>;

#[derive(Clone)]
struct AppState {
    app: App,
    /// The OpenAPI document, serialized.
    openapi: Bytes,
    http_metrics: Arc<metrics::HttpMetrics>,
}

/// Every route, with its description; `cors` on the previous system's.
fn api(cors: Option<CorsLayer>) -> OpenApiRouter<AppState> {
    let native = OpenApiRouter::new()
        .merge(session_types::router())
        .merge(links::router())
        .merge(bookings::router())
        .merge(pool::router())
        .merge(platform::router())
        .merge(events::router());
    let previous = seed::router().merge(midtrans::previous_system());
    let previous = match cors {
        Some(cors) => previous.layer(cors),
        None => previous,
    };
    OpenApiRouter::with_openapi(openapi::base())
        .merge(auth::admin_only(error::answers_in_error_body(native)))
        .merge(previous)
        .merge(midtrans::router())
        .merge(health::router())
        .merge(join::router())
        .merge(openapi::router())
}

/// Every route of the service, with the default [`HttpSettings`].
pub fn router(app: App, admin_token: SecretString) -> Router {
    router_with(app, admin_token, &HttpSettings::default())
}

/// Every route of the service.
pub fn router_with(app: App, admin_token: SecretString, settings: &HttpSettings) -> Router {
    let (routes, api) = api(cors::previous_system(&settings.cors_origins)).split_for_parts();
    let http_metrics = Arc::<metrics::HttpMetrics>::default();
    let state = AppState {
        app,
        openapi: openapi::to_bytes(&api),
        http_metrics: http_metrics.clone(),
    };
    // The dashboard serves HTML, not the API: it is no part of the OpenAPI
    // document.
    let routes = routes
        .merge(dashboard::router())
        .fallback(auth::unknown_route)
        .with_state(state)
        .layer(Extension(Arc::new(AdminToken::new(admin_token))))
        .layer(Extension(Arc::new(attempts::Attempts::default())));
    requests::layered(routes, settings, http_metrics)
}

/// The OpenAPI document that `GET /openapi.json` serves.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api(None).into_openapi()
}

/// Each (method, path template) the router serves, read from the router
/// itself.
pub fn routes() -> Vec<(Method, String)> {
    openapi::routes_of(&openapi())
}

/// [`launch_with`] the default [`HttpSettings`].
pub fn launch(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> impl Future<Output = std::io::Result<()>> + Send + 'static {
    launch_with(listener, router, &HttpSettings::default(), shutdown)
}
