//! Text fields answer alike on both stores: a control character (a NUL
//! byte, which PostgreSQL cannot store, included) or an over-long value is
//! refused with 422 and changes nothing.
use meetpool_conformance::TestApp;
use reqwest::StatusCode;
use serde_json::{json, Value};

on_both!(control_characters_and_overlong_text_are_refused_alike);

async fn control_characters_and_overlong_text_are_refused_alike(t: TestApp) {
    let st = t.create_session_type(60).await.id;
    let link = t.add_link("https://meet.google.com/abc-defg-hij").await.id;
    let booking = json!({"order_id": "O-1", "user_id": "u", "expert_id": "e", "session_type_id": st,
                         "booking_date": "2030-01-02", "booking_time": "10:00", "price": 1});
    let long = "x".repeat(201);
    let refused = |what: &str, (s, e): (StatusCode, Value), code: &str| {
        assert_eq!(
            (s, e["error"]["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some(code)),
            "{what}: {e}"
        );
    };
    for bad in ["nul\u{0}byte", "bell\u{7}", long.as_str()] {
        for (field, code) in [
            ("user_id", "invalid_user_id"),
            ("expert_id", "invalid_expert_id"),
            ("status", "invalid_status"),
            ("order_id", "invalid_order_id"),
        ] {
            let mut body = booking.clone();
            body[field] = json!(bad);
            refused(field, t.post("/api/bookings", body).await, code);
        }
        refused(
            "name",
            t.post("/api/session-types", json!({"name": bad, "duration": 30}))
                .await,
            "invalid_name",
        );
        refused(
            "name",
            t.patch(&format!("/api/session-types/{st}"), json!({"name": bad}))
                .await,
            "invalid_name",
        );
    }
    for bad in ["nul\u{0}byte".to_owned(), "x".repeat(2001)] {
        refused(
            "notes",
            t.post(
                "/api/links",
                json!({"meeting_link": "https://meet.google.com/xyz-abcd-efg", "notes": bad}),
            )
            .await,
            "invalid_notes",
        );
        refused(
            "notes",
            t.patch(&format!("/api/links/{link}"), json!({"notes": bad}))
                .await,
            "invalid_notes",
        );
    }
    // Notes may span lines.
    let (s, l) = t
        .patch(
            &format!("/api/links/{link}"),
            json!({"notes": "room 1\nsecond floor"}),
        )
        .await;
    assert_eq!(
        (s, l["notes"].as_str()),
        (StatusCode::OK, Some("room 1\nsecond floor"))
    );

    // Nothing else was stored.
    assert_eq!(t.get("/api/bookings").await.1, json!([]));
    assert_eq!(t.get("/api/links").await.1.as_array().unwrap().len(), 1);
    let types = t.get("/api/session-types").await.1;
    assert_eq!(types.as_array().unwrap().len(), 1);
    assert_eq!(types[0]["name"], "60 min");
}
