//! The admin bearer token.
use std::sync::Arc;

use axum::extract::Request;
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::IntoResponse;
use axum::response::Response;
use axum::Extension;
use hmac::{Hmac, Mac};
use meetpool_app::AppError;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use utoipa::openapi::security::SecurityRequirement;
use utoipa_axum::router::OpenApiRouter;

use crate::attempts::{too_many, Attempts, Client};
use crate::openapi::{each_operation, json_response};
use crate::{ApiError, AppState};

/// The name of the admin bearer token's security scheme in the OpenAPI
/// document.
pub const SCHEME: &str = "admin_token";

/// Kept as a digest: comparing digests of equal length takes the same time
/// whatever the guess, and the token itself is never held in plain form.
pub struct AdminToken {
    digest: [u8; 32],
}

impl AdminToken {
    pub fn new(token: SecretString) -> Self {
        Self {
            digest: Sha256::digest(token.expose_secret().as_bytes()).into(),
        }
    }

    /// A key for `purpose` that only holders of the token can make, and that
    /// changes with it: every replica derives the same one, and a new token
    /// voids whatever the old one signed.
    pub fn derive_key(&self, purpose: &str) -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.digest).expect("any key length");
        mac.update(purpose.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// Whether `given` is the token itself (a sign-in form's field).
    pub fn is(&self, given: &str) -> bool {
        let given: [u8; 32] = Sha256::digest(given.trim().as_bytes()).into();
        given.ct_eq(&self.digest).into()
    }

    pub fn accepts(&self, headers: &HeaderMap) -> bool {
        let Some(given) = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                // The scheme is case-insensitive (RFC 7235); the token is not.
                let (scheme, token) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then_some(token)
            })
        else {
            return false;
        };
        self.is(given)
    }
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(<redacted>)")
    }
}

/// Puts every route of `routes` behind the admin token, and says so in
/// their documentation: the one place that does one does the other.
pub fn admin_only(mut routes: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    each_operation(&mut routes, |op| {
        op.security = Some(vec![SecurityRequirement::new(SCHEME, [""; 0])]);
        op.responses.responses.insert(
            "401".to_owned(),
            json_response("No admin token, or not the right one.", "ErrorBody"),
        );
        op.responses.responses.insert(
            "429".to_owned(),
            json_response(
                "`too_many_attempts`: too many wrong admin tokens from this client address; `Retry-After` says when to try again.",
                "ErrorBody",
            ),
        );
    });
    // `layer`, not `route_layer`: a method a route does not answer is also
    // asked for the token first (401, then 405).
    routes.layer(axum::middleware::from_fn(require_admin))
}

/// The token is an extension rather than state so that the routes, and
/// their documentation, can be built before there is an application.
async fn require_admin(
    Extension(admin): Extension<Arc<AdminToken>>,
    Extension(attempts): Extension<Arc<Attempts>>,
    request: Request,
    next: Next,
) -> Response {
    match refusal(&admin, &attempts, Client::of(&request), request.headers()) {
        None => next.run(request).await,
        Some(refused) => refused,
    }
}

/// The bearer check, with its limit (`None`: let it through): an address that sent too many wrong
/// tokens is answered 429 without its token being looked at; a wrong
/// token counts against its address (no token at all is no guess).
fn refusal(
    admin: &AdminToken,
    attempts: &Attempts,
    client: Client,
    headers: &HeaderMap,
) -> Option<Response> {
    let presented = headers.contains_key(axum::http::header::AUTHORIZATION);
    if presented {
        if let Some(left) = attempts.blocked(client) {
            return Some(too_many(left));
        }
    }
    if admin.accepts(headers) {
        return None;
    }
    if presented {
        attempts.failed(client);
        tracing::warn!("admin token refused");
    }
    Some(unauthorized().into_response())
}

fn unauthorized() -> ApiError {
    ApiError(AppError::Unauthorized {
        code: "unauthorized",
        message: "a valid admin token is required: Authorization: Bearer <MEETPOOL_ADMIN_TOKEN>"
            .into(),
    })
}

/// Any path no route serves: under `/api/`, 401 before 404, so that
/// without the token nobody learns which admin routes exist.
pub async fn unknown_route(
    Extension(admin): Extension<Arc<AdminToken>>,
    Extension(attempts): Extension<Arc<Attempts>>,
    request: Request,
) -> Response {
    let path = request.uri().path();
    if path == "/api" || path.starts_with("/api/") {
        if let Some(refused) = refusal(&admin, &attempts, Client::of(&request), request.headers()) {
            return refused;
        }
    }
    ApiError(AppError::NotFound("route")).into_response()
}
