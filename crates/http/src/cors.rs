//! CORS for the previous system's routes, answered as its Supabase edge
//! functions did, so that browser clients keep working after the move.
use axum::http::{header, HeaderName, HeaderValue, Method};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// Preflights and CORS headers for `origins`; none listed: no layer, so
/// that no response carries CORS headers at all.
pub fn previous_system(origins: &[HeaderValue]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins.iter().cloned()))
            .allow_headers([
                header::AUTHORIZATION,
                HeaderName::from_static("x-client-info"),
                HeaderName::from_static("apikey"),
                header::CONTENT_TYPE,
            ])
            .allow_methods([Method::POST, Method::OPTIONS]),
    )
}
