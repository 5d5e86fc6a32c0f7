//! A provider that fails, hangs or limits its rate never holds up a payment
//! or another provider's work; nothing is lost across a restart; an expired
//! token is refreshed once.
use std::time::{Duration, Instant};

use meetpool_conformance::eventually;
use meetpool_conformance::providers::{FakeMeet, FakeZoom};
use meetpool_conformance::{Backend, TestApp};

use super::{at, mins, provider_outcomes, quick};

on_both!(
    a_failing_provider_never_holds_up_a_payment,
    a_hanging_provider_holds_up_only_its_own_actions,
    a_rate_limited_or_failing_provider_is_retried_later,
    a_restart_loses_no_pending_provider_action,
    an_expired_token_is_refreshed_once,
);

async fn a_failing_provider_never_holds_up_a_payment(backend: Backend) {
    let meet = FakeMeet::start().await;
    let google = meet.config();
    let t = TestApp::start_with(backend, |c| {
        quick(c);
        c.rooms.google = Some(google);
        c.rooms.grow_max = 2;
        c.rooms.timeout = Duration::from_secs(30);
    })
    .await;
    let st = t.create_session_type(60).await;
    let room = t.add_link(&meet.room("abc-defg-hij")).await;

    // The provider hangs: a payment answers at once all the same.
    meet.hang();
    let (date, time) = at(mins(90));
    t.create_booking(&st, &date, &time, "paid").await;
    let started = Instant::now();
    let paid = t
        .create_booking(&st, "2031-03-04", "10:00", "pending")
        .await;
    let paid = t.set_payment_status(&paid.id, "paid").await.unwrap();
    assert_eq!(paid.meeting_link_id.as_deref(), Some(room.id.as_str()));
    let waiting = t
        .create_booking(&st, "2031-03-04", "10:00", "pending")
        .await;
    let waiting = t.set_payment_status(&waiting.id, "paid").await.unwrap();
    assert_eq!(waiting.meeting_link_id, None, "the pool is exhausted");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "payments answered in {:?} while the provider hangs",
        started.elapsed()
    );
}

async fn a_hanging_provider_holds_up_only_its_own_actions(backend: Backend) {
    let meet = FakeMeet::start().await;
    let zoom = FakeZoom::start().await;
    let (google, zoom_config) = (meet.config(), zoom.config());
    let t = TestApp::start_with(backend, |c| {
        quick(c);
        c.rooms.google = Some(google);
        c.rooms.zoom = Some(zoom_config);
        c.rooms.timeout = Duration::from_secs(60);
    })
    .await;
    t.add_link(&meet.room("abc-defg-hij")).await;
    let st = t.create_session_type(60).await;
    meet.hang();
    let (date, time) = at(mins(90));
    t.create_booking(&st, &date, &time, "paid").await;
    meet.wait_until("Meet's call under way", |calls| !calls.is_empty())
        .await;
    // Meet hangs for a minute; Zoom's work goes on meanwhile.
    t.add_link(&zoom.room("81234567890")).await;
    let (date, time) = at(mins(80));
    let at_zoom = t.create_booking(&st, &date, &time, "paid").await;
    eventually(
        "Zoom's meeting ended while Meet hangs",
        Duration::from_secs(10),
        || async { provider_outcomes(&t, &at_zoom.id).await == ["end:ended"] },
    )
    .await;
    assert_eq!(zoom.ends("81234567890"), 1);
}

async fn a_rate_limited_or_failing_provider_is_retried_later(backend: Backend) {
    let meet = FakeMeet::start().await;
    let google = meet.config();
    let t = TestApp::start_with(backend, |c| {
        quick(c);
        c.rooms.google = Some(google);
        c.rooms.grow_max = 1;
    })
    .await;
    let st = t.create_session_type(60).await;
    meet.fail_with(500, None);
    let started = Instant::now();
    let waiting = t.create_booking(&st, "2031-03-04", "10:00", "paid").await;
    assert!(started.elapsed() < Duration::from_secs(5));
    meet.wait_until("two failed attempts", |calls| {
        calls
            .iter()
            .filter(|c| c.path == "/v2/spaces" && c.status == 500)
            .count()
            >= 2
    })
    .await;
    // Rate-limited next: the wait the provider asks for is kept.
    meet.fail_with(429, Some(1));
    let limited = meet
        .wait_until("a rate-limited attempt", |calls| {
            calls.iter().any(|c| c.status == 429)
        })
        .await
        .len();
    let asked = Instant::now();
    meet.recover();
    eventually(
        "the booking gets its room once the provider recovers",
        Duration::from_secs(10),
        || async { t.booking(&waiting.id).await.meeting_link_id.is_some() },
    )
    .await;
    assert!(
        asked.elapsed() >= Duration::from_millis(700),
        "Retry-After: 1 was kept"
    );
    assert!(meet.calls().len() > limited);
    assert!(
        t.metric("meetpool_provider_actions_total{provider=\"google_meet\",action=\"create\",outcome=\"retried\"}")
            .await
            >= 3
    );
    assert_eq!(meet.created(), 1);
}

async fn a_restart_loses_no_pending_provider_action(backend: Backend) {
    let meet = FakeMeet::start().await;
    let google = meet.config();
    let t = TestApp::start_with(backend, |c| {
        quick(c);
        c.rooms.google = Some(google);
        c.rooms.grow_max = 1;
    })
    .await;
    t.add_link(&meet.room("abc-defg-hij")).await;
    let st = t.create_session_type(60).await;
    meet.fail_with(503, None);
    let (date, time) = at(mins(90));
    let ended = t.create_booking(&st, &date, &time, "paid").await;
    let waiting_at = t.create_booking(&st, "2031-03-04", "10:00", "paid").await;
    let waiting = t.create_booking(&st, "2031-03-04", "10:00", "paid").await;
    assert!(waiting_at.meeting_link_id.is_some() && waiting.meeting_link_id.is_none());
    meet.wait_until("the end and the create attempted", |calls| {
        calls
            .iter()
            .any(|c| c.path == "/v2/spaces" && c.status == 503)
            && calls
                .iter()
                .any(|c| c.path == "/v2/spaces/abc-defg-hij" && c.status == 503)
    })
    .await;

    let t = t.restart().await;
    meet.recover();
    eventually(
        "the end and the created room, after the restart",
        Duration::from_secs(10),
        || async {
            provider_outcomes(&t, &ended.id).await == ["end:ended"]
                && t.booking(&waiting.id).await.meeting_link_id.is_some()
        },
    )
    .await;
    assert_eq!(meet.ends("abc-defg-hij"), 1);
    assert_eq!(meet.created(), 1);
}

async fn an_expired_token_is_refreshed_once(backend: Backend) {
    let meet = FakeMeet::start().await;
    let google = meet.config();
    let t = TestApp::start_with(backend, |c| {
        quick(c);
        c.rooms.google = Some(google);
    })
    .await;
    t.add_link(&meet.room("abc-defg-hij")).await;
    let st = t.create_session_type(60).await;
    let (date, time) = at(mins(150));
    let first = t.create_booking(&st, &date, &time, "paid").await;
    eventually("the first end", Duration::from_secs(10), || async {
        provider_outcomes(&t, &first.id).await == ["end:ended"]
    })
    .await;
    assert_eq!(meet.tokens_issued(), 1, "the token is kept between calls");

    meet.expire_tokens();
    let (date, time) = at(mins(90));
    let second = t.create_booking(&st, &date, &time, "paid").await;
    eventually("the second end", Duration::from_secs(10), || async {
        provider_outcomes(&t, &second.id).await == ["end:ended"]
    })
    .await;
    assert_eq!(meet.tokens_issued(), 2, "one refresh after the 401");
    assert_eq!(
        meet.calls().iter().filter(|c| c.status == 401).count(),
        1,
        "the call refused was made again once with the new token"
    );
}
