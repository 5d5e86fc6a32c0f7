//! Bodies the webhook cannot settle: malformed (400), for an order it does
//! not know (404), or arriving while no server key is configured (503, so
//! that Midtrans retries). None changes anything, and no body whatever gets
//! a 5xx or a redirect from a configured service.
use meetpool_conformance::{Backend, WebhookAnswer, MIDTRANS_KEY};
use meetpool_domain::midtrans::Notification;
use reqwest::StatusCode;
use serde_json::{json, Value};

use super::shop::{fixture, fixture_json, signed, Shop};

on_both!(
    malformed_bodies_are_400_and_change_nothing,
    unknown_order_is_404,
    without_a_server_key_the_webhook_is_503_not_configured,
);

async fn malformed_bodies_are_400_and_change_nothing(shop: Shop) {
    let before = shop.snapshot().await;
    let mut unsigned = fixture_json("settlement-bank-transfer.json");
    unsigned.as_object_mut().unwrap().remove("signature_key");
    let mut numeric = fixture_json("settlement-bank-transfer.json");
    numeric["status_code"] = json!(200);
    let bodies: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"not json".to_vec(),
        b"[1, 2]".to_vec(),
        b"null".to_vec(),
        b"{\"order_id\": \"ORDER-1001\"".to_vec(),
        serde_json::to_vec(&unsigned).unwrap(),
        serde_json::to_vec(&numeric).unwrap(),
    ];
    for body in bodies {
        let shown = String::from_utf8_lossy(&body).into_owned();
        let refused = shop.notify(body).await.refused();
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{shown:?}");
        assert!(!refused.error.code.is_empty(), "{shown:?}: {refused:?}");
    }
    assert_eq!(
        shop.snapshot().await,
        before,
        "a malformed body changed something"
    );
}

async fn unknown_order_is_404(shop: Shop) {
    let before = shop.snapshot().await;
    let mut stranger = fixture_json("settlement-bank-transfer.json");
    stranger["order_id"] = json!("ORDER-9999");
    let refused = shop.notify(signed(stranger)).await.refused();
    assert_eq!(refused.why(), (StatusCode::NOT_FOUND, "not_found"));
    assert_eq!(shop.snapshot().await, before);
}

async fn without_a_server_key_the_webhook_is_503_not_configured(b: Backend) {
    let shop = Shop::open_with(b, |c| c.midtrans_server_key = None).await;
    let before = shop.snapshot().await;
    for body in [
        fixture("settlement-bank-transfer.json"),
        b"not json".to_vec(),
    ] {
        let refused = shop.notify(body).await.refused();
        assert_eq!(
            refused.why(),
            (StatusCode::SERVICE_UNAVAILABLE, "not_configured")
        );
    }
    assert_eq!(shop.snapshot().await, before);
}

/// Random bytes, and random JSON objects with the notification's field
/// names (values random or taken from real orders and statuses), never get
/// a 5xx or a redirect and never change anything.
#[test]
fn arbitrary_bodies_never_fail_the_service_nor_change_anything() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    const FIELDS: [&str; 9] = [
        "order_id",
        "status_code",
        "gross_amount",
        "signature_key",
        "transaction_status",
        "transaction_id",
        "fraud_status",
        "payment_type",
        "transaction_time",
    ];
    let value = prop_oneof![
        ".{0,40}".prop_map(Value::String),
        prop::sample::select(vec![
            "ORDER-1001",
            "ORDER-1004",
            "200",
            "201",
            "150000.00",
            "settlement",
            "capture",
            "refund",
            "deny",
            "cancel",
            "accept",
            "challenge",
            "7f0c2a8e-1d43-4b8e-9a52-0c6b1f5e3a11",
        ])
        .prop_map(|s| json!(s)),
        "[0-9a-f]{128}".prop_map(Value::String),
        any::<i64>().prop_map(|n| json!(n)),
        Just(Value::Null),
    ];
    let object = prop::collection::btree_map(prop::sample::select(FIELDS.to_vec()), value, 0..10)
        .prop_map(|m| serde_json::to_vec(&m).unwrap());
    let bodies = prop_oneof![prop::collection::vec(any::<u8>(), 0..300), object];

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let shop = rt.block_on(Shop::open(Backend::Sqlite));
    let settled = rt.block_on(shop.deliver("settlement-bank-transfer.json"));
    assert_eq!(settled.payment_status, "paid");
    let before = rt.block_on(shop.snapshot());

    let mut runner = TestRunner::new(Config {
        cases: 64,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&bodies, |body| {
        let validly_signed = Notification::parse(&body)
            .map(|n| n.signature_is_valid(MIDTRANS_KEY))
            .unwrap_or(false);
        let answer = rt.block_on(shop.notify(body.clone()));
        let shown = String::from_utf8_lossy(&body).into_owned();
        prop_assert!(
            !answer.status().is_server_error(),
            "{answer:?} for {shown:?}"
        );
        if !validly_signed {
            let WebhookAnswer::Refused(status, _) = &answer else {
                return Err(TestCaseError::fail(format!("{answer:?} for {shown:?}")));
            };
            prop_assert!(status.is_client_error(), "{answer:?} for {shown:?}");
            let now = rt.block_on(shop.snapshot());
            prop_assert_eq!(&now, &before, "changed by {:?}", shown);
        }
        Ok(())
    });
    drop(shop);
    if let Err(e) = result {
        panic!("{e}");
    }
}
