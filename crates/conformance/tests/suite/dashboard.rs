//! The operator dashboard over plain HTTP, as a browser without script
//! would use it: nothing without signing in, the admin token and nothing
//! else signs in, the session cookie's flags, and no form changes anything
//! without the session's CSRF token.
use std::time::Duration;

use jiff::{Timestamp, ToSpan};
use meetpool_conformance::{eventually, Answer as Reply, Backend, Receiver, TestApp, ADMIN_TOKEN};
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use reqwest::StatusCode;

on_both!(
    every_page_and_form_asks_to_sign_in_first,
    only_the_admin_token_signs_in_and_the_cookie_stays_with_this_site,
    a_form_without_the_sessions_csrf_token_is_refused_and_changes_nothing,
    signing_out_ends_the_session_in_the_browser,
    a_chosen_link_busy_at_that_time_is_refused_on_the_queue_page,
    the_day_page_draws_each_session_on_its_link_and_marks_the_moved_ones,
    the_booking_page_shows_what_the_platform_was_told,
    without_events_the_booking_page_says_none_are_sent,
    the_pages_show_each_room_s_last_check_and_a_session_s_conference,
    notes_saved_on_the_dashboard_keep_their_lines_and_the_apis_limit,
    names_written_right_to_left_are_isolated_on_the_booking_page,
    wrong_sign_ins_from_one_address_are_limited_and_say_when_to_retry,
    a_day_outside_the_supported_years_is_refused_in_words,
);

/// A browser without script: it follows no redirect by itself and keeps
/// the session cookie it is given.
struct Visitor<'a> {
    t: &'a TestApp,
    http: reqwest::Client,
    cookie: Option<String>,
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn location(&self) -> &str {
        self.headers
            .get(LOCATION)
            .map_or("", |v| v.to_str().unwrap())
    }

    fn set_cookie(&self) -> Option<&str> {
        self.headers.get(SET_COOKIE).map(|v| v.to_str().unwrap())
    }

    /// The CSRF token the page's forms carry.
    fn csrf(&self) -> String {
        let at = self
            .body
            .find(r#"name="csrf" value=""#)
            .unwrap_or_else(|| panic!("no form on the page: {}", self.body));
        let rest = &self.body[at + r#"name="csrf" value=""#.len()..];
        rest[..rest.find('"').unwrap()].to_owned()
    }
}

impl<'a> Visitor<'a> {
    fn new(t: &'a TestApp) -> Self {
        Self {
            t,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookie: None,
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Answer {
        let req = match &self.cookie {
            Some(c) => req.header("cookie", c),
            None => req,
        };
        let res = req.send().await.unwrap();
        Answer {
            status: res.status(),
            headers: res.headers().clone(),
            body: res.text().await.unwrap(),
        }
    }

    async fn get(&self, path: &str) -> Answer {
        self.send(self.http.get(self.t.url(path))).await
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> Answer {
        self.send(self.http.post(self.t.url(path)).form(form)).await
    }

    /// Signs in with `token`; keeps the cookie it is given.
    async fn sign_in_with(&mut self, token: &str) -> Answer {
        let answer = self.post("/admin/sign-in", &[("token", token)]).await;
        if let Some(set) = answer.set_cookie() {
            self.cookie = Some(set.split(';').next().unwrap().to_owned());
        }
        answer
    }

    async fn signed_in(t: &'a TestApp) -> Self {
        let mut v = Self::new(t);
        let answer = v.sign_in_with(ADMIN_TOKEN).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
        v
    }
}

const ROOM: &str = "https://meet.google.com/kcw-ebey-pqu";

async fn every_page_and_form_asks_to_sign_in_first(t: TestApp) {
    let link = t.add_link(ROOM).await;
    let v = Visitor::new(&t);
    for page in [
        "/admin",
        "/admin/day",
        "/admin/day?date=2030-01-01",
        "/admin/queue",
        "/admin/links",
        &format!("/admin/bookings/{}", uuid::Uuid::new_v4()),
        "/admin/no-such-page",
    ] {
        let answer = v.get(page).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{page}");
        assert_eq!(answer.location(), "/admin/sign-in", "{page}");
        assert!(!answer.body.contains(ROOM), "{page}: {}", answer.body);
    }
    let disable = format!("/admin/links/{}/availability", link.id);
    let answer = v.post(&disable, &[("enabled", "false")]).await;
    assert_eq!(answer.location(), "/admin/sign-in");
    assert!(t.link(&link.id).await.is_available, "nothing changed");

    let page = v.get("/admin/sign-in").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page
        .body
        .contains(r#"<label for="token">Admin token</label>"#));
    assert!(page.body.contains(r#"type="password""#));
}

async fn only_the_admin_token_signs_in_and_the_cookie_stays_with_this_site(t: TestApp) {
    let mut v = Visitor::new(&t);
    for wrong in [
        "",
        "test-admin-token-",
        "TEST-ADMIN-TOKEN",
        "Bearer test-admin-token",
    ] {
        let answer = v.sign_in_with(wrong).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{wrong:?}");
        assert!(answer.set_cookie().is_none(), "{wrong:?}");
        assert!(answer.body.contains("that is not the admin token"));
    }
    // A made-up or altered cookie is no session.
    v.cookie = Some("meetpool_session=4102444800.abc.def".into());
    assert_eq!(v.get("/admin").await.location(), "/admin/sign-in");

    let answer = v.sign_in_with(ADMIN_TOKEN).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert_eq!(answer.location(), "/admin");
    let cookie = answer.set_cookie().expect("a session cookie");
    let flags: Vec<&str> = cookie.split("; ").skip(1).collect();
    assert_eq!(
        flags,
        [
            "Path=/admin",
            "Max-Age=28800",
            "HttpOnly",
            "SameSite=Strict"
        ],
        "no Secure over plain http: the browser would drop it"
    );
    let page = v.get("/admin").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Pool status"));
    assert_eq!(page.headers["cache-control"], "no-store");
    assert_eq!(page.headers["x-frame-options"], "DENY");
    let missing = v.get("/admin/no-such-page").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.body.contains("The dashboard has no such page."));

    // Behind a proxy that took the request over https.
    let answer = v
        .send(
            v.http
                .post(t.url("/admin/sign-in"))
                .header("x-forwarded-proto", "https")
                .form(&[("token", ADMIN_TOKEN)]),
        )
        .await;
    assert!(answer.set_cookie().unwrap().ends_with("; Secure"));

    // The API's bearer token is not a dashboard session, nor the reverse.
    let bearer = Visitor::new(&t)
        .send(v.http.get(t.url("/admin")).bearer_auth(ADMIN_TOKEN))
        .await;
    assert_eq!(bearer.location(), "/admin/sign-in");
    let api = v.get("/api/links").await;
    assert_eq!(api.status, StatusCode::UNAUTHORIZED);
}

async fn a_form_without_the_sessions_csrf_token_is_refused_and_changes_nothing(t: TestApp) {
    let v = Visitor::signed_in(&t).await;
    let page = v.get("/admin/links").await;
    let csrf = page.csrf();
    let other = Visitor::signed_in(&t).await.get("/admin").await.csrf();
    assert_ne!(csrf, other);

    for form in [
        vec![("meeting_link", ROOM)],
        vec![("meeting_link", ROOM), ("csrf", "")],
        vec![("meeting_link", ROOM), ("csrf", &other)],
        vec![("meeting_link", ROOM), ("csrf", &csrf[1..])],
    ] {
        let answer = v.post("/admin/links", &form).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{form:?}");
        assert!(answer.body.contains("Nothing was changed"));
    }
    assert!(t.links().await.is_empty(), "no link was added");

    let answer = v
        .post("/admin/links", &[("meeting_link", ROOM), ("csrf", &csrf)])
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    let links = t.links().await;
    assert_eq!(links.len(), 1);
    assert_eq!(links[0].meeting_link, ROOM);
    let shown = v.get(answer.location()).await;
    assert!(shown.body.contains("Added meet.google.com/kcw-ebey-pqu."));

    // A duplicate is refused on the page, in words, and changes nothing.
    let answer = v
        .post("/admin/links", &[("meeting_link", ROOM), ("csrf", &csrf)])
        .await;
    assert_eq!(answer.status, StatusCode::CONFLICT);
    assert!(
        answer.body.contains("is already in the pool"),
        "{}",
        answer.body
    );
    assert_eq!(t.links().await.len(), 1);
}

async fn signing_out_ends_the_session_in_the_browser(t: TestApp) {
    let mut v = Visitor::signed_in(&t).await;
    let csrf = v.get("/admin").await.csrf();
    let refused = v.post("/admin/sign-out", &[]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);

    let answer = v.post("/admin/sign-out", &[("csrf", &csrf)]).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert_eq!(answer.location(), "/admin/sign-in");
    let cookie = answer.set_cookie().expect("the cookie is cleared");
    assert!(cookie.starts_with("meetpool_session=;"), "{cookie}");
    assert!(cookie.contains("Max-Age=0"), "{cookie}");
    v.cookie = Some("meetpool_session=".into());
    assert_eq!(v.get("/admin").await.location(), "/admin/sign-in");
}

async fn a_chosen_link_busy_at_that_time_is_refused_on_the_queue_page(t: TestApp) {
    let st = t.create_session_type(60).await;
    let link = t.add_link(ROOM).await;
    let day = (Timestamp::now() + 48.hours())
        .in_tz("UTC")
        .unwrap()
        .date()
        .to_string();
    let holder = t.create_booking(&st, &day, "10:00", "paid").await;
    assert_eq!(holder.meeting_link_id.as_deref(), Some(link.id.as_str()));
    let waiting = t.create_booking(&st, &day, "10:30", "paid").await;
    assert_eq!(waiting.meeting_link_id, None);

    let v = Visitor::signed_in(&t).await;
    let queue = v.get("/admin/queue").await;
    assert!(queue.body.contains(&waiting.order_id));
    assert!(queue.body.contains("kcw-ebey-pqu — busy then"));
    let csrf = queue.csrf();
    let assign = format!("/admin/bookings/{}/assign", waiting.id);
    let answer = v
        .post(&assign, &[("link", &link.id), ("csrf", &csrf)])
        .await;
    assert_eq!(answer.status, StatusCode::CONFLICT);
    assert!(
        answer.body.contains("is held by booking") && answer.body.contains("Nothing was changed"),
        "{}",
        answer.body
    );
    assert_eq!(t.booking(&waiting.id).await.meeting_link_id, None);
    let answer = v.post(&assign, &[("csrf", &csrf)]).await;
    assert_eq!(answer.status, StatusCode::CONFLICT);
    assert!(answer.body.contains("No link is free for order"));

    // Once the holder moves away, the same choice is taken.
    t.update_booking(&holder.id, serde_json::json!({ "booking_time": "15:00" }))
        .await
        .unwrap();
    let answer = v
        .post(&assign, &[("link", &link.id), ("csrf", &csrf)])
        .await;
    // The reschedule's freed time went to the waiting booking already, or
    // the operator's choice gave it: either way it holds the link now.
    assert!(answer.status == StatusCode::SEE_OTHER, "{}", answer.body);
    assert_eq!(
        t.booking(&waiting.id).await.meeting_link_id.as_deref(),
        Some(link.id.as_str())
    );
}

/// The bar of `booking` on the day page, as drawn: `<rect class="KIND"
/// data-booking="ID"`, inside its link's row.
fn bar_kind(page: &str, link: &str, booking: &str) -> Option<String> {
    let row = page.find(&format!(r#"<g data-link="{link}""#))?;
    let row = &page[row..page[row..].find("</g>").map(|end| row + end)?];
    let at = row.find(&format!(r#"data-booking="{booking}""#))?;
    let class = row[..at].rfind(r#"<rect class=""#)? + r#"<rect class=""#.len();
    Some(row[class..class + row[class..].find('"')?].to_owned())
}

async fn the_day_page_draws_each_session_on_its_link_and_marks_the_moved_ones(t: TestApp) {
    let st = t.create_session_type(60).await;
    let first = t.add_link(ROOM).await;
    let second = t.add_link("https://meet.google.com/ppt-myeq-puu").await;
    let day = (Timestamp::now() + 48.hours())
        .in_tz("UTC")
        .unwrap()
        .date()
        .to_string();
    let morning = t.create_booking(&st, &day, "09:00", "paid").await;
    let late = t.create_booking(&st, &day, "23:30", "paid").await;
    let pending = t.create_booking(&st, &day, "12:00", "pending").await;
    assert_eq!(morning.meeting_link_id.as_deref(), Some(first.id.as_str()));

    let v = Visitor::signed_in(&t).await;
    let page = v.get(&format!("/admin/day?date={day}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(
        bar_kind(&page.body, &first.id, &morning.id).as_deref(),
        Some("paid")
    );
    let late_link = t.booking(&late.id).await.meeting_link_id.unwrap();
    assert_eq!(
        bar_kind(&page.body, &late_link, &late.id).as_deref(),
        Some("paid")
    );
    assert!(
        !page.body.contains(&pending.id),
        "an unpaid booking without a hold holds nothing"
    );

    // Across midnight: the late session shows on the next day too.
    let next = jiff::civil::Date::strptime("%Y-%m-%d", &day)
        .unwrap()
        .tomorrow()
        .unwrap();
    let page = v.get(&format!("/admin/day?date={next}")).await;
    assert_eq!(
        bar_kind(&page.body, &late_link, &late.id).as_deref(),
        Some("paid")
    );

    // Disabling the first link moves its session to the second: marked.
    t.update_link(&first.id, serde_json::json!({ "is_available": false }))
        .await
        .unwrap();
    assert_eq!(
        t.booking(&morning.id).await.meeting_link_id.as_deref(),
        Some(second.id.as_str())
    );
    let page = v.get(&format!("/admin/day?date={day}")).await;
    assert_eq!(bar_kind(&page.body, &first.id, &morning.id), None);
    assert_eq!(
        bar_kind(&page.body, &second.id, &morning.id).as_deref(),
        Some("moved")
    );

    let bad = v.get("/admin/day?date=2027-02-30").await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
}

/// Beside a booking's audit trail, its outbound events: each one, how its
/// delivery went, and nothing of another booking's.
async fn the_booking_page_shows_what_the_platform_was_told(backend: Backend) {
    let receiver = Receiver::start().await;
    receiver.script([Reply::Status(500)]);
    let t = TestApp::start_with_events(backend, &receiver, |_| {}).await;
    t.add_link(ROOM).await;
    let st = t.create_session_type(60).await;
    let booking = t
        .create_booking(&st, "2031-06-03", "10:00", "pending")
        .await;
    t.set_payment_status(&booking.id, "paid").await.unwrap();
    receiver.wait_for_accepted(2).await;
    let other = t.create_booking(&st, "2031-06-03", "14:00", "paid").await;
    receiver.wait_for_accepted(3).await;

    let path = format!("/api/events/deliveries?booking_id={}", booking.id);
    let delivered_log = || async {
        let (status, log) = t.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{log}");
        log.as_array().unwrap().clone()
    };
    eventually("both events delivered", Duration::from_secs(10), || async {
        let log = delivered_log().await;
        log.iter().all(|e| e["status"] == "delivered") && log.len() == 2
    })
    .await;
    let log = delivered_log().await;
    let kinds: Vec<_> = log.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["booking.link_assigned", "booking.payment_changed"]);
    let (_, others) = t
        .get(&format!("/api/events/deliveries?booking_id={}", other.id))
        .await;
    let others = others.as_array().unwrap();
    assert_eq!(others.len(), 1);

    let v = Visitor::signed_in(&t).await;
    let page = v.get(&format!("/admin/bookings/{}", booking.id)).await;
    assert_eq!(page.status, StatusCode::OK);
    let section = &page.body[page.body.find("Outbound deliveries").unwrap()..];
    for e in &log {
        let id = e["id"].as_str().unwrap();
        assert!(section.contains(id), "{id} missing: {section}");
    }
    assert!(section.contains("booking.payment_changed"));
    // The payment's event needed a second attempt; the link's one.
    assert!(section.contains("<td>2</td>"), "{section}");
    assert!(section.contains("<td>1</td>"), "{section}");
    assert!(!section.contains(others[0]["id"].as_str().unwrap()));
    assert!(!section.contains("sends no outbound events"));

    let (status, refused) = t.get("/api/events/deliveries?booking_id=ORDER-1").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(refused["error"]["code"], "invalid_booking_id");
    let (_, failed) = t.get(&format!("{path}&status=failed")).await;
    assert_eq!(failed.as_array().unwrap().len(), 0);
}

async fn without_events_the_booking_page_says_none_are_sent(t: TestApp) {
    t.add_link(ROOM).await;
    let st = t.create_session_type(60).await;
    let booking = t.create_booking(&st, "2031-06-03", "10:00", "paid").await;
    let v = Visitor::signed_in(&t).await;
    let page = v.get(&format!("/admin/bookings/{}", booking.id)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("sends no outbound events"),
        "{}",
        page.body
    );
    assert!(page.body.contains("No events for this booking."));
}

async fn the_pages_show_each_room_s_last_check_and_a_session_s_conference(backend: Backend) {
    let meet = meetpool_conformance::providers::FakeMeet::start().await;
    let google = meet.config();
    let t = TestApp::start_with(backend, |c| {
        c.rooms.google = Some(google);
        c.rooms.poll = std::time::Duration::from_millis(50);
        c.rooms.check_every = None;
        c.rooms.end_grace = Some(std::time::Duration::from_millis(1));
        c.rooms.attendance_after = Some(std::time::Duration::ZERO);
    })
    .await;
    let kept = t.add_link(&meet.room("abc-defg-hij")).await;
    let gone = t.add_link(&meet.room("klm-nopq-rst")).await;
    let other = t.add_link("https://whereby.com/meetpool-room").await;
    let st = t.create_session_type(60).await;
    let start = (Timestamp::now() - 90.minutes()).to_zoned(jiff::tz::TimeZone::UTC);
    let began: Timestamp = format!("{}T{}:00Z", start.date(), start.strftime("%H:%M"))
        .parse()
        .unwrap();
    meet.conference(
        "abc-defg-hij",
        began,
        Some(began + 60.minutes()),
        &[(began, Some(began + 30.minutes()))],
    );
    let ended = t
        .create_booking(
            &st,
            &start.date().to_string(),
            &start.strftime("%H:%M").to_string(),
            "paid",
        )
        .await;
    meet.forget("klm-nopq-rst");
    t.app.check_rooms().await.unwrap();
    eventually("the conference ended", Duration::from_secs(10), || async {
        meet.ends("abc-defg-hij") == 1
    })
    .await;

    let v = Visitor::signed_in(&t).await;
    let page = v.get("/admin/links").await;
    assert_eq!(page.status, StatusCode::OK);
    let row = |id: &str| {
        let at = page.body.find(&format!(r#"data-link="{id}""#)).unwrap();
        let rest = &page.body[at..];
        rest[..rest.find("</tr>").unwrap()].to_owned()
    };
    assert!(
        row(&kept.id).contains("Google Meet: exists"),
        "{}",
        row(&kept.id)
    );
    assert!(
        row(&gone.id).contains("Google Meet: gone"),
        "{}",
        row(&gone.id)
    );
    assert!(row(&gone.id).contains("Disabled"));
    assert!(!row(&other.id).contains("Google Meet"));

    eventually(
        "the end and the attendance on the booking's trail",
        Duration::from_secs(10),
        || async {
            let kinds = t.event_kinds(&ended.id).await;
            kinds.contains(&"provider_action".to_owned())
                && kinds.contains(&"attendance".to_owned())
        },
    )
    .await;
    let page = v.get(&format!("/admin/bookings/{}", ended.id)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body
            .contains(r#"id="conference">ended at the provider"#),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains(r#"id="attendance">1 joined; someone was there for 30 minutes"#),
        "{}",
        page.body
    );
}
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

async fn wrong_sign_ins_from_one_address_are_limited_and_say_when_to_retry(t: TestApp) {
    let from = |ip: &str| {
        let mut v = Visitor::new(&t);
        v.http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .local_address(ip.parse::<std::net::IpAddr>().unwrap())
            .build()
            .unwrap();
        v
    };
    let mut guesser = from("127.0.0.5");
    // Signing in with the right token is never counted.
    for _ in 0..15 {
        let answer = guesser.sign_in_with(ADMIN_TOKEN).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER);
    }
    for n in 0..10 {
        let answer = guesser.sign_in_with(&format!("guess-{n}")).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "guess {n}");
        assert!(answer.headers.get("retry-after").is_none());
    }
    for token in ["guess-11", ADMIN_TOKEN] {
        let answer = guesser.sign_in_with(token).await;
        assert_eq!(
            answer.status,
            StatusCode::TOO_MANY_REQUESTS,
            "{}",
            answer.body
        );
        assert!(answer.set_cookie().is_none());
        let retry: u64 = answer.headers["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&retry), "{retry}");
        assert!(
            answer.body.contains("too many wrong tokens"),
            "{}",
            answer.body
        );
    }
    // The API's bearer check counts the same failures.
    let api = guesser
        .send(
            guesser
                .http
                .get(t.url("/api/links"))
                .bearer_auth(ADMIN_TOKEN),
        )
        .await;
    assert_eq!(api.status, StatusCode::TOO_MANY_REQUESTS);
    // An operator elsewhere signs in as usual.
    let mut operator = from("127.0.0.6");
    assert_eq!(
        operator.sign_in_with(ADMIN_TOKEN).await.status,
        StatusCode::SEE_OTHER
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
