//! Zoom: a meeting ended, checked and created as its API documents.
use std::time::Duration;

use meetpool_conformance::eventually;
use meetpool_conformance::providers::FakeZoom;
use meetpool_conformance::{Backend, TestApp};

use super::{at, mins, provider_outcomes, quick};

on_both!(zoom_meetings_are_ended_checked_and_created);

async fn zoom_meetings_are_ended_checked_and_created(backend: Backend) {
    let zoom = FakeZoom::start().await;
    let config = zoom.config();
    let t = TestApp::start_with(backend, |c| {
        quick(c);
        c.rooms.zoom = Some(config);
        c.rooms.check_every = Some(Duration::from_millis(200));
        c.rooms.grow_max = 1;
    })
    .await;
    let used = t.add_link(&zoom.room("81234567890")).await;
    let gone = t.add_link(&zoom.room("82345678901")).await;
    let st = t.create_session_type(60).await;
    let (date, time) = at(mins(90));
    let ended = t.create_booking(&st, &date, &time, "paid").await;
    assert_eq!(ended.meeting_link_id.as_deref(), Some(used.id.as_str()));
    zoom.forget("82345678901");

    eventually(
        "the meeting ended and the gone one disabled",
        Duration::from_secs(10),
        || async {
            provider_outcomes(&t, &ended.id).await == ["end:ended"]
                && !t.link(&gone.id).await.is_available
        },
    )
    .await;
    let end = &zoom.calls_to("PUT", "/v2/meetings/81234567890/status")[0];
    assert_eq!(end.body, serde_json::json!({"action": "end"}));
    assert_eq!(zoom.ends("81234567890"), 1);
    let token = &zoom.calls_to("POST", "/oauth/token")[0];
    assert_eq!(token.body["grant_type"], "account_credentials");
    assert_eq!(
        t.metric("meetpool_alerts_total{kind=\"room.gone\"}").await,
        1
    );

    // Two coming sessions at once, one room enabled: a meeting is created
    // for the second, recurring with no fixed time, its password kept.
    let one = t.create_booking(&st, "2031-03-04", "10:00", "paid").await;
    let two = t.create_booking(&st, "2031-03-04", "10:00", "paid").await;
    assert!(one.meeting_link_id.is_some() && two.meeting_link_id.is_none());
    eventually(
        "the second gets a created meeting",
        Duration::from_secs(10),
        || async { t.booking(&two.id).await.meeting_link_id.is_some() },
    )
    .await;
    let link = t.booking(&two.id).await.meeting_link.unwrap();
    assert!(
        link.contains("zoom.us/j/") && link.contains("pwd="),
        "{link}"
    );
    let create = &zoom.calls_to("POST", "/v2/users/me/meetings")[0];
    assert_eq!(create.body["type"], 3);
}
