//! The time zone and the buffer belong to the install: they change only
//! when told explicitly, every coming session moves with them in the same
//! transaction, and a replica still running with the old ones stops
//! writing rather than give one local time two meanings.
use std::sync::Arc;
use std::time::Duration;

use meetpool_app::{App, AppError, Config};
use meetpool_conformance::{eventually, TestApp};
use reqwest::StatusCode;

on_both!(
    changing_the_settings_is_said_explicitly_and_moves_coming_sessions,
    a_replica_whose_settings_changed_under_it_stops_writing,
);

const ROOM: &str = "https://meet.google.com/kcw-ebey-pqu";

/// Another process on the same database, configured by `tweak`.
async fn another(t: &TestApp, tweak: impl FnOnce(&mut Config)) -> App {
    let store = meetpool_store::connect(&t.db.url, &Default::default())
        .await
        .unwrap();
    let mut config = Config::new("UTC").unwrap();
    tweak(&mut config);
    App::new(Arc::from(store), config)
}

fn jakarta(c: &mut Config) {
    *c = Config::new("Asia/Jakarta").unwrap();
}

async fn changing_the_settings_is_said_explicitly_and_moves_coming_sessions(t: TestApp) {
    t.add_link(ROOM).await;
    let st = t.create_session_type(60).await;
    let booking = t.create_booking(&st, "2030-01-10", "14:00", "paid").await;
    assert_eq!(booking.starts_at, "2030-01-10T14:00:00Z");
    let next = t.create_booking(&st, "2030-01-10", "15:00", "paid").await;

    // Different settings, not said explicitly: refused, with what they
    // would move, and nothing changes.
    let refused = another(&t, jakarta)
        .await
        .prepare_database(false)
        .await
        .unwrap_err();
    let AppError::NotConfigured(why) = refused else {
        panic!("{refused:?}")
    };
    for needle in [
        "Asia/Jakarta",
        "UTC",
        "2 coming bookings",
        "--change-settings",
    ] {
        assert!(why.contains(needle), "{needle} not in: {why}");
    }
    assert_eq!(
        t.booking(&booking.id).await.starts_at,
        "2030-01-10T14:00:00Z"
    );
    // Without settings of its own a process takes the database's (as the
    // CLI does): nothing to refuse.
    another(&t, |_| {})
        .await
        .prepare_database(false)
        .await
        .unwrap();

    // Said explicitly: the local time stays, its instant moves with the
    // zone, and the session keeps its link and its length.
    another(&t, jakarta)
        .await
        .prepare_database(true)
        .await
        .unwrap();
    let moved = another(&t, jakarta).await;
    let b = moved.booking(booking.id.parse().unwrap()).await.unwrap();
    assert_eq!(b.window.start.to_string(), "2030-01-10T07:00:00Z");
    assert_eq!(b.window.end.to_string(), "2030-01-10T08:00:00Z");
    assert_eq!(b.booking_time.to_string(), "14:00:00");
    assert!(b.meeting_link_id.is_some());
    assert_eq!(t.overlaps().await, 0);

    // A buffer that would make two sessions on one link collide is
    // refused whole.
    let next = moved.booking(next.id.parse().unwrap()).await.unwrap();
    assert_eq!(next.window.start.to_string(), "2030-01-10T08:00:00Z");
    assert_eq!(
        next.meeting_link_id, b.meeting_link_id,
        "one link, back to back"
    );
    let refused = another(&t, |c| {
        jakarta(c);
        c.buffer_minutes = 15;
    })
    .await
    .prepare_database(true)
    .await
    .unwrap_err();
    assert!(
        refused.to_string().contains("overlapping")
            || matches!(refused, AppError::NotConfigured(ref w) if w.contains("overlapping")),
        "{refused:?}"
    );
    let held = moved.store().stored_settings().await.unwrap().unwrap();
    assert_eq!(
        (held.timezone.as_str(), held.buffer_minutes),
        ("Asia/Jakarta", 0)
    );
}

async fn a_replica_whose_settings_changed_under_it_stops_writing(t: TestApp) {
    t.add_link(ROOM).await;
    let st = t.create_session_type(60).await;
    t.create_booking(&st, "2030-01-10", "14:00", "paid").await;
    let (status, _) = t.get("/readyz").await;
    assert_eq!(status, StatusCode::OK);

    // Another replica changes the settings for everyone.
    another(&t, jakarta)
        .await
        .prepare_database(true)
        .await
        .unwrap();

    // This one, still on UTC, says so and writes nothing.
    eventually("not ready", Duration::from_secs(10), || async {
        t.get("/readyz").await.0 == StatusCode::SERVICE_UNAVAILABLE
    })
    .await;
    let (_, body) = t.get("/readyz").await;
    let reason = body["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("changed under this replica") && reason.contains("Asia/Jakarta"),
        "{body}"
    );
    let (status, answer) = t
        .post(
            "/api/bookings",
            serde_json::json!({
                "order_id": "AFTER-CHANGE", "user_id": "u", "expert_id": "e",
                "session_type_id": st.id, "booking_date": "2030-01-11",
                "booking_time": "14:00", "price": 100000,
            }),
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
    assert_eq!(answer["error"]["code"], "not_configured", "{answer}");
    let (_, list) = t.get("/api/bookings?limit=100").await;
    assert!(
        !list.to_string().contains("AFTER-CHANGE"),
        "nothing was written"
    );
}
