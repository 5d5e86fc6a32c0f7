//! Browser clients of the previous system's edge functions: preflights
//! answered as Supabase answered them, for the configured origins only,
//! and the CORS headers on the answers themselves.
use meetpool_conformance::{Backend, HttpSettings, TestApp, ADMIN_TOKEN, WEBHOOK};
use reqwest::{Method, StatusCode};
use serde_json::json;

on_both!(
    listed_origins_get_the_edge_functions_cors_answers,
    without_listed_origins_there_are_no_cors_headers,
);

const APP: &str = "https://app.example.com";
const ASSIGN: &str = "/functions/v1/assign-meeting-link";

fn names(value: &str) -> Vec<String> {
    let mut names: Vec<String> = value
        .split(',')
        .map(|v| v.trim().to_ascii_lowercase())
        .collect();
    names.sort();
    names
}

async fn preflight(t: &TestApp, path: &str, origin: &str) -> reqwest::Response {
    t.http
        .request(Method::OPTIONS, t.url(path))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, x-client-info, apikey, content-type",
        )
        .send()
        .await
        .unwrap()
}

async fn listed_origins_get_the_edge_functions_cors_answers(b: Backend) {
    let mut http = HttpSettings::default();
    http.allow_origins([APP, "https://admin.example.com"])
        .unwrap();
    let t = TestApp::start_with_http(b, http).await;

    for path in [ASSIGN, WEBHOOK] {
        let res = preflight(&t, path, APP).await;
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        let h = res.headers();
        assert_eq!(h["access-control-allow-origin"], APP, "{path}");
        assert_eq!(
            names(h["access-control-allow-headers"].to_str().unwrap()),
            names("authorization, x-client-info, apikey, content-type"),
        );
        assert_eq!(
            names(h["access-control-allow-methods"].to_str().unwrap()),
            names("POST, OPTIONS"),
        );

        let res = preflight(&t, path, "https://elsewhere.example.com").await;
        assert!(
            !res.headers().contains_key("access-control-allow-origin"),
            "{path}: an unlisted origin is not allowed"
        );
    }

    // The answer itself carries the header, whatever its status.
    let res = t
        .http
        .post(t.url(ASSIGN))
        .header("origin", APP)
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({ "bookingId": uuid::Uuid::new_v4() }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert_eq!(res.headers()["access-control-allow-origin"], APP);

    // Only the previous system's routes speak CORS.
    let res = preflight(&t, "/api/links", APP).await;
    assert!(!res.headers().contains_key("access-control-allow-origin"));
}

async fn without_listed_origins_there_are_no_cors_headers(t: TestApp) {
    let res = preflight(&t, ASSIGN, APP).await;
    assert!(
        !res.headers()
            .keys()
            .any(|k| k.as_str().starts_with("access-control-")),
        "{:?}",
        res.headers()
    );
    let res = t
        .http
        .post(t.url(ASSIGN))
        .header("origin", APP)
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({ "bookingId": uuid::Uuid::new_v4() }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert!(!res.headers().contains_key("access-control-allow-origin"));
}
