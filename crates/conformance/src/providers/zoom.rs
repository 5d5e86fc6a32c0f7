//! The local Zoom: its Server-to-Server OAuth token endpoint and REST API.
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use meetpool_app::ZoomConfig;
use serde_json::{json, Value};

use super::{
    form, FakeProvider, Room, Shared, ZOOM_ACCOUNT_ID, ZOOM_CLIENT_ID, ZOOM_CLIENT_SECRET,
};

/// Zoom: `POST /oauth/token` (account credentials, Basic client id and
/// secret), `GET /v2/meetings/{id}`, `PUT /v2/meetings/{id}/status`,
/// `POST /v2/users/me/meetings`.
pub struct FakeZoom(pub FakeProvider);

impl std::ops::Deref for FakeZoom {
    type Target = FakeProvider;
    fn deref(&self) -> &FakeProvider {
        &self.0
    }
}

fn zoom_error(status: StatusCode, code: i64, message: &str) -> Response {
    (status, Json(json!({"code": code, "message": message}))).into_response()
}

impl FakeZoom {
    pub async fn start() -> Self {
        let router = Router::new()
            .route("/oauth/token", post(zoom_token))
            .route("/v2/meetings/{id}", get(zoom_get))
            .route("/v2/meetings/{id}/status", put(zoom_status))
            .route("/v2/users/me/meetings", post(zoom_create));
        Self(FakeProvider::start(router, "/oauth/token").await)
    }

    /// A meeting Zoom knows; its link.
    pub fn room(&self, id: &str) -> String {
        self.shared.rooms.lock().unwrap().insert(
            id.to_owned(),
            Room {
                name: id.to_owned(),
                active: true,
                records: Vec::new(),
            },
        );
        format!("https://us02web.zoom.us/j/{id}?pwd=Fixture1")
    }

    pub fn config(&self) -> ZoomConfig {
        ZoomConfig {
            account_id: ZOOM_ACCOUNT_ID.to_owned(),
            client_id: ZOOM_CLIENT_ID.to_owned(),
            client_secret: ZOOM_CLIENT_SECRET.into(),
            token_url: self.token_url.parse().unwrap(),
            api: self.api.parse().unwrap(),
        }
    }

    /// The meetings ended (`PUT .../status` answered 204) of `id`.
    pub fn ends(&self, id: &str) -> usize {
        self.calls_to("PUT", &format!("/v2/meetings/{id}/status"))
            .iter()
            .filter(|c| c.status == 204)
            .count()
    }
}

async fn zoom_token(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let f = form(&body);
    let basic = format!(
        "Basic {}",
        STANDARD.encode(format!("{ZOOM_CLIENT_ID}:{ZOOM_CLIENT_SECRET}"))
    );
    let authorized = headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&basic);
    let res = if !authorized {
        (
            StatusCode::UNAUTHORIZED,
            Json(
                json!({"reason": "Invalid client_id or client_secret", "error": "invalid_client"}),
            ),
        )
    } else if f.get("grant_type").map(String::as_str) != Some("account_credentials") {
        (
            StatusCode::BAD_REQUEST,
            Json(json!({"reason": "unsupported grant type", "error": "unsupported_grant_type"})),
        )
    } else if f.get("account_id").map(String::as_str) != Some(ZOOM_ACCOUNT_ID) {
        (
            StatusCode::BAD_REQUEST,
            Json(json!({"reason": "Invalid account_id", "error": "invalid_request"})),
        )
    } else {
        let token = shared.issue_token("eyJzm");
        (
            StatusCode::OK,
            Json(json!({
                "access_token": token, "token_type": "bearer", "expires_in": 3599,
                "scope": "meeting:read:admin meeting:write:admin", "api_url": "https://api.zoom.us",
            })),
        )
    };
    shared.note(&Method::POST, "/oauth/token", json!(f), res.0.as_u16());
    res.into_response()
}

async fn zoom_guard(shared: &Shared, headers: &HeaderMap) -> Option<Response> {
    if let Some(res) = shared.scripted().await {
        return Some(res);
    }
    if !shared.authorized(headers) {
        return Some(zoom_error(
            StatusCode::UNAUTHORIZED,
            124,
            "Invalid access token.",
        ));
    }
    None
}

async fn zoom_get(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let res = match zoom_guard(&shared, &headers).await {
        Some(res) => res,
        None => match shared.rooms.lock().unwrap().get(&id) {
            Some(_) => Json(json!({
                "id": id.parse::<i64>().unwrap_or_default(), "type": 3, "topic": "meetpool room",
                "join_url": format!("https://us02web.zoom.us/j/{id}?pwd=Fixture1"), "status": "waiting",
            }))
            .into_response(),
            None => zoom_error(StatusCode::NOT_FOUND, 3001, &format!("Meeting does not exist: {id}.")),
        },
    };
    shared.note(
        &Method::GET,
        &format!("/v2/meetings/{id}"),
        Value::Null,
        res.status().as_u16(),
    );
    res
}

async fn zoom_status(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let res = match zoom_guard(&shared, &headers).await {
        Some(res) => res,
        None if body["action"] != "end" && body["action"] != "recover" => {
            zoom_error(StatusCode::BAD_REQUEST, 300, "Invalid action.")
        }
        None => match shared.rooms.lock().unwrap().get(&id) {
            Some(_) => StatusCode::NO_CONTENT.into_response(),
            None => zoom_error(
                StatusCode::NOT_FOUND,
                3001,
                &format!("Meeting does not exist: {id}."),
            ),
        },
    };
    shared.note(
        &Method::PUT,
        &format!("/v2/meetings/{id}/status"),
        body,
        res.status().as_u16(),
    );
    res
}

async fn zoom_create(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let res = match zoom_guard(&shared, &headers).await {
        Some(res) => res,
        None if ![1, 2, 3, 8].contains(&body["type"].as_i64().unwrap_or(2)) => {
            zoom_error(StatusCode::BAD_REQUEST, 300, "Invalid meeting type.")
        }
        None => {
            let n = shared.created.fetch_add(1, Ordering::SeqCst);
            let id = 85_746_065_000_i64 + n as i64;
            shared.rooms.lock().unwrap().insert(
                id.to_string(),
                Room {
                    name: id.to_string(),
                    active: false,
                    records: Vec::new(),
                },
            );
            (
                StatusCode::CREATED,
                Json(json!({
                    "id": id, "type": body["type"], "topic": body["topic"],
                    "join_url": format!("https://us05web.zoom.us/j/{id}?pwd=Created{n}"),
                    "password": format!("Created{n}"), "status": "waiting",
                })),
            )
                .into_response()
        }
    };
    shared.note(
        &Method::POST,
        "/v2/users/me/meetings",
        body,
        res.status().as_u16(),
    );
    res
}
