//! What every request meets before its route: a body limit answered 413 in
//! each route's own error shape, JSON required where the API is JSON (and
//! not of Midtrans), unknown fields and out-of-range limits refused, the
//! admin token's scheme read as RFC 7235 says, and a request id.
use meetpool_conformance::{Backend, HttpSettings, TestApp, ADMIN_TOKEN, WEBHOOK};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

on_both!(
    every_route_refuses_an_oversized_body_with_413_in_its_own_shape,
    native_routes_take_json_only_and_the_webhook_anything,
    a_booking_with_an_unknown_field_is_refused,
    limits_have_a_maximum_and_zero_means_none,
    the_token_scheme_is_case_insensitive_and_admin_paths_ask_for_it_first,
    each_answer_carries_the_request_id_given_or_a_new_one,
);

const LIMIT: usize = 4096;

async fn send(req: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let res = req.send().await.unwrap();
    let status = res.status();
    let text = res.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

/// `head` and a chunked body of `size` bytes over a connection of its own:
/// a body whose length nobody declares. The answer's status and JSON body.
async fn chunked(t: &TestApp, head: &str, size: usize) -> (u16, Value) {
    let mut s = TcpStream::connect(t.base.trim_start_matches("http://"))
        .await
        .unwrap();
    let mut request = format!("{head}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
    for _ in 0..size / 1024 {
        request.push_str(&format!("400\r\n{}\r\n", " ".repeat(1024)));
    }
    request.push_str("0\r\n\r\n");
    // The server may answer and close before reading it all.
    let _ = s.write_all(request.as_bytes()).await;
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer);
    let status = answer[9..12].parse().unwrap();
    let body = &answer[answer.find("\r\n\r\n").unwrap() + 4..];
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

async fn every_route_refuses_an_oversized_body_with_413_in_its_own_shape(b: Backend) {
    let t = TestApp::start_with_http(
        b,
        HttpSettings {
            max_body_bytes: LIMIT,
            ..HttpSettings::default()
        },
    )
    .await;
    let oversized = json!({ "padding": "x".repeat(LIMIT) }).to_string();
    let id = uuid::Uuid::new_v4().to_string();
    for (method, template) in meetpool_http::routes() {
        let path = template.replace("{id}", &id);
        let req = t
            .http
            .request(method.clone(), t.url(&path))
            .bearer_auth(ADMIN_TOKEN)
            .header("content-type", "application/json")
            .body(oversized.clone());
        let (status, body) = send(req).await;
        assert_eq!(
            status,
            StatusCode::PAYLOAD_TOO_LARGE,
            "{method} {path}: {body}"
        );
        if path == "/functions/v1/assign-meeting-link" {
            assert_eq!(body["success"], false, "{body}");
            assert!(body["error"].is_string(), "{body}");
        } else {
            assert_eq!(
                body["error"]["code"], "payload_too_large",
                "{method} {path}: {body}"
            );
        }
    }
    // Without a declared length, the body limit stops the read.
    for path in ["/api/links", WEBHOOK] {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: meetpool\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n\
             Content-Type: application/json\r\n"
        );
        let (status, body) = chunked(&t, &head, 2 * LIMIT).await;
        assert_eq!(status, 413, "{path}: {body}");
        assert_eq!(body["error"]["code"], "payload_too_large", "{path}: {body}");
    }
    assert!(t.links().await.is_empty());
}

async fn native_routes_take_json_only_and_the_webhook_anything(t: TestApp) {
    let body = json!({ "meeting_link": "https://meet.google.com/abc-defg-hij" }).to_string();
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let mut req = t
            .http
            .post(t.url("/api/links"))
            .bearer_auth(ADMIN_TOKEN)
            .body(body.clone());
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let (status, answer) = send(req).await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                Some("unsupported_media_type")
            ),
            "{content_type:?}: {answer}"
        );
    }
    assert!(t.links().await.is_empty());
    let req = t
        .http
        .post(t.url("/api/links"))
        .bearer_auth(ADMIN_TOKEN)
        .header("content-type", "application/json; charset=utf-8")
        .body(body);
    assert_eq!(send(req).await.0, StatusCode::CREATED);

    // Midtrans may send any type: the body is read as JSON regardless.
    let req = t
        .http
        .post(t.url(WEBHOOK))
        .header("content-type", "text/plain")
        .body(json!({ "order_id": "nothing" }).to_string());
    let (status, answer) = send(req).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("malformed_notification")),
        "{answer}"
    );
}

async fn a_booking_with_an_unknown_field_is_refused(t: TestApp) {
    let st = t.create_session_type(60).await;
    let body = json!({"order_id": "O-1", "user_id": "u", "expert_id": "e", "session_type_id": st.id,
                      "booking_date": "2030-01-02", "booking_time": "10:00", "price": 1,
                      "payment_statuss": "paid"});
    let (status, answer) = t.post("/api/bookings", body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer["error"]["code"], "malformed_json");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("payment_statuss"),
        "{answer}"
    );
    assert_eq!(t.get("/api/bookings").await.1, json!([]));
}

async fn limits_have_a_maximum_and_zero_means_none(t: TestApp) {
    let st = t.create_session_type(60).await;
    t.add_link("https://meet.google.com/abc-defg-hij").await;
    let b = t.create_booking(&st, "2030-01-02", "10:00", "paid").await;
    assert!(b.meeting_link_id.is_some());

    for (path, max) in [("/api/bookings", 1000), ("/api/assignments/recent", 500)] {
        let (status, answer) = t.get(&format!("{path}?limit={}", max + 1)).await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_limit")),
            "{path}: {answer}"
        );
        let (status, answer) = t.get(&format!("{path}?limit={max}")).await;
        assert_eq!(
            (status, answer.as_array().map(Vec::len)),
            (StatusCode::OK, Some(1))
        );
        let (status, answer) = t.get(&format!("{path}?limit=0")).await;
        assert_eq!((status, answer), (StatusCode::OK, json!([])), "{path}");
    }
}

async fn the_token_scheme_is_case_insensitive_and_admin_paths_ask_for_it_first(t: TestApp) {
    let with = |path: &str, auth: Option<String>| {
        let mut req = t.http.get(t.url(path));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        req
    };
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let req = with("/api/links", Some(format!("{scheme} {ADMIN_TOKEN}")));
        assert_eq!(send(req).await.0, StatusCode::OK, "{scheme}");
    }
    for refused in [
        format!("Bearer {}", ADMIN_TOKEN.to_uppercase()),
        format!("Basic {ADMIN_TOKEN}"),
        format!("Bearer{ADMIN_TOKEN}"),
        "Bearer ".to_owned(),
    ] {
        let req = with("/api/links", Some(refused.clone()));
        assert_eq!(send(req).await.0, StatusCode::UNAUTHORIZED, "{refused}");
    }

    // An admin path nobody serves: 401 without the token, 404 with it.
    for path in ["/api/whatever", "/api/links/x/y", "/api"] {
        let (status, answer) = send(with(path, None)).await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("unauthorized")),
            "{path}"
        );
        let (status, answer) = t.get(path).await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("not_found")),
            "{path}"
        );
    }
    // Elsewhere, 404 either way.
    assert_eq!(send(with("/nowhere", None)).await.0, StatusCode::NOT_FOUND);

    // A served admin path with a method it does not answer: 401 without
    // the token, 405 with it.
    let (status, _) = send(t.http.delete(t.url("/api/pool/status"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = t.delete("/api/pool/status").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
}

async fn each_answer_carries_the_request_id_given_or_a_new_one(t: TestApp) {
    for (method, path) in [(Method::GET, "/healthz"), (Method::GET, "/nowhere")] {
        let res = t
            .http
            .request(method.clone(), t.url(path))
            .header("x-request-id", "req-42")
            .send()
            .await
            .unwrap();
        assert_eq!(res.headers()["x-request-id"], "req-42", "{path}");

        let res = t.http.request(method, t.url(path)).send().await.unwrap();
        let id = res.headers()["x-request-id"].to_str().unwrap();
        let id: uuid::Uuid = id.parse().expect("a generated id is a UUID");
        assert_eq!(id.get_version_num(), 4, "{path}");
    }
    let a = t.http.get(t.url("/healthz")).send().await.unwrap();
    let b = t.http.get(t.url("/healthz")).send().await.unwrap();
    assert_ne!(a.headers()["x-request-id"], b.headers()["x-request-id"]);
}
