//! The operator's API: validation that changes nothing, payment changes by
//! hand, links that cannot be deleted, the audit trail.
use meetpool_conformance::{Backend, TestApp};
use reqwest::StatusCode;
use serde_json::json;

on_both!(
    bad_input_is_refused_with_a_reason_and_changes_nothing,
    payment_changes_by_hand_follow_the_state_machine,
    links_that_bookings_reference_cannot_be_deleted,
    health_and_readiness,
    the_date_filter_is_the_platforms_local_day,
);

const UNPROCESSABLE: StatusCode = StatusCode::UNPROCESSABLE_ENTITY;

async fn bad_input_is_refused_with_a_reason_and_changes_nothing(t: TestApp) {
    for (body, code) in [
        (json!({"name": "x", "duration": 0}), "invalid_duration"),
        (json!({"name": "x", "duration": 1441}), "invalid_duration"),
        (json!({"name": " ", "duration": 30}), "invalid_name"),
    ] {
        let (s, e) = t.post("/api/session-types", body).await;
        assert_eq!(
            (s, e["error"]["code"].as_str()),
            (UNPROCESSABLE, Some(code)),
            "{e}"
        );
    }
    let (s, _) = t
        .post(
            "/api/session-types",
            json!({"name": "x", "duration": "sixty"}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(t.get("/api/session-types").await.1, json!([]));

    for url in ["http://meet.google.com/x", "meet.google.com/x", "not a url"] {
        let refused = t.try_add_link(url).await.unwrap_err();
        assert_eq!(refused.why(), (UNPROCESSABLE, "invalid_meeting_link"));
    }
    t.add_link("https://meet.google.com/abc").await;
    let refused = t
        .try_add_link("https://meet.google.com/abc")
        .await
        .unwrap_err();
    assert_eq!(refused.why(), (StatusCode::CONFLICT, "duplicate_link"));
    assert_eq!(t.links().await.len(), 1);

    let st = t.create_session_type(60).await;
    let good = json!({"order_id": "O-1", "user_id": "u", "expert_id": "e", "session_type_id": st.id,
                      "booking_date": "2027-12-01", "booking_time": "14:00", "price": 1});
    for (field, value, code) in [
        ("booking_date", json!("2027-02-30"), "invalid_slot"),
        ("booking_time", json!("24:30"), "invalid_slot"),
        (
            "session_type_id",
            json!(uuid::Uuid::new_v4()),
            "unknown_session_type",
        ),
        ("order_id", json!("has spaces"), "invalid_order_id"),
        ("payment_status", json!("settled"), "invalid_payment_status"),
        ("price", json!(-1), "invalid_price"),
    ] {
        let mut body = good.clone();
        body[field] = value;
        let refused = t.try_create_booking(body).await.unwrap_err();
        assert_eq!(refused.why(), (UNPROCESSABLE, code), "{field}: {refused:?}");
    }
    let (s, _) = t.post("/api/bookings", json!({"order_id": "O-2"})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "missing fields are malformed");
    let refused = t.bookings("date=tomorrow").await.unwrap_err();
    assert_eq!(refused.why(), (UNPROCESSABLE, "invalid_date"));
    assert_eq!(t.get("/api/bookings").await.1, json!([]));
}

async fn payment_changes_by_hand_follow_the_state_machine(t: TestApp) {
    const ONLY: &str = "https://meet.google.com/only";
    t.add_link(ONLY).await;
    let st = t.create_session_type(60).await;
    let first = t.create_booking(&st, "2027-12-01", "14:00", "paid").await;
    let waiting = t.create_booking(&st, "2027-12-01", "14:30", "paid").await;
    assert_eq!(waiting.meeting_link, None);

    // Paid never goes back to pending.
    let refused = t
        .set_payment_status(&first.id, "pending")
        .await
        .unwrap_err();
    assert_eq!(refused.why(), (StatusCode::CONFLICT, "invalid_transition"));
    assert_eq!(
        t.booking(&first.id).await.meeting_link.as_deref(),
        Some(ONLY)
    );

    // A refund releases the link and the waiting booking gets it at once.
    let refunded = t.set_payment_status(&first.id, "refunded").await.unwrap();
    assert_eq!(
        (refunded.payment_status.as_str(), refunded.meeting_link),
        ("refunded", None)
    );
    assert_eq!(
        t.booking(&waiting.id).await.meeting_link.as_deref(),
        Some(ONLY)
    );
    assert_eq!(
        t.event_kinds(&first.id).await,
        ["created", "assigned", "payment", "released"]
    );
    assert_eq!(
        t.event_kinds(&waiting.id).await,
        ["created", "pool_exhausted", "assigned"]
    );

    let refused = t.set_payment_status(&first.id, "paid").await.unwrap_err();
    assert_eq!(refused.why(), (StatusCode::CONFLICT, "invalid_transition"));
    let refused = t.set_payment_status(&first.id, "bogus").await.unwrap_err();
    assert_eq!(refused.status, UNPROCESSABLE);
}

async fn links_that_bookings_reference_cannot_be_deleted(t: TestApp) {
    let used = t.add_link("https://meet.google.com/used").await;
    let spare = t.add_link("https://meet.google.com/spare").await;
    let st = t.create_session_type(60).await;
    t.create_booking(&st, "2027-12-01", "14:00", "paid").await;
    let refused = t.delete_link(&used.id).await.unwrap_err();
    assert_eq!(refused.why(), (StatusCode::CONFLICT, "link_in_use"));
    t.delete_link(&spare.id).await.unwrap();
    let (s, _) = t.get(&format!("/api/links/{}", spare.id)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let noted = t
        .update_link(&used.id, json!({"notes": "main room"}))
        .await
        .unwrap();
    assert_eq!(noted.notes.as_deref(), Some("main room"));
    let cleared = t
        .update_link(&used.id, json!({"notes": null}))
        .await
        .unwrap();
    assert_eq!(cleared.notes, None);
    assert_eq!(t.recent_assignments(5).await.len(), 1);
}

async fn health_and_readiness(t: TestApp) {
    for path in ["/healthz", "/readyz"] {
        let res = t.http.get(t.url(path)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
    }
    let res = t.http.get(t.url("/nowhere")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

async fn the_date_filter_is_the_platforms_local_day(b: Backend) {
    let t = TestApp::start_with(b, |c| {
        c.set_timezone("Asia/Jakarta").unwrap();
    })
    .await;
    let st = t.create_session_type(60).await;
    // 00:30 and 23:30 in Jakarta on 2 Dec are 1 Dec 17:30 UTC and 2 Dec 16:30 UTC.
    let early = t
        .create_booking(&st, "2027-12-02", "00:30", "pending")
        .await;
    let late = t
        .create_booking(&st, "2027-12-02", "23:30", "pending")
        .await;
    t.create_booking(&st, "2027-12-01", "23:30", "pending")
        .await;
    t.create_booking(&st, "2027-12-03", "00:00", "pending")
        .await;
    let listed = t.bookings("date=2027-12-02").await.unwrap();
    assert_eq!(listed, [early, late]);
}
