//! What the pages show: the queue's refusals, the day's sessions on their
//! links, a booking's events, rooms' checks and conferences.
use std::time::Duration;

use jiff::{Timestamp, ToSpan};
use meetpool_conformance::{eventually, Answer as Reply, Backend, Receiver, TestApp};
use reqwest::StatusCode;

use super::{Visitor, ROOM};

on_both!(
    a_chosen_link_busy_at_that_time_is_refused_on_the_queue_page,
    the_day_page_draws_each_session_on_its_link_and_marks_the_moved_ones,
    the_booking_page_shows_what_the_platform_was_told,
    without_events_the_booking_page_says_none_are_sent,
    the_pages_show_each_room_s_last_check_and_a_session_s_conference,
);

async fn a_chosen_link_busy_at_that_time_is_refused_on_the_queue_page(t: TestApp) {
    let st = t.create_session_type(60).await;
    let link = t.add_link(ROOM).await;
    let day = (Timestamp::now() + 48.hours())
        .in_tz("UTC")
        .unwrap()
        .date()
        .to_string();
    let holder = t.create_booking(&st, &day, "10:00", "paid").await;
    assert_eq!(holder.meeting_link_id.as_deref(), Some(link.id.as_str()));
    let waiting = t.create_booking(&st, &day, "10:30", "paid").await;
    assert_eq!(waiting.meeting_link_id, None);

    let v = Visitor::signed_in(&t).await;
    let queue = v.get("/admin/queue").await;
    assert!(queue.body.contains(&waiting.order_id));
    assert!(queue.body.contains("kcw-ebey-pqu — busy then"));
    let csrf = queue.csrf();
    let assign = format!("/admin/bookings/{}/assign", waiting.id);
    let answer = v
        .post(&assign, &[("link", &link.id), ("csrf", &csrf)])
        .await;
    assert_eq!(answer.status, StatusCode::CONFLICT);
    assert!(
        answer.body.contains("is held by booking") && answer.body.contains("Nothing was changed"),
        "{}",
        answer.body
    );
    assert_eq!(t.booking(&waiting.id).await.meeting_link_id, None);
    let answer = v.post(&assign, &[("csrf", &csrf)]).await;
    assert_eq!(answer.status, StatusCode::CONFLICT);
    assert!(answer.body.contains("No link is free for order"));

    // Once the holder moves away, the same choice is taken.
    t.update_booking(&holder.id, serde_json::json!({ "booking_time": "15:00" }))
        .await
        .unwrap();
    let answer = v
        .post(&assign, &[("link", &link.id), ("csrf", &csrf)])
        .await;
    // The reschedule's freed time went to the waiting booking already, or
    // the operator's choice gave it: either way it holds the link now.
    assert!(answer.status == StatusCode::SEE_OTHER, "{}", answer.body);
    assert_eq!(
        t.booking(&waiting.id).await.meeting_link_id.as_deref(),
        Some(link.id.as_str())
    );
}

/// The bar of `booking` on the day page, as drawn: `<rect class="KIND"
/// data-booking="ID"`, inside its link's row.
fn bar_kind(page: &str, link: &str, booking: &str) -> Option<String> {
    let row = page.find(&format!(r#"<g data-link="{link}""#))?;
    let row = &page[row..page[row..].find("</g>").map(|end| row + end)?];
    let at = row.find(&format!(r#"data-booking="{booking}""#))?;
    let class = row[..at].rfind(r#"<rect class=""#)? + r#"<rect class=""#.len();
    Some(row[class..class + row[class..].find('"')?].to_owned())
}

async fn the_day_page_draws_each_session_on_its_link_and_marks_the_moved_ones(t: TestApp) {
    let st = t.create_session_type(60).await;
    let first = t.add_link(ROOM).await;
    let second = t.add_link("https://meet.google.com/ppt-myeq-puu").await;
    let day = (Timestamp::now() + 48.hours())
        .in_tz("UTC")
        .unwrap()
        .date()
        .to_string();
    let morning = t.create_booking(&st, &day, "09:00", "paid").await;
    let late = t.create_booking(&st, &day, "23:30", "paid").await;
    let pending = t.create_booking(&st, &day, "12:00", "pending").await;
    assert_eq!(morning.meeting_link_id.as_deref(), Some(first.id.as_str()));

    let v = Visitor::signed_in(&t).await;
    let page = v.get(&format!("/admin/day?date={day}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(
        bar_kind(&page.body, &first.id, &morning.id).as_deref(),
        Some("paid")
    );
    let late_link = t.booking(&late.id).await.meeting_link_id.unwrap();
    assert_eq!(
        bar_kind(&page.body, &late_link, &late.id).as_deref(),
        Some("paid")
    );
    assert!(
        !page.body.contains(&pending.id),
        "an unpaid booking without a hold holds nothing"
    );

    // Across midnight: the late session shows on the next day too.
    let next = jiff::civil::Date::strptime("%Y-%m-%d", &day)
        .unwrap()
        .tomorrow()
        .unwrap();
    let page = v.get(&format!("/admin/day?date={next}")).await;
    assert_eq!(
        bar_kind(&page.body, &late_link, &late.id).as_deref(),
        Some("paid")
    );

    // Disabling the first link moves its session to the second: marked.
    t.update_link(&first.id, serde_json::json!({ "is_available": false }))
        .await
        .unwrap();
    assert_eq!(
        t.booking(&morning.id).await.meeting_link_id.as_deref(),
        Some(second.id.as_str())
    );
    let page = v.get(&format!("/admin/day?date={day}")).await;
    assert_eq!(bar_kind(&page.body, &first.id, &morning.id), None);
    assert_eq!(
        bar_kind(&page.body, &second.id, &morning.id).as_deref(),
        Some("moved")
    );

    let bad = v.get("/admin/day?date=2027-02-30").await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
}

/// Beside a booking's audit trail, its outbound events: each one, how its
/// delivery went, and nothing of another booking's.
async fn the_booking_page_shows_what_the_platform_was_told(backend: Backend) {
    let receiver = Receiver::start().await;
    receiver.script([Reply::Status(500)]);
    let t = TestApp::start_with_events(backend, &receiver, |_| {}).await;
    t.add_link(ROOM).await;
    let st = t.create_session_type(60).await;
    let booking = t
        .create_booking(&st, "2031-06-03", "10:00", "pending")
        .await;
    t.set_payment_status(&booking.id, "paid").await.unwrap();
    receiver.wait_for_accepted(2).await;
    let other = t.create_booking(&st, "2031-06-03", "14:00", "paid").await;
    receiver.wait_for_accepted(3).await;

    let path = format!("/api/events/deliveries?booking_id={}", booking.id);
    let delivered_log = || async {
        let (status, log) = t.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{log}");
        log.as_array().unwrap().clone()
    };
    eventually("both events delivered", Duration::from_secs(10), || async {
        let log = delivered_log().await;
        log.iter().all(|e| e["status"] == "delivered") && log.len() == 2
    })
    .await;
    let log = delivered_log().await;
    let kinds: Vec<_> = log.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["booking.link_assigned", "booking.payment_changed"]);
    let (_, others) = t
        .get(&format!("/api/events/deliveries?booking_id={}", other.id))
        .await;
    let others = others.as_array().unwrap();
    assert_eq!(others.len(), 1);

    let v = Visitor::signed_in(&t).await;
    let page = v.get(&format!("/admin/bookings/{}", booking.id)).await;
    assert_eq!(page.status, StatusCode::OK);
    let section = &page.body[page.body.find("Outbound deliveries").unwrap()..];
    for e in &log {
        let id = e["id"].as_str().unwrap();
        assert!(section.contains(id), "{id} missing: {section}");
    }
    assert!(section.contains("booking.payment_changed"));
    // The payment's event needed a second attempt; the link's one.
    assert!(section.contains("<td>2</td>"), "{section}");
    assert!(section.contains("<td>1</td>"), "{section}");
    assert!(!section.contains(others[0]["id"].as_str().unwrap()));
    assert!(!section.contains("sends no outbound events"));

    let (status, refused) = t.get("/api/events/deliveries?booking_id=ORDER-1").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(refused["error"]["code"], "invalid_booking_id");
    let (_, failed) = t.get(&format!("{path}&status=failed")).await;
    assert_eq!(failed.as_array().unwrap().len(), 0);
}

async fn without_events_the_booking_page_says_none_are_sent(t: TestApp) {
    t.add_link(ROOM).await;
    let st = t.create_session_type(60).await;
    let booking = t.create_booking(&st, "2031-06-03", "10:00", "paid").await;
    let v = Visitor::signed_in(&t).await;
    let page = v.get(&format!("/admin/bookings/{}", booking.id)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("sends no outbound events"),
        "{}",
        page.body
    );
    assert!(page.body.contains("No events for this booking."));
}

async fn the_pages_show_each_room_s_last_check_and_a_session_s_conference(backend: Backend) {
    let meet = meetpool_conformance::providers::FakeMeet::start().await;
    let google = meet.config();
    let t = TestApp::start_with(backend, |c| {
        c.rooms.google = Some(google);
        c.rooms.poll = std::time::Duration::from_millis(50);
        c.rooms.check_every = None;
        c.rooms.end_grace = Some(std::time::Duration::from_millis(1));
        c.rooms.attendance_after = Some(std::time::Duration::ZERO);
    })
    .await;
    let kept = t.add_link(&meet.room("abc-defg-hij")).await;
    let gone = t.add_link(&meet.room("klm-nopq-rst")).await;
    let other = t.add_link("https://whereby.com/meetpool-room").await;
    let st = t.create_session_type(60).await;
    let start = (Timestamp::now() - 90.minutes()).to_zoned(jiff::tz::TimeZone::UTC);
    let began: Timestamp = format!("{}T{}:00Z", start.date(), start.strftime("%H:%M"))
        .parse()
        .unwrap();
    meet.conference(
        "abc-defg-hij",
        began,
        Some(began + 60.minutes()),
        &[(began, Some(began + 30.minutes()))],
    );
    let ended = t
        .create_booking(
            &st,
            &start.date().to_string(),
            &start.strftime("%H:%M").to_string(),
            "paid",
        )
        .await;
    meet.forget("klm-nopq-rst");
    t.app.check_rooms().await.unwrap();
    eventually("the conference ended", Duration::from_secs(10), || async {
        meet.ends("abc-defg-hij") == 1
    })
    .await;

    let v = Visitor::signed_in(&t).await;
    let page = v.get("/admin/links").await;
    assert_eq!(page.status, StatusCode::OK);
    let row = |id: &str| {
        let at = page.body.find(&format!(r#"data-link="{id}""#)).unwrap();
        let rest = &page.body[at..];
        rest[..rest.find("</tr>").unwrap()].to_owned()
    };
    assert!(
        row(&kept.id).contains("Google Meet: exists"),
        "{}",
        row(&kept.id)
    );
    assert!(
        row(&gone.id).contains("Google Meet: gone"),
        "{}",
        row(&gone.id)
    );
    assert!(row(&gone.id).contains("Disabled"));
    assert!(!row(&other.id).contains("Google Meet"));

    eventually(
        "the end and the attendance on the booking's trail",
        Duration::from_secs(10),
        || async {
            let kinds = t.event_kinds(&ended.id).await;
            kinds.contains(&"provider_action".to_owned())
                && kinds.contains(&"attendance".to_owned())
        },
    )
    .await;
    let page = v.get(&format!("/admin/bookings/{}", ended.id)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body
            .contains(r#"id="conference">ended at the provider"#),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains(r#"id="attendance">1 joined; someone was there for 30 minutes"#),
        "{}",
        page.body
    );
}
