//! Events committed out of the order of their numbers (PostgreSQL): one
//! committed after a later-numbered one, a rolled-back number, a change
//! held open.

use meetpool_conformance::{Backend, Booking, Receiver, SessionType, TestApp};
use meetpool_domain::BookingId;
use meetpool_store::{BookingChange, LinkChange};
use serde_json::json;

use super::{deliveries, kinds, start, wait_for_status, DAY, ROOM_A, ROOM_B};

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
