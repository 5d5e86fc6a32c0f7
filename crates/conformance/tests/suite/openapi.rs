//! `GET /openapi.json`: public, OpenAPI 3.1, naming every route the router
//! serves, and describing the previous system's answers exactly as they
//! are sent.
use std::collections::BTreeSet;

use meetpool_conformance::{TestApp, ADMIN_TOKEN, MIDTRANS_KEY};
use meetpool_domain::midtrans::signature;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

on_both!(
    the_document_is_public_and_names_every_route_the_router_serves,
    every_documented_route_is_served_and_guarded_as_documented,
    the_previous_systems_answers_are_described_as_sent,
);

async fn the_document_is_public_and_names_every_route_the_router_serves(t: TestApp) {
    let doc = document(&t).await;
    let version = doc["openapi"].as_str().unwrap();
    assert!(version.starts_with("3.1"), "openapi {version}");

    let served: BTreeSet<(String, String)> = meetpool_http::routes()
        .into_iter()
        .map(|(method, path)| (method.as_str().to_owned(), path))
        .collect();
    assert!(served.contains(&("GET".to_owned(), "/openapi.json".to_owned())));
    assert_eq!(operations(&doc), served);

    for name in references(&doc) {
        assert!(
            !doc["components"]["schemas"][&name].is_null(),
            "#/components/schemas/{name} is referenced but not described"
        );
    }
    let scheme = &doc["components"]["securitySchemes"]["admin_token"];
    assert_eq!(
        (&scheme["type"], &scheme["scheme"]),
        (&json!("http"), &json!("bearer"))
    );
}

async fn every_documented_route_is_served_and_guarded_as_documented(t: TestApp) {
    let doc = document(&t).await;
    let unserved = call(&t, Method::GET, "/no/such/route", true).await;
    assert_eq!(unserved.0, StatusCode::NOT_FOUND);

    for (method, template) in operations(&doc) {
        let method: Method = method.parse().unwrap();
        let path = fill_parameters(&template);
        let answer = call(&t, method.clone(), &path, true).await;
        assert_ne!(answer.0, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        assert_ne!(
            answer, unserved,
            "{method} {path} is documented but not served"
        );

        let operation = &doc["paths"][&template][method.as_str().to_lowercase()];
        let guarded = operation["security"]
            .as_array()
            .is_some_and(|s| s.iter().any(|r| r.get("admin_token").is_some()));
        let (status, body) = call(&t, method.clone(), &path, false).await;
        assert_eq!(
            status == StatusCode::UNAUTHORIZED,
            guarded,
            "{method} {path} without a token: {status} {body}"
        );
    }
}

async fn the_previous_systems_answers_are_described_as_sent(t: TestApp) {
    let doc = document(&t).await;
    let st = t.create_session_type(60).await;
    t.add_link("https://meet.google.com/kcw-ebey-pqu").await;
    let assign = "/functions/v1/assign-meeting-link";
    let described = |status: StatusCode, body: &Value, keys: &[&str]| {
        let keys: BTreeSet<String> = keys.iter().map(|k| k.to_string()).collect();
        let (properties, required) = answer_schema(&doc, assign, status);
        assert_eq!(object_keys(body), keys, "{status} {body}");
        assert_eq!(
            (&properties, &required),
            (&keys, &keys),
            "{assign} {status}"
        );
    };

    let paid = t.create_booking(&st, "2027-12-01", "14:00", "paid").await;
    let (s, body) = raw_assign(&t, &paid.id).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    described(
        s,
        &body,
        &["success", "meetingLink", "meetingLinkId", "joinUrl"],
    );
    assert_eq!(success_enum(&doc, assign, s), json!([true]));

    let waiting = t.create_booking(&st, "2027-12-01", "14:00", "paid").await;
    let (s, body) = raw_assign(&t, &waiting.id).await;
    assert_eq!(s, StatusCode::CONFLICT, "{body}");
    described(s, &body, &["success", "error", "requiresManualAssignment"]);
    let (schema, _) = schema_of(&doc, assign, s);
    assert_eq!(
        schema["properties"]["requiresManualAssignment"]["enum"],
        json!([true])
    );

    let pending = t
        .create_booking(&st, "2027-12-02", "14:00", "pending")
        .await;
    let failures = [
        raw_assign(&t, &pending.id).await,
        raw_assign(&t, &uuid::Uuid::new_v4().to_string()).await,
        t.post(assign, json!({ "bookingId": "not-a-uuid" })).await,
        post_without_token(&t, assign, json!({ "bookingId": "x" })).await,
    ];
    let statuses: Vec<StatusCode> = failures.iter().map(|(s, _)| *s).collect();
    assert_eq!(
        statuses,
        [
            StatusCode::UNPROCESSABLE_ENTITY,
            StatusCode::NOT_FOUND,
            StatusCode::BAD_REQUEST,
            StatusCode::UNAUTHORIZED
        ]
    );
    for (s, body) in &failures {
        described(*s, body, &["success", "error"]);
        assert_eq!(success_enum(&doc, assign, *s), json!([false]));
    }

    for webhook in ["/webhooks/midtrans", "/functions/v1/midtrans-webhook"] {
        let booking = t
            .create_booking(&st, "2027-12-03", "09:00", "pending")
            .await;
        let order = booking.order_id.as_str();
        let (s, body) = t.post_raw(webhook, settlement(order)).await;
        assert_eq!(s, StatusCode::OK, "{body}");
        let keys = [
            "success",
            "bookingId",
            "paymentStatus",
            "meetingLink",
            "requiresManualAssignment",
            "duplicate",
            "joinUrl",
        ];
        let keys: BTreeSet<String> = keys.iter().map(|k| k.to_string()).collect();
        assert_eq!(object_keys(&body), keys, "{body}");
        assert_eq!(answer_schema(&doc, webhook, s), (keys.clone(), keys));
        let (schema, _) = schema_of(&doc, webhook, s);
        let link_type = &schema["properties"]["meetingLink"]["type"];
        assert!(
            link_type
                .as_array()
                .is_some_and(|t| t.contains(&json!("null"))),
            "meetingLink may be null: {link_type}"
        );

        let mut forged: Value = serde_json::from_slice(&settlement(order)).unwrap();
        forged["gross_amount"] = json!("1.00");
        let refusals = [
            t.post_raw(webhook, "not json").await,
            t.post_raw(webhook, serde_json::to_vec(&forged).unwrap())
                .await,
            t.post_raw(webhook, settlement("NO-SUCH-ORDER")).await,
        ];
        let statuses: Vec<StatusCode> = refusals.iter().map(|(s, _)| *s).collect();
        assert_eq!(
            statuses,
            [
                StatusCode::BAD_REQUEST,
                StatusCode::UNAUTHORIZED,
                StatusCode::NOT_FOUND
            ]
        );
        for (s, body) in &refusals {
            let keys = |k: &[&str]| k.iter().map(|k| k.to_string()).collect::<BTreeSet<_>>();
            assert_eq!(object_keys(body), keys(&["success", "error"]), "{body}");
            assert_eq!(object_keys(&body["error"]), keys(&["code", "message"]));
            let (schema, doc_ref) = schema_of(&doc, webhook, *s);
            assert_eq!(
                (properties(&schema), required(&schema)),
                (keys(&["success", "error"]), keys(&["success", "error"])),
                "{webhook} {s}"
            );
            let error = resolve(doc_ref, &schema["properties"]["error"]);
            assert_eq!(
                (properties(&error), required(&error)),
                (keys(&["code", "message"]), keys(&["code", "message"]))
            );
        }
    }
}

// ---------------------------------------------------------------- helpers

async fn document(t: &TestApp) -> Value {
    let res = t.http.get(t.url("/openapi.json")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let content_type = res.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    res.json().await.unwrap()
}

/// Each (METHOD, path template) the document describes.
fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let methods = [
        "get", "put", "post", "delete", "options", "head", "patch", "trace",
    ];
    doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            methods
                .iter()
                .filter(|m| item.get(**m).is_some())
                .map(|m| (m.to_uppercase(), path.clone()))
        })
        .collect()
}

/// The names of every `#/components/schemas/...` the document refers to.
fn references(value: &Value) -> BTreeSet<String> {
    match value {
        Value::Object(map) => map
            .iter()
            .flat_map(|(k, v)| match (k.as_str(), v) {
                ("$ref", Value::String(r)) => r
                    .strip_prefix("#/components/schemas/")
                    .map(str::to_owned)
                    .into_iter()
                    .collect(),
                _ => references(v),
            })
            .collect(),
        Value::Array(items) => items.iter().flat_map(references).collect(),
        _ => BTreeSet::new(),
    }
}

/// `{id}` and any other path parameter, filled with an id nobody holds.
fn fill_parameters(template: &str) -> String {
    template
        .split('/')
        .map(|segment| {
            if segment.starts_with('{') {
                uuid::Uuid::new_v4().to_string()
            } else {
                segment.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

async fn call(t: &TestApp, method: Method, path: &str, with_token: bool) -> (StatusCode, Value) {
    let mut req = t.http.request(method.clone(), t.url(path));
    if with_token {
        req = req.bearer_auth(ADMIN_TOKEN);
    }
    if [Method::POST, Method::PUT, Method::PATCH].contains(&method) {
        req = req.json(&json!({}));
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    let text = res.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn post_without_token(t: &TestApp, path: &str, body: Value) -> (StatusCode, Value) {
    let res = t.http.post(t.url(path)).json(&body).send().await.unwrap();
    (res.status(), res.json().await.unwrap())
}

/// A settlement for `order`, signed as Midtrans signs it.
fn settlement(order: &str) -> Vec<u8> {
    let (status_code, gross_amount) = ("200", "100000.00");
    serde_json::to_vec(&json!({
        "order_id": order,
        "status_code": status_code,
        "gross_amount": gross_amount,
        "transaction_status": "settlement",
        "transaction_id": uuid::Uuid::new_v4().to_string(),
        "payment_type": "bank_transfer",
        "signature_key": signature(order, status_code, gross_amount, MIDTRANS_KEY),
    }))
    .unwrap()
}

fn object_keys(body: &Value) -> BTreeSet<String> {
    body.as_object()
        .unwrap_or_else(|| panic!("not an object: {body}"))
        .keys()
        .cloned()
        .collect()
}

/// `value`, or what it refers to.
fn resolve(doc: &Value, value: &Value) -> Value {
    match value["$ref"].as_str() {
        Some(r) => {
            let name = r.strip_prefix("#/components/schemas/").unwrap();
            doc["components"]["schemas"][name].clone()
        }
        None => value.clone(),
    }
}

/// The JSON schema of the answer of `POST path` with `status`.
fn schema_of<'d>(doc: &'d Value, path: &str, status: StatusCode) -> (Value, &'d Value) {
    let answer = &doc["paths"][path]["post"]["responses"][status.as_str()];
    let schema = &answer["content"]["application/json"]["schema"];
    assert!(!schema.is_null(), "POST {path} {status} is not described");
    (resolve(doc, schema), doc)
}

fn properties(schema: &Value) -> BTreeSet<String> {
    object_keys(&schema["properties"])
}

fn required(schema: &Value) -> BTreeSet<String> {
    schema["required"]
        .as_array()
        .map(|r| r.iter().map(|k| k.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}

fn answer_schema(
    doc: &Value,
    path: &str,
    status: StatusCode,
) -> (BTreeSet<String>, BTreeSet<String>) {
    let (schema, _) = schema_of(doc, path, status);
    (properties(&schema), required(&schema))
}

fn success_enum(doc: &Value, path: &str, status: StatusCode) -> Value {
    let (schema, _) = schema_of(doc, path, status);
    schema["properties"]["success"]["enum"].clone()
}

/// The previous system's assign call, answered as sent.
async fn raw_assign(t: &TestApp, booking_id: &str) -> (StatusCode, Value) {
    t.post(
        "/functions/v1/assign-meeting-link",
        json!({ "bookingId": booking_id }),
    )
    .await
}
