//! The test data and the platform it is posted to: the fixtures of
//! `../shared/midtrans/notifications/` (signed with the fixtures' server
//! key), notifications made from them, and a shop with a pending booking
//! for each fixture's order.
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use meetpool_conformance::{
    eventually, webhook_answer, Backend, Booking, Fixture, SessionType, Settled, TestApp,
    WebhookAnswer, MIDTRANS_KEY, WEBHOOK,
};
use meetpool_domain::midtrans::signature;
use serde_json::{json, Value};

pub(crate) const DAY: &str = "2027-12-01";
pub(crate) const LINK: &str = "https://meet.google.com/kcw-ebey-pqu";

/// The fixtures' orders, each booked at an hour of its own on `DAY`, so that
/// the shop's single link can serve every one of them, at the price its
/// fixtures pay.
const ORDERS: [(&str, &str, i64); 9] = [
    ("ORDER-1001", "08:00", 150_000),
    ("ORDER-1002", "09:00", 250_000),
    ("ORDER-1003", "10:00", 250_000),
    ("ORDER-1004", "11:00", 150_000),
    ("ORDER-1005", "12:00", 150_000),
    ("ORDER-1006", "13:00", 250_000),
    ("ORDER-1007", "14:00", 150_000),
    ("ORDER-1008", "15:00", 150_000),
    ("ORDER-1009", "16:00", 99_000),
];

// ---------------------------------------------------------------- fixtures

fn shared_dir() -> PathBuf {
    std::env::var_os("MEETPOOL_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared")))
}

/// A fixture's bytes exactly as stored (the signature covers them as they are).
pub(crate) fn fixture(name: &str) -> Vec<u8> {
    let path = shared_dir().join("midtrans/notifications").join(name);
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read the Midtrans fixture {}: {e}. The shared folder sits beside the \
             repository; set MEETPOOL_SHARED_DIR to the folder holding midtrans/notifications/",
            path.display()
        )
    })
}

pub(crate) fn fixture_json(name: &str) -> Value {
    serde_json::from_slice(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// `body` signed with the fixtures' server key: a notification Midtrans
/// itself could send.
pub(crate) fn signed(mut body: Value) -> Vec<u8> {
    let sig = signature(
        body["order_id"].as_str().unwrap(),
        body["status_code"].as_str().unwrap(),
        body["gross_amount"].as_str().unwrap(),
        MIDTRANS_KEY,
    );
    body["signature_key"] = json!(sig);
    serde_json::to_vec(&body).unwrap()
}

/// A fixture with some fields changed, signed again: what Midtrans sends
/// for another order.
pub(crate) fn signed_fixture(name: &str, changes: Value) -> Vec<u8> {
    let mut body = fixture_json(name);
    for (k, v) in changes.as_object().unwrap() {
        body[k] = v.clone();
    }
    signed(body)
}

/// A fixture with some fields changed and its signature left as it was (a
/// forgery built from a genuine notification).
pub(crate) fn tampered(name: &str, changes: Value) -> Vec<u8> {
    let mut body = fixture_json(name);
    for (k, v) in changes.as_object().unwrap() {
        body[k] = v.clone();
    }
    serde_json::to_vec(&body).unwrap()
}

/// A signed settlement of `order` at the usual price (100000), with a
/// transaction of its own.
pub(crate) fn settlement_of(order: &str) -> Vec<u8> {
    let mut note = fixture_json("settlement-bank-transfer.json");
    note["order_id"] = json!(order);
    note["gross_amount"] = json!("100000.00");
    note["transaction_id"] = json!(format!("txn-{order}"));
    signed(note)
}

/// A signed refund of the settlement [`settlement_of`] `order` sent.
pub(crate) fn refund_of(order: &str) -> Vec<u8> {
    let mut note = fixture_json("refund-bank-transfer.json");
    note["order_id"] = json!(order);
    note["gross_amount"] = json!("100000.00");
    note["transaction_id"] = json!(format!("txn-{order}"));
    signed(note)
}

pub(crate) fn count(kinds: &[String], kind: &str) -> usize {
    kinds.iter().filter(|k| *k == kind).count()
}

// ---------------------------------------------------------------- many at once

/// Posts a notification from a task of its own: its answer, when it comes.
pub(crate) fn post_in_background(
    t: &TestApp,
    body: &[u8],
) -> tokio::task::JoinHandle<WebhookAnswer> {
    let post = t
        .http
        .post(t.url(WEBHOOK))
        .header("content-type", "application/json")
        .body(body.to_vec());
    tokio::spawn(async move {
        let res = post.send().await.expect("the webhook answers");
        let status = res.status();
        webhook_answer(status, &res.text().await.unwrap())
    })
}

/// Posts every body at once, as Midtrans does when many payments clear
/// together; the answers in the bodies' order.
pub(crate) async fn burst(t: &TestApp, bodies: &[(String, Vec<u8>)]) -> Vec<WebhookAnswer> {
    let posts: Vec<_> = bodies
        .iter()
        .map(|(_, body)| post_in_background(t, body))
        .collect();
    let mut answers = Vec::new();
    for post in posts {
        answers.push(post.await.unwrap());
    }
    answers
}

/// `n` pending bookings of an hour each on `DAY`, the first `crowd` of them
/// at 09:00 and the others at hours of their own: order id to booking id.
pub(crate) async fn burst_bookings(
    t: &TestApp,
    n: usize,
    crowd: usize,
) -> BTreeMap<String, String> {
    let st = t.create_session_type(60).await;
    let mut ids = BTreeMap::new();
    for i in 0..n {
        // After 09:00 when there is a crowd there.
        let first_own_hour = if crowd > 0 { 10 } else { 0 };
        let time = if i < crowd {
            "09:00".to_owned()
        } else {
            format!("{:02}:00", first_own_hour + i - crowd)
        };
        let order = format!("BURST-{i:02}");
        let booked = t
            .create_booking_with_order(&order, &st, DAY, &time, "pending")
            .await;
        ids.insert(order, booked.id);
    }
    ids
}

/// Returns once `n` notifications in all have been verified and queued for
/// settlement, as `/metrics` counts them; fails the test after a minute.
pub(crate) async fn until_queued(t: &TestApp, n: u64) {
    eventually(
        &format!("{n} notifications queued"),
        Duration::from_secs(60),
        || async { t.metric("meetpool_notifications_queued_total").await >= n },
    )
    .await;
}

// ---------------------------------------------------------------- the shop

/// A platform with one meeting link and a pending booking for each of the
/// fixtures' orders.
pub(crate) struct Shop {
    pub t: TestApp,
    pub st: SessionType,
    ids: BTreeMap<&'static str, String>,
}

impl Fixture for Shop {
    async fn ready(backend: Backend) -> Self {
        Shop::open(backend).await
    }
}

impl Shop {
    pub async fn open(b: Backend) -> Self {
        Self::open_with(b, |_| {}).await
    }

    pub async fn open_with(b: Backend, tweak: impl FnOnce(&mut meetpool_app::Config)) -> Self {
        Self::stock(TestApp::start_with(b, tweak).await).await
    }

    pub async fn stock(t: TestApp) -> Self {
        t.add_link(LINK).await;
        let st = t.create_session_type(60).await;
        let mut ids = BTreeMap::new();
        for (order, time, price) in ORDERS {
            let b = t
                .create_booking_priced(order, &st, DAY, time, "pending", price)
                .await;
            assert_eq!(b.meeting_link, None);
            ids.insert(order, b.id);
        }
        Self { t, st, ids }
    }

    pub fn id(&self, order: &str) -> &str {
        &self.ids[order]
    }

    pub async fn booking(&self, order: &str) -> Booking {
        self.t.booking(self.id(order)).await
    }

    pub async fn events(&self, order: &str) -> Vec<String> {
        self.t.event_kinds(self.id(order)).await
    }

    pub async fn notify(&self, body: impl Into<reqwest::Body>) -> WebhookAnswer {
        self.t.notify(body).await
    }

    /// Posts a fixture as stored; Midtrans gets a 200 and a success.
    pub async fn deliver(&self, name: &str) -> Settled {
        let answer = self.notify(fixture(name)).await.settled();
        assert!(answer.success, "{name}: {answer:?}");
        answer
    }

    /// Every booking with its audit trail, as raw JSON: what "nothing
    /// changed" compares.
    pub async fn snapshot(&self) -> Value {
        let mut all = serde_json::Map::new();
        for (order, id) in &self.ids {
            let (s, booking) = self.t.get(&format!("/api/bookings/{id}")).await;
            assert_eq!(s, reqwest::StatusCode::OK, "{booking}");
            let (s, events) = self.t.get(&format!("/api/bookings/{id}/events")).await;
            assert_eq!(s, reqwest::StatusCode::OK, "{events}");
            all.insert(
                (*order).to_owned(),
                json!({ "booking": booking, "events": events }),
            );
        }
        Value::Object(all)
    }

    pub async fn assert_paid_with_the_link(&self, order: &str, answer: &Settled) {
        assert_eq!(answer.booking_id, self.id(order), "{answer:?}");
        assert_eq!(answer.payment_status, "paid", "{answer:?}");
        assert_eq!(answer.meeting_link.as_deref(), Some(LINK), "{answer:?}");
        assert!(!answer.requires_manual_assignment, "{answer:?}");
        let shown = self.booking(order).await;
        assert_eq!(shown.payment_status, "paid", "{shown:?}");
        assert_eq!(shown.meeting_link.as_deref(), Some(LINK), "{shown:?}");
    }

    pub async fn assert_unpaid_without_a_link(&self, order: &str, status: &str, answer: &Settled) {
        assert_eq!(answer.booking_id, self.id(order), "{answer:?}");
        assert_eq!(answer.payment_status, status, "{answer:?}");
        assert_eq!(answer.meeting_link, None, "{answer:?}");
        assert!(!answer.requires_manual_assignment, "{answer:?}");
        let shown = self.booking(order).await;
        assert_eq!(shown.payment_status, status, "{shown:?}");
        assert_eq!(shown.meeting_link_id, None, "{shown:?}");
    }

    /// The only link is free again at `order`'s time: a new paid booking
    /// then gets it.
    pub async fn assert_link_free_at(&self, order: &str) {
        let time = ORDERS.iter().find(|(o, _, _)| *o == order).unwrap().1;
        let other = self.t.create_booking(&self.st, DAY, time, "paid").await;
        assert_eq!(
            other.meeting_link.as_deref(),
            Some(LINK),
            "the link was not released: {other:?}"
        );
    }
}
