//! Nothing without signing in; the admin token and nothing else signs in;
//! the session cookie's flags; no form without the session's CSRF token;
//! wrong sign-ins limited.
use meetpool_conformance::{TestApp, ADMIN_TOKEN};
use reqwest::StatusCode;

use super::{Visitor, ROOM};

on_both!(
    every_page_and_form_asks_to_sign_in_first,
    only_the_admin_token_signs_in_and_the_cookie_stays_with_this_site,
    a_form_without_the_sessions_csrf_token_is_refused_and_changes_nothing,
    signing_out_ends_the_session_in_the_browser,
    wrong_sign_ins_from_one_address_are_limited_and_say_when_to_retry,
);

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
