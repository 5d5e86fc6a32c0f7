//! What the platform's endpoint receives: each change of a booking, signed,
//! once and in order; nothing for a change rolled back.
use std::collections::HashMap;

use meetpool_conformance::{Backend, Delivery, Receiver};
use meetpool_domain::BookingId;
use meetpool_store::{BookingChange, LinkChange};
use reqwest::StatusCode;
use serde_json::{json, Value};

use super::{deliveries, kinds, start, wait_for_status, DAY, ROOM_A, ROOM_B};

on_both!(
    a_paid_booking_tells_the_platform_its_link_signed,
    every_change_of_a_booking_arrives_once_and_in_order,
    a_rolled_back_change_leaves_no_event_and_a_committed_one_has_its_event,
);

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
