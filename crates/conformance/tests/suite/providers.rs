//! Rooms at the provider: what meetpool does to pooled rooms at Google
//! Meet and Zoom, against local servers that answer as each provider's API
//! reference documents. Ending a session's conference, checking that rooms
//! still exist, creating a room when the pool runs out; never in a
//! payment's way, nothing lost across a restart.
use std::time::{Duration, Instant};

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use meetpool_app::Config;
use meetpool_conformance::providers::{FakeMeet, FakeZoom};
use meetpool_conformance::{test_events, Backend, Receiver, TestApp};

use meetpool_conformance::eventually;

/// Providers configured with short waits: a round every 50 ms, calls
/// given 1 s (so an attempt cut short by a restart is taken again within
/// 4 s), retries every 100 ms for a while.
fn quick(c: &mut Config) {
    c.rooms.poll = Duration::from_millis(50);
    c.rooms.timeout = Duration::from_secs(1);
    c.rooms.retry = vec![Duration::from_millis(100); 100];
    c.rooms.check_every = None;
    c.rooms.end_grace = Some(Duration::from_millis(1));
    c.rooms.attendance_after = None;
}

/// The local date and time (the tests' zone is UTC) of `ago` before now.
fn at(ago: SignedDuration) -> (String, String) {
    let z = (Timestamp::now() - ago).to_zoned(TimeZone::UTC);
    (
        z.date().to_string(),
        format!("{:02}:{:02}", z.hour(), z.minute()),
    )
}

fn mins(n: i64) -> SignedDuration {
    SignedDuration::from_mins(n)
}

/// The outcomes of the provider actions on a booking's trail.
async fn provider_outcomes(t: &TestApp, booking: &str) -> Vec<String> {
    t.events(booking)
        .await
        .into_iter()
        .filter(|e| e.kind == "provider_action")
        .map(|e| {
            format!(
                "{}:{}",
                e.detail["action"].as_str().unwrap_or(""),
                e.detail["outcome"].as_str().unwrap_or("")
            )
        })
        .collect()
}

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

async fn a_meet_session_s_attendance_is_put_on_the_booking(backend: Backend) {
    let meet = FakeMeet::start().await;
    let receiver = Receiver::start().await;
    let google = meet.config();
    let t = TestApp::start_with(backend, |c| {
        quick(c);
        c.rooms.google = Some(google);
        c.rooms.attendance_after = Some(Duration::ZERO);
        c.events = Some(test_events(&receiver.url, |_| {}));
    })
    .await;
    t.add_link(&meet.room("abc-defg-hij")).await;
    t.add_link(&meet.room("klm-nopq-rst")).await;
    let st = t.create_session_type(60).await;
    let (date, time) = at(mins(90));
    let start: Timestamp = format!("{date}T{time}:00Z").parse().unwrap();
    let end = start + mins(60);
    // Two participants: one from 5 minutes early to 40 minutes in, one
    // from 10 minutes in to past the end; together, 5 minutes early to
    // the end. The other room's session was held by nobody.
    meet.conference(
        "abc-defg-hij",
        start - mins(5),
        Some(end + mins(2)),
        &[
            (start - mins(5), Some(start + mins(40))),
            (start + mins(10), Some(end + mins(2))),
        ],
    );
    let attended = t.create_booking(&st, &date, &time, "paid").await;
    let no_show = t.create_booking(&st, &date, &time, "paid").await;
    assert_ne!(attended.meeting_link_id, no_show.meeting_link_id);

    let attendance = |id: String| {
        let t = &t;
        async move {
            t.events(&id)
                .await
                .into_iter()
                .find(|e| e.kind == "attendance")
                .map(|e| e.detail)
        }
    };
    eventually(
        "both sessions' attendance is read",
        Duration::from_secs(10),
        || async {
            attendance(attended.id.clone()).await.is_some()
                && attendance(no_show.id.clone()).await.is_some()
        },
    )
    .await;
    let seen = attendance(attended.id.clone()).await.unwrap();
    assert_eq!(seen["joined"], true, "{seen}");
    assert_eq!(seen["participants"], 2, "{seen}");
    assert_eq!(
        seen["minutes"], 65,
        "from 5 minutes early to the end: {seen}"
    );
    let nobody = attendance(no_show.id.clone()).await.unwrap();
    assert_eq!(nobody["joined"], false, "{nobody}");
    assert_eq!(nobody["minutes"], 0);
    // Asked by the space's name and the session's time, as the reference
    // documents the filter.
    let list = &meet.calls_to("GET", "/v2/conferenceRecords")[0];
    assert!(
        list.body["filter"]
            .as_str()
            .unwrap()
            .starts_with("space.name = \"spaces/"),
        "{list:?}"
    );

    // The platform hears it, once per booking.
    let told = receiver
        .wait_until("booking.attendance for both", |d| {
            d.iter()
                .filter(|d| d.accepted && d.kind() == "booking.attendance")
                .count()
                >= 2
        })
        .await;
    let event = told
        .iter()
        .find(|d| d.kind() == "booking.attendance" && d.booking_id() == Some(attended.id.as_str()))
        .unwrap();
    assert_eq!(event.body["data"]["attendance"]["minutes"], 65);
    assert!(event.verified);
    t.app.rooms_round().await;
    assert_eq!(
        t.events(&attended.id)
            .await
            .iter()
            .filter(|e| e.kind == "attendance")
            .count(),
        1
    );
}

on_both!(
    a_meet_session_s_attendance_is_put_on_the_booking,
    meet_ended_once_after_its_end_and_grace,
    meet_left_on_when_the_next_session_began,
    two_replicas_end_each_conference_once,
    a_room_gone_at_the_provider_is_disabled_and_its_sessions_move,
    a_404_that_is_not_the_provider_s_word_disables_nothing,
    an_exhausted_pool_grows_by_a_created_room,
    a_failing_provider_never_holds_up_a_payment,
    a_hanging_provider_holds_up_only_its_own_actions,
    a_rate_limited_or_failing_provider_is_retried_later,
    a_restart_loses_no_pending_provider_action,
    an_expired_token_is_refreshed_once,
    zoom_meetings_are_ended_checked_and_created,
);
