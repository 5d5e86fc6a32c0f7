//! Confirming with Midtrans' GET status API (`MidtransVerify::Status`):
//! what the service applies is what Midtrans reports, not what the body
//! says; a forged body is refused before Midtrans is asked, and a
//! transaction Midtrans does not know (yet) is answered with a 5xx so that
//! the notification comes again.
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use meetpool_app::MidtransVerify;
use meetpool_conformance::{Backend, MIDTRANS_KEY};
use meetpool_domain::midtrans::signature;
use reqwest::StatusCode;
use serde_json::{json, Value};

use super::shop::{fixture, fixture_json, tampered, Shop};

on_both!(status_mode_applies_what_midtrans_reports);

/// What the fake Midtrans reports and what it was asked.
#[derive(Default)]
struct FakeMidtrans {
    /// order_id -> the transaction as GET status answers it.
    transactions: BTreeMap<String, Value>,
    /// (path, Authorization header) of each request.
    asked: Vec<(String, Option<String>)>,
}

type Fake = Arc<Mutex<FakeMidtrans>>;

async fn fake_midtrans() -> (Fake, String) {
    use axum::extract::{Path, State};
    use axum::http::HeaderMap;
    use axum::response::IntoResponse;

    async fn status(
        State(fake): State<Fake>,
        Path(order_id): Path<String>,
        headers: HeaderMap,
    ) -> axum::response::Response {
        let mut fake = fake.lock().unwrap();
        let auth = headers
            .get("authorization")
            .map(|v| v.to_str().unwrap().to_owned());
        fake.asked.push((format!("/v2/{order_id}/status"), auth));
        match fake.transactions.get(&order_id) {
            Some(t) => axum::Json(t.clone()).into_response(),
            None => (
                axum::http::StatusCode::NOT_FOUND,
                axum::Json(
                    json!({"status_code": "404", "status_message": "Transaction doesn't exist."}),
                ),
            )
                .into_response(),
        }
    }

    let fake = Fake::default();
    let router = axum::Router::new()
        .route("/v2/{order_id}/status", axum::routing::get(status))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (fake, base)
}

/// A transaction as Midtrans' GET status reports it.
fn reported(fixture_name: &str, changes: Value) -> Value {
    let mut t = fixture_json(fixture_name);
    t["status_message"] = json!("Success, transaction is found");
    for (k, v) in changes.as_object().unwrap() {
        t[k] = v.clone();
    }
    let sig = signature(
        t["order_id"].as_str().unwrap(),
        t["status_code"].as_str().unwrap(),
        t["gross_amount"].as_str().unwrap(),
        MIDTRANS_KEY,
    );
    t["signature_key"] = json!(sig);
    t
}

async fn status_mode_applies_what_midtrans_reports(b: Backend) {
    let (fake, api) = fake_midtrans().await;
    let shop = Shop::open_with(b, |c| {
        c.midtrans_verify = MidtransVerify::Status;
        c.midtrans_api_base = api.clone();
    })
    .await;

    // The body says settlement, Midtrans says still pending: pending.
    fake.lock().unwrap().transactions.insert(
        "ORDER-1001".into(),
        reported(
            "settlement-bank-transfer.json",
            json!({"transaction_status": "pending", "status_code": "201"}),
        ),
    );
    let answer = shop.deliver("settlement-bank-transfer.json").await;
    shop.assert_unpaid_without_a_link("ORDER-1001", "pending", &answer)
        .await;
    {
        let fake = fake.lock().unwrap();
        let (path, auth) = fake.asked.last().unwrap();
        assert_eq!(path, "/v2/ORDER-1001/status");
        // base64("SB-Mid-server-meetpool-fixtures:")
        assert_eq!(
            auth.as_deref(),
            Some("Basic U0ItTWlkLXNlcnZlci1tZWV0cG9vbC1maXh0dXJlczo=")
        );
    }

    // Midtrans' retry once the money has arrived: paid, with the link.
    fake.lock().unwrap().transactions.insert(
        "ORDER-1001".into(),
        reported("settlement-bank-transfer.json", json!({})),
    );
    let answer = shop.deliver("settlement-bank-transfer.json").await;
    shop.assert_paid_with_the_link("ORDER-1001", &answer).await;

    // The body says pending, Midtrans says settled: paid.
    fake.lock().unwrap().transactions.insert(
        "ORDER-1004".into(),
        reported(
            "pending-echannel.json",
            json!({"transaction_status": "settlement", "status_code": "200"}),
        ),
    );
    let answer = shop.deliver("pending-echannel.json").await;
    shop.assert_paid_with_the_link("ORDER-1004", &answer).await;

    // A forged body is refused before Midtrans is even asked.
    let asked = fake.lock().unwrap().asked.len();
    let forged = shop
        .notify(tampered(
            "capture-challenge-card.json",
            json!({"gross_amount": "1.00"}),
        ))
        .await
        .refused();
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED, "{forged:?}");
    assert_eq!(fake.lock().unwrap().asked.len(), asked);

    // Midtrans does not know the transaction (yet): not applied, retried.
    let before = shop.snapshot().await;
    let unknown = shop
        .notify(fixture("capture-challenge-card.json"))
        .await
        .refused();
    assert!(unknown.status.is_server_error(), "{unknown:?}");
    assert_eq!(shop.snapshot().await, before);
}
