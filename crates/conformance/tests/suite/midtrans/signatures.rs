//! Signatures and what they do not cover: a notification whose signed
//! fields were changed is 401 `invalid_signature`; one whose unsigned
//! status was edited into something the signed `status_code` does not go
//! with is 401 `unverifiable_status`. Neither changes anything, and the
//! genuine notification still goes through afterwards.
use reqwest::StatusCode;
use serde_json::{json, Value};

use super::shop::{fixture_json, signed, tampered, Shop};

on_both!(
    tampered_amount_or_order_id_is_401_and_changes_nothing,
    pending_edited_to_settlement_is_never_paid,
    edited_statuses_never_end_or_reverse_a_payment,
);

async fn tampered_amount_or_order_id_is_401_and_changes_nothing(shop: Shop) {
    let before = shop.snapshot().await;
    for forged in [
        tampered(
            "settlement-bank-transfer.json",
            json!({"gross_amount": "1500.00"}),
        ),
        tampered(
            "settlement-bank-transfer.json",
            json!({"gross_amount": "150000"}),
        ),
        tampered(
            "settlement-bank-transfer.json",
            json!({"order_id": "ORDER-1002"}),
        ),
        tampered(
            "settlement-bank-transfer.json",
            json!({"status_code": "201"}),
        ),
        tampered(
            "settlement-bank-transfer.json",
            json!({"signature_key": "00"}),
        ),
    ] {
        let refused = shop.notify(forged).await.refused();
        assert_eq!(
            refused.why(),
            (StatusCode::UNAUTHORIZED, "invalid_signature")
        );
    }
    assert_eq!(shop.snapshot().await, before, "a forgery changed something");

    // The genuine notification still goes through.
    let answer = shop.deliver("settlement-bank-transfer.json").await;
    shop.assert_paid_with_the_link("ORDER-1001", &answer).await;
}

async fn pending_edited_to_settlement_is_never_paid(shop: Shop) {
    let before = shop.snapshot().await;
    // The signature does not cover transaction_status: these still verify.
    for forged in [
        tampered(
            "pending-echannel.json",
            json!({"transaction_status": "settlement"}),
        ),
        tampered(
            "pending-echannel.json",
            json!({"transaction_status": "SETTLEMENT"}),
        ),
        tampered(
            "pending-echannel.json",
            json!({"transaction_status": "capture", "fraud_status": "accept"}),
        ),
        tampered(
            "capture-challenge-card.json",
            json!({"fraud_status": "accept"}),
        ),
    ] {
        let refused = shop.notify(forged).await.refused();
        assert_eq!(
            refused.why(),
            (StatusCode::UNAUTHORIZED, "unverifiable_status")
        );
    }
    assert_eq!(
        shop.snapshot().await,
        before,
        "an edited status changed something"
    );
    assert_eq!(shop.booking("ORDER-1004").await.payment_status, "pending");

    // The genuine pending notification is still applied afterwards.
    let pending = shop.deliver("pending-echannel.json").await;
    assert!(!pending.duplicate);
    shop.assert_unpaid_without_a_link("ORDER-1004", "pending", &pending)
        .await;
}

async fn edited_statuses_never_end_or_reverse_a_payment(shop: Shop) {
    // ORDER-1001 was pending (201) before its settlement (200) of the same
    // transaction: both bodies are genuine, and their status is not signed.
    let mut pending_1001 = fixture_json("pending-echannel.json");
    pending_1001["order_id"] = json!("ORDER-1001");
    pending_1001["transaction_id"] = json!("7f0c2a8e-1d43-4b8e-9a52-0c6b1f5e3a11");
    let pending_1001: Value = serde_json::from_slice(&signed(pending_1001)).unwrap();
    let settled = shop.deliver("settlement-bank-transfer.json").await;
    shop.assert_paid_with_the_link("ORDER-1001", &settled).await;
    let before = shop.snapshot().await;

    let edit = |body: &Value, status: &str| {
        let mut body = body.clone();
        body["transaction_status"] = json!(status);
        serde_json::to_vec(&body).unwrap()
    };
    let settlement = fixture_json("settlement-bank-transfer.json");
    let pending_1004 = fixture_json("pending-echannel.json");
    let challenge_1003 = fixture_json("capture-challenge-card.json");
    let mut denied_challenge = challenge_1003.clone();
    denied_challenge["fraud_status"] = json!("deny");
    for forged in [
        // A pending body turned into an end: the real payment that follows
        // would be refused by a cancelled booking.
        edit(&pending_1004, "cancel"),
        edit(&pending_1004, "refund"),
        edit(&pending_1004, "chargeback"),
        edit(&pending_1004, "deny"),
        edit(&challenge_1003, "cancel"),
        serde_json::to_vec(&denied_challenge).unwrap(),
        // The settled transaction's own pending body, or its settlement,
        // turned into a reversal.
        edit(&pending_1001, "deny"),
        edit(&pending_1001, "failure"),
        edit(&pending_1001, "cancel"),
        edit(&settlement, "deny"),
    ] {
        let shown = String::from_utf8_lossy(&forged).into_owned();
        let refused = shop.notify(forged).await.refused();
        assert_eq!(
            refused.why(),
            (StatusCode::UNAUTHORIZED, "unverifiable_status"),
            "{shown}"
        );
    }
    assert_eq!(
        shop.snapshot().await,
        before,
        "an edited status changed something"
    );

    // The real payment of ORDER-1004 still goes through.
    let mut paid_1004 = settlement.clone();
    paid_1004["order_id"] = json!("ORDER-1004");
    paid_1004["transaction_id"] = json!("4d2f8e6a-9c3b-4e5f-a04d-7b8c9d0e1f23");
    let answer = shop.notify(signed(paid_1004)).await.settled();
    shop.assert_paid_with_the_link("ORDER-1004", &answer).await;
    shop.assert_paid_with_the_link("ORDER-1001", &settled).await;
}
