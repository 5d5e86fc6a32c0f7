//! A receiver that fails, redirects, hangs or is down: the event is tried
//! again, a few at a time, and a failed one holds back its booking's later
//! events.
use std::cell::Cell;
use std::time::Duration;

use meetpool_conformance::{eventually, Answer, Backend, Delivery, Receiver, TestApp};
use serde_json::json;

use super::{deliveries, kinds, start, wait_for_status, DAY, ROOM_A, ROOM_B};

on_both!(
    a_receiver_that_fails_the_first_attempts_gets_the_event_again,
    a_redirect_is_a_failed_attempt_and_is_not_followed,
    a_burst_of_events_is_sent_a_few_at_a_time,
    a_failed_event_holds_back_the_later_events_of_its_booking,
    a_receiver_down_for_a_while_gets_everything_once_it_is_back,
    a_receiver_that_hangs_is_given_up_on_and_tried_again,
);

async fn a_receiver_that_fails_the_first_attempts_gets_the_event_again(backend: Backend) {
    let receiver = Receiver::start().await;
    receiver.script([Answer::Status(500), Answer::Status(503)]);
    let t = start(backend, &receiver).await;
    t.add_link(ROOM_A).await;
    let st = t.create_session_type(60).await;
    t.create_booking(&st, DAY, "10:00", "paid").await;

    let got = receiver.wait_for_accepted(1).await;
    let attempts = receiver.attempts();
    assert_eq!(attempts.len(), 3, "{attempts:#?}");
    assert!(attempts.iter().all(|a| a.id == got[0].id && a.verified));
    assert_eq!(
        attempts[0].body, attempts[2].body,
        "the same message each time"
    );
    let log = wait_for_status(&t, "delivered", 1).await;
    assert_eq!(log[0]["attempts"], json!(3));
    let metrics = t.metrics().await;
    assert!(
        metrics.contains("meetpool_event_deliveries_total{outcome=\"retried\"} 2"),
        "{metrics}"
    );
}

async fn a_redirect_is_a_failed_attempt_and_is_not_followed(backend: Backend) {
    let receiver = Receiver::start().await;
    receiver.script([Answer::Moved]);
    // Long enough to read the failed attempt before the retry.
    let t = TestApp::start_with_events(backend, &receiver, |e| {
        e.retry = vec![Duration::from_secs(2)];
    })
    .await;
    t.add_link(ROOM_A).await;
    let st = t.create_session_type(60).await;
    t.create_booking(&st, DAY, "10:00", "paid").await;

    let seen = Cell::new(None);
    eventually("a failed attempt", Duration::from_secs(30), || async {
        let pending = deliveries(&t, "status=pending").await;
        let failed = pending.into_iter().find(|e| e["last_error"].is_string());
        let found = failed.is_some();
        seen.set(failed);
        found
    })
    .await;
    let failed = seen.take().unwrap();
    let error = failed["last_error"].as_str().unwrap();
    assert!(
        error.contains("301") && error.contains("/moved") && error.contains("not followed"),
        "{error}"
    );
    assert_eq!(failed["attempts"], json!(1));
    assert_eq!(receiver.moved_visits(), 0, "the redirect was not followed");

    let got = receiver.wait_for_accepted(1).await;
    let attempts = receiver.attempts();
    assert_eq!(attempts.len(), 2, "{attempts:#?}");
    assert!(attempts.iter().all(|a| a.id == got[0].id && a.verified));
    let log = wait_for_status(&t, "delivered", 1).await;
    assert_eq!(log[0]["attempts"], json!(2));
    assert_eq!(receiver.moved_visits(), 0);
}

async fn a_burst_of_events_is_sent_a_few_at_a_time(backend: Backend) {
    let receiver = Receiver::start().await;
    // An endpoint that takes a while: attempts made together overlap.
    receiver.answer_after(Duration::from_millis(100));
    let t = TestApp::start_with_events(backend, &receiver, |e| e.concurrency = 2).await;
    let st = t.create_session_type(60).await;
    let mut bookings = Vec::new();
    for i in 0..8 {
        t.add_link(&format!("https://meet.google.com/brs-{i:04}-abc"))
            .await;
        bookings.push(t.create_booking(&st, DAY, "10:00", "pending").await.id);
    }
    // Eight payments at once: sixteen events, two per booking.
    let paid =
        futures_util::future::join_all(bookings.iter().map(|id| t.set_payment_status(id, "paid")))
            .await;
    assert!(paid.iter().all(Result::is_ok), "{paid:?}");

    let got = receiver.wait_for_accepted(16).await;
    let most = receiver.most_in_flight();
    assert_eq!(most, 2, "at most two attempts at once, and the two used");
    let ids: std::collections::HashSet<_> = got.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids.len(), 16, "each event once");
    for id in &bookings {
        let of: Vec<_> = got
            .iter()
            .filter(|d| d.booking_id() == Some(id))
            .map(Delivery::kind)
            .collect();
        assert_eq!(of, ["booking.payment_changed", "booking.link_assigned"]);
    }
}

async fn a_failed_event_holds_back_the_later_events_of_its_booking(backend: Backend) {
    let receiver = Receiver::start().await;
    receiver.script([Answer::Status(500)]);
    let t = start(backend, &receiver).await;
    t.add_link(ROOM_A).await;
    let st = t.create_session_type(60).await;
    let booking = t.create_booking(&st, DAY, "10:00", "pending").await;
    // One change, two events: the payment, then the link it brought.
    let paid = t.set_payment_status(&booking.id, "paid").await.unwrap();
    assert!(paid.meeting_link_id.is_some());

    let got = receiver.wait_for_accepted(2).await;
    assert_eq!(
        kinds(&got),
        ["booking.payment_changed", "booking.link_assigned"]
    );
    // The link's event waited for the payment's retry, unattempted.
    assert_eq!(
        kinds(&receiver.attempts()),
        [
            "booking.payment_changed",
            "booking.payment_changed",
            "booking.link_assigned"
        ]
    );
    let log = wait_for_status(&t, "delivered", 2).await;
    assert_eq!(log[0]["type"], json!("booking.link_assigned"));
    assert_eq!(log[0]["attempts"], json!(1), "{log:#?}");
    assert_eq!(log[1]["type"], json!("booking.payment_changed"));
    assert_eq!(log[1]["attempts"], json!(2), "{log:#?}");
}

async fn a_receiver_down_for_a_while_gets_everything_once_it_is_back(backend: Backend) {
    let mut receiver = Receiver::start().await;
    receiver.down();
    let t = TestApp::start_with_events(backend, &receiver, |e| {
        e.retry = vec![Duration::from_millis(100); 50];
    })
    .await;
    t.add_link(ROOM_A).await;
    t.add_link(ROOM_B).await;
    let st = t.create_session_type(60).await;
    let first = t.create_booking(&st, DAY, "10:00", "pending").await;
    let second = t.create_booking(&st, DAY, "10:00", "paid").await;
    t.set_payment_status(&first.id, "paid").await.unwrap();

    // Tried, refused, waiting for the next attempt: visible as such.
    eventually(
        "three pending events, one tried and refused",
        Duration::from_secs(30),
        || async {
            let pending = deliveries(&t, "status=pending").await;
            pending.len() == 3 && pending.iter().any(|e| e["last_error"].is_string())
        },
    )
    .await;
    assert!(receiver.attempts().is_empty());

    receiver.up().await;
    let got = receiver.wait_for_accepted(3).await;
    let of = |id: &str| -> Vec<&str> {
        got.iter()
            .filter(|d| d.booking_id() == Some(id))
            .map(Delivery::kind)
            .collect()
    };
    assert_eq!(
        of(&first.id),
        ["booking.payment_changed", "booking.link_assigned"]
    );
    assert_eq!(of(&second.id), ["booking.link_assigned"]);
    wait_for_status(&t, "delivered", 3).await;
}

async fn a_receiver_that_hangs_is_given_up_on_and_tried_again(backend: Backend) {
    let receiver = Receiver::start().await;
    receiver.script([Answer::Hang]);
    let t = TestApp::start_with_events(backend, &receiver, |e| {
        e.timeout = Duration::from_millis(300);
    })
    .await;
    t.add_link(ROOM_A).await;
    let st = t.create_session_type(60).await;
    t.create_booking(&st, DAY, "10:00", "paid").await;

    let got = receiver.wait_for_accepted(1).await;
    let attempts = receiver.attempts();
    assert_eq!(attempts.len(), 2, "{attempts:#?}");
    assert_eq!(attempts[0].id, got[0].id);
    let log = wait_for_status(&t, "delivered", 1).await;
    assert_eq!(log[0]["attempts"], json!(2));
}
