//! Reconciliation: a payment whose notification never arrived is found by
//! asking Midtrans' GET status API (a local server answering as Midtrans
//! documents it) on the `MEETPOOL_MIDTRANS_RECONCILE` schedule, and applied
//! as its notification would have been; an order Midtrans does not know
//! yet (404) stays pending and is asked about again; a payment that ended,
//! or a session that started, is asked about no more.
use std::time::Duration;

use meetpool_conformance::{in_status, reported, settled, Backend, Gateway, TestApp};

use super::shop::{fixture, fixture_json, Shop, LINK};
use meetpool_conformance::eventually;

on_both!(
    a_paid_booking_whose_notification_was_lost_gets_paid_and_its_link,
    expired_and_denied_payments_are_applied_and_asked_about_no_more,
    a_session_that_has_started_is_no_longer_asked_about,
);
on_postgres!(two_replicas_never_ask_about_one_booking_at_once);

/// A shop whose service reconciles every `wait` against `gateway`.
async fn shop_reconciling(b: Backend, gateway: &Gateway, wait: &str) -> Shop {
    let base = gateway.base.clone();
    let schedule = meetpool_app::parse_reconcile_schedule(wait).unwrap();
    Shop::open_with(b, move |c| {
        c.midtrans_api_base = base;
        c.midtrans_reconcile = schedule;
    })
    .await
}

async fn a_paid_booking_whose_notification_was_lost_gets_paid_and_its_link(b: Backend) {
    let gateway = Gateway::start().await;
    // The customer paid ORDER-1001 at Midtrans; the notification was lost.
    gateway.holds(reported(fixture_json("settlement-bank-transfer.json")));
    let shop = shop_reconciling(b, &gateway, "1s").await;

    eventually(
        "the lost payment is applied",
        Duration::from_secs(10),
        || async { shop.booking("ORDER-1001").await.payment_status == "paid" },
    )
    .await;
    let paid = shop.booking("ORDER-1001").await;
    assert_eq!(
        (paid.meeting_link.as_deref(), paid.status.as_str()),
        (Some(LINK), "confirmed")
    );
    // Asked with the server key, as Midtrans' status API wants.
    let q = gateway.questions();
    let asked = q.iter().find(|q| q.order_id == "ORDER-1001").unwrap();
    // base64("SB-Mid-server-meetpool-fixtures:")
    assert_eq!(
        asked.authorization.as_deref(),
        Some("Basic U0ItTWlkLXNlcnZlci1tZWV0cG9vbC1maXh0dXJlczo=")
    );
    // The audit trail says where the payment came from.
    let events = shop.t.events(shop.id("ORDER-1001")).await;
    let payment = events.iter().find(|e| e.kind == "payment").unwrap();
    assert_eq!(payment.detail["source"], "reconciliation", "{payment:?}");
    assert_eq!(payment.detail["transaction_status"], "settlement");
    assert!(
        shop.t
            .metric("meetpool_reconcile_checks_total{outcome=\"applied\"}")
            .await
            >= 1
    );

    // The orders Midtrans knows nothing of (no payment method chosen yet)
    // stay pending and are asked about again.
    eventually(
        "an unknown order is asked about again",
        Duration::from_secs(10),
        || async { gateway.asked_about("ORDER-1004") >= 2 },
    )
    .await;
    let waiting = shop.booking("ORDER-1004").await;
    assert_eq!(
        (waiting.payment_status.as_str(), waiting.meeting_link),
        ("pending", None)
    );
    assert!(!shop.events("ORDER-1004").await.contains(&"payment".into()));
    assert!(
        shop.t
            .metric("meetpool_reconcile_checks_total{outcome=\"not_found\"}")
            .await
            >= 2
    );

    // The paid booking is asked about no more; the notification, when it
    // finally comes, is a duplicate and changes nothing.
    let asked = gateway.asked_about("ORDER-1001");
    eventually(
        "later checks of the others",
        Duration::from_secs(10),
        || async { gateway.asked_about("ORDER-1004") >= 4 },
    )
    .await;
    assert_eq!(gateway.asked_about("ORDER-1001"), asked);
    let before = shop.events("ORDER-1001").await;
    let late = shop.notify(fixture("settlement-bank-transfer.json")).await;
    let late = late.settled();
    assert!(late.duplicate, "{late:?}");
    assert_eq!(shop.events("ORDER-1001").await, before);
    assert_eq!(shop.t.overlaps().await, 0);
}

async fn expired_and_denied_payments_are_applied_and_asked_about_no_more(b: Backend) {
    let gateway = Gateway::start().await;
    gateway.holds(in_status("ORDER-1005", "150000.00", "expire"));
    gateway.holds(in_status("ORDER-1006", "250000.00", "deny"));
    gateway.holds(in_status("ORDER-1007", "150000.00", "pending"));
    // A settlement that does not pay the price is refused as its
    // notification would be.
    gateway.holds(settled("ORDER-1009", "1.00"));
    let shop = shop_reconciling(b, &gateway, "1s").await;

    eventually(
        "the expiry and the denial are applied",
        Duration::from_secs(10),
        || async {
            shop.booking("ORDER-1005").await.payment_status == "expired"
                && shop.booking("ORDER-1006").await.payment_status == "failed"
        },
    )
    .await;
    eventually(
        "the amount mismatch is recorded",
        Duration::from_secs(10),
        || async {
            shop.events("ORDER-1009")
                .await
                .contains(&"amount_mismatch".into())
        },
    )
    .await;
    let (expired, denied) = (
        gateway.asked_about("ORDER-1005"),
        gateway.asked_about("ORDER-1006"),
    );
    let pending = gateway.asked_about("ORDER-1007");
    eventually(
        "two more checks of a pending payment",
        Duration::from_secs(10),
        || async { gateway.asked_about("ORDER-1007") >= pending + 2 },
    )
    .await;
    assert_eq!(gateway.asked_about("ORDER-1005"), expired);
    assert_eq!(gateway.asked_about("ORDER-1006"), denied);
    for order in ["ORDER-1005", "ORDER-1006", "ORDER-1009"] {
        assert_eq!(shop.booking(order).await.meeting_link, None, "{order}");
    }
    let still = shop.booking("ORDER-1007").await;
    assert_eq!(still.payment_status, "pending");
    let unpaid = shop.booking("ORDER-1009").await;
    assert_eq!(unpaid.payment_status, "pending");
    let trail = shop.t.events(shop.id("ORDER-1006")).await;
    let deny = trail.iter().find(|e| e.kind == "payment").unwrap();
    assert_eq!(deny.detail["source"], "reconciliation");
}

async fn a_session_that_has_started_is_no_longer_asked_about(b: Backend) {
    let gateway = Gateway::start().await;
    let shop = shop_reconciling(b, &gateway, "1s").await;
    // A booking whose session began ten minutes ago, never paid here.
    let started = jiff::Timestamp::now()
        .checked_sub(jiff::SignedDuration::from_mins(10))
        .unwrap()
        .to_zoned(jiff::tz::TimeZone::UTC);
    // Booked ahead, then moved by an operator to when it began (an unpaid
    // booking cannot be made in the past).
    let tomorrow = started.date().tomorrow().unwrap().to_string();
    let begun = shop
        .t
        .create_booking_priced(
            "ORDER-STARTED",
            &shop.st,
            &tomorrow,
            &started.time().strftime("%H:%M").to_string(),
            "pending",
            150_000,
        )
        .await;
    let (status, moved) = shop
        .t
        .patch(
            &format!("/api/bookings/{}", begun.id),
            serde_json::json!({ "booking_date": started.date().to_string(), "allow_past": true }),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::OK, "{moved}");
    gateway.holds(settled("ORDER-STARTED", "150000.00"));
    eventually(
        "the coming sessions are asked about twice",
        Duration::from_secs(10),
        || async { gateway.asked_about("ORDER-1002") >= 2 },
    )
    .await;
    assert_eq!(gateway.asked_about("ORDER-STARTED"), 0);
    assert_eq!(shop.t.booking(&begun.id).await.payment_status, "pending");
}

async fn two_replicas_never_ask_about_one_booking_at_once(b: Backend) {
    let gateway = Gateway::start().await;
    gateway.answer_after(Duration::from_millis(50));
    let schedule = meetpool_app::parse_reconcile_schedule("1s").unwrap();
    let base = gateway.base.clone();
    let a = TestApp::start_with(b, |c| {
        c.midtrans_api_base = base;
        c.midtrans_reconcile = schedule;
    })
    .await;
    let replica = a.replica().await;
    let st = a.create_session_type(60).await;
    for i in 0..24 {
        a.create_booking_with_order(
            &format!("ORDER-R{i}"),
            &st,
            "2027-12-03",
            &format!("{:02}:00", i),
            "pending",
        )
        .await;
    }
    eventually(
        "every booking is asked about three times",
        Duration::from_secs(10),
        || async { (0..24).all(|i| gateway.asked_about(&format!("ORDER-R{i}")) >= 3) },
    )
    .await;
    // Each booking's questions are a schedule's wait apart: never two at
    // once from the two replicas.
    let questions = gateway.questions();
    for i in 0..24 {
        let order = format!("ORDER-R{i}");
        let times: Vec<_> = questions
            .iter()
            .filter(|q| q.order_id == order)
            .map(|q| q.at)
            .collect();
        for pair in times.windows(2) {
            assert!(
                pair[1].duration_since(pair[0]) >= Duration::from_millis(900),
                "{order} asked twice within {:?}",
                pair[1].duration_since(pair[0])
            );
        }
    }
    // A few questions at a time, per replica.
    assert!(gateway.most_at_once() <= 8, "{}", gateway.most_at_once());
    let checks = a
        .metric("meetpool_reconcile_checks_total{outcome=\"not_found\"}")
        .await
        + replica
            .metric("meetpool_reconcile_checks_total{outcome=\"not_found\"}")
            .await;
    // (Each is counted once recorded, just after its answer.)
    assert!(checks >= 48, "{checks}");
}
