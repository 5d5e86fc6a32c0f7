//! Outbound events: a platform's endpoint hears of every change to a
//! booking's link, time and payment, signed so that it can trust them, in
//! order per booking, whatever happens to the endpoint or to the service.
use std::cell::Cell;
use std::collections::HashMap;
use std::time::Duration;

use meetpool_conformance::{
    eventually, Answer, Backend, Booking, Delivery, Receiver, SessionType, TestApp,
};
use meetpool_domain::BookingId;
use meetpool_store::{BookingChange, LinkChange};
use reqwest::StatusCode;
use serde_json::{json, Value};

on_both!(
    a_paid_booking_tells_the_platform_its_link_signed,
    every_change_of_a_booking_arrives_once_and_in_order,
    a_rolled_back_change_leaves_no_event_and_a_committed_one_has_its_event,
    a_receiver_that_fails_the_first_attempts_gets_the_event_again,
    a_redirect_is_a_failed_attempt_and_is_not_followed,
    a_burst_of_events_is_sent_a_few_at_a_time,
    a_failed_event_holds_back_the_later_events_of_its_booking,
    a_receiver_down_for_a_while_gets_everything_once_it_is_back,
    a_receiver_that_hangs_is_given_up_on_and_tried_again,
    an_event_that_failed_for_good_stays_visible_and_can_be_retried,
    events_committed_before_a_restart_are_delivered_after_it,
    two_replicas_deliver_every_event_once,
    without_an_events_url_no_event_is_written,
    a_day_whose_peak_reaches_the_pool_raises_pool_low_once,
    events_stay_on_for_every_replica_until_turned_off,
    delivered_events_past_their_keeping_are_deleted_and_the_rest_stay,
);

const DAY: &str = "2031-06-03";
const ROOM_A: &str = "https://meet.google.com/aaa-aaaa-aaa";
const ROOM_B: &str = "https://meet.google.com/bbb-bbbb-bbb";

async fn start(backend: Backend, receiver: &Receiver) -> TestApp {
    TestApp::start_with_events(backend, receiver, |_| {}).await
}

/// The deliveries as `GET /api/events/deliveries?{query}` lists them.
async fn deliveries(t: &TestApp, query: &str) -> Vec<Value> {
    let (s, list) = t.get(&format!("/api/events/deliveries?{query}")).await;
    assert_eq!(s, StatusCode::OK, "{list}");
    list.as_array().unwrap().clone()
}

/// Waits (30 s at most) until the log shows `n` events with `status`.
async fn wait_for_status(t: &TestApp, status: &str, n: usize) -> Vec<Value> {
    let seen = Cell::new(Vec::new());
    eventually(
        &format!("{n} {status} events"),
        Duration::from_secs(30),
        || async {
            let list = deliveries(t, &format!("status={status}")).await;
            let enough = list.len() >= n;
            seen.set(list);
            enough
        },
    )
    .await;
    seen.take()
}

fn kinds(ds: &[Delivery]) -> Vec<&str> {
    ds.iter().map(Delivery::kind).collect()
}

async fn a_paid_booking_tells_the_platform_its_link_signed(backend: Backend) {
    let receiver = Receiver::start().await;
    let t = start(backend, &receiver).await;
    let link = t.add_link(ROOM_A).await;
    let st = t.create_session_type(60).await;
    let booking = t.create_booking(&st, DAY, "10:00", "pending").await;
    let paid = t.set_payment_status(&booking.id, "paid").await.unwrap();

    let got = receiver.wait_for_accepted(2).await;
    assert_eq!(
        kinds(&got),
        ["booking.payment_changed", "booking.link_assigned"]
    );
    for d in &got {
        assert!(d.verified, "the signature checks out: {d:?}");
        assert!(d.signature.starts_with("v1,"), "{d:?}");
        assert!(d.id.starts_with("evt_"), "{d:?}");
        assert!(
            d.id.rsplit('_').next().unwrap().parse::<u64>().is_ok(),
            "{d:?}"
        );
    }
    let assigned = &got[1].body;
    assert!(
        assigned["timestamp"].as_str().unwrap().ends_with('Z'),
        "{assigned}"
    );
    let data = &assigned["data"];
    assert_eq!(data["booking"]["id"], json!(booking.id));
    assert_eq!(data["booking"]["order_id"], json!(booking.order_id));
    assert_eq!(data["booking"]["payment_status"], json!("paid"));
    assert_eq!(data["booking"]["meeting_link_id"], json!(link.id));
    assert_eq!(data["booking"]["meeting_link"], json!(ROOM_A));
    assert_eq!(data["booking"]["booking_date"], json!(DAY));
    assert_eq!(data["booking"]["booking_time"], json!("10:00"));
    assert_eq!(data["booking"]["starts_at"], json!(paid.starts_at));
    assert_eq!(data["booking"]["ends_at"], json!(paid.ends_at));
    assert_eq!(data["join_url"], json!(paid.join_url));
    assert_eq!(
        data["calendar_url"],
        json!(format!("{}.ics", paid.join_url))
    );
    assert_eq!(data["previous_link"], Value::Null);
    assert!(data["booking"].get("join_token").is_none(), "{data}");
    assert_eq!(
        got[0].body["data"]["previous_payment_status"],
        json!("pending")
    );
    // Both events show the booking as the change left it: paid, with its
    // link.
    assert_eq!(got[0].body["data"]["booking"], data["booking"]);

    // The calendar URL (under MEETPOOL_PUBLIC_URL) serves the session's
    // calendar file.
    let path = data["calendar_url"].as_str().unwrap();
    let path = &path[path.find("/j/").unwrap()..];
    let ics = reqwest::get(t.url(path)).await.unwrap();
    assert_eq!(ics.status(), StatusCode::OK);
    assert!(ics.text().await.unwrap().contains("BEGIN:VCALENDAR"));

    // The log lists both as delivered, under the ids the receiver saw.
    let log = wait_for_status(&t, "delivered", 2).await;
    let mut ids: Vec<&str> = log.iter().map(|e| e["id"].as_str().unwrap()).collect();
    ids.reverse();
    assert_eq!(ids, got.iter().map(|d| d.id.as_str()).collect::<Vec<_>>());
    assert_eq!(log[0]["attempts"], json!(1));
    assert_eq!(log[0]["booking_id"], json!(booking.id));
    assert!(deliveries(&t, "status=pending").await.is_empty());

    let metrics = t.metrics().await;
    assert!(
        metrics.contains("meetpool_event_deliveries_total{outcome=\"delivered\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("meetpool_events_backlog{status=\"pending\"} 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("meetpool_event_delivery_lag_seconds_count 2"),
        "{metrics}"
    );
}

async fn every_change_of_a_booking_arrives_once_and_in_order(backend: Backend) {
    let receiver = Receiver::start().await;
    let t = start(backend, &receiver).await;
    let a = t.add_link(ROOM_A).await;
    let b = t.add_link(ROOM_B).await;
    let st = t.create_session_type(60).await;
    let booking = t.create_booking(&st, DAY, "10:00", "paid").await;
    assert_eq!(booking.meeting_link_id.as_deref(), Some(a.id.as_str()));
    // Another booking holds the first link at 15:00: moving there changes
    // the link.
    let other = t.create_booking(&st, DAY, "15:00", "paid").await;
    assert_eq!(other.meeting_link_id.as_deref(), Some(a.id.as_str()));
    t.update_booking(&booking.id, json!({"booking_time": "15:00"}))
        .await
        .unwrap();
    t.release_link(&booking.id).await.unwrap();
    t.assign_link(&booking.id, &b.id).await.unwrap();
    t.set_payment_status(&booking.id, "refunded").await.unwrap();
    // The refund gave the second link back: a third booking at 15:00 takes
    // it, and a fourth finds none.
    let third = t.create_booking(&st, DAY, "15:00", "paid").await;
    let crowded = t.create_booking(&st, DAY, "15:00", "paid").await;
    assert_eq!(crowded.meeting_link_id, None);

    let got = receiver.wait_for_accepted(10).await;
    let of = |id: &str| -> Vec<Delivery> {
        got.iter()
            .filter(|d| d.booking_id() == Some(id))
            .cloned()
            .collect()
    };
    let mine = of(&booking.id);
    assert_eq!(
        kinds(&mine),
        [
            "booking.link_assigned",
            "booking.rescheduled",
            "booking.link_changed",
            "booking.link_released",
            "booking.link_assigned",
            "booking.payment_changed",
            "booking.link_released",
        ]
    );
    let rescheduled = &mine[1].body["data"];
    assert_eq!(rescheduled["previous"]["booking_time"], json!("10:00"));
    assert_eq!(rescheduled["booking"]["booking_time"], json!("15:00"));
    let changed = &mine[2].body["data"];
    assert_eq!(changed["previous_link"]["id"], json!(a.id));
    assert_eq!(changed["booking"]["meeting_link_id"], json!(b.id));
    assert_eq!(mine[3].body["data"]["previous_link"]["id"], json!(b.id));
    assert_eq!(
        mine[3].body["data"]["booking"]["meeting_link_id"],
        Value::Null
    );
    assert_eq!(
        mine[5].body["data"]["booking"]["payment_status"],
        json!("refunded")
    );
    assert_eq!(kinds(&of(&other.id)), ["booking.link_assigned"]);
    assert_eq!(kinds(&of(&third.id)), ["booking.link_assigned"]);
    let exhausted = of(&crowded.id);
    assert_eq!(kinds(&exhausted), ["pool.exhausted"]);
    assert_eq!(exhausted[0].body["data"]["enabled_links"], json!(2));

    // Each event once.
    let all = receiver.attempts();
    let mut seen = HashMap::new();
    for d in &all {
        *seen.entry(d.id.clone()).or_insert(0) += 1;
    }
    assert!(seen.values().all(|n| *n == 1), "{all:#?}");
    assert_eq!(all.len(), 10);
}

async fn a_rolled_back_change_leaves_no_event_and_a_committed_one_has_its_event(backend: Backend) {
    let receiver = Receiver::start().await;
    let t = start(backend, &receiver).await;
    let link = t.add_link(ROOM_A).await;
    let st = t.create_session_type(60).await;
    let booking = t.create_booking(&st, DAY, "10:00", "pending").await;
    let id: BookingId = booking.id.parse().unwrap();
    let change = BookingChange {
        link: LinkChange::Set(link.id.parse().unwrap()),
        ..BookingChange::default()
    };

    let mut tx = t.app.store().begin().await.unwrap();
    tx.lock_booking(id).await.unwrap();
    tx.write(id, &change).await.unwrap();
    drop(tx);
    assert!(deliveries(&t, "").await.is_empty(), "rolled back: no event");

    let mut tx = t.app.store().begin().await.unwrap();
    tx.lock_booking(id).await.unwrap();
    tx.write(id, &change).await.unwrap();
    tx.commit().await.unwrap();
    let got = receiver.wait_for_accepted(1).await;
    assert_eq!(kinds(&got), ["booking.link_assigned"]);
    assert_eq!(deliveries(&t, "").await.len(), 1);
}

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

async fn an_event_that_failed_for_good_stays_visible_and_can_be_retried(backend: Backend) {
    let receiver = Receiver::start().await;
    receiver.script([Answer::Status(500); 4]);
    let t = start(backend, &receiver).await;
    t.add_link(ROOM_A).await;
    let st = t.create_session_type(60).await;
    let booking = t.create_booking(&st, DAY, "10:00", "paid").await;

    // The first attempt and the three retries of the schedule.
    let failed = wait_for_status(&t, "failed", 1).await;
    assert_eq!(receiver.attempts().len(), 4);
    assert_eq!(failed[0]["attempts"], json!(4));
    assert_eq!(failed[0]["next_attempt_at"], Value::Null);
    assert_eq!(failed[0]["booking_id"], json!(booking.id));
    assert!(
        failed[0]["last_error"].as_str().unwrap().contains("500"),
        "{failed:?}"
    );
    // A failed event no longer holds back its booking's later ones.
    t.set_payment_status(&booking.id, "refunded").await.unwrap();
    let later = receiver.wait_for_accepted(2).await;
    assert_eq!(
        kinds(&later),
        ["booking.payment_changed", "booking.link_released"]
    );
    let metrics = t.metrics().await;
    assert!(
        metrics.contains("meetpool_events_backlog{status=\"failed\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("meetpool_event_deliveries_total{outcome=\"failed\"} 1"),
        "{metrics}"
    );

    let id = failed[0]["id"].as_str().unwrap();
    let (s, retried) = t
        .post(&format!("/api/events/deliveries/{id}/retry"), json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{retried}");
    assert_eq!(
        (retried["status"].as_str(), retried["attempts"].as_u64()),
        (Some("pending"), Some(0))
    );
    let got = receiver.wait_for_accepted(3).await;
    assert_eq!(got[2].id, id);
    assert_eq!(got[2].kind(), "booking.link_assigned");
    wait_for_status(&t, "delivered", 3).await;
    assert!(deliveries(&t, "status=failed").await.is_empty());

    // What cannot be retried, and what is not a status.
    let (s, e) = t
        .post(&format!("/api/events/deliveries/{id}/retry"), json!({}))
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("already_delivered"))
    );
    for unknown in ["evt_nothing", "evt_0000000000_1", "evt_x_99999"] {
        let (s, _) = t
            .post(
                &format!("/api/events/deliveries/{unknown}/retry"),
                json!({}),
            )
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{unknown}");
    }
    let (s, e) = t.get("/api/events/deliveries?status=lost").await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_status"))
    );
    let (s, _) = t
        .http
        .get(t.url("/api/events/deliveries"))
        .send()
        .await
        .map(|r| (r.status(), ()))
        .unwrap();
    assert_eq!(s, StatusCode::UNAUTHORIZED, "admin only");
}

async fn events_committed_before_a_restart_are_delivered_after_it(backend: Backend) {
    let mut receiver = Receiver::start().await;
    receiver.down();
    let t = TestApp::start_with_events(backend, &receiver, |e| {
        e.retry = vec![Duration::from_millis(100); 50];
    })
    .await;
    t.add_link(ROOM_A).await;
    let st = t.create_session_type(60).await;
    let booking = t.create_booking(&st, DAY, "10:00", "paid").await;
    wait_for_status(&t, "pending", 1).await;

    let t = t.restart().await;
    receiver.up().await;
    let got = receiver.wait_for_accepted(1).await;
    assert_eq!(kinds(&got), ["booking.link_assigned"]);
    assert_eq!(got[0].booking_id(), Some(booking.id.as_str()));
    wait_for_status(&t, "delivered", 1).await;
}

async fn two_replicas_deliver_every_event_once(backend: Backend) {
    const BOOKINGS: usize = 24;
    let receiver = Receiver::start().await;
    let t = start(backend, &receiver).await;
    let other = t.replica().await;
    for i in 0..4 {
        t.add_link(&format!("https://meet.google.com/ccc-cccc-cc{i}"))
            .await;
    }
    let st = t.create_session_type(60).await;
    let mut pending = Vec::new();
    for i in 0..BOOKINGS {
        let time = format!("{:02}:00", 8 + i % 12);
        pending.push(t.create_booking(&st, DAY, &time, "pending").await);
    }
    // Paid on both replicas at once: each event is written by one and may
    // be delivered by either.
    let pays = pending.iter().enumerate().map(|(i, b)| {
        let on = if i % 2 == 0 { &t } else { &other };
        on.set_payment_status(&b.id, "paid")
    });
    for paid in futures_util::future::join_all(pays).await {
        paid.unwrap();
    }
    let written = deliveries(&t, "limit=1000").await.len();
    assert_eq!(written, BOOKINGS * 2, "a payment and a link each");

    let got = receiver.wait_for_accepted(written).await;
    let mut seen = HashMap::new();
    for d in receiver.attempts() {
        *seen.entry(d.id.clone()).or_insert(0) += 1;
    }
    assert_eq!(seen.len(), written, "none lost");
    assert!(seen.values().all(|n| *n == 1), "none twice: {seen:?}");
    for b in &pending {
        let of: Vec<&str> = got
            .iter()
            .filter(|d| d.booking_id() == Some(b.id.as_str()))
            .map(Delivery::kind)
            .collect();
        assert_eq!(of[0], "booking.payment_changed", "in order: {of:?}");
    }
    wait_for_status(&t, "delivered", written).await;
}

async fn without_an_events_url_no_event_is_written(t: TestApp) {
    t.add_link(ROOM_A).await;
    let st = t.create_session_type(60).await;
    let booking = t.create_booking(&st, DAY, "10:00", "paid").await;
    t.set_payment_status(&booking.id, "refunded").await.unwrap();
    assert!(deliveries(&t, "").await.is_empty());
    assert!(!t.metrics().await.contains("meetpool_events_backlog"));
}

async fn a_day_whose_peak_reaches_the_pool_raises_pool_low_once(backend: Backend) {
    let receiver = Receiver::start().await;
    let tomorrow = jiff::Zoned::now()
        .with_time_zone(jiff::tz::TimeZone::UTC)
        .date()
        .tomorrow()
        .unwrap()
        .to_string();
    let t = start(backend, &receiver).await;
    t.add_link(ROOM_A).await;
    let st = t.create_session_type(60).await;
    t.create_booking(&st, &tomorrow, "10:00", "paid").await;
    // The check runs when the deliverer starts; a restart runs it again.
    let t = t.restart().await;
    let got = receiver
        .wait_until("pool.low", |a| a.iter().any(|d| d.kind() == "pool.low"))
        .await;
    let low: Vec<&Delivery> = got.iter().filter(|d| d.kind() == "pool.low").collect();
    assert_eq!(low.len(), 1);
    assert_eq!(
        low[0].body["data"],
        json!({"date": tomorrow, "peak_sessions": 1, "enabled_links": 1, "unassigned": 0})
    );
    assert!(low[0].verified);
    wait_for_status(&t, "delivered", 2).await;
    assert_eq!(
        deliveries(&t, "")
            .await
            .iter()
            .filter(|e| e["type"] == "pool.low")
            .count(),
        1,
        "raised once"
    );
}

async fn events_stay_on_for_every_replica_until_turned_off(backend: Backend) {
    let receiver = Receiver::start().await;
    let t = start(backend, &receiver).await;
    t.add_link(ROOM_A).await;
    let st = t.create_session_type(60).await;
    // A migration run without the events URL (a deploy step, say) leaves
    // them on.
    let store = meetpool_store::connect(&t.db.url, &Default::default())
        .await
        .unwrap();
    let plain = meetpool_app::App::new(
        std::sync::Arc::from(store),
        meetpool_app::Config::new("UTC").unwrap(),
    );
    plain.prepare_database(false).await.unwrap();
    let first = t.create_booking(&st, DAY, "10:00", "paid").await;
    let got = receiver.wait_for_accepted(1).await;
    assert_eq!(got[0].booking_id(), Some(first.id.as_str()));

    // Turned off (`meetpool events off`): changes write nothing.
    plain.record_events(false).await.unwrap();
    t.set_payment_status(&first.id, "refunded").await.unwrap();
    assert_eq!(deliveries(&t, "").await.len(), 1);
    plain.record_events(true).await.unwrap();
    t.create_booking(&st, DAY, "11:00", "paid").await;
    receiver.wait_for_accepted(2).await;
}

/// The log keeps delivered events for `MEETPOOL_EVENTS_KEEP` (here one
/// second); failed ones stay whatever their age, until retried.
async fn delivered_events_past_their_keeping_are_deleted_and_the_rest_stay(backend: Backend) {
    let receiver = Receiver::start().await;
    receiver.script([Answer::Status(500); 4]);
    let t = TestApp::start_with_events(backend, &receiver, |e| {
        e.keep = Duration::from_secs(1);
    })
    .await;
    t.add_link(ROOM_A).await;
    t.add_link(ROOM_B).await;
    t.add_link("https://meet.google.com/ccc-cccc-ccc").await;
    let st = t.create_session_type(60).await;
    let failing = t.create_booking(&st, DAY, "10:00", "paid").await;
    wait_for_status(&t, "failed", 1).await;
    let old = t.create_booking(&st, DAY, "11:00", "paid").await;
    wait_for_status(&t, "delivered", 1).await;
    assert_eq!(
        t.app
            .prune_deliveries(Duration::from_secs(3600))
            .await
            .unwrap(),
        0,
        "nothing is an hour old"
    );
    // Time passes: the delivered event becomes older than its keeping.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let old_log = deliveries(&t, &format!("booking_id={}", old.id)).await;
    let delivered_at: jiff::Timestamp = old_log[0]["delivered_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        jiff::Timestamp::now().duration_since(delivered_at) > jiff::SignedDuration::from_secs(1),
        "the delivered event is past its keeping: {old_log:#?}"
    );
    let recent = t.create_booking(&st, DAY, "12:00", "paid").await;
    wait_for_status(&t, "delivered", 2).await;

    // A restarted deliverer deletes what is past its keeping first thing.
    let t = t.restart().await;
    let booking_of = |e: &Value| e["booking_id"].as_str().unwrap().to_owned();
    eventually("two deliveries left", Duration::from_secs(10), || async {
        deliveries(&t, "").await.len() == 2
    })
    .await;
    let left = deliveries(&t, "").await;
    let mut kept: Vec<_> = left
        .iter()
        .map(|e| (booking_of(e), e["status"].as_str().unwrap().to_owned()))
        .collect();
    kept.sort();
    let mut expected = vec![
        (failing.id.clone(), "failed".to_owned()),
        (recent.id.clone(), "delivered".to_owned()),
    ];
    expected.sort();
    assert_eq!(kept, expected, "{left:#?}");
    assert!(deliveries(&t, &format!("booking_id={}", old.id))
        .await
        .is_empty());
}

on_postgres!(
    an_event_committed_after_a_later_numbered_one_is_delivered_too,
    a_rolled_back_event_number_does_not_hold_back_the_events_after_it,
    a_change_held_open_holds_back_the_events_after_it_for_seconds_only,
);

/// A paid session as long as the coming ones, its event received (the
/// one event before the scenario's): the database has noted the longest
/// session then, which later changes of bookings as long would otherwise
/// each note, one waiting for the other's commit.
async fn settle_longest_session(t: &TestApp, st: &SessionType, receiver: &Receiver) {
    t.create_booking(st, "2031-07-01", "10:00", "paid").await;
    receiver.wait_for_accepted(1).await;
}

/// A transaction holding a booking's change open while another booking's
/// change commits: its event is numbered first and committed last.
async fn hold_link_change(t: &TestApp, booking: &str, link: &str) -> Box<dyn meetpool_store::Tx> {
    let id: BookingId = booking.parse().unwrap();
    let mut tx = t.app.store().begin().await.unwrap();
    tx.lock_booking(id).await.unwrap();
    let change = BookingChange {
        link: LinkChange::Set(link.parse().unwrap()),
        ..BookingChange::default()
    };
    tx.write(id, &change).await.unwrap();
    tx
}

/// Two bookings given links: the first's change is made, and held open
/// while the second's is made and committed, until the deliverer has read
/// the second's event and the receiver has it.
async fn first_change_held_behind_the_second(
    t: &TestApp,
    receiver: &Receiver,
) -> (Booking, Booking, Box<dyn meetpool_store::Tx>) {
    let a = t.add_link(ROOM_A).await;
    let b = t.add_link(ROOM_B).await;
    let st = t.create_session_type(60).await;
    let first = t.create_booking(&st, DAY, "10:00", "pending").await;
    let second = t.create_booking(&st, DAY, "12:00", "pending").await;
    settle_longest_session(t, &st, receiver).await;

    let held = hold_link_change(t, &first.id, &a.id).await;
    hold_link_change(t, &second.id, &b.id)
        .await
        .commit()
        .await
        .unwrap();
    receiver.wait_for_accepted(2).await;
    (first, second, held)
}

async fn an_event_committed_after_a_later_numbered_one_is_delivered_too(backend: Backend) {
    let receiver = Receiver::start().await;
    let t = start(backend, &receiver).await;
    let (first, second, held) = first_change_held_behind_the_second(&t, &receiver).await;
    held.commit().await.unwrap();

    let got = receiver.wait_for_accepted(3).await[1..].to_vec();
    let mut to: Vec<_> = got.iter().map(|d| d.booking_id().unwrap()).collect();
    to.sort_unstable();
    let mut expected = [first.id.as_str(), second.id.as_str()];
    expected.sort_unstable();
    assert_eq!(to, expected);
    assert_eq!(kinds(&got), ["booking.link_assigned"; 2]);
    assert_eq!(receiver.attempts().len(), 3, "each event once");
    assert_eq!(wait_for_status(&t, "delivered", 3).await.len(), 3);
}

async fn a_rolled_back_event_number_does_not_hold_back_the_events_after_it(backend: Backend) {
    let receiver = Receiver::start().await;
    let t = start(backend, &receiver).await;
    let (_, second, held) = first_change_held_behind_the_second(&t, &receiver).await;
    drop(held);

    let got = receiver.wait_for_accepted(2).await[1..].to_vec();
    assert_eq!(kinds(&got), ["booking.link_assigned"]);
    assert_eq!(got[0].booking_id(), Some(second.id.as_str()));
    // Delivered once its claim is recorded, just after the answer.
    wait_for_status(&t, "delivered", 2).await;
    let log = deliveries(&t, &format!("booking_id={}", second.id)).await;
    assert_eq!(log.len(), 1, "{log:#?}");
    assert_eq!(log[0]["status"], json!("delivered"), "{log:#?}");
    assert_eq!(log[0]["attempts"], json!(1), "{log:#?}");
    assert!(log[0]["delivered_at"].is_string(), "{log:#?}");
}

async fn a_change_held_open_holds_back_the_events_after_it_for_seconds_only(backend: Backend) {
    let receiver = Receiver::start().await;
    let t = start(backend, &receiver).await;
    let (first, second, held) = first_change_held_behind_the_second(&t, &receiver).await;

    // The second's event goes out while the first's change is still open.
    let got = receiver.wait_for_accepted(2).await[1..].to_vec();
    assert_eq!(got[0].booking_id(), Some(second.id.as_str()));
    let log = deliveries(&t, &format!("booking_id={}", first.id)).await;
    assert!(log.is_empty(), "not committed yet: {log:#?}");

    // The first's, committed late, goes out too, once.
    held.commit().await.unwrap();
    let got = receiver.wait_for_accepted(3).await[2..].to_vec();
    assert_eq!(kinds(&got), ["booking.link_assigned"]);
    assert_eq!(got[0].booking_id(), Some(first.id.as_str()));
    assert_eq!(receiver.attempts().len(), 3, "each event once");
    let log = wait_for_status(&t, "delivered", 3).await;
    assert!(
        log.iter()
            .all(|e| e["attempts"] == json!(1) && e["delivered_at"].is_string()),
        "{log:#?}"
    );
}
