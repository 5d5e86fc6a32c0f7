//! The money behind a notification: a settlement must pay the booking's
//! price and never pays a cancelled booking. Either is answered 200 (a retry
//! would not change it), changes nothing, and raises an alert the operator
//! sees (the audit trail, `/metrics`, a warning). What is stored of a body
//! is bounded, whatever it carries.
use meetpool_conformance::Backend;
use serde_json::json;

use super::shop::{count, fixture_json, signed, Shop, LINK};

on_both!(
    a_settlement_of_another_amount_never_pays,
    the_amount_check_can_be_turned_off,
    money_taken_for_a_cancelled_booking_raises_the_alarm,
    what_is_stored_of_a_body_is_bounded,
);

const MISMATCH: &str = "meetpool_alerts_total{kind=\"payment.amount_mismatch\"}";
const AFTER_CANCEL: &str = "meetpool_alerts_total{kind=\"payment.after_cancel\"}";

/// ORDER-1001 (price 150000) settled for `gross`, correctly signed, by a
/// transaction of its own (the same transaction again is a duplicate).
fn settlement_for(gross: &str) -> Vec<u8> {
    let mut note = fixture_json("settlement-bank-transfer.json");
    note["gross_amount"] = json!(gross);
    note["transaction_id"] = json!(format!("txn-{gross}"));
    signed(note)
}

async fn a_settlement_of_another_amount_never_pays(shop: Shop) {
    for (i, gross) in ["1.00", "150000.01", "15000.00", "1.5e5"]
        .iter()
        .enumerate()
    {
        let answer = shop.notify(settlement_for(gross)).await.settled();
        assert!(answer.success, "{gross}: {answer:?}");
        assert_eq!(
            (
                answer.payment_status.as_str(),
                answer.meeting_link.as_deref()
            ),
            ("pending", None),
            "{gross}"
        );
        assert_eq!(shop.t.metric(MISMATCH).await, i as u64 + 1);
    }
    let kinds = shop.events("ORDER-1001").await;
    assert_eq!(count(&kinds, "amount_mismatch"), 4, "{kinds:?}");
    assert_eq!(count(&kinds, "payment"), 0, "{kinds:?}");
    // The amount as sent (also without decimals) pays.
    let answer = shop.notify(settlement_for("150000")).await.settled();
    shop.assert_paid_with_the_link("ORDER-1001", &answer).await;
    assert_eq!(shop.t.metric(MISMATCH).await, 4);
}

async fn the_amount_check_can_be_turned_off(b: Backend) {
    let shop = Shop::open_with(b, |c| c.midtrans_amount_check = false).await;
    let answer = shop.notify(settlement_for("151500.00")).await.settled();
    assert_eq!(answer.payment_status, "paid", "fees on top: {answer:?}");
    assert_eq!(answer.meeting_link.as_deref(), Some(LINK));
    assert_eq!(shop.t.metric(MISMATCH).await, 0);
}

async fn money_taken_for_a_cancelled_booking_raises_the_alarm(shop: Shop) {
    shop.t
        .set_payment_status(shop.id("ORDER-1001"), "cancelled")
        .await
        .unwrap();
    let answer = shop
        .notify(signed(fixture_json("settlement-bank-transfer.json")))
        .await
        .settled();
    assert!(answer.success, "{answer:?}");
    assert_eq!(answer.payment_status, "cancelled");
    assert_eq!(answer.meeting_link, None);
    assert_eq!(shop.t.metric(AFTER_CANCEL).await, 1);
    let kinds = shop.events("ORDER-1001").await;
    assert_eq!(count(&kinds, "paid_after_cancel"), 1, "{kinds:?}");
}

async fn what_is_stored_of_a_body_is_bounded(shop: Shop) {
    // Re-posted with new transaction ids and padding: each is a new
    // notification (a pending one, which changes nothing), none is stored
    // whole.
    for i in 0..5 {
        let mut note = fixture_json("pending-echannel.json");
        note["transaction_id"] = json!(format!("padded-{i}"));
        note["padding"] = json!("x".repeat(500_000));
        note["status_message"] = json!("y".repeat(50_000));
        let answer = shop.notify(signed(note)).await.settled();
        assert!(answer.success, "{answer:?}");
    }
    let events = shop.t.events(shop.id("ORDER-1004")).await;
    assert!(events.len() >= 5, "{events:?}");
    for e in &events {
        let stored = e.detail.to_string().len();
        assert!(stored < 4_000, "{} bytes stored for {}", stored, e.kind);
        assert!(e.detail["body"].get("padding").is_none());
    }
}
