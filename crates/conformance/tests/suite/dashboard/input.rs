//! What operators and platforms write, shown as written: notes, names
//! written right to left; a day outside the supported years refused.
use meetpool_conformance::TestApp;
use reqwest::StatusCode;

use super::{Visitor, ROOM};

on_both!(
    notes_saved_on_the_dashboard_keep_their_lines_and_the_apis_limit,
    names_written_right_to_left_are_isolated_on_the_booking_page,
    a_day_outside_the_supported_years_is_refused_in_words,
);

async fn notes_saved_on_the_dashboard_keep_their_lines_and_the_apis_limit(t: TestApp) {
    let link = t.add_link(ROOM).await;
    let v = Visitor::signed_in(&t).await;
    let page = v.get("/admin/links").await;
    // A multi-line field, as long as the API allows.
    let field = format!(
        r#"<textarea id="notes-{}" name="notes" rows="2" maxlength="2000">"#,
        link.id
    );
    assert!(page.body.contains(&field), "{}", page.body);
    assert!(page
        .body
        .contains(r#"<textarea id="new-notes" name="notes" rows="2" maxlength="2000">"#));

    // A browser sends a text area's line breaks as CR LF.
    let csrf = page.csrf();
    let path = format!("/admin/links/{}/notes", link.id);
    let answer = v
        .post(
            &path,
            &[("csrf", &csrf), ("notes", "room 1\r\nsecond floor")],
        )
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    assert_eq!(
        t.link(&link.id).await.notes.as_deref(),
        Some("room 1\nsecond floor")
    );
    let shown = v.get("/admin/links").await;
    assert!(
        shown
            .body
            .contains(&format!("{field}room 1\nsecond floor</textarea>")),
        "{}",
        shown.body
    );

    // The API's limit, no less and no more.
    let long = "n".repeat(2000);
    let answer = v.post(&path, &[("csrf", &csrf), ("notes", &long)]).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    assert_eq!(t.link(&link.id).await.notes.as_deref(), Some(long.as_str()));
    let longer = "n".repeat(2001);
    let answer = v.post(&path, &[("csrf", &csrf), ("notes", &longer)]).await;
    assert_eq!(
        answer.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        answer.body
    );
    assert_eq!(t.link(&link.id).await.notes.as_deref(), Some(long.as_str()));
}

async fn names_written_right_to_left_are_isolated_on_the_booking_page(t: TestApp) {
    t.add_link(ROOM).await;
    let st = t.create_session_type(60).await;
    let booking = t
        .try_create_booking(serde_json::json!({
            "order_id": "ORDER-7", "user_id": "مستخدم-1", "expert_id": "expert-1",
            "session_type_id": st.id, "booking_date": "2031-06-03", "booking_time": "10:00",
            "price": 100000, "payment_status": "paid", "status": "مؤكد"
        }))
        .await
        .unwrap();
    let v = Visitor::signed_in(&t).await;
    let page = v.get(&format!("/admin/bookings/{}", booking.id)).await;
    assert_eq!(page.status, StatusCode::OK);
    for shown in [
        "<bdi>ORDER-7</bdi>",
        "<bdi>مستخدم-1</bdi>",
        "<bdi>expert-1</bdi>",
        "<bdi>مؤكد</bdi>",
    ] {
        assert!(
            page.body.contains(shown),
            "{shown} not isolated: {}",
            page.body
        );
    }
    let queue_day = v.get("/admin/day?date=2031-06-03").await;
    assert!(
        queue_day.body.contains("<bdi>ORDER-7</bdi>"),
        "{}",
        queue_day.body
    );
}

async fn a_day_outside_the_supported_years_is_refused_in_words(t: TestApp) {
    let v = Visitor::signed_in(&t).await;
    for far in ["0001-01-01", "9999-12-30", "9999-12-31"] {
        let page = v.get(&format!("/admin/day?date={far}")).await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{far}");
        assert!(
            page.body.contains("outside the supported range"),
            "{}",
            page.body
        );
    }
    let last = v.get("/admin/day?date=2199-12-31").await;
    assert_eq!(last.status, StatusCode::OK, "{}", last.body);
}
