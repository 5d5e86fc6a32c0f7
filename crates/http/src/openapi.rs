//! `GET /openapi.json`: the OpenAPI 3.1 document of every route, built by
//! the same code that builds the router, from the annotations on each
//! handler, so that it cannot describe a route that is not served.
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, Method};
use axum::response::IntoResponse;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ErrorBody;
use crate::{auth, AppState};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "meetpool",
        description = "Meeting links from a pool for paid bookings, never double-booked. \
            Native routes answer errors as `ErrorBody`; the previous system's routes \
            answer as it did."
    ),
    components(schemas(ErrorBody)),
    modifiers(&AdminTokenScheme)
)]
struct Base;

/// The document every route's description is merged into.
pub fn base() -> utoipa::openapi::OpenApi {
    Base::openapi()
}

struct AdminTokenScheme;

impl Modify for AdminTokenScheme {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some("`Authorization: Bearer <MEETPOOL_ADMIN_TOKEN>`"))
            .build();
        api.components
            .get_or_insert_with(Default::default)
            .add_security_scheme(auth::SCHEME, SecurityScheme::Http(scheme));
    }
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(openapi_json))
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "health", responses(
    (status = 200, description = "The OpenAPI 3.1 document of every route.", body = serde_json::Value),
))]
pub async fn openapi_json(State(s): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], s.openapi)
}

/// The document, serialized once for every request to share.
pub fn to_bytes(api: &utoipa::openapi::OpenApi) -> Bytes {
    Bytes::from(serde_json::to_vec(api).expect("the OpenAPI document serializes"))
}

fn operations(item: &PathItem) -> [(Method, Option<&Operation>); 8] {
    [
        (Method::GET, item.get.as_ref()),
        (Method::PUT, item.put.as_ref()),
        (Method::POST, item.post.as_ref()),
        (Method::DELETE, item.delete.as_ref()),
        (Method::OPTIONS, item.options.as_ref()),
        (Method::HEAD, item.head.as_ref()),
        (Method::PATCH, item.patch.as_ref()),
        (Method::TRACE, item.trace.as_ref()),
    ]
}

/// Each (method, path) that `api` describes.
pub fn routes_of(api: &utoipa::openapi::OpenApi) -> Vec<(Method, String)> {
    api.paths
        .paths
        .iter()
        .flat_map(|(path, item)| {
            operations(item)
                .into_iter()
                .filter(|(_, op)| op.is_some())
                .map(move |(method, _)| (method, path.clone()))
        })
        .collect()
}

/// Calls `f` on every operation of `routes`' description.
pub fn each_operation(routes: &mut OpenApiRouter<AppState>, mut f: impl FnMut(&mut Operation)) {
    for item in routes.get_openapi_mut().paths.paths.values_mut() {
        for op in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.options,
            &mut item.head,
            &mut item.patch,
            &mut item.trace,
        ]
        .into_iter()
        .flatten()
        {
            f(op);
        }
    }
}

/// A JSON answer whose body is the named schema.
pub fn json_response(description: &str, schema: &str) -> RefOr<Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name(schema)))
                .build(),
        )
        .build()
        .into()
}
