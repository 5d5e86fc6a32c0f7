//! Participants' join URLs: the meeting inside the join window, a page
//! saying when or why not outside it (never the raw link), 404 for an
//! unknown token, and the session as a calendar file.
use icalendar::{CalendarDateTime, Component, DatePerhapsTime};
use jiff::{SignedDuration, Timestamp};
use meetpool_conformance::{Backend, Booking, SessionType, TestApp};
use reqwest::StatusCode;

on_both!(
    the_join_url_opens_the_meeting_only_inside_its_window,
    the_calendar_file_is_the_session_with_its_join_url,
    the_previous_systems_answers_carry_the_join_url,
);

const ZONE: &str = "Asia/Jakarta";
const ROOM: &str = "https://meet.google.com/kcw-ebey-pqu";

/// A paid or pending booking whose session starts `from_now` from now
/// (to the minute), in the platform's zone.
async fn booking_in(
    t: &TestApp,
    st: &SessionType,
    from_now: SignedDuration,
    status: &str,
) -> Booking {
    let start = (Timestamp::now() + from_now)
        .in_tz(ZONE)
        .unwrap()
        .round(jiff::Unit::Minute)
        .unwrap();
    t.create_booking(
        st,
        &start.date().to_string(),
        &start.strftime("%H:%M").to_string(),
        status,
    )
    .await
}

/// The join URL's path on this test's server.
fn path_of(b: &Booking) -> String {
    let at = b.join_url.find("/j/").expect("a join URL");
    b.join_url[at..].to_owned()
}

/// `GET` without following redirects: (status, Location, Cache-Control, body).
async fn open(t: &TestApp, path: &str) -> (StatusCode, Option<String>, Option<String>, String) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = client.get(t.url(path)).send().await.unwrap();
    let header = |name: &str| {
        res.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let (location, cache) = (header("location"), header("cache-control"));
    (res.status(), location, cache, res.text().await.unwrap())
}

async fn the_join_url_opens_the_meeting_only_inside_its_window(b: Backend) {
    let t = TestApp::start_with(b, |c| c.set_timezone(ZONE).unwrap()).await;
    let st = t.create_session_type(60).await;
    t.add_link(ROOM).await;

    // Ten minutes before the start: inside the 15 minutes' window.
    let soon = booking_in(&t, &st, SignedDuration::from_mins(10), "paid").await;
    assert_eq!(soon.meeting_link.as_deref(), Some(ROOM));
    let (s, location, cache, _) = open(&t, &path_of(&soon)).await;
    assert_eq!(
        (s, location.as_deref(), cache.as_deref()),
        (StatusCode::SEE_OTHER, Some(ROOM), Some("no-store"))
    );

    // Hours ahead: a page with the start in the platform's zone, no link.
    let later = booking_in(&t, &st, SignedDuration::from_hours(3), "paid").await;
    assert_eq!(later.meeting_link.as_deref(), Some(ROOM));
    let (s, location, _, page) = open(&t, &path_of(&later)).await;
    assert_eq!((s, location), (StatusCode::OK, None));
    assert!(page.contains("has not started yet"), "{page}");
    assert!(page.contains(&later.booking_time), "{page}");
    assert!(page.contains(ZONE), "{page}");
    assert!(!page.contains(ROOM), "the raw link shown early: {page}");

    // The pool's one link is taken now: a paid booking at the same time
    // waits for one.
    let waiting = booking_in(&t, &st, SignedDuration::from_mins(10), "paid").await;
    assert_eq!(waiting.meeting_link, None);
    let (s, _, _, page) = open(&t, &path_of(&waiting)).await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains("being prepared"), "{page}");

    let unpaid = booking_in(&t, &st, SignedDuration::from_mins(20), "pending").await;
    let (_, _, _, page) = open(&t, &path_of(&unpaid)).await;
    assert!(page.contains("not paid yet"), "{page}");

    t.set_payment_status(&soon.id, "cancelled").await.unwrap();
    let (s, location, _, page) = open(&t, &path_of(&soon)).await;
    assert_eq!((s, location), (StatusCode::OK, None));
    assert!(
        page.contains("was cancelled") && !page.contains(ROOM),
        "{page}"
    );

    let over = booking_in(&t, &st, SignedDuration::from_hours(-2), "paid").await;
    let (_, location, _, page) = open(&t, &path_of(&over)).await;
    assert_eq!(location, None);
    assert!(page.contains("has ended") && !page.contains(ROOM), "{page}");

    for unknown in ["/j/nope", "/j/nope.ics"] {
        let (s, _, _, page) = open(&t, unknown).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{unknown}");
        assert!(page.contains("does not lead to any session"), "{page}");
    }
}

async fn the_calendar_file_is_the_session_with_its_join_url(t: TestApp) {
    let st = t.create_session_type(45).await;
    t.add_link(ROOM).await;
    let b = t.create_booking(&st, "2031-03-04", "09:30", "paid").await;
    let path = format!("{}.ics", path_of(&b));
    let res = t.http.get(t.url(&path)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/calendar"));
    let text = res.text().await.unwrap();
    assert!(
        !text.contains(ROOM),
        "the raw link in the calendar file:\n{text}"
    );

    let calendar: icalendar::Calendar = text.parse().unwrap();
    // RFC 5545: one VERSION and one PRODID, naming the product.
    assert_eq!(calendar.property_value("VERSION"), Some("2.0"));
    assert!(
        calendar
            .property_value("PRODID")
            .is_some_and(|p| p.starts_with("-//meetpool//")),
        "{text}"
    );
    assert_eq!(text.matches("PRODID:").count(), 1, "{text}");
    let events: Vec<_> = calendar.events().collect();
    assert_eq!(events.len(), 1, "{text}");
    let event = events[0];
    let utc = |d: Option<DatePerhapsTime>| match d {
        Some(DatePerhapsTime::DateTime(CalendarDateTime::Utc(dt))) => {
            Timestamp::from_second(dt.timestamp()).unwrap()
        }
        other => panic!("not a UTC date-time: {other:?}"),
    };
    assert_eq!(
        utc(event.get_start()),
        b.starts_at.parse::<Timestamp>().unwrap()
    );
    assert_eq!(
        utc(event.get_end()),
        b.ends_at.parse::<Timestamp>().unwrap()
    );
    assert_eq!(event.property_value("LOCATION"), Some(b.join_url.as_str()));
    assert_eq!(event.get_url(), Some(b.join_url.as_str()));
    assert_eq!(event.get_sequence(), Some(0));
    assert_eq!(event.get_summary(), Some(st.name.as_str()));
    let uid = event.get_uid().unwrap().to_owned();

    // The same booking is the same event: its UID is stable.
    let again = calendar_of(&t, &b).await;
    assert_eq!(again.events().next().unwrap().get_uid(), Some(uid.as_str()));
    let other = t.create_booking(&st, "2031-03-04", "11:00", "paid").await;
    let other = calendar_of(&t, &other).await;
    assert_ne!(other.events().next().unwrap().get_uid(), Some(uid.as_str()));
}

/// A booking's calendar file, parsed.
async fn calendar_of(t: &TestApp, b: &Booking) -> icalendar::Calendar {
    let path = format!("{}.ics", path_of(b));
    let text = t
        .http
        .get(t.url(&path))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.parse().unwrap()
}

async fn the_previous_systems_answers_carry_the_join_url(t: TestApp) {
    let st = t.create_session_type(60).await;
    t.add_link(ROOM).await;
    let b = t.create_booking(&st, "2031-03-04", "09:00", "paid").await;
    let (s, answer) = t.assign(&b.id).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(answer.join_url.as_deref(), Some(b.join_url.as_str()));
}
