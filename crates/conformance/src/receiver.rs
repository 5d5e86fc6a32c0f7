//! A platform's webhook endpoint, real and local: an HTTP server on a port
//! of its own that records every delivery attempt, checks its signature
//! with an implementation of its own (ring's HMAC, not the service's), and
//! answers as a test scripts it: accept, fail, hang, or be down.
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Router;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::Value;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::eventually;

/// The secret the tests' service signs events with.
pub const EVENTS_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// How the receiver answers one attempt.
#[derive(Clone, Copy, Debug)]
pub enum Answer {
    Status(u16),
    /// `301 Moved Permanently` to `/moved`, a page that answers a GET
    /// with 200 (and counts the GETs).
    Moved,
    /// Never answers (until the test ends).
    Hang,
}

/// One attempt as the receiver saw it.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub id: String,
    pub timestamp: i64,
    pub signature: String,
    pub body: Value,
    /// The signature checks out with the secret, by the receiver's own
    /// implementation.
    pub verified: bool,
    /// The receiver answered 2xx.
    pub accepted: bool,
}

impl Delivery {
    pub fn kind(&self) -> &str {
        self.body["type"].as_str().unwrap_or_default()
    }

    pub fn booking_id(&self) -> Option<&str> {
        self.body["data"]["booking"]["id"].as_str()
    }
}

#[derive(Default)]
struct Shared {
    attempts: Mutex<Vec<Delivery>>,
    script: Mutex<VecDeque<Answer>>,
    arrived: Notify,
    moved_visits: std::sync::atomic::AtomicUsize,
    /// How long each answer takes.
    delay: Mutex<Duration>,
    in_flight: std::sync::atomic::AtomicUsize,
    most_in_flight: std::sync::atomic::AtomicUsize,
}

pub struct Receiver {
    pub url: String,
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: Option<JoinHandle<()>>,
}

impl Receiver {
    /// A receiver that accepts every delivery unless scripted otherwise.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut r = Self {
            url: format!("http://{addr}/hooks/meetpool"),
            addr,
            shared: Arc::default(),
            server: None,
        };
        r.serve(listener);
        r
    }

    fn serve(&mut self, listener: tokio::net::TcpListener) {
        let app = Router::new()
            .route("/hooks/meetpool", axum::routing::post(receive))
            .route("/moved", axum::routing::get(moved))
            .with_state(self.shared.clone());
        self.server = Some(tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        }));
    }

    /// The next attempts are answered so, in order; then accepted again.
    pub fn script(&self, answers: impl IntoIterator<Item = Answer>) {
        self.shared.script.lock().unwrap().extend(answers);
    }

    /// Stops listening: attempts find nothing there (connection refused).
    pub fn down(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }

    /// Listens again, on the same port.
    pub async fn up(&mut self) {
        // The aborted server may take a moment to let the port go.
        let bound = Mutex::new(None);
        let addr = self.addr;
        eventually(
            &format!("listening on {addr} again"),
            Duration::from_secs(10),
            || async {
                let listener = tokio::net::TcpListener::bind(addr).await.ok();
                let done = listener.is_some();
                *bound.lock().unwrap() = listener;
                done
            },
        )
        .await;
        let listener = bound.into_inner().unwrap().expect("bound above");
        self.serve(listener)
    }

    /// Each answer comes `delay` after its request, as from an endpoint
    /// that does some work first.
    pub fn answer_after(&self, delay: Duration) {
        *self.shared.delay.lock().unwrap() = delay;
    }

    /// The most attempts that were under way at once.
    pub fn most_in_flight(&self) -> usize {
        self.shared.most_in_flight.load(Ordering::SeqCst)
    }

    /// How many requests followed an [`Answer::Moved`] to `/moved`.
    pub fn moved_visits(&self) -> usize {
        self.shared.moved_visits.load(Ordering::SeqCst)
    }

    /// Every attempt so far.
    pub fn attempts(&self) -> Vec<Delivery> {
        self.shared.attempts.lock().unwrap().clone()
    }

    /// The attempts the receiver accepted.
    pub fn accepted(&self) -> Vec<Delivery> {
        self.attempts().into_iter().filter(|d| d.accepted).collect()
    }

    /// Waits (30 s at most) until `done` holds for the attempts so far.
    pub async fn wait_until(
        &self,
        what: &str,
        done: impl Fn(&[Delivery]) -> bool,
    ) -> Vec<Delivery> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let arrived = self.shared.arrived.notified();
            let attempts = self.attempts();
            if done(&attempts) {
                return attempts;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                panic!("timed out waiting for {what}; attempts so far: {attempts:#?}");
            }
        }
    }

    /// Waits until `n` deliveries were accepted; they, in order of arrival.
    pub async fn wait_for_accepted(&self, n: usize) -> Vec<Delivery> {
        self.wait_until(&format!("{n} accepted deliveries"), |a| {
            a.iter().filter(|d| d.accepted).count() >= n
        })
        .await
        .into_iter()
        .filter(|d| d.accepted)
        .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.down();
    }
}

async fn receive(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let (id, timestamp, signature) = (
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
    );
    let verified = verify(&id, &timestamp, &body, &signature);
    let now_in_flight = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    shared
        .most_in_flight
        .fetch_max(now_in_flight, Ordering::SeqCst);
    let delay = *shared.delay.lock().unwrap();
    tokio::time::sleep(delay).await;
    shared.in_flight.fetch_sub(1, Ordering::SeqCst);
    let answer = shared
        .script
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or(Answer::Status(204));
    let accepted = matches!(answer, Answer::Status(s) if (200..300).contains(&s));
    shared.attempts.lock().unwrap().push(Delivery {
        id,
        timestamp: timestamp.parse().unwrap_or_default(),
        signature,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        verified,
        accepted,
    });
    shared.arrived.notify_waiters();
    let (status, location) = match answer {
        Answer::Status(s) => (StatusCode::from_u16(s).unwrap(), None),
        Answer::Moved => (StatusCode::MOVED_PERMANENTLY, Some("/moved")),
        Answer::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            (StatusCode::OK, None)
        }
    };
    // One connection per attempt, so that `down` is down for every attempt.
    let mut headers = HeaderMap::new();
    headers.insert("connection", "close".parse().unwrap());
    if let Some(location) = location {
        headers.insert("location", location.parse().unwrap());
    }
    (status, headers)
}

/// Where [`Answer::Moved`] points: a page, as a GET finds it.
async fn moved(State(shared): State<Arc<Shared>>) -> &'static str {
    shared.moved_visits.fetch_add(1, Ordering::SeqCst);
    "a page"
}

/// Standard Webhooks verification, written from the specification: one of
/// the space-separated `v1,<base64>` signatures is the HMAC-SHA256 of
/// `id.timestamp.body` under the secret's key, and the timestamp is within
/// five minutes of now.
pub fn verify(id: &str, timestamp: &str, body: &[u8], signatures: &str) -> bool {
    let Some(key) = EVENTS_SECRET
        .strip_prefix("whsec_")
        .and_then(|k| STANDARD.decode(k).ok())
    else {
        return false;
    };
    let Ok(ts) = timestamp.parse::<i64>() else {
        return false;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    if (now - ts).abs() > 300 {
        return false;
    }
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key);
    let mut signed = format!("{id}.{timestamp}.").into_bytes();
    signed.extend_from_slice(body);
    signatures.split(' ').any(|s| {
        s.strip_prefix("v1,")
            .and_then(|b| STANDARD.decode(b).ok())
            .is_some_and(|sig| ring::hmac::verify(&key, &signed, &sig).is_ok())
    })
}
