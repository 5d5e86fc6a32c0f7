//! The typed client: what a platform or an operator does, one call each,
//! answered with the types of [`crate::model`]. A helper named after an
//! action (`add_link`) expects it to succeed and fails the test otherwise;
//! its `try_` twin returns the refusal for the test to look at.
use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use crate::model::{
    ApiError, AssignAnswer, Booking, Event, Link, PoolStatus, Refused, SessionType, Settled,
    WebhookAnswer, WebhookError,
};
use crate::TestApp;

/// The route the previous system's clients (and Midtrans) post to.
pub const WEBHOOK: &str = "/functions/v1/midtrans-webhook";

/// `body` as a `T` when `status` is a success, else as the native API's
/// error. A body of another shape fails the test.
#[track_caller]
fn decode<T: DeserializeOwned>(status: StatusCode, body: Value) -> Result<T, Refused> {
    if status.is_success() {
        return Ok(serde_json::from_value(body.clone())
            .unwrap_or_else(|e| panic!("{status} {body}: not the expected shape: {e}")));
    }
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct ErrorBody {
        error: ApiError,
    }
    let parsed: ErrorBody = serde_json::from_value(body.clone())
        .unwrap_or_else(|e| panic!("{status} {body}: not an API error: {e}"));
    Err(Refused {
        status,
        error: parsed.error,
    })
}

/// A success the test counts on.
#[track_caller]
fn expect<T>(what: &str, answer: Result<T, Refused>) -> T {
    answer.unwrap_or_else(|r| panic!("{what}: refused with {r:?}"))
}

impl TestApp {
    // ---------------------------------------------------------------- session types

    /// A session type of `minutes`, named after its length.
    pub async fn create_session_type(&self, minutes: i64) -> SessionType {
        let (s, b) = self
            .post(
                "/api/session-types",
                json!({ "name": format!("{minutes} min"), "duration": minutes, "price": 100000 }),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        expect("create a session type", decode(s, b))
    }

    pub async fn session_types(&self) -> Vec<SessionType> {
        let (s, b) = self.get("/api/session-types").await;
        expect("list session types", decode(s, b))
    }

    // ---------------------------------------------------------------- links

    pub async fn try_add_link(&self, url: &str) -> Result<Link, Refused> {
        let (s, b) = self
            .post("/api/links", json!({ "meeting_link": url }))
            .await;
        let link = decode(s, b)?;
        assert_eq!(s, StatusCode::CREATED);
        Ok(link)
    }

    pub async fn add_link(&self, url: &str) -> Link {
        expect(url, self.try_add_link(url).await)
    }

    /// The previous system's three production links.
    pub async fn seed_links(&self) -> Vec<Link> {
        let mut links = Vec::new();
        for url in [
            "https://meet.google.com/kcw-ebey-pqu",
            "https://meet.google.com/ppt-myeq-puu",
            "https://meet.google.com/wyk-nvfk-qkq",
        ] {
            links.push(self.add_link(url).await);
        }
        links
    }

    pub async fn link(&self, id: &str) -> Link {
        let (s, b) = self.get(&format!("/api/links/{id}")).await;
        expect("get a link", decode(s, b))
    }

    pub async fn links(&self) -> Vec<Link> {
        let (s, b) = self.get("/api/links").await;
        expect("list links", decode(s, b))
    }

    /// `PATCH /api/links/{id}` with `changes`.
    pub async fn update_link(&self, id: &str, changes: Value) -> Result<Link, Refused> {
        let (s, b) = self.patch(&format!("/api/links/{id}"), changes).await;
        decode(s, b)
    }

    pub async fn delete_link(&self, id: &str) -> Result<(), Refused> {
        let (s, b) = self.delete(&format!("/api/links/{id}")).await;
        if s == StatusCode::NO_CONTENT {
            return Ok(());
        }
        match decode::<Value>(s, b) {
            Ok(b) => panic!("{s} {b}: a deletion answers 204"),
            Err(refused) => Err(refused),
        }
    }

    // ---------------------------------------------------------------- bookings

    /// `POST /api/bookings` with `body` as it is.
    pub async fn try_create_booking(&self, body: Value) -> Result<Booking, Refused> {
        let (s, b) = self.post("/api/bookings", body).await;
        let booking = decode(s, b)?;
        assert_eq!(s, StatusCode::CREATED);
        Ok(booking)
    }

    /// A booking of `st` at `date` `time` (platform's local time), with an
    /// order id of its own.
    pub async fn create_booking(
        &self,
        st: &SessionType,
        date: &str,
        time: &str,
        payment_status: &str,
    ) -> Booking {
        let order = format!("TEST-{}", uuid::Uuid::new_v4());
        self.create_booking_with_order(&order, st, date, time, payment_status)
            .await
    }

    /// A booking of `order` at the usual price, 100000 (a settlement must
    /// pay `"100000.00"`).
    pub async fn create_booking_with_order(
        &self,
        order: &str,
        st: &SessionType,
        date: &str,
        time: &str,
        payment_status: &str,
    ) -> Booking {
        self.create_booking_priced(order, st, date, time, payment_status, 100_000)
            .await
    }

    pub async fn create_booking_priced(
        &self,
        order: &str,
        st: &SessionType,
        date: &str,
        time: &str,
        payment_status: &str,
        price: i64,
    ) -> Booking {
        let body = json!({
            "order_id": order, "user_id": "user-1", "expert_id": "expert-1",
            "session_type_id": st.id, "booking_date": date, "booking_time": time,
            "price": price, "payment_status": payment_status,
        });
        expect(order, self.try_create_booking(body).await)
    }

    pub async fn booking(&self, id: &str) -> Booking {
        let (s, b) = self.get(&format!("/api/bookings/{id}")).await;
        expect("get a booking", decode(s, b))
    }

    /// `GET /api/bookings?{query}`.
    pub async fn bookings(&self, query: &str) -> Result<Vec<Booking>, Refused> {
        let (s, b) = self.get(&format!("/api/bookings?{query}")).await;
        decode(s, b)
    }

    /// `PATCH /api/bookings/{id}` with `changes`.
    pub async fn update_booking(&self, id: &str, changes: Value) -> Result<Booking, Refused> {
        let (s, b) = self.patch(&format!("/api/bookings/{id}"), changes).await;
        decode(s, b)
    }

    /// A payment change by hand (an operator confirming or refunding).
    pub async fn set_payment_status(&self, id: &str, status: &str) -> Result<Booking, Refused> {
        self.update_booking(id, json!({ "payment_status": status }))
            .await
    }

    /// Gives `booking` the link `link` by hand.
    pub async fn assign_link(&self, booking: &str, link: &str) -> Result<Booking, Refused> {
        let (s, b) = self
            .put(
                &format!("/api/bookings/{booking}/meeting-link"),
                json!({ "meeting_link_id": link }),
            )
            .await;
        decode(s, b)
    }

    /// Takes `booking`'s link back by hand.
    pub async fn release_link(&self, booking: &str) -> Result<Booking, Refused> {
        let (s, b) = self
            .delete(&format!("/api/bookings/{booking}/meeting-link"))
            .await;
        decode(s, b)
    }

    /// The booking's audit trail, oldest first.
    pub async fn events(&self, booking: &str) -> Vec<Event> {
        let (s, b) = self.get(&format!("/api/bookings/{booking}/events")).await;
        expect("a booking's events", decode(s, b))
    }

    /// The kinds of the booking's audit trail, oldest first.
    pub async fn event_kinds(&self, booking: &str) -> Vec<String> {
        self.events(booking)
            .await
            .into_iter()
            .map(|e| e.kind)
            .collect()
    }

    pub async fn recent_assignments(&self, limit: u32) -> Vec<Booking> {
        let (s, b) = self
            .get(&format!("/api/assignments/recent?limit={limit}"))
            .await;
        expect("recent assignments", decode(s, b))
    }

    pub async fn pool_status(&self) -> PoolStatus {
        let (s, b) = self.get("/api/pool/status").await;
        expect("the pool's status", decode(s, b))
    }

    // ---------------------------------------------------------------- the previous system's calls

    /// `POST /functions/v1/assign-meeting-link` `{"bookingId": ...}`.
    pub async fn assign(&self, booking_id: &str) -> (StatusCode, AssignAnswer) {
        let (s, b) = self
            .post(
                "/functions/v1/assign-meeting-link",
                json!({ "bookingId": booking_id }),
            )
            .await;
        let answer = serde_json::from_value(b.clone())
            .unwrap_or_else(|e| panic!("{s} {b}: not the previous system's answer: {e}"));
        (s, answer)
    }

    /// Posts `body` to the webhook the way Midtrans does.
    pub async fn notify(&self, body: impl Into<reqwest::Body>) -> WebhookAnswer {
        self.notify_at(WEBHOOK, body).await
    }

    /// Posts `body` to `path` the way Midtrans does: no credentials, and no
    /// redirect followed, so that one would show (Midtrans gives up on a
    /// 3xx).
    pub async fn notify_at(&self, path: &str, body: impl Into<reqwest::Body>) -> WebhookAnswer {
        let midtrans = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let res = midtrans
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("the webhook answers");
        webhook_answer(res.status(), &res.text().await.unwrap())
    }

    // ---------------------------------------------------------------- what an operator watches

    /// `GET /metrics`, as text.
    pub async fn metrics(&self) -> String {
        self.http
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// A counter or gauge of `GET /metrics`, by its name.
    pub async fn metric(&self, name: &str) -> u64 {
        let text = self.metrics().await;
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no {name} in /metrics:\n{text}"))
            .parse()
            .unwrap()
    }

    /// Pairs of bookings holding one link at overlapping times, as the
    /// database sees them.
    pub async fn overlaps(&self) -> usize {
        self.app.store().overlapping_pairs().await.unwrap().len()
    }
}

/// The webhook's answer, read as Midtrans would: a 200 carries a
/// settlement, anything else an error. A redirect fails the test.
#[track_caller]
pub fn webhook_answer(status: StatusCode, text: &str) -> WebhookAnswer {
    assert!(
        !status.is_redirection(),
        "Midtrans gives up on a redirect: {status} {text}"
    );
    if status == StatusCode::OK {
        let settled: Settled = serde_json::from_str(text)
            .unwrap_or_else(|e| panic!("{status} {text}: not a settlement: {e}"));
        WebhookAnswer::Settled(settled)
    } else {
        let refused: WebhookError = serde_json::from_str(text)
            .unwrap_or_else(|e| panic!("{status} {text}: not the webhook's error: {e}"));
        WebhookAnswer::Refused(status, refused)
    }
}
