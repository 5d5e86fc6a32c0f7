//! Midtrans payment notifications, end to end over HTTP: the fixtures of
//! `../shared/midtrans/notifications/` (signed with the fixtures' server key)
//! posted the way Midtrans posts them, and what the platform then sees on
//! its bookings.
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use meetpool_app::MidtransVerify;
use meetpool_conformance::{event_kinds, Backend, TestApp, TestDb, MIDTRANS_KEY};
use meetpool_domain::midtrans::{signature, Notification};
use meetpool_store::ConnectOptions;
use reqwest::StatusCode;
use serde_json::{json, Value};

const DAY: &str = "2027-12-01";
const HOOK: &str = "/functions/v1/midtrans-webhook";
const HOOK_NATIVE: &str = "/webhooks/midtrans";
const LINK: &str = "https://meet.google.com/kcw-ebey-pqu";

/// The fixtures' orders, each booked at an hour of its own on `DAY`, so that
/// the shop's single link can serve every one of them.
const ORDERS: [(&str, &str); 9] = [
    ("ORDER-1001", "08:00"),
    ("ORDER-1002", "09:00"),
    ("ORDER-1003", "10:00"),
    ("ORDER-1004", "11:00"),
    ("ORDER-1005", "12:00"),
    ("ORDER-1006", "13:00"),
    ("ORDER-1007", "14:00"),
    ("ORDER-1008", "15:00"),
    ("ORDER-1009", "16:00"),
];

on_both!(
    settlement_pays_and_gives_the_booking_a_link,
    card_capture_accepted_pays_and_challenged_waits_for_review,
    pending_expire_and_deny_leave_the_booking_unpaid_without_a_link,
    cancel_after_capture_releases_the_link,
    refund_after_settlement_releases_the_link,
    partial_refund_keeps_the_booking_paid_and_its_link,
    settlement_reversed_by_deny_loses_its_link,
    fields_midtrans_adds_later_are_ignored,
    both_routes_answer_alike,
    tampered_amount_or_order_id_is_401_and_changes_nothing,
    pending_edited_to_settlement_is_never_paid,
    edited_statuses_never_end_or_reverse_a_payment,
    twenty_concurrent_copies_apply_once,
    settlement_then_pending_stays_paid_with_its_link,
    refund_hands_the_link_to_a_waiting_paid_booking,
    malformed_bodies_are_400_and_change_nothing,
    unknown_order_is_404,
    without_a_server_key_the_webhook_is_503_not_configured,
    status_mode_applies_what_midtrans_reports,
    database_unreachable_is_503_and_the_retry_applies,
    a_burst_settles_each_notification_as_if_alone,
    a_notification_failing_in_a_burst_fails_alone,
);

// ---------------------------------------------------------------- fixtures

fn shared_dir() -> PathBuf {
    std::env::var_os("MEETPOOL_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared")))
}

/// A fixture's bytes exactly as stored (the signature covers them as they are).
fn fixture(name: &str) -> Vec<u8> {
    let path = shared_dir().join("midtrans/notifications").join(name);
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read the Midtrans fixture {}: {e}. The shared folder sits beside the \
             repository; set MEETPOOL_SHARED_DIR to the folder holding midtrans/notifications/",
            path.display()
        )
    })
}

fn fixture_json(name: &str) -> Value {
    serde_json::from_slice(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// `body` signed with the fixtures' server key: a notification Midtrans
/// itself could send.
fn signed(mut body: Value) -> Vec<u8> {
    let sig = signature(
        body["order_id"].as_str().unwrap(),
        body["status_code"].as_str().unwrap(),
        body["gross_amount"].as_str().unwrap(),
        MIDTRANS_KEY,
    );
    body["signature_key"] = json!(sig);
    serde_json::to_vec(&body).unwrap()
}

/// A fixture with some fields changed and its signature left as it was (a
/// forgery built from a genuine notification).
fn tampered(name: &str, changes: Value) -> Vec<u8> {
    let mut body = fixture_json(name);
    for (k, v) in changes.as_object().unwrap() {
        body[k] = v.clone();
    }
    serde_json::to_vec(&body).unwrap()
}

/// POSTs a body the way Midtrans does (no credentials). Redirects are not
/// followed, so that one would show: Midtrans gives up on a 3xx.
async fn notify_at(t: &TestApp, path: &str, body: impl Into<reqwest::Body>) -> (StatusCode, Value) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = client
        .post(t.url(path))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("the webhook answers");
    let status = res.status();
    let text = res.text().await.unwrap();
    assert!(
        !status.is_redirection(),
        "Midtrans gives up on a redirect: {status} {text}"
    );
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

// ---------------------------------------------------------------- the shop

/// A platform with one meeting link and a pending booking for each of the
/// fixtures' orders.
struct Shop {
    t: TestApp,
    st: String,
    ids: BTreeMap<&'static str, String>,
}

impl Shop {
    async fn open(b: Backend) -> Option<Self> {
        Self::open_with(b, |_| {}).await
    }

    async fn open_with(b: Backend, tweak: impl FnOnce(&mut meetpool_app::Config)) -> Option<Self> {
        let t = TestApp::spawn_with(b, tweak).await?;
        Some(Self::stock(t).await)
    }

    async fn stock(t: TestApp) -> Self {
        t.add_link(LINK).await;
        let st = t.session_type(60).await;
        let mut ids = BTreeMap::new();
        for (order, time) in ORDERS {
            let b = t.booking_with_order(order, &st, DAY, time, "pending").await;
            assert_eq!(b["meeting_link"], Value::Null);
            ids.insert(order, b["id"].as_str().unwrap().to_owned());
        }
        Self { t, st, ids }
    }

    fn id(&self, order: &str) -> &str {
        &self.ids[order]
    }

    async fn booking(&self, order: &str) -> Value {
        self.t.get_booking(self.id(order)).await
    }

    async fn events(&self, order: &str) -> Vec<String> {
        event_kinds(&self.t, self.id(order)).await
    }

    async fn notify(&self, body: impl Into<reqwest::Body>) -> (StatusCode, Value) {
        notify_at(&self.t, HOOK, body).await
    }

    /// Posts a fixture as stored; Midtrans gets a 200 and a success.
    async fn deliver(&self, name: &str) -> Value {
        let (s, b) = self.notify(fixture(name)).await;
        assert_eq!(s, StatusCode::OK, "{name}: {b}");
        assert_eq!(b["success"], true, "{name}: {b}");
        b
    }

    /// Every booking with its audit trail: what "nothing changed" compares.
    async fn snapshot(&self) -> Value {
        let mut all = serde_json::Map::new();
        for (order, id) in &self.ids {
            let (s, events) = self.t.get(&format!("/api/bookings/{id}/events")).await;
            assert_eq!(s, StatusCode::OK, "{events}");
            all.insert(
                (*order).to_owned(),
                json!({ "booking": self.t.get_booking(id).await, "events": events }),
            );
        }
        Value::Object(all)
    }

    async fn assert_paid_with_the_link(&self, order: &str, answer: &Value) {
        assert_eq!(answer["bookingId"], self.id(order), "{answer}");
        assert_eq!(answer["paymentStatus"], "paid", "{answer}");
        assert_eq!(answer["meetingLink"], LINK, "{answer}");
        assert_eq!(answer["requiresManualAssignment"], false, "{answer}");
        let shown = self.booking(order).await;
        assert_eq!(shown["payment_status"], "paid", "{shown}");
        assert_eq!(shown["meeting_link"], LINK, "{shown}");
    }

    async fn assert_unpaid_without_a_link(&self, order: &str, status: &str, answer: &Value) {
        assert_eq!(answer["bookingId"], self.id(order), "{answer}");
        assert_eq!(answer["paymentStatus"], status, "{answer}");
        assert_eq!(answer["meetingLink"], Value::Null, "{answer}");
        assert_eq!(answer["requiresManualAssignment"], false, "{answer}");
        let shown = self.booking(order).await;
        assert_eq!(shown["payment_status"], status, "{shown}");
        assert_eq!(shown["meeting_link_id"], Value::Null, "{shown}");
    }

    /// The only link is free again at `order`'s time: a new paid booking
    /// then gets it.
    async fn assert_link_free_at(&self, order: &str) {
        let time = ORDERS.iter().find(|(o, _)| *o == order).unwrap().1;
        let other = self.t.booking(&self.st, DAY, time, "paid").await;
        assert_eq!(
            other["meeting_link"], LINK,
            "the link was not released: {other}"
        );
    }
}

fn count(kinds: &[String], kind: &str) -> usize {
    kinds.iter().filter(|k| *k == kind).count()
}

// ---------------------------------------------------------------- every fixture

async fn settlement_pays_and_gives_the_booking_a_link(b: Backend) {
    let Some(shop) = Shop::open(b).await else {
        return;
    };
    let answer = shop.deliver("settlement-bank-transfer.json").await;
    assert_eq!(answer["duplicate"], false);
    shop.assert_paid_with_the_link("ORDER-1001", &answer).await;
    let kinds = shop.events("ORDER-1001").await;
    assert_eq!(count(&kinds, "payment"), 1, "{kinds:?}");
    assert_eq!(count(&kinds, "assigned"), 1, "{kinds:?}");

    // The notification is kept as received, with what became of it.
    let (_, events) = shop
        .t
        .get(&format!("/api/bookings/{}/events", shop.id("ORDER-1001")))
        .await;
    let payment = events
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "payment")
        .unwrap();
    let raw = String::from_utf8(fixture("settlement-bank-transfer.json")).unwrap();
    assert_eq!(payment["detail"]["body"], raw.as_str(), "{payment}");
    assert_eq!(payment["detail"]["outcome"], "applied", "{payment}");
    assert_eq!(shop.t.overlaps().await, 0);
}

async fn card_capture_accepted_pays_and_challenged_waits_for_review(b: Backend) {
    let Some(shop) = Shop::open(b).await else {
        return;
    };
    let accepted = shop.deliver("capture-accept-card.json").await;
    shop.assert_paid_with_the_link("ORDER-1002", &accepted)
        .await;

    let challenged = shop.deliver("capture-challenge-card.json").await;
    shop.assert_unpaid_without_a_link("ORDER-1003", "pending", &challenged)
        .await;
    assert!(!shop
        .events("ORDER-1003")
        .await
        .contains(&"assigned".to_owned()));
}

async fn pending_expire_and_deny_leave_the_booking_unpaid_without_a_link(b: Backend) {
    let Some(shop) = Shop::open(b).await else {
        return;
    };
    let pending = shop.deliver("pending-echannel.json").await;
    shop.assert_unpaid_without_a_link("ORDER-1004", "pending", &pending)
        .await;
    // Sparse: no merchant_id, currency, fraud_status... still understood.
    let expired = shop.deliver("expire-permata-sparse.json").await;
    shop.assert_unpaid_without_a_link("ORDER-1005", "expired", &expired)
        .await;
    let denied = shop.deliver("deny-card.json").await;
    shop.assert_unpaid_without_a_link("ORDER-1006", "failed", &denied)
        .await;
    for order in ["ORDER-1004", "ORDER-1005", "ORDER-1006"] {
        assert!(!shop.events(order).await.contains(&"assigned".to_owned()));
    }
}

async fn cancel_after_capture_releases_the_link(b: Backend) {
    let Some(shop) = Shop::open(b).await else {
        return;
    };
    let captured = shop.deliver("capture-accept-card.json").await;
    shop.assert_paid_with_the_link("ORDER-1002", &captured)
        .await;

    let cancelled = shop.deliver("cancel-card.json").await;
    shop.assert_unpaid_without_a_link("ORDER-1002", "cancelled", &cancelled)
        .await;
    assert!(shop
        .events("ORDER-1002")
        .await
        .contains(&"released".to_owned()));
    shop.assert_link_free_at("ORDER-1002").await;
}

async fn refund_after_settlement_releases_the_link(b: Backend) {
    let Some(shop) = Shop::open(b).await else {
        return;
    };
    let settled = shop.deliver("settlement-bank-transfer.json").await;
    shop.assert_paid_with_the_link("ORDER-1001", &settled).await;

    let refunded = shop.deliver("refund-bank-transfer.json").await;
    shop.assert_unpaid_without_a_link("ORDER-1001", "refunded", &refunded)
        .await;
    assert!(shop
        .events("ORDER-1001")
        .await
        .contains(&"released".to_owned()));
    shop.assert_link_free_at("ORDER-1001").await;
}

async fn partial_refund_keeps_the_booking_paid_and_its_link(b: Backend) {
    let Some(shop) = Shop::open(b).await else {
        return;
    };
    // Paid on the platform's side (an operator confirming by hand).
    let (s, paid) = shop
        .t
        .patch(
            &format!("/api/bookings/{}", shop.id("ORDER-1008")),
            json!({"payment_status": "paid"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{paid}");
    assert_eq!(shop.booking("ORDER-1008").await["meeting_link"], LINK);
    let before = shop.events("ORDER-1008").await;

    let partial = shop.deliver("partial-refund.json").await;
    shop.assert_paid_with_the_link("ORDER-1008", &partial).await;
    let after = shop.events("ORDER-1008").await;
    // Recorded, and nothing released.
    assert_eq!(after.len(), before.len() + 1, "{before:?} -> {after:?}");
    assert_eq!(after.last().unwrap(), "payment", "{after:?}");
    assert_eq!(count(&after, "released"), 0, "{after:?}");
}

async fn settlement_reversed_by_deny_loses_its_link(b: Backend) {
    let Some(shop) = Shop::open(b).await else {
        return;
    };
    let settled = shop.deliver("settlement-bank-transfer.json").await;
    shop.assert_paid_with_the_link("ORDER-1001", &settled).await;

    let reversed = shop.deliver("settlement-reversal-deny.json").await;
    shop.assert_unpaid_without_a_link("ORDER-1001", "failed", &reversed)
        .await;
    assert!(shop
        .events("ORDER-1001")
        .await
        .contains(&"released".to_owned()));
    shop.assert_link_free_at("ORDER-1001").await;
}

async fn fields_midtrans_adds_later_are_ignored(b: Backend) {
    let Some(shop) = Shop::open(b).await else {
        return;
    };
    let answer = shop.deliver("settlement-with-new-fields.json").await;
    shop.assert_paid_with_the_link("ORDER-1009", &answer).await;
}

async fn both_routes_answer_alike(b: Backend) {
    let Some(shop) = Shop::open(b).await else {
        return;
    };
    let (s, first) = notify_at(
        &shop.t,
        HOOK_NATIVE,
        fixture("settlement-bank-transfer.json"),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{first}");
    assert_eq!(first["duplicate"], false);
    shop.assert_paid_with_the_link("ORDER-1001", &first).await;

    // Midtrans re-sends it to the seed's route: already applied.
    let (s, again) = notify_at(&shop.t, HOOK, fixture("settlement-bank-transfer.json")).await;
    assert_eq!(s, StatusCode::OK, "{again}");
    assert_eq!(again["duplicate"], true);
    shop.assert_paid_with_the_link("ORDER-1001", &again).await;

    // And a first notification on the native route for another order.
    let (s, other) = notify_at(&shop.t, HOOK_NATIVE, fixture("pending-echannel.json")).await;
    assert_eq!(s, StatusCode::OK, "{other}");
    shop.assert_unpaid_without_a_link("ORDER-1004", "pending", &other)
        .await;
}

// ---------------------------------------------------------------- forgeries

async fn tampered_amount_or_order_id_is_401_and_changes_nothing(b: Backend) {
    let Some(shop) = Shop::open(b).await else {
        return;
    };
    let before = shop.snapshot().await;
    for forged in [
        tampered(
            "settlement-bank-transfer.json",
            json!({"gross_amount": "1500.00"}),
        ),
        tampered(
            "settlement-bank-transfer.json",
            json!({"gross_amount": "150000"}),
        ),
        tampered(
            "settlement-bank-transfer.json",
            json!({"order_id": "ORDER-1002"}),
        ),
        tampered(
            "settlement-bank-transfer.json",
            json!({"status_code": "201"}),
        ),
        tampered(
            "settlement-bank-transfer.json",
            json!({"signature_key": "00"}),
        ),
    ] {
        let (s, body) = shop.notify(forged).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{body}");
        assert_eq!(body["success"], false);
        assert_eq!(body["error"]["code"], "invalid_signature", "{body}");
    }
    assert_eq!(shop.snapshot().await, before, "a forgery changed something");

    // The genuine notification still goes through.
    let answer = shop.deliver("settlement-bank-transfer.json").await;
    shop.assert_paid_with_the_link("ORDER-1001", &answer).await;
}

async fn pending_edited_to_settlement_is_never_paid(b: Backend) {
    let Some(shop) = Shop::open(b).await else {
        return;
    };
    let before = shop.snapshot().await;
    // The signature does not cover transaction_status: these still verify.
    for forged in [
        tampered(
            "pending-echannel.json",
            json!({"transaction_status": "settlement"}),
        ),
        tampered(
            "pending-echannel.json",
            json!({"transaction_status": "SETTLEMENT"}),
        ),
        tampered(
            "pending-echannel.json",
            json!({"transaction_status": "capture", "fraud_status": "accept"}),
        ),
        tampered(
            "capture-challenge-card.json",
            json!({"fraud_status": "accept"}),
        ),
    ] {
        let (s, body) = shop.notify(forged).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{body}");
        assert_eq!(body["success"], false);
        assert_eq!(body["error"]["code"], "unverifiable_status", "{body}");
    }
    assert_eq!(
        shop.snapshot().await,
        before,
        "an edited status changed something"
    );
    assert_eq!(
        shop.booking("ORDER-1004").await["payment_status"],
        "pending"
    );

    // The genuine pending notification is still applied afterwards.
    let pending = shop.deliver("pending-echannel.json").await;
    assert_eq!(pending["duplicate"], false);
    shop.assert_unpaid_without_a_link("ORDER-1004", "pending", &pending)
        .await;
}

async fn edited_statuses_never_end_or_reverse_a_payment(b: Backend) {
    let Some(shop) = Shop::open(b).await else {
        return;
    };
    // ORDER-1001 was pending (201) before its settlement (200) of the same
    // transaction: both bodies are genuine, and their status is not signed.
    let mut pending_1001 = fixture_json("pending-echannel.json");
    pending_1001["order_id"] = json!("ORDER-1001");
    pending_1001["transaction_id"] = json!("7f0c2a8e-1d43-4b8e-9a52-0c6b1f5e3a11");
    let pending_1001: Value = serde_json::from_slice(&signed(pending_1001)).unwrap();
    let settled = shop.deliver("settlement-bank-transfer.json").await;
    shop.assert_paid_with_the_link("ORDER-1001", &settled).await;
    let before = shop.snapshot().await;

    let edit = |body: &Value, status: &str| {
        let mut body = body.clone();
        body["transaction_status"] = json!(status);
        serde_json::to_vec(&body).unwrap()
    };
    let settlement = fixture_json("settlement-bank-transfer.json");
    let pending_1004 = fixture_json("pending-echannel.json");
    let challenge_1003 = fixture_json("capture-challenge-card.json");
    let mut denied_challenge = challenge_1003.clone();
    denied_challenge["fraud_status"] = json!("deny");
    for forged in [
        // A pending body turned into an end: the real payment that follows
        // would be refused by a cancelled booking.
        edit(&pending_1004, "cancel"),
        edit(&pending_1004, "refund"),
        edit(&pending_1004, "chargeback"),
        edit(&pending_1004, "deny"),
        edit(&challenge_1003, "cancel"),
        serde_json::to_vec(&denied_challenge).unwrap(),
        // The settled transaction's own pending body, or its settlement,
        // turned into a reversal.
        edit(&pending_1001, "deny"),
        edit(&pending_1001, "failure"),
        edit(&pending_1001, "cancel"),
        edit(&settlement, "deny"),
    ] {
        let shown = String::from_utf8_lossy(&forged).into_owned();
        let (s, body) = shop.notify(forged).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{shown}: {body}");
        assert_eq!(body["error"]["code"], "unverifiable_status", "{body}");
    }
    assert_eq!(
        shop.snapshot().await,
        before,
        "an edited status changed something"
    );

    // The real payment of ORDER-1004 still goes through.
    let mut paid_1004 = settlement.clone();
    paid_1004["order_id"] = json!("ORDER-1004");
    paid_1004["transaction_id"] = json!("4d2f8e6a-9c3b-4e5f-a04d-7b8c9d0e1f23");
    let (s, answer) = shop.notify(signed(paid_1004)).await;
    assert_eq!(s, StatusCode::OK, "{answer}");
    shop.assert_paid_with_the_link("ORDER-1004", &answer).await;
    shop.assert_paid_with_the_link("ORDER-1001", &settled).await;
}

// ---------------------------------------------------------------- exactly once, forward only

async fn twenty_concurrent_copies_apply_once(b: Backend) {
    let Some(shop) = Shop::open(b).await else {
        return;
    };
    let body = fixture("settlement-bank-transfer.json");
    let url = shop.t.url(HOOK);
    let copies: Vec<_> = (0..20)
        .map(|_| {
            let http = shop.t.http.clone();
            let url = url.clone();
            let body = body.clone();
            tokio::spawn(async move {
                let res = http
                    .post(url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .expect("the webhook answers");
                let status = res.status();
                (status, res.json::<Value>().await.unwrap())
            })
        })
        .collect();
    let mut duplicates = 0;
    for copy in copies {
        let (s, answer) = copy.await.unwrap();
        assert_eq!(s, StatusCode::OK, "{answer}");
        shop.assert_paid_with_the_link("ORDER-1001", &answer).await;
        if answer["duplicate"] == true {
            duplicates += 1;
        }
    }
    assert_eq!(duplicates, 19);
    let kinds = shop.events("ORDER-1001").await;
    assert_eq!(count(&kinds, "assigned"), 1, "{kinds:?}");
    assert_eq!(count(&kinds, "payment"), 1, "{kinds:?}");
    assert_eq!(shop.t.overlaps().await, 0);
}

async fn settlement_then_pending_stays_paid_with_its_link(b: Backend) {
    let Some(shop) = Shop::open(b).await else {
        return;
    };
    let settled = shop.deliver("settlement-bank-transfer.json").await;
    shop.assert_paid_with_the_link("ORDER-1001", &settled).await;

    // A late pending of the same order (genuine: Midtrans' own signature).
    let mut late = fixture_json("pending-echannel.json");
    late["order_id"] = json!("ORDER-1001");
    late["transaction_id"] = json!("7f0c2a8e-1d43-4b8e-9a52-0c6b1f5e3a11");
    let (s, answer) = shop.notify(signed(late)).await;
    assert_eq!(s, StatusCode::OK, "{answer}");
    shop.assert_paid_with_the_link("ORDER-1001", &answer).await;

    // The deny of an earlier card attempt (another transaction) neither.
    let mut earlier = fixture_json("deny-card.json");
    earlier["order_id"] = json!("ORDER-1001");
    earlier["gross_amount"] = json!("150000.00");
    let (s, answer) = shop.notify(signed(earlier)).await;
    assert_eq!(s, StatusCode::OK, "{answer}");
    shop.assert_paid_with_the_link("ORDER-1001", &answer).await;

    // A replayed settlement is a duplicate.
    let again = shop.deliver("settlement-bank-transfer.json").await;
    assert_eq!(again["duplicate"], true);
    shop.assert_paid_with_the_link("ORDER-1001", &again).await;

    let kinds = shop.events("ORDER-1001").await;
    assert_eq!(count(&kinds, "payment"), 1, "{kinds:?}");
    assert_eq!(count(&kinds, "notification_ignored"), 2, "{kinds:?}");
    assert_eq!(count(&kinds, "released"), 0, "{kinds:?}");
}

async fn refund_hands_the_link_to_a_waiting_paid_booking(b: Backend) {
    let Some(shop) = Shop::open(b).await else {
        return;
    };
    let settled = shop.deliver("settlement-bank-transfer.json").await;
    shop.assert_paid_with_the_link("ORDER-1001", &settled).await;

    // Paid on another channel at the same time, while the only link is taken.
    let waiting = shop.t.booking(&shop.st, DAY, "08:30", "paid").await;
    let waiting_id = waiting["id"].as_str().unwrap();
    assert_eq!(waiting["payment_status"], "paid");
    assert_eq!(waiting["meeting_link"], Value::Null, "{waiting}");

    let refunded = shop.deliver("refund-bank-transfer.json").await;
    shop.assert_unpaid_without_a_link("ORDER-1001", "refunded", &refunded)
        .await;

    // At once: no operator, no further call.
    let now = shop.t.get_booking(waiting_id).await;
    assert_eq!(now["payment_status"], "paid");
    assert_eq!(now["meeting_link"], LINK, "{now}");
    assert!(event_kinds(&shop.t, waiting_id)
        .await
        .contains(&"assigned".to_owned()));
    assert_eq!(shop.t.overlaps().await, 0);
}

// ---------------------------------------------------------------- bursts

/// A signed settlement of `order`, with a transaction of its own.
pub(crate) fn settlement_of(order: &str) -> Vec<u8> {
    let mut note = fixture_json("settlement-bank-transfer.json");
    note["order_id"] = json!(order);
    note["transaction_id"] = json!(format!("txn-{order}"));
    signed(note)
}

/// A signed refund of the settlement [`settlement_of`] `order` sent.
pub(crate) fn refund_of(order: &str) -> Vec<u8> {
    let mut note = fixture_json("refund-bank-transfer.json");
    note["order_id"] = json!(order);
    note["transaction_id"] = json!(format!("txn-{order}"));
    signed(note)
}

/// Posts a notification from a task of its own: its answer, when it comes.
pub(crate) fn post_in_background(
    t: &TestApp,
    body: &[u8],
) -> tokio::task::JoinHandle<(StatusCode, Value)> {
    let post = t
        .http
        .post(t.url(HOOK))
        .header("content-type", "application/json")
        .body(body.to_vec());
    tokio::spawn(async move {
        let res = post.send().await.expect("the webhook answers");
        let status = res.status();
        (status, res.json::<Value>().await.unwrap())
    })
}

/// Posts every body at once, as Midtrans does when many payments clear
/// together; the answers in the bodies' order.
pub(crate) async fn burst(t: &TestApp, bodies: &[(String, Vec<u8>)]) -> Vec<(StatusCode, Value)> {
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
    let st = t.session_type(60).await;
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
            .booking_with_order(&order, &st, DAY, &time, "pending")
            .await;
        ids.insert(order, booked["id"].as_str().unwrap().to_owned());
    }
    ids
}

async fn a_burst_settles_each_notification_as_if_alone(b: Backend) {
    let Some(t) = TestApp::spawn(b).await else {
        return;
    };
    for i in 0..3 {
        t.add_link(&format!("https://meet.example.com/burst-{i}"))
            .await;
    }
    // Six sessions at 09:00 for three links; six at hours of their own.
    let ids = burst_bookings(&t, 12, 6).await;
    let mut bodies: Vec<(String, Vec<u8>)> = ids
        .keys()
        .map(|order| (order.clone(), settlement_of(order)))
        .collect();
    for copy in ["BURST-00", "BURST-07", "BURST-07"] {
        bodies.push((copy.to_owned(), settlement_of(copy)));
    }
    for i in 0..3 {
        let stranger = format!("STRANGER-{i}");
        bodies.push((stranger.clone(), settlement_of(&stranger)));
    }

    let answers = burst(&t, &bodies).await;
    let mut applied: BTreeMap<&str, Value> = BTreeMap::new();
    for ((order, _), (status, answer)) in bodies.iter().zip(answers) {
        let Some(id) = ids.get(order) else {
            assert_eq!(status, StatusCode::NOT_FOUND, "{order}: {answer}");
            assert_eq!(answer["error"]["code"], "not_found", "{answer}");
            continue;
        };
        assert_eq!(status, StatusCode::OK, "{order}: {answer}");
        assert_eq!(answer["bookingId"], *id, "{answer}");
        assert_eq!(answer["paymentStatus"], "paid", "{answer}");
        if answer["duplicate"] == false {
            assert!(
                applied.insert(order, answer).is_none(),
                "{order} applied twice"
            );
        }
    }
    assert_eq!(applied.len(), ids.len(), "each booking paid exactly once");

    let mut links_at_nine = Vec::new();
    for (order, id) in &ids {
        let shown = t.get_booking(id).await;
        let kinds = event_kinds(&t, id).await;
        assert_eq!(shown["payment_status"], "paid", "{shown}");
        assert_eq!(count(&kinds, "payment"), 1, "{order}: {kinds:?}");
        let answer = &applied[order.as_str()];
        assert_eq!(answer["meetingLink"], shown["meeting_link"], "{answer}");
        if shown["meeting_link"].is_null() {
            assert!(
                order.as_str() < "BURST-06",
                "{order} at an hour of its own waits"
            );
            assert_eq!(answer["requiresManualAssignment"], true, "{answer}");
            assert_eq!(count(&kinds, "pool_exhausted"), 1, "{order}: {kinds:?}");
            assert_eq!(count(&kinds, "assigned"), 0, "{order}: {kinds:?}");
        } else {
            assert_eq!(count(&kinds, "assigned"), 1, "{order}: {kinds:?}");
            if order.as_str() < "BURST-06" {
                links_at_nine.push(shown["meeting_link"].to_string());
            }
        }
    }
    links_at_nine.sort();
    links_at_nine.dedup();
    assert_eq!(
        links_at_nine.len(),
        3,
        "each link once at 09:00: {links_at_nine:?}"
    );
    assert_eq!(t.overlaps().await, 0);
}

async fn a_notification_failing_in_a_burst_fails_alone(b: Backend) {
    let Some(t) = TestApp::spawn(b).await else {
        return;
    };
    t.add_link(LINK).await;
    let ids = burst_bookings(&t, 10, 0).await;
    // The database refuses any change to one booking: a fault of that row
    // alone, which must cost the other notifications nothing.
    let raw = t.db.raw().await;
    let broken = "BURST-04";
    let trigger = match b {
        Backend::Sqlite => vec![format!(
            "CREATE TRIGGER burst_fault BEFORE UPDATE ON bookings WHEN OLD.order_id = '{broken}' \
             BEGIN SELECT RAISE(ABORT, 'burst fault'); END"
        )],
        Backend::Postgres => vec![
            "CREATE FUNCTION burst_fault() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'burst fault'; END $$"
                .to_owned(),
            format!(
                "CREATE TRIGGER burst_fault BEFORE UPDATE ON bookings FOR EACH ROW \
                 WHEN (OLD.order_id = '{broken}') EXECUTE FUNCTION burst_fault()"
            ),
        ],
    };
    for sql in &trigger {
        raw.execute(sql).await.unwrap();
    }

    let broken_events = event_kinds(&t, &ids[broken]).await;
    let bodies: Vec<(String, Vec<u8>)> = ids
        .keys()
        .map(|order| (order.clone(), settlement_of(order)))
        .collect();
    let answers = burst(&t, &bodies).await;
    for ((order, _), (status, answer)) in bodies.iter().zip(answers) {
        let shown = t.get_booking(&ids[order]).await;
        if order == broken {
            // A 5xx: Midtrans will send it again.
            assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{answer}");
            assert_eq!(shown["payment_status"], "pending", "{shown}");
            assert_eq!(shown["meeting_link"], Value::Null, "{shown}");
            assert_eq!(event_kinds(&t, &ids[order]).await, broken_events);
        } else {
            assert_eq!(status, StatusCode::OK, "{order}: {answer}");
            assert_eq!(answer["duplicate"], false, "{answer}");
            assert_eq!(shown["payment_status"], "paid", "{shown}");
            assert_eq!(shown["meeting_link"], LINK, "{shown}");
        }
    }

    // The fault repaired, Midtrans' next attempt applies.
    let repair = match b {
        Backend::Sqlite => "DROP TRIGGER burst_fault",
        Backend::Postgres => "DROP TRIGGER burst_fault ON bookings",
    };
    raw.execute(repair).await.unwrap();
    let (status, answer) = notify_at(&t, HOOK, settlement_of(broken)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["duplicate"], false, "{answer}");
    assert_eq!(answer["meetingLink"], LINK, "{answer}");
    assert_eq!(t.overlaps().await, 0);
    // What the failed group did before it rolled back counts for nothing.
    assert_eq!(t.metric("meetpool_assignments_total").await, 10);
    assert_eq!(t.metric("meetpool_notifications_applied_total").await, 10);
    assert_eq!(t.metric("meetpool_pool_exhausted_total").await, 0);
}

// ---------------------------------------------------------------- errors

async fn malformed_bodies_are_400_and_change_nothing(b: Backend) {
    let Some(shop) = Shop::open(b).await else {
        return;
    };
    let before = shop.snapshot().await;
    let mut unsigned = fixture_json("settlement-bank-transfer.json");
    unsigned.as_object_mut().unwrap().remove("signature_key");
    let mut numeric = fixture_json("settlement-bank-transfer.json");
    numeric["status_code"] = json!(200);
    let bodies: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"not json".to_vec(),
        b"[1, 2]".to_vec(),
        b"null".to_vec(),
        b"{\"order_id\": \"ORDER-1001\"".to_vec(),
        serde_json::to_vec(&unsigned).unwrap(),
        serde_json::to_vec(&numeric).unwrap(),
    ];
    for body in bodies {
        let shown = String::from_utf8_lossy(&body).into_owned();
        let (s, answer) = shop.notify(body).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{shown:?}: {answer}");
        assert_eq!(answer["success"], false, "{answer}");
        assert!(answer["error"]["code"].is_string(), "{answer}");
    }
    assert_eq!(
        shop.snapshot().await,
        before,
        "a malformed body changed something"
    );
}

async fn unknown_order_is_404(b: Backend) {
    let Some(shop) = Shop::open(b).await else {
        return;
    };
    let before = shop.snapshot().await;
    let mut stranger = fixture_json("settlement-bank-transfer.json");
    stranger["order_id"] = json!("ORDER-9999");
    let (s, answer) = shop.notify(signed(stranger)).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{answer}");
    assert_eq!(answer["success"], false);
    assert_eq!(answer["error"]["code"], "not_found", "{answer}");
    assert_eq!(shop.snapshot().await, before);
}

async fn without_a_server_key_the_webhook_is_503_not_configured(b: Backend) {
    let Some(shop) = Shop::open_with(b, |c| c.midtrans_server_key = None).await else {
        return;
    };
    let before = shop.snapshot().await;
    for body in [
        fixture("settlement-bank-transfer.json"),
        b"not json".to_vec(),
    ] {
        let (s, answer) = shop.notify(body).await;
        assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
        assert_eq!(answer["success"], false);
        assert_eq!(answer["error"]["code"], "not_configured", "{answer}");
    }
    assert_eq!(shop.snapshot().await, before);
}

// ---------------------------------------------------------------- arbitrary bodies

/// Random bytes, and random JSON objects with the notification's field
/// names (values random or taken from real orders and statuses), never get
/// a 5xx or a redirect and never change anything.
#[test]
fn arbitrary_bodies_never_fail_the_service_nor_change_anything() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    const FIELDS: [&str; 9] = [
        "order_id",
        "status_code",
        "gross_amount",
        "signature_key",
        "transaction_status",
        "transaction_id",
        "fraud_status",
        "payment_type",
        "transaction_time",
    ];
    let value = prop_oneof![
        ".{0,40}".prop_map(Value::String),
        prop::sample::select(vec![
            "ORDER-1001",
            "ORDER-1004",
            "200",
            "201",
            "150000.00",
            "settlement",
            "capture",
            "refund",
            "deny",
            "cancel",
            "accept",
            "challenge",
            "7f0c2a8e-1d43-4b8e-9a52-0c6b1f5e3a11",
        ])
        .prop_map(|s| json!(s)),
        "[0-9a-f]{128}".prop_map(Value::String),
        any::<i64>().prop_map(|n| json!(n)),
        Just(Value::Null),
    ];
    let object = prop::collection::btree_map(prop::sample::select(FIELDS.to_vec()), value, 0..10)
        .prop_map(|m| serde_json::to_vec(&m).unwrap());
    let bodies = prop_oneof![prop::collection::vec(any::<u8>(), 0..300), object];

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let shop = rt
        .block_on(Shop::open(Backend::Sqlite))
        .expect("SQLite is always there");
    let settled = rt.block_on(shop.deliver("settlement-bank-transfer.json"));
    assert_eq!(settled["paymentStatus"], "paid");
    let before = rt.block_on(shop.snapshot());

    let mut runner = TestRunner::new(Config {
        cases: 64,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&bodies, |body| {
        let validly_signed = Notification::parse(&body)
            .map(|n| n.signature_is_valid(MIDTRANS_KEY))
            .unwrap_or(false);
        let (s, answer) = rt.block_on(shop.notify(body.clone()));
        prop_assert!(
            !s.is_server_error(),
            "{s} {answer} for {:?}",
            String::from_utf8_lossy(&body)
        );
        if !validly_signed {
            prop_assert!(
                s.is_client_error(),
                "{s} {answer} for {:?}",
                String::from_utf8_lossy(&body)
            );
            let now = rt.block_on(shop.snapshot());
            prop_assert_eq!(
                &now,
                &before,
                "changed by {:?}",
                String::from_utf8_lossy(&body)
            );
        }
        Ok(())
    });
    drop(shop);
    if let Err(e) = result {
        panic!("{e}");
    }
}

// ---------------------------------------------------------------- GET status confirmation

/// What the fake Midtrans reports and what it was asked.
#[derive(Default)]
struct FakeMidtrans {
    /// order_id -> the transaction as GET status answers it.
    transactions: BTreeMap<String, Value>,
    /// (path, Authorization header) of each request.
    asked: Vec<(String, Option<String>)>,
}

type Fake = Arc<Mutex<FakeMidtrans>>;

async fn fake_midtrans() -> (Fake, String) {
    use axum::extract::{Path, State};
    use axum::http::HeaderMap;
    use axum::response::IntoResponse;

    async fn status(
        State(fake): State<Fake>,
        Path(order_id): Path<String>,
        headers: HeaderMap,
    ) -> axum::response::Response {
        let mut fake = fake.lock().unwrap();
        let auth = headers
            .get("authorization")
            .map(|v| v.to_str().unwrap().to_owned());
        fake.asked.push((format!("/v2/{order_id}/status"), auth));
        match fake.transactions.get(&order_id) {
            Some(t) => axum::Json(t.clone()).into_response(),
            None => (
                axum::http::StatusCode::NOT_FOUND,
                axum::Json(
                    json!({"status_code": "404", "status_message": "Transaction doesn't exist."}),
                ),
            )
                .into_response(),
        }
    }

    let fake = Fake::default();
    let router = axum::Router::new()
        .route("/v2/{order_id}/status", axum::routing::get(status))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (fake, base)
}

/// A transaction as Midtrans' GET status reports it.
fn reported(fixture_name: &str, changes: Value) -> Value {
    let mut t = fixture_json(fixture_name);
    t["status_message"] = json!("Success, transaction is found");
    for (k, v) in changes.as_object().unwrap() {
        t[k] = v.clone();
    }
    let sig = signature(
        t["order_id"].as_str().unwrap(),
        t["status_code"].as_str().unwrap(),
        t["gross_amount"].as_str().unwrap(),
        MIDTRANS_KEY,
    );
    t["signature_key"] = json!(sig);
    t
}

async fn status_mode_applies_what_midtrans_reports(b: Backend) {
    let (fake, api) = fake_midtrans().await;
    let Some(shop) = Shop::open_with(b, |c| {
        c.midtrans_verify = MidtransVerify::Status;
        c.midtrans_api_base = api.clone();
    })
    .await
    else {
        return;
    };

    // The body says settlement, Midtrans says still pending: pending.
    fake.lock().unwrap().transactions.insert(
        "ORDER-1001".into(),
        reported(
            "settlement-bank-transfer.json",
            json!({"transaction_status": "pending", "status_code": "201"}),
        ),
    );
    let answer = shop.deliver("settlement-bank-transfer.json").await;
    shop.assert_unpaid_without_a_link("ORDER-1001", "pending", &answer)
        .await;
    {
        let fake = fake.lock().unwrap();
        let (path, auth) = fake.asked.last().unwrap();
        assert_eq!(path, "/v2/ORDER-1001/status");
        // base64("SB-Mid-server-meetpool-fixtures:")
        assert_eq!(
            auth.as_deref(),
            Some("Basic U0ItTWlkLXNlcnZlci1tZWV0cG9vbC1maXh0dXJlczo=")
        );
    }

    // Midtrans' retry once the money has arrived: paid, with the link.
    fake.lock().unwrap().transactions.insert(
        "ORDER-1001".into(),
        reported("settlement-bank-transfer.json", json!({})),
    );
    let answer = shop.deliver("settlement-bank-transfer.json").await;
    shop.assert_paid_with_the_link("ORDER-1001", &answer).await;

    // The body says pending, Midtrans says settled: paid.
    fake.lock().unwrap().transactions.insert(
        "ORDER-1004".into(),
        reported(
            "pending-echannel.json",
            json!({"transaction_status": "settlement", "status_code": "200"}),
        ),
    );
    let answer = shop.deliver("pending-echannel.json").await;
    shop.assert_paid_with_the_link("ORDER-1004", &answer).await;

    // A forged body is refused before Midtrans is even asked.
    let asked = fake.lock().unwrap().asked.len();
    let (s, forged) = shop
        .notify(tampered(
            "capture-challenge-card.json",
            json!({"gross_amount": "1.00"}),
        ))
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{forged}");
    assert_eq!(fake.lock().unwrap().asked.len(), asked);

    // Midtrans does not know the transaction (yet): not applied, retried.
    let before = shop.snapshot().await;
    let (s, unknown) = shop.notify(fixture("capture-challenge-card.json")).await;
    assert!(s.is_server_error(), "{s} {unknown}");
    assert_eq!(unknown["success"], false);
    assert_eq!(shop.snapshot().await, before);
}

// ---------------------------------------------------------------- the database goes away

/// A TCP proxy between the service and PostgreSQL that the test can cut:
/// while cut, every connection through it is dropped, as by a network
/// failure or a database restart.
struct Proxy {
    addr: SocketAddr,
    up: tokio::sync::watch::Sender<bool>,
}

impl Proxy {
    async fn start(upstream: String) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (up, _) = tokio::sync::watch::channel(true);
        let watch = up.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let mut down = watch.subscribe();
                if !*down.borrow() {
                    drop(client);
                    continue;
                }
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = down.wait_for(|up| !*up) => {}
                    }
                });
            }
        });
        Self { addr, up }
    }

    fn cut(&self) {
        self.up.send_replace(false);
    }

    fn heal(&self) {
        self.up.send_replace(true);
    }
}

/// `host:port` of a `postgres://` URL, and the URL going through `via`.
fn through(url: &str, via: SocketAddr) -> (String, String) {
    let rest = url.split_once("://").unwrap().1;
    let start = url.len() - rest.len() + rest.find('@').map_or(0, |i| i + 1);
    let end = start + url[start..].find(['/', '?']).unwrap_or(url.len() - start);
    let authority = &url[start..end];
    let upstream = if authority.contains(':') {
        authority.to_owned()
    } else {
        format!("{authority}:5432")
    };
    let proxied = format!("{}{via}{}", &url[..start], &url[end..]);
    (upstream, proxied)
}

async fn database_unreachable_is_503_and_the_retry_applies(b: Backend) {
    let Some(db) = TestDb::create(b).await else {
        return;
    };
    let options = ConnectOptions::default();
    let (shop, proxy, sqlite_pool) = match b {
        Backend::Sqlite => {
            let store = meetpool_store::sqlite::SqliteStore::connect(&db.url, &options)
                .await
                .unwrap();
            let pool = store.pool().clone();
            let t = TestApp::spawn_on_store(db, Box::new(store), |_| {}).await;
            (Shop::stock(t).await, None, Some(pool))
        }
        Backend::Postgres => {
            let (upstream, _) = through(&db.url, "127.0.0.1:1".parse().unwrap());
            let proxy = Proxy::start(upstream).await;
            let (_, url) = through(&db.url, proxy.addr);
            let store = meetpool_store::connect(&url, &options).await.unwrap();
            let t = TestApp::spawn_on_store(db, store, |_| {}).await;
            (Shop::stock(t).await, Some(proxy), None)
        }
    };

    // The database goes away under the running service.
    if let Some(proxy) = &proxy {
        proxy.cut();
    }
    if let Some(pool) = &sqlite_pool {
        pool.close().await;
    }
    for _ in 0..2 {
        let (s, answer) = shop.notify(fixture("settlement-bank-transfer.json")).await;
        assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
        assert_eq!(answer["success"], false);
        assert_eq!(answer["error"]["code"], "database_unavailable", "{answer}");
    }

    // Back (the network heals, or the service restarts on its file):
    // Midtrans' retry is applied as if it were the first delivery.
    let t = match &proxy {
        Some(proxy) => {
            proxy.heal();
            None
        }
        None => Some(shop.t.replica().await),
    };
    let t = t.as_ref().unwrap_or(&shop.t);
    let (s, answer) = notify_at(t, HOOK, fixture("settlement-bank-transfer.json")).await;
    assert_eq!(s, StatusCode::OK, "{answer}");
    assert_eq!(answer["duplicate"], false, "{answer}");
    assert_eq!(answer["paymentStatus"], "paid");
    assert_eq!(answer["meetingLink"], LINK);
    let kinds = event_kinds(t, shop.id("ORDER-1001")).await;
    assert_eq!(count(&kinds, "payment"), 1, "{kinds:?}");
    assert_eq!(count(&kinds, "assigned"), 1, "{kinds:?}");
}
