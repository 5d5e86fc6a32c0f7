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

use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
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
mod meet;
mod zoom;

pub use meet::FakeMeet;
pub use zoom::FakeZoom;
