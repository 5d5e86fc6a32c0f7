//! Meeting providers, real and local: Google Meet's REST API v2 and its
//! OAuth token endpoint, and Zoom's REST API and its Server-to-Server
//! OAuth token endpoint, each an HTTP server on a port of its own that
//! answers as the provider's API reference documents (paths, bodies,
//! status codes, error shapes), records every call, and fails, rate-limits
//! or hangs when a test says so.
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use meetpool_app::{GoogleConfig, ZoomConfig};
use serde_json::{json, Value};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

pub const GOOGLE_CLIENT_ID: &str = "1234567890-meetpool.apps.googleusercontent.com";
pub const GOOGLE_CLIENT_SECRET: &str = "GOCSPX-meetpool-fixture-secret";
pub const GOOGLE_REFRESH_TOKEN: &str = "1//0meetpool-fixture-refresh-token";
pub const ZOOM_ACCOUNT_ID: &str = "meetpoolAccount01";
pub const ZOOM_CLIENT_ID: &str = "meetpoolZoomClient";
pub const ZOOM_CLIENT_SECRET: &str = "meetpool-zoom-fixture-secret";

/// One call the provider received.
#[derive(Clone, Debug)]
pub struct Call {
    pub method: String,
    pub path: String,
    pub body: Value,
    /// The answer's status.
    pub status: u16,
}

#[derive(Clone, Debug)]
struct Room {
    /// Meet: the space's resource name (`spaces/...`); Zoom: the number.
    name: String,
    /// Meet: a conference is under way.
    active: bool,
    /// Meet: its conference records.
    records: Vec<Record>,
}

/// A Meet conference record and its participants' first joins and last
/// leaves (none while still in).
#[derive(Clone, Debug)]
struct Record {
    name: String,
    start: jiff::Timestamp,
    end: Option<jiff::Timestamp>,
    participants: Vec<(jiff::Timestamp, Option<jiff::Timestamp>)>,
}

#[derive(Default)]
struct Shared {
    /// By Meet code or Zoom meeting number.
    rooms: Mutex<BTreeMap<String, Room>>,
    calls: Mutex<Vec<Call>>,
    tokens: Mutex<Vec<String>>,
    tokens_issued: AtomicUsize,
    /// Every API call (not the token endpoint) is answered with this
    /// status (and `Retry-After`) while set.
    failing: Mutex<Option<(u16, Option<u64>)>>,
    hanging: AtomicBool,
    created: AtomicUsize,
    arrived: Notify,
}

impl Shared {
    fn note(&self, method: &Method, path: &str, body: Value, status: u16) {
        self.calls.lock().unwrap().push(Call {
            method: method.to_string(),
            path: path.to_owned(),
            body,
            status,
        });
        self.arrived.notify_waiters();
    }

    fn issue_token(&self, prefix: &str) -> String {
        let n = self.tokens_issued.fetch_add(1, Ordering::SeqCst) + 1;
        let token = format!("{prefix}.{n}.{}", uuid::Uuid::new_v4().simple());
        self.tokens.lock().unwrap().push(token.clone());
        token
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        let Some(token) = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
        else {
            return false;
        };
        self.tokens.lock().unwrap().iter().any(|t| t == token)
    }

    /// The scripted failure, if any, after the scripted hang.
    async fn scripted(&self) -> Option<Response> {
        if self.hanging.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        let failing = *self.failing.lock().unwrap();
        failing.map(|(status, retry_after)| {
            let mut res = (
                StatusCode::from_u16(status).unwrap(),
                Json(json!({"error": {"code": status, "message": "scripted failure", "status": "UNAVAILABLE"}, "code": status, "message": "scripted failure"})),
            )
                .into_response();
            if let Some(after) = retry_after {
                res.headers_mut()
                    .insert("retry-after", after.to_string().parse().unwrap());
            }
            res
        })
    }
}

/// What both fakes let a test do.
pub struct FakeProvider {
    /// The API's base URL.
    pub api: String,
    /// The token endpoint's URL.
    pub token_url: String,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

impl Drop for FakeProvider {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeProvider {
    async fn start(router: Router<Arc<Shared>>, token_path: &str) -> Self {
        let shared = Arc::<Shared>::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = router.with_state(shared.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            api: format!("http://{addr}"),
            token_url: format!("http://{addr}{token_path}"),
            shared,
            server,
        }
    }

    /// Every call so far (the token endpoint's too).
    pub fn calls(&self) -> Vec<Call> {
        self.shared.calls.lock().unwrap().clone()
    }

    /// The calls of `method` on paths ending with `suffix`.
    pub fn calls_to(&self, method: &str, suffix: &str) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.method == method && c.path.ends_with(suffix))
            .collect()
    }

    /// Tokens the token endpoint gave out.
    pub fn tokens_issued(&self) -> usize {
        self.shared.tokens_issued.load(Ordering::SeqCst)
    }

    /// Every token given out so far stops working (401), as an expired
    /// one does.
    pub fn expire_tokens(&self) {
        self.shared.tokens.lock().unwrap().clear();
    }

    /// Every API call is answered `status` (with `Retry-After: secs`)
    /// until [`FakeProvider::recover`].
    pub fn fail_with(&self, status: u16, retry_after: Option<u64>) {
        *self.shared.failing.lock().unwrap() = Some((status, retry_after));
    }

    /// Every API call hangs, unanswered, until [`FakeProvider::recover`].
    pub fn hang(&self) {
        self.shared.hanging.store(true, Ordering::SeqCst);
    }

    pub fn recover(&self) {
        *self.shared.failing.lock().unwrap() = None;
        self.shared.hanging.store(false, Ordering::SeqCst);
    }

    /// The provider forgets the room (an expired code, a deleted meeting).
    pub fn forget(&self, room: &str) {
        self.shared.rooms.lock().unwrap().remove(room);
    }

    /// Rooms created through the API.
    pub fn created(&self) -> usize {
        self.shared.created.load(Ordering::SeqCst)
    }

    /// Waits (30 s at most) until `done` holds for the calls so far.
    pub async fn wait_until(&self, what: &str, done: impl Fn(&[Call]) -> bool) -> Vec<Call> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let arrived = self.shared.arrived.notified();
            let calls = self.calls();
            if done(&calls) {
                return calls;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                panic!("timed out waiting for {what}; calls so far: {calls:#?}");
            }
        }
    }
}

/// `application/x-www-form-urlencoded`, decoded.
fn form(body: &[u8]) -> BTreeMap<String, String> {
    let decode = |s: &str| {
        let bytes = s.replace('+', " ").into_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' && i + 2 < bytes.len() {
                if let Ok(b) =
                    u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or(""), 16)
                {
                    out.push(b);
                    i += 3;
                    continue;
                }
            }
            out.push(bytes[i]);
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// Google Meet: `POST /token` (OAuth 2.0 refresh), `GET /v2/spaces/{code or
/// space}`, `POST /v2/spaces/{space}:endActiveConference`, `POST /v2/spaces`.
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
