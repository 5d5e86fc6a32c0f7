//! Attendance: a Google Meet session's conference records and participants
//! read after its end and put on the booking.
use std::time::Duration;

use jiff::Timestamp;
use meetpool_conformance::eventually;
use meetpool_conformance::providers::FakeMeet;
use meetpool_conformance::{test_events, Backend, Receiver, TestApp};

use super::{at, mins, quick};

on_both!(a_meet_session_s_attendance_is_put_on_the_booking);

async fn a_meet_session_s_attendance_is_put_on_the_booking(backend: Backend) {
    let meet = FakeMeet::start().await;
    let receiver = Receiver::start().await;
    let google = meet.config();
    let t = TestApp::start_with(backend, |c| {
        quick(c);
        c.rooms.google = Some(google);
        c.rooms.attendance_after = Some(Duration::ZERO);
        c.events = Some(test_events(&receiver.url, |_| {}));
    })
    .await;
    t.add_link(&meet.room("abc-defg-hij")).await;
    t.add_link(&meet.room("klm-nopq-rst")).await;
    let st = t.create_session_type(60).await;
    let (date, time) = at(mins(90));
    let start: Timestamp = format!("{date}T{time}:00Z").parse().unwrap();
    let end = start + mins(60);
    // Two participants: one from 5 minutes early to 40 minutes in, one
    // from 10 minutes in to past the end; together, 5 minutes early to
    // the end. The other room's session was held by nobody.
    meet.conference(
        "abc-defg-hij",
        start - mins(5),
        Some(end + mins(2)),
        &[
            (start - mins(5), Some(start + mins(40))),
            (start + mins(10), Some(end + mins(2))),
        ],
    );
    let attended = t.create_booking(&st, &date, &time, "paid").await;
    let no_show = t.create_booking(&st, &date, &time, "paid").await;
    assert_ne!(attended.meeting_link_id, no_show.meeting_link_id);

    let attendance = |id: String| {
        let t = &t;
        async move {
            t.events(&id)
                .await
                .into_iter()
                .find(|e| e.kind == "attendance")
                .map(|e| e.detail)
        }
    };
    eventually(
        "both sessions' attendance is read",
        Duration::from_secs(10),
        || async {
            attendance(attended.id.clone()).await.is_some()
                && attendance(no_show.id.clone()).await.is_some()
        },
    )
    .await;
    let seen = attendance(attended.id.clone()).await.unwrap();
    assert_eq!(seen["joined"], true, "{seen}");
    assert_eq!(seen["participants"], 2, "{seen}");
    assert_eq!(
        seen["minutes"], 65,
        "from 5 minutes early to the end: {seen}"
    );
    let nobody = attendance(no_show.id.clone()).await.unwrap();
    assert_eq!(nobody["joined"], false, "{nobody}");
    assert_eq!(nobody["minutes"], 0);
    // Asked by the space's name and the session's time, as the reference
    // documents the filter.
    let list = &meet.calls_to("GET", "/v2/conferenceRecords")[0];
    assert!(
        list.body["filter"]
            .as_str()
            .unwrap()
            .starts_with("space.name = \"spaces/"),
        "{list:?}"
    );

    // The platform hears it, once per booking.
    let told = receiver
        .wait_until("booking.attendance for both", |d| {
            d.iter()
                .filter(|d| d.accepted && d.kind() == "booking.attendance")
                .count()
                >= 2
        })
        .await;
    let event = told
        .iter()
        .find(|d| d.kind() == "booking.attendance" && d.booking_id() == Some(attended.id.as_str()))
        .unwrap();
    assert_eq!(event.body["data"]["attendance"]["minutes"], 65);
    assert!(event.verified);
    t.app.rooms_round().await;
    assert_eq!(
        t.events(&attended.id)
            .await
            .iter()
            .filter(|e| e.kind == "attendance")
            .count(),
        1
    );
}
