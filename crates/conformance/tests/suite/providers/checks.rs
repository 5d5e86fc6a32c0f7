//! Checking that rooms still exist (gone only on the provider's own word),
//! and growing an exhausted pool by a room created at the provider.
use std::time::Duration;

use meetpool_conformance::eventually;
use meetpool_conformance::providers::{FakeMeet, FakeZoom};
use meetpool_conformance::{Backend, TestApp};

use super::quick;

on_both!(
    a_room_gone_at_the_provider_is_disabled_and_its_sessions_move,
    a_404_that_is_not_the_provider_s_word_disables_nothing,
    an_exhausted_pool_grows_by_a_created_room,
);

async fn a_room_gone_at_the_provider_is_disabled_and_its_sessions_move(backend: Backend) {
    let meet = FakeMeet::start().await;
    let google = meet.config();
    let t = TestApp::start_with(backend, |c| {
        quick(c);
        c.rooms.google = Some(google);
    })
    .await;
    let gone = t.add_link(&meet.room("abc-defg-hij")).await;
    let kept = t.add_link(&meet.room("klm-nopq-rst")).await;
    let other = t.add_link("https://whereby.com/meetpool-room").await;
    let st = t.create_session_type(60).await;
    let coming = t.create_booking(&st, "2031-03-04", "10:00", "paid").await;
    assert_eq!(coming.meeting_link_id.as_deref(), Some(gone.id.as_str()));
    meet.forget("abc-defg-hij");

    // What `meetpool links check` does.
    let checks = t.app.check_rooms().await.unwrap();
    assert_eq!(
        checks.len(),
        2,
        "only the rooms of a configured provider: {checks:?}"
    );
    assert!(!t.link(&gone.id).await.is_available);
    assert!(t.link(&kept.id).await.is_available);
    assert!(
        t.link(&other.id).await.is_available,
        "a link of no configured provider is left alone"
    );
    let moved = t.booking(&coming.id).await;
    assert!(
        moved.meeting_link_id.as_deref() == Some(kept.id.as_str())
            || moved.meeting_link_id.as_deref() == Some(other.id.as_str()),
        "the coming session moved: {moved:?}"
    );
    let kinds = t.event_kinds(&coming.id).await;
    assert!(
        kinds.ends_with(&["released".to_owned(), "assigned".to_owned()]),
        "moved as disabling moves sessions: {kinds:?}"
    );
    assert_eq!(
        t.metric("meetpool_alerts_total{kind=\"room.gone\"}").await,
        1
    );
    let (status, trail) = t
        .get(&format!("/api/links/{}/provider-actions", gone.id))
        .await;
    assert_eq!(status, reqwest::StatusCode::OK, "{trail}");
    assert_eq!(trail[0]["action"], "check");
    assert_eq!(trail[0]["provider"], "google_meet");
    assert_eq!(trail[0]["status"], "done");
    assert_eq!(trail[0]["outcome"], "gone");
    let (status, _) = t
        .get(&format!(
            "/api/links/{}/provider-actions",
            uuid::Uuid::new_v4()
        ))
        .await;
    assert_eq!(status, reqwest::StatusCode::NOT_FOUND);
    let (status, none) = t
        .get(&format!("/api/links/{}/provider-actions", other.id))
        .await;
    assert_eq!(
        (status, none),
        (reqwest::StatusCode::OK, serde_json::json!([]))
    );
    // Checking again asks about the enabled rooms only.
    let gets = meet.calls_to("GET", "/v2/spaces/abc-defg-hij").len();
    t.app.check_rooms().await.unwrap();
    assert_eq!(meet.calls_to("GET", "/v2/spaces/abc-defg-hij").len(), gets);
    assert_eq!(
        t.metric("meetpool_alerts_total{kind=\"room.gone\"}").await,
        1
    );
}

async fn a_404_that_is_not_the_provider_s_word_disables_nothing(backend: Backend) {
    let meet = FakeMeet::start().await;
    let zoom = FakeZoom::start().await;
    let (google, zoom_config) = (meet.config(), zoom.config());
    let t = TestApp::start_with(backend, |c| {
        quick(c);
        c.rooms.google = Some(google);
        c.rooms.zoom = Some(zoom_config);
    })
    .await;
    let at_meet = t.add_link(&meet.room("abc-defg-hij")).await;
    let at_zoom = t.add_link(&zoom.room("81234567890")).await;
    // As from a proxy or a wrong API base: 404, but not Google's
    // NOT_FOUND nor Zoom's code 3001.
    meet.fail_with(404, None);
    zoom.fail_with(404, None);
    let checks = t.app.check_rooms().await.unwrap();
    assert!(
        checks
            .iter()
            .all(|c| c.last.as_ref().map(|l| l.1.as_str()) == Some("failed")),
        "{checks:?}"
    );
    assert!(t.link(&at_meet.id).await.is_available);
    assert!(t.link(&at_zoom.id).await.is_available);
    assert_eq!(
        t.metric("meetpool_alerts_total{kind=\"room.gone\"}").await,
        0
    );
}

async fn an_exhausted_pool_grows_by_a_created_room(backend: Backend) {
    let meet = FakeMeet::start().await;
    let google = meet.config();
    let t = TestApp::start_with(backend, |c| {
        quick(c);
        c.rooms.google = Some(google);
        c.rooms.grow_max = 1;
    })
    .await;
    let st = t.create_session_type(60).await;
    let first = t.create_booking(&st, "2031-03-04", "10:00", "paid").await;
    assert_eq!(
        first.meeting_link_id, None,
        "no link yet: the pool is empty"
    );

    eventually(
        "the waiting booking gets the created room",
        Duration::from_secs(10),
        || async { t.booking(&first.id).await.meeting_link_id.is_some() },
    )
    .await;
    let got = t.booking(&first.id).await;
    let link = t.link(got.meeting_link_id.as_deref().unwrap()).await;
    assert!(
        link.meeting_link.starts_with("https://meet.google.com/"),
        "{link:?}"
    );
    assert!(
        link.notes
            .as_deref()
            .unwrap_or("")
            .contains("Created by meetpool"),
        "{link:?}"
    );
    let kinds = t.event_kinds(&first.id).await;
    assert!(
        kinds.contains(&"pool_exhausted".to_owned()) && kinds.contains(&"assigned".to_owned()),
        "{kinds:?}"
    );
    let create = &meet.calls_to("POST", "/v2/spaces")[0];
    assert_eq!(create.body["config"]["accessType"], "OPEN");

    // The cap: a second waiting booking at the same time gets no second room.
    let second = t.create_booking(&st, "2031-03-04", "10:00", "paid").await;
    assert_eq!(second.meeting_link_id, None);
    t.app.rooms_round().await;
    t.app.rooms_round().await;
    assert_eq!(meet.created(), 1, "MEETPOOL_POOL_GROW_MAX=1 rooms at most");
    assert_eq!(t.booking(&second.id).await.meeting_link_id, None);
}
