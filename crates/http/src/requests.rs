//! What every request goes through around its route: a request id, one log
//! line, the latency histogram, the request timeout, the body limit, and a
//! 500 for a handler that panics.
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use tracing::{error, info, info_span, Span};

use crate::error::refusal;
use crate::metrics::{HttpMetrics, UNMATCHED};
use crate::HttpSettings;

/// `routes` with every per-request layer, outermost last.
pub fn layered(routes: Router, settings: &HttpSettings, metrics: Arc<HttpMetrics>) -> Router {
    let max_body = settings.max_body_bytes;
    let timeout = settings.request_timeout;
    routes
        // Innermost, so a panic becomes a response that every layer below
        // sees: it is counted, logged in the request's line and span, and
        // carries the request id.
        .layer(CatchPanicLayer::custom(panicked))
        .layer(middleware::from_fn(name_the_request))
        .layer(middleware::from_fn(move |r: Request, next: Next| {
            refuse_declared_oversize(max_body, r, next)
        }))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn(move |r: Request, next: Next| {
            time_limit(timeout, r, next)
        }))
        .layer(middleware::from_fn_with_state(metrics, observe))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_request(())
                .on_response(log_response)
                // A 5xx is in the response's line already.
                .on_failure(()),
        )
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}

/// A handler that panicked: 500 in the error body; the panic's message goes
/// to the log, inside the request's span, never to the client.
fn panicked(cause: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let what = cause
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| cause.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    error!(panic = %what, "the request's handler panicked");
    let mut response = refusal(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "an unexpected failure; it is logged under this request's x-request-id",
    );
    response.extensions_mut().insert(Panicked);
    response
}

/// Marks the answer [`panicked`] gave, for [`name_the_request`].
#[derive(Clone, Copy)]
struct Panicked;

/// The answer to a panic names the request it is logged under, so that
/// whoever reports it can quote it.
async fn name_the_request(request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let response = next.run(request).await;
    if response.extensions().get::<Panicked>().is_none() {
        return response;
    }
    refusal(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        format!("an unexpected failure; it is logged under request id {id}"),
    )
}

fn route(request: &Request) -> &str {
    request
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED, MatchedPath::as_str)
}

fn request_span(request: &Request) -> Span {
    let id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    info_span!("request", method = %request.method(), route = route(request), request_id = id)
}

fn log_response(response: &Response, latency: Duration, _span: &Span) {
    info!(
        status = response.status().as_u16(),
        duration_us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX),
        "served"
    );
}

async fn observe(
    State(metrics): State<Arc<HttpMetrics>>,
    request: Request,
    next: Next,
) -> Response {
    let route = route(&request).to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    metrics.observe(&route, response.status(), started.elapsed().as_secs_f64());
    response
}

/// Slow clients and slow work alike: the request, its body included, has
/// this long. The answer is in the route's own shape, as its handler
/// would have refused.
async fn time_limit(limit: Duration, request: Request, next: Next) -> Response {
    let matched = request.extensions().get::<MatchedPath>().cloned();
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            let status = StatusCode::SERVICE_UNAVAILABLE;
            let message = format!(
                "the request took longer than {} s; try again",
                limit.as_secs_f64()
            );
            match matched.as_ref().map(MatchedPath::as_str) {
                Some("/functions/v1/assign-meeting-link") => crate::seed::failure(status, &message),
                Some("/webhooks/midtrans" | "/functions/v1/midtrans-webhook") => {
                    crate::midtrans::refused(status, "request_timeout", message)
                }
                _ => refusal(status, "request_timeout", message),
            }
        }
    }
}

/// A body declared larger than the limit is refused before anything reads
/// it, on routes that take no body too. The previous system's routes
/// answer in their own shape, from their handlers, as the body limit
/// refuses their body there.
async fn refuse_declared_oversize(max: usize, request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let own_shape = ["/functions/", "/webhooks/"]
        .iter()
        .any(|prefix| route(&request).starts_with(prefix));
    if declared.is_some_and(|n| n > max as u64) && !own_shape {
        return refusal(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the body is larger than {max} bytes"),
        );
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use axum::routing::get;
    use tower::ServiceExt;

    use super::*;

    #[tokio::test]
    async fn a_handler_that_panics_is_answered_500_with_the_request_id() {
        async fn boom() -> &'static str {
            panic!("a bug")
        }
        let routes = Router::new().route("/boom", get(boom));
        let app = layered(routes, &HttpSettings::default(), Arc::default());
        let request = Request::get("/boom")
            .header("x-request-id", "req-42")
            .body(Body::empty())
            .unwrap();
        let response = app.oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(response.headers()["x-request-id"], "req-42");
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["code"], "internal", "{body}");
        assert_eq!(
            body["error"]["message"],
            "an unexpected failure; it is logged under request id req-42"
        );
    }
}
