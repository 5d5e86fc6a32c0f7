//! The delivery log: an event failed for good stays visible and can be
//! retried; delivered ones are kept for `MEETPOOL_EVENTS_KEEP`.
use std::time::Duration;

use meetpool_conformance::{eventually, Answer, Backend, Receiver, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

use super::{deliveries, kinds, start, wait_for_status, DAY, ROOM_A, ROOM_B};

on_both!(
    an_event_that_failed_for_good_stays_visible_and_can_be_retried,
    delivered_events_past_their_keeping_are_deleted_and_the_rest_stay,
);

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
