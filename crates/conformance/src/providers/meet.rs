//! The local Google Meet: its OAuth token endpoint and the Meet REST API v2.
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use meetpool_app::GoogleConfig;
use serde_json::{json, Value};

use super::{
    form, FakeProvider, Record, Room, Shared, GOOGLE_CLIENT_ID, GOOGLE_CLIENT_SECRET,
    GOOGLE_REFRESH_TOKEN,
};

pub struct FakeMeet(pub FakeProvider);

impl std::ops::Deref for FakeMeet {
    type Target = FakeProvider;
    fn deref(&self) -> &FakeProvider {
        &self.0
    }
}

fn google_error(status: StatusCode, message: &str, word: &str) -> Response {
    (
        status,
        Json(json!({"error": {"code": status.as_u16(), "message": message, "status": word}})),
    )
        .into_response()
}

impl FakeMeet {
    pub async fn start() -> Self {
        let router = Router::new()
            .route("/token", post(google_token))
            .route("/v2/spaces", post(meet_create))
            .route("/v2/spaces/{name}", get(meet_get).post(meet_end))
            .route("/v2/conferenceRecords", get(meet_records))
            .route(
                "/v2/conferenceRecords/{record}/participants",
                get(meet_participants),
            );
        Self(FakeProvider::start(router, "/token").await)
    }

    /// A room Meet knows, with a conference under way; its link.
    pub fn room(&self, code: &str) -> String {
        let name = format!("spaces/{}", uuid::Uuid::new_v4().simple());
        self.shared.rooms.lock().unwrap().insert(
            code.to_owned(),
            Room {
                name,
                active: true,
                records: Vec::new(),
            },
        );
        format!("https://meet.google.com/{code}")
    }

    /// A conference held in the room of `code` from `start` (to `end`),
    /// attended by participants from their first join to their last leave.
    pub fn conference(
        &self,
        code: &str,
        start: jiff::Timestamp,
        end: Option<jiff::Timestamp>,
        participants: &[(jiff::Timestamp, Option<jiff::Timestamp>)],
    ) {
        let mut rooms = self.shared.rooms.lock().unwrap();
        let room = rooms.get_mut(code).expect("a room of this Meet");
        room.records.push(Record {
            name: format!("conferenceRecords/{}", uuid::Uuid::new_v4().simple()),
            start,
            end,
            participants: participants.to_vec(),
        });
    }

    /// The configuration that reaches this Meet.
    pub fn config(&self) -> GoogleConfig {
        GoogleConfig {
            client_id: GOOGLE_CLIENT_ID.to_owned(),
            client_secret: GOOGLE_CLIENT_SECRET.into(),
            refresh_token: GOOGLE_REFRESH_TOKEN.into(),
            token_url: self.token_url.parse().unwrap(),
            api: self.api.parse().unwrap(),
        }
    }

    /// The `endActiveConference` calls on the room of `code`.
    pub fn ends(&self, code: &str) -> usize {
        let name = self
            .shared
            .rooms
            .lock()
            .unwrap()
            .get(code)
            .map(|r| r.name.clone());
        match name {
            Some(name) => self
                .calls_to("POST", &format!("/v2/{name}:endActiveConference"))
                .iter()
                .filter(|c| c.status == 200)
                .count(),
            None => 0,
        }
    }
}

async fn google_token(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let f = form(&body);
    let ok = f.get("grant_type").map(String::as_str) == Some("refresh_token")
        && f.get("client_id").map(String::as_str) == Some(GOOGLE_CLIENT_ID)
        && f.get("client_secret").map(String::as_str) == Some(GOOGLE_CLIENT_SECRET)
        && f.get("refresh_token").map(String::as_str) == Some(GOOGLE_REFRESH_TOKEN);
    let res = if ok {
        let token = shared.issue_token("ya29");
        (
            StatusCode::OK,
            Json(json!({
                "access_token": token, "expires_in": 3599, "token_type": "Bearer",
                "scope": "https://www.googleapis.com/auth/meetings.space.created",
            })),
        )
    } else {
        (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant", "error_description": "Bad Request"})),
        )
    };
    shared.note(&Method::POST, "/token", json!(f), res.0.as_u16());
    res.into_response()
}

async fn meet_get(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/v2/spaces/{name}");
    let res = meet_get_answer(&shared, &name, &headers).await;
    shared.note(&Method::GET, &path, Value::Null, res.status().as_u16());
    res
}

async fn meet_get_answer(shared: &Shared, name: &str, headers: &HeaderMap) -> Response {
    if let Some(res) = shared.scripted().await {
        return res;
    }
    if !shared.authorized(headers) {
        return google_error(
            StatusCode::UNAUTHORIZED,
            "Request had invalid authentication credentials.",
            "UNAUTHENTICATED",
        );
    }
    let rooms = shared.rooms.lock().unwrap();
    // By meeting code (any case) or by the space's own name.
    let found = rooms.iter().find(|(code, room)| {
        code.eq_ignore_ascii_case(name) || room.name == format!("spaces/{name}")
    });
    match found {
        Some((code, room)) => Json(space_json(code, room)).into_response(),
        None => google_error(
            StatusCode::NOT_FOUND,
            "Requested entity was not found.",
            "NOT_FOUND",
        ),
    }
}

fn space_json(code: &str, room: &Room) -> Value {
    let mut space = json!({
        "name": room.name,
        "meetingUri": format!("https://meet.google.com/{code}"),
        "meetingCode": code,
        "config": {"accessType": "OPEN", "entryPointAccess": "ALL"},
    });
    if room.active {
        space["activeConference"] = json!({"conferenceRecord": format!("conferenceRecords/{}", uuid::Uuid::new_v4().simple())});
    }
    space
}

async fn meet_end(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = format!("/v2/spaces/{name}");
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let res = async {
        if let Some(res) = shared.scripted().await {
            return res;
        }
        if !shared.authorized(&headers) {
            return google_error(
                StatusCode::UNAUTHORIZED,
                "Request had invalid authentication credentials.",
                "UNAUTHENTICATED",
            );
        }
        let Some(space) = name.strip_suffix(":endActiveConference") else {
            return google_error(StatusCode::NOT_FOUND, "Method not found.", "NOT_FOUND");
        };
        // The reference: only `spaces/{space}` here, never a meeting code;
        // an empty request body.
        if body != json!({}) && body != Value::Null {
            return google_error(
                StatusCode::BAD_REQUEST,
                "Invalid JSON payload received.",
                "INVALID_ARGUMENT",
            );
        }
        let mut rooms = shared.rooms.lock().unwrap();
        let Some(room) = rooms
            .values_mut()
            .find(|r| r.name == format!("spaces/{space}"))
        else {
            return google_error(
                StatusCode::NOT_FOUND,
                "Requested entity was not found.",
                "NOT_FOUND",
            );
        };
        if !room.active {
            return google_error(
                StatusCode::BAD_REQUEST,
                "No active conference.",
                "FAILED_PRECONDITION",
            );
        }
        // The room stays ready for the next session, as a Meet room does.
        Json(json!({})).into_response()
    }
    .await;
    shared.note(&Method::POST, &path, body, res.status().as_u16());
    res
}

async fn meet_create(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let res = async {
        if let Some(res) = shared.scripted().await {
            return res;
        }
        if !shared.authorized(&headers) {
            return google_error(
                StatusCode::UNAUTHORIZED,
                "Request had invalid authentication credentials.",
                "UNAUTHENTICATED",
            );
        }
        let access = body["config"]["accessType"]
            .as_str()
            .unwrap_or("ACCESS_TYPE_UNSPECIFIED");
        if !["OPEN", "TRUSTED", "RESTRICTED", "ACCESS_TYPE_UNSPECIFIED"].contains(&access) {
            return google_error(
                StatusCode::BAD_REQUEST,
                "Invalid value at 'space.config.access_type'.",
                "INVALID_ARGUMENT",
            );
        }
        let n = shared.created.fetch_add(1, Ordering::SeqCst);
        let letters: Vec<char> = uuid::Uuid::new_v4()
            .simple()
            .to_string()
            .chars()
            .map(|c| (b'a' + (c.to_digit(16).unwrap() as u8 + n as u8) % 26) as char)
            .collect();
        let code: String = format!(
            "{}-{}-{}",
            letters[..3].iter().collect::<String>(),
            letters[3..7].iter().collect::<String>(),
            letters[7..10].iter().collect::<String>()
        );
        let room = Room {
            name: format!("spaces/{}", uuid::Uuid::new_v4().simple()),
            active: false,
            records: Vec::new(),
        };
        let mut space = space_json(&code, &room);
        space["config"]["accessType"] = json!(access);
        shared.rooms.lock().unwrap().insert(code, room);
        Json(space).into_response()
    }
    .await;
    shared.note(&Method::POST, "/v2/spaces", body, res.status().as_u16());
    res
}

/// The quoted value after `field` and `op` in a list filter
/// (`space.name = "spaces/x" AND start_time>="..."`).
fn filter_value<'a>(filter: &'a str, field: &str, op: &str) -> Option<&'a str> {
    let at = filter
        .find(&format!("{field} {op} \""))
        .map(|i| i + field.len() + op.len() + 3)
        .or_else(|| {
            filter
                .find(&format!("{field}{op}\""))
                .map(|i| i + field.len() + op.len() + 1)
        })?;
    let rest = &filter[at..];
    Some(&rest[..rest.find('"')?])
}

/// One page of `items` (`pageSize`, `pageToken` as an offset), with the
/// next page's token when there is one.
fn page(items: Vec<Value>, query: &BTreeMap<String, String>, key: &str) -> Value {
    let size: usize = query
        .get("pageSize")
        .and_then(|s| s.parse().ok())
        .unwrap_or(25)
        .clamp(1, 100);
    let from: usize = query
        .get("pageToken")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut body = json!({ key: items.iter().skip(from).take(size).cloned().collect::<Vec<_>>() });
    if from + size < items.len() {
        body["nextPageToken"] = json!((from + size).to_string());
    }
    body
}

fn rfc3339(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

async fn meet_records(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let res = async {
        if let Some(res) = shared.scripted().await {
            return res;
        }
        if !shared.authorized(&headers) {
            return google_error(
                StatusCode::UNAUTHORIZED,
                "Request had invalid authentication credentials.",
                "UNAUTHENTICATED",
            );
        }
        let filter = query.get("filter").cloned().unwrap_or_default();
        let space = filter_value(&filter, "space.name", "=");
        let after = filter_value(&filter, "start_time", ">=")
            .and_then(|t| t.parse::<jiff::Timestamp>().ok());
        let before = filter_value(&filter, "start_time", "<=")
            .and_then(|t| t.parse::<jiff::Timestamp>().ok());
        let rooms = shared.rooms.lock().unwrap();
        let mut records: Vec<(jiff::Timestamp, Value)> = rooms
            .values()
            .filter(|r| space.is_none_or(|s| s == r.name))
            .flat_map(|r| r.records.iter().map(move |rec| (r, rec)))
            .filter(|(_, rec)| {
                after.is_none_or(|a| rec.start >= a) && before.is_none_or(|b| rec.start <= b)
            })
            .map(|(room, rec)| {
                let mut v = json!({
                    "name": rec.name, "startTime": rfc3339(rec.start), "space": room.name,
                    "expireTime": rfc3339(rec.start + jiff::SignedDuration::from_hours(24 * 30)),
                });
                if let Some(end) = rec.end {
                    v["endTime"] = json!(rfc3339(end));
                }
                (rec.start, v)
            })
            .collect();
        // By start time, newest first, as the reference says.
        records.sort_by_key(|r| std::cmp::Reverse(r.0));
        Json(page(
            records.into_iter().map(|r| r.1).collect(),
            &query,
            "conferenceRecords",
        ))
        .into_response()
    }
    .await;
    shared.note(
        &Method::GET,
        "/v2/conferenceRecords",
        json!(query),
        res.status().as_u16(),
    );
    res
}

async fn meet_participants(
    State(shared): State<Arc<Shared>>,
    Path(record): Path<String>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let name = format!("conferenceRecords/{record}");
    let res = async {
        if let Some(res) = shared.scripted().await {
            return res;
        }
        if !shared.authorized(&headers) {
            return google_error(
                StatusCode::UNAUTHORIZED,
                "Request had invalid authentication credentials.",
                "UNAUTHENTICATED",
            );
        }
        let rooms = shared.rooms.lock().unwrap();
        let Some(rec) = rooms
            .values()
            .flat_map(|r| r.records.iter())
            .find(|r| r.name == name)
        else {
            return google_error(
                StatusCode::NOT_FOUND,
                "Requested entity was not found.",
                "NOT_FOUND",
            );
        };
        let participants: Vec<Value> = rec
            .participants
            .iter()
            .enumerate()
            .map(|(i, (joined, left))| {
                let mut p = json!({
                    "name": format!("{name}/participants/{i}"),
                    "earliestStartTime": rfc3339(*joined),
                    "anonymousUser": {"displayName": format!("Guest {i}")},
                });
                if let Some(left) = left {
                    p["latestEndTime"] = json!(rfc3339(*left));
                }
                p
            })
            .collect();
        Json(page(participants, &query, "participants")).into_response()
    }
    .await;
    shared.note(
        &Method::GET,
        &format!("/v2/{name}/participants"),
        json!(query),
        res.status().as_u16(),
    );
    res
}
