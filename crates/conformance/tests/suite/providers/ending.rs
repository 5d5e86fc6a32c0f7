//! Ending a session's conference at the provider: once, after its end and
//! the grace, by one replica, and not when the room's next session began.
use std::time::Duration;

use meetpool_conformance::eventually;
use meetpool_conformance::providers::FakeMeet;
use meetpool_conformance::{Backend, TestApp};

use super::{at, mins, provider_outcomes, quick};

on_both!(
    meet_ended_once_after_its_end_and_grace,
    two_replicas_end_each_conference_once,
    meet_left_on_when_the_next_session_began,
);

async fn meet_ended_once_after_its_end_and_grace(backend: Backend) {
    let meet = FakeMeet::start().await;
    let google = meet.config();
    let t = TestApp::start_with(backend, |c| {
        quick(c);
        c.rooms.google = Some(google);
        c.rooms.end_grace = Some(Duration::from_secs(30 * 60));
    })
    .await;
    let earlier = t.add_link(&meet.room("abc-defg-hij")).await;
    let later = t.add_link(&meet.room("klm-nopq-rst")).await;
    let st = t.create_session_type(60).await;
    // Imported already paid: one session ended 40 minutes ago (past the
    // 30-minute grace), one 10 minutes ago (within it).
    let (date, time) = at(mins(100));
    let ended = t.create_booking(&st, &date, &time, "paid").await;
    assert_eq!(ended.meeting_link_id.as_deref(), Some(earlier.id.as_str()));
    let (date, time) = at(mins(70));
    let recent = t.create_booking(&st, &date, &time, "paid").await;
    assert_eq!(recent.meeting_link_id.as_deref(), Some(later.id.as_str()));

    eventually(
        "the conference of the session past its grace is ended",
        Duration::from_secs(10),
        || async { provider_outcomes(&t, &ended.id).await == ["end:ended"] },
    )
    .await;
    // Resolved by its meeting code, ended by the space's own name, with
    // an empty body, once.
    assert_eq!(meet.calls_to("GET", "/v2/spaces/abc-defg-hij").len(), 1);
    assert_eq!(meet.ends("abc-defg-hij"), 1);
    t.app.rooms_round().await;
    t.app.rooms_round().await;
    assert_eq!(meet.ends("abc-defg-hij"), 1, "sent once per session");
    assert_eq!(
        meet.ends("klm-nopq-rst"),
        0,
        "not before its end plus the grace"
    );
    assert!(provider_outcomes(&t, &recent.id).await.is_empty());
    assert_eq!(
        t.metric("meetpool_provider_actions_total{provider=\"google_meet\",action=\"end\",outcome=\"ended\"}")
            .await,
        1
    );
    // The refresh token was exchanged as Google's token endpoint expects.
    let token = &meet.calls_to("POST", "/token")[0];
    assert_eq!(token.body["grant_type"], "refresh_token");
}

async fn two_replicas_end_each_conference_once(backend: Backend) {
    let meet = FakeMeet::start().await;
    let google = meet.config();
    let t = TestApp::start_with(backend, |c| {
        quick(c);
        c.rooms.google = Some(google);
        // Rounds only when the test runs them, all at once.
        c.rooms.poll = Duration::from_secs(3600);
    })
    .await;
    let other = t.replica().await;
    let codes = [
        "aaa-bbbb-ccc",
        "ddd-eeee-fff",
        "ggg-hhhh-iii",
        "jjj-kkkk-lll",
        "mmm-nnnn-ooo",
    ];
    for code in codes {
        t.add_link(&meet.room(code)).await;
    }
    let st = t.create_session_type(60).await;
    let (date, time) = at(mins(90));
    for _ in codes {
        t.create_booking(&st, &date, &time, "paid").await;
    }
    for _ in 0..3 {
        futures_util::future::join4(
            t.app.rooms_round(),
            other.app.rooms_round(),
            t.app.rooms_round(),
            other.app.rooms_round(),
        )
        .await;
    }
    for code in codes {
        assert_eq!(meet.ends(code), 1, "{code}");
    }
}

async fn meet_left_on_when_the_next_session_began(backend: Backend) {
    let meet = FakeMeet::start().await;
    let google = meet.config();
    let t = TestApp::start_with(backend, |c| {
        quick(c);
        c.rooms.google = Some(google);
    })
    .await;
    t.add_link(&meet.room("abc-defg-hij")).await;
    let st = t.create_session_type(60).await;
    // Back to back on the pool's only room: the first ended 10 minutes
    // ago, the next began then and is under way.
    // (The session under way is imported first, so that the first one's
    // end is never looked at without it.)
    let (date, time) = at(mins(10));
    let next = t.create_booking(&st, &date, &time, "paid").await;
    let (date, time) = at(mins(70));
    let first = t.create_booking(&st, &date, &time, "paid").await;
    assert_eq!(first.meeting_link_id, next.meeting_link_id);

    eventually(
        "the first session's end is decided",
        Duration::from_secs(10),
        || async { !provider_outcomes(&t, &first.id).await.is_empty() },
    )
    .await;
    assert_eq!(
        provider_outcomes(&t, &first.id).await,
        ["end:next_session_began"]
    );
    t.app.rooms_round().await;
    assert_eq!(
        meet.ends("abc-defg-hij"),
        0,
        "the next participants are not cut off"
    );
    assert!(meet.calls_to("POST", ":endActiveConference").is_empty());
}
