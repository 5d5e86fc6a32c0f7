//! The least that delivering events can cost: with `--imitate-events`, the
//! load generator itself sends each paid notification's events to its own
//! receiver, as a deliverer that keeps no record would. A server run
//! without `MEETPOOL_EVENTS_URL` but with `meetpool events on` then writes
//! the events and never reads them, and this sends the same number of
//! signed requests of the same size, gathered and sent concurrently as
//! `meetpool serve` sends them. No implementation of delivery in
//! `meetpool serve` can cost these cores less than this does.
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::join_all;
use jiff::Timestamp;
use meetpool_app::{decode_events_secret, event_signature};
use serde_json::{json, Value};
use tokio::sync::Notify;

/// How long a wake-up waits for the answers coming with it, as
/// `meetpool serve` waits for the commits coming with a wake-up.
const GATHER: Duration = Duration::from_millis(20);
/// `bench/events.sh`'s secret.
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// An event due: its type, its number, and when its change was answered.
type Due = (&'static str, usize, Timestamp);

#[derive(Clone)]
pub struct Imitator {
    due: Arc<Mutex<Vec<Due>>>,
    wake: Arc<Notify>,
}

impl Imitator {
    /// Starts sending to `receiver`'s `/hooks`.
    pub fn start(receiver: std::net::SocketAddr) -> anyhow::Result<Self> {
        let me = Self {
            due: Arc::default(),
            wake: Arc::default(),
        };
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?;
        let url = format!("http://{receiver}/hooks");
        let key = decode_events_secret(SECRET).map_err(anyhow::Error::msg)?;
        let sender = me.clone();
        tokio::spawn(async move {
            loop {
                sender.wake.notified().await;
                tokio::time::sleep(GATHER).await;
                let due = std::mem::take(&mut *sender.due.lock().unwrap());
                join_all(due.iter().map(|e| send(&client, &url, &key, e))).await;
            }
        });
        Ok(me)
    }

    /// The notification numbered `n` was answered: its payment changed,
    /// and it got a link if `linked`.
    pub fn paid(&self, n: usize, linked: bool) {
        let now = Timestamp::now();
        let mut due = self.due.lock().unwrap();
        due.push(("booking.payment_changed", n, now));
        if linked {
            due.push(("booking.link_assigned", n, now));
        }
        drop(due);
        self.wake.notify_one();
    }
}

/// One signed attempt, its answer read so that the connection is kept.
async fn send(client: &reqwest::Client, url: &str, key: &[u8], (kind, n, at): &Due) {
    let id = format!("{}", uuid::Uuid::new_v4());
    let body = body(kind, *n, *at);
    let timestamp = Timestamp::now().as_second();
    let signature = event_signature(key, &id, timestamp, &body);
    let sent = client
        .post(url)
        .header("webhook-id", id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await;
    if let Ok(res) = sent {
        let _ = res.bytes().await;
    }
}

/// A body of the shape and size of `meetpool serve`'s.
fn body(kind: &str, n: usize, at: Timestamp) -> String {
    let id = uuid::Uuid::new_v4();
    let token = format!("{}{}", id.simple(), uuid::Uuid::new_v4().simple());
    let mut data = json!({
        "booking": {
            "id": id, "price": 100000, "status": "confirmed",
            "ends_at": "2030-01-01T05:00:00Z", "user_id": format!("user-{n}"),
            "order_id": format!("B-imitated-{n:07}"), "expert_id": format!("expert-{n}"),
            "starts_at": "2030-01-01T04:00:00Z", "reschedules": 0,
            "booking_date": "2030-01-01", "booking_time": "04:00",
            "meeting_link": format!("https://meet.example.com/imitated-{n}"),
            "payment_status": "paid", "meeting_link_id": uuid::Uuid::new_v4(),
            "session_type_id": uuid::Uuid::new_v4(),
            "join_url": format!("http://127.0.0.1:8080/j/{token}"),
            "calendar_url": format!("http://127.0.0.1:8080/j/{token}.ics"),
        },
    });
    match kind {
        "booking.payment_changed" => data["previous_payment_status"] = json!("pending"),
        _ => data["previous_link"] = Value::Null,
    }
    json!({ "type": kind, "timestamp": at.to_string(), "data": data }).to_string()
}
