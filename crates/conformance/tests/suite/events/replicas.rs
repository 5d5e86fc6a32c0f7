//! Restarts and replicas: events committed before a restart go out after
//! it, two replicas send each event once, and events are on for every
//! replica until turned off (and never written without an events URL).
use std::collections::HashMap;
use std::time::Duration;

use meetpool_conformance::{Backend, Delivery, Receiver, TestApp};

use super::{deliveries, kinds, start, wait_for_status, DAY, ROOM_A};

on_both!(
    events_committed_before_a_restart_are_delivered_after_it,
    two_replicas_deliver_every_event_once,
    without_an_events_url_no_event_is_written,
    events_stay_on_for_every_replica_until_turned_off,
);

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
