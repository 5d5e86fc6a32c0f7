//! Assignment: the previous system's testing guide, conflicts, sharing,
//! policies, and the invariant held by the database itself.
use meetpool_conformance::{AssignAnswer, Backend, Booking, TestApp};
use meetpool_domain::Policy;
use reqwest::StatusCode;
use serde_json::json;

const DAY: &str = "2027-12-01";
const NO_LINKS: &str = "No available meeting links at this time. Please contact support.";

on_both!(
    seed_test_1_single_booking_gets_a_link,
    seed_test_2_same_time_gets_different_links,
    seed_test_3_different_times_share_a_link,
    exhausted_pool_answers_409_and_the_booking_waits,
    partial_overlap_needs_another_link,
    sessions_crossing_midnight_overlap_the_next_day,
    back_to_back_sessions_share_a_link,
    buffer_keeps_a_link_idle_after_a_session,
    best_fit_picks_the_tightest_link_and_first_fit_the_first,
    disabled_links_get_nothing_new_and_lose_coming_sessions,
    assign_errors_answer_like_the_previous_system,
    only_paid_bookings_get_links,
    manual_assignment_never_double_books,
    raw_sql_that_would_double_book_is_refused,
    raw_sql_is_refused_an_overlap_with_any_session_of_a_busy_link,
    a_time_the_clocks_skip_is_422,
    imported_paid_bookings_are_assigned_on_creation,
);

async fn seed_test_1_single_booking_gets_a_link(t: TestApp) {
    let links = t.seed_links().await;
    let st = t.create_session_type(60).await;
    let booking = t.create_booking(&st, DAY, "14:00", "pending").await;
    t.set_payment_status(&booking.id, "paid").await.unwrap();

    let (s, answer) = t.assign(&booking.id).await;
    assert_eq!(s, StatusCode::OK, "{answer:?}");
    assert_eq!(
        answer,
        AssignAnswer {
            success: true,
            meeting_link: Some(links[0].meeting_link.clone()),
            meeting_link_id: Some(links[0].id.clone()),
            join_url: Some(booking.join_url.clone()),
            error: None,
            requires_manual_assignment: None,
        }
    );
    assert_eq!(
        answer.meeting_link.as_deref(),
        Some("https://meet.google.com/kcw-ebey-pqu")
    );

    // Idempotent: the same answer again.
    assert_eq!(
        t.assign(&booking.id).await,
        (StatusCode::OK, answer.clone())
    );
    let shown = t.booking(&booking.id).await;
    assert_eq!(shown.meeting_link, answer.meeting_link);
    assert_eq!(shown.starts_at, "2027-12-01T14:00:00Z");
    assert_eq!(shown.ends_at, "2027-12-01T15:00:00Z");
    assert!(t
        .event_kinds(&booking.id)
        .await
        .contains(&"assigned".to_owned()));
}

async fn seed_test_2_same_time_gets_different_links(t: TestApp) {
    t.seed_links().await;
    let st = t.create_session_type(60).await;
    let a = t.create_booking(&st, DAY, "14:00", "paid").await;
    let c = t.create_booking(&st, DAY, "14:00", "paid").await;
    let (_, la) = t.assign(&a.id).await;
    let (_, lc) = t.assign(&c.id).await;
    assert!(la.success && lc.success, "{la:?} {lc:?}");
    assert_ne!(la.meeting_link, lc.meeting_link);
    assert_eq!(t.overlaps().await, 0);
}

async fn seed_test_3_different_times_share_a_link(t: TestApp) {
    t.seed_links().await;
    let st = t.create_session_type(60).await;
    let a = t.create_booking(&st, DAY, "14:00", "paid").await;
    let c = t.create_booking(&st, DAY, "16:00", "paid").await;
    assert!(a.meeting_link.is_some());
    assert_eq!(
        a.meeting_link, c.meeting_link,
        "14:00 and 16:00 share one link"
    );
}

async fn exhausted_pool_answers_409_and_the_booking_waits(t: TestApp) {
    t.add_link("https://meet.google.com/only-one").await;
    let st = t.create_session_type(60).await;
    let first = t.create_booking(&st, DAY, "14:00", "paid").await;
    assert!(first.meeting_link.is_some());
    let second = t.create_booking(&st, DAY, "14:00", "paid").await;
    assert_eq!(second.meeting_link, None);

    // The previous system's answer, to the byte.
    let (s, body) = t
        .post(
            "/functions/v1/assign-meeting-link",
            json!({ "bookingId": second.id }),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(
        body,
        json!({"success": false, "error": NO_LINKS, "requiresManualAssignment": true})
    );

    // Still paid, in the unassigned queue, counted, and alerted.
    assert_eq!(t.booking(&second.id).await.payment_status, "paid");
    let queue = t.bookings("unassigned=true").await.unwrap();
    assert_eq!(queue, [t.booking(&second.id).await]);
    let status = t.pool_status().await;
    assert_eq!(status.unassigned_paid_bookings, 1);
    assert_eq!(status.total_links, 1);
    assert!(t
        .event_kinds(&second.id)
        .await
        .contains(&"pool_exhausted".to_owned()));
    assert_eq!(t.metric("meetpool_pool_exhausted_total").await, 2);

    // Capacity appears: the waiting booking gets it at once.
    t.add_link("https://meet.google.com/second").await;
    assert_eq!(
        t.booking(&second.id).await.meeting_link.as_deref(),
        Some("https://meet.google.com/second")
    );
}

async fn partial_overlap_needs_another_link(t: TestApp) {
    t.add_link("https://meet.google.com/aaa").await;
    let st = t.create_session_type(60).await;
    t.create_booking(&st, DAY, "14:00", "paid").await;
    let late = t.create_booking(&st, DAY, "14:30", "paid").await;
    assert_eq!(late.meeting_link, None, "14:30-15:30 overlaps 14:00-15:00");
    t.add_link("https://meet.google.com/bbb").await;
    assert_eq!(
        t.booking(&late.id).await.meeting_link.as_deref(),
        Some("https://meet.google.com/bbb")
    );
}

async fn sessions_crossing_midnight_overlap_the_next_day(t: TestApp) {
    t.add_link("https://meet.google.com/night").await;
    let long = t.create_session_type(90).await;
    let hour = t.create_session_type(60).await;
    let late = t.create_booking(&long, "2027-12-01", "23:30", "paid").await;
    assert_eq!(late.ends_at, "2027-12-02T01:00:00Z");
    assert!(late.meeting_link.is_some());
    let early = t.create_booking(&hour, "2027-12-02", "00:30", "paid").await;
    assert_eq!(
        early.meeting_link, None,
        "00:30 the next day is inside 23:30 + 90 min"
    );
    let after = t.create_booking(&hour, "2027-12-02", "01:00", "paid").await;
    assert_eq!(after.meeting_link, late.meeting_link);
    assert_eq!(t.overlaps().await, 0);
}

async fn back_to_back_sessions_share_a_link(t: TestApp) {
    t.add_link("https://meet.google.com/one").await;
    let st = t.create_session_type(60).await;
    let a = t.create_booking(&st, DAY, "14:00", "paid").await;
    let c = t.create_booking(&st, DAY, "15:00", "paid").await;
    assert!(a.meeting_link.is_some());
    assert_eq!(a.meeting_link, c.meeting_link);
}

async fn buffer_keeps_a_link_idle_after_a_session(b: Backend) {
    let t = TestApp::start_with(b, |c| c.buffer_minutes = 10).await;
    t.add_link("https://meet.google.com/one").await;
    let st = t.create_session_type(60).await;
    t.create_booking(&st, DAY, "14:00", "paid").await;
    let next = t.create_booking(&st, DAY, "15:00", "paid").await;
    assert_eq!(
        next.meeting_link, None,
        "15:00 is inside the 10-minute buffer"
    );
    let later = t.create_booking(&st, DAY, "15:10", "paid").await;
    assert!(later.meeting_link.is_some(), "15:10 is past the buffer");
    assert_eq!(t.overlaps().await, 0);
}

async fn best_fit_picks_the_tightest_link_and_first_fit_the_first(b: Backend) {
    for (policy, expected) in [
        (Policy::BestFit, "https://meet.google.com/b"),
        (Policy::FirstFit, "https://meet.google.com/a"),
    ] {
        let t = TestApp::start_with(b, |c| c.policy = policy).await;
        let a = t.add_link("https://meet.google.com/a").await;
        let bl = t.add_link("https://meet.google.com/b").await;
        let st = t.create_session_type(60).await;
        // a is busy at 09:00, b at 12:30: 14:00 fits b more tightly.
        let x = t.create_booking(&st, DAY, "09:00", "paid").await;
        let y = t.create_booking(&st, DAY, "12:30", "paid").await;
        t.assign_link(&x.id, &a.id).await.unwrap();
        t.assign_link(&y.id, &bl.id).await.unwrap();
        let z = t.create_booking(&st, DAY, "14:00", "paid").await;
        assert_eq!(z.meeting_link.as_deref(), Some(expected), "{policy:?}");
    }
}

async fn disabled_links_get_nothing_new_and_lose_coming_sessions(t: TestApp) {
    let a = t.add_link("https://meet.google.com/a").await;
    t.add_link("https://meet.google.com/b").await;
    let st = t.create_session_type(60).await;
    let first = t.create_booking(&st, DAY, "14:00", "paid").await;
    assert_eq!(
        first.meeting_link.as_deref(),
        Some("https://meet.google.com/a")
    );

    let disabled = t
        .update_link(&a.id, json!({"is_available": false}))
        .await
        .unwrap();
    assert!(!disabled.is_available);
    // Its coming session moved to the other link.
    let moved = t.booking(&first.id).await;
    assert_eq!(
        moved.meeting_link.as_deref(),
        Some("https://meet.google.com/b")
    );
    assert_eq!(
        t.event_kinds(&first.id).await,
        ["created", "assigned", "released", "assigned"]
    );

    // Nothing new goes to it.
    let other = t.create_booking(&st, DAY, "18:00", "paid").await;
    assert_eq!(
        other.meeting_link.as_deref(),
        Some("https://meet.google.com/b")
    );
    let status = t.pool_status().await;
    assert_eq!((status.total_links, status.available_links), (2, 1));
}

async fn assign_errors_answer_like_the_previous_system(t: TestApp) {
    let path = "/functions/v1/assign-meeting-link";
    let (s, body) = t
        .post(path, json!({ "bookingId": uuid::Uuid::new_v4() }))
        .await;
    assert_eq!(
        (s, body),
        (
            StatusCode::NOT_FOUND,
            json!({"success": false, "error": "Booking not found"})
        )
    );

    let (s, answer) = t.assign("not-a-uuid").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(!answer.success);
    assert!(answer.error.unwrap().contains("UUID"));

    let (s, body) = t.post(path, json!({"booking": "x"})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "bookingId is required");

    let res = t
        .http
        .post(t.url(path))
        .bearer_auth(meetpool_conformance::ADMIN_TOKEN)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);

    // Wrong or missing token; the apikey header Supabase clients add is ignored.
    for token in [Some("wrong"), None] {
        let mut req = t
            .http
            .post(t.url(path))
            .header("apikey", "anything")
            .json(&json!({"bookingId": uuid::Uuid::new_v4()}));
        if let Some(tok) = token {
            req = req.bearer_auth(tok);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        let answer: AssignAnswer = res.json().await.unwrap();
        assert!(!answer.success);
    }

    // The native API answers in its own shape.
    let res = t.http.get(t.url("/api/links")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
    let (s, body) = t.get("/api/bookings/nope").await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_id"))
    );
    let (s, body) = t
        .get(&format!("/api/bookings/{}", uuid::Uuid::new_v4()))
        .await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let res = t
        .http
        .post(t.url("/api/links"))
        .bearer_auth(meetpool_conformance::ADMIN_TOKEN)
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "malformed_json");
}

async fn only_paid_bookings_get_links(t: TestApp) {
    t.seed_links().await;
    let st = t.create_session_type(60).await;
    let pending = t.create_booking(&st, DAY, "14:00", "pending").await;
    assert_eq!(pending.meeting_link, None);
    let (s, answer) = t.assign(&pending.id).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{answer:?}");
    assert!(!answer.success);
    assert_eq!(t.booking(&pending.id).await.meeting_link, None);
}

async fn manual_assignment_never_double_books(t: TestApp) {
    let a = t.add_link("https://meet.google.com/a").await;
    let other = t.add_link("https://meet.google.com/b").await;
    let st = t.create_session_type(60).await;
    let holder = t.create_booking(&st, DAY, "14:00", "paid").await;
    let second = t.create_booking(&st, DAY, "14:30", "paid").await;
    assert_eq!(holder.meeting_link_id.as_ref(), Some(&a.id));
    let before = t.booking(&second.id).await;

    let refused = t.assign_link(&second.id, &a.id).await.unwrap_err();
    assert_eq!(refused.why(), (StatusCode::CONFLICT, "link_busy"));
    let details = refused.error.details.expect("the conflict's details");
    assert_eq!(details["conflicting_booking_id"], holder.id.as_str());
    assert_eq!(t.booking(&second.id).await, before);

    // Release, then assign by hand to the free link.
    let released = t.release_link(&second.id).await.unwrap();
    assert_eq!(released.meeting_link, None);
    assert_eq!(t.booking(&second.id).await.meeting_link, None);
    let assigned = t.assign_link(&second.id, &other.id).await.unwrap();
    assert_eq!(
        assigned.meeting_link.as_deref(),
        Some("https://meet.google.com/b")
    );
    assert!(t
        .event_kinds(&second.id)
        .await
        .contains(&"manual_assigned".to_owned()));
    assert_eq!(t.overlaps().await, 0);
}

async fn raw_sql_that_would_double_book_is_refused(t: TestApp) {
    let a = t.add_link("https://meet.google.com/a").await;
    t.add_link("https://meet.google.com/b").await;
    let st = t.create_session_type(60).await;
    let x = t.create_booking(&st, DAY, "14:00", "paid").await;
    let y = t.create_booking(&st, DAY, "14:30", "paid").await;
    assert_ne!(x.meeting_link, y.meeting_link);
    moving_it_by_sql_is_refused(&t, &y, &a.id, "https://meet.google.com/b").await;
    assert_eq!(t.overlaps().await, 0);
}

/// Plain SQL moves `booking` onto the link `onto`: the database refuses,
/// and the booking keeps the link `kept`.
async fn moving_it_by_sql_is_refused(t: &TestApp, booking: &Booking, onto: &str, kept: &str) {
    let err =
        t.db.raw()
            .await
            .execute(&format!(
                "UPDATE bookings SET meeting_link_id = '{onto}' WHERE id = '{}'",
                booking.id
            ))
            .await
            .unwrap_err();
    assert!(
        err.contains("double booking") || err.contains("bookings_no_double_booking"),
        "{} moved onto {onto}: {err}",
        booking.booking_time
    );
    assert_eq!(
        t.booking(&booking.id).await.meeting_link.as_deref(),
        Some(kept),
        "{}",
        booking.booking_time
    );
}

/// The database's own check looks at the sessions around the new one, not
/// only the link's last: a session on another link is moved by plain SQL
/// onto a link with a full day, overlapping one that starts after it, one
/// that started before it, the day's first and its last.
async fn raw_sql_is_refused_an_overlap_with_any_session_of_a_busy_link(t: TestApp) {
    let a = t.add_link("https://meet.google.com/a").await;
    t.add_link("https://meet.google.com/b").await;
    let st = t.create_session_type(60).await;
    for time in ["08:00", "10:00", "12:00", "14:00", "16:00"] {
        let on_a = t.create_booking(&st, DAY, time, "paid").await;
        assert_eq!(
            on_a.meeting_link.as_deref(),
            Some("https://meet.google.com/a"),
            "{time}"
        );
    }
    for time in ["07:30", "09:30", "12:30", "16:59"] {
        let y = t.create_booking(&st, DAY, time, "paid").await;
        assert_eq!(
            y.meeting_link.as_deref(),
            Some("https://meet.google.com/b"),
            "{time}"
        );
        moving_it_by_sql_is_refused(&t, &y, &a.id, "https://meet.google.com/b").await;
    }
    assert_eq!(t.overlaps().await, 0);
}

async fn a_time_the_clocks_skip_is_422(b: Backend) {
    let t = TestApp::start_with(b, |c| {
        c.set_timezone("America/New_York").unwrap();
    })
    .await;
    let st = t.create_session_type(60).await;
    let refused = t
        .try_create_booking(
            json!({"order_id": "DST-1", "user_id": "u", "expert_id": "e", "session_type_id": st.id,
                   "booking_date": "2027-03-14", "booking_time": "02:30", "price": 1}),
        )
        .await
        .unwrap_err();
    assert_eq!(
        refused.why(),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_slot")
    );
    assert_eq!(t.bookings("").await.unwrap(), [], "nothing was stored");
    // 01:30 on the day clocks go back is the earlier (EDT) instant.
    let ok = t
        .create_booking(&st, "2027-11-07", "01:30", "pending")
        .await;
    assert_eq!(ok.starts_at, "2027-11-07T05:30:00Z");
}

async fn imported_paid_bookings_are_assigned_on_creation(t: TestApp) {
    t.add_link("https://meet.google.com/a").await;
    let st = t.create_session_type(45).await;
    let booking = t.create_booking(&st, DAY, "10:00", "paid").await;
    assert_eq!(
        booking.meeting_link.as_deref(),
        Some("https://meet.google.com/a")
    );
    assert_eq!(booking.status, "confirmed");
    assert!(booking.join_url.contains("/j/"), "{}", booking.join_url);
    // A duplicate order id is a conflict and changes nothing.
    let refused = t
        .try_create_booking(
            json!({"order_id": booking.order_id, "user_id": "u", "expert_id": "e", "session_type_id": st.id,
                   "booking_date": DAY, "booking_time": "12:00", "price": 1}),
        )
        .await
        .unwrap_err();
    assert_eq!(refused.why(), (StatusCode::CONFLICT, "duplicate_order_id"));
    assert_eq!(t.bookings("").await.unwrap(), [booking]);
}
