//! What each transaction status does to a booking, fixture by fixture, and
//! the payment state machine it goes through: forward only, a late or an
//! earlier attempt's notification never downgrades a payment, and a link
//! taken back goes at once to a paid booking waiting for one.
use serde_json::json;

use super::shop::{count, fixture_json, signed, Shop, DAY, LINK};

on_both!(
    settlement_pays_and_gives_the_booking_a_link,
    card_capture_accepted_pays_and_challenged_waits_for_review,
    pending_expire_and_deny_leave_the_booking_unpaid_without_a_link,
    cancel_after_capture_releases_the_link,
    refund_after_settlement_releases_the_link,
    partial_refund_keeps_the_booking_paid_and_its_link,
    settlement_reversed_by_deny_loses_its_link,
    fields_midtrans_adds_later_are_ignored,
    settlement_then_pending_stays_paid_with_its_link,
    refund_hands_the_link_to_a_waiting_paid_booking,
);

// ---------------------------------------------------------------- every fixture

async fn settlement_pays_and_gives_the_booking_a_link(shop: Shop) {
    let answer = shop.deliver("settlement-bank-transfer.json").await;
    assert!(!answer.duplicate);
    shop.assert_paid_with_the_link("ORDER-1001", &answer).await;
    let kinds = shop.events("ORDER-1001").await;
    assert_eq!(count(&kinds, "payment"), 1, "{kinds:?}");
    assert_eq!(count(&kinds, "assigned"), 1, "{kinds:?}");

    // The notification's documented fields are kept as received, with what
    // became of it; the rest of the body (here the virtual account) is not.
    let events = shop.t.events(shop.id("ORDER-1001")).await;
    let payment = events.iter().find(|e| e.kind == "payment").unwrap();
    let sent = fixture_json("settlement-bank-transfer.json");
    for field in [
        "order_id",
        "transaction_id",
        "transaction_status",
        "gross_amount",
        "payment_type",
        "settlement_time",
    ] {
        assert_eq!(
            payment.detail["body"][field], sent[field],
            "{field}: {payment:?}"
        );
    }
    assert!(
        payment.detail["body"].get("va_numbers").is_none(),
        "{payment:?}"
    );
    assert_eq!(payment.detail["outcome"], "applied", "{payment:?}");
    assert_eq!(shop.t.overlaps().await, 0);
}

async fn card_capture_accepted_pays_and_challenged_waits_for_review(shop: Shop) {
    let accepted = shop.deliver("capture-accept-card.json").await;
    shop.assert_paid_with_the_link("ORDER-1002", &accepted)
        .await;

    let challenged = shop.deliver("capture-challenge-card.json").await;
    shop.assert_unpaid_without_a_link("ORDER-1003", "pending", &challenged)
        .await;
    assert!(!shop
        .events("ORDER-1003")
        .await
        .contains(&"assigned".to_owned()));
}

async fn pending_expire_and_deny_leave_the_booking_unpaid_without_a_link(shop: Shop) {
    let pending = shop.deliver("pending-echannel.json").await;
    shop.assert_unpaid_without_a_link("ORDER-1004", "pending", &pending)
        .await;
    // Sparse: no merchant_id, currency, fraud_status... still understood.
    let expired = shop.deliver("expire-permata-sparse.json").await;
    shop.assert_unpaid_without_a_link("ORDER-1005", "expired", &expired)
        .await;
    let denied = shop.deliver("deny-card.json").await;
    shop.assert_unpaid_without_a_link("ORDER-1006", "failed", &denied)
        .await;
    for order in ["ORDER-1004", "ORDER-1005", "ORDER-1006"] {
        assert!(!shop.events(order).await.contains(&"assigned".to_owned()));
    }
}

async fn cancel_after_capture_releases_the_link(shop: Shop) {
    let captured = shop.deliver("capture-accept-card.json").await;
    shop.assert_paid_with_the_link("ORDER-1002", &captured)
        .await;

    let cancelled = shop.deliver("cancel-card.json").await;
    shop.assert_unpaid_without_a_link("ORDER-1002", "cancelled", &cancelled)
        .await;
    assert!(shop
        .events("ORDER-1002")
        .await
        .contains(&"released".to_owned()));
    shop.assert_link_free_at("ORDER-1002").await;
}

async fn refund_after_settlement_releases_the_link(shop: Shop) {
    let settled = shop.deliver("settlement-bank-transfer.json").await;
    shop.assert_paid_with_the_link("ORDER-1001", &settled).await;

    let refunded = shop.deliver("refund-bank-transfer.json").await;
    shop.assert_unpaid_without_a_link("ORDER-1001", "refunded", &refunded)
        .await;
    assert!(shop
        .events("ORDER-1001")
        .await
        .contains(&"released".to_owned()));
    shop.assert_link_free_at("ORDER-1001").await;
}

async fn partial_refund_keeps_the_booking_paid_and_its_link(shop: Shop) {
    // Paid on the platform's side (an operator confirming by hand).
    shop.t
        .set_payment_status(shop.id("ORDER-1008"), "paid")
        .await
        .unwrap();
    let paid = shop.booking("ORDER-1008").await;
    assert_eq!(paid.meeting_link.as_deref(), Some(LINK), "{paid:?}");
    let before = shop.events("ORDER-1008").await;

    let partial = shop.deliver("partial-refund.json").await;
    shop.assert_paid_with_the_link("ORDER-1008", &partial).await;
    let after = shop.events("ORDER-1008").await;
    // Recorded, and nothing released.
    assert_eq!(after.len(), before.len() + 1, "{before:?} -> {after:?}");
    assert_eq!(after.last().unwrap(), "payment", "{after:?}");
    assert_eq!(count(&after, "released"), 0, "{after:?}");
}

async fn settlement_reversed_by_deny_loses_its_link(shop: Shop) {
    let settled = shop.deliver("settlement-bank-transfer.json").await;
    shop.assert_paid_with_the_link("ORDER-1001", &settled).await;

    let reversed = shop.deliver("settlement-reversal-deny.json").await;
    shop.assert_unpaid_without_a_link("ORDER-1001", "failed", &reversed)
        .await;
    assert!(shop
        .events("ORDER-1001")
        .await
        .contains(&"released".to_owned()));
    shop.assert_link_free_at("ORDER-1001").await;
}

async fn fields_midtrans_adds_later_are_ignored(shop: Shop) {
    let answer = shop.deliver("settlement-with-new-fields.json").await;
    shop.assert_paid_with_the_link("ORDER-1009", &answer).await;
}

// ---------------------------------------------------------------- forward only

async fn settlement_then_pending_stays_paid_with_its_link(shop: Shop) {
    let settled = shop.deliver("settlement-bank-transfer.json").await;
    shop.assert_paid_with_the_link("ORDER-1001", &settled).await;

    // A late pending of the same order (genuine: Midtrans' own signature).
    let mut late = fixture_json("pending-echannel.json");
    late["order_id"] = json!("ORDER-1001");
    late["transaction_id"] = json!("7f0c2a8e-1d43-4b8e-9a52-0c6b1f5e3a11");
    let answer = shop.notify(signed(late)).await.settled();
    shop.assert_paid_with_the_link("ORDER-1001", &answer).await;

    // The deny of an earlier card attempt (another transaction) neither.
    let mut earlier = fixture_json("deny-card.json");
    earlier["order_id"] = json!("ORDER-1001");
    earlier["gross_amount"] = json!("150000.00");
    let answer = shop.notify(signed(earlier)).await.settled();
    shop.assert_paid_with_the_link("ORDER-1001", &answer).await;

    // A replayed settlement is a duplicate.
    let again = shop.deliver("settlement-bank-transfer.json").await;
    assert!(again.duplicate);
    shop.assert_paid_with_the_link("ORDER-1001", &again).await;

    let kinds = shop.events("ORDER-1001").await;
    assert_eq!(count(&kinds, "payment"), 1, "{kinds:?}");
    assert_eq!(count(&kinds, "notification_ignored"), 2, "{kinds:?}");
    assert_eq!(count(&kinds, "released"), 0, "{kinds:?}");
}

async fn refund_hands_the_link_to_a_waiting_paid_booking(shop: Shop) {
    let settled = shop.deliver("settlement-bank-transfer.json").await;
    shop.assert_paid_with_the_link("ORDER-1001", &settled).await;

    // Paid on another channel at the same time, while the only link is taken.
    let waiting = shop.t.create_booking(&shop.st, DAY, "08:30", "paid").await;
    assert_eq!(waiting.payment_status, "paid");
    assert_eq!(waiting.meeting_link, None, "{waiting:?}");

    let refunded = shop.deliver("refund-bank-transfer.json").await;
    shop.assert_unpaid_without_a_link("ORDER-1001", "refunded", &refunded)
        .await;

    // At once: no operator, no further call.
    let now = shop.t.booking(&waiting.id).await;
    assert_eq!(now.payment_status, "paid");
    assert_eq!(now.meeting_link.as_deref(), Some(LINK), "{now:?}");
    assert!(shop
        .t
        .event_kinds(&waiting.id)
        .await
        .contains(&"assigned".to_owned()));
    assert_eq!(shop.t.overlaps().await, 0);
}
