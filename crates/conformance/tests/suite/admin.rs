//! The operator's API: validation that changes nothing, payment changes by
//! hand, links that cannot be deleted, the audit trail.
use meetpool_conformance::{event_kinds, Backend, TestApp};
use reqwest::StatusCode;
use serde_json::json;

on_both!(
    bad_input_is_refused_with_a_reason_and_changes_nothing,
    payment_changes_by_hand_follow_the_state_machine,
    links_that_bookings_reference_cannot_be_deleted,
    health_and_readiness,
    the_date_filter_is_the_platforms_local_day,
);

async fn bad_input_is_refused_with_a_reason_and_changes_nothing(b: Backend) {
    let Some(t) = TestApp::spawn(b).await else {
        return;
    };
    for (body, code) in [
        (json!({"name": "x", "duration": 0}), "invalid_duration"),
        (json!({"name": "x", "duration": 1441}), "invalid_duration"),
        (json!({"name": " ", "duration": 30}), "invalid_name"),
    ] {
        let (s, e) = t.post("/api/session-types", body).await;
        assert_eq!(
            (s, e["error"]["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some(code)),
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
        let (s, e) = t.post("/api/links", json!({"meeting_link": url})).await;
        assert_eq!(
            (s, e["error"]["code"].as_str()),
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                Some("invalid_meeting_link")
            )
        );
    }
    t.add_link("https://meet.google.com/abc").await;
    let (s, e) = t
        .post(
            "/api/links",
            json!({"meeting_link": "https://meet.google.com/abc"}),
        )
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("duplicate_link"))
    );
    assert_eq!(t.get("/api/links").await.1.as_array().unwrap().len(), 1);

    let st = t.session_type(60).await;
    let good = json!({"order_id": "O-1", "user_id": "u", "expert_id": "e", "session_type_id": st,
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
        let (s, e) = t.post("/api/bookings", body).await;
        assert_eq!(
            (s, e["error"]["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some(code)),
            "{field}: {e}"
        );
    }
    let (s, _) = t.post("/api/bookings", json!({"order_id": "O-2"})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "missing fields are malformed");
    let (s, e) = t.get("/api/bookings?date=tomorrow").await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_date"))
    );
    assert_eq!(t.get("/api/bookings").await.1, json!([]));
}

async fn payment_changes_by_hand_follow_the_state_machine(b: Backend) {
    let Some(t) = TestApp::spawn(b).await else {
        return;
    };
    t.add_link("https://meet.google.com/only").await;
    let st = t.session_type(60).await;
    let first = t.booking(&st, "2027-12-01", "14:00", "paid").await;
    let waiting = t.booking(&st, "2027-12-01", "14:30", "paid").await;
    let (fid, wid) = (
        first["id"].as_str().unwrap(),
        waiting["id"].as_str().unwrap(),
    );
    assert!(waiting["meeting_link"].is_null());

    // Paid never goes back to pending.
    let (s, e) = t
        .patch(
            &format!("/api/bookings/{fid}"),
            json!({"payment_status": "pending"}),
        )
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("invalid_transition"))
    );
    assert_eq!(
        t.get_booking(fid).await["meeting_link"],
        "https://meet.google.com/only"
    );

    // A refund releases the link and the waiting booking gets it at once.
    let (s, refunded) = t
        .patch(
            &format!("/api/bookings/{fid}"),
            json!({"payment_status": "refunded"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (
            refunded["payment_status"].as_str(),
            &refunded["meeting_link"]
        ),
        (Some("refunded"), &json!(null))
    );
    assert_eq!(
        t.get_booking(wid).await["meeting_link"],
        "https://meet.google.com/only"
    );
    assert_eq!(
        event_kinds(&t, fid).await,
        vec!["created", "assigned", "payment", "released"]
    );
    assert_eq!(
        event_kinds(&t, wid).await,
        vec!["created", "pool_exhausted", "assigned"]
    );

    let (s, e) = t
        .patch(
            &format!("/api/bookings/{fid}"),
            json!({"payment_status": "paid"}),
        )
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("invalid_transition"))
    );
    let (s, _) = t
        .patch(
            &format!("/api/bookings/{fid}"),
            json!({"payment_status": "bogus"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
}

async fn links_that_bookings_reference_cannot_be_deleted(b: Backend) {
    let Some(t) = TestApp::spawn(b).await else {
        return;
    };
    let used = t.add_link("https://meet.google.com/used").await;
    let spare = t.add_link("https://meet.google.com/spare").await;
    let st = t.session_type(60).await;
    t.booking(&st, "2027-12-01", "14:00", "paid").await;
    let (s, e) = t.delete(&format!("/api/links/{used}")).await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("link_in_use"))
    );
    let (s, _) = t.delete(&format!("/api/links/{spare}")).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = t.get(&format!("/api/links/{spare}")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, l) = t
        .patch(&format!("/api/links/{used}"), json!({"notes": "main room"}))
        .await;
    assert_eq!(
        (s, l["notes"].as_str()),
        (StatusCode::OK, Some("main room"))
    );
    let (_, l) = t
        .patch(&format!("/api/links/{used}"), json!({"notes": null}))
        .await;
    assert!(l["notes"].is_null());
    let (_, recent) = t.get("/api/assignments/recent?limit=5").await;
    assert_eq!(recent.as_array().unwrap().len(), 1);
}

async fn health_and_readiness(b: Backend) {
    let Some(t) = TestApp::spawn(b).await else {
        return;
    };
    for path in ["/healthz", "/readyz"] {
        let res = t.http.get(t.url(path)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
    }
    let res = t.http.get(t.url("/nowhere")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

async fn the_date_filter_is_the_platforms_local_day(b: Backend) {
    let Some(t) = TestApp::spawn_with(b, |c| {
        c.set_timezone("Asia/Jakarta").unwrap();
    })
    .await
    else {
        return;
    };
    let st = t.session_type(60).await;
    // 00:30 and 23:30 in Jakarta on 2 Dec are 1 Dec 17:30 UTC and 2 Dec 16:30 UTC.
    let early = t.booking(&st, "2027-12-02", "00:30", "pending").await;
    let late = t.booking(&st, "2027-12-02", "23:30", "pending").await;
    t.booking(&st, "2027-12-01", "23:30", "pending").await;
    t.booking(&st, "2027-12-03", "00:00", "pending").await;
    let (s, list) = t.get("/api/bookings?date=2027-12-02").await;
    assert_eq!(s, StatusCode::OK, "{list}");
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec![early["id"].as_str().unwrap(), late["id"].as_str().unwrap()]
    );
}
