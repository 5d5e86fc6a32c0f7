//! Repacking (opt-in): when no link is free for a booking but fewer
//! sessions overlap it than there are links, booked sessions that start
//! after the freeze move to make room, with the fewest moves.
use meetpool_conformance::{Backend, Booking, TestApp};

on_both!(
    a_move_makes_room_where_the_peak_allows,
    without_repacking_the_booking_waits,
    frozen_sessions_do_not_move,
    a_payment_notification_is_rescued_the_same_way,
);

const DAY: &str = "2031-07-08";

/// Link A busy 10–12, link B busy 13–15: the pool's fragmented state.
async fn fragmented(t: &TestApp) -> (String, String, Booking, Booking) {
    let a = t.add_link("https://meet.google.com/aaa-aaaa-aaa").await.id;
    let b = t.add_link("https://meet.google.com/bbb-bbbb-bbb").await.id;
    let two_hours = t.create_session_type(120).await;
    let morning = t.create_booking(&two_hours, DAY, "10:00", "paid").await;
    let afternoon = t.create_booking(&two_hours, DAY, "13:00", "paid").await;
    let afternoon = t.assign_link(&afternoon.id, &b).await.unwrap();
    assert_eq!(morning.meeting_link_id.as_deref(), Some(a.as_str()));
    assert_eq!(afternoon.meeting_link_id.as_deref(), Some(b.as_str()));
    (a, b, morning, afternoon)
}

/// An 11:00–14:00 booking: it overlaps both sessions, but only one at a
/// time, so two links are enough.
async fn eleven_to_two(t: &TestApp) -> Booking {
    let three_hours = t.create_session_type(180).await;
    t.create_booking(&three_hours, DAY, "11:00", "paid").await
}

async fn a_move_makes_room_where_the_peak_allows(b: Backend) {
    let t = TestApp::start_with(b, |c| c.repack_freeze_minutes = Some(120)).await;
    let (_, _, morning, afternoon) = fragmented(&t).await;
    let rescued = eleven_to_two(&t).await;
    assert!(rescued.meeting_link_id.is_some(), "{rescued:?}");
    // One of the two sessions moved next to the other; both keep a link.
    let morning = t.booking(&morning.id).await;
    let afternoon = t.booking(&afternoon.id).await;
    assert_eq!(morning.meeting_link_id, afternoon.meeting_link_id);
    assert_ne!(morning.meeting_link_id, rescued.meeting_link_id);
    let mut changed = 0;
    for id in [&morning.id, &afternoon.id] {
        changed += t
            .event_kinds(id)
            .await
            .iter()
            .filter(|k| *k == "link_changed")
            .count();
    }
    assert_eq!(changed, 1, "the fewest moves: one");
    assert_eq!(t.overlaps().await, 0);
    assert_eq!(t.pool_status().await.unassigned_paid_bookings, 0);
}

async fn without_repacking_the_booking_waits(t: TestApp) {
    fragmented(&t).await;
    let waiting = eleven_to_two(&t).await;
    assert_eq!(waiting.meeting_link_id, None);
    assert_eq!(t.pool_status().await.unassigned_paid_bookings, 1);
}

async fn frozen_sessions_do_not_move(b: Backend) {
    // Every session starts within the freeze: nothing may move.
    let t = TestApp::start_with(b, |c| c.repack_freeze_minutes = Some(10_000_000)).await;
    let (a, bb, morning, afternoon) = fragmented(&t).await;
    let waiting = eleven_to_two(&t).await;
    assert_eq!(waiting.meeting_link_id, None);
    assert_eq!(t.booking(&morning.id).await.meeting_link_id, Some(a));
    assert_eq!(t.booking(&afternoon.id).await.meeting_link_id, Some(bb));
}

async fn a_payment_notification_is_rescued_the_same_way(b: Backend) {
    let t = TestApp::start_with(b, |c| c.repack_freeze_minutes = Some(120)).await;
    fragmented(&t).await;
    let three_hours = t.create_session_type(180).await;
    let pending = t
        .create_booking(&three_hours, DAY, "11:00", "pending")
        .await;
    let sig = meetpool_domain::midtrans::signature(
        &pending.order_id,
        "200",
        "100000.00",
        meetpool_conformance::MIDTRANS_KEY,
    );
    let body = serde_json::json!({
        "order_id": pending.order_id, "status_code": "200", "gross_amount": "100000.00",
        "signature_key": sig, "transaction_status": "settlement", "transaction_id": "txn-repack",
    });
    let answer = t.notify(body.to_string()).await.settled();
    assert_eq!(answer.payment_status, "paid");
    assert!(answer.meeting_link.is_some(), "{answer:?}");
    assert_eq!(t.overlaps().await, 0);
}
