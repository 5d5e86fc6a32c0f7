//! Moving a session: a paid booking keeps its link when it is free at the
//! new time, takes another when not, waits in the queue when none is free;
//! the time it leaves goes to waiting bookings; participants' calendar
//! files follow the move.
use meetpool_conformance::{Backend, TestApp};
use reqwest::StatusCode;
use serde_json::json;

on_both!(
    a_moved_session_keeps_its_link_or_takes_another,
    a_move_with_no_free_link_waits_and_frees_its_old_time,
    a_move_to_a_time_that_does_not_exist_changes_nothing,
    racing_moves_from_two_replicas_never_double_book,
);

const DAY: &str = "2031-03-04";

async fn a_moved_session_keeps_its_link_or_takes_another(t: TestApp) {
    let one = t.add_link("https://meet.google.com/aaa-aaaa-aaa").await;
    let two = t.add_link("https://meet.google.com/bbb-bbbb-bbb").await;
    let st = t.create_session_type(60).await;
    let moving = t.create_booking(&st, DAY, "10:00", "paid").await;
    assert_eq!(moving.meeting_link_id.as_deref(), Some(one.id.as_str()));

    // Free at 15:00 too: the link stays.
    let moved = t
        .update_booking(&moving.id, json!({"booking_time": "15:00"}))
        .await
        .unwrap();
    assert_eq!(
        (
            moved.booking_time.as_str(),
            moved.meeting_link_id.as_deref()
        ),
        ("15:00", Some(one.id.as_str()))
    );
    assert!(
        moved.starts_at.starts_with("2031-03-04T15:00:00"),
        "{moved:?}"
    );

    // Someone else holds the first link at 18:00: moving there takes the
    // other one.
    let holder = t.create_booking(&st, DAY, "18:00", "paid").await;
    assert_eq!(holder.meeting_link_id.as_deref(), Some(one.id.as_str()));
    let longer = t.create_session_type(90).await;
    let moved = t
        .update_booking(
            &moving.id,
            json!({"booking_time": "17:30", "session_type_id": longer.id}),
        )
        .await
        .unwrap();
    assert_eq!(moved.meeting_link_id.as_deref(), Some(two.id.as_str()));
    assert!(
        moved.ends_at.starts_with("2031-03-04T19:00:00"),
        "{moved:?}"
    );
    let kinds = t.event_kinds(&moving.id).await;
    assert_eq!(
        kinds.iter().filter(|k| *k == "rescheduled").count(),
        2,
        "{kinds:?}"
    );
    assert!(kinds.contains(&"link_changed".to_owned()), "{kinds:?}");
    assert_eq!(t.overlaps().await, 0);

    // The calendar file says which version it is.
    let at = moved.join_url.find("/j/").unwrap();
    let ics = t
        .http
        .get(t.url(&format!("{}.ics", &moved.join_url[at..])))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(ics.contains("SEQUENCE:2"), "{ics}");
}

async fn a_move_with_no_free_link_waits_and_frees_its_old_time(t: TestApp) {
    let link = t.add_link("https://meet.google.com/aaa-aaaa-aaa").await;
    let st = t.create_session_type(60).await;
    let moving = t.create_booking(&st, DAY, "10:00", "paid").await;
    let afternoon = t.create_booking(&st, DAY, "14:00", "paid").await;
    let waiting = t.create_booking(&st, DAY, "10:00", "paid").await;
    assert_eq!(moving.meeting_link_id.as_deref(), Some(link.id.as_str()));
    assert_eq!(afternoon.meeting_link_id.as_deref(), Some(link.id.as_str()));
    assert_eq!(waiting.meeting_link_id, None);

    let moved = t
        .update_booking(&moving.id, json!({"booking_time": "14:30"}))
        .await
        .unwrap();
    assert_eq!(moved.meeting_link_id, None, "no link is free at 14:30");
    assert_eq!(moved.payment_status, "paid");
    // The 10:00 it left went to the booking waiting for it.
    let waiting = t.booking(&waiting.id).await;
    assert_eq!(waiting.meeting_link_id.as_deref(), Some(link.id.as_str()));
    let status = t.pool_status().await;
    assert_eq!(status.unassigned_paid_bookings, 1);
    assert_eq!(t.overlaps().await, 0);
}

async fn a_move_to_a_time_that_does_not_exist_changes_nothing(b: Backend) {
    let t = TestApp::start_with(b, |c| c.set_timezone("America/New_York").unwrap()).await;
    t.add_link("https://meet.google.com/aaa-aaaa-aaa").await;
    let st = t.create_session_type(60).await;
    let booking = t.create_booking(&st, "2031-03-08", "02:30", "paid").await;
    for (change, code) in [
        // The clocks skip from 02:00 to 03:00 that night.
        (json!({"booking_date": "2031-03-09"}), "invalid_slot"),
        (json!({"booking_time": "25:00"}), "invalid_slot"),
        (
            json!({"session_type_id": uuid::Uuid::new_v4()}),
            "unknown_session_type",
        ),
        (
            json!({"booking_time": "11:00", "payment_status": "paid"}),
            "one_change_at_a_time",
        ),
        (json!({}), "nothing_to_change"),
    ] {
        let refused = t
            .update_booking(&booking.id, change.clone())
            .await
            .unwrap_err();
        assert_eq!(
            refused.why(),
            (StatusCode::UNPROCESSABLE_ENTITY, code),
            "{change}"
        );
    }
    let after = t.booking(&booking.id).await;
    assert_eq!(
        (
            after.booking_date.as_str(),
            after.booking_time.as_str(),
            after.meeting_link_id
        ),
        ("2031-03-08", "02:30", booking.meeting_link_id)
    );
    assert!(!t
        .event_kinds(&booking.id)
        .await
        .contains(&"rescheduled".to_owned()));
}

async fn racing_moves_from_two_replicas_never_double_book(t: TestApp) {
    t.add_link("https://meet.google.com/aaa-aaaa-aaa").await;
    t.add_link("https://meet.google.com/bbb-bbbb-bbb").await;
    let st = t.create_session_type(60).await;
    let mut bookings = Vec::new();
    for hour in 6..14 {
        let b = t
            .create_booking(&st, DAY, &format!("{hour:02}:00"), "paid")
            .await;
        assert!(b.meeting_link_id.is_some());
        bookings.push(b);
    }
    let other = t.replica().await;
    // Everyone moves to 20:00 at once, half through each replica.
    let moves = bookings.iter().enumerate().map(|(i, b)| {
        let app = if i % 2 == 0 { &t } else { &other };
        app.update_booking(&b.id, json!({"booking_time": "20:00"}))
    });
    let moved = futures_util::future::join_all(moves).await;
    let moved: Vec<_> = moved.into_iter().map(|m| m.unwrap()).collect();
    let linked = moved.iter().filter(|b| b.meeting_link_id.is_some()).count();
    assert_eq!(linked, 2, "two links, so two sessions at 20:00: {moved:?}");
    assert!(moved
        .iter()
        .all(|b| b.booking_time == "20:00" && b.payment_status == "paid"));
    assert_eq!(t.pool_status().await.unassigned_paid_bookings, 6);
    assert_eq!(t.overlaps().await, 0);
}
