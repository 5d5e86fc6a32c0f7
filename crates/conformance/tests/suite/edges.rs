//! Inputs at the edges: dates at the ends of the calendar, sessions that
//! have already begun, identifiers that would look like others on a
//! screen. Each is refused with 422 and changes nothing, on both stores.
use jiff::{SignedDuration, Timestamp};
use meetpool_conformance::{Booking, TestApp, ADMIN_TOKEN};
use reqwest::StatusCode;
use serde_json::{json, Value};

on_both!(
    dates_outside_the_supported_years_are_refused_on_every_route,
    a_session_that_has_begun_is_history_only,
    identifiers_refuse_invisible_and_direction_changing_characters,
    wrong_admin_tokens_are_limited_per_client_address,
    every_booking_is_listed_page_after_page,
);

const ROOM: &str = "https://meet.google.com/kcw-ebey-pqu";

fn refused(what: &str, (status, body): (StatusCode, Value), code: &str) {
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some(code)),
        "{what}: {body}"
    );
}

fn booking_body(st: &str, order: &str, date: &str, time: &str, payment: &str) -> Value {
    json!({"order_id": order, "user_id": "user-1", "expert_id": "expert-1",
           "session_type_id": st, "booking_date": date, "booking_time": time,
           "price": 100000, "payment_status": payment})
}

async fn dates_outside_the_supported_years_are_refused_on_every_route(t: TestApp) {
    let st = t.create_session_type(60).await;
    t.add_link(ROOM).await;
    let kept = t.create_booking(&st, "2031-05-06", "10:00", "paid").await;
    assert!(kept.meeting_link.is_some());

    for far in [
        "0001-01-01",
        "1999-12-31",
        "2200-01-01",
        "9999-12-30",
        "9999-12-31",
    ] {
        let availability = format!("/api/availability?date={far}&session_type_id={}", st.id);
        refused(&availability, t.get(&availability).await, "invalid_date");
        for capacity in [
            format!("/api/capacity?from={far}&to=2031-05-06"),
            format!("/api/capacity?from=2031-05-06&to={far}"),
            format!("/api/capacity?from={far}&to={far}"),
        ] {
            refused(&capacity, t.get(&capacity).await, "invalid_date");
        }
        let list = format!("/api/bookings?date={far}");
        refused(&list, t.get(&list).await, "invalid_date");
        for payment in ["paid", "pending"] {
            let body = booking_body(
                &st.id,
                &format!("FAR-{far}-{payment}"),
                far,
                "23:30",
                payment,
            );
            refused(far, t.post("/api/bookings", body).await, "invalid_slot");
        }
        let mut hold = booking_body(&st.id, &format!("HOLD-{far}"), far, "10:00", "pending");
        hold["hold"] = json!(true);
        refused(far, t.post("/api/bookings", hold).await, "invalid_slot");
        for change in [
            json!({"booking_date": far}),
            json!({"booking_date": far, "allow_past": true}),
        ] {
            let path = format!("/api/bookings/{}", kept.id);
            refused(
                &change.to_string(),
                t.patch(&path, change).await,
                "invalid_slot",
            );
        }
    }
    // Nothing moved, nothing was created.
    assert_eq!(t.booking(&kept.id).await, kept);
    assert_eq!(t.bookings("").await.unwrap().len(), 1);

    // The ends of the range are served.
    let last = t.create_booking(&st, "2199-12-31", "23:30", "paid").await;
    assert!(last.ends_at.starts_with("2200-01-01T00:30:00"), "{last:?}");
    let (status, slots) = t
        .get(&format!(
            "/api/availability?date=2199-12-31&session_type_id={}",
            st.id
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{slots}");
    assert_eq!(slots.as_array().unwrap().len(), 48);
    let (status, days) = t.get("/api/capacity?from=2199-12-31&to=2199-12-31").await;
    assert_eq!(
        (status, days[0]["peak_sessions"].as_u64()),
        (StatusCode::OK, Some(1)),
        "{days}"
    );
}

/// The local (UTC) date and `HH:MM` of `at`.
fn local(at: Timestamp) -> (String, String) {
    let dt = at.to_zoned(jiff::tz::TimeZone::UTC).datetime();
    (dt.date().to_string(), dt.strftime("%H:%M").to_string())
}

async fn a_session_that_has_begun_is_history_only(t: TestApp) {
    let st = t.create_session_type(60).await;
    t.add_link(ROOM).await;
    let (today, a_while_ago) = local(Timestamp::now() - SignedDuration::from_mins(30));

    for (date, time) in [
        ("2020-01-01", "10:00"),
        (today.as_str(), a_while_ago.as_str()),
    ] {
        let mut hold = booking_body(&st.id, &format!("H-{date}"), date, time, "pending");
        hold["hold"] = json!(true);
        refused(
            "a hold in the past",
            t.post("/api/bookings", hold).await,
            "starts_in_the_past",
        );
        for unpaid in ["pending", "failed", "expired"] {
            let body = booking_body(&st.id, &format!("U-{date}-{unpaid}"), date, time, unpaid);
            refused(
                unpaid,
                t.post("/api/bookings", body).await,
                "starts_in_the_past",
            );
        }
    }
    assert_eq!(t.bookings("").await.unwrap(), Vec::<Booking>::new());

    // History is imported as it happened: paid (with the link it was
    // given, if one is free), cancelled or refunded.
    let imported = t.create_booking(&st, "2020-01-01", "10:00", "paid").await;
    assert_eq!(imported.payment_status, "paid");
    assert_eq!(imported.meeting_link.as_deref(), Some(ROOM));
    for last in ["cancelled", "refunded"] {
        let old = t.create_booking(&st, "2020-01-02", "10:00", last).await;
        assert_eq!(old.payment_status, last);
    }

    // A coming session does not move into the past by accident...
    let coming = t.create_booking(&st, "2031-05-06", "10:00", "paid").await;
    let mut held = booking_body(&st.id, "HELD-1", "2031-05-06", "12:00", "pending");
    held["hold"] = json!(true);
    let held = t.try_create_booking(held).await.unwrap();
    for (who, change) in [
        (&coming, json!({"booking_date": "2020-01-03"})),
        (
            &coming,
            json!({"booking_date": today, "booking_time": a_while_ago}),
        ),
        (
            &coming,
            json!({"booking_date": "2020-01-03", "allow_past": false}),
        ),
        (&held, json!({"booking_date": "2020-01-03"})),
    ] {
        let path = format!("/api/bookings/{}", who.id);
        refused(
            &change.to_string(),
            t.patch(&path, change).await,
            "starts_in_the_past",
        );
    }
    assert_eq!(t.booking(&coming.id).await, coming);
    assert_eq!(t.booking(&held.id).await, held);
    assert_eq!(t.event_kinds(&coming.id).await, ["created", "assigned"]);

    // ...only when an operator says so.
    let moved = t
        .update_booking(
            &coming.id,
            json!({"booking_date": "2020-01-03", "allow_past": true}),
        )
        .await
        .unwrap();
    assert!(
        moved.starts_at.starts_with("2020-01-03T10:00:00"),
        "{moved:?}"
    );
    assert!(t
        .event_kinds(&coming.id)
        .await
        .contains(&"rescheduled".to_owned()));
}

async fn identifiers_refuse_invisible_and_direction_changing_characters(t: TestApp) {
    let st = t.create_session_type(60).await;
    let link = t.add_link(ROOM).await;
    for sneaky in [
        "\u{202E}1001-REDRO",
        "ORDER\u{200B}1001",
        "ORDER-1001\u{200F}",
        "\u{FEFF}ORDER-1001",
        "ORDER\u{2066}-1001\u{2069}",
        "ORDER\u{061C}1001",
        "ORDER\u{202A}1001",
    ] {
        for (field, code) in [
            ("order_id", "invalid_order_id"),
            ("user_id", "invalid_user_id"),
            ("expert_id", "invalid_expert_id"),
        ] {
            let mut body = booking_body(&st.id, "ORDER-1001", "2031-05-06", "10:00", "paid");
            body[field] = json!(sneaky);
            refused(
                &format!("{field} {sneaky:?}"),
                t.post("/api/bookings", body).await,
                code,
            );
        }
    }
    assert_eq!(t.bookings("").await.unwrap(), Vec::<Booking>::new());

    // Letters written right to left are identifiers like any others.
    let mut body = booking_body(&st.id, "طلب-1001", "2031-05-06", "10:00", "paid");
    body["user_id"] = json!("مستخدم-1");
    let booking = t.try_create_booking(body).await.unwrap();
    assert_eq!(
        (booking.order_id.as_str(), booking.user_id.as_str()),
        ("طلب-1001", "مستخدم-1")
    );

    // Names and notes are text, not identifiers: they keep what they are given.
    let (status, named) = t
        .post(
            "/api/session-types",
            json!({"name": "\u{202B}استشارة\u{202C}", "duration": 30}),
        )
        .await;
    assert_eq!(
        (status, named["name"].as_str()),
        (StatusCode::CREATED, Some("\u{202B}استشارة\u{202C}"))
    );
    let noted = t
        .update_link(
            &link.id,
            json!({"notes": "room\u{200B}1 \u{2067}غرفة\u{2069}"}),
        )
        .await
        .unwrap();
    assert_eq!(
        noted.notes.as_deref(),
        Some("room\u{200B}1 \u{2067}غرفة\u{2069}")
    );
}

/// A client whose connections come from `ip` (any address of 127.0.0.0/8
/// reaches the loopback listener).
fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip.parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap()
}

async fn wrong_admin_tokens_are_limited_per_client_address(t: TestApp) {
    let guesser = client_from("127.0.0.3");
    let neighbour = client_from("127.0.0.4");
    let ask = |client: &reqwest::Client, path: &str, token: Option<&str>| {
        let req = client.get(t.url(path));
        let req = match token {
            Some(token) => req.bearer_auth(token),
            None => req,
        };
        async move {
            let res = req.send().await.unwrap();
            let retry = res
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned());
            let status = res.status();
            let body: Value = res.json().await.unwrap_or(Value::Null);
            (status, retry, body)
        }
    };

    // A correct token is served as often as it is sent, and so are
    // requests without any (they guess nothing).
    for _ in 0..30 {
        assert_eq!(
            ask(&guesser, "/api/links", Some(ADMIN_TOKEN)).await.0,
            StatusCode::OK
        );
        assert_eq!(
            ask(&guesser, "/api/links", None).await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    // Ten wrong guesses: one on the previous system's assign route, which
    // takes the same token...
    let seed = guesser
        .post(t.url("/functions/v1/assign-meeting-link"))
        .bearer_auth("guess")
        .json(&json!({"bookingId": uuid::Uuid::new_v4()}))
        .send()
        .await
        .unwrap();
    assert_eq!(seed.status(), StatusCode::UNAUTHORIZED);
    // ...the others on routes and on paths no route serves...
    for n in 1..10 {
        let path = if n % 2 == 0 {
            "/api/links"
        } else {
            "/api/nothing-here"
        };
        let (status, retry, _) = ask(&guesser, path, Some(&format!("guess-{n}"))).await;
        assert_eq!(
            (status, retry),
            (StatusCode::UNAUTHORIZED, None),
            "guess {n}"
        );
    }
    // ...and the address is refused for the rest of the minute, whatever
    // it sends, without its token being tried.
    for token in ["guess-11", ADMIN_TOKEN] {
        let (status, retry, body) = ask(&guesser, "/api/links", Some(token)).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
        assert_eq!(body["error"]["code"], "too_many_attempts", "{body}");
        let retry: u64 = retry.expect("Retry-After").parse().unwrap();
        assert!((1..=60).contains(&retry), "{retry}");
    }
    // The previous system's assign route takes the same token: the same
    // limit, in its own shape.
    let seed = guesser
        .post(t.url("/functions/v1/assign-meeting-link"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"bookingId": uuid::Uuid::new_v4()}))
        .send()
        .await
        .unwrap();
    assert_eq!(seed.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(seed.headers().contains_key("retry-after"));
    let body: Value = seed.json().await.unwrap();
    assert_eq!(body["success"], false, "{body}");
    // Another address is not.
    assert_eq!(
        ask(&neighbour, "/api/links", Some(ADMIN_TOKEN)).await.0,
        StatusCode::OK
    );
    let (status, retry, _) = ask(&neighbour, "/api/links", Some("guess")).await;
    assert_eq!((status, retry), (StatusCode::UNAUTHORIZED, None));
    // Public routes stay open to everyone.
    assert_eq!(ask(&guesser, "/healthz", None).await.0, StatusCode::OK);
}

/// `GET path`: the bookings' order ids and the `Link: rel="next"` target.
async fn page(t: &TestApp, path: &str) -> (Vec<String>, Option<String>) {
    let res = t
        .http
        .get(t.url(path))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK, "{path}");
    let next = res.headers().get("link").map(|link| {
        let link = link.to_str().unwrap();
        assert!(link.ends_with(r#">; rel="next""#), "{link}");
        link[1..link.find('>').unwrap()].to_owned()
    });
    let bookings: Vec<Booking> = res.json().await.unwrap();
    (bookings.into_iter().map(|b| b.order_id).collect(), next)
}

async fn every_booking_is_listed_page_after_page(t: TestApp) {
    let st = t.create_session_type(60).await;
    // Several at one start, so that the order within a start matters too.
    let mut made = Vec::new();
    for n in 0..23 {
        let time = ["09:00", "10:00", "10:00", "10:00", "11:30"][n % 5];
        let day = format!("2031-05-{:02}", 6 + n / 5);
        let order = format!("PAGE-{n:02}");
        made.push(
            t.create_booking_with_order(&order, &st, &day, time, "pending")
                .await,
        );
    }
    let mut expected = made.clone();
    expected.sort_by(|a, b| (&a.starts_at, &a.id).cmp(&(&b.starts_at, &b.id)));
    let expected: Vec<String> = expected.into_iter().map(|b| b.order_id).collect();

    let mut listed = Vec::new();
    let mut next = Some("/api/bookings?limit=10&payment_status=pending".to_owned());
    let mut pages = 0;
    while let Some(path) = next {
        let (orders, following) = page(&t, &path).await;
        if pages == 0 {
            // A booking added behind the cursor while the list is read is
            // neither listed twice nor makes another one skipped.
            t.create_booking_with_order("PAGE-LATE", &st, "2031-05-06", "08:00", "pending")
                .await;
        }
        assert!(
            following
                .as_deref()
                .is_none_or(|f| f.contains("payment_status=pending")),
            "{following:?}"
        );
        listed.extend(orders);
        next = following;
        pages += 1;
    }
    assert_eq!(pages, 3);
    assert_eq!(listed, expected);

    // The first page again starts with the one added meanwhile; without
    // a limit, pages are 100 long and this list is one page.
    let (orders, next) = page(&t, "/api/bookings").await;
    assert_eq!(
        (orders.len(), orders[0].as_str(), next),
        (24, "PAGE-LATE", None)
    );
    // The last page says no more; `offset` is no parameter of this list.
    let (s, e) = t.get("/api/bookings?offset=10").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    assert!(
        e["error"]["message"].as_str().unwrap().contains("offset"),
        "{e}"
    );
    for bad in ["x", "bm9wZQ", "MjAzMS0wNS0wNlQwOTowMDowMFovbm90LWFuLWlk"] {
        refused(
            bad,
            t.get(&format!("/api/bookings?after={bad}")).await,
            "invalid_cursor",
        );
    }
}
