//! The booking's `status`, the word the previous system's readers go by,
//! follows its payment by one rule whatever the source (a notification, an
//! operator's PATCH): `confirmed` once paid, `cancelled` once refunded or
//! cancelled for good, `pending` again when a payment is reversed; a
//! partial refund keeps the session, its link and its `status`.
use serde_json::json;

use super::shop::{fixture_json, signed, Shop, LINK};

on_both!(
    a_full_refund_cancels_the_booking_for_every_reader,
    a_chargeback_and_a_cancel_cancel_the_booking_too,
    a_partial_refund_keeps_the_session_confirmed_with_its_link,
    a_refund_by_hand_cancels_the_booking,
    a_reversed_payment_is_no_longer_confirmed,
);

async fn a_full_refund_cancels_the_booking_for_every_reader(shop: Shop) {
    shop.deliver("settlement-bank-transfer.json").await;
    assert_eq!(shop.booking("ORDER-1001").await.status, "confirmed");

    shop.deliver("refund-bank-transfer.json").await;
    let refunded = shop.booking("ORDER-1001").await;
    assert_eq!(
        (
            refunded.payment_status.as_str(),
            refunded.status.as_str(),
            refunded.meeting_link_id
        ),
        ("refunded", "cancelled", None)
    );
    // The list the previous system's pages read says so too.
    let listed = shop
        .t
        .bookings("?payment_status=refunded")
        .await
        .unwrap()
        .into_iter()
        .find(|b| b.order_id == "ORDER-1001")
        .unwrap();
    assert_eq!(listed.status, "cancelled");
}

async fn a_chargeback_and_a_cancel_cancel_the_booking_too(shop: Shop) {
    shop.deliver("settlement-bank-transfer.json").await;
    let mut chargeback = fixture_json("refund-bank-transfer.json");
    chargeback["transaction_status"] = json!("chargeback");
    let answer = shop.notify(signed(chargeback)).await.settled();
    assert_eq!(answer.payment_status, "refunded", "{answer:?}");
    let b = shop.booking("ORDER-1001").await;
    assert_eq!((b.status.as_str(), b.meeting_link_id), ("cancelled", None));

    shop.deliver("capture-accept-card.json").await;
    assert_eq!(shop.booking("ORDER-1002").await.status, "confirmed");
    shop.deliver("cancel-card.json").await;
    let b = shop.booking("ORDER-1002").await;
    assert_eq!(
        (b.payment_status.as_str(), b.status.as_str()),
        ("cancelled", "cancelled")
    );
}

async fn a_partial_refund_keeps_the_session_confirmed_with_its_link(shop: Shop) {
    shop.t
        .set_payment_status(shop.id("ORDER-1008"), "paid")
        .await
        .unwrap();
    shop.deliver("partial-refund.json").await;
    let mut partial_chargeback = fixture_json("partial-refund.json");
    partial_chargeback["transaction_status"] = json!("partial_chargeback");
    shop.notify(signed(partial_chargeback)).await.settled();
    let b = shop.booking("ORDER-1008").await;
    assert_eq!(
        (
            b.payment_status.as_str(),
            b.status.as_str(),
            b.meeting_link.as_deref()
        ),
        ("paid", "confirmed", Some(LINK))
    );
}

async fn a_refund_by_hand_cancels_the_booking(shop: Shop) {
    let paid = shop
        .t
        .set_payment_status(shop.id("ORDER-1003"), "paid")
        .await
        .unwrap();
    assert_eq!(paid.status, "confirmed");
    let refunded = shop
        .t
        .set_payment_status(shop.id("ORDER-1003"), "refunded")
        .await
        .unwrap();
    assert_eq!(
        (refunded.status.as_str(), refunded.meeting_link_id),
        ("cancelled", None)
    );
    // A booking created as refunded (an import) is cancelled from the start.
    let imported = shop
        .t
        .create_booking(&shop.st, "2027-12-02", "10:00", "refunded")
        .await;
    assert_eq!(imported.status, "cancelled");
}

async fn a_reversed_payment_is_no_longer_confirmed(shop: Shop) {
    shop.deliver("settlement-bank-transfer.json").await;
    shop.deliver("settlement-reversal-deny.json").await;
    let b = shop.booking("ORDER-1001").await;
    assert_eq!(
        (b.payment_status.as_str(), b.status.as_str()),
        ("failed", "pending")
    );
}
