//! Assignment: the previous system's testing guide, conflicts, sharing,
//! policies, and the invariant held by the database itself.
use meetpool_conformance::{event_kinds, Backend, TestApp};
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
    a_time_the_clocks_skip_is_422,
    imported_paid_bookings_are_assigned_on_creation,
);

async fn seed_test_1_single_booking_gets_a_link(b: Backend) {
    let Some(t) = TestApp::spawn(b).await else {
        return;
    };
    let links = t.seed_links().await;
    let st = t.session_type(60).await;
    let booking = t.booking(&st, DAY, "14:00", "pending").await;
    let id = booking["id"].as_str().unwrap();
    let (s, _) = t
        .patch(
            &format!("/api/bookings/{id}"),
            json!({"payment_status": "paid"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);

    let (s, body) = t.assign(id).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["success"], true);
    assert_eq!(body["meetingLink"], "https://meet.google.com/kcw-ebey-pqu");
    assert!(links.contains(&body["meetingLinkId"].as_str().unwrap().to_owned()));

    // Idempotent: the same answer again.
    let (s2, again) = t.assign(id).await;
    assert_eq!((s2, &again), (StatusCode::OK, &body));
    let shown = t.get_booking(id).await;
    assert_eq!(shown["meeting_link"], body["meetingLink"]);
    assert_eq!(shown["starts_at"], "2027-12-01T14:00:00Z");
    assert_eq!(shown["ends_at"], "2027-12-01T15:00:00Z");
    assert!(event_kinds(&t, id).await.contains(&"assigned".to_owned()));
}

async fn seed_test_2_same_time_gets_different_links(b: Backend) {
    let Some(t) = TestApp::spawn(b).await else {
        return;
    };
    t.seed_links().await;
    let st = t.session_type(60).await;
    let a = t.booking(&st, DAY, "14:00", "paid").await;
    let c = t.booking(&st, DAY, "14:00", "paid").await;
    let (_, la) = t.assign(a["id"].as_str().unwrap()).await;
    let (_, lc) = t.assign(c["id"].as_str().unwrap()).await;
    assert_eq!(la["success"], true);
    assert_eq!(lc["success"], true);
    assert_ne!(la["meetingLink"], lc["meetingLink"]);
    assert_eq!(t.overlaps().await, 0);
}

async fn seed_test_3_different_times_share_a_link(b: Backend) {
    let Some(t) = TestApp::spawn(b).await else {
        return;
    };
    t.seed_links().await;
    let st = t.session_type(60).await;
    let a = t.booking(&st, DAY, "14:00", "paid").await;
    let c = t.booking(&st, DAY, "16:00", "paid").await;
    assert_eq!(
        a["meeting_link"], c["meeting_link"],
        "14:00 and 16:00 share one link"
    );
    assert!(a["meeting_link"].is_string());
}

async fn exhausted_pool_answers_409_and_the_booking_waits(b: Backend) {
    let Some(t) = TestApp::spawn(b).await else {
        return;
    };
    t.add_link("https://meet.google.com/only-one").await;
    let st = t.session_type(60).await;
    let first = t.booking(&st, DAY, "14:00", "paid").await;
    assert!(first["meeting_link"].is_string());
    let second = t.booking(&st, DAY, "14:00", "paid").await;
    let id = second["id"].as_str().unwrap();
    assert!(second["meeting_link"].is_null());

    let (s, body) = t.assign(id).await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(
        body,
        json!({"success": false, "error": NO_LINKS, "requiresManualAssignment": true})
    );

    // Still paid, in the unassigned queue, counted, and alerted.
    assert_eq!(t.get_booking(id).await["payment_status"], "paid");
    let (_, queue) = t.get("/api/bookings?unassigned=true").await;
    let queued: Vec<&str> = queue
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap())
        .collect();
    assert_eq!(queued, vec![id]);
    let (_, status) = t.get("/api/pool/status").await;
    assert_eq!(status["unassigned_paid_bookings"], 1);
    assert_eq!(status["total_links"], 1);
    assert!(event_kinds(&t, id)
        .await
        .contains(&"pool_exhausted".to_owned()));
    let metrics = t.metrics().await;
    assert!(metrics.contains("meetpool_pool_exhausted_total"));

    // Capacity appears: the waiting booking gets it at once.
    t.add_link("https://meet.google.com/second").await;
    assert_eq!(
        t.get_booking(id).await["meeting_link"],
        "https://meet.google.com/second"
    );
}

async fn partial_overlap_needs_another_link(b: Backend) {
    let Some(t) = TestApp::spawn(b).await else {
        return;
    };
    t.add_link("https://meet.google.com/aaa").await;
    let st = t.session_type(60).await;
    t.booking(&st, DAY, "14:00", "paid").await;
    let late = t.booking(&st, DAY, "14:30", "paid").await;
    assert!(
        late["meeting_link"].is_null(),
        "14:30-15:30 overlaps 14:00-15:00"
    );
    t.add_link("https://meet.google.com/bbb").await;
    assert_eq!(
        t.get_booking(late["id"].as_str().unwrap()).await["meeting_link"],
        "https://meet.google.com/bbb"
    );
}

async fn sessions_crossing_midnight_overlap_the_next_day(b: Backend) {
    let Some(t) = TestApp::spawn(b).await else {
        return;
    };
    t.add_link("https://meet.google.com/night").await;
    let long = t.session_type(90).await;
    let hour = t.session_type(60).await;
    let late = t.booking(&long, "2027-12-01", "23:30", "paid").await;
    assert_eq!(late["ends_at"], "2027-12-02T01:00:00Z");
    assert!(late["meeting_link"].is_string());
    let early = t.booking(&hour, "2027-12-02", "00:30", "paid").await;
    assert!(
        early["meeting_link"].is_null(),
        "00:30 the next day is inside 23:30 + 90 min"
    );
    let after = t.booking(&hour, "2027-12-02", "01:00", "paid").await;
    assert_eq!(after["meeting_link"], late["meeting_link"]);
    assert_eq!(t.overlaps().await, 0);
}

async fn back_to_back_sessions_share_a_link(b: Backend) {
    let Some(t) = TestApp::spawn(b).await else {
        return;
    };
    t.add_link("https://meet.google.com/one").await;
    let st = t.session_type(60).await;
    let a = t.booking(&st, DAY, "14:00", "paid").await;
    let c = t.booking(&st, DAY, "15:00", "paid").await;
    assert!(a["meeting_link"].is_string());
    assert_eq!(a["meeting_link"], c["meeting_link"]);
}

async fn buffer_keeps_a_link_idle_after_a_session(b: Backend) {
    let Some(t) = TestApp::spawn_with(b, |c| c.buffer_minutes = 10).await else {
        return;
    };
    t.add_link("https://meet.google.com/one").await;
    let st = t.session_type(60).await;
    t.booking(&st, DAY, "14:00", "paid").await;
    let next = t.booking(&st, DAY, "15:00", "paid").await;
    assert!(
        next["meeting_link"].is_null(),
        "15:00 is inside the 10-minute buffer"
    );
    let later = t.booking(&st, DAY, "15:10", "paid").await;
    assert!(
        later["meeting_link"].is_string(),
        "15:10 is past the buffer"
    );
    assert_eq!(t.overlaps().await, 0);
}

async fn best_fit_picks_the_tightest_link_and_first_fit_the_first(b: Backend) {
    for (policy, expected) in [
        (Policy::BestFit, "https://meet.google.com/b"),
        (Policy::FirstFit, "https://meet.google.com/a"),
    ] {
        let Some(t) = TestApp::spawn_with(b, |c| c.policy = policy).await else {
            return;
        };
        let a = t.add_link("https://meet.google.com/a").await;
        let bl = t.add_link("https://meet.google.com/b").await;
        let st = t.session_type(60).await;
        // a is busy at 09:00, b at 12:30: 14:00 fits b more tightly.
        let x = t.booking(&st, DAY, "09:00", "paid").await;
        let y = t.booking(&st, DAY, "12:30", "paid").await;
        t.put(
            &format!("/api/bookings/{}/meeting-link", x["id"].as_str().unwrap()),
            json!({"meeting_link_id": a}),
        )
        .await;
        let (s, body) = t
            .put(
                &format!("/api/bookings/{}/meeting-link", y["id"].as_str().unwrap()),
                json!({"meeting_link_id": bl}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{body}");
        let z = t.booking(&st, DAY, "14:00", "paid").await;
        assert_eq!(z["meeting_link"], expected, "{policy:?}");
    }
}

async fn disabled_links_get_nothing_new_and_lose_coming_sessions(b: Backend) {
    let Some(t) = TestApp::spawn(b).await else {
        return;
    };
    let a = t.add_link("https://meet.google.com/a").await;
    t.add_link("https://meet.google.com/b").await;
    let st = t.session_type(60).await;
    let first = t.booking(&st, DAY, "14:00", "paid").await;
    assert_eq!(first["meeting_link"], "https://meet.google.com/a");

    let (s, link) = t
        .patch(&format!("/api/links/{a}"), json!({"is_available": false}))
        .await;
    assert_eq!(s, StatusCode::OK, "{link}");
    assert_eq!(link["is_available"], false);
    // Its coming session moved to the other link.
    let moved = t.get_booking(first["id"].as_str().unwrap()).await;
    assert_eq!(moved["meeting_link"], "https://meet.google.com/b");
    let kinds = event_kinds(&t, first["id"].as_str().unwrap()).await;
    assert_eq!(kinds, vec!["created", "assigned", "released", "assigned"]);

    // Nothing new goes to it.
    let other = t.booking(&st, DAY, "18:00", "paid").await;
    assert_eq!(other["meeting_link"], "https://meet.google.com/b");
    let (_, status) = t.get("/api/pool/status").await;
    assert_eq!(
        (
            status["total_links"].as_i64(),
            status["available_links"].as_i64()
        ),
        (Some(2), Some(1))
    );
}

async fn assign_errors_answer_like_the_previous_system(b: Backend) {
    let Some(t) = TestApp::spawn(b).await else {
        return;
    };
    let path = "/functions/v1/assign-meeting-link";
    let (s, body) = t.assign(&uuid::Uuid::new_v4().to_string()).await;
    assert_eq!(
        (s, body),
        (
            StatusCode::NOT_FOUND,
            json!({"success": false, "error": "Booking not found"})
        )
    );

    let (s, body) = t.assign("not-a-uuid").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(body["success"], false);
    assert!(body["error"].as_str().unwrap().contains("UUID"));

    let (s, body) = t.post(path, json!({"booking": "x"})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "bookingId is required");

    let res = t
        .http
        .post(t.url(path))
        .bearer_auth("test-admin-token")
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
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["success"], false);
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
        .bearer_auth("test-admin-token")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "malformed_json");
}

async fn only_paid_bookings_get_links(b: Backend) {
    let Some(t) = TestApp::spawn(b).await else {
        return;
    };
    t.seed_links().await;
    let st = t.session_type(60).await;
    let pending = t.booking(&st, DAY, "14:00", "pending").await;
    assert!(pending["meeting_link"].is_null());
    let (s, body) = t.assign(pending["id"].as_str().unwrap()).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["success"], false);
    assert!(t.get_booking(pending["id"].as_str().unwrap()).await["meeting_link"].is_null());
}

async fn manual_assignment_never_double_books(b: Backend) {
    let Some(t) = TestApp::spawn(b).await else {
        return;
    };
    let a = t.add_link("https://meet.google.com/a").await;
    let other = t.add_link("https://meet.google.com/b").await;
    let st = t.session_type(60).await;
    let holder = t.booking(&st, DAY, "14:00", "paid").await;
    let second = t.booking(&st, DAY, "14:30", "paid").await;
    assert_eq!(holder["meeting_link"], "https://meet.google.com/a");
    let sid = second["id"].as_str().unwrap();
    let before = t.get_booking(sid).await;

    let (s, body) = t
        .put(
            &format!("/api/bookings/{sid}/meeting-link"),
            json!({"meeting_link_id": a}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "link_busy");
    assert_eq!(
        body["error"]["details"]["conflicting_booking_id"],
        holder["id"]
    );
    assert_eq!(
        t.get_booking(sid).await["meeting_link_id"],
        before["meeting_link_id"]
    );

    // Release, then assign by hand to the free link.
    let (s, released) = t.delete(&format!("/api/bookings/{sid}/meeting-link")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(released["meeting_link"].is_null());
    assert_eq!(
        t.get_booking(sid).await["meeting_link"],
        serde_json::Value::Null
    );
    let (s, body) = t
        .put(
            &format!("/api/bookings/{sid}/meeting-link"),
            json!({"meeting_link_id": other}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["meeting_link"], "https://meet.google.com/b");
    assert!(event_kinds(&t, sid)
        .await
        .contains(&"manual_assigned".to_owned()));
    assert_eq!(t.overlaps().await, 0);
}

async fn raw_sql_that_would_double_book_is_refused(b: Backend) {
    let Some(t) = TestApp::spawn(b).await else {
        return;
    };
    let a = t.add_link("https://meet.google.com/a").await;
    t.add_link("https://meet.google.com/b").await;
    let st = t.session_type(60).await;
    let x = t.booking(&st, DAY, "14:00", "paid").await;
    let y = t.booking(&st, DAY, "14:30", "paid").await;
    assert_ne!(x["meeting_link"], y["meeting_link"]);
    let raw = t.db.raw().await;
    let err = raw
        .execute(&format!(
            "UPDATE bookings SET meeting_link_id = '{a}' WHERE id = '{}'",
            y["id"].as_str().unwrap()
        ))
        .await
        .unwrap_err();
    assert!(
        err.contains("double booking") || err.contains("bookings_no_double_booking"),
        "{err}"
    );
    assert_eq!(
        t.get_booking(y["id"].as_str().unwrap()).await["meeting_link"],
        "https://meet.google.com/b"
    );
    assert_eq!(t.overlaps().await, 0);
}

async fn a_time_the_clocks_skip_is_422(b: Backend) {
    let Some(t) = TestApp::spawn_with(b, |c| {
        c.set_timezone("America/New_York").unwrap();
    })
    .await
    else {
        return;
    };
    let st = t.session_type(60).await;
    let (s, body) = t
        .post(
            "/api/bookings",
            json!({"order_id": "DST-1", "user_id": "u", "expert_id": "e", "session_type_id": st,
                   "booking_date": "2027-03-14", "booking_time": "02:30", "price": 1}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "invalid_slot");
    let (_, list) = t.get("/api/bookings").await;
    assert_eq!(list, json!([]), "nothing was stored");
    // 01:30 on the day clocks go back is the earlier (EDT) instant.
    let ok = t.booking(&st, "2027-11-07", "01:30", "pending").await;
    assert_eq!(ok["starts_at"], "2027-11-07T05:30:00Z");
}

async fn imported_paid_bookings_are_assigned_on_creation(b: Backend) {
    let Some(t) = TestApp::spawn(b).await else {
        return;
    };
    t.add_link("https://meet.google.com/a").await;
    let st = t.session_type(45).await;
    let booking = t.booking(&st, DAY, "10:00", "paid").await;
    assert_eq!(booking["meeting_link"], "https://meet.google.com/a");
    assert_eq!(booking["status"], "confirmed");
    assert!(booking["join_url"].as_str().unwrap().contains("/j/"));
    // A duplicate order id is a conflict and changes nothing.
    let (s, body) = t
        .post(
            "/api/bookings",
            json!({"order_id": booking["order_id"], "user_id": "u", "expert_id": "e", "session_type_id": st,
                   "booking_date": DAY, "booking_time": "12:00", "price": 1}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "duplicate_order_id");
}
